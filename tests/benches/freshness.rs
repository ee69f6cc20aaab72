//! Freshness (issue 5): how long after a line is appended to a container log the search API
//! returns it, under a background load, with the real binary.
//!
//! `cargo build --release --bin infersight && cargo bench -p tests --bench freshness`
//! Settings: FRESHNESS_PROBES (1000), FRESHNESS_LOAD (background lines/s, 20000),
//! FRESHNESS_PODS (20).
//!
//! A writer thread appends the load as CRI lines to the pods' logs in 10 ms slices; a probe
//! thread appends a line with a unique token every 50 ms; the main thread asks the API for
//! the probe lines every 20 ms and notes when each first appears. Prints p50/p99/max of
//! probe latency and the load actually achieved.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::{Running, cri_now};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open_log(logs: &std::path::Path, pod: usize) -> std::fs::File {
    let dir = logs
        .join(format!("llm-serving_vllm-{pod}_uid-{pod:04}"))
        .join("vllm");
    std::fs::create_dir_all(&dir).expect("pod dir");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("0.log"))
        .expect("pod log")
}

fn main() {
    let probes = env("FRESHNESS_PROBES", 1000) as usize;
    let load = env("FRESHNESS_LOAD", 20_000);
    let pods = env("FRESHNESS_PODS", 20) as usize;
    let tmp = tempfile::tempdir().expect("temp dir");
    let logs = tmp.path().join("pods");
    for pod in 0..pods {
        open_log(&logs, pod);
    }
    let app = Running::start(&logs, &tmp.path().join("data"), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));

    let writer = {
        let (stop, written, logs) = (Arc::clone(&stop), Arc::clone(&written), logs.clone());
        std::thread::spawn(move || {
            let mut files: Vec<_> = (0..pods).map(|p| open_log(&logs, p)).collect();
            let per_slice = (load / 100).max(1);
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ts = cri_now();
                let mut chunks = vec![String::new(); pods];
                for _ in 0..per_slice {
                    let pod = (n % pods as u64) as usize;
                    chunks[pod].push_str(&format!(
                        "{ts} stdout F INFO 11-27 20:41:07 [logger.py:49] Received request chatcmpl-{n:016x}: params: SamplingParams(n=1, temperature=0.7, max_tokens=512)\n"
                    ));
                    n += 1;
                }
                for (f, chunk) in files.iter_mut().zip(&chunks) {
                    f.write_all(chunk.as_bytes()).expect("write load");
                }
                written.store(n, Ordering::Relaxed);
                // Keep to the rate: sleep until this slice's time has come.
                let due = Duration::from_micros(n * 1_000_000 / load.max(1));
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };

    let sent: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let (sent, logs) = (Arc::clone(&sent), logs.clone());
        std::thread::spawn(move || {
            let mut f = open_log(&logs, 0);
            for i in 0..probes {
                let line = format!("{} stdout F freshness probe p{i:06}x\n", cri_now());
                sent.lock().expect("probe times").push(Instant::now());
                f.write_all(line.as_bytes()).expect("write probe");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let started = Instant::now();
    let mut seen: Vec<Option<Duration>> = vec![None; probes];
    let mut found = 0;
    let deadline = Duration::from_secs(probes as u64 / 20 + 120);
    while found < probes && started.elapsed() < deadline {
        let (_, body) = app.get("/api/v1/search?q=freshness&from=now-5m&limit=1000");
        let now = Instant::now();
        let times = sent.lock().expect("probe times").clone();
        for hit in body["hits"].as_array().into_iter().flatten() {
            let Some(i) = hit["body"]
                .as_str()
                .and_then(|b| b.rsplit_once(" p"))
                .map(|(_, token)| token)
                .and_then(|t| t.trim_end_matches('x').parse::<usize>().ok())
            else {
                continue;
            };
            if i < probes
                && seen[i].is_none()
                && let Some(at) = times.get(i)
            {
                seen[i] = Some(now.duration_since(*at));
                found += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = prober.join();
    let _ = writer.join();
    let achieved = written.load(Ordering::Relaxed) as f64 / elapsed;
    let mut latencies: Vec<Duration> = seen.iter().flatten().copied().collect();
    latencies.sort();
    if latencies.is_empty() {
        println!("no probe was found within {deadline:?}");
        return;
    }
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "freshness: {found}/{probes} probes found; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; background load {achieved:.0} lines/s over {pods} pods",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
}
