//! The end of every frame's way: stats, the buffer's meta (its fresh result or the newest one),
//! the result's `torchclassify` message and JSON line, the periodic stats message.
//!
//! Lock order: `results` before `writer`; neither is held while a message is posted, so a bus
//! handler may call back into the element.

use super::backend::Inferred;
use crate::postprocess::Classification;
use crate::results::ResultsWriter;
use crate::stats::Stats;
use crate::{message, meta};
use gst::prelude::*;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is plain values.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the streaming thread and (in async mode) the model thread both update.
#[derive(Default)]
struct Results {
    /// The newest finished result; buffers without a fresh one carry it.
    latest: Option<Classification>,
    stats: Stats,
}

impl Results {
    /// An inference whose best class was below `threshold`: counted, and buffers after it carry
    /// no result (the newest one says nothing).
    fn below_threshold(&mut self, time: gst::ClockTime) {
        self.stats.inference(Duration::from_nanos(time.nseconds()));
        self.stats.below_threshold += 1;
        self.latest = None;
    }
}

/// One frame leaving the element.
pub struct Frame {
    /// Its own result, if the model ran on it (blocking mode).
    pub fresh: Option<Classification>,
    /// The model ran on it but its best class was below `threshold`: the model's time.
    pub below_threshold: Option<gst::ClockTime>,
    /// Due for inference but late by QoS: skipped.
    pub late: bool,
    /// When it reached the element.
    pub arrived: Instant,
    /// The frame's size, for the full-frame ROI meta.
    pub width: u32,
    pub height: u32,
}

/// How results leave the element; see the module docs.
#[derive(Default)]
pub struct Publisher {
    results: Mutex<Results>,
    writer: Mutex<Option<ResultsWriter>>,
}

/// What to post from the element for one call, gathered under the locks and posted after.
#[derive(Default)]
struct Posts {
    result: Option<gst::Structure>,
    stats: Option<gst::Structure>,
    write_error: Option<String>,
}

impl Publisher {
    /// A new run: counters from zero, results written to `writer`.
    pub fn start(&self, writer: Option<ResultsWriter>, engine: &'static str) {
        *lock(&self.results) = Results::default();
        lock(&self.results).stats.engine = engine;
        *lock(&self.writer) = writer;
    }

    /// The run ends: the results file is flushed and closed. A write error is posted.
    pub fn stop(&self, element: &gst::Element) {
        self.flush(element);
        *lock(&self.writer) = None;
    }

    /// After a flush: no newest result; rates run again.
    pub fn reset_stream(&self) {
        let mut results = lock(&self.results);
        results.latest = None;
        results.stats.resume();
    }

    /// Updates counters that the model and scheduler keep.
    pub fn update_stats(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.results).stats);
    }

    pub fn stats(&self) -> gst::Structure {
        lock(&self.results).stats.to_structure(Instant::now())
    }

    /// A frame leaves: it gets the meta of its fresh result or the newest one; a fresh result
    /// is written and posted (`post_messages`); stats every `stats_interval`.
    pub fn frame(
        &self,
        element: &gst::Element,
        buffer: &mut gst::BufferRef,
        frame: Frame,
        post_messages: bool,
        stats_interval: Duration,
    ) {
        let latest = {
            let mut results = lock(&self.results);
            results.stats.frame(frame.arrived);
            if frame.late {
                results.stats.skipped += 1;
            }
            if let Some(c) = &frame.fresh {
                results
                    .stats
                    .inference(Duration::from_nanos(c.inference_time.nseconds()));
                results.latest = Some(c.clone());
            }
            if let Some(time) = frame.below_threshold {
                results.below_threshold(time);
            }
            results.latest.clone()
        };
        if let Some(c) = latest {
            meta::attach(buffer, c, frame.width, frame.height);
        }
        let mut posts = Posts::default();
        if let Some(c) = &frame.fresh {
            self.result_posts(c, post_messages, &mut posts);
        }
        if !stats_interval.is_zero() {
            posts.stats = lock(&self.results)
                .stats
                .window_structure(frame.arrived, stats_interval);
        }
        self.post(element, posts);
    }

    /// An async result from the model thread: it becomes the newest result, counts in the
    /// stats, and is written and posted with the timestamps of the frame it was computed on.
    /// One below `threshold` counts and leaves no newest result.
    pub fn async_result(&self, element: &gst::Element, inferred: Inferred, post_messages: bool) {
        let c = match inferred {
            Inferred::Classified(c) => c,
            Inferred::BelowThreshold(time) => {
                lock(&self.results).below_threshold(time);
                return;
            }
        };
        {
            let mut results = lock(&self.results);
            results
                .stats
                .inference(Duration::from_nanos(c.inference_time.nseconds()));
            results.latest = Some(c.clone());
        }
        let mut posts = Posts::default();
        self.result_posts(&c, post_messages, &mut posts);
        self.post(element, posts);
    }

    /// EOS: the results file is flushed, rates stop here, and the final stats are posted if
    /// `post_stats`.
    pub fn eos(&self, element: &gst::Element, post_stats: bool) {
        self.flush(element);
        let stats = {
            let mut results = lock(&self.results);
            results.stats.end(Instant::now());
            results.stats.to_structure(Instant::now())
        };
        self.post(
            element,
            Posts {
                stats: post_stats.then_some(stats),
                ..Posts::default()
            },
        );
    }

    fn flush(&self, element: &gst::Element) {
        let error = lock(&self.writer)
            .as_mut()
            .and_then(|w| w.flush().err())
            .map(|e| e.to_string());
        self.post(
            element,
            Posts {
                write_error: error,
                ..Posts::default()
            },
        );
    }

    fn result_posts(&self, c: &Classification, post_messages: bool, posts: &mut Posts) {
        if let Some(w) = lock(&self.writer).as_mut()
            && let Err(e) = w.write(c)
        {
            posts.write_error = Some(e.to_string());
        }
        posts.result = post_messages.then(|| message::to_structure(c));
    }

    /// Posts, with no lock held. No bus (a bare element in a test harness) means nobody listens.
    fn post(&self, element: &gst::Element, posts: Posts) {
        if let Some(e) = posts.write_error {
            gst::element_warning!(
                element,
                gst::ResourceError::Write,
                (
                    "Cannot write to the results file (property 'results-file'): {}",
                    e
                )
            );
        }
        for s in [posts.result, posts.stats].into_iter().flatten() {
            let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
        }
    }
}
