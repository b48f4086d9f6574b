//! `torchclassify`'s models: loading one as the settings say (alone or shared by
//! `model-instance-id`), the hot swap's loader and the swap itself, and the async result
//! handler each model is loaded with. The lock order is imp.rs's.

use super::*;

impl TorchClassify {
    /// What the model thread does with an async result: it becomes the newest result, counts in
    /// the stats and is posted with the timestamps of the frame it was computed on.
    fn async_result_handler(&self, reading: Reading, regions: bool) -> OnResult {
        let element = self.obj().downgrade();
        Box::new(move |buffers, result, frame| {
            let Some(element) = element.upgrade() else {
                return;
            };
            let imp = element.imp();
            let (top_k, post_messages) = {
                let s = imp.settings();
                (s.top_k as usize, s.post_messages)
            };
            match backend::read(buffers, result, regions, (&reading, top_k), frame) {
                Ok(inferred) => imp
                    .publisher
                    .async_result(&imp.element(), inferred, post_messages),
                Err(e) => gst::element_imp_error!(imp, gst::LibraryError::Failed, ("{}", e)),
            }
        })
    }

    /// This element's key among the users of a shared model: its address.
    fn member_key(&self) -> usize {
        self.obj().as_ptr() as usize
    }

    /// Stops using the shared model of `id` (`model-instance-id`), if any.
    pub(super) fn leave_shared(&self, id: Option<&str>) {
        if let Some(id) = id {
            loader::leave(id, self.member_key());
        }
    }

    /// This element as a user of a shared model (`model-instance-id`).
    fn member(&self) -> Member<Settings> {
        let element = self.obj().downgrade();
        Member {
            key: self.member_key(),
            name: self.obj().name().to_string(),
            adopt: Arc::new(move |from| {
                if let Some(element) = element.upgrade() {
                    element.imp().adopt(from);
                }
            }),
        }
    }

    /// Another element sharing the model hot-swapped it: take its model settings and reload
    /// (joining the new model; `swap` then posts `torchclassify-model-updated` here too).
    fn adopt(&self, from: &Settings) {
        let changed = self.settings().adopt_shared(from);
        for name in changed {
            self.obj().notify(name);
        }
        if let Some(reloader) = lock(&self.reloader).as_ref() {
            reloader.request();
        }
    }

    /// Loads as `settings` say, with async results read as the model loaded is.
    pub(super) fn load_model(&self, settings: &Settings) -> Result<Loaded, String> {
        let regions = settings.inference_region == InferenceRegion::RoiList;
        let loaded = loader::load(settings, self.member(), |reading| {
            self.async_result_handler(reading, regions)
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
                CAT,
                imp = self,
                "Sharing the model of model-instance-id {id:?} ({} elements)",
                loaded.model.clients()
            ),
            Some(_) => gst::info!(
                CAT,
                imp = self,
                "Loaded the model of model-instance-id {id:?}"
            ),
            None => {}
        }
        gst::info!(
            CAT,
            imp = self,
            "Loaded model {} ({} classes, input {:?}, {:?} threshold {}, engine {} = {}, \
             latency {:?})",
            settings.shared.model,
            loaded.reading.labels.len(),
            loaded.input,
            loaded.reading.output,
            loaded.reading.threshold,
            settings.shared.engine,
            crate::model::current_engine(),
            loaded.latency
        );
        Ok(loaded)
    }

    /// Applies what a load gave: the engine warning and the latency it needs.
    pub(super) fn apply_loaded(&self, loaded: &Loaded) {
        if let Some(note) = loaded.model.batch_note() {
            gst::info!(CAT, imp = self, "{}", note);
        }
        {
            let mut latency = lock(&self.latency);
            *latency = (*latency).max(clock_time(loaded.latency));
        }
        if let Some(w) = &loaded.warning {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
    }

    /// The hot swap's loader thread for this run: it loads with the newest settings (and the
    /// new model's config file) and swaps the model in between two frames.
    pub(super) fn start_reloader(&self) -> Result<Reloader, String> {
        let element = self.obj().downgrade();
        let apply_to = element.clone();
        Reloader::start(
            move || {
                let element = element.upgrade()?;
                let imp = element.imp();
                let settings = imp.settings().clone();
                Some(imp.load_model(&settings))
            },
            move |outcome| {
                if let Some(element) = apply_to.upgrade() {
                    element.imp().swap(outcome);
                }
            },
        )
    }

    /// Swaps a freshly loaded model in (a frame in flight gets its result from the old one: the
    /// stream follows at its next step), or warns that the old one stays.
    fn swap(&self, outcome: Result<Loaded, String>) {
        let loaded = match outcome {
            Ok(loaded) => loaded,
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    ("{}; keeping the previous model", e)
                );
                return;
            }
        };
        self.apply_loaded(&loaded);
        let classes = loaded.reading.labels.len() as u32;
        let old = {
            let mut active = lock(&self.active);
            let Some(current) = active.as_mut() else {
                return; // stopped meanwhile: `loaded` is dropped here, outside the lock
            };
            let next = Active {
                model: Arc::new(loaded.model),
                reading: Arc::new(loaded.reading),
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
            gst::Structure::builder("torchclassify-model-updated")
                .field("model", &settings.shared.model)
                .field("labels", settings.shared.labels.as_deref())
                .field("classes", classes)
                .build()
        };
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }
}
