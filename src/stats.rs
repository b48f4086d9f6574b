//! Counters behind the `stats` property and the periodic `torchclassify-stats` message: the seed
//! tutorial's "N fps" line, as data.

use std::time::{Duration, Instant};

/// Name of the stats structure (property value and element message).
pub const STRUCTURE_NAME: &str = "torchclassify-stats";

/// Counts at one instant, to compute rates between two of them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mark {
    at: Instant,
    frames: u64,
    inferences: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Frames through the element.
    pub frames: u64,
    /// Finished model runs.
    pub inferences: u64,
    /// Frames passed on without inference because downstream QoS said they were already late.
    pub skipped: u64,
    /// Async frames replaced by a newer one before the model got to them.
    pub replaced: u64,
    /// Inferences whose best class was below `threshold`: no result.
    pub below_threshold: u64,
    /// Regions classified (`inference-region=roi-list`).
    pub regions: u64,
    /// The model's images per forward so far (0 before the first).
    pub mean_batch_size: f64,
    /// libtorch's quantized engine after the model was loaded.
    pub engine: &'static str,
    /// How blocking mode overlaps a frame's preparation with the model's work on the previous
    /// one: "pipelined", "serial", "measuring" (not decided yet) or "none" (async mode, live
    /// streams, or no frame yet).
    pub overlap: &'static str,
    /// Once decided: the measured time per frame pipelined and serial.
    pub overlap_times: Option<(Duration, Duration)>,
    inference_total: Duration,
    inference_max: Duration,
    /// When the first frame came.
    start: Option<Mark>,
    /// Where the current stats-interval window began.
    window: Option<Mark>,
    /// When the stream ended (EOS): rates since the first frame stop there.
    ended: Option<Instant>,
}

impl Stats {
    fn mark(&self, at: Instant) -> Mark {
        Mark {
            at,
            frames: self.frames,
            inferences: self.inferences,
        }
    }

    pub fn frame(&mut self, now: Instant) {
        if self.start.is_none() {
            self.start = Some(self.mark(now));
            self.window = self.start;
        }
        self.frames += 1;
    }

    /// The stream ended (EOS) at `at`; until [`Stats::resume`], rates are up to then.
    pub fn end(&mut self, at: Instant) {
        self.ended = Some(at);
    }

    /// Frames flow again (after a flush).
    pub fn resume(&mut self) {
        self.ended = None;
    }

    pub fn inference(&mut self, time: Duration) {
        self.inferences += 1;
        self.inference_total += time;
        self.inference_max = self.inference_max.max(time);
    }

    /// The counters with frame and inference rates since the first frame (until EOS, after
    /// it).
    pub fn to_structure(&self, now: Instant) -> gst::Structure {
        self.build(self.start, self.ended.unwrap_or(now))
    }

    /// If `interval` has passed since the window began: the counters with rates over the window,
    /// and a new window begins.
    pub fn window_structure(&mut self, now: Instant, interval: Duration) -> Option<gst::Structure> {
        let window = self.window?;
        if now.duration_since(window.at) < interval {
            return None;
        }
        let s = self.build(Some(window), now);
        self.window = Some(self.mark(now));
        Some(s)
    }

    fn build(&self, from: Option<Mark>, now: Instant) -> gst::Structure {
        let secs = from.map_or(0.0, |m| now.duration_since(m.at).as_secs_f64());
        let rate = |count: u64| if secs > 0.0 { count as f64 / secs } else { 0.0 };
        let (frames, inferences) = from.map_or((0, 0), |m| {
            (self.frames - m.frames, self.inferences - m.inferences)
        });
        let mean = if self.inferences > 0 {
            self.inference_total.as_secs_f64() * 1e3 / self.inferences as f64
        } else {
            0.0
        };
        let s = gst::Structure::builder(STRUCTURE_NAME)
            .field("frames", self.frames)
            .field("inferences", self.inferences)
            .field("skipped", self.skipped)
            .field("replaced", self.replaced)
            .field("below-threshold", self.below_threshold)
            .field("regions", self.regions)
            .field("mean-batch-size", self.mean_batch_size)
            .field("mean-inference-ms", mean)
            .field("max-inference-ms", self.inference_max.as_secs_f64() * 1e3)
            .field("frame-fps", rate(frames))
            .field("inference-fps", rate(inferences))
            .field("engine", self.engine)
            .field(
                "overlap",
                if self.overlap.is_empty() {
                    "none"
                } else {
                    self.overlap
                },
            );
        let s = match self.overlap_times {
            Some((pipelined, serial)) => s
                .field("overlap-pipelined-ms", pipelined.as_secs_f64() * 1e3)
                .field("overlap-serial-ms", serial.as_secs_f64() * 1e3),
            None => s,
        };
        s.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_means_and_rates() {
        gst::init().unwrap();
        let t0 = Instant::now();
        let mut s = Stats::default();
        let empty = s.to_structure(t0);
        assert_eq!(empty.get::<u64>("frames").unwrap(), 0);
        assert_eq!(empty.get::<f64>("frame-fps").unwrap(), 0.0);
        for i in 0..10u64 {
            s.frame(t0 + Duration::from_millis(100 * i));
            if i % 2 == 0 {
                s.inference(Duration::from_millis(2 + i));
            }
        }
        s.skipped = 1;
        s.end(t0 + Duration::from_secs(1));
        let st = s.to_structure(t0 + Duration::from_secs(5));
        assert_eq!(st.get::<u64>("frames").unwrap(), 10);
        assert_eq!(st.get::<u64>("inferences").unwrap(), 5);
        assert_eq!(st.get::<u64>("skipped").unwrap(), 1);
        assert_eq!(st.get::<&str>("overlap").unwrap(), "none");
        assert!(!st.has_field("overlap-pipelined-ms"));
        s.overlap = "serial";
        s.overlap_times = Some((Duration::from_millis(8), Duration::from_millis(6)));
        let st = s.to_structure(t0 + Duration::from_secs(5));
        assert_eq!(st.get::<&str>("overlap").unwrap(), "serial");
        assert!((st.get::<f64>("overlap-serial-ms").unwrap() - 6.0).abs() < 1e-9);
        assert!((st.get::<f64>("mean-inference-ms").unwrap() - 6.0).abs() < 1e-9);
        assert!((st.get::<f64>("max-inference-ms").unwrap() - 10.0).abs() < 1e-9);
        assert!((st.get::<f64>("frame-fps").unwrap() - 10.0).abs() < 1e-9);
        assert!((st.get::<f64>("inference-fps").unwrap() - 5.0).abs() < 1e-9);
        s.resume();
        let later = s.to_structure(t0 + Duration::from_secs(2));
        assert!((later.get::<f64>("frame-fps").unwrap() - 5.0).abs() < 1e-9);
    }

    #[test]
    fn windows_restart_after_each_message() {
        gst::init().unwrap();
        let t0 = Instant::now();
        let mut s = Stats::default();
        assert!(
            s.window_structure(t0, Duration::ZERO).is_none(),
            "no frame yet"
        );
        s.frame(t0);
        let half = t0 + Duration::from_millis(500);
        assert!(s.window_structure(half, Duration::from_secs(1)).is_none());
        for _ in 0..29 {
            s.frame(half);
        }
        let t1 = t0 + Duration::from_secs(1);
        let w = s.window_structure(t1, Duration::from_secs(1)).unwrap();
        assert!((w.get::<f64>("frame-fps").unwrap() - 30.0).abs() < 1e-9);
        s.frame(t1);
        let w = s
            .window_structure(t1 + Duration::from_secs(2), Duration::from_secs(1))
            .unwrap();
        assert!((w.get::<f64>("frame-fps").unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(w.get::<u64>("frames").unwrap(), 31);
    }
}
