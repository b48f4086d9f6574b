//! `make bench`'s detection rows (tools/bench/bench.py): raw RGB frames through a chain of
//! elements, `appsrc ! CHAIN ! fakesink sync=false`, in this one process (the plugin linked in:
//! nothing to install).
//!
//!     detect_bench RAW_RGB WIDTH HEIGHT FRAMES CHAIN [NAME...]
//!
//! The frames are read from RAW_RGB (packed RGB, WIDTH x HEIGHT, the file's frames repeated to
//! FRAMES) and made into buffers before the clock starts; the elements load their models (and
//! warm up) when the pipeline starts, also before it. CHAIN is gst-launch syntax, e.g.
//! `torchdetect name=d model=M ! torchtrack ! torchclassify name=c inference-region=roi-list`;
//! NAMEs are elements of it whose `stats` to print. Prints one JSON line: {"frames", "seconds"
//! (first buffer pushed to EOS at the sink), "fps" (frames / seconds), "total_ms" (seconds per
//! frame), "boxes_per_frame", "boxes_min", "boxes_max" (ROI metas per buffer reaching the sink:
//! mean, fewest, most), "track_ids" (distinct `torchtrack` ids among them), "first_ms" (first
//! buffer pushed to its arrival at the sink), "stats": {NAME: the element's stats, as JSON}}.

use gst::prelude::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod common;

/// What the sink's probe counts.
struct Seen {
    buffers: u64,
    /// ROI metas: all, and the fewest and most on one buffer.
    boxes: u64,
    fewest: u64,
    most: u64,
    /// The distinct `torchtrack` ids.
    ids: BTreeSet<u64>,
    first: Option<Instant>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            buffers: 0,
            boxes: 0,
            fewest: u64::MAX,
            most: 0,
            ids: BTreeSet::new(),
            first: None,
        }
    }
}

/// An element's `stats` structure as a JSON object (numbers, strings, booleans).
fn stats_json(s: &gst::StructureRef) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in s.iter() {
        let v = if let Ok(v) = value.get::<u64>() {
            serde_json::json!(v)
        } else if let Ok(v) = value.get::<u32>() {
            serde_json::json!(v)
        } else if let Ok(v) = value.get::<i64>() {
            serde_json::json!(v)
        } else if let Ok(v) = value.get::<i32>() {
            serde_json::json!(v)
        } else if let Ok(v) = value.get::<f64>() {
            serde_json::json!(v)
        } else if let Ok(v) = value.get::<bool>() {
            serde_json::json!(v)
        } else if let Ok(v) = value.get::<String>() {
            serde_json::json!(v)
        } else {
            continue;
        };
        map.insert(name.to_string(), v);
    }
    serde_json::Value::Object(map)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err("usage: detect_bench RAW_RGB WIDTH HEIGHT FRAMES CHAIN [NAME...]".into());
    }
    let (width, height): (u32, u32) = (args[2].parse()?, args[3].parse()?);
    let frames: usize = args[4].parse()?;
    let chain = &args[5];
    let names = &args[6..];
    if frames == 0 {
        return Err("FRAMES must be at least 1".into());
    }
    let (raw, size) = common::raw_frames(&args[1], width, height)?;
    let (pipeline, src) = common::appsrc_pipeline(
        &format!("{chain} ! fakesink name=sink sync=false"),
        width,
        height,
    )?;
    let buffers: Vec<gst::Buffer> = (0..frames)
        .map(|i| common::frame_buffer(&raw, size, width, height, i))
        .collect();
    // What reaches the sink: buffers, boxes, track ids, when the first buffer does.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    pipeline
        .by_name("sink")
        .and_then(|e| e.static_pad("sink"))
        .ok_or("no sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                let mut s = s.lock().unwrap();
                let mut rois = 0;
                for m in buffer.iter_meta::<gst_video::VideoRegionOfInterestMeta>() {
                    rois += 1;
                    if let Some(id) = m.param("torchtrack").and_then(|p| p.get::<u64>("id").ok()) {
                        s.ids.insert(id);
                    }
                }
                s.buffers += 1;
                s.boxes += rois;
                s.fewest = s.fewest.min(rois);
                s.most = s.most.max(rois);
                s.first.get_or_insert_with(Instant::now);
            }
            gst::PadProbeReturn::Ok
        });
    let (start, secs) = common::play(&pipeline, &src, buffers, gst::ClockTime::from_seconds(900))?;
    let mut stats = serde_json::Map::new();
    for name in names {
        let e = pipeline
            .by_name(name)
            .ok_or_else(|| format!("no element {name}"))?;
        stats.insert(
            name.clone(),
            stats_json(&e.property::<gst::Structure>("stats")),
        );
    }
    pipeline.set_state(gst::State::Null)?;
    let seen = seen.lock().unwrap();
    if seen.buffers != frames as u64 {
        return Err(format!("{} of {frames} frames reached the sink", seen.buffers).into());
    }
    println!(
        "{}",
        serde_json::json!({
            "frames": frames,
            "seconds": secs,
            "fps": frames as f64 / secs,
            "total_ms": secs * 1e3 / frames as f64,
            "boxes_per_frame": seen.boxes as f64 / frames as f64,
            "boxes_min": seen.fewest,
            "boxes_max": seen.most,
            "track_ids": seen.ids.len(),
            "first_ms": seen.first.map(|t| (t - start).as_secs_f64() * 1e3),
            "stats": stats,
        })
    );
    Ok(())
}
