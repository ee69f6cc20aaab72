//! The Kubernetes source against a loopback API server that speaks the list/watch wire
//! format (`../shared/fixtures/watch-stream-samples.md`): a real `kube::Client`, scripted
//! answers. Scenario: events listed then watched, a repeat, a malformed object, a bookmark,
//! 410 Expired inside the watch stream (relist), and a pod going Running → OOMKilled and
//! CrashLoopBackOff → Running, with a dropped watch and a 500 on the way.

use collector::Shutdown;
use collector::kube::{KubeSource, KubeSourceConfig};
use model::{Record, RecordKind, names};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

fn fixture(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../shared/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One scripted answer.
enum Answer {
    /// A list: 200 with this body.
    List(Value),
    /// A watch: 200, these lines, then the connection is closed (`close`) or held open.
    Watch { lines: Vec<String>, close: bool },
    /// An HTTP error with a Status body.
    Status(u16),
}

/// A loopback API server: per path prefix, answers in order; once they run out, a watch is
/// held open with nothing to say and a list repeats the last one.
#[derive(Default)]
struct Script {
    answers: HashMap<&'static str, VecDeque<Answer>>,
    last_list: HashMap<&'static str, Value>,
    /// Requests seen, as `LIST /api/v1/pods` or `WATCH /api/v1/pods`.
    seen: Vec<String>,
}

struct FakeApi {
    url: String,
    script: Arc<Mutex<Script>>,
    requested: Arc<Notify>,
}

impl FakeApi {
    async fn start(script: Script) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(script));
        let requested = Arc::new(Notify::new());
        let (s, n) = (script.clone(), requested.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, s.clone(), n.clone()));
            }
        });
        FakeApi {
            url,
            script,
            requested,
        }
    }

    fn seen(&self, request: &str) -> usize {
        let script = self.script.lock().unwrap();
        script.seen.iter().filter(|r| *r == request).count()
    }

    /// Waits until `request` has been seen `times` times.
    async fn wait_for(&self, request: &str, times: usize) {
        loop {
            let notified = self.requested.notified();
            if self.seen(request) >= times {
                return;
            }
            notified.await;
        }
    }
}

async fn serve(mut conn: TcpStream, script: Arc<Mutex<Script>>, requested: Arc<Notify>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let watch = target.contains("watch=true");
    let key: &'static str = match path.as_str() {
        "/api/v1/events" => "/api/v1/events",
        "/api/v1/pods" => "/api/v1/pods",
        _ => "other",
    };
    let answer = {
        let mut s = script.lock().unwrap();
        s.seen
            .push(format!("{} {path}", if watch { "WATCH" } else { "LIST" }));
        let next = s.answers.get_mut(key).and_then(|q| {
            // A list request takes the next list; a watch the next watch or error.
            let at = q.iter().position(|a| match a {
                Answer::List(_) => !watch,
                Answer::Watch { .. } | Answer::Status(_) => watch,
            })?;
            q.remove(at)
        });
        match next {
            Some(Answer::List(body)) => {
                s.last_list.insert(key, body.clone());
                Answer::List(body)
            }
            Some(other) => other,
            None if watch => Answer::Watch {
                lines: Vec::new(),
                close: false,
            },
            None => Answer::List(s.last_list.get(key).cloned().unwrap_or(json!({}))),
        }
    };
    requested.notify_waiters();
    let response = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match answer {
        Answer::List(body) => {
            let _ = conn
                .write_all(response("200 OK", &body.to_string()).as_bytes())
                .await;
        }
        Answer::Status(code) => {
            let body = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"scripted failure","reason":"InternalError","code":code});
            let _ = conn
                .write_all(
                    response(&format!("{code} Internal Server Error"), &body.to_string())
                        .as_bytes(),
                )
                .await;
        }
        Answer::Watch { lines, close } => {
            // Close-delimited: the body is every line until the connection ends.
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            );
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
            if conn.write_all(out.as_bytes()).await.is_err() {
                return;
            }
            let _ = conn.flush().await;
            if !close {
                // Held open with nothing to say, until the client hangs up.
                let _ = conn.read(&mut buf).await;
            }
        }
    }
}

fn list(kind: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv, "continue": ""},
        "items": items})
}

fn line(kind: &str, object: &Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

fn with_version(mut object: Value, rv: u64) -> Value {
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_pod_changes_are_recorded_once_through_relists_drops_and_errors() {
    let events: Vec<Value> = fixture("k8s-events.json")
        .into_iter()
        .filter(|e| e["apiVersion"] == "v1")
        .collect();
    let (listed, watched) = events.split_at(events.len() - 2);
    let back_off = events
        .iter()
        .find(|e| e["reason"] == "BackOff" && e.get("series").is_none_or(Value::is_null))
        .expect("a legacy BackOff event")
        .clone();
    let mut repeated = back_off.clone();
    repeated["count"] = json!(back_off["count"].as_i64().unwrap_or(1) + 1);
    let repeated = with_version(repeated, 1_000_000);
    let mut relisted: Vec<Value> = events.clone();
    for e in &mut relisted {
        if e["metadata"]["uid"] == back_off["metadata"]["uid"] {
            *e = repeated.clone();
        }
    }

    let pod = fixture("k8s-pods.json")[0].clone();
    let mut oom_killed = with_version(pod.clone(), 919_400);
    let status = &mut oom_killed["status"]["containerStatuses"][0];
    status["restartCount"] = json!(1);
    status["ready"] = json!(false);
    status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
        "message": "back-off 10s restarting failed container"}});
    status["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
        "startedAt": "2025-03-04T09:14:03Z", "finishedAt": "2025-03-04T10:52:41Z"}});
    let mut running_again = with_version(oom_killed.clone(), 919_420);
    running_again["status"]["containerStatuses"][0]["state"] =
        json!({"running": {"startedAt": "2025-03-04T10:53:02Z"}});
    running_again["status"]["containerStatuses"][0]["ready"] = json!(true);

    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/events",
        VecDeque::from([
            Answer::List(list("EventList", "100", listed.to_vec())),
            Answer::Watch {
                lines: vec![
                    line("ADDED", &watched[0]),
                    line("ADDED", &watched[1]),
                    line("MODIFIED", &repeated),
                    // Not an Event: counted and skipped, the stream goes on.
                    r#"{"type":"ADDED","object":{"kind":"Event","apiVersion":"v1","metadata":"oops"}}"#
                        .to_string(),
                    line("BOOKMARK", &json!({"kind":"Event","apiVersion":"v1",
                        "metadata":{"resourceVersion":"1000001"}})),
                    line("ERROR", &json!({"kind":"Status","apiVersion":"v1","metadata":{},
                        "status":"Failure","message":"too old resource version: 100 (1000002)",
                        "reason":"Expired","code":410})),
                ],
                close: true,
            },
            Answer::List(list("EventList", "1000003", relisted)),
        ]),
    );
    script.answers.insert(
        "/api/v1/pods",
        VecDeque::from([
            Answer::List(list("PodList", "919377", vec![pod.clone()])),
            Answer::Watch {
                lines: vec![line("MODIFIED", &oom_killed)],
                // The connection drops: the watcher re-watches from the last version.
                close: true,
            },
            Answer::Status(500),
            Answer::Watch {
                lines: vec![line("MODIFIED", &running_again)],
                close: false,
            },
        ]),
    );
    let api = FakeApi::start(script).await;

    let source = KubeSource::connect(KubeSourceConfig {
        api_url: Some(api.url.clone()),
        node_name: None,
    })
    .await
    .expect("client");
    let metrics = source.metrics();
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = Shutdown::new();
    let running = tokio::spawn(source.run(tx, shutdown.clone()));

    // The end of the script: the events' watch after the relist, and the pods' watch
    // after the 500, each seen; the source sends a change's records before it asks for
    // more, so by then everything is in the channel.
    let settled = async {
        api.wait_for("WATCH /api/v1/events", 2).await;
        api.wait_for("WATCH /api/v1/pods", 3).await;
        // The last pod line is sent on that watch; wait for its record.
        let mut records: Vec<Record> = Vec::new();
        while !records.iter().any(|r| r.body.contains("no longer waiting")) {
            let batch = rx.recv().await.expect("the source runs");
            records.extend(batch.records);
        }
        records
    };
    let mut records = tokio::time::timeout(Duration::from_secs(60), settled)
        .await
        .expect("the scenario finishes (a guard, not a wait)");
    while let Ok(batch) = rx.try_recv() {
        records.extend(batch.records);
    }
    shutdown.trigger();
    running.await.expect("the source stops");

    let events: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == RecordKind::K8sEvent)
        .collect();
    let ids: HashSet<_> = events.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), events.len(), "no event recorded twice");
    assert_eq!(
        events.len(),
        listed.len() + watched.len() + 1,
        "every event once, the repeat once more, the relist nothing: {:#?}",
        events.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(api.seen("LIST /api/v1/events"), 2, "410 Expired relisted");
    assert_eq!(
        api.seen("LIST /api/v1/pods"),
        1,
        "a dropped watch is resumed, not relisted"
    );

    let pods: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == RecordKind::K8sObject)
        .collect();
    let oom = pods
        .iter()
        .find(|r| r.attributes.get_str(names::ERROR_TYPE) == Some("oom_killed"))
        .unwrap_or_else(|| panic!("an OOM kill among {pods:#?}"));
    assert_eq!(
        oom.attributes
            .get_str(names::K8S_CONTAINER_LAST_TERMINATED_REASON),
        Some("OOMKilled")
    );
    assert_eq!(
        oom.resource.get_str(names::K8S_POD_NAME),
        pod["metadata"]["name"].as_str()
    );
    let waits: Vec<Option<&str>> = pods
        .iter()
        .filter(|r| r.body.contains("waiting"))
        .map(|r| r.attributes.get_str(names::K8S_CONTAINER_WAITING_REASON))
        .collect();
    assert_eq!(waits, [Some("CrashLoopBackOff"), None]);
    assert_eq!(
        pods.len(),
        4,
        "phase, restart, back-off, running again: {pods:#?}"
    );
    assert!(
        metrics
            .watch_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "the malformed object and the 500 are counted"
    );
}
