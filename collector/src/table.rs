//! What the trackers of each kind share: the last state seen of each object (so a relist
//! that resends unchanged objects says nothing), and a table of the current state by a
//! readable key, which `/metrics` reads while the watches write it.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// The last state seen of each object by uid (with the key it is shown under), and the
/// table that shows it.
#[derive(Debug)]
pub struct ChangeTracker<K, S> {
    seen: HashMap<String, (K, S)>,
    table: Arc<StateTable<K, S>>,
    /// The uids a relist in progress has given so far.
    relist: Option<HashSet<String>>,
}

impl<K, S> Default for ChangeTracker<K, S> {
    fn default() -> Self {
        ChangeTracker {
            seen: HashMap::new(),
            table: Arc::default(),
            relist: None,
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
    /// A tracker that shows its objects in `table`, with others' (one tracker per watched
    /// kind, so that a relist of one kind leaves the others' objects alone).
    pub fn sharing(table: Arc<StateTable<K, S>>) -> Self {
        ChangeTracker {
            seen: HashMap::new(),
            table,
            relist: None,
        }
    }

    /// The table it keeps.
    pub fn table(&self) -> Arc<StateTable<K, S>> {
        self.table.clone()
    }

    /// Notes `state` as the object `uid`'s (shown under `key`) and says how it differs from
    /// what was seen last.
    pub fn applied(&mut self, uid: &str, key: K, state: S) -> Change<S> {
        if let Some(listed) = &mut self.relist {
            listed.insert(uid.to_string());
        }
        self.table.set(key.clone(), Some(state.clone()));
        match self.seen.insert(uid.to_string(), (key, state.clone())) {
            None => Change::New,
            Some((_, before)) if before == state => Change::Unchanged,
            Some((_, before)) => Change::From(before),
        }
    }

    /// Remembers an object an earlier run saw, in `state` (what this run knows of it: next
    /// to nothing), off the table: the next relist either gives it (its state then counts
    /// as changed from `state`) or finds it gone.
    pub fn remember(&mut self, uid: &str, key: K, state: S) {
        self.seen.entry(uid.to_string()).or_insert((key, state));
    }

    /// Forgets a deleted object and takes it off the table.
    pub fn deleted(&mut self, uid: &str, key: K) {
        self.seen.remove(uid);
        self.table.set(key, None);
    }

    /// A (re)list starts: what it gives is all there is.
    pub fn relisting(&mut self) {
        self.relist = Some(HashSet::new());
    }

    /// The (re)list is complete: objects it did not give were deleted while no watch was
    /// there to say so (the API server away, 410 Expired). They are forgotten and taken off
    /// the table (unless an object listed now has their key: a pod deleted and made again
    /// under its name), and returned as (uid, key, last state).
    pub fn relisted(&mut self) -> Vec<(String, K, S)> {
        let Some(listed) = self.relist.take() else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|uid| !listed.contains(*uid))
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(gone.len());
        for uid in gone {
            if let Some((key, state)) = self.seen.remove(&uid) {
                if !self.seen.values().any(|(k, _)| *k == key) {
                    self.table.set(key.clone(), None);
                }
                out.push((uid, key, state));
            }
        }
        out
    }

    /// Every object remembered: (uid, key, last state seen).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &K, &S)> {
        self.seen
            .iter()
            .map(|(uid, (key, state))| (uid.as_str(), key, state))
    }

    /// The key `uid` is shown under and its last state seen.
    pub fn get(&self, uid: &str) -> Option<(&K, &S)> {
        self.seen.get(uid).map(|(key, state)| (key, state))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relist_forgets_what_it_did_not_give_but_not_a_namesake_made_again() {
        let mut t: ChangeTracker<&str, u32> = ChangeTracker::default();
        t.relisting();
        t.applied("uid-a", "a", 1);
        t.applied("uid-b", "b", 1);
        t.applied("uid-c", "c", 1);
        assert!(t.relisted().is_empty(), "the first list finds nothing gone");
        t.relisting();
        t.applied("uid-a", "a", 2);
        // `c` was deleted and made again under its name; `b` is gone.
        t.applied("uid-c2", "c", 1);
        let mut gone = t.relisted();
        gone.sort();
        assert_eq!(gone, [("uid-b".into(), "b", 1), ("uid-c".into(), "c", 1)]);
        assert_eq!(t.table().snapshot(), [("a", 2), ("c", 1)]);
        assert_eq!(t.len(), 2);
        // Outside a relist, nothing is taken as gone.
        assert!(t.relisted().is_empty());
    }
}
