//! Times decoding + NMS of a YOLOv8-shaped head [1, 84, 8400] and tracker updates, and counts
//! the heap allocations each frame makes once the buffers are warm. Prints times; asserts
//! nothing about them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use torchcore::detect::{
    DecodeConfig, DecodeStats, Decoder, Detection, Mapping, OutputFormat, TensorView,
    resolve_format,
};
use torchcore::geometry::Rect;
use torchcore::track::{TrackInput, Tracker};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

const CLASSES: usize = 80;
const CANDIDATES: usize = 8400;

/// A [1, 84, 8400] head like a 640x640 YOLOv8 forward: every candidate has a box and small
/// class scores (0..0.05); `objects` objects (inside the letterboxed picture) get `per_object`
/// candidates each, jittered by up to 5% around the object's box, scoring 0.3..0.95 for its
/// class.
fn head(rng: &mut Rng, objects: usize, per_object: usize) -> Vec<f32> {
    let n = CANDIDATES;
    let mut data = vec![0.0f32; (4 + CLASSES) * n];
    for i in 0..n {
        let (w, h) = (rng.uniform(8.0, 200.0), rng.uniform(8.0, 200.0));
        let box_ = [rng.uniform(0.0, 640.0), rng.uniform(0.0, 640.0), w, h];
        for (r, v) in box_.into_iter().enumerate() {
            data[r * n + i] = v;
        }
        for c in 0..CLASSES {
            data[(4 + c) * n + i] = rng.uniform(0.0, 0.05);
        }
    }
    for o in 0..objects {
        let class = (rng.next() % 20) as usize;
        let (cx, cy) = (rng.uniform(30.0, 610.0), rng.uniform(160.0, 480.0));
        let (w, h) = (rng.uniform(20.0, 120.0), rng.uniform(20.0, 120.0));
        for k in 0..per_object {
            let i = (o * per_object + k) * 11 % n;
            let (dx, dy) = (w * rng.uniform(-0.05, 0.05), h * rng.uniform(-0.05, 0.05));
            let jitter = [
                cx + dx,
                cy + dy,
                w * rng.uniform(0.95, 1.05),
                h * rng.uniform(0.95, 1.05),
            ];
            for (r, v) in jitter.into_iter().enumerate() {
                data[r * n + i] = v;
            }
            data[(4 + class) * n + i] = rng.uniform(0.3, 0.95);
        }
    }
    data
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    format!(
        "median {:8.1} µs  mean {:8.1} µs  min {:8.1} µs  max {:8.1} µs",
        us(times[times.len() / 2]),
        us(mean),
        us(times[0]),
        us(times[times.len() - 1])
    )
}

fn bench_decode(name: &str, objects: usize, per_object: usize, max_detections: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (objects * per_object) as u64);
    let frames: Vec<Vec<f32>> = (0..4)
        .map(|_| head(&mut rng, objects, per_object))
        .collect();
    let shape = [1, 4 + CLASSES, CANDIDATES];
    let resolved = resolve_format(OutputFormat::Auto, &[shape], None).expect("a yolov8 shape");
    let config = DecodeConfig {
        max_detections,
        ..DecodeConfig::default()
    };
    let mut decoder = Decoder::new(resolved, config);
    let mapping = Mapping::letterbox(1920, 1080, 640, 640);
    let mut out: Vec<Detection> = Vec::new();
    let mut stats = DecodeStats::default();
    let mut run = |data: &[f32], out: &mut Vec<Detection>| {
        let view = [TensorView::new(data, &shape)];
        stats = decoder
            .decode(&view, &mapping, 1920, 1080, out)
            .expect("the head decodes");
    };
    for f in &frames {
        run(f, &mut out);
    }
    let iterations = 400;
    let mut times = Vec::with_capacity(iterations);
    let before = allocations();
    for k in 0..iterations {
        let data = &frames[k % frames.len()];
        let start = Instant::now();
        run(black_box(data), &mut out);
        times.push(start.elapsed());
        black_box(&out);
    }
    let per_frame = (allocations() - before) as f64 / iterations as f64;
    println!(
        "decode+NMS {name:<36} {}  | {} pass threshold, {} invalid, {} suppressed, {} over \
         limit, {} kept, {per_frame:.2} allocations/frame",
        summary(&mut times),
        stats.candidates,
        stats.dropped_invalid,
        stats.suppressed,
        stats.over_limit,
        stats.kept
    );
}

fn bench_track(boxes: usize) {
    let mut rng = Rng(42 + boxes as u64);
    // Objects on a grid, each moving at its own constant speed.
    let objects: Vec<(f32, f32, f32, f32)> = (0..boxes)
        .map(|i| {
            let (gx, gy) = ((i % 10) as f32 * 190.0, (i / 10) as f32 * 105.0);
            (gx, gy, rng.uniform(-2.0, 2.0), rng.uniform(-1.0, 1.0))
        })
        .collect();
    let frame_dets = |f: u64| -> Vec<TrackInput> {
        let t = f as f32;
        objects
            .iter()
            .map(|&(x, y, vx, vy)| {
                let rect = Rect::new(x + vx * t, y + vy * t, 60.0, 90.0);
                TrackInput::new(rect, Some(0.8), Some(0))
            })
            .collect()
    };
    let frames: Vec<Vec<TrackInput>> = (0..400).map(frame_dets).collect();
    let mut tracker = Tracker::default();
    for (f, dets) in frames.iter().enumerate().take(20) {
        tracker.update(f as u64, dets);
    }
    let mut times = Vec::new();
    let before = allocations();
    let mut last = Vec::new();
    for (f, dets) in frames.iter().enumerate().take(300).skip(20) {
        let start = Instant::now();
        last = tracker.update(f as u64, black_box(dets));
        times.push(start.elapsed());
    }
    let per_frame = (allocations() - before) as f64 / times.len() as f64;
    let ids: std::collections::BTreeSet<_> = last.iter().filter_map(|o| o.id).collect();
    println!(
        "track update {boxes:>3} boxes/frame                {}  | {} ids, {per_frame:.2} \
         allocations/frame (the returned Vec)",
        summary(&mut times),
        ids.len()
    );
    // Detections on every 3rd frame only, predictions on the frames between.
    let mut times = Vec::new();
    let mut carried = 0;
    for (f, dets) in frames.iter().enumerate().skip(300) {
        if f % 3 == 0 {
            tracker.update(f as u64, dets);
        } else {
            let start = Instant::now();
            let boxes = tracker.predict(f as u64);
            times.push(start.elapsed());
            carried = boxes.len();
        }
    }
    println!(
        "track predict {boxes:>3} tracks (skipped frame)    {}  | {carried} boxes carried",
        summary(&mut times)
    );
}

fn main() {
    println!(
        "{} cores available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    bench_decode("[1,84,8400] typical (20 objects)", 20, 12, 100);
    bench_decode("[1,84,8400] nothing above threshold", 0, 0, 100);
    bench_decode("[1,84,8400] worst, max-detections 100", 200, 10, 100);
    bench_decode("[1,84,8400] worst, no limit", 200, 10, 0);
    bench_track(10);
    bench_track(100);
}
