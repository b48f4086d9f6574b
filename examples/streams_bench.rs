//! `make bench-streams`'s driver (tools/bench/streams.py): STREAMS streams of raw frames, each
//! `appsrc ! torchclassify ! fakesink sync=false`, in this one process.
//!
//!     streams_bench RAW FORMAT WIDTH HEIGHT FRAMES STREAMS [PROPERTIES...]
//!
//! RAW holds packed frames of GStreamer video format FORMAT (RGB or BGRx), WIDTH x HEIGHT; each
//! stream gets FRAMES of them (the file's frames repeated), pushed as fast as the element takes
//! them. PROPERTIES are `name=value` properties of every torchclassify (model-instance-id,
//! batch-size, batch-timeout, num-threads, ...). The elements load their models (once, shared)
//! before the clock starts. Prints one JSON line: streams, frames (all streams), seconds (first
//! frame out of any element to the last), fps (all streams), fps_per_stream, model_ms (mean model
//! time per frame, the elements' `mean-inference-ms` weighted by their frames), mean_batch_size
//! (images per forward, the elements' mean), rss_kib (VmRSS at the end, before the pipeline
//! stops), hwm_kib (peak RSS) and threads (this process's threads at the end).

use gst::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        return Err(
            "usage: streams_bench RAW FORMAT WIDTH HEIGHT FRAMES STREAMS [PROPERTIES...]".into(),
        );
    }
    let format = args[2].as_str();
    let (width, height): (u32, u32) = (args[3].parse()?, args[4].parse()?);
    let frames: usize = args[5].parse()?;
    let streams: usize = args[6].parse()?;
    let pixel = match format {
        "RGB" | "BGR" => 3,
        "BGRx" | "RGBx" | "xRGB" | "xBGR" | "BGRA" | "RGBA" => 4,
        _ => return Err(format!("format {format}: RGB, BGR or a 4-byte RGB format").into()),
    };
    if streams == 0 || frames == 0 {
        return Err("FRAMES and STREAMS must be at least 1".into());
    }
    let raw = std::fs::read(&args[1])?;
    // GStreamer's default layout: rows padded to 4 bytes.
    let stride = (width as usize * pixel).next_multiple_of(4);
    let size = stride * height as usize;
    let line = width as usize * pixel;
    let packed = line * height as usize;
    if raw.len() < packed {
        return Err(format!("{} holds no {width}x{height} {format} frame", args[1]).into());
    }
    gst::init()?;
    gsttorch::plugin_register_static()?;
    // The file's frames once, in memory; every stream pushes references to them.
    let clip: Vec<gst::Buffer> = raw
        .chunks_exact(packed)
        .map(|frame| {
            let mut data = vec![0u8; size];
            for (row, l) in data.chunks_exact_mut(stride).zip(frame.chunks_exact(line)) {
                row[..line].copy_from_slice(l);
            }
            gst::Buffer::from_mut_slice(data)
        })
        .collect();
    let props = args[7..].join(" ");
    let description: Vec<String> = (0..streams)
        .map(|k| {
            format!(
                "appsrc name=src{k} format=time ! torchclassify name=c{k} post-messages=false \
                 {props} ! fakesink name=sink{k} sync=false"
            )
        })
        .collect();
    let pipeline = gst::parse::launch(&description.join(" "))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", format)
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(30, 1))
        .build();
    // First and last frame out of any element.
    let span: Arc<Mutex<Option<(Instant, Instant)>>> = Arc::new(Mutex::new(None));
    let mut sources = Vec::with_capacity(streams);
    for k in 0..streams {
        let src = pipeline
            .by_name(&format!("src{k}"))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or("no appsrc")?;
        src.set_caps(Some(&caps));
        src.set_max_bytes(0); // unlimited: every frame is queued before the clock starts
        sources.push(src);
        let sink = pipeline
            .by_name(&format!("sink{k}"))
            .and_then(|e| e.static_pad("sink"))
            .ok_or("no fakesink")?;
        let span = span.clone();
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let now = Instant::now();
            let mut span = span.lock().unwrap_or_else(|e| e.into_inner());
            let (first, _) = span.unwrap_or((now, now));
            *span = Some((first, now));
            gst::PadProbeReturn::Ok
        });
    }
    // READY -> PAUSED starts the elements: their models load (the shared one once) here.
    pipeline.set_state(gst::State::Ready)?;
    pipeline.set_state(gst::State::Paused)?;
    pipeline.set_state(gst::State::Playing)?;
    for i in 0..frames {
        for src in &sources {
            let mut buffer = clip[i % clip.len()].clone();
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * 33_333_333));
            src.push_buffer(buffer)?;
        }
    }
    for src in &sources {
        src.end_of_stream()?;
    }
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut eos = false;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(format!(
                    "{}: {}",
                    msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    e.error()
                )
                .into());
            }
            _ => {}
        }
    }
    if !eos {
        let _ = pipeline.set_state(gst::State::Null);
        return Err("no EOS within 600 s".into());
    }
    let (rss, hwm) = (status("VmRSS:"), status("VmHWM:"));
    let threads = status("Threads:");
    let (mut total, mut model_ms, mut batch) = (0u64, 0f64, 0f64);
    let mut per_stream = Vec::with_capacity(streams);
    for k in 0..streams {
        let stats = pipeline
            .by_name(&format!("c{k}"))
            .ok_or("no element")?
            .property::<gst::Structure>("stats");
        let n = stats.get::<u64>("frames")?;
        total += n;
        model_ms += stats.get::<f64>("mean-inference-ms")? * n as f64;
        batch += stats.get::<f64>("mean-batch-size")?;
        per_stream.push(n);
    }
    pipeline.set_state(gst::State::Null)?;
    let (first, last) = span
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .ok_or("no frame came out")?;
    let secs = (last - first).as_secs_f64().max(1e-9);
    if per_stream.iter().any(|&n| n != frames as u64) {
        return Err(format!("frames per stream {per_stream:?}, expected {frames} each").into());
    }
    println!(
        "{}",
        serde_json::json!({
            "streams": streams,
            "frames": total,
            "seconds": secs,
            "fps": total as f64 / secs,
            "fps_per_stream": total as f64 / secs / streams as f64,
            "model_ms": model_ms / total.max(1) as f64,
            "mean_batch_size": batch / streams as f64,
            "rss_kib": rss,
            "hwm_kib": hwm,
            "threads": threads,
        })
    );
    Ok(())
}
