//! The write path: batches in, commits (documents + checkpoints) out, then acknowledgements.
//! Documents go to the active split; a full or old one is sealed and a new one started;
//! small sealed splits are merged in the background and old ones dropped by retention.

use crate::documents::{DocumentBatch, DocumentMaker};
use crate::splits::{CommitPayload, Split, SplitSet};
use crate::{IndexError, IndexSchema};
use model::{Batch, CheckpointSet, Finalizers};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tantivy::IndexWriter;
use tantivy::indexer::UserOperation;

/// Documents handed to tantivy's indexing threads in one message. One at a time, a sink
/// ahead of the indexing thread met a full channel at every document: each document the
/// indexing thread took woke the sink's thread, which sent one and spun and slept again.
/// What waits in the channel stays bounded by `commit_docs`, as a commit waits for it.
const DOCS_PER_SEND: usize = 64;
/// How often retention by age looks for records past it.
const RETENTION_PASS: Duration = Duration::from_secs(60);
/// How often the free disk is compared with [`SinkOptions::min_free_disk`]: a dropped
/// split's space comes back once the searches holding its files end, so a pass right after
/// one would drop another for nothing.
const DISK_PASS: Duration = Duration::from_secs(5);
/// The share of the filesystem the index keeps free for its own commits even where others
/// took the rest of the floor: with none, every commit fails and the pipeline stops.
const DISK_RESERVE: f64 = 0.01;
/// How often the index says again that it stops growing on a disk others filled (a disk
/// near the floor crosses it back and forth).
const HOLD_WARNING: Duration = Duration::from_secs(3600);
/// Adjacent sealed splits are merged once this many of them fit in one split together.
const MERGE_FACTOR: usize = 4;
/// How long [`IndexSink::close`] waits for a running merge; one left running is forgotten
/// at the next open (its sources stay), so stopping never loses data.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Write-path settings.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Commit at least this often while documents are pending.
    pub commit_interval: Duration,
    /// Commit as soon as this many documents are pending.
    pub commit_docs: usize,
    /// tantivy's indexing memory budget, shared by its indexing threads.
    pub memory_budget_bytes: usize,
    /// tantivy's indexing threads for the active split, each with its share of the budget
    /// (at least 16 MiB each: fewer are used if the budget is smaller); 0 is one per core,
    /// up to 4. One thread leaves
    /// the CPU idle while a commit finalizes its segment; two indexed a backlog 22 % faster
    /// on 2 cores, at the price of more segments to merge.
    pub indexing_threads: usize,
    /// Records older than this (by their timestamp) are deleted; `None` keeps everything.
    /// A sealed split goes whole once its newest record is past it; in the active split
    /// the old records are deleted at the next commit.
    pub retention: Option<Duration>,
    /// While all splits together take more bytes than this, the oldest sealed split is
    /// dropped; `None` sets no bound.
    pub retention_bytes: Option<u64>,
    /// The share of the index's filesystem to keep free (0.15: 15 %): while less is free,
    /// the index stops growing (its oldest sealed splits are dropped as new ones come, with
    /// a warning each), after giving back its own growth past the floor. Where others
    /// filled the disk it is not emptied for them (see `keep_free_disk`). An index that
    /// fills its disk stops at the next commit and after every restart; on a node's own
    /// disk it would also get the node's pods evicted (the kubelet evicts under 10 % free).
    /// `None` keeps no floor.
    pub min_free_disk: Option<f64>,
    /// The active split is sealed, and a new one started, once it holds this many
    /// documents (the unit of time pruning, merging and retention)...
    pub split_docs: u64,
    /// ...or once it has been written to for this long (so that a quiet cluster's data is
    /// still partitioned by time).
    pub split_age: Duration,
    /// With more splits than this, any two adjacent sealed ones that fit together in one
    /// split are merged (below it, four of them).
    pub max_splits: usize,
    /// Within a split, tantivy merges only segments of at most this many documents. Under
    /// load each commit leaves a segment per indexing thread of tens of thousands of
    /// documents; merging those again took ~15 % of an aggregator's CPU at 80k records/s,
    /// to save searches a few segments per split. Small segments (a quiet cluster's
    /// commits every second) are still merged, into segments of up to ~8 times this.
    pub segment_merge_max_docs: u32,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            commit_interval: Duration::from_secs(1),
            commit_docs: 100_000,
            memory_budget_bytes: 64 * 1024 * 1024,
            indexing_threads: 1,
            retention: None,
            retention_bytes: None,
            min_free_disk: None,
            split_docs: 2_000_000,
            split_age: Duration::from_secs(3600),
            max_splits: 64,
            segment_merge_max_docs: 20_000,
        }
    }
}

/// Work done off the commit path.
enum Job {
    /// Let a sealed split's writer finish its segment merges, then mark the split sealed.
    Seal(Box<IndexWriter>, Arc<Split>),
    /// Merge these sealed splits into one.
    Merge(Vec<Arc<Split>>),
}

/// The (free, total) bytes of the filesystem a directory is on.
type DiskProbe = Box<dyn Fn(&std::path::Path) -> std::io::Result<(u64, u64)> + Send>;

/// Marks the split set as written to; released when the sink goes.
struct SinkClaim(Arc<SplitSet>);

impl Drop for SinkClaim {
    fn drop(&mut self) {
        self.0.sink_taken.store(false, Ordering::SeqCst);
    }
}

/// The indexer sink. Documents become searchable, and their batches acknowledged, only at
/// [`IndexSink::commit`]; the checkpoints of every batch added before it are written in the
/// same tantivy commit, so after a crash the index and the checkpoints agree.
pub struct IndexSink {
    set: Arc<SplitSet>,
    schema: Arc<IndexSchema>,
    active: Arc<Split>,
    writer: IndexWriter,
    active_since: Instant,
    commit_seq: u64,
    checkpoints: CheckpointSet,
    pending_finalizers: Vec<Finalizers>,
    pending_docs: usize,
    pending_span: Option<(i64, i64)>,
    pending_checkpoints: bool,
    last_commit: Instant,
    options: SinkOptions,
    docs_committed: u64,
    /// When retention by age last ran.
    last_retention: Option<Instant>,
    /// When the free disk was last compared with the floor.
    last_disk_pass: Option<Instant>,
    /// The free and total bytes of the filesystem a directory is on (statvfs; a test's
    /// own figures).
    disk_space: DiskProbe,
    /// While the disk is under the floor: the size the index keeps to (see
    /// `keep_free_disk`).
    disk_hold: Option<u64>,
    /// The index's size at the last pass that found the floor kept: what it has grown by
    /// since is its own part of a shortfall.
    size_with_room: Option<u64>,
    /// Whether the floor could not be kept (nothing left to drop) when last compared: said
    /// once, not at every pass.
    disk_short: bool,
    /// When the index last said it stops growing because others filled the disk.
    hold_said: Option<Instant>,
    /// Whether the last pass's failure (statvfs, a split that would not go) was said.
    disk_error_said: bool,
    /// Makes the batches [`IndexSink::add`] is given into documents.
    maker: DocumentMaker,
    jobs: mpsc::Sender<Job>,
    progress: mpsc::Receiver<()>,
    _claim: SinkClaim,
}

fn open_writer(
    set: &SplitSet,
    split: &Split,
    options: &SinkOptions,
) -> Result<IndexWriter, IndexError> {
    let budget = options.memory_budget_bytes;
    // tantivy refuses a thread less than 15 MB of the budget.
    let wanted = match options.indexing_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        n => n,
    };
    let threads = wanted.clamp(1, (budget >> 24).max(1));
    let writer: IndexWriter = split
        .index
        .writer_with_num_threads(threads, budget)
        .map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => IndexError::Locked(set.root.clone()),
            other => IndexError::Tantivy(other),
        })?;
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_max_docs_before_merge(options.segment_merge_max_docs as usize);
    writer.set_merge_policy(Box::new(policy));
    Ok(writer)
}

/// Deletes what `query` matches from a sealed split, keeping its commit payload; `false`
/// when a merge is reading the split (merges start only from the sink's thread, which
/// calls this, so none can start meanwhile).
fn delete_in_sealed(
    split: &Split,
    query: tantivy::query::BooleanQuery,
) -> Result<bool, IndexError> {
    if split.merging.load(Ordering::SeqCst) || !split.sealed.load(Ordering::SeqCst) {
        return Ok(false);
    }
    let payload = serde_json::to_string(&split.payload())
        .map_err(|e| IndexError::EncodeCheckpoints(e.to_string()))?;
    let mut writer: IndexWriter = split
        .index
        .writer_with_num_threads(1, crate::splits::SMALL_WRITER_BUDGET)?;
    // Only the delete: a sealed split keeps the many large segments the merge limit left
    // it, and tantivy's default policy would merge them here, on the sink's thread.
    writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
    writer.delete_query(Box::new(query))?;
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    writer.wait_merging_threads()?;
    split.reader.reload()?;
    split.refresh_stats();
    Ok(true)
}

/// The background thread: seals and merges, one job at a time, telling `progress` after
/// each; it ends (and `progress` disconnects) when the sink is gone and the queue is empty.
fn maintenance(set: Arc<SplitSet>, jobs: mpsc::Receiver<Job>, progress: mpsc::Sender<()>) {
    for job in jobs {
        match job {
            Job::Seal(writer, split) => {
                if let Err(e) = writer.wait_merging_threads() {
                    tracing::warn!(split = %split.dir.display(), error = %e, "sealing a split: its segment merges failed");
                }
                if let Err(e) = split.reader.reload() {
                    tracing::warn!(split = %split.dir.display(), error = %e, "sealing a split: cannot reload it");
                }
                split.refresh_stats();
                split.sealed.store(true, Ordering::SeqCst);
            }
            Job::Merge(sources) => {
                let started = Instant::now();
                match set.merge(&sources) {
                    Ok(merged) => {
                        set.counters.merges.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                        splits = sources.len(),
                        docs = merged.stats().docs,
                        into = %merged.dir.display(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "splits merged"
                        )
                    }
                    Err(e) => {
                        set.counters.merge_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "a split merge failed; the splits stay as they are");
                        for s in &sources {
                            s.merging.store(false, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
        let _ = progress.send(());
    }
    // The set (and with it, maybe, the directory's lock) goes before `progress` tells the
    // sink's close that this thread is done.
    drop(set);
    drop(progress);
}

impl IndexSink {
    pub(crate) fn new(set: Arc<SplitSet>, options: SinkOptions) -> Result<Self, IndexError> {
        if set.sink_taken.swap(true, Ordering::SeqCst) {
            return Err(IndexError::Locked(set.root.clone()));
        }
        let claim = SinkClaim(set.clone());
        // Writing resumes in the newest split while it has room, so restarts do not leave
        // a trail of small splits; not in one an older version wrote (another schema).
        let last = set.snapshot().iter().max_by_key(|s| s.id).cloned();
        let active = match last {
            Some(s) if s.stats().docs < options.split_docs && set.has_current_schema(&s) => s,
            _ => set.create_split()?,
        };
        active.sealed.store(false, Ordering::SeqCst);
        let writer = open_writer(&set, &active, &options)?;
        let (jobs, queue) = mpsc::channel();
        let (progress_tx, progress) = mpsc::channel();
        let background = set.clone();
        std::thread::Builder::new()
            .name("index-maintenance".into())
            .spawn(move || maintenance(background, queue, progress_tx))
            .map_err(|e| IndexError::Directory {
                path: set.root.clone(),
                reason: e,
            })?;
        let schema = set.schema.clone();
        Ok(IndexSink {
            maker: DocumentMaker::new(schema.clone()),
            schema,
            checkpoints: set.committed_checkpoints(),
            commit_seq: set.last_commit_seq(),
            set,
            active,
            writer,
            active_since: Instant::now(),
            pending_finalizers: Vec::new(),
            pending_docs: 0,
            pending_span: None,
            pending_checkpoints: false,
            last_commit: Instant::now(),
            options,
            docs_committed: 0,
            last_retention: None,
            last_disk_pass: None,
            disk_space: Box::new(|dir| Ok((fs4::available_space(dir)?, fs4::total_space(dir)?))),
            disk_hold: None,
            size_with_room: None,
            disk_short: false,
            hold_said: None,
            disk_error_said: false,
            jobs,
            progress,
            _claim: claim,
        })
    }

    /// Adds a batch's records; they become durable and visible at the next commit.
    pub fn add(&mut self, batch: Batch) -> Result<(), IndexError> {
        let documents = self.maker.make(batch);
        self.add_documents(documents)
    }

    /// A maker of this index's documents, to make batches into documents on another thread
    /// (while this sink commits) for [`IndexSink::add_documents`].
    pub fn document_maker(&self) -> DocumentMaker {
        DocumentMaker::new(self.schema.clone())
    }

    /// Adds a batch made into documents; they become durable and visible at the next
    /// commit, with the batch's checkpoints.
    pub fn add_documents(&mut self, batch: DocumentBatch) -> Result<(), IndexError> {
        let mut skip = HashSet::new();
        if batch.documents.iter().any(|d| d.redelivered) {
            let others: Vec<Arc<Split>> = self
                .set
                .snapshot()
                .iter()
                .filter(|s| s.id != self.active.id)
                .cloned()
                .collect();
            for made in batch.documents.iter().filter(|d| d.redelivered) {
                // The re-sent record replaces the copy an earlier run committed (a multiline
                // group may have grown since). In the active split the delete is ordered
                // before the adds that follow it; a sealed split is changed at once, unless
                // a merge is reading it: then it keeps its copy and the new one is left out.
                let mut held = false;
                for split in others.iter().filter(|s| {
                    s.stats()
                        .overlaps(Some(made.timestamp), Some(made.timestamp))
                }) {
                    let query = split.schema.id_query(made.id, made.timestamp);
                    if split
                        .reader
                        .searcher()
                        .search(&query, &tantivy::collector::Count)?
                        > 0
                    {
                        held = !delete_in_sealed(split, query.clone())?;
                        break;
                    }
                }
                if held {
                    skip.insert(made.id);
                } else {
                    let query = self.schema.id_query(made.id, made.timestamp);
                    self.writer
                        .delete_query(Box::new(query))
                        .map_err(IndexError::Tantivy)?;
                }
            }
        }
        // Documents go to the indexing thread [`DOCS_PER_SEND`] at a time; the deletes
        // above were queued before any of them.
        let mut adds = Vec::with_capacity(DOCS_PER_SEND.min(batch.documents.len()));
        for made in batch.documents {
            if !skip.is_empty() && skip.contains(&made.id) {
                continue;
            }
            let ts = made.timestamp;
            self.pending_span = Some(match self.pending_span {
                Some((lo, hi)) => (lo.min(ts), hi.max(ts)),
                None => (ts, ts),
            });
            self.pending_docs += 1;
            adds.push(UserOperation::Add(made.document));
            if adds.len() == DOCS_PER_SEND {
                let sent = self.writer.run(adds.drain(..));
                sent.map_err(|e| self.with_disk_cause(e.into()))?;
            }
        }
        if !adds.is_empty() {
            let sent = self.writer.run(adds);
            sent.map_err(|e| self.with_disk_cause(e.into()))?;
        }
        for c in &batch.checkpoints {
            self.checkpoints.update(c);
            self.pending_checkpoints = true;
        }
        self.pending_finalizers.push(batch.finalizers);
        Ok(())
    }

    /// Whether a commit is due (interval passed or enough documents pending).
    pub fn commit_due(&self) -> bool {
        self.has_pending()
            && (self.pending_docs >= self.options.commit_docs
                || self.last_commit.elapsed() >= self.options.commit_interval)
    }

    /// Whether anything waits for a commit.
    pub fn has_pending(&self) -> bool {
        self.pending_docs > 0 || self.pending_checkpoints || !self.pending_finalizers.is_empty()
    }

    /// How long until a commit becomes due by time.
    pub fn time_to_commit(&self) -> Duration {
        self.options
            .commit_interval
            .saturating_sub(self.last_commit.elapsed())
    }

    /// Commits pending documents with the checkpoints, makes them visible to searchers, and
    /// acknowledges their batches. On failure the batches are not acknowledged.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        let result = self.commit_pending().map_err(|e| self.with_disk_cause(e));
        if let Err(e) = &result
            && let Ok(mut h) = self.set.counters.health.lock()
        {
            h.last_failure = Some((Instant::now(), e.to_string()));
        }
        result
    }

    /// `e`, with the disk's state where that is the likely cause: less free than a segment
    /// may take to write (the memory budget) or than 1 % of the filesystem.
    fn with_disk_cause(&self, e: IndexError) -> IndexError {
        if !matches!(e, IndexError::Tantivy(_)) {
            return e;
        }
        match (self.disk_space)(&self.set.root) {
            Ok((free, total))
                if free < (self.options.memory_budget_bytes as u64).max(total / 100) =>
            {
                IndexError::DiskFull {
                    path: self.set.root.clone(),
                    free_mib: free >> 20,
                    total_mib: total >> 20,
                    source: Box::new(e),
                }
            }
            _ => e,
        }
    }

    fn commit_pending(&mut self) -> Result<(), IndexError> {
        self.last_commit = Instant::now();
        if !self.has_pending() {
            return Ok(());
        }
        let cutoff = self.retention_cutoff();
        if let Some(cutoff) = cutoff {
            // Rides on this commit.
            self.writer
                .delete_query(Box::new(tantivy::query::RangeQuery::new(
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Excluded(tantivy::Term::from_field_i64(
                        self.schema.timestamp,
                        cutoff,
                    )),
                )))?;
        }
        // Before writing: a disk filled while this process was down (or by others) would
        // fail the commit, and every commit after a restart.
        match self.keep_free_disk() {
            Ok(()) => self.disk_error_said = false,
            // Said once while it lasts (a pass is every 5 s); the commit goes on regardless.
            Err(e) if !self.disk_error_said => {
                self.disk_error_said = true;
                tracing::warn!(error = %e, "cannot keep the index's disk floor (min_free_disk_percent)");
            }
            Err(e) => tracing::debug!(error = %e, "still cannot keep the disk floor"),
        }
        let seq = self.commit_seq + 1;
        let stats = self.active.stats();
        let span = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        let payload = CommitPayload {
            checkpoints: self.checkpoints.clone(),
            commit_seq: seq,
            min_ts: span(stats.min_ts, self.pending_span.map(|s| s.0), i64::min),
            max_ts: span(stats.max_ts, self.pending_span.map(|s| s.1), i64::max),
            docs: stats.docs + self.pending_docs as u64,
            replaces: Vec::new(),
        };
        let text = serde_json::to_string(&payload)
            .map_err(|e| IndexError::EncodeCheckpoints(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&text);
        if let Err(e) = prepared.commit() {
            // Dropping the finalizers unmarked tells the sources the batches did not land.
            self.pending_finalizers.clear();
            let counters = &self.set.counters;
            counters.commit_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
        self.commit_seq = seq;
        self.active.set_payload(payload);
        self.active.reader.reload()?;
        self.active.refresh_stats();
        self.docs_committed += self.pending_docs as u64;
        let counters = &self.set.counters;
        counters.commits.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = counters.health.lock() {
            h.last_commit = Some(Instant::now());
        }
        counters
            .records_committed
            .fetch_add(self.pending_docs as u64, Ordering::Relaxed);
        tracing::debug!(
            docs = self.pending_docs,
            split = self.active.id,
            "index commit"
        );
        self.pending_docs = 0;
        self.pending_span = None;
        self.pending_checkpoints = false;
        for f in self.pending_finalizers.drain(..) {
            f.deliver();
        }
        // What follows keeps the split set in shape; the batches are durable already, so a
        // failure here is reported and tried again at the next commit.
        if let Err(e) = self.maintain(cutoff) {
            tracing::warn!(error = %e, "index maintenance failed; retried at the next commit");
        }
        Ok(())
    }

    /// The timestamp before which records are past retention, when a pass is due (at most
    /// once a minute).
    fn retention_cutoff(&mut self) -> Option<i64> {
        let retention = self.options.retention?;
        if self
            .last_retention
            .is_some_and(|t| t.elapsed() < RETENTION_PASS)
        {
            return None;
        }
        self.last_retention = Some(Instant::now());
        Some(
            model::Timestamp::now()
                .unix_nanos()
                .saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// Rolls the active split over when it is full or old, drops splits past retention,
    /// and starts a merge when small sealed splits have piled up.
    fn maintain(&mut self, cutoff: Option<i64>) -> Result<(), IndexError> {
        let stats = self.active.stats();
        if stats.docs >= self.options.split_docs
            || (stats.docs > 0 && self.active_since.elapsed() >= self.options.split_age)
        {
            self.roll_over()?;
        }
        self.apply_retention(cutoff)?;
        self.schedule_merge();
        Ok(())
    }

    fn roll_over(&mut self) -> Result<(), IndexError> {
        let next = self.set.create_split()?;
        next.sealed.store(false, Ordering::SeqCst);
        let writer = open_writer(&self.set, &next, &self.options)?;
        let old_writer = std::mem::replace(&mut self.writer, writer);
        let old = std::mem::replace(&mut self.active, next);
        self.active_since = Instant::now();
        tracing::debug!(sealed = old.id, active = self.active.id, "split rollover");
        // Its writer may still be merging segments; the split is merged into others only
        // after that.
        let _ = self.jobs.send(Job::Seal(Box::new(old_writer), old));
        Ok(())
    }

    /// The splits retention and merges may touch: sealed, not being merged, not active.
    fn idle_splits(&self) -> Vec<Arc<Split>> {
        self.set
            .snapshot()
            .iter()
            .filter(|s| {
                s.id != self.active.id
                    && s.sealed.load(Ordering::SeqCst)
                    && !s.merging.load(Ordering::SeqCst)
            })
            .cloned()
            .collect()
    }

    /// The splits retention may drop: idle ones but the split of the last commit, which
    /// holds the checkpoints the sources resume from (the active one may not have committed
    /// yet).
    fn droppable_splits(&self) -> Vec<Arc<Split>> {
        let checkpointed = self
            .set
            .snapshot()
            .iter()
            .max_by_key(|s| s.payload().commit_seq)
            .map(|s| s.id);
        let mut idle = self.idle_splits();
        idle.retain(|s| Some(s.id) != checkpointed);
        idle
    }

    /// Keeps [`SinkOptions::min_free_disk`] of the filesystem free (at most one pass per
    /// [`DISK_PASS`]). Under the floor, the index stops growing: its oldest splits go as
    /// new ones come. It gives back the part of the shortfall that is its own growth since
    /// the disk last had room (to within half a split), not the rest: when others fill the disk (a laptop, a shared
    /// volume), emptying the index would lose its history and save next to nothing. It
    /// keeps [`DISK_RESERVE`] free for its commits regardless.
    fn keep_free_disk(&mut self) -> Result<(), IndexError> {
        let Some(share) = self.options.min_free_disk else {
            return Ok(());
        };
        if self.last_disk_pass.is_some_and(|t| t.elapsed() < DISK_PASS) {
            return Ok(());
        }
        self.last_disk_pass = Some(Instant::now());
        let (free, total) =
            (self.disk_space)(&self.set.root).map_err(|reason| IndexError::Directory {
                path: self.set.root.clone(),
                reason,
            })?;
        let size = self.set.bytes();
        let floor = (total as f64 * share) as u64;
        if let Ok(mut h) = self.set.counters.health.lock() {
            h.disk = Some(crate::DiskReading {
                free_bytes: free,
                total_bytes: total,
                floor_bytes: floor,
            });
        }
        if free >= floor {
            self.disk_hold = None;
            self.size_with_room = Some(size);
            self.disk_short = false;
            return Ok(());
        }
        let short = floor - free;
        let held = match self.disk_hold {
            Some(held) => held,
            None => {
                let grown = self.size_with_room.map_or(0, |s| size.saturating_sub(s));
                if short > grown && self.hold_said.is_none_or(|t| t.elapsed() >= HOLD_WARNING) {
                    self.hold_said = Some(Instant::now());
                    tracing::warn!(
                        free_bytes = free,
                        floor_bytes = floor,
                        index_bytes = size,
                        dir = %self.set.root.display(),
                        "the disk is under min_free_disk_percent, not through the index's growth: the index stops growing (its oldest splits go as new ones come) rather than empty itself for little; free space on the disk, or lower min_free_disk_percent"
                    );
                }
                let held = size - short.min(grown);
                self.disk_hold = Some(held);
                held
            }
        };
        let reserve = (total as f64 * DISK_RESERVE) as u64;
        let growth = size.saturating_sub(held);
        let for_reserve = reserve.saturating_sub(free);
        let mut droppable = self.droppable_splits();
        droppable.sort_by_key(|s| std::cmp::Reverse(s.stats().max_ts));
        let mut freed = 0;
        // The growth is given back a split at a time, while what is left of it is at least
        // half the oldest split: a new split a few bytes larger than the one it replaces
        // (a number in its meta.json one digit longer) must not take a second hour with it.
        // The reserve for commits is kept to the byte.
        let more = |freed: u64, next: Option<&Arc<Split>>| {
            let half = next.map_or(0, |s| s.stats().bytes / 2);
            freed < for_reserve || freed + half < growth
        };
        while more(freed, droppable.last()) {
            let Some(oldest) = droppable.pop() else {
                if !self.disk_short {
                    tracing::warn!(
                        free_bytes = free,
                        floor_bytes = floor,
                        dir = %self.set.root.display(),
                        "the disk is nearly full and the index has no older split left to drop: free space on it, or lower split_docs"
                    );
                }
                self.disk_short = true;
                return Ok(());
            };
            let stats = oldest.stats();
            tracing::warn!(
                split = %oldest.dir.display(),
                docs = stats.docs,
                bytes = stats.bytes,
                free_bytes = free,
                floor_bytes = floor,
                "the disk is nearly full: dropping the index's oldest split (min_free_disk_percent)"
            );
            self.set.drop_split(&oldest)?;
            freed += stats.bytes;
        }
        Ok(())
    }

    /// Lets the next commit compare the disk with the floor without waiting [`DISK_PASS`].
    #[cfg(test)]
    pub(crate) fn next_disk_pass_now(&mut self) {
        self.last_disk_pass = None;
    }

    #[cfg(test)]
    pub(crate) fn with_disk_probe(
        mut self,
        probe: impl Fn(&std::path::Path) -> std::io::Result<(u64, u64)> + Send + 'static,
    ) -> Self {
        self.disk_space = Box::new(probe);
        self
    }

    fn apply_retention(&mut self, cutoff: Option<i64>) -> Result<(), IndexError> {
        let mut idle = self.droppable_splits();
        if let Some(cutoff) = cutoff {
            for split in idle
                .iter()
                .filter(|s| s.stats().max_ts.is_some_and(|t| t < cutoff))
            {
                tracing::info!(split = %split.dir.display(), docs = split.stats().docs, "retention: dropping a split past the age limit");
                self.set.drop_split(split)?;
            }
            idle.retain(|s| s.stats().max_ts.is_none_or(|t| t >= cutoff));
        }
        if let Some(limit) = self.options.retention_bytes {
            let mut total = self.set.bytes();
            idle.sort_by_key(|s| std::cmp::Reverse(s.stats().max_ts));
            while total > limit {
                let Some(oldest) = idle.pop() else {
                    tracing::warn!(
                        bytes = total,
                        limit,
                        "the splits being written or merged alone exceed retention_bytes; lower split_docs"
                    );
                    break;
                };
                let stats = oldest.stats();
                tracing::info!(split = %oldest.dir.display(), docs = stats.docs, bytes = stats.bytes, "retention: dropping the oldest split over the size limit");
                self.set.drop_split(&oldest)?;
                total = total.saturating_sub(stats.bytes);
            }
        }
        Ok(())
    }

    /// Starts a merge of adjacent small sealed splits (by time), one merge at a time.
    fn schedule_merge(&mut self) {
        let all = self.set.snapshot();
        if all.iter().any(|s| s.merging.load(Ordering::SeqCst)) {
            return;
        }
        let crowded = all.len() > self.options.max_splits;
        // tantivy merges only splits of one schema; an older version's leave by retention.
        let mut idle = self.idle_splits();
        idle.retain(|s| self.set.has_current_schema(s));
        idle.sort_by_key(|s| (s.stats().min_ts, s.id));
        let wanted = |run: &[Arc<Split>]| run.len() >= MERGE_FACTOR || (crowded && run.len() >= 2);
        let mut run: Vec<Arc<Split>> = Vec::new();
        let mut docs = 0;
        for split in idle {
            let d = split.stats().docs;
            if docs + d > self.options.split_docs {
                if wanted(&run) {
                    break;
                }
                run.clear();
                docs = 0;
            }
            if d < self.options.split_docs {
                docs += d;
                run.push(split);
            }
        }
        if !wanted(&run) {
            return;
        }
        for s in &run {
            s.merging.store(true, Ordering::SeqCst);
        }
        tracing::debug!(splits = run.len(), docs, "scheduling a split merge");
        if let Err(mpsc::SendError(Job::Merge(run))) = self.jobs.send(Job::Merge(run)) {
            for s in &run {
                s.merging.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Documents committed by this sink so far.
    pub fn docs_committed(&self) -> u64 {
        self.docs_committed
    }

    /// Splits dropped by retention so far.
    pub fn splits_dropped(&self) -> u64 {
        self.set.counters.splits_dropped.load(Ordering::Relaxed)
    }

    /// Merges what the merge policy would merge, now, and waits until it is done (for
    /// benches, tests and tools; the sink does the same in the background as it commits).
    pub fn compact(&mut self) {
        loop {
            self.wait_for_merges();
            self.schedule_merge();
            if !self
                .set
                .snapshot()
                .iter()
                .any(|s| s.merging.load(Ordering::SeqCst))
            {
                return;
            }
        }
    }

    /// Waits until the splits sealed and merges started so far are done.
    pub fn wait_for_merges(&self) {
        let busy = || {
            self.set.snapshot().iter().any(|s| {
                s.merging.load(Ordering::SeqCst)
                    || (s.id != self.active.id && !s.sealed.load(Ordering::SeqCst))
            })
        };
        while busy() {
            if self.progress.recv().is_err() {
                break;
            }
        }
    }

    /// Commits what is pending and waits for background merges; call at shutdown.
    /// Returns the documents this sink committed in all.
    pub fn close(mut self) -> Result<u64, IndexError> {
        self.commit()?;
        let committed = self.docs_committed;
        self.writer.wait_merging_threads()?;
        self.active.reader.reload()?;
        self.active.refresh_stats();
        drop(self.jobs);
        let deadline = Instant::now() + CLOSE_WAIT;
        loop {
            match self
                .progress
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        waited = ?CLOSE_WAIT,
                        "a split merge is still running at shutdown; the next start forgets it"
                    );
                    break;
                }
            }
        }
        Ok(committed)
    }
}
