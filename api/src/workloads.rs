//! `GET /api/v1/workloads?namespace=`: each Deployment's, StatefulSet's and autoscaler's
//! replica counts (wanted, ready, available) as the newest record about it says, so that a
//! rollout that never became ready or an autoscaler short of what it wants shows beside
//! the pods' figures.
//!
//! Read from the `k8s_object` records the `kube` source writes (DESIGN.md §3), as
//! `/api/v1/pods` is: a change on each new count, a deletion, and every workload's counts
//! every hour (`k8s.object.state`). So a workload is one with a record in the last
//! [`LOOKBACK`] whose newest record is not its deletion: a deleted one, or one whose
//! source stopped, leaves the list within the lookback.

use crate::params::{Coverage, Filters, blocking};
use crate::pods::read_newest;
use crate::{ApiError, ApiState, SearchBackend};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{IndexError, MAX_LIMIT, SearchRequest};
use model::{AttrValue, Record, RecordKind, Timestamp, names};
use std::collections::{BTreeMap, HashSet};

/// Without `from`, this long before `to`: over an hour and a half between hourly states
/// (the one of each hour is dated at its start), with room for a late one.
const LOOKBACK: std::time::Duration = std::time::Duration::from_secs(3 * 3600);
/// Records read at most, newest first.
const MAX_RECORDS: usize = 20 * MAX_LIMIT;
/// The kinds the `kube` source records replica counts of.
const KINDS: [&str; 3] = ["Deployment", "StatefulSet", "HorizontalPodAutoscaler"];

/// One workload's replica counts. For an autoscaler: `desired` is what it asks for,
/// `ready` what its target has, `available` its ceiling.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct WorkloadState {
    /// Deployment, StatefulSet or HorizontalPodAutoscaler.
    kind: String,
    namespace: Option<String>,
    name: String,
    desired: i64,
    ready: i64,
    available: i64,
    /// Its newest record: a change, or its hourly state.
    #[schema(value_type = String, format = DateTime)]
    updated: Timestamp,
}

/// Workloads by namespace, kind and name.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct WorkloadsResponse {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    workloads: Vec<WorkloadState>,
    /// Whether more records matched than were read (some workloads may be missing).
    truncated: bool,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

/// Whether `r` is a workload's deletion.
fn is_deletion(r: &Record) -> bool {
    r.attributes.get(names::K8S_OBJECT_DELETED) == Some(&AttrValue::Bool(true))
}

/// The uid of the workload `r` is about.
fn uid(r: &Record) -> Option<&str> {
    r.attributes.get_str(names::K8S_OBJECT_UID)
}

/// The workload `r` is about and the state it says, newest record first; `None` for its
/// deletion.
fn state_of(r: &Record) -> Option<WorkloadState> {
    let a = &r.attributes;
    if is_deletion(r) {
        return None;
    }
    let count = |name| a.get(name).and_then(AttrValue::as_f64).unwrap_or(0.0) as i64;
    Some(WorkloadState {
        kind: a.get_str(names::K8S_OBJECT_KIND)?.to_string(),
        namespace: r
            .resource_str(names::K8S_NAMESPACE_NAME)
            .map(str::to_string),
        name: a.get_str(names::K8S_OBJECT_NAME)?.to_string(),
        desired: count(names::K8S_REPLICAS_DESIRED),
        ready: count(names::K8S_REPLICAS_READY),
        available: count(names::K8S_REPLICAS_AVAILABLE),
        updated: r.timestamp,
    })
}

fn find_workloads(
    backend: &dyn SearchBackend,
    base: &SearchRequest,
) -> Result<(Vec<WorkloadState>, bool), IndexError> {
    let kinds: Vec<String> = KINDS
        .iter()
        .map(|k| format!("attributes.{}:{k}", names::K8S_OBJECT_KIND))
        .collect();
    let request = SearchRequest {
        query: format!("({})", kinds.join(" OR ")),
        kind: Some(RecordKind::K8sObject),
        limit: MAX_LIMIT,
        ..base.clone()
    };
    let mut records = Vec::new();
    let truncated = read_newest(backend, &request, MAX_RECORDS, &mut records)?;
    // A uid's deletion outranks what else is said of it, whatever their times: the hourly
    // state an agent sends just after a deletion was asked for (and before its watch saw
    // it) is dated at the hour's start, after the deletion. A workload made again under
    // the same name has a new uid.
    let gone: HashSet<&str> = records
        .iter()
        .filter(|r| is_deletion(r))
        .filter_map(uid)
        .collect();
    // Newest first (peers' pages are merged so): the first record of each workload says.
    let mut newest: BTreeMap<(String, String, String), Option<WorkloadState>> = BTreeMap::new();
    for r in &records {
        if !is_deletion(r) && uid(r).is_some_and(|u| gone.contains(u)) {
            continue;
        }
        let a = &r.attributes;
        let (Some(kind), Some(name)) = (
            a.get_str(names::K8S_OBJECT_KIND),
            a.get_str(names::K8S_OBJECT_NAME),
        ) else {
            continue;
        };
        let namespace = r
            .resource_str(names::K8S_NAMESPACE_NAME)
            .unwrap_or_default();
        newest
            .entry((namespace.to_string(), kind.to_string(), name.to_string()))
            .or_insert_with(|| state_of(r));
    }
    Ok((newest.into_values().flatten().collect(), truncated))
}

/// Every Deployment's, StatefulSet's and autoscaler's replica counts as of its newest
/// record in the range (default: the last three hours, which hold every live workload's
/// hourly state). Deleted ones are left out.
#[utoipa::path(get, path = "/api/v1/workloads", tag = "kubernetes",
    params(Filters),
    responses(
        (status = 200, description = "Workloads", body = WorkloadsResponse),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn workloads(
    State(state): State<ApiState>,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<WorkloadsResponse>, ApiError> {
    let Query(filters) = params?;
    let (base, from, to) = filters.to_bounded_scope("workloads", Timestamp::now(), LOOKBACK)?;
    let ((workloads, truncated), coverage) =
        blocking(&state, move |b| find_workloads(b, &base)).await?;
    Ok(Json(WorkloadsResponse {
        from,
        to,
        workloads,
        truncated,
        coverage,
    }))
}
