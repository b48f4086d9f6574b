//! The model thread's own work: make and check the model, warm it up, then take the clients'
//! jobs and run them as few forwards as the limit allows.

use super::*;

/// Where a job's images are and how the model runs them.
struct Geometry {
    /// Floats of one image's input.
    len: usize,
    height: usize,
    width: usize,
    takes_batches: bool,
    /// The most images per forward.
    limit: usize,
}

/// One job taken for a forward, and whose it is.
pub(super) struct Taken<P> {
    pub(super) client: ClientId,
    job: Job<P>,
    on_result: Arc<OnResult<P>>,
}

/// Takes pending jobs, oldest first, while the images fit in `limit` (the first always goes:
/// a job of more images runs alone, in several forwards). Returns the images taken.
fn take_jobs<P>(
    hub: &mut Hub<P>,
    batch: &mut Vec<Taken<P>>,
    mut images: usize,
    limit: usize,
) -> usize {
    while let Some(id) = hub.oldest_pending() {
        let Some(c) = hub.client(id) else { break };
        let count = c.pending.as_ref().map_or(0, |j| j.buffers.count);
        if !batch.is_empty() && images + count > limit {
            break;
        }
        let Some(job) = c.pending.take() else { break };
        c.running += 1;
        images += count;
        batch.push(Taken {
            client: id,
            job,
            on_result: c.on_result.clone(),
        });
    }
    images
}

/// A job's part of a batch: its share of the time, the forwards its images were in and the
/// images those forwards ran.
type Share = (Duration, u64, u64);

/// Scratch space of the model thread: several jobs' images copied together for one forward, and
/// a batched forward's outputs before they are split per image.
#[derive(Default)]
struct Stage {
    input: Vec<f32>,
    outputs: Outputs,
}

/// Runs the jobs taken: their images in order, as forwards of at most `g.limit` images when the
/// model takes batches, else one per image. A forward whose images are all one job's reads that
/// job's input in place; a forward of one image writes that image's outputs in place. Returns the
/// result and per job its share.
fn run_batch<P, F: Forward>(
    model: &mut F,
    batch: &mut [Taken<P>],
    g: &Geometry,
    stage: &mut Stage,
) -> (JobResult, Vec<Share>) {
    let start = Instant::now();
    let len = g.len;
    let counts: Vec<usize> = batch.iter().map(|t| t.job.buffers.count).collect();
    let total: usize = counts.iter().sum();
    let mut forwards = Vec::new();
    let result = if let Some(t) = batch
        .iter()
        .find(|t| t.job.buffers.input.len() < t.job.buffers.count * len)
    {
        Err(ForwardError::Failed(format!(
            "buffers of {} inputs for {} images of {len}",
            t.job.buffers.input.len(),
            t.job.buffers.count,
        )))
    } else {
        for t in batch.iter_mut() {
            let b = &mut t.job.buffers;
            b.outputs
                .resize_with(b.count.max(b.outputs.len()), Outputs::default);
        }
        // A panic must not leave a `wait` blocked forever: turn it into an error.
        catch_unwind(AssertUnwindSafe(|| {
            run_forwards(model, batch, &counts, g, stage, &mut forwards)
        }))
        .unwrap_or(Err(ForwardError::Panicked))
        .map(|()| start.elapsed())
    };
    // Each job's share: its images' part of the time; the forwards that held any of its images
    // and the images those ran.
    let elapsed = start.elapsed();
    let mut shares = Vec::with_capacity(batch.len());
    let mut at = 0;
    for &k in &counts {
        let (mut ran, mut images, mut first) = (0u64, 0u64, 0usize);
        for &size in &forwards {
            if first < at + k && at < first + size {
                ran += 1;
                images += size as u64;
            }
            first += size;
        }
        let share = if total == 0 {
            elapsed
        } else {
            elapsed.mul_f64(k as f64 / total as f64)
        };
        shares.push((share, ran, images));
        at += k;
    }
    (result, shares)
}

/// The forwards of [`run_batch`]; `forwards` gets the number of images of each one started.
fn run_forwards<P, F: Forward>(
    model: &mut F,
    batch: &mut [Taken<P>],
    counts: &[usize],
    g: &Geometry,
    stage: &mut Stage,
    forwards: &mut Vec<usize>,
) -> Result<(), ForwardError> {
    let len = g.len;
    let step = if g.takes_batches { g.limit } else { 1 };
    let total: usize = counts.iter().sum();
    // (job, image) of every image, in order.
    let at = |mut i: usize| {
        for (j, &k) in counts.iter().enumerate() {
            if i < k {
                return (j, i);
            }
            i -= k;
        }
        (counts.len(), 0)
    };
    let mut first = 0;
    while first < total {
        let k = (total - first).min(step);
        forwards.push(k);
        let shape = [k, 3, g.height, g.width];
        let (j0, i0) = at(first);
        let (j1, _) = at(first + k - 1);
        let fail = |e: ForwardError| match e {
            ForwardError::Failed(text) if total > 1 && k == 1 => {
                ForwardError::Failed(format!("image {first}: {text}"))
            }
            e => e,
        };
        if k == 1 {
            let b = &mut batch[j0].job.buffers;
            let (input, outputs) = (&b.input[i0 * len..(i0 + 1) * len], &mut b.outputs[i0]);
            model.forward(input, shape, outputs).map_err(fail)?;
        } else {
            let input: &[f32] = if j0 == j1 {
                &batch[j0].job.buffers.input[i0 * len..(i0 + k) * len]
            } else {
                stage.input.clear();
                for n in first..first + k {
                    let (j, i) = at(n);
                    stage
                        .input
                        .extend_from_slice(&batch[j].job.buffers.input[i * len..(i + 1) * len]);
                }
                &stage.input
            };
            model
                .forward(input, shape, &mut stage.outputs)
                .map_err(fail)?;
            // Split per image, job by job.
            let mut n = first;
            while n < first + k {
                let (j, i) = at(n);
                let here = (counts[j] - i).min(first + k - n);
                let outputs = &mut batch[j].job.buffers.outputs[i..i + here];
                split_range(&stage.outputs, k, n - first, outputs)?;
                n += here;
            }
        }
        first += k;
    }
    Ok(())
}

/// Splits a batched forward's outputs (`k` images, every tensor's first dimension `k`) into what
/// each image alone would have given (`[1, …]` and its rows), for the images
/// `from..from + images.len()` of the forward.
fn split_range(
    outputs: &Outputs,
    k: usize,
    from: usize,
    images: &mut [Outputs],
) -> Result<(), ForwardError> {
    for t in &outputs.tensors {
        if t.shape.first() != Some(&k) || t.data.len() % k != 0 {
            return Err(ForwardError::Failed(format!(
                "model returned shape {:?} for a batch of {k}",
                t.shape
            )));
        }
    }
    for (n, image) in images.iter_mut().enumerate() {
        let i = from + n;
        image.packing = outputs.packing;
        image
            .tensors
            .resize_with(outputs.tensors.len(), Tensor::default);
        for (out, t) in image.tensors.iter_mut().zip(&outputs.tensors) {
            let rows = t.data.len() / k;
            out.shape.clear();
            out.shape.push(1);
            out.shape.extend_from_slice(&t.shape[1..]);
            out.data.clear();
            out.data
                .extend_from_slice(&t.data[i * rows..(i + 1) * rows]);
        }
    }
    Ok(())
}

/// Why the model does not take a batch: None if a forward on `[2, 3, H, W]` zeros gives every
/// tensor of batch 1's shape with a first dimension of 2; else the error, or the shapes it gave
/// instead (a model traced or written for batch 1).
fn batch_refusal<F: Forward>(model: &mut F, g: &Geometry, one: &[Vec<usize>]) -> Option<String> {
    let input = vec![0.0f32; 2 * g.len];
    let mut outputs = Outputs::default();
    if let Err(e) = model.forward(&input, [2, 3, g.height, g.width], &mut outputs) {
        return Some(e.to_string());
    }
    let expected: Vec<Vec<usize>> = one
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(d) = s.first_mut() {
                *d = 2;
            }
            s
        })
        .collect();
    let got = outputs.shapes();
    let batch_1 = one.iter().all(|s| s.first() == Some(&1));
    (!batch_1 || got != expected).then(|| format!("output shapes {got:?}, not {expected:?}"))
}

fn batch_note(batch: usize, reason: &str) -> String {
    format!(
        "the model takes one image per forward (on a batch of {batch}: {reason}); batches run \
         one forward per image"
    )
}

/// Makes the model, checks it, warms it up, reports through `ready` (false: nobody is waiting
/// any more), then serves jobs until the last handle is gone.
pub(super) fn model_thread<P, F, M, C>(
    config: Config,
    make: M,
    check: C,
    ready: impl FnOnce(Result<Loaded, String>) -> bool,
    shared: Arc<Shared<P>>,
) where
    F: Forward,
    M: FnOnce() -> Result<Made<F>, String>,
    C: FnOnce(&Outputs) -> Result<(), String>,
{
    let (mut model, warning) = match make() {
        Ok(made) => made,
        Err(e) => {
            ready(Err(e));
            return;
        }
    };
    let limit = config.forward_limit();
    let (height, width) = (config.input_height, config.input_width);
    let len = config.input_len();
    let geometry = |takes_batches| Geometry {
        len,
        height,
        width,
        takes_batches,
        limit,
    };
    // The first forward: the model's outputs for one image, which the caller checks.
    let input = vec![0.0f32; limit * len];
    let mut outputs = Outputs::default();
    if let Err(e) = model.forward(&input[..len], [1, 3, height, width], &mut outputs) {
        ready(Err(format!(
            "running it on a 1x3x{height}x{width} image (property 'input-size') failed: {e}"
        )));
        return;
    }
    if let Err(e) = check(&outputs) {
        ready(Err(e));
        return;
    }
    let output_shapes = outputs.shapes();
    let mut batch_note = (limit > 1)
        .then(|| batch_refusal(&mut model, &geometry(true), &output_shapes))
        .flatten()
        .map(|reason| self::batch_note(2, &reason));
    let mut takes_batches = limit > 1 && batch_note.is_none();
    // Warm-up: the first forwards allocate and pick kernels; do them now, not on the first
    // frame. The slowest after the first is the estimate of the model's time.
    let mut estimate = Duration::ZERO;
    for i in 0..4 {
        let start = Instant::now();
        if let Err(e) = model.forward(&input[..len], [1, 3, height, width], &mut outputs) {
            ready(Err(format!("warm-up inference failed: {e}")));
            return;
        }
        if i > 0 {
            estimate = estimate.max(start.elapsed());
        }
    }
    // A full batch too (its kernels and buffers differ from batch 1's); a model that takes a
    // batch of 2 but fails on a full one runs one forward per image.
    if takes_batches {
        for _ in 0..2 {
            if let Err(e) = model.forward(&input, [limit, 3, height, width], &mut outputs) {
                batch_note = Some(self::batch_note(limit, &e.to_string()));
                takes_batches = false;
                break;
            }
        }
    }
    drop(input);
    let loaded = Loaded {
        output_shapes,
        warm_up_time: estimate,
        warning,
        takes_batches,
        batch_note,
    };
    if !ready(Ok(loaded)) {
        return;
    }
    serve(&mut model, &config, &geometry(takes_batches), &shared);
}

/// Runs the clients' jobs until the last handle is gone.
fn serve<P, F: Forward>(model: &mut F, config: &Config, geometry: &Geometry, shared: &Shared<P>) {
    let limit = geometry.limit;
    let mut stage = Stage::default();
    let mut batch: Vec<Taken<P>> = Vec::new();
    let mut hub = shared.lock();
    loop {
        // The next jobs are taken in the same lock as the previous replies were handed over.
        while !hub.stop && hub.oldest_pending().is_none() {
            hub = shared.wait(hub);
        }
        if hub.stop {
            return;
        }
        let mut images = take_jobs(&mut hub, &mut batch, 0, limit);
        // Wait a little for other clients' jobs to fill the forward: only for clients that are
        // streaming and have no job in it yet (not for one whose stream ended, nor for more
        // clients than there are).
        if !config.batch_timeout.is_zero() && images < limit {
            let deadline = Instant::now() + config.batch_timeout;
            while images < limit && !hub.stop && hub.missing(&batch) && Instant::now() < deadline {
                hub = shared.wait_until(hub, deadline);
                images = take_jobs(&mut hub, &mut batch, images, limit);
            }
        }
        // Wake the clients waiting to queue (their pending slot is free) only after the lock is
        // free, so that they do not wake into a held lock.
        drop(hub);
        shared.cond.notify_all();
        let (result, shares) = run_batch(model, &mut batch, geometry, &mut stage);
        // Async results go to their handlers, outside the lock.
        for (t, (share, _, _)) in batch.iter_mut().zip(&shares) {
            if t.job.ticket.is_none() {
                let result = result.clone().map(|_| *share);
                let (buffers, frame) = (&mut t.job.buffers, t.job.frame);
                let on_result = &t.on_result;
                let _ = catch_unwind(AssertUnwindSafe(|| on_result(buffers, result, frame)));
            }
        }
        hub = shared.lock();
        for (t, (share, ran, ran_images)) in batch.drain(..).zip(shares) {
            // A client that left meanwhile: its job is dropped here.
            let Some(c) = hub.client(t.client) else {
                continue;
            };
            c.running = c.running.saturating_sub(1);
            forget_ticket(c, t.job.ticket);
            c.forwards += ran;
            c.images += ran_images;
            match t.job.ticket {
                Some(ticket) => c.done.push_back((
                    ticket,
                    Reply {
                        buffers: t.job.buffers,
                        result: result.clone().map(|_| share),
                        frame: t.job.frame,
                    },
                )),
                None => c.free.push(t.job.buffers),
            }
        }
        if hub.oldest_pending().is_none() {
            // Nothing to take: wake the waiting clients now (the loop then waits for work).
            shared.cond.notify_all();
        }
    }
}
