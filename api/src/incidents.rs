//! `GET /api/v1/incidents?from=&to=&namespace=&pod=`: crashes and failures, each with what
//! belongs to it. A CUDA OOM traceback, the OOMKilled that follows and the BackOff events
//! after it are one incident of one pod, not three unrelated hits.
//!
//! Triggers are records that say something broke: an `error.type` the processor set
//! (cuda_oom, engine_dead, nccl_error, oom_killed, a traceback) or a Kubernetes warning
//! event with a failure reason. Triggers of one pod less than [`JOIN_GAP`] apart form one
//! incident; it gets the events of that pod around it and the container's last log lines
//! before it.

use crate::params::{Coverage, Filters, blocking};
use crate::{ApiError, ApiState, SearchBackend};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{IndexError, MAX_LIMIT, SearchRequest};
use model::{Record, RecordKind, Timestamp, names};
use std::collections::BTreeMap;

/// Triggers of one pod this close together are one incident.
const JOIN_GAP: i64 = 5 * 60 * 1_000_000_000;
/// Events this long before and after an incident belong to it.
const EVENT_MARGIN: i64 = 10 * 60 * 1_000_000_000;
/// Without `from`, incidents of this long before `to`.
const DEFAULT_RANGE: i64 = 24 * 3600 * 1_000_000_000;
/// Log lines of the container shown before an incident.
const LAST_LINES: usize = 20;
/// Incidents returned at most (the newest).
const MAX_INCIDENTS: usize = 50;
/// Trigger records kept per incident.
const MAX_TRIGGERS: usize = 20;

/// Error types that are incidents, worst first (the incident's kind is its worst).
const ERROR_TYPES: [&str; 5] = [
    "oom_killed",
    "cuda_oom",
    "engine_dead",
    "nccl_error",
    "traceback",
];
/// Kubernetes event reasons that are incidents, worst first, with the kind they mean.
const EVENT_REASONS: [(&str, &str); 8] = [
    ("OOMKilling", "oom_killed"),
    ("SystemOOM", "oom_killed"),
    ("OOMKilled", "oom_killed"),
    ("BackOff", "crash_loop"),
    ("CrashLoopBackOff", "crash_loop"),
    ("Unhealthy", "unhealthy"),
    ("FailedScheduling", "failed_scheduling"),
    ("Evicted", "evicted"),
];
/// Every kind, worst first.
const KIND_ORDER: [&str; 9] = [
    "oom_killed",
    "cuda_oom",
    "engine_dead",
    "nccl_error",
    "crash_loop",
    "evicted",
    "failed_scheduling",
    "unhealthy",
    "traceback",
];

/// One crash or failure.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Incident {
    /// Stable for the same data: `<namespace>/<pod>@<first trigger, ns>`.
    id: String,
    /// The first trigger.
    #[schema(value_type = String, format = DateTime)]
    time: Timestamp,
    /// The last trigger.
    #[schema(value_type = String, format = DateTime)]
    last: Timestamp,
    namespace: Option<String>,
    pod: Option<String>,
    /// The container of the first log trigger.
    container: Option<String>,
    /// The worst kind seen: oom_killed, cuda_oom, engine_dead, nccl_error, crash_loop,
    /// evicted, failed_scheduling, unhealthy, traceback.
    kind: String,
    /// One line: what happened, and what followed.
    summary: String,
    /// The records that make it an incident, oldest first.
    #[schema(value_type = Vec<Object>)]
    triggers: Vec<Record>,
    /// Kubernetes events of the pod around it, oldest first.
    #[schema(value_type = Vec<Object>)]
    events: Vec<Record>,
    /// The container's last log lines before it, oldest first.
    #[schema(value_type = Vec<Object>)]
    last_lines: Vec<Record>,
}

/// Incidents, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct IncidentsResponse {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    incidents: Vec<Incident>,
    /// Whether more triggers matched than were read (the oldest incidents may be missing).
    truncated: bool,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

fn trigger_query() -> String {
    let mut parts: Vec<String> = ERROR_TYPES
        .iter()
        .map(|t| format!("error.type:{t}"))
        .collect();
    parts.extend(
        EVENT_REASONS
            .iter()
            .map(|(r, _)| format!("attributes.{}:{r}", names::K8S_EVENT_REASON)),
    );
    format!("({})", parts.join(" OR "))
}

/// What kind of incident `record` says, if any.
fn kind_of(record: &Record) -> Option<&'static str> {
    if let Some(t) = record.attributes.get_str(names::ERROR_TYPE) {
        return ERROR_TYPES.iter().copied().find(|k| *k == t);
    }
    let reason = record.attributes.get_str(names::K8S_EVENT_REASON)?;
    EVENT_REASONS
        .iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, k)| *k)
}

fn rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// The first line of a record's message, shortened.
fn headline(record: &Record) -> String {
    let text = record
        .attributes
        .get_str(names::EXCEPTION_MESSAGE)
        .map(|m| match record.attributes.get_str(names::EXCEPTION_TYPE) {
            Some(t) => format!("{t}: {m}"),
            None => m.to_string(),
        })
        .unwrap_or_else(|| {
            let body = record.body.trim();
            // A traceback's last line says what happened; its first line only that one did.
            match body.lines().last() {
                Some(last) if body.starts_with("Traceback") => last.to_string(),
                _ => body.lines().next().unwrap_or_default().to_string(),
            }
        });
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

fn summary(kind: &str, pod: Option<&str>, triggers: &[Record], events: &[Record]) -> String {
    let worst = triggers
        .iter()
        .filter(|r| kind_of(r) == Some(kind))
        .find(|r| r.kind != RecordKind::K8sEvent)
        .or_else(|| triggers.iter().find(|r| kind_of(r) == Some(kind)));
    let what = match kind {
        "oom_killed" => "OOMKilled",
        "cuda_oom" => "CUDA out of memory",
        "engine_dead" => "the inference engine died",
        "nccl_error" => "NCCL error",
        "crash_loop" => "crash loop (BackOff)",
        "evicted" => "evicted",
        "failed_scheduling" => "failed scheduling",
        "unhealthy" => "probe failures",
        _ => "an unhandled exception",
    };
    let mut line = format!("{what} in {}", pod.unwrap_or("an unknown pod"));
    if let Some(r) = worst {
        line.push_str(": ");
        line.push_str(&headline(r));
    }
    // What followed, by reason: "then 1× OOMKilling, 3× BackOff".
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        if let Some(reason) = e.attributes.get_str(names::K8S_EVENT_REASON)
            && e.attributes.get_str(names::K8S_EVENT_TYPE) != Some("Normal")
        {
            *reasons.entry(reason).or_default() += 1;
        }
    }
    if !reasons.is_empty() {
        let listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{n}× {r}")).collect();
        line.push_str(&format!(" (events: {})", listed.join(", ")));
    }
    line
}

fn find_incidents(
    backend: &dyn SearchBackend,
    base: &SearchRequest,
) -> Result<(Vec<Incident>, bool), IndexError> {
    let triggers = backend.search(&SearchRequest {
        query: trigger_query(),
        limit: MAX_LIMIT,
        ..base.clone()
    })?;
    let truncated = triggers.total > triggers.hits.len();
    // Per pod, oldest first, split where triggers are further apart than JOIN_GAP.
    let mut by_pod: BTreeMap<(String, String), Vec<Record>> = BTreeMap::new();
    for r in triggers.hits.into_iter().filter(|r| kind_of(r).is_some()) {
        let key = (
            r.resource_str(names::K8S_NAMESPACE_NAME)
                .unwrap_or_default()
                .to_string(),
            r.resource_str(names::K8S_POD_NAME)
                .unwrap_or_default()
                .to_string(),
        );
        by_pod.entry(key).or_default().push(r);
    }
    let mut groups: Vec<Vec<Record>> = Vec::new();
    for (_, mut records) in by_pod {
        records.sort_by_key(|r| r.timestamp);
        let mut current: Vec<Record> = Vec::new();
        for r in records {
            if let Some(last) = current.last()
                && r.timestamp.unix_nanos() - last.timestamp.unix_nanos() > JOIN_GAP
            {
                groups.push(std::mem::take(&mut current));
            }
            current.push(r);
        }
        if !current.is_empty() {
            groups.push(current);
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.first().map(|r| r.timestamp)));
    groups.truncate(MAX_INCIDENTS);
    let mut incidents = Vec::with_capacity(groups.len());
    for mut triggers in groups {
        let (Some(first), Some(last)) = (triggers.first(), triggers.last()) else {
            continue;
        };
        let (time, last_time) = (first.timestamp, last.timestamp);
        let namespace = first
            .resource_str(names::K8S_NAMESPACE_NAME)
            .map(str::to_string);
        let pod = first.resource_str(names::K8S_POD_NAME).map(str::to_string);
        let container = triggers
            .iter()
            .find(|r| r.kind == RecordKind::Log)
            .and_then(|r| r.resource_str(names::K8S_CONTAINER_NAME))
            .map(str::to_string);
        let kind = triggers
            .iter()
            .filter_map(kind_of)
            .min_by_key(|k| rank(k))
            .unwrap_or("traceback");
        let around = |kind: RecordKind, from: i64, to: i64, limit: usize| SearchRequest {
            namespace: namespace.clone(),
            pod: pod.clone(),
            kind: Some(kind),
            from: Some(Timestamp::from_unix_nanos(from)),
            to: Some(Timestamp::from_unix_nanos(to)),
            limit,
            ..SearchRequest::default()
        };
        let mut events = if pod.is_some() {
            backend
                .search(&around(
                    RecordKind::K8sEvent,
                    time.unix_nanos() - EVENT_MARGIN,
                    last_time.unix_nanos() + EVENT_MARGIN,
                    100,
                ))?
                .hits
        } else {
            Vec::new()
        };
        events.reverse();
        let mut last_lines = match &container {
            Some(c) => {
                let mut r = around(
                    RecordKind::Log,
                    time.unix_nanos() - DEFAULT_RANGE,
                    time.unix_nanos() - 1,
                    LAST_LINES,
                );
                r.container = Some(c.clone());
                backend.search(&r)?.hits
            }
            None => Vec::new(),
        };
        last_lines.reverse();
        let summary = summary(kind, pod.as_deref(), &triggers, &events);
        triggers.truncate(MAX_TRIGGERS);
        incidents.push(Incident {
            id: format!(
                "{}/{}@{}",
                namespace.as_deref().unwrap_or("-"),
                pod.as_deref().unwrap_or("-"),
                time.unix_nanos()
            ),
            time,
            last: last_time,
            namespace,
            pod,
            container,
            kind: kind.to_string(),
            summary,
            triggers,
            events,
            last_lines,
        });
    }
    Ok((incidents, truncated))
}

/// Crashes and failures (OOMKilled, crash loops, CUDA out-of-memory, engine death, NCCL
/// errors, tracebacks, failed scheduling), each with its triggers, the pod's Kubernetes
/// events around it and the container's last log lines before it; newest first (default
/// range: the last 24 hours).
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents",
    params(Filters),
    responses(
        (status = 200, description = "Incidents", body = IncidentsResponse),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn incidents(
    State(state): State<ApiState>,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<IncidentsResponse>, ApiError> {
    let Query(filters) = params?;
    let (base, from, to) = filters.to_bounded_scope(
        "incidents",
        Timestamp::now(),
        std::time::Duration::from_nanos(DEFAULT_RANGE as u64),
    )?;
    let ((incidents, truncated), coverage) =
        blocking(&state, move |b| find_incidents(b, &base)).await?;
    Ok(Json(IncidentsResponse {
        from,
        to,
        incidents,
        truncated,
        coverage,
    }))
}
