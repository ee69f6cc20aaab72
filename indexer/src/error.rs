use std::path::PathBuf;

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// No index exists where one was expected (offline search before any run).
    #[error("no index in {0}: run `infersight run --data-dir` with this directory first")]
    NoIndex(PathBuf),
    /// Another process holds the index's writer lock.
    #[error(
        "the index in {0} is in use by another infersight process; stop it or use another --data-dir"
    )]
    Locked(PathBuf),
    /// A split on disk was written with a schema this version cannot read (a field it needs
    /// is missing or of another type); splits of an older schema that only lacks or adds
    /// fields are read as they are.
    #[error(
        "the split {path} was written by an incompatible version of infersight ({detail}); it is kept aside in the index's quarantine directory"
    )]
    SchemaMismatch {
        /// The split's directory.
        path: PathBuf,
        /// What does not fit.
        detail: String,
    },
    /// The directory cannot be created or opened.
    #[error("cannot open the index directory {path}: {reason} (check --data-dir)")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        reason: std::io::Error,
    },
    /// The commit payload (stored checkpoints) is unreadable.
    #[error("the index in {path} holds unreadable checkpoints: {detail}")]
    BadPayload {
        /// The index directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The checkpoints could not be encoded for the commit.
    #[error("cannot encode the checkpoints for the commit: {0}")]
    EncodeCheckpoints(String),
    /// Field statistics could not be encoded or decoded for another aggregator.
    #[error("cannot encode or decode index results: {0}")]
    Encoding(String),
    /// The query cannot be parsed.
    #[error("invalid query: {0}")]
    Query(String),
    /// There is no index to ask here; the text says where to ask instead.
    #[error("{0}")]
    Unavailable(String),
    /// tantivy failed.
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A write failed with the index's disk (nearly) full: tantivy's indexing thread dies
    /// on the I/O error and often reports only that "an index writer was killed".
    #[error(
        "{source}; the index's disk has {free_mib} MiB free of {total_mib} MiB ({path}), the likely cause: free space on it, or bound the index (retention_mb, min_free_disk_percent)"
    )]
    DiskFull {
        /// The index directory.
        path: PathBuf,
        /// MiB free when the write failed.
        free_mib: u64,
        /// The filesystem's size in MiB.
        total_mib: u64,
        /// The write's own error.
        source: Box<IndexError>,
    },
}
