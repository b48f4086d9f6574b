//! Hostile input: broken model and label files, odd frames and caps, lifecycle abuse, property
//! abuse, and model hot-swap. Every case asserts the exact outcome; every pipeline runs under a
//! time limit.

use gst::prelude::*;
use gsttorch::ClassificationMeta;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;
use common::{model, serial, test_model, threads_named};

/// A path in this suite's scratch directory.
fn scratch(name: &str) -> PathBuf {
    common::scratch("hostile", name)
}

fn write(name: &str, bytes: &[u8]) -> String {
    let p = scratch(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[derive(Debug, Default)]
struct Outcome {
    results: usize,
    error: Option<String>,
    warnings: Vec<String>,
    eos: bool,
}

/// Runs a pipeline to EOS or error within `limit`, collecting results, errors and warnings.
fn run_for(description: &str, limit: Duration) -> Outcome {
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let outcome = play(&pipeline, limit, |_| false);
    pipeline.set_state(gst::State::Null).unwrap();
    outcome
}

fn run(description: &str) -> Outcome {
    run_for(description, Duration::from_secs(60))
}

/// Plays until EOS, error, `limit`, or `stop` returns true for a message.
fn play(
    pipeline: &gst::Pipeline,
    limit: Duration,
    mut stop: impl FnMut(&gst::Message) -> bool,
) -> Outcome {
    let bus = pipeline.bus().unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let deadline = Instant::now() + limit;
    let mut o = Outcome::default();
    while let Some(msg) = deadline
        .checked_duration_since(Instant::now())
        .and_then(|left| bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)))
    {
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == "torchclassify") =>
            {
                o.results += 1
            }
            gst::MessageView::Error(e) => {
                o.error = Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                return o;
            }
            gst::MessageView::Warning(w) => o.warnings.push(w.error().to_string()),
            gst::MessageView::Eos(_) => {
                o.eos = true;
                return o;
            }
            _ => {}
        }
        if stop(&msg) {
            return o;
        }
    }
    panic!("{:?}: no EOS or error within {limit:?}", pipeline.name());
}

fn start_error(properties: &str) -> String {
    let o = run(&format!(
        "videotestsrc num-buffers=2 ! torchclassify {properties} ! fakesink"
    ));
    assert_eq!(o.results, 0, "{properties}");
    o.error
        .unwrap_or_else(|| panic!("no error for {properties}"))
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` not in `{text}`");
    }
}

#[test]
fn broken_model_files_are_errors_naming_file_and_reason() {
    let _s = serial();
    let real = std::fs::read(model()).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            scratch("missing.pt").to_string_lossy().into_owned(),
            "no such file",
        ),
        (write("empty.pt", b""), "the file is empty"),
        (
            write("random.pt", &[0x5a; 1000]),
            "not a loadable TorchScript file",
        ),
        (
            write("truncated.pt", &real[..real.len() / 2]),
            "not a loadable TorchScript file",
        ),
        (
            scratch("").to_string_lossy().into_owned(),
            "it is a directory",
        ),
        (
            test_model("not_torchscript.pt"),
            "not a loadable TorchScript file",
        ),
        (
            test_model("not_classifier.pt"),
            "its output has shape [1, 3, 224, 224], not [1, N]",
        ),
        (
            test_model("tuple_output.pt"),
            "its output is a tuple, not a [1, N] tensor",
        ),
        (
            test_model("dict_output.pt"),
            "its output is a dict, not a [1, N] tensor",
        ),
        (
            test_model("ten_classes.pt"),
            "it outputs 10 classes but the built-in ImageNet labels (property 'labels' unset) has 1000 labels",
        ),
    ];
    for (path, reason) in cases {
        let e = start_error(&format!("model=\"{path}\""));
        assert_contains(
            &e,
            &[
                &format!("Cannot use model '{path}' (property 'model')"),
                reason,
            ],
        );
    }
}

#[test]
fn model_that_cannot_take_input_size_names_it() {
    let _s = serial();
    let path = test_model("fixed_224.pt");
    let labels = test_model("ten_labels.txt");
    let ok = run(&format!(
        "videotestsrc num-buffers=2 ! torchclassify model={path} labels={labels} ! fakesink"
    ));
    assert_eq!((ok.error, ok.results), (None, 2));
    let e = start_error(&format!("model={path} labels={labels} input-size=299"));
    assert_contains(
        &e,
        &[
            &format!("Cannot use model '{path}' (property 'model')"),
            "running it on a 1x3x299x299 image (property 'input-size') failed",
        ],
    );
}

#[test]
fn unreadable_model_file() {
    let _s = serial();
    use std::os::unix::fs::PermissionsExt;
    let path = write("unreadable.pt", &std::fs::read(model()).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let o = run(&format!(
        "videotestsrc num-buffers=2 ! torchclassify model=\"{path}\" ! fakesink"
    ));
    if std::fs::File::open(&path).is_ok() {
        // root reads files whatever their mode: then the model simply works.
        assert_eq!((o.error, o.results), (None, 2));
    } else {
        let e = o.error.expect("error for an unreadable model");
        assert_contains(&e, &[&path, "cannot read it", "ermission denied"]);
    }
}

#[test]
fn float_classifier_with_its_labels_works() {
    let _s = serial();
    let o = run(&format!(
        "videotestsrc num-buffers=3 ! torchclassify model={} labels={} ! fakesink",
        test_model("ten_classes.pt"),
        test_model("ten_labels.txt")
    ));
    assert_eq!((o.error, o.results), (None, 3));
}

#[test]
fn label_files() {
    let _s = serial();
    let imagenet = gsttorch::torchcore::labels::IMAGENET_LABELS_TXT;
    let bad: Vec<(String, &str)> = vec![
        (write("empty.txt", b""), "it holds no labels"),
        (write("three.txt", b"a\nb\nc\n"), "has 3 labels"),
        (
            write("latin1.txt", &[imagenet.as_bytes(), b"caf\xe9\n"].concat()),
            "line 1001 is not valid UTF-8",
        ),
        (
            write("blank.txt", imagenet.replacen('\n', "\n\n", 1).as_bytes()),
            "line 2 is empty",
        ),
    ];
    for (path, reason) in bad {
        let e = start_error(&format!("model={} labels=\"{path}\"", model()));
        assert_contains(&e, &[&format!("'{path}' (property 'labels')"), reason]);
    }
    // CRLF line ends and very long lines are fine.
    let crlf = write("crlf.txt", imagenet.replace('\n', "\r\n").as_bytes());
    let long_label = "x".repeat(100_000);
    let long = write(
        "long.txt",
        imagenet.replacen("tench", &long_label, 1).as_bytes(),
    );
    for path in [crlf, long] {
        let o = run(&format!(
            "videotestsrc num-buffers=2 ! torchclassify model={} labels=\"{path}\" ! fakesink",
            model()
        ));
        assert_eq!((o.error, o.results), (None, 2), "{path}");
    }
}

#[test]
fn odd_frame_sizes_are_classified() {
    let _s = serial();
    for (w, h, format) in [
        (1, 1, "RGB"),
        (2, 2, "BGRx"),
        (7, 5, "RGB"),
        (7, 5, "xRGB"),
        (4096, 2160, "BGRx"),
        (1, 1, "I420"),
        (7, 5, "I420"),
        (7, 5, "NV21"),
        (7, 5, "YUY2"),
        (3, 3, "GRAY8"),
        (4096, 2160, "NV12"),
    ] {
        let o = run(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,format={format},width={w},height={h} ! \
             torchclassify model={} ! fakesink",
            model()
        ));
        assert_eq!((o.error, o.results), (None, 2), "{w}x{h} {format}");
    }
}

#[test]
fn unsupported_format_is_not_negotiated() {
    let _s = serial();
    // In a launch line the link itself is refused, naming the caps.
    let e = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=Y444 ! torchclassify model={} ! fakesink",
        model()
    ))
    .expect_err("Y444 cannot link");
    assert_contains(
        &e.to_string(),
        &["torchclassify", "can't handle caps", "Y444"],
    );
    // Pushed anyway: not-negotiated, no result.
    let (mut h, _bus) = harness();
    h.set_src_caps(caps("Y444", 64, 64));
    assert_eq!(
        h.push(gst::Buffer::from_slice(vec![0u8; 64 * 64 * 3])),
        Err(gst::FlowError::NotNegotiated)
    );
}

fn harness() -> (gst_check::Harness, gst::Bus) {
    let h = gst_check::Harness::new_parse(&format!("torchclassify model={}", model()));
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    (h, bus)
}

fn caps(format: &str, w: i32, h: i32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", format)
        .field("width", w)
        .field("height", h)
        .field("framerate", gst::Fraction::new(30, 1))
        .build()
}

#[test]
fn buffer_smaller_than_caps_is_an_error_not_a_read_past_the_end() {
    let _s = serial();
    // 224x224 I420 takes 75264 bytes: the chroma planes are what a short buffer lacks.
    for (format, size, wanted) in [
        ("RGB", 1000, ["1000 bytes", "224x224 RGB", "150528"]),
        ("I420", 60000, ["60000 bytes", "224x224 I420", "75264"]),
    ] {
        let (mut h, bus) = harness();
        h.set_src_caps(caps(format, 224, 224));
        let flow = h.push(gst::Buffer::from_slice(vec![7u8; size]));
        assert_eq!(flow, Err(gst::FlowError::Error));
        let msg = bus
            .pop_filtered(&[gst::MessageType::Error])
            .expect("error message");
        let gst::MessageView::Error(e) = msg.view() else {
            unreachable!()
        };
        assert_contains(&e.error().to_string(), &wanted);
    }
}

#[test]
fn caps_change_mid_stream() {
    let _s = serial();
    let (mut h, _bus) = harness();
    for (format, w, hh, bpp) in [
        ("RGB", 224, 224, 3),
        ("BGRx", 640, 480, 4),
        ("RGB", 33, 17, 3),
    ] {
        h.set_src_caps(caps(format, w, hh));
        let info = gst_video::VideoInfo::from_caps(&caps(format, w, hh)).unwrap();
        assert!(info.stride()[0] as usize >= w as usize * bpp);
        let out = h
            .push_and_pull(gst::Buffer::from_slice(vec![128u8; info.size()]))
            .unwrap();
        let m = ClassificationMeta::from_buffer(&out).expect("meta after a caps change");
        let roi = out.meta::<gst_video::VideoRegionOfInterestMeta>().unwrap();
        assert_eq!(roi.rect(), (0, 0, w as u32, hh as u32));
        assert!(m.confidence() > 0.0);
    }
}

#[test]
fn eos_without_buffers() {
    let _s = serial();
    let o = run(&format!(
        "videotestsrc num-buffers=0 ! torchclassify model={} ! fakesink",
        model()
    ));
    assert!(o.eos);
    assert_eq!((o.error, o.results), (None, 0));
}

/// The process's resident memory, after handing glibc's free pages back to the system: what
/// freed memory still holds in its malloc arenas (one per thread that allocated, up to 8 per
/// core, each keeping its own free lists) is fragmentation, not a leak, and varies run to run.
fn rss_kib() -> u64 {
    #[cfg(target_env = "gnu")]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free memory; any thread may call it at any time.
        unsafe { malloc_trim(0) };
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_hundred_start_stop_cycles_do_not_grow_memory() {
    let _s = serial();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=320,height=240 ! torchclassify model={} ! fakesink",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let mut after_warm_up = 0;
    for i in 0..100 {
        let o = play(&pipeline, Duration::from_secs(30), |_| false);
        assert_eq!((o.error, o.results), (None, 3), "cycle {i}");
        pipeline.set_state(gst::State::Null).unwrap();
        // Each cycle loads the model (3.5 MB) on a new thread and classifies three 225 KiB
        // frames: keeping the model or one frame per cycle adds 15 MiB or more over the 70 measured.
        if i == 29 {
            after_warm_up = rss_kib();
        }
    }
    let growth = rss_kib().saturating_sub(after_warm_up);
    println!(
        "RSS after 30 cycles {after_warm_up} KiB, after 100: {} KiB (+{growth} KiB)",
        rss_kib()
    );
    assert!(growth <= 8 * 1024, "RSS grew {growth} KiB over 70 cycles");
}

#[test]
fn four_instances_two_models_one_pipeline() {
    let _s = serial();
    let ten = format!(
        "model={} labels={}",
        test_model("ten_classes.pt"),
        test_model("ten_labels.txt")
    );
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=5 ! tee name=t \
         t. ! queue ! torchclassify name=a model={m} ! torchclassify name=b {ten} ! fakesink \
         t. ! queue ! torchclassify name=c {ten} ! torchclassify name=d model={m} ! fakesink",
        m = model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let mut per_element = std::collections::HashMap::<String, usize>::new();
    let o = play(&pipeline, Duration::from_secs(60), |msg| {
        if let (gst::MessageView::Element(e), Some(src)) = (msg.view(), msg.src())
            && e.structure().is_some_and(|s| s.name() == "torchclassify")
        {
            *per_element.entry(src.name().to_string()).or_default() += 1;
        }
        false
    });
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!((o.error, o.eos), (None, true));
    for name in ["a", "b", "c", "d"] {
        assert_eq!(per_element.get(name), Some(&5), "{name}: {per_element:?}");
    }
}

#[test]
fn two_pipelines_on_two_threads() {
    let _s = serial();
    let m = model();
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let m = m.clone();
            std::thread::spawn(move || {
                run(&format!(
                    "videotestsrc num-buffers={} ! torchclassify model={m} ! fakesink",
                    10 + i
                ))
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let o = t.join().unwrap();
        assert_eq!((o.error, o.results), (None, 10 + i));
    }
}

#[test]
fn out_of_range_properties_are_refused() {
    let _s = serial();
    for (name, bad, default) in [
        ("top-k", "0", "5"),
        ("top-k", "1001", "5"),
        ("inference-interval", "0", "1"),
        ("num-threads", "100000", "0"),
        ("input-size", "0", "224"),
        ("input-size", "5000", "224"),
    ] {
        // As gst-launch-1.0 sets it: GLib checks the value against the param spec, warns and
        // leaves the property as it was.
        let bin = gst::parse::launch(&format!("torchclassify name=c {name}={bad}"))
            .unwrap()
            .downcast::<gst::Bin>()
            .unwrap_or_else(|e| {
                let bin = gst::Bin::new();
                bin.add(&e).unwrap();
                bin
            });
        let c = bin.by_name("c").unwrap();
        assert_eq!(
            c.property::<u32>(name).to_string(),
            default,
            "{name}={bad} was accepted"
        );
    }
    let e = gst::ElementFactory::make("torchclassify").build().unwrap();
    let engine = e.find_property("engine").unwrap();
    let engine = engine.downcast_ref::<gst::glib::ParamSpecEnum>().unwrap();
    let nicks: Vec<&str> = engine
        .enum_class()
        .values()
        .iter()
        .map(|v| v.nick())
        .collect();
    assert_eq!(nicks, ["auto", "qnnpack", "fbgemm", "x86"]);
}

/// The engine a pipeline's element ran, and the warnings it posted.
fn engine_run(properties: &str) -> (String, Vec<String>) {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! torchclassify name=c labels={} {properties} ! fakesink",
        test_model("ten_labels.txt")
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let o = play(&pipeline, Duration::from_secs(30), |_| false);
    assert_eq!((o.error, o.results), (None, 2), "{properties}");
    let stats = pipeline
        .by_name("c")
        .unwrap()
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    (stats.get::<String>("engine").unwrap(), o.warnings)
}

/// engine=auto runs a model under the engine its export recorded (`gst_torch_engine()`), else
/// the platform's fastest; an explicit engine other than a model's qnnpack calibration warns.
#[test]
fn auto_engine_follows_the_models_calibration() {
    let _s = serial();
    let x86 = cfg!(target_arch = "x86_64");
    let fastest = if x86 { "x86" } else { "qnnpack" };
    for (name, expected) in [
        ("records_qnnpack.pt", "qnnpack"),
        ("records_x86.pt", fastest),
        ("ten_classes.pt", fastest),
        ("records_qnnpack.pt", "qnnpack"),
    ] {
        let (engine, warnings) = engine_run(&format!("model={}", test_model(name)));
        assert_eq!(engine, expected, "{name}");
        assert_eq!(warnings, Vec::<String>::new(), "{name}");
    }
    if x86 {
        let (engine, warnings) = engine_run(&format!(
            "model={} engine=x86",
            test_model("records_qnnpack.pt")
        ));
        assert_eq!(engine, "x86");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_contains(
            &warnings[0],
            &[
                "Property 'engine'",
                "calibrated for the qnnpack engine",
                "under x86",
            ],
        );
        // A model calibrated for x86 runs under fbgemm (both expect 7-bit activations) quietly.
        let (engine, warnings) = engine_run(&format!(
            "model={} engine=fbgemm",
            test_model("records_x86.pt")
        ));
        assert_eq!((engine.as_str(), warnings.len()), ("fbgemm", 0));
    }
}

/// Swaps in the 10-class model while a live stream plays, then tries a missing file.
#[test]
fn model_hot_swap_while_playing() {
    hot_swap(true);
}

/// The same on a non-live stream, where a frame is in flight between buffers (pipelining): its
/// result must come from the model and labels it was queued to.
#[test]
fn model_hot_swap_while_playing_a_non_live_stream() {
    hot_swap(false);
}

fn hot_swap(live: bool) {
    let _s = serial();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live={live} num-buffers=90 ! \
         video/x-raw,width=320,height=240,framerate=30/1 ! \
         torchclassify name=c model={} ! fakesink name=sink sync=true",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let classify = pipeline.by_name("c").unwrap();
    // Every buffer that reaches the sink: the frame number of its result, and whether the
    // result came from the 10-class model (labels "colour-N").
    let seen = std::sync::Arc::new(Mutex::new(Vec::<(u64, bool)>::new()));
    let probe_seen = seen.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let entry = info
                .buffer()
                .and_then(|b| ClassificationMeta::from_buffer(b))
                .map_or((u64::MAX, false), |m| {
                    (m.frame_number(), m.label().starts_with("colour-"))
                });
            probe_seen.lock().unwrap().push(entry);
            gst::PadProbeReturn::Ok
        });
    let mut updated = 0;
    let mut step = 0;
    let o = play(&pipeline, Duration::from_secs(30), |msg| {
        let gst::MessageView::Element(e) = msg.view() else {
            return false;
        };
        let Some(s) = e.structure() else { return false };
        match s.name().as_str() {
            "torchclassify" => {
                step += 1;
                if step == 10 {
                    // Set both within the settle time: one load.
                    classify.set_property("labels", test_model("ten_labels.txt"));
                    classify.set_property("model", test_model("ten_classes.pt"));
                }
            }
            "torchclassify-model-updated" => {
                updated += 1;
                assert_eq!(s.get::<u32>("classes").unwrap(), 10);
                classify.set_property("model", "/nonexistent/swap.pt");
            }
            _ => {}
        }
        false
    });
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!((o.error, o.eos), (None, true));
    assert_eq!(updated, 1, "one successful swap");
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert_contains(
        &o.warnings[0],
        &[
            "Cannot use model '/nonexistent/swap.pt' (property 'model'): no such file",
            "keeping the previous model",
        ],
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 90, "every frame flowed");
    assert!(
        seen.iter().all(|&(f, _)| f != u64::MAX),
        "every frame has a result"
    );
    // Frame numbers run on without a gap: no frame waited out the swap unclassified.
    assert!(seen.iter().enumerate().all(|(i, &(f, _))| f == i as u64));
    // The ImageNet model first, then the 10-class one, which stays after the failed swap.
    let switch = seen
        .iter()
        .position(|&(_, new)| new)
        .expect("the new model's results");
    assert!(switch >= 10, "switched at frame {switch}");
    assert!(
        seen[switch..].iter().all(|&(_, new)| new),
        "stayed on the new model"
    );
}

/// A synchronous bus handler answers an element error by pointing `model` elsewhere: the
/// element must not hold a lock of its own while it posts (it once posted frame errors under its
/// state lock, which `model`'s setter takes: a deadlock). The new model then swaps in.
#[test]
fn sync_bus_handler_may_set_model_on_an_error() {
    let _s = serial();
    let (mut h, bus) = harness();
    // The harness wraps the element in a bin.
    let element = h
        .element()
        .unwrap()
        .downcast::<gst::Bin>()
        .unwrap()
        .iterate_elements()
        .find(|e| e.factory().is_some_and(|f| f.name() == "torchclassify"))
        .unwrap();
    let handler_element = element.clone();
    let (ten_model, ten_labels) = (test_model("ten_classes.pt"), test_model("ten_labels.txt"));
    bus.set_sync_handler(move |_, msg| {
        if let gst::MessageView::Error(_) = msg.view() {
            handler_element.set_property("labels", &ten_labels);
            handler_element.set_property("model", &ten_model);
        }
        gst::BusSyncReply::Pass
    });
    h.set_src_caps(caps("RGB", 224, 224));
    // The push that fails runs on a thread of its own: a deadlock fails the test, not the run.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let flow = h.push(gst::Buffer::from_slice(vec![7u8; 1000]));
        let _ = done.send(flow);
        // The harness (and the element) stay alive until the swap has been seen.
        std::thread::sleep(Duration::from_secs(30));
        drop(h);
    });
    let flow = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the push hung: the error was posted under a lock the handler needs");
    assert_eq!(flow, Err(gst::FlowError::Error));
    let updated = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Element],
    );
    let s = updated
        .as_ref()
        .and_then(|m| m.structure())
        .expect("a model-updated message");
    assert_eq!(s.name(), "torchclassify-model-updated");
    assert_eq!(s.get::<u32>("classes").unwrap(), 10);
    assert_eq!(
        element.property::<String>("model"),
        test_model("ten_classes.pt")
    );
}

/// A hot swap asked for just before the element stops: the loader thread is joined by the stop
/// (none is left behind), and what it loaded never reaches the next run, which starts with the
/// new settings and has nothing to swap. Delays around the loader's settle time (100 ms) hit it
/// settling, loading and done.
#[test]
fn hot_swap_then_stop_and_start_at_once() {
    let _s = serial();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         torchclassify name=c model={} ! fakesink name=sink sync=false",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let classify = pipeline.by_name("c").unwrap();
    let bus = pipeline.bus().unwrap();
    let timeout = gst::ClockTime::from_seconds(30);
    let ten = |s: &gst::StructureRef| {
        s.get::<String>("label")
            .is_ok_and(|l| l.starts_with("colour-"))
    };
    for (i, delay_ms) in [0u64, 20, 60, 100, 130, 400].into_iter().enumerate() {
        // Start on the ImageNet model; wait for a result.
        classify.set_property("labels", None::<String>);
        classify.set_property("model", model());
        pipeline.set_state(gst::State::Playing).unwrap();
        let first = bus
            .timed_pop_filtered(
                timeout,
                &[gst::MessageType::Element, gst::MessageType::Error],
            )
            .expect("a result");
        let s = first.structure().unwrap();
        assert_eq!(s.name(), "torchclassify", "cycle {i}: {s}");
        assert!(!ten(s), "cycle {i}: started on the ImageNet model");
        // Ask for a swap, then stop after `delay_ms`.
        classify.set_property("labels", test_model("ten_labels.txt"));
        classify.set_property("model", test_model("ten_classes.pt"));
        std::thread::sleep(Duration::from_millis(delay_ms));
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(
            threads_named("torchclassify"),
            0,
            "cycle {i}: a model or loader thread outlived the stop"
        );
        while bus.pop().is_some() {}
        // The next run: the 10-class model from its first result on, and no swap message.
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut results = 0;
        while results < 5 {
            let msg = bus
                .timed_pop_filtered(
                    timeout,
                    &[
                        gst::MessageType::Element,
                        gst::MessageType::Error,
                        gst::MessageType::Warning,
                    ],
                )
                .unwrap_or_else(|| panic!("cycle {i}: no result"));
            let s = msg
                .structure()
                .unwrap_or_else(|| panic!("cycle {i}: {msg:?}"));
            assert_eq!(s.name(), "torchclassify", "cycle {i}: {s}");
            assert!(
                ten(s),
                "cycle {i}: result {results} not from the 10-class model: {s}"
            );
            results += 1;
        }
        pipeline.set_state(gst::State::Null).unwrap();
        while bus.pop().is_some() {}
    }
}
