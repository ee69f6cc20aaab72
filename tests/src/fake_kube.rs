//! A loopback Kubernetes API server that speaks the list/watch wire format
//! (`../shared/fixtures/watch-stream-samples.md`) from a script, for pointing a real
//! `kube::Client` (the `kube` source, or `infersight run --kube-api`) at.

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A fixture file of `../shared/fixtures/` (a JSON array).
pub fn fixture(name: &str) -> Vec<Value> {
    let path = crate::shared_dir().join("fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One scripted answer.
pub enum Answer {
    /// A list: 200 with this body.
    List(Value),
    /// A watch: 200, these lines, then the connection is closed (`close`) or held open.
    Watch {
        /// The lines.
        lines: Vec<String>,
        /// Whether the connection is closed after them.
        close: bool,
    },
    /// An HTTP error with a Status body.
    Status(u16),
    /// A slow server: nothing until `release` is notified, then `answer` a few bytes at a
    /// time (so lines arrive split across reads).
    Slow {
        /// What is answered in the end.
        answer: Box<Answer>,
        /// Notified when the answer may start.
        release: Arc<Notify>,
        /// How many bytes go in each write.
        chunk: usize,
    },
}

impl Answer {
    fn is_watch(&self) -> bool {
        match self {
            Answer::List(_) => false,
            Answer::Watch { .. } | Answer::Status(_) => true,
            Answer::Slow { answer, .. } => answer.is_watch(),
        }
    }
}

/// A loopback API server: per path, answers in order; once they run out, a watch is held
/// open with nothing to say and a list repeats the last one (an empty one for a path the
/// script never answered).
#[derive(Default)]
pub struct Script {
    /// Answers by path (`/api/v1/events`, `/apis/apps/v1/deployments`), in order.
    pub answers: HashMap<&'static str, VecDeque<Answer>>,
    last_list: HashMap<&'static str, Value>,
    /// Requests seen, as `LIST /api/v1/pods` or `WATCH /api/v1/pods`.
    pub seen: Vec<String>,
    /// The targets (path and query) of the requests seen, in order.
    pub targets: Vec<String>,
}

pub struct FakeApi {
    /// `http://IP:PORT`.
    pub url: String,
    script: Arc<Mutex<Script>>,
    requested: Arc<Notify>,
}

impl FakeApi {
    /// Serves `script` on a loopback port (from inside a tokio runtime).
    pub async fn start(script: Script) -> FakeApi {
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

    /// Adds `answer` to those of `path` (for a scenario's next act).
    pub fn push(&self, path: &'static str, answer: Answer) {
        let mut script = self.script.lock().unwrap();
        script.answers.entry(path).or_default().push_back(answer);
    }

    /// How often `request` (`LIST /api/v1/pods`, `WATCH /api/v1/events`) was made.
    pub fn seen(&self, request: &str) -> usize {
        let script = self.script.lock().unwrap();
        script.seen.iter().filter(|r| *r == request).count()
    }

    /// The targets (path and query) of the requests made to `path`.
    pub fn targets(&self, path: &str) -> Vec<String> {
        let script = self.script.lock().unwrap();
        script
            .targets
            .iter()
            .filter(|t| t.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    /// Waits until `request` has been seen `times` times.
    pub async fn wait_for(&self, request: &str, times: usize) {
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
    let answer = {
        let mut s = script.lock().unwrap();
        let key: &'static str = s
            .answers
            .keys()
            .find(|k| **k == path)
            .copied()
            .unwrap_or("other");
        s.seen
            .push(format!("{} {path}", if watch { "WATCH" } else { "LIST" }));
        s.targets.push(target.clone());
        let next = s.answers.get_mut(key).and_then(|q| {
            // A list request takes the next list; a watch the next watch or error.
            let at = q.iter().position(|a| a.is_watch() == watch)?;
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
            // Kinds the script says nothing of (workloads) exist and are empty.
            None => Answer::List(
                s.last_list
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| list("List", "1", Vec::new())),
            ),
        }
    };
    requested.notify_waiters();
    let (answer, chunk) = match answer {
        Answer::Slow {
            answer,
            release,
            chunk,
        } => {
            release.notified().await;
            (*answer, chunk.max(1))
        }
        other => (other, usize::MAX),
    };
    let (bytes, hold_open) = response(answer);
    for piece in bytes.chunks(chunk.min(bytes.len().max(1))) {
        if conn.write_all(piece).await.is_err() {
            return;
        }
        let _ = conn.flush().await;
        if chunk != usize::MAX {
            // Slowness is the point here: each piece is its own read at the client.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    if hold_open {
        // Held open with nothing to say, until the client hangs up.
        let _ = conn.read(&mut buf).await;
    }
}

/// The bytes of an answer, and whether the connection is then held open.
fn response(answer: Answer) -> (Vec<u8>, bool) {
    let http = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match answer {
        Answer::List(body) => (http("200 OK", &body.to_string()).into_bytes(), false),
        Answer::Status(code) => {
            let body = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"scripted failure","reason":"InternalError","code":code});
            let status = format!("{code} Internal Server Error");
            (http(&status, &body.to_string()).into_bytes(), false)
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
            (out.into_bytes(), !close)
        }
        // Not nested in practice; answered as what it wraps.
        Answer::Slow { answer, .. } => response(*answer),
    }
}

/// A list answer's body.
pub fn list(kind: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv, "continue": ""},
        "items": items})
}

/// One watch event line.
pub fn line(kind: &str, object: &Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

/// `object` at resourceVersion `rv`.
pub fn with_version(mut object: Value, rv: u64) -> Value {
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    object
}
