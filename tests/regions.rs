//! `inference-region=roi-list`: every region of interest on a frame classified, a frame's regions
//! in one batched forward, results per region in the ROI metas, messages and JSON lines; the
//! selection (`object-class`, `min-roi-size`), clipping, many regions, a model that takes one
//! image per forward, and interval/async in this mode. Real model, real photos.

use gst::prelude::*;
use gsttorch::{Classification, Region, message, meta};
mod common;
use common::{
    CAT, ESPRESSO, ORANGE, init, json_lines, model, push_through, rgb_caps, rgb_frame, scratch,
    test_model, tile,
};
use std::ops::RangeInclusive;

/// The 2x2 frame: cat, coffee / orange, coffee; each quadrant's classes.
fn grid() -> ((gst::Caps, gst::Buffer), [RangeInclusive<u32>; 4]) {
    (
        tile(&["cat.png", "coffee.png", "orange.jpg", "coffee.png"], 2),
        [
            CAT,
            ESPRESSO..=ESPRESSO,
            ORANGE..=ORANGE,
            ESPRESSO..=ESPRESSO,
        ],
    )
}

/// The quadrants of the 448x448 grid as (type, rect).
const QUADRANTS: [(u32, u32); 4] = [(0, 0), (224, 0), (0, 224), (224, 224)];

/// The four quadrants of the grid as regions of `roi_type`.
fn quadrants(roi_type: &str) -> Vec<Roi<'_>> {
    QUADRANTS
        .iter()
        .map(|&(x, y)| (roi_type, (x, y, 224, 224)))
        .collect()
}

/// A ROI meta to add: its type and (x, y, width, height).
type Roi<'a> = (&'a str, (u32, u32, u32, u32));

/// Adds ROI metas to `buffer` with ids 100, 101, ... as a tracker would give; the ids.
fn with_regions(buffer: &gst::Buffer, regions: &[Roi<'_>]) -> (gst::Buffer, Vec<i32>) {
    with_ids(buffer, regions, |i| 100 + i as i32)
}

/// Adds ROI metas to `buffer` with the ids `id(i)`; the ids.
fn with_ids(
    buffer: &gst::Buffer,
    regions: &[Roi<'_>],
    id: impl Fn(usize) -> i32,
) -> (gst::Buffer, Vec<i32>) {
    let mut buffer = buffer.copy();
    let ids = {
        let b = buffer.get_mut().unwrap();
        regions
            .iter()
            .enumerate()
            .map(|(i, (t, rect))| {
                let mut meta = gst_video::VideoRegionOfInterestMeta::add(b, t, *rect);
                meta.set_id(id(i));
                meta.id()
            })
            .collect()
    };
    (buffer, ids)
}

/// `frames` through `torchclassify inference-region=roi-list <properties>` in a harness: the
/// output buffers, the messages posted and the final stats.
fn classify(
    properties: &str,
    caps: &gst::Caps,
    frames: Vec<gst::Buffer>,
) -> (Vec<gst::Buffer>, Vec<gst::Message>, gst::Structure) {
    init();
    let element = gst::parse::launch(&format!(
        "torchclassify inference-region=roi-list {properties}"
    ))
    .unwrap();
    let (out, messages, _running) = push_through(&element, caps, frames);
    let stats = element.property::<gst::Structure>("stats");
    (out, messages, stats)
}

fn region_results(messages: &[gst::Message]) -> Vec<(Region, Classification)> {
    messages
        .iter()
        .filter_map(|m| message::region_from_message(m))
        .collect()
}

#[test]
fn four_photos_four_regions_one_forward() {
    let ((caps, frame), classes) = grid();
    let rois = quadrants("object");
    let (frame, ids) = with_regions(&frame, &rois);
    let results = scratch("regions", "four.jsonl");
    let (out, messages, stats) = classify(
        &format!("model={} results-file={}", model(), results.display()),
        &caps,
        vec![frame],
    );
    // Each region's own ROI meta holds its photo's class; no full-frame result.
    let on_buffer = meta::regions(&out[0]);
    assert_eq!(on_buffer.len(), 4);
    for (i, id) in ids.iter().enumerate() {
        let (region, c) = on_buffer
            .iter()
            .find(|(r, _)| r.id == *id)
            .expect("a result per region");
        assert_eq!(
            (region.x, region.y, region.width, region.height),
            (QUADRANTS[i].0, QUADRANTS[i].1, 224, 224)
        );
        assert_eq!(region.roi_type, "object");
        assert!(
            classes[i].contains(&c.class_id()),
            "region {i}: {}",
            c.label()
        );
    }
    assert!(gsttorch::ClassificationMeta::from_buffer(&out[0]).is_none());
    assert!(meta::from_roi_meta(&out[0]).is_none());
    // One message per region, the same results.
    let mut posted = region_results(&messages);
    posted.sort_by_key(|(r, _)| r.id);
    let mut attached = on_buffer.clone();
    attached.sort_by_key(|(r, _)| r.id);
    assert_eq!(posted, attached);
    // One forward of four.
    assert_eq!(stats.get::<f64>("mean-batch-size").unwrap(), 4.0);
    assert_eq!(stats.get::<u64>("regions").unwrap(), 4);
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 1);
    // One JSON line with the four objects.
    let lines = json_lines(&results);
    assert_eq!(lines.len(), 1);
    let objects = lines[0]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 4);
    for o in objects {
        let id = o["roi-id"].as_i64().unwrap() as i32;
        let i = ids.iter().position(|&x| x == id).unwrap();
        assert!(classes[i].contains(&(o["class-id"].as_u64().unwrap() as u32)));
        assert_eq!(o["width"], 224);
        assert_eq!(o["roi-type"], "object");
        assert!(o["top-k"].as_array().is_some_and(|t| !t.is_empty()));
    }
}

#[test]
fn regions_without_ids_get_their_own_results() {
    // A detector that sets no ids (facedetect, say): every ROI meta's id is 0.
    let ((caps, frame), classes) = grid();
    let rois = quadrants("face");
    let (frame, _) = with_ids(&frame, &rois, |_| 0);
    let (out, _, _) = classify(&format!("model={}", model()), &caps, vec![frame.clone()]);
    let results = meta::regions(&out[0]);
    assert_eq!(results.len(), 4);
    for (region, c) in &results {
        let i = QUADRANTS
            .iter()
            .position(|&q| q == (region.x, region.y))
            .unwrap();
        assert!(
            classes[i].contains(&c.class_id()),
            "quadrant {i}: {}",
            c.label()
        );
    }
    // Frames between inferences carry nothing for them: an id of 0 names no one region.
    let (out, _, _) = classify(
        &format!("model={} inference-interval=2", model()),
        &caps,
        vec![frame.clone(), frame],
    );
    assert_eq!(meta::regions(&out[0]).len(), 4);
    assert!(meta::regions(&out[1]).is_empty());
    // One id-0 region, then two: neither of the two is that one.
    let (one, _) = with_ids(&grid().0.1, &rois[..1], |_| 0);
    let (two, _) = with_ids(&grid().0.1, &rois[..2], |_| 0);
    let (out, _, _) = classify(
        &format!("model={} inference-interval=2", model()),
        &caps,
        vec![one, two],
    );
    assert_eq!(meta::regions(&out[0]).len(), 1);
    assert!(meta::regions(&out[1]).is_empty());
}

#[test]
fn object_class_and_min_roi_size_select_regions() {
    let ((caps, frame), _) = grid();
    let (frame, ids) = with_regions(
        &frame,
        &[
            ("cat", (0, 0, 224, 224)),
            ("cup", (224, 0, 224, 224)),
            ("fruit", (0, 224, 224, 224)),
            ("cup", (230, 230, 100, 100)),
        ],
    );
    let m = model();
    let classified = |properties: &str| -> Vec<i32> {
        let (out, _, _) = classify(
            &format!("model={m} {properties}"),
            &caps,
            vec![frame.clone()],
        );
        let mut ids: Vec<i32> = meta::regions(&out[0])
            .into_iter()
            .map(|(r, _)| r.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(classified(""), ids);
    assert_eq!(classified("object-class=cup"), vec![ids[1], ids[3]]);
    assert_eq!(
        classified("object-class=\"fruit, cat\""),
        vec![ids[0], ids[2]]
    );
    assert_eq!(classified("min-roi-size=150"), ids[..3].to_vec());
    assert_eq!(
        classified("object-class=cup min-roi-size=150"),
        vec![ids[1]]
    );
    assert_eq!(classified("object-class=dog"), Vec::<i32>::new());
}

#[test]
fn regions_outside_empty_and_many_are_handled() {
    let ((caps, frame), _) = grid();
    let mut rois = vec![
        ("partly", (300, 300, 500, 500)), // clipped to 148x148
        ("outside", (448, 0, 100, 100)),  // wholly outside
        ("outside", (1000, 1000, 5, 5)),
        ("empty", (10, 10, 0, 40)),
        ("huge", (0, 0, u32::MAX, u32::MAX)),
    ];
    for i in 0..200u32 {
        rois.push((
            "many",
            ((i * 37) % 400, (i * 53) % 400, 16 + i % 40, 16 + i % 30),
        ));
    }
    let (frame, ids) = with_regions(&frame, &rois);
    let (out, messages, stats) = classify(
        &format!("model={} max-batch=16", model()),
        &caps,
        vec![frame],
    );
    let results = meta::regions(&out[0]);
    // Everything with a part inside: 1 partly + 1 huge + 200 many.
    assert_eq!(results.len(), 202);
    let partly = results.iter().find(|(r, _)| r.id == ids[0]).unwrap();
    assert_eq!(
        (partly.0.x, partly.0.y, partly.0.width, partly.0.height),
        (300, 300, 148, 148)
    );
    let huge = results.iter().find(|(r, _)| r.id == ids[4]).unwrap();
    assert_eq!((huge.0.width, huge.0.height), (448, 448));
    assert!(
        results
            .iter()
            .all(|(r, _)| !["outside", "empty"].contains(&r.roi_type.as_str()))
    );
    assert_eq!(region_results(&messages).len(), 202);
    // max-batch bounds a forward: 202 regions take ceil(202 / 16) = 13 forwards.
    let mean = stats.get::<f64>("mean-batch-size").unwrap();
    assert!((mean - 202.0 / 13.0).abs() < 1e-6, "mean batch {mean}");
}

#[test]
fn a_model_taking_one_image_per_forward_works_region_by_region() {
    let ((caps, frame), _) = grid();
    let rois = quadrants("object");
    let (frame, _) = with_regions(&frame, &rois);
    let (out, _, stats) = classify(
        &format!(
            "model={} labels={} top-k=2",
            test_model("batch1_only.pt"),
            test_model("ten_labels.txt")
        ),
        &caps,
        vec![frame.clone()],
    );
    let results = meta::regions(&out[0]);
    assert_eq!(results.len(), 4);
    assert_eq!(stats.get::<f64>("mean-batch-size").unwrap(), 1.0);
    // Each region gets what the model says about its photo alone: a 224x224 quadrant is
    // sampled pixel for pixel, as the photo is in full-frame mode.
    let photos = ["cat.png", "coffee.png", "orange.jpg", "coffee.png"];
    for (region, c) in &results {
        let i = QUADRANTS
            .iter()
            .position(|&q| q == (region.x, region.y))
            .unwrap();
        let (caps, photo) =
            common::frame_as(photos[i], "video/x-raw,format=RGB,width=224,height=224");
        let mut h = gst_check::Harness::new_parse(&format!(
            "torchclassify model={} labels={} top-k=2",
            test_model("batch1_only.pt"),
            test_model("ten_labels.txt")
        ));
        h.set_src_caps(caps);
        let alone = h.push_and_pull(photo).unwrap();
        let alone = gsttorch::ClassificationMeta::from_buffer(&alone).unwrap();
        assert_eq!(c.class_id(), alone.class_id(), "quadrant {i}");
        assert!(
            (c.confidence() - alone.confidence()).abs() < 1e-4,
            "quadrant {i}"
        );
    }
}

#[test]
fn interval_carries_results_by_roi_id_and_async_posts_per_region() {
    let ((caps, frame), classes) = grid();
    let rois = quadrants("object");
    let (frame, ids) = with_regions(&frame, &rois);
    // Frames 0 and 2 inferred; frame 1 (same ids, as a tracker keeps them) carries frame 0's.
    let (out, messages, stats) = classify(
        &format!("model={} inference-interval=2", model()),
        &caps,
        vec![frame.clone(), frame.clone(), frame.clone()],
    );
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 2);
    assert_eq!(region_results(&messages).len(), 8);
    for buffer in &out {
        let results = meta::regions(buffer);
        assert_eq!(results.len(), 4);
        for (region, c) in results {
            let i = ids.iter().position(|&id| id == region.id).unwrap();
            assert!(classes[i].contains(&c.class_id()));
        }
    }
    assert_eq!(
        meta::regions(&out[1])[0].1.frame.number,
        0,
        "carried from frame 0"
    );
    // Async: per-region messages arrive from the model thread.
    init();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=\"{caps}\" ! torchclassify inference-region=roi-list \
         async=true model={} ! fakesink",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for i in 0..3 {
        let mut f = frame.copy();
        f.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_seconds(i));
        src.push_buffer(f).unwrap();
    }
    src.end_of_stream().unwrap();
    let mut posted = Vec::new();
    for msg in pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::from_seconds(60))
    {
        match msg.view() {
            gst::MessageView::Element(_) => posted.extend(message::region_from_message(&msg)),
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        !posted.is_empty() && posted.len() % 4 == 0,
        "{} region messages",
        posted.len()
    );
    for (region, c) in &posted {
        let i = ids.iter().position(|&id| id == region.id).unwrap();
        assert!(classes[i].contains(&c.class_id()));
    }
}

#[test]
fn threshold_applies_per_region() {
    // multilabel.pt: a yellow region scores red and green high, a black one nothing.
    init();
    let caps = rgb_caps(64, 32);
    let (frame, ids) = with_regions(
        &rgb_frame(64, 32, 0, &[([255, 255, 0], 0, 0, 32, 32)]),
        &[("yellow", (0, 0, 32, 32)), ("black", (32, 0, 32, 32))],
    );
    let (out, messages, stats) = classify(
        &format!(
            "model={} labels={} pixel-scale={} mean=\"<0.0,0.0,0.0>\" std=\"<1.0,1.0,1.0>\" \
             output=sigmoid threshold=0.5 top-k=3",
            test_model("multilabel.pt"),
            test_model("multilabel_labels.txt"),
            1.0 / 255.0
        ),
        &caps,
        vec![frame],
    );
    let results = meta::regions(&out[0]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0.id, ids[0]);
    let mut labels: Vec<&str> = results[0].1.top_k().iter().map(|p| &*p.label).collect();
    labels.sort();
    assert_eq!(labels, ["green", "red"]);
    assert_eq!(region_results(&messages).len(), 1);
    assert_eq!(stats.get::<u64>("below-threshold").unwrap(), 1);
    assert_eq!(stats.get::<u64>("regions").unwrap(), 2);
}

#[test]
fn torchpublish_publishes_every_region_of_a_frame() {
    let ((caps, frame), classes) = grid();
    let rois = quadrants("object");
    let (frame, ids) = with_regions(&frame, &rois);
    let file = scratch("regions", "published.jsonl");
    init();
    let mut h = gst_check::Harness::new_parse(&format!(
        "torchclassify inference-region=roi-list model={} ! torchpublish method=file \
         location={} source-id=cam1",
        model(),
        file.display()
    ));
    h.set_src_caps(caps);
    h.push_and_pull(frame).unwrap();
    h.push_event(gst::event::Eos::new());
    drop(h);
    let lines = json_lines(&file);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["source"], "cam1");
    let objects = lines[0]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 4);
    for o in objects {
        let i = ids
            .iter()
            .position(|&id| i64::from(id) == o["roi-id"].as_i64().unwrap())
            .unwrap();
        assert!(classes[i].contains(&(o["class-id"].as_u64().unwrap() as u32)));
    }
}
