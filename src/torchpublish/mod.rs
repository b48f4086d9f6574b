//! `torchpublish`: a passthrough element after `torchclassify` that publishes each new result as
//! JSON (the `results-file` fields plus `source`) to a file or an MQTT broker, from a publisher
//! thread with a bounded queue, so the video never waits for the output.

use gst::glib;
use gst::prelude::*;

mod imp;
mod outbox;
mod sender;

glib::wrapper! {
    pub struct TorchPublish(ObjectSubclass<imp::TorchPublish>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    imp::Method::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "torchpublish",
        gst::Rank::NONE,
        TorchPublish::static_type(),
    )
}
