//! The end of every frame's way: stats, the buffer's meta (its fresh result or the newest one),
//! the result's messages and JSON line, the periodic stats message; what each is, the task says.
//!
//! Lock order: `results` before `writer`; neither is held while a message is posted, so a bus
//! handler may call back into the element.

use super::Task;
use crate::lock;
use gst::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use torchcore::results::ResultsWriter;
use torchcore::stats::{self, Stats};

/// The `{name}-stats` structure of the stats' fields.
pub fn stats_structure(name: &str, fields: Vec<(&'static str, stats::Value)>) -> gst::Structure {
    let mut s = gst::Structure::builder(format!("{name}-stats"));
    for (name, value) in fields {
        s = match value {
            stats::Value::Count(v) => s.field(name, v),
            stats::Value::Number(v) => s.field(name, v),
            stats::Value::Text(v) => s.field(name, v),
        };
    }
    s.build()
}

/// What the streaming thread and (in async mode) the model thread both update.
struct Results<T: Task> {
    /// What buffers without a fresh result carry.
    latest: T::Latest,
    stats: Stats,
}

impl<T: Task> Default for Results<T> {
    fn default() -> Self {
        Results {
            latest: T::Latest::default(),
            stats: Stats::default(),
        }
    }
}

/// One frame leaving the element.
pub struct Frame<T: Task> {
    /// What the model said about it, if it ran on it (blocking mode).
    pub inferred: Option<T::Inferred>,
    /// Due for inference but late by QoS: skipped.
    pub late: bool,
    /// When it reached the element.
    pub arrived: Instant,
    /// The frame's size.
    pub width: u32,
    pub height: u32,
}

/// How results leave the element; see the module docs.
pub struct Publisher<T: Task> {
    results: Mutex<Results<T>>,
    writer: Mutex<Option<ResultsWriter>>,
}

impl<T: Task> Default for Publisher<T> {
    fn default() -> Self {
        Publisher {
            results: Mutex::new(Results::default()),
            writer: Mutex::new(None),
        }
    }
}

/// What to post from the element for one call, gathered under the locks and posted after.
#[derive(Default)]
struct Posts {
    results: Vec<gst::Structure>,
    stats: Option<gst::Structure>,
    write_error: Option<String>,
}

impl<T: Task> Publisher<T> {
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
        results.latest = T::Latest::default();
        results.stats.resume();
    }

    /// Updates counters that the model and scheduler keep.
    pub fn update_stats(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.results).stats);
    }

    pub fn stats(&self) -> gst::Structure {
        stats_structure(T::NAME, lock(&self.results).stats.fields(Instant::now()))
    }

    /// A frame leaves: it gets the meta of its fresh result or the newest one; a fresh result
    /// is written and posted (`post_messages`); stats every `stats_interval`.
    pub fn frame(
        &self,
        element: &gst::Element,
        buffer: &mut gst::BufferRef,
        frame: Frame<T>,
        post_messages: bool,
        stats_interval: Duration,
    ) {
        let mut posts = Posts::default();
        {
            let mut results = lock(&self.results);
            let Results { latest, stats } = &mut *results;
            stats.frame(frame.arrived);
            if frame.late {
                stats.skipped += 1;
            }
            if let Some(inferred) = &frame.inferred {
                T::record(latest, stats, inferred);
            }
            T::attach(
                buffer,
                (frame.width, frame.height),
                frame.inferred.as_ref(),
                latest,
            );
            if !stats_interval.is_zero() {
                posts.stats = stats
                    .window_fields(frame.arrived, stats_interval)
                    .map(|fields| stats_structure(T::NAME, fields));
            }
        }
        if let Some(inferred) = &frame.inferred {
            self.result_posts(inferred, post_messages, &mut posts);
        }
        self.post(element, posts);
    }

    /// An async result from the model thread: it becomes the newest result, counts in the
    /// stats, and is written and posted with the timestamps of the frame it was computed on.
    pub fn async_result(&self, element: &gst::Element, inferred: T::Inferred, post_messages: bool) {
        {
            let mut results = lock(&self.results);
            let Results { latest, stats } = &mut *results;
            T::record(latest, stats, &inferred);
        }
        let mut posts = Posts::default();
        self.result_posts(&inferred, post_messages, &mut posts);
        self.post(element, posts);
    }

    /// EOS: the results file is flushed, rates stop here, and the final stats are posted if
    /// `post_stats`.
    pub fn eos(&self, element: &gst::Element, post_stats: bool) {
        self.flush(element);
        let stats = {
            let mut results = lock(&self.results);
            results.stats.end(Instant::now());
            stats_structure(T::NAME, results.stats.fields(Instant::now()))
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

    /// A fresh result's messages and JSON line.
    fn result_posts(&self, inferred: &T::Inferred, post_messages: bool, posts: &mut Posts) {
        let line = T::posts(inferred, post_messages, &mut posts.results);
        if let Some(line) = line
            && let Some(w) = lock(&self.writer).as_mut()
            && let Err(e) = w.write_value(&line)
        {
            posts.write_error = Some(e.to_string());
        }
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
        for s in posts.results.into_iter().chain(posts.stats) {
            let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
        }
    }
}
