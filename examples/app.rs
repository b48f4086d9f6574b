//! Embedding torchclassify in a Rust application: build the pipeline from code, read each
//! buffer's `ClassificationMeta` in a pad probe, print when the top-1 label changes.
//!
//!     cargo run --release --example app -- [VIDEO]     (default: data/cat-coffee-orange.webm)
//!
//! The plugin is linked into the app (`gsttorch::plugin_register_static`), so nothing needs to be
//! installed; `GST_TORCH_MODEL` overrides the element's default model path.

use gst::prelude::*;
use gsttorch::ClassificationMeta;
use std::sync::{Arc, Mutex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gsttorch::plugin_register_static()?;
    let video = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/cat-coffee-orange.webm").into()
    });

    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", &video)
        .build()?;
    let decode = gst::ElementFactory::make("decodebin").build()?;
    let convert = gst::ElementFactory::make("videoconvert").build()?;
    let mut classify = gst::ElementFactory::make("torchclassify").property("top-k", 3u32);
    if let Ok(model) = std::env::var("GST_TORCH_MODEL") {
        classify = classify.property("model", model);
    }
    let classify = classify.build()?;
    let sink = gst::ElementFactory::make("fakesink").build()?;
    pipeline.add_many([&src, &decode, &convert, &classify, &sink])?;
    src.link(&decode)?;
    gst::Element::link_many([&convert, &classify, &sink])?;
    let convert_sink = convert
        .static_pad("sink")
        .ok_or("videoconvert has no sink pad")?;
    decode.connect_pad_added(move |_, pad| {
        if !convert_sink.is_linked() {
            let _ = pad.link(&convert_sink);
        }
    });

    // The typed meta, read where the buffers leave the classifier.
    let last = Arc::new(Mutex::new(None::<u32>));
    let probe_pad = sink.static_pad("sink").ok_or("fakesink has no sink pad")?;
    probe_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        if let Some(meta) = ClassificationMeta::from_buffer(buffer) {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if *last != Some(meta.class_id()) {
                *last = Some(meta.class_id());
                let others: Vec<String> = meta.top_k()[1..]
                    .iter()
                    .map(|p| format!("{} {:.2}", p.label, p.confidence))
                    .collect();
                println!(
                    "{}  {} ({}) {:.2}   then: {}",
                    meta.timestamp().map_or("-".into(), |t| t.to_string()),
                    meta.label(),
                    meta.class_id(),
                    meta.confidence(),
                    others.join(", ")
                );
            }
        }
        gst::PadProbeReturn::Ok
    });

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("pipeline without bus")?;
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!(
                    "{}: {}",
                    e.src().map(|s| s.name()).unwrap_or_default(),
                    e.error()
                )
                .into());
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    result
}
