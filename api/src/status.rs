//! `GET /api/v1/status`: each source of the pipeline, and each sink that can fail on its
//! own (Kafka), and whether it works — so that "no GPU figures" can be told apart from
//! "NVML is not available on this node" and "the dcgm-exporter answers 502", and "nothing
//! new" from "all brokers are down", without reading logs.

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
    /// down, Kafka brokers that cannot be reached).
    Failing,
}

/// One source's or sink's status.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// Its id in the pipeline config.
    pub id: String,
    /// Its type (`files`, `kube`, `gpu`, `scrape`, `kafka`).
    pub kind: String,
    /// How it is doing.
    pub state: ComponentState,
    /// Why, in words (what failed, or what it reads).
    pub detail: String,
}

/// Where the status comes from: the pipeline, which knows its sources and sinks.
pub trait StatusBackend: Send + Sync + 'static {
    /// Every source's status.
    fn sources(&self) -> Vec<ComponentStatus>;
    /// The status of every sink that can fail on its own (the index's health is
    /// `/readyz`'s).
    fn sinks(&self) -> Vec<ComponentStatus> {
        Vec::new()
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
    /// Every sink that can fail on its own (Kafka), by id.
    sinks: Vec<ComponentStatus>,
}

/// Each source, and each sink that can fail on its own, and whether it works.
#[utoipa::path(get, path = "/api/v1/status", tag = "health",
    responses((status = 200, description = "Every source's and Kafka sink's state", body = StatusResponse)),
    security((), ("bearer" = [])))]
pub(crate) async fn status(State(state): State<ApiState>) -> Json<StatusResponse> {
    Json(StatusResponse {
        sources: state.status.sources(),
        sinks: state.status.sinks(),
    })
}
