//! GStreamer glue of `torchclassify`: properties, caps, start/stop, events, queries and the
//! per-frame calls. Which frame runs when is `scheduler`'s; loading and hot swap `loader`'s;
//! meta, messages, JSON lines and stats `publish`'s; the properties `settings`'.
//!
//! Every buffer goes through BaseTransform's `submit_input_buffer` (caps renegotiation, the
//! queued buffer) and leaves from `generate_output`, which takes it through the scheduler: a
//! frame can come out at once, later (held while the model runs it) or after another.
//!
//! Lock order: a thread holding one of these may take those after it, never one before:
//! `reloader` → `state` → `settings` → `qos_earliest` → `latency` → `ready`/`pending_error` →
//! the publisher's locks (publish.rs) → the model's (inference.rs). `reloader` is never held
//! while the loader thread is joined. Nothing is posted, pushed or logged at warning level with
//! any of them held: errors found under `state` are carried out of it and posted after, so a
//! synchronous bus handler may call back into the element (set `model`, say).

use super::backend::{self, Failure, Format, Inferred, Output, Reading, Run, Selection};
use super::loader::{self, Loaded, Reloader};
use super::publish::{self, Publisher};
use super::scheduler::{Arrival, Out, Outcome, Overlap, Scheduler};
use super::settings::{self, InferenceRegion, Settings};
use super::sharing::{self, Joined, Member};
use crate::inference::{Model, OnResult};
use crate::preprocess::InputSpec;
use crate::results::ResultsWriter;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchclassify",
        gst::DebugColorFlags::empty(),
        Some("TorchScript video classifier"),
    )
});

/// How long EOS waits for the last async inference to finish.
const EOS_WAIT: Duration = Duration::from_secs(10);
/// Blocking mode on a non-live stream: frames before the overlap is measured, and intervals
/// measured each way (see `scheduler::Overlap`).
const OVERLAP_WARM_UP: u32 = 4;
const OVERLAP_WINDOW: u32 = 16;

struct State {
    model: Model,
    /// `inference-region=roi-list` (fixed while running).
    regions: bool,
    reading: Reading,
    /// What the model takes (the properties and model config file at load).
    input: InputSpec,
    format: Option<Format>,
    /// `async` as it was at start (it is fixed while running).
    async_: bool,
    scheduler: Scheduler<gst::Buffer, Output>,
}

pub struct TorchClassify {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The hot swap's loader while running.
    reloader: Mutex<Option<Reloader>>,
    /// Running time before which frames are late, from the newest downstream QoS event.
    qos_earliest: Mutex<Option<gst::ClockTime>>,
    /// Processing latency reported to LATENCY queries in blocking mode.
    latency: Mutex<gst::ClockTime>,
    /// Frames finished, for `generate_output` to hand out in order.
    ready: Mutex<VecDeque<gst::Buffer>>,
    /// A flow error to return once `ready` is empty (a failed frame after good ones, or a failed
    /// push of a held frame before an event).
    pending_error: Mutex<Option<gst::FlowError>>,
    publisher: Publisher,
}

impl Default for TorchClassify {
    fn default() -> Self {
        TorchClassify {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            reloader: Mutex::new(None),
            qos_earliest: Mutex::new(None),
            latency: Mutex::new(gst::ClockTime::ZERO),
            ready: Mutex::new(VecDeque::new()),
            pending_error: Mutex::new(None),
            publisher: Publisher::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is plain values.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one step of the frame path hands back from under the state lock.
struct Finished {
    buffers: Vec<(gst::Buffer, publish::Frame)>,
    failure: Option<Failure>,
    latency_grew: bool,
}

impl TorchClassify {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        lock(&self.settings)
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        lock(&self.state)
    }

    fn element(&self) -> gst::Element {
        self.obj().clone().upcast()
    }

    /// What the model thread does with an async result: it becomes the newest result, counts in
    /// the stats and is posted with the timestamps of the frame it was computed on.
    fn async_result_handler(&self, reading: Reading, regions: bool) -> OnResult {
        let element = self.obj().downgrade();
        let classes = reading.labels.len();
        Box::new(move |buffers, result, frame| {
            let Some(element) = element.upgrade() else {
                return;
            };
            let imp = element.imp();
            let (top_k, post_messages) = {
                let s = imp.settings();
                (s.top_k as usize, s.post_messages)
            };
            let read =
                |time| backend::read(buffers, classes, regions, (&reading, top_k), frame, time);
            match result.and_then(read) {
                Ok(inferred) => imp
                    .publisher
                    .async_result(&imp.element(), inferred, post_messages),
                Err(e) => gst::element_imp_error!(imp, gst::LibraryError::Failed, ("{}", e)),
            }
        })
    }

    /// This element's key among the users of a shared model: its address.
    fn member_key(&self) -> usize {
        self.obj().as_ptr() as usize
    }

    /// Stops using the shared model of `id` (`model-instance-id`), if any.
    fn leave_shared(&self, id: Option<&str>) {
        if let Some(id) = id {
            sharing::leave(id, self.member_key());
        }
    }

    /// This element as a user of a shared model (`model-instance-id`).
    fn member(&self) -> Member {
        let element = self.obj().downgrade();
        Member {
            key: self.member_key(),
            name: self.obj().name().to_string(),
            adopt: Arc::new(move |from| {
                if let Some(element) = element.upgrade() {
                    element.imp().adopt(from);
                }
            }),
        }
    }

    /// Another element sharing the model hot-swapped it: take its model settings and reload
    /// (joining the new model; `swap` then posts `torchclassify-model-updated` here too).
    fn adopt(&self, from: &Settings) {
        let changed = self.settings().adopt_shared(from);
        for name in changed {
            self.obj().notify(name);
        }
        if let Some(reloader) = lock(&self.reloader).as_ref() {
            reloader.request();
        }
    }

    /// Loads as `settings` say, with async results read as the model loaded is.
    fn load_model(&self, settings: &Settings) -> Result<Loaded, String> {
        let regions = settings.inference_region == InferenceRegion::RoiList;
        let loaded = loader::load(settings, self.member(), |reading| {
            self.async_result_handler(reading, regions)
        })?;
        if let Some(Joined::Swapped(members)) = &loaded.joined {
            // A hot swap of a shared model: the other elements follow (no lock is held here).
            for member in members {
                (member.adopt)(settings);
            }
        }
        match &loaded.joined {
            Some(Joined::Shared) => gst::info!(
                CAT,
                imp = self,
                "Sharing the model of model-instance-id {:?} ({} elements)",
                settings.model_instance_id,
                loaded.model.clients()
            ),
            Some(_) => gst::info!(
                CAT,
                imp = self,
                "Loaded the model of model-instance-id {:?}",
                settings.model_instance_id
            ),
            None => {}
        }
        gst::info!(
            CAT,
            imp = self,
            "Loaded model {} ({} classes, input {:?}, {:?} threshold {}, engine {:?} = {}, \
             latency {})",
            settings.model,
            loaded.reading.labels.len(),
            loaded.input,
            loaded.reading.output,
            loaded.reading.threshold,
            settings.engine,
            crate::inference::current_engine(),
            loaded.latency
        );
        Ok(loaded)
    }

    /// Applies what a load gave: the engine warning and the latency it needs.
    fn apply_loaded(&self, loaded: &Loaded) {
        if let Some(note) = loaded.model.batch_note() {
            gst::info!(CAT, imp = self, "{}", note);
        }
        {
            let mut latency = lock(&self.latency);
            *latency = (*latency).max(loaded.latency);
        }
        if let Some(w) = &loaded.warning {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
    }

    /// The hot swap's loader thread for this run: it loads with the newest settings (and the
    /// new model's config file) and swaps the model in between two frames.
    fn start_reloader(&self) -> Result<Reloader, String> {
        let element = self.obj().downgrade();
        let apply_to = element.clone();
        Reloader::start(
            move || {
                let element = element.upgrade()?;
                let imp = element.imp();
                let settings = imp.settings().clone();
                Some(imp.load_model(&settings))
            },
            move |outcome| {
                if let Some(element) = apply_to.upgrade() {
                    element.imp().swap(outcome);
                }
            },
        )
    }

    /// Swaps a freshly loaded model in (a frame in flight gets its result from the old one), or
    /// warns that the old one stays.
    fn swap(&self, outcome: Result<Loaded, String>) {
        let loaded = match outcome {
            Ok(loaded) => loaded,
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    ("{}; keeping the previous model", e)
                );
                return;
            }
        };
        self.apply_loaded(&loaded);
        let top_k = self.settings().top_k as usize;
        let (old, classes) = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                return; // stopped meanwhile: `loaded` is dropped here, outside the lock
            };
            let run = Run {
                model: &state.model,
                reading: &state.reading,
                top_k,
                regions: state.regions,
            };
            state.scheduler.collect(&run);
            let classes = loaded.reading.labels.len() as u32;
            state.reading = loaded.reading;
            if loaded.input != state.input {
                // The new model takes other input: the same frames, prepared anew.
                state.format = state
                    .format
                    .as_ref()
                    .and_then(|f| f.with_input(&loaded.input));
                state.input = loaded.input;
            }
            (std::mem::replace(&mut state.model, loaded.model), classes)
        };
        drop(old); // joins the old model's thread, outside the lock
        self.publisher
            .update_stats(|s| s.engine = crate::inference::current_engine());
        let s = {
            let settings = self.settings();
            gst::Structure::builder("torchclassify-model-updated")
                .field("model", &settings.model)
                .field("labels", settings.labels.as_deref())
                .field("classes", classes)
                .build()
        };
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// Whether the stream upstream is live (an unanswered query counts as live).
    fn upstream_is_live(&self) -> bool {
        let mut q = gst::query::Latency::new();
        !self.obj().sink_pad().peer_query(&mut q) || q.result().0
    }

    /// True if `qos` is on and downstream QoS says a frame at `running_time` is already late.
    fn is_late(&self, running_time: Option<gst::ClockTime>) -> bool {
        if !self.obj().is_qos() {
            return false;
        }
        match (running_time, *lock(&self.qos_earliest)) {
            (Some(t), Some(earliest)) => t <= earliest,
            _ => false,
        }
    }

    /// One frame's way through the scheduler; see the module docs.
    fn process(&self, inbuf: gst::Buffer) -> Finished {
        let arrived = Instant::now();
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let late =
            self.is_late(segment.and_then(|s| inbuf.pts().and_then(|pts| s.to_running_time(pts))));
        let ask_live = self
            .state()
            .as_ref()
            .is_some_and(|s| s.scheduler.live().is_none());
        // A query upstream, with no lock held.
        let live = ask_live.then(|| self.upstream_is_live());
        let (interval, top_k, selection) = {
            let s = self.settings();
            let selection = (s.inference_region == InferenceRegion::RoiList).then(|| Selection {
                object_class: s.object_class.clone(),
                min_size: s.min_roi_size,
            });
            (s.inference_interval as u64, s.top_k as usize, selection)
        };
        let mut guard = self.state();
        let Some(state) = guard.as_mut() else {
            return Finished {
                buffers: vec![],
                failure: Some(Failure {
                    flow: gst::FlowError::Flushing,
                    message: gst::error_msg!(gst::CoreError::StateChange, ("Not started")),
                }),
                latency_grew: false,
            };
        };
        if let Some(live) = live {
            gst::debug!(CAT, imp = self, "Upstream is live: {live}");
            state.scheduler.set_live(live);
        }
        let run = Run {
            model: &state.model,
            reading: &state.reading,
            top_k,
            regions: state.regions,
        };
        let classes = state.model.num_classes();
        let format = state.format.as_mut();
        let (width, height) = backend::frame_size(format.as_deref());
        let step = state.scheduler.frame(
            &run,
            inbuf,
            Arrival {
                at: arrived,
                interval,
                late,
            },
            |buffer, number, input| {
                input.frame = backend::frame_info(buffer, number, segment);
                let selection = selection.as_ref();
                backend::prepare(format, buffer, selection, &mut input.buffers, classes)
            },
        );
        let (replaced, forwards, images) = state.model.counters();
        let overlap = match (state.async_, state.scheduler.live()) {
            (false, Some(false)) => Some(state.scheduler.overlap().choice()),
            _ => None,
        };
        drop(guard);

        self.publisher.update_stats(|s| {
            s.replaced = replaced;
            if forwards > 0 {
                s.mean_batch_size = images as f64 / forwards as f64;
            }
            if let Some(o) = overlap {
                s.overlap = o.mode;
                s.overlap_times = o.pipelined_time.zip(o.serial_time);
            }
        });
        self.finish(step.out, (width, height), Some(arrived), step.error)
    }

    /// Frames the scheduler let out, as `publish` takes them; a failed result ends the list (the
    /// frames after it are not let out). The frame that arrived at `current`, if it waited for
    /// its own result, measures the processing latency.
    fn finish(
        &self,
        outs: Vec<Out<gst::Buffer, Output>>,
        (width, height): (u32, u32),
        current: Option<Instant>,
        mut failure: Option<Failure>,
    ) -> Finished {
        let mut latency_grew = false;
        let mut buffers = Vec::with_capacity(outs.len());
        for out in outs {
            let (mut inferred, mut late) = (None, false);
            match out.outcome {
                Outcome::Fresh(Ok(i)) => inferred = Some(i),
                Outcome::Fresh(Err(e)) => {
                    failure.get_or_insert(Failure {
                        flow: gst::FlowError::Error,
                        message: gst::error_msg!(gst::LibraryError::Failed, ("{}", e)),
                    });
                    break; // frames after a failed one are not let out
                }
                Outcome::Late => late = true,
                Outcome::Carry | Outcome::Submitted | Outcome::Lost => {}
            }
            let waited = inferred.is_some();
            if let Some(arrived) = current.filter(|&at| waited && out.arrived == at) {
                // A frame that waited for its own result: the processing latency.
                let spent = gst::ClockTime::try_from(arrived.elapsed()).unwrap_or_default();
                let mut latency = lock(&self.latency);
                if spent > *latency {
                    *latency = spent * 5 / 4;
                    latency_grew = true;
                }
            }
            buffers.push((
                out.item,
                publish::Frame {
                    inferred,
                    late,
                    arrived: out.arrived,
                    width,
                    height,
                },
            ));
        }
        Finished {
            buffers,
            failure,
            latency_grew,
        }
    }

    /// Publishes finished frames and posts what went wrong, with no lock held: the buffers to
    /// push, in order, and the flow error to return after them.
    fn publish(&self, finished: Finished) -> (Vec<gst::Buffer>, Option<gst::FlowError>) {
        let (post_messages, stats_interval) = {
            let s = self.settings();
            (
                s.post_messages,
                Duration::from_millis(s.stats_interval.into()),
            )
        };
        let element = self.element();
        let mut out = Vec::with_capacity(finished.buffers.len());
        for (mut buffer, frame) in finished.buffers {
            if let Some(Inferred::Classified(c)) = &frame.inferred {
                gst::trace!(
                    CAT,
                    imp = self,
                    "frame {}: {} {:.3} ({} us)",
                    c.frame.number,
                    c.label(),
                    c.confidence(),
                    c.inference_time.useconds()
                );
            }
            self.publisher.frame(
                &element,
                buffer.make_mut(),
                frame,
                post_messages,
                stats_interval,
            );
            out.push(buffer);
        }
        if finished.latency_grew {
            gst::debug!(
                CAT,
                imp = self,
                "Processing latency grew, asking for a new one"
            );
            let _ = element.post_message(gst::message::Latency::builder().src(&element).build());
        }
        let flow = finished.failure.map(|f| {
            if f.flow != gst::FlowError::Flushing {
                self.post_error_message(f.message);
            }
            f.flow
        });
        (out, flow)
    }

    /// Lets a held frame out (before a serialized event, so the event stays behind it). A push
    /// that fails leaves its flow for the next `generate_output` (or EOS) to report.
    fn drain(&self) {
        let top_k = self.settings().top_k as usize;
        let (outs, size) = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                return;
            };
            let run = Run {
                model: &state.model,
                reading: &state.reading,
                top_k,
                regions: state.regions,
            };
            let size = backend::frame_size(state.format.as_ref());
            (state.scheduler.drain(&run), size)
        };
        if outs.is_empty() {
            return;
        }
        let (buffers, flow) = self.publish(self.finish(outs, size, None, None));
        let mut result = flow.map_or(Ok(gst::FlowSuccess::Ok), Err);
        for buffer in buffers {
            if result.is_ok() {
                result = self.obj().src_pad().push(buffer);
            }
        }
        gst::debug!(CAT, imp = self, "Drained the held frame: {result:?}");
        if let Err(e) = result {
            *lock(&self.pending_error) = Some(e);
        }
    }

    /// Forgets per-stream things after a flush: frame numbers, the held frame, the newest result,
    /// QoS, and an async frame still waiting for the model.
    fn reset_stream(&self) {
        let top_k = self.settings().top_k as usize;
        if let Some(state) = self.state().as_mut() {
            let run = Run {
                model: &state.model,
                reading: &state.reading,
                top_k,
                regions: state.regions,
            };
            state.scheduler.flush(&run);
        }
        lock(&self.ready).clear();
        *lock(&self.pending_error) = None;
        self.publisher.reset_stream();
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
        settings::properties()
    }

    fn constructed(&self) {
        self.parent_constructed();
        // Late frames skip inference (they still pass): on by default, as in video filters.
        self.obj().set_qos(true);
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.settings().set(value, pspec);
        gst::debug!(CAT, imp = self, "{} = {:?}", pspec.name(), value);
        if matches!(pspec.name(), "model" | "labels")
            && let Some(reloader) = lock(&self.reloader).as_ref()
        {
            reloader.request();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.publisher.stats().to_value();
        }
        self.settings().get(pspec)
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
                 results go to buffer meta (with the analytics feature, GstAnalytics \
                 classification meta too) and `torchclassify` element messages",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(crate::classify_pad_templates);
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
        *lock(&self.latency) = gst::ClockTime::ZERO;
        let loaded = self
            .load_model(&settings)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        self.apply_loaded(&loaded);
        // Failing after the load: the model goes with `loaded`, and this element leaves it.
        let leave = |e: gst::ErrorMessage| {
            self.leave_shared(settings.model_instance_id.as_deref());
            e
        };
        let writer = match &settings.results_file {
            None => None,
            Some(path) => Some(
                ResultsWriter::create(path)
                    .map_err(|e| {
                        gst::error_msg!(
                            gst::ResourceError::OpenWrite,
                            (
                                "Cannot create results file '{}' (property 'results-file'): {}",
                                path,
                                e
                            )
                        )
                    })
                    .map_err(leave)?,
            ),
        };
        let reloader = self
            .start_reloader()
            .map_err(|e| leave(gst::error_msg!(gst::CoreError::Failed, ("{}", e))))?;
        self.publisher
            .start(writer, crate::inference::current_engine());
        *lock(&self.qos_earliest) = None;
        *lock(&self.pending_error) = None;
        *self.state() = Some(State {
            model: loaded.model,
            regions: settings.inference_region == InferenceRegion::RoiList,
            reading: loaded.reading,
            format: None,
            input: loaded.input,
            async_: settings.async_,
            scheduler: Scheduler::new(
                settings.async_,
                Overlap::measured(OVERLAP_WARM_UP, OVERLAP_WINDOW),
            ),
        });
        *lock(&self.reloader) = Some(reloader);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // The loader first (joined with no lock held: its swap takes the state lock), then the
        // state, dropped outside its lock (dropping the model joins its thread, and an async
        // result being delivered takes the element's other locks).
        let reloader = lock(&self.reloader).take();
        if let Some(reloader) = reloader {
            reloader.stop();
        }
        let state = self.state().take();
        drop(state);
        let id = self.settings().model_instance_id.clone();
        self.leave_shared(id.as_deref());
        lock(&self.ready).clear();
        self.publisher.stop(&self.element());
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
            let ours = *lock(&self.latency);
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
            let diff_abs = gst::ClockTime::from_nseconds(diff.unsigned_abs());
            *lock(&self.qos_earliest) = timestamp.map(|t| {
                if diff >= 0 {
                    t.saturating_add(diff_abs)
                } else {
                    t.saturating_sub(diff_abs)
                }
            });
            // Not through BaseTransform: with `qos` on it would drop late frames, where this
            // element passes them on without inference.
            return self.obj().sink_pad().push_event(event);
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
                // Let the last async frame's result out before EOS; a shared model's batches stop
                // waiting for this stream.
                let idle = match self.state().as_ref() {
                    Some(state) => {
                        state.model.end_of_stream();
                        !state.async_ || state.model.wait_idle(EOS_WAIT)
                    }
                    None => true,
                };
                if !idle {
                    gst::warning!(CAT, imp = self, "Model still busy at EOS");
                }
                // A held frame that could not be pushed: nobody will return that flow now.
                let failed = lock(&self.pending_error).take();
                if let Some(flow) = failed
                    && !matches!(flow, gst::FlowError::Flushing | gst::FlowError::Eos)
                {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        (
                            "Internal data stream error: the last frame's push gave {:?}",
                            flow
                        )
                    );
                }
                let post_stats = self.settings().stats_interval > 0;
                self.publisher.eos(&self.element(), post_stats);
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {}", incaps))?;
        let resizes = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                return Err(gst::loggable_error!(CAT, "Caps before start"));
            };
            let format = Format::new(info, &state.input)
                .ok_or_else(|| gst::loggable_error!(CAT, "Unsupported caps {}", incaps))?;
            let resizes = format.preprocessor.resizes();
            state.format = Some(format);
            resizes
        };
        gst::debug!(
            CAT,
            imp = self,
            "Caps {} ({})",
            incaps,
            if resizes { "resampled" } else { "copied" }
        );
        self.parent_set_caps(incaps, outcaps)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if let Some(buffer) = lock(&self.ready).pop_front() {
            return Ok(GenerateOutputSuccess::Buffer(buffer));
        }
        if let Some(flow) = lock(&self.pending_error).take() {
            return Err(flow);
        }
        let Some(inbuf) = self.take_queued_buffer() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        let finished = self.process(inbuf);
        let (buffers, flow) = self.publish(finished);
        let mut buffers = buffers.into_iter();
        let first = buffers.next();
        lock(&self.ready).extend(buffers);
        match (first, flow) {
            (Some(first), flow) => {
                *lock(&self.pending_error) = flow;
                Ok(GenerateOutputSuccess::Buffer(first))
            }
            (None, Some(flow)) => Err(flow),
            (None, None) => Ok(GenerateOutputSuccess::NoOutput),
        }
    }
}
