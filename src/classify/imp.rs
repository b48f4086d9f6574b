//! GStreamer glue of `torchclassify`: the element's metadata and pads; everything else is the
//! inference elements' (`crate::infer`: state, lock order, frame path) with the `Classify` task.

use super::settings;
use super::task::Classify;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::LazyLock;

crate::infer::inference_element!(
    TorchClassify,
    super::TorchClassify,
    Classify,
    "GstTorchClassify",
    "torchclassify",
    "TorchScript video classifier",
    settings
);

impl ElementImpl for TorchClassify {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "TorchScript video classifier",
                "Filter/Analyzer/Video",
                "Classifies each video frame with a TorchScript model (default: int8 \
                 MobileNetV2 on ImageNet) through libtorch; video passes through untouched, \
                 results go to buffer meta (with the analytics feature, GstAnalytics \
                 classification meta too) and `torchclassify` element messages",
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
