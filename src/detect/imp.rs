//! GStreamer glue of `torchdetect`: the element's metadata and pads; everything else is the
//! inference elements' (`crate::infer`: state, lock order, frame path) with the `Detect` task.

use super::settings;
use super::task::Detect;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::LazyLock;

crate::infer::inference_element!(
    TorchDetect,
    super::TorchDetect,
    Detect,
    "GstTorchDetect",
    "torchdetect",
    "TorchScript object detector",
    settings
);

impl ElementImpl for TorchDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "TorchScript object detector",
                "Filter/Analyzer/Video",
                "Finds objects in each video frame with a TorchScript detector (YOLOv8/YOLO11, \
                 YOLOv5 or box lists) through libtorch; video passes through untouched, each box \
                 goes to a GstVideoRegionOfInterestMeta (with the analytics feature, a \
                 GstAnalyticsODMtd too) and each frame's boxes to a `torchdetect` element \
                 message",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(crate::video::inference_pad_templates);
        PAD_TEMPLATES.as_ref()
    }
}
