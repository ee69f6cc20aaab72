//! Helpers for black-box tests: they start the real `infersight` binary on temporary
//! directories and talk to it the way a user does (files in, HTTP and CLI out).
//!
//! The binary is the one `cargo test --workspace` builds (`target/<profile>/infersight`,
//! next to this test's own executable); `INFERSIGHT_BIN` points elsewhere.

pub mod bench;
pub mod fake_kube;
pub mod fake_prom;
pub mod tansu;
pub mod tmpfs;
pub mod workload;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `infersight` binary under test.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("INFERSIGHT_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/infersight
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join(format!("infersight{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo test --workspace` (scripts/test.sh) or `cargo build -p pipelines`, or set INFERSIGHT_BIN",
        bin.display()
    );
    bin
}

/// A loopback port free now, for a process whose address must be known before it starts
/// or must stay the same across its restarts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `../shared` (the corpus and fixtures), next to the repository.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The shared corpus of real inference-server lines (`../shared/corpus/lines.jsonl`): one
/// JSON object a line, with `server`, `kind`, `line` and what the line must give
/// (`expect`, `contract`).
pub fn corpus() -> Vec<Value> {
    let text = std::fs::read_to_string(shared_dir().join("corpus/lines.jsonl"))
        .expect("the corpus in ../shared/corpus");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("corpus JSON"))
        .collect()
}

/// The current time as a CRI timestamp (RFC 3339 with nanoseconds, UTC).
pub fn cri_now() -> String {
    model::Timestamp::now().to_rfc3339()
}

/// Appends container lines to a pod's log file in the kubelet layout, CRI-framed with the
/// current time, creating directories as needed. Returns the file.
pub fn append_cri(
    logs_dir: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
    lines: &[(&str, &str)],
) -> PathBuf {
    let dir = logs_dir
        .join(format!("{namespace}_{pod}_uid-{pod}"))
        .join(container);
    std::fs::create_dir_all(&dir).expect("create the pod log dir");
    let path = dir.join("0.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open the log");
    for (stream, content) in lines {
        writeln!(f, "{} {stream} F {content}", cri_now()).expect("write the log");
    }
    path
}

/// Polls `done` every 100 ms until it holds, and fails the test after `timeout` naming
/// `what`: a test waits for the event it needs, not for a sleep that hopes it came.
pub fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    wait_or_fail(what, timeout, done, String::new);
}

/// [`wait_until`], failing with `context()` after the name.
fn wait_or_fail(
    what: &str,
    timeout: Duration,
    done: impl Fn() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `run --logs-dir L --data-dir D --listen 127.0.0.1:PORT` (0: any free port); a fixed port
/// lets a restarted pipeline come back where its clients (a browser, a test) look.
pub fn run_args(logs_dir: &Path, data_dir: &Path, port: u16) -> Vec<std::ffi::OsString> {
    vec![
        "run".into(),
        "--logs-dir".into(),
        logs_dir.into(),
        "--data-dir".into(),
        data_dir.into(),
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
    ]
}

/// A running `infersight run`, stopped (SIGKILL) when dropped.
pub struct Running {
    child: Child,
    /// `http://IP:PORT` of its API.
    pub base_url: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// Its `TMPDIR`: what a killed process leaves there (a demo's tree) goes with the test.
    _tmp: tempfile::TempDir,
}

impl Running {
    /// Starts `infersight run --logs-dir L --data-dir D --listen 127.0.0.1:0 <extra>` and
    /// waits until it says where it listens.
    pub fn start(logs_dir: &Path, data_dir: &Path, extra: &[&str]) -> Running {
        let mut args = run_args(logs_dir, data_dir, 0);
        args.extend(extra.iter().map(Into::into));
        Running::spawn(&args).0
    }

    /// Starts the binary with `args` and waits until it prints `… listening on http://…`
    /// (or, without an API, `infersight: running`; `base_url` is empty then).
    /// Also returns everything it printed on stdout up to then.
    pub fn spawn(args: &[std::ffi::OsString]) -> (Running, Vec<String>) {
        let mut command = Command::new(binary());
        command.args(args);
        Self::spawn_command(command)
    }

    /// [`Running::spawn`] as the unprivileged user `nobody` (through `setpriv`, which execs:
    /// the pid is infersight's), so that file permissions apply to it.
    pub fn spawn_as_nobody(args: &[std::ffi::OsString]) -> (Running, Vec<String>) {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(binary())
            .args(args);
        Self::spawn_command(command)
    }

    /// [`Running::spawn`] of another `infersight` build (a release one, for benchmarks).
    pub fn spawn_program(program: &Path, args: &[std::ffi::OsString]) -> (Running, Vec<String>) {
        let mut command = Command::new(program);
        command.args(args);
        Self::spawn_command(command)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn_command(mut command: Command) -> (Running, Vec<String>) {
        let tmp = tempfile::tempdir().expect("a TMPDIR for infersight");
        // Writable by anyone, as /tmp is: the process may run as `nobody`.
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .expect("chmod the TMPDIR");
        let mut child = command
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start infersight");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        {
            let pipe = child.stderr.take().expect("stderr is piped");
            let sink = stderr.clone();
            // INFERSIGHT_TEST_LOG_DIR keeps every run's stderr (runs killed by a test too),
            // for looking into a failure after the fact.
            let mut keep = std::env::var_os("INFERSIGHT_TEST_LOG_DIR").and_then(|dir| {
                std::fs::File::create(Path::new(&dir).join(format!("run-{}.log", child.id()))).ok()
            });
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(f) = keep.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            let mut printed = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                printed.push(line.clone());
                if let Some((_, url)) = line.split_once("listening on ") {
                    let _ = tx.send((url.trim().to_string(), printed.clone()));
                } else if line.trim() == "infersight: running" {
                    // No API (an agent): no address to talk to.
                    let _ = tx.send((String::new(), printed.clone()));
                }
            }
        });
        let (base_url, printed) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(found) => found,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "infersight did not start; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        let running = Running {
            child,
            base_url,
            stderr,
            _tmp: tmp,
        };
        (running, printed)
    }

    /// GET a JSON endpoint; returns the status and the parsed body.
    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        get_json(&format!("{}{path_and_query}", self.base_url))
    }

    /// GET a JSON endpoint, or `None` while the API does not answer (not up yet, or gone).
    pub fn try_get(&self, path_and_query: &str) -> Option<(u16, Value)> {
        let (status, text) = try_get_text(&format!("{}{path_and_query}", self.base_url)).ok()?;
        Some((status, serde_json::from_str(&text).ok()?))
    }

    /// GETs a path as text, or `None` while the API does not answer.
    pub fn try_get_text(&self, path_and_query: &str) -> Option<(u16, String)> {
        try_get_text(&format!("{}{path_and_query}", self.base_url)).ok()
    }

    /// GETs a path of the running API as text (`/metrics`).
    pub fn get_text(&self, path_and_query: &str) -> (u16, String) {
        get_text(&format!("{}{path_and_query}", self.base_url))
    }

    /// Polls `path_and_query` until `done` accepts the body or `timeout` passes; returns
    /// the last body. Polling the API is how a user observes ingestion, so it is the event
    /// the test waits for.
    pub fn wait_for(
        &self,
        path_and_query: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path_and_query);
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {path_and_query}; last answer {status}: {body}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`wait_until`], failing with what it wrote to stderr.
    pub fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn() -> bool) {
        wait_or_fail(what, timeout, done, || {
            format!("\nstderr:\n{}", self.stderr())
        });
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGKILL (no chance to flush, commit or leave anything) and waits for the exit.
    pub fn kill(mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL infersight");
        self.child.wait().expect("wait on infersight")
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(mut self, within: Duration) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on infersight") {
                // Let the stderr reader catch up with what was written before the exit.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "infersight did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url` and parse its JSON body, whatever the status.
pub fn get_json(url: &str) -> (u16, Value) {
    let (status, text) = get_text(url);
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"));
    (status, body)
}

/// GETs `url` and returns the status and the body as text.
pub fn get_text(url: &str) -> (u16, String) {
    try_get_text(url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// [`get_text`], with a failure to connect or read as an error: for an API that is down
/// for a while (a pipeline restarting).
pub fn try_get_text(url: &str) -> Result<(u16, String), ureq::Error> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let mut response = agent.get(url).call()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    Ok((status, text))
}

/// The value of the first series in a `/metrics` text whose line starts with `series` (a
/// family name, or a name with `{` to leave out its `_bucket`/`_sum` siblings) and contains
/// every one of `needles` (label pairs, say).
pub fn metric_value(metrics: &str, series: &str, needles: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(series) && needles.iter().all(|n| l.contains(n)))
        .find_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
}

/// The sum of every series of the metric `name` in a `/metrics` text, over all label sets
/// (0 when it has none).
pub fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Runs the binary with `args` (and `stdin`), returning (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start infersight");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for infersight");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Server-Sent Events stream read over plain HTTP/1.1 (chunked), for tail tests.
pub struct EventStream {
    reader: BufReader<std::net::TcpStream>,
    decoded: String,
}

impl EventStream {
    /// Opens `GET path_and_query` on `base_url` (`http://IP:PORT`) and reads the headers;
    /// panics unless the answer is 200.
    pub fn open(base_url: &str, path_and_query: &str) -> EventStream {
        let host = base_url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(host).expect("connect to the API");
        write!(
            stream,
            "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .expect("send the request");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 200 "), "tail answered {status}");
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).expect("header");
            if header == "\r\n" || header.is_empty() {
                break;
            }
        }
        EventStream {
            reader,
            decoded: String::new(),
        }
    }

    /// The next event as (event name, data), waiting at most `timeout` for it.
    pub fn next(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.decoded.find("\n\n") {
                let block: String = self.decoded.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if block.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                    continue; // a keep-alive comment
                }
                return Some((name, data));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .expect("read timeout");
            // One chunk: its size in hex, the bytes, CRLF.
            let mut size = String::new();
            match self.reader.read_line(&mut size) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => return None,
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            if std::io::Read::read_exact(&mut self.reader, &mut chunk).is_err() {
                return None;
            }
            self.decoded
                .push_str(&String::from_utf8_lossy(&chunk[..n]).replace("\r\n", "\n"));
        }
    }

    /// Waits for an event named `name` whose data contains `needle`, skipping others.
    pub fn wait_for(&mut self, name: &str, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (event, data) = self.next(left)?;
            if event == name && data.contains(needle) {
                return Some(data);
            }
        }
    }
}
