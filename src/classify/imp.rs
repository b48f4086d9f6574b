//! GStreamer glue of `torchclassify`: properties, caps, start/stop, events, queries and the
//! per-frame calls. Which frame runs when is the core scheduler's (through `stream`); loading
//! and hot swap `loader`'s; meta, messages, JSON lines and stats `publish`'s; the properties
//! `settings`'.
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
//! is joined. Nothing is posted, pushed or logged at warning level with any of them held: errors
//! found under a lock are carried out of it and posted after, so a synchronous bus handler may
//! call back into the element (set `model`, say).

use super::backend::{self, Failure, Inferred, OnResult, Output, Reading, Selection};
use super::loader::{self, Loaded, Reloader};
use super::publish::{self, Publisher};
use super::settings;
use super::stream::{Active, FrameSettings, Stream};
use crate::lock;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use torchcore::results::ResultsWriter;
use torchcore::scheduler::{Arrival, Out, Outcome, Overlap};
use torchcore::settings::{InferenceRegion, Settings};
use torchcore::sharing::{Joined, Member};

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
/// measured each way (see the core scheduler's `Overlap`).
const OVERLAP_WARM_UP: u32 = 4;
const OVERLAP_WINDOW: u32 = 16;

pub struct TorchClassify {
    settings: Mutex<Settings>,
    /// The model while running: loaded at start, replaced by a hot swap.
    active: Mutex<Option<Active>>,
    /// The streaming thread's state while running.
    stream: Mutex<Option<Stream>>,
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
            active: Mutex::new(None),
            stream: Mutex::new(None),
            reloader: Mutex::new(None),
            qos_earliest: Mutex::new(None),
            latency: Mutex::new(gst::ClockTime::ZERO),
            ready: Mutex::new(VecDeque::new()),
            pending_error: Mutex::new(None),
            publisher: Publisher::default(),
        }
    }
}

/// What one step of the frame path hands back from under the stream lock.
struct Finished {
    buffers: Vec<(gst::Buffer, publish::Frame)>,
    failure: Option<Failure>,
    latency_grew: bool,
}

mod frames;
mod models;

fn clock_time(d: Duration) -> gst::ClockTime {
    gst::ClockTime::try_from(d).unwrap_or(gst::ClockTime::ZERO)
}

impl TorchClassify {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        lock(&self.settings)
    }

    fn element(&self) -> gst::Element {
        self.obj().clone().upcast()
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

    /// The stream, moved to the active model if a hot swap replaced it (what it left is dropped
    /// by the caller, after the locks).
    fn stream(&self, top_k: usize) -> (MutexGuard<'_, Option<Stream>>, Option<Active>) {
        let active = lock(&self.active).clone();
        let mut stream = lock(&self.stream);
        let left = match (stream.as_mut(), active) {
            (Some(s), Some(a)) => s.follow(&a, top_k),
            _ => None,
        };
        (stream, left)
    }

    /// One frame's way through the scheduler; see the module docs.
    fn process(&self, inbuf: gst::Buffer) -> Finished {
        let arrived = Instant::now();
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let late =
            self.is_late(segment.and_then(|s| inbuf.pts().and_then(|pts| s.to_running_time(pts))));
        let ask_live = lock(&self.stream)
            .as_ref()
            .is_some_and(|s| s.live().is_none());
        // A query upstream, with no lock held.
        let live = ask_live.then(|| self.upstream_is_live());
        let frame_settings = {
            let s = self.settings();
            FrameSettings {
                interval: s.inference_interval as u64,
                top_k: s.top_k as usize,
                selection: (s.inference_region == InferenceRegion::RoiList).then(|| Selection {
                    object_class: s.object_class.clone(),
                    min_size: s.min_roi_size,
                }),
            }
        };
        let (mut guard, left) = self.stream(frame_settings.top_k);
        let Some(stream) = guard.as_mut() else {
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
            stream.set_live(live);
        }
        let arrival = Arrival {
            at: arrived,
            interval: frame_settings.interval,
            late,
        };
        let step = stream.frame(inbuf, arrival, &frame_settings, segment);
        drop(guard);
        drop(left);

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
    fn drain(&self) {
        let top_k = self.settings().top_k as usize;
        let (outs, size) = {
            let (mut guard, left) = self.stream(top_k);
            let drained = guard.as_mut().map(|s| s.drain(top_k));
            drop(guard);
            drop(left);
            match drained {
                Some(d) => d,
                None => return,
            }
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
        let (mut guard, left) = self.stream(top_k);
        if let Some(stream) = guard.as_mut() {
            stream.flush(top_k);
        }
        drop(guard);
        drop(left);
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
        settings::set(&mut self.settings(), value, pspec);
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
        settings::get_value(&self.settings(), pspec)
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
            LazyLock::new(crate::video::classify_pad_templates);
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
        self.publisher.start(writer, crate::model::current_engine());
        *lock(&self.qos_earliest) = None;
        *lock(&self.pending_error) = None;
        let active = Active {
            model: Arc::new(loaded.model),
            reading: Arc::new(loaded.reading),
            input: loaded.input,
            generation: 0,
        };
        *lock(&self.stream) = Some(Stream::new(
            active.clone(),
            settings.inference_region == InferenceRegion::RoiList,
            settings.async_,
            Overlap::measured(OVERLAP_WARM_UP, OVERLAP_WINDOW),
        ));
        *lock(&self.active) = Some(active);
        *lock(&self.reloader) = Some(reloader);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
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
        let blocking = latency && lock(&self.active).is_some() && !self.settings().async_;
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
                let idle = self.end_of_stream();
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
        let top_k = self.settings().top_k as usize;
        let (mut guard, left) = self.stream(top_k);
        let resizes = match guard.as_mut() {
            None => Err(gst::loggable_error!(CAT, "Caps before start")),
            Some(stream) => stream
                .set_format(info)
                .ok_or_else(|| gst::loggable_error!(CAT, "Unsupported caps {}", incaps)),
        };
        drop(guard);
        drop(left);
        let resizes = resizes?;
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
