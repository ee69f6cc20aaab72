//! Opening an index directory.

use crate::splits::{SplitSet, bytes_of, oldest_of};
use crate::{IndexError, IndexSink, LogSearcher, SinkOptions};
use model::{CheckpointSet, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The write path's condition now: what a status page shows beside [`IndexStats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexHealth {
    /// How long ago the last commit succeeded; `None` before the first since the index was
    /// opened.
    pub since_commit: Option<Duration>,
    /// The last failed commit, when none succeeded after it: how long ago, and why.
    pub failing: Option<(Duration, String)>,
    /// The index's filesystem as the disk floor last found it (only with a floor).
    pub disk: Option<DiskReading>,
}

/// The index's filesystem as the disk floor ([`crate::SinkOptions::min_free_disk`]) last
/// found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskReading {
    /// Bytes free.
    pub free_bytes: u64,
    /// The filesystem's size.
    pub total_bytes: u64,
    /// The free bytes the floor asks for.
    pub floor_bytes: u64,
}

impl DiskReading {
    /// Whether the disk is under the floor: the index then does not grow (its oldest splits
    /// go as new ones come).
    pub fn under_floor(&self) -> bool {
        self.free_bytes < self.floor_bytes
    }
}

/// The index's size and the write path's counters (see [`IndexStore::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Splits now.
    pub splits: u64,
    /// tantivy segments searched now, over all splits (each split's segments are merged
    /// only while small: see [`crate::SinkOptions::segment_merge_max_docs`]).
    pub segments: u64,
    /// Records searchable now.
    pub records: u64,
    /// Bytes on disk now.
    pub bytes: u64,
    /// The oldest record's timestamp, from the splits' metadata: where the index's data
    /// begins (see [`IndexStore::oldest_record`]).
    pub oldest_record: Option<Timestamp>,
    /// Commits since the index was opened.
    pub commits: u64,
    /// Records committed since the index was opened.
    pub records_committed: u64,
    /// Commits that failed (their batches were not acknowledged).
    pub commit_failures: u64,
    /// Merges of small splits done.
    pub merges: u64,
    /// Merges that failed (the splits stay as they were).
    pub merge_failures: u64,
    /// Splits dropped by retention.
    pub splits_dropped: u64,
    /// Splits quarantined at open because they could not be read.
    pub splits_quarantined: u64,
}

/// An open index directory (a set of time-partitioned splits): the one place the sink and
/// searchers of a process share.
#[derive(Clone)]
pub struct IndexStore {
    splits: Arc<SplitSet>,
    writable: bool,
}

impl IndexStore {
    /// The tantivy settings every split is created with (the doc store's compression and
    /// block size), for a bench that compares tantivy alone with the same settings.
    pub fn index_settings() -> tantivy::IndexSettings {
        crate::splits::index_settings()
    }

    /// Opens the index in `path` for writing, creating it if needed. Only one process may
    /// hold an index directory for writing ([`IndexError::Locked`] otherwise). A split that
    /// cannot be opened (a damaged `meta.json`, a missing or truncated segment file) is
    /// moved to `<path>/quarantine/` with a warning and the others stay searchable; when
    /// it was the split of the last commit, the sources resume from the commit before, so
    /// what it held is read again where the files still have it.
    pub fn open_or_create(path: &Path) -> Result<Self, IndexError> {
        Ok(IndexStore {
            splits: Arc::new(SplitSet::open_writable(path)?),
            writable: true,
        })
    }

    /// Opens an existing index for reading (offline search, also while a pipeline writes
    /// to it); fails with [`IndexError::NoIndex`] when there is none.
    pub fn open_existing(path: &Path) -> Result<Self, IndexError> {
        Ok(IndexStore {
            splits: Arc::new(SplitSet::open_read_only(path)?),
            writable: false,
        })
    }

    /// The directory of the index.
    pub fn path(&self) -> &Path {
        &self.splits.root
    }

    /// The checkpoints stored by the last commit: where sources resume after a restart.
    pub fn committed_checkpoints(&self) -> Result<CheckpointSet, IndexError> {
        Ok(self.splits.committed_checkpoints())
    }

    /// How many splits the index has now.
    pub fn split_count(&self) -> usize {
        self.splits.snapshot().len()
    }

    /// The index's size and what its write path did since it was opened.
    pub fn stats(&self) -> IndexStats {
        let splits = self.splits.snapshot();
        let c = &self.splits.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        IndexStats {
            splits: splits.len() as u64,
            segments: splits
                .iter()
                .map(|s| s.reader.searcher().segment_readers().len() as u64)
                .sum(),
            records: splits.iter().map(|s| s.stats().docs).sum(),
            bytes: bytes_of(&splits),
            oldest_record: oldest_of(&splits),
            commits: n(&c.commits),
            records_committed: n(&c.records_committed),
            commit_failures: n(&c.commit_failures),
            merges: n(&c.merges),
            merge_failures: n(&c.merge_failures),
            splits_dropped: n(&c.splits_dropped),
            splits_quarantined: n(&c.splits_quarantined),
        }
    }

    /// The write path's condition: the last commit, a failing one, the disk floor.
    pub fn health(&self) -> IndexHealth {
        let Ok(h) = self.splits.counters.health.lock() else {
            return IndexHealth::default();
        };
        IndexHealth {
            since_commit: h.last_commit.map(|t| t.elapsed()),
            failing: h
                .last_failure
                .as_ref()
                .filter(|(t, _)| h.last_commit.is_none_or(|c| c < *t))
                .map(|(t, why)| (t.elapsed(), why.clone())),
            disk: h.disk,
        }
    }

    /// The oldest record's timestamp, from the splits' metadata: where the index's data
    /// begins. `None` while it holds no record.
    pub fn oldest_record(&self) -> Option<Timestamp> {
        oldest_of(&self.splits.snapshot())
    }

    /// Where the index's bytes go, summed over splits: `(part, bytes)` with parts such as
    /// `store`, `postings body`, `positions body`, `terms body`, `columns timestamp`, largest
    /// first. For benchmarks and sizing, not for the hot path (it opens every file).
    pub fn space_usage(&self) -> Result<Vec<(String, u64)>, IndexError> {
        let mut parts: std::collections::BTreeMap<String, u64> = Default::default();
        for split in self.splits.snapshot().iter() {
            let usage =
                split
                    .reader
                    .searcher()
                    .space_usage()
                    .map_err(|reason| IndexError::Directory {
                        path: split.dir.clone(),
                        reason,
                    })?;
            for segment in usage.segments() {
                *parts.entry("store".into()).or_default() += segment.store().total().get_bytes();
                for (kind, per_field) in [
                    ("terms", segment.termdict()),
                    ("postings", segment.postings()),
                    ("positions", segment.positions()),
                    ("columns", segment.fast_fields()),
                    ("fieldnorms", segment.fieldnorms()),
                ] {
                    for field in per_field.fields() {
                        *parts
                            .entry(format!("{kind} {}", field.field_name()))
                            .or_default() += field.total().get_bytes();
                    }
                }
            }
        }
        let mut parts: Vec<(String, u64)> = parts.into_iter().filter(|(_, b)| *b > 0).collect();
        parts.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
        Ok(parts)
    }

    /// The write path. Only one sink may exist per index directory.
    pub fn sink(&self, options: SinkOptions) -> Result<IndexSink, IndexError> {
        if !self.writable {
            return Err(IndexError::Locked(self.splits.root.clone()));
        }
        IndexSink::new(self.splits.clone(), options)
    }

    /// The read path.
    pub fn searcher(&self) -> LogSearcher {
        LogSearcher::new(self.splits.clone())
    }
}
