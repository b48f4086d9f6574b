//! `torchclassify`'s properties: GObject values to and from the core's typed [`Settings`], and
//! the param specs (what `gst-inspect-1.0 torchclassify` shows).

use crate::enums::{Activation, ColorOrder, Engine, InferenceRegion, ResizeMode};
use gst::glib;
use gst::prelude::*;
use std::sync::LazyLock;
use torchcore::preprocess::DEFAULT_CROP_FRACTION;
use torchcore::settings::*;

static DEFAULT_MODEL: LazyLock<String> = LazyLock::new(default_model);

/// A string property's value; empty counts as unset.
fn string(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// A numeric or enum property's value (GObject checked its type before the call).
fn get<'a, T: glib::value::FromValue<'a> + Default>(value: &'a glib::Value) -> T {
    value.get().unwrap_or_default()
}

/// An array property's numbers; elements that are not numbers become NaN: an error at load,
/// naming them.
fn numbers(value: &glib::Value) -> Vec<f64> {
    value
        .get::<gst::Array>()
        .map(|a| {
            a.iter()
                .map(|v| v.get::<f64>().unwrap_or(f64::NAN))
                .collect()
        })
        .unwrap_or_default()
}

/// Stores a property value in `s` (GObject has checked its type and range).
pub fn set(s: &mut Settings, value: &glib::Value, pspec: &glib::ParamSpec) {
    let shared = &mut s.shared;
    match pspec.name() {
        "model" => shared.model = string(value).unwrap_or_default(),
        "labels" => shared.labels = string(value),
        "top-k" => s.top_k = get(value),
        "input-size" => shared.input_size.set(get(value)),
        "engine" => shared.engine = get::<Engine>(value).into(),
        "num-threads" => shared.num_threads = get(value),
        "post-messages" => s.post_messages = get(value),
        "inference-interval" => s.inference_interval = get(value),
        "async" => s.async_ = get(value),
        "stats-interval" => s.stats_interval = get(value),
        "results-file" => s.results_file = string(value),
        "model-config" => shared.model_config = string(value),
        "mean" => shared.mean.set(numbers(value)),
        "std" => shared.std.set(numbers(value)),
        "pixel-scale" => shared.pixel_scale.set(get(value)),
        "color-order" => shared.color_order.set(get::<ColorOrder>(value).into()),
        "resize" => shared.resize.set(get::<ResizeMode>(value).into()),
        "crop-fraction" => shared.crop_fraction.set(get(value)),
        "output" => s.output.set(get::<Activation>(value).into()),
        "threshold" => s.threshold.set(get(value)),
        "inference-region" => s.inference_region = get::<InferenceRegion>(value).into(),
        "object-class" => s.object_class = comma_list(&string(value).unwrap_or_default()),
        "min-roi-size" => s.min_roi_size = get(value),
        "max-batch" => s.max_batch = get(value),
        "model-instance-id" => s.model_instance_id = string(value),
        "batch-size" => shared.batch_size = get(value),
        "batch-timeout" => shared.batch_timeout = get(value),
        _ => {}
    }
}

/// A property's value (all but `stats`, which the element computes).
pub fn get_value(s: &Settings, pspec: &glib::ParamSpec) -> glib::Value {
    let shared = &s.shared;
    match pspec.name() {
        "model" => shared.model.to_value(),
        "labels" => shared.labels.to_value(),
        "top-k" => s.top_k.to_value(),
        "input-size" => shared.input_size.get().to_value(),
        "engine" => Engine::from(shared.engine).to_value(),
        "num-threads" => shared.num_threads.to_value(),
        "post-messages" => s.post_messages.to_value(),
        "inference-interval" => s.inference_interval.to_value(),
        "async" => s.async_.to_value(),
        "stats-interval" => s.stats_interval.to_value(),
        "results-file" => s.results_file.to_value(),
        "model-config" => shared.model_config.to_value(),
        "mean" => gst::Array::new(shared.mean.get().iter().copied()).to_value(),
        "std" => gst::Array::new(shared.std.get().iter().copied()).to_value(),
        "pixel-scale" => shared.pixel_scale.get().to_value(),
        "color-order" => ColorOrder::from(*shared.color_order.get()).to_value(),
        "resize" => ResizeMode::from(*shared.resize.get()).to_value(),
        "crop-fraction" => shared.crop_fraction.get().to_value(),
        "output" => Activation::from(*s.output.get()).to_value(),
        "threshold" => s.threshold.get().to_value(),
        "inference-region" => InferenceRegion::from(s.inference_region).to_value(),
        "object-class" => s.object_class.join(",").to_value(),
        "min-roi-size" => s.min_roi_size.to_value(),
        "max-batch" => s.max_batch.to_value(),
        "model-instance-id" => s.model_instance_id.to_value(),
        "batch-size" => shared.batch_size.to_value(),
        "batch-timeout" => shared.batch_timeout.to_value(),
        _ => glib::Value::from_type(pspec.value_type()),
    }
}

/// The element's properties (what `gst-inspect-1.0 torchclassify` shows).
pub fn properties() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        vec![
            glib::ParamSpecString::builder("model")
                .nick("Model")
                .blurb(
                    "Path of a TorchScript image classifier taking a 1x3xSxS float input \
                     (S = input-size; channels, normalisation and fitting as the properties \
                     below or the model config file say) and returning [1, N] class scores. \
                     Default: the int8 MobileNetV2 that `make model` exports. Loaded when the \
                     element starts; set while \
                     running, the new model loads in the background and replaces the old \
                     one between two frames (message torchclassify-model-updated), or a \
                     warning says why not and the old one stays",
                )
                .default_value(Some(DEFAULT_MODEL.as_str()))
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("labels")
                .nick("Labels")
                .blurb(
                    "Path of a text file with one class label per line, in class-id order; \
                     its line count must equal the model's N. Unset: the model config file's \
                     labels, else the 1000 ImageNet labels built into the plugin. Can be \
                     changed while running, like model \
                     (changes within 100 ms of each other load once)",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("top-k")
                .nick("Top K")
                .blurb("Number of best classes reported in meta and messages")
                .minimum(1)
                .maximum(1000)
                .default_value(DEFAULT_TOP_K)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("input-size")
                .nick("Input size")
                .blurb(
                    "Side of the square image the model takes (resize says how a frame is \
                     fitted into it). 224 for MobileNet, ResNet, ShuffleNet and GoogLeNet, 299 \
                     for Inception v3. Unset: the model config file's, else 224",
                )
                .minimum(8)
                .maximum(4096)
                .default_value(DEFAULT_INPUT_SIZE)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("engine", Engine::default())
                .nick("Quantized engine")
                .blurb(
                    "libtorch's quantized engine, set before the model is loaded. It is \
                     global to the process: the last torchclassify to load a model sets it \
                     for every model in the process. auto: the fastest for the platform, x86 \
                     on x86-64 and qnnpack on ARM. One this libtorch cannot run is a warning, \
                     and the engine libtorch has is kept (stats say which ran)",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("num-threads")
                .nick("Threads")
                .blurb(
                    "libtorch intra-op threads (0 = libtorch's default, one per core). \
                     Global to the process, like engine",
                )
                .maximum(256)
                .default_value(DEFAULT_NUM_THREADS)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("post-messages")
                .nick("Post messages")
                .blurb("Post a `torchclassify` element message for every inference")
                .default_value(DEFAULT_POST_MESSAGES)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("inference-interval")
                .nick("Inference interval")
                .blurb(
                    "Run the model on every Nth frame (counted from start or flush); the \
                     frames between carry the newest result in their meta (its `frame` and \
                     `timestamp` say which frame it came from) and post no message",
                )
                .minimum(1)
                .maximum(u32::MAX)
                .default_value(DEFAULT_INFERENCE_INTERVAL)
                .mutable_playing()
                .build(),
            glib::ParamSpecBoolean::builder("async")
                .nick("Asynchronous inference")
                .blurb(
                    "Run the model on its own thread without holding up the video: each frame \
                     due for inference is converted and handed over, replacing one still \
                     waiting (newest wins, nothing queues), and buffers carry the newest \
                     finished result (none before the first one). Adds no latency. Off: \
                     every frame waits for its own result, the LATENCY query includes the \
                     model's time, and frames already late by downstream QoS skip inference \
                     (qos=true, the default); on a non-live stream the next frame can be \
                     prepared while the model works, each frame held until the next arrives, \
                     when that measures faster (stats: overlap)",
                )
                .default_value(DEFAULT_ASYNC)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("stats-interval")
                .nick("Stats interval")
                .blurb(
                    "Post a `torchclassify-stats` element message (the `stats` fields, with \
                     fps over the interval) every this many milliseconds, and one at EOS; \
                     0 = never",
                )
                .default_value(DEFAULT_STATS_INTERVAL)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("results-file")
                .nick("Results file")
                .blurb(
                    "Write every result as a JSON line (pts, frame, label, class-id, \
                     confidence, top-k [{label, id, confidence}], inference-ms) to this \
                     file, created when the element starts; `-` = standard output. Flushed \
                     at EOS and when the element stops",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("model-config")
                .nick("Model config")
                .blurb(
                    "JSON file describing the model: keys labels (path relative to the file, \
                     or a list of strings), input-size, mean, std, pixel-scale, color-order, \
                     resize, crop-fraction, output, threshold, as these properties. \
                     Properties set on the element win over it. Unset: the model's path with \
                     extension .json (my.pt -> my.json) when that file exists \
                     (tools/export_model.py writes one beside every model)",
                )
                .mutable_ready()
                .build(),
            gst::ParamSpecArray::builder("mean")
                .nick("Mean")
                .blurb(
                    "Per-channel mean, in the model's channel order (color-order): the model's \
                     input is (pixel x pixel-scale - mean) / std, pixel in 0..255. Three \
                     numbers, e.g. mean=\"<0.0,0.0,0.0>\". Default the ImageNet mean \
                     <0.485,0.456,0.406>",
                )
                .element_spec(&glib::ParamSpecDouble::builder("mean-value").build())
                .mutable_ready()
                .build(),
            gst::ParamSpecArray::builder("std")
                .nick("Standard deviation")
                .blurb(
                    "Per-channel standard deviation, in the model's channel order (see mean); \
                     three non-zero numbers. Default the ImageNet std <0.229,0.224,0.225>",
                )
                .element_spec(&glib::ParamSpecDouble::builder("std-value").build())
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("pixel-scale")
                .nick("Pixel scale")
                .blurb(
                    "Factor from a 0..255 pixel to the model's scale before mean and std: \
                     1/255 for models trained on 0..1 images (torchvision), 1 for 0..255 \
                     (a 0..255 model: pixel-scale=1 mean=\"<0.0,0.0,0.0>\" \
                     std=\"<1.0,1.0,1.0>\")",
                )
                .minimum(f64::MIN_POSITIVE)
                .maximum(f64::MAX)
                .default_value(DEFAULT_PIXEL_SCALE)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("color-order", ColorOrder::default())
                .nick("Colour order")
                .blurb("Channel order of the model's input planes")
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("resize", ResizeMode::default())
                .nick("Resize")
                .blurb("How a frame is fitted into the model's square input")
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("crop-fraction")
                .nick("Crop fraction")
                .blurb(
                    "With resize=center-crop: the part of the largest centred square that is \
                     used (torchvision's evaluation: 224/256 = 0.875)",
                )
                .minimum(0.01)
                .maximum(1.0)
                .default_value(DEFAULT_CROP_FRACTION)
                .mutable_ready()
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
            glib::ParamSpecString::builder("model-instance-id")
                .nick("Model instance id")
                .blurb(
                    "Elements in one process with the same id share one model: one load, one \
                     model thread, one copy of the weights; the first to start loads it, the \
                     last to stop frees it. Their model, model-config, labels, engine, \
                     num-threads, input-size, preprocessing (mean, std, pixel-scale, \
                     color-order, resize, crop-fraction), batch-size and batch-timeout must \
                     agree (else an error naming both elements and the property). A hot swap \
                     (model or labels) on one swaps it for all. Unset: a model of its own",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("batch-size")
                .nick("Batch size")
                .blurb(
                    "With model-instance-id: at most this many frames (of the elements sharing \
                     the model) go to the model in one forward; each frame gets its own result. \
                     A model that only takes one image per forward runs one forward per frame. \
                     Without model-instance-id an element has one frame at a time: no effect",
                )
                .minimum(1)
                .maximum(1024)
                .default_value(DEFAULT_BATCH_SIZE)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt64::builder("batch-timeout")
                .nick("Batch timeout")
                .blurb(
                    "With batch-size > 1: how long (nanoseconds) the model waits for frames of \
                     the other elements sharing it to fill a batch; 0 takes what is queued",
                )
                .maximum(gst::ClockTime::SECOND.nseconds())
                .default_value(DEFAULT_BATCH_TIMEOUT)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                .nick("Statistics")
                .blurb(
                    "torchclassify-stats: frames, inferences, skipped (late by QoS), \
                     replaced (async frames a newer one replaced), below-threshold, regions \
                     (classified in roi-list mode), mean-batch-size (images per forward this \
                     element's frames took part in, counting those of the elements sharing the \
                     model), mean-inference-ms (a batch's time shared by its images), \
                     max-inference-ms, frame-fps and inference-fps since the first frame \
                     (until EOS, after it), engine, overlap (pipelined, serial, measuring or \
                     none) and, once measured, overlap-pipelined-ms and overlap-serial-ms",
                )
                .read_only()
                .build(),
        ]
    });
    PROPERTIES.as_ref()
}
