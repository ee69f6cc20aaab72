//! The end-to-end benchmark of the local pipeline (issue 10): pods of mixed inference
//! servers write CRI logs at a target rate, with kubelet-style rotation (rename, then gzip
//! of the older file), tracebacks (one vLLM line in 1000), and an OOM crash and restart of
//! one pod, while the real
//! binary tails, parses and indexes them. Per step (one rate): lines/s and MB/s written and
//! indexed, whether the backlog stayed bounded (sustained), freshness (write → searchable,
//! p50/p99 of probe lines), search latency under that load, and CPU seconds per GB. Over the
//! run: peak RSS, index bytes per raw byte, and whether every record was indexed exactly as
//! often as it was written.
//!
//! `cargo run --release -p tests --bin e2e-bench -- --help`; the short mode runs in CI as
//! `tests/tests/e2e_bench_short.rs`.

use crate::{Running, cri_now};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The `infersight` binary.
    pub binary: PathBuf,
    /// Pods writing logs.
    pub pods: usize,
    /// Target lines/s of each step; empty: start at `ramp_from` and raise by half until a
    /// step is not sustained, try once between the last two, then run at half the best.
    pub rates: Vec<u64>,
    /// The first rate of a ramp.
    pub ramp_from: u64,
    /// How long each step writes.
    pub step: Duration,
    /// Rotate a pod's live file past this size (the kubelet's default is 10 MiB).
    pub rotate_bytes: u64,
}

impl BenchOptions {
    /// The CI mode: one modest rate for 20 s (under 2 minutes in all, a debug build too).
    pub fn short(binary: PathBuf) -> Self {
        BenchOptions {
            binary,
            pods: 20,
            rates: vec![2000],
            ramp_from: 2000,
            step: Duration::from_secs(20),
            rotate_bytes: 256 << 10,
        }
    }
}

/// One step's figures.
#[derive(Clone, Debug, Default)]
pub struct StepReport {
    /// Lines/s asked of the writers.
    pub target_lines_per_s: u64,
    /// Lines/s and MB/s they wrote.
    pub written_lines_per_s: f64,
    /// MB/s they wrote.
    pub written_mb_per_s: f64,
    /// Records/s the index took in during the step.
    pub indexed_records_per_s: f64,
    /// Records written and not yet searchable at the step's middle and end.
    pub backlog_mid: u64,
    /// See `backlog_mid`.
    pub backlog_end: u64,
    /// The backlog stayed within 2 s of writing and did not grow.
    pub sustained: bool,
    /// Write → searchable of the probe lines, ms.
    pub freshness_ms: Percentiles,
    /// `q=error`, newest 100 of 15 minutes, while the load ran, ms.
    pub search_ms: Percentiles,
    /// infersight's CPU seconds per GB of log written in the step.
    pub cpu_s_per_gb: f64,
}

/// p50, p99 and max of some samples, and how many.
#[derive(Clone, Debug, Default)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            n: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        }
    }

    fn json(&self) -> Value {
        json!({"n": self.n, "p50": self.p50, "p99": self.p99, "max": self.max})
    }
}

/// The whole run.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    /// Each step, in order.
    pub steps: Vec<StepReport>,
    /// Lines and bytes written in all.
    pub lines_written: u64,
    /// See `lines_written`.
    pub bytes_written: u64,
    /// Records the lines make (a traceback is one).
    pub records_expected: u64,
    /// Records the index holds from them at the end (derived request records aside).
    pub records_indexed: u64,
    /// Rotations and gzipped files.
    pub rotations: u64,
    /// infersight's peak resident memory, MiB (VmHWM: with the index's mapped pages).
    pub peak_rss_mib: f64,
    /// Its highest anonymous memory (heap) seen, sampled every 200 ms, MiB: what the
    /// index's mapped pages, which the kernel can drop, do not count in.
    pub peak_anon_mib: f64,
    /// Index size over raw log size.
    pub index_bytes_per_raw_byte: f64,
    /// Seconds from the last write until every record was searchable.
    pub drain_s: f64,
}

impl BenchReport {
    /// The highest sustained step, if any.
    pub fn best_sustained(&self) -> Option<&StepReport> {
        self.steps
            .iter()
            .filter(|s| s.sustained)
            .max_by(|a, b| a.written_lines_per_s.total_cmp(&b.written_lines_per_s))
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                json!({
                    "target_lines_per_s": s.target_lines_per_s,
                    "written_lines_per_s": s.written_lines_per_s.round(),
                    "written_mb_per_s": (s.written_mb_per_s * 100.0).round() / 100.0,
                    "indexed_records_per_s": s.indexed_records_per_s.round(),
                    "backlog_mid": s.backlog_mid,
                    "backlog_end": s.backlog_end,
                    "sustained": s.sustained,
                    "freshness_ms": s.freshness_ms.json(),
                    "search_ms": s.search_ms.json(),
                    "cpu_s_per_gb": (s.cpu_s_per_gb * 10.0).round() / 10.0,
                })
            })
            .collect();
        let best = self.best_sustained();
        json!({
            "sustained_lines_per_s": best.map(|s| s.written_lines_per_s.round()),
            "sustained_mb_per_s": best.map(|s| (s.written_mb_per_s * 100.0).round() / 100.0),
            "peak_rss_mib": self.peak_rss_mib.round(),
            "peak_anon_mib": self.peak_anon_mib.round(),
            "index_bytes_per_raw_byte": (self.index_bytes_per_raw_byte * 1000.0).round() / 1000.0,
            "lines_written": self.lines_written,
            "bytes_written": self.bytes_written,
            "records_expected": self.records_expected,
            "records_indexed": self.records_indexed,
            "rotations": self.rotations,
            "drain_s": (self.drain_s * 10.0).round() / 10.0,
            "steps": steps,
        })
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "target/s  written/s   MB/s  indexed/s  backlog(mid,end)  sustained  fresh p50/p99 ms  search p50/p99 ms  CPU s/GB\n",
        );
        for s in &self.steps {
            out.push_str(&format!(
                "{:>8}  {:>9.0}  {:>5.2}  {:>9.0}  {:>7},{:<8}  {:>9}  {:>7.0}/{:<8.0}  {:>7.1}/{:<8.1}  {:>8.1}\n",
                s.target_lines_per_s,
                s.written_lines_per_s,
                s.written_mb_per_s,
                s.indexed_records_per_s,
                s.backlog_mid,
                s.backlog_end,
                s.sustained,
                s.freshness_ms.p50,
                s.freshness_ms.p99,
                s.search_ms.p50,
                s.search_ms.p99,
                s.cpu_s_per_gb,
            ));
        }
        out.push_str(&format!(
            "peak RSS {:.0} MiB (anonymous {:.0} MiB); index {:.3} bytes per raw byte; {} lines ({:.1} MB) written, {} records expected, {} indexed; {} rotations; drained {:.1} s after the last write\n",
            self.peak_rss_mib,
            self.peak_anon_mib,
            self.index_bytes_per_raw_byte,
            self.lines_written,
            self.bytes_written as f64 / 1e6,
            self.records_expected,
            self.records_indexed,
            self.rotations,
            self.drain_s,
        ));
        out
    }
}

/// Servers whose pods the workload mixes, as the corpus names them.
const SERVERS: [&str; 5] = ["vllm", "tgi", "sglang", "llamacpp", "triton"];

/// One-line corpus records per server: what a serving pod logs in steady state (stats,
/// requests, access lines, errors). Lines the multi-line rules could join to the line
/// before (an indented or unstamped continuation) are left out, so that each written line
/// is one record and the count can be exact.
pub fn line_pool() -> Vec<Vec<String>> {
    let mut pool = vec![Vec::new(); SERVERS.len()];
    for r in crate::corpus() {
        let (Some(server), Some(kind), Some(body)) =
            (r["server"].as_str(), r["kind"].as_str(), r["line"].as_str())
        else {
            continue;
        };
        let steady = matches!(
            kind,
            "stats" | "request_start" | "request_end" | "access" | "other" | "error"
        );
        if let Some(i) = SERVERS.iter().position(|s| *s == server)
            && steady
            && collector::files::starts_like_a_record(body)
            && !body.contains("Traceback")
            && !body.contains('\n')
        {
            pool[i].push(body.to_string());
        }
    }
    for lines in &mut pool {
        drop_continuations(lines);
    }
    assert!(
        pool.iter().all(|p| !p.is_empty()),
        "corpus lines of each server"
    );
    pool
}

/// Records `binary parse` makes of `lines` written in order, request records aside.
fn records_of(binary: &Path, lines: &[String]) -> usize {
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary)
        .arg("parse")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run infersight parse");
    let mut stdin = child.stdin.take().expect("stdin");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("infersight parse output");
    let _ = feeder.join();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("\"kind\":\"request\""))
        .count()
}

/// Removes the lines the processor folds into another record (llama.cpp's timing block
/// is one record of several lines, as are some Triton tables), so that every written line
/// is one record: asked of the binary under test, `parse`, over two rounds of the pool.
fn one_record_per_line(binary: &Path, pool: &mut [Vec<String>]) {
    for lines in pool.iter_mut() {
        loop {
            let twice: Vec<String> = lines.iter().chain(lines.iter()).cloned().collect();
            if records_of(binary, &twice) == twice.len() || lines.len() <= 1 {
                break;
            }
            let fix = (0..lines.len()).find(|&i| {
                let mut without = lines.clone();
                without.remove(i);
                let twice: Vec<String> = without.iter().chain(without.iter()).cloned().collect();
                records_of(binary, &twice) == twice.len()
            });
            // No single line is to blame: drop the first and look again.
            lines.remove(fix.unwrap_or(0));
        }
    }
}

/// Removes the lines that the collector's multi-line rules join to the line written
/// before them (lines are written in pool order, round and round), until none is.
fn drop_continuations(lines: &mut Vec<String>) {
    use collector::files::{MultilineConfig, MultilineStream};
    use model::{Attributes, Record, RecordId, Stream, Timestamp};
    loop {
        let mut stream = MultilineStream::new(MultilineConfig::default(), false);
        let resource = Arc::new(Attributes::new());
        let at = Timestamp::now();
        let mut out = Vec::new();
        for (i, line) in lines.iter().chain(lines.iter()).enumerate() {
            let mut r = Record::log(
                RecordId::from_source(b"pool", i as u64),
                at,
                at,
                resource.clone(),
                line.clone(),
            );
            r.stream = Some(Stream::Stdout);
            out.extend(stream.push(r, i as u64));
        }
        out.extend(stream.finish());
        let joined: std::collections::HashSet<String> = out
            .iter()
            .flat_map(|r| r.body.split('\n').skip(1).map(str::to_string))
            .collect();
        if joined.is_empty() {
            return;
        }
        lines.retain(|l| !joined.contains(l));
    }
}

/// A Python traceback as vLLM logs one before it dies: four lines, one record.
const OOM_TRACEBACK: [&str; 4] = [
    "ERROR 11-28 10:00:00 [core.py:588] Traceback (most recent call last):",
    "  File \"/usr/local/lib/python3.12/site-packages/vllm/v1/engine/core.py\", line 579, in run_engine_core",
    "    engine_core.run_busy_loop()",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.06 GiB is free.",
];

/// A request that failed in the engine, as vLLM logs it: four lines on stderr, one
/// record. Every [`TRACEBACK_EVERY`]th line of a vLLM pod is one.
const REQUEST_TRACEBACK: [&str; 4] = [
    "ERROR 11-28 10:00:00 [serving_chat.py:1012] Traceback (most recent call last):",
    "  File \"/usr/local/lib/python3.12/site-packages/vllm/entrypoints/openai/serving_chat.py\", line 1006, in chat_completion_full_generator",
    "    async for res in result_generator:",
    "ValueError: This model's maximum context length is 8192 tokens. However, you requested 9301 tokens.",
];
const TRACEBACK_EVERY: u64 = 1000;

/// One pod's container log, kubelet style.
struct PodLog {
    dir: PathBuf,
    restart: u32,
    file: File,
    in_file: u64,
    server: usize,
    next: usize,
    stamp: u64,
    /// Records written.
    written: u64,
}

impl PodLog {
    fn new(root: &Path, pod: usize, server: usize) -> Self {
        let name = SERVERS[server];
        let dir = root.join(format!("llm_{name}-{pod:02}_uid-bench-{pod:04}/{name}"));
        std::fs::create_dir_all(&dir).expect("pod dir");
        let file = open_append(&dir.join("0.log"));
        PodLog {
            dir,
            restart: 0,
            file,
            in_file: 0,
            server,
            next: pod * 7,
            stamp: 0,
            written: 0,
        }
    }

    fn live(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.restart))
    }

    /// The kubelet's rotation: rename the live file, start a new one, compress the one
    /// rotated before (off the writer's thread, as the kubelet does it in the background).
    fn rotate(&mut self, gzips: &mut Vec<std::thread::JoinHandle<()>>) {
        self.stamp += 1;
        let rotated = self
            .dir
            .join(format!("{}.log.20261128-{:06}", self.restart, self.stamp));
        std::fs::rename(self.live(), &rotated).expect("rotate");
        self.file = open_append(&self.live());
        self.in_file = 0;
        if self.stamp > 1 {
            let older = self.dir.join(format!(
                "{}.log.20261128-{:06}",
                self.restart,
                self.stamp - 1
            ));
            gzips.push(std::thread::spawn(move || {
                let _ = std::process::Command::new("gzip")
                    .arg("-f")
                    .arg(older)
                    .status();
            }));
        }
    }
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open a pod log")
}

/// What the writers did, shared with the measuring threads.
#[derive(Default)]
struct Counters {
    /// Records per server (as `SERVERS`).
    per_server: [AtomicU64; 5],
    lines: AtomicU64,
    bytes: AtomicU64,
    records: AtomicU64,
    rotations: AtomicU64,
}

/// The load: pods writing at `rate` lines/s in 10 ms slices until `stop`.
/// How the measuring side steers the writers.
#[derive(Clone, Default)]
struct Controls {
    /// Lines/s to write now.
    rate: Arc<AtomicU64>,
    /// Set: pod 0 dies of an OOM and restarts (cleared when done).
    crash: Arc<AtomicBool>,
    /// Set: stop writing.
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

fn write_load(pool: Vec<Vec<String>>, logs: PathBuf, pods: usize, rotate_bytes: u64, c: Controls) {
    let Controls {
        rate,
        crash,
        stop,
        counters,
    } = c;
    let mut logs: Vec<PodLog> = (0..pods)
        .map(|p| PodLog::new(&logs, p, p % SERVERS.len()))
        .collect();
    let mut gzips = Vec::new();
    let mut owed = 0.0f64;
    let mut last = Instant::now();
    let mut turn = 0usize;
    let mut buf = String::new();
    while !stop.load(Relaxed) {
        let now = Instant::now();
        owed += rate.load(Relaxed) as f64 * now.duration_since(last).as_secs_f64();
        last = now;
        let due = owed.floor() as u64;
        owed -= due as f64;
        if crash.swap(false, Relaxed) {
            // The vLLM pod 0 dies of an OOM and the kubelet starts it again: `1.log`.
            let ts = cri_now();
            let pod = &mut logs[0];
            buf.clear();
            for line in OOM_TRACEBACK {
                buf.push_str(&format!("{ts} stderr F {line}\n"));
            }
            pod.file.write_all(buf.as_bytes()).expect("write");
            counters.lines.fetch_add(4, Relaxed);
            counters.bytes.fetch_add(buf.len() as u64, Relaxed);
            counters.records.fetch_add(1, Relaxed);
            counters.per_server[pod.server].fetch_add(1, Relaxed);
            pod.restart += 1;
            pod.stamp = 0;
            pod.file = open_append(&pod.live());
            pod.in_file = 0;
        }
        // A stamp per pod: two pods of one server rotating in the same slice would
        // otherwise start their new files with the same bytes, which file identity (a
        // hash of the first line) takes for one file (see the issue note).
        let stamps: Vec<String> = (0..pods).map(|_| cri_now()).collect();
        let mut per_pod = vec![String::new(); pods];
        let mut extra_lines = 0;
        for _ in 0..due {
            turn = (turn + 1) % pods;
            let pod = &mut logs[turn];
            pod.written += 1;
            counters.per_server[pod.server].fetch_add(1, Relaxed);
            let out = &mut per_pod[turn];
            if pod.server == 0 && pod.written.is_multiple_of(TRACEBACK_EVERY) {
                for line in REQUEST_TRACEBACK {
                    out.push_str(&stamps[turn]);
                    out.push_str(" stderr F ");
                    out.push_str(line);
                    out.push('\n');
                }
                extra_lines += REQUEST_TRACEBACK.len() as u64 - 1;
                continue;
            }
            let lines = &pool[pod.server];
            pod.next = (pod.next + 1) % lines.len();
            out.push_str(&stamps[turn]);
            out.push_str(" stdout F ");
            out.push_str(&lines[pod.next]);
            out.push('\n');
        }
        for (pod, text) in logs.iter_mut().zip(&per_pod) {
            if text.is_empty() {
                continue;
            }
            pod.file
                .write_all(text.as_bytes())
                .expect("write a pod log");
            pod.in_file += text.len() as u64;
            counters.bytes.fetch_add(text.len() as u64, Relaxed);
            if pod.in_file >= rotate_bytes {
                pod.rotate(&mut gzips);
                counters.rotations.fetch_add(1, Relaxed);
            }
        }
        counters.lines.fetch_add(due + extra_lines, Relaxed);
        counters.records.fetch_add(due, Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    }
    for g in gzips {
        let _ = g.join();
    }
}

/// Records the index holds from the logs: all but the request records the processor
/// derives.
fn indexed(app: &Running) -> u64 {
    indexed_of(app, "")
}

/// [`indexed`] of one filter (`&container=vllm`).
fn indexed_of(app: &Running, filter: &str) -> u64 {
    let total = |q: &str| {
        let (_, body) = app.get(&format!("/api/v1/search?q=*&limit=1{filter}{q}"));
        body["total"].as_u64().unwrap_or(0)
    };
    total("").saturating_sub(total("&kind=request"))
}

/// utime + stime of `pid`, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here 0-based after the state (3).
    (ticks(11) + ticks(12)) / 100.0
}

/// A memory figure of `pid`'s `/proc/<pid>/status` (`VmHWM`, `RssAnon`, …) in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples a measuring thread took, by step.
type Samples = Arc<Mutex<Vec<(usize, f64)>>>;

/// Where a ramp is.
#[derive(Clone, Copy, PartialEq)]
enum RampStage {
    /// Up by half a step while every step keeps up.
    Raising,
    /// One step between the best rate that kept up and the lowest that did not.
    Narrowing,
    /// Half the best rate that kept up (the freshness measure) was asked: done.
    Halved,
}

/// The rate of a ramp's next step after `report`'s last one, if any.
fn next_ramp_step(report: &BenchReport, stage: &mut RampStage) -> Option<u64> {
    let last = report.steps.last()?;
    let best = report.best_sustained().map(|s| s.target_lines_per_s);
    let lowest_failed = report
        .steps
        .iter()
        .filter(|s| !s.sustained)
        .map(|s| s.target_lines_per_s)
        .min();
    if *stage == RampStage::Raising {
        if last.sustained && report.steps.len() < 9 {
            return Some(last.target_lines_per_s * 3 / 2);
        }
        *stage = RampStage::Narrowing;
        if let (Some(best), Some(failed)) = (best, lowest_failed) {
            let between = (best + failed) / 2;
            // Worth a step only if it is more than 5 % away from both.
            if between > best + best / 20 && between + failed / 20 < failed {
                return Some(between);
            }
        }
    }
    if *stage == RampStage::Narrowing {
        *stage = RampStage::Halved;
        let best = report.best_sustained()?.written_lines_per_s;
        return Some((best / 2.0) as u64);
    }
    None
}

/// Records written (probes included) and not yet searchable.
fn backlog(app: &Running, counters: &Counters, probes: u64) -> u64 {
    (counters.records.load(Relaxed) + probes).saturating_sub(indexed(app))
}

/// Runs the benchmark.
pub fn run(options: &BenchOptions) -> BenchReport {
    let tmp = tempfile::tempdir().expect("temp dir");
    let logs = tmp.path().join("pods");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let probe_dir = logs.join("bench_probe-0_uid-probe/probe");
    std::fs::create_dir_all(&probe_dir).expect("probe dir");
    let mut probe_file = open_append(&probe_dir.join("0.log"));

    let args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--logs-dir".into(),
        logs.clone().into(),
        "--data-dir".into(),
        data.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    let (app, _) = Running::spawn_program(&options.binary, &args);
    let app = Arc::new(app);
    let pid = app.pid();

    let controls = Controls::default();
    let Controls {
        rate,
        crash,
        stop,
        counters,
    } = controls.clone();
    let writer = {
        let (pods, rotate) = (options.pods, options.rotate_bytes);
        let logs = logs.clone();
        let mut pool = line_pool();
        one_record_per_line(&options.binary, &mut pool);
        std::thread::spawn(move || write_load(pool, logs, pods, rotate, controls))
    };

    let step_now = Arc::new(AtomicU64::new(0));
    let searching = Arc::new(AtomicBool::new(true));
    let search_samples: Samples = Arc::default();
    let peak_anon = Arc::new(AtomicU64::new(0f64.to_bits()));
    let searcher = {
        let (app, step_now, searching, samples, peak_anon) = (
            app.clone(),
            step_now.clone(),
            searching.clone(),
            search_samples.clone(),
            peak_anon.clone(),
        );
        std::thread::spawn(move || {
            while searching.load(Relaxed) {
                let anon = status_mib(pid, "RssAnon");
                if anon > f64::from_bits(peak_anon.load(Relaxed)) {
                    peak_anon.store(anon.to_bits(), Relaxed);
                }
                let started = Instant::now();
                let (status, _) = app.get("/api/v1/search?q=error&from=now-15m&limit=100");
                if status == 200 {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    samples
                        .lock()
                        .expect("samples")
                        .push((step_now.load(Relaxed) as usize, ms));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let mut report = BenchReport::default();
    let mut rates: Vec<u64> = options.rates.clone();
    let ramp = rates.is_empty();
    if ramp {
        rates.push(options.ramp_from);
    }
    let mut probes = 0u64;
    let mut step = 0usize;
    let mut ramp_stage = RampStage::Raising;
    while step < rates.len() {
        let target = rates[step];
        step_now.store(step as u64, Relaxed);
        rate.store(target, Relaxed);
        let (lines0, bytes0, cpu0) = (
            counters.lines.load(Relaxed),
            counters.bytes.load(Relaxed),
            cpu_seconds(pid),
        );
        let indexed0 = indexed(&app);
        let started = Instant::now();
        let mut freshness = Vec::new();
        let mut backlog_mid = None;
        if step == 0 {
            crash.store(true, Relaxed);
        }
        // Probes, one at a time, until the step's time is up.
        while started.elapsed() < options.step {
            if backlog_mid.is_none() && started.elapsed() >= options.step / 2 {
                backlog_mid = Some(backlog(&app, &counters, probes));
            }
            probes += 1;
            let token = format!("benchprobe{probes:08}");
            let line = format!("{} stdout F probe {token}\n", cri_now());
            probe_file.write_all(line.as_bytes()).expect("probe");
            let written_at = Instant::now();
            let deadline = written_at + Duration::from_secs(30);
            loop {
                let (_, body) = app.get(&format!("/api/v1/search?q={token}&limit=1"));
                if body["total"].as_u64().unwrap_or(0) > 0 {
                    freshness.push(written_at.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if Instant::now() > deadline {
                    break; // counted as missing from the samples; the backlog says why
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        let secs = started.elapsed().as_secs_f64();
        let lines = counters.lines.load(Relaxed) - lines0;
        let bytes = counters.bytes.load(Relaxed) - bytes0;
        let cpu = cpu_seconds(pid) - cpu0;
        let indexed_now = indexed(&app);
        let backlog_end = (counters.records.load(Relaxed) + probes).saturating_sub(indexed_now);
        let backlog_mid = backlog_mid.unwrap_or(backlog_end);
        let written_per_s = lines as f64 / secs;
        // Bounded: at most two seconds of writing behind, and not growing beyond what a
        // commit interval (1 s) leaves pending.
        let end = backlog_end as f64;
        let sustained = end <= 2.0 * written_per_s
            && (end <= 1.2 * written_per_s || end <= backlog_mid as f64 * 1.2);
        let searches: Vec<f64> = search_samples
            .lock()
            .expect("samples")
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, ms)| *ms)
            .collect();
        report.steps.push(StepReport {
            target_lines_per_s: target,
            written_lines_per_s: written_per_s,
            written_mb_per_s: bytes as f64 / 1e6 / secs,
            indexed_records_per_s: indexed_now.saturating_sub(indexed0) as f64 / secs,
            backlog_mid,
            backlog_end,
            sustained,
            freshness_ms: Percentiles::of(freshness),
            search_ms: Percentiles::of(searches),
            cpu_s_per_gb: if bytes == 0 {
                0.0
            } else {
                cpu / (bytes as f64 / 1e9)
            },
        });
        eprint!(
            "{}",
            report.table().lines().take(1).collect::<String>() + "\n"
        );
        eprintln!(
            "{}",
            report.table().lines().nth(step + 1).unwrap_or_default()
        );
        if ramp && let Some(next) = next_ramp_step(&report, &mut ramp_stage) {
            rates.push(next);
        }
        step += 1;
        // A step that fell behind leaves a backlog; the next one would measure its
        // draining (freshness of seconds at half the rate). Let it drain first.
        if step < rates.len() && !sustained {
            rate.store(0, Relaxed);
            let deadline = Instant::now() + Duration::from_secs(300);
            while backlog(&app, &counters, probes) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    rate.store(0, Relaxed);
    searching.store(false, Relaxed);
    stop.store(true, Relaxed);
    writer.join().expect("writers");
    let _ = searcher.join();
    let expected = counters.records.load(Relaxed) + probes;
    let quiet = Instant::now();
    let deadline = quiet + Duration::from_secs(120);
    let mut got = indexed(&app);
    while got < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = indexed(&app);
    }
    report.drain_s = quiet.elapsed().as_secs_f64();
    // Anything doubled arrives with the rest: look once more after a commit interval.
    std::thread::sleep(Duration::from_secs(2));
    report.records_indexed = indexed(&app);
    if report.records_indexed != expected {
        for (i, server) in SERVERS.iter().enumerate() {
            eprintln!(
                "{server}: {} records written, {} indexed",
                counters.per_server[i].load(Relaxed),
                indexed_of(&app, &format!("&container={server}"))
            );
        }
    }
    report.records_expected = expected;
    report.lines_written = counters.lines.load(Relaxed) + probes;
    report.bytes_written = counters.bytes.load(Relaxed);
    report.rotations = counters.rotations.load(Relaxed);
    report.peak_rss_mib = status_mib(pid, "VmHWM");
    report.peak_anon_mib = f64::from_bits(peak_anon.load(Relaxed));
    let (_, ready) = app.get("/readyz");
    let index_bytes = ready["index"]["bytes"].as_f64().unwrap_or(0.0);
    report.index_bytes_per_raw_byte = index_bytes / report.bytes_written.max(1) as f64;
    match Arc::try_unwrap(app) {
        Ok(app) => {
            let (status, stderr) = app.terminate(Duration::from_secs(60));
            assert!(status.success(), "infersight stops cleanly: {stderr}");
        }
        Err(_) => panic!("the measuring threads still hold the process"),
    }
    report
}

#[cfg(test)]
mod ramp_tests {
    use super::*;

    fn step(target: u64, sustained: bool) -> StepReport {
        StepReport {
            target_lines_per_s: target,
            written_lines_per_s: target as f64,
            sustained,
            ..StepReport::default()
        }
    }

    #[test]
    fn a_ramp_raises_until_behind_then_narrows_once_then_halves_the_best() {
        let mut report = BenchReport::default();
        let mut stage = RampStage::Raising;
        let mut asked = Vec::new();
        // The pipeline keeps up to 90k lines/s.
        let mut target = 20_000;
        while report.steps.len() < 20 {
            report.steps.push(step(target, target <= 90_000));
            match next_ramp_step(&report, &mut stage) {
                Some(next) => {
                    asked.push(next);
                    target = next;
                }
                None => break,
            }
        }
        // 20k, 30k, 45k, 67.5k kept up; 101.25k did not; 84.375k did; half of it.
        assert_eq!(asked, [30_000, 45_000, 67_500, 101_250, 84_375, 42_187]);
    }

    #[test]
    fn a_ramp_whose_first_step_falls_behind_stops() {
        let mut report = BenchReport::default();
        report.steps.push(step(20_000, false));
        let mut stage = RampStage::Raising;
        assert_eq!(next_ramp_step(&report, &mut stage), None);
    }
}
