//! `torchdetect`: finds objects in each video frame with a TorchScript detector (YOLOv8/YOLO11,
//! YOLOv5, or a model returning box lists) and attaches each box as a ROI meta, passing the
//! video through untouched.

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod meta;
mod settings;
mod task;

glib::wrapper! {
    pub struct TorchDetect(ObjectSubclass<imp::TorchDetect>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    crate::enums::OutputFormat::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "torchdetect",
        gst::Rank::NONE,
        TorchDetect::static_type(),
    )
}
