//! `model-instance-id`: `torchclassify` elements in one process with the same id share one model
//! (one load, one model thread, one copy of the weights, their frames batched together).
//!
//! The registry maps an id to the shared model (a weak reference: the last element to stop
//! frees the model), the settings it was loaded with, the element that loaded it and the
//! elements using it. An element joins when its [`Settings::shared_key`] equals the model's;
//! else it is refused with an error naming both elements and the first property that differs.
//! A member that loads with other settings (a hot swap) replaces the model for all: the others
//! are handed the new settings ([`Member::adopt`]) and reload, joining the new model.
//!
//! Lock order: the registry is locked with no element lock held (loads run from `start` and the
//! loader thread), and a model's own lock (inference.rs) may be taken under it. Loads run under
//! it, so two elements starting together load once. `adopt` callbacks run after it is released.

use super::settings::Settings;
use crate::inference::{Model, SharedModel};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// An element using a shared model.
#[derive(Clone)]
pub struct Member {
    /// Tells the elements apart (the element's address).
    pub key: usize,
    /// For error messages: the element's name.
    pub name: String,
    /// Gives the element the settings of a hot-swapped model, for it to reload.
    pub adopt: Arc<dyn Fn(&Settings) + Send + Sync>,
}

struct Entry {
    model: SharedModel,
    settings: Settings,
    /// The element that loaded the model.
    owner: String,
    members: Vec<Member>,
}

static REGISTRY: LazyLock<Mutex<HashMap<String, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, Entry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`model`] did, besides giving the model.
pub enum Joined {
    /// Loaded it (first element, or settings of its own while no other element uses the id).
    Loaded,
    /// Joined the model another element loaded.
    Shared,
    /// Replaced the shared model (a hot swap by a member): call these members' `adopt` with the
    /// settings, after releasing every lock.
    Swapped(Vec<Member>),
}

/// The model for `member` with `settings` under `id`: joins the live model with the same
/// settings, loads one with `load` if there is none (or replaces it, for a member), or refuses.
pub fn model(
    id: &str,
    settings: &Settings,
    member: Member,
    join: impl FnOnce(&SharedModel) -> Option<Model>,
    load: impl FnOnce() -> Result<Model, String>,
) -> Result<(Model, Joined), String> {
    let mut registry = registry();
    let key = settings.shared_key();
    let mut join = Some(join);
    // A model no element holds any more (its members failed to start, say) is no model.
    if registry.get(id).is_some_and(|e| !e.model.alive()) {
        registry.remove(id);
    }
    if let Some(entry) = registry.get_mut(id) {
        let is_member = entry.members.iter().any(|m| m.key == member.key);
        let others = entry.members.iter().any(|m| m.key != member.key);
        let theirs = entry.settings.shared_key();
        if theirs == key
            && let Some(model) = join.take().and_then(|join| join(&entry.model))
        {
            if !is_member {
                entry.members.push(member);
            }
            return Ok((model, Joined::Shared));
        }
        if others && !is_member {
            let (name, mine, theirs) = key
                .iter()
                .zip(&theirs)
                .find(|(a, b)| a != b)
                .map(|((name, a), (_, b))| (*name, a.clone(), b.clone()))
                .unwrap_or(("model-instance-id", String::new(), String::new()));
            return Err(format!(
                "Property 'model-instance-id' = \"{id}\": element '{}' cannot share the model of \
                 element '{}': property '{name}' differs ('{mine}' here, '{theirs}' there)",
                member.name, entry.owner
            ));
        }
    }
    // No live model under the id, or a member's hot swap: load (under the lock: one load).
    let model = load()?;
    let previous = registry.remove(id);
    let mut members = previous.map(|e| e.members).unwrap_or_default();
    let swapped: Vec<Member> = members
        .iter()
        .filter(|m| m.key != member.key)
        .cloned()
        .collect();
    if !members.iter().any(|m| m.key == member.key) {
        members.push(member.clone());
    }
    registry.insert(
        id.to_string(),
        Entry {
            model: model.share(),
            settings: settings.clone(),
            owner: member.name,
            members,
        },
    );
    let joined = if swapped.is_empty() {
        Joined::Loaded
    } else {
        Joined::Swapped(swapped)
    };
    Ok((model, joined))
}

/// The element `key` stopped using the model under `id`; the entry goes with its last member.
pub fn leave(id: &str, key: usize) {
    let mut registry = registry();
    if let Some(entry) = registry.get_mut(id) {
        entry.members.retain(|m| m.key != key);
        if entry.members.is_empty() {
            registry.remove(id);
        }
    }
}
