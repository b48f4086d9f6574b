//! What the integration tests share: plugin set-up and the paths `make test` prepares.
//!
//! `GST_TORCH_MODEL` (default: the path `make model` writes), `GST_TORCH_TEST_MODELS` (from
//! `tools/make_test_models.py`, default `target/test-models`), `GST_TORCH_SHARED` (default
//! `../shared`).
#![allow(dead_code)]

use gst::prelude::*;
use gsttorch::{Classification, message};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

/// Initialises GStreamer and registers the plugin, once per test binary.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gsttorch::plugin_register_static().expect("registering the torch plugin");
    });
}

/// For tests that must run one at a time: RSS, thread counts and libtorch's engine are
/// process-wide.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    init();
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_path(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(default)
}

/// The exported int8 MobileNetV2.
pub fn model() -> String {
    let p = env_path("GST_TORCH_MODEL", || {
        gst::glib::user_data_dir().join("gst-torch/mobilenet_v2_quantized.pt")
    });
    assert!(
        p.is_file(),
        "model {} missing: run `make test`",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

/// A file made by `tools/make_test_models.py`.
pub fn test_model(name: &str) -> String {
    let dir = env_path("GST_TORCH_TEST_MODELS", || {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-models")
    });
    let p = dir.join(name);
    assert!(p.exists(), "{} missing: run `make test`", p.display());
    p.to_string_lossy().into_owned()
}

/// A photo or clip of `../shared/media`.
pub fn media(name: &str) -> String {
    let dir = env_path("GST_TORCH_SHARED", || {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
    });
    let p = dir.join("media").join(name);
    assert!(p.is_file(), "{} missing", p.display());
    p.to_string_lossy().into_owned()
}

/// ImageNet classes of the shared photos and of the demo clip's three parts.
pub const CAT: std::ops::RangeInclusive<u32> = 281..=285;
pub const ESPRESSO: u32 = 967;
pub const ORANGE: u32 = 950;

/// A path in cargo's scratch directory for integration tests (under target/), in `dir`.
pub fn scratch(dir: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// This process's threads whose name starts with `prefix` (Linux keeps 15 bytes of a name; a
/// thread inherits its creator's, so OpenMP workers of the model thread count as it).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// What a pipeline run produced: the parsed `torchclassify` messages in order, and the error
/// message text if the pipeline failed.
pub struct Run {
    pub results: Vec<Classification>,
    pub error: Option<String>,
}

pub fn run(description: &str) -> Run {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("bad pipeline {description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    let mut results = Vec::new();
    let mut error = None;
    // A failed start() makes set_state fail too; the error message is on the bus either way.
    let _ = pipeline.set_state(gst::State::Playing);
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(_) => results.extend(message::from_message(&msg)),
            gst::MessageView::Error(e) => {
                error = Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    Run { results, error }
}

/// One frame of `photo` in `caps`, decoded by GStreamer.
pub fn frame_as(photo: &str, caps: &str) -> (gst::Caps, gst::Buffer) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! {caps} ! appsink name=sink",
        media(photo)
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().expect("a decoded frame");
    pipeline.set_state(gst::State::Null).unwrap();
    (
        sample.caps().unwrap().to_owned(),
        sample.buffer_owned().unwrap(),
    )
}

/// RGB caps of `width` × `height` at 1 fps (the rate [`push_through`] stamps frames at). The
/// frames built here have no row padding, so a row must be a multiple of 4 bytes, as GStreamer
/// lays RGB out.
pub fn rgb_caps(width: usize, height: usize) -> gst::Caps {
    assert_eq!(width * 3 % 4, 0, "RGB rows of {width} pixels are padded");
    gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(1, 1))
        .build()
}

/// A solid rectangle to paint: colour, x, y, width, height.
pub type Solid = ([u8; 3], usize, usize, usize, usize);

/// The background of the test detectors' frames (and of `shapes.webm`): every channel 20.
pub const DARK: u8 = 20;

/// Colours the test detectors find (`tools/test_detectors.py`).
pub const RED: [u8; 3] = [220, 30, 30];
pub const GREEN: [u8; 3] = [30, 200, 30];
pub const BLUE: [u8; 3] = [30, 30, 220];

/// An RGB frame of `width` × `height` (for [`rgb_caps`]), every channel `background`, with the
/// `rects` painted over it in order.
pub fn rgb_frame(width: usize, height: usize, background: u8, rects: &[Solid]) -> gst::Buffer {
    let mut data = vec![background; width * height * 3];
    for &(rgb, x, y, w, h) in rects {
        for row in y..y + h {
            for col in x..x + w {
                let i = (row * width + col) * 3;
                data[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }
    gst::Buffer::from_mut_slice(data)
}

/// A results file's JSON lines, each parsed (panics naming the file if it cannot be read or a
/// line is no JSON).
pub fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Photos decoded to 224x224 RGB and tiled `columns` wide into one RGB frame (rows of
/// `photos.len() / columns`), PTS 0.
pub fn tile(photos: &[&str], columns: usize) -> (gst::Caps, gst::Buffer) {
    let frames: Vec<gst::Buffer> = photos
        .iter()
        .map(|p| frame_as(p, "video/x-raw,format=RGB,width=224,height=224").1)
        .collect();
    let maps: Vec<_> = frames.iter().map(|b| b.map_readable().unwrap()).collect();
    let rows = photos.len() / columns;
    // videoconvert pads RGB rows to 4 bytes: 224 * 3 = 672 needs none.
    let mut data = Vec::with_capacity(672 * columns * 224 * rows);
    for row in maps.chunks(columns) {
        for y in 0..224 {
            for m in row {
                data.extend_from_slice(&m[y * 672..(y + 1) * 672]);
            }
        }
    }
    let caps = rgb_caps(224 * columns, 224 * rows);
    let mut buffer = gst::Buffer::from_mut_slice(data);
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    (caps, buffer)
}

/// The elements of `description` as one element (a bin, its unlinked pads ghosted), for
/// [`push_through`].
pub fn element(description: &str) -> gst::Element {
    init();
    gst::parse::bin_from_description(description, true)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .upcast()
}

/// `frames` (timestamped 0, 1, 2… s) through `element` in a gst-check harness, one in, one out:
/// the output buffers, the element messages it posted meanwhile, and the harness (the element
/// still running, e.g. to read its `stats`).
pub fn push_through(
    element: &gst::Element,
    caps: &gst::Caps,
    frames: Vec<gst::Buffer>,
) -> (Vec<gst::Buffer>, Vec<gst::Message>, gst_check::Harness) {
    init();
    let mut h = gst_check::Harness::with_element(element, Some("sink"), Some("src"));
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    h.set_src_caps(caps.clone());
    let out = frames
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            f.make_mut().set_pts(gst::ClockTime::from_seconds(i as u64));
            h.push_and_pull(f).unwrap()
        })
        .collect();
    let mut messages = Vec::new();
    while let Some(m) = bus.pop_filtered(&[gst::MessageType::Element]) {
        messages.push(m);
    }
    (out, messages, h)
}
