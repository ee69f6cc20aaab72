//! `GET /api/v1/pods?from=&to=&namespace=&pod=`: each pod's state as the newest records
//! about it say: its phase, its containers' restarts, why one waits (`CrashLoopBackOff`)
//! and how its last run ended (`OOMKilled`, exit code 137).
//!
//! Read from the `k8s_object` records the `kube` source writes on each change (DESIGN.md
//! §3), not from a live watch: a node agent's, a local pipeline's and every aggregator's
//! index answer alike, and a pod's state is known as of its newest change in the range. A
//! pod whose newest record says it was deleted is left out. Beside the changes, the source
//! records each pod's whole state every hour (`k8s.object.state`), so a pod that has run
//! unchanged for longer than the index keeps records is still known. Changes are read over
//! the whole range, states over its last two hours: a state per container and hour of a
//! long range would crowd the changes of other pods out of what one answer reads.

use crate::params::{Coverage, Filters, blocking};
use crate::{ApiError, ApiState, SearchBackend};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{IndexError, MAX_LIMIT, SearchRequest};
use model::{AttrValue, Record, RecordKind, Timestamp, names};
use std::collections::BTreeMap;

/// Without `from`, changes of this long before `to`: all the index keeps. A change is dated
/// by the pod's own status times, so a pod that has run steadily for weeks has nothing newer.
const DEFAULT_RANGE: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);
/// Change records read at most, newest first.
const MAX_CHANGES: usize = 20 * MAX_LIMIT;

/// One container's state.
#[derive(serde::Serialize, utoipa::ToSchema, Default)]
pub(crate) struct ContainerState {
    name: String,
    /// Restarts, as of its newest change.
    restarts: i64,
    /// Why it waits (`CrashLoopBackOff`, `ImagePullBackOff`); absent when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting: Option<String>,
    /// Why its last run ended (`OOMKilled`, `Error`, `Completed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_termination: Option<String>,
    /// Its last run's exit code (137: killed).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_exit_code: Option<i64>,
}

/// One pod's state.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PodState {
    namespace: Option<String>,
    pod: String,
    node: Option<String>,
    /// Pending, Running, Succeeded, Failed or Unknown.
    phase: Option<String>,
    /// Restarts of all its containers.
    restarts: i64,
    containers: Vec<ContainerState>,
    /// Its newest record: a change, or its hourly state.
    #[schema(value_type = String, format = DateTime)]
    updated: Timestamp,
}

/// Pods by namespace and name.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PodsResponse {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    pods: Vec<PodState>,
    /// Whether more changes matched than were read (the oldest pods may be missing).
    truncated: bool,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

/// What one change record says of its pod and container, newest record first: each
/// fact is taken from the newest record that tells it.
#[derive(Default)]
struct Seen {
    state: Option<PodState>,
    containers: BTreeMap<String, ContainerSeen>,
}

/// A container's state so far, and which of its facts a newer record already told.
struct ContainerSeen {
    state: ContainerState,
    waiting_known: bool,
    ended_known: bool,
}

impl Seen {
    fn add(&mut self, r: &Record) {
        let phase = r.attributes.get_str(names::K8S_POD_PHASE);
        if self.state.is_none() {
            self.state = Some(PodState {
                namespace: r
                    .resource_str(names::K8S_NAMESPACE_NAME)
                    .map(str::to_string),
                pod: r
                    .resource_str(names::K8S_POD_NAME)
                    .or_else(|| r.attributes.get_str(names::K8S_OBJECT_NAME))
                    .unwrap_or_default()
                    .to_string(),
                node: r.resource_str(names::K8S_NODE_NAME).map(str::to_string),
                phase: phase.map(str::to_string),
                restarts: 0,
                containers: Vec::new(),
                updated: r.timestamp,
            });
        }
        let Some(name) = r.resource_str(names::K8S_CONTAINER_NAME) else {
            return;
        };
        let seen = self.containers.entry(name.to_string()).or_insert_with(|| {
            let restarts = r
                .attributes
                .get(names::K8S_CONTAINER_RESTART_COUNT)
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0) as i64;
            ContainerSeen {
                state: ContainerState {
                    name: name.to_string(),
                    restarts,
                    ..ContainerState::default()
                },
                waiting_known: false,
                ended_known: false,
            }
        });
        // A state record tells both, as of its time: whether it waits, how its last run
        // ended (or that none did). Older records tell nothing more. Of the others, a
        // restart record tells how the last run ended, a waiting record (with a reason, or
        // without one: running again) whether it waits.
        let state = r.attributes.get(names::K8S_OBJECT_STATE) == Some(&AttrValue::Bool(true));
        let ended = r
            .attributes
            .get(names::K8S_CONTAINER_LAST_TERMINATED_REASON)
            .is_some()
            || r.attributes
                .get(names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE)
                .is_some();
        if (state || ended) && !seen.ended_known {
            seen.ended_known = true;
            seen.state.last_termination = r
                .attributes
                .get_str(names::K8S_CONTAINER_LAST_TERMINATED_REASON)
                .map(str::to_string);
            seen.state.last_exit_code = r
                .attributes
                .get(names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE)
                .and_then(|v| v.as_f64())
                .map(|v| v as i64);
        }
        if (state || !ended) && !seen.waiting_known {
            seen.waiting_known = true;
            seen.state.waiting = r
                .attributes
                .get_str(names::K8S_CONTAINER_WAITING_REASON)
                .map(str::to_string);
        }
    }

    /// The pod's state, unless its newest record says it was deleted.
    fn finish(self) -> Option<PodState> {
        let mut state = self
            .state
            .filter(|s| s.phase.as_deref() != Some("Deleted"))?;
        state.containers = self.containers.into_values().map(|c| c.state).collect();
        state.restarts = state.containers.iter().map(|c| c.restarts).sum();
        Some(state)
    }
}

/// How far back states are read: the `kube` source records every pod's state hourly (and
/// with each change), so two hours hold each live pod's newest state, with room for a late
/// one. Older states say nothing a newer one does not, and reading them would grow the
/// answer's cost by a record per container and hour of the whole range.
const STATE_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// Records of `request` newest first, up to `budget` of them; whether more matched.
pub(crate) fn read_newest(
    backend: &dyn SearchBackend,
    request: &SearchRequest,
    budget: usize,
    out: &mut Vec<Record>,
) -> Result<bool, IndexError> {
    let (mut cursor, mut read) = (None, 0);
    loop {
        let page = backend.search_page(request, cursor.as_deref())?;
        read += page.results.hits.len();
        let empty = page.results.hits.is_empty();
        out.extend(page.results.hits);
        cursor = page.next_cursor;
        if cursor.is_none() || empty {
            return Ok(false);
        }
        if read >= budget {
            return Ok(true);
        }
    }
}

fn find_pods(
    backend: &dyn SearchBackend,
    base: &SearchRequest,
) -> Result<(Vec<PodState>, bool), IndexError> {
    // `-`: changes only; `+`: states only.
    let pods_query = |state: char| SearchRequest {
        query: format!(
            "+attributes.{}:Pod {state}attributes.{}:true",
            names::K8S_OBJECT_KIND,
            names::K8S_OBJECT_STATE
        ),
        kind: Some(RecordKind::K8sObject),
        limit: MAX_LIMIT,
        ..base.clone()
    };
    // Changes over the whole range; states over its last hours only.
    let mut records = Vec::new();
    let mut truncated = read_newest(backend, &pods_query('-'), MAX_CHANGES, &mut records)?;
    let to = base.to.unwrap_or_else(Timestamp::now);
    let lookback = i64::try_from(STATE_LOOKBACK.as_nanos()).unwrap_or(i64::MAX);
    let states = SearchRequest {
        from: Some(
            base.from
                .map_or(to.saturating_add_nanos(-lookback), |from| {
                    from.max(to.saturating_add_nanos(-lookback))
                }),
        ),
        ..pods_query('+')
    };
    truncated |= read_newest(backend, &states, MAX_CHANGES, &mut records)?;
    // Each fact is taken from the newest record that tells it, whichever query found it.
    records.sort_by_key(|r| std::cmp::Reverse(r.timestamp));
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for r in &records {
        let Some(uid) = r.resource_str(names::K8S_POD_UID) else {
            continue;
        };
        seen.entry(uid.to_string()).or_default().add(r);
    }
    let mut pods: Vec<PodState> = seen.into_values().filter_map(Seen::finish).collect();
    pods.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    Ok((pods, truncated))
}

/// Every pod's state as of its newest change in the range (default: all the index keeps):
/// phase, node, each container's restarts, waiting reason and last termination. Deleted
/// pods are left out.
#[utoipa::path(get, path = "/api/v1/pods", tag = "kubernetes",
    params(Filters),
    responses(
        (status = 200, description = "Pods", body = PodsResponse),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn pods(
    State(state): State<ApiState>,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<PodsResponse>, ApiError> {
    let Query(filters) = params?;
    let (base, from, to) = filters.to_bounded_scope("pods", Timestamp::now(), DEFAULT_RANGE)?;
    let ((pods, truncated), coverage) = blocking(&state, move |b| find_pods(b, &base)).await?;
    Ok(Json(PodsResponse {
        from,
        to,
        pods,
        truncated,
        coverage,
    }))
}
