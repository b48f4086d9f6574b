//! The properties every inference element has (the model, how frames are fed to it, how
//! frames reach it and results leave): their param specs, and GObject values to and from the
//! core's typed [`Settings`]. Each element adds its own.

use crate::enums::{ColorOrder, Engine, ResizeMode};
use gst::glib;
use gst::prelude::*;
use torchcore::config::INPUT_SIZE_RANGE;
use torchcore::preprocess::DEFAULT_CROP_FRACTION;
use torchcore::settings::*;

/// What an element says in the common properties' blurbs.
pub struct Texts {
    /// The element's name.
    pub name: &'static str,
    pub model: &'static str,
    pub labels: &'static str,
    pub input_size: &'static str,
    pub results_file: &'static str,
    pub model_config: &'static str,
    pub stats: &'static str,
}

/// A string property's value; empty counts as unset.
pub fn string(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// A numeric or enum property's value (GObject checked its type before the call).
pub fn get<'a, T: glib::value::FromValue<'a> + Default>(value: &'a glib::Value) -> T {
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

/// Stores a common property's value in `s`; false if `pspec` is not one (the element's own).
pub fn set<T>(s: &mut Settings<T>, value: &glib::Value, pspec: &glib::ParamSpec) -> bool {
    let shared = &mut s.shared;
    match pspec.name() {
        "model" => shared.model = string(value).unwrap_or_default(),
        "labels" => shared.labels = string(value),
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
        "model-instance-id" => s.model_instance_id = string(value),
        "batch-size" => shared.batch_size = get(value),
        "batch-timeout" => shared.batch_timeout = get(value),
        _ => return false,
    }
    true
}

/// A common property's value; None if `pspec` is not one (`stats` included: the element
/// computes it).
pub fn value<T>(s: &Settings<T>, pspec: &glib::ParamSpec) -> Option<glib::Value> {
    let shared = &s.shared;
    Some(match pspec.name() {
        "model" => shared.model.to_value(),
        "labels" => shared.labels.to_value(),
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
        "model-instance-id" => s.model_instance_id.to_value(),
        "batch-size" => shared.batch_size.to_value(),
        "batch-timeout" => shared.batch_timeout.to_value(),
        _ => return None,
    })
}

/// The common properties, with `texts` and the model settings' `defaults` (what
/// `gst-inspect-1.0` shows), then the element's own (`own`), before `stats`.
pub fn properties(
    texts: &Texts,
    defaults: &SharedSettings,
    own: Vec<glib::ParamSpec>,
) -> Vec<glib::ParamSpec> {
    let name = texts.name;
    let mut specs = vec![
        glib::ParamSpecString::builder("model")
            .nick("Model")
            .blurb(texts.model)
            .default_value(Some(defaults.model.as_str()).filter(|m| !m.is_empty()))
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("labels")
            .nick("Labels")
            .blurb(texts.labels)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("input-size")
            .nick("Input size")
            .blurb(texts.input_size)
            .minimum(*INPUT_SIZE_RANGE.start())
            .maximum(*INPUT_SIZE_RANGE.end())
            .default_value(*defaults.input_size.get())
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("engine", Engine::default())
            .nick("Quantized engine")
            .blurb(
                "libtorch's quantized engine, set before the model is loaded. It is \
                 global to the process: the last element to load a model sets it \
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
            .blurb(&format!(
                "Post a `{name}` element message for every inference"
            ))
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
            .blurb(&format!(
                "Post a `{name}-stats` element message (the `stats` fields, with fps over \
                 the interval) every this many milliseconds, and one at EOS; 0 = never"
            ))
            .default_value(DEFAULT_STATS_INTERVAL)
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("results-file")
            .nick("Results file")
            .blurb(texts.results_file)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("model-config")
            .nick("Model config")
            .blurb(texts.model_config)
            .mutable_ready()
            .build(),
        gst::ParamSpecArray::builder("mean")
            .nick("Mean")
            .blurb(&format!(
                "Per-channel mean, in the model's channel order (color-order): the model's \
                 input is (pixel x pixel-scale - mean) / std, pixel in 0..255. Three \
                 numbers, e.g. mean=\"<0.0,0.0,0.0>\". Default {}",
                defaults.mean.get().shown()
            ))
            .element_spec(&glib::ParamSpecDouble::builder("mean-value").build())
            .mutable_ready()
            .build(),
        gst::ParamSpecArray::builder("std")
            .nick("Standard deviation")
            .blurb(&format!(
                "Per-channel standard deviation, in the model's channel order (see mean); \
                 three non-zero numbers. Default {}",
                defaults.std.get().shown()
            ))
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
            .default_value(*defaults.pixel_scale.get())
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(
            "color-order",
            ColorOrder::from(*defaults.color_order.get()),
        )
        .nick("Colour order")
        .blurb("Channel order of the model's input planes")
        .mutable_ready()
        .build(),
        glib::ParamSpecEnum::builder_with_default(
            "resize",
            ResizeMode::from(*defaults.resize.get()),
        )
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
        glib::ParamSpecString::builder("model-instance-id")
            .nick("Model instance id")
            .blurb(
                "Elements in one process with the same id share one model: one load, one \
                 model thread, one copy of the weights; the first to start loads it, the \
                 last to stop frees it. Their model, model-config, labels, engine, \
                 num-threads, input-size, preprocessing (mean, std, pixel-scale, \
                 color-order, resize, crop-fraction, pad-color), batch-size and batch-timeout must \
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
    ];
    specs.extend(own);
    specs.push(
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb(texts.stats)
            .read_only()
            .build(),
    );
    specs
}
