//! Time-partitioned splits: the index directory holds one tantivy index per split, each
//! with the time span, document count and size it covers, so that a search over a time
//! range opens only the splits it overlaps, retention drops whole splits, and a damaged
//! split is set aside while the others stay searchable.
//!
//! Layout of an index directory:
//!
//! ```text
//! <index>/.lock                     held by the process that writes (one per directory)
//! <index>/splits/<id>/              one tantivy index; ids only grow
//! <index>/splits/<id>.merging/      a merge in progress (removed at the next open)
//! <index>/quarantine/<id>-<unix ns> a split that could not be opened, kept for inspection
//! ```
//!
//! Each split's tantivy commit payload ([`CommitPayload`]) carries the source checkpoints
//! as of that commit and a commit sequence number that grows across splits: the split with
//! the highest number holds the checkpoints the sources resume from. The directory listing
//! is the manifest; nothing else has to agree with it after a crash.
//!
//! A split keeps the schema it was written with. After an upgrade that adds or removes
//! fields, the splits of the version before stay searchable as they are, through their own
//! field handles ([`IndexSchema::for_split`]); new records go to a new split, and merges
//! take only splits of this version's schema (tantivy merges only equal schemas), so the
//! older splits leave with retention.

use crate::{IndexError, IndexSchema};
use model::CheckpointSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};

const SPLITS_DIR: &str = "splits";
const QUARANTINE_DIR: &str = "quarantine";
const MERGING_SUFFIX: &str = ".merging";
const LOCK_FILE: &str = ".lock";
/// tantivy's smallest writer budget; enough for a commit without documents.
pub(crate) const SMALL_WRITER_BUDGET: usize = 15_000_000;

/// What the indexer writes into each tantivy commit of a split next to the documents.
#[derive(serde::Serialize, serde::Deserialize, Default, Clone, Debug)]
pub(crate) struct CommitPayload {
    /// The source checkpoints as of this commit.
    pub(crate) checkpoints: CheckpointSet,
    /// Grows with every commit of the directory, whatever the split.
    #[serde(default)]
    pub(crate) commit_seq: u64,
    /// Oldest record timestamp in the split (ns), for tools reading the directory.
    #[serde(default)]
    pub(crate) min_ts: Option<i64>,
    /// Newest record timestamp in the split (ns).
    #[serde(default)]
    pub(crate) max_ts: Option<i64>,
    /// Documents in the split.
    #[serde(default)]
    pub(crate) docs: u64,
    /// The splits a merge made this one from: found again at open (a crash between the
    /// merge and their removal), they are removed, so no record is held twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) replaces: Vec<u64>,
}

/// Time span, documents and size of a split as its reader sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SplitStats {
    pub(crate) min_ts: Option<i64>,
    pub(crate) max_ts: Option<i64>,
    pub(crate) docs: u64,
    pub(crate) bytes: u64,
}

impl SplitStats {
    /// Whether the split may hold records in `[from, to]` (ns, inclusive).
    pub(crate) fn overlaps(&self, from: Option<i64>, to: Option<i64>) -> bool {
        match (self.min_ts, self.max_ts) {
            (Some(min), Some(max)) => {
                self.docs > 0 && from.is_none_or(|f| max >= f) && to.is_none_or(|t| min <= t)
            }
            _ => false,
        }
    }
}

/// One split: a tantivy index over a stretch of time.
pub(crate) struct Split {
    pub(crate) id: u64,
    pub(crate) dir: PathBuf,
    pub(crate) index: Index,
    /// The fields as this split has them: this version's schema (shared with the set) or,
    /// for a split an older version wrote, its own.
    pub(crate) schema: Arc<IndexSchema>,
    pub(crate) reader: IndexReader,
    /// The stats of the last refresh, and the generation of the reader's snapshot they were
    /// read from.
    stats: RwLock<(SplitStats, u64)>,
    payload: RwLock<CommitPayload>,
    /// No writer adds to it any more (merges take only sealed splits).
    pub(crate) sealed: AtomicBool,
    /// Part of a merge in progress (retention and other merges leave it alone).
    pub(crate) merging: AtomicBool,
}

/// Stored records are compressed with zstd (level 3) in 128 KiB blocks: log records repeat
/// their keys and most of their text, which zstd finds over a block (about half the size
/// lz4 gives); reading a hit decompresses one block (~0.1 ms). Level 7 made the store an
/// eighth smaller (the index 0.47 of the raw text instead of 0.48) for four times the
/// compression CPU (3.5 µs a record instead of 0.9), which on a two-core node was a
/// seventh of the local pipeline's rate (`scripts/bench-ingest.sh`, 42.9k → 48.9k lines/s).
/// Level 12 took nothing more off.
pub(crate) fn index_settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(3),
        }),
        docstore_blocksize: 128 * 1024,
        ..Default::default()
    }
}

/// Decompressed doc-store blocks each segment keeps for the next hit. tantivy's default of
/// 100 is up to 12.5 MiB per segment at our 128 KiB blocks, filled by every segment a
/// search takes hits from; with 4, 5.5 minutes at 42k lines/s peaked at 561 instead of
/// 613 MiB with search latency unchanged. A page of newest hits comes from a few blocks at
/// the end of a segment.
const DOC_STORE_CACHE_BLOCKS: usize = 4;

/// Whether `e` says the index files are damaged (as opposed to a passing I/O or permission
/// problem, which must not cost the user their data).
fn is_damage(e: &IndexError) -> bool {
    use tantivy::TantivyError as E;
    use tantivy::directory::error::OpenReadError;
    match e {
        IndexError::BadPayload { .. } | IndexError::SchemaMismatch { .. } => true,
        IndexError::Tantivy(e) => matches!(
            e,
            E::DataCorruption(_)
                | E::OpenReadError(OpenReadError::FileDoesNotExist(_))
                | E::OpenReadError(OpenReadError::IncompatibleIndex(_))
                | E::IncompatibleIndex(_)
                | E::SchemaError(_)
        ),
        _ => false,
    }
}

fn dir_error(path: &Path, reason: impl std::fmt::Display) -> IndexError {
    IndexError::Directory {
        path: path.to_path_buf(),
        reason: std::io::Error::other(reason.to_string()),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |reason| IndexError::Directory {
        path: path.to_path_buf(),
        reason,
    }
}

fn split_dir_name(id: u64) -> String {
    format!("{id:020}")
}

/// Bytes of the files directly in `dir` (a tantivy index has no subdirectories).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl Split {
    fn open(dir: &Path, id: u64, schema: &Arc<IndexSchema>) -> Result<Split, IndexError> {
        let directory = MmapDirectory::open(dir).map_err(|e| dir_error(dir, e))?;
        let index = Index::open(directory)?;
        Self::from_index(dir, id, index, schema)
    }

    fn create(dir: &Path, id: u64, schema: &Arc<IndexSchema>) -> Result<Split, IndexError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let directory = MmapDirectory::open(dir).map_err(|e| dir_error(dir, e))?;
        let index = Index::create(directory, schema.schema.clone(), index_settings())?;
        Self::from_index(dir, id, index, schema)
    }

    fn from_index(
        dir: &Path,
        id: u64,
        index: Index,
        current: &Arc<IndexSchema>,
    ) -> Result<Split, IndexError> {
        let own = index.schema();
        let schema = if own == current.schema {
            current.clone()
        } else {
            let schema = current
                .for_split(&own)
                .map_err(|detail| IndexError::SchemaMismatch {
                    path: dir.to_path_buf(),
                    detail,
                })?;
            tracing::info!(
                split = %dir.display(),
                "a split written with another version's schema: searched as it is, not merged or written to"
            );
            Arc::new(schema)
        };
        IndexSchema::register_tokenizers(&index);
        // The sink reloads after each commit, so in-process readers see new documents at
        // once; a separate process (offline search) opens a fresh reader anyway.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS)
            .try_into()?;
        let payload = match index.load_metas()?.payload {
            None => CommitPayload::default(),
            Some(p) => serde_json::from_str(&p).map_err(|e| IndexError::BadPayload {
                path: dir.to_path_buf(),
                detail: e.to_string(),
            })?,
        };
        let split = Split {
            id,
            dir: dir.to_path_buf(),
            index,
            schema,
            reader,
            stats: RwLock::default(),
            payload: RwLock::new(payload),
            sealed: AtomicBool::new(true),
            merging: AtomicBool::new(false),
        };
        split.refresh_stats();
        Ok(split)
    }

    /// Reads the time span and document count from the reader's columns, and the size
    /// from the directory.
    pub(crate) fn refresh_stats(&self) {
        let searcher = self.reader.searcher();
        let stats = SplitStats {
            bytes: dir_bytes(&self.dir),
            ..span_of(&searcher)
        };
        if let Ok(mut s) = self.stats.write() {
            *s = (stats, searcher.generation().generation_id());
        }
    }

    /// The split's span, documents and size as of its last refresh.
    pub(crate) fn stats(&self) -> SplitStats {
        self.stats.read().map(|s| s.0).unwrap_or_default()
    }

    /// The split's span and documents as `searcher` (a snapshot of its reader) sees them.
    /// A commit's documents become visible (the reader reloads) just before its refresh:
    /// a search that met them with the stats of before counted them but looked for its
    /// page only up to the old newest time, and said "1 found" with no hit.
    pub(crate) fn stats_seen_by(&self, searcher: &tantivy::Searcher) -> SplitStats {
        let (stats, generation) = self.stats.read().map(|s| *s).unwrap_or_default();
        match generation == searcher.generation().generation_id() {
            true => stats,
            false => SplitStats {
                bytes: stats.bytes,
                ..span_of(searcher)
            },
        }
    }

    /// Makes the stats look as they did before the last commit was refreshed.
    #[cfg(test)]
    pub(crate) fn stats_from_an_older_snapshot(&self, stats: SplitStats) {
        if let Ok(mut s) = self.stats.write() {
            *s = (stats, u64::MAX);
        }
    }

    /// The payload of the split's last commit.
    pub(crate) fn payload(&self) -> CommitPayload {
        self.payload.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Records the payload the sink has just committed.
    pub(crate) fn set_payload(&self, payload: CommitPayload) {
        if let Ok(mut p) = self.payload.write() {
            *p = payload;
        }
    }
}

/// The time span and document count `searcher` sees, from its segments' timestamp columns.
fn span_of(searcher: &tantivy::Searcher) -> SplitStats {
    let mut stats = SplitStats {
        docs: searcher.num_docs(),
        ..SplitStats::default()
    };
    for segment in searcher.segment_readers() {
        if segment.num_docs() == 0 {
            continue;
        }
        if let Ok(column) = segment.fast_fields().i64(crate::schema::TIMESTAMP) {
            let (min, max) = (column.min_value(), column.max_value());
            stats.min_ts = Some(stats.min_ts.map_or(min, |m| m.min(min)));
            stats.max_ts = Some(stats.max_ts.map_or(max, |m| m.max(max)));
        }
    }
    stats
}

/// Counters of the write path and the split set's upkeep, for `/metrics`.
#[derive(Default, Debug)]
pub(crate) struct IndexCounters {
    pub(crate) commits: AtomicU64,
    pub(crate) records_committed: AtomicU64,
    pub(crate) commit_failures: AtomicU64,
    pub(crate) merges: AtomicU64,
    pub(crate) merge_failures: AtomicU64,
    pub(crate) splits_dropped: AtomicU64,
    pub(crate) splits_quarantined: AtomicU64,
    /// What the write path last found, for a status page.
    pub(crate) health: std::sync::Mutex<WriteHealth>,
}

/// What the write path last found (see [`crate::IndexStore::health`]).
#[derive(Default, Debug)]
pub(crate) struct WriteHealth {
    pub(crate) last_commit: Option<std::time::Instant>,
    pub(crate) last_failure: Option<(std::time::Instant, String)>,
    pub(crate) disk: Option<crate::DiskReading>,
}

/// The splits of an index directory, shared by the sink, its background merges and every
/// searcher. Searchers take a snapshot, so a split dropped or merged away under a running
/// search stays readable until the search ends (its files are mapped).
pub(crate) struct SplitSet {
    pub(crate) root: PathBuf,
    /// This version's schema, shared by every split written with it.
    pub(crate) schema: Arc<IndexSchema>,
    splits: RwLock<Arc<Vec<Arc<Split>>>>,
    next_id: AtomicU64,
    /// Whether a sink writes to the set now (one at a time).
    pub(crate) sink_taken: AtomicBool,
    /// What happened to the set since it was opened.
    pub(crate) counters: IndexCounters,
    /// Held for as long as this process may write to the directory.
    _lock: Option<std::fs::File>,
}

impl SplitSet {
    /// Opens `root` for writing, creating it if needed: takes the directory's lock, finishes
    /// or forgets what a crash interrupted (a merge), and quarantines splits that cannot
    /// be opened.
    pub(crate) fn open_writable(root: &Path) -> Result<SplitSet, IndexError> {
        let splits_dir = root.join(SPLITS_DIR);
        std::fs::create_dir_all(&splits_dir).map_err(io_error(&splits_dir))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(IndexError::Locked(root.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
        Self::adopt_unsplit_index(root)?;
        let schema = Arc::new(IndexSchema::new());
        let mut splits = Vec::new();
        let mut quarantined = 0;
        for (id, dir) in Self::list(&splits_dir)? {
            if dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(MERGING_SUFFIX))
            {
                tracing::info!(dir = %dir.display(), "removing an unfinished merge");
                std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
                continue;
            }
            match Split::open(&dir, id, &schema) {
                Ok(split) => splits.push(Arc::new(split)),
                Err(e) if is_damage(&e) => {
                    let aside = root.join(QUARANTINE_DIR).join(format!(
                        "{}-{}",
                        split_dir_name(id),
                        now_nanos()
                    ));
                    tracing::warn!(
                        split = %dir.display(),
                        moved_to = %aside.display(),
                        error = %e,
                        "a split cannot be opened; it is quarantined, the rest stays searchable"
                    );
                    let parent = root.join(QUARANTINE_DIR);
                    std::fs::create_dir_all(&parent).map_err(io_error(&parent))?;
                    std::fs::rename(&dir, &aside).map_err(io_error(&dir))?;
                    quarantined += 1;
                }
                Err(e) => return Err(e),
            }
        }
        let splits = Self::drop_replaced(splits, true);
        let set = Self::new(root, schema, splits, Some(lock));
        set.counters
            .splits_quarantined
            .store(quarantined, Ordering::Relaxed);
        Ok(set)
    }

    /// Opens `root` for reading only (offline search while a pipeline may be writing):
    /// changes nothing on disk; splits that cannot be opened are left out with a warning.
    pub(crate) fn open_read_only(root: &Path) -> Result<SplitSet, IndexError> {
        let splits_dir = root.join(SPLITS_DIR);
        if !splits_dir.is_dir() {
            return Err(IndexError::NoIndex(root.to_path_buf()));
        }
        let schema = Arc::new(IndexSchema::new());
        let mut splits = Vec::new();
        for (id, dir) in Self::list(&splits_dir)? {
            if dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(MERGING_SUFFIX))
            {
                continue;
            }
            match Split::open(&dir, id, &schema) {
                Ok(split) => splits.push(Arc::new(split)),
                Err(e) => {
                    tracing::warn!(split = %dir.display(), error = %e, "skipping a split that cannot be opened");
                }
            }
        }
        Ok(Self::new(
            root,
            schema,
            Self::drop_replaced(splits, false),
            None,
        ))
    }

    fn new(
        root: &Path,
        schema: Arc<IndexSchema>,
        splits: Vec<Arc<Split>>,
        lock: Option<std::fs::File>,
    ) -> SplitSet {
        let next_id = splits.iter().map(|s| s.id + 1).max().unwrap_or(1);
        SplitSet {
            root: root.to_path_buf(),
            schema,
            splits: RwLock::new(Arc::new(splits)),
            next_id: AtomicU64::new(next_id),
            sink_taken: AtomicBool::new(false),
            counters: IndexCounters::default(),
            _lock: lock,
        }
    }

    /// Split directories (finished or merging) with their ids, by id.
    fn list(splits_dir: &Path) -> Result<Vec<(u64, PathBuf)>, IndexError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(splits_dir).map_err(io_error(splits_dir))? {
            let entry = entry.map_err(io_error(splits_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let digits = name.strip_suffix(MERGING_SUFFIX).unwrap_or(&name);
            match digits.parse::<u64>() {
                Ok(id) if entry.path().is_dir() => found.push((id, entry.path())),
                _ => tracing::debug!(name, "ignoring a foreign entry among the splits"),
            }
        }
        found.sort();
        Ok(found)
    }

    /// Leaves out (and, when `remove`, deletes) splits that a finished merge replaced.
    fn drop_replaced(splits: Vec<Arc<Split>>, remove: bool) -> Vec<Arc<Split>> {
        let replaced: std::collections::HashSet<u64> =
            splits.iter().flat_map(|s| s.payload().replaces).collect();
        splits
            .into_iter()
            .filter(|s| {
                if !replaced.contains(&s.id) {
                    return true;
                }
                if remove {
                    tracing::info!(split = %s.dir.display(), "removing a split a merge replaced");
                    if let Err(e) = std::fs::remove_dir_all(&s.dir) {
                        tracing::warn!(split = %s.dir.display(), error = %e, "cannot remove a replaced split");
                    }
                }
                false
            })
            .collect()
    }

    /// An index written before splits existed (its files directly in `root`) becomes the
    /// first split, so upgrading keeps the data and the checkpoints.
    fn adopt_unsplit_index(root: &Path) -> Result<(), IndexError> {
        if !root.join("meta.json").is_file() {
            return Ok(());
        }
        let target = root.join(SPLITS_DIR).join(split_dir_name(0));
        std::fs::create_dir_all(&target).map_err(io_error(&target))?;
        for entry in std::fs::read_dir(root).map_err(io_error(root))? {
            let entry = entry.map_err(io_error(root))?;
            let name = entry.file_name();
            if name == SPLITS_DIR || name == QUARANTINE_DIR || name == LOCK_FILE {
                continue;
            }
            std::fs::rename(entry.path(), target.join(&name)).map_err(io_error(root))?;
        }
        tracing::info!(split = %target.display(), "the index is now the first split of a split directory");
        Ok(())
    }

    /// The splits now; a search works on one snapshot throughout.
    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<Split>>> {
        self.splits.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The bytes all splits take now (retention by size, the disk floor).
    pub(crate) fn bytes(&self) -> u64 {
        bytes_of(&self.snapshot())
    }

    /// The splits that may hold records in `[from, to]` (ns), newest first.
    pub(crate) fn overlapping(&self, from: Option<i64>, to: Option<i64>) -> Vec<Arc<Split>> {
        let mut found: Vec<(SplitStats, Arc<Split>)> = self
            .snapshot()
            .iter()
            .map(|s| (s.stats(), s.clone()))
            .filter(|(stats, _)| stats.overlaps(from, to))
            .collect();
        found.sort_by(|(a, x), (b, y)| b.max_ts.cmp(&a.max_ts).then(y.id.cmp(&x.id)));
        found.into_iter().map(|(_, s)| s).collect()
    }

    /// The checkpoints of the directory's last commit, whichever split it went to.
    pub(crate) fn committed_checkpoints(&self) -> CheckpointSet {
        self.snapshot()
            .iter()
            .map(|s| s.payload())
            .max_by_key(|p| p.commit_seq)
            .map(|p| p.checkpoints)
            .unwrap_or_default()
    }

    /// The highest commit sequence number so far.
    pub(crate) fn last_commit_seq(&self) -> u64 {
        self.snapshot()
            .iter()
            .map(|s| s.payload().commit_seq)
            .max()
            .unwrap_or(0)
    }

    /// Whether `split` was written with this version's schema (so it can be written to and
    /// merged).
    pub(crate) fn has_current_schema(&self, split: &Split) -> bool {
        Arc::ptr_eq(&split.schema, &self.schema)
    }

    fn take_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Creates an empty split and adds it to the set.
    pub(crate) fn create_split(&self) -> Result<Arc<Split>, IndexError> {
        let id = self.take_id();
        let dir = self.root.join(SPLITS_DIR).join(split_dir_name(id));
        let split = Arc::new(Split::create(&dir, id, &self.schema)?);
        self.update(|splits| splits.push(split.clone()));
        Ok(split)
    }

    fn update(&self, change: impl FnOnce(&mut Vec<Arc<Split>>)) {
        if let Ok(mut guard) = self.splits.write() {
            let mut next = guard.as_ref().clone();
            change(&mut next);
            *guard = Arc::new(next);
        }
    }

    /// Removes `split` from searches and deletes its files.
    pub(crate) fn drop_split(&self, split: &Split) -> Result<(), IndexError> {
        self.update(|splits| splits.retain(|s| s.id != split.id));
        self.counters.splits_dropped.fetch_add(1, Ordering::Relaxed);
        std::fs::remove_dir_all(&split.dir).map_err(io_error(&split.dir))
    }

    /// Merges `sources` (sealed splits) into one new split, which replaces them in the set
    /// and on disk. Crash-safe: the merge is written under a `.merging` name (forgotten at
    /// the next open), renamed into place only when complete, and lists what it replaces.
    pub(crate) fn merge(&self, sources: &[Arc<Split>]) -> Result<Arc<Split>, IndexError> {
        let id = self.take_id();
        let splits_dir = self.root.join(SPLITS_DIR);
        let staging = splits_dir.join(format!("{}{MERGING_SUFFIX}", split_dir_name(id)));
        std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
        let directory = MmapDirectory::open(&staging).map_err(|e| dir_error(&staging, e))?;
        let indices: Vec<Index> = sources.iter().map(|s| s.index.clone()).collect();
        let merged = tantivy::indexer::merge_indices(&indices, directory)?;
        IndexSchema::register_tokenizers(&merged);
        let newest = sources
            .iter()
            .map(|s| s.payload())
            .max_by_key(|p| p.commit_seq)
            .unwrap_or_default();
        let stats: Vec<SplitStats> = sources.iter().map(|s| s.stats()).collect();
        let payload = CommitPayload {
            checkpoints: newest.checkpoints,
            commit_seq: newest.commit_seq,
            min_ts: stats.iter().filter_map(|s| s.min_ts).min(),
            max_ts: stats.iter().filter_map(|s| s.max_ts).max(),
            docs: stats.iter().map(|s| s.docs).sum(),
            replaces: sources.iter().map(|s| s.id).collect(),
        };
        let text = serde_json::to_string(&payload)
            .map_err(|e| IndexError::EncodeCheckpoints(e.to_string()))?;
        let mut writer: tantivy::IndexWriter =
            merged.writer_with_num_threads(1, SMALL_WRITER_BUDGET)?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&text);
        prepared.commit()?;
        writer.wait_merging_threads()?;
        drop(merged);
        let dir = splits_dir.join(split_dir_name(id));
        std::fs::rename(&staging, &dir).map_err(io_error(&staging))?;
        let split = Arc::new(Split::open(&dir, id, &self.schema)?);
        let replaced: Vec<u64> = sources.iter().map(|s| s.id).collect();
        self.update(|splits| {
            splits.retain(|s| !replaced.contains(&s.id));
            splits.push(split.clone());
        });
        for source in sources {
            if let Err(e) = std::fs::remove_dir_all(&source.dir) {
                // The next open removes it: the merged split lists it as replaced.
                tracing::warn!(split = %source.dir.display(), error = %e, "cannot remove a merged split");
            }
        }
        Ok(split)
    }
}

/// The bytes `splits` take, from their metadata.
pub(crate) fn bytes_of(splits: &[Arc<Split>]) -> u64 {
    splits.iter().map(|s| s.stats().bytes).sum()
}

/// The oldest record of `splits`, from their metadata.
pub(crate) fn oldest_of(splits: &[Arc<Split>]) -> Option<model::Timestamp> {
    let oldest = splits.iter().filter_map(|s| s.stats().min_ts).min();
    oldest.map(model::Timestamp::from_unix_nanos)
}

#[cfg(test)]
mod tests;
