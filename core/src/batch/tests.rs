//! The model thread over a fake model: batching across clients, one forward per image for a
//! model that takes no batch, newest-wins submits, discards, end of stream, errors and panics.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

const SIZE: usize = 2;
const LEN: usize = 3 * SIZE * SIZE;

/// A model whose output for each image is `[sum of its input, images in the forward]`. Written
/// for batch 1 (`batches: false`), it answers a batch of n with one row for all of them, as a
/// model traced for batch 1 does. Records each forward's image count.
struct Sum {
    batches: bool,
    forwards: Arc<Mutex<Vec<usize>>>,
    /// Forwards (counting from 0, warm-up included) that panic.
    panic_at: Option<usize>,
    /// Once `armed` (after the load), each forward waits for a message here, if there is one.
    gate: Option<mpsc::Receiver<()>>,
    armed: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

/// Forwards at load of a model whose limit is 1 image: the check and four of warm-up.
const LOAD_FORWARDS: usize = 5;

impl Drop for Sum {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl Forward for Sum {
    fn forward(
        &mut self,
        input: &[f32],
        shape: [usize; 4],
        outputs: &mut Outputs,
    ) -> Result<(), ForwardError> {
        let n = shape[0];
        let count = {
            let mut f = self.forwards.lock().unwrap();
            f.push(n);
            f.len() - 1
        };
        if self.panic_at == Some(count) {
            panic!("forward {count}");
        }
        if let Some(gate) = &self.gate
            && self.armed.load(Ordering::SeqCst)
        {
            let _ = gate.recv();
        }
        if input.len() != n * LEN {
            return Err(ForwardError::Failed(format!(
                "{} floats for {n}",
                input.len()
            )));
        }
        outputs.packing = Packing::Tensor;
        outputs.tensors.resize_with(1, Tensor::default);
        let t = &mut outputs.tensors[0];
        t.data.clear();
        if self.batches {
            t.shape = vec![n, 2];
            for image in input.chunks(LEN) {
                t.data.extend([image.iter().sum(), n as f32]);
            }
        } else {
            t.shape = vec![1, 2];
            t.data.extend([input.iter().sum(), n as f32]);
        }
        Ok(())
    }
}

struct Fake {
    forwards: Arc<Mutex<Vec<usize>>>,
    dropped: Arc<AtomicBool>,
}

/// A gate the model's forwards wait at once the model is loaded: each message lets one through.
fn gate() -> (mpsc::Sender<()>, Gate) {
    let (open, gate) = mpsc::channel();
    (open, Gate(gate))
}

struct Gate(mpsc::Receiver<()>);

fn config(max_batch: usize, batch_size: usize, timeout: Duration) -> Config {
    Config {
        thread_name: "test-model".into(),
        input_width: SIZE,
        input_height: SIZE,
        max_batch,
        batch_size,
        batch_timeout: timeout,
    }
}

fn start(
    config: Config,
    batches: bool,
    panic_at: Option<usize>,
    on_result: OnResult<u32>,
) -> (Result<Model<u32>, String>, Fake) {
    start_gated(config, batches, panic_at, None, on_result)
}

fn start_gated(
    config: Config,
    batches: bool,
    panic_at: Option<usize>,
    gate: Option<Gate>,
    on_result: OnResult<u32>,
) -> (Result<Model<u32>, String>, Fake) {
    let armed = Arc::new(AtomicBool::new(false));
    let arm = armed.clone();
    let forwards = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(AtomicBool::new(false));
    let (f, d) = (forwards.clone(), dropped.clone());
    let model = Model::start(
        config,
        move || {
            let sum = Sum {
                batches,
                forwards: f,
                panic_at,
                gate: gate.map(|g| g.0),
                armed,
                dropped: d,
            };
            Ok((sum, Some("made it".to_string())))
        },
        |outputs| match outputs.shapes().as_slice() {
            [s] if s == &[1, 2] => Ok(()),
            other => Err(format!("shapes {other:?}")),
        },
        on_result,
    );
    arm.store(true, Ordering::SeqCst);
    (model, Fake { forwards, dropped })
}

fn none() -> OnResult<u32> {
    Box::new(|_, _, _| {})
}

/// A job of `values.len()` images, image i all `values[i]`, tagged `tag`.
fn job(model: &Model<u32>, values: &[f32], tag: u32) -> Buffers<u32> {
    let mut b = model.buffers();
    b.input.resize(values.len() * LEN, 0.0);
    for (chunk, v) in b.input.chunks_mut(LEN).zip(values) {
        chunk.fill(*v);
    }
    b.count = values.len();
    b.payload = tag;
    b
}

/// The first output value of each of a reply's images: the sum of that image's input.
fn sums(reply: &Reply<u32>) -> Vec<f32> {
    reply.buffers.outputs[..reply.buffers.count]
        .iter()
        .map(|o| o.tensors[0].data[0])
        .collect()
}

#[test]
fn a_queued_job_comes_back_with_its_own_outputs() {
    let (model, fake) = start(config(1, 1, Duration::ZERO), true, None, none());
    let model = model.unwrap();
    assert_eq!(model.warning(), Some("made it"));
    assert_eq!(model.loaded().output_shapes, vec![vec![1, 2]]);
    assert_eq!(model.input_len(), LEN);
    let warm_up = fake.forwards.lock().unwrap().len();
    for (ticket, v) in [(0, 1.0), (1, 2.0)] {
        model.queue(ticket, job(&model, &[v], 7), FrameInfo::default());
        let reply = model.wait(ticket).unwrap();
        assert_eq!(reply.result.as_ref().map(|_| ()), Ok(()));
        assert_eq!(sums(&reply), vec![v * LEN as f32]);
        assert_eq!(reply.buffers.outputs[0].tensors[0].shape, vec![1, 2]);
        assert_eq!(reply.buffers.payload, 7);
        model.recycle(reply.buffers);
    }
    assert_eq!(fake.forwards.lock().unwrap().len(), warm_up + 2);
    let c = model.counters();
    assert_eq!((c.forwards, c.images, c.replaced), (2, 2, 0));
    assert!(model.wait(5).is_none(), "no such job: nothing to wait for");
}

#[test]
fn jobs_of_three_clients_run_as_one_forward_each_with_its_own_outputs() {
    // A fourth client's job holds the model at the gate while the three queue theirs: then one
    // forward takes all three.
    let (open, gate) = gate();
    let (blocker, fake) = start_gated(config(1, 3, Duration::ZERO), true, None, Some(gate), none());
    let blocker = blocker.unwrap();
    assert!(blocker.takes_batches(), "{:?}", blocker.batch_note());
    let shared = blocker.share();
    let models: Vec<Model<u32>> = (0..3)
        .map(|_| shared.join(1, none()).ok().unwrap())
        .collect();
    assert_eq!(blocker.clients(), 4);
    let warm_up = fake.forwards.lock().unwrap().len();
    blocker.queue(0, job(&blocker, &[9.0], 9), FrameInfo::default());
    while fake.forwards.lock().unwrap().len() == warm_up {
        std::thread::yield_now(); // until the model holds the blocker's job
    }
    for (i, m) in models.iter().enumerate() {
        m.queue(0, job(m, &[i as f32 + 1.0], i as u32), FrameInfo::default());
    }
    open.send(()).unwrap();
    open.send(()).unwrap();
    for (i, m) in models.iter().enumerate() {
        let reply = m.wait(0).unwrap();
        assert_eq!(sums(&reply), vec![(i as f32 + 1.0) * LEN as f32]);
        assert_eq!(reply.buffers.payload, i as u32);
        // Each image's outputs are as if it ran alone: [1, 2], and the forward held 3.
        let t = &reply.buffers.outputs[0].tensors[0];
        assert_eq!((t.shape.clone(), t.data[1]), (vec![1, 2], 3.0));
        assert_eq!(m.counters().forwards, 1);
        assert_eq!(m.counters().images, 3);
    }
    assert_eq!(fake.forwards.lock().unwrap()[warm_up..], [1, 3]);
    assert_eq!(sums(&blocker.wait(0).unwrap()), vec![9.0 * LEN as f32]);
}

#[test]
fn a_model_for_one_image_runs_one_forward_per_image() {
    let (model, fake) = start(config(4, 1, Duration::ZERO), false, None, none());
    let model = model.unwrap();
    assert!(!model.takes_batches());
    let note = model.batch_note().unwrap_or_default();
    assert!(note.contains("one image per forward"), "{note}");
    let warm_up = fake.forwards.lock().unwrap().len();
    model.queue(0, job(&model, &[1.0, 2.0, 3.0], 0), FrameInfo::default());
    let reply = model.wait(0).unwrap();
    assert_eq!(sums(&reply), vec![12.0, 24.0, 36.0]);
    assert_eq!(fake.forwards.lock().unwrap()[warm_up..], [1, 1, 1]);
    assert_eq!(model.counters().forwards, 3);
}

#[test]
fn a_job_larger_than_the_limit_takes_several_forwards() {
    let (model, fake) = start(config(2, 1, Duration::ZERO), true, None, none());
    let model = model.unwrap();
    let warm_up = fake.forwards.lock().unwrap().len();
    model.queue(
        0,
        job(&model, &[1.0, 2.0, 3.0, 4.0, 5.0], 0),
        FrameInfo::default(),
    );
    let reply = model.wait(0).unwrap();
    assert_eq!(sums(&reply), vec![12.0, 24.0, 36.0, 48.0, 60.0]);
    assert_eq!(fake.forwards.lock().unwrap()[warm_up..], [2, 2, 1]);
}

#[test]
fn a_failed_check_or_make_is_the_start_error() {
    let model = Model::<u32>::start(
        config(1, 1, Duration::ZERO),
        || Err::<(Sum, _), _>("no such file".to_string()),
        |_| Ok(()),
        none(),
    );
    assert_eq!(model.err(), Some("no such file".to_string()));
    let forwards = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(AtomicBool::new(false));
    let model = Model::<u32>::start(
        config(1, 1, Duration::ZERO),
        move || {
            let sum = Sum {
                batches: true,
                forwards,
                panic_at: None,
                gate: None,
                armed: Arc::new(AtomicBool::new(false)),
                dropped,
            };
            Ok((sum, None))
        },
        |o| Err(format!("not a classifier: {:?}", o.shapes())),
        none(),
    );
    assert_eq!(model.err(), Some("not a classifier: [[1, 2]]".to_string()));
}

#[test]
fn a_panic_is_an_error_not_a_hang() {
    // Forward 0 is the check, 1..=4 the warm-up: the sixth forward is the first job's.
    let (model, _fake) = start(
        config(1, 1, Duration::ZERO),
        true,
        Some(LOAD_FORWARDS),
        none(),
    );
    let model = model.unwrap();
    model.queue(0, job(&model, &[1.0], 0), FrameInfo::default());
    let reply = model.wait(0).unwrap();
    assert_eq!(reply.result, Err(ForwardError::Panicked));
    // The thread goes on.
    model.queue(1, job(&model, &[1.0], 0), FrameInfo::default());
    assert!(model.wait(1).unwrap().result.is_ok());
    // A panic while loading is a start error.
    let (model, _fake) = start(config(1, 1, Duration::ZERO), true, Some(0), none());
    assert!(model.is_err());
}

#[test]
fn submitted_jobs_go_to_the_handler_and_the_newest_wins() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let on_result: OnResult<u32> = Box::new(move |buffers, result, frame| {
        assert!(result.is_ok());
        s.lock().unwrap().push((buffers.payload, frame.number));
    });
    let (model, _fake) = start(config(1, 1, Duration::ZERO), true, None, on_result);
    let model = model.unwrap();
    for n in 0..20 {
        let frame = FrameInfo {
            number: n,
            ..FrameInfo::default()
        };
        model.submit(job(&model, &[1.0], n as u32), frame);
    }
    assert!(model.wait_idle(Duration::from_secs(10)));
    let seen = seen.lock().unwrap().clone();
    let replaced = model.counters().replaced;
    assert_eq!(seen.len() as u64 + replaced, 20, "{seen:?}");
    assert_eq!(seen.last(), Some(&(19, 19)), "the newest always runs");
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "in order: {seen:?}"
    );
}

#[test]
fn a_discarded_job_has_no_reply() {
    // The model runs job 0 (held at the gate) while job 1 waits; job 1 is discarded.
    let (open, gate) = gate();
    let (model, _fake) = start_gated(config(1, 1, Duration::ZERO), true, None, Some(gate), none());
    let model = model.unwrap();
    model.queue(0, job(&model, &[1.0], 0), FrameInfo::default());
    model.queue(1, job(&model, &[2.0], 0), FrameInfo::default());
    model.discard_pending();
    assert!(
        model.wait(1).is_none(),
        "a discarded job: nothing to wait for"
    );
    open.send(()).unwrap();
    assert_eq!(sums(&model.wait(0).unwrap()), vec![12.0]);
    assert!(model.wait_idle(Duration::from_secs(10)));
}

#[test]
fn batches_do_not_wait_for_a_stream_that_ended() {
    let (first, _fake) = start(config(1, 2, Duration::from_secs(60)), true, None, none());
    let first = first.unwrap();
    let second = first.share().join(1, none()).ok().unwrap();
    // The second streams (the first has sent nothing yet: its job runs alone), then ends.
    second.queue(0, job(&second, &[1.0], 0), FrameInfo::default());
    assert!(second.wait(0).is_some());
    second.end_of_stream();
    // With a batch-timeout of a minute, the first's job runs at once: the ended stream is not
    // waited for (without end_of_stream the job would wait the whole minute).
    let t0 = Instant::now();
    first.queue(0, job(&first, &[1.0], 0), FrameInfo::default());
    assert!(first.wait(0).is_some());
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn the_thread_ends_with_the_last_handle() {
    let (first, fake) = start(config(1, 1, Duration::ZERO), true, None, none());
    let first = first.unwrap();
    let shared = first.share();
    let second = shared.join(1, none()).ok().unwrap();
    assert!(first.shares(&shared) && second.shares(&shared));
    drop(first);
    assert!(shared.alive() && !fake.dropped.load(Ordering::SeqCst));
    drop(second);
    // Dropping the last handle joined the thread, which dropped the model.
    assert!(fake.dropped.load(Ordering::SeqCst));
    assert!(!shared.alive());
    assert!(shared.join(1, none()).is_err());
}
