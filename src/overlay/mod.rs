//! `torchoverlay`: draws the classification a buffer carries (top-1 label and confidence,
//! optionally the top-k) onto the frame, and each classified region's box and caption
//! (`torchclassify inference-region=roi-list`).

use gst::glib;
use gst::prelude::*;

mod compose;
mod imp;
pub mod regions;
pub mod render;

glib::wrapper! {
    pub struct TorchOverlay(ObjectSubclass<imp::TorchOverlay>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    render::Position::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "torchoverlay",
        gst::Rank::NONE,
        TorchOverlay::static_type(),
    )
}
