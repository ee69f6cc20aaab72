//! Opening an index directory.

use crate::{IndexError, IndexSchema, IndexSink, LogSearcher, SinkOptions};
use model::CheckpointSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};

/// What the indexer writes into each tantivy commit next to the documents.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct CommitPayload {
    pub(crate) checkpoints: CheckpointSet,
}

/// An open index directory: the one place the sink and searchers of a process share.
#[derive(Clone)]
pub struct IndexStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    index: Index,
    schema: IndexSchema,
    reader: IndexReader,
}

/// Stored records are compressed with zstd in 64 KiB blocks: log records repeat their
/// resource, keys and most of their text, which zstd finds over a block (about half the
/// size lz4 gives); reading a hit decompresses one block (tens of µs).
fn index_settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(3),
        }),
        docstore_blocksize: 64 * 1024,
        ..Default::default()
    }
}

/// Whether `e` says the index files are damaged (as opposed to a passing I/O or permission
/// problem, which must not cost the user their index).
fn is_damage(e: &tantivy::TantivyError) -> bool {
    use tantivy::TantivyError as E;
    use tantivy::directory::error::OpenReadError;
    matches!(
        e,
        E::DataCorruption(_)
            | E::OpenReadError(OpenReadError::FileDoesNotExist(_))
            | E::OpenReadError(OpenReadError::IncompatibleIndex(_))
            | E::IncompatibleIndex(_)
            | E::SchemaError(_)
    )
}

/// Where a damaged index at `path` is moved.
fn quarantine_path(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path
        .file_name()
        .map_or_else(|| "index".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!("{name}.quarantined-{nanos}"))
}

impl IndexStore {
    /// Opens the index in `path`, creating the directory and the index if needed. An index
    /// that exists but cannot be opened (a damaged `meta.json`, a missing or truncated
    /// segment file) is moved aside to `<path>.quarantined-<unix ns>` with a warning,
    /// and a new one is created: the sources then start from the beginning of what is still
    /// on disk, so nothing readable is lost, and the damaged files stay for inspection.
    pub fn open_or_create(path: &Path) -> Result<Self, IndexError> {
        match Self::open_or_create_once(path) {
            Err(IndexError::Tantivy(e)) if is_damage(&e) => {
                let aside = quarantine_path(path);
                tracing::warn!(
                    index = %path.display(),
                    moved_to = %aside.display(),
                    error = %e,
                    "the index cannot be opened; it is quarantined and a new one is started"
                );
                std::fs::rename(path, &aside).map_err(|reason| IndexError::Directory {
                    path: path.to_path_buf(),
                    reason,
                })?;
                Self::open_or_create_once(path)
            }
            other => other,
        }
    }

    fn open_or_create_once(path: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(path).map_err(|reason| IndexError::Directory {
            path: path.to_path_buf(),
            reason,
        })?;
        let dir = MmapDirectory::open(path).map_err(|e| IndexError::Directory {
            path: path.to_path_buf(),
            reason: std::io::Error::other(e.to_string()),
        })?;
        let schema = IndexSchema::new();
        let exists = Index::exists(&dir).map_err(|e| IndexError::Directory {
            path: path.to_path_buf(),
            reason: std::io::Error::other(e.to_string()),
        })?;
        let index = if exists {
            Index::open(dir)?
        } else {
            Index::create(dir, schema.schema.clone(), index_settings())?
        };
        Self::from_index(path, index, schema)
    }

    /// Opens an existing index for reading (offline search); fails with
    /// [`IndexError::NoIndex`] when there is none.
    pub fn open_existing(path: &Path) -> Result<Self, IndexError> {
        if !path.join("meta.json").is_file() {
            return Err(IndexError::NoIndex(path.to_path_buf()));
        }
        let index = Index::open_in_dir(path)?;
        Self::from_index(path, index, IndexSchema::new())
    }

    fn from_index(path: &Path, index: Index, schema: IndexSchema) -> Result<Self, IndexError> {
        if index.schema() != schema.schema {
            return Err(IndexError::SchemaMismatch(path.to_path_buf()));
        }
        IndexSchema::register_tokenizers(&index);
        // The sink reloads after each commit, so in-process readers see new documents at
        // once; a separate process (offline search) opens a fresh reader anyway.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(IndexStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                index,
                schema,
                reader,
            }),
        })
    }

    /// The directory of the index.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The checkpoints stored by the last commit: where sources resume after a restart.
    pub fn committed_checkpoints(&self) -> Result<CheckpointSet, IndexError> {
        let metas = self.inner.index.load_metas()?;
        match metas.payload {
            None => Ok(CheckpointSet::new()),
            Some(p) => serde_json::from_str::<CommitPayload>(&p)
                .map(|p| p.checkpoints)
                .map_err(|e| IndexError::BadPayload {
                    path: self.inner.path.clone(),
                    detail: e.to_string(),
                }),
        }
    }

    /// The write path. Only one sink may exist per index directory, across processes.
    pub fn sink(&self, options: SinkOptions) -> Result<IndexSink, IndexError> {
        let writer = self
            .inner
            .index
            .writer_with_num_threads(1, options.memory_budget_bytes)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => {
                    IndexError::Locked(self.inner.path.clone())
                }
                other => IndexError::Tantivy(other),
            })?;
        let checkpoints = self.committed_checkpoints()?;
        Ok(IndexSink::new(
            writer,
            self.inner.schema.clone(),
            self.inner.reader.clone(),
            checkpoints,
            options,
        ))
    }

    /// The read path.
    pub fn searcher(&self) -> LogSearcher {
        LogSearcher::new(
            self.inner.index.clone(),
            self.inner.schema.clone(),
            self.inner.reader.clone(),
        )
    }
}
