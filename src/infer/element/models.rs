//! An inference element's models: loading one as the settings say (alone or shared by
//! `model-instance-id`), the hot swap's loader and the swap itself, and the async result
//! handler each model is loaded with. The lock order is element.rs's.

use super::*;
use crate::infer::backend::OnResult;
use crate::infer::loader::{self, Loaded};
use std::sync::OnceLock;
use torchcore::sharing::{Joined, Member};

impl<T: Task> Inference<T> {
    /// What the model thread does with an async result: it becomes the newest result, counts in
    /// the stats and is posted with the timestamps of the frame it was computed on (read with
    /// `reading`, the one loaded with the model).
    fn async_result_handler(
        element: &Element,
        reading: Arc<OnceLock<Arc<T::Reading>>>,
    ) -> OnResult<T> {
        let element = element.downgrade();
        Box::new(move |buffers, result, frame| {
            let (Some(element), Some(reading)) = (element.upgrade(), reading.get()) else {
                return;
            };
            let Some(inference) = T::inference(&element) else {
                return;
            };
            let (params, post_messages) = {
                let s = inference.settings();
                (T::params(&s), s.post_messages)
            };
            match T::read(buffers, result, reading, &params, frame) {
                Ok(inferred) => {
                    inference
                        .publisher
                        .async_result(element.upcast_ref(), inferred, post_messages)
                }
                Err(e) => gst::element_error!(element, gst::LibraryError::Failed, ("{}", e)),
            }
        })
    }

    /// This element's key among the users of a shared model: its address.
    fn member_key(element: &Element) -> usize {
        element.as_ptr() as usize
    }

    /// Stops using the shared model of `id` (`model-instance-id`), if any.
    pub(super) fn leave_shared(element: &Element, id: Option<&str>) {
        if let Some(id) = id {
            T::registry().leave(id, Self::member_key(element));
        }
    }

    /// This element as a user of a shared model (`model-instance-id`).
    fn member(element: &Element) -> Member<Settings<T::Settings>> {
        let weak = element.downgrade();
        Member {
            key: Self::member_key(element),
            name: element.name().to_string(),
            adopt: Arc::new(move |from| {
                if let Some(element) = weak.upgrade()
                    && let Some(inference) = T::inference(&element)
                {
                    inference.adopt(&element, from);
                }
            }),
        }
    }

    /// Another element sharing the model hot-swapped it: take its model settings and reload
    /// (joining the new model; `swap` then posts `{name}-model-updated` here too).
    fn adopt(&self, element: &Element, from: &Settings<T::Settings>) {
        let changed = self.settings().adopt_shared(from);
        for name in changed {
            element.notify(name);
        }
        if let Some(reloader) = lock(&self.reloader).as_ref() {
            reloader.request();
        }
    }

    /// Loads as `settings` say, with async results read as the model loaded is.
    pub(super) fn load_model(
        &self,
        element: &Element,
        settings: &Settings<T::Settings>,
    ) -> Result<Loaded<T>, String> {
        let loaded =
            loader::load::<T>(settings, Self::member(element), T::registry(), |reading| {
                Self::async_result_handler(element, reading)
            })?;
        if let Some(Joined::Swapped(members)) = &loaded.joined {
            // A hot swap of a shared model: the other elements follow (no lock is held here).
            for member in members {
                (member.adopt)(settings);
            }
        }
        let id = &settings.model_instance_id;
        match &loaded.joined {
            Some(Joined::Shared) => gst::info!(
                self.cat,
                obj = element,
                "Sharing the model of model-instance-id {id:?} ({} elements)",
                loaded.model.clients()
            ),
            Some(_) => gst::info!(
                self.cat,
                obj = element,
                "Loaded the model of model-instance-id {id:?}"
            ),
            None => {}
        }
        gst::info!(
            self.cat,
            obj = element,
            "Loaded model {} ({} classes, outputs {:?}, input {:?}, engine {} = {}, latency {:?})",
            settings.shared.model,
            T::classes(&loaded.reading),
            loaded.model.loaded().output_shapes,
            loaded.input,
            settings.shared.engine,
            crate::model::current_engine(),
            loaded.latency
        );
        Ok(loaded)
    }

    /// Applies what a load gave: the engine warning and the latency it needs.
    pub(super) fn apply_loaded(&self, element: &Element, loaded: &Loaded<T>) {
        if let Some(note) = loaded.model.batch_note() {
            gst::info!(self.cat, obj = element, "{}", note);
        }
        {
            let mut latency = lock(&self.latency);
            *latency = (*latency).max(clock_time(loaded.latency));
        }
        if let Some(w) = &loaded.warning {
            gst::element_warning!(element, gst::LibraryError::Settings, ("{}", w));
        }
    }

    /// The hot swap's loader thread for this run: it loads with the newest settings (and the
    /// new model's config file) and swaps the model in between two frames.
    pub(super) fn start_reloader(&self, element: &Element) -> Result<Reloader, String> {
        let weak = element.downgrade();
        let apply_to = weak.clone();
        Reloader::start(
            T::NAME,
            move || {
                let element = weak.upgrade()?;
                let inference = T::inference(&element)?;
                let settings = inference.settings().clone();
                Some(inference.load_model(&element, &settings))
            },
            move |outcome| {
                if let Some(element) = apply_to.upgrade()
                    && let Some(inference) = T::inference(&element)
                {
                    inference.swap(&element, outcome);
                }
            },
        )
    }

    /// Swaps a freshly loaded model in (a frame in flight gets its result from the old one: the
    /// stream follows at its next step), or warns that the old one stays.
    fn swap(&self, element: &Element, outcome: Result<Loaded<T>, String>) {
        let loaded = match outcome {
            Ok(loaded) => loaded,
            Err(e) => {
                gst::element_warning!(
                    element,
                    gst::LibraryError::Settings,
                    ("{}; keeping the previous model", e)
                );
                return;
            }
        };
        self.apply_loaded(element, &loaded);
        let classes = T::classes(&loaded.reading) as u32;
        let old = {
            let mut active = lock(&self.active);
            let Some(current) = active.as_mut() else {
                return; // stopped meanwhile: `loaded` is dropped here, outside the lock
            };
            let next = Active {
                model: Arc::new(loaded.model),
                reading: loaded.reading,
                input: loaded.input,
                generation: current.generation + 1,
            };
            std::mem::replace(current, next)
        };
        drop(old); // outside the lock (the stream may still hold it until its next step)
        self.publisher
            .update_stats(|s| s.engine = crate::model::current_engine());
        let s = {
            let settings = self.settings();
            gst::Structure::builder(format!("{}-model-updated", T::NAME))
                .field("model", &settings.shared.model)
                .field("labels", settings.shared.labels.as_deref())
                .field("classes", classes)
                .build()
        };
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    }
}
