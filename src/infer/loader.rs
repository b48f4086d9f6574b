//! Loading an inference element's model and labels as the settings say, and the hot swap's
//! loader thread.
//!
//! [`load`] has no side effects on the element: it returns what it loaded, the warning to post
//! and the latency to report, and the caller applies them. [`Reloader`] is the thread a running
//! element owns for hot swaps: property changes are requests; changes that come within
//! [`RELOAD_SETTLE`] of each other make one load; the thread is joined when the element stops, so
//! no load outlives the run that asked for it.

use super::Task;
use super::backend::{Model, OnResult};
use crate::model::{self, Open};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread;
use std::time::Duration;
use torchcore::batch::{self, SharedModel};
use torchcore::labels::Labels;
use torchcore::preprocess::InputSpec;
use torchcore::settings::{LabelsChoice, Settings};
use torchcore::sharing::{Joined, Member, Registry};

/// The models a task's elements share by `model-instance-id` in this process.
pub type Shared<T> = Registry<SharedModel<<T as Task>::Payload>, Settings<<T as Task>::Settings>>;

/// How long a hot swap waits for more property changes before it loads.
pub const RELOAD_SETTLE: Duration = Duration::from_millis(100);

/// A loaded model with how to feed it and read it, and what the caller should do about it.
pub struct Loaded<T: Task> {
    pub model: Model<T>,
    /// What the model takes.
    pub input: InputSpec,
    /// How its outputs read.
    pub reading: Arc<T::Reading>,
    /// A warning to post (the engine asked for is not what the model was calibrated for, or not
    /// available).
    pub warning: Option<String>,
    /// Blocking mode's processing latency: the model's time with a margin for preprocessing
    /// and jitter.
    pub latency: Duration,
    /// How the model was had (`model-instance-id`); None for a model of its own.
    pub joined: Option<Joined<Settings<T::Settings>>>,
}

/// The labels `choice` names; None for the element's built-in ones. The error names the file
/// or key and what is wrong.
fn labels(choice: &LabelsChoice) -> Result<Option<Labels>, String> {
    match choice {
        LabelsChoice::BuiltIn => Ok(None),
        LabelsChoice::File(path, origin) => Labels::from_file(path).map(Some).map_err(|e| {
            format!(
                "Cannot use labels file '{}' ({origin}): {e}",
                path.display()
            )
        }),
        LabelsChoice::List(list, config) => Labels::from_list(list.clone())
            .map(Some)
            .map_err(|e| format!("model config '{}': key 'labels': {e}", config.display())),
    }
}

/// Where the labels came from, for messages (`built_in` names the element's own).
pub fn labels_source(choice: &LabelsChoice, built_in: &str) -> String {
    match choice {
        LabelsChoice::BuiltIn => format!("{built_in} (property 'labels' unset)"),
        LabelsChoice::File(path, origin) => format!("labels file '{}' ({origin})", path.display()),
        LabelsChoice::List(_, config) => {
            format!("the labels list of model config '{}'", config.display())
        }
    }
}

/// Loads labels and model as `settings` (and the model config file) say; `on_result` makes the
/// model's async result handler, which reads with the reading the load makes (it is set before
/// any job runs). With `model-instance-id`, `member` (the element) shares the model of the
/// elements with that id in `registry`. The error names the property or file, the path and
/// what is wrong.
pub fn load<T: Task>(
    settings: &Settings<T::Settings>,
    member: Member<Settings<T::Settings>>,
    registry: &Shared<T>,
    on_result: impl FnOnce(Arc<OnceLock<Arc<T::Reading>>>) -> OnResult<T>,
) -> Result<Loaded<T>, String> {
    let resolved = settings.resolve()?;
    let labels = labels(&resolved.labels)?;
    let model_error = |what: String| {
        format!(
            "Cannot use model '{}' (property 'model'): {what}",
            settings.shared.model
        )
    };
    if settings.shared.model.is_empty() {
        return Err(model_error("no path given".into()));
    }
    let expect =
        T::expect(settings, &resolved, labels.as_ref(), &resolved.labels).map_err(model_error)?;
    let max_batch = T::max_batch(settings);
    let shared_id = settings.model_instance_id.as_deref();
    let shared = &settings.shared;
    let config = batch::Config {
        thread_name: format!("{}-model", T::NAME),
        input_width: resolved.input.width,
        input_height: resolved.input.height,
        max_batch,
        // Frames of other elements only with a shared model.
        batch_size: match shared_id {
            Some(_) => shared.batch_size as usize,
            None => 1,
        },
        batch_timeout: Duration::from_nanos(shared.batch_timeout),
    };
    let open = Open {
        path: shared.model.clone().into(),
        engine: shared.engine,
        num_threads: shared.num_threads,
    };
    let slot = Arc::new(OnceLock::new());
    let on_result = on_result(slot.clone());
    let start = |on_result| {
        let check = move |outputs: &_| T::check(&expect, outputs);
        Model::<T>::start(config, move || model::open(&open), check, on_result).map_err(model_error)
    };
    let (model, joined) = match shared_id {
        None => (start(on_result)?, None),
        Some(id) => {
            // Loads only when no element with the id has a model (on_result goes to whichever
            // of `join` and `load` runs).
            let on_result = std::cell::Cell::new(Some(on_result));
            let take = || on_result.take().unwrap_or_else(|| Box::new(|_, _, _| {}));
            let (model, joined) = registry.model(
                id,
                settings,
                member,
                |mine, theirs| mine.shared.differences(&theirs.shared).into_iter().next(),
                |shared| match shared.join(max_batch, take()) {
                    Ok(model) => Some(model),
                    Err(back) => {
                        on_result.set(Some(back));
                        None
                    }
                },
                || {
                    let model = start(take())?;
                    let share = model.share();
                    Ok((model, share))
                },
            )?;
            (model, Some(joined))
        }
    };
    let reading =
        Arc::new(T::reading(settings, &resolved, labels, model.loaded()).map_err(model_error)?);
    let _ = slot.set(reading.clone());
    let warning = model.warning().map(|w| format!("Property 'engine': {w}"));
    // A shared model may hold a frame for batch-timeout, waiting for the other streams' frames,
    // and then run a whole batch.
    let (batch, timeout) = match shared_id {
        Some(_) if shared.batch_size > 1 => (shared.batch_size, shared.batch_timeout),
        _ => (1, 0),
    };
    let latency = model.warm_up_time() * batch * 5 / 4 + Duration::from_nanos(timeout);
    Ok(Loaded {
        model,
        input: resolved.input,
        reading,
        warning,
        latency,
        joined,
    })
}

/// The hot swap's loader thread, owned by a running element and joined by [`Reloader::stop`]
/// (or when dropped).
pub struct Reloader {
    requests: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Reloader {
    /// Starts the thread. For each settled burst of [`Reloader::request`]s it calls `load`
    /// (which reads the settings as they are then) and gives the outcome to `apply`; `load`
    /// returning None means there is nothing to do (the element stopped meanwhile).
    pub fn start<L, A, O>(name: &str, load: L, apply: A) -> Result<Reloader, String>
    where
        L: Fn() -> Option<O> + Send + 'static,
        A: Fn(O) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name(format!("{name}-load"))
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Settle: one load for changes close together.
                    loop {
                        match rx.recv_timeout(RELOAD_SETTLE) {
                            Ok(()) => continue,
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    if let Some(outcome) = load() {
                        apply(outcome);
                    }
                }
            })
            .map_err(|e| format!("could not start the model loader thread: {e}"))?;
        Ok(Reloader {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Asks for a load with the settings as they will be once changes settle.
    pub fn request(&self) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(());
        }
    }

    /// Stops the thread: a request still settling is dropped, a load under way finishes (its
    /// `apply` runs) and the thread is joined.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            // The loader may hold the last reference to the element, whose disposal then drops
            // the reloader on the loader thread itself: it ends by itself.
            if t.thread().id() != thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Counters = (Arc<Mutex<u32>>, Arc<Mutex<Vec<String>>>);

    /// A reloader whose loads always fail: counts loads, keeps the errors applied.
    fn counting() -> (Reloader, Counters) {
        let loads = Arc::new(Mutex::new(0));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let (l, a) = (loads.clone(), applied.clone());
        let reloader = Reloader::start(
            "test",
            move || {
                *l.lock().unwrap() += 1;
                Some(Err::<(), _>("no model here".to_string()))
            },
            move |outcome| {
                if let Err(e) = outcome {
                    a.lock().unwrap().push(e);
                }
            },
        )
        .unwrap();
        (reloader, (loads, applied))
    }

    #[test]
    fn changes_close_together_make_one_load() {
        let (reloader, (loads, applied)) = counting();
        reloader.request();
        reloader.request();
        reloader.request();
        std::thread::sleep(RELOAD_SETTLE * 5);
        reloader.stop();
        assert_eq!(*loads.lock().unwrap(), 1);
        assert_eq!(*applied.lock().unwrap(), vec!["no model here".to_string()]);
    }

    #[test]
    fn stop_drops_a_settling_request_and_joins() {
        let (reloader, (loads, _)) = counting();
        reloader.request();
        reloader.stop(); // at once: the request is still settling
        assert_eq!(*loads.lock().unwrap(), 0);
    }
}
