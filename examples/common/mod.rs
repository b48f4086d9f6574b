//! What the benchmark drivers share: raw RGB frames read from a file, made into buffers, and a
//! pipeline fed by an `appsrc` of them with the plugin linked in, played to its end.

use gst::prelude::*;

/// The frames of `path` (packed RGB, `width` × `height`, as bench.py decodes them): the file's
/// bytes and one frame's size; an error naming the file when it holds no whole frame.
pub fn raw_frames(path: &str, width: u32, height: u32) -> Result<(Vec<u8>, usize), String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let size = (width * height * 3) as usize;
    if raw.len() < size {
        return Err(format!("{path} holds no {width}x{height} RGB frame"));
    }
    Ok((raw, size))
}

/// Frame `i` of `raw` (cycling through its frames of `size` bytes) as a buffer in GStreamer's
/// default layout (rows padded to 4 bytes), stamped at 30 fps.
pub fn frame_buffer(raw: &[u8], size: usize, width: u32, height: u32, i: usize) -> gst::Buffer {
    let frame = &raw[(i % (raw.len() / size)) * size..][..size];
    let stride = (width as usize * 3).next_multiple_of(4);
    let mut data = vec![0u8; stride * height as usize];
    for (row, line) in data
        .chunks_exact_mut(stride)
        .zip(frame.chunks_exact(width as usize * 3))
    {
        row[..line.len()].copy_from_slice(line);
    }
    let mut buffer = gst::Buffer::from_mut_slice(data);
    let b = buffer.get_mut().expect("a new buffer is writable");
    b.set_pts(gst::ClockTime::from_nseconds(i as u64 * 33_333_333));
    b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
    buffer
}

/// `appsrc name=src format=time ! DESCRIPTION` with the plugin registered, and its appsrc set
/// to RGB `width` × `height` at 30 fps.
pub fn appsrc_pipeline(
    description: &str,
    width: u32,
    height: u32,
) -> Result<(gst::Pipeline, gst_app::AppSrc), Box<dyn std::error::Error>> {
    gst::init()?;
    gsttorch::plugin_register_static()?;
    let pipeline = gst::parse::launch(&format!("appsrc name=src format=time ! {description}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("no appsrc")?;
    src.set_caps(Some(
        &gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", width as i32)
            .field("height", height as i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .build(),
    ));
    Ok((pipeline, src))
}

/// Plays `pipeline`, pushes `buffers` into `src` and then EOS, and waits up to `timeout` for the
/// EOS at the sink: when the first push began and the seconds from it to the EOS, or the
/// pipeline's error.
pub fn play(
    pipeline: &gst::Pipeline,
    src: &gst_app::AppSrc,
    buffers: Vec<gst::Buffer>,
    timeout: gst::ClockTime,
) -> Result<(std::time::Instant, f64), Box<dyn std::error::Error>> {
    pipeline.set_state(gst::State::Playing)?;
    let start = std::time::Instant::now();
    for buffer in buffers {
        src.push_buffer(buffer)?;
    }
    src.end_of_stream()?;
    let bus = pipeline.bus().ok_or("no bus")?;
    for msg in bus.iter_timed(timeout) {
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok((start, start.elapsed().as_secs_f64())),
            gst::MessageView::Error(e) => {
                return Err(format!("{} ({:?})", e.error(), e.debug()).into());
            }
            _ => {}
        }
    }
    Err(format!("no EOS within {timeout}").into())
}
