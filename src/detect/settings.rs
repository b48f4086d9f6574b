//! `torchdetect`'s own properties (the common ones are the inference elements'), and the
//! blurbs of the common ones.

use crate::enums::OutputFormat;
use crate::infer::properties::{self, Texts, get, string};
use gst::glib;
use gst::prelude::*;
use std::sync::LazyLock;
use torchcore::settings::*;

/// Stores a property value in `s` (GObject has checked its type and range).
pub fn set(s: &mut Settings<DetectSettings>, value: &glib::Value, pspec: &glib::ParamSpec) {
    if properties::set(s, value, pspec) {
        return;
    }
    let d = &mut s.task;
    match pspec.name() {
        "output-format" => d.output_format.set(get::<OutputFormat>(value).into()),
        "threshold" => d.threshold.set(get(value)),
        "iou-threshold" => d.iou_threshold.set(get(value)),
        "max-detections" => d.max_detections.set(get(value)),
        "object-class" => d.object_class = comma_list(&string(value).unwrap_or_default()),
        "min-size" => d.min_size = get(value),
        "pad-color" => s.shared.pad_color = Some(get(value)),
        _ => {}
    }
}

/// A property's value (all but `stats`, which the element computes).
pub fn value(s: &Settings<DetectSettings>, pspec: &glib::ParamSpec) -> glib::Value {
    if let Some(v) = properties::value(s, pspec) {
        return v;
    }
    let d = &s.task;
    match pspec.name() {
        "output-format" => OutputFormat::from(*d.output_format.get()).to_value(),
        "threshold" => d.threshold.get().to_value(),
        "iou-threshold" => d.iou_threshold.get().to_value(),
        "max-detections" => d.max_detections.get().to_value(),
        "object-class" => d.object_class.join(",").to_value(),
        "min-size" => d.min_size.to_value(),
        "pad-color" => s.shared.pad_color.unwrap_or(DETECT_PAD_COLOR).to_value(),
        _ => glib::Value::from_type(pspec.value_type()),
    }
}

/// The element's properties (what `gst-inspect-1.0 torchdetect` shows).
pub fn specs() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let texts = Texts {
            name: "torchdetect",
            model: "Path of a TorchScript object detector taking a 1x3xSxS float input (S = \
                    input-size; by default 0..1 RGB letterboxed with 114 grey, as ultralytics' \
                    YOLO exports take) and returning its raw head or box lists (output-format). \
                    No default: set it. Loaded when the element starts; set while running, the \
                    new model loads in the background and replaces the old one between two \
                    frames (message torchdetect-model-updated), or a warning says why not and \
                    the old one stays",
            labels: "Path of a text file with one class label per line, in class-id order; its \
                     line count must equal the model's classes. Unset: the model config file's \
                     labels, else COCO's 80 names for an 80-class model, else class 0, class 1, \
                     ... Can be changed while running, like model",
            input_size: "Side of the square image the model takes (resize says how a frame is \
                         fitted into it): 640 for YOLOv8, YOLO11 and YOLOv5 exports. Unset: the \
                         model config file's, else 640",
            results_file: "Write every frame's boxes as a JSON line (pts, frame, objects \
                           [{roi-id, roi-type, x, y, width, height, label, class-id, \
                           confidence}], inference-ms) to this file, created when the element \
                           starts; `-` = standard output. Flushed at EOS and when the element \
                           stops",
            model_config: "JSON file describing the model: keys labels (path relative to the \
                           file, or a list of strings), input-size, mean, std, pixel-scale, \
                           color-order, resize, crop-fraction, output-format, threshold, \
                           iou-threshold, max-detections, as these properties. Properties set \
                           on the element win over it. Unset: the model's path with extension \
                           .json (my.pt -> my.json) when that file exists",
            stats: "torchdetect-stats: frames, inferences, skipped (late by QoS), replaced \
                    (async frames a newer one replaced), mean-batch-size, mean-inference-ms, \
                    max-inference-ms, frame-fps, inference-fps, engine, overlap, then \
                    detections (boxes found), dropped-invalid (boxes with a NaN or infinite \
                    value or no area in the frame) and dropped-small (below min-size); \
                    below-threshold, regions and regions-carried are torchclassify's and stay 0",
        };
        let own = vec![
            glib::ParamSpecEnum::builder_with_default("output-format", OutputFormat::default())
                .nick("Output format")
                .blurb(
                    "How the detector lays out its outputs; auto tells it from their shapes \
                     where they leave no doubt (else an error asks to set it). Unset: the \
                     model config file's, else auto",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("threshold")
                .nick("Threshold")
                .blurb(
                    "A box is kept when its confidence is at least this (yolov5: objectness \
                     x class score). Unset: the model config file's, else 0.25",
                )
                .minimum(0.0)
                .maximum(1.0)
                .default_value(DETECT_THRESHOLD)
                .mutable_playing()
                .build(),
            glib::ParamSpecDouble::builder("iou-threshold")
                .nick("IoU threshold")
                .blurb(
                    "Non-maximum suppression: a box whose intersection over union with a more \
                     confident box of the same class exceeds this is dropped (boxes of other \
                     classes never suppress each other; output-format=boxes comes suppressed). \
                     Unset: the model config file's, else 0.45",
                )
                .minimum(0.0)
                .maximum(1.0)
                .default_value(DETECT_IOU_THRESHOLD)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("max-detections")
                .nick("Maximum detections")
                .blurb(
                    "At most this many boxes per frame, the most confident (0: all). Unset: \
                     the model config file's, else 100",
                )
                .default_value(DETECT_MAX_DETECTIONS)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("object-class")
                .nick("Object class")
                .blurb(
                    "The labels of the classes to keep, comma-separated (e.g. \"car,truck\"); \
                     empty: every class",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("min-size")
                .nick("Minimum size")
                .blurb(
                    "Boxes narrower or lower than this many pixels (in the frame, after \
                     clipping to it) are dropped (stats: dropped-small)",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("pad-color")
                .nick("Pad colour")
                .blurb(
                    "With resize=letterbox: the colour of the bars, 0xAARRGGBB (alpha \
                     ignored); ultralytics pads with 114 grey (0xff727272)",
                )
                .default_value(DETECT_PAD_COLOR)
                .mutable_ready()
                .build(),
        ];
        properties::properties(&texts, &DetectSettings::shared_defaults(), own)
    });
    PROPERTIES.as_ref()
}
