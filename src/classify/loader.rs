//! Loading a model and its labels as the settings say, and the hot swap's loader thread.
//!
//! [`load`] has no side effects on the element: it returns what it loaded, the warning to post
//! and the latency to report, and the caller applies them. [`Reloader`] is the thread a running
//! element owns for hot swaps: property changes are requests; changes that come within
//! [`RELOAD_SETTLE`] of each other make one load; the thread is joined when the element stops, so
//! no load outlives the run that asked for it.

use super::backend::{Model, OnResult, Reading};
use crate::model::{self, Open};
use std::sync::LazyLock;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use torchcore::batch::{self, Outputs, Packing, SharedModel};
use torchcore::frame::Region;
use torchcore::labels::Labels;
use torchcore::preprocess::InputSpec;
use torchcore::settings::{InferenceRegion, LabelsChoice, Settings};
use torchcore::sharing::{Joined, Member, Registry};

/// The models shared by `model-instance-id` in this process.
static REGISTRY: LazyLock<Registry<SharedModel<Vec<Region>>, Settings>> =
    LazyLock::new(Registry::default);

/// The element `key` stopped using the shared model of `id`.
pub fn leave(id: &str, key: usize) {
    REGISTRY.leave(id, key);
}

/// How long a hot swap waits for more property changes before it loads.
pub const RELOAD_SETTLE: Duration = Duration::from_millis(100);

/// A loaded model with how to feed it and read it, and what the caller should do about it.
pub struct Loaded {
    pub model: Model,
    /// What the model takes.
    pub input: InputSpec,
    /// How its outputs read.
    pub reading: Reading,
    /// A warning to post (the engine asked for is not what the model was calibrated for, or not
    /// available).
    pub warning: Option<String>,
    /// Blocking mode's processing latency: the model's time with a margin for preprocessing
    /// and jitter.
    pub latency: Duration,
    /// How the model was had (`model-instance-id`); None for a model of its own.
    pub joined: Option<Joined<Settings>>,
}

/// Checks that a forward of one image gave `[1, N]` class scores: an image classifier.
fn check_classifier(outputs: &Outputs) -> Result<(), String> {
    match (outputs.packing, outputs.tensors.as_slice()) {
        (Packing::Tensor, [t]) => match t.shape.as_slice() {
            &[1, n] if n > 0 => Ok(()),
            shape => Err(format!(
                "its output has shape {shape:?}, not [1, N] class scores: not an image classifier"
            )),
        },
        (packing, _) => Err(format!(
            "its output is {}, not a [1, N] tensor of class scores: not an image classifier",
            packing.describe()
        )),
    }
}

/// The number of classes a classifier's outputs hold (checked at load).
pub fn classes(model: &Model) -> usize {
    model
        .loaded()
        .output_shapes
        .first()
        .and_then(|s| s.get(1))
        .copied()
        .unwrap_or(0)
}

/// The labels `choice` names. The error names the file or key and what is wrong.
fn labels(choice: &LabelsChoice) -> Result<Labels, String> {
    match choice {
        LabelsChoice::BuiltIn => Ok(Labels::imagenet()),
        LabelsChoice::File(path, origin) => Labels::from_file(path).map_err(|e| {
            format!(
                "Cannot use labels file '{}' ({origin}): {e}",
                path.display()
            )
        }),
        LabelsChoice::List(list, config) => Labels::from_list(list.clone())
            .map_err(|e| format!("model config '{}': key 'labels': {e}", config.display())),
    }
}

/// Loads labels and model as `settings` (and the model config file) say; `on_result` makes the
/// model's async result handler for the reading loaded. With `model-instance-id`, `member` (the
/// element) shares the model of the elements with that id ([`REGISTRY`]). The error names the
/// property or file, the path and what is wrong.
pub fn load(
    settings: &Settings,
    member: Member<Settings>,
    on_result: impl FnOnce(Reading) -> OnResult,
) -> Result<Loaded, String> {
    let resolved = settings.resolve()?;
    let labels = labels(&resolved.labels)?;
    let reading = Reading {
        labels,
        output: resolved.output,
        threshold: resolved.threshold,
    };
    let model_error = |what: String| {
        format!(
            "Cannot use model '{}' (property 'model'): {what}",
            settings.shared.model
        )
    };
    if settings.shared.model.is_empty() {
        return Err(model_error("no path given".into()));
    }
    // Whole frames go one at a time; roi-list batches a frame's regions.
    let max_batch = match settings.inference_region {
        InferenceRegion::FullFrame => 1,
        InferenceRegion::RoiList => settings.max_batch as usize,
    };
    let shared_id = settings.model_instance_id.as_deref();
    let shared = &settings.shared;
    let config = batch::Config {
        thread_name: "torchclassify-model".into(),
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
    let on_result = on_result(reading.clone());
    let start = |on_result| {
        Model::start(
            config,
            move || model::open(&open),
            check_classifier,
            on_result,
        )
        .map_err(model_error)
    };
    let (model, joined) = match shared_id {
        None => (start(on_result)?, None),
        Some(id) => {
            // Loads only when no element with the id has a model (on_result goes to whichever
            // of `join` and `load` runs).
            let on_result = std::cell::Cell::new(Some(on_result));
            let take = || on_result.take().unwrap_or_else(|| Box::new(|_, _, _| {}));
            let (model, joined) = REGISTRY.model(
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
    let n = classes(&model);
    if n != reading.labels.len() {
        let source = match &resolved.labels {
            LabelsChoice::BuiltIn => {
                "the built-in ImageNet labels (property 'labels' unset)".to_string()
            }
            LabelsChoice::File(path, origin) => {
                format!("labels file '{}' ({origin})", path.display())
            }
            LabelsChoice::List(_, config) => {
                format!("the labels list of model config '{}'", config.display())
            }
        };
        return Err(model_error(format!(
            "it outputs {n} classes but {source} has {} labels",
            reading.labels.len()
        )));
    }
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
    pub fn start<L, A>(load: L, apply: A) -> Result<Reloader, String>
    where
        L: Fn() -> Option<Result<Loaded, String>> + Send + 'static,
        A: Fn(Result<Loaded, String>) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("torchclassify-load".into())
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
            move || {
                *l.lock().unwrap() += 1;
                Some(Err("no model here".to_string()))
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
