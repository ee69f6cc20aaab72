//! Infersight's HTTP API (axum).
//!
//! Owns: the router, request parsing (relative times, limits, filters), JSON errors, the
//! bearer token, the OpenAPI document, live tail, the embedded web UI, and serving with
//! graceful shutdown. Handlers stay thin: they parse, call a backend through a trait
//! ([`SearchBackend`]), and shape the answer.
//!
//! Must not know about: how records are collected or parsed, or how the pipeline is wired.

mod auth;
mod backend;
mod error;
mod histogram;
mod incidents;
mod llm;
mod metrics;
mod openapi;
mod params;
mod peers;
mod pods;
mod requests;
mod search;
mod shard;
mod status;
mod tail;
mod ui;
mod workloads;

pub use backend::{LocalIndex, NoIndex, SearchBackend, SearchPage};
pub use error::ApiError;
pub use metrics::{MetricFamily, MetricKind, MetricsBackend, NoMetrics, Sample, render};
pub use peers::{PeerListError, Peers};
pub use status::{ComponentState, ComponentStatus, NoStatus, PipelineRestarts, StatusBackend};
pub use tail::{LiveTail, MAX_TAIL_CLIENTS};

use axum::Router;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;

/// What the handlers need.
#[derive(Clone)]
pub struct ApiState {
    /// Where searches go.
    pub search: Arc<dyn SearchBackend>,
    /// What `/metrics` exposes.
    pub metrics: Arc<dyn MetricsBackend>,
    /// What `/api/v1/status` says of the sources.
    pub status: Arc<dyn StatusBackend>,
    /// The bearer token `/api` and `/metrics` require; `None` lets everyone in.
    pub token: Option<Arc<str>>,
    /// Where the pipeline publishes records for live tail; `None` without a pipeline.
    pub live: Option<Arc<LiveTail>>,
    /// This server's name among aggregators (host name and port): peers tell shards apart
    /// by it.
    pub instance: Arc<str>,
    /// The other aggregators every read endpoint asks as well; `None` answers from this
    /// server's index alone.
    pub peers: Option<Arc<Peers>>,
}

/// The router of every endpoint.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/histogram", get(histogram::histogram))
        .route(
            "/api/v1/requests/{request_id}",
            get(requests::request_trace),
        )
        .route("/api/v1/llm/summary", get(llm::summary))
        .route("/api/v1/tail", get(tail::tail))
        .route("/api/v1/incidents", get(incidents::incidents))
        .route("/api/v1/pods", get(pods::pods))
        .route("/api/v1/workloads", get(workloads::workloads))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/shard/search", post(shard::search))
        .route("/api/v1/shard/histogram", post(shard::histogram))
        .route("/api/v1/shard/stats", post(shard::stats))
        .route("/api/v1/shard/requests", post(shard::requests))
        .route("/api/v1/shard/oldest", post(shard::oldest))
        .route("/api/v1/shard/tail", get(shard::tail))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::file))
        .merge(protected)
        .fallback(not_found)
        .with_state(state)
}

/// What answers on the API's listener, replaceable while it serves: a pipeline's API
/// outlives a run of the pipeline that fails, answering for the next run once it runs and
/// in between saying why it does not (its listener went down with every run, so a full data
/// disk took the UI, `/metrics` and `/api/v1/status` away while they had most to say).
#[derive(Clone)]
pub struct RouterSlot(Arc<std::sync::RwLock<Router>>);

impl RouterSlot {
    /// A slot answering every endpoint from `state` until [`RouterSlot::answer`] replaces it.
    pub fn new(state: ApiState) -> Self {
        RouterSlot(Arc::new(std::sync::RwLock::new(router(state))))
    }

    /// Requests from now on are answered from `state`; those under way finish with the old
    /// one (and hold what it holds, its index, until they do).
    pub fn answer(&self, state: ApiState) {
        let router = router(state);
        match self.0.write() {
            Ok(mut current) => *current = router,
            Err(poisoned) => *poisoned.into_inner() = router,
        }
    }

    fn current(&self) -> Router {
        match self.0.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Serves whatever `slot` holds on `listener` until `shutdown` completes, then finishes
/// open requests.
pub async fn serve_slot(
    listener: tokio::net::TcpListener,
    slot: RouterSlot,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::ServiceExt;
    let current =
        tower::service_fn(move |request: axum::extract::Request| slot.current().oneshot(request));
    serve(listener, Router::new().fallback_service(current), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Object)))]
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the index answers: its size and counters. Not while the pipeline waits to
/// start again after a failure (503, with why and when it tries).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "`{\"status\":\"ready\", \"index\":{…}}`", body = Object),
        (status = 503, description = "`{\"status\":\"restarting\", \"last_failure\":…, \"next_try_in_s\":N}`", body = Object),
    ))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(restarts) = state.status.restarts()
        && let Some(next_try_in_s) = restarts.next_try_in_s
    {
        let body = serde_json::json!({
            "status": "restarting",
            "last_failure": restarts.last_failure,
            "next_try_in_s": next_try_in_s,
        });
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(body),
        )
            .into_response();
    }
    let index = state.search.index_stats().map(|s| {
        serde_json::json!({
            "splits": s.splits,
            "segments": s.segments,
            "records": s.records,
            "bytes": s.bytes,
            "commits": s.commits,
            "oldest_record": s.oldest_record,
        })
    });
    axum::Json(serde_json::json!({"status": "ready", "index": index})).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", uri.path()))
}

#[cfg(test)]
mod peer_tests;
#[cfg(test)]
mod tests;
