//! The write path: batches in, commits (documents + checkpoints) out, then acknowledgements.

use crate::store::CommitPayload;
use crate::{IndexError, IndexSchema};
use model::{Batch, CheckpointSet, Finalizers};
use std::time::{Duration, Instant};
use tantivy::{IndexReader, IndexWriter};

/// How often retention looks for records past it.
const RETENTION_PASS: Duration = Duration::from_secs(60);

/// Write-path settings.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Commit at least this often while documents are pending.
    pub commit_interval: Duration,
    /// Commit as soon as this many documents are pending.
    pub commit_docs: usize,
    /// tantivy's indexing memory budget.
    pub memory_budget_bytes: usize,
    /// Records older than this (by their timestamp) are deleted; `None` keeps everything.
    /// Deleted records leave search at once; their space returns as segments merge.
    pub retention: Option<Duration>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            commit_interval: Duration::from_secs(1),
            commit_docs: 100_000,
            memory_budget_bytes: 64 * 1024 * 1024,
            retention: None,
        }
    }
}

/// The indexer sink. Documents become searchable, and their batches acknowledged, only at
/// [`IndexSink::commit`]; the checkpoints of every batch added before it are written in the
/// same tantivy commit, so after a crash the index and the checkpoints agree.
pub struct IndexSink {
    writer: IndexWriter,
    schema: IndexSchema,
    reader: IndexReader,
    checkpoints: CheckpointSet,
    pending_finalizers: Vec<Finalizers>,
    pending_docs: usize,
    pending_checkpoints: bool,
    last_commit: Instant,
    options: SinkOptions,
    docs_committed: u64,
    /// When retention last deleted old records.
    last_retention: Option<Instant>,
}

impl IndexSink {
    pub(crate) fn new(
        writer: IndexWriter,
        schema: IndexSchema,
        reader: IndexReader,
        checkpoints: CheckpointSet,
        options: SinkOptions,
    ) -> Self {
        IndexSink {
            writer,
            schema,
            reader,
            checkpoints,
            pending_finalizers: Vec::new(),
            pending_docs: 0,
            pending_checkpoints: false,
            last_commit: Instant::now(),
            options,
            docs_committed: 0,
            last_retention: None,
        }
    }

    /// Adds a batch's records; they become durable and visible at the next commit.
    pub fn add(&mut self, batch: Batch) -> Result<(), IndexError> {
        // A delete is ordered before the adds that follow it, so a re-sent record replaces
        // the copy an earlier run committed and survives itself.
        if !batch.redelivered.is_empty() {
            // A record is found by its timestamp (indexed) and id (columns).
            let when: std::collections::HashMap<_, _> = batch
                .records
                .iter()
                .map(|r| (r.id, r.timestamp.unix_nanos()))
                .collect();
            for id in &batch.redelivered {
                if let Some(ts) = when.get(id) {
                    self.writer
                        .delete_query(Box::new(self.schema.id_query(*id, *ts)))
                        .map_err(IndexError::Tantivy)?;
                }
            }
        }
        for record in &batch.records {
            self.writer.add_document(self.schema.document(record))?;
        }
        self.pending_docs += batch.records.len();
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
        self.last_commit = Instant::now();
        if !self.has_pending() {
            return Ok(());
        }
        self.apply_retention()?;
        let payload = serde_json::to_string(&CommitPayload {
            checkpoints: self.checkpoints.clone(),
        })
        .map_err(|e| IndexError::EncodeCheckpoints(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        if let Err(e) = prepared.commit() {
            // Dropping the finalizers unmarked tells the sources the batches did not land.
            self.pending_finalizers.clear();
            return Err(e.into());
        }
        self.reader.reload()?;
        self.docs_committed += self.pending_docs as u64;
        tracing::debug!(docs = self.pending_docs, "index commit");
        self.pending_docs = 0;
        self.pending_checkpoints = false;
        for f in self.pending_finalizers.drain(..) {
            f.deliver();
        }
        Ok(())
    }

    /// Deletes records past the retention, at most once a minute (the delete rides on the
    /// commit that follows).
    fn apply_retention(&mut self) -> Result<(), IndexError> {
        let Some(retention) = self.options.retention else {
            return Ok(());
        };
        if self
            .last_retention
            .is_some_and(|t| t.elapsed() < RETENTION_PASS)
        {
            return Ok(());
        }
        self.last_retention = Some(Instant::now());
        let cutoff = model::Timestamp::now()
            .unix_nanos()
            .saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
        self.writer
            .delete_query(Box::new(tantivy::query::RangeQuery::new(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(tantivy::Term::from_field_i64(
                    self.schema.timestamp,
                    cutoff,
                )),
            )))?;
        tracing::debug!(cutoff, "retention: older records deleted");
        Ok(())
    }

    /// Documents committed by this sink so far.
    pub fn docs_committed(&self) -> u64 {
        self.docs_committed
    }

    /// Commits what is pending and waits for background merges; call at shutdown.
    /// Returns the documents this sink committed in all.
    pub fn close(mut self) -> Result<u64, IndexError> {
        self.commit()?;
        let committed = self.docs_committed;
        self.writer.wait_merging_threads()?;
        Ok(committed)
    }
}
