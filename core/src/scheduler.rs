//! Which frames the model runs on, when, and in which order frames leave: the rules of
//! `torchclassify`'s frame path without GStreamer or libtorch, so they are unit-tested over a
//! fake model.
//!
//! Every frame takes one way, [`Scheduler::frame`]:
//! - numbering (from start or the last flush) and `inference-interval`: a frame not due carries
//!   the newest result ([`Outcome::Carry`]);
//! - async mode: a due frame's input replaces one still waiting for the model (newest wins) and
//!   the frame goes on at once ([`Outcome::Submitted`]); the result arrives on the model thread;
//! - blocking mode: a frame late by QoS skips the model ([`Outcome::Late`]); otherwise its input
//!   is queued to the model as a job named by a [`Ticket`]. Serial: the frame waits for its
//!   result. Pipelined (non-live streams, when [`Overlap`] measured it to be faster): the frame is
//!   held while the model runs it and the next frame is prepared, then leaves with its result
//!   ([`Outcome::Fresh`]) before the next one.
//!
//! Frames leave in the order they came. Results are collected by ticket, so a flush or a stop
//! never waits for a job that was discarded, and a result can never be given to another frame.
//!
//! The unit of work is a [`Backend`] job: one prepared input and one output. A job can grow into
//! a batch (the regions of one frame, or frames of several streams sharing a model) by making
//! the backend's `Input`/`Output` hold several; the scheduler only sees tickets.

use std::time::{Duration, Instant};

pub use crate::batch::Ticket;

/// The model as the scheduler sees it.
pub trait Backend {
    /// A prepared input (reused buffers).
    type Input;
    /// What a finished job gives a frame (a result, or the error that replaced it).
    type Output;
    /// Free buffers for one input.
    fn input(&self) -> Self::Input;
    /// Gives back an input that will not be run (its preparation failed).
    fn recycle(&self, input: Self::Input);
    /// Queues a job whose output [`Backend::wait`] collects; may wait while another queued job
    /// has not started.
    fn queue(&self, ticket: Ticket, input: Self::Input);
    /// Async mode: hands the input over, replacing one still waiting; returns at once.
    fn submit(&self, input: Self::Input);
    /// The output of the job `ticket`, waiting while it is queued or running; None if it was
    /// discarded (or the model stopped).
    fn wait(&self, ticket: Ticket) -> Option<Self::Output>;
    /// Drops the job waiting for the model, if any (flush).
    fn discard_queued(&self);
}

/// What became of a frame.
#[derive(Debug, PartialEq)]
pub enum Outcome<O> {
    /// The model ran on it.
    Fresh(O),
    /// Not due (`inference-interval`): it carries the newest result.
    Carry,
    /// Due, but late by downstream QoS: no inference.
    Late,
    /// Async mode: handed to the model; the result comes on the model thread.
    Submitted,
    /// Its job was discarded before it ran (a flush while it was held): no result.
    Lost,
}

/// A frame on its way out, in arrival order.
#[derive(Debug, PartialEq)]
pub struct Out<T, O> {
    pub item: T,
    /// Its number since start or the last flush.
    pub number: u64,
    pub arrived: Instant,
    pub outcome: Outcome<O>,
}

/// How one frame arrives: what the element knows about it and the stream.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at: Instant,
    /// Run the model on every Nth frame.
    pub interval: u64,
    /// Downstream QoS says it is already late (and `qos` is on).
    pub late: bool,
}

/// The result of one step: frames to let out (in order), and an error to report after them.
pub struct Step<T, O, E> {
    pub out: Vec<Out<T, O>>,
    pub error: Option<E>,
}

/// Where a held frame's job is.
enum Job<O> {
    Queued(Ticket),
    /// Collected early (a model swap needs the old model's answer before it goes).
    Done(Option<O>),
}

struct Held<T, O> {
    item: T,
    number: u64,
    arrived: Instant,
    job: Job<O>,
}

/// Per-stream frame scheduling; see the module docs.
pub struct Scheduler<T, O> {
    async_: bool,
    /// Whether upstream is live (asked once per stream: None until then).
    live: Option<bool>,
    frames: u64,
    next_ticket: Ticket,
    held: Option<Held<T, O>>,
    overlap: Overlap,
}

impl<T, O> Scheduler<T, O> {
    pub fn new(async_: bool, overlap: Overlap) -> Self {
        Scheduler {
            async_,
            live: None,
            frames: 0,
            next_ticket: 0,
            held: None,
            overlap,
        }
    }

    pub fn live(&self) -> Option<bool> {
        self.live
    }

    pub fn set_live(&mut self, live: bool) {
        self.live = Some(live);
    }

    pub fn overlap(&self) -> &Overlap {
        &self.overlap
    }

    /// Whether a frame is held (pipelined mode).
    #[cfg(test)]
    pub fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// Takes one frame the whole way: see the module docs. `prepare` fills the model's input
    /// from the frame, given its number. A `prepare` error ends the step: the held frame is let
    /// out first, the failing frame is dropped, and the error is returned with it.
    pub fn frame<B, E>(
        &mut self,
        backend: &B,
        item: T,
        arrival: Arrival,
        prepare: impl FnOnce(&T, u64, &mut B::Input) -> Result<(), E>,
    ) -> Step<T, O, E>
    where
        B: Backend<Output = O>,
    {
        let number = self.frames;
        self.frames += 1;
        let mut out = Vec::with_capacity(2);
        let leave = |item, outcome| Out {
            item,
            number,
            arrived: arrival.at,
            outcome,
        };
        let due = number.is_multiple_of(arrival.interval.max(1));
        if !due || (!self.async_ && arrival.late) {
            self.release(backend, &mut out);
            out.push(leave(
                item,
                if due { Outcome::Late } else { Outcome::Carry },
            ));
            return Step { out, error: None };
        }
        let mut input = backend.input();
        if let Err(e) = prepare(&item, number, &mut input) {
            backend.recycle(input);
            self.release(backend, &mut out);
            return Step {
                out,
                error: Some(e),
            };
        }
        if self.async_ {
            backend.submit(input);
            self.release(backend, &mut out);
            out.push(leave(item, Outcome::Submitted));
            return Step { out, error: None };
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        // Queued before the held frame is collected: the model goes from one to the other.
        backend.queue(ticket, input);
        self.release(backend, &mut out);
        let pipelined = self.live == Some(false) && self.overlap.observe(arrival.at);
        if pipelined {
            self.held = Some(Held {
                item,
                number,
                arrived: arrival.at,
                job: Job::Queued(ticket),
            });
        } else {
            let outcome = backend.wait(ticket).map_or(Outcome::Lost, Outcome::Fresh);
            out.push(leave(item, outcome));
        }
        Step { out, error: None }
    }

    /// Lets the held frame out with its result (before a serialized event, or at a mode change).
    pub fn drain<B: Backend<Output = O>>(&mut self, backend: &B) -> Vec<Out<T, O>> {
        let mut out = Vec::with_capacity(1);
        self.release(backend, &mut out);
        out
    }

    /// Collects the held frame's result now, from the model that runs it (before a model swap).
    pub fn collect<B: Backend<Output = O>>(&mut self, backend: &B) {
        if let Some(held) = &mut self.held
            && let Job::Queued(ticket) = held.job
        {
            held.job = Job::Done(backend.wait(ticket));
        }
    }

    /// A flush: the queued job is dropped, a running one finished and forgotten, the held frame
    /// dropped; numbering starts again and liveness is asked again. Never waits for a job that
    /// will not run.
    pub fn flush<B: Backend<Output = O>>(&mut self, backend: &B) {
        backend.discard_queued();
        if let Some(Held {
            job: Job::Queued(ticket),
            ..
        }) = self.held.take()
        {
            let _ = backend.wait(ticket);
        }
        self.frames = 0;
        self.live = None;
    }

    fn release<B: Backend<Output = O>>(&mut self, backend: &B, out: &mut Vec<Out<T, O>>) {
        let Some(held) = self.held.take() else {
            return;
        };
        let output = match held.job {
            Job::Queued(ticket) => backend.wait(ticket),
            Job::Done(output) => output,
        };
        out.push(Out {
            item: held.item,
            number: held.number,
            arrived: held.arrived,
            outcome: output.map_or(Outcome::Lost, Outcome::Fresh),
        });
    }
}

/// Pipelined or serial, chosen by measurement: whether preparing the next frame while the model
/// runs (pipelined) pays, or competes with libtorch's own threads for the cores (serial). After a
/// warm-up, each way runs for a window of frames, one after the other, and the median time
/// between two frames' arrivals is taken for each (the first interval of a window, which spans
/// the switch, is left out; the median ignores a frame the OS delayed); the faster way stays for
/// the rest of the run.
#[derive(Debug, Clone)]
pub struct Overlap {
    phase: Phase,
    /// Intervals measured per window.
    window: u32,
    warm_up: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    WarmUp {
        seen: u32,
    },
    Measure {
        pipelined: bool,
        /// The previous arrival in this window (None: the window's first frame is next).
        last: Option<Instant>,
        intervals: Vec<Duration>,
        /// The pipelined window's median, once measured.
        other: Option<Duration>,
    },
    Decided {
        pipelined: bool,
        pipelined_time: Duration,
        serial_time: Duration,
    },
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed {
        pipelined: bool,
    },
}

/// What [`Overlap`] chose, for `stats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlapChoice {
    /// "measuring", "pipelined" or "serial".
    pub mode: &'static str,
    /// Median time between frames as measured each way (once decided).
    pub pipelined_time: Option<Duration>,
    pub serial_time: Option<Duration>,
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

impl Overlap {
    /// `window` intervals measured each way, after `warm_up` frames (pipelined meanwhile).
    pub fn measured(warm_up: u32, window: u32) -> Self {
        Overlap {
            phase: Phase::WarmUp { seen: 0 },
            window: window.max(1),
            warm_up,
        }
    }

    /// Always the one way (tests).
    #[cfg(test)]
    pub fn fixed(pipelined: bool) -> Self {
        Overlap {
            phase: Phase::Fixed { pipelined },
            window: 1,
            warm_up: 0,
        }
    }

    /// A frame due for a blocking inference arrived at `at`: whether to pipeline it.
    pub fn observe(&mut self, at: Instant) -> bool {
        let window = self.window as usize;
        match &mut self.phase {
            Phase::Fixed { pipelined } | Phase::Decided { pipelined, .. } => *pipelined,
            Phase::WarmUp { seen } => {
                *seen += 1;
                if *seen > self.warm_up {
                    self.phase = Phase::Measure {
                        pipelined: true,
                        last: None,
                        intervals: Vec::with_capacity(window),
                        other: None,
                    };
                    return self.observe(at);
                }
                true
            }
            Phase::Measure {
                pipelined,
                last,
                intervals,
                other,
            } => {
                // The interval ending now is the previous frame's, taken this way.
                if let Some(previous) = last.replace(at) {
                    intervals.push(at.saturating_duration_since(previous));
                }
                // One more frame than intervals: the window's first interval spans the switch.
                if intervals.len() <= window {
                    return *pipelined;
                }
                let time = median(&mut intervals[1..]);
                match *other {
                    None => {
                        self.phase = Phase::Measure {
                            pipelined: false,
                            last: Some(at),
                            intervals: Vec::with_capacity(window + 1),
                            other: Some(time),
                        };
                        false
                    }
                    Some(pipelined_time) => {
                        let pipelined = pipelined_time <= time;
                        self.phase = Phase::Decided {
                            pipelined,
                            pipelined_time,
                            serial_time: time,
                        };
                        pipelined
                    }
                }
            }
        }
    }

    pub fn choice(&self) -> OverlapChoice {
        let mode = |p: bool| if p { "pipelined" } else { "serial" };
        match self.phase {
            Phase::WarmUp { .. } | Phase::Measure { .. } => OverlapChoice {
                mode: "measuring",
                pipelined_time: None,
                serial_time: None,
            },
            Phase::Fixed { pipelined } => OverlapChoice {
                mode: mode(pipelined),
                pipelined_time: None,
                serial_time: None,
            },
            Phase::Decided {
                pipelined,
                pipelined_time,
                serial_time,
            } => OverlapChoice {
                mode: mode(pipelined),
                pipelined_time: Some(pipelined_time),
                serial_time: Some(serial_time),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// A model that runs jobs only when told to: `run_one` finishes the oldest queued job with
    /// its input times ten.
    #[derive(Default)]
    struct Fake {
        queued: RefCell<VecDeque<(Ticket, u64)>>,
        done: RefCell<Vec<(Ticket, u64)>>,
        submitted: RefCell<Vec<u64>>,
        recycled: RefCell<u32>,
        /// Run queued jobs as soon as someone waits (a model that is always quick).
        eager: bool,
    }

    impl Fake {
        fn eager() -> Self {
            Fake {
                eager: true,
                ..Fake::default()
            }
        }
        fn run_one(&self) {
            if let Some((t, v)) = self.queued.borrow_mut().pop_front() {
                self.done.borrow_mut().push((t, v * 10));
            }
        }
    }

    impl Backend for Fake {
        type Input = u64;
        type Output = u64;
        fn input(&self) -> u64 {
            0
        }
        fn recycle(&self, _: u64) {
            *self.recycled.borrow_mut() += 1;
        }
        fn queue(&self, ticket: Ticket, input: u64) {
            self.queued.borrow_mut().push_back((ticket, input));
        }
        fn submit(&self, input: u64) {
            self.submitted.borrow_mut().push(input);
        }
        fn wait(&self, ticket: Ticket) -> Option<u64> {
            if self.eager {
                while self.queued.borrow().iter().any(|(t, _)| *t <= ticket) {
                    self.run_one();
                }
            }
            let mut done = self.done.borrow_mut();
            if let Some(i) = done.iter().position(|(t, _)| *t == ticket) {
                return Some(done.remove(i).1);
            }
            // A real wait would block while the job is queued; the fake says it would hang.
            assert!(
                !self.queued.borrow().iter().any(|(t, _)| *t == ticket),
                "waiting for job {ticket}, which nothing will run"
            );
            None
        }
        fn discard_queued(&self) {
            self.queued.borrow_mut().pop_back();
        }
    }

    fn arrival(interval: u64, late: bool) -> Arrival {
        Arrival {
            at: Instant::now(),
            interval,
            late,
        }
    }

    /// Prepares input = the frame's item.
    fn item_input(item: &u64, _: u64, input: &mut u64) -> Result<(), String> {
        *input = *item;
        Ok(())
    }

    fn outcomes(out: Vec<Out<u64, u64>>) -> Vec<(u64, Outcome<u64>)> {
        out.into_iter().map(|o| (o.item, o.outcome)).collect()
    }

    fn scheduler(async_: bool, live: bool, pipelined: bool) -> Scheduler<u64, u64> {
        let mut s = Scheduler::new(async_, Overlap::fixed(pipelined));
        s.set_live(live);
        s
    }

    #[test]
    fn serial_frames_leave_with_their_own_result_in_order() {
        let fake = Fake::eager();
        let mut s = scheduler(false, true, true);
        for i in 1..=3 {
            let step = s.frame(&fake, i, arrival(1, false), item_input);
            assert_eq!(outcomes(step.out), vec![(i, Outcome::Fresh(i * 10))]);
        }
        assert!(!s.holds(), "live streams never hold a frame");
    }

    #[test]
    fn pipelined_frame_is_held_until_the_next_and_leaves_first() {
        let fake = Fake::eager();
        let mut s = scheduler(false, false, true);
        assert!(
            s.frame(&fake, 1, arrival(1, false), item_input)
                .out
                .is_empty()
        );
        assert!(s.holds());
        let step = s.frame(&fake, 2, arrival(1, false), item_input);
        assert_eq!(outcomes(step.out), vec![(1, Outcome::Fresh(10))]);
        // A frame not due (item 3 is frame number 2; interval 3) lets the held one out first,
        // then goes itself.
        let step = s.frame(&fake, 3, arrival(3, false), item_input);
        assert_eq!(
            outcomes(step.out),
            vec![(2, Outcome::Fresh(20)), (3, Outcome::Carry)]
        );
        assert!(
            s.frame(&fake, 4, arrival(3, false), item_input)
                .out
                .is_empty()
        );
        assert_eq!(outcomes(s.drain(&fake)), vec![(4, Outcome::Fresh(40))]);
        assert!(s.drain(&fake).is_empty());
    }

    #[test]
    fn next_job_is_queued_before_the_held_result_is_awaited() {
        // The model must never idle between two frames: when frame 2 arrives, its job is queued
        // before the streaming side waits for frame 1's.
        let fake = Fake::default();
        let mut s = scheduler(false, false, true);
        s.frame(&fake, 1, arrival(1, false), item_input);
        fake.run_one(); // frame 1's job runs while frame 2 is prepared
        let step = s.frame(&fake, 2, arrival(1, false), item_input);
        assert_eq!(outcomes(step.out), vec![(1, Outcome::Fresh(10))]);
        assert_eq!(
            fake.queued.borrow().len(),
            1,
            "frame 2's job waits for the model"
        );
    }

    #[test]
    fn flush_with_the_held_frames_job_still_queued_does_not_wait_for_it() {
        // The hang: a flush found the held frame's job queued but not started, dropped it, and
        // then waited for its reply. The fake panics on such a wait.
        let fake = Fake::default();
        let mut s = scheduler(false, false, true);
        s.frame(&fake, 1, arrival(1, false), item_input);
        s.flush(&fake);
        assert!(!s.holds());
        assert!(fake.queued.borrow().is_empty());
        // Numbering starts again, and liveness is asked again.
        assert_eq!(s.live(), None);
        s.set_live(false);
        fake.queued.borrow_mut().clear();
        let fake = Fake::eager();
        s.frame(&fake, 7, arrival(1, false), item_input);
        let out = s.drain(&fake);
        assert_eq!((out[0].item, out[0].number), (7, 0));
    }

    #[test]
    fn flush_with_the_held_frames_job_running_collects_and_forgets_it() {
        let fake = Fake::default();
        let mut s = scheduler(false, false, true);
        s.frame(&fake, 1, arrival(1, false), item_input);
        fake.run_one(); // running (here: finished) when the flush comes
        s.flush(&fake);
        assert!(fake.done.borrow().is_empty(), "its reply was collected");
        assert!(!s.holds());
    }

    #[test]
    fn a_discarded_job_gives_its_frame_no_result() {
        let fake = Fake::default();
        let mut s = scheduler(false, false, true);
        s.frame(&fake, 1, arrival(1, false), item_input);
        fake.discard_queued();
        assert_eq!(outcomes(s.drain(&fake)), vec![(1, Outcome::Lost)]);
    }

    #[test]
    fn collect_takes_the_held_result_from_the_model_that_runs_it() {
        let old = Fake::eager();
        let new = Fake::eager();
        let mut s = scheduler(false, false, true);
        s.frame(&old, 1, arrival(1, false), item_input);
        s.collect(&old);
        // After a swap the held frame still has the old model's answer.
        let step = s.frame(&new, 2, arrival(1, false), item_input);
        assert_eq!(outcomes(step.out), vec![(1, Outcome::Fresh(10))]);
        assert_eq!(outcomes(s.drain(&new)), vec![(2, Outcome::Fresh(20))]);
    }

    #[test]
    fn late_frames_skip_the_model_in_blocking_mode_only() {
        let fake = Fake::eager();
        let mut s = scheduler(false, true, false);
        let step = s.frame(&fake, 1, arrival(1, true), item_input);
        assert_eq!(outcomes(step.out), vec![(1, Outcome::Late)]);
        assert!(fake.queued.borrow().is_empty());
        let mut s = scheduler(true, true, false);
        let step = s.frame(&fake, 1, arrival(1, true), item_input);
        assert_eq!(outcomes(step.out), vec![(1, Outcome::Submitted)]);
    }

    #[test]
    fn interval_counts_every_frame_from_start_and_flush() {
        let fake = Fake::eager();
        let mut s = scheduler(false, true, false);
        let kinds: Vec<bool> = (0..7)
            .map(|i| {
                let out = s.frame(&fake, i, arrival(3, false), item_input).out;
                matches!(out[0].outcome, Outcome::Fresh(_))
            })
            .collect();
        assert_eq!(kinds, [true, false, false, true, false, false, true]);
        s.flush(&fake);
        s.set_live(true);
        let out = s.frame(&fake, 9, arrival(3, false), item_input).out;
        assert_eq!((out[0].number, &out[0].outcome), (0, &Outcome::Fresh(90)));
    }

    #[test]
    fn async_frames_go_on_at_once_and_hand_their_input_over() {
        let fake = Fake::eager();
        let mut s = scheduler(true, false, true);
        for i in 1..=3 {
            let out = s.frame(&fake, i, arrival(1, false), item_input).out;
            assert_eq!(outcomes(out), vec![(i, Outcome::Submitted)]);
        }
        assert_eq!(*fake.submitted.borrow(), vec![1, 2, 3]);
        assert!(!s.holds());
    }

    #[test]
    fn a_prepare_error_lets_the_held_frame_out_and_drops_only_the_bad_one() {
        let fake = Fake::eager();
        let mut s = scheduler(false, false, true);
        s.frame(&fake, 1, arrival(1, false), item_input);
        let step = s.frame(&fake, 2, arrival(1, false), |_, _, _: &mut u64| {
            Err("bad frame")
        });
        assert_eq!(step.error, Some("bad frame"));
        assert_eq!(outcomes(step.out), vec![(1, Outcome::Fresh(10))]);
        assert_eq!(
            *fake.recycled.borrow(),
            1,
            "the bad frame's input was given back"
        );
        assert!(!s.holds());
    }

    /// Feeds `o` frames whose arrivals are as far apart as the way `o` chose for the previous
    /// frame takes (`pipelined_ms` or `serial_ms`), with one frame delayed `outlier_ms` more in
    /// each way; returns the ways chosen, frame by frame.
    fn run_overlap(
        o: &mut Overlap,
        pipelined_ms: u64,
        serial_ms: u64,
        outlier_ms: u64,
    ) -> Vec<bool> {
        let t0 = Instant::now();
        let mut t = 0;
        let mut ways = vec![];
        let mut way = o.observe(t0);
        ways.push(way);
        for i in 0..60 {
            t += if way { pipelined_ms } else { serial_ms };
            if i % 9 == 5 {
                t += outlier_ms;
            }
            way = o.observe(t0 + Duration::from_millis(t));
            ways.push(way);
        }
        ways
    }

    #[test]
    fn overlap_measures_both_ways_then_keeps_the_faster() {
        for (pipelined_ms, serial_ms, expect) in [(10, 20, true), (20, 10, false)] {
            let mut o = Overlap::measured(2, 6);
            let ways = run_overlap(&mut o, pipelined_ms, serial_ms, 200);
            let choice = o.choice();
            assert_eq!(choice.mode, if expect { "pipelined" } else { "serial" });
            // Medians: the outliers do not count.
            assert_eq!(
                (choice.pipelined_time, choice.serial_time),
                (
                    Some(Duration::from_millis(pipelined_ms)),
                    Some(Duration::from_millis(serial_ms))
                )
            );
            // Warm-up and the pipelined window first, then the serial window, then the choice.
            let first_serial = ways.iter().position(|w| !w).unwrap();
            assert_eq!(first_serial, 2 + 7, "{ways:?}");
            assert!(
                ways[first_serial..first_serial + 7].iter().all(|w| !w),
                "{ways:?}"
            );
            assert!(
                ways[first_serial + 7..].iter().all(|&w| w == expect),
                "{ways:?}"
            );
        }
    }

    #[test]
    fn overlap_fixed_never_measures() {
        let mut o = Overlap::fixed(false);
        assert!(!o.observe(Instant::now()));
        assert_eq!(o.choice().mode, "serial");
    }
}
