//! What the trackers of each kind share: the last state seen of each object (so a relist
//! that resends unchanged objects says nothing), and a table of the current state by a
//! readable key, which `/metrics` reads while the watches write it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The current state of every object of one kind, by key (namespace and name, say).
#[derive(Debug)]
pub struct StateTable<K, S>(Mutex<BTreeMap<K, S>>);

impl<K, S> Default for StateTable<K, S> {
    fn default() -> Self {
        StateTable(Mutex::new(BTreeMap::new()))
    }
}

impl<K: Ord + Clone, S: Clone> StateTable<K, S> {
    /// A copy of the table, in key order.
    pub fn snapshot(&self) -> Vec<(K, S)> {
        let table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        table.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn set(&self, key: K, state: Option<S>) {
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match state {
            Some(s) => table.insert(key, s),
            None => table.remove(&key),
        };
    }
}

/// The last state seen of each object by uid, and the table that shows it.
#[derive(Debug)]
pub struct ChangeTracker<K, S> {
    seen: HashMap<String, S>,
    table: Arc<StateTable<K, S>>,
}

impl<K, S> Default for ChangeTracker<K, S> {
    fn default() -> Self {
        ChangeTracker {
            seen: HashMap::new(),
            table: Arc::default(),
        }
    }
}

/// What [`ChangeTracker::applied`] found.
pub enum Change<S> {
    /// The same as last seen: nothing to record.
    Unchanged,
    /// Not seen before.
    New,
    /// Changed from this.
    From(S),
}

impl<K: Ord + Clone, S: Clone + PartialEq> ChangeTracker<K, S> {
    /// The table it keeps.
    pub fn table(&self) -> Arc<StateTable<K, S>> {
        self.table.clone()
    }

    /// Notes `state` as the object `uid`'s (shown under `key`) and says how it differs from
    /// what was seen last.
    pub fn applied(&mut self, uid: &str, key: K, state: S) -> Change<S> {
        self.table.set(key, Some(state.clone()));
        match self.seen.insert(uid.to_string(), state.clone()) {
            None => Change::New,
            Some(before) if before == state => Change::Unchanged,
            Some(before) => Change::From(before),
        }
    }

    /// Forgets a deleted object and takes it off the table.
    pub fn deleted(&mut self, uid: &str, key: K) {
        self.seen.remove(uid);
        self.table.set(key, None);
    }

    /// The last state seen of `uid`.
    pub fn get(&self, uid: &str) -> Option<&S> {
        self.seen.get(uid)
    }

    /// Objects remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
