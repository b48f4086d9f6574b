//! Batched jobs on the core's model thread running libtorch ([`gsttorch::model::TorchModule`]),
//! with no element: a job of
//! several images is one forward on `[count, 3, H, W]` when the model takes batches (the int8
//! MobileNetV2, `ten_classes.pt`), one forward per image when it does not (`batch1_only.pt`, from
//! `tools/make_test_models.py`, and `input_shape.pt`); either way each image gets its own
//! logits, the same as a job of one.

mod common;
use common::{CAT, ESPRESSO, ORANGE, frame_as, init, model, test_model};
use gsttorch::model::{self, Open};
use gsttorch::torchcore::batch::{self, Config, OnResult};
use gsttorch::torchcore::frame::{FrameFormat, FrameInfo, PixelLayout, Region};
use gsttorch::torchcore::preprocess::{InputSpec, Preprocessor};
use gsttorch::torchcore::settings::Engine;
use std::ops::RangeInclusive;
use std::sync::mpsc;

type Model = batch::Model<Vec<Region>>;
type Buffers = batch::Buffers<Vec<Region>>;

const SIZE: usize = 224;

fn photos() -> [(&'static str, RangeInclusive<u32>); 3] {
    [
        ("cat.png", CAT),
        ("coffee.png", ESPRESSO..=ESPRESSO),
        ("orange.jpg", ORANGE..=ORANGE),
    ]
}

fn config(max_batch: usize) -> Config {
    Config {
        thread_name: "test-model".into(),
        input_width: SIZE,
        input_height: SIZE,
        max_batch,
        batch_size: 1,
        batch_timeout: std::time::Duration::ZERO,
    }
}

/// A model thread running `path` with libtorch, as an element starts one.
fn start(path: String, config: Config, on_result: OnResult<Vec<Region>>) -> Model {
    let open = Open {
        path: path.clone().into(),
        engine: Engine::Auto,
        num_threads: 0,
    };
    Model::start(config, move || model::open(&open), |_| Ok(()), on_result)
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

fn load(path: String, max_batch: usize) -> Model {
    start(path, config(max_batch), Box::new(|_, _, _| {}))
}

/// The model's classes: N of its `[1, N]` output.
fn classes(model: &Model) -> usize {
    model.loaded().output_shapes[0][1]
}

/// The model inputs of the three photos, decoded to 224x224 RGB and prepared as the element does.
fn inputs() -> Vec<Vec<f32>> {
    init();
    let preprocessor = Preprocessor::new(
        FrameFormat::rgb(SIZE, SIZE, PixelLayout::RGB),
        &InputSpec::new(SIZE, SIZE),
    );
    photos()
        .iter()
        .map(|(photo, _)| {
            let (caps, buffer) = frame_as(
                photo,
                &format!("video/x-raw,format=RGB,width={SIZE},height={SIZE}"),
            );
            let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
            let map = buffer.map_readable().unwrap();
            let mut input = vec![0.0; preprocessor.output_len()];
            preprocessor
                .run(&[map.as_slice()], &[info.stride()[0] as usize], &mut input)
                .unwrap();
            input
        })
        .collect()
}

/// Buffers holding `images` as one job.
fn job(model: &Model, images: &[&[f32]]) -> Buffers {
    let len = model.input_len();
    let mut buffers = model.buffers();
    for (i, image) in images.iter().enumerate() {
        buffers.input[i * len..(i + 1) * len].copy_from_slice(image);
    }
    buffers.count = images.len();
    buffers
}

/// Runs `buffers` as the job `ticket`; the reply's buffers, or the error.
fn run(model: &Model, ticket: u64, buffers: Buffers) -> Result<Buffers, String> {
    model.queue(ticket, buffers, FrameInfo::default());
    let reply = model.wait(ticket).expect("a reply to a queued job");
    reply
        .result
        .map(|_| reply.buffers)
        .map_err(|e| e.to_string())
}

/// Each image's logits, `count` of them (each image's outputs are `[1, N]`).
fn per_image(model: &Model, buffers: &Buffers) -> Vec<Vec<f32>> {
    let n = classes(model);
    (0..buffers.count)
        .map(|i| {
            let t = &buffers.outputs[i].tensors[0];
            assert_eq!(t.shape, [1, n], "image {i}");
            t.data.clone()
        })
        .collect()
}

fn argmax(logits: &[f32]) -> u32 {
    gsttorch::torchcore::classify::top_k(logits, 1)[0] as u32
}

/// The model's forwards and the images they ran.
fn ran(model: &Model) -> (u64, u64) {
    let c = model.counters();
    (c.forwards, c.images)
}

/// The logits of each input run as a job of its own (tickets from `first`); checks that each is
/// one forward of one image.
fn singles(model: &Model, inputs: &[Vec<f32>], first: u64) -> Vec<Vec<f32>> {
    inputs
        .iter()
        .zip(first..)
        .map(|(input, ticket)| {
            let (forwards, images) = ran(model);
            let buffers = run(model, ticket, job(model, &[input])).unwrap();
            assert_eq!(ran(model), (forwards + 1, images + 1));
            let logits = per_image(model, &buffers).remove(0);
            model.recycle(buffers);
            logits
        })
        .collect()
}

fn assert_close(batched: &[Vec<f32>], single: &[Vec<f32>], what: &str) {
    assert_eq!(batched.len(), single.len());
    for (i, (b, s)) in batched.iter().zip(single).enumerate() {
        let worst = b
            .iter()
            .zip(s)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{what}: image {i} differs by {worst}");
    }
}

#[test]
fn int8_model_runs_three_photos_as_one_forward() {
    let inputs = inputs();
    let model = load(model(), 4);
    assert!(model.takes_batches(), "note: {:?}", model.batch_note());
    assert_eq!(model.batch_note(), None);
    assert_eq!(model.max_batch(), 4);
    assert_eq!(model.input_len(), 3 * SIZE * SIZE);
    assert_eq!(classes(&model), 1000);

    let images: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut buffers = job(&model, &images);
    assert_eq!(buffers.input.len(), 4 * model.input_len());
    let region = Region {
        index: 0,
        id: 7,
        roi_type: "thing".into(),
        x: 1,
        y: 2,
        width: 30,
        height: 40,
        od: None,
    };
    buffers.payload.push(region.clone());
    let (forwards, images_run) = ran(&model);
    let buffers = run(&model, 1, buffers).unwrap();
    assert_eq!(
        ran(&model),
        (forwards + 1, images_run + 3),
        "one forward for the batch"
    );
    assert_eq!(buffers.count, 3);
    assert_eq!(buffers.payload, [region], "the regions travel with the job");
    let batched = per_image(&model, &buffers);
    model.recycle(buffers);

    let single = singles(&model, &inputs, 2);
    for ((photo, classes), (b, s)) in photos().iter().zip(batched.iter().zip(&single)) {
        assert!(
            classes.contains(&argmax(b)),
            "{photo} in the batch: {}",
            argmax(b)
        );
        assert_eq!(argmax(b), argmax(s), "{photo}: batch and single disagree");
    }

    // Recycled buffers come back as one image and no regions.
    let again = model.buffers();
    assert_eq!((again.count, again.payload.len()), (1, 0));
}

#[test]
fn float_model_gives_a_batch_the_logits_of_single_jobs() {
    let inputs = inputs();
    let model = load(test_model("ten_classes.pt"), 4);
    assert!(model.takes_batches(), "note: {:?}", model.batch_note());
    let images: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let (forwards, images_run) = ran(&model);
    let buffers = run(&model, 1, job(&model, &images)).unwrap();
    assert_eq!(ran(&model), (forwards + 1, images_run + 3));
    let batched = per_image(&model, &buffers);
    let single = singles(&model, &inputs, 2);
    assert_close(&batched, &single, "ten_classes.pt");
    // The photos differ in colour, so do their scores: each image got its own.
    assert!(batched[0] != batched[1] && batched[1] != batched[2]);
}

#[test]
fn batch1_model_runs_a_batch_one_forward_per_image() {
    let inputs = inputs();
    let model = load(test_model("batch1_only.pt"), 4);
    assert!(!model.takes_batches());
    let note = model
        .batch_note()
        .expect("a note on why batches run per image");
    assert!(note.contains("one image per forward"), "{note}");
    assert!(note.contains("[1, 10]"), "the shape it gave: {note}");

    let images: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let (forwards, images_run) = ran(&model);
    let buffers = run(&model, 1, job(&model, &images)).unwrap();
    assert_eq!(
        ran(&model),
        (forwards + 3, images_run + 3),
        "one forward per image"
    );
    let batched = per_image(&model, &buffers);
    let single = singles(&model, &inputs, 2);
    assert_close(&batched, &single, "batch1_only.pt");
    assert!(batched[0] != batched[1] && batched[1] != batched[2]);
}

#[test]
fn a_model_that_fails_on_a_batch_runs_one_forward_per_image() {
    // input_shape.pt raises for any batch but 1; its class H % 500 tells the input's height.
    let model = load(test_model("input_shape.pt"), 2);
    assert!(!model.takes_batches());
    let note = model
        .batch_note()
        .expect("a note on why batches run per image");
    assert!(note.contains("on a batch of 2"), "{note}");
    let zeros = vec![0.0; model.input_len()];
    let buffers = run(&model, 1, job(&model, &[&zeros, &zeros])).unwrap();
    assert_eq!(buffers.count, 2);
    for logits in per_image(&model, &buffers) {
        assert_eq!(argmax(&logits), SIZE as u32);
    }
}

#[test]
fn max_batch_zero_counts_as_one() {
    let model = load(test_model("ten_classes.pt"), 0);
    assert_eq!(model.max_batch(), 1);
    assert!(!model.takes_batches());
    assert_eq!(model.batch_note(), None, "batches were not asked for");
    let buffers = model.buffers();
    assert_eq!(buffers.input.len(), model.input_len());
}

#[test]
fn jobs_of_no_images_more_than_max_batch_or_short_buffers() {
    let inputs = inputs();
    let model = load(model(), 2);
    let (forwards, images_run) = ran(&model);
    // No images: nothing runs, no error.
    let mut buffers = model.buffers();
    buffers.count = 0;
    let buffers = run(&model, 1, buffers).expect("an empty job is no error");
    assert_eq!(ran(&model), (forwards, images_run));
    model.recycle(buffers);
    // Five images with max_batch 2 (the buffers grown for them): three forwards (2, 2, 1), each
    // image its own class.
    let five = [&inputs[0], &inputs[1], &inputs[2], &inputs[1], &inputs[0]];
    let len = model.input_len();
    let mut buffers = model.buffers();
    buffers.input.resize(5 * len, 0.0);
    for (i, image) in five.iter().enumerate() {
        buffers.input[i * len..(i + 1) * len].copy_from_slice(image);
    }
    buffers.count = 5;
    let buffers = run(&model, 2, buffers).expect("five images in chunks of two");
    assert_eq!(ran(&model), (forwards + 3, images_run + 5));
    let logits = per_image(&model, &buffers);
    assert!(CAT.contains(&argmax(&logits[0])) && CAT.contains(&argmax(&logits[4])));
    assert_eq!(
        (argmax(&logits[1]), argmax(&logits[3])),
        (ESPRESSO, ESPRESSO)
    );
    model.recycle(buffers);
    // More images than the buffers hold: an error reply, nothing run.
    let (forwards, images_run) = ran(&model);
    let buffers = Buffers {
        input: vec![0.0; 2 * len],
        outputs: Vec::new(),
        count: 3,
        payload: Vec::new(),
    };
    let e = match run(&model, 3, buffers) {
        Err(e) => e,
        Ok(_) => panic!("no error for 3 images in buffers for 2"),
    };
    assert!(e.contains("for 3 images"), "{e}");
    assert_eq!(ran(&model), (forwards, images_run));
    // The model keeps working.
    let single = singles(&model, &inputs[..1], 5);
    assert!(CAT.contains(&argmax(&single[0])));
}

#[test]
fn submitted_batch_reaches_the_callback_with_its_count_and_regions() {
    let inputs = inputs();
    let (tx, rx) = mpsc::channel();
    let model = start(
        model(),
        config(4),
        Box::new(move |buffers, result, _frame| {
            let classes: Vec<u32> = (0..buffers.count)
                .map(|i| argmax(&buffers.outputs[i].tensors[0].data))
                .collect();
            let ids: Vec<i32> = buffers.payload.iter().map(|r| r.id).collect();
            let _ = tx.send((result, buffers.count, ids, classes));
        }),
    );
    let images: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut buffers = job(&model, &images);
    for id in 0..3 {
        buffers.payload.push(Region {
            index: 0,
            id,
            ..Region::default()
        });
    }
    model.submit(buffers, FrameInfo::default());
    let (result, count, ids, classes) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the callback ran");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(count, 3);
    assert_eq!(ids, [0, 1, 2]);
    for ((photo, range), class) in photos().iter().zip(&classes) {
        assert!(range.contains(class), "{photo}: {class}");
    }
}

#[test]
fn jobs_of_three_handles_run_as_one_forward_each_with_its_own_logits() {
    let inputs = inputs();
    // Three handles on one model thread (what `model-instance-id` gives three elements), one
    // image each per job; the model waits up to a second for the others to fill a forward.
    let first = start(
        model(),
        Config {
            batch_size: 3,
            batch_timeout: std::time::Duration::from_secs(1),
            ..config(1)
        },
        Box::new(|_, _, _| {}),
    );
    let shared = first.share();
    let handles: Vec<Model> = std::iter::once(first)
        .chain((0..2).map(|_| {
            let joined = shared.join(1, Box::new(|_, _, _| {}));
            joined.unwrap_or_else(|_| panic!("the model is running"))
        }))
        .collect();
    assert!(
        handles
            .iter()
            .all(|m| m.shares(&shared) && m.clients() == 3)
    );
    assert_eq!(
        handles[0].max_batch(),
        1,
        "each handle's jobs hold one image"
    );
    // Each handle's photo alone first: the handles are then streaming, which batches wait for.
    let single: Vec<Vec<f32>> = handles
        .iter()
        .zip(&inputs)
        .map(|(model, input)| singles(model, std::slice::from_ref(input), 100).remove(0))
        .collect();
    let before: Vec<(u64, u64)> = handles.iter().map(ran).collect();

    // Each handle queues from a thread of its own, as three streaming threads would.
    let batched: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let running: Vec<_> = handles
            .iter()
            .zip(&inputs)
            .map(|(model, input)| {
                scope.spawn(move || {
                    let buffers = run(model, 1, job(model, &[input])).unwrap();
                    per_image(model, &buffers).remove(0)
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    // int8 kernels may round a batch differently from one image on some CPUs: the classes.
    for ((photo, classes), (b, s)) in photos().iter().zip(batched.iter().zip(&single)) {
        assert!(classes.contains(&argmax(b)), "{photo}: {}", argmax(b));
        assert_eq!(argmax(b), argmax(s), "{photo}: batched and alone disagree");
    }
    for (i, (model, (f, n))) in handles.iter().zip(before).enumerate() {
        let (forwards, images) = ran(model);
        assert_eq!(
            (forwards - f, images - n),
            (1, 3),
            "handle {i}: one forward of three images"
        );
    }

    // The thread lives while any handle does.
    let last = handles.into_iter().last().unwrap();
    assert!(shared.join(1, Box::new(|_, _, _| {})).is_ok());
    drop(last);
    assert!(
        shared.join(1, Box::new(|_, _, _| {})).is_err(),
        "the last handle stopped it"
    );
}
