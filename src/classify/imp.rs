//! GStreamer glue of `torchclassify`: properties, caps, start/stop and the per-frame path. The
//! work itself lives in `preprocess`, `inference`, `postprocess`, `meta` and `message`.

use crate::inference::{Engine, Model, ModelConfig, OnResult};
use crate::labels::Labels;
use crate::postprocess::{self, Classification, FrameInfo};
use crate::preprocess::Preprocessor;
use crate::results::ResultsWriter;
use crate::stats::Stats;
use crate::{message, meta};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchclassify",
        gst::DebugColorFlags::empty(),
        Some("TorchScript video classifier"),
    )
});

/// The model's input size (MobileNetV2 and most ImageNet classifiers take 224x224).
const DEFAULT_INPUT_SIZE: u32 = 224;
const DEFAULT_TOP_K: u32 = 5;
const DEFAULT_NUM_THREADS: u32 = 0;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_INFERENCE_INTERVAL: u32 = 1;
const DEFAULT_ASYNC: bool = false;
const DEFAULT_STATS_INTERVAL: u32 = 0;
/// How long a hot swap waits for more property changes before it loads.
const RELOAD_SETTLE: Duration = Duration::from_millis(100);
/// How long EOS waits for the last async inference to finish.
const EOS_WAIT: Duration = Duration::from_secs(10);

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
struct Settings {
    model: String,
    labels: Option<String>,
    top_k: u32,
    /// Side of the square image the model takes.
    input_size: u32,
    engine: Engine,
    num_threads: u32,
    post_messages: bool,
    inference_interval: u32,
    async_: bool,
    /// Milliseconds between `torchclassify-stats` messages; 0 = none.
    stats_interval: u32,
    /// JSON lines of results go here (`-` = stdout).
    results_file: Option<String>,
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

/// What the negotiated caps fix: the frame layout and the converter built for it.
struct Format {
    info: gst_video::VideoInfo,
    preprocessor: Preprocessor,
}

struct State {
    model: Model,
    labels: Labels,
    format: Option<Format>,
    /// `input-size` as it was at start: the model's input and the preprocessor's output.
    input_size: usize,
    /// Frames since start or the last flush: numbers frames and picks every Nth for inference.
    frames: u64,
    /// `async` as it was at start (it is fixed while running).
    async_: bool,
    /// Whether upstream is live, asked once per stream (`None`: not yet).
    live: Option<bool>,
    /// Blocking mode on a non-live stream: the frame the model is working on while the next
    /// one is prepared (see `submit_input_buffer`).
    held: Option<Held>,
}

impl State {
    /// The negotiated frame's width and height (0 x 0 before caps).
    fn frame_size(&self) -> (u32, u32) {
        self.format
            .as_ref()
            .map_or((0, 0), |f| (f.info.width(), f.info.height()))
    }
}

/// A frame whose forward was queued but whose result has not been collected.
struct Held {
    buffer: gst::Buffer,
    frame: FrameInfo,
    arrived: Instant,
    /// Set when the result had to be collected early (a model swap); `Some(None)`: it failed.
    result: Option<Option<Classification>>,
}

/// A frame ready to go out, with what `deliver` needs.
struct Finished {
    buffer: gst::Buffer,
    fresh: Option<Classification>,
    arrived: Instant,
    size: (u32, u32),
    replaced: u64,
}

/// What the streaming thread and (in async mode) the model thread both update.
#[derive(Default)]
struct Results {
    /// The newest finished result; buffers without a fresh one carry it.
    latest: Option<Classification>,
    stats: Stats,
}

pub struct TorchClassify {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    results: Mutex<Results>,
    /// Processing latency reported to LATENCY queries in blocking mode (ns).
    latency: AtomicU64,
    /// Running time before which frames are late, from the newest downstream QoS event.
    qos_earliest: Mutex<Option<gst::ClockTime>>,
    /// Bumped by every start and every model/labels change; a reload applies only if it is
    /// still the newest.
    generation: AtomicU64,
    /// The `results-file` writer while running.
    results_writer: Mutex<Option<ResultsWriter>>,
    /// Frames finished by `submit_input_buffer`, for `generate_output` to push.
    ready: Mutex<VecDeque<gst::Buffer>>,
}

impl Default for TorchClassify {
    fn default() -> Self {
        TorchClassify {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            results: Mutex::new(Results::default()),
            latency: AtomicU64::new(0),
            qos_earliest: Mutex::new(None),
            generation: AtomicU64::new(0),
            results_writer: Mutex::new(None),
            ready: Mutex::new(VecDeque::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is plain values.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TorchClassify {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        lock(&self.settings)
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        lock(&self.state)
    }

    fn results(&self) -> MutexGuard<'_, Results> {
        lock(&self.results)
    }

    /// Loads labels and model as the settings say. The error names the property, the path and
    /// what is wrong.
    fn load_model(&self, settings: &Settings) -> Result<(Model, Labels), String> {
        let labels = match &settings.labels {
            None => Labels::imagenet(),
            Some(path) => Labels::from_file(path.as_ref())
                .map_err(|e| format!("Cannot use labels file '{path}' (property 'labels'): {e}"))?,
        };
        let model_error = |what: String| {
            format!(
                "Cannot use model '{}' (property 'model'): {what}",
                settings.model
            )
        };
        if settings.model.is_empty() {
            return Err(model_error("no path given".into()));
        }
        let model = Model::load(
            ModelConfig {
                path: PathBuf::from(&settings.model),
                engine: settings.engine,
                num_threads: settings.num_threads,
                input_width: settings.input_size as usize,
                input_height: settings.input_size as usize,
            },
            self.async_result_handler(labels.clone()),
        )
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
        if let Some(w) = model.warning() {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("Property 'engine': {}", w)
            );
        }
        // Blocking mode's latency: the model's time, with a margin for preprocessing and jitter.
        let latency = model.warm_up_time() * 5 / 4;
        self.latency
            .fetch_max(latency.as_nanos() as u64, Ordering::Relaxed);
        gst::info!(
            CAT,
            imp = self,
            "Loaded model {} ({n} classes, engine {:?} = {}, warm-up {:?})",
            settings.model,
            settings.engine,
            crate::inference::current_engine(),
            model.warm_up_time()
        );
        Ok((model, labels))
    }

    fn set_setting(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
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

    /// Hot swap: after `model` or `labels` changed while running, loads the new model on a thread
    /// of its own while the old one keeps classifying, then switches between two frames and posts
    /// `torchclassify-model-updated`. A failed load keeps the old model and posts a warning.
    /// Changes made within `RELOAD_SETTLE` of each other (say `model` then `labels`) make one
    /// load.
    fn reload(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let element = self.obj().downgrade();
        let spawned = std::thread::Builder::new()
            .name("torchclassify-load".into())
            .spawn(move || {
                std::thread::sleep(RELOAD_SETTLE);
                let Some(element) = element.upgrade() else {
                    return;
                };
                let imp = element.imp();
                if imp.generation.load(Ordering::SeqCst) != generation {
                    return; // a newer change will load
                }
                let mut settings = imp.settings().clone();
                // The running preprocessor makes inputs of the size the element started with.
                match imp.state().as_ref() {
                    Some(state) => settings.input_size = state.input_size as u32,
                    None => return,
                }
                match imp.load_model(&settings) {
                    Ok((model, labels)) => {
                        let old = {
                            let mut state = imp.state();
                            match state.as_mut() {
                                Some(state)
                                    if imp.generation.load(Ordering::SeqCst) == generation =>
                                {
                                    // A frame in flight gets its result from the old model.
                                    if let Some(h) = &state.held
                                        && h.result.is_none()
                                    {
                                        let c = imp.collect(&state.model, &state.labels, h.frame);
                                        if let Some(h) = state.held.as_mut() {
                                            h.result = Some(c);
                                        }
                                    }
                                    state.labels = labels;
                                    Some(std::mem::replace(&mut state.model, model))
                                }
                                _ => None, // stopped, or a newer change is loading
                            }
                        };
                        let Some(old) = old else {
                            return;
                        };
                        drop(old); // joins the old model's thread, outside the lock
                        imp.results().stats.engine = crate::inference::current_engine();
                        let s = gst::Structure::builder("torchclassify-model-updated")
                            .field("model", &settings.model)
                            .field("labels", settings.labels.as_deref())
                            .field(
                                "classes",
                                imp.state().as_ref().map_or(0, |s| s.labels.len() as u32),
                            )
                            .build();
                        let _ = element
                            .post_message(gst::message::Element::builder(s).src(&element).build());
                    }
                    Err(e) => {
                        gst::element_imp_warning!(
                            imp,
                            gst::LibraryError::Settings,
                            ("{}; keeping the previous model", e)
                        );
                    }
                }
            });
        if let Err(e) = spawned {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Failed,
                ("Cannot reload the model: {}", e)
            );
        }
    }

    /// Fills `input` with the model's input for the frame in `buffer`.
    fn preprocess(
        &self,
        format: Option<&Format>,
        buffer: &gst::BufferRef,
        input: &mut [f32],
    ) -> Result<(), gst::FlowError> {
        let Some(format) = format else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("No caps set"));
            return Err(gst::FlowError::NotNegotiated);
        };
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
                    )
                );
                gst::FlowError::Error
            })?;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
        format.preprocessor.run(data, stride, input).map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Format, ("Bad frame: {}", e));
            gst::FlowError::Error
        })
    }

    fn frame_info(&self, buffer: &gst::BufferRef, number: u64) -> FrameInfo {
        let pts = buffer.pts();
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        FrameInfo {
            number,
            timestamp: pts,
            stream_time: segment.and_then(|s| s.to_stream_time(pts?)),
            running_time: segment.and_then(|s| s.to_running_time(pts?)),
            duration: buffer.duration(),
        }
    }

    /// Softmax + top-k of `logits` into a result for `frame`.
    fn result(
        &self,
        logits: &mut [f32],
        labels: &Labels,
        frame: FrameInfo,
        inference_time: Duration,
    ) -> Option<Classification> {
        let top_k = self.settings().top_k as usize;
        let Some(top_k) = postprocess::classify(logits, top_k, labels) else {
            gst::element_imp_error!(
                self,
                gst::LibraryError::Failed,
                ("Model returned no classes")
            );
            return None;
        };
        Some(Classification {
            top_k,
            frame,
            inference_time: gst::ClockTime::from_nseconds(inference_time.as_nanos() as u64),
        })
    }

    /// Publishes a fresh result: its JSON line (`results-file`) and its `torchclassify` message
    /// (`post-messages`).
    fn post_result(&self, c: &Classification) {
        if let Some(w) = lock(&self.results_writer).as_mut()
            && let Err(e) = w.write(c)
        {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "Cannot write to the results file (property 'results-file'): {}",
                    e
                )
            );
        }
        if !self.settings().post_messages {
            return;
        }
        let msg = gst::message::Element::builder(message::to_structure(c))
            .src(&*self.obj())
            .build();
        // No bus (e.g. a bare element in a test harness) just means nobody listens.
        let _ = self.obj().post_message(msg);
    }

    fn flush_results(&self) {
        if let Some(w) = lock(&self.results_writer).as_mut()
            && let Err(e) = w.flush()
        {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "Cannot write to the results file (property 'results-file'): {}",
                    e
                )
            );
        }
    }

    fn post_stats(&self, s: gst::Structure) {
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// What the model thread does with an async result: it becomes the newest result, counts in
    /// the stats and is posted with the timestamps of the frame it was computed on.
    fn async_result_handler(&self, labels: Labels) -> OnResult {
        let element = self.obj().downgrade();
        Box::new(move |logits, result, frame| {
            let Some(element) = element.upgrade() else {
                return;
            };
            let imp = element.imp();
            let time = match result {
                Ok(time) => time,
                Err(e) => {
                    gst::element_imp_error!(imp, gst::LibraryError::Failed, ("{}", e));
                    return;
                }
            };
            let Some(c) = imp.result(logits, &labels, frame, time) else {
                return;
            };
            {
                let mut results = imp.results();
                results.stats.inference(time);
                results.latest = Some(c.clone());
            }
            imp.post_result(&c);
        })
    }

    /// Converts the frame in `buffer` into the model's input and queues its forward, for
    /// [`Self::collect`] to pick up.
    fn queue(
        &self,
        state: &State,
        buffer: &gst::BufferRef,
        frame: FrameInfo,
    ) -> Result<(), gst::FlowError> {
        let mut buffers = state.model.buffers();
        if let Err(e) = self.preprocess(state.format.as_ref(), buffer, &mut buffers.input) {
            state.model.recycle(buffers);
            return Err(e);
        }
        state.model.queue(buffers, frame);
        Ok(())
    }

    /// Collects the reply of the oldest queued forward and turns it into a result (an error is
    /// posted, and gives `None`).
    fn collect(&self, model: &Model, labels: &Labels, frame: FrameInfo) -> Option<Classification> {
        let (mut buffers, result) = model.wait_reply();
        let c = match result {
            Ok(time) => self.result(&mut buffers.logits, labels, frame, time),
            Err(e) => {
                gst::element_imp_error!(self, gst::LibraryError::Failed, ("{}", e));
                None
            }
        };
        model.recycle(buffers);
        c
    }

    /// Waits for a held frame's result: the frame, ready for `deliver`.
    fn finish_held(&self, state: &State, held: Held) -> Finished {
        let fresh = match held.result {
            Some(c) => c,
            None => self.collect(&state.model, &state.labels, held.frame),
        };
        Finished {
            buffer: held.buffer,
            fresh,
            arrived: held.arrived,
            size: state.frame_size(),
            replaced: state.model.replaced(),
        }
    }

    /// Whether the stream upstream is live (an unanswered query counts as live).
    fn upstream_is_live(&self) -> bool {
        let mut q = gst::query::Latency::new();
        !self.obj().sink_pad().peer_query(&mut q) || q.result().0
    }

    /// Lets out a held frame (before a serialized event, so the event stays behind it).
    fn drain(&self) {
        let finished = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                return;
            };
            let Some(held) = state.held.take() else {
                return;
            };
            self.finish_held(state, held)
        };
        if let Ok(buffer) = self.let_out(finished) {
            let pushed = self.obj().src_pad().push(buffer);
            gst::debug!(CAT, imp = self, "Drained the held frame: {pushed:?}");
        }
    }

    /// A held frame with its result, delivered: the buffer to push.
    fn let_out(&self, finished: Finished) -> Result<gst::Buffer, gst::FlowError> {
        let Finished {
            mut buffer,
            fresh,
            arrived,
            size,
            replaced,
        } = finished;
        // No result: the error is posted already.
        let fresh = fresh.ok_or(gst::FlowError::Error)?;
        self.deliver(
            buffer.make_mut(),
            Some(fresh),
            false,
            false,
            arrived,
            size,
            replaced,
        )?;
        Ok(buffer)
    }

    /// The end of every frame's way: stats, meta (the fresh result or the newest one), the
    /// result's message and JSON line, periodic stats, a latency message. Runs without the state
    /// lock, so that a bus handler may call back into the element.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        buffer: &mut gst::BufferRef,
        fresh: Option<Classification>,
        skipped: bool,
        latency_grew: bool,
        arrived: Instant,
        (width, height): (u32, u32),
        replaced: u64,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let stats_interval = self.settings().stats_interval;
        let (latest, stats) = {
            let mut results = self.results();
            results.stats.frame(arrived);
            results.stats.replaced = replaced;
            if skipped {
                results.stats.skipped += 1;
            }
            if let Some(c) = &fresh {
                results
                    .stats
                    .inference(Duration::from_nanos(c.inference_time.nseconds()));
                results.latest = Some(c.clone());
            }
            let stats = (stats_interval > 0)
                .then(|| {
                    let interval = Duration::from_millis(stats_interval.into());
                    results.stats.window_structure(arrived, interval)
                })
                .flatten();
            (results.latest.clone(), stats)
        };
        if let Some(c) = latest {
            meta::attach(buffer, c, width, height);
        }
        if let Some(c) = &fresh {
            gst::trace!(
                CAT,
                imp = self,
                "frame {}: {} {:.3} ({} us)",
                c.frame.number,
                c.label(),
                c.confidence(),
                c.inference_time.useconds()
            );
            self.post_result(c);
        }
        if let Some(s) = stats {
            self.post_stats(s);
        }
        if latency_grew {
            gst::debug!(
                CAT,
                imp = self,
                "Processing latency grew, asking for a new one"
            );
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// True if downstream QoS says a frame at `running_time` is already late.
    fn is_late(&self, running_time: Option<gst::ClockTime>) -> bool {
        match (running_time, *lock(&self.qos_earliest)) {
            (Some(t), Some(earliest)) => t <= earliest,
            _ => false,
        }
    }

    /// Forgets per-stream things after a flush: frame numbers, the newest result, QoS, and an
    /// async frame still waiting for the model.
    fn reset_stream(&self) {
        if let Some(state) = self.state().as_mut() {
            state.frames = 0;
            state.live = None;
            // The held frame's job is either still queued (dropped here: no reply will come) or
            // running or done (its reply is collected and its buffers reused).
            let dropped_queued = state.model.discard_pending();
            if let Some(held) = state.held.take()
                && held.result.is_none()
                && !dropped_queued
            {
                let (buffers, _) = state.model.wait_reply();
                state.model.recycle(buffers);
            }
        }
        lock(&self.ready).clear();
        {
            let mut results = self.results();
            results.latest = None;
            results.stats.resume();
        }
        *lock(&self.qos_earliest) = None;
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
                         model's time, and frames already late by downstream QoS skip inference; \
                         on a non-live stream the next frame is prepared while the model works \
                         (each frame is held until the next arrives)",
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
                         (until EOS, after it), engine",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.set_setting(value, pspec);
        gst::debug!(CAT, imp = self, "{} = {:?}", pspec.name(), value);
        if matches!(pspec.name(), "model" | "labels") && self.state().is_some() {
            self.reload();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.results().stats.to_structure(Instant::now()).to_value();
        }
        let settings = self.settings();
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
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(crate::packed_rgb_pad_templates);
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
        // Forget a reload still under way: this start loads the newest settings.
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.latency.store(0, Ordering::Relaxed);
        let (model, labels) = self
            .load_model(&settings)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        let writer = match &settings.results_file {
            None => None,
            Some(path) => Some(ResultsWriter::create(path).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    (
                        "Cannot create results file '{}' (property 'results-file'): {}",
                        path,
                        e
                    )
                )
            })?),
        };
        *lock(&self.results_writer) = writer;
        let state = State {
            model,
            labels,
            format: None,
            input_size: settings.input_size as usize,
            frames: 0,
            async_: settings.async_,
            live: None,
            held: None,
        };
        *self.results() = Results::default();
        self.results().stats.engine = crate::inference::current_engine();
        *lock(&self.qos_earliest) = None;
        *self.state() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the state joins the model thread; take it out of the lock first, since an
        // async result being delivered needs the element's other locks, not this one.
        let state = self.state().take();
        drop(state);
        lock(&self.ready).clear();
        self.flush_results();
        *lock(&self.results_writer) = None;
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let latency = direction == gst::PadDirection::Src
            && matches!(query.view(), gst::QueryView::Latency(_));
        if !BaseTransformImplExt::parent_query(self, direction, query) {
            return false;
        }
        // Blocking mode holds each frame for the model's time: say so. Async mode adds nothing.
        let blocking = latency && self.state().as_ref().is_some_and(|s| !s.async_);
        if let gst::QueryViewMut::Latency(q) = query.view_mut()
            && blocking
        {
            let ours = gst::ClockTime::from_nseconds(self.latency.load(Ordering::Relaxed));
            let (live, min, max) = q.result();
            gst::debug!(
                CAT,
                imp = self,
                "Adding {ours} of latency to {min}..{max:?}"
            );
            q.set(live, min + ours, max.map(|m| m + ours));
        }
        true
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Qos(q) = event.view() {
            let (_, _, diff, timestamp) = q.get();
            // As GstBaseTransform does: frames up to timestamp + diff are late.
            *lock(&self.qos_earliest) = timestamp.map(|t| {
                gst::ClockTime::from_nseconds((t.nseconds() as i128 + diff as i128).max(0) as u64)
            });
        }
        self.parent_src_event(event)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        // A held frame goes out before any serialized event (EOS, caps, segment, gap, ...).
        if event.is_serialized() && event.type_() != gst::EventType::FlushStop {
            self.drain();
        }
        match event.view() {
            gst::EventView::FlushStop(_) => self.reset_stream(),
            gst::EventView::Eos(_) => {
                // Let the last async frame's result out before EOS.
                if let Some(state) = self.state().as_ref()
                    && state.async_
                    && !state.model.wait_idle(EOS_WAIT)
                {
                    gst::warning!(CAT, imp = self, "Model still busy at EOS");
                }
                self.flush_results();
                let s = {
                    let mut results = self.results();
                    results.stats.end(Instant::now());
                    results.stats.to_structure(Instant::now())
                };
                if self.settings().stats_interval > 0 {
                    self.post_stats(s);
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {}", incaps))?;
        let layout = crate::layout(info.format())
            .ok_or_else(|| gst::loggable_error!(CAT, "Unsupported format {}", info.format()))?;
        let mut guard = self.state();
        let Some(state) = guard.as_mut() else {
            return Err(gst::loggable_error!(CAT, "Caps before start"));
        };
        let preprocessor = Preprocessor::new(
            info.width() as usize,
            info.height() as usize,
            layout,
            state.input_size,
            state.input_size,
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
        state.format = Some(Format { info, preprocessor });
        drop(guard);
        self.parent_set_caps(incaps, outcaps)
    }

    /// Blocking mode on a non-live stream (a file, say) pipelines: a frame due for inference is
    /// prepared and queued behind the forward of the frame before it, which is then collected
    /// and let out, and the new frame is held until the next one arrives (or an event, EOS,
    /// comes). The model never waits for the streaming thread, whose work (reading, converting,
    /// pushing) overlaps the forward. Live streams, async mode and frames not due for inference
    /// go the plain way, `transform_ip`, after a held frame is let out.
    fn submit_input_buffer(
        &self,
        is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let arrived = Instant::now();
        let live = self.state().as_ref().and_then(|s| s.live);
        let live = match live {
            Some(live) => live,
            None => {
                let live = self.upstream_is_live();
                gst::debug!(CAT, imp = self, "Upstream is live: {live}");
                if let Some(state) = self.state().as_mut() {
                    state.live = Some(live);
                }
                live
            }
        };
        let interval = self.settings().inference_interval.max(1) as u64;
        let (finished, inbuf) = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            // Live and async streams go the plain way: no need to look at the frame here.
            let frame = (!live && !state.async_)
                .then(|| self.frame_info(&inbuf, state.frames))
                .filter(|f| f.number.is_multiple_of(interval) && !self.is_late(f.running_time));
            if let Some(frame) = frame {
                state.frames += 1;
                self.queue(state, &inbuf, frame)?;
                let previous = state.held.replace(Held {
                    buffer: inbuf,
                    frame,
                    arrived,
                    result: None,
                });
                (previous.map(|p| self.finish_held(state, p)), None)
            } else {
                let previous = state.held.take();
                (previous.map(|p| self.finish_held(state, p)), Some(inbuf))
            }
        };
        if let Some(finished) = finished {
            let buffer = self.let_out(finished)?;
            lock(&self.ready).push_back(buffer);
        }
        match inbuf {
            Some(inbuf) => self.parent_submit_input_buffer(is_discont, inbuf),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        match lock(&self.ready).pop_front() {
            Some(buffer) => Ok(GenerateOutputSuccess::Buffer(buffer)),
            None => self.parent_generate_output(),
        }
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let now = Instant::now();
        let interval = self.settings().inference_interval.max(1) as u64;
        let mut fresh = None;
        let mut skipped = false;
        let mut latency_grew = false;
        let (width, height, replaced) = {
            let mut state = self.state();
            let Some(state) = state.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let frame = self.frame_info(buffer, state.frames);
            state.frames += 1;
            if frame.number.is_multiple_of(interval) {
                if state.async_ {
                    let mut buffers = state.model.buffers();
                    self.preprocess(state.format.as_ref(), buffer, &mut buffers.input)?;
                    state.model.submit(buffers, frame);
                } else if self.is_late(frame.running_time) {
                    skipped = true;
                } else {
                    self.queue(state, buffer, frame)?;
                    let c = self.collect(&state.model, &state.labels, frame);
                    fresh = Some(c.ok_or(gst::FlowError::Error)?);
                    let spent = now.elapsed().as_nanos() as u64;
                    if spent > self.latency.load(Ordering::Relaxed) {
                        self.latency.store(spent * 5 / 4, Ordering::Relaxed);
                        latency_grew = true;
                    }
                }
            }
            let (w, h) = state.frame_size();
            (w, h, state.model.replaced())
        };

        self.deliver(
            buffer,
            fresh,
            skipped,
            latency_grew,
            now,
            (width, height),
            replaced,
        )
    }
}
