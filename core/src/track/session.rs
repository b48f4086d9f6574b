//! `torchtrack`'s per-stream logic without GStreamer: each frame's boxes (a detector's regions
//! of interest) in, their track ids out; on a frame the detector skipped, the tracks' predicted
//! boxes. Labels become the tracker's class keys here, so tracks never change label.

use super::{TrackInput, Tracker, TrackerConfig};
use crate::geometry::Rect;
use std::collections::HashMap;

/// One box of a frame, as the element read it from a ROI meta.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub rect: Rect,
    /// The detector's confidence, if it gave one (`torchdetect` does).
    pub score: Option<f32>,
    /// The box's label (its ROI type).
    pub label: String,
}

/// A predicted box of a frame the detector skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub id: u64,
    pub rect: Rect,
    pub label: String,
}

/// What a frame gets: an id per box given (None: not a confirmed track yet), or, on a frame the
/// detector skipped, the predicted boxes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    pub ids: Vec<Option<u64>>,
    pub predicted: Vec<Predicted>,
}

/// A stream's tracker; see the module docs.
#[derive(Debug, Default)]
pub struct Session {
    tracker: Tracker,
    /// Labels as class keys, and back.
    keys: HashMap<String, u32>,
    labels: Vec<String>,
    /// Frames since start or flush.
    frame: u64,
    /// The detector marks the frames it ran on: a frame without the mark was skipped.
    marked: bool,
}

impl Session {
    pub fn new(config: TrackerConfig) -> Session {
        Session {
            tracker: Tracker::new(config),
            ..Session::default()
        }
    }

    /// Takes new settings; the tracks stay.
    pub fn set_config(&mut self, config: TrackerConfig) {
        self.tracker.set_config(config);
    }

    fn key(&mut self, label: &str) -> u32 {
        if let Some(&key) = self.keys.get(label) {
            return key;
        }
        let key = self.labels.len() as u32;
        self.keys.insert(label.to_string(), key);
        self.labels.push(label.to_string());
        key
    }

    /// The next frame. `marked`: whether the detector marked it as one it ran on (None for a
    /// detector that marks none: every frame is one it ran on). A frame the detector ran on
    /// updates the tracks with `boxes`; one it skipped (unmarked after marked ones) gets the
    /// predicted boxes of the tracks (and `boxes`, if any, get no ids).
    pub fn frame(&mut self, marked: bool, boxes: &[Seen]) -> Step {
        let frame = self.frame;
        self.frame += 1;
        self.marked |= marked;
        if self.marked && !marked {
            let predicted = self.tracker.predict(frame);
            let label = |class: Option<u32>| {
                let key = class.unwrap_or(0) as usize;
                self.labels.get(key).cloned().unwrap_or_default()
            };
            let predicted = predicted
                .into_iter()
                .map(|(id, rect, class)| Predicted {
                    id,
                    rect,
                    label: label(class),
                })
                .collect();
            return Step {
                ids: vec![None; boxes.len()],
                predicted,
            };
        }
        let inputs: Vec<TrackInput> = boxes
            .iter()
            .map(|b| TrackInput::new(b.rect, b.score, Some(self.key(&b.label))))
            .collect();
        let ids = self
            .tracker
            .update(frame, &inputs)
            .into_iter()
            .map(|o| o.id)
            .collect();
        Step {
            ids,
            predicted: Vec::new(),
        }
    }

    /// A flush: tracks and frame numbers start again (ids still follow the ones given).
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.frame = 0;
    }

    /// The live tracks (tentative and lost ones included).
    pub fn tracks(&self) -> usize {
        self.tracker.tracks().len()
    }

    /// Whether a live track has the id `id`.
    pub fn has_track(&self, id: u64) -> bool {
        self.tracker.tracks().iter().any(|t| t.id() == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(x: f32, label: &str) -> Seen {
        Seen {
            rect: Rect::new(x, 10.0, 20.0, 20.0),
            score: Some(0.9),
            label: label.into(),
        }
    }

    #[test]
    fn ids_stay_with_moving_boxes_and_labels_keep_tracks_apart() {
        let mut s = Session::default();
        let first = s.frame(false, &[seen(0.0, "car"), seen(100.0, "person")]);
        assert_eq!(first.ids, vec![Some(1), Some(2)]);
        let next = s.frame(false, &[seen(103.0, "person"), seen(3.0, "car")]);
        assert_eq!(next.ids, vec![Some(2), Some(1)]);
        // The same place with another label is another track.
        let other = s.frame(false, &[seen(6.0, "truck")]);
        assert_eq!(other.ids, vec![Some(3)]);
    }

    #[test]
    fn frames_the_detector_skipped_get_predicted_boxes_with_their_labels() {
        let mut s = Session::default();
        // Every other frame marked: the detector runs at interval 2.
        for f in 0..6 {
            let marked = f % 2 == 0;
            let boxes = if marked {
                vec![seen(5.0 * f as f32, "car")]
            } else {
                vec![]
            };
            let step = s.frame(marked, &boxes);
            if marked {
                assert_eq!(step.ids, vec![Some(1)], "frame {f}");
                assert!(step.predicted.is_empty());
            } else {
                assert_eq!(step.predicted.len(), 1, "frame {f}");
                let p = &step.predicted[0];
                assert_eq!((p.id, p.label.as_str()), (1, "car"));
                // Between the detections either side.
                let (before, after) = (5.0 * (f - 1) as f32, 5.0 * (f + 1) as f32);
                assert!(
                    p.rect.x >= before - 1.0 && p.rect.x <= after + 1.0,
                    "{p:?} at {f}"
                );
            }
        }
        // A marked frame without boxes is a detector that saw nothing: no predictions, and the
        // track ages out in time.
        let empty = s.frame(true, &[]);
        assert!(empty.predicted.is_empty() && empty.ids.is_empty());
        assert!(s.has_track(1) && !s.has_track(2));
        for _ in 0..TrackerConfig::default().max_age {
            s.frame(true, &[]);
        }
        assert!(!s.has_track(1), "aged out");
    }

    #[test]
    fn a_detector_that_never_marks_updates_on_every_frame() {
        let mut s = Session::default();
        assert_eq!(s.frame(false, &[seen(0.0, "face")]).ids, vec![Some(1)]);
        // Nothing this frame: no prediction, the track is missed.
        assert!(s.frame(false, &[]).predicted.is_empty());
        assert_eq!(s.frame(false, &[seen(2.0, "face")]).ids, vec![Some(1)]);
        s.reset();
        assert_eq!(s.tracks(), 0);
        assert_eq!(s.frame(false, &[seen(2.0, "face")]).ids, vec![Some(2)]);
    }
}
