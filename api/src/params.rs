//! What several endpoints share: the query, time range and filters of a request, and
//! running a backend call on the blocking pool.

use crate::{ApiError, ApiState, SearchBackend};
use indexer::{IndexError, SearchRequest};
use model::{RecordKind, Timestamp};
use std::sync::Arc;

/// `q`, `from`, `to`, `namespace`, `pod`, `container`, `kind`: all text, so that every
/// mistake gets our JSON error, not axum's.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Filters {
    pub(crate) q: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) pod: Option<String>,
    pub(crate) container: Option<String>,
    pub(crate) kind: Option<String>,
}

/// Reads a time (RFC3339, or relative such as `now-15m`) of parameter `name`.
pub(crate) fn time(
    name: &str,
    value: Option<&str>,
    now: Timestamp,
) -> Result<Option<Timestamp>, ApiError> {
    value
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            Timestamp::parse_expression(s, now)
                .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        })
        .transpose()
}

impl Filters {
    /// The search these filters ask for (no limit, no cursor).
    pub(crate) fn to_request(&self, now: Timestamp) -> Result<SearchRequest, ApiError> {
        let from = time("from", self.from.as_deref(), now)?;
        let to = time("to", self.to.as_deref(), now)?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(ApiError::bad_request("from is after to: swap them"));
        }
        let kind = self
            .kind
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|k| {
                RecordKind::from_name(k).ok_or_else(|| {
                    let names: Vec<_> = RecordKind::ALL.iter().map(|k| k.as_str()).collect();
                    ApiError::bad_request(format!("kind: `{k}` is not one of {}", names.join(", ")))
                })
            })
            .transpose()?;
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(SearchRequest {
            query: self.q.clone().unwrap_or_default(),
            from,
            to,
            namespace: non_empty(&self.namespace),
            pod: non_empty(&self.pod),
            container: non_empty(&self.container),
            kind,
            ..SearchRequest::default()
        })
    }
}

/// Runs `call` against the backend on the blocking pool; a query mistake is a 400, any
/// other index failure a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &ApiState,
    call: impl FnOnce(&dyn SearchBackend) -> Result<T, IndexError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend: Arc<dyn SearchBackend> = state.search.clone();
    tokio::task::spawn_blocking(move || call(&*backend))
        .await
        .map_err(|e| ApiError::internal(format!("index task failed: {e}")))?
        .map_err(|e| match e {
            IndexError::Query(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(other.to_string()),
        })
}
