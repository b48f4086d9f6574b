//! `torchtrack`: gives the regions of interest a detector put on each frame ids that stay with
//! their objects from frame to frame, and boxes where the tracks are on frames the detector
//! skipped.

use gst::glib;
use gst::prelude::*;

mod imp;

pub use imp::STRUCTURE_NAME;

glib::wrapper! {
    pub struct TorchTrack(ObjectSubclass<imp::TorchTrack>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "torchtrack",
        gst::Rank::NONE,
        TorchTrack::static_type(),
    )
}
