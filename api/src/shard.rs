//! `POST /api/v1/shard/*` and `GET /api/v1/shard/tail`: what a peer aggregator asks of
//! this one. Each answers from this server's own index (or live tail) only, never fanning
//! out again, so peers listing each other cannot loop, and names this server in the
//! instance header, by which the asker merges shards and recognises itself behind a DNS
//! name.

use crate::params::{Filters, blocking_local};
use crate::peers::{INSTANCE_HEADER, ShardHistogram, ShardSearch, ShardStats, ShardTrace};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// An answer with this server's instance name on it.
fn signed(state: &ApiState, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&state.instance) {
        response.headers_mut().insert(INSTANCE_HEADER, v);
    }
    response
}

fn read<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request(format!("shard request: {}", e.body_text())))
}

/// This index's page for a federated search: its own cursor is taken from the map.
pub(crate) async fn search(
    State(state): State<ApiState>,
    body: Result<Json<ShardSearch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ShardSearch {
        mut request,
        cursors,
    } = read(body)?;
    request.after = cursors.get(&*state.instance).copied();
    let results = blocking_local(&state, move |b| b.search(&request)).await?;
    Ok(signed(&state, Json(results)))
}

/// This index's histogram buckets.
pub(crate) async fn histogram(
    State(state): State<ApiState>,
    body: Result<Json<ShardHistogram>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ShardHistogram {
        request,
        interval_ns,
    } = read(body)?;
    let interval = Duration::from_nanos(interval_ns);
    let buckets = blocking_local(&state, move |b| b.histogram(&request, interval)).await?;
    Ok(signed(&state, Json(buckets)))
}

/// This index's field statistics, unfinished (CBOR), for the asker to merge.
pub(crate) async fn stats(
    State(state): State<ApiState>,
    body: Result<Json<ShardStats>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ShardStats { request, question } = read(body)?;
    let bytes = blocking_local(&state, move |b| {
        b.field_stats_partial(&request, &question)?.to_bytes()
    })
    .await?;
    Ok(signed(
        &state,
        (
            [(axum::http::header::CONTENT_TYPE, "application/cbor")],
            bytes,
        ),
    ))
}

/// This index's records about one request.
pub(crate) async fn requests(
    State(state): State<ApiState>,
    body: Result<Json<ShardTrace>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ShardTrace { request_id, within } = read(body)?;
    let records = blocking_local(&state, move |b| b.request_trace(&request_id, &within)).await?;
    Ok(signed(&state, Json(records)))
}

/// Where this index's data begins (its oldest record), for the asker's rates.
pub(crate) async fn oldest(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let oldest = blocking_local(&state, |b| b.oldest_record()).await?;
    Ok(signed(&state, Json(oldest)))
}

/// This server's own live tail, for a peer's live tail to follow.
pub(crate) async fn tail(
    State(state): State<ApiState>,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Response, ApiError> {
    let local = crate::tail::local_events(&state, params)?;
    Ok(signed(
        &state,
        Sse::new(local).keep_alive(KeepAlive::default()),
    ))
}
