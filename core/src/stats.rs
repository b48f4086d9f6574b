//! Counters behind an inference element's `stats` property and its periodic `<element>-stats`
//! message: frames, inferences and their rates, as named fields the element turns into a
//! structure.

use std::time::{Duration, Instant};

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
    /// Regions that carried their track's newest result instead (`reclassify-interval`).
    pub regions_carried: u64,
    /// An element's own counters, after the others (`torchdetect`: boxes found and dropped).
    counts: Vec<(&'static str, u64)>,
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

    /// Adds `n` to the element's own counter `name` (listed from its first count, in order).
    pub fn count(&mut self, name: &'static str, n: u64) {
        match self.counts.iter_mut().find(|(c, _)| *c == name) {
            Some((_, v)) => *v += n,
            None => self.counts.push((name, n)),
        }
    }

    pub fn inference(&mut self, time: Duration) {
        self.inferences += 1;
        self.inference_total += time;
        self.inference_max = self.inference_max.max(time);
    }

    /// The counters with frame and inference rates since the first frame (until EOS, after
    /// it).
    pub fn fields(&self, now: Instant) -> Vec<(&'static str, Value)> {
        self.build(self.start, self.ended.unwrap_or(now))
    }

    /// If `interval` has passed since the window began: the counters with rates over the window,
    /// and a new window begins.
    pub fn window_fields(
        &mut self,
        now: Instant,
        interval: Duration,
    ) -> Option<Vec<(&'static str, Value)>> {
        let window = self.window?;
        if now.duration_since(window.at) < interval {
            return None;
        }
        let s = self.build(Some(window), now);
        self.window = Some(self.mark(now));
        Some(s)
    }

    fn build(&self, from: Option<Mark>, now: Instant) -> Vec<(&'static str, Value)> {
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
        let overlap = if self.overlap.is_empty() {
            "none"
        } else {
            self.overlap
        };
        let mut fields = vec![
            ("frames", Value::Count(self.frames)),
            ("inferences", Value::Count(self.inferences)),
            ("skipped", Value::Count(self.skipped)),
            ("replaced", Value::Count(self.replaced)),
            ("below-threshold", Value::Count(self.below_threshold)),
            ("regions", Value::Count(self.regions)),
            ("regions-carried", Value::Count(self.regions_carried)),
            ("mean-batch-size", Value::Number(self.mean_batch_size)),
            ("mean-inference-ms", Value::Number(mean)),
            (
                "max-inference-ms",
                Value::Number(self.inference_max.as_secs_f64() * 1e3),
            ),
            ("frame-fps", Value::Number(rate(frames))),
            ("inference-fps", Value::Number(rate(inferences))),
            ("engine", Value::Text(self.engine)),
            ("overlap", Value::Text(overlap)),
        ];
        fields.extend(self.counts.iter().map(|&(n, v)| (n, Value::Count(v))));
        if let Some((pipelined, serial)) = self.overlap_times {
            fields.push((
                "overlap-pipelined-ms",
                Value::Number(pipelined.as_secs_f64() * 1e3),
            ));
            fields.push((
                "overlap-serial-ms",
                Value::Number(serial.as_secs_f64() * 1e3),
            ));
        }
        fields
    }
}

/// A stats field's value: a count (guint64), a number (double) or a name (string).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Count(u64),
    Number(f64),
    Text(&'static str),
}

/// The value of `name` in `fields`, if there.
pub fn field(fields: &[(&'static str, Value)], name: &str) -> Option<Value> {
    fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Vec<(&'static str, Value)>;

    fn count(f: &Fields, name: &str) -> u64 {
        match field(f, name) {
            Some(Value::Count(v)) => v,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn number(f: &Fields, name: &str) -> f64 {
        match field(f, name) {
            Some(Value::Number(v)) => v,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn text(f: &Fields, name: &str) -> &'static str {
        match field(f, name) {
            Some(Value::Text(v)) => v,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn counts_means_and_rates() {
        let t0 = Instant::now();
        let mut s = Stats::default();
        let empty = s.fields(t0);
        assert_eq!(count(&empty, "frames"), 0);
        assert_eq!(number(&empty, "frame-fps"), 0.0);
        for i in 0..10u64 {
            s.frame(t0 + Duration::from_millis(100 * i));
            if i % 2 == 0 {
                s.inference(Duration::from_millis(2 + i));
            }
        }
        s.skipped = 1;
        s.end(t0 + Duration::from_secs(1));
        let st = s.fields(t0 + Duration::from_secs(5));
        assert_eq!(count(&st, "frames"), 10);
        assert_eq!(count(&st, "inferences"), 5);
        assert_eq!(count(&st, "skipped"), 1);
        assert_eq!(text(&st, "overlap"), "none");
        assert!(field(&st, "overlap-pipelined-ms").is_none());
        s.overlap = "serial";
        s.overlap_times = Some((Duration::from_millis(8), Duration::from_millis(6)));
        let st = s.fields(t0 + Duration::from_secs(5));
        assert_eq!(text(&st, "overlap"), "serial");
        assert!((number(&st, "overlap-serial-ms") - 6.0).abs() < 1e-9);
        assert!((number(&st, "mean-inference-ms") - 6.0).abs() < 1e-9);
        assert!((number(&st, "max-inference-ms") - 10.0).abs() < 1e-9);
        assert!((number(&st, "frame-fps") - 10.0).abs() < 1e-9);
        assert!((number(&st, "inference-fps") - 5.0).abs() < 1e-9);
        s.resume();
        let later = s.fields(t0 + Duration::from_secs(2));
        assert!((number(&later, "frame-fps") - 5.0).abs() < 1e-9);
    }

    #[test]
    fn an_elements_own_counters_come_after_the_others() {
        let t0 = Instant::now();
        let mut s = Stats::default();
        s.count("detections", 3);
        s.count("dropped-small", 1);
        s.count("detections", 2);
        let f = s.fields(t0);
        assert_eq!(count(&f, "detections"), 5);
        assert_eq!(count(&f, "dropped-small"), 1);
        let names: Vec<&str> = f.iter().map(|(n, _)| *n).collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(at("overlap") < at("detections") && at("detections") < at("dropped-small"));
    }

    #[test]
    fn windows_restart_after_each_message() {
        let t0 = Instant::now();
        let mut s = Stats::default();
        assert!(
            s.window_fields(t0, Duration::ZERO).is_none(),
            "no frame yet"
        );
        s.frame(t0);
        let half = t0 + Duration::from_millis(500);
        assert!(s.window_fields(half, Duration::from_secs(1)).is_none());
        for _ in 0..29 {
            s.frame(half);
        }
        let t1 = t0 + Duration::from_secs(1);
        let w = s.window_fields(t1, Duration::from_secs(1)).unwrap();
        assert!((number(&w, "frame-fps") - 30.0).abs() < 1e-9);
        s.frame(t1);
        let w = s
            .window_fields(t1 + Duration::from_secs(2), Duration::from_secs(1))
            .unwrap();
        assert!((number(&w, "frame-fps") - 0.5).abs() < 1e-9);
        assert_eq!(count(&w, "frames"), 31);
    }
}
