//! What several endpoints share: the query, time range and filters of a request, and
//! running a backend call on the blocking pool.

use crate::peers::{Federated, Unanswered};
use crate::{ApiError, ApiState, SearchBackend};
use indexer::{IndexError, SearchRequest};
use model::{RecordKind, Timestamp};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

/// `q`, `from`, `to`, `namespace`, `pod`, `container`, `kind`: all text, so that every
/// mistake gets our JSON error, not axum's.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Filters {
    /// Query: words, phrases, `field:value`, numeric ranges (`llm.e2e_ms:>5000`), `id*`
    /// prefixes, `AND`/`OR`/`-`; empty or `*` matches everything.
    pub(crate) q: Option<String>,
    /// Earliest time: RFC 3339 or relative (`now-15m`).
    #[param(
        pattern = r"^(|now([+-][0-9]{1,9}[smhdw])?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub(crate) from: Option<String>,
    /// Latest time: RFC 3339 or relative (`now`).
    #[param(
        pattern = r"^(|now([+-][0-9]{1,9}[smhdw])?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub(crate) to: Option<String>,
    /// Only this Kubernetes namespace (`llm-*`: those whose names begin so).
    pub(crate) namespace: Option<String>,
    /// Only this pod (`vllm-*`: those whose names begin so).
    pub(crate) pod: Option<String>,
    /// Only this container (`vllm*`: those whose names begin so).
    pub(crate) container: Option<String>,
    /// Only this kind of record.
    #[param(pattern = r"^(|log|k8s_event|k8s_object|gpu|request|engine_stats)$")]
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

impl Filters {
    /// Refuses `q` and `kind` for an endpoint that finds its records by its own query
    /// (`what` names them: "incidents", "pods"): the filters may only narrow the scope.
    pub(crate) fn scope_only(&self, what: &str) -> Result<(), ApiError> {
        if self.kind.as_deref().is_some_and(|k| !k.is_empty())
            || self.q.as_deref().is_some_and(|q| !q.trim().is_empty())
        {
            return Err(ApiError::bad_request(format!(
                "{what} are found by their own query: give only from, to, namespace, pod, container"
            )));
        }
        Ok(())
    }

    /// [`Filters::scope_only`], then [`Filters::to_bounded_request`]: the scope of an
    /// endpoint that finds its records by its own query (`what`: "incidents", "pods").
    pub(crate) fn to_bounded_scope(
        &self,
        what: &str,
        now: Timestamp,
        default_range: std::time::Duration,
    ) -> Result<(SearchRequest, Timestamp, Timestamp), ApiError> {
        self.scope_only(what)?;
        self.to_bounded_request(now, default_range)
    }

    /// The search these filters ask for over a closed range: `to` defaults to now, `from`
    /// to `default_range` before `to`. Returns the request and its `from` and `to`.
    pub(crate) fn to_bounded_request(
        &self,
        now: Timestamp,
        default_range: std::time::Duration,
    ) -> Result<(SearchRequest, Timestamp, Timestamp), ApiError> {
        let mut request = self.to_request(now)?;
        let to = request.to.unwrap_or(now);
        let back = i64::try_from(default_range.as_nanos()).unwrap_or(i64::MAX);
        let from = request
            .from
            .unwrap_or_else(|| to.saturating_add_nanos(-back));
        request.from = Some(from);
        request.to = Some(to);
        Ok((request, from, to))
    }
}

/// Index calls running at once: two per core. Fifty searches at once on two cores each got
/// a twenty-fifth of a core and all finished late (p99 5× the mean); queued in arrival
/// order (tokio's semaphore is fair), each waits its turn and then runs at nearly full
/// speed. One per core left the cores idle while a search read the disk or its answer was
/// written (-15% requests/s); eight were no faster than four and had a longer tail.
static INDEX_SLOTS: LazyLock<Semaphore> = LazyLock::new(slots);

/// The same for peers' shard requests. Apart, because an API request holds its slot while
/// it waits for the peers: if shard requests queued behind those, two aggregators busy
/// with API requests would each wait for the other until the peer timeout.
static SHARD_SLOTS: LazyLock<Semaphore> = LazyLock::new(slots);

fn slots() -> Semaphore {
    Semaphore::new(2 * std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Which shards an answer covers: with peer aggregators, the ones that did not answer in
/// time are named and the answer is `partial`.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Coverage {
    /// Some peer aggregator did not answer: the figures and hits are those of the others.
    pub(crate) partial: bool,
    /// The peers that did not answer, and why.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) unanswered_peers: std::collections::BTreeMap<String, String>,
}

/// Runs `call` on the blocking pool against every shard (this server's index, and its
/// peers' when it has any), once one of [`INDEX_SLOTS`] is free; a query mistake is a 400,
/// any other index failure a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &ApiState,
    call: impl FnOnce(&dyn SearchBackend) -> Result<T, IndexError> + Send + 'static,
) -> Result<(T, Coverage), ApiError> {
    let Some(peers) = state.peers.clone() else {
        return on_pool(&INDEX_SLOTS, state.search.clone(), call)
            .await
            .map(|v| (v, Coverage::default()));
    };
    let unanswered = Arc::new(Unanswered::default());
    let federated = Federated {
        local: state.search.clone(),
        peers,
        runtime: tokio::runtime::Handle::current(),
        unanswered: Arc::clone(&unanswered),
    };
    let value = on_pool(&INDEX_SLOTS, Arc::new(federated), call).await?;
    let unanswered_peers = unanswered.take();
    Ok((
        value,
        Coverage {
            partial: !unanswered_peers.is_empty(),
            unanswered_peers,
        },
    ))
}

/// Runs `call` against this server's own index only (a peer's shard request).
pub(crate) async fn blocking_local<T: Send + 'static>(
    state: &ApiState,
    call: impl FnOnce(&dyn SearchBackend) -> Result<T, IndexError> + Send + 'static,
) -> Result<T, ApiError> {
    on_pool(&SHARD_SLOTS, state.search.clone(), call).await
}

async fn on_pool<T: Send + 'static>(
    slots: &Semaphore,
    backend: Arc<dyn SearchBackend>,
    call: impl FnOnce(&dyn SearchBackend) -> Result<T, IndexError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("index slots closed: {e}")))?;
    tokio::task::spawn_blocking(move || call(&*backend))
        .await
        .map_err(|e| ApiError::internal(format!("index task failed: {e}")))?
        .map_err(|e| match e {
            IndexError::Query(_) => ApiError::bad_request(e.to_string()),
            IndexError::Unavailable(_) => ApiError::unavailable(e.to_string()),
            other => ApiError::internal(other.to_string()),
        })
}
