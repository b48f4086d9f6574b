//! The end of every frame's way: stats, the buffer's meta (its fresh result or the newest one),
//! the result's `torchclassify` message and JSON line, the periodic stats message.
//!
//! Lock order: `results` before `writer`; neither is held while a message is posted, so a bus
//! handler may call back into the element.

use super::backend::Inferred;
use crate::lock;
use crate::{message, meta};
use gst::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use torchcore::classify::Classification;
use torchcore::frame::Region;
use torchcore::results::{self, ResultsWriter};
use torchcore::stats::{self, Stats};

/// The `torchclassify-stats` structure of the stats' fields.
pub fn stats_structure(fields: Vec<(&'static str, stats::Value)>) -> gst::Structure {
    let mut s = gst::Structure::builder(stats::STRUCTURE_NAME);
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
#[derive(Default)]
struct Results {
    /// The newest finished result; buffers without a fresh one carry it.
    latest: Option<Classification>,
    /// roi-list mode: the newest frame's region results; a buffer without fresh ones gives
    /// them to its ROI metas of the same ids (a tracker keeps ids).
    latest_regions: Vec<(Region, Classification)>,
    stats: Stats,
}

impl Results {
    /// Counts what the model said and makes it the newest result.
    fn record(&mut self, inferred: &Inferred) {
        match inferred {
            Inferred::Classified(c) => {
                self.stats.inference(c.inference_time);
                self.latest = Some(c.clone());
            }
            // Buffers after it carry no result: the newest one says nothing.
            Inferred::BelowThreshold(time) => {
                self.stats.inference(*time);
                self.stats.below_threshold += 1;
                self.latest = None;
            }
            Inferred::Regions {
                results,
                below_threshold,
                time,
            } => {
                // A frame without regions to classify ran no model.
                if let Some(time) = time {
                    self.stats.inference(*time);
                }
                self.stats.regions += results.len() as u64 + below_threshold;
                self.stats.below_threshold += below_threshold;
                self.latest_regions.clone_from(results);
            }
        }
    }
}

/// One frame leaving the element.
pub struct Frame {
    /// What the model said about it, if it ran on it (blocking mode).
    pub inferred: Option<Inferred>,
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
    results: Vec<gst::Structure>,
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
        results.latest_regions.clear();
        results.stats.resume();
    }

    /// Updates counters that the model and scheduler keep.
    pub fn update_stats(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.results).stats);
    }

    pub fn stats(&self) -> gst::Structure {
        stats_structure(lock(&self.results).stats.fields(Instant::now()))
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
        let (latest, regions) = {
            let mut results = lock(&self.results);
            results.stats.frame(frame.arrived);
            if frame.late {
                results.stats.skipped += 1;
            }
            if let Some(inferred) = &frame.inferred {
                results.record(inferred);
            }
            let regions = match &frame.inferred {
                Some(Inferred::Regions { .. }) => None, // its own, attached below
                _ => Some(results.latest_regions.clone()),
            };
            (results.latest.clone(), regions)
        };
        if let Some(c) = latest {
            meta::attach(buffer, c, frame.width, frame.height);
        }
        let mut posts = Posts::default();
        match &frame.inferred {
            Some(Inferred::Classified(c)) => self.result_posts(c, post_messages, &mut posts),
            Some(inferred @ Inferred::Regions { results, .. }) => {
                meta::attach_regions(buffer, results);
                self.region_posts(inferred, post_messages, &mut posts);
            }
            _ => {}
        }
        if let Some(regions) = regions {
            meta::carry_regions(buffer, &regions, (frame.width, frame.height));
        }
        if !stats_interval.is_zero() {
            posts.stats = lock(&self.results)
                .stats
                .window_fields(frame.arrived, stats_interval)
                .map(stats_structure);
        }
        self.post(element, posts);
    }

    /// An async result from the model thread: it becomes the newest result, counts in the
    /// stats, and is written and posted with the timestamps of the frame it was computed on.
    /// One below `threshold` counts and leaves no newest result.
    pub fn async_result(&self, element: &gst::Element, inferred: Inferred, post_messages: bool) {
        lock(&self.results).record(&inferred);
        let mut posts = Posts::default();
        match &inferred {
            Inferred::Classified(c) => self.result_posts(c, post_messages, &mut posts),
            Inferred::Regions { .. } => self.region_posts(&inferred, post_messages, &mut posts),
            Inferred::BelowThreshold(_) => return,
        }
        self.post(element, posts);
    }

    /// EOS: the results file is flushed, rates stop here, and the final stats are posted if
    /// `post_stats`.
    pub fn eos(&self, element: &gst::Element, post_stats: bool) {
        self.flush(element);
        let stats = {
            let mut results = lock(&self.results);
            results.stats.end(Instant::now());
            stats_structure(results.stats.fields(Instant::now()))
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
        if post_messages {
            posts.results.push(message::to_structure(c));
        }
    }

    /// roi-list mode: one JSON line for the frame's classified regions, one message per region.
    fn region_posts(&self, inferred: &Inferred, post_messages: bool, posts: &mut Posts) {
        let Inferred::Regions {
            results,
            time: Some(time),
            ..
        } = inferred
        else {
            return;
        };
        let Some((_, first)) = results.first() else {
            return;
        };
        if let Some(w) = lock(&self.writer).as_mut()
            && let Err(e) = w.write_value(&results::regions_to_json(&first.frame, results, *time))
        {
            posts.write_error = Some(e.to_string());
        }
        if post_messages {
            posts
                .results
                .extend(results.iter().map(|(r, c)| message::region_structure(r, c)));
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
