//! `torchclassify`'s properties: the settings they hold, their defaults and their param specs.

use crate::inference::Engine;
use crate::modelconfig::{self, LabelsSource, ModelConfigFile};
use crate::postprocess::Activation;
use crate::preprocess::{ColorOrder, DEFAULT_CROP_FRACTION, InputSpec, Normalization, ResizeMode};
use gst::glib;
use gst::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The model's input size (MobileNetV2 and most ImageNet classifiers take 224x224).
pub const DEFAULT_INPUT_SIZE: u32 = 224;
pub const DEFAULT_TOP_K: u32 = 5;
pub const DEFAULT_NUM_THREADS: u32 = 0;
pub const DEFAULT_POST_MESSAGES: bool = true;
pub const DEFAULT_INFERENCE_INTERVAL: u32 = 1;
pub const DEFAULT_ASYNC: bool = false;
pub const DEFAULT_STATS_INTERVAL: u32 = 0;
pub const DEFAULT_PIXEL_SCALE: f64 = 1.0 / 255.0;
pub const DEFAULT_THRESHOLD: f64 = 0.0;
pub const DEFAULT_MIN_ROI_SIZE: u32 = 0;
pub const DEFAULT_MAX_BATCH: u32 = 16;
pub const DEFAULT_BATCH_SIZE: u32 = 1;
pub const DEFAULT_BATCH_TIMEOUT: u64 = 0;

/// What `torchclassify` classifies (`inference-region`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchInferenceRegion")]
pub enum InferenceRegion {
    #[default]
    #[enum_value(name = "Full frame: the whole frame", nick = "full-frame")]
    FullFrame = 0,
    #[enum_value(
        name = "ROI list: every region of interest (GstVideoRegionOfInterestMeta) on the frame",
        nick = "roi-list"
    )]
    RoiList = 1,
}

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
    /// The model config file; None: the model's path with `.json`, if that exists.
    pub model_config: Option<String>,
    /// As set: checked (3 finite numbers) when the model is loaded.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub pixel_scale: f64,
    pub color_order: ColorOrder,
    pub resize: ResizeMode,
    pub crop_fraction: f64,
    pub output: Activation,
    pub threshold: f64,
    pub inference_region: InferenceRegion,
    /// ROI types to classify (empty: all).
    pub object_class: Vec<String>,
    pub min_roi_size: u32,
    pub max_batch: u32,
    /// Elements with the same id share one model (None: a model of its own).
    pub model_instance_id: Option<String>,
    /// Frames of the elements sharing the model per forward, and how long (ns) to wait for them.
    pub batch_size: u32,
    pub batch_timeout: u64,
    /// The properties the application set: they win over the model config file.
    pub explicit: BTreeSet<String>,
}

/// Where the labels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelsChoice {
    /// The 1000 ImageNet labels built into the plugin.
    BuiltIn,
    /// A file, and what named it (for errors).
    File(PathBuf, String),
    /// A list in the model config file (named).
    List(Vec<String>, PathBuf),
}

/// What the model takes and how its outputs read: the properties set, else the model config
/// file, else the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub input: InputSpec,
    pub labels: LabelsChoice,
    pub output: Activation,
    pub threshold: f64,
    /// The config file read, if any.
    pub config: Option<PathBuf>,
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
            model_config: None,
            mean: Normalization::default().mean.to_vec(),
            std: Normalization::default().std.to_vec(),
            pixel_scale: DEFAULT_PIXEL_SCALE,
            color_order: ColorOrder::default(),
            resize: ResizeMode::default(),
            crop_fraction: DEFAULT_CROP_FRACTION,
            output: Activation::default(),
            threshold: DEFAULT_THRESHOLD,
            inference_region: InferenceRegion::default(),
            object_class: Vec::new(),
            min_roi_size: DEFAULT_MIN_ROI_SIZE,
            max_batch: DEFAULT_MAX_BATCH,
            model_instance_id: None,
            batch_size: DEFAULT_BATCH_SIZE,
            batch_timeout: DEFAULT_BATCH_TIMEOUT,
            explicit: BTreeSet::new(),
        }
    }
}

/// A model config file's value for a property, unless the property was set.
fn pick<T: Copy>(explicit: bool, property: T, file: Option<T>) -> T {
    match file {
        Some(v) if !explicit => v,
        _ => property,
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
            "model-config" => {
                settings.model_config = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "mean" | "std" => {
                let array = value.get::<gst::Array>().expect("type checked upstream");
                // Elements that are not numbers become NaN: an error at load, naming them.
                let numbers = array
                    .iter()
                    .map(|v| v.get::<f64>().unwrap_or(f64::NAN))
                    .collect();
                if pspec.name() == "mean" {
                    settings.mean = numbers;
                } else {
                    settings.std = numbers;
                }
            }
            "pixel-scale" => settings.pixel_scale = value.get().expect("type checked upstream"),
            "color-order" => settings.color_order = value.get().expect("type checked upstream"),
            "resize" => settings.resize = value.get().expect("type checked upstream"),
            "crop-fraction" => settings.crop_fraction = value.get().expect("type checked upstream"),
            "output" => settings.output = value.get().expect("type checked upstream"),
            "threshold" => settings.threshold = value.get().expect("type checked upstream"),
            "inference-region" => {
                settings.inference_region = value.get().expect("type checked upstream")
            }
            "object-class" => {
                settings.object_class = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "min-roi-size" => settings.min_roi_size = value.get().expect("type checked upstream"),
            "max-batch" => settings.max_batch = value.get().expect("type checked upstream"),
            "model-instance-id" => {
                settings.model_instance_id = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "batch-size" => settings.batch_size = value.get().expect("type checked upstream"),
            "batch-timeout" => settings.batch_timeout = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
        settings.explicit.insert(pspec.name().to_string());
    }

    /// The properties elements sharing a model (`model-instance-id`) must agree on, with their
    /// values: what the model computes (model, labels, engine, input and preprocessing) and how
    /// the shared model batches. [`Settings::adopt_shared`] copies the same fields.
    pub fn shared_key(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model", self.model.clone()),
            ("model-config", format!("{:?}", self.model_config)),
            ("labels", format!("{:?}", self.labels)),
            ("engine", format!("{:?}", self.engine)),
            ("num-threads", self.num_threads.to_string()),
            ("input-size", self.input_size.to_string()),
            ("mean", format!("{:?}", self.mean)),
            ("std", format!("{:?}", self.std)),
            ("pixel-scale", self.pixel_scale.to_string()),
            ("color-order", format!("{:?}", self.color_order)),
            ("resize", format!("{:?}", self.resize)),
            ("crop-fraction", self.crop_fraction.to_string()),
            ("batch-size", self.batch_size.to_string()),
            ("batch-timeout", self.batch_timeout.to_string()),
        ]
    }

    /// Takes the [`Settings::shared_key`] properties from `other` (an element sharing the model
    /// hot-swapped it); returns the names of those that changed.
    pub fn adopt_shared(&mut self, other: &Settings) -> Vec<&'static str> {
        let before = self.shared_key();
        self.model.clone_from(&other.model);
        self.model_config.clone_from(&other.model_config);
        self.labels.clone_from(&other.labels);
        self.engine = other.engine;
        self.num_threads = other.num_threads;
        self.input_size = other.input_size;
        self.mean.clone_from(&other.mean);
        self.std.clone_from(&other.std);
        self.pixel_scale = other.pixel_scale;
        self.color_order = other.color_order;
        self.resize = other.resize;
        self.crop_fraction = other.crop_fraction;
        self.batch_size = other.batch_size;
        self.batch_timeout = other.batch_timeout;
        let changed: Vec<_> = before
            .into_iter()
            .zip(self.shared_key())
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0)
            .collect();
        for name in &changed {
            // As set by the application (on the other element): they keep winning over the file.
            if other.is_set(name) {
                self.explicit.insert(name.to_string());
            }
        }
        changed
    }

    fn is_set(&self, property: &str) -> bool {
        self.explicit.contains(property)
    }

    /// The model config file to read: `model-config`, else the model's path with `.json` when
    /// that file exists.
    pub fn config_path(&self) -> Option<PathBuf> {
        match &self.model_config {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(modelconfig::beside(Path::new(&self.model))).filter(|p| p.is_file()),
        }
    }

    /// What the model takes and how to read its outputs: the properties set, else the model
    /// config file's values, else the defaults. Errors name the property or the file and key.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let path = self.config_path();
        let file = match &path {
            Some(p) => modelconfig::load(p).map_err(|e| {
                if self.model_config.is_some() {
                    format!("{e} (property 'model-config')")
                } else {
                    e
                }
            })?,
            None => ModelConfigFile::default(),
        };
        let property = |name: &str, e: String| format!("Property '{name}': {e}");
        let mean = modelconfig::check_mean(&self.mean).map_err(|e| property("mean", e))?;
        let std = modelconfig::check_std(&self.std).map_err(|e| property("std", e))?;
        let pixel_scale = modelconfig::check_pixel_scale(self.pixel_scale)
            .map_err(|e| property("pixel-scale", e))?;
        let crop_fraction = modelconfig::check_crop_fraction(self.crop_fraction)
            .map_err(|e| property("crop-fraction", e))?;
        let threshold =
            modelconfig::check_threshold(self.threshold).map_err(|e| property("threshold", e))?;
        let size = pick(self.is_set("input-size"), self.input_size, file.input_size) as usize;
        let input = InputSpec {
            width: size,
            height: size,
            normalization: Normalization {
                mean: pick(self.is_set("mean"), mean, file.mean),
                std: pick(self.is_set("std"), std, file.std),
                pixel_scale: pick(self.is_set("pixel-scale"), pixel_scale, file.pixel_scale),
            },
            color_order: pick(
                self.is_set("color-order"),
                self.color_order,
                file.color_order,
            ),
            resize: pick(self.is_set("resize"), self.resize, file.resize),
            crop_fraction: pick(
                self.is_set("crop-fraction"),
                crop_fraction,
                file.crop_fraction,
            ),
        };
        let labels = match (&self.labels, file.labels) {
            (Some(path), _) => LabelsChoice::File(path.into(), "property 'labels'".into()),
            (None, Some(LabelsSource::File(p))) => LabelsChoice::File(
                p,
                format!("key 'labels' of model config '{}'", file.path.display()),
            ),
            (None, Some(LabelsSource::List(list))) => LabelsChoice::List(list, file.path.clone()),
            (None, None) => LabelsChoice::BuiltIn,
        };
        Ok(Resolved {
            input,
            labels,
            output: pick(self.is_set("output"), self.output, file.output),
            threshold: pick(self.is_set("threshold"), threshold, file.threshold),
            config: path,
        })
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
            "model-config" => settings.model_config.to_value(),
            "mean" => gst::Array::new(settings.mean.iter().copied()).to_value(),
            "std" => gst::Array::new(settings.std.iter().copied()).to_value(),
            "pixel-scale" => settings.pixel_scale.to_value(),
            "color-order" => settings.color_order.to_value(),
            "resize" => settings.resize.to_value(),
            "crop-fraction" => settings.crop_fraction.to_value(),
            "output" => settings.output.to_value(),
            "threshold" => settings.threshold.to_value(),
            "inference-region" => settings.inference_region.to_value(),
            "object-class" => settings.object_class.join(",").to_value(),
            "min-roi-size" => settings.min_roi_size.to_value(),
            "max-batch" => settings.max_batch.to_value(),
            "model-instance-id" => settings.model_instance_id.to_value(),
            "batch-size" => settings.batch_size.to_value(),
            "batch-timeout" => settings.batch_timeout.to_value(),
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
