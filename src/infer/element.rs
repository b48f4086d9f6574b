//! An inference element's state and its GStreamer glue, for any [`Task`]: start/stop, events,
//! queries, caps and the per-frame calls. The element's `imp.rs` owns an [`Inference`] and calls
//! it from its virtual methods (and makes the parent class's calls itself). Which frame runs
//! when is the core scheduler's (through [`Stream`]); loading and hot swap are in `models.rs`;
//! frames out in `frames.rs`.
//!
//! Every buffer goes through BaseTransform's `submit_input_buffer` (caps renegotiation, the
//! queued buffer) and leaves from `generate_output`, which takes it through the scheduler: a
//! frame can come out at once, later (held while the model runs it) or after another.
//!
//! Lock order: a thread holding one of these may take those after it, never one before:
//! `reloader` → `stream` → `active` → `settings` → `qos_earliest` → `latency` →
//! `ready`/`pending_error` → the publisher's locks (publish.rs) → the model's (the core's
//! batch hub). `stream` is the only lock held while waiting for the model, and only the
//! streaming thread takes it (and `stop`, once streaming ended): queries, properties, hot swaps
//! and other elements never wait for a forward. `reloader` is never held while the loader thread
//! is joined. Nothing is posted or pushed with any of them held: errors found under a lock are
//! carried out of it and posted after, so a synchronous bus handler may call back into the
//! element (set `model`, say). (Only the analytics meta's warnings, when a meta cannot be added,
//! are logged under the publisher's `results` lock, which its meta is written under.)

use super::Task;
use super::backend::Failure;
use super::loader::Reloader;
use super::publish::{self, Publisher};
use super::stream::{Active, Stream};
use crate::lock;
use gst::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use torchcore::results::ResultsWriter;
use torchcore::scheduler::{Arrival, Overlap};
use torchcore::settings::Settings;

mod frames;
mod models;

/// How long EOS waits for the last async inference to finish.
const EOS_WAIT: Duration = Duration::from_secs(10);
/// Blocking mode on a non-live stream: frames before the overlap is measured, and intervals
/// measured each way (see the core scheduler's `Overlap`).
const OVERLAP_WARM_UP: u32 = 4;
const OVERLAP_WINDOW: u32 = 16;

/// See the module docs.
pub struct Inference<T: Task> {
    settings: Mutex<Settings<T::Settings>>,
    /// The model while running: loaded at start, replaced by a hot swap.
    active: Mutex<Option<Active<T>>>,
    /// The streaming thread's state while running.
    stream: Mutex<Option<Stream<T>>>,
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
    publisher: Publisher<T>,
    cat: gst::DebugCategory,
}

impl<T: Task> Inference<T> {
    /// `cat` is the element's debug category.
    pub fn new(cat: gst::DebugCategory) -> Self {
        Inference {
            settings: Mutex::new(Settings::default()),
            active: Mutex::new(None),
            stream: Mutex::new(None),
            reloader: Mutex::new(None),
            qos_earliest: Mutex::new(None),
            latency: Mutex::new(gst::ClockTime::ZERO),
            ready: Mutex::new(VecDeque::new()),
            pending_error: Mutex::new(None),
            publisher: Publisher::default(),
            cat,
        }
    }
}

/// What one step of the frame path hands back from under the stream lock.
struct Finished<T: Task> {
    buffers: Vec<(gst::Buffer, publish::Frame<T>)>,
    failure: Option<Failure>,
    latency_grew: bool,
}

/// A duration as a clock time (zero past the clock's range, some 584 years).
fn clock_time(d: Duration) -> gst::ClockTime {
    gst::ClockTime::try_from(d).unwrap_or(gst::ClockTime::ZERO)
}

/// The element, as its base class (every inference element is a BaseTransform).
pub type Element = gst_base::BaseTransform;

impl<T: Task> Inference<T> {
    /// The settings, locked.
    pub fn settings(&self) -> MutexGuard<'_, Settings<T::Settings>> {
        lock(&self.settings)
    }

    /// The `stats` property's value.
    pub fn stats(&self) -> gst::Structure {
        self.publisher.stats()
    }

    /// A property was set (in the settings): a new model or labels reload while running.
    pub fn property_set(&self, element: &Element, pspec: &gst::glib::ParamSpec) {
        gst::debug!(self.cat, obj = element, "{} set", pspec.name());
        if matches!(pspec.name(), "model" | "labels")
            && let Some(reloader) = lock(&self.reloader).as_ref()
        {
            reloader.request();
        }
    }

    /// Whether the stream upstream is live (an unanswered query counts as live).
    fn upstream_is_live(element: &Element) -> bool {
        let mut q = gst::query::Latency::new();
        !element.sink_pad().peer_query(&mut q) || q.result().0
    }

    /// True if `qos` is on and downstream QoS says a frame at `running_time` is already late.
    fn is_late(&self, element: &Element, running_time: Option<gst::ClockTime>) -> bool {
        if !element.is_qos() {
            return false;
        }
        match (running_time, *lock(&self.qos_earliest)) {
            (Some(t), Some(earliest)) => t <= earliest,
            _ => false,
        }
    }

    /// Runs `f` on the stream (None before start) under its lock, the stream first moved to the
    /// active model if a hot swap replaced it. What it left, maybe the last handle on a model
    /// thread (which joins that thread), is dropped after the lock.
    fn with_stream<R>(&self, params: &T::Params, f: impl FnOnce(Option<&mut Stream<T>>) -> R) -> R {
        let active = lock(&self.active).clone();
        let mut stream = lock(&self.stream);
        let left = match (stream.as_mut(), active) {
            (Some(s), Some(a)) => s.follow(&a, params),
            _ => None,
        };
        let result = f(stream.as_mut());
        drop(stream);
        drop(left);
        result
    }

    /// One frame's way through the scheduler; see the module docs.
    fn process(&self, element: &Element, inbuf: gst::Buffer) -> Finished<T> {
        let arrived = Instant::now();
        let segment = element.segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let running_time = segment.and_then(|s| inbuf.pts().and_then(|pts| s.to_running_time(pts)));
        let late = self.is_late(element, running_time);
        let ask_live = lock(&self.stream)
            .as_ref()
            .is_some_and(|s| s.live().is_none());
        // A query upstream, with no lock held.
        let live = ask_live.then(|| Self::upstream_is_live(element));
        let (interval, params) = {
            let s = self.settings();
            (s.inference_interval as u64, T::params(&s))
        };
        let arrival = Arrival {
            at: arrived,
            interval,
            late,
        };
        let step = self.with_stream(&params, |stream| {
            let stream = stream?;
            if let Some(live) = live {
                gst::debug!(self.cat, obj = element, "Upstream is live: {live}");
                stream.set_live(live);
            }
            Some(stream.frame(inbuf, arrival, &params, segment))
        });
        let Some(step) = step else {
            return Finished {
                buffers: vec![],
                failure: Some(Failure {
                    flow: gst::FlowError::Flushing,
                    message: gst::error_msg!(gst::CoreError::StateChange, ("Not started")),
                }),
                latency_grew: false,
            };
        };

        let counters = step.counters;
        self.publisher.update_stats(|s| {
            s.replaced = counters.replaced;
            if counters.forwards > 0 {
                s.mean_batch_size = counters.images as f64 / counters.forwards as f64;
            }
            if let Some(o) = step.overlap {
                s.overlap = o.mode;
                s.overlap_times = o.pipelined_time.zip(o.serial_time);
            }
        });
        self.finish(step.outs, step.size, Some(arrived), step.failure)
    }

    /// Lets a held frame out (before a serialized event, so the event stays behind it). A push
    /// that fails leaves its flow for the next `generate_output` (or EOS) to report.
    fn drain(&self, element: &Element) {
        let params = T::params(&self.settings());
        let drained = self.with_stream(&params, |s| s.map(|s| s.drain(&params)));
        let Some((outs, size)) = drained else { return };
        if outs.is_empty() {
            return;
        }
        let (buffers, flow) = self.publish(element, self.finish(outs, size, None, None));
        let mut result = flow.map_or(Ok(gst::FlowSuccess::Ok), Err);
        for buffer in buffers {
            if result.is_ok() {
                result = element.src_pad().push(buffer);
            }
        }
        gst::debug!(
            self.cat,
            obj = element,
            "Drained the held frame: {result:?}"
        );
        if let Err(e) = result {
            *lock(&self.pending_error) = Some(e);
        }
    }

    /// Forgets per-stream things after a flush: frame numbers, the held frame, the newest result,
    /// QoS, and an async frame still waiting for the model.
    fn reset_stream(&self) {
        let params = T::params(&self.settings());
        self.with_stream(&params, |s| {
            if let Some(stream) = s {
                stream.flush(&params);
            }
        });
        lock(&self.ready).clear();
        *lock(&self.pending_error) = None;
        self.publisher.reset_stream();
        *lock(&self.qos_earliest) = None;
    }

    /// End of stream: batches of a shared model stop waiting for this stream; in async mode the
    /// last frame's result is let out first. True if no job of this element is left.
    fn end_of_stream(&self) -> bool {
        let model = lock(&self.stream).as_ref().map(|s| s.model().clone());
        let async_ = self.settings().async_;
        // Waited for with no lock held.
        model.is_none_or(|model| {
            model.end_of_stream();
            !async_ || model.wait_idle(EOS_WAIT)
        })
    }

    /// BaseTransform's `start`: loads the model as the settings say.
    pub fn start(&self, element: &Element) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings().clone();
        *lock(&self.latency) = gst::ClockTime::ZERO;
        let loaded = self
            .load_model(element, &settings)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        self.apply_loaded(element, &loaded);
        // Failing after the load: the model goes with `loaded`, and this element leaves it.
        let leave = |e: gst::ErrorMessage| {
            Self::leave_shared(element, settings.model_instance_id.as_deref());
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
            .start_reloader(element)
            .map_err(|e| leave(gst::error_msg!(gst::CoreError::Failed, ("{}", e))))?;
        self.publisher.start(writer, crate::model::current_engine());
        *lock(&self.qos_earliest) = None;
        *lock(&self.pending_error) = None;
        let active = Active {
            model: Arc::new(loaded.model),
            reading: loaded.reading,
            input: loaded.input,
            generation: 0,
        };
        *lock(&self.stream) = Some(Stream::new(
            active.clone(),
            settings.async_,
            Overlap::measured(OVERLAP_WARM_UP, OVERLAP_WINDOW),
        ));
        *lock(&self.active) = Some(active);
        *lock(&self.reloader) = Some(reloader);
        Ok(())
    }

    /// BaseTransform's `stop`.
    pub fn stop(&self, element: &Element) {
        // The loader first (joined with no lock held: its swap takes the active lock), then the
        // model and the stream, dropped outside their locks (dropping the model joins its thread,
        // and an async result being delivered takes the element's other locks).
        let reloader = lock(&self.reloader).take();
        if let Some(reloader) = reloader {
            reloader.stop();
        }
        let active = lock(&self.active).take();
        let stream = lock(&self.stream).take();
        drop((active, stream));
        let id = self.settings().model_instance_id.clone();
        Self::leave_shared(element, id.as_deref());
        lock(&self.ready).clear();
        self.publisher.stop(element.upcast_ref());
    }

    /// After the parent class answered a query: blocking mode holds each frame for the model's
    /// time, so a LATENCY query gets it added. Async mode adds nothing.
    pub fn query(
        &self,
        element: &Element,
        direction: gst::PadDirection,
        query: &mut gst::QueryRef,
    ) {
        if direction != gst::PadDirection::Src {
            return;
        }
        let gst::QueryViewMut::Latency(q) = query.view_mut() else {
            return;
        };
        if lock(&self.active).is_none() || self.settings().async_ {
            return;
        }
        let ours = *lock(&self.latency);
        let (live, min, max) = q.result();
        gst::debug!(
            self.cat,
            obj = element,
            "Adding {ours} of latency to {min}..{max:?}"
        );
        q.set(live, min + ours, max.map(|m| m + ours));
    }

    /// A QoS event from downstream: frames up to its time are late (skipped in blocking mode),
    /// and it goes on upstream. Other events are the caller's (back as `Err`).
    pub fn src_event(&self, element: &Element, event: gst::Event) -> Result<bool, gst::Event> {
        let gst::EventView::Qos(q) = event.view() else {
            return Err(event);
        };
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
        Ok(element.sink_pad().push_event(event))
    }

    /// Before the parent class sees a sink event: a held frame goes out before any serialized
    /// event (EOS, caps, segment, gap, ...); a flush resets the stream; EOS lets the last
    /// results out and posts the final stats.
    pub fn sink_event(&self, element: &Element, event: &gst::Event) {
        if event.is_serialized() && event.type_() != gst::EventType::FlushStop {
            self.drain(element);
        }
        match event.view() {
            gst::EventView::FlushStop(_) => self.reset_stream(),
            gst::EventView::Eos(_) => {
                // Let the last async frame's result out before EOS; a shared model's batches stop
                // waiting for this stream.
                if !self.end_of_stream() {
                    gst::warning!(self.cat, obj = element, "Model still busy at EOS");
                }
                // A held frame that could not be pushed: nobody will return that flow now.
                let failed = lock(&self.pending_error).take();
                if let Some(flow) = failed
                    && !matches!(flow, gst::FlowError::Flushing | gst::FlowError::Eos)
                {
                    gst::element_error!(
                        element,
                        gst::StreamError::Failed,
                        (
                            "Internal data stream error: the last frame's push gave {:?}",
                            flow
                        )
                    );
                }
                let post_stats = self.settings().stats_interval > 0;
                self.publisher.eos(element.upcast_ref(), post_stats);
            }
            _ => {}
        }
    }

    /// New caps, before the parent class takes them: the converter for their frames.
    pub fn set_caps(
        &self,
        element: &Element,
        incaps: &gst::Caps,
    ) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(self.cat, "Invalid caps {}", incaps))?;
        let params = T::params(&self.settings());
        let resizes = self.with_stream(&params, |s| match s {
            None => Err(gst::loggable_error!(self.cat, "Caps before start")),
            Some(stream) => stream
                .set_format(info)
                .ok_or_else(|| gst::loggable_error!(self.cat, "Unsupported caps {}", incaps)),
        })?;
        gst::debug!(
            self.cat,
            obj = element,
            "Caps {} ({})",
            incaps,
            if resizes { "resampled" } else { "copied" }
        );
        Ok(())
    }

    /// BaseTransform's `generate_output`: a frame finished before, or the queued buffer
    /// (`queued`) taken through the frame path.
    pub fn generate_output(
        &self,
        element: &Element,
        queued: impl FnOnce() -> Option<gst::Buffer>,
    ) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if let Some(buffer) = lock(&self.ready).pop_front() {
            return Ok(GenerateOutputSuccess::Buffer(buffer));
        }
        if let Some(flow) = lock(&self.pending_error).take() {
            return Err(flow);
        }
        let Some(inbuf) = queued() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        let finished = self.process(element, inbuf);
        let (buffers, flow) = self.publish(element, finished);
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
