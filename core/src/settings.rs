//! An element's settings as typed values: the properties' values, which of them the application
//! set (they win over the model config file), what elements sharing a model must agree on, and
//! the resolution of the model's input and output against the model config file.

use crate::classify::Activation;
use crate::config::{self, LabelsSource, ModelConfigFile};
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
            batch_size: DEFAULT_BATCH_SIZE,
            batch_timeout: DEFAULT_BATCH_TIMEOUT,
        }
    }
}

/// `torchclassify`'s settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub shared: SharedSettings,
    /// Elements with the same id share one model (None: a model of its own).
    pub model_instance_id: Option<String>,
    pub output: Prop<Activation>,
    pub threshold: Prop<f64>,
    pub top_k: u32,
    pub post_messages: bool,
    pub inference_interval: u32,
    pub async_: bool,
    /// Milliseconds between `torchclassify-stats` messages; 0 = none.
    pub stats_interval: u32,
    /// JSON lines of results go here (`-` = stdout).
    pub results_file: Option<String>,
    pub inference_region: InferenceRegion,
    /// ROI types to classify (empty: all).
    pub object_class: Vec<String>,
    pub min_roi_size: u32,
    pub max_batch: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            shared: SharedSettings::default(),
            model_instance_id: None,
            output: Prop::unset(Activation::default()),
            threshold: Prop::unset(DEFAULT_THRESHOLD),
            top_k: DEFAULT_TOP_K,
            post_messages: DEFAULT_POST_MESSAGES,
            inference_interval: DEFAULT_INFERENCE_INTERVAL,
            async_: DEFAULT_ASYNC,
            stats_interval: DEFAULT_STATS_INTERVAL,
            results_file: None,
            inference_region: InferenceRegion::default(),
            object_class: Vec::new(),
            min_roi_size: DEFAULT_MIN_ROI_SIZE,
            max_batch: DEFAULT_MAX_BATCH,
        }
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

/// A comma-separated list (`object-class`), trimmed, without empty items.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl Settings {
    /// Takes the [`SharedSettings`] of `other` (an element sharing the model hot-swapped it),
    /// with which of them the application set; returns the names of those whose value changed.
    pub fn adopt_shared(&mut self, other: &Settings) -> Vec<&'static str> {
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

    /// What the model takes and how to read its outputs: the properties set, else the model
    /// config file's values, else the defaults. Errors name the property or the file and key.
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
        config::check_threshold(*self.threshold.get()).map_err(|e| property("threshold", e))?;
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
        };
        let labels = match (&s.labels, file.labels) {
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
            output: self.output.or_file(file.output),
            threshold: self.threshold.or_file(file.threshold),
            config: path,
        })
    }
}

#[cfg(test)]
mod tests;
