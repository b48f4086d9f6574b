//! `torchclassify`: classifies each video frame with a TorchScript model and attaches the result
//! as buffer meta and a bus message, passing the video through untouched.

use gst::glib;
use gst::prelude::*;

mod imp;
mod settings;
mod task;

glib::wrapper! {
    pub struct TorchClassify(ObjectSubclass<imp::TorchClassify>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::enums::Engine::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "torchclassify",
        gst::Rank::NONE,
        TorchClassify::static_type(),
    )
}
