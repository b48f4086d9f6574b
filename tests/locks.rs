//! Nothing waits for a forward that does not have to: while the model works on a frame (here a
//! slow one: qnnpack on one thread at a 1024x1024 input), an application's LATENCY query and its
//! property reads and writes answer at once, in blocking mode (a frame waits for its result) and
//! in async mode through EOS (which waits for the model's last job).

mod common;
use common::{model, serial};
use gst::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The slowest and the median of some durations.
fn worst_and_median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (
        times.last().copied().unwrap_or_default(),
        times.get(times.len() / 2).copied().unwrap_or_default(),
    )
}

/// Runs 6 frames through a slow torchclassify (`mode`: extra properties) while another thread
/// asks the pipeline for its latency and reads and sets properties, as an application does;
/// returns how long each of those took and the model's mean time per frame.
fn probe(mode: &str) -> (Vec<Duration>, Vec<Duration>, f64) {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=6 ! video/x-raw,format=RGB,width=320,height=240 ! \
         torchclassify name=c model={} engine=qnnpack num-threads=1 input-size=1024 {mode} ! \
         fakesink sync=false",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let element = pipeline.by_name("c").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let (pipeline, element, done) = (pipeline.clone(), element.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut queries, mut properties) = (Vec::new(), Vec::new());
            while !done.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                let mut q = gst::query::Latency::new();
                let _ = pipeline.query(&mut q);
                queries.push(t0.elapsed());
                let t0 = Instant::now();
                let k = element.property::<u32>("top-k");
                element.set_property("top-k", if k == 5 { 3u32 } else { 5u32 });
                let _ = element.property::<gst::Structure>("stats");
                properties.push(t0.elapsed());
                std::thread::sleep(Duration::from_millis(7));
            }
            (queries, properties)
        })
    };
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{mode}: {}", e.error()),
            _ => {}
        }
    }
    done.store(true, Ordering::SeqCst);
    let (queries, properties) = prober.join().unwrap();
    let stats = element.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    let inference_ms = stats.get::<f64>("mean-inference-ms").unwrap();
    (queries, properties, inference_ms)
}

#[test]
fn latency_queries_and_properties_never_wait_for_a_forward() {
    let _s = serial();
    for mode in ["", "async=true"] {
        let (queries, properties, inference_ms) = probe(mode);
        let forward = Duration::from_secs_f64(inference_ms / 1e3);
        // The premise: forwards long enough that waiting for one would show.
        assert!(
            forward >= Duration::from_millis(40),
            "{mode}: a forward took {inference_ms} ms, too fast to tell"
        );
        assert!(queries.len() >= 10, "{mode}: {} queries", queries.len());
        for (what, times) in [("LATENCY query", queries), ("properties", properties)] {
            let (worst, median) = worst_and_median(times);
            eprintln!(
                "{mode:?}: {what}: median {median:?}, worst {worst:?}; a forward {forward:?}"
            );
            // Answering takes microseconds; one that waited for the model took up to a forward or
            // two. The bound allows for the prober being descheduled on a busy machine.
            assert!(
                median < Duration::from_millis(10),
                "{mode}: {what}: median {median:?} (a forward: {forward:?})"
            );
            assert!(
                worst < Duration::from_millis(25).min(forward / 2),
                "{mode}: {what}: the slowest took {worst:?} (a forward: {forward:?})"
            );
        }
    }
}
