//! The API's view of the index, as a trait so that the fan-out over peer aggregators
//! (`peers.rs`) stands in for the local index without the handlers changing.

use indexer::{
    FieldStatsPartial, GroupStats, HistogramBucket, IndexError, IndexStats, IndexStore,
    LogSearcher, SearchCursor, SearchRequest, SearchResults, StatsQuestion,
};
use model::{Record, Timestamp};
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
    ) -> Result<Vec<GroupStats>, IndexError> {
        self.field_stats_partial(request, &StatsQuestion::new(field, group_by, percents))?
            .finish()
    }

    /// The same before the figures are computed, mergeable with other indexes'.
    fn field_stats_partial(
        &self,
        request: &SearchRequest,
        question: &StatsQuestion,
    ) -> Result<FieldStatsPartial, IndexError>;

    /// One page of newest-first hits; `cursor` is the previous page's `next_cursor`, whose
    /// form is the backend's own (one index's cursor, or one per aggregator).
    fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<&str>,
    ) -> Result<SearchPage, IndexError> {
        let mut request = request.clone();
        request.after = cursor.map(str::parse::<SearchCursor>).transpose()?;
        let results = self.search(&request)?;
        Ok(SearchPage {
            next_cursor: results.next.map(|c| c.to_string()),
            results,
        })
    }

    /// Every record about one request, oldest first, within the time range and filters of
    /// `within` (see [`indexer::LogSearcher::request_trace`]).
    fn request_trace(
        &self,
        request_id: &str,
        within: &SearchRequest,
    ) -> Result<Vec<Record>, IndexError>;

    /// The index's size and counters, when there is a local index.
    fn index_stats(&self) -> Option<IndexStats>;

    /// Where the data begins: the oldest record's timestamp over every shard, from the
    /// splits' metadata (no search); `None` in an empty index.
    fn oldest_record(&self) -> Result<Option<Timestamp>, IndexError>;
}

/// A page of hits and the cursor of the next one.
pub struct SearchPage {
    /// The hits, total and limit.
    pub results: SearchResults,
    /// Pass back as `cursor` for the next page; `None` on the last.
    pub next_cursor: Option<String>,
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

    fn field_stats_partial(
        &self,
        request: &SearchRequest,
        question: &StatsQuestion,
    ) -> Result<FieldStatsPartial, IndexError> {
        self.searcher.field_stats_partial(request, question)
    }

    fn request_trace(
        &self,
        request_id: &str,
        within: &SearchRequest,
    ) -> Result<Vec<Record>, IndexError> {
        self.searcher.request_trace(request_id, within)
    }

    fn index_stats(&self) -> Option<IndexStats> {
        Some(self.store.stats())
    }

    fn oldest_record(&self) -> Result<Option<Timestamp>, IndexError> {
        Ok(self.store.oldest_record())
    }
}

/// The backend where there is no index to search: a pipeline that keeps none (a node agent
/// publishing to Kafka), or one waiting to start again after a failure. Its API still
/// serves health, `/metrics` and `/api/v1/status`, and every search answers 503 saying why.
pub struct NoIndex {
    why: String,
}

impl NoIndex {
    /// A node agent's: search through an aggregator.
    pub fn agent() -> Self {
        NoIndex::because(
            "this pipeline keeps no index (a node agent publishing to Kafka): search through an aggregator",
        )
    }

    /// Searches answer 503 with `why`.
    pub fn because(why: impl Into<String>) -> Self {
        NoIndex { why: why.into() }
    }

    fn refuse<T>(&self) -> Result<T, IndexError> {
        Err(IndexError::Unavailable(self.why.clone()))
    }
}

impl SearchBackend for NoIndex {
    fn search(&self, _: &SearchRequest) -> Result<SearchResults, IndexError> {
        self.refuse()
    }

    fn histogram(
        &self,
        _: &SearchRequest,
        _: Duration,
    ) -> Result<Vec<HistogramBucket>, IndexError> {
        self.refuse()
    }

    fn field_stats_partial(
        &self,
        _: &SearchRequest,
        _: &StatsQuestion,
    ) -> Result<FieldStatsPartial, IndexError> {
        self.refuse()
    }

    fn request_trace(&self, _: &str, _: &SearchRequest) -> Result<Vec<Record>, IndexError> {
        self.refuse()
    }

    fn index_stats(&self) -> Option<IndexStats> {
        None
    }

    fn oldest_record(&self) -> Result<Option<Timestamp>, IndexError> {
        self.refuse()
    }
}
