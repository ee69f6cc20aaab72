//! Source checkpoints for a pipeline without an index (a node agent that publishes to
//! Kafka): a JSON file next to the data, replaced atomically (write, sync, rename), so a
//! crash leaves the old set or the new one, never half of one.

use model::{Checkpoint, CheckpointSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the checkpoint file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    /// Reading, writing or renaming failed.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a checkpoint set (edited by hand, or not ours).
    #[error(
        "checkpoint file {path} is not a checkpoint set: {reason} (move it away to start from scratch)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

/// The checkpoint file of one pipeline.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    set: CheckpointSet,
    dirty: bool,
}

impl CheckpointFile {
    /// Opens `path`, or starts an empty set where it does not exist yet.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CheckpointFileError> {
        let path = path.into();
        let set = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| CheckpointFileError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CheckpointSet::new(),
            Err(source) => return Err(CheckpointFileError::Io { path, source }),
        };
        Ok(CheckpointFile {
            path,
            set,
            dirty: false,
        })
    }

    /// The set as stored (where sources resume).
    pub fn set(&self) -> &CheckpointSet {
        &self.set
    }

    /// Takes in checkpoints whose records are durable; [`CheckpointFile::flush`] stores them.
    pub fn update(&mut self, checkpoints: &[Checkpoint]) {
        for c in checkpoints {
            self.set.update(c);
            self.dirty = true;
        }
    }

    /// Writes the set if it changed.
    pub fn flush(&mut self) -> Result<(), CheckpointFileError> {
        if !self.dirty {
            return Ok(());
        }
        let io = |source| CheckpointFileError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = tmp_path(&self.path);
        let text = serde_json::to_string(&self.set).unwrap_or_default();
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        self.dirty = false;
        Ok(())
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_survive_a_reopen_and_a_corrupt_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        let mut file = CheckpointFile::open(&path).unwrap();
        assert!(file.set().is_empty());
        file.update(&[Checkpoint {
            source: "pod_logs".into(),
            key: "file:abc".into(),
            position: 4096,
            finished: false,
        }]);
        file.flush().unwrap();
        let again = CheckpointFile::open(&path).unwrap();
        assert_eq!(again.set().position("pod_logs", "file:abc"), Some(4096));
        std::fs::write(&path, "{not json").unwrap();
        let err = CheckpointFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("move it away"), "{err}");
    }
}
