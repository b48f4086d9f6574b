//! `torchclassify`'s properties: the settings they hold, their defaults and their param specs.

use crate::inference::Engine;
use gst::glib;
use gst::prelude::*;
use std::sync::LazyLock;

/// The model's input size (MobileNetV2 and most ImageNet classifiers take 224x224).
pub const DEFAULT_INPUT_SIZE: u32 = 224;
pub const DEFAULT_TOP_K: u32 = 5;
pub const DEFAULT_NUM_THREADS: u32 = 0;
pub const DEFAULT_POST_MESSAGES: bool = true;
pub const DEFAULT_INFERENCE_INTERVAL: u32 = 1;
pub const DEFAULT_ASYNC: bool = false;
pub const DEFAULT_STATS_INTERVAL: u32 = 0;

/// Where `make model` writes the model: `$XDG_DATA_HOME/gst-torch/` (default
/// `~/.local/share/gst-torch/`).
static DEFAULT_MODEL: LazyLock<String> = LazyLock::new(|| {
    glib::user_data_dir()
        .join("gst-torch")
        .join("mobilenet_v2_quantized.pt")
        .to_string_lossy()
        .into_owned()
});

#[derive(Debug, Clone)]
pub struct Settings {
    pub model: String,
    pub labels: Option<String>,
    pub top_k: u32,
    /// Side of the square image the model takes.
    pub input_size: u32,
    pub engine: Engine,
    pub num_threads: u32,
    pub post_messages: bool,
    pub inference_interval: u32,
    pub async_: bool,
    /// Milliseconds between `torchclassify-stats` messages; 0 = none.
    pub stats_interval: u32,
    /// JSON lines of results go here (`-` = stdout).
    pub results_file: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL.clone(),
            labels: None,
            top_k: DEFAULT_TOP_K,
            input_size: DEFAULT_INPUT_SIZE,
            engine: Engine::default(),
            num_threads: DEFAULT_NUM_THREADS,
            post_messages: DEFAULT_POST_MESSAGES,
            inference_interval: DEFAULT_INFERENCE_INTERVAL,
            async_: DEFAULT_ASYNC,
            stats_interval: DEFAULT_STATS_INTERVAL,
            results_file: None,
        }
    }
}

impl Settings {
    /// Stores a property value (GObject has checked its type and range).
    pub fn set(&mut self, value: &glib::Value, pspec: &glib::ParamSpec) {
        let settings = self;
        match pspec.name() {
            "model" => {
                settings.model = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "labels" => {
                settings.labels = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "top-k" => settings.top_k = value.get().expect("type checked upstream"),
            "input-size" => settings.input_size = value.get().expect("type checked upstream"),
            "engine" => settings.engine = value.get().expect("type checked upstream"),
            "num-threads" => settings.num_threads = value.get().expect("type checked upstream"),
            "post-messages" => settings.post_messages = value.get().expect("type checked upstream"),
            "inference-interval" => {
                settings.inference_interval = value.get().expect("type checked upstream")
            }
            "async" => settings.async_ = value.get().expect("type checked upstream"),
            "stats-interval" => {
                settings.stats_interval = value.get().expect("type checked upstream")
            }
            "results-file" => {
                settings.results_file = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            _ => unimplemented!(),
        }
    }

    /// A property's value (all but `stats`, which the element computes).
    pub fn get(&self, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self;
        match pspec.name() {
            "model" => settings.model.to_value(),
            "labels" => settings.labels.to_value(),
            "top-k" => settings.top_k.to_value(),
            "input-size" => settings.input_size.to_value(),
            "engine" => settings.engine.to_value(),
            "num-threads" => settings.num_threads.to_value(),
            "post-messages" => settings.post_messages.to_value(),
            "inference-interval" => settings.inference_interval.to_value(),
            "async" => settings.async_.to_value(),
            "stats-interval" => settings.stats_interval.to_value(),
            "results-file" => settings.results_file.to_value(),
            _ => unimplemented!(),
        }
    }
}

/// The element's properties (what `gst-inspect-1.0 torchclassify` shows).
pub fn properties() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        vec![
            glib::ParamSpecString::builder("model")
                .nick("Model")
                .blurb(
                    "Path of a TorchScript image classifier taking a 1x3xSxS float RGB \
                     input (S = input-size) normalised with the ImageNet mean/std and \
                     returning [1, N] class scores (logits). Default: the int8 MobileNetV2 \
                     that `make model` exports. Loaded when the element starts; set while \
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
                     its line count must equal the model's N. Unset: the 1000 ImageNet \
                     labels built into the plugin. Can be changed while running, like model \
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
                    "Side of the square image the model takes: each frame is resized to \
                     input-size x input-size. 224 for MobileNet, ResNet, ShuffleNet and \
                     GoogLeNet, 299 for Inception v3",
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
            glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                .nick("Statistics")
                .blurb(
                    "torchclassify-stats: frames, inferences, skipped (late by QoS), \
                     replaced (async frames a newer one replaced), mean-inference-ms, \
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
