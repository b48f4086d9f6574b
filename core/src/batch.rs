//! The model thread: one thread that makes the model (through the [`Forward`] it is given a
//! maker for), warms it up and runs every forward for the model's whole life, serving one or
//! many clients ([`Model`] handles) and batching their jobs.
//!
//! Why a thread of its own: a model whose forwards run on another thread than the one that
//! loaded it can be several times slower (libtorch's OpenMP pools are per calling thread), so the
//! streaming threads only hand over prepared inputs and collect outputs.
//!
//! A job holds up to `max_batch` images (the regions of one frame, or one frame). The thread takes
//! pending jobs of all clients, oldest first, while their images fit in the forward limit (and
//! waits up to `batch_timeout` for streaming clients with no job in the batch yet), then runs them
//! as forwards of `[k, 3, H, W]` when the model takes batches (checked at load on a batch of 2),
//! else one forward per image. Each image's outputs are what a forward of that image alone gives:
//! a batched forward's tensors are split along their first dimension.
//!
//! Lock order: one `Hub` lock per model thread, taken last: nothing else is locked while it is
//! held, and no callback runs under it.

pub use crate::forward::{Forward, ForwardError, Outputs, Packing, Tensor};
use crate::frame::FrameInfo;
use run::{Taken, model_thread};
use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Names one [`Model::queue`]d job, so that its reply is collected by name: a reply can never be
/// taken for another job's, and waiting for a job that was discarded returns at once.
pub type Ticket = u64;

/// What a model thread runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The thread's name.
    pub thread_name: String,
    pub input_width: usize,
    pub input_height: usize,
    /// The most images one job of the first client holds (0 counts as 1).
    pub max_batch: usize,
    /// The most images one forward runs across the jobs of all clients (0 counts as 1). A
    /// forward never holds more than the larger of this and `max_batch`.
    pub batch_size: usize,
    /// How long the thread waits for the jobs of other clients to fill a forward up to
    /// `batch_size` images; zero takes what is queued.
    pub batch_timeout: Duration,
}

impl Config {
    /// The most images one forward runs.
    fn forward_limit(&self) -> usize {
        self.max_batch.max(self.batch_size).max(1)
    }

    fn input_len(&self) -> usize {
        3 * self.input_width * self.input_height
    }
}

/// What a maker gives besides the model: a warning to pass on (it loaded, but not quite as
/// asked).
pub type Made<F> = (F, Option<String>);

/// One job's buffers; they travel to the model thread and back so that nothing is allocated per
/// frame. The job runs the first `count` images of `input`; image i's outputs are `outputs[i]`.
pub struct Buffers<P> {
    /// `count` × 3 × input_height × input_width normalised floats (NCHW): image i is
    /// `input[i * len..(i + 1) * len]`, len = [`Model::input_len`].
    pub input: Vec<f32>,
    /// Per image, what a forward of it alone returns (sized by the model thread).
    pub outputs: Vec<Outputs>,
    /// The images filled ([`Model::buffers`] hands out 1). More than the forward limit run in
    /// several forwards; 0 runs nothing.
    pub count: usize,
    /// What the client needs to read the outputs (the regions the images came from, say); the
    /// model thread only carries it.
    pub payload: P,
}

/// What a job gives back: the model's time for its images, or why not.
pub type JobResult = Result<Duration, ForwardError>;

/// Called on the model thread with each finished [`Model::submit`]ted job: its buffers, the
/// job's share of the model time (its images' share of the forwards it took part in) or the
/// error, and the frame the input came from.
pub type OnResult<P> = Box<dyn Fn(&mut Buffers<P>, JobResult, FrameInfo) + Send + Sync>;

/// A client's place among the model's clients (its key in [`Hub::clients`]).
type ClientId = u64;

struct Job<P> {
    buffers: Buffers<P>,
    frame: FrameInfo,
    /// Some: [`Model::wait`] collects the reply; None: the result goes to the `OnResult`.
    ticket: Option<Ticket>,
}

/// A queued job's buffers back, with the model's time or the error, and the frame it ran on.
pub struct Reply<P> {
    pub buffers: Buffers<P>,
    pub result: JobResult,
    pub frame: FrameInfo,
}

/// What the model thread reports once the model is made and warmed up.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The shapes a forward of one image returned.
    pub output_shapes: Vec<Vec<usize>>,
    /// The warm-up estimate (batch 1): the slowest warm-up forward after the first.
    pub warm_up_time: Duration,
    /// The maker's warning.
    pub warning: Option<String>,
    /// Jobs of several images run as one forward.
    pub takes_batches: bool,
    /// Why not, when batches were asked for.
    pub batch_note: Option<String>,
}

/// One client's side of the model: what its streaming thread and the model thread share.
struct Client<P> {
    /// The next job; a newer submitted job replaces it (newest wins, nothing queues).
    pending: Option<Job<P>>,
    /// When `pending` was handed over (the model thread takes the oldest first).
    since: u64,
    /// Replies to [`Model::queue`]d jobs, oldest first.
    done: VecDeque<(Ticket, Reply<P>)>,
    /// Jobs of this client the model thread is running, and the tickets of the queued ones.
    running: usize,
    tickets: Vec<Ticket>,
    /// Buffers back from async jobs, for [`Model::buffers`].
    free: Vec<Buffers<P>>,
    /// Jobs replaced before the model got to them.
    replaced: u64,
    /// Model forwards this client's images took part in, and the images those forwards ran (for
    /// the mean batch size).
    forwards: u64,
    images: u64,
    /// Sends jobs: from its first job until [`Model::end_of_stream`]. A batch waits (up to
    /// `batch_timeout`) only for clients that are streaming and have no job in it.
    streaming: bool,
    on_result: Arc<OnResult<P>>,
}

/// The model's clients, and whether the model thread should stop.
struct Hub<P> {
    clients: BTreeMap<ClientId, Client<P>>,
    next_id: ClientId,
    /// Counts hand-overs, for `Client::since`.
    handed_over: u64,
    stop: bool,
}

impl<P> Hub<P> {
    fn client(&mut self, id: ClientId) -> Option<&mut Client<P>> {
        self.clients.get_mut(&id)
    }

    /// The client whose pending job came first, if any.
    fn oldest_pending(&self) -> Option<ClientId> {
        self.clients
            .iter()
            .filter_map(|(id, c)| c.pending.as_ref().map(|_| (c.since, *id)))
            .min()
            .map(|(_, id)| id)
    }

    /// Whether a streaming client has no job in `batch` yet.
    fn missing(&self, batch: &[Taken<P>]) -> bool {
        self.clients
            .iter()
            .any(|(id, c)| c.streaming && !batch.iter().any(|t| t.client == *id))
    }
}

struct Shared<P> {
    hub: Mutex<Hub<P>>,
    cond: Condvar,
}

impl<P> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, Hub<P>> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Hub<P>>) -> MutexGuard<'a, Hub<P>> {
        self.cond.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a, Hub<P>>,
        deadline: Instant,
    ) -> MutexGuard<'a, Hub<P>> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.cond
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

/// The model thread and what it reported at load; shared by every [`Model`] handle on it.
/// Dropping the last handle stops and joins the thread.
struct Runner<P> {
    shared: Arc<Shared<P>>,
    thread: Option<thread::JoinHandle<()>>,
    config: Config,
    loaded: Loaded,
}

impl<P> Drop for Runner<P> {
    fn drop(&mut self) {
        {
            let mut hub = self.shared.lock();
            hub.stop = true;
            self.shared.cond.notify_all();
        }
        if let Some(t) = self.thread.take() {
            // The last handle can be dropped by a client's own async result handler, on the
            // model thread: that thread ends by itself once it sees `stop`.
            if t.thread().id() != thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// A client's handle on a model thread: its own jobs, replies, buffers and counters. Several
/// handles can share one model thread ([`Model::share`], [`SharedModel::join`]): one load, one
/// copy of the weights, their jobs batched together. Dropping the last handle stops and joins
/// the thread.
pub struct Model<P> {
    runner: Arc<Runner<P>>,
    id: ClientId,
    max_batch: usize,
}

/// A weak reference to a model thread: [`SharedModel::join`] gives a new [`Model`] handle while
/// some handle still holds the thread, none once the last is gone.
pub struct SharedModel<P>(Weak<Runner<P>>);

impl<P> Clone for SharedModel<P> {
    fn clone(&self) -> Self {
        SharedModel(self.0.clone())
    }
}

impl<P: Default + Send + 'static> Model<P> {
    /// Starts the model thread, which calls `make` for the model, runs `check` on what a forward
    /// of one zero image returns (its error: the model is not what the caller takes), warms the
    /// model up and reports; returns once it has. Errors say what went wrong (the caller names
    /// the property and path). `on_result` receives the results of this handle's
    /// [`Model::submit`].
    pub fn start<F, M, C>(
        mut config: Config,
        make: M,
        check: C,
        on_result: OnResult<P>,
    ) -> Result<Model<P>, String>
    where
        F: Forward,
        M: FnOnce() -> Result<Made<F>, String> + Send + 'static,
        C: FnOnce(&Outputs) -> Result<(), String> + Send + 'static,
    {
        config.max_batch = config.max_batch.max(1);
        config.batch_size = config.batch_size.max(1);
        let max_batch = config.max_batch;
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Loaded, String>>(1);
        let shared = Arc::new(Shared {
            hub: Mutex::new(Hub {
                clients: BTreeMap::new(),
                next_id: 0,
                handed_over: 0,
                stop: false,
            }),
            cond: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread_config = config.clone();
        let thread = thread::Builder::new()
            .name(config.thread_name.clone())
            .spawn(move || {
                let ready = |r| ready_tx.send(r).is_ok();
                // A panicking maker or model must not leave `start` waiting forever.
                let run = AssertUnwindSafe(|| {
                    model_thread(thread_config, make, check, ready, thread_shared)
                });
                let _ = catch_unwind(run);
            })
            .map_err(|e| format!("could not start the model thread: {e}"))?;
        let loaded = match ready_rx.recv() {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err("the model thread stopped while loading the model".into());
            }
        };
        let runner = Arc::new(Runner {
            shared,
            thread: Some(thread),
            config,
            loaded,
        });
        Ok(Model::client(runner, max_batch, on_result))
    }
}

impl<P> Model<P> {
    /// A new client of the running model thread, with its own jobs of up to `max_batch` images.
    fn client(runner: Arc<Runner<P>>, max_batch: usize, on_result: OnResult<P>) -> Model<P> {
        let id = {
            let mut hub = runner.shared.lock();
            let id = hub.next_id;
            hub.next_id += 1;
            hub.clients.insert(
                id,
                Client {
                    pending: None,
                    since: 0,
                    done: VecDeque::new(),
                    running: 0,
                    tickets: Vec::new(),
                    free: Vec::new(),
                    replaced: 0,
                    forwards: 0,
                    images: 0,
                    streaming: false,
                    on_result: Arc::new(on_result),
                },
            );
            id
        };
        Model {
            runner,
            id,
            max_batch: max_batch.max(1),
        }
    }

    /// A weak reference to this handle's model thread, for others to [`SharedModel::join`].
    pub fn share(&self) -> SharedModel<P> {
        SharedModel(Arc::downgrade(&self.runner))
    }

    /// Whether `shared` names this handle's model thread.
    pub fn shares(&self, shared: &SharedModel<P>) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.runner), shared.0.as_ptr())
    }

    /// What the model thread reported at load.
    pub fn loaded(&self) -> &Loaded {
        &self.runner.loaded
    }

    /// Set when the model loaded but not quite as asked.
    pub fn warning(&self) -> Option<&str> {
        self.runner.loaded.warning.as_deref()
    }

    /// The floats of one image's input: 3 × input_height × input_width.
    pub fn input_len(&self) -> usize {
        self.runner.config.input_len()
    }

    /// The most images one of this handle's jobs holds (at least 1).
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// True when the model runs several images per forward (asked for by `max_batch` or
    /// `batch_size` > 1, and it ran a batch at load). False: one forward per image.
    pub fn takes_batches(&self) -> bool {
        self.runner.loaded.takes_batches
    }

    /// Why a model asked for batches runs one forward per image, for the caller to log (the
    /// results are the same, only slower).
    pub fn batch_note(&self) -> Option<&str> {
        self.runner.loaded.batch_note.as_deref()
    }

    /// An estimate of the model's time per image (from the warm-up).
    pub fn warm_up_time(&self) -> Duration {
        self.runner.loaded.warm_up_time
    }

    /// How many [`Model`] handles share this model thread.
    pub fn clients(&self) -> usize {
        self.runner.shared.lock().clients.len()
    }

    fn with_client<T>(&self, f: impl FnOnce(&mut Client<P>) -> T) -> Option<T> {
        self.runner.shared.lock().client(self.id).map(f)
    }

    /// Queues one job (`buffers.count` images), named `ticket`, whose reply [`Model::wait`]
    /// collects, behind the one the model may be running: the model starts it the moment it is
    /// free, so the caller can prepare the next input, or finish the previous frame, meanwhile.
    /// Waits only while another queued job of this handle has not started yet.
    pub fn queue(&self, ticket: Ticket, buffers: Buffers<P>, frame: FrameInfo) {
        let shared = &self.runner.shared;
        let mut hub = shared.lock();
        loop {
            if hub.stop {
                return;
            }
            match hub.client(self.id) {
                Some(c) if c.pending.is_some() => hub = shared.wait(hub),
                Some(_) => break,
                None => return,
            }
        }
        hub.handed_over += 1;
        let since = hub.handed_over;
        if let Some(c) = hub.client(self.id) {
            c.pending = Some(Job {
                buffers,
                frame,
                ticket: Some(ticket),
            });
            c.since = since;
            c.tickets.push(ticket);
            c.streaming = true;
        }
        drop(hub);
        shared.cond.notify_all();
    }

    /// The reply to the job queued as `ticket`, waiting while it is queued or running. None if
    /// there is no such job (it was discarded by a flush, or the model stopped): nothing to wait
    /// for. Replies to older tickets nobody collected are recycled on the way.
    pub fn wait(&self, ticket: Ticket) -> Option<Reply<P>> {
        let shared = &self.runner.shared;
        let mut hub = shared.lock();
        loop {
            let stop = hub.stop;
            let c = hub.client(self.id)?;
            while c.done.front().is_some_and(|(t, _)| *t < ticket) {
                if let Some((_, reply)) = c.done.pop_front() {
                    c.free.push(reply.buffers);
                }
            }
            if c.done.front().is_some_and(|(t, _)| *t == ticket) {
                return c.done.pop_front().map(|(_, reply)| reply);
            }
            if stop || !c.tickets.contains(&ticket) {
                return None;
            }
            hub = shared.wait(hub);
        }
    }

    /// Gives buffers back for [`Model::buffers`] to hand out again.
    pub fn recycle(&self, buffers: Buffers<P>) {
        self.with_client(|c| c.free.push(buffers));
    }

    /// Hands `buffers` to the model thread and returns at once; the result goes to the
    /// `on_result` given to [`Model::start`] (or [`SharedModel::join`]). A job of this handle
    /// still waiting for the model is replaced (its buffers are recycled): the newest frame
    /// wins, nothing queues.
    pub fn submit(&self, buffers: Buffers<P>, frame: FrameInfo) {
        let shared = &self.runner.shared;
        let mut hub = shared.lock();
        hub.handed_over += 1;
        let since = hub.handed_over;
        if let Some(c) = hub.client(self.id) {
            let job = Job {
                buffers,
                frame,
                ticket: None,
            };
            c.streaming = true;
            if let Some(old) = c.pending.replace(job) {
                forget_ticket(c, old.ticket);
                c.free.push(old.buffers);
                c.replaced += 1;
            } else {
                c.since = since;
            }
        }
        drop(hub);
        shared.cond.notify_all();
    }

    /// Drops a job of this handle still waiting for the model (after a flush); a
    /// [`Model::wait`] for it returns None. A job the model is running finishes.
    pub fn discard_pending(&self) {
        self.with_client(|c| {
            if let Some(old) = c.pending.take() {
                forget_ticket(c, old.ticket);
                c.free.push(old.buffers);
            }
        });
        self.runner.shared.cond.notify_all();
    }

    /// This handle sends no more jobs for now (its stream ended): batches stop waiting for it
    /// until its next job.
    pub fn end_of_stream(&self) {
        self.with_client(|c| c.streaming = false);
        self.runner.shared.cond.notify_all();
    }

    /// Waits until the model thread has no job of this handle left, at most `timeout`; true if
    /// none is left.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let shared = &self.runner.shared;
        let mut hub = shared.lock();
        while hub
            .client(self.id)
            .is_some_and(|c| c.pending.is_some() || c.running > 0)
        {
            if Instant::now() >= deadline {
                return false;
            }
            hub = shared.wait_until(hub, deadline);
        }
        true
    }

    /// This handle's jobs replaced by newer ones before the model got to them; the model
    /// forwards its images took part in (one per job when the model takes batches, and jobs of
    /// several handles may share one; else one per image; warm-up not counted); and the images
    /// those forwards ran (this handle's and others': images / forwards is the mean batch size).
    pub fn counters(&self) -> Counters {
        self.with_client(|c| Counters {
            replaced: c.replaced,
            forwards: c.forwards,
            images: c.images,
        })
        .unwrap_or_default()
    }
}

impl<P: Default> Model<P> {
    /// A set of buffers for [`Model::max_batch`] images, `count` 1 and the default payload: one
    /// given back by an earlier job or by [`Model::recycle`], or new ones (at most three sets
    /// per client exist at once: being filled, pending, running).
    pub fn buffers(&self) -> Buffers<P> {
        match self.with_client(|c| c.free.pop()).flatten() {
            Some(mut buffers) => {
                buffers.count = 1;
                buffers.payload = P::default();
                buffers
            }
            None => Buffers {
                input: vec![0.0; self.max_batch * self.input_len()],
                outputs: Vec::new(),
                count: 1,
                payload: P::default(),
            },
        }
    }
}

/// A handle's counters: see [`Model::counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub replaced: u64,
    pub forwards: u64,
    pub images: u64,
}

impl<P> SharedModel<P> {
    /// Whether some handle still holds the model thread.
    pub fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// A new handle on the model thread, with its own jobs of up to `max_batch` images and its
    /// own `on_result`; `on_result` back once no handle holds the thread any more.
    pub fn join(&self, max_batch: usize, on_result: OnResult<P>) -> Result<Model<P>, OnResult<P>> {
        match self.0.upgrade() {
            Some(runner) if !runner.shared.lock().stop => {
                Ok(Model::client(runner, max_batch, on_result))
            }
            _ => Err(on_result),
        }
    }
}

fn forget_ticket<P>(c: &mut Client<P>, ticket: Option<Ticket>) {
    if let Some(t) = ticket {
        c.tickets.retain(|&x| x != t);
    }
}

impl<P> Drop for Model<P> {
    fn drop(&mut self) {
        // This handle's jobs: a pending one is dropped; one running finishes and is dropped
        // with the client's entry gone. The model thread stops with the last handle.
        self.runner.shared.lock().clients.remove(&self.id);
        self.runner.shared.cond.notify_all();
    }
}

mod run;

#[cfg(test)]
mod tests;
