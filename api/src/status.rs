//! `GET /api/v1/status`: each source and sink of the pipeline, and whether it works — so
//! that "no GPU figures" can be told apart from "NVML is not available on this node" and
//! "the dcgm-exporter answers 502", "nothing new" from "all brokers are down", and "last
//! week is gone" from "the index's disk is under its floor", without reading logs.

use crate::ApiState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// How a source or sink is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Working.
    Ok,
    /// Not started yet, or not yet past its first attempt.
    Starting,
    /// Cannot work here (no NVML library, no GPU); it stopped and said why once.
    Unavailable,
    /// Working, but some of what it reads or writes fails now (a scrape target that is
    /// down, Kafka brokers that cannot be reached, index commits failing, an index whose
    /// disk is under its floor and that no longer grows).
    Failing,
}

/// One source's or sink's status.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// Its id in the pipeline config.
    pub id: String,
    /// Its type (`files`, `kube`, `gpu`, `scrape`, `kafka`, `index`).
    pub kind: String,
    /// How it is doing.
    pub state: ComponentState,
    /// Why, in words (what failed, or what it reads).
    pub detail: String,
}

/// The pipeline's failures while running (a full data disk, an index write refused), after
/// each of which it started again from its last commit.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PipelineRestarts {
    /// Restarts since the process started.
    pub count: u64,
    /// Why the last run failed.
    pub last_failure: String,
    /// Seconds since it failed.
    pub seconds_ago: u64,
    /// While the pipeline waits to start again: in how many seconds it tries. Meanwhile the
    /// API answers, without its sources, sinks or index (searches answer 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_try_in_s: Option<u64>,
}

/// Where the status comes from: the pipeline, which knows its sources and sinks.
pub trait StatusBackend: Send + Sync + 'static {
    /// Every source's status.
    fn sources(&self) -> Vec<ComponentStatus>;
    /// The status of every sink: Kafka's (brokers), the index's (commits, its disk floor).
    fn sinks(&self) -> Vec<ComponentStatus> {
        Vec::new()
    }
    /// The pipeline's restarts, once it has failed while running.
    fn restarts(&self) -> Option<PipelineRestarts> {
        None
    }
}

/// No sources (an API without a pipeline behind it).
pub struct NoStatus;

impl StatusBackend for NoStatus {
    fn sources(&self) -> Vec<ComponentStatus> {
        Vec::new()
    }
}

/// The answer of `GET /api/v1/status`.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusResponse {
    /// Every source, by id.
    sources: Vec<ComponentStatus>,
    /// Every sink (Kafka, the index), by id.
    sinks: Vec<ComponentStatus>,
    /// Present once the pipeline failed while running and started again: the failed run's
    /// sources and sinks started afresh with it, so this is where its failure shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    restarts: Option<PipelineRestarts>,
}

/// Each source and sink, and whether it works.
#[utoipa::path(get, path = "/api/v1/status", tag = "health",
    responses((status = 200, description = "Every source's and sink's state", body = StatusResponse)),
    security((), ("bearer" = [])))]
pub(crate) async fn status(State(state): State<ApiState>) -> Json<StatusResponse> {
    Json(StatusResponse {
        sources: state.status.sources(),
        sinks: state.status.sinks(),
        restarts: state.status.restarts(),
    })
}
