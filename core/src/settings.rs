//! An element's settings as typed values: the properties' values, which of them the application
//! set (they win over the model config file), what elements sharing a model must agree on, and
//! the resolution of the model's input and output against the model config file.

use crate::classify::Activation;
use crate::config::{self, LabelsSource, ModelConfigFile};
use crate::detect::OutputFormat;
use crate::preprocess::{ColorOrder, DEFAULT_CROP_FRACTION, InputSpec, Normalization, ResizeMode};
use std::path::{Path, PathBuf};

/// libtorch's quantized engine (`engine`).
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy)]
pub enum Engine {
    /// The engine the model was calibrated for (as `tools/export_model.py` records it), else the
    /// platform's fastest (x86 on x86-64, qnnpack on ARM).
    #[default]
    Auto,
    /// QNNPACK (ARM, mobile; slow on x86-64).
    Qnnpack,
    /// FBGEMM (x86-64).
    Fbgemm,
    /// x86: FBGEMM and oneDNN kernels, libtorch's x86-64 default.
    X86,
}

/// What `torchclassify` classifies (`inference-region`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InferenceRegion {
    /// The whole frame.
    #[default]
    FullFrame,
    /// Every region of interest on the frame.
    RoiList,
}

crate::names! {
    Engine { Auto = "auto", Qnnpack = "qnnpack", Fbgemm = "fbgemm", X86 = "x86" }
    InferenceRegion { FullFrame = "full-frame", RoiList = "roi-list" }
}

/// A property whose value can also come from the model config file: its value, and whether the
/// application set it (then it wins over the file). Two are equal when their values are: whether
/// a value was set does not change what the element does with it when no file says otherwise.
#[derive(Debug, Clone)]
pub struct Prop<T> {
    value: T,
    set: bool,
}

impl<T> Prop<T> {
    /// A property at its default value, not set.
    pub const fn unset(value: T) -> Self {
        Prop { value, set: false }
    }

    /// The application sets it.
    pub fn set(&mut self, value: T) {
        self.value = value;
        self.set = true;
    }

    pub fn get(&self) -> &T {
        &self.value
    }

    pub fn is_set(&self) -> bool {
        self.set
    }
}

impl<T: Clone> Prop<T> {
    /// The value, if the application set it.
    pub fn if_set(&self) -> Option<T> {
        self.set.then(|| self.value.clone())
    }

    /// The value to use: the set value, else the file's, else the default.
    pub fn or_file(&self, file: Option<T>) -> T {
        match file {
            Some(v) if !self.set => v,
            _ => self.value.clone(),
        }
    }
}

impl<T: PartialEq> PartialEq for Prop<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// A setting's value as a message shows it.
pub trait Shown {
    fn shown(&self) -> String;
}

impl Shown for String {
    fn shown(&self) -> String {
        self.clone()
    }
}

impl Shown for Option<String> {
    fn shown(&self) -> String {
        self.clone().unwrap_or_else(|| "(unset)".into())
    }
}

impl Shown for Option<u32> {
    fn shown(&self) -> String {
        self.map_or_else(|| "(the mean colour)".into(), |c| format!("0x{c:08x}"))
    }
}

impl Shown for Vec<f64> {
    /// As GStreamer writes an array: `<0.485,0.456,0.406>`.
    fn shown(&self) -> String {
        let items: Vec<String> = self.iter().map(f64::to_string).collect();
        format!("<{}>", items.join(","))
    }
}

macro_rules! shown_display {
    ($($ty:ty),*) => {$(
        impl Shown for $ty {
            fn shown(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
shown_display!(u32, u64, f64, Engine, ColorOrder, ResizeMode);

impl<T: Shown> Shown for Prop<T> {
    fn shown(&self) -> String {
        self.value.shown()
    }
}

/// The settings elements sharing a model (`model-instance-id`) must agree on, each with its
/// property's name, in one list: the struct, its comparison and its names come from it.
macro_rules! shared_settings {
    ($($(#[$doc:meta])* $field:ident: $ty:ty = $name:literal,)*) => {
        /// What a model computes (model, labels, engine, input and preprocessing) and how a
        /// shared model batches: what every element sharing one must agree on.
        #[derive(Debug, Clone, PartialEq)]
        pub struct SharedSettings {
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl SharedSettings {
            /// The properties, in the order [`SharedSettings::differences`] lists them.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The properties whose values differ: name, this value, the other's.
            pub fn differences(&self, other: &SharedSettings) -> Vec<crate::sharing::Difference> {
                let mut found = Vec::new();
                $(
                    if self.$field != other.$field {
                        found.push(($name, self.$field.shown(), other.$field.shown()));
                    }
                )*
                found
            }
        }
    };
}

shared_settings! {
    /// The TorchScript file.
    model: String = "model",
    /// The model config file; None: the model's path with `.json`, if that exists.
    model_config: Option<String> = "model-config",
    /// The labels file; None: the config file's, else the built-in ImageNet labels.
    labels: Option<String> = "labels",
    engine: Engine = "engine",
    /// libtorch's intra-op threads; 0 keeps libtorch's default.
    num_threads: u32 = "num-threads",
    /// Side of the square image the model takes.
    input_size: Prop<u32> = "input-size",
    /// As set: checked (3 finite numbers) when the model is loaded.
    mean: Prop<Vec<f64>> = "mean",
    std: Prop<Vec<f64>> = "std",
    pixel_scale: Prop<f64> = "pixel-scale",
    color_order: Prop<ColorOrder> = "color-order",
    resize: Prop<ResizeMode> = "resize",
    crop_fraction: Prop<f64> = "crop-fraction",
    /// With letterbox: the bars' colour as 0xAARRGGBB (alpha ignored); None: the mean colour.
    pad_color: Option<u32> = "pad-color",
    /// Frames of the elements sharing the model per forward, and how long (ns) to wait for them.
    batch_size: u32 = "batch-size",
    batch_timeout: u64 = "batch-timeout",
}

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
pub const DEFAULT_RECLASSIFY_INTERVAL: u32 = 1;

/// Where `make model` writes the default model: `$XDG_DATA_HOME/gst-torch/` (default
/// `~/.local/share/gst-torch/`).
pub fn default_model() -> String {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    data.join("gst-torch")
        .join("mobilenet_v2_quantized.pt")
        .to_string_lossy()
        .into_owned()
}

impl Default for SharedSettings {
    fn default() -> Self {
        SharedSettings {
            model: default_model(),
            model_config: None,
            labels: None,
            engine: Engine::default(),
            num_threads: DEFAULT_NUM_THREADS,
            input_size: Prop::unset(DEFAULT_INPUT_SIZE),
            mean: Prop::unset(Normalization::default().mean.to_vec()),
            std: Prop::unset(Normalization::default().std.to_vec()),
            pixel_scale: Prop::unset(DEFAULT_PIXEL_SCALE),
            color_order: Prop::unset(ColorOrder::default()),
            resize: Prop::unset(ResizeMode::default()),
            crop_fraction: Prop::unset(DEFAULT_CROP_FRACTION),
            pad_color: None,
            batch_size: DEFAULT_BATCH_SIZE,
            batch_timeout: DEFAULT_BATCH_TIMEOUT,
        }
    }
}

/// An inference element's settings: the model and how it is fed (shared by the elements
/// sharing it), how frames reach it, how results leave, and `T`, the element's own.
#[derive(Debug, Clone)]
pub struct Settings<T> {
    pub shared: SharedSettings,
    /// Elements with the same id share one model (None: a model of its own).
    pub model_instance_id: Option<String>,
    pub post_messages: bool,
    pub inference_interval: u32,
    pub async_: bool,
    /// Milliseconds between stats messages; 0 = none.
    pub stats_interval: u32,
    /// JSON lines of results go here (`-` = stdout).
    pub results_file: Option<String>,
    pub task: T,
}

/// An element's own settings, and the defaults of the model settings for its kind of model.
pub trait TaskSettings: Clone + Default + std::fmt::Debug + Send + Sync + 'static {
    /// The model settings' defaults.
    fn shared_defaults() -> SharedSettings {
        SharedSettings::default()
    }

    /// The model config file's keys that are another kind of element's (`key`, whose): the
    /// element refuses a file that sets them.
    const FOREIGN_KEYS: &'static [(&'static str, &'static str)];
}

impl<T: TaskSettings> Default for Settings<T> {
    fn default() -> Self {
        Settings {
            shared: T::shared_defaults(),
            model_instance_id: None,
            post_messages: DEFAULT_POST_MESSAGES,
            inference_interval: DEFAULT_INFERENCE_INTERVAL,
            async_: DEFAULT_ASYNC,
            stats_interval: DEFAULT_STATS_INTERVAL,
            results_file: None,
            task: T::default(),
        }
    }
}

/// `torchclassify`'s own settings.
#[derive(Debug, Clone)]
pub struct ClassifySettings {
    pub output: Prop<Activation>,
    pub threshold: Prop<f64>,
    pub top_k: u32,
    pub inference_region: InferenceRegion,
    /// ROI types to classify (empty: all).
    pub object_class: Vec<String>,
    pub min_roi_size: u32,
    pub max_batch: u32,
    /// roi-list: a tracked region is classified when first seen and again every this many
    /// frames; between, it carries its newest result (0 or 1: every frame).
    pub reclassify_interval: u32,
}

impl Default for ClassifySettings {
    fn default() -> Self {
        ClassifySettings {
            output: Prop::unset(Activation::default()),
            threshold: Prop::unset(DEFAULT_THRESHOLD),
            top_k: DEFAULT_TOP_K,
            inference_region: InferenceRegion::default(),
            object_class: Vec::new(),
            min_roi_size: DEFAULT_MIN_ROI_SIZE,
            max_batch: DEFAULT_MAX_BATCH,
            reclassify_interval: DEFAULT_RECLASSIFY_INTERVAL,
        }
    }
}

impl TaskSettings for ClassifySettings {
    const FOREIGN_KEYS: &'static [(&'static str, &'static str)] = &[
        ("output-format", "torchdetect"),
        ("iou-threshold", "torchdetect"),
        ("max-detections", "torchdetect"),
    ];
}

/// How a classifier's outputs read: the properties set, else the model config file's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifyReading {
    pub output: Activation,
    pub threshold: f64,
}

impl ClassifySettings {
    /// The activation and threshold: the properties set, else the file's, else the defaults.
    pub fn resolve(&self, file: &ModelConfigFile) -> Result<ClassifyReading, String> {
        config::check_threshold(*self.threshold.get())
            .map_err(|e| format!("Property 'threshold': {e}"))?;
        Ok(ClassifyReading {
            output: self.output.or_file(file.output),
            threshold: self.threshold.or_file(file.threshold),
        })
    }
}

/// Detectors' defaults: 640x640 letterboxed input of 0..1 RGB, padded with 114 grey
/// (ultralytics' YOLO models).
pub const DETECT_INPUT_SIZE: u32 = 640;
pub const DETECT_PAD_COLOR: u32 = 0xff72_7272;
pub const DETECT_THRESHOLD: f64 = crate::detect::DEFAULT_THRESHOLD as f64;
pub const DETECT_IOU_THRESHOLD: f64 = crate::detect::DEFAULT_IOU_THRESHOLD as f64;
pub const DETECT_MAX_DETECTIONS: u32 = crate::detect::DEFAULT_MAX_DETECTIONS as u32;

/// `torchdetect`'s own settings.
#[derive(Debug, Clone)]
pub struct DetectSettings {
    pub output_format: Prop<OutputFormat>,
    pub threshold: Prop<f64>,
    pub iou_threshold: Prop<f64>,
    pub max_detections: Prop<u32>,
    /// Labels of the classes to keep (empty: all).
    pub object_class: Vec<String>,
    /// Boxes narrower or lower than this (frame pixels, after clipping) are dropped.
    pub min_size: u32,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            output_format: Prop::unset(OutputFormat::Auto),
            threshold: Prop::unset(DETECT_THRESHOLD),
            iou_threshold: Prop::unset(DETECT_IOU_THRESHOLD),
            max_detections: Prop::unset(DETECT_MAX_DETECTIONS),
            object_class: Vec::new(),
            min_size: 0,
        }
    }
}

impl TaskSettings for DetectSettings {
    fn shared_defaults() -> SharedSettings {
        SharedSettings {
            model: String::new(),
            input_size: Prop::unset(DETECT_INPUT_SIZE),
            mean: Prop::unset(vec![0.0; 3]),
            std: Prop::unset(vec![1.0; 3]),
            resize: Prop::unset(ResizeMode::Letterbox),
            pad_color: Some(DETECT_PAD_COLOR),
            ..SharedSettings::default()
        }
    }

    const FOREIGN_KEYS: &'static [(&'static str, &'static str)] = &[("output", "torchclassify")];
}

/// How a detector's outputs read: the properties set, else the model config file's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectReading {
    pub output_format: OutputFormat,
    pub threshold: f64,
    pub iou_threshold: f64,
    pub max_detections: u32,
}

impl DetectSettings {
    /// The output format and decoding thresholds: the properties set, else the file's.
    pub fn resolve(&self, file: &ModelConfigFile) -> Result<DetectReading, String> {
        let property = |name: &str, e: String| format!("Property '{name}': {e}");
        config::check_threshold(*self.threshold.get()).map_err(|e| property("threshold", e))?;
        config::check_threshold(*self.iou_threshold.get())
            .map_err(|e| property("iou-threshold", e))?;
        Ok(DetectReading {
            output_format: self.output_format.or_file(file.output_format),
            threshold: self.threshold.or_file(file.threshold),
            iou_threshold: self.iou_threshold.or_file(file.iou_threshold),
            max_detections: self.max_detections.or_file(file.max_detections),
        })
    }
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

/// What the model takes and where its labels come from: the properties set, else the model
/// config file, else the defaults; and the file, for the element's own keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub input: InputSpec,
    pub labels: LabelsChoice,
    /// The config file read (all its keys unset when there is none).
    pub file: ModelConfigFile,
    /// The config file's path, if one was read.
    pub config: Option<PathBuf>,
}

/// The red, green and blue of a 0xAARRGGBB colour.
pub fn rgb(color: u32) -> [u8; 3] {
    [(color >> 16) as u8, (color >> 8) as u8, color as u8]
}

/// A comma-separated list (`object-class`), trimmed, without empty items.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl<T: TaskSettings> Settings<T> {
    /// Takes the [`SharedSettings`] of `other` (an element sharing the model hot-swapped it),
    /// with which of them the application set; returns the names of those whose value changed.
    pub fn adopt_shared(&mut self, other: &Settings<T>) -> Vec<&'static str> {
        let changed = self
            .shared
            .differences(&other.shared)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        self.shared = other.shared.clone();
        changed
    }

    /// The model config file to read: `model-config`, else the model's path with `.json` when
    /// that file exists.
    pub fn config_path(&self) -> Option<PathBuf> {
        match &self.shared.model_config {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(config::beside(Path::new(&self.shared.model))).filter(|p| p.is_file()),
        }
    }

    /// What the model takes and where its labels come from: the properties set, else the model
    /// config file's values, else the defaults. Errors name the property or the file and key;
    /// a file that sets another kind of element's key is refused.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let s = &self.shared;
        let path = self.config_path();
        let file = match &path {
            Some(p) => config::load(p).map_err(|e| {
                if s.model_config.is_some() {
                    format!("{e} (property 'model-config')")
                } else {
                    e
                }
            })?,
            None => ModelConfigFile::default(),
        };
        let property = |name: &str, e: String| format!("Property '{name}': {e}");
        let mean = config::check_mean(s.mean.get()).map_err(|e| property("mean", e))?;
        let std = config::check_std(s.std.get()).map_err(|e| property("std", e))?;
        config::check_pixel_scale(*s.pixel_scale.get()).map_err(|e| property("pixel-scale", e))?;
        config::check_crop_fraction(*s.crop_fraction.get())
            .map_err(|e| property("crop-fraction", e))?;
        if let Some((key, whose)) = T::FOREIGN_KEYS.iter().find(|(k, _)| file.sets(k)) {
            return Err(format!(
                "model config '{}': key '{key}' is for {whose}, not this element",
                file.path.display()
            ));
        }
        let size = s.input_size.or_file(file.input_size) as usize;
        let input = InputSpec {
            width: size,
            height: size,
            normalization: Normalization {
                mean: if s.mean.is_set() {
                    mean
                } else {
                    file.mean.unwrap_or(mean)
                },
                std: if s.std.is_set() {
                    std
                } else {
                    file.std.unwrap_or(std)
                },
                pixel_scale: s.pixel_scale.or_file(file.pixel_scale),
            },
            color_order: s.color_order.or_file(file.color_order),
            resize: s.resize.or_file(file.resize),
            crop_fraction: s.crop_fraction.or_file(file.crop_fraction),
            pad: s.pad_color.map(rgb),
        };
        let labels = match (&s.labels, file.labels.clone()) {
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
            file,
            config: path,
        })
    }
}

#[cfg(test)]
mod tests;
