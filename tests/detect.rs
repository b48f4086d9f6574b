//! torchdetect with the test detectors of `tools/make_test_models.py` (they find red, green and
//! blue rectangles exactly, each as several overlapping candidates that only NMS reduces to one,
//! plus a low-score distractor): each output format, NMS, the threshold, letterbox mapping on
//! non-square frames, labels (given, COCO's built in), the class and size filters, the results
//! (ROI metas, message, JSON lines, the frame meta) and the errors for models that are no
//! detector of the format asked for.

mod common;
use common::{
    BLUE, DARK, GREEN, RED, Solid, element, init, json_lines, push_through, rgb_caps, rgb_frame,
    scratch, test_model,
};
use gst::prelude::*;
use gsttorch::detect::meta;
use gsttorch::torchcore::detected::Detected;

/// The frame's boxes from its ROI metas: (label, x, y, w, h), in meta order.
fn boxes(buffer: &gst::BufferRef) -> Vec<(String, u32, u32, u32, u32)> {
    meta::from_buffer(buffer)
        .map(|d| {
            d.objects
                .iter()
                .map(|o| (o.label.to_string(), o.x, o.y, o.width, o.height))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `got` is `want` within `tolerance` pixels on each edge.
fn near(got: (u32, u32, u32, u32), want: (u32, u32, u32, u32), tolerance: u32) -> bool {
    let edges = |(x, y, w, h): (u32, u32, u32, u32)| [x, y, x + w, y + h];
    edges(got)
        .iter()
        .zip(edges(want))
        .all(|(a, b)| a.abs_diff(b) <= tolerance)
}

/// The one box labelled `label`; fails if there is none or more than one.
fn only(found: &[(String, u32, u32, u32, u32)], label: &str) -> (u32, u32, u32, u32) {
    let same: Vec<_> = found.iter().filter(|b| b.0 == label).collect();
    assert_eq!(same.len(), 1, "one {label} box in {found:?}");
    let b = same[0];
    (b.1, b.2, b.3, b.4)
}

/// The number of objects of each line.
fn object_counts(lines: &[serde_json::Value]) -> Vec<usize> {
    lines
        .iter()
        .map(|l| l["objects"].as_array().unwrap().len())
        .collect()
}

/// Runs one frame through `torchdetect <properties>`: the buffer out and its messages.
fn detect(
    properties: &str,
    width: usize,
    height: usize,
    rects: &[Solid],
) -> (gst::Buffer, Vec<Detected>) {
    let e = element(&format!("torchdetect {properties}"));
    let (out, messages, _h) = push_through(
        &e,
        &rgb_caps(width, height),
        vec![rgb_frame(width, height, DARK, rects)],
    );
    let detected = messages
        .iter()
        .filter_map(|m| meta::from_message(m))
        .collect();
    (out.into_iter().next().unwrap(), detected)
}

#[test]
fn every_output_format_finds_each_object_once_in_frame_pixels() {
    let _s = common::serial();
    let rects = [(RED, 40, 60, 64, 48), (BLUE, 200, 120, 32, 40)];
    for model in ["shapes_yolov8.pt", "shapes_yolov5.pt", "shapes_boxes.pt"] {
        // 320x240 letterboxed into 640x640: scale 2, 80 rows of bars above and below.
        let props = format!(
            "model={} labels={}",
            test_model(model),
            test_model("shapes_labels.txt")
        );
        let (out, messages) = detect(&props, 320, 240, &rects);
        let found = boxes(&out);
        assert_eq!(found.len(), 2, "{model}: {found:?}");
        assert!(
            near(only(&found, "red"), (40, 60, 64, 48), 1),
            "{model}: {found:?}"
        );
        assert!(
            near(only(&found, "blue"), (200, 120, 32, 40), 1),
            "{model}: {found:?}"
        );
        // The message says the same, the most confident first, with the frame it is for.
        assert_eq!(messages.len(), 1, "{model}");
        let m = &messages[0];
        assert_eq!(m.frame.number, 0);
        assert_eq!(m.objects.len(), 2);
        assert!(
            m.objects.iter().all(|o| (o.confidence - 0.9).abs() < 1e-4),
            "{m:?}"
        );
        assert_eq!(m.objects[0].id, -1);
        assert!(meta::detected_frame(&out).is_some());
    }
}

#[test]
fn letterbox_maps_back_on_tall_and_wide_frames_and_a_stretch_too() {
    let _s = common::serial();
    for (w, h) in [(240, 320), (640, 160)] {
        let rects = [(GREEN, 20, 30, 50, 60)];
        let props = format!("model={}", test_model("shapes_yolov8.pt"));
        let (out, _) = detect(&props, w, h, &rects);
        let found = boxes(&out);
        // No labels given, 3 classes: named by their ids.
        assert!(
            near(only(&found, "class 1"), (20, 30, 50, 60), 1),
            "{w}x{h}: {found:?}"
        );
    }
    let props = format!("model={} resize=stretch", test_model("shapes_yolov8.pt"));
    let (out, _) = detect(&props, 640, 160, &[(GREEN, 20, 30, 50, 60)]);
    assert!(near(only(&boxes(&out), "class 1"), (20, 30, 50, 60), 1));
}

#[test]
fn the_threshold_keeps_the_distractor_only_when_lowered() {
    let _s = common::serial();
    let rects = [(RED, 100, 80, 60, 60)];
    let labels = test_model("shapes_labels.txt");
    for (model, format) in [
        ("shapes_yolov8.pt", "yolov8"),
        ("shapes_yolov5.pt", "yolov5"),
    ] {
        let props = format!(
            "model={} labels={labels} output-format={format}",
            test_model(model)
        );
        let (out, _) = detect(&props, 320, 240, &rects);
        assert_eq!(boxes(&out).len(), 1, "{model} at 0.25");
        let (out, _) = detect(&format!("{props} threshold=0.1"), 320, 240, &rects);
        let found = boxes(&out);
        assert_eq!(found.len(), 2, "{model} at 0.1: {found:?}");
        // Without NMS's IoU limit (1: nothing overlaps enough), the candidates all stay.
        let (out, _) = detect(&format!("{props} iou-threshold=1"), 320, 240, &rects);
        assert_eq!(boxes(&out).len(), 4, "{model} without suppression");
        let (out, _) = detect(
            &format!("{props} iou-threshold=1 max-detections=2"),
            320,
            240,
            &rects,
        );
        assert_eq!(boxes(&out).len(), 2, "{model} with max-detections=2");
    }
}

#[test]
fn an_80_class_model_gets_cocos_names_and_filters_apply() {
    let _s = common::serial();
    let rects = [
        (RED, 10, 10, 40, 40),
        (GREEN, 100, 100, 20, 20),
        (BLUE, 200, 40, 60, 60),
    ];
    let model = test_model("shapes_coco80.pt");
    let (out, _) = detect(&format!("model={model}"), 320, 240, &rects);
    let mut labels: Vec<String> = boxes(&out).into_iter().map(|b| b.0).collect();
    labels.sort();
    assert_eq!(labels, ["car", "dog", "person"]);
    let (out, _) = detect(
        &format!("model={model} object-class=dog,person"),
        320,
        240,
        &rects,
    );
    let mut labels: Vec<String> = boxes(&out).into_iter().map(|b| b.0).collect();
    labels.sort();
    assert_eq!(labels, ["dog", "person"]);
    // The green box is 20x20: below min-size 30 it is dropped, and counted (it and its three
    // overlapping candidates: the size filter comes before NMS).
    let e = element(&format!("torchdetect name=d model={model} min-size=30"));
    let (out, _, h) = push_through(
        &e,
        &rgb_caps(320, 240),
        vec![rgb_frame(320, 240, DARK, &rects)],
    );
    assert_eq!(boxes(&out[0]).len(), 2);
    let d = h
        .element()
        .unwrap()
        .downcast::<gst::Bin>()
        .unwrap()
        .by_name("d")
        .unwrap();
    let stats = d.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("dropped-small").unwrap(), 4);
    assert_eq!(stats.get::<u64>("detections").unwrap(), 2);
}

#[test]
fn results_file_has_a_line_per_frame_with_its_objects() {
    let _s = common::serial();
    let path = scratch("detect", "objects.jsonl");
    let props = format!(
        "model={} labels={} results-file={}",
        test_model("shapes_yolov8.pt"),
        test_model("shapes_labels.txt"),
        path.display()
    );
    let e = element(&format!("torchdetect {props}"));
    let frames = vec![
        rgb_frame(320, 240, DARK, &[(RED, 10, 10, 40, 40)]),
        rgb_frame(320, 240, DARK, &[]),
        rgb_frame(
            320,
            240,
            DARK,
            &[(RED, 20, 10, 40, 40), (BLUE, 100, 100, 30, 30)],
        ),
    ];
    let (out, _, h) = push_through(&e, &rgb_caps(320, 240), frames);
    drop(h); // stops the element: the file is flushed
    let lines = json_lines(&path);
    assert_eq!(lines.len(), 3);
    let counts = object_counts(&lines);
    assert_eq!(counts, [1, 0, 2]);
    let o = &lines[2]["objects"][1];
    assert_eq!(
        (o["label"].as_str(), o["roi-type"].as_str()),
        (Some("blue"), Some("blue"))
    );
    assert_eq!(o["roi-id"], -2);
    assert_eq!(
        (o["x"].as_u64(), o["width"].as_u64()),
        (Some(100), Some(30))
    );
    // A frame with nothing found still carries the detector's mark (and no box).
    assert!(meta::detected_frame(&out[1]).is_some() && boxes(&out[1]).is_empty());
}

/// The error a pipeline with `torchdetect <properties>` stops with.
fn start_error(properties: &str) -> String {
    let r = common::run(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=48 ! \
         torchdetect {properties} ! fakesink"
    ));
    r.error
        .unwrap_or_else(|| panic!("torchdetect {properties} started"))
}

#[test]
fn models_that_are_no_detector_of_the_format_are_errors_naming_it() {
    let _s = common::serial();
    // A classifier: [1, 10].
    let e = start_error(&format!("model={}", test_model("ten_classes.pt")));
    assert!(
        e.contains("property 'model'") && e.contains("output-format"),
        "{e}"
    );
    assert!(e.contains("[1, 10]"), "{e}");
    let e = start_error(&format!(
        "model={} output-format=yolov8",
        test_model("ten_classes.pt")
    ));
    assert!(e.contains("[1, 10]") && e.contains("classifier"), "{e}");
    // Box lists of different lengths.
    let e = start_error(&format!("model={}", test_model("shapes_boxes_bad.pt")));
    assert!(e.contains("different numbers of detections"), "{e}");
    // 3 classes, 10 labels.
    let e = start_error(&format!(
        "model={} labels={}",
        test_model("shapes_yolov8.pt"),
        test_model("ten_labels.txt")
    ));
    assert!(e.contains("3 classes") && e.contains("10 labels"), "{e}");
    // A square head: auto cannot tell; the format set, it runs.
    let e = start_error(&format!("model={}", test_model("square_yolov8.pt")));
    assert!(e.contains("set output-format"), "{e}");
    let r = common::run(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=48 ! \
         torchdetect model={} output-format=yolov8 ! fakesink",
        test_model("square_yolov8.pt")
    ));
    assert_eq!(r.error, None);
    // The yolov5 model asked to be read as boxes.
    let e = start_error(&format!(
        "model={} output-format=boxes",
        test_model("shapes_yolov5.pt")
    ));
    assert!(
        e.contains("output-format=boxes expects 3 output tensors"),
        "{e}"
    );
    // No model at all.
    let e = start_error("");
    assert!(
        e.contains("property 'model'") && e.contains("no path given"),
        "{e}"
    );
    // A config file with a classifier's key.
    let dir = scratch("detect-config", "d.json");
    std::fs::write(&dir, r#"{"output": "softmax"}"#).unwrap();
    let e = start_error(&format!(
        "model={} model-config={}",
        test_model("shapes_yolov8.pt"),
        dir.display()
    ));
    assert!(e.contains("key 'output' is for torchclassify"), "{e}");
}

#[test]
fn the_model_config_file_sets_the_format_and_labels() {
    let _s = common::serial();
    let dir = scratch("detect-config", "square.json");
    std::fs::write(
        &dir,
        format!(
            r#"{{"output-format": "yolov8", "labels": {:?}}}"#,
            test_model("shapes_labels.txt")
        ),
    )
    .unwrap();
    let props = format!(
        "model={} model-config={}",
        test_model("square_yolov8.pt"),
        dir.display()
    );
    let (out, _) = detect(&props, 320, 240, &[(GREEN, 60, 50, 40, 40)]);
    assert!(near(only(&boxes(&out), "green"), (60, 50, 40, 40), 1));
}

#[test]
fn torchpublish_sends_each_frames_boxes() {
    let _s = common::serial();
    let path = scratch("detect-publish", "boxes.jsonl");
    let r = common::run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         torchdetect model={} labels={} ! torchpublish method=file location={} source-id=cam ! \
         fakesink",
        test_model("shapes.webm"),
        test_model("shapes_yolov8.pt"),
        test_model("shapes_labels.txt"),
        path.display()
    ));
    assert_eq!(r.error, None);
    let lines = json_lines(&path);
    // One message per frame of the 40-frame clip, each with its frame's objects (green is
    // hidden in 5 of them).
    assert_eq!(lines.len(), 40);
    let counts = object_counts(&lines);
    assert_eq!(counts.iter().filter(|&&n| n == 3).count(), 35, "{counts:?}");
    assert_eq!(counts.iter().filter(|&&n| n == 2).count(), 5, "{counts:?}");
    assert!(lines.iter().all(|l| l["source"] == "cam"));
}

#[test]
fn shared_async_and_hot_swapped_as_torchclassify_is() {
    let _s = common::serial();
    let (yolov8, yolov5) = (
        test_model("shapes_yolov8.pt"),
        test_model("shapes_yolov5.pt"),
    );
    let labels = test_model("shapes_labels.txt");
    // Two elements with one model-instance-id: one model thread (num-threads=1: no OpenMP
    // workers named after it).
    let props = format!("model={yolov8} labels={labels} num-threads=1 model-instance-id=shapes");
    let (a, b) = (
        element(&format!("torchdetect {props}")),
        element(&format!("torchdetect {props}")),
    );
    let frames = || vec![rgb_frame(320, 240, DARK, &[(RED, 10, 10, 40, 40)]); 2];
    let (out_a, _, ha) = push_through(&a, &rgb_caps(320, 240), frames());
    let (out_b, _, hb) = push_through(&b, &rgb_caps(320, 240), frames());
    assert_eq!(common::threads_named("torchdetect-mod"), 1);
    assert!(out_a.iter().chain(&out_b).all(|o| boxes(o).len() == 1));
    drop((ha, hb));
    // async: the video goes on at once; the results that come (newest wins) are whole frames'.
    let path = scratch("detect-async", "boxes.jsonl");
    let r = common::run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         torchdetect async=true model={yolov8} labels={labels} results-file={} ! fakesink",
        test_model("shapes.webm"),
        path.display()
    ));
    assert_eq!(r.error, None);
    let lines = json_lines(&path);
    assert!(
        !lines.is_empty() && lines.len() <= 40,
        "{} results",
        lines.len()
    );
    for l in &lines {
        let n = l["objects"].as_array().unwrap().len();
        assert!(n == 2 || n == 3, "{l}");
    }
    // A hot swap to the yolov5 head while a live pipeline plays: torchdetect-model-updated,
    // naming the new model and its 3 classes (the frames are black: no box to check here).
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true pattern=black num-buffers=60 ! \
         video/x-raw,format=RGB,width=320,height=240,framerate=30/1 ! \
         torchdetect name=d model={yolov8} labels={labels} ! fakesink"
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let d = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("d")
        .unwrap();
    d.set_property("model", &yolov5);
    let mut updated = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e
                    .structure()
                    .filter(|s| s.name() == "torchdetect-model-updated")
                {
                    updated = Some(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let updated = updated.expect("a torchdetect-model-updated message");
    assert_eq!(updated.get::<String>("model").unwrap(), yolov5);
    assert_eq!(updated.get::<u32>("classes").unwrap(), 3);
    // The same swap one frame at a time, with labels of other names: a red box through the
    // yolov8 head, the swap, and the frame pushed after torchdetect-model-updated gets its box
    // through the yolov5 head, read as yolov5, under the new label (labels and model are
    // swapped in together; both heads find the same box).
    let renamed = scratch("detect-swap", "labels.txt");
    std::fs::write(&renamed, "rouge\nvert\nbleu\n").unwrap();
    let renamed = renamed.to_string_lossy().into_owned();
    let bin = element(&format!(
        "torchdetect name=d model={yolov8} labels={labels}"
    ));
    let red = || rgb_frame(320, 240, DARK, &[(RED, 40, 60, 64, 48)]);
    let (before, _, mut h) = push_through(&bin, &rgb_caps(320, 240), vec![red()]);
    assert!(near(only(&boxes(&before[0]), "red"), (40, 60, 64, 48), 1));
    let d = bin
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("d")
        .unwrap();
    d.set_property("model", &yolov5);
    d.set_property("labels", &renamed);
    // The update with both (two loads if the changes came apart: the last one has both).
    let bus = bin.bus().unwrap();
    let updated = std::iter::from_fn(|| {
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Element, gst::MessageType::Warning],
        )
    })
    .find_map(|m| match m.view() {
        gst::MessageView::Warning(w) => panic!("the swap failed: {}", w.error()),
        _ => m
            .structure()
            .filter(|s| {
                s.name() == "torchdetect-model-updated"
                    && s.get::<Option<String>>("labels").unwrap().as_deref() == Some(&renamed)
            })
            .map(|s| s.to_owned()),
    })
    .expect("a torchdetect-model-updated message with the new labels");
    assert_eq!(updated.get::<String>("model").unwrap(), yolov5);
    let mut after = red();
    after.make_mut().set_pts(gst::ClockTime::from_seconds(1));
    let after = h.push_and_pull(after).unwrap();
    let found = boxes(&after);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        near(only(&found, "rouge"), (40, 60, 64, 48), 1),
        "{found:?}"
    );
}
