//! `--features analytics` (GStreamer 1.24+): torchclassify's results as `GstAnalyticsClsMtd` in
//! the buffer's `GstAnalyticsRelationMeta`, read back with the analytics API as any 1.24 reader
//! would: full frame (the same classes and confidences as the bus message and the ROI param),
//! `inference-region=roi-list` with `GstAnalyticsODMtd`s as the regions (each ClsMtd related
//! from its ODMtd), with ROI metas (an ODMtd added per box), both for the same boxes (classified
//! once), `object-class` on the ODMtd's type, frames carrying an earlier result, and torchoverlay
//! drawing from the analytics meta. Real model, real photos.
#![cfg(feature = "analytics")]

use gst::prelude::*;
use gst_analytics::prelude::*;
use gst_analytics::{
    AnalyticsClassificationMtd, AnalyticsODMtd, AnalyticsRelationMeta, AnalyticsTrackingMtd,
    RelTypes,
};
use gsttorch::{Classification, ClassificationMeta, Region, message, meta};
mod common;
use common::{
    BLUE, CAT, DARK, ESPRESSO, ORANGE, RED, element, frame_as, init, model, push_through, rgb_caps,
    rgb_frame, tile,
};
use std::ops::RangeInclusive;

/// A ClsMtd as read back: (label, confidence) best first.
type Classes = Vec<(String, f32)>;

fn classes(cls: &gst_analytics::AnalyticsMtdRef<'_, AnalyticsClassificationMtd>) -> Classes {
    cls.iterate()
        .map(|(q, level)| (q.as_str().to_string(), level))
        .collect()
}

/// A result's top-k as a ClsMtd holds it (confidences as f32).
fn expected(c: &Classification) -> Classes {
    c.top_k()
        .iter()
        .map(|p| (p.label.to_string(), p.confidence as f32))
        .collect()
}

/// What the buffer's relation meta holds: the ClsMtds related from no ODMtd, and each ODMtd
/// (box, type) with the ClsMtds related from it (`RELATE_TO`).
#[derive(Debug, Default)]
struct Analytics {
    frame: Vec<Classes>,
    boxes: Vec<Detected>,
}

#[derive(Debug)]
struct Detected {
    rect: (i32, i32, i32, i32),
    obj_type: String,
    classes: Vec<Classes>,
}

fn analytics(buffer: &gst::BufferRef) -> Analytics {
    let Some(meta) = buffer.meta::<AnalyticsRelationMeta>() else {
        return Analytics::default();
    };
    let ods: Vec<u32> = meta.iter::<AnalyticsODMtd>().map(|od| od.id()).collect();
    let frame = meta
        .iter::<AnalyticsClassificationMtd>()
        .filter(|cls| {
            !ods.iter()
                .any(|&od| meta.relation(od, cls.id()) != RelTypes::NONE)
        })
        .map(|cls| classes(&cls))
        .collect();
    let boxes = meta
        .iter::<AnalyticsODMtd>()
        .map(|od| {
            let loc = od.location().unwrap();
            Detected {
                rect: (loc.x, loc.y, loc.w, loc.h),
                obj_type: od
                    .obj_type()
                    .map_or(String::new(), |q| q.as_str().to_string()),
                classes: meta
                    .iter_direct_related::<AnalyticsClassificationMtd>(od.id(), RelTypes::RELATE_TO)
                    .map(|cls| classes(&cls))
                    .collect(),
            }
        })
        .collect();
    Analytics { frame, boxes }
}

/// The classes of the grid's quadrants.
fn quadrant_classes() -> [RangeInclusive<u32>; 4] {
    [
        CAT,
        ESPRESSO..=ESPRESSO,
        ORANGE..=ORANGE,
        ESPRESSO..=ESPRESSO,
    ]
}

/// The 2x2 frame: cat, coffee / orange, coffee; each quadrant's classes.
fn grid() -> ((gst::Caps, gst::Buffer), [RangeInclusive<u32>; 4]) {
    (
        tile(&["cat.png", "coffee.png", "orange.jpg", "coffee.png"], 2),
        quadrant_classes(),
    )
}

/// The quadrants of the 448x448 grid.
const QUADRANTS: [(i32, i32); 4] = [(0, 0), (224, 0), (0, 224), (224, 224)];

fn quadrant(i: usize) -> (i32, i32, i32, i32) {
    (QUADRANTS[i].0, QUADRANTS[i].1, 224, 224)
}

/// Adds an ODMtd per quadrant of type `types[i]` (with a TrackingMtd of id 100 + i related
/// from it when `tracked`).
fn add_ods(buffer: &mut gst::Buffer, types: &[&str], tracked: bool) {
    let b = buffer.make_mut();
    let mut meta = AnalyticsRelationMeta::add(b);
    for (i, t) in types.iter().enumerate() {
        let (x, y, w, h) = quadrant(i);
        let od = meta
            .add_od_mtd(gst::glib::Quark::from_str(*t), x, y, w, h, 0.9)
            .unwrap()
            .id();
        if tracked {
            let track = meta
                .add_tracking_mtd(100 + i as u64, gst::ClockTime::ZERO)
                .unwrap()
                .id();
            meta.set_relation(RelTypes::RELATE_TO, od, track).unwrap();
        }
    }
}

/// Adds a ROI meta per quadrant of type `roi_type`, ids 100, 101, ...
fn add_rois(buffer: &mut gst::Buffer, roi_type: &str) {
    let b = buffer.make_mut();
    for i in 0..4 {
        let (x, y, w, h) = quadrant(i);
        let mut roi = gst_video::VideoRegionOfInterestMeta::add(
            b,
            roi_type,
            (x as u32, y as u32, w as u32, h as u32),
        );
        roi.set_id(100 + i as i32);
    }
}

/// `frames` through `torchclassify <properties>` in a harness: the output buffers and the
/// messages posted.
fn classify(
    properties: &str,
    caps: &gst::Caps,
    frames: Vec<gst::Buffer>,
) -> (Vec<gst::Buffer>, Vec<gst::Message>) {
    init();
    let element =
        gst::parse::launch(&format!("torchclassify model={} {properties}", model())).unwrap();
    let (out, messages, _) = push_through(&element, caps, frames);
    (out, messages)
}

/// The region messages, by quadrant (their box's position).
fn by_quadrant(messages: &[gst::Message]) -> Vec<(usize, Region, Classification)> {
    messages
        .iter()
        .filter_map(|m| message::region_from_message(m))
        .map(|(r, c)| {
            let i = QUADRANTS
                .iter()
                .position(|&(x, y)| (x as u32, y as u32) == (r.x, r.y))
                .expect("a quadrant's region");
            (i, r, c)
        })
        .collect()
}

/// Each quadrant's ODMtd on `out` (its box, type `obj_type`) holds one ClsMtd: its message's
/// classes, the photo's class.
fn assert_quadrants_classified(
    out: &gst::Buffer,
    messages: &[gst::Message],
    classified: &[usize],
    obj_type: &str,
) {
    let classes = quadrant_classes();
    let a = analytics(out);
    assert!(a.frame.is_empty(), "no full-frame result: {:?}", a.frame);
    let posted = by_quadrant(messages);
    assert_eq!(
        posted.iter().map(|(i, _, _)| *i).collect::<Vec<_>>(),
        classified
    );
    for (i, region, c) in &posted {
        assert!(classes[*i].contains(&c.class_id()), "{i}: {}", c.label());
        assert_eq!(region.roi_type, obj_type);
        let od: Vec<_> = a.boxes.iter().filter(|d| d.rect == quadrant(*i)).collect();
        assert_eq!(od.len(), 1, "one ODMtd for quadrant {i}: {:?}", a.boxes);
        assert_eq!(od[0].obj_type, obj_type);
        assert_eq!(od[0].classes, vec![expected(c)], "quadrant {i}");
    }
    for d in &a.boxes {
        let classified = posted.iter().any(|(i, _, _)| quadrant(*i) == d.rect);
        assert_eq!(d.classes.len(), usize::from(classified), "{d:?}");
    }
}

#[test]
fn a_full_frame_result_is_a_cls_mtd_with_the_message_s_classes() {
    let (caps, input) = frame_as("coffee.png", "video/x-raw,format=RGB,width=224,height=224");
    let (out, messages) = classify("top-k=5", &caps, vec![input]);
    let posted: Vec<_> = messages
        .iter()
        .filter_map(|m| message::from_message(m))
        .collect();
    assert_eq!(posted.len(), 1);
    let a = analytics(&out[0]);
    assert!(a.boxes.is_empty());
    assert_eq!(a.frame.len(), 1, "one ClsMtd");
    let cls = &a.frame[0];
    assert_eq!(cls.len(), 5);
    assert_eq!(cls[0].0, "espresso");
    // The same classes and confidences as the message, the ROI param and our meta.
    assert_eq!(*cls, expected(&posted[0]));
    assert_eq!(*cls, expected(&meta::from_roi_meta(&out[0]).unwrap()));
    let m = ClassificationMeta::from_buffer(&out[0]).unwrap();
    assert_eq!(*cls, expected(m.classification()));
}

#[test]
fn od_mtds_are_the_regions_and_each_gets_a_related_cls_mtd() {
    let ((caps, mut frame), _) = grid();
    add_ods(&mut frame, &["object"; 4], false);
    let (out, messages) = classify("inference-region=roi-list", &caps, vec![frame]);
    // No ROI meta in or out: the results are in the analytics meta (and the messages).
    assert_eq!(
        out[0]
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .count(),
        0
    );
    assert_eq!(analytics(&out[0]).boxes.len(), 4, "no ODMtd added");
    assert_quadrants_classified(&out[0], &messages, &[0, 1, 2, 3], "object");
}

#[test]
fn roi_metas_get_an_od_mtd_each_with_the_related_cls_mtd() {
    let ((caps, mut frame), _) = grid();
    add_rois(&mut frame, "object");
    let (out, messages) = classify("inference-region=roi-list", &caps, vec![frame]);
    // The ROI params stay, with the same results.
    let params = meta::regions(&out[0]);
    assert_eq!(params.len(), 4);
    let a = analytics(&out[0]);
    assert_eq!(a.boxes.len(), 4);
    assert_quadrants_classified(&out[0], &messages, &[0, 1, 2, 3], "object");
    for (region, c) in params {
        let d = a
            .boxes
            .iter()
            .find(|d| d.rect == (region.x as i32, region.y as i32, 224, 224))
            .unwrap();
        assert_eq!(d.classes, vec![expected(&c)]);
    }
}

#[test]
fn a_box_both_as_roi_meta_and_od_mtd_is_classified_once() {
    let ((caps, mut frame), _) = grid();
    add_rois(&mut frame, "object");
    add_ods(&mut frame, &["object"; 4], false);
    let (out, messages) = classify("inference-region=roi-list", &caps, vec![frame]);
    assert_eq!(by_quadrant(&messages).len(), 4, "four regions, not eight");
    assert_eq!(meta::regions(&out[0]).len(), 4);
    // The upstream ODMtds get the results; none added.
    assert_eq!(analytics(&out[0]).boxes.len(), 4);
    assert_quadrants_classified(&out[0], &messages, &[0, 1, 2, 3], "object");
    // The ROI ids (a tracker's) name the regions in the messages.
    let mut ids: Vec<i32> = by_quadrant(&messages)
        .iter()
        .map(|(_, r, _)| r.id)
        .collect();
    ids.sort();
    assert_eq!(ids, [100, 101, 102, 103]);
}

#[test]
fn object_class_selects_od_mtds_by_type() {
    let ((caps, mut frame), classes) = grid();
    add_ods(&mut frame, &["pet", "drink", "fruit", "drink"], false);
    let (out, messages) = classify(
        "inference-region=roi-list object-class=drink",
        &caps,
        vec![frame],
    );
    assert_eq!(classes[1], ESPRESSO..=ESPRESSO);
    assert_quadrants_classified(&out[0], &messages, &[1, 3], "drink");
}

#[test]
fn frames_between_inferences_carry_the_cls_mtd() {
    // Full frame: frame 1 carries frame 0's result, its ClsMtd too.
    let (caps, input) = frame_as("orange.jpg", "video/x-raw,format=RGB,width=224,height=224");
    let (out, messages) = classify(
        "inference-interval=2",
        &caps,
        vec![input.clone(), input.clone(), input],
    );
    let posted: Vec<_> = messages
        .iter()
        .filter_map(|m| message::from_message(m))
        .collect();
    assert_eq!(posted.len(), 2);
    for (i, buffer) in out.iter().enumerate() {
        let a = analytics(buffer);
        assert_eq!(a.frame, vec![expected(&posted[i / 2])], "frame {i}");
        assert_eq!(a.frame[0][0].0, "orange");
    }

    // roi-list, ROI metas (tracker ids): frame 1's ROI metas carry frame 0's results and get
    // their ODMtds and ClsMtds.
    let ((caps, mut frame), _) = grid();
    add_rois(&mut frame, "object");
    let (out, messages) = classify(
        "inference-region=roi-list inference-interval=2",
        &caps,
        vec![frame.clone(), frame],
    );
    assert_eq!(by_quadrant(&messages).len(), 4, "frame 0's only");
    assert_eq!(meta::regions(&out[1]).len(), 4);
    assert_quadrants_classified(&out[1], &messages, &[0, 1, 2, 3], "object");

    // roi-list, ODMtds with TrackingMtds: carried by tracking id.
    let ((caps, mut frame), _) = grid();
    add_ods(&mut frame, &["object"; 4], true);
    let (out, messages) = classify(
        "inference-region=roi-list inference-interval=2",
        &caps,
        vec![frame.clone(), frame],
    );
    let posted = by_quadrant(&messages);
    assert_eq!(posted.len(), 4);
    let mut ids: Vec<i32> = posted.iter().map(|(_, r, _)| r.id).collect();
    ids.sort();
    assert_eq!(ids, [100, 101, 102, 103], "tracking ids as region ids");
    assert_quadrants_classified(&out[1], &messages, &[0, 1, 2, 3], "object");
}

/// torchoverlay on `input` (448x448 RGB) with a downstream that draws compositions: the
/// rectangles it would draw.
fn overlay_rects(input: &gst::Buffer) -> Vec<(i32, i32, u32, u32)> {
    init();
    let mut h = gst_check::Harness::new("torchoverlay");
    let caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 448, 448)
        .fps(gst::Fraction::new(1, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap();
    let mut featured = caps.clone();
    featured
        .make_mut()
        .set_features_simple(Some(gst::CapsFeatures::new([
            gst::CAPS_FEATURE_MEMORY_SYSTEM_MEMORY,
            gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION,
        ])));
    h.set_sink_caps(featured);
    h.add_propose_allocation_meta(gst_video::VideoOverlayCompositionMeta::meta_api(), None);
    h.set_src_caps(caps);
    let out = h.push_and_pull(input.clone()).unwrap();
    out.meta::<gst_video::VideoOverlayCompositionMeta>()
        .map(|m| m.overlay().iter().map(|r| r.render_rectangle()).collect())
        .unwrap_or_default()
}

#[test]
fn torchoverlay_draws_the_analytics_meta_once() {
    // ODMtds only: torchoverlay draws each classified box (four edges and a caption) from the
    // analytics meta.
    let ((caps, mut frame), _) = grid();
    add_ods(&mut frame, &["object"; 4], false);
    let (out, _) = classify("inference-region=roi-list", &caps, vec![frame.clone()]);
    assert_eq!(overlay_rects(&out[0]).len(), 4 * 5);
    // Nothing classified: nothing drawn.
    assert!(overlay_rects(&frame).is_empty());
    // ROI metas: each box has a ROI param and an ODMtd with a ClsMtd; drawn once.
    let ((caps, mut frame), _) = grid();
    add_rois(&mut frame, "object");
    let (out, _) = classify("inference-region=roi-list", &caps, vec![frame]);
    assert_eq!(overlay_rects(&out[0]).len(), 4 * 5);
    // A full-frame ClsMtd alone (no torchclassify meta): the frame's caption.
    let ((_, frame), _) = grid();
    let mut frame = frame.copy();
    {
        let mut meta = AnalyticsRelationMeta::add(frame.make_mut());
        meta.add_one_cls_mtd(0.9, gst::glib::Quark::from_str("orange"))
            .unwrap();
    }
    assert_eq!(overlay_rects(&frame).len(), 1);
}

#[test]
fn tracking_mtds_are_untouched() {
    // The element adds ClsMtds and relations, and leaves an upstream tracker's metas as they were.
    let ((caps, mut frame), _) = grid();
    add_ods(&mut frame, &["object"; 4], true);
    let (out, _) = classify("inference-region=roi-list", &caps, vec![frame]);
    let meta = out[0].meta::<AnalyticsRelationMeta>().unwrap();
    let mut ids: Vec<u64> = meta
        .iter::<AnalyticsTrackingMtd>()
        .map(|t| t.info().0)
        .collect();
    ids.sort();
    assert_eq!(ids, [100, 101, 102, 103]);
}

/// A dark 320x240 RGB frame with a red and a blue rectangle, for the test detector.
fn shapes_frame() -> (gst::Caps, gst::Buffer) {
    let rects = [(RED, 40, 60, 64, 48), (BLUE, 200, 120, 32, 40)];
    (rgb_caps(320, 240), rgb_frame(320, 240, DARK, &rects))
}

#[test]
fn torchdetect_adds_an_od_mtd_per_box_and_torchtrack_a_tracking_mtd_related_from_it() {
    let bin = element(&format!(
        "torchdetect model={} labels={} ! torchtrack",
        common::test_model("shapes_yolov8.pt"),
        common::test_model("shapes_labels.txt")
    ));
    let (caps, frame) = shapes_frame();
    let (out, _, _h) = push_through(&bin, &caps, vec![frame.clone(), frame]);
    for (n, buffer) in out.iter().enumerate() {
        let meta = buffer
            .meta::<AnalyticsRelationMeta>()
            .expect("relation meta");
        let mut found: Vec<(String, (i32, i32, i32, i32), u64)> = meta
            .iter::<AnalyticsODMtd>()
            .map(|od| {
                let loc = od.location().unwrap();
                let track = meta
                    .iter_direct_related::<AnalyticsTrackingMtd>(od.id(), RelTypes::RELATE_TO)
                    .next()
                    .map(|t| t.info().0)
                    .expect("a tracking mtd related from the box");
                let label = od.obj_type().map(|q| q.as_str().to_string()).unwrap();
                (label, (loc.x, loc.y, loc.w, loc.h), track)
            })
            .collect();
        found.sort();
        assert_eq!(found.len(), 2, "frame {n}: {found:?}");
        assert_eq!(found[0].0, "blue");
        assert_eq!(found[1].0, "red");
        assert_eq!(found[1].1, (40, 60, 64, 48), "frame {n}");
        // The same ids on both frames.
        assert_eq!((found[0].2, found[1].2), (2, 1), "frame {n}: {found:?}");
    }
}
