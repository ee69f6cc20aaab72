//! `GET /api/v1/requests/{request_id}`: one request across containers.

use crate::params::{Coverage, Filters, blocking};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use model::{AttrValue, Record, RecordKind, Timestamp, names};
use std::collections::BTreeMap;

/// Timings and token counts a request record may carry, under the names the response uses.
const FIGURES: [(&str, &str); 11] = [
    ("e2e_ms", names::LLM_E2E_MS),
    ("queue_ms", names::LLM_QUEUE_MS),
    ("validation_ms", names::LLM_VALIDATION_MS),
    ("inference_ms", names::LLM_INFERENCE_MS),
    ("prefill_ms", names::LLM_PREFILL_MS),
    ("decode_ms", names::LLM_DECODE_MS),
    ("ttft_ms", names::LLM_TTFT_MS),
    ("tpot_ms", names::LLM_TPOT_MS),
    ("tokens_per_s", names::LLM_TOKENS_PER_S),
    ("input_tokens", names::GEN_AI_USAGE_INPUT_TOKENS),
    ("output_tokens", names::GEN_AI_USAGE_OUTPUT_TOKENS),
];

/// One request across containers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RequestTrace {
    request_id: String,
    /// What the request records say, merged: model, server, outcome, timings, tokens.
    summary: Summary,
    /// The `kind=request` records (one per lifecycle the processor closed).
    #[schema(value_type = Vec<Object>)]
    lifecycle: Vec<Record>,
    /// Every record about the request, oldest first, from every container.
    #[schema(value_type = Vec<Object>)]
    lines: Vec<Record>,
    /// `namespace/pod/container` of every container that logged about it.
    containers: Vec<String>,
    /// The GPU snapshot (`kind=gpu` record) of the serving pod nearest the request's end:
    /// the last at or before it, else the first after it, within [`GPU_WINDOW_NS`].
    #[schema(value_type = Option<Object>)]
    gpu: Option<Record>,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

/// How far from a request's end a GPU snapshot still describes it.
const GPU_WINDOW_NS: i64 = 10 * 60 * 1_000_000_000;

/// The serving pod's GPU snapshot nearest `end`.
fn nearest_gpu(
    backend: &dyn crate::SearchBackend,
    lines: &[Record],
    end: Timestamp,
) -> Result<Option<Record>, indexer::IndexError> {
    // The pod that served it: the one whose records carry the server's name (a router's
    // access line carries none), the request record's first.
    let serving = lines
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .chain(
            lines
                .iter()
                .filter(|r| r.attributes.get_str(names::LLM_SERVER).is_some()),
        )
        .next();
    let Some(pod) = serving.and_then(|r| r.resource_str(names::K8S_POD_NAME)) else {
        return Ok(None);
    };
    let around = |from: i64, to: i64, limit: usize| indexer::SearchRequest {
        kind: Some(RecordKind::Gpu),
        pod: Some(pod.to_string()),
        namespace: serving
            .and_then(|r| r.resource_str(names::K8S_NAMESPACE_NAME))
            .map(str::to_string),
        from: Some(Timestamp::from_unix_nanos(from)),
        to: Some(Timestamp::from_unix_nanos(to)),
        limit,
        ..indexer::SearchRequest::default()
    };
    let end = end.unix_nanos();
    let before = backend.search(&around(end - GPU_WINDOW_NS, end, 1))?;
    if let Some(r) = before.hits.into_iter().next() {
        return Ok(Some(r));
    }
    let after = backend.search(&around(end, end + GPU_WINDOW_NS, indexer::MAX_LIMIT))?;
    Ok(after.hits.into_iter().last())
}

/// The request's figures, merged from its records.
#[derive(serde::Serialize, Default, utoipa::ToSchema)]
pub(crate) struct Summary {
    #[schema(value_type = Option<String>, format = DateTime)]
    first_seen: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_seen: Option<Timestamp>,
    model: Option<String>,
    server: Option<String>,
    /// `request_finished`, `request_aborted`, …
    outcome: Option<String>,
    http_status: Option<i64>,
    /// `e2e_ms`, `queue_ms`, `ttft_ms`, `tpot_ms`, `input_tokens`, `output_tokens`, …
    #[schema(value_type = std::collections::HashMap<String, f64>)]
    figures: BTreeMap<&'static str, f64>,
}

fn container_of(r: &Record) -> String {
    let part = |key| r.resource_str(key).unwrap_or("-");
    format!(
        "{}/{}/{}",
        part(names::K8S_NAMESPACE_NAME),
        part(names::K8S_POD_NAME),
        part(names::K8S_CONTAINER_NAME)
    )
}

fn summarise(lines: &[Record]) -> Summary {
    let mut s = Summary {
        first_seen: lines.first().map(|r| r.timestamp),
        last_seen: lines.last().map(|r| r.timestamp),
        ..Summary::default()
    };
    // Request records first (the processor's view), then lines, for what they lack.
    let ordered = lines
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .chain(lines.iter().filter(|r| r.kind != RecordKind::Request));
    for r in ordered {
        let text = |key| r.attributes.get_str(key).map(str::to_string);
        s.model = s.model.take().or_else(|| text(names::GEN_AI_REQUEST_MODEL));
        s.server = s.server.take().or_else(|| text(names::LLM_SERVER));
        if r.kind == RecordKind::Request {
            s.outcome = s.outcome.take().or_else(|| text(names::LLM_EVENT));
        }
        if s.http_status.is_none()
            && let Some(AttrValue::Int(code)) = r.attributes.get(names::HTTP_RESPONSE_STATUS_CODE)
        {
            s.http_status = Some(*code);
        }
        for (name, key) in FIGURES {
            if let Some(v) = r.attributes.get(key).and_then(AttrValue::as_f64) {
                s.figures.entry(name).or_insert(v);
            }
        }
    }
    s
}

/// Everything about one request: its lifecycle, timings, tokens, and every line that
/// mentions it, from every container. `from`, `to`, `namespace`, `pod` and `container`
/// narrow it: a number (llama.cpp's task ids) names a request only within one run of one
/// server, so ask it with the pod and a time around the line it came from.
#[utoipa::path(get, path = "/api/v1/requests/{request_id}", tag = "requests",
    params(("request_id" = String, Path, description = "The id the server logged, e.g. `chatcmpl-…`."), Filters),
    responses(
        (status = 200, description = "The request", body = RequestTrace),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
        (status = 404, description = "No record mentions it", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn request_trace(
    State(state): State<ApiState>,
    Path(request_id): Path<String>,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<RequestTrace>, ApiError> {
    let Query(filters) = params?;
    filters.scope_only("a request's records")?;
    let within = filters.to_request(Timestamp::now())?;
    let id = request_id.trim().to_string();
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::bad_request(
            "request_id: give the id the server logged (1 to 256 characters)",
        ));
    }
    let asked = id.clone();
    let ((lines, gpu), coverage) = blocking(&state, move |b| {
        let lines = b.request_trace(&asked, &within)?;
        let gpu = match lines.last() {
            Some(last) => nearest_gpu(b, &lines, last.timestamp)?,
            None => None,
        };
        Ok((lines, gpu))
    })
    .await?;
    if lines.is_empty() {
        return Err(ApiError::not_found(format!(
            "no record mentions request `{id}` (check the id, or widen retention)"
        )));
    }
    let mut containers: Vec<String> = lines.iter().map(container_of).collect();
    containers.sort();
    containers.dedup();
    Ok(Json(RequestTrace {
        request_id: id,
        summary: summarise(&lines),
        lifecycle: lines
            .iter()
            .filter(|r| r.kind == RecordKind::Request)
            .cloned()
            .collect(),
        containers,
        lines,
        gpu,
        coverage,
    }))
}
