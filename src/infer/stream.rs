//! The streaming thread's side of an inference element: the scheduler, the negotiated format, and the
//! model this stream's frames go to. Only the streaming thread (and `stop`, once it has ended)
//! touches a [`Stream`]; it is the one thing locked while a frame waits for the model, so a
//! query, a property, a hot swap or another element never waits for a forward.
//!
//! A hot swap replaces the element's [`Active`] model; the stream follows at its next step
//! ([`Stream::follow`]): a held frame gets its result from the model that runs it, and frames are
//! prepared for the new model's input from then on.

use super::Task;
use super::backend::{self, Failure, Format, Model, Output, Run};
use std::sync::Arc;
use torchcore::batch::Counters;
use torchcore::preprocess::InputSpec;
use torchcore::scheduler::{Arrival, Out, Overlap, OverlapChoice, Scheduler};

/// The element's model as loaded (or swapped in), and how to feed and read it. Cheap to clone.
pub struct Active<T: Task> {
    pub model: Arc<Model<T>>,
    pub reading: Arc<T::Reading>,
    /// What the model takes.
    pub input: InputSpec,
    /// Counts swaps: a stream whose number differs follows.
    pub generation: u64,
}

impl<T: Task> Clone for Active<T> {
    fn clone(&self) -> Self {
        Active {
            model: self.model.clone(),
            reading: self.reading.clone(),
            input: self.input,
            generation: self.generation,
        }
    }
}

/// What one step let out: frames in order, the error to report after them, the model's counters
/// and the overlap choice for the stats, and the frame size for the full-frame ROI meta.
pub struct Step<T: Task> {
    pub outs: Outs<T>,
    pub failure: Option<Failure>,
    pub counters: Counters,
    pub overlap: Option<OverlapChoice>,
    pub size: (u32, u32),
}

/// Frames let out, in order, with what became of each.
pub type Outs<T> = Vec<Out<gst::Buffer, Output<T>>>;

/// See the module docs.
pub struct Stream<T: Task> {
    scheduler: Scheduler<gst::Buffer, Output<T>>,
    format: Option<Format>,
    active: Active<T>,
    /// `async`, fixed while running.
    async_: bool,
}

impl<T: Task> Stream<T> {
    pub fn new(active: Active<T>, async_: bool, overlap: Overlap) -> Stream<T> {
        Stream {
            scheduler: Scheduler::new(async_, overlap),
            format: None,
            active,
            async_,
        }
    }

    fn run<'a>(active: &'a Active<T>, params: &'a T::Params) -> Run<'a, T> {
        Run {
            model: &active.model,
            reading: &active.reading,
            params,
        }
    }

    /// Moves to `active` if it is another model than the stream's: the held frame's result is
    /// collected from the model that runs it first, and the frames are prepared for the new
    /// model's input. Returns the model the stream left, for the caller to drop outside its
    /// locks (dropping the last handle joins the model's thread).
    pub fn follow(&mut self, active: &Active<T>, params: &T::Params) -> Option<Active<T>> {
        if active.generation == self.active.generation {
            return None;
        }
        self.scheduler.collect(&Self::run(&self.active, params));
        if active.input != self.active.input {
            // The new model takes other input: the same frames, prepared anew.
            self.format = self
                .format
                .as_ref()
                .and_then(|f| f.with_input(&active.input));
        }
        Some(std::mem::replace(&mut self.active, active.clone()))
    }

    /// The model the stream's frames go to.
    pub fn model(&self) -> &Arc<Model<T>> {
        &self.active.model
    }

    /// Whether upstream is live, once asked (per stream).
    pub fn live(&self) -> Option<bool> {
        self.scheduler.live()
    }

    pub fn set_live(&mut self, live: bool) {
        self.scheduler.set_live(live);
    }

    /// New caps: the converter for their frames; None for a format the element does not take.
    /// Returns whether the frames are resampled (not copied).
    pub fn set_format(&mut self, info: gst_video::VideoInfo) -> Option<bool> {
        let format = Format::new(info, &self.active.input)?;
        let resizes = format.preprocessor.resizes();
        self.format = Some(format);
        Some(resizes)
    }

    /// The negotiated frame size (0 x 0 before caps).
    fn size(&self) -> (u32, u32) {
        backend::frame_size(self.format.as_ref())
    }

    /// One frame's way through the scheduler: see the scheduler's docs. In blocking mode this
    /// waits for the model (for this frame, or the one held before it).
    pub fn frame(
        &mut self,
        buffer: gst::Buffer,
        arrival: Arrival,
        params: &T::Params,
        segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
    ) -> Step<T> {
        let size = self.size();
        let run = Self::run(&self.active, params);
        let format = self.format.as_mut();
        let step = self
            .scheduler
            .frame(&run, buffer, arrival, |buffer, number, input| {
                input.frame = backend::frame_info(buffer, number, segment);
                let reading = (params, &*run.reading);
                backend::prepare::<T>(format, buffer, number, reading, &mut input.buffers)
            });
        let overlap = match (self.async_, self.scheduler.live()) {
            (false, Some(false)) => Some(self.scheduler.overlap().choice()),
            _ => None,
        };
        Step {
            outs: step.out,
            failure: step.error,
            counters: self.active.model.counters(),
            overlap,
            size,
        }
    }

    /// Lets the held frame out with its result (before a serialized event), and the frame size.
    pub fn drain(&mut self, params: &T::Params) -> (Outs<T>, (u32, u32)) {
        let run = Self::run(&self.active, params);
        (self.scheduler.drain(&run), self.size())
    }

    /// A flush: the queued job dropped, the held frame forgotten, numbering from 0.
    pub fn flush(&mut self, params: &T::Params) {
        let run = Self::run(&self.active, params);
        self.scheduler.flush(&run);
    }
}
