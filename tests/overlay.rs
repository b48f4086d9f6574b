//! torchoverlay on hand-made buffers (gst-check Harness), real text rendering, in YUV (I420,
//! NV12, YUY2) and packed RGB: frames without a result pass byte for byte; a result (our meta, or
//! a ROI meta param attached by someone else) is drawn in the chosen corner and nowhere else; a
//! downstream that takes the overlay composition meta (caps feature and allocation answer) gets
//! the text as `GstVideoOverlayCompositionMeta` and untouched pixels. Plus results-file errors of
//! torchclassify.

use gst::prelude::*;
use gst_video::{VideoFormat, VideoInfo, VideoOverlayCompositionMeta};
use gsttorch::{Classification, FrameInfo, Prediction, message, meta};
use std::sync::Arc;

mod common;
use common::{init, model};

const W: u32 = 320;
const H: u32 = 240;

/// Formats the element must blend into: decoders' and cameras' YUV and a few packed RGB orders.
const FORMATS: [VideoFormat; 5] = [
    VideoFormat::I420,
    VideoFormat::Nv12,
    VideoFormat::Yuy2,
    VideoFormat::Bgrx,
    VideoFormat::Rgb,
];

/// What sits downstream of the element.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Downstream {
    /// Plain system-memory video caps, no meta in its allocation answer (an encoder, say).
    Plain,
    /// Any caps (appsink, fakesink), no meta in its allocation answer.
    AnyCaps,
    /// Any caps, and the composition meta API in its allocation answer.
    AnyCapsDrawsMeta,
    /// Caps with the `meta:GstVideoOverlayComposition` feature only, and the meta API in its
    /// allocation answer (a compositing sink).
    FeatureDrawsMeta,
    /// Plain caps, yet the meta API in its allocation answer.
    PlainWithMetaInAllocation,
}

fn info(format: VideoFormat) -> VideoInfo {
    init();
    VideoInfo::builder(format, W, H)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap()
}

fn with_feature(caps: &gst::Caps) -> gst::Caps {
    let mut caps = caps.clone();
    caps.make_mut()
        .set_features_simple(Some(gst::CapsFeatures::new([
            gst::CAPS_FEATURE_MEMORY_SYSTEM_MEMORY,
            gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION,
        ])));
    caps
}

fn has_feature(caps: &gst::Caps) -> bool {
    caps.features(0).is_some_and(|f| {
        !f.is_any() && f.contains(gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION)
    })
}

fn harness_with(
    format: VideoFormat,
    properties: &str,
    downstream: Downstream,
    src_caps: gst::Caps,
) -> gst_check::Harness {
    init();
    let element = gst::parse::launch(&format!("torchoverlay {properties}")).unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    let plain = info(format).to_caps().unwrap();
    match downstream {
        Downstream::Plain | Downstream::PlainWithMetaInAllocation => h.set_sink_caps(plain),
        Downstream::FeatureDrawsMeta => h.set_sink_caps(with_feature(&plain)),
        Downstream::AnyCaps | Downstream::AnyCapsDrawsMeta => {}
    }
    if matches!(
        downstream,
        Downstream::AnyCapsDrawsMeta
            | Downstream::FeatureDrawsMeta
            | Downstream::PlainWithMetaInAllocation
    ) {
        h.add_propose_allocation_meta(VideoOverlayCompositionMeta::meta_api(), None);
    }
    h.set_src_caps(src_caps);
    h
}

fn harness(format: VideoFormat, properties: &str, downstream: Downstream) -> gst_check::Harness {
    harness_with(
        format,
        properties,
        downstream,
        info(format).to_caps().unwrap(),
    )
}

/// The caps the element's src pad negotiated with the harness.
fn negotiated(h: &gst_check::Harness) -> gst::Caps {
    h.sinkpad()
        .unwrap()
        .current_caps()
        .expect("negotiated caps")
}

/// A mid-grey frame with a little texture, so every byte has a known value.
fn frame(format: VideoFormat) -> gst::Buffer {
    gst::Buffer::from_mut_slice(
        (0..info(format).size())
            .map(|i| (100 + i % 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn result(label: &str, confidence: f64) -> Classification {
    Classification::new(
        vec![Prediction {
            class_id: 950,
            label: Arc::from(label),
            confidence,
        }],
        FrameInfo::default(),
        gst::ClockTime::ZERO,
    )
    .unwrap()
}

/// `frame(format)` carrying torchclassify's metas for `result`.
fn frame_with(format: VideoFormat, result: Classification) -> gst::Buffer {
    let mut buffer = frame(format);
    meta::attach(buffer.get_mut().unwrap(), result, W, H);
    buffer
}

/// Where `after` differs from `before`, in every plane, in frame pixel coordinates: the
/// bounding box (x0, y0, x1, y1) and the number of differing bytes.
fn changes(
    format: VideoFormat,
    before: &gst::Buffer,
    after: &gst::Buffer,
) -> (u32, u32, u32, u32, usize) {
    let info = info(format);
    let a = gst_video::VideoFrameRef::from_buffer_ref_readable(before.as_ref(), &info).unwrap();
    let b = gst_video::VideoFrameRef::from_buffer_ref_readable(after.as_ref(), &info).unwrap();
    let finfo = info.format_info();
    let (mut x0, mut y0, mut x1, mut y1, mut n) = (W, H, 0, 0, 0);
    for plane in 0..info.n_planes() {
        // The first component stored in this plane gives its pixel stride and subsampling.
        let c = (0..finfo.n_components() as usize)
            .find(|&c| finfo.plane()[c] == plane)
            .unwrap();
        let ps = finfo.pixel_stride()[c] as usize;
        let (ws, hs) = (finfo.w_sub()[c], finfo.h_sub()[c]);
        let pw = finfo.scale_width(c as u8, W) as usize;
        let ph = finfo.scale_height(c as u8, H) as usize;
        let stride = info.stride()[plane as usize] as usize;
        let (pa, pb) = (a.plane_data(plane).unwrap(), b.plane_data(plane).unwrap());
        for row in 0..ph {
            for col in 0..pw * ps {
                let i = row * stride + col;
                if pa[i] != pb[i] {
                    let (x, y) = (((col / ps) as u32) << ws, (row as u32) << hs);
                    (x0, y0) = (x0.min(x), y0.min(y));
                    (x1, y1) = (x1.max(x + (1 << ws)), y1.max(y + (1 << hs)));
                    n += 1;
                }
            }
        }
    }
    (x0, y0, x1, y1, n)
}

/// Asserts that `out` differs from `input` in a text-box-sized area of the `position` corner's
/// quarter of the frame and nowhere else.
fn assert_drawn_in_corner(
    format: VideoFormat,
    position: &str,
    input: &gst::Buffer,
    out: &gst::Buffer,
) {
    let (left, top) = match position {
        "top-left" => (true, true),
        "bottom-right" => (false, false),
        _ => unreachable!(),
    };
    let (x0, y0, x1, y1, n) = changes(format, input, out);
    let what = format!("{format:?} {position}: {n} bytes changed in x {x0}..{x1}, y {y0}..{y1}");
    assert!(n > 500, "{what}");
    // One line at 1/16 of the frame height (15 px), "orange 93%": a box some 100x20 px.
    assert!(x1 - x0 >= 60 && y1 - y0 >= 12, "{what}");
    assert_eq!(x1 <= W / 2, left, "{what}");
    assert_eq!(x0 >= W / 2, !left, "{what}");
    assert_eq!(y1 <= H / 2, top, "{what}");
    assert_eq!(y0 >= H / 2, !top, "{what}");
}

fn bytes(buffer: &gst::Buffer) -> Vec<u8> {
    buffer.map_readable().unwrap().to_vec()
}

fn data_ptr(buffer: &gst::Buffer) -> *const u8 {
    buffer.map_readable().unwrap().as_ptr()
}

#[test]
fn frames_without_a_result_pass_untouched() {
    for format in FORMATS {
        for downstream in [Downstream::Plain, Downstream::FeatureDrawsMeta] {
            let mut h = harness(format, "", downstream);
            let input = frame(format);
            let (before, ptr) = (bytes(&input), data_ptr(&input));
            let out = h.push_and_pull(input).unwrap();
            assert_eq!(bytes(&out), before, "{format:?} {downstream:?}");
            assert_eq!(
                data_ptr(&out),
                ptr,
                "{format:?} {downstream:?}: not even copied"
            );
            assert!(
                out.meta::<VideoOverlayCompositionMeta>().is_none(),
                "{format:?} {downstream:?}: no text, no composition"
            );
        }
    }
}

#[test]
fn a_result_is_drawn_in_every_format_in_the_chosen_corner_only() {
    for format in FORMATS {
        for position in ["top-left", "bottom-right"] {
            let mut h = harness(format, &format!("position={position}"), Downstream::Plain);
            let input = frame_with(format, result("orange", 0.93));
            let out = h.push_and_pull(input.clone()).unwrap();
            assert_drawn_in_corner(format, position, &input, &out);
            assert!(out.meta::<VideoOverlayCompositionMeta>().is_none());
            assert!(!has_feature(&negotiated(&h)));
        }
    }
}

#[test]
fn a_result_in_a_roi_meta_param_is_drawn_in_the_chosen_corner_only() {
    // As a C or Python app would attach it, without our Rust meta.
    for position in ["top-left", "bottom-right"] {
        let format = VideoFormat::Bgrx;
        let mut h = harness(format, &format!("position={position}"), Downstream::Plain);
        let mut input = frame(format);
        {
            let buf = input.get_mut().unwrap();
            let mut roi =
                gst_video::VideoRegionOfInterestMeta::add(buf, "classification", (0, 0, W, H));
            roi.add_param(message::to_structure(&result("orange", 0.93)));
        }
        let out = h.push_and_pull(input.clone()).unwrap();
        assert_drawn_in_corner(format, position, &input, &out);
    }
}

#[test]
fn a_downstream_that_draws_compositions_gets_the_text_as_meta_and_untouched_pixels() {
    for format in FORMATS {
        for downstream in [Downstream::FeatureDrawsMeta, Downstream::AnyCapsDrawsMeta] {
            for position in ["top-left", "bottom-right"] {
                let what = format!("{format:?} {downstream:?} {position}");
                let mut h = harness(format, &format!("position={position}"), downstream);
                let input = frame_with(format, result("orange", 0.93));
                let (before, ptr) = (bytes(&input), data_ptr(&input));
                let out = h.push_and_pull(input).unwrap();
                assert!(has_feature(&negotiated(&h)), "{what}: {}", negotiated(&h));
                assert_eq!(bytes(&out), before, "{what}: pixels changed");
                assert_eq!(data_ptr(&out), ptr, "{what}: copied");
                let meta = out
                    .meta::<VideoOverlayCompositionMeta>()
                    .unwrap_or_else(|| panic!("{what}: no composition meta"));
                let composition = meta.overlay();
                assert_eq!(composition.n_rectangles(), 1, "{what}");
                let (x, y, w, h) = composition.rectangle(0).unwrap().render_rectangle();
                let (x, y) = (x as u32, y as u32);
                assert!(w >= 60 && h >= 12, "{what}: {w}x{h}");
                if position == "top-left" {
                    assert!(x + w <= W / 2 && y + h <= H / 2, "{what}: at {x},{y}");
                } else {
                    assert!(x >= W / 2 && y >= H / 2 && x + w <= W && y + h <= H);
                }
            }
        }
    }
}

#[test]
fn the_caps_feature_and_the_allocation_meta_are_both_needed_to_skip_blending() {
    // Any caps without the meta in the allocation answer (appsink, fakesink): the caps take the
    // feature, as with textoverlay, but the text is drawn into the pixels. Plain caps with the
    // meta in the allocation answer: drawn too.
    for downstream in [Downstream::AnyCaps, Downstream::PlainWithMetaInAllocation] {
        for format in FORMATS {
            let mut h = harness(format, "", downstream);
            let input = frame_with(format, result("orange", 0.93));
            let out = h.push_and_pull(input.clone()).unwrap();
            assert_eq!(
                has_feature(&negotiated(&h)),
                downstream == Downstream::AnyCaps,
                "{downstream:?}"
            );
            assert_drawn_in_corner(format, "top-left", &input, &out);
            assert!(
                out.meta::<VideoOverlayCompositionMeta>().is_none(),
                "{format:?} {downstream:?}"
            );
        }
    }
}

#[test]
fn a_reconfigure_asks_downstream_again() {
    let format = VideoFormat::Yuy2;
    let mut h = harness(format, "", Downstream::AnyCaps);
    let input = frame_with(format, result("orange", 0.93));
    let out = h.push_and_pull(input.clone()).unwrap();
    assert!(out.meta::<VideoOverlayCompositionMeta>().is_none());
    assert_drawn_in_corner(format, "top-left", &input, &out);
    // Downstream now draws compositions, and says so with a reconfigure.
    h.add_propose_allocation_meta(VideoOverlayCompositionMeta::meta_api(), None);
    assert!(h.push_upstream_event(gst::event::Reconfigure::new()));
    let input = frame_with(format, result("orange", 0.93));
    let before = bytes(&input);
    let out = h.push_and_pull(input).unwrap();
    assert!(out.meta::<VideoOverlayCompositionMeta>().is_some());
    assert_eq!(bytes(&out), before);
}

/// The seqnum of the (one) rectangle of `out`'s composition meta.
fn rectangle_seqnum(out: &gst::Buffer) -> u32 {
    let meta = out.meta::<VideoOverlayCompositionMeta>().unwrap();
    assert_eq!(meta.overlay().n_rectangles(), 1);
    meta.overlay().rectangle(0).unwrap().seqnum()
}

#[test]
fn the_rendered_text_is_kept_until_text_settings_or_size_change() {
    let format = VideoFormat::I420;
    // Downstream takes any size (its caps are any) and draws compositions.
    let mut h = harness(format, "", Downstream::AnyCapsDrawsMeta);
    let push = |h: &mut gst_check::Harness, label: &str| {
        let out = h.push_and_pull(frame_with(format, result(label, 0.93)));
        rectangle_seqnum(&out.unwrap())
    };
    let first = push(&mut h, "orange");
    assert_eq!(push(&mut h, "orange"), first, "same text: same rectangle");
    let other = push(&mut h, "lemon");
    assert_ne!(other, first, "other text: a new rectangle");
    h.element().unwrap().set_property("color", 0xff00_ff00u32);
    let recoloured = push(&mut h, "lemon");
    assert_ne!(recoloured, other, "other colour: a new rectangle");
    assert_eq!(push(&mut h, "lemon"), recoloured);

    // Another size: a new rectangle placed for it.
    let small = VideoInfo::builder(format, W / 2, H / 2).build().unwrap();
    h.set_src_caps(small.to_caps().unwrap());
    let mut input = gst::Buffer::with_size(small.size()).unwrap();
    meta::attach(
        input.get_mut().unwrap(),
        result("lemon", 0.93),
        W / 2,
        H / 2,
    );
    let out = h.push_and_pull(input).unwrap();
    assert_ne!(
        rectangle_seqnum(&out),
        recoloured,
        "other size: a new rectangle"
    );
}

#[test]
fn a_composition_upstream_attached_keeps_its_rectangles() {
    let format = VideoFormat::Nv12;
    let plain = info(format).to_caps().unwrap();
    // Upstream negotiates the feature itself: its buffers may carry compositions already.
    let mut h = harness_with(format, "", Downstream::AnyCaps, with_feature(&plain));
    let mut pixels = gst::Buffer::from_mut_slice(vec![0xffu8; 4 * 4 * 4]);
    gst_video::VideoMeta::add(
        pixels.get_mut().unwrap(),
        gst_video::VideoFrameFlags::empty(),
        VideoFormat::Bgra,
        4,
        4,
    )
    .unwrap();
    let theirs = gst_video::VideoOverlayRectangle::new_raw(
        &pixels,
        300,
        200,
        4,
        4,
        gst_video::VideoOverlayFormatFlags::empty(),
    );
    let mut input = frame_with(format, result("orange", 0.93));
    VideoOverlayCompositionMeta::add(
        input.get_mut().unwrap(),
        &gst_video::VideoOverlayComposition::new([&theirs]).unwrap(),
    );
    let before = bytes(&input);
    let out = h.push_and_pull(input).unwrap();
    assert!(has_feature(&negotiated(&h)));
    assert_eq!(bytes(&out), before, "pixels changed");
    assert_eq!(out.iter_meta::<VideoOverlayCompositionMeta>().count(), 1);
    let meta = out.meta::<VideoOverlayCompositionMeta>().unwrap();
    let rectangles: Vec<_> = meta.overlay().iter().collect();
    assert_eq!(rectangles.len(), 2);
    assert_eq!(rectangles[0].seqnum(), theirs.seqnum(), "theirs first");
    let (x, y, _, _) = rectangles[1].render_rectangle();
    assert!((x as u32) < W / 2 && (y as u32) < H / 2, "ours top-left");
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
