//! torchoverlay on hand-made buffers (gst-check Harness): frames without a result pass byte for
//! byte; a result attached by someone else as a ROI meta param is drawn in the chosen corner and
//! nowhere else. Plus results-file errors of torchclassify.

use gst::prelude::*;
use gsttorch::{Classification, FrameInfo, Prediction, message};
use std::sync::Arc;

mod common;
use common::{init, model};

const W: usize = 320;
const H: usize = 240;

fn harness(properties: &str) -> gst_check::Harness {
    init();
    let mut h = gst_check::Harness::new_parse(&format!("torchoverlay {properties}"));
    h.set_src_caps(
        gst::Caps::builder("video/x-raw")
            .field("format", "BGRx")
            .field("width", W as i32)
            .field("height", H as i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .build(),
    );
    h
}

/// A mid-grey frame with a little texture, so every byte has a known value.
fn frame() -> gst::Buffer {
    gst::Buffer::from_mut_slice(
        (0..W * H * 4)
            .map(|i| (100 + i % 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

#[test]
fn frames_without_a_result_pass_untouched() {
    let mut h = harness("");
    let input = frame();
    let out = h.push_and_pull(input.clone()).unwrap();
    let (a, b) = (input.map_readable().unwrap(), out.map_readable().unwrap());
    assert_eq!(a.as_slice(), b.as_slice());
    assert_eq!(a.as_ptr(), b.as_ptr(), "not even copied");
}

/// Which pixels of `out` differ from `frame()`: their bounding box and count.
fn changed(out: &gst::Buffer) -> (usize, usize, usize, usize, usize) {
    let reference = frame();
    let (a, b) = (
        reference.map_readable().unwrap(),
        out.map_readable().unwrap(),
    );
    let (mut x0, mut y0, mut x1, mut y1, mut n) = (W, H, 0, 0, 0);
    for (i, (p, q)) in a.chunks(4).zip(b.chunks(4)).enumerate() {
        if p != q {
            let (x, y) = (i % W, i / W);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            n += 1;
        }
    }
    (x0, y0, x1, y1, n)
}

#[test]
fn a_result_in_a_roi_meta_param_is_drawn_in_the_chosen_corner_only() {
    // As a C or Python app would attach it, without our Rust meta.
    let result = Classification::new(
        vec![Prediction {
            class_id: 950,
            label: Arc::from("orange"),
            confidence: 0.93,
        }],
        FrameInfo::default(),
        gst::ClockTime::ZERO,
    )
    .unwrap();
    for (position, left, top) in [("top-left", true, true), ("bottom-right", false, false)] {
        let mut h = harness(&format!("position={position}"));
        let mut input = frame();
        {
            let buf = input.get_mut().unwrap();
            let mut roi = gst_video::VideoRegionOfInterestMeta::add(
                buf,
                "classification",
                (0, 0, W as u32, H as u32),
            );
            roi.add_param(message::to_structure(&result));
        }
        let out = h.push_and_pull(input).unwrap();
        let (x0, y0, x1, y1, n) = changed(&out);
        assert!(n > 500, "{position}: only {n} pixels drawn");
        assert_eq!(x1 <= W / 2, left, "{position}: drawn from x {x0} to {x1}");
        assert_eq!(x0 >= W / 2, !left, "{position}: drawn from x {x0} to {x1}");
        assert_eq!(y1 <= H / 2, top, "{position}: drawn from y {y0} to {y1}");
        assert_eq!(y0 >= H / 2, !top, "{position}: drawn from y {y0} to {y1}");
    }
}

#[test]
fn results_file_that_cannot_be_created_is_an_error() {
    init();
    let model = model();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! torchclassify model={model} results-file=/nonexistent/dir/r.jsonl ! fakesink"
    ))
    .unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Error])
        .expect("an error message");
    pipeline.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(
        text.contains(
            "Cannot create results file '/nonexistent/dir/r.jsonl' (property 'results-file')"
        ) && text.contains("No such file"),
        "{text}"
    );
}
