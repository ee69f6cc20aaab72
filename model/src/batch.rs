//! Batches, their acknowledgement, and source checkpoints (DESIGN.md §4).
//!
//! A source attaches a finalizer to each batch it sends. Every copy of the batch (a fan-out
//! to two sinks) holds it; a sink marks its copy delivered once the records are durable
//! (indexer commit, Kafka ack) and drops it. When the last holder lets go, the source's
//! callback runs once with the final status: that is when a Kafka offset may be committed or
//! a file checkpoint advanced. A copy dropped without a mark (a stage that failed, a
//! shutdown that cut it short) makes the status [`BatchStatus::Dropped`], so nothing is
//! acknowledged by accident.

use crate::{Record, RecordId};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// The outcome a source learns for one of its batches.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BatchStatus {
    /// Every sink made the records durable.
    Delivered = 1,
    /// Some holder let go of the batch without delivering it.
    Dropped = 2,
    /// A sink refused the records for good (they will never be accepted).
    Rejected = 3,
}

type Callback = Box<dyn FnOnce(BatchStatus) + Send>;

struct Finalizer {
    /// 0 = not yet marked; otherwise the worst `BatchStatus` any holder reported.
    status: AtomicU8,
    callback: Mutex<Option<Callback>>,
}

impl Drop for Finalizer {
    fn drop(&mut self) {
        let status = match self.status.load(Ordering::Acquire) {
            1 => BatchStatus::Delivered,
            3 => BatchStatus::Rejected,
            _ => BatchStatus::Dropped,
        };
        let callback = match self.callback.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(cb) = callback {
            cb(status);
        }
    }
}

/// The acknowledgement handles a batch carries. Merging batches merges their handles.
///
/// Each copy of a batch (a fan-out to two sinks) is a holder of its own: the source hears
/// `Delivered` only if every copy was marked delivered, and a copy dropped without a mark
/// (a sink that failed or was cut short) makes the outcome `Dropped`.
#[derive(Default)]
pub struct Finalizers {
    handles: Vec<Arc<Finalizer>>,
    marked: bool,
}

impl Clone for Finalizers {
    fn clone(&self) -> Self {
        Finalizers {
            handles: self.handles.clone(),
            marked: false,
        }
    }
}

impl Drop for Finalizers {
    fn drop(&mut self) {
        if !self.marked {
            self.record(BatchStatus::Dropped);
        }
    }
}

impl Finalizers {
    /// No acknowledgement wanted (a source that cannot replay, such as a test feed).
    pub fn none() -> Self {
        Self::default()
    }

    /// One finalizer whose `callback` runs once, when every holder has let go.
    pub fn with_callback(callback: impl FnOnce(BatchStatus) + Send + 'static) -> Self {
        Finalizers {
            handles: vec![Arc::new(Finalizer {
                status: AtomicU8::new(0),
                callback: Mutex::new(Some(Box::new(callback))),
            })],
            marked: false,
        }
    }

    /// Takes over `other`'s handles (when two batches become one).
    pub fn merge(&mut self, mut other: Finalizers) {
        self.handles.append(&mut other.handles);
    }

    /// Records this holder's outcome. The worst outcome of all holders wins, so one sink's
    /// rejection is not hidden by another sink's delivery.
    pub fn mark(&mut self, status: BatchStatus) {
        self.marked = true;
        self.record(status);
    }

    fn record(&self, status: BatchStatus) {
        for f in &self.handles {
            f.status.fetch_max(status as u8, Ordering::AcqRel);
        }
    }

    /// Marks delivered and lets go.
    pub fn deliver(mut self) {
        self.mark(BatchStatus::Delivered);
    }

    /// How many finalizers are attached.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no finalizer is attached.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

impl fmt::Debug for Finalizers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Finalizers({})", self.handles.len())
    }
}

/// How far a source has read one of its inputs: a file (key = its identity) up to a byte
/// offset, a Kafka partition (key = `topic/partition`) up to an offset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The source component's id in the pipeline config.
    pub source: String,
    /// Which input of that source.
    pub key: String,
    /// Position after the last record the batch holds for that input.
    pub position: u64,
    /// The input is done for good (a rotated file read to its end and deleted): its entry
    /// is removed so the stored set does not grow with every file ever read.
    #[serde(default)]
    pub finished: bool,
}

/// The latest checkpoint per (source, input). The indexer stores it in the same commit as
/// the documents, so the index and the checkpoints never disagree after a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CheckpointSet(BTreeMap<String, BTreeMap<String, u64>>);

impl CheckpointSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `checkpoint`, replacing the older position of the same input, or forgetting
    /// the input when it is finished.
    pub fn update(&mut self, checkpoint: &Checkpoint) {
        if checkpoint.finished {
            if let Some(inputs) = self.0.get_mut(&checkpoint.source) {
                inputs.remove(&checkpoint.key);
                if inputs.is_empty() {
                    self.0.remove(&checkpoint.source);
                }
            }
            return;
        }
        self.0
            .entry(checkpoint.source.clone())
            .or_default()
            .insert(checkpoint.key.clone(), checkpoint.position);
    }

    /// The stored position of `key` of `source`.
    pub fn position(&self, source: &str, key: &str) -> Option<u64> {
        self.0.get(source)?.get(key).copied()
    }

    /// Every stored input of `source` with its position.
    pub fn of_source(&self, source: &str) -> impl Iterator<Item = (&str, u64)> {
        self.0
            .get(source)
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Records moving between two stages, with their acknowledgement and checkpoints.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The records, in the order the source read them.
    pub records: Vec<Record>,
    /// Acknowledgement handles of the sources the records came from.
    pub finalizers: Finalizers,
    /// Where the sources will resume once this batch is durable.
    pub checkpoints: Vec<Checkpoint>,
    /// Ids of records in this batch that an earlier run may already have delivered (a
    /// source resuming from a checkpoint that lies before records it had sent). A sink that
    /// already holds such a record replaces it instead of keeping two (DESIGN.md §4).
    pub redelivered: Vec<RecordId>,
}

impl Batch {
    /// A batch of `records` with no acknowledgement and no checkpoints.
    pub fn new(records: Vec<Record>) -> Self {
        Batch {
            records,
            finalizers: Finalizers::none(),
            checkpoints: Vec::new(),
            redelivered: Vec::new(),
        }
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn tracked() -> (Finalizers, mpsc::Receiver<BatchStatus>) {
        let (tx, rx) = mpsc::channel();
        (
            Finalizers::with_callback(move |s| {
                let _ = tx.send(s);
            }),
            rx,
        )
    }

    #[test]
    fn fires_once_when_the_last_holder_lets_go() {
        let (f, rx) = tracked();
        let copy = f.clone();
        copy.deliver();
        assert!(rx.try_recv().is_err(), "fired while a holder remained");
        f.deliver();
        assert_eq!(rx.try_recv(), Ok(BatchStatus::Delivered));
        assert!(rx.try_recv().is_err(), "fired twice");
    }

    #[test]
    fn unmarked_drop_is_not_an_acknowledgement() {
        let (f, rx) = tracked();
        drop(Batch {
            records: vec![],
            finalizers: f,
            checkpoints: vec![],
            redelivered: vec![],
        });
        assert_eq!(rx.try_recv(), Ok(BatchStatus::Dropped));
    }

    #[test]
    fn the_worst_outcome_wins_across_holders() {
        let (f, rx) = tracked();
        let mut other = f.clone();
        other.mark(BatchStatus::Rejected);
        drop(other);
        f.deliver();
        assert_eq!(rx.try_recv(), Ok(BatchStatus::Rejected));
    }

    #[test]
    fn a_copy_dropped_unmarked_is_not_hidden_by_a_delivered_copy() {
        let (f, rx) = tracked();
        let copy_for_second_sink = f.clone();
        f.deliver();
        drop(copy_for_second_sink);
        assert_eq!(rx.try_recv(), Ok(BatchStatus::Dropped));
    }

    #[test]
    fn merged_batches_acknowledge_every_source() {
        let (mut a, rx_a) = tracked();
        let (b, rx_b) = tracked();
        a.merge(b);
        assert_eq!(a.len(), 2);
        a.deliver();
        assert_eq!(rx_a.try_recv(), Ok(BatchStatus::Delivered));
        assert_eq!(rx_b.try_recv(), Ok(BatchStatus::Delivered));
    }

    #[test]
    fn checkpoint_set_keeps_the_latest_position_and_round_trips() {
        let mut set = CheckpointSet::new();
        for (key, pos) in [("a", 10), ("b", 5), ("a", 20), ("c", 1)] {
            set.update(&Checkpoint {
                source: "files".into(),
                key: key.into(),
                position: pos,
                finished: false,
            });
        }
        set.update(&Checkpoint {
            source: "files".into(),
            key: "c".into(),
            position: 9,
            finished: true,
        });
        assert_eq!(
            set.position("files", "c"),
            None,
            "a finished input is forgotten"
        );
        assert_eq!(set.position("files", "a"), Some(20));
        assert_eq!(set.of_source("files").count(), 2);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"{"files":{"a":20,"b":5}}"#);
        assert_eq!(serde_json::from_str::<CheckpointSet>(&json).unwrap(), set);
    }
}
