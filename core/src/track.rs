//! Stable ids across frames: ByteTrack-style association of detections to tracks, each track
//! followed by a constant-velocity Kalman filter.
//!
//! Every [`Tracker::update`] first predicts each track to the frame (across any gap in frame
//! numbers) and drops tracks unseen for more than `max_age` frames. Stage 1 then matches the
//! high-score detections to all tracks by the IoU of the predicted boxes, stage 2 the low-score
//! detections to the tracks that were tracked on the previous update and are still unmatched;
//! unmatched high-score detections start new tracks. Matching in both stages is greedy: the pair
//! with the highest IoU (at least `iou_threshold`) first, then the next among the unmatched.
//! With `per_class`, a detection and a track match only when their class keys are equal.

use crate::geometry::Rect;

mod session;
pub use session::{Predicted, Seen, Session, Step};

/// Settings of a [`Tracker`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// The least IoU between a track's predicted box and a detection for them to match.
    pub iou_threshold: f32,
    /// Frames a track is kept (and predicted) after its last matched detection.
    pub max_age: u64,
    /// Matched detections (in a row) before a track gets an id and is reported; 0 acts as 1.
    pub min_hits: u32,
    /// Detections scoring at least this are matched first and can start tracks.
    pub high_threshold: f32,
    /// Detections scoring at least this (and below `high_threshold`) can only continue a
    /// tracked track; lower ones are ignored.
    pub low_threshold: f32,
    /// Match only detections and tracks of the same class key.
    pub per_class: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            iou_threshold: 0.3,
            max_age: 30,
            min_hits: 1,
            high_threshold: 0.5,
            low_threshold: 0.1,
            per_class: true,
        }
    }
}

/// One detection given to [`Tracker::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackInput {
    /// The box in frame pixels.
    pub rect: Rect,
    /// The detector's confidence; `None` counts as 1.
    pub score: Option<f32>,
    /// The class key (a class id, or any number standing for a label); `None` is a key of its
    /// own, equal only to `None`.
    pub class: Option<u32>,
}

impl TrackInput {
    pub fn new(rect: Rect, score: Option<f32>, class: Option<u32>) -> Self {
        TrackInput { rect, score, class }
    }
}

/// What [`Tracker::update`] says of one detection.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrackOutput {
    /// The track's id: `None` while the track has fewer than `min_hits` hits, or when the
    /// detection was not associated (and scored too low to start a track).
    pub id: Option<u64>,
    /// The track's filtered box after this detection, when associated.
    pub rect: Option<Rect>,
}

/// Where a track is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackState {
    /// Matched fewer than `min_hits` times; removed at its first miss.
    Tentative,
    /// Confirmed and matched on the last update.
    Tracked,
    /// Confirmed, missed since `last_seen`; kept and predicted for `max_age` frames.
    Lost,
}

// Noise of the motion model as fractions of the box size (ByteTrack's values).
const STD_POSITION: f32 = 1.0 / 20.0;
const STD_VELOCITY: f32 = 1.0 / 160.0;

/// One coordinate of the Kalman filter: value, velocity and their 2×2 covariance.
///
/// The 8-state filter over (cx, cy, w, h) and their velocities has a constant-velocity
/// transition, measures the four values directly and has diagonal noise; its covariance stays
/// block diagonal, so it is exactly four independent 2-state filters, one per coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    value: f32,
    velocity: f32,
    var_value: f32,
    cov: f32,
    var_velocity: f32,
}

impl Axis {
    fn new(value: f32, size: f32) -> Self {
        let (sp, sv) = (2.0 * STD_POSITION * size, 10.0 * STD_VELOCITY * size);
        Axis {
            value,
            velocity: 0.0,
            var_value: sp * sp,
            cov: 0.0,
            var_velocity: sv * sv,
        }
    }

    /// Advances `dt` frames; the process noise grows with `dt`.
    fn predict(&mut self, dt: f32, size: f32) {
        let (sp, sv) = (STD_POSITION * size, STD_VELOCITY * size);
        self.value += self.velocity * dt;
        self.var_value += dt * (2.0 * self.cov + dt * self.var_velocity) + dt * sp * sp;
        self.cov += dt * self.var_velocity;
        self.var_velocity += dt * sv * sv;
    }

    /// Takes in a measurement of the value.
    fn update(&mut self, measured: f32, size: f32) {
        let r = STD_POSITION * size;
        let s = self.var_value + r * r;
        let (k0, k1) = (self.var_value / s, self.cov / s);
        let innovation = measured - self.value;
        self.value += k0 * innovation;
        self.velocity += k1 * innovation;
        self.var_velocity -= k1 * self.cov;
        self.var_value *= 1.0 - k0;
        self.cov *= 1.0 - k0;
    }
}

/// A followed object.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    id: Option<u64>,
    class: Option<u32>,
    state: TrackState,
    hits: u32,
    last_seen: u64,
    frame: u64,
    /// cx, cy, w, h.
    axes: [Axis; 4],
}

impl Track {
    fn new(rect: &Rect, class: Option<u32>, frame: u64) -> Self {
        let (cx, cy) = rect.center();
        let (w, h) = (rect.width.max(1.0), rect.height.max(1.0));
        Track {
            id: None,
            class,
            state: TrackState::Tentative,
            hits: 1,
            last_seen: frame,
            frame,
            axes: [
                Axis::new(cx, w),
                Axis::new(cy, h),
                Axis::new(rect.width, w),
                Axis::new(rect.height, h),
            ],
        }
    }

    /// The id, given when the track is confirmed.
    pub fn id(&self) -> Option<u64> {
        self.id
    }

    /// The class key of its latest detection.
    pub fn class(&self) -> Option<u32> {
        self.class
    }

    pub fn state(&self) -> TrackState {
        self.state
    }

    /// Matched detections so far.
    pub fn hits(&self) -> u32 {
        self.hits
    }

    /// The frame of its latest matched detection.
    pub fn last_seen(&self) -> u64 {
        self.last_seen
    }

    /// The box the filter gives for the frame it was last predicted or updated to.
    pub fn rect(&self) -> Rect {
        let [cx, cy, w, h] = self.axes.map(|a| a.value);
        Rect::from_center(cx, cy, w.max(0.0), h.max(0.0))
    }

    /// The estimated motion of the box centre in pixels per frame.
    pub fn velocity(&self) -> (f32, f32) {
        (self.axes[0].velocity, self.axes[1].velocity)
    }

    /// The sizes that scale the noise of each coordinate: width for cx and w, height for cy
    /// and h.
    fn sizes(&self) -> [f32; 4] {
        let (w, h) = (self.axes[2].value.max(1.0), self.axes[3].value.max(1.0));
        [w, h, w, h]
    }

    fn predict_to(&mut self, frame: u64) {
        let dt = frame.saturating_sub(self.frame);
        if dt > 0 {
            let sizes = self.sizes();
            for (axis, size) in self.axes.iter_mut().zip(sizes) {
                axis.predict(dt as f32, size);
            }
            self.frame = frame;
        }
    }

    fn update(&mut self, rect: &Rect, class: Option<u32>, frame: u64) {
        let (cx, cy) = rect.center();
        let sizes = self.sizes();
        let measured = [cx, cy, rect.width, rect.height];
        for ((axis, size), z) in self.axes.iter_mut().zip(sizes).zip(measured) {
            axis.update(z, size);
        }
        self.class = class;
        self.hits = self.hits.saturating_add(1);
        self.last_seen = frame;
    }
}

/// Gives detections ids that stay with their objects from frame to frame.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    /// (IoU, track index, detection index) of the candidate pairs of a stage.
    pairs: Vec<(f32, usize, usize)>,
    /// Per track, the detection matched this update.
    matched: Vec<Option<usize>>,
    /// Per detection, the track it belongs to this update.
    owner: Vec<Option<usize>>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new(TrackerConfig::default())
    }
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
            pairs: Vec::new(),
            matched: Vec::new(),
            owner: Vec::new(),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Takes new settings; the tracks and their ids stay.
    pub fn set_config(&mut self, config: TrackerConfig) {
        self.config = config;
    }

    /// The live tracks, tentative and lost ones included.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Forgets all tracks (for a flush); ids given later still follow the ones given before.
    pub fn reset(&mut self) {
        self.tracks.clear();
    }

    /// Predicts every track to `frame` and drops those unseen for more than `max_age` frames.
    fn advance(&mut self, frame: u64) {
        let max_age = self.config.max_age;
        self.tracks
            .retain(|t| frame.saturating_sub(t.last_seen) <= max_age);
        for t in &mut self.tracks {
            t.predict_to(frame);
        }
    }

    /// The id, predicted box and class, for `frame`, of the confirmed tracks matched on the last
    /// update: what to show on a frame the detector did not run on.
    pub fn predict(&mut self, frame: u64) -> Vec<(u64, Rect, Option<u32>)> {
        self.advance(frame);
        let tracked = self
            .tracks
            .iter()
            .filter(|t| t.state == TrackState::Tracked);
        tracked
            .filter_map(|t| Some((t.id?, t.rect(), t.class)))
            .collect()
    }

    /// Associates `detections` of `frame` with tracks; one output per detection, in order.
    /// Frame numbers may skip: tracks are predicted across the gap.
    pub fn update(&mut self, frame: u64, detections: &[TrackInput]) -> Vec<TrackOutput> {
        self.advance(frame);
        let (high, low) = (self.config.high_threshold, self.config.low_threshold);
        let score = |d: &TrackInput| d.score.unwrap_or(1.0);
        self.owner.clear();
        self.owner.resize(detections.len(), None);
        self.matched.clear();
        self.matched.resize(self.tracks.len(), None);
        // Stage 1: high-score detections with every track.
        self.associate(detections, |_| true, |d| score(d) >= high);
        // Stage 2: low-score detections with the tracked tracks left.
        let tracked = |t: &Track| t.state == TrackState::Tracked;
        self.associate(detections, tracked, |d| (low..high).contains(&score(d)));

        let min_hits = self.config.min_hits.max(1);
        for (t, m) in self.tracks.iter_mut().zip(&self.matched) {
            match *m {
                Some(d) => {
                    t.update(&detections[d].rect, detections[d].class, frame);
                    if t.hits >= min_hits {
                        t.state = TrackState::Tracked;
                    }
                }
                None if t.state == TrackState::Tracked => t.state = TrackState::Lost,
                None => {}
            }
        }
        for (d, det) in detections.iter().enumerate() {
            if self.owner[d].is_none() && score(det) >= high {
                let mut t = Track::new(&det.rect, det.class, frame);
                if min_hits <= 1 {
                    t.state = TrackState::Tracked;
                }
                self.owner[d] = Some(self.tracks.len());
                self.tracks.push(t);
            }
        }
        // Ids go to tracks as they are confirmed, in the order of their detections.
        let mut out = Vec::with_capacity(detections.len());
        for owner in &self.owner {
            let Some(t) = owner.map(|t| &mut self.tracks[t]) else {
                out.push(TrackOutput::default());
                continue;
            };
            if t.state != TrackState::Tentative && t.id.is_none() {
                t.id = Some(self.next_id);
                self.next_id += 1;
            }
            out.push(TrackOutput {
                id: t.id,
                rect: Some(t.rect()),
            });
        }
        // A tentative track ends at its first miss.
        let tentative = |t: &Track| t.state == TrackState::Tentative;
        self.tracks
            .retain(|t| !tentative(t) || t.last_seen == frame);
        out
    }

    /// One greedy matching stage between the unmatched tracks passing `track_ok` and the
    /// unmatched detections passing `det_ok`, highest IoU first.
    fn associate(
        &mut self,
        detections: &[TrackInput],
        track_ok: impl Fn(&Track) -> bool,
        det_ok: impl Fn(&TrackInput) -> bool,
    ) {
        let (threshold, per_class) = (self.config.iou_threshold, self.config.per_class);
        self.pairs.clear();
        for (t, track) in self.tracks.iter().enumerate() {
            if self.matched[t].is_some() || !track_ok(track) {
                continue;
            }
            let predicted = track.rect();
            for (d, det) in detections.iter().enumerate() {
                if self.owner[d].is_some()
                    || !det_ok(det)
                    || (per_class && det.class != track.class)
                {
                    continue;
                }
                let iou = predicted.iou(&det.rect);
                if iou > 0.0 && iou >= threshold {
                    self.pairs.push((iou, t, d));
                }
            }
        }
        self.pairs.sort_unstable_by(|a, b| {
            let by_iou = b.0.total_cmp(&a.0);
            by_iou.then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
        });
        for &(_, t, d) in &self.pairs {
            if self.matched[t].is_none() && self.owner[d].is_none() {
                self.matched[t] = Some(d);
                self.owner[d] = Some(t);
            }
        }
    }
}

#[cfg(test)]
mod tests;
