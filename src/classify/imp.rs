//! GStreamer glue of `torchclassify`: the element's metadata and pads; everything else is the
//! inference elements' (`crate::infer`: state, lock order, frame path) with the `Classify` task.

use super::settings;
use super::task::Classify;
use crate::infer::element::Inference;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::LazyLock;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchclassify",
        gst::DebugColorFlags::empty(),
        Some("TorchScript video classifier"),
    )
});

pub struct TorchClassify {
    inference: Inference<Classify>,
}

impl Default for TorchClassify {
    fn default() -> Self {
        TorchClassify {
            inference: Inference::new(*CAT),
        }
    }
}

impl TorchClassify {
    pub fn inference(&self) -> &Inference<Classify> {
        &self.inference
    }
}

#[glib::object_subclass]
impl ObjectSubclass for TorchClassify {
    const NAME: &'static str = "GstTorchClassify";
    type Type = super::TorchClassify;
    type ParentType = gst_base::BaseTransform;
}

crate::inference_element!(TorchClassify, settings);

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
