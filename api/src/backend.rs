//! The API's view of the index, as a trait so that a fan-out over peer aggregators can stand
//! in for the local index later without the handlers changing.

use indexer::{IndexError, LogSearcher, SearchRequest, SearchResults};

/// Answers searches. Implementations block (they read an index), so handlers call them on
/// the blocking pool.
pub trait SearchBackend: Send + Sync + 'static {
    /// Runs one search.
    fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError>;
}

impl SearchBackend for LogSearcher {
    fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        LogSearcher::search(self, request)
    }
}
