//! Preprocessing that matches the model: YUV and gray frames straight in, normalisation and
//! colour order, resize modes, output activation and threshold, the model config file, and the
//! errors for bad values. Real models (the exported int8 MobileNetV2, and test models from
//! `tools/make_test_models.py`: `bgr255.pt` is it wrapped to take BGR 0..255, `multilabel.pt`
//! scores red, green and blue independently) on the shared photos.

use gst::prelude::*;
use gst_base::prelude::*;
use gsttorch::{Classification, message};
mod common;
use common::{CAT, ESPRESSO, ORANGE, frame_as, init, media, model, run, scratch, test_model, tile};
use std::ops::RangeInclusive;

fn photos() -> [(&'static str, RangeInclusive<u32>); 3] {
    [
        ("cat.png", CAT),
        ("coffee.png", ESPRESSO..=ESPRESSO),
        ("orange.jpg", ORANGE..=ORANGE),
    ]
}

/// The one result for `photo` decoded and scaled to `caps`, then `convert` (pipeline text, may
/// be empty) and `torchclassify <properties>`.
fn classify(photo: &str, caps: &str, convert: &str, properties: &str) -> Classification {
    let r = run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! {caps} ! {convert} \
         torchclassify {properties} ! fakesink",
        media(photo)
    ));
    assert_eq!(r.error, None, "{photo} as {caps} with {properties}");
    assert_eq!(r.results.len(), 1, "{photo} as {caps} with {properties}");
    r.results.into_iter().next().unwrap()
}

/// The results of `frames` (same caps) through `bin` in a harness, one each.
fn classify_frames(bin: &str, caps: &gst::Caps, frames: &[gst::Buffer]) -> Vec<Classification> {
    let mut h = gst_check::Harness::new_parse(bin);
    h.set_src_caps(caps.clone());
    frames
        .iter()
        .map(|f| {
            let out = h.push_and_pull(f.clone()).unwrap();
            gsttorch::ClassificationMeta::from_buffer(&out)
                .unwrap_or_else(|| panic!("no result from {bin}"))
                .classification()
                .clone()
        })
        .collect()
}

#[test]
fn yuv_and_gray_straight_in_match_converting_to_rgb_first() {
    // 320x240 gets BT.601 colorimetry by default, 1280x720 BT.709: both matrices are used.
    for size in ["width=320,height=240", "width=1280,height=720"] {
        for format in ["I420", "YV12", "NV12", "NV21", "YUY2", "UYVY", "GRAY8"] {
            let caps = format!("video/x-raw,format={format},{size}");
            let decoded: Vec<(gst::Caps, gst::Buffer)> =
                photos().iter().map(|(p, _)| frame_as(p, &caps)).collect();
            let frames: Vec<gst::Buffer> = decoded.iter().map(|(_, b)| b.clone()).collect();
            let caps = &decoded[0].0;
            let m = model();
            let direct = classify_frames(&format!("torchclassify model={m}"), caps, &frames);
            let converted = classify_frames(
                &format!("videoconvert ! video/x-raw,format=RGB ! torchclassify model={m}"),
                caps,
                &frames,
            );
            for (((photo, classes), d), c) in photos().iter().zip(&direct).zip(&converted) {
                eprintln!(
                    "{photo} {format} {size}: {} {:.3} straight in, {} {:.3} via videoconvert",
                    d.label(),
                    d.confidence(),
                    c.label(),
                    c.confidence()
                );
                // The same class, or two of the photo's own (the cat photo's five cat classes
                // are close calls for any converter).
                assert!(
                    d.class_id() == c.class_id()
                        || classes.contains(&d.class_id()) && classes.contains(&c.class_id()),
                    "{photo} {format} {size}: {} straight in, {} via videoconvert",
                    d.label(),
                    c.label()
                );
                if d.class_id() == c.class_id() {
                    let diff = (d.confidence() - c.confidence()).abs();
                    assert!(
                        diff < 0.1,
                        "{photo} {format} {size}: confidence off by {diff:.3}"
                    );
                }
            }
        }
    }
}

#[test]
fn videoconvert_passes_yuv_through_to_the_element() {
    // The card's pipeline with a YUY2 camera: videoconvert has nothing to do.
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=YUY2,width=640,height=480 ! \
         videoconvert name=convert ! torchclassify model={} ! fakesink",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(30));
    let convert = pipeline
        .by_name("convert")
        .unwrap()
        .downcast::<gst_base::BaseTransform>()
        .unwrap();
    assert!(convert.is_passthrough(), "videoconvert converts");
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Whether every photo's top-1 is its class with `properties`.
fn all_photos_right(properties: &str) -> bool {
    photos().into_iter().all(|(photo, classes)| {
        let c = classify(photo, "video/x-raw,format=RGB", "", properties);
        classes.contains(&c.class_id())
    })
}

const BGR_0_255: &str = r#"color-order=bgr pixel-scale=1 mean="<0.0,0.0,0.0>" std="<1.0,1.0,1.0>""#;

#[test]
fn a_bgr_0_255_model_needs_its_own_settings() {
    let bgr = test_model("bgr255.pt");
    assert!(
        all_photos_right(&format!("model={bgr} {BGR_0_255}")),
        "bgr255.pt with its settings"
    );
    assert!(
        !all_photos_right(&format!("model={bgr}")),
        "bgr255.pt right with ImageNet RGB settings"
    );
    assert!(
        !all_photos_right(&format!(
            r#"model={bgr} pixel-scale=1 mean="<0.0,0.0,0.0>" std="<1.0,1.0,1.0>""#
        )),
        "bgr255.pt right with RGB planes"
    );
}

#[test]
fn a_bgr_0_255_model_from_its_config_file() {
    let bgr = test_model("bgr255.pt");
    let config = test_model("bgr255_config.json");
    // Named by the property.
    assert!(all_photos_right(&format!(
        "model={bgr} model-config={config}"
    )));
    // Found beside the model (my.pt -> my.json).
    let model = scratch("config-beside", "bgr.pt");
    let _ = std::fs::remove_file(&model);
    std::os::unix::fs::symlink(&bgr, &model).unwrap();
    std::fs::copy(&config, model.with_extension("json")).unwrap();
    let model = model.display().to_string();
    assert!(all_photos_right(&format!("model={model}")));
    // A property set on the element wins over the file.
    assert!(!all_photos_right(&format!("model={model} color-order=rgb")));
}

/// The result of one frame through `torchclassify <properties>` in a harness.
fn classify_frame(properties: &str, (caps, buffer): (gst::Caps, gst::Buffer)) -> Classification {
    init();
    let mut h = gst_check::Harness::new_parse(&format!("torchclassify {properties}"));
    h.set_src_caps(caps);
    let out = h.push_and_pull(buffer).unwrap();
    gsttorch::ClassificationMeta::from_buffer(&out)
        .expect("a result")
        .classification()
        .clone()
}

#[test]
fn center_crop_classifies_the_middle_of_a_wide_frame() {
    let names = ["cat.png", "coffee.png", "orange.jpg"];
    for middle in 0..3 {
        let order = [
            names[(middle + 2) % 3],
            names[middle],
            names[(middle + 1) % 3],
        ];
        let classes = &photos()[middle].1;
        for fraction in ["1.0", "0.875"] {
            let c = classify_frame(
                &format!(
                    "model={} resize=center-crop crop-fraction={fraction}",
                    model()
                ),
                tile(&order, 3),
            );
            assert!(
                classes.contains(&c.class_id()),
                "{order:?} cropped ({fraction}): {}",
                c.label()
            );
        }
    }
}

#[test]
fn letterbox_keeps_a_photo_recognisable() {
    for (photo, classes) in photos() {
        let c = classify(
            photo,
            "video/x-raw,format=RGB",
            "",
            &format!("model={} resize=letterbox", model()),
        );
        assert!(classes.contains(&c.class_id()), "{photo}: {}", c.label());
    }
}

/// The messages and final stats of `frames` solid frames of `argb` through `multilabel.pt`.
fn multilabel(argb: u32, frames: u32, properties: &str) -> (Vec<Classification>, gst::Structure) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=solid-color foreground-color={argb} ! \
         video/x-raw,format=RGB,width=64,height=48 ! torchclassify name=c model={} labels={} \
         pixel-scale={} mean=\"<0.0,0.0,0.0>\" std=\"<1.0,1.0,1.0>\" top-k=3 {properties} ! \
         fakesink",
        test_model("multilabel.pt"),
        test_model("multilabel_labels.txt"),
        1.0 / 255.0
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut results = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(_) => results.extend(message::from_message(&msg)),
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    let stats = pipeline
        .by_name("c")
        .unwrap()
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    (results, stats)
}

const YELLOW: u32 = 0xffff_ff00;
const BLACK: u32 = 0xff00_0000;

#[test]
fn sigmoid_scores_every_label_present_and_threshold_keeps_them() {
    let (results, _) = multilabel(YELLOW, 2, "output=sigmoid threshold=0.5");
    assert_eq!(results.len(), 2);
    for c in &results {
        let mut labels: Vec<&str> = c.top_k().iter().map(|p| &*p.label).collect();
        labels.sort();
        assert_eq!(labels, ["green", "red"], "{c:?}");
        assert!(c.top_k().iter().all(|p| p.confidence > 0.9));
    }
    // None: the outputs are the confidences as they are (here logits: 12 × (1 − 0.5) = 6).
    let (results, _) = multilabel(YELLOW, 1, "output=none");
    assert!(
        (results[0].confidence() - 6.0).abs() < 0.1,
        "{:?}",
        results[0]
    );
    // Softmax shares one unit between the two labels present.
    let (results, _) = multilabel(YELLOW, 1, "");
    assert!(
        (results[0].confidence() - 0.5).abs() < 0.05,
        "{:?}",
        results[0]
    );
    assert_eq!(results[0].top_k().len(), 3);
}

#[test]
fn frames_below_threshold_get_no_result_and_are_counted() {
    // Black: every label's own probability is tiny.
    let (results, stats) = multilabel(BLACK, 3, "output=sigmoid threshold=0.5");
    assert!(results.is_empty(), "{results:?}");
    assert_eq!(stats.get::<u64>("below-threshold").unwrap(), 3);
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 3);
    // No meta on the frames either.
    init();
    let mut h = gst_check::Harness::new_parse(&format!(
        "torchclassify model={} labels={} output=sigmoid threshold=0.5",
        test_model("multilabel.pt"),
        test_model("multilabel_labels.txt"),
    ));
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=8,height=8,framerate=1/1");
    let out = h.push_and_pull(gst::Buffer::from_slice([0u8; 64])).unwrap();
    assert!(gsttorch::ClassificationMeta::from_buffer(&out).is_none());
}

#[test]
fn bad_values_are_clear_errors() {
    let dir = scratch("bad-config", "x");
    let dir = dir.parent().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let m = model();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!(r#"model={m} mean="<0.5,0.5>""#),
            vec!["'mean'".into(), "3".into()],
        ),
        (
            format!(r#"model={m} std="<1.0,0.0,1.0>""#),
            vec!["'std'".into()],
        ),
        {
            let f = write("wrong-type.json", r#"{"mean": "0.5"}"#);
            (
                format!("model={m} model-config={f}"),
                vec![f, "'mean'".into()],
            )
        },
        {
            let f = write("unknown-key.json", r#"{"colour-order": "bgr"}"#);
            (
                format!("model={m} model-config={f}"),
                vec![f, "'colour-order'".into()],
            )
        },
        {
            let f = write("bad-enum.json", r#"{"resize": "crop"}"#);
            (
                format!("model={m} model-config={f}"),
                vec![f, "'resize'".into()],
            )
        },
        {
            let f = write("not-json.json", "{mean: [1, 2, 3]}");
            (format!("model={m} model-config={f}"), vec![f])
        },
        {
            let f = dir.join("missing.json").display().to_string();
            (
                format!("model={m} model-config={f}"),
                vec![f, "'model-config'".into()],
            )
        },
        {
            let f = write("few-labels.json", r#"{"labels": ["a", "b"]}"#);
            (
                format!("model={m} model-config={f}"),
                vec![f, "1000 classes".into(), "has 2 labels".into()],
            )
        },
    ];
    // NaN cannot be given: GObject's range check refuses it before the element sees it (and
    // JSON has none); modelconfig's unit tests check the element's own refusal.
    for (properties, wanted) in cases {
        let r = run(&format!(
            "videotestsrc num-buffers=1 ! video/x-raw,format=RGB ! torchclassify {properties} ! \
             fakesink"
        ));
        assert!(r.results.is_empty(), "{properties}");
        let error = r
            .error
            .unwrap_or_else(|| panic!("no error for {properties}"));
        for w in wanted {
            assert!(error.contains(&w), "{properties}: `{w}` not in `{error}`");
        }
    }
}

#[test]
fn a_hot_swap_takes_the_new_models_config_file() {
    // input_shape.pt scores class H for a [1, 3, H, W] input: the result says what it was given.
    init();
    let model = scratch("config-swap", "shape160.pt");
    let _ = std::fs::remove_file(&model);
    std::os::unix::fs::symlink(test_model("input_shape.pt"), &model).unwrap();
    std::fs::write(model.with_extension("json"), r#"{"input-size": 160}"#).unwrap();
    let element = gst::parse::launch(&format!(
        "torchclassify model={}",
        test_model("input_shape.pt")
    ))
    .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=30/1");
    let frame = || gst::Buffer::from_slice(vec![0u8; 64 * 48 * 3]);
    let class = |h: &mut gst_check::Harness| {
        let out = h.push_and_pull(frame()).unwrap();
        gsttorch::ClassificationMeta::from_buffer(&out)
            .unwrap()
            .class_id()
    };
    assert_eq!(class(&mut h), 224);
    element.set_property("model", model.display().to_string());
    let updated = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Element],
        )
        .into_iter()
        .chain(std::iter::from_fn(|| {
            bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Element],
            )
        }))
        .find(|m| {
            m.structure()
                .is_some_and(|s| s.name() == "torchclassify-model-updated")
        });
    assert!(updated.is_some(), "no torchclassify-model-updated");
    // The frames after the swap are prepared at the new model's input size.
    assert_eq!(class(&mut h), 160);
}
