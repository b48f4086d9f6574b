//! Models shared by id (`model-instance-id`): elements in one process with the same id share one
//! model (one load, one model thread, one copy of the weights, their frames batched together).
//!
//! A [`Registry`] maps an id to a slot: the shared model (a weak reference, `M`: the last element
//! to stop frees the model), the settings it was loaded with, the element that loaded it and the
//! elements using it. An element joins when its settings agree with the model's (`differs` finds
//! no property that differs); else it is refused with an error naming both elements and the
//! first property that differs. A member that loads with other settings (a hot swap) replaces the
//! model for all: the others are handed the new settings ([`Member::adopt`]) and reload, joining
//! the new model.
//!
//! Lock order: the registry's lock is taken with no element lock held, and a model's own lock
//! (in `join`) may be taken under it. No load runs under it: the element that loads marks the
//! id's slot as loading and releases the lock; elements starting with the same id wait for that
//! slot (and only for it), those with other ids go on. `adopt` callbacks run after the registry
//! is released.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// An element using a shared model.
pub struct Member<S> {
    /// Tells the elements apart (the element's address).
    pub key: usize,
    /// For error messages: the element's name.
    pub name: String,
    /// Gives the element the settings of a hot-swapped model, for it to reload.
    pub adopt: Arc<dyn Fn(&S) + Send + Sync>,
}

impl<S> Clone for Member<S> {
    fn clone(&self) -> Self {
        Member {
            key: self.key,
            name: self.name.clone(),
            adopt: self.adopt.clone(),
        }
    }
}

/// A weak reference to a model: whether some element still holds it.
pub trait Alive {
    fn alive(&self) -> bool;
}

impl<P> Alive for crate::batch::SharedModel<P> {
    fn alive(&self) -> bool {
        crate::batch::SharedModel::alive(self)
    }
}

struct Entry<M, S> {
    model: M,
    settings: S,
    /// The element that loaded the model.
    owner: String,
    members: Vec<Member<S>>,
}

enum Slot<M, S> {
    /// An element is loading a model for the id (the entry it replaces, if a hot swap).
    Loading(Option<Entry<M, S>>),
    Ready(Entry<M, S>),
}

impl<M, S> Slot<M, S> {
    fn entry_mut(&mut self) -> Option<&mut Entry<M, S>> {
        match self {
            Slot::Loading(entry) => entry.as_mut(),
            Slot::Ready(entry) => Some(entry),
        }
    }
}

/// What [`Registry::model`] did, besides giving the model.
pub enum Joined<S> {
    /// Loaded it (first element, or settings of its own while no other element uses the id).
    Loaded,
    /// Joined the model another element loaded.
    Shared,
    /// Replaced the shared model (a hot swap by a member): call these members' `adopt` with the
    /// settings, after releasing every lock.
    Swapped(Vec<Member<S>>),
}

/// The first property in which two settings differ: its name and both values as text.
pub type Difference = (&'static str, String, String);

/// Shared models by id; see the module docs.
pub struct Registry<M, S> {
    slots: Mutex<HashMap<String, Slot<M, S>>>,
    /// Signalled when a slot stops loading.
    loaded: Condvar,
}

impl<M, S> Default for Registry<M, S> {
    fn default() -> Self {
        Registry {
            slots: Mutex::new(HashMap::new()),
            loaded: Condvar::new(),
        }
    }
}

impl<M: Alive, S: Clone> Registry<M, S> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot<M, S>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model for `member` with `settings` under `id`: joins the live model whose settings
    /// agree (`join` makes a handle on it; None: it is stopping), loads one with `load` if there
    /// is none (or replaces it, for a member: a hot swap), or refuses with an error naming both
    /// elements and the property `differs` found. `load` gives the caller's handle and the weak
    /// reference others join.
    pub fn model<T>(
        &self,
        id: &str,
        settings: &S,
        member: Member<S>,
        differs: impl Fn(&S, &S) -> Option<Difference>,
        join: impl FnOnce(&M) -> Option<T>,
        load: impl FnOnce() -> Result<(T, M), String>,
    ) -> Result<(T, Joined<S>), String> {
        let mut slots = self.lock();
        // Another element is loading for this id: wait for its model (only for this slot).
        while matches!(slots.get(id), Some(Slot::Loading(_))) {
            slots = self.loaded.wait(slots).unwrap_or_else(|e| e.into_inner());
        }
        // A model no element holds any more (its members failed to start, say) is no model.
        if matches!(slots.get(id), Some(Slot::Ready(e)) if !e.model.alive()) {
            slots.remove(id);
        }
        if let Some(Slot::Ready(entry)) = slots.get_mut(id) {
            let is_member = entry.members.iter().any(|m| m.key == member.key);
            let others = entry.members.iter().any(|m| m.key != member.key);
            let difference = differs(settings, &entry.settings);
            if difference.is_none()
                && let Some(model) = join(&entry.model)
            {
                if !is_member {
                    entry.members.push(member);
                }
                return Ok((model, Joined::Shared));
            }
            if others && !is_member {
                let (name, mine, theirs) =
                    difference.unwrap_or(("model-instance-id", "".into(), "".into()));
                return Err(format!(
                    "Property 'model-instance-id' = \"{id}\": element '{}' cannot share the model \
                     of element '{}': property '{name}' differs ('{mine}' here, '{theirs}' there)",
                    member.name, entry.owner
                ));
            }
        }
        // No live model under the id, or a member's hot swap: load, with the slot marked.
        let previous = match slots.remove(id) {
            Some(Slot::Ready(entry)) => Some(entry),
            _ => None,
        };
        slots.insert(id.to_string(), Slot::Loading(previous));
        drop(slots);
        let loaded = catch_unwind(AssertUnwindSafe(load))
            .unwrap_or_else(|_| Err("loading the model panicked".to_string()));
        let mut slots = self.lock();
        let previous = match slots.remove(id) {
            Some(Slot::Loading(previous)) => previous,
            _ => None,
        };
        let result = match loaded {
            Err(e) => {
                // The model that was there stays, while some element holds it.
                if let Some(entry) = previous.filter(|e| e.model.alive()) {
                    slots.insert(id.to_string(), Slot::Ready(entry));
                }
                Err(e)
            }
            Ok((model, shared)) => {
                let mut members = previous.map(|e| e.members).unwrap_or_default();
                let swapped: Vec<Member<S>> = members
                    .iter()
                    .filter(|m| m.key != member.key)
                    .cloned()
                    .collect();
                if !members.iter().any(|m| m.key == member.key) {
                    members.push(member.clone());
                }
                slots.insert(
                    id.to_string(),
                    Slot::Ready(Entry {
                        model: shared,
                        settings: settings.clone(),
                        owner: member.name,
                        members,
                    }),
                );
                let joined = if swapped.is_empty() {
                    Joined::Loaded
                } else {
                    Joined::Swapped(swapped)
                };
                Ok((model, joined))
            }
        };
        drop(slots);
        self.loaded.notify_all();
        result
    }

    /// The element `key` stopped using the model under `id`; the entry goes with its last member
    /// (a slot still loading keeps loading for the element that asked).
    pub fn leave(&self, id: &str, key: usize) {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(id) else {
            return;
        };
        let empty = slot.entry_mut().is_some_and(|entry| {
            entry.members.retain(|m| m.key != key);
            entry.members.is_empty()
        });
        if empty && matches!(slot, Slot::Ready(_)) {
            slots.remove(id);
        }
    }

    /// How many elements use the model under `id` (0: none, or none loaded).
    pub fn members(&self, id: &str) -> usize {
        self.lock()
            .get_mut(id)
            .and_then(|slot| slot.entry_mut().map(|e| e.members.len()))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A model: a strong reference; the registry keeps a weak one.
    type Strong = Arc<u32>;
    struct Weak(std::sync::Weak<u32>);

    impl Alive for Weak {
        fn alive(&self) -> bool {
            self.0.strong_count() > 0
        }
    }

    fn member(key: usize) -> Member<u32> {
        Member {
            key,
            name: format!("e{key}"),
            adopt: Arc::new(|_| {}),
        }
    }

    fn differs(a: &u32, b: &u32) -> Option<Difference> {
        (a != b).then(|| ("input-size", a.to_string(), b.to_string()))
    }

    fn loaded(value: u32) -> Result<(Strong, Weak), String> {
        let strong = Arc::new(value);
        let weak = Weak(Arc::downgrade(&strong));
        Ok((strong, weak))
    }

    fn join(m: &Weak) -> Option<Strong> {
        m.0.upgrade()
    }

    #[test]
    fn the_same_settings_share_other_settings_are_refused() {
        let r = Registry::<Weak, u32>::default();
        let (a, j) = r
            .model("x", &224, member(1), differs, join, || loaded(224))
            .unwrap();
        assert!(matches!(j, Joined::Loaded));
        let (b, j) = r
            .model("x", &224, member(2), differs, join, || {
                panic!("no second load")
            })
            .unwrap();
        assert!(matches!(j, Joined::Shared) && Arc::ptr_eq(&a, &b));
        assert_eq!(r.members("x"), 2);
        let e = r
            .model("x", &160, member(3), differs, join, || loaded(160))
            .err()
            .unwrap();
        assert_eq!(
            e,
            "Property 'model-instance-id' = \"x\": element 'e3' cannot share the model of \
             element 'e1': property 'input-size' differs ('160' here, '224' there)"
        );
        // Another id is another model.
        let (c, _) = r
            .model("y", &160, member(3), differs, join, || loaded(160))
            .unwrap();
        assert_eq!(*c, 160);
        r.leave("x", 1);
        r.leave("x", 2);
        assert_eq!(r.members("x"), 0);
    }

    #[test]
    fn a_members_hot_swap_replaces_the_model_for_all() {
        let r = Registry::<Weak, u32>::default();
        let (_a, _) = r
            .model("x", &1, member(1), differs, join, || loaded(1))
            .unwrap();
        let (_b, _) = r
            .model("x", &1, member(2), differs, join, || loaded(1))
            .unwrap();
        let (new, j) = r
            .model("x", &2, member(1), differs, join, || loaded(2))
            .unwrap();
        assert_eq!(*new, 2);
        match j {
            Joined::Swapped(others) => {
                assert_eq!(others.iter().map(|m| m.key).collect::<Vec<_>>(), vec![2])
            }
            _ => panic!("not a swap"),
        }
        // The other member follows: it joins the new model.
        let (b, j) = r
            .model("x", &2, member(2), differs, join, || panic!("loaded"))
            .unwrap();
        assert!(matches!(j, Joined::Shared) && *b == 2);
    }

    #[test]
    fn a_failed_load_leaves_no_slot_behind_and_a_dead_model_is_no_model() {
        let r = Registry::<Weak, u32>::default();
        let e = r.model("x", &1, member(1), differs, join, || Err("bad file".into()));
        assert_eq!(e.err(), Some("bad file".to_string()));
        let e = r.model("x", &1, member(1), differs, join, || panic!("boom"));
        assert!(e.err().unwrap().contains("panicked"));
        let (a, _) = r
            .model("x", &1, member(1), differs, join, || loaded(1))
            .unwrap();
        drop(a);
        // Nobody holds it: the next element loads its own, whatever its settings.
        let (b, j) = r
            .model("x", &5, member(2), differs, join, || loaded(5))
            .unwrap();
        assert!(matches!(j, Joined::Loaded) && *b == 5);
    }

    #[test]
    fn loads_of_different_ids_run_in_parallel() {
        // Each load waits for the other to have started: under one lock for both, the first
        // would wait in vain and fail.
        let r = Arc::new(Registry::<Weak, u32>::default());
        let (tx_a, rx_a) = mpsc::channel::<()>();
        let (tx_b, rx_b) = mpsc::channel::<()>();
        let load = |tell: mpsc::Sender<()>, hear: mpsc::Receiver<()>, v: u32| {
            move || {
                let _ = tell.send(());
                hear.recv_timeout(Duration::from_secs(20))
                    .map_err(|_| "the other load did not start".to_string())?;
                loaded(v)
            }
        };
        let r2 = r.clone();
        let other = std::thread::spawn(move || {
            r2.model("b", &2, member(2), differs, join, load(tx_b, rx_a, 2))
                .map(|(m, _)| *m)
        });
        let mine = r
            .model("a", &1, member(1), differs, join, load(tx_a, rx_b, 1))
            .map(|(m, _)| *m);
        assert_eq!(mine, Ok(1));
        assert_eq!(other.join().unwrap(), Ok(2));
    }

    #[test]
    fn a_second_element_with_the_same_id_waits_for_the_load_and_joins() {
        let r = Arc::new(Registry::<Weak, u32>::default());
        let (started_tx, started) = mpsc::channel::<()>();
        let (finish, finish_rx) = mpsc::channel::<()>();
        let r2 = r.clone();
        let first = std::thread::spawn(move || {
            r2.model("x", &1, member(1), differs, join, move || {
                let _ = started_tx.send(());
                let _ = finish_rx.recv();
                loaded(1)
            })
            .map(|(m, _)| m)
        });
        started.recv().unwrap();
        let r3 = r.clone();
        let second = std::thread::spawn(move || {
            r3.model("x", &1, member(2), differs, join, || panic!("loaded twice"))
                .map(|(m, j)| (m, matches!(j, Joined::Shared)))
        });
        finish.send(()).unwrap();
        let first = first.join().unwrap().unwrap();
        let (second, shared) = second.join().unwrap().unwrap();
        assert!(shared && Arc::ptr_eq(&first, &second));
    }
}
