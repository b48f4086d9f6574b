//! torchoverlay on hand-made buffers (gst-check Harness), real text rendering, in YUV (I420,
//! NV12, YUY2) and packed RGB: frames without a result pass byte for byte; a result (our meta, or
//! a ROI meta param attached by someone else) is drawn in the chosen corner and nowhere else; a
//! downstream that takes the overlay composition meta (caps feature and allocation answer) gets
//! the text as `GstVideoOverlayCompositionMeta` and untouched pixels. Per-region results
//! (`torchclassify inference-region=roi-list`: a detector's ROI metas, each with a `torchclassify`
//! param) are drawn as box outlines with captions and nothing else. Plus results-file errors of
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
        std::time::Duration::ZERO,
    )
    .unwrap()
}

/// `frame(format)` carrying torchclassify's metas for `result`.
fn frame_with(format: VideoFormat, result: Classification) -> gst::Buffer {
    let mut buffer = frame(format);
    meta::attach(buffer.get_mut().unwrap(), result, W, H);
    buffer
}

/// Calls `f(x, y, w, h)` for every byte where `after` differs from `before` (a frame of `info`),
/// in every plane, with the frame pixels that byte covers (more than one in subsampled planes).
fn each_change(
    info: &VideoInfo,
    before: &gst::Buffer,
    after: &gst::Buffer,
    mut f: impl FnMut(u32, u32, u32, u32),
) {
    let a = gst_video::VideoFrameRef::from_buffer_ref_readable(before.as_ref(), info).unwrap();
    let b = gst_video::VideoFrameRef::from_buffer_ref_readable(after.as_ref(), info).unwrap();
    let finfo = info.format_info();
    let (w, h) = (info.width(), info.height());
    for plane in 0..info.n_planes() {
        // The first component stored in this plane gives its pixel stride and subsampling.
        let c = (0..finfo.n_components() as usize)
            .find(|&c| finfo.plane()[c] == plane)
            .unwrap();
        let ps = finfo.pixel_stride()[c] as usize;
        let (ws, hs) = (finfo.w_sub()[c], finfo.h_sub()[c]);
        let pw = finfo.scale_width(c as u8, w) as usize;
        let ph = finfo.scale_height(c as u8, h) as usize;
        let stride = info.stride()[plane as usize] as usize;
        let (pa, pb) = (a.plane_data(plane).unwrap(), b.plane_data(plane).unwrap());
        for row in 0..ph {
            for col in 0..pw * ps {
                let i = row * stride + col;
                if pa[i] != pb[i] {
                    let (x, y) = (((col / ps) as u32) << ws, (row as u32) << hs);
                    f(x, y, 1 << ws, 1 << hs);
                }
            }
        }
    }
}

/// Where `after` differs from `before`, in every plane, in frame pixel coordinates: the
/// bounding box (x0, y0, x1, y1) and the number of differing bytes.
fn changes(
    format: VideoFormat,
    before: &gst::Buffer,
    after: &gst::Buffer,
) -> (u32, u32, u32, u32, usize) {
    let (mut x0, mut y0, mut x1, mut y1, mut n) = (W, H, 0, 0, 0);
    each_change(&info(format), before, after, |x, y, w, h| {
        (x0, y0) = (x0.min(x), y0.min(y));
        (x1, y1) = (x1.max(x + w), y1.max(y + h));
        n += 1;
    });
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

/// A detector's region: its roi type, rectangle, and the `torchclassify` result classifying it
/// (label, confidence), if any.
type Region<'a> = (&'a str, (u32, u32, u32, u32), Option<(&'a str, f64)>);

/// Adds a ROI meta per region, with ids from 1 as a detector would number them, and on each
/// classified one a `torchclassify` param as `inference-region=roi-list` puts there.
fn add_regions(buffer: &mut gst::BufferRef, regions: &[Region]) {
    for (i, (roi_type, rect, classified)) in regions.iter().enumerate() {
        let id = i as i32 + 1;
        let mut roi = gst_video::VideoRegionOfInterestMeta::add(buffer, roi_type, *rect);
        roi.set_id(id);
        if let Some((label, confidence)) = classified {
            let mut param = message::to_structure(&result(label, *confidence));
            param.set("roi-id", id);
            roi.add_param(param);
        }
    }
}

fn frame_with_regions(format: VideoFormat, regions: &[Region]) -> gst::Buffer {
    let mut buffer = frame(format);
    add_regions(buffer.get_mut().unwrap(), regions);
    buffer
}

type Rectangle = (i32, i32, u32, u32);

/// The render rectangles of the composition `out` carries, in drawing order.
fn composition_rects(out: &gst::Buffer) -> Vec<Rectangle> {
    let meta = out
        .meta::<VideoOverlayCompositionMeta>()
        .expect("composition meta");
    meta.overlay()
        .iter()
        .map(|r| r.render_rectangle())
        .collect()
}

/// The rectangles torchoverlay sends a downstream that draws compositions for `input` (whose
/// pixels it must leave alone), in drawing order.
fn drawn_rects(format: VideoFormat, properties: &str, input: &gst::Buffer) -> Vec<Rectangle> {
    let mut h = harness(format, properties, Downstream::FeatureDrawsMeta);
    let before = bytes(input);
    let out = h.push_and_pull(input.clone()).unwrap();
    assert_eq!(bytes(&out), before, "{format:?}: pixels changed");
    composition_rects(&out)
}

/// Asserts that `out` differs from `input` at every pixel of `rects` (clipped to the frame) and
/// nowhere else: exactly in RGB, within a pixel of them in YUV (where a chroma sample covers two
/// or four pixels).
fn assert_changed_exactly(
    format: VideoFormat,
    input: &gst::Buffer,
    out: &gst::Buffer,
    rects: &[Rectangle],
) {
    let info = info(format);
    let mut changed = vec![false; (W * H) as usize];
    each_change(&info, input, out, |x, y, w, h| {
        for yy in y..(y + h).min(H) {
            for xx in x..(x + w).min(W) {
                changed[(yy * W + xx) as usize] = true;
            }
        }
    });
    let near = if info.format_info().is_yuv() { 1 } else { 0 };
    let inside = |x: i32, y: i32, d: i32| {
        rects.iter().any(|&(rx, ry, rw, rh)| {
            x >= rx - d && x < rx + rw as i32 + d && y >= ry - d && y < ry + rh as i32 + d
        })
    };
    let (mut missed, mut stray) = (Vec::new(), Vec::new());
    for y in 0..H as i32 {
        for x in 0..W as i32 {
            let c = changed[(y as u32 * W + x as u32) as usize];
            if !c && inside(x, y, 0) {
                missed.push((x, y));
            }
            if c && !inside(x, y, near) {
                stray.push((x, y));
            }
        }
    }
    let n = changed.iter().filter(|&&c| c).count();
    assert!(
        missed.is_empty(),
        "{format:?}: {} pixels of {rects:?} unchanged, e.g. {:?}",
        missed.len(),
        &missed[..missed.len().min(5)]
    );
    assert!(
        stray.is_empty(),
        "{format:?}: {} of {n} changed pixels outside {rects:?}, e.g. {:?}",
        stray.len(),
        &stray[..stray.len().min(5)]
    );
}

/// Pushes `input` through torchoverlay blending into the pixels (`properties` set), and asserts
/// that exactly the pixels of `rects` changed.
fn assert_blended_exactly(
    format: VideoFormat,
    properties: &str,
    input: &gst::Buffer,
    rects: &[Rectangle],
) {
    let mut h = harness(format, properties, Downstream::Plain);
    let out = h.push_and_pull(input.clone()).unwrap();
    assert!(out.meta::<VideoOverlayCompositionMeta>().is_none());
    assert_changed_exactly(format, input, &out, rects);
}

/// A one-line caption at 1/16 of the frame height (15 px text): its size is that of a few
/// characters of it.
fn assert_caption_size(what: &str, (_, _, w, h): Rectangle) {
    assert!(
        (40..=160).contains(&w) && (12..=30).contains(&h),
        "{what}: {w}x{h}"
    );
}

/// Outline edges of the box at (x, y), w × h, 2 px wide (line width of a 240-line frame), as
/// torchoverlay sends them: top, bottom, left, right.
fn edges(x: i32, y: i32, w: u32, h: u32) -> Vec<Rectangle> {
    vec![
        (x, y, w, 2),
        (x, y + h as i32 - 2, w, 2),
        (x, y + 2, 2, h - 4),
        (x + w as i32 - 2, y + 2, 2, h - 4),
    ]
}

#[test]
fn classified_regions_get_their_outline_and_caption_and_nothing_else() {
    let regions: [Region; 2] = [
        ("car", (40, 60, 100, 50), Some(("car", 0.9))),
        ("face", (180, 120, 80, 60), Some(("face", 0.8))),
    ];
    for format in FORMATS {
        let input = frame_with_regions(format, &regions);
        let rects = drawn_rects(format, "", &input);
        // Both outlines first (four thin rectangles each), then both captions, each just above
        // its box's top-left corner.
        assert_eq!(rects.len(), 10, "{format:?}: {rects:?}");
        assert_eq!(
            rects[..8],
            [edges(40, 60, 100, 50), edges(180, 120, 80, 60)].concat()[..],
            "{format:?}"
        );
        for (caption, (x, y)) in rects[8..].iter().zip([(40, 60), (180, 120)]) {
            assert_caption_size(&format!("{format:?}"), *caption);
            assert_eq!(
                (caption.0, caption.1 + caption.3 as i32),
                (x, y),
                "{format:?}"
            );
        }
        assert_blended_exactly(format, "", &input, &rects);
    }
}

#[test]
fn a_region_partly_outside_the_frame_is_clipped() {
    // One past the right and bottom edges, one the size of the whole ROI range, one wholly
    // outside.
    let regions: [Region; 3] = [
        ("car", (250, 200, 200, 100), Some(("car", 0.9))),
        ("all", (0, 0, u32::MAX, u32::MAX), Some(("all", 0.5))),
        ("gone", (400, 10, 50, 50), Some(("gone", 0.7))),
    ];
    for format in [VideoFormat::I420, VideoFormat::Bgrx] {
        let input = frame_with_regions(format, &regions);
        let rects = drawn_rects(format, "", &input);
        assert_eq!(rects.len(), 6, "{format:?}: {rects:?}");
        // Only the sides inside the frame, cut at its border.
        assert_eq!(
            rects[..4],
            [
                (250, 200, 70, 2),
                (250, 202, 2, 38),
                (0, 0, W, 2),
                (0, 2, 2, H - 2)
            ],
            "{format:?}"
        );
        // The first caption above its box, moved left into the frame; the second inside the
        // frame's top-left corner.
        let (x, y, w, h) = rects[4];
        assert_caption_size("car", rects[4]);
        assert_eq!((x + w as i32, y + h as i32), (W as i32, 200), "{format:?}");
        assert_caption_size("all", rects[5]);
        assert_eq!((rects[5].0, rects[5].1), (0, 0), "{format:?}");
        assert_blended_exactly(format, "", &input, &rects);

        // Only regions outside: the frame passes untouched.
        let mut h = harness(format, "", Downstream::Plain);
        let input = frame_with_regions(format, &regions[2..]);
        let (before, ptr) = (bytes(&input), data_ptr(&input));
        let out = h.push_and_pull(input).unwrap();
        assert_eq!(bytes(&out), before, "{format:?}");
        assert_eq!(data_ptr(&out), ptr, "{format:?}");
    }
}

#[test]
fn a_region_without_a_torchclassify_param_is_not_drawn() {
    let format = VideoFormat::Bgrx;
    // A detection not classified, and one with another element's param.
    let mut unclassified = frame_with_regions(format, &[("car", (40, 60, 100, 50), None)]);
    {
        let buf = unclassified.get_mut().unwrap();
        let mut roi = gst_video::VideoRegionOfInterestMeta::add(buf, "face", (180, 120, 80, 60));
        roi.add_param(
            gst::Structure::builder("detection")
                .field("label", "face")
                .field("confidence", 0.9)
                .build(),
        );
    }
    for downstream in [Downstream::Plain, Downstream::FeatureDrawsMeta] {
        let mut h = harness(format, "", downstream);
        let (before, ptr) = (bytes(&unclassified), data_ptr(&unclassified));
        let out = h.push_and_pull(unclassified.clone()).unwrap();
        assert_eq!(bytes(&out), before, "{downstream:?}");
        assert_eq!(data_ptr(&out), ptr, "{downstream:?}: not even copied");
        assert!(out.meta::<VideoOverlayCompositionMeta>().is_none());
    }
    // Next to a classified one: only that one is drawn.
    let input = frame_with_regions(
        format,
        &[
            ("car", (40, 60, 100, 50), None),
            ("face", (180, 120, 80, 60), Some(("face", 0.8))),
        ],
    );
    let rects = drawn_rects(format, "", &input);
    assert_eq!(rects.len(), 5, "{rects:?}");
    assert_eq!(rects[..4], edges(180, 120, 80, 60)[..]);
    assert_eq!((rects[4].0, rects[4].1 + rects[4].3 as i32), (180, 120));
    assert_blended_exactly(format, "", &input, &rects);
}

#[test]
fn a_region_at_the_top_edge_gets_its_caption_inside() {
    // At the top edge, and too near it for a caption above.
    let regions: [Region; 2] = [
        ("car", (40, 0, 100, 50), Some(("car", 0.9))),
        ("face", (180, 5, 80, 60), Some(("face", 0.8))),
    ];
    for format in [VideoFormat::I420, VideoFormat::Bgrx] {
        let input = frame_with_regions(format, &regions);
        let rects = drawn_rects(format, "", &input);
        assert_eq!(rects.len(), 10, "{format:?}: {rects:?}");
        assert_eq!(
            rects[..8],
            [edges(40, 0, 100, 50), edges(180, 5, 80, 60)].concat()[..]
        );
        for (caption, corner) in rects[8..].iter().zip([(40, 0), (180, 5)]) {
            assert_caption_size(&format!("{format:?}"), *caption);
            assert_eq!((caption.0, caption.1), corner, "{format:?}: inside the box");
        }
        assert_blended_exactly(format, "", &input, &rects);
    }
}

#[test]
fn the_frame_label_and_region_captions_are_drawn_together() {
    let format = VideoFormat::Nv12;
    for position in ["top-left", "bottom-right"] {
        let props = format!("position={position}");
        let mut input = frame_with(format, result("orange", 0.93));
        add_regions(
            input.get_mut().unwrap(),
            &[("car", (120, 100, 100, 60), Some(("car", 0.9)))],
        );
        let rects = drawn_rects(format, &props, &input);
        assert_eq!(rects.len(), 6, "{rects:?}");
        assert_eq!(rects[..4], edges(120, 100, 100, 60)[..]);
        assert_eq!((rects[4].0, rects[4].1 + rects[4].3 as i32), (120, 100));
        // The frame's label last, in its corner, 6 px (1/40 of the height) from the edges.
        let (x, y, w, h) = rects[5];
        assert!(w >= 60 && h >= 12, "{w}x{h}");
        if position == "top-left" {
            assert_eq!((x, y), (6, 6));
        } else {
            assert_eq!((x + w as i32, y + h as i32), (W as i32 - 6, H as i32 - 6));
        }
        assert_blended_exactly(format, &props, &input, &rects);
    }
}

#[test]
fn region_pieces_are_kept_while_frames_use_them() {
    let format = VideoFormat::I420;
    let mut h = harness(format, "", Downstream::FeatureDrawsMeta);
    let mut push = |regions: &[Region]| {
        let out = h
            .push_and_pull(frame_with_regions(format, regions))
            .unwrap();
        let meta = out.meta::<VideoOverlayCompositionMeta>().unwrap();
        let overlay = meta.overlay_owned();
        overlay.iter().collect::<Vec<_>>()
    };
    let pixels = |r: &gst_video::VideoOverlayRectangle| {
        r.pixels_unscaled_raw(gst_video::VideoOverlayFormatFlags::PREMULTIPLIED_ALPHA)
    };
    let car: Region = ("car", (40, 60, 100, 50), Some(("car", 0.9)));
    let face: Region = ("face", (180, 120, 80, 60), Some(("face", 0.8)));
    let first = push(&[car, face]);
    let again = push(&[car, face]);
    let seqnums = |rects: &[gst_video::VideoOverlayRectangle]| {
        rects.iter().map(|r| r.seqnum()).collect::<Vec<_>>()
    };
    assert_eq!(seqnums(&again), seqnums(&first), "nothing changed");
    // The face moves: the car's rectangles stay the same; the face's caption is the same pixels
    // at another place.
    let moved: Region = ("face", (184, 124, 80, 60), Some(("face", 0.8)));
    let next = push(&[car, moved]);
    assert_eq!(next.len(), 10);
    assert_eq!(seqnums(&next[..4]), seqnums(&first[..4]), "car outline");
    assert_eq!(next[8].seqnum(), first[8].seqnum(), "car caption");
    assert_ne!(next[9].render_rectangle(), first[9].render_rectangle());
    assert_eq!(
        pixels(&next[9]).as_ptr(),
        pixels(&first[9]).as_ptr(),
        "face caption not rendered again"
    );
    // Another confidence: another caption.
    let other: Region = ("face", (184, 124, 80, 60), Some(("face", 0.7)));
    let last = push(&[car, other]);
    assert_ne!(pixels(&last[9]).as_ptr(), pixels(&next[9]).as_ptr());
}

#[test]
fn tesseract_reads_a_region_caption_at_its_box() {
    // 640x480: 30 px text, as the OCR check of tests/pipelines.sh reads.
    let (fw, fh) = (640u32, 480u32);
    let format = VideoFormat::Bgrx;
    let info = VideoInfo::builder(format, fw, fh).build().unwrap();
    let mut h = harness_with(format, "", Downstream::AnyCaps, info.to_caps().unwrap());
    let (bx, by) = (200u32, 240u32);
    let mut input = gst::Buffer::from_mut_slice(vec![100u8; info.size()]);
    add_regions(
        input.get_mut().unwrap(),
        &[("cup", (bx, by, 300, 150), Some(("espresso", 0.97)))],
    );
    let out = h.push_and_pull(input).unwrap();
    // The strip just above the box, as grey (inverted: dark text on light) PGM.
    let (x0, y0, x1, y1) = (bx - 10, by - 70, bx + 300, by);
    let map = out.map_readable().unwrap();
    let stride = info.stride()[0] as usize;
    let mut pgm = format!("P5\n{} {}\n255\n", x1 - x0, y1 - y0).into_bytes();
    for y in y0..y1 {
        for x in x0..x1 {
            let p = y as usize * stride + x as usize * 4;
            let (b, g, r) = (map[p] as u32, map[p + 1] as u32, map[p + 2] as u32);
            pgm.push(255 - ((r * 30 + g * 59 + b * 11) / 100) as u8);
        }
    }
    let path = common::scratch("overlay", "region-caption.pgm");
    std::fs::write(&path, pgm).unwrap();
    let ocr = std::process::Command::new("tesseract")
        .arg(&path)
        .arg("stdout")
        .output()
        .expect("tesseract (tools/setup.sh installs tesseract-ocr)");
    let text = String::from_utf8_lossy(&ocr.stdout);
    assert!(text.contains("espresso"), "tesseract read {text:?}");
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

#[test]
fn a_detected_box_is_drawn_with_its_label_and_a_tracked_one_with_its_id() {
    let format = VideoFormat::Bgrx;
    let captions = |regions: &[(&str, Option<u64>)]| {
        let mut input = frame(format);
        {
            let buf = input.get_mut().unwrap();
            for (i, (label, track)) in regions.iter().enumerate() {
                let x = 20 + 140 * i as u32;
                let mut roi =
                    gst_video::VideoRegionOfInterestMeta::add(buf, label, (x, 80, 100, 60));
                roi.set_id(-(i as i32) - 1);
                roi.add_param(
                    gst::Structure::builder("torchdetect")
                        .field("label", *label)
                        .field("class-id", 2u32)
                        .field("confidence", 0.87)
                        .build(),
                );
                if let Some(id) = track {
                    roi.add_param(
                        gst::Structure::builder("torchtrack")
                            .field("id", *id)
                            .field("predicted", false)
                            .build(),
                    );
                }
            }
        }
        let rects = drawn_rects(format, "", &input);
        assert_blended_exactly(format, "", &input, &rects);
        rects
    };
    // One box: its outline and a caption; with a track id the caption ("#12 car 87%") is wider.
    let plain = captions(&[("car", None)]);
    assert_eq!(plain.len(), 5, "{plain:?}");
    assert_eq!(plain[..4], edges(20, 80, 100, 60)[..]);
    let tracked = captions(&[("car", Some(12))]);
    assert_eq!(tracked[..4], plain[..4]);
    assert!(tracked[4].2 > plain[4].2, "{tracked:?} vs {plain:?}");
    assert_eq!(captions(&[("car", None), ("dog", Some(3))]).len(), 10);
}
