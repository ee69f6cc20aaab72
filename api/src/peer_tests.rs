//! Aggregators answering for each other: real routers on loopback ports, each over its own
//! on-disk index, asking each other through `/api/v1/shard/*`.

use super::*;
use crate::tests::llm_records;
use futures_util::StreamExt;
use indexer::{IndexStore, SinkOptions};
use model::{AttrValue, Attributes, Batch, Record, RecordId, Timestamp, names};
use serde_json::Value;
use std::time::Duration;

const TOKEN: &str = "0123456789abcdef";
const TIMEOUT: Duration = Duration::from_secs(5);

/// An aggregator on a loopback port over its own index of `records`, asking `peers`.
struct Aggregator {
    _dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    /// Where its pipeline would publish what it indexes, for live tail.
    live: Arc<LiveTail>,
}

impl Aggregator {
    async fn start(records: Vec<Record>, peers: &[String], timeout: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, records, peers, timeout, TOKEN)
    }

    fn on(
        listener: tokio::net::TcpListener,
        records: Vec<Record>,
        peers: &[String],
        timeout: Duration,
        token: &str,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        let mut sink = store.sink(SinkOptions::default()).unwrap();
        sink.add(Batch::new(records)).unwrap();
        sink.commit().unwrap();
        let instance = format!("test-host:{}", addr.port());
        let token: Arc<str> = Arc::from(token);
        let peers = (!peers.is_empty())
            .then(|| Arc::new(Peers::new(peers, &instance, Some(token.clone()), timeout).unwrap()));
        let live = Arc::new(LiveTail::default());
        let app = router(ApiState {
            search: Arc::new(LocalIndex::new(store)),
            metrics: Arc::new(NoMetrics),
            status: Arc::new(NoStatus),
            token: Some(token),
            live: Some(live.clone()),
            instance: Arc::from(instance.as_str()),
            peers,
        });
        tokio::spawn(serve(listener, app, std::future::pending()));
        Aggregator {
            _dir: dir,
            addr,
            live,
        }
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let (status, body) = http_get(self.addr, path_and_query).await;
        assert_eq!(status, 200, "{path_and_query}: {body}");
        body
    }
}

/// A plain HTTP/1.1 GET with the token, over a fresh connection.
pub(crate) async fn http_get(addr: std::net::SocketAddr, path_and_query: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap())
}

/// `n` log lines of pod `pod`, seven to a second (so that pages end inside runs of equal
/// timestamps), numbered from `first`.
fn lines(first: u64, n: u64, pod: &str, base: Timestamp) -> Vec<Record> {
    (first..first + n)
        .map(|i| {
            let resource: Attributes = [
                (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
                (names::K8S_POD_NAME, AttrValue::from(pod)),
            ]
            .into_iter()
            .collect();
            let ts = base.saturating_add_nanos(-((i / 7) as i64) * 1_000_000_000);
            Record::log(
                RecordId::from_source(pod.as_bytes(), i),
                ts,
                ts,
                Arc::new(resource),
                format!("line {i} of {pod}"),
            )
        })
        .collect()
}

fn bodies(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["body"].as_str().unwrap().to_string())
        .collect()
}

/// Lines are split between two aggregators the way Kafka partitions split pods: whole
/// pods on each. Both interleave in time, with runs of equal timestamps.
fn split_fleet() -> (Vec<Record>, Vec<Record>) {
    let base = Timestamp::now().saturating_add_nanos(-60_000_000_000);
    let mut a = lines(0, 90, "vllm-0", base);
    a.extend(lines(0, 60, "tgi-0", base));
    let b = lines(0, 100, "sglang-0", base);
    (a, b)
}

#[tokio::test]
async fn a_search_through_either_aggregator_pages_through_every_shard_once_newest_first() {
    let (a_records, b_records) = split_fleet();
    let b_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_addr = b_listener.local_addr().unwrap();
    let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_addr = a_listener.local_addr().unwrap();
    // Both list both (one config for the whole StatefulSet): each must find itself out.
    let everyone = vec![
        a_addr.to_string(),
        format!("dns:127.0.0.1:{}", b_addr.port()),
    ];
    let a = Aggregator::on(a_listener, a_records, &everyone, TIMEOUT, TOKEN);
    let b = Aggregator::on(b_listener, b_records, &everyone, TIMEOUT, TOKEN);

    for (name, agg) in [("a", &a), ("b", &b)] {
        let mut seen = Vec::new();
        let mut last_ts = String::from("9999");
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut uri = "/api/v1/search?q=line&limit=33".to_string();
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let page = agg.get(&uri).await;
            assert_eq!(page["total"], 250, "{name}: {page}");
            assert_eq!(page["partial"], false, "{name}: {page}");
            for hit in page["hits"].as_array().unwrap() {
                let ts = hit["timestamp"].as_str().unwrap().to_string();
                assert!(ts <= last_ts, "{name}: newest first across shards");
                last_ts = ts;
            }
            seen.extend(bodies(&page));
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
            assert!(pages < 20, "{name}: pages never end");
        }
        let total = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!((total, seen.len()), (250, 250), "{name}: every line once");
    }
    // A cursor one aggregator gave out means the same to the other (a load balancer may
    // send the next page anywhere).
    let first = a.get("/api/v1/search?q=line&limit=50").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let from_a = a
        .get(&format!("/api/v1/search?q=line&limit=50&cursor={cursor}"))
        .await;
    let from_b = b
        .get(&format!("/api/v1/search?q=line&limit=50&cursor={cursor}"))
        .await;
    assert_eq!(bodies(&from_a), bodies(&from_b));

    let histogram = a
        .get("/api/v1/histogram?q=line&from=now-1h&interval=1m")
        .await;
    assert_eq!(histogram["total"], 250, "{histogram}");
    let per_bucket: u64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(per_bucket, 250);
    let bad = http_get(a.addr, "/api/v1/search?q=line&cursor=123-4").await;
    assert_eq!(bad.0, 400, "{}", bad.1);
}

#[tokio::test]
async fn summaries_and_request_traces_of_split_shards_equal_those_of_one_index() {
    let records = llm_records();
    // Every other record to each shard: a request's lines end up on both.
    let (a_records, b_records): (Vec<_>, Vec<_>) = records
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, Record)>| v.into_iter().map(|(_, r)| r).collect();
    let whole = Aggregator::start(records.clone(), &[], TIMEOUT).await;
    let b = Aggregator::start(strip(b_records), &[], TIMEOUT).await;
    let a = Aggregator::start(strip(a_records), &[b.addr.to_string()], TIMEOUT).await;

    // A fixed range, so that both answers take their rates over the same seconds: from
    // where the data begins (the oldest record, which is b's) to `to`.
    let now = model::Timestamp::now();
    let from = now.saturating_add_nanos(-3_600_000_000_000);
    let summary = format!("/api/v1/llm/summary?from={from}&to={now}&group_by=model");
    let want = whole.get(&summary).await;
    let got = a.get(&summary).await;
    assert_eq!(got["partial"], false);
    assert_eq!(got, want, "percentiles merged from sketches, not averaged");
    let oldest = records.iter().map(|r| r.timestamp).min().unwrap();
    assert_eq!(
        got["data_from"],
        serde_json::json!(oldest),
        "the peers' oldest record"
    );

    let want = whole.get("/api/v1/requests/chatcmpl-0001").await;
    let got = a.get("/api/v1/requests/chatcmpl-0001").await;
    assert_eq!(got["lines"], want["lines"]);
    assert_eq!(got["summary"], want["summary"]);
    assert_eq!(got["lines"].as_array().unwrap().len(), 3);
    // The scope travels to the peers: only the router's line is left.
    let scoped = "/api/v1/requests/chatcmpl-0001?pod=router-0";
    let (want, got) = (whole.get(scoped).await, a.get(scoped).await);
    assert_eq!(got["lines"], want["lines"]);
    assert_eq!(got["lines"].as_array().map(Vec::len), Some(1), "{got}");
    let incidents = a.get("/api/v1/incidents?from=now-1h").await;
    assert_eq!(incidents["partial"], false, "{incidents}");
}

#[tokio::test]
async fn a_peer_that_is_down_slow_or_refuses_the_token_makes_the_answer_partial_not_failed() {
    let (a_records, b_records) = split_fleet();
    let b = Aggregator::start(b_records, &[], TIMEOUT).await;
    // Down: a port nobody listens on any more.
    let down = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    // Slow: accepts and never answers.
    let slow_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = slow_listener.local_addr().unwrap();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((conn, _)) = slow_listener.accept().await {
            let _ = held_tx.send(conn);
        }
    });
    // Another token: refuses us.
    let stranger = Aggregator::on(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        lines(0, 5, "other-0", Timestamp::now()),
        &[],
        TIMEOUT,
        "fedcba9876543210",
    );
    let peers = vec![
        b.addr.to_string(),
        down.to_string(),
        slow.to_string(),
        stranger.addr.to_string(),
    ];
    let a = Aggregator::start(a_records, &peers, Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let page = a.get("/api/v1/search?q=line&limit=10").await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout holds"
    );
    assert!(held_rx.recv().await.is_some(), "the slow peer was asked");
    assert_eq!(page["partial"], true, "{page}");
    assert_eq!(page["total"], 250, "a and b answered: {page}");
    let unanswered = page["unanswered_peers"].as_object().unwrap();
    assert_eq!(unanswered.len(), 3, "{page}");
    assert!(
        unanswered[&slow.to_string()]
            .as_str()
            .unwrap()
            .contains("no answer within 400 ms"),
        "{page}"
    );
    assert!(
        unanswered[&stranger.addr.to_string()]
            .as_str()
            .unwrap()
            .contains("401"),
        "{page}"
    );
    assert!(unanswered.contains_key(&down.to_string()), "{page}");
    let summary = a.get("/api/v1/llm/summary?from=now-1h").await;
    assert_eq!(summary["partial"], true);
}

#[test]
fn a_peer_list_with_a_mistake_names_the_entry() {
    let e = Peers::new(&["agg-0:8470,agg-1".to_string()], "me:1", None, TIMEOUT)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`agg-1`") && e.contains("no port"), "{e}");
}

/// A live tail's events as a client reads them.
struct EventReader {
    body: crate::peers::ByteStream,
    text: String,
}

impl EventReader {
    async fn open(addr: std::net::SocketAddr, path_and_query: &str) -> Self {
        use http_body_util::{BodyExt, Full};
        use hyper_util::client::legacy::Client;
        let client: Client<_, Full<axum::body::Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let request = axum::http::Request::get(format!("http://{addr}{path_and_query}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(axum::body::Bytes::new()))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response
            .into_body()
            .into_data_stream()
            .map(|chunk| chunk.map_err(|e| e.to_string()));
        EventReader {
            body: Box::pin(body),
            text: String::new(),
        }
    }

    /// The next event: its kind and data.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let kind = block.lines().find_map(|l| l.strip_prefix("event: "));
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(kind), Some(data)) = (kind, data) {
                    return (kind.to_string(), serde_json::from_str(data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.body.next())
                .await
                .expect("an event within 20 s")
                .expect("the stream goes on")
                .unwrap();
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn a_tail_ends_with_the_pipeline_run_that_fed_it_and_a_new_one_waits_for_the_next() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = Aggregator::on(listener, vec![], &[], TIMEOUT, TOKEN);
    let mut events = EventReader::open(a.addr, "/api/v1/tail?q=*").await;
    assert_eq!(events.next().await.0, "ready");
    // The run ends (it failed, and the API outlives it): the stream ends rather than wait
    // on it forever, and the client asks again.
    a.live.close();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(20), events.body.next())
            .await
            .expect("the stream ends within 20 s");
        match chunk {
            None => break,
            Some(chunk) => assert!(!chunk.unwrap().is_empty()),
        }
    }
    let (status, body) = http_get(a.addr, "/api/v1/tail?q=*").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("ask again"),
        "{body}"
    );
}

#[tokio::test]
async fn a_tail_on_one_aggregator_shows_every_peers_records_and_says_which_peer_is_away() {
    let b_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_addr = b_listener.local_addr().unwrap();
    let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_addr = a_listener.local_addr().unwrap();
    // An address nobody listens on: a replica that is down.
    let away = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    // One list for all, as a StatefulSet has: A must not follow itself.
    let everyone = vec![a_addr.to_string(), b_addr.to_string(), away.clone()];
    let a = Aggregator::on(a_listener, vec![], &everyone, TIMEOUT, TOKEN);
    let b = Aggregator::on(b_listener, vec![], &everyone, TIMEOUT, TOKEN);

    let mut events = EventReader::open(a.addr, "/api/v1/tail?q=*").await;
    let (mut following, mut unavailable) = (Vec::new(), Vec::new());
    let mut saw_ready = false;
    while following.is_empty() || unavailable.is_empty() {
        match events.next().await {
            (kind, _) if kind == "ready" => saw_ready = true,
            (kind, data) if kind == "peer" => {
                let peer = data["peer"].as_str().unwrap().to_string();
                match data["state"].as_str() {
                    Some("following") => following.push(peer),
                    Some("unavailable") => {
                        assert!(data["reason"].as_str().is_some_and(|r| !r.is_empty()));
                        unavailable.push(peer)
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("before any record: {other:?}"),
        }
    }
    assert!(saw_ready);
    assert_eq!(following, [b_addr.to_string()], "B, and not A itself");
    assert_eq!(unavailable, [away]);

    // B follows nothing here: a record indexed on either shows once on A's tail.
    let now = Timestamp::now();
    a.live.publish(&lines(0, 1, "vllm-on-a", now));
    b.live.publish(&lines(0, 1, "sglang-on-b", now));
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        let (kind, data) = events.next().await;
        match kind.as_str() {
            "record" => bodies.push(data["body"].as_str().unwrap().to_string()),
            // The replica that is down is asked again meanwhile.
            "peer" => assert_eq!(data["state"], "unavailable", "{data}"),
            _ => panic!("{kind}: {data}"),
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["line 0 of sglang-on-b", "line 0 of vllm-on-a"]);
}
