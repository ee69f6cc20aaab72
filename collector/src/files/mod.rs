//! The `files` source: container logs in the kubelet's `/var/log/pods` layout (and
//! docker's `/var/lib/docker/containers`), CRI or docker json-file format.
//!
//! Discovery polls the directory tree (`layout`), live and rotated files alike, filtered by
//! container globs (`filter`); each file is known by its identity ([`fingerprint`]), not its
//! path, and tailed from its checkpoint (`tail`); lines are decoded (`cri`, `docker`)
//! with partial chunks merged per (file, stream). Records leave in batches that carry each
//! file's resume position, which the indexer commits together with the documents. Lines read
//! past a resume position before a restart are re-sent as replacements (`Batch::redelivered`).
//!
//! Rotation: a renamed file keeps its identity and its open handle, so it is read to its end
//! under its new name; a deleted file is read to its end through the handle, then forgotten;
//! a copytruncate is noticed (the file shrinks or its first line changes) and reading goes on
//! in the copy, while the truncated file, with a new first line, is a new file.
//!
//! Lines of one container run are grouped into multi-line records (`multiline`) across
//! its files; a file's checkpoint never passes a line an open group still holds. Docker's
//! json-file format is recognised per file, and docker's own directory layout can be
//! watched too. Filesystem notifications wake the source early; the poll interval is the
//! safety net that catches whatever a notification missed.

mod cri;
mod docker;
mod filter;
mod fingerprint;
mod layout;
mod multiline;
mod tail;
mod watch;

pub use cri::{CriDecodeError, CriLine, MergedLine, PartialLineMerger, decode_cri};
pub use docker::{DockerDecodeError, DockerLine, decode_docker_json};
pub use filter::{ContainerFilter, FilterError, check_pattern};
pub use fingerprint::fingerprint;
pub use layout::{
    Discovered, DockerLogFile, LogFile, PodLogFile, discover, discover_all, discover_docker,
};
pub use multiline::{MultilineConfig, MultilineStream, starts_like_a_record};

use crate::Shutdown;
use model::{Batch, BatchStatus, Checkpoint, CheckpointSet, Finalizers};
use multiline::{Emitted, LineGrouper, TailLine};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tail::{DevIno, FileTail};
use tokio::sync::mpsc;

/// Checkpoint key prefix of a file read to its end (a tombstone).
const DONE_PREFIX: &str = "done:";
/// Checkpoint key prefix of how far a file's lines were sent: lines between the resume
/// position and this one may already be delivered, and are re-sent as replacements.
const SENT_PREFIX: &str = "sent:";

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
    /// Where to start in files found at the very first start (no checkpoints yet). Files
    /// found later are always read from their beginning.
    pub read_from: ReadFrom,
    /// Docker's container directory (`/var/lib/docker/containers`), watched as well when set.
    pub docker_dir: Option<PathBuf>,
    /// Which containers to read.
    pub containers: ContainerFilter,
    /// Multi-line grouping, or `None` to keep one record per line.
    pub multiline: Option<MultilineConfig>,
    /// Containers whose lines are grouped (when grouping is on).
    pub multiline_containers: ContainerFilter,
    /// A line whose end (`F`) has not come for this long is emitted as it is.
    pub partial_timeout: Duration,
}

/// Where to start reading files that exist at the very first start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// Everything they hold.
    #[default]
    Beginning,
    /// Only what is written from now on.
    End,
}

impl FileSourceConfig {
    /// Defaults for everything but the directory.
    pub fn new(logs_dir: PathBuf) -> Self {
        FileSourceConfig {
            logs_dir,
            poll_interval: Duration::from_millis(250),
            max_line_bytes: 1024 * 1024,
            max_batch_records: 2048,
            read_from: ReadFrom::Beginning,
            docker_dir: None,
            containers: ContainerFilter::all(),
            multiline: Some(MultilineConfig::default()),
            multiline_containers: ContainerFilter::all(),
            partial_timeout: Duration::from_secs(5),
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
    /// Records sent downstream (a multi-line record counts once).
    pub records_sent: AtomicU64,
    /// Records every sink made durable; `records_sent` minus this is what a crash now
    /// would make the source read again (the checkpoint lag).
    pub records_delivered: AtomicU64,
    /// Physical lines joined into multi-line records beyond their first.
    pub multiline_joined: AtomicU64,
    /// Lines emitted without their end (`log.partial`): the writer died mid-line, or a
    /// finished file ended inside a line.
    pub partial_flushed: AtomicU64,
    /// Batches every sink made durable.
    pub batches_delivered: AtomicU64,
    /// Batches that were dropped or rejected downstream.
    pub batches_not_delivered: AtomicU64,
    /// Files rotated and compressed while we were down, resumed from their `.gz`.
    pub files_recovered_from_gzip: AtomicU64,
    /// Files read in part before a stop that no longer exist in any form: the rest of
    /// their lines is lost. Should stay 0; it is not when the pipeline is down for longer
    /// than the kubelet keeps rotated files.
    pub files_lost: AtomicU64,
}

/// The source. Build it with [`FileSource::new`], then [`FileSource::run`] it on a thread of
/// its own: file I/O is blocking and must not stall the async runtime.
pub struct FileSource {
    id: String,
    config: FileSourceConfig,
    resume: CheckpointSet,
    /// No checkpoint of ours existed at start and discovery has not run yet.
    first_start: bool,
    /// Identities checkpointed before the start, until the first discovery has looked for
    /// them (as files, else as compressed rotations).
    recovering: Option<BTreeSet<String>>,
    /// Files read to their end (identity → final position), kept while a compressed
    /// rotation of theirs exists, so that a `.gz` is never taken for an unread file.
    done: HashMap<String, u64>,
    /// Identities of compressed rotations by inode, decompressed once.
    compressed_ids: HashMap<DevIno, String>,
    /// Checkpoint changes not tied to reading (tombstones added or pruned, lost files) that
    /// go out with the next batch.
    pending: Vec<Checkpoint>,
    tails: BTreeMap<String, FileTail>,
    /// Pod and container directories that could not be listed at the last discovery.
    unreadable_dirs: HashSet<PathBuf>,
    /// Open multi-line groups per container run.
    groups: HashMap<Arc<str>, LineGrouper>,
    /// One read buffer lent to every file in turn, not one allocation per file per poll.
    read_buf: Vec<u8>,
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
        let id = id.into();
        let first_start = resume.of_source(&id).next().is_none();
        let recovering = Some(
            resume
                .of_source(&id)
                .filter(|(key, _)| !key.starts_with(DONE_PREFIX) && !key.starts_with(SENT_PREFIX))
                .map(|(key, _)| key.to_string())
                .collect(),
        );
        let done = resume
            .of_source(&id)
            .filter_map(|(key, position)| {
                Some((key.strip_prefix(DONE_PREFIX)?.to_string(), position))
            })
            .collect();
        Ok(FileSource {
            id,
            config,
            resume,
            first_start,
            recovering,
            done,
            compressed_ids: HashMap::new(),
            pending: Vec::new(),
            tails: BTreeMap::new(),
            unreadable_dirs: HashSet::new(),
            groups: HashMap::new(),
            read_buf: vec![0; tail::READ_CHUNK],
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
        let mut dirs = vec![self.config.logs_dir.as_path()];
        dirs.extend(self.config.docker_dir.as_deref());
        let changes = watch::ChangeWatch::start(&dirs, shutdown.clone());
        while let Some(read_any) = self.poll_until(&out, Some(&shutdown)) {
            if shutdown.is_triggered() {
                break;
            }
            if !read_any
                && !changes.take_changed()
                && shutdown.wait_timeout(self.config.poll_interval)
            {
                break;
            }
        }
        tracing::info!(source = %self.id, "files source stopped");
    }

    /// One discovery and read pass: every batch it makes is sent on `out` (waiting while the
    /// channel is full). Returns whether to poll again at once (something was read), or
    /// `None` when `out` is closed.
    pub fn poll(&mut self, out: &mpsc::Sender<Batch>) -> Option<bool> {
        self.poll_until(out, None)
    }

    /// [`Self::poll`], cut short once `shutdown` is triggered: a drain must not read a
    /// backlog to its end first (1.5 M lines behind took 16 s to stop).
    fn poll_until(
        &mut self,
        out: &mpsc::Sender<Batch>,
        shutdown: Option<&Shutdown>,
    ) -> Option<bool> {
        self.refresh_files();
        self.read_files(out, shutdown).ok()
    }

    fn refresh_files(&mut self) {
        let mut present = HashSet::new();
        let mut unreadable = Vec::new();
        // A directory listing races with rotations (a file renamed or compressed while it
        // is read): right after a restart, a file we must resume can be missed by one
        // listing. Look again before calling it lost, so that it is not found a pass late,
        // after the newer file of its container was read (out of order).
        for _ in 0..3 {
            let Some(mut found) = self.discover() else {
                return;
            };
            unreadable = std::mem::take(&mut found.unreadable);
            self.apply_discovery(found, &mut present, unreadable.is_empty());
            let missing = self
                .recovering
                .as_ref()
                .is_some_and(|wanted| wanted.iter().any(|key| !self.tails.contains_key(key)));
            if !missing {
                break;
            }
        }
        self.note_unreadable(&unreadable);
        // Files under a directory we cannot list now are not gone: their tails read on
        // through the handles they hold, and what they read is not lost or read twice.
        for (key, tail) in &self.tails {
            if unreadable
                .iter()
                .any(|(dir, _)| tail.path().starts_with(dir))
            {
                present.insert(key.clone());
            }
        }
        // Nor are the files we must resume: look again once the directory can be read.
        let recovering = match unreadable.is_empty() {
            true => self.recovering.take(),
            false => None,
        };
        if let Some(wanted) = recovering {
            for key in wanted
                .into_iter()
                .filter(|key| !self.tails.contains_key(key))
            {
                self.metrics.files_lost.fetch_add(1, Relaxed);
                tracing::warn!(
                    %key,
                    position = self.resume.position(&self.id, &key),
                    "a log file read in part before the stop is gone, also from the compressed rotations; its remaining lines are lost"
                );
                self.pending.push(self.checkpoint(key, 0, true));
            }
        }
        self.first_start = false;
        for (key, tail) in &mut self.tails {
            tail.gone = !present.contains(key);
        }
        self.metrics
            .files_watched
            .store(self.tails.len() as u64, Relaxed);
    }

    /// Takes in what one listing found: new files become tails, renamed ones keep theirs,
    /// compressed rotations are looked at. Identities seen are added to `present`.
    fn apply_discovery(
        &mut self,
        found: Discovered,
        present: &mut HashSet<String>,
        complete: bool,
    ) {
        let Discovered {
            files: found,
            compressed,
            unreadable: _,
        } = found;
        // Which tail holds which open file; a detached tail's file is no longer its own.
        let open: HashMap<DevIno, String> = self
            .tails
            .iter()
            .filter(|(_, t)| !t.detached)
            .map(|(key, t)| (t.dev_ino, key.clone()))
            .collect();
        for (path, pod_file) in found {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // gone between the listing and now
            };
            let dev_ino = (meta.dev(), meta.ino());
            if let Some(key) = open.get(&dev_ino) {
                if let Some(tail) = self.tails.get_mut(key) {
                    tail.renamed(path);
                }
                present.insert(key.clone());
                continue;
            }
            if !self.config.containers.selects(&pod_file) {
                continue;
            }
            let identified = File::open(&path).and_then(|f| fingerprint(&f).map(|key| (f, key)));
            let (file, key) = match identified {
                Ok((file, Some(key))) => (file, key),
                Ok((_, None)) => continue, // no complete first line yet
                Err(e) => {
                    self.metrics.read_errors.fetch_add(1, Relaxed);
                    tracing::warn!(path = %path.display(), error = %e, "cannot open log file; will retry");
                    continue;
                }
            };
            present.insert(key.clone());
            match self.tails.get_mut(&key) {
                Some(tail) if tail.detached => tail.reattach(path, file, dev_ino),
                // The same content under another inode while ours is intact: the copy a
                // copytruncate makes before truncating. Our handle stays authoritative.
                Some(_) => {}
                None => {
                    let known = self
                        .resume
                        .position(&self.id, &key)
                        .or_else(|| self.done.get(&key).copied());
                    let start = match known {
                        Some(position) => position,
                        None if self.first_start && self.config.read_from == ReadFrom::End => {
                            meta.len()
                        }
                        None => 0,
                    };
                    tracing::debug!(path = %path.display(), %key, start, "tailing file");
                    let tail = self.new_tail(path, &pod_file, file, dev_ino, key.clone(), start);
                    self.tails.insert(key, tail);
                }
            }
        }
        self.scan_compressed(compressed, complete);
    }

    /// Says once per directory that it cannot be read (and counts it), and once that it
    /// can again.
    fn note_unreadable(&mut self, now: &[(PathBuf, std::io::Error)]) {
        for (dir, e) in now {
            if self.unreadable_dirs.insert(dir.clone()) {
                self.metrics.read_errors.fetch_add(1, Relaxed);
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list a pod's log directory; its files are kept and read once it can be listed again");
            }
        }
        self.unreadable_dirs.retain(|dir| {
            let still = now.iter().any(|(d, _)| d == dir);
            if !still {
                tracing::info!(dir = %dir.display(), "a pod's log directory can be listed again");
            }
            still
        });
    }

    /// Looks at the kubelet's compressed rotations. Each one's identity (from its
    /// decompressed head) is either being read, done (a tombstone), or not read at all: the
    /// file was rotated and compressed while we were down or before a commit recorded it.
    /// Those are read from their checkpoint, or from 0, decompressed into an anonymous
    /// file. At the very first start, existing ones count as done: `.gz` files are never
    /// read as new logs. Tombstones of files that exist in no form any more are pruned.
    fn scan_compressed(&mut self, compressed: Vec<(PathBuf, LogFile)>, complete: bool) {
        let mut on_disk = HashSet::new();
        let mut seen_inodes = HashSet::new();
        // A `.gz` we cannot identify, or a directory we could not list, may hold a done
        // file: keep every tombstone then.
        let mut unidentified = !complete;
        for (path, pod_file) in compressed {
            let Ok(meta) = std::fs::metadata(&path) else {
                // Listed, but out of reach now (deleted, or its directory's permissions
                // changed under the walk): it may be a done file, so no tombstone may go
                // this pass. Dropping one had the `.gz` read again from its start: 361
                // records doubled when the logs directory turned unreadable mid-walk.
                unidentified = true;
                continue;
            };
            let dev_ino = (meta.dev(), meta.ino());
            seen_inodes.insert(dev_ino);
            let id = match self.compressed_ids.get(&dev_ino) {
                Some(id) => Some(id.clone()),
                // Not cached on failure: a `.gz` being written by gzip cannot be decoded yet
                // and will be later.
                None => match gzip_fingerprint(&path) {
                    Ok(Some(id)) => {
                        self.compressed_ids.insert(dev_ino, id.clone());
                        Some(id)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!(path = %path.display(), error = %e, "compressed rotation not readable (yet)");
                        None
                    }
                },
            };
            let Some(key) = id else {
                unidentified = true;
                continue;
            };
            on_disk.insert(key.clone());
            let detached = self.tails.get(&key).is_some_and(|t| t.detached);
            if (self.tails.contains_key(&key) && !detached) || self.done.contains_key(&key) {
                continue;
            }
            if self.first_start {
                self.mark_done(key, 0);
                continue;
            }
            let start = self.resume.position(&self.id, &key).unwrap_or(0);
            let file = match decompress_to_anonymous_file(&path) {
                Ok(file) => file,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot decompress a rotation that was not read; will retry");
                    self.metrics.read_errors.fetch_add(1, Relaxed);
                    continue;
                }
            };
            let Ok(anon) = file.metadata() else { continue };
            self.metrics.files_recovered_from_gzip.fetch_add(1, Relaxed);
            if let Some(tail) = self.tails.get_mut(&key) {
                // Truncated under us, and its copy already compressed: go on in the copy.
                tail.reattach(path, file, (anon.dev(), anon.ino()));
                continue;
            }
            tracing::info!(path = %path.display(), start, "reading a rotation that was compressed before it was read to its end");
            // Not among the live files, so it is marked gone: read to its end, then done.
            let tail = self.new_tail(
                path,
                &pod_file,
                file,
                (anon.dev(), anon.ino()),
                key.clone(),
                start,
            );
            self.tails.insert(key, tail);
        }
        self.compressed_ids
            .retain(|dev_ino, _| seen_inodes.contains(dev_ino));
        if unidentified {
            return;
        }
        let stale: Vec<String> = self
            .done
            .keys()
            .filter(|k| !on_disk.contains(*k))
            .cloned()
            .collect();
        for key in stale {
            self.done.remove(&key);
            self.pending
                .push(self.checkpoint(format!("{DONE_PREFIX}{key}"), 0, true));
        }
    }

    /// Walks the kubelet layout, and docker's when configured. `None` when the logs
    /// directory cannot be read (retried at the next poll).
    fn discover(&self) -> Option<Discovered> {
        let mut found = match discover_all(&self.config.logs_dir) {
            Ok(found) => found,
            Err(e) => {
                self.metrics.read_errors.fetch_add(1, Relaxed);
                tracing::warn!(dir = %self.config.logs_dir.display(), error = %e, "cannot scan the logs directory; will retry");
                return None;
            }
        };
        if let Some(dir) = &self.config.docker_dir
            && let Err(e) = discover_docker(dir, &mut found)
        {
            self.metrics.read_errors.fetch_add(1, Relaxed);
            tracing::warn!(dir = %dir.display(), error = %e, "cannot scan the docker containers directory; will retry");
        }
        Some(found)
    }

    /// A tail for a file seen for the first time in this run, resuming at `start`.
    fn new_tail(
        &self,
        path: PathBuf,
        owner: &LogFile,
        file: File,
        dev_ino: DevIno,
        key: String,
        start: u64,
    ) -> FileTail {
        // Lines between the checkpoint and how far the last run sent may be in the sinks
        // already: they go out flagged as replacements.
        let sent = self
            .resume
            .position(&self.id, &format!("{SENT_PREFIX}{key}"))
            .unwrap_or(0);
        let mut tail = FileTail::new(
            path,
            owner,
            file,
            dev_ino,
            key,
            start,
            self.config.max_line_bytes,
        )
        .replaying_until(sent);
        tail.group_lines =
            self.config.multiline.is_some() && self.config.multiline_containers.selects(owner);
        tail
    }

    /// Records that the file `key` was read to `position`, its end.
    fn mark_done(&mut self, key: String, position: u64) {
        self.pending
            .push(self.checkpoint(format!("{DONE_PREFIX}{key}"), position, false));
        self.done.insert(key, position);
    }

    fn checkpoint(&self, key: String, position: u64, finished: bool) -> Checkpoint {
        Checkpoint {
            source: self.id.clone(),
            key,
            position,
            finished,
        }
    }

    /// One pass over every file; returns whether anything was read.
    ///
    /// Files are read per container run, oldest first, so that lines
    /// reach the multi-line grouping in the order the container wrote them.
    fn read_files(
        &mut self,
        out: &mpsc::Sender<Batch>,
        shutdown: Option<&Shutdown>,
    ) -> Result<bool, Closed> {
        // What was read is sent with its checkpoints either way; files not reached keep
        // theirs and are read after the restart.
        let stopping = || shutdown.is_some_and(Shutdown::is_triggered);
        let max = self.config.max_batch_records;
        let mut emitted = Emitted::default();
        let mut checkpoints = Vec::new();
        let mut lines: Vec<TailLine> = Vec::new();
        let mut read_any = false;
        let mut finished = Vec::new();
        'files: for key in self.read_order() {
            if stopping() {
                break;
            }
            while let Some(tail) = self.tails.get_mut(&key) {
                let group = self
                    .groups
                    .entry(Arc::clone(&tail.container_run))
                    .or_insert_with(LineGrouper::new);
                let was_detached = tail.detached;
                let room = max.saturating_sub(emitted.records.len()).max(1);
                let mut at_end = false;
                match tail.read_available(&mut lines, room, &mut self.read_buf, &self.metrics) {
                    Ok(0) => at_end = true,
                    Ok(_) => read_any = true,
                    Err(e) if tail.gone => {
                        tracing::debug!(path = %tail.path().display(), error = %e, "gone file unreadable; letting go");
                        at_end = true;
                    }
                    Err(e) => {
                        self.metrics.read_errors.fetch_add(1, Relaxed);
                        tracing::warn!(path = %tail.path().display(), error = %e, "cannot read log file; will retry");
                    }
                }
                if at_end && tail.gone {
                    tail.finish(&mut lines, &self.metrics);
                } else {
                    let timeout = self.config.partial_timeout;
                    tail.flush_stale_partials(timeout, &mut lines, &self.metrics);
                }
                for line in lines.drain(..) {
                    match &self.config.multiline {
                        Some(config) if tail.group_lines => {
                            group.push(line, &tail.key, config, &mut emitted);
                        }
                        _ => emitted.push(line.record, line.replay),
                    }
                }
                let hold = group.hold(&key);
                // A gone file whose last lines an open group still holds stays until the
                // group is emitted: its checkpoint must not be dropped before then.
                if at_end && tail.gone && hold.is_none() {
                    finished.push(key.clone());
                }
                // A file just found truncated under us: look again at once for the copy and
                // the new content rather than after a poll interval.
                read_any |= tail.detached && !was_detached;
                self.report_positions(&key, &mut checkpoints);
                self.report_released(&mut emitted, &mut checkpoints);
                if emitted.records.len() < max {
                    break;
                }
                let full = std::mem::take(&mut emitted);
                send(out, &self.metrics, full, std::mem::take(&mut checkpoints))?;
                if stopping() {
                    break 'files;
                }
            }
        }
        if let Some(config) = &self.config.multiline {
            for group in self.groups.values_mut() {
                group.flush_idle(config, &mut emitted);
            }
            self.report_released(&mut emitted, &mut checkpoints);
        }
        for key in finished {
            if let Some(tail) = self.tails.remove(&key) {
                tracing::debug!(path = %tail.path().display(), "file gone and read to its end");
                let end = tail.checkpoint_position(None);
                checkpoints.push(self.checkpoint(key.clone(), end, true));
                checkpoints.push(self.checkpoint(format!("{SENT_PREFIX}{key}"), end, true));
                self.mark_done(key, end);
                let run = &tail.container_run;
                if !self.tails.values().any(|t| &t.container_run == run)
                    && let Some(mut group) = self.groups.remove(run)
                {
                    group.flush(&mut emitted);
                    emitted.released.clear(); // their files are all gone
                }
            }
        }
        checkpoints.append(&mut self.pending);
        if !emitted.records.is_empty() || !checkpoints.is_empty() {
            send(out, &self.metrics, emitted, checkpoints)?;
        }
        Ok(read_any)
    }

    /// Adds the checkpoints of file `key` that moved: its resume position (never past a
    /// line an open group holds) and how far it was read.
    fn report_positions(&mut self, key: &str, checkpoints: &mut Vec<Checkpoint>) {
        let Some(tail) = self.tails.get_mut(key) else {
            return;
        };
        let hold = self
            .groups
            .get(&tail.container_run)
            .and_then(|g| g.hold(key));
        let (position, sent) = tail.take_moved_positions(hold);
        if let Some(position) = position {
            checkpoints.push(self_checkpoint(&self.id, key.to_string(), position, false));
        }
        if let Some(sent) = sent {
            let sent_key = format!("{SENT_PREFIX}{key}");
            checkpoints.push(self_checkpoint(&self.id, sent_key, sent, false));
        }
    }

    /// Files an emitted group held may checkpoint further now; their new positions go out
    /// with the group's record, so a crash cannot leave a file resuming inside a group
    /// whose record was delivered.
    fn report_released(&mut self, emitted: &mut Emitted, checkpoints: &mut Vec<Checkpoint>) {
        let mut released = std::mem::take(&mut emitted.released);
        released.sort_unstable();
        released.dedup();
        for key in released {
            self.report_positions(&key, checkpoints);
        }
    }

    /// Tail keys by container run, and within a run oldest file first (by the timestamp of
    /// its first line; names can lie while a listing races with a rotation).
    fn read_order(&self) -> Vec<String> {
        let mut order: Vec<(&FileTail, &String)> = self.tails.iter().map(|(k, t)| (t, k)).collect();
        order.sort_by(|(a, ka), (b, kb)| {
            (&a.container_run, a.first_written, ka).cmp(&(&b.container_run, b.first_written, kb))
        });
        order.into_iter().map(|(_, k)| k.clone()).collect()
    }
}

fn self_checkpoint(source: &str, key: String, position: u64, finished: bool) -> Checkpoint {
    Checkpoint {
        source: source.to_string(),
        key,
        position,
        finished,
    }
}

/// The identity of a compressed rotation, from its decompressed head.
fn gzip_fingerprint(path: &Path) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(4096);
    flate2::read::GzDecoder::new(File::open(path)?)
        .take(4096)
        .read_to_end(&mut head)?;
    fingerprint::fingerprint_read(|buf, at| {
        let rest = head.get(at as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    })
}

/// Decompresses `path` into an unnamed temporary file (gone when closed).
fn decompress_to_anonymous_file(path: &Path) -> std::io::Result<File> {
    let mut out = tempfile::tempfile()?;
    std::io::copy(
        &mut flate2::read::GzDecoder::new(File::open(path)?),
        &mut out,
    )?;
    Ok(out)
}

/// The downstream channel closed: the pipeline is gone.
struct Closed;

fn send(
    out: &mpsc::Sender<Batch>,
    metrics: &Arc<FileSourceMetrics>,
    emitted: Emitted,
    checkpoints: Vec<Checkpoint>,
) -> Result<(), Closed> {
    let metrics = Arc::clone(metrics);
    let count = emitted.records.len() as u64;
    metrics.records_sent.fetch_add(count, Relaxed);
    metrics.multiline_joined.fetch_add(emitted.joined, Relaxed);
    let batch = Batch {
        records: emitted.records,
        redelivered: emitted.redelivered,
        finalizers: Finalizers::with_callback(move |status| {
            if status == BatchStatus::Delivered {
                metrics.records_delivered.fetch_add(count, Relaxed);
            }
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
