//! detect → track → classify → overlay on a clip with known boxes (`shapes.webm` and
//! `shapes_truth.json` from `tools/make_test_models.py`: a red and a blue square crossing, a
//! green one hidden for five frames): every object one box, one id for its whole life (across
//! the crossing and the hiding), and its class from a colour classifier that
//! `reclassify-interval` runs only every few frames per track; with `inference-interval` on the
//! detector, the frames it skips get the tracks' predicted boxes (at 10 fps the squares move up
//! to 6 pixels a frame: an IoU tracker needs boxes of successive detections to overlap, which
//! at interval 2 they do).

mod common;
use common::{init, serial, test_model};
use gst::prelude::*;
use gsttorch::torchcore::geometry::iou_corners;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// One box of an output frame: label, rectangle, track id (if tracked), predicted (not
/// detected), and the class torchclassify gave it (if any).
#[derive(Debug, Clone)]
struct Seen {
    label: String,
    rect: Rect,
    track: Option<u64>,
    predicted: bool,
    class: Option<String>,
}

/// A box: x, y, width, height.
type Rect = (u32, u32, u32, u32);

/// The truth of the clip: per frame, (class, box).
fn truth() -> Vec<Vec<(String, Rect)>> {
    let text = std::fs::read_to_string(test_model("shapes_truth.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["truth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let b: Vec<u32> = o["box"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| n.as_u64().unwrap() as u32)
                        .collect();
                    (
                        o["class"].as_str().unwrap().to_string(),
                        (b[0], b[1], b[2], b[3]),
                    )
                })
                .collect()
        })
        .collect()
}

/// Runs the clip through `chain` (elements between the decoder and the sink): every frame's
/// boxes, and the named elements' stats.
fn run(chain: &str, stats_of: &[&str]) -> (Vec<Vec<Seen>>, BTreeMap<String, gst::Structure>) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! {chain} ! \
         fakesink name=sink sync=false",
        test_model("shapes.webm")
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let frames = Arc::new(Mutex::new(Vec::new()));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    let f = frames.clone();
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            let seen = buffer
                .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                .map(|m| Seen {
                    label: m.roi_type().to_string(),
                    rect: m.rect(),
                    track: m.param("torchtrack").and_then(|p| p.get::<u64>("id").ok()),
                    predicted: m
                        .param("torchtrack")
                        .is_some_and(|p| p.get::<bool>("predicted").unwrap_or(false)),
                    class: m
                        .param("torchclassify")
                        .and_then(|p| p.get::<String>("label").ok()),
                })
                .collect();
            f.lock().unwrap().push(seen);
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{chain}: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
    }
    let stats = stats_of
        .iter()
        .map(|name| {
            let e = pipeline.by_name(name).unwrap();
            (name.to_string(), e.property::<gst::Structure>("stats"))
        })
        .collect();
    pipeline.set_state(gst::State::Null).unwrap();
    let frames = frames.lock().unwrap().clone();
    (frames, stats)
}

/// A box as `[x1, y1, x2, y2]`, for [`iou_corners`].
fn corners((x, y, w, h): Rect) -> [f32; 4] {
    [x as f32, y as f32, (x + w) as f32, (y + h) as f32]
}

fn detector() -> String {
    format!(
        "torchdetect name=detect model={} labels={}",
        test_model("shapes_yolov8.pt"),
        test_model("shapes_labels.txt")
    )
}

/// A classifier of a region's colour (sigmoid scores of red, green and blue).
fn classifier(extra: &str) -> String {
    format!(
        "torchclassify name=classify inference-region=roi-list model={} labels={} \
         output=sigmoid input-size=32 mean=\"<0.0,0.0,0.0>\" std=\"<1.0,1.0,1.0>\" {extra}",
        test_model("multilabel.pt"),
        test_model("multilabel_labels.txt")
    )
}

#[test]
fn detect_track_classify_gives_each_object_one_box_one_id_and_its_class() {
    let _s = serial();
    let chain = format!(
        "{} ! torchtrack name=track ! {} ! torchoverlay",
        detector(),
        classifier("reclassify-interval=8")
    );
    let (frames, stats) = run(&chain, &["classify", "track"]);
    let truth = truth();
    assert_eq!(frames.len(), truth.len());
    let mut ids: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (t, (seen, want)) in frames.iter().zip(&truth).enumerate() {
        assert_eq!(seen.len(), want.len(), "frame {t}: {seen:?}");
        for (label, rect) in want {
            let mine: Vec<&Seen> = seen.iter().filter(|s| &s.label == label).collect();
            assert_eq!(mine.len(), 1, "frame {t}: one {label} box in {seen:?}");
            let s = mine[0];
            assert!(
                iou_corners(corners(s.rect), corners(*rect)) > 0.85,
                "frame {t}: {label} {:?} vs {rect:?}",
                s.rect
            );
            let id = s
                .track
                .unwrap_or_else(|| panic!("frame {t}: {label} has no track id"));
            ids.entry(label.clone()).or_default().insert(id);
            assert_eq!(s.class.as_deref(), Some(label.as_str()), "frame {t}: {s:?}");
            assert!(!s.predicted);
        }
    }
    // One id per object for the whole clip: across the crossing (red, blue) and the five frames
    // green was hidden.
    for (label, set) in &ids {
        assert_eq!(set.len(), 1, "{label}: ids {set:?}");
    }
    let all: BTreeSet<u64> = ids.values().flatten().copied().collect();
    assert_eq!(all.len(), 3, "{ids:?}");
    // Each track classified once every 8 frames (which keeps its frames out of the red and blue
    // squares' overlap, 18-23, where a crop holds both colours), green again when it came back:
    // the other boxes carried their track's result.
    let boxes: usize = truth.iter().map(Vec::len).sum();
    let c = &stats["classify"];
    let classified = c.get::<u64>("regions").unwrap();
    let carried = c.get::<u64>("regions-carried").unwrap();
    assert_eq!(classified + carried, boxes as u64, "{c}");
    assert_eq!(classified, 15, "{classified} of {boxes} boxes classified");
    let t = &stats["track"];
    assert_eq!(t.get::<u64>("tracked").unwrap(), boxes as u64, "{t}");
}

#[test]
fn frames_the_detector_skips_get_the_tracks_predicted_boxes() {
    let _s = serial();
    let chain = format!("{} inference-interval=2 ! torchtrack", detector());
    let (frames, _) = run(&chain, &[]);
    let truth = truth();
    assert_eq!(
        frames.len(),
        truth.len(),
        "one output frame per frame of the clip"
    );
    let mut ids: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (t, (seen, want)) in frames.iter().zip(&truth).enumerate() {
        for s in seen {
            // Detected on every other frame, predicted on the others.
            assert_eq!(s.predicted, t % 2 != 0, "frame {t}: {s:?}");
            ids.entry(s.label.clone())
                .or_default()
                .insert(s.track.unwrap());
            // Once the motion is known (a few detections in), a prediction overlaps the truth.
            if let Some((_, rect)) = want.iter().find(|(l, _)| *l == s.label)
                && t >= 9
            {
                assert!(
                    iou_corners(corners(s.rect), corners(*rect)) > 0.3,
                    "frame {t}: {s:?} vs {rect:?}"
                );
            }
        }
        if t % 2 != 0 {
            // Every object the last detection frame saw is predicted (green hides 15-19, is
            // last seen on frame 14, so frame 15 still predicts it).
            let last: BTreeSet<&str> = truth[t - 1].iter().map(|(l, _)| l.as_str()).collect();
            let now: BTreeSet<&str> = seen.iter().map(|s| s.label.as_str()).collect();
            assert_eq!(now, last, "frame {t}");
        }
    }
    for (label, set) in &ids {
        assert_eq!(set.len(), 1, "{label}: ids {set:?}");
    }
}
