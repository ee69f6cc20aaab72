//! `GET /api/v1/tail?q=&namespace=&pod=&container=&kind=`: records as the pipeline indexes
//! them, matching a query, as Server-Sent Events (`ready` once, then `record` per match, and
//! `lagged` when this client fell behind and batches were skipped).
//!
//! Behind Kafka each aggregator indexes only its partitions, so an aggregator with peers
//! also follows every peer's `GET /api/v1/shard/tail` (its own records only) and passes
//! their records on: one tail shows the whole cluster. A `peer` event says when a peer is
//! followed and when it is not (it is asked again every few seconds).

use crate::params::Filters;
use crate::peers::Peers;
use crate::{ApiError, ApiState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use indexer::LiveFilter;
use model::{Record, Timestamp};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Tail clients at once; more get 429.
pub const MAX_TAIL_CLIENTS: usize = 32;
/// Batches a slow client may be behind before it skips some (and is told so).
const BACKLOG_BATCHES: usize = 256;
/// How long a tail waits before it asks a peer that went away again.
const PEER_RETRY: Duration = Duration::from_secs(5);
/// Peers' events waiting for a slow client before their followers wait too.
const PEER_BACKLOG: usize = 1024;
/// The longest event a peer may send (a record is at most ~1 MB of JSON).
const MAX_PEER_EVENT: usize = 8 << 20;

/// Where the pipeline publishes the records it indexes, for tail clients.
pub struct LiveTail {
    /// `None` once closed: the run that published here ended.
    sender: std::sync::RwLock<Option<broadcast::Sender<Arc<Vec<Record>>>>>,
    clients: AtomicUsize,
}

impl Default for LiveTail {
    fn default() -> Self {
        LiveTail {
            sender: std::sync::RwLock::new(Some(broadcast::channel(BACKLOG_BATCHES).0)),
            clients: AtomicUsize::new(0),
        }
    }
}

impl LiveTail {
    /// Shows `records` to the tail clients; costs nothing (no copy) when there are none.
    pub fn publish(&self, records: &[Record]) {
        if let Ok(sender) = self.sender.read()
            && let Some(sender) = sender.as_ref()
            && sender.receiver_count() > 0
            && !records.is_empty()
        {
            let _ = sender.send(Arc::new(records.to_vec()));
        }
    }

    /// Ends every client's stream, and refuses new ones: the pipeline run that published
    /// here ended. A client then asks again and follows the next run (the API outlives a
    /// run that fails; its streams would otherwise wait on this one forever).
    pub fn close(&self) {
        match self.sender.write() {
            Ok(mut sender) => *sender = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Vec<Record>>>> {
        self.sender
            .read()
            .ok()?
            .as_ref()
            .map(broadcast::Sender::subscribe)
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
/// is the record's JSON; `lagged` says batches were skipped for a slow client. With peer
/// aggregators their records come too, and `peer` events (`{"peer", "state":
/// "following"|"unavailable", "reason"}`) say which peers are followed.
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
    RawQuery(query): RawQuery,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>, ApiError> {
    let local = local_events(&state, params)?;
    let Some(peers) = state.peers.clone() else {
        return Ok(Sse::new(local).keep_alive(KeepAlive::default()));
    };
    let (tx, rx) = mpsc::channel(PEER_BACKLOG);
    let (addrs, unresolved) = peers.current().await;
    for (peer, reason) in unresolved {
        let _ = tx.try_send(peer_event(&peer, "unavailable", Some(&reason)));
    }
    let path = format!("/api/v1/shard/tail?{}", query.unwrap_or_default());
    for addr in addrs {
        tokio::spawn(follow_peer(peers.clone(), addr, path.clone(), tx.clone()));
    }
    drop(tx);
    let remote = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Ok(
        Sse::new(futures_util::stream::select(local, remote).boxed())
            .keep_alive(KeepAlive::default()),
    )
}

/// The events of this server's own tail for the query in `params`.
pub(crate) fn local_events(
    state: &ApiState,
    params: Result<Query<Filters>, QueryRejection>,
) -> Result<BoxStream<'static, Result<Event, Infallible>>, ApiError> {
    let Query(filters) = params?;
    let request = filters.to_request(Timestamp::now())?;
    let filter = LiveFilter::new(&request).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let live = state
        .live
        .clone()
        .ok_or_else(|| ApiError::unavailable("no pipeline feeds this server: nothing to tail"))?;
    let receiver = live.subscribe().ok_or_else(|| {
        ApiError::unavailable("the pipeline run that fed this tail ended; ask again")
    })?;
    if live.clients.fetch_add(1, Ordering::Relaxed) >= MAX_TAIL_CLIENTS {
        live.clients.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::too_many(format!(
            "{MAX_TAIL_CLIENTS} tail clients are connected already; close one"
        )));
    }
    let state = TailState {
        receiver,
        filter: Arc::new(filter),
        pending: VecDeque::from([Event::default().event("ready").data("{}")]),
        _client: Client(live),
    };
    Ok(futures_util::stream::unfold(state, next_event).boxed())
}

/// A `peer` event: `peer` is now followed, or not, and why.
fn peer_event(peer: &str, state: &str, reason: Option<&str>) -> Event {
    let data = serde_json::json!({ "peer": peer, "state": state, "reason": reason });
    Event::default().event("peer").data(data.to_string())
}

/// Passes the records of `addr`'s own tail (at `path`) to `tx` until the client is gone;
/// when the peer cannot be reached or its stream ends, says so and asks again.
async fn follow_peer(peers: Arc<Peers>, addr: String, path: String, tx: mpsc::Sender<Event>) {
    loop {
        let reason = match peers.open_stream(&addr, &path).await {
            // This server, under a name that lists it too.
            Ok(None) => return,
            Ok(Some(mut body)) => {
                if tx.send(peer_event(&addr, "following", None)).await.is_err() {
                    return;
                }
                let mut text = Vec::new();
                loop {
                    let chunk = tokio::select! {
                        _ = tx.closed() => return,
                        chunk = body.next() => chunk,
                    };
                    match chunk {
                        Some(Ok(_)) if text.len() > MAX_PEER_EVENT => {
                            break format!("sent an event over {MAX_PEER_EVENT} bytes");
                        }
                        Some(Ok(bytes)) => {
                            text.extend_from_slice(&bytes);
                            while let Some(end) = text.windows(2).position(|w| w == b"\n\n") {
                                let block: Vec<u8> = text.drain(..end + 2).collect();
                                if let Some(event) = relayed(&block)
                                    && tx.send(event).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                        Some(Err(e)) => break e,
                        None => break "its stream ended".to_string(),
                    }
                }
            }
            Err(reason) => reason,
        };
        tracing::warn!(peer = %addr, %reason, "live tail: a peer aggregator is not followed; asking again");
        if tx
            .send(peer_event(&addr, "unavailable", Some(&reason)))
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(PEER_RETRY) => {}
        }
    }
}

/// A peer's event (one block of its stream) as this tail's: records and `lagged` notices
/// pass; its `ready` and keep-alive comments do not.
fn relayed(block: &[u8]) -> Option<Event> {
    let text = std::str::from_utf8(block).ok()?;
    let (mut kind, mut data) = (None, Vec::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            kind = Some(v.trim_start());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    match kind {
        Some(kind @ ("record" | "lagged")) => {
            Some(Event::default().event(kind).data(data.join("\n")))
        }
        _ => None,
    }
}
