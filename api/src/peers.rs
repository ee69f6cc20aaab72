//! Peer aggregators: each indexes the Kafka partitions it owns, so a read endpoint asks
//! every peer's `/api/v1/shard/*` (local answers only, see `shard.rs`) as well as its own
//! index, and merges. A peer that does not answer in time is named in the answer
//! (`partial: true`), never silently left out.
//!
//! Shards are told apart by their *instance* name (host name and port), not by the address
//! they were reached at: a DNS name may list this server itself, and a cursor given out by
//! one aggregator must mean the same to the next one behind a load balancer.

use crate::backend::{SearchBackend, SearchPage};
use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use indexer::{
    FieldStatsPartial, HistogramBucket, IndexError, IndexStats, MAX_LIMIT, SearchCursor,
    SearchRequest, SearchResults, StatsQuestion,
};
use model::{Record, Timestamp};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A peer's answer as it comes (an event stream).
pub(crate) type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, String>> + Send>>;

/// The largest answer a peer may give (a page of 1000 records with long bodies).
const MAX_PEER_ANSWER: usize = 64 << 20;
/// How long a DNS name's addresses are reused before it is resolved again.
const DNS_TTL: Duration = Duration::from_secs(5);

/// Header naming the instance that sent a shard request or answer.
pub(crate) const INSTANCE_HEADER: &str = "x-infersight-instance";

/// A mistake in the peer list.
#[derive(Debug, thiserror::Error)]
#[error("peer `{entry}`: {reason}; write HOST:PORT, http://HOST:PORT or dns:NAME:PORT")]
pub struct PeerListError {
    entry: String,
    reason: String,
}

/// Where the peers are.
#[derive(Clone, Debug, PartialEq)]
enum PeerEntry {
    /// One aggregator at `host:port`.
    Fixed(String),
    /// Every address a name resolves to (a headless Service): `name`, `port`.
    Dns(String, u16),
}

/// The other aggregators, and how to ask them.
pub struct Peers {
    entries: Vec<PeerEntry>,
    instance: Arc<str>,
    token: Option<Arc<str>>,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Addresses that turned out to be this server.
    selves: Mutex<HashSet<String>>,
    resolved: Mutex<BTreeMap<String, (Instant, Vec<String>)>>,
}

impl Peers {
    /// Peers from `list` (`host:port`, `http://host:port`, `dns:name:port`), asked with
    /// `token`, each given `timeout` to answer. `instance` names this server.
    pub fn new(
        list: &[String],
        instance: &str,
        token: Option<Arc<str>>,
        timeout: Duration,
    ) -> Result<Self, PeerListError> {
        let entries = list
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(parse_entry)
            .collect::<Result<Vec<_>, _>>()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Ok(Peers {
            entries,
            instance: Arc::from(instance),
            token,
            timeout,
            client: Client::builder(TokioExecutor::new()).build(connector),
            selves: Mutex::default(),
            resolved: Mutex::default(),
        })
    }

    /// This server's instance name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The peers' addresses now, without this server's; a name that does not resolve is
    /// an unanswered peer.
    async fn addresses(&self, unanswered: &Unanswered) -> Vec<String> {
        let mut out = Vec::new();
        for entry in &self.entries {
            match entry {
                PeerEntry::Fixed(addr) => out.push(addr.clone()),
                PeerEntry::Dns(name, port) => match self.resolve(name, *port).await {
                    Ok(addrs) => out.extend(addrs),
                    Err(e) => unanswered.add(&format!("dns:{name}:{port}"), e),
                },
            }
        }
        let selves = lock(&self.selves);
        out.retain(|a| !selves.contains(a));
        out.sort();
        out.dedup();
        out
    }

    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<String>, String> {
        let key = format!("{name}:{port}");
        if let Some((at, addrs)) = lock(&self.resolved).get(&key)
            && at.elapsed() < DNS_TTL
        {
            return Ok(addrs.clone());
        }
        let addrs: Vec<String> = tokio::net::lookup_host(&key)
            .await
            .map_err(|e| format!("cannot resolve: {e}"))?
            .map(|a| a.to_string())
            .collect();
        lock(&self.resolved).insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }

    /// The peers' addresses now, without this server's, and the names that did not
    /// resolve, with why.
    pub(crate) async fn current(&self) -> (Vec<String>, BTreeMap<String, String>) {
        let unanswered = Unanswered::default();
        let addrs = self.addresses(&unanswered).await;
        (addrs, unanswered.take())
    }

    /// Opens `path_and_query` on `addr` as a stream of bytes (a peer's live tail); `None`
    /// when `addr` turns out to be this server (remembered, as `ask_all` does).
    pub(crate) async fn open_stream(
        &self,
        addr: &str,
        path_and_query: &str,
    ) -> Result<Option<ByteStream>, String> {
        let request = self
            .request(Request::get(format!("http://{addr}{path_and_query}")))
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))?
            .map_err(|e| error_chain(&e))?;
        if response.status() != StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        if self.is_self(addr, &instance_of(response.headers())?) {
            return Ok(None);
        }
        let body = response
            .into_body()
            .into_data_stream()
            .map(|chunk| chunk.map_err(|e| error_chain(&e)));
        Ok(Some(Box::pin(body)))
    }

    /// `request` with this server's instance name and the token on it.
    fn request(&self, request: axum::http::request::Builder) -> axum::http::request::Builder {
        let request = request.header(INSTANCE_HEADER, &*self.instance);
        match &self.token {
            Some(token) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }

    /// Whether `instance`, which answered at `addr`, is this server (a DNS name lists it
    /// too); its address is remembered, and not asked again.
    fn is_self(&self, addr: &str, instance: &str) -> bool {
        let me = instance == &*self.instance;
        if me {
            lock(&self.selves).insert(addr.to_string());
        }
        me
    }

    /// POSTs `body` to `path` on `addr`; the answer's bytes and the instance that gave it.
    async fn call(&self, addr: &str, path: &str, body: Bytes) -> Result<(String, Bytes), String> {
        let request = self
            .request(Request::post(format!("http://{addr}{path}")))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| error_chain(&e))?;
            let status = response.status();
            let instance = instance_of(response.headers());
            let bytes = Limited::new(response.into_body(), MAX_PEER_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("answer could not be read in full: {e}"))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(format!(
                    "answered {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                ));
            }
            Ok((instance?, bytes))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))?
    }

    /// Asks every peer; the answers by instance (this server's own left out, and its
    /// address remembered), failures in `unanswered`.
    async fn ask_all(
        self: Arc<Self>,
        path: &'static str,
        body: Bytes,
        unanswered: Arc<Unanswered>,
    ) -> BTreeMap<String, Bytes> {
        let addrs = self.addresses(&unanswered).await;
        let calls = addrs.into_iter().map(|addr| {
            let peers = Arc::clone(&self);
            let body = body.clone();
            async move {
                let answer = peers.call(&addr, path, body).await;
                (addr, answer)
            }
        });
        let mut out = BTreeMap::new();
        for (addr, answer) in futures_util::future::join_all(calls).await {
            match answer {
                Ok((instance, _)) if self.is_self(&addr, &instance) => {}
                Ok((instance, bytes)) => {
                    out.insert(instance, bytes);
                }
                Err(reason) => unanswered.add(&addr, reason),
            }
        }
        out
    }
}

/// The instance an aggregator's answer names.
fn instance_of(headers: &axum::http::HeaderMap) -> Result<String, String> {
    headers
        .get(INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("answered without {INSTANCE_HEADER}: not an aggregator"))
}

fn parse_entry(entry: &str) -> Result<PeerEntry, PeerListError> {
    let bad = |reason: &str| PeerListError {
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let port_of = |s: &str| -> Result<u16, PeerListError> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))
    };
    if let Some(rest) = entry.strip_prefix("dns:") {
        let (name, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if name.is_empty() {
            return Err(bad("no name to resolve"));
        }
        return Ok(PeerEntry::Dns(name.to_string(), port_of(port)?));
    }
    if entry.starts_with("https://") {
        return Err(bad("peers speak plain HTTP inside the cluster"));
    }
    let addr = entry.strip_prefix("http://").unwrap_or(entry);
    let addr = addr.strip_suffix('/').unwrap_or(addr);
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() || addr.contains('/') {
        return Err(bad("not an address"));
    }
    port_of(port)?;
    Ok(PeerEntry::Fixed(addr.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Peers that did not answer during one API request, with why.
#[derive(Default)]
pub(crate) struct Unanswered(Mutex<BTreeMap<String, String>>);

impl Unanswered {
    fn add(&self, peer: &str, reason: String) {
        tracing::warn!(peer, %reason, "a peer aggregator did not answer; the answer is partial");
        lock(&self.0).insert(peer.to_string(), reason);
    }

    /// The peers and reasons, by peer.
    pub(crate) fn take(&self) -> BTreeMap<String, String> {
        std::mem::take(&mut lock(&self.0))
    }
}

/// One API request's view of all shards: this server's index and every peer's. Runs on
/// the blocking pool (as every backend does) and waits for the peers on the runtime.
pub(crate) struct Federated {
    pub(crate) local: Arc<dyn SearchBackend>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) unanswered: Arc<Unanswered>,
}

impl Federated {
    /// Asks the peers (on the runtime) while `local` runs here; the peers' decoded answers
    /// by instance, and the local one.
    fn fan_out<T: DeserializeOwned, L>(
        &self,
        path: &'static str,
        body: &impl serde::Serialize,
        decode: impl Fn(&[u8]) -> Result<T, String>,
        local: impl FnOnce() -> Result<L, IndexError>,
    ) -> Result<(L, BTreeMap<String, T>), IndexError> {
        let body = Bytes::from(
            serde_json::to_vec(body)
                .map_err(|e| IndexError::Encoding(format!("peer request: {e}")))?,
        );
        let asked = self.runtime.spawn(Arc::clone(&self.peers).ask_all(
            path,
            body,
            Arc::clone(&self.unanswered),
        ));
        let mine = local();
        let answers = self.runtime.block_on(asked).unwrap_or_default();
        let mut decoded = BTreeMap::new();
        for (instance, bytes) in answers {
            match decode(&bytes) {
                Ok(v) => {
                    decoded.insert(instance, v);
                }
                Err(e) => self
                    .unanswered
                    .add(&instance, format!("answer not understood: {e}")),
            }
        }
        Ok((mine?, decoded))
    }
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// What `/api/v1/shard/search` is asked: the search, and the cursor of every shard (each
/// takes its own).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ShardSearch {
    pub(crate) request: SearchRequest,
    pub(crate) cursors: BTreeMap<String, SearchCursor>,
}

/// What `/api/v1/shard/histogram` is asked.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ShardHistogram {
    pub(crate) request: SearchRequest,
    pub(crate) interval_ns: u64,
}

/// What `/api/v1/shard/stats` is asked.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ShardStats {
    pub(crate) request: SearchRequest,
    pub(crate) question: StatsQuestion,
}

/// What `/api/v1/shard/requests` is asked.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ShardTrace {
    pub(crate) request_id: String,
    /// The time range and filters that narrow it (absent from an older peer: none).
    #[serde(default)]
    pub(crate) within: SearchRequest,
}

impl SearchBackend for Federated {
    fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        Ok(self.search_page(request, None)?.results)
    }

    fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<&str>,
    ) -> Result<SearchPage, IndexError> {
        let cursors = match cursor {
            Some(c) => parse_cursors(c)?,
            None => BTreeMap::new(),
        };
        let mut asked = request.clone();
        asked.after = None;
        let body = ShardSearch {
            request: asked.clone(),
            cursors: cursors.clone(),
        };
        let own = self.peers.instance().to_string();
        let (mine, mut shards) =
            self.fan_out("/api/v1/shard/search", &body, json::<SearchResults>, || {
                let mut r = asked.clone();
                r.after = cursors.get(&own).copied();
                self.local.search(&r)
            })?;
        shards.insert(own, mine);
        Ok(merge_pages(request.limit, &cursors, shards))
    }

    fn histogram(
        &self,
        request: &SearchRequest,
        interval: Duration,
    ) -> Result<Vec<HistogramBucket>, IndexError> {
        let body = ShardHistogram {
            request: request.clone(),
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
        };
        let (mine, peers) = self.fan_out(
            "/api/v1/shard/histogram",
            &body,
            json::<Vec<HistogramBucket>>,
            || self.local.histogram(request, interval),
        )?;
        let mut counts: BTreeMap<Timestamp, u64> = BTreeMap::new();
        for bucket in mine.into_iter().chain(peers.into_values().flatten()) {
            *counts.entry(bucket.start).or_default() += bucket.count;
        }
        Ok(counts
            .into_iter()
            .map(|(start, count)| HistogramBucket { start, count })
            .collect())
    }

    fn field_stats_partial(
        &self,
        request: &SearchRequest,
        question: &StatsQuestion,
    ) -> Result<FieldStatsPartial, IndexError> {
        let body = ShardStats {
            request: request.clone(),
            question: question.clone(),
        };
        let (mut mine, peers) = self.fan_out(
            "/api/v1/shard/stats",
            &body,
            |b| FieldStatsPartial::from_bytes(b).map_err(|e| e.to_string()),
            || self.local.field_stats_partial(request, question),
        )?;
        for (instance, partial) in peers {
            if let Err(e) = mine.merge(partial) {
                self.unanswered.add(&instance, e.to_string());
            }
        }
        Ok(mine)
    }

    fn request_trace(
        &self,
        request_id: &str,
        within: &SearchRequest,
    ) -> Result<Vec<Record>, IndexError> {
        let body = ShardTrace {
            request_id: request_id.to_string(),
            within: within.clone(),
        };
        let (mine, peers) =
            self.fan_out("/api/v1/shard/requests", &body, json::<Vec<Record>>, || {
                self.local.request_trace(request_id, within)
            })?;
        let mut seen = HashSet::new();
        let mut all: Vec<Record> = mine
            .into_iter()
            .chain(peers.into_values().flatten())
            .filter(|r| seen.insert(r.id))
            .collect();
        all.sort_by_key(|r| r.timestamp);
        Ok(all)
    }

    fn index_stats(&self) -> Option<IndexStats> {
        self.local.index_stats()
    }

    fn oldest_record(&self) -> Result<Option<Timestamp>, IndexError> {
        let (mine, peers) = self.fan_out(
            "/api/v1/shard/oldest",
            &(),
            json::<Option<Timestamp>>,
            || self.local.oldest_record(),
        )?;
        Ok(mine.into_iter().chain(peers.into_values().flatten()).min())
    }
}

/// Reads a federated cursor: `instance@nanos-count` per shard, joined by `,`.
fn parse_cursors(text: &str) -> Result<BTreeMap<String, SearchCursor>, IndexError> {
    let bad = || IndexError::Query(format!("cursor `{text}` is not one an aggregator gave out"));
    text.split(',')
        .map(|part| {
            let (instance, cursor) = part.rsplit_once('@').ok_or_else(bad)?;
            Ok((instance.to_string(), cursor.parse().map_err(|_| bad())?))
        })
        .collect()
}

fn write_cursors(cursors: &BTreeMap<String, SearchCursor>) -> String {
    cursors
        .iter()
        .map(|(instance, c)| format!("{instance}@{c}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The newest `limit` hits of all shards' pages, and each shard's cursor after the hits
/// of it that were taken. A shard none of whose hits was taken keeps its cursor (or starts
/// from its newest next time: every hit of it is then at most as new as this page's last).
fn merge_pages(
    limit: usize,
    before: &BTreeMap<String, SearchCursor>,
    shards: BTreeMap<String, SearchResults>,
) -> SearchPage {
    let limit = limit.min(MAX_LIMIT);
    let total = shards.values().map(|r| r.total).sum();
    let limit_capped = shards.values().any(|r| r.limit_capped);
    let splits_searched = shards.values().map(|r| r.splits_searched).sum();
    let splits_sorted = shards.values().map(|r| r.splits_sorted).sum();
    // Newest first; equal timestamps by shard, then in the shard's own order, so that a
    // shard's hits are always taken as a prefix of its page.
    let mut order: Vec<(i64, &String, usize)> = shards
        .iter()
        .flat_map(|(instance, r)| {
            r.hits
                .iter()
                .enumerate()
                .map(move |(i, h)| (h.timestamp.unix_nanos(), instance, i))
        })
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
    order.truncate(limit);
    let mut taken: BTreeMap<&String, Vec<usize>> = BTreeMap::new();
    for (_, instance, i) in &order {
        taken.entry(instance).or_default().push(*i);
    }
    let mut cursors = before.clone();
    let mut more = false;
    for (instance, r) in &shards {
        let took = taken.get(instance).map_or(0, Vec::len);
        more |= took < r.hits.len() || r.next.is_some();
        if took == 0 {
            continue;
        }
        let last = r.hits[took - 1].timestamp.unix_nanos();
        let at_last = r.hits[..took]
            .iter()
            .filter(|h| h.timestamp.unix_nanos() == last)
            .count();
        let earlier = before
            .get(instance)
            .filter(|c| c.timestamp == last)
            .map_or(0, |c| c.returned_at_timestamp);
        cursors.insert(
            instance.clone(),
            SearchCursor {
                timestamp: last,
                returned_at_timestamp: earlier + at_last,
            },
        );
    }
    let hits: Vec<Record> = order
        .iter()
        .map(|(_, instance, i)| shards[*instance].hits[*i].clone())
        .collect();
    let next_cursor = (more && !hits.is_empty()).then(|| write_cursors(&cursors));
    SearchPage {
        results: SearchResults {
            hits,
            total,
            limit,
            limit_capped,
            next: None,
            splits_searched,
            splits_sorted,
        },
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_entries_are_addresses_urls_or_dns_names() {
        assert_eq!(
            parse_entry("10.0.0.5:8470").unwrap(),
            PeerEntry::Fixed("10.0.0.5:8470".into())
        );
        assert_eq!(
            parse_entry("http://agg-1.infersight:8470/").unwrap(),
            PeerEntry::Fixed("agg-1.infersight:8470".into())
        );
        assert_eq!(
            parse_entry("dns:infersight-aggregator.infersight.svc:8470").unwrap(),
            PeerEntry::Dns("infersight-aggregator.infersight.svc".into(), 8470)
        );
        for bad in [
            "agg-1",
            "agg-1:http",
            "dns:agg:0",
            "https://a:1",
            "http://a:1/x",
        ] {
            let e = parse_entry(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("dns:NAME:PORT"), "{e}");
        }
    }

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let mut c = BTreeMap::new();
        c.insert(
            "agg-0:8470".to_string(),
            SearchCursor {
                timestamp: 5,
                returned_at_timestamp: 2,
            },
        );
        c.insert(
            "agg-1:8470".to_string(),
            SearchCursor {
                timestamp: -7,
                returned_at_timestamp: 0,
            },
        );
        assert_eq!(parse_cursors(&write_cursors(&c)).unwrap(), c);
        assert!(parse_cursors("123-4").is_err());
    }
}
