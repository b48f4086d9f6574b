//! `torchclassify`'s own properties (the common ones are the inference elements'), and the
//! blurbs of the common ones.

use crate::enums::{Activation, InferenceRegion};
use crate::infer::properties::{self, Texts, get, string};
use gst::glib;
use gst::prelude::*;
use std::sync::LazyLock;
use torchcore::settings::*;

/// Stores a property value in `s` (GObject has checked its type and range).
pub fn set(s: &mut Settings<ClassifySettings>, value: &glib::Value, pspec: &glib::ParamSpec) {
    if properties::set(s, value, pspec) {
        return;
    }
    let c = &mut s.task;
    match pspec.name() {
        "top-k" => c.top_k = get(value),
        "output" => c.output.set(get::<Activation>(value).into()),
        "threshold" => c.threshold.set(get(value)),
        "inference-region" => c.inference_region = get::<InferenceRegion>(value).into(),
        "object-class" => c.object_class = comma_list(&string(value).unwrap_or_default()),
        "min-roi-size" => c.min_roi_size = get(value),
        "max-batch" => c.max_batch = get(value),
        "reclassify-interval" => c.reclassify_interval = get(value),
        _ => {}
    }
}

/// A property's value (all but `stats`, which the element computes).
pub fn value(s: &Settings<ClassifySettings>, pspec: &glib::ParamSpec) -> glib::Value {
    if let Some(v) = properties::value(s, pspec) {
        return v;
    }
    let c = &s.task;
    match pspec.name() {
        "top-k" => c.top_k.to_value(),
        "output" => Activation::from(*c.output.get()).to_value(),
        "threshold" => c.threshold.get().to_value(),
        "inference-region" => InferenceRegion::from(c.inference_region).to_value(),
        "object-class" => c.object_class.join(",").to_value(),
        "min-roi-size" => c.min_roi_size.to_value(),
        "max-batch" => c.max_batch.to_value(),
        "reclassify-interval" => c.reclassify_interval.to_value(),
        _ => glib::Value::from_type(pspec.value_type()),
    }
}

/// The element's properties (what `gst-inspect-1.0 torchclassify` shows).
pub fn specs() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let texts = Texts {
            name: "torchclassify",
            model: "Path of a TorchScript image classifier taking a 1x3xSxS float input \
                     (S = input-size; channels, normalisation and fitting as the properties \
                     below or the model config file say) and returning [1, N] class scores. \
                     Default: the int8 MobileNetV2 that `make model` exports. Loaded when the \
                     element starts; set while \
                     running, the new model loads in the background and replaces the old \
                     one between two frames (message torchclassify-model-updated), or a \
                     warning says why not and the old one stays",
            labels: "Path of a text file with one class label per line, in class-id order; \
                     its line count must equal the model's N. Unset: the model config file's \
                     labels, else the 1000 ImageNet labels built into the plugin. Can be \
                     changed while running, like model \
                     (changes within 100 ms of each other load once)",
            input_size: "Side of the square image the model takes (resize says how a frame is \
                     fitted into it). 224 for MobileNet, ResNet, ShuffleNet and GoogLeNet, 299 \
                     for Inception v3. Unset: the model config file's, else 224",
            results_file: "Write every result as a JSON line (pts, frame, label, class-id, \
                     confidence, top-k [{label, id, confidence}], inference-ms) to this \
                     file, created when the element starts; `-` = standard output. Flushed \
                     at EOS and when the element stops",
            model_config: "JSON file describing the model: keys labels (path relative to the file, \
                     or a list of strings), input-size, mean, std, pixel-scale, color-order, \
                     resize, crop-fraction, output, threshold, as these properties. \
                     Properties set on the element win over it. Unset: the model's path with \
                     extension .json (my.pt -> my.json) when that file exists \
                     (tools/export_model.py writes one beside every model)",
            stats: "torchclassify-stats: frames, inferences, skipped (late by QoS), \
                     replaced (async frames a newer one replaced), below-threshold, regions \
                     (classified in roi-list mode), regions-carried (reclassify-interval), mean-batch-size (images per forward this \
                     element's frames took part in, counting those of the elements sharing the \
                     model), mean-inference-ms (a batch's time shared by its images), \
                     max-inference-ms, frame-fps and inference-fps since the first frame \
                     (until EOS, after it), engine, overlap (pipelined, serial, measuring or \
                     none) and, once measured, overlap-pipelined-ms and overlap-serial-ms",
        };
        let own = vec![
            glib::ParamSpecUInt::builder("top-k")
                .nick("Top K")
                .blurb("Number of best classes reported in meta and messages")
                .minimum(1)
                .maximum(1000)
                .default_value(DEFAULT_TOP_K)
                .mutable_playing()
                .build(),
            glib::ParamSpecEnum::builder_with_default("output", Activation::default())
                .nick("Output")
                .blurb(
                    "What the model's outputs are: softmax for exclusive classes' logits, \
                 sigmoid for a multi-label model (each class's own probability), none for \
                 probabilities already",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("threshold")
                .nick("Threshold")
                .blurb(
                    "Only classes with a confidence at or above this go into the top-k; a \
                 frame whose best class is below it gets no result (no meta, message or \
                 JSON line; stats count it as below-threshold)",
                )
                .minimum(0.0)
                .maximum(1.0)
                .default_value(DEFAULT_THRESHOLD)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default(
                "inference-region",
                InferenceRegion::default(),
            )
            .nick("Inference region")
            .blurb(
                "full-frame: classify the whole frame; roi-list: classify every region of \
             interest (GstVideoRegionOfInterestMeta, from a detector upstream or the \
             application) instead, each cropped from the frame and fitted as resize says, \
             all of a frame's regions in one batched forward; each region's own ROI meta \
             gets the torchclassify param (with roi-id), one message per region. Built with \
             the analytics feature (GStreamer 1.24+), regions are also read from \
             GstAnalyticsODMtd, and each result is a GstAnalyticsClsMtd related from its \
             box's ODMtd (RELATE_TO; one is added for a ROI meta's box); a full-frame \
             result is a ClsMtd of the top-k",
            )
            .mutable_ready()
            .build(),
            glib::ParamSpecString::builder("object-class")
                .nick("Object class")
                .blurb(
                    "With inference-region=roi-list: the ROI types to classify, comma-separated \
                 (e.g. \"car,truck\"), the GstAnalyticsODMtd object types too (analytics \
                 feature); empty: every region",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("min-roi-size")
                .nick("Minimum ROI size")
                .blurb(
                    "With inference-region=roi-list: regions narrower or lower than this many \
                 pixels (after clipping to the frame) are not classified",
                )
                .default_value(DEFAULT_MIN_ROI_SIZE)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("max-batch")
                .nick("Maximum batch")
                .blurb(
                    "With inference-region=roi-list: at most this many regions go to the model \
                 in one forward (more regions take more forwards). A model that only takes \
                 one image per forward runs one forward per region (logged at load)",
                )
                .minimum(1)
                .maximum(1024)
                .default_value(DEFAULT_MAX_BATCH)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("reclassify-interval")
                .nick("Reclassify interval")
                .blurb(
                    "With inference-region=roi-list: a tracked region (a ROI meta id other \
                     than 0, from torchtrack or another tracker) is classified when first seen \
                     and again every this many frames; between, its ROI meta carries the \
                     track's newest result (stats: regions-carried). 1: every frame",
                )
                .minimum(1)
                .default_value(DEFAULT_RECLASSIFY_INTERVAL)
                .mutable_playing()
                .build(),
        ];
        properties::properties(&texts, &SharedSettings::default(), own)
    });
    PROPERTIES.as_ref()
}
