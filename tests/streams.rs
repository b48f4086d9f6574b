//! Many cameras in one process: `torchclassify` elements sharing one model
//! (`model-instance-id`: one load, one model thread) and batching their frames across streams
//! (`batch-size`, `batch-timeout`), each frame keeping its own result.
//!
//! Model threads are counted by name with `num-threads=1` (no OpenMP workers, which inherit the
//! model thread's name).

use gst::prelude::*;
use gsttorch::{Classification, message};
use std::collections::HashMap;
use std::time::{Duration, Instant};

mod common;
use common::{CAT, ESPRESSO, ORANGE, media, model, serial, test_model, threads_named};

const FRAMES: u32 = 30;
const MODEL_THREAD: &str = "torchclassify-m";

/// A branch classifying `FRAMES` copies of `photo` at 224x224 with element `name`.
fn branch(name: &str, photo: &str, props: &str) -> String {
    branch_of(FRAMES, name, photo, props)
}

fn branch_of(frames: u32, name: &str, photo: &str, props: &str) -> String {
    format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=RGB,width=224,height=224 ! imagefreeze num-buffers={frames} ! \
         torchclassify name={name} model={} num-threads=1 {props} ! fakesink sync=false",
        media(photo),
        model()
    )
}

#[derive(Default)]
struct Outcome {
    /// Each element's results, in order.
    results: HashMap<String, Vec<Classification>>,
    /// Each element's `torchclassify-model-updated` messages (their `classes`).
    updated: HashMap<String, Vec<u32>>,
    /// The first error message (its source and text).
    error: Option<String>,
    /// Each element's `stats` at EOS.
    stats: HashMap<String, gst::Structure>,
    /// Model threads while the first results came in.
    model_threads: Option<usize>,
}

/// Runs `description` to EOS (or an error); `on_result` sees each element's results as they
/// come (element, its results so far).
fn play(
    description: &str,
    mut on_result: impl FnMut(&gst::Pipeline, &str, usize),
    timeout: Duration,
) -> Outcome {
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("bad pipeline {description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    let mut o = Outcome::default();
    let _ = pipeline.set_state(gst::State::Playing);
    let deadline = Instant::now() + timeout;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(
        deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64,
    )) {
        let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                if s.name() == "torchclassify-model-updated" {
                    let classes = s.get::<u32>("classes").unwrap();
                    o.updated.entry(src).or_default().push(classes);
                } else if let Some(c) = message::from_message(&msg) {
                    if o.model_threads.is_none() {
                        o.model_threads = Some(threads_named(MODEL_THREAD));
                    }
                    let results = o.results.entry(src.clone()).or_default();
                    results.push(c);
                    let n = results.len();
                    on_result(&pipeline, &src, n);
                }
            }
            gst::MessageView::Error(e) => {
                o.error = Some(format!(
                    "{src}: {} ({})",
                    e.error(),
                    e.debug().unwrap_or_default()
                ));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    for element in pipeline.iterate_all_by_element_factory_name("torchclassify") {
        let element = element.unwrap();
        o.stats
            .insert(element.name().to_string(), element.property("stats"));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    o
}

/// Three streams of three photos (cat, coffee, orange), with `props` on every element.
fn three_streams(props: &str) -> Outcome {
    let description = [
        branch("cat", "cat.png", props),
        branch("coffee", "coffee.png", props),
        branch("orange", "orange.jpg", props),
    ]
    .join(" ");
    play(&description, |_, _, _| {}, Duration::from_secs(120))
}

/// Every element got a result for every frame, each its own photo's class.
fn assert_each_stream_its_own(o: &Outcome, what: &str) {
    assert_eq!(o.error, None, "{what}");
    for (name, class) in [
        ("cat", CAT),
        ("coffee", ESPRESSO..=ESPRESSO),
        ("orange", ORANGE..=ORANGE),
    ] {
        let results = &o.results[name];
        assert_eq!(results.len(), FRAMES as usize, "{what}: {name}'s results");
        for (i, c) in results.iter().enumerate() {
            assert!(
                class.contains(&c.top1().class_id),
                "{what}: {name} frame {i} got {} ({})",
                c.top1().class_id,
                c.top1().label
            );
        }
    }
}

fn mean_batch_size(o: &Outcome, name: &str) -> f64 {
    o.stats[name].get::<f64>("mean-batch-size").unwrap()
}

#[test]
fn separate_elements_load_a_model_each() {
    let _s = serial();
    let o = three_streams("");
    assert_each_stream_its_own(&o, "separate");
    assert_eq!(o.model_threads, Some(3));
}

#[test]
fn elements_with_one_id_share_one_model_thread_and_keep_their_own_results() {
    let _s = serial();
    let o = three_streams("model-instance-id=site");
    assert_each_stream_its_own(&o, "shared, batch-size 1");
    assert_eq!(
        o.model_threads,
        Some(1),
        "one model thread for three elements"
    );
    for name in ["cat", "coffee", "orange"] {
        assert_eq!(mean_batch_size(&o, name), 1.0, "{name}: batch-size 1");
    }
    assert_eq!(
        threads_named("torchclassify"),
        0,
        "the last to stop frees it"
    );
}

#[test]
fn shared_frames_are_batched_and_each_keeps_its_own_result() {
    let _s = serial();
    // A long timeout: the model waits for the other streams' frames, so forwards hold several
    // frames (all three while the three streams run).
    let o = three_streams("model-instance-id=site batch-size=3 batch-timeout=1000000000");
    assert_each_stream_its_own(&o, "shared, batch-size 3");
    assert_eq!(o.model_threads, Some(1));
    for name in ["cat", "coffee", "orange"] {
        let mean = mean_batch_size(&o, name);
        assert!(
            mean > 1.5 && mean <= 3.0,
            "{name}: mean-batch-size {mean} with three streams waiting for each other"
        );
    }
}

#[test]
fn a_model_taking_one_image_per_forward_runs_a_batch_frame_by_frame() {
    let _s = serial();
    // batch1_only.pt (10 classes) takes one image per forward: what each photo gets from it
    // alone, each stream must get from it shared and batched.
    let model = format!(
        "model={} labels={}",
        test_model("batch1_only.pt"),
        test_model("ten_labels.txt")
    );
    let alone = three_streams(&model);
    let shared = three_streams(&format!(
        "{model} model-instance-id=one batch-size=3 batch-timeout=1000000000"
    ));
    assert_eq!((&alone.error, &shared.error), (&None, &None));
    for name in ["cat", "coffee", "orange"] {
        let top1 = |o: &Outcome| -> Vec<u32> {
            o.results[name].iter().map(|c| c.top1().class_id).collect()
        };
        assert_eq!(
            top1(&alone)[..1],
            top1(&alone)[1..2],
            "{name}: one photo, one class"
        );
        assert_eq!(top1(&shared), top1(&alone), "{name}: shared as alone");
        assert_eq!(
            mean_batch_size(&shared, name),
            1.0,
            "{name}: one image per forward"
        );
    }
}

#[test]
fn elements_that_disagree_on_the_model_are_refused_naming_both_and_the_property() {
    let _s = serial();
    let description = format!(
        "{} {}",
        branch("first", "cat.png", "model-instance-id=x"),
        branch("second", "coffee.png", "model-instance-id=x input-size=160"),
    );
    let o = play(&description, |_, _, _| {}, Duration::from_secs(60));
    let error = o.error.expect("an error");
    assert!(
        error.contains("'input-size'")
            && error.contains("model-instance-id")
            && error.contains("'first'")
            && error.contains("'second'"),
        "{error}"
    );
    // A different id is a model of its own: no conflict.
    let description = format!(
        "{} {}",
        branch("first", "cat.png", "model-instance-id=x"),
        branch("second", "coffee.png", "model-instance-id=y input-size=160"),
    );
    let o = play(&description, |_, _, _| {}, Duration::from_secs(60));
    assert_eq!(o.error, None);
    assert_eq!(o.model_threads, Some(2));
}

#[test]
fn a_hot_swap_on_one_element_swaps_the_shared_model_for_all() {
    let _s = serial();
    let live = |name: &str, pattern: &str| {
        format!(
            "videotestsrc pattern={pattern} num-buffers=90 ! \
             video/x-raw,width=320,height=240,framerate=30/1 ! \
             torchclassify name={name} model={} num-threads=1 model-instance-id=swap ! \
             fakesink sync=true",
            model()
        )
    };
    let description = format!("{} {}", live("a", "smpte"), live("b", "ball"));
    let mut swapped = false;
    let o = play(
        &description,
        |pipeline, src, n| {
            if src == "a" && n == 10 && !swapped {
                swapped = true;
                let a = pipeline.by_name("a").unwrap();
                // Set both within the settle time: one load.
                a.set_property("labels", test_model("ten_labels.txt"));
                a.set_property("model", test_model("ten_classes.pt"));
            }
        },
        Duration::from_secs(60),
    );
    assert_eq!(o.error, None);
    for name in ["a", "b"] {
        assert_eq!(
            o.updated.get(name),
            Some(&vec![10]),
            "{name}: one torchclassify-model-updated, for the 10-class model"
        );
        let last = o.results[name].last().unwrap();
        assert!(
            last.top1().label.starts_with("colour-"),
            "{name}: the last frames come from the new model, got {}",
            last.top1().label
        );
    }
    assert_eq!(o.model_threads, Some(1));
}

#[test]
fn async_and_interval_keep_their_meaning_per_element_on_a_shared_model() {
    let _s = serial();
    // cat: async (frames pass at once, results come as the model gives them); coffee: every
    // third frame; orange: every frame. All batched on one model.
    let shared = "model-instance-id=mixed batch-size=3 batch-timeout=20000000";
    let description = [
        branch("cat", "cat.png", &format!("{shared} async=true")),
        branch(
            "coffee",
            "coffee.png",
            &format!("{shared} inference-interval=3"),
        ),
        branch("orange", "orange.jpg", shared),
    ]
    .join(" ");
    let o = play(&description, |_, _, _| {}, Duration::from_secs(120));
    assert_eq!(o.error, None);
    assert_eq!(o.model_threads, Some(1));
    let inferences = |name: &str| o.stats[name].get::<u64>("inferences").unwrap();
    assert!(inferences("cat") >= 1, "async: some frames ran");
    assert_eq!(
        inferences("coffee"),
        u64::from(FRAMES.div_ceil(3)),
        "every third frame"
    );
    assert_eq!(inferences("orange"), u64::from(FRAMES), "every frame");
    for (name, class) in [
        ("cat", CAT),
        ("coffee", ESPRESSO..=ESPRESSO),
        ("orange", ORANGE..=ORANGE),
    ] {
        let results = o.results.get(name).map_or(&[][..], Vec::as_slice);
        assert!(!results.is_empty(), "{name}: no results");
        for c in results {
            assert!(
                class.contains(&c.top1().class_id),
                "{name} got {}",
                c.top1().label
            );
        }
    }
}

#[test]
fn batches_do_not_wait_for_a_stream_that_ended_nor_for_elements_that_do_not_exist() {
    let _s = serial();
    // With a one-second batch-timeout, waiting for the short stream after its EOS (or for the
    // two elements batch-size=4 counts on but that do not exist) would hold each of the
    // remaining frames a second: the runs would not end within the 20 s allowed.
    let shared = "model-instance-id=ends batch-size=4 batch-timeout=1000000000";
    let description = format!(
        "{} {}",
        branch_of(3, "cat", "cat.png", shared),
        branch_of(60, "coffee", "coffee.png", shared)
    );
    let o = play(&description, |_, _, _| {}, Duration::from_secs(20));
    assert_eq!(o.error, None);
    assert_eq!(o.results.get("cat").map(Vec::len), Some(3));
    assert_eq!(
        o.results.get("coffee").map(Vec::len),
        Some(60),
        "the long stream ran to its end in time"
    );
    assert!(
        o.results["coffee"]
            .iter()
            .all(|c| c.top1().class_id == ESPRESSO)
    );
}
