//! `make bench`'s regions row: raw RGB frames with 8 regions each (a 4x2 grid of ROI metas, as a
//! detector would attach) through `torchclassify inference-region=roi-list`.
//!
//!     regions_bench RAW_RGB WIDTH HEIGHT FRAMES MAX_BATCH [PROPERTIES...]
//!
//! The frames are read from RAW_RGB (packed RGB, WIDTH x HEIGHT, repeated to FRAMES), the
//! regions added before the clock starts; PROPERTIES are more `name=value` element properties
//! (engine, num-threads). Prints one JSON line: {"frames", "regions", "fps", "total_ms",
//! "region_ms" (wall time per region), "model_ms" (mean model time per frame), "mean_batch_size"}.

use gst::prelude::*;

mod common;

const COLUMNS: u32 = 4;
const ROWS: u32 = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err(
            "usage: regions_bench RAW_RGB WIDTH HEIGHT FRAMES MAX_BATCH [PROPERTIES...]".into(),
        );
    }
    let (width, height): (u32, u32) = (args[2].parse()?, args[3].parse()?);
    let frames: usize = args[4].parse()?;
    let max_batch: u32 = args[5].parse()?;
    let (raw, size) = common::raw_frames(&args[1], width, height)?;
    let (pipeline, src) = common::appsrc_pipeline(
        &format!(
            "torchclassify name=c inference-region=roi-list max-batch={max_batch} \
             post-messages=false {} ! fakesink sync=false",
            args[6..].join(" ")
        ),
        width,
        height,
    )?;
    // Every frame with its regions, ready before the clock starts.
    let (w, h) = (width / COLUMNS, height / ROWS);
    let buffers: Vec<gst::Buffer> = (0..frames)
        .map(|i| {
            let mut buffer = common::frame_buffer(&raw, size, width, height, i);
            {
                let b = buffer.get_mut().expect("a new buffer is writable");
                for r in 0..COLUMNS * ROWS {
                    let rect = ((r % COLUMNS) * w, (r / COLUMNS) * h, w, h);
                    let mut roi = gst_video::VideoRegionOfInterestMeta::add(b, "object", rect);
                    roi.set_id(r as i32 + 1);
                }
            }
            buffer
        })
        .collect();
    let (_, secs) = common::play(&pipeline, &src, buffers, gst::ClockTime::from_seconds(600))?;
    let stats = pipeline
        .by_name("c")
        .ok_or("no element")?
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null)?;
    let regions = frames as u64 * (COLUMNS * ROWS) as u64;
    println!(
        "{}",
        serde_json::json!({
            "frames": frames,
            "regions": regions,
            "fps": frames as f64 / secs,
            "total_ms": secs * 1e3 / frames as f64,
            "region_ms": secs * 1e3 / regions as f64,
            "model_ms": stats.get::<f64>("mean-inference-ms")?,
            "mean_batch_size": stats.get::<f64>("mean-batch-size")?,
        })
    );
    Ok(())
}
