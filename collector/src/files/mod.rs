//! The `files` source: container logs in the kubelet's `/var/log/pods` layout, CRI format.
//!
//! Discovery polls the directory tree ([`layout`]); each file is tailed from its checkpoint
//! ([`tail`]); lines are decoded ([`cri`]) with `P` chunks merged per (file, stream). Records
//! leave in batches that carry each file's resume position, which the indexer commits
//! together with the documents.
//!
//! Still to come (issue 3): file identity by fingerprint, rotation and copytruncate,
//! docker json-file, filesystem notifications, include/exclude filters, multi-line grouping.

mod cri;
mod layout;
mod tail;

pub use cri::{CriDecodeError, CriLine, MergedLine, PartialLineMerger, decode_cri};
pub use layout::{PodLogFile, discover};

use crate::Shutdown;
use model::{Batch, BatchStatus, Checkpoint, CheckpointSet, Finalizers, Record};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tail::FileTail;
use tokio::sync::mpsc;

/// Settings of the `files` source.
#[derive(Clone, Debug)]
pub struct FileSourceConfig {
    /// The root of the kubelet layout (`/var/log/pods`).
    pub logs_dir: PathBuf,
    /// How often to look for new files and new bytes.
    pub poll_interval: Duration,
    /// Longest line kept; longer ones are cut and flagged `log.truncated`.
    pub max_line_bytes: usize,
    /// Most records per batch.
    pub max_batch_records: usize,
}

impl FileSourceConfig {
    /// Defaults for everything but the directory.
    pub fn new(logs_dir: PathBuf) -> Self {
        FileSourceConfig {
            logs_dir,
            poll_interval: Duration::from_millis(250),
            max_line_bytes: 1024 * 1024,
            max_batch_records: 2048,
        }
    }
}

/// Why the source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    /// The logs directory is missing or unreadable.
    #[error(
        "cannot read the logs directory {path}: {reason} (check --logs-dir or the source's logs_dir)"
    )]
    LogsDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        reason: std::io::Error,
    },
}

/// Counters of the source, readable while it runs (exported on /metrics later).
#[derive(Debug, Default)]
pub struct FileSourceMetrics {
    /// Files currently tailed.
    pub files_watched: AtomicU64,
    /// Bytes read from files.
    pub bytes_read: AtomicU64,
    /// Physical lines read.
    pub lines_read: AtomicU64,
    /// `P` chunks merged into longer lines.
    pub partial_chunks: AtomicU64,
    /// Lines cut at `max_line_bytes`.
    pub truncated_lines: AtomicU64,
    /// Lines that were not valid CRI (kept raw).
    pub decode_errors: AtomicU64,
    /// Failed reads or directory scans (retried).
    pub read_errors: AtomicU64,
    /// Batches every sink made durable.
    pub batches_delivered: AtomicU64,
    /// Batches that were dropped or rejected downstream.
    pub batches_not_delivered: AtomicU64,
}

/// The source. Build it with [`FileSource::new`], then [`FileSource::run`] it on a thread of
/// its own: file I/O is blocking and must not stall the async runtime.
pub struct FileSource {
    id: String,
    config: FileSourceConfig,
    resume: CheckpointSet,
    tails: BTreeMap<PathBuf, FileTail>,
    metrics: Arc<FileSourceMetrics>,
}

impl FileSource {
    /// A source named `id` (its key in the pipeline config) that resumes from `resume`.
    /// Fails when the logs directory cannot be read, so a typo is reported at start-up.
    pub fn new(
        id: impl Into<String>,
        config: FileSourceConfig,
        resume: CheckpointSet,
    ) -> Result<Self, FileSourceError> {
        std::fs::read_dir(&config.logs_dir).map_err(|reason| FileSourceError::LogsDir {
            path: config.logs_dir.clone(),
            reason,
        })?;
        Ok(FileSource {
            id: id.into(),
            config,
            resume,
            tails: BTreeMap::new(),
            metrics: Arc::default(),
        })
    }

    /// The source's counters.
    pub fn metrics(&self) -> Arc<FileSourceMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Tails until `shutdown` is triggered or the downstream channel closes, then returns.
    /// A full channel blocks the source (backpressure); nothing is dropped.
    pub fn run(mut self, out: mpsc::Sender<Batch>, shutdown: Shutdown) {
        tracing::info!(source = %self.id, dir = %self.config.logs_dir.display(), "files source started");
        loop {
            self.refresh_files();
            let read_any = match self.read_files(&out) {
                Ok(read_any) => read_any,
                Err(Closed) => break,
            };
            if shutdown.is_triggered() {
                break;
            }
            if !read_any && shutdown.wait_timeout(self.config.poll_interval) {
                break;
            }
        }
        tracing::info!(source = %self.id, "files source stopped");
    }

    fn refresh_files(&mut self) {
        let found = match discover(&self.config.logs_dir) {
            Ok(found) => found,
            Err(e) => {
                self.metrics.read_errors.fetch_add(1, Relaxed);
                tracing::warn!(dir = %self.config.logs_dir.display(), error = %e, "cannot scan the logs directory; will retry");
                return;
            }
        };
        let mut present = std::collections::BTreeSet::new();
        for (path, pod_file) in found {
            present.insert(path.clone());
            if !self.tails.contains_key(&path) {
                let key = path.to_string_lossy();
                let start = self.resume.position(&self.id, &key).unwrap_or(0);
                tracing::debug!(path = %path.display(), start, "tailing new file");
                self.tails.insert(
                    path.clone(),
                    FileTail::new(path, pod_file.resource(), start, self.config.max_line_bytes),
                );
            }
        }
        for (path, tail) in &mut self.tails {
            tail.gone = !present.contains(path);
        }
        self.metrics
            .files_watched
            .store(self.tails.len() as u64, Relaxed);
    }

    /// One pass over every file; returns whether anything was read.
    fn read_files(&mut self, out: &mpsc::Sender<Batch>) -> Result<bool, Closed> {
        let max = self.config.max_batch_records;
        let mut records: Vec<Record> = Vec::with_capacity(max);
        let mut checkpoints = Vec::new();
        let mut read_any = false;
        let mut finished = Vec::new();
        for (path, tail) in &mut self.tails {
            loop {
                match tail.read_available(&mut records, max, &self.metrics) {
                    Ok(0) => {
                        if tail.gone {
                            finished.push(path.clone());
                        }
                    }
                    Ok(_) => read_any = true,
                    Err(e) => {
                        if tail.gone {
                            finished.push(path.clone());
                        } else {
                            self.metrics.read_errors.fetch_add(1, Relaxed);
                            tracing::warn!(path = %path.display(), error = %e, "cannot read log file; will retry");
                        }
                    }
                }
                if let Some(position) = tail.take_moved_position() {
                    checkpoints.push(Checkpoint {
                        source: self.id.clone(),
                        key: tail.key.clone(),
                        position,
                    });
                }
                if records.len() < max {
                    break;
                }
                send(
                    out,
                    &self.metrics,
                    std::mem::replace(&mut records, Vec::with_capacity(max)),
                    std::mem::take(&mut checkpoints),
                )?;
            }
        }
        for path in finished {
            if let Some(tail) = self.tails.remove(&path) {
                tracing::debug!(path = %tail.path().display(), "file gone and read to its end");
            }
        }
        if !records.is_empty() {
            send(out, &self.metrics, records, checkpoints)?;
        }
        Ok(read_any)
    }
}

/// The downstream channel closed: the pipeline is gone.
struct Closed;

fn send(
    out: &mpsc::Sender<Batch>,
    metrics: &Arc<FileSourceMetrics>,
    records: Vec<Record>,
    checkpoints: Vec<Checkpoint>,
) -> Result<(), Closed> {
    let metrics = Arc::clone(metrics);
    let batch = Batch {
        records,
        finalizers: Finalizers::with_callback(move |status| {
            let counter = match status {
                BatchStatus::Delivered => &metrics.batches_delivered,
                BatchStatus::Dropped | BatchStatus::Rejected => &metrics.batches_not_delivered,
            };
            counter.fetch_add(1, Relaxed);
        }),
        checkpoints,
    };
    out.blocking_send(batch).map_err(|_| Closed)
}

#[cfg(test)]
mod tests;
