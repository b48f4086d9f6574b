//! What the inference elements (`torchclassify`, `torchdetect`) share: one model thread per
//! model (or one shared by `model-instance-id`), the scheduler's frame path (blocking,
//! pipelined, async, `inference-interval`, QoS), hot swap, latency, stats, messages and results
//! files. An element is a [`Task`]: what its model's outputs mean and where its results go; the
//! rest is [`element::Inference`], which the element's `imp.rs` calls from each of its virtual
//! methods.

pub mod backend;
pub mod element;
pub mod loader;
pub mod properties;
pub mod publish;
pub mod stream;

use std::time::Duration;
use torchcore::batch::{self, JobResult, Outputs};
use torchcore::frame::{Frame, FrameInfo};
use torchcore::labels::Labels;
use torchcore::preprocess::Preprocessor;
use torchcore::settings::{LabelsChoice, Resolved, Settings, TaskSettings};
use torchcore::stats::Stats;

/// What an inference element does with its model; see the module docs.
pub trait Task: Sized + Send + Sync + 'static {
    /// The element's own settings.
    type Settings: TaskSettings;
    /// What a job carries besides its images, for reading the outputs (the regions the images
    /// were cut from, how the input maps back to the frame).
    type Payload: Default + Send + 'static;
    /// What the model thread checks a model's outputs against at load.
    type Expect: Send + Sync + 'static;
    /// How the model's outputs read (labels, activation, thresholds, decoder).
    type Reading: Send + Sync + 'static;
    /// What one frame's way reads from the settings (taken before the stream is locked).
    type Params: Send + Sync + 'static;
    /// What the model said about a frame.
    type Inferred: Send + 'static;
    /// What frames without a fresh result carry: the newest results.
    type Latest: Default + Send + 'static;

    /// The element's name: its debug category, model thread and messages are named after it.
    const NAME: &'static str;

    /// The most images one job holds.
    fn max_batch(settings: &Settings<Self::Settings>) -> usize;

    /// What a loaded model must give, for the model thread to check (`labels` are the ones
    /// `choice` named).
    fn expect(
        settings: &Settings<Self::Settings>,
        resolved: &Resolved,
        labels: Option<&Labels>,
        choice: &LabelsChoice,
    ) -> Result<Self::Expect, String>;

    /// Checks a forward of one image at load: the model is what this element reads.
    fn check(expect: &Self::Expect, outputs: &Outputs) -> Result<(), String>;

    /// How a loaded model's outputs read: from the settings, the model config file, the labels
    /// (None: the element's built-in ones) and what the model gave at load.
    fn reading(
        settings: &Settings<Self::Settings>,
        resolved: &Resolved,
        labels: Option<Labels>,
        loaded: &batch::Loaded,
    ) -> Result<Self::Reading, String>;

    /// Labels of a loaded model, for `{name}-model-updated`'s `classes`.
    fn classes(reading: &Self::Reading) -> usize;

    fn params(settings: &Settings<Self::Settings>) -> Self::Params;

    /// Fills `buffers` with the model's input for the mapped `frame` of `buffer` (`size` its
    /// width and height, `number` its number since start or flush), for the model `reading`
    /// reads.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        params: &Self::Params,
        preprocessor: &mut Preprocessor,
        frame: &Frame,
        buffer: &gst::BufferRef,
        size: (u32, u32),
        number: u64,
        buffers: &mut batch::Buffers<Self::Payload>,
        reading: &Self::Reading,
    ) -> Result<(), String>;

    /// What a finished job's outputs say about the frame, or its error.
    fn read(
        buffers: &mut batch::Buffers<Self::Payload>,
        result: JobResult,
        reading: &Self::Reading,
        params: &Self::Params,
        frame: FrameInfo,
    ) -> Result<Self::Inferred, String>;

    /// Counts what the model said and keeps what later frames carry.
    fn record(latest: &mut Self::Latest, stats: &mut Stats, inferred: &Self::Inferred);

    /// The buffer's meta: its fresh result (`fresh`), else the newest one; `size` is the frame's.
    fn attach(
        buffer: &mut gst::BufferRef,
        size: (u32, u32),
        fresh: Option<&Self::Inferred>,
        latest: &mut Self::Latest,
    );

    /// The bus messages (into `messages`, with `post_messages`) and the results-file line of a
    /// fresh result.
    fn posts(
        inferred: &Self::Inferred,
        post_messages: bool,
        messages: &mut Vec<gst::Structure>,
    ) -> Option<serde_json::Value>;

    /// The model's time for a fresh result, for the latency and the trace log.
    fn time(inferred: &Self::Inferred) -> Option<Duration>;

    /// The models this task's elements share by `model-instance-id` in this process.
    fn registry() -> &'static loader::Shared<Self>;

    /// The element's [`element::Inference`], from the element (for async results, which come on
    /// the model thread with a weak reference).
    fn inference(element: &element::Element) -> Option<&element::Inference<Self>>;
}

/// An inference element's `imp` type `$imp` (subclass `$wrapper` of BaseTransform, GType name
/// `$gtype`) holding an [`element::Inference`] of `$task` with a debug category `$cat` ("what it
/// is" `$about`), and its GObject, GstObject and BaseTransform parts, which delegate to that;
/// `$settings` is the module with the element's `specs()`, `set()` and `value()` of its
/// properties. The element writes its `ElementImpl` (metadata, pads).
macro_rules! inference_element {
    ($imp:ident, $wrapper:ty, $task:ty, $gtype:literal, $cat:literal, $about:literal, $settings:path) => {
        static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
            gst::DebugCategory::new($cat, gst::DebugColorFlags::empty(), Some($about))
        });

        pub struct $imp {
            inference: $crate::infer::element::Inference<$task>,
        }

        impl Default for $imp {
            fn default() -> Self {
                $imp {
                    inference: $crate::infer::element::Inference::new(*CAT),
                }
            }
        }

        impl $imp {
            pub fn inference(&self) -> &$crate::infer::element::Inference<$task> {
                &self.inference
            }
        }

        #[glib::object_subclass]
        impl glib::subclass::types::ObjectSubclass for $imp {
            const NAME: &'static str = $gtype;
            type Type = $wrapper;
            type ParentType = gst_base::BaseTransform;
        }

        impl glib::subclass::object::ObjectImpl for $imp {
            fn properties() -> &'static [glib::ParamSpec] {
                use $settings as settings;
                settings::specs()
            }

            fn constructed(&self) {
                use gst_base::prelude::*;
                self.parent_constructed();
                // Late frames skip inference (they still pass): on by default, as in video
                // filters.
                self.obj().set_qos(true);
            }

            fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
                use $settings as settings;
                settings::set(&mut self.inference.settings(), value, pspec);
                self.inference.property_set(self.obj().upcast_ref(), pspec);
            }

            fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
                use $settings as settings;
                if pspec.name() == "stats" {
                    return self.inference.stats().to_value();
                }
                settings::value(&self.inference.settings(), pspec)
            }
        }

        impl gst::subclass::prelude::GstObjectImpl for $imp {}

        impl gst_base::subclass::prelude::BaseTransformImpl for $imp {
            // The video is never changed: in place, and the frame is only ever mapped readable,
            // so buffers are neither copied nor their memory made writable (only the buffer
            // itself is made writable, to carry the meta).
            const MODE: gst_base::subclass::BaseTransformMode =
                gst_base::subclass::BaseTransformMode::AlwaysInPlace;
            const PASSTHROUGH_ON_SAME_CAPS: bool = false;
            const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

            fn start(&self) -> Result<(), gst::ErrorMessage> {
                self.inference.start(self.obj().upcast_ref())
            }

            fn stop(&self) -> Result<(), gst::ErrorMessage> {
                self.inference.stop(self.obj().upcast_ref());
                Ok(())
            }

            fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
                use gst_base::subclass::prelude::BaseTransformImplExt;
                if !BaseTransformImplExt::parent_query(self, direction, query) {
                    return false;
                }
                self.inference
                    .query(self.obj().upcast_ref(), direction, query);
                true
            }

            fn src_event(&self, event: gst::Event) -> bool {
                use gst_base::subclass::prelude::BaseTransformImplExt;
                match self.inference.src_event(self.obj().upcast_ref(), event) {
                    Ok(handled) => handled,
                    Err(event) => self.parent_src_event(event),
                }
            }

            fn sink_event(&self, event: gst::Event) -> bool {
                use gst_base::subclass::prelude::BaseTransformImplExt;
                self.inference.sink_event(self.obj().upcast_ref(), &event);
                self.parent_sink_event(event)
            }

            fn set_caps(
                &self,
                incaps: &gst::Caps,
                outcaps: &gst::Caps,
            ) -> Result<(), gst::LoggableError> {
                use gst_base::subclass::prelude::BaseTransformImplExt;
                self.inference.set_caps(self.obj().upcast_ref(), incaps)?;
                self.parent_set_caps(incaps, outcaps)
            }

            fn generate_output(
                &self,
            ) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError>
            {
                use gst_base::subclass::prelude::BaseTransformImplExt;
                self.inference
                    .generate_output(self.obj().upcast_ref(), || self.take_queued_buffer())
            }
        }
    };
}
pub(crate) use inference_element;
