//! The one place that owns libtorch: a model thread per element that sets the quantized engine and
//! thread count, loads the TorchScript model, warms it up, and runs every forward for the model's
//! whole life.
//!
//! Why a thread of its own: a model loaded on one thread and run on another is 2–3× slower with
//! the x86 engine and 2 threads (OpenMP creates a thread pool per calling thread, and the two
//! pools fight over the cores); see `shared/notes/libtorch-threads.md`. The streaming thread only
//! hands over the prepared input and waits for the logits.
//!
//! A job holds up to `max_batch` images (the regions of one frame, or frames of several streams):
//! one forward on `[count, 3, H, W]` when the model takes batches (checked at load on a batch of
//! 2), else one forward per image.

use crate::postprocess::{FrameInfo, Region};
use gst::glib;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use tch::{CModule, Device, IValue, Kind, Tensor};

/// libtorch's quantized engine. Process-global: the last element to load a model sets it for
/// every model in the process.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchEngine")]
pub enum Engine {
    #[default]
    #[enum_value(
        name = "Auto: the engine the model was calibrated for (recorded by tools/export_model.py), \
                else the platform's fastest (x86 on x86-64, qnnpack on ARM)",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "QNNPACK (ARM, mobile; slow on x86-64)", nick = "qnnpack")]
    Qnnpack = 1,
    #[enum_value(name = "FBGEMM (x86-64)", nick = "fbgemm")]
    Fbgemm = 2,
    #[enum_value(
        name = "x86: FBGEMM and oneDNN kernels, libtorch's x86-64 default",
        nick = "x86"
    )]
    X86 = 3,
}

// src/libtorch.cpp: tch can only set FBGEMM and QNNPACK (codes are at::QEngine's values), and
// has no hook for libtorch's warnings.
unsafe extern "C" {
    fn gst_torch_qengine_supported(code: i32) -> i32;
    fn gst_torch_set_qengine(code: i32) -> i32;
    fn gst_torch_qengine() -> i32;
    fn gst_torch_route_warnings(callback: unsafe extern "C" fn(*const c_char, *const c_char, u32));
}

/// The debug category of libtorch's own warnings (`GST_DEBUG=libtorch:2` shows them).
static LIBTORCH_CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "libtorch",
        gst::DebugColorFlags::empty(),
        Some("Warnings from libtorch"),
    )
});

/// Where src/libtorch.cpp sends libtorch's warnings (all but the known deprecation of
/// `torch.quantize_per_tensor`, which every int8 model's forward would print).
unsafe extern "C" fn on_libtorch_warning(message: *const c_char, file: *const c_char, line: u32) {
    let text = |p: *const c_char| {
        if p.is_null() {
            std::borrow::Cow::Borrowed("")
        } else {
            // SAFETY: libtorch passes NUL-terminated strings that live for this call.
            unsafe { CStr::from_ptr(p) }.to_string_lossy()
        }
    };
    gst::warning!(LIBTORCH_CAT, "{} ({}:{line})", text(message), text(file));
}

/// Sends this thread's libtorch warnings to the GStreamer log instead of stderr. libtorch keeps
/// its warning handler per thread: call it on each thread that loads or runs a model.
pub fn route_libtorch_warnings() {
    // SAFETY: installs a handler object that lives as long as the thread; the callback is a
    // plain function that only reads its arguments.
    unsafe { gst_torch_route_warnings(on_libtorch_warning) };
}

const QENGINES: [(i32, &str); 4] = [(1, "fbgemm"), (2, "qnnpack"), (3, "onednn"), (4, "x86")];

/// The quantized engine libtorch uses now.
pub fn current_engine() -> &'static str {
    // SAFETY: reads libtorch's global context; no arguments.
    let code = unsafe { gst_torch_qengine() };
    QENGINES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("none", |(_, name)| name)
}

impl Engine {
    /// The engines to try, in order; `auto` means the platform's preferred ones (a model's
    /// calibrated engine comes first, see [`load`]).
    fn resolve(self) -> &'static [i32] {
        match self {
            Engine::Auto if cfg!(any(target_arch = "x86_64", target_arch = "x86")) => &[4, 1],
            Engine::Auto => &[2],
            Engine::Qnnpack => &[2],
            Engine::Fbgemm => &[1],
            Engine::X86 => &[4],
        }
    }
}

/// What the model thread needs to load a model.
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    pub path: PathBuf,
    pub engine: Engine,
    /// 0 keeps libtorch's default.
    pub num_threads: u32,
    pub input_width: usize,
    pub input_height: usize,
    /// The most images one job of the first client holds (0 counts as 1).
    pub max_batch: usize,
    /// The most images one forward runs across the jobs of all clients (cross-stream batching;
    /// 0 counts as 1). A forward never holds more than the larger of this and `max_batch`.
    pub batch_size: usize,
    /// How long the model thread waits for the jobs of other clients to fill a forward up to
    /// `batch_size` images; zero takes what is queued.
    pub batch_timeout: Duration,
}

impl ModelConfig {
    /// The most images one forward runs.
    fn forward_limit(&self) -> usize {
        self.max_batch.max(self.batch_size).max(1)
    }
}

/// One job's input and output buffers; they travel to the model thread and back so no buffer is
/// allocated per frame. Sized for [`Model::max_batch`] images; the job runs the first `count`.
pub struct Buffers {
    /// max_batch × 3 × input_height × input_width normalised floats (NCHW): image i is
    /// `input[i * len..(i + 1) * len]`, len = [`Model::input_len`].
    pub input: Vec<f32>,
    /// max_batch × the model's N outputs: image i's are `logits[i * N..(i + 1) * N]`.
    pub logits: Vec<f32>,
    /// The images filled ([`Model::buffers`] hands out 1). More than the forward limit (the
    /// buffers grown for them) run in several forwards; 0 runs nothing.
    pub count: usize,
    /// The regions the images were taken from, for whoever reads the result: the model thread
    /// only carries them ([`Model::buffers`] hands out none).
    pub regions: Vec<Region>,
}

/// Called on the model thread with each finished [`Model::submit`]ted job: its buffers (`count`
/// images' logits in `logits[..count * N]`, to be consumed in place, and the `regions`), the
/// job's share of the model time (its images' share of the forwards it took part in) or the
/// error, and the frame the input came from.
pub type OnResult = Box<dyn Fn(&mut Buffers, Result<Duration, String>, FrameInfo) + Send + Sync>;

/// Names one [`Model::queue`]d job, so that its reply is collected by name: a reply can never be
/// taken for another job's, and waiting for a job that was discarded returns at once.
pub type Ticket = u64;

/// A client's place among the model's clients (its key in [`Hub::clients`]).
type ClientId = u64;

struct Job {
    buffers: Buffers,
    frame: FrameInfo,
    /// Some: [`Model::wait`] collects the reply; None: the result goes to the `OnResult`.
    ticket: Option<Ticket>,
}

/// A queued job's buffers back, with the model's time or the error, and the frame it ran on.
pub struct Reply {
    pub buffers: Buffers,
    pub result: Result<Duration, String>,
    pub frame: FrameInfo,
}

/// What the model thread reports once loaded.
struct Loaded {
    /// N, the model's outputs per image.
    num_classes: usize,
    /// The warm-up estimate (batch 1).
    warm_up_time: Duration,
    /// The engine could not be set as asked, or changes the model's answers.
    warning: Option<String>,
    /// Jobs of several images run as one forward.
    takes_batches: bool,
    /// Why not, when batches were asked for.
    batch_note: Option<String>,
}

/// One client's side of the model: what its streaming thread and the model thread share.
struct Client {
    /// The next job; a newer submitted job replaces it (newest wins, nothing queues).
    pending: Option<Job>,
    /// When `pending` was handed over (the model thread takes the oldest first).
    since: u64,
    /// Replies to [`Model::queue`]d jobs, oldest first.
    done: VecDeque<(Ticket, Reply)>,
    /// Jobs of this client the model thread is running, and the tickets of the queued ones.
    running: usize,
    tickets: Vec<Ticket>,
    /// Buffers back from async jobs, for [`Model::buffers`].
    free: Vec<Buffers>,
    /// Jobs replaced before the model got to them.
    replaced: u64,
    /// Model forwards this client's images took part in, and the images those forwards ran (for
    /// the mean batch size).
    forwards: u64,
    images: u64,
    /// Sends jobs: from its first job until [`Model::end_of_stream`]. A batch waits (up to
    /// `batch_timeout`) only for clients that are streaming and have no job in it.
    streaming: bool,
    on_result: Arc<OnResult>,
}

/// The model's clients, and whether the model thread should stop (lock order: one `Hub` lock
/// per model, taken last: nothing else is locked while it is held).
#[derive(Default)]
struct Hub {
    clients: BTreeMap<ClientId, Client>,
    next_id: ClientId,
    /// Counts hand-overs, for `Client::since`.
    handed_over: u64,
    stop: bool,
}

impl Hub {
    fn client(&mut self, id: ClientId) -> Option<&mut Client> {
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
}

struct Shared {
    hub: Mutex<Hub>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Hub>) -> MutexGuard<'a, Hub> {
        self.cond.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

/// The model thread and what it reported at load; shared by every [`Model`] handle on it.
/// Dropping the last handle stops and joins the thread.
struct Runner {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
    config: ModelConfig,
    loaded: Loaded,
}

impl Drop for Runner {
    fn drop(&mut self) {
        {
            let mut hub = self.shared.lock();
            hub.stop = true;
            self.shared.cond.notify_all();
        }
        if let Some(t) = self.thread.take() {
            // The last reference to an element can be dropped by its own async result handler,
            // on the model thread: that thread ends by itself once it sees `stop`.
            if t.thread().id() != thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// A client's handle on a model thread: its own jobs, replies, buffers and counters. Several
/// handles can share one model thread ([`Model::join`], [`SharedModel`]): one load, one copy of
/// the weights, and their jobs batched together. Dropping the last handle stops and joins the
/// thread.
pub struct Model {
    engine: Arc<Runner>,
    id: ClientId,
    input_len: usize,
    max_batch: usize,
}

/// A weak reference to a model thread: [`SharedModel::join`] gives a new [`Model`] handle while
/// some handle still holds the thread, None once the last is gone.
#[derive(Clone)]
pub struct SharedModel(Weak<Runner>);

impl Model {
    /// Starts the model thread and waits until it has loaded and warmed up the model. The error
    /// says what is wrong with the file (the caller names the property and path). `on_result`
    /// receives the results of this handle's [`Model::submit`].
    pub fn load(mut config: ModelConfig, on_result: OnResult) -> Result<Model, String> {
        check_file(&config.path)?;
        config.max_batch = config.max_batch.max(1);
        config.batch_size = config.batch_size.max(1);
        let max_batch = config.max_batch;
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Loaded, String>>(1);
        let shared = Arc::new(Shared {
            hub: Mutex::new(Hub::default()),
            cond: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread_config = config.clone();
        let thread = thread::Builder::new()
            .name("torchclassify-model".into())
            .spawn(move || model_thread(thread_config, ready_tx, thread_shared))
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
        let engine = Arc::new(Runner {
            shared,
            thread: Some(thread),
            config,
            loaded,
        });
        Ok(Model::client(engine, max_batch, on_result))
    }

    /// A new client of the running model thread, with its own jobs of up to `max_batch` images.
    fn client(engine: Arc<Runner>, max_batch: usize, on_result: OnResult) -> Model {
        let id = {
            let mut hub = engine.shared.lock();
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
        let input_len = 3 * engine.config.input_width * engine.config.input_height;
        Model {
            engine,
            id,
            input_len,
            max_batch: max_batch.max(1),
        }
    }

    /// A weak reference to this handle's model thread, for others to [`SharedModel::join`].
    pub fn share(&self) -> SharedModel {
        SharedModel(Arc::downgrade(&self.engine))
    }

    /// Whether `shared` names this handle's model thread.
    pub fn shares(&self, shared: &SharedModel) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.engine), shared.0.as_ptr())
    }

    /// Set when the model loaded but not quite as asked (the engine could not be set).
    pub fn warning(&self) -> Option<&str> {
        self.engine.loaded.warning.as_deref()
    }

    /// Number of model outputs (classes) per image.
    pub fn num_classes(&self) -> usize {
        self.engine.loaded.num_classes
    }

    /// The floats of one image's input: 3 × input_height × input_width.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// The most images one of this handle's jobs holds (at least 1).
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// True when the model runs several images per forward (asked for by `max_batch` or
    /// `batch_size` > 1, and it ran a batch at load). False: one forward per image.
    pub fn takes_batches(&self) -> bool {
        self.engine.loaded.takes_batches
    }

    /// Why a model asked for batches runs one forward per image, for the caller to log (at info
    /// level: the results are the same, only slower).
    pub fn batch_note(&self) -> Option<&str> {
        self.engine.loaded.batch_note.as_deref()
    }

    /// The slowest of the warm-up forwards after the first (which allocates): an estimate of the
    /// model's time per frame.
    pub fn warm_up_time(&self) -> Duration {
        self.engine.loaded.warm_up_time
    }

    /// How many [`Model`] handles share this model thread.
    pub fn clients(&self) -> usize {
        self.engine.shared.lock().clients.len()
    }

    fn with_client<T>(&self, f: impl FnOnce(&mut Client) -> T) -> Option<T> {
        self.engine.shared.lock().client(self.id).map(f)
    }

    /// A set of buffers of the right sizes (for [`Model::max_batch`] images), `count` 1 and no
    /// regions: one given back by an earlier job or by [`Model::recycle`], or new ones (at most
    /// three sets ever exist: being filled, pending, running).
    pub fn buffers(&self) -> Buffers {
        match self.with_client(|c| c.free.pop()).flatten() {
            Some(mut buffers) => {
                buffers.count = 1;
                buffers.regions.clear();
                buffers
            }
            None => Buffers {
                input: vec![0.0; self.max_batch * self.input_len],
                logits: vec![0.0; self.max_batch * self.num_classes()],
                count: 1,
                regions: Vec::new(),
            },
        }
    }

    /// Queues one job (`buffers.count` images), named `ticket`, whose reply [`Model::wait`]
    /// collects, behind the one the model may be running: the model starts it the moment it is
    /// free, so the caller can prepare the next input, or finish the previous frame, meanwhile.
    /// Waits only while another queued job of this handle has not started yet.
    pub fn queue(&self, ticket: Ticket, buffers: Buffers, frame: FrameInfo) {
        let shared = &self.engine.shared;
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
    pub fn wait(&self, ticket: Ticket) -> Option<Reply> {
        let shared = &self.engine.shared;
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
    pub fn recycle(&self, buffers: Buffers) {
        self.with_client(|c| c.free.push(buffers));
    }

    /// Hands `buffers.input` to the model thread and returns at once; the result goes to the
    /// `on_result` given to [`Model::load`]. A job of this handle still waiting for the model is
    /// replaced (its buffers are recycled): the newest frame wins, nothing queues.
    pub fn submit(&self, buffers: Buffers, frame: FrameInfo) {
        let shared = &self.engine.shared;
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
        self.engine.shared.cond.notify_all();
    }

    /// This handle sends no more jobs for now (its stream ended): batches stop waiting for it
    /// until its next job.
    pub fn end_of_stream(&self) {
        self.with_client(|c| c.streaming = false);
        self.engine.shared.cond.notify_all();
    }

    /// Waits until the model thread has no job of this handle left, at most `timeout`; true if
    /// none is left.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let shared = &self.engine.shared;
        let mut hub = shared.lock();
        while hub
            .client(self.id)
            .is_some_and(|c| c.pending.is_some() || c.running > 0)
        {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            hub = shared
                .cond
                .wait_timeout(hub, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// [`Model::replaced`], [`Model::forwards`] and [`Model::images`] in one lock.
    pub fn counters(&self) -> (u64, u64, u64) {
        self.with_client(|c| (c.replaced, c.forwards, c.images))
            .unwrap_or_default()
    }

    /// How many of this handle's submitted jobs were replaced by newer ones before the model got
    /// to them.
    pub fn replaced(&self) -> u64 {
        self.with_client(|c| c.replaced).unwrap_or(0)
    }

    /// Model forwards this handle's images took part in: one per job when the model takes
    /// batches (jobs of several handles may share one), else one per image (warm-up not
    /// counted).
    pub fn forwards(&self) -> u64 {
        self.with_client(|c| c.forwards).unwrap_or(0)
    }

    /// Images those forwards ran (this handle's and others'): [`Model::images`] /
    /// [`Model::forwards`] is the mean batch size.
    pub fn images(&self) -> u64 {
        self.with_client(|c| c.images).unwrap_or(0)
    }
}

impl SharedModel {
    /// Whether some handle still holds the model thread.
    pub fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// A new handle on the model thread, with its own jobs of up to `max_batch` images and its
    /// own `on_result`; `on_result` back once no handle holds the thread any more.
    pub fn join(&self, max_batch: usize, on_result: OnResult) -> Result<Model, OnResult> {
        match self.0.upgrade() {
            Some(runner) if !runner.shared.lock().stop => {
                Ok(Model::client(runner, max_batch, on_result))
            }
            _ => Err(on_result),
        }
    }
}

fn forget_ticket(c: &mut Client, ticket: Option<Ticket>) {
    if let Some(t) = ticket {
        c.tickets.retain(|&x| x != t);
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // This handle's jobs: a pending one is dropped; one running finishes and is dropped
        // with the client's entry gone. The model thread stops with the last handle.
        self.engine.shared.lock().clients.remove(&self.id);
        self.engine.shared.cond.notify_all();
    }
}

fn check_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("no such file (run `make model` to export the default model)".into())
        }
        Err(e) => Err(format!("cannot read it: {e}")),
        Ok(m) if m.is_dir() => Err("it is a directory, not a TorchScript file".into()),
        Ok(m) if m.len() == 0 => Err("the file is empty, not a TorchScript file".into()),
        Ok(_) => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot read it: {e}")),
    }
}

/// libtorch's messages carry a C++ stack trace after the first lines; keep what a user can read:
/// the first three lines, and the exception's own line (`RuntimeError: …`) where a TorchScript
/// traceback pushed it further down.
fn torch_message(e: &tch::TchError) -> String {
    message_text(&e.to_string())
}

fn message_text(text: &str) -> String {
    let text = text
        .split("Exception raised from")
        .next()
        .unwrap_or(text)
        .trim();
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut lines: Vec<&str> = all.iter().take(3).copied().collect();
    let is_exception = |l: &&str| {
        l.split_once(':')
            .is_some_and(|(name, _)| name.ends_with("Error") && !name.contains(' '))
    };
    if !lines.iter().any(is_exception)
        && let Some(last) = all.iter().skip(3).copied().rfind(is_exception)
    {
        lines.push(last);
    }
    if lines.is_empty() {
        lines.push("unknown libtorch error");
    }
    lines.join(" ")
}

/// Sets the engine; the error says why not (libtorch then keeps the engine it has).
pub fn set_engine(engine: Engine) -> Result<(), String> {
    // libtorch for aarch64 lists x86 and fbgemm as supported, but quantized models then fail to
    // load (their prepacked weights need x86 kernels): refuse them off x86.
    if !cfg!(any(target_arch = "x86_64", target_arch = "x86"))
        && matches!(engine, Engine::X86 | Engine::Fbgemm)
    {
        return Err(format!(
            "quantized engine {engine:?} is for x86-64 CPUs, not {}",
            std::env::consts::ARCH
        ));
    }
    for &code in engine.resolve() {
        // SAFETY: plain calls into libtorch's global context with a valid at::QEngine value.
        if unsafe { gst_torch_qengine_supported(code) } == 1
            && unsafe { gst_torch_set_qengine(code) } == 0
        {
            return Ok(());
        }
    }
    Err(format!(
        "quantized engine {engine:?} is not available in this libtorch (it has {})",
        QENGINES
            .iter()
            // SAFETY: as above.
            .filter(|(c, _)| unsafe { gst_torch_qengine_supported(*c) } == 1)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The engine a model says it was calibrated for: `tools/export_model.py` gives every model a
/// method `gst_torch_engine()` returning "qnnpack", "x86" or "fbgemm" ("" for a float model).
/// None for a model without it (exported elsewhere, or before the method existed).
pub fn calibrated_engine(module: &CModule) -> Option<Engine> {
    match module.method_is::<IValue>("gst_torch_engine", &[]) {
        Ok(IValue::String(name)) => match name.as_str() {
            "qnnpack" => Some(Engine::Qnnpack),
            "x86" => Some(Engine::X86),
            "fbgemm" => Some(Engine::Fbgemm),
            _ => None,
        },
        _ => None,
    }
}

fn load_module(path: &Path) -> Result<CModule, String> {
    let mut module = CModule::load(path)
        .map_err(|e| format!("not a loadable TorchScript file: {}", torch_message(&e)))?;
    module.f_set_eval().map_err(|e| {
        format!(
            "cannot switch the model to eval mode: {}",
            torch_message(&e)
        )
    })?;
    Ok(module)
}

/// Loads the model and runs a forward on zeros to check that the output is `[1, N]` logits;
/// returns the model, N, and a warning if the engine asked for could not be set (libtorch then
/// keeps the engine it has) or changes the model's answers.
///
/// `engine=auto` runs a model under the engine it was calibrated for ([`calibrated_engine`]),
/// else the platform's fastest. Loading packs the weights for the engine set at that moment, so
/// a model whose calibration differs from the platform's engine is loaded again.
fn load(config: &ModelConfig) -> Result<(CModule, usize, Option<String>), String> {
    if config.num_threads > 0 {
        tch::set_num_threads(config.num_threads as i32);
    }
    let mut warning = set_engine(config.engine)
        .err()
        .map(|e| format!("{e}; using libtorch's current engine instead"));
    let mut module = load_module(&config.path)?;
    let calibrated = calibrated_engine(&module);
    match (config.engine, calibrated) {
        (Engine::Auto, Some(engine)) => {
            let before = current_engine();
            if set_engine(engine).is_ok() && current_engine() != before {
                module = load_module(&config.path)?;
            }
        }
        // Activations calibrated for qnnpack use the whole 8-bit range; the x86-64 kernels
        // (x86, fbgemm, onednn) expect 7 bits (reduce_range) and saturate on more.
        (_, Some(Engine::Qnnpack)) if current_engine() != "qnnpack" => {
            warning.get_or_insert(format!(
                "the model was calibrated for the qnnpack engine; under {} its answers differ \
                 (a few points of top-1 lower on hard inputs): engine=auto runs it under qnnpack, \
                 or export one for x86-64 with tools/export_model.py --engine x86",
                current_engine()
            ));
        }
        _ => {}
    }
    let input = Tensor::zeros(
        [1, 3, config.input_height as i64, config.input_width as i64],
        (Kind::Float, Device::Cpu),
    );
    let shape = |t: &Tensor| format!("{:?}", t.size());
    let n = match module.forward_is(&[IValue::Tensor(input)]) {
        Err(e) => {
            return Err(format!(
                "running it on a 1x3x{}x{} image (property 'input-size') failed: {}",
                config.input_height,
                config.input_width,
                torch_message(&e)
            ));
        }
        Ok(IValue::Tensor(t)) => match t.size().as_slice() {
            &[1, n] if n > 0 => n as usize,
            _ => {
                return Err(format!(
                    "its output has shape {}, not [1, N] class scores: not an image classifier",
                    shape(&t)
                ));
            }
        },
        Ok(other) => {
            return Err(format!(
                "its output is {}, not a [1, N] tensor of class scores: not an image classifier",
                ivalue_kind(&other)
            ));
        }
    };
    Ok((module, n, warning))
}

fn ivalue_kind(v: &IValue) -> &'static str {
    match v {
        IValue::Tuple(_) => "a tuple",
        IValue::GenericList(_) | IValue::TensorList(_) => "a list",
        IValue::GenericDict(_) => "a dict",
        IValue::None => "None",
        IValue::String(_) => "a string",
        _ => "not a tensor",
    }
}

fn forward(
    module: &CModule,
    input: &mut [f32],
    logits: &mut [f32],
    shape: [i64; 4],
) -> Result<(), String> {
    // SAFETY: the tensor views `input`, which outlives it (the tensor is dropped at the end of
    // this function) and is not touched while the forward runs.
    let tensor = unsafe {
        Tensor::f_from_blob(
            input.as_mut_ptr() as *const u8,
            &shape,
            &[],
            Kind::Float,
            Device::Cpu,
        )
    }
    .map_err(|e| torch_message(&e))?;
    let out = match module.forward_is(&[IValue::Tensor(tensor)]) {
        Ok(IValue::Tensor(t)) => t,
        Ok(other) => return Err(format!("model returned {}", ivalue_kind(&other))),
        Err(e) => return Err(torch_message(&e)),
    };
    let out = if out.kind() == Kind::Float {
        out
    } else {
        out.f_to_kind(Kind::Float).map_err(|e| torch_message(&e))?
    };
    let out = out.f_contiguous().map_err(|e| torch_message(&e))?;
    if shape[0] > 1 && out.size().first() != Some(&shape[0]) {
        return Err(format!(
            "model returned shape {:?} for a batch of {}",
            out.size(),
            shape[0]
        ));
    }
    if out.numel() != logits.len() {
        return Err(format!(
            "model returned {} values, expected {}",
            out.numel(),
            logits.len()
        ));
    }
    out.f_copy_data(logits, logits.len())
        .map_err(|e| torch_message(&e))
}

/// Why the model does not take a batch: None if a forward on a `[2, 3, H, W]` zero input gives
/// `[2, N]`; else the error, or the output it gave instead (a model traced or written for
/// batch 1).
fn batch_refusal(module: &CModule, config: &ModelConfig, n: usize) -> Option<String> {
    let input = match Tensor::f_zeros(
        [2, 3, config.input_height as i64, config.input_width as i64],
        (Kind::Float, Device::Cpu),
    ) {
        Ok(t) => t,
        Err(e) => return Some(torch_message(&e)),
    };
    match module.forward_is(&[IValue::Tensor(input)]) {
        Err(e) => Some(torch_message(&e)),
        Ok(IValue::Tensor(t)) => match t.size().as_slice() {
            &[2, m] if m == n as i64 => None,
            shape => Some(format!("output shape {shape:?}, not [2, {n}]")),
        },
        Ok(other) => Some(format!("output {}, not a tensor", ivalue_kind(&other))),
    }
}

fn batch_note(batch: usize, reason: &str) -> String {
    format!(
        "the model takes one image per forward (on a batch of {batch}: {reason}); batches run \
         one forward per image"
    )
}

/// Where a job's images and outputs are, and how the model runs them.
struct Geometry {
    /// Floats of one image's input, and its outputs.
    len: usize,
    n: usize,
    height: i64,
    width: i64,
    takes_batches: bool,
    /// The most images per forward.
    limit: usize,
}

/// Runs the first `count` images of `input` into `logits`: forwards on `[k, 3, H, W]` of at most
/// `g.limit` images when the model takes batches, else one per image. `forwards` gets the
/// number of images of each forward started. The caller checked the buffers' sizes.
fn run_images(
    module: &CModule,
    input: &mut [f32],
    logits: &mut [f32],
    count: usize,
    g: &Geometry,
    forwards: &mut Vec<usize>,
) -> Result<(), String> {
    let step = if g.takes_batches { g.limit } else { 1 };
    (0..count).step_by(step).try_for_each(|first| {
        let k = (count - first).min(step);
        forwards.push(k);
        forward(
            module,
            &mut input[first * g.len..(first + k) * g.len],
            &mut logits[first * g.n..(first + k) * g.n],
            [k as i64, 3, g.height, g.width],
        )
        .map_err(|e| {
            if count > 1 && k == 1 {
                format!("image {first}: {e}")
            } else {
                e
            }
        })
    })
}

/// One job taken for a forward, and whose it is.
struct Taken {
    client: ClientId,
    job: Job,
    on_result: Arc<OnResult>,
}

/// Takes pending jobs, oldest first, while the images fit in `limit` (the first always goes:
/// a job of more images runs alone, in several forwards). Returns the images taken.
fn take_jobs(hub: &mut Hub, batch: &mut Vec<Taken>, mut images: usize, limit: usize) -> usize {
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

/// Runs the jobs taken as few forwards as the limit allows: one job in place, several copied
/// into `stage` one after the other (their outputs copied back). Returns the result, and per
/// job its share of the time, the forwards its images were in and the images those ran.
fn run_batch(
    module: &CModule,
    batch: &mut [Taken],
    g: &Geometry,
    stage: &mut (Vec<f32>, Vec<f32>),
) -> (Result<Duration, String>, Vec<Share>) {
    let start = Instant::now();
    let (len, n) = (g.len, g.n);
    let total: usize = batch.iter().map(|t| t.job.buffers.count).sum();
    let mut forwards = Vec::new();
    let short = batch.iter().find(|t| {
        let b = &t.job.buffers;
        b.input.len() < b.count * len || b.logits.len() < b.count * n
    });
    let result = if let Some(t) = short {
        let b = &t.job.buffers;
        Err(format!(
            "buffers of {} inputs / {} outputs for {} images of {len} / {n}",
            b.input.len(),
            b.logits.len(),
            b.count,
        ))
    } else {
        // A panic must not leave a `wait` blocked forever: turn it into an error.
        catch_unwind(AssertUnwindSafe(|| {
            if let [one] = batch {
                let Buffers {
                    input,
                    logits,
                    count,
                    ..
                } = &mut one.job.buffers;
                return run_images(module, input, logits, *count, g, &mut forwards);
            }
            let (input, logits) = stage;
            input.resize(total * len, 0.0);
            logits.resize(total * n, 0.0);
            let mut at = 0;
            for t in batch.iter() {
                let k = t.job.buffers.count;
                input[at * len..(at + k) * len].copy_from_slice(&t.job.buffers.input[..k * len]);
                at += k;
            }
            run_images(module, input, logits, total, g, &mut forwards)?;
            let mut at = 0;
            for t in batch.iter_mut() {
                let k = t.job.buffers.count;
                t.job.buffers.logits[..k * n].copy_from_slice(&logits[at * n..(at + k) * n]);
                at += k;
            }
            Ok(())
        }))
        .unwrap_or_else(|_| Err("libtorch panicked".into()))
        .map(|()| start.elapsed())
        .map_err(|e| format!("inference failed: {e}"))
    };
    // Each job's share: its images' part of the time; the forwards that held any of its images
    // and the images those ran.
    let elapsed = start.elapsed();
    let mut shares = Vec::with_capacity(batch.len());
    let mut at = 0;
    for t in batch.iter() {
        let k = t.job.buffers.count;
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

fn model_thread(
    config: ModelConfig,
    ready: mpsc::SyncSender<Result<Loaded, String>>,
    shared: Arc<Shared>,
) {
    route_libtorch_warnings();
    let _no_grad = tch::no_grad_guard();
    let (module, n, warning) = match load(&config) {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let limit = config.forward_limit();
    let (height, width) = (config.input_height as i64, config.input_width as i64);
    let len = 3 * config.input_width * config.input_height;
    let mut batch_note = (limit > 1)
        .then(|| batch_refusal(&module, &config, n))
        .flatten()
        .map(|reason| self::batch_note(2, &reason));
    let mut takes_batches = limit > 1 && batch_note.is_none();
    // Warm-up: the first forwards allocate and pick kernels (100–200 ms); do them now, not on the
    // first frame. The slowest after the first is the estimate of the model's time.
    let mut input = vec![0.0f32; limit * len];
    let mut logits = vec![0.0f32; limit * n];
    let mut estimate = Duration::ZERO;
    for i in 0..4 {
        let start = Instant::now();
        if let Err(e) = forward(
            &module,
            &mut input[..len],
            &mut logits[..n],
            [1, 3, height, width],
        ) {
            let _ = ready.send(Err(format!("warm-up inference failed: {e}")));
            return;
        }
        if i > 0 {
            estimate = estimate.max(start.elapsed());
        }
    }
    // A full batch too (its kernels and buffers differ from batch 1's); a model that takes a batch
    // of 2 but fails on a full one runs one forward per image.
    if takes_batches {
        for _ in 0..2 {
            let shape = [limit as i64, 3, height, width];
            if let Err(e) = forward(&module, &mut input, &mut logits, shape) {
                batch_note = Some(self::batch_note(limit, &e));
                takes_batches = false;
                break;
            }
        }
    }
    let loaded = Loaded {
        num_classes: n,
        warm_up_time: estimate,
        warning,
        takes_batches,
        batch_note,
    };
    if ready.send(Ok(loaded)).is_err() {
        return;
    }
    let geometry = Geometry {
        len,
        n,
        height,
        width,
        takes_batches,
        limit,
    };
    // Several clients' jobs are copied here to run as one forward (grown once to the limit).
    let mut stage = (Vec::new(), Vec::new());
    drop((input, logits));
    let mut batch: Vec<Taken> = Vec::new();
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
        let missing = |hub: &Hub, batch: &[Taken]| {
            hub.clients
                .iter()
                .any(|(id, c)| c.streaming && !batch.iter().any(|t| t.client == *id))
        };
        if !config.batch_timeout.is_zero() && images < limit {
            let deadline = Instant::now() + config.batch_timeout;
            while images < limit && !hub.stop && missing(&hub, &batch) {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                hub = shared
                    .cond
                    .wait_timeout(hub, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                images = take_jobs(&mut hub, &mut batch, images, limit);
            }
        }
        // Wake the clients waiting to queue (their pending slot is free) only after the lock is
        // free, so that they do not wake into a held lock: on this 2-core VM each futex wake
        // costs 30-70 us.
        drop(hub);
        shared.cond.notify_all();
        let (result, shares) = run_batch(&module, &mut batch, &geometry, &mut stage);
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

#[cfg(test)]
mod tests {
    use super::message_text;

    #[test]
    fn a_torchscript_traceback_keeps_its_exception_line() {
        let text = "The following operation failed in the TorchScript interpreter.\n\
                    Traceback of TorchScript (most recent call last):\n  \
                    File \"code/__torch__.py\", line 9, in forward\n    \
                    x = torch.flatten(input)\n    \
                    return torch.linear(x, w)\n\
                    RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x10 and 20x10)\n";
        let m = message_text(text);
        assert!(m.starts_with("The following operation failed"), "{m}");
        assert!(
            m.ends_with("RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x10 and 20x10)"),
            "{m}"
        );
    }

    #[test]
    fn a_short_message_stays_and_the_stack_trace_goes() {
        assert_eq!(
            message_text("open file failed\nException raised from foo at bar.cpp:12\nframe #0"),
            "open file failed"
        );
        assert_eq!(message_text(""), "unknown libtorch error");
    }
}
