//! `GET /api/v1/tail?q=&namespace=&pod=&container=&kind=`: records as the pipeline indexes
//! them, matching a query, as Server-Sent Events (`ready` once, then `record` per match, and
//! `lagged` when this client fell behind and batches were skipped).

use crate::params::Filters;
use crate::{ApiError, ApiState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use indexer::LiveFilter;
use model::{Record, Timestamp};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::broadcast;

/// Tail clients at once; more get 429.
pub const MAX_TAIL_CLIENTS: usize = 32;
/// Batches a slow client may be behind before it skips some (and is told so).
const BACKLOG_BATCHES: usize = 256;

/// Where the pipeline publishes the records it indexes, for tail clients.
pub struct LiveTail {
    sender: broadcast::Sender<Arc<Vec<Record>>>,
    clients: AtomicUsize,
}

impl Default for LiveTail {
    fn default() -> Self {
        LiveTail {
            sender: broadcast::channel(BACKLOG_BATCHES).0,
            clients: AtomicUsize::new(0),
        }
    }
}

impl LiveTail {
    /// Shows `records` to the tail clients; costs nothing (no copy) when there are none.
    pub fn publish(&self, records: &[Record]) {
        if self.sender.receiver_count() > 0 && !records.is_empty() {
            let _ = self.sender.send(Arc::new(records.to_vec()));
        }
    }

    /// Tail clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }
}

/// Counts a client while its stream lives.
struct Client(Arc<LiveTail>);

impl Drop for Client {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

struct TailState {
    receiver: broadcast::Receiver<Arc<Vec<Record>>>,
    filter: Arc<LiveFilter>,
    pending: VecDeque<Event>,
    _client: Client,
}

async fn next_event(mut state: TailState) -> Option<(Result<Event, Infallible>, TailState)> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some((Ok(event), state));
        }
        match state.receiver.recv().await {
            Ok(records) => {
                let filter = state.filter.clone();
                let batch = records.clone();
                // Matching indexes the batch in memory: CPU work, kept off the runtime.
                let matched = tokio::task::spawn_blocking(move || filter.matching(&batch)).await;
                match matched {
                    Ok(Ok(found)) => state.pending.extend(
                        found
                            .into_iter()
                            .map(|i| Event::default().event("record").data(records[i].to_json())),
                    ),
                    Ok(Err(e)) => tracing::warn!(error = %e, "tail: a batch could not be matched"),
                    Err(e) => tracing::warn!(error = %e, "tail: the matching task failed"),
                }
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => state.pending.push_back(
                Event::default()
                    .event("lagged")
                    .data(format!("{{\"skipped_batches\":{skipped}}}")),
            ),
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// Live tail: matching records as they are indexed (before their commit), as Server-Sent
/// Events. The stream opens with a `ready` event; each match is a `record` event whose data
/// is the record's JSON; `lagged` says batches were skipped for a slow client.
#[utoipa::path(get, path = "/api/v1/tail", tag = "search",
    params(Filters),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
        (status = 429, description = "Too many tail clients", body = crate::error::ErrorBody),
        (status = 503, description = "No pipeline feeds this server", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn tail(
    State(state): State<ApiState>,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(filters) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let request = filters.to_request(Timestamp::now())?;
    let filter = LiveFilter::new(&request).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let live = state
        .live
        .clone()
        .ok_or_else(|| ApiError::unavailable("no pipeline feeds this server: nothing to tail"))?;
    if live.clients.fetch_add(1, Ordering::Relaxed) >= MAX_TAIL_CLIENTS {
        live.clients.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::too_many(format!(
            "{MAX_TAIL_CLIENTS} tail clients are connected already; close one"
        )));
    }
    let state = TailState {
        receiver: live.sender.subscribe(),
        filter: Arc::new(filter),
        pending: VecDeque::from([Event::default().event("ready").data("{}")]),
        _client: Client(live),
    };
    Ok(Sse::new(futures_util::stream::unfold(state, next_event)).keep_alive(KeepAlive::default()))
}
