//! Unit tests of track.rs.

use super::*;

fn det(x: f32, y: f32, score: f32, class: u32) -> TrackInput {
    TrackInput::new(Rect::new(x, y, 50.0, 100.0), Some(score), Some(class))
}

fn ids(out: &[TrackOutput]) -> Vec<Option<u64>> {
    out.iter().map(|o| o.id).collect()
}

fn tracker(f: impl FnOnce(&mut TrackerConfig)) -> Tracker {
    let mut config = TrackerConfig::default();
    f(&mut config);
    Tracker::new(config)
}

#[test]
fn crossing_objects_keep_their_ids() {
    let mut tr = Tracker::default();
    for f in 0..21u64 {
        // A goes right, B left; they overlap around frame 10 (same x, 10 px apart in y).
        let a = det(20.0 + 13.0 * f as f32, 100.0, 0.9, 0);
        let b = det(280.0 - 13.0 * f as f32, 110.0, 0.9, 0);
        if f % 2 == 0 {
            assert_eq!(ids(&tr.update(f, &[a, b])), [Some(1), Some(2)], "frame {f}");
        } else {
            assert_eq!(ids(&tr.update(f, &[b, a])), [Some(2), Some(1)], "frame {f}");
        }
    }
    let (vx, _) = tr.tracks()[0].velocity();
    assert!((vx - 13.0).abs() < 0.5, "{vx}");
}

#[test]
fn an_object_hidden_for_a_few_frames_keeps_its_id() {
    let mut tr = Tracker::default();
    let at = |f: u64| det(10.0 + 6.0 * f as f32, 50.0, 0.9, 0);
    for f in 0..10 {
        assert_eq!(ids(&tr.update(f, &[at(f)])), [Some(1)]);
    }
    for f in 10..15 {
        assert!(tr.update(f, &[]).is_empty());
        assert_eq!(tr.tracks()[0].state(), TrackState::Lost);
        // Lost tracks are not carried onto frames without detections.
        assert!(tr.predict(f).is_empty());
    }
    let predicted = tr.tracks()[0].rect();
    assert!((predicted.x - at(14).rect.x).abs() < 5.0, "{predicted:?}");
    for f in 15..20 {
        assert_eq!(ids(&tr.update(f, &[at(f)])), [Some(1)]);
    }
}

#[test]
fn an_object_hidden_longer_than_max_age_gets_a_new_id() {
    for (back, id) in [(40, 1), (41, 2)] {
        let mut tr = Tracker::default();
        for f in 0..=10 {
            tr.update(f, &[det(100.0, 100.0, 0.9, 0)]);
        }
        // Unseen from frame 11 on; max_age 30 keeps it through frame 40.
        tr.predict(back - 1);
        assert_eq!(tr.tracks().len(), 1);
        assert_eq!(
            ids(&tr.update(back, &[det(100.0, 100.0, 0.9, 0)])),
            [Some(id)]
        );
        assert_eq!(tr.tracks().len(), 1);
    }
}

#[test]
fn objects_entering_and_leaving_get_one_id_each() {
    let mut tr = tracker(|c| c.max_age = 5);
    let mut seen = std::collections::BTreeSet::new();
    for f in 0..25u64 {
        let mut dets = Vec::new();
        if f < 10 {
            dets.push(det(10.0 + 4.0 * f as f32, 10.0, 0.9, 0));
        }
        if (5..15).contains(&f) {
            dets.push(det(300.0, 10.0 + 3.0 * f as f32, 0.9, 0));
        }
        if (12..20).contains(&f) {
            dets.push(det(600.0 - 5.0 * f as f32, 300.0, 0.9, 0));
        }
        let out = tr.update(f, &dets);
        assert!(out.iter().all(|o| o.id.is_some()), "frame {f}");
        seen.extend(out.iter().filter_map(|o| o.id));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    // The last left at frame 19: five frames later it is still kept, not after six.
    assert_eq!(tr.tracks().len(), 1);
    tr.predict(25);
    assert!(tr.tracks().is_empty());
}

#[test]
fn a_detector_skipping_frames_keeps_ids_and_predict_fills_the_gaps() {
    let mut tr = Tracker::default();
    let at = |f: u64, y: f32| det(20.0 + 7.0 * f as f32, y, 0.9, 0);
    for f in (0..60u64).step_by(3) {
        // Each moves 21 px between detections, less than half its width.
        let out = tr.update(f, &[at(f, 20.0), at(f, 400.0)]);
        assert_eq!(ids(&out), [Some(1), Some(2)], "frame {f}");
        for skipped in [f + 1, f + 2] {
            let boxes = tr.predict(skipped);
            assert_eq!(boxes.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2]);
            if f >= 30 {
                assert!(
                    (boxes[0].1.x - at(skipped, 20.0).rect.x).abs() < 1.0,
                    "{boxes:?}"
                );
            }
        }
    }
}

#[test]
fn low_score_detections_keep_tracks_alive_but_never_start_them() {
    let mut tr = Tracker::default();
    assert_eq!(ids(&tr.update(0, &[det(300.0, 300.0, 0.3, 0)])), [None]);
    assert!(tr.tracks().is_empty());
    assert_eq!(ids(&tr.update(1, &[det(10.0, 10.0, 0.9, 0)])), [Some(1)]);
    for f in 2..12 {
        let out = tr.update(
            f,
            &[det(10.0 + f as f32, 10.0, 0.3, 0), det(400.0, 10.0, 0.3, 0)],
        );
        assert_eq!(ids(&out), [Some(1), None], "frame {f}");
        assert_eq!(tr.tracks()[0].state(), TrackState::Tracked);
    }
    // Below low_threshold a detection is ignored: the track is lost, and a low-score
    // detection does not bring a lost track back.
    assert_eq!(ids(&tr.update(12, &[det(22.0, 10.0, 0.05, 0)])), [None]);
    assert_eq!(tr.tracks()[0].state(), TrackState::Lost);
    assert_eq!(ids(&tr.update(13, &[det(23.0, 10.0, 0.3, 0)])), [None]);
    assert_eq!(ids(&tr.update(14, &[det(24.0, 10.0, 0.6, 0)])), [Some(1)]);
    // No score counts as 1.
    let unscored = TrackInput::new(Rect::new(25.0, 10.0, 50.0, 100.0), None, Some(0));
    assert_eq!(ids(&tr.update(15, &[unscored])), [Some(1)]);
}

#[test]
fn min_hits_delays_ids_and_drops_unconfirmed_tracks_at_a_miss() {
    let mut tr = tracker(|c| c.min_hits = 3);
    let got: Vec<_> = (0..4)
        .map(|f| tr.update(f, &[det(10.0, 10.0, 0.9, 0)])[0].id)
        .collect();
    assert_eq!(got, [None, None, Some(1), Some(1)]);
    tr.update(4, &[det(300.0, 10.0, 0.9, 0)]);
    assert_eq!(tr.tracks().len(), 2);
    tr.update(5, &[]);
    assert_eq!(
        tr.tracks().iter().map(|t| t.state()).collect::<Vec<_>>(),
        [TrackState::Lost]
    );
}

#[test]
fn tracks_are_per_class_unless_configured_otherwise() {
    let mut tr = Tracker::default();
    assert_eq!(
        ids(&tr.update(0, &[det(10.0, 10.0, 0.9, 0), det(12.0, 10.0, 0.9, 1)])),
        [Some(1), Some(2)]
    );
    assert_eq!(ids(&tr.update(1, &[det(12.0, 10.0, 0.9, 1)])), [Some(2)]);
    assert_eq!(ids(&tr.update(2, &[det(12.0, 10.0, 0.9, 7)])), [Some(3)]);
    let mut tr = tracker(|c| c.per_class = false);
    tr.update(0, &[det(10.0, 10.0, 0.9, 0)]);
    assert_eq!(ids(&tr.update(1, &[det(12.0, 10.0, 0.9, 1)])), [Some(1)]);
    assert_eq!(tr.tracks()[0].class(), Some(1));
}

#[test]
fn ids_are_never_reused() {
    let mut tr = tracker(|c| c.max_age = 2);
    assert_eq!(ids(&tr.update(0, &[det(10.0, 10.0, 0.9, 0)])), [Some(1)]);
    tr.predict(3);
    assert!(tr.tracks().is_empty());
    assert_eq!(ids(&tr.update(4, &[det(10.0, 10.0, 0.9, 0)])), [Some(2)]);
    tr.reset();
    assert!(tr.tracks().is_empty());
    assert_eq!(ids(&tr.update(0, &[det(10.0, 10.0, 0.9, 0)])), [Some(3)]);
}

#[test]
fn kalman_filter_follows_constant_velocity() {
    let mut axis = Axis::new(0.0, 50.0);
    for f in 1..30 {
        axis.predict(1.0, 50.0);
        axis.update(4.0 * f as f32, 50.0);
    }
    assert!((axis.velocity - 4.0).abs() < 0.05, "{axis:?}");
    axis.predict(5.0, 50.0);
    assert!((axis.value - 4.0 * 34.0).abs() < 1.0, "{axis:?}");
    assert!(axis.var_value > 0.0 && axis.var_velocity > 0.0);
    let out = Tracker::default().update(0, &[det(10.0, 20.0, 0.9, 0)]);
    assert_eq!(out[0].rect, Some(Rect::new(10.0, 20.0, 50.0, 100.0)));
}
