//! The API's view of the index, as a trait so that a fan-out over peer aggregators can stand
//! in for the local index later without the handlers changing.

use indexer::{
    GroupStats, HistogramBucket, IndexError, IndexStats, IndexStore, LogSearcher, SearchRequest,
    SearchResults,
};
use model::Record;
use std::time::Duration;

/// Answers searches. Implementations block (they read an index), so handlers call them on
/// the blocking pool.
pub trait SearchBackend: Send + Sync + 'static {
    /// Runs one search.
    fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError>;

    /// Counts the records matching `request` per `interval`.
    fn histogram(
        &self,
        request: &SearchRequest,
        interval: Duration,
    ) -> Result<Vec<HistogramBucket>, IndexError>;

    /// Count, average, sum and percentiles of a numeric field, per group or overall.
    fn field_stats(
        &self,
        request: &SearchRequest,
        field: &str,
        group_by: Option<&str>,
        percents: &[f64],
    ) -> Result<Vec<GroupStats>, IndexError>;

    /// Every record about one request, oldest first.
    fn request_trace(&self, request_id: &str) -> Result<Vec<Record>, IndexError>;

    /// The index's size and counters, when there is a local index.
    fn index_stats(&self) -> Option<IndexStats>;
}

/// The local index: searches through its [`LogSearcher`], stats from the store.
pub struct LocalIndex {
    store: IndexStore,
    searcher: LogSearcher,
}

impl LocalIndex {
    /// Serves `store`.
    pub fn new(store: IndexStore) -> Self {
        LocalIndex {
            searcher: store.searcher(),
            store,
        }
    }
}

impl SearchBackend for LocalIndex {
    fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        self.searcher.search(request)
    }

    fn histogram(
        &self,
        request: &SearchRequest,
        interval: Duration,
    ) -> Result<Vec<HistogramBucket>, IndexError> {
        self.searcher.histogram(request, interval)
    }

    fn field_stats(
        &self,
        request: &SearchRequest,
        field: &str,
        group_by: Option<&str>,
        percents: &[f64],
    ) -> Result<Vec<GroupStats>, IndexError> {
        self.searcher
            .field_stats(request, field, group_by, percents)
    }

    fn request_trace(&self, request_id: &str) -> Result<Vec<Record>, IndexError> {
        self.searcher.request_trace(request_id)
    }

    fn index_stats(&self) -> Option<IndexStats> {
        Some(self.store.stats())
    }
}
