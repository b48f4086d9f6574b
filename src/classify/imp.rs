//! GStreamer glue of `torchclassify`: properties, caps, start/stop and the per-frame path. The
//! work itself lives in `preprocess`, `inference`, `postprocess`, `meta` and `message`.

use crate::inference::{Buffers, Engine, Model, ModelConfig};
use crate::labels::Labels;
use crate::postprocess::{self, Classification};
use crate::preprocess::{PixelLayout, Preprocessor};
use crate::{message, meta};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoFormat;
use gst_video::prelude::*;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchclassify",
        gst::DebugColorFlags::empty(),
        Some("TorchScript video classifier"),
    )
});

/// The model's input size (MobileNetV2 and most ImageNet classifiers take 224x224).
const INPUT_SIZE: usize = 224;
const DEFAULT_TOP_K: u32 = 5;
const DEFAULT_NUM_THREADS: u32 = 0;
const DEFAULT_POST_MESSAGES: bool = true;

/// Where `make model` writes the model: `$XDG_DATA_HOME/gst-torch/` (default
/// `~/.local/share/gst-torch/`).
static DEFAULT_MODEL: LazyLock<String> = LazyLock::new(|| {
    glib::user_data_dir()
        .join("gst-torch")
        .join("mobilenet_v2_quantized.pt")
        .to_string_lossy()
        .into_owned()
});

const FORMATS: [VideoFormat; 10] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
];

fn layout(format: VideoFormat) -> Option<PixelLayout> {
    Some(match format {
        VideoFormat::Rgb => PixelLayout::RGB,
        VideoFormat::Bgr => PixelLayout::BGR,
        VideoFormat::Rgbx | VideoFormat::Rgba => PixelLayout::RGBX,
        VideoFormat::Bgrx | VideoFormat::Bgra => PixelLayout::BGRX,
        VideoFormat::Xrgb | VideoFormat::Argb => PixelLayout::XRGB,
        VideoFormat::Xbgr | VideoFormat::Abgr => PixelLayout::XBGR,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    labels: Option<String>,
    top_k: u32,
    engine: Engine,
    num_threads: u32,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL.clone(),
            labels: None,
            top_k: DEFAULT_TOP_K,
            engine: Engine::default(),
            num_threads: DEFAULT_NUM_THREADS,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

/// What the negotiated caps fix: the frame layout and the converter built for it.
struct Format {
    info: gst_video::VideoInfo,
    preprocessor: Preprocessor,
}

struct State {
    model: Model,
    labels: Labels,
    /// Input and output buffers, lent to the model thread for each forward.
    buffers: Option<Buffers>,
    format: Option<Format>,
}

#[derive(Default)]
pub struct TorchClassify {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

impl TorchClassify {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        // A poisoned lock only means a panic elsewhere; the settings are still plain values.
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads labels and model as the settings say; errors name the property, the path and what
    /// is wrong.
    fn load(&self, settings: &Settings) -> Result<State, gst::ErrorMessage> {
        let labels = match &settings.labels {
            None => Labels::imagenet(),
            Some(path) => Labels::from_file(path.as_ref()).map_err(|e| {
                gst::error_msg!(
                    gst::LibraryError::Settings,
                    (
                        "Cannot use labels file '{}' (property 'labels'): {}",
                        path,
                        e
                    )
                )
            })?,
        };
        let model_error = |what: String| {
            gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "Cannot use model '{}' (property 'model'): {}",
                    settings.model,
                    what
                )
            )
        };
        if settings.model.is_empty() {
            return Err(model_error("no path given".into()));
        }
        let model = Model::load(ModelConfig {
            path: PathBuf::from(&settings.model),
            engine: settings.engine,
            num_threads: settings.num_threads,
            input_width: INPUT_SIZE,
            input_height: INPUT_SIZE,
        })
        .map_err(model_error)?;
        let n = model.num_classes();
        if n != labels.len() {
            let source = match &settings.labels {
                None => "the built-in ImageNet labels (property 'labels' unset)".to_string(),
                Some(path) => format!("labels file '{path}' (property 'labels')"),
            };
            return Err(model_error(format!(
                "it outputs {n} classes but {source} has {} labels",
                labels.len()
            )));
        }
        gst::info!(
            CAT,
            imp = self,
            "Loaded model {} ({n} classes, engine {:?}, threads {})",
            settings.model,
            settings.engine,
            tch::get_num_threads()
        );
        Ok(State {
            model,
            labels,
            buffers: Some(Buffers {
                input: vec![0.0; 3 * INPUT_SIZE * INPUT_SIZE],
                logits: vec![0.0; n],
            }),
            format: None,
        })
    }

    /// Runs the model on the frame in `buffer` and returns the result.
    fn classify(
        &self,
        state: &mut State,
        buffer: &gst::BufferRef,
        top_k: u32,
    ) -> Result<Classification, gst::FlowError> {
        let Some(format) = &state.format else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("No caps set"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some(mut buffers) = state.buffers.take() else {
            gst::element_imp_error!(self, gst::LibraryError::Failed, ("Model buffers lost"));
            return Err(gst::FlowError::Error);
        };
        {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &format.info)
                .map_err(|_| {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        (
                            "Cannot map a buffer of {} bytes as a {}x{} {} frame (caps say {} bytes)",
                            buffer.size(),
                            format.info.width(),
                            format.info.height(),
                            format.info.format().to_str(),
                            format.info.size()
                        ));
                    gst::FlowError::Error
                })?;
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
            if let Err(e) = format.preprocessor.run(data, stride, &mut buffers.input) {
                gst::element_imp_error!(self, gst::StreamError::Format, ("Bad frame: {}", e));
                state.buffers = Some(buffers);
                return Err(gst::FlowError::Error);
            }
        }
        let (mut buffers, inference_time) = state.model.run(buffers).map_err(|e| {
            gst::element_imp_error!(self, gst::LibraryError::Failed, ("Inference failed: {}", e));
            gst::FlowError::Error
        })?;
        let top_k = postprocess::classify(&mut buffers.logits, top_k as usize, &state.labels);
        state.buffers = Some(buffers);
        let Some(top_k) = top_k else {
            gst::element_imp_error!(
                self,
                gst::LibraryError::Failed,
                ("Model returned no classes")
            );
            return Err(gst::FlowError::Error);
        };

        let pts = buffer.pts();
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        Ok(Classification {
            top_k,
            timestamp: pts,
            stream_time: segment.and_then(|s| s.to_stream_time(pts?)),
            running_time: segment.and_then(|s| s.to_running_time(pts?)),
            duration: buffer.duration(),
            inference_time: gst::ClockTime::from_nseconds(inference_time.as_nanos() as u64),
        })
    }
}

#[glib::object_subclass]
impl ObjectSubclass for TorchClassify {
    const NAME: &'static str = "GstTorchClassify";
    type Type = super::TorchClassify;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for TorchClassify {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb(
                        "Path of a TorchScript image classifier taking a 1x3x224x224 float \
                         RGB input normalised with the ImageNet mean/std and returning [1, N] \
                         class scores (logits). Default: the int8 MobileNetV2 that `make model` \
                         exports. Loaded when the element starts",
                    )
                    .default_value(Some(DEFAULT_MODEL.as_str()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels")
                    .nick("Labels")
                    .blurb(
                        "Path of a text file with one class label per line, in class-id order; \
                         its line count must equal the model's N. Unset: the 1000 ImageNet \
                         labels built into the plugin",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("top-k")
                    .nick("Top K")
                    .blurb("Number of best classes reported in meta and messages")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_TOP_K)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("engine", Engine::default())
                    .nick("Quantized engine")
                    .blurb(
                        "libtorch's quantized engine, set before the model is loaded. It is \
                         global to the process: the last torchclassify to start with an engine \
                         other than auto sets it for every model in the process. auto leaves \
                         the engine as it is: libtorch's platform default (x86 on x86-64, \
                         fastest there; qnnpack on ARM) unless something in the process set it",
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
                    .blurb("Post a `torchclassify` element message for every classified frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings();
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
            "engine" => settings.engine = value.get().expect("type checked upstream"),
            "num-threads" => settings.num_threads = value.get().expect("type checked upstream"),
            "post-messages" => settings.post_messages = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
        gst::debug!(CAT, imp = self, "{} = {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings();
        match pspec.name() {
            "model" => settings.model.to_value(),
            "labels" => settings.labels.to_value(),
            "top-k" => settings.top_k.to_value(),
            "engine" => settings.engine.to_value(),
            "num-threads" => settings.num_threads.to_value(),
            "post-messages" => settings.post_messages.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for TorchClassify {}

impl ElementImpl for TorchClassify {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "TorchScript video classifier",
                "Filter/Analyzer/Video",
                "Classifies each video frame with a TorchScript model (default: int8 \
                 MobileNetV2 on ImageNet) through libtorch; video passes through untouched, \
                 results go to buffer meta and `torchclassify` element messages",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS)
                .build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("static sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("static src template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for TorchClassify {
    // The video is never changed: in place, and the frame is only ever mapped readable, so
    // buffers are neither copied nor their memory made writable (only the buffer itself is
    // made writable, to carry the meta).
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings().clone();
        let state = self.load(&settings)?;
        *self.state() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the state joins the model thread.
        let _ = self.state().take();
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {}", incaps))?;
        let layout = layout(info.format())
            .ok_or_else(|| gst::loggable_error!(CAT, "Unsupported format {}", info.format()))?;
        let preprocessor = Preprocessor::new(
            info.width() as usize,
            info.height() as usize,
            layout,
            INPUT_SIZE,
            INPUT_SIZE,
        );
        gst::debug!(
            CAT,
            imp = self,
            "Caps {} ({})",
            incaps,
            if preprocessor.resizes() {
                "resizing"
            } else {
                "no resize"
            }
        );
        {
            let mut state = self.state();
            let Some(state) = state.as_mut() else {
                return Err(gst::loggable_error!(CAT, "Caps before start"));
            };
            state.format = Some(Format { info, preprocessor });
        }
        self.parent_set_caps(incaps, outcaps)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (top_k, post_messages) = {
            let s = self.settings();
            (s.top_k, s.post_messages)
        };
        let (classification, width, height) = {
            let mut state = self.state();
            let Some(state) = state.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let c = self.classify(state, buffer, top_k)?;
            let info = state
                .format
                .as_ref()
                .map(|f| (f.info.width(), f.info.height()));
            let (w, h) = info.unwrap_or((0, 0));
            (c, w, h)
        };
        gst::trace!(
            CAT,
            imp = self,
            "{:?}: {} {:.3} ({} us)",
            classification.timestamp,
            classification.label(),
            classification.confidence(),
            classification.inference_time.useconds()
        );
        meta::attach(buffer, &classification, width, height);
        if post_messages {
            let msg = gst::message::Element::builder(message::to_structure(&classification))
                .src(&*self.obj())
                .build();
            // No bus (e.g. a bare element in a test harness) just means nobody listens.
            let _ = self.obj().post_message(msg);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
