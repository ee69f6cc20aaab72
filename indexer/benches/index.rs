//! Indexing and query bench (issue 5): generates realistic records of 200 pods over 24 h,
//! indexes them with one indexing thread, and times the queries the UI and API make.
//!
//! `cargo bench -p indexer --bench index` (1 M records by default);
//! `BENCH_RECORDS=10000000 cargo bench -p indexer --bench index` for the 10 M.
//! `BENCH_DIR` keeps the data (raw CRI files and the index) in a given directory.
//! `BENCH_COMMIT_DOCS` commits every that many records (default 1 M); an aggregator under
//! load commits every second, ~40k records, and so leaves many more segments to search.
//!
//! Prints records/s and MB/s of indexing (raw CRI bytes), the CPU per record of each thread
//! (the indexing thread's alone says what one indexing thread can do, whatever else shares
//! the cores), the index size as a fraction of the raw files, p50/p99 of each query over
//! repeated runs, and `grep -rcF` over the raw files for the same term.
//!
//! Then the summary's pass over scraped histograms: `BENCH_SCRAPES` (default 1 M) scrape
//! records of the 200 pods (a 5 s scrape of 200 pods for 7 h) with their buckets of first
//! token, queue time and end to end, and the time to sum every bucket per model and per pod.
//!
//! Last, the floor: tantivy alone indexing the same records (up to 1 M of them) with only
//! what any log index needs (the body with positions, the timestamp column, the stored
//! record), so a run shows how much of the indexing thread's time our schema adds.

use indexer::{IndexStore, SearchRequest, SinkOptions};
use model::{
    AttrValue, Attributes, Batch, Record, RecordId, RecordKind, Severity, Timestamp, names,
};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The allocator the `infersight` binary runs with, so the bench measures what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PODS: usize = 200;
/// Records made before each timed stretch of indexing (about 0.5 GB of records in memory).
const GENERATED_CHUNK: u64 = 1_000_000;
/// Records per batch handed to the sink, as the pipeline's batches.
const BATCH: u64 = 20_000;
/// The indexing thread's memory budget (tantivy's own floor uses the same).
const MEMORY_BUDGET: usize = 256 << 20;
const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;
const MODELS: [&str; 4] = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "google/gemma-2-27b-it",
];

/// The generator's seed, the same in every run.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn resources() -> Vec<Arc<Attributes>> {
    (0..PODS)
        .map(|p| {
            let attrs: Attributes = [
                (
                    names::K8S_NAMESPACE_NAME,
                    AttrValue::from(format!("llm-{}", p % 4)),
                ),
                (
                    names::K8S_POD_NAME,
                    AttrValue::from(format!("vllm-{p}-7d9f8c6b5-x{p:03}")),
                ),
                (
                    names::K8S_POD_UID,
                    AttrValue::from(format!("0b6c{p:04}-1f2e-4d3c-9a8b-7c6d5e4f3a2b")),
                ),
                (names::K8S_CONTAINER_NAME, AttrValue::from("vllm")),
                (
                    names::K8S_NODE_NAME,
                    AttrValue::from(format!("gpu-node-{}", p / 8)),
                ),
            ]
            .into_iter()
            .collect();
            Arc::new(attrs)
        })
        .collect()
}

/// Record `i` of `total`, spread evenly over 24 h ending at `end`; also its raw CRI line.
fn record(
    i: u64,
    total: u64,
    end: i64,
    pods: &[Arc<Attributes>],
    rng: &mut Rng,
) -> (Record, String) {
    let ts = end - DAY_NS + (i as i128 * DAY_NS as i128 / total as i128) as i64;
    let pod = rng.below(PODS as u64) as usize;
    let model = MODELS[pod % MODELS.len()];
    let rid = format!("chatcmpl-{:016x}", i / 3);
    let mut attrs = Attributes::new();
    attrs.insert(names::LLM_SERVER, "vllm");
    let mut kind = RecordKind::Log;
    let mut severity = Severity::Info;
    let body = match rng.below(100) {
        0..=29 => {
            attrs.insert(names::LLM_REQUEST_ID, rid.clone());
            attrs.insert(names::LLM_EVENT, "request_received");
            attrs.insert(names::GEN_AI_REQUEST_MODEL, model);
            attrs.insert(names::GEN_AI_REQUEST_MAX_TOKENS, 512i64);
            format!(
                "INFO 11-27 20:41:07 [logger.py:49] Received request {rid}: params: SamplingParams(n=1, presence_penalty=0.0, temperature=0.7, top_p=0.95, max_tokens=512), prompt_token_ids: None, lora_request: None."
            )
        }
        30..=49 => {
            attrs.insert(names::HTTP_REQUEST_METHOD, "POST");
            attrs.insert(names::URL_PATH, "/v1/chat/completions");
            let status = if rng.below(100) == 0 { 500 } else { 200 };
            attrs.insert(names::HTTP_RESPONSE_STATUS_CODE, status as i64);
            format!(
                "INFO:     10.42.{}.{}:{} - \"POST /v1/chat/completions HTTP/1.1\" {status} OK",
                pod % 8,
                rng.below(250),
                30000 + rng.below(30000)
            )
        }
        50..=59 => {
            kind = RecordKind::EngineStats;
            let (run, wait, kv) = (rng.below(64), rng.below(16), rng.below(1000) as f64 / 10.0);
            attrs.insert(names::LLM_EVENT, "stats");
            attrs.insert(names::LLM_RUNNING, run as i64);
            attrs.insert(names::LLM_WAITING, wait as i64);
            attrs.insert_f64(names::LLM_KV_CACHE_PCT, kv);
            // As the processor leaves them: the throughputs, and the tokens generated over
            // the 10 s since the engine's line before.
            let prompt = rng.below(30_000) as f64 / 10.0;
            let generated = rng.below(9_000) as f64 / 10.0;
            attrs.insert_f64(names::LLM_PROMPT_THROUGHPUT_TPS, prompt);
            attrs.insert_f64(names::LLM_GEN_THROUGHPUT_TPS, generated);
            attrs.insert_f64(names::LLM_GENERATED_TOKENS, generated * 10.0);
            format!(
                "INFO 11-27 20:41:07 [loggers.py:271] Engine 000: Avg prompt throughput: {prompt:.1} tokens/s, Avg generation throughput: {generated:.1} tokens/s, Running: {run} reqs, Waiting: {wait} reqs, GPU KV cache usage: {kv}%, Prefix cache hit rate: 41.2%"
            )
        }
        60..=84 => {
            kind = RecordKind::Request;
            let e2e = 50.0 + rng.below(30_000) as f64 + rng.below(1000) as f64 / 1000.0;
            attrs.insert(names::LLM_REQUEST_ID, rid.clone());
            attrs.insert(names::LLM_EVENT, "request_finished");
            attrs.insert(names::GEN_AI_REQUEST_MODEL, model);
            attrs.insert_f64(names::LLM_E2E_MS, e2e);
            attrs.insert(names::GEN_AI_USAGE_INPUT_TOKENS, 1 + rng.below(4000) as i64);
            attrs.insert(
                names::GEN_AI_USAGE_OUTPUT_TOKENS,
                1 + rng.below(1000) as i64,
            );
            format!("request {rid} finished")
        }
        85..=96 => format!(
            "INFO 11-27 20:41:07 [async_llm.py:{}] Finished request {rid}.",
            200 + rng.below(300)
        ),
        97..=98 => {
            severity = Severity::Warn;
            format!(
                "WARNING 11-27 20:41:07 [scheduler.py:1560] Sequence group {rid} is preempted by PreemptionMode.RECOMPUTE mode because there is not enough KV cache space. This can affect the end-to-end performance. Increase gpu_memory_utilization or tensor_parallel_size to provide more KV cache memory. total_num_cumulative_preemption={}",
                rng.below(5000)
            )
        }
        _ => {
            severity = Severity::Error;
            attrs.insert(names::ERROR_TYPE, "cuda_oom");
            attrs.insert(names::EXCEPTION_TYPE, "torch.OutOfMemoryError");
            format!(
                "ERROR 11-27 20:41:07 [engine.py:160] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {}.00 MiB. GPU 0 has a total capacity of 79.19 GiB of which 3.06 MiB is free.",
                rng.below(4096)
            )
        }
    };
    let raw = format!(
        "{} stdout F {body}\n",
        Timestamp::from_unix_nanos(ts).to_rfc3339()
    );
    let mut r = Record::log(
        RecordId::from_source(b"bench", i),
        Timestamp::from_unix_nanos(ts),
        Timestamp::from_unix_nanos(ts),
        Arc::clone(&pods[pod]),
        body,
    );
    r.kind = kind;
    r.severity = Some(severity);
    r.attributes = attrs;
    (r, raw)
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99))
}

fn time(name: &str, runs: usize, mut f: impl FnMut() -> usize) {
    let mut samples = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        n = f();
        samples.push(start.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    println!(
        "  {name:<44} p50 {:>8.2} ms  p99 {:>8.2} ms  ({n} results)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

/// CPU seconds (user + system) this process has used, its finished threads included.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    stat_cpu_ticks(&stat) as f64 / 100.0
}

/// utime + stime, in clock ticks (1/100 s), of a `/proc/.../stat` line.
fn stat_cpu_ticks(stat: &str) -> u64 {
    // The fields after the command name, which may hold spaces, start after the last ')';
    // utime and stime (fields 14 and 15) are then the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// CPU ticks each thread of this process used while sampled, by thread id: on two cores
/// the wall rate depends on what else runs, while the indexing thread's own CPU per record
/// says what one indexing thread can do.
#[derive(Default)]
struct ThreadCpu {
    /// Thread id → (name, ticks at its first sample, ticks at its last).
    seen: std::collections::HashMap<u32, (String, u64, u64)>,
}

impl ThreadCpu {
    /// Samples every thread's CPU ticks (utime + stime).
    fn sample(&mut self) {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let (Ok(stat), Ok(comm)) = (
                std::fs::read_to_string(task.path().join("stat")),
                std::fs::read_to_string(task.path().join("comm")),
            ) else {
                continue;
            };
            let ticks = stat_cpu_ticks(&stat);
            let entry = self
                .seen
                .entry(tid)
                .or_insert_with(|| (String::new(), ticks, ticks));
            // The last name: a new thread names itself only once it runs.
            entry.0 = comm.trim().to_string();
            entry.2 = ticks;
        }
    }

    /// Adds this sampling's CPU seconds to `totals`, by thread name without the numbers
    /// tantivy gives its threads; the bench's own thread (which makes the documents) is
    /// `main`.
    fn add_to(&self, totals: &mut Vec<(String, f64)>) {
        let main = std::process::id();
        for (tid, (name, first, last)) in &self.seen {
            let name = match *tid == main {
                true => "main",
                false => name.trim_end_matches(|c: char| c.is_ascii_digit()),
            };
            let secs = (last - first) as f64 / 100.0;
            match totals.iter_mut().find(|(n, _)| n == name) {
                Some((_, s)) => *s += secs,
                None => totals.push((name.to_string(), secs)),
            }
        }
    }
}

/// Samples [`ThreadCpu`] every 20 ms on a thread of its own until finished. A thread that
/// ends between two samples loses at most 20 ms.
struct ThreadSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<ThreadCpu>,
}

impl ThreadSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                let mut cpu = ThreadCpu::default();
                while !flag.load(Ordering::Relaxed) {
                    cpu.sample();
                    std::thread::sleep(Duration::from_millis(20));
                }
                cpu.sample();
                cpu
            })
            .expect("sampler thread");
        ThreadSampler { stop, handle }
    }

    fn finish(self, totals: &mut Vec<(String, f64)>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(cpu) = self.handle.join() {
            cpu.add_to(totals);
        }
    }
}

/// tantivy's indexing threads are named `thrd-tantivy-index<N>` (15 characters kept).
const INDEXING_THREAD: &str = "thrd-tantivy-in";

/// Prints the CPU per record of each thread, and the rate the indexing thread's own CPU
/// allows.
fn print_thread_cpu(mut totals: Vec<(String, f64)>, records: u64) {
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    let per_record = |secs: f64| secs * 1e6 / records as f64;
    let described: Vec<String> = totals
        .iter()
        .filter(|(_, secs)| *secs > 0.0)
        .map(|(name, secs)| format!("{name} {:.1} µs", per_record(*secs)))
        .collect();
    println!("  CPU per record by thread: {}", described.join(", "));
    if let Some((_, secs)) = totals.iter().find(|(n, _)| n == INDEXING_THREAD) {
        println!(
            "  the indexing thread's own CPU: {:.1} µs per record = {:.0} records/s for one thread",
            per_record(*secs),
            records as f64 / secs
        );
    }
}

/// Indexes `records` with tantivy alone: the body (our tokenizer, with positions), the
/// timestamp column and the stored record, one indexing thread, the same settings.
fn tantivy_floor(dir: &Path, records: &[Record]) {
    use tantivy::schema::{
        FAST, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
    };
    let mut b = Schema::builder();
    let body = b.add_text_field(
        "body",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("log")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                .set_fieldnorms(false),
        ),
    );
    let timestamp = b.add_i64_field("timestamp", FAST);
    let stored = b.add_text_field("record", STORED);
    std::fs::create_dir_all(dir).expect("floor dir");
    let index = tantivy::Index::builder()
        .schema(b.build())
        .settings(IndexStore::index_settings())
        .create_in_dir(dir)
        .expect("floor index");
    index.tokenizers().register(
        "log",
        tantivy::tokenizer::TextAnalyzer::from(indexer::LogTokenizer::default()),
    );
    let mut writer: tantivy::IndexWriter = index
        .writer_with_num_threads(1, MEMORY_BUDGET)
        .expect("floor writer");
    let mut threads = Vec::new();
    let sampler = ThreadSampler::start();
    let start = Instant::now();
    // One at a time: tantivy's channel (10,000 messages) then holds the documents ahead
    // of the indexing thread to a few thousand. Sent 64 at a time, as the sink sends
    // them, with the one commit at the end, all 1 M were queued ahead of it and the floor
    // ran 20–40 % slower.
    for r in records {
        let mut doc = tantivy::TantivyDocument::new();
        doc.add_text(body, &r.body);
        doc.add_i64(timestamp, r.timestamp.unix_nanos());
        doc.add_text(stored, r.to_content_json());
        writer.add_document(doc).expect("floor add");
    }
    writer.commit().expect("floor commit");
    let secs = start.elapsed().as_secs_f64();
    sampler.finish(&mut threads);
    println!(
        "floor: tantivy alone (body with positions, timestamp, stored record) on {} records",
        records.len()
    );
    println!("  indexed: {:.0} records/s", records.len() as f64 / secs);
    print_thread_cpu(threads, records.len() as u64);
}

/// Indexes `count` scrape records of `pods` (each with a few nonzero buckets of each kept
/// histogram) in `dir` and times the LLM summary's one pass that sums every bucket per
/// model and per pod.
fn scraped_histograms(dir: &Path, count: u64, end: i64, pods: &[Arc<Attributes>]) {
    let grids = names::LLM_INTERVAL_HISTOGRAMS.map(|(grid, _)| grid);
    let _ = std::fs::remove_dir_all(dir);
    let store = IndexStore::open_or_create(dir).expect("scrape index");
    let mut sink = store
        .sink(SinkOptions {
            commit_interval: Duration::from_secs(3600),
            commit_docs: 1_000_000,
            memory_budget_bytes: MEMORY_BUDGET,
            ..SinkOptions::default()
        })
        .expect("sink");
    let mut rng = Rng(SEED ^ 1);
    let span = 7 * 3600 * 1_000_000_000i64;
    let start = Instant::now();
    let mut i = 0;
    while i < count {
        let n = (count - i).min(BATCH);
        let records = (i..i + n)
            .map(|k| {
                let pod = (k % PODS as u64) as usize;
                let ts = end - span + (k as i128 * span as i128 / count as i128) as i64;
                let mut r = Record::log(
                    RecordId::from_source(format!("scrape/{pod}").as_bytes(), k),
                    Timestamp::from_unix_nanos(ts),
                    Timestamp::from_unix_nanos(ts),
                    Arc::clone(&pods[pod]),
                    format!("vllm {}: 3 running, 1 waiting", MODELS[pod % MODELS.len()]),
                );
                r.kind = RecordKind::EngineStats;
                r.attributes.insert(names::LLM_SERVER, "vllm");
                r.attributes.insert(names::LLM_EVENT, "stats");
                r.attributes
                    .insert(names::GEN_AI_REQUEST_MODEL, MODELS[pod % MODELS.len()]);
                r.attributes
                    .insert_f64(names::LLM_TTFT_MS, rng.below(2000) as f64);
                // A 5 s interval of a busy server: its requests in a few neighbouring buckets.
                for grid in grids {
                    let first = rng.below(grid.len() as u64 - 3) as usize;
                    for (name, _) in &grid[first..first + 3] {
                        r.attributes.insert_f64(*name, 1.0 + rng.below(20) as f64);
                    }
                }
                r
            })
            .collect();
        sink.add(Batch::new(records)).expect("add");
        i += n;
    }
    sink.close().expect("close");
    println!(
        "scraped histograms: {count} scrape records indexed in {:.1} s, index {:.1} MB",
        start.elapsed().as_secs_f64(),
        dir_bytes(dir) as f64 / 1e6
    );
    let searcher = IndexStore::open_existing(dir).expect("reopen").searcher();
    let buckets: Vec<&str> = grids
        .iter()
        .flat_map(|g| g.iter().map(|(n, _)| *n))
        .collect();
    let request = SearchRequest {
        kind: Some(RecordKind::EngineStats),
        ..Default::default()
    };
    // The first: the same pass without the sums, for what they add.
    let model = names::GEN_AI_REQUEST_MODEL;
    for (name, group, sums) in [
        ("interval TTFT by model, without the sums", model, &[][..]),
        ("the summary's bucket sums by model", model, &buckets[..]),
        (
            "the summary's bucket sums by pod",
            names::K8S_POD_NAME,
            &buckets[..],
        ),
    ] {
        let question =
            indexer::StatsQuestion::new(names::LLM_TTFT_MS, Some(group), &[]).with_sums(sums);
        time(name, 10, || {
            searcher
                .field_stats_partial(&request, &question)
                .and_then(|p| p.finish())
                .expect("stats")
                .len()
        });
    }
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let total: u64 = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let commit_docs: usize = std::env::var("BENCH_COMMIT_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let keep = std::env::var_os("BENCH_DIR");
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = keep
        .as_deref()
        .map(Path::new)
        .unwrap_or(tmp.path())
        .to_path_buf();
    let raw_dir = root.join("raw");
    let index_dir = root.join("index");
    std::fs::create_dir_all(&raw_dir).expect("raw dir");
    let _ = std::fs::remove_dir_all(&index_dir);
    let pods = resources();
    let mut files: Vec<_> = (0..PODS)
        .map(|p| {
            std::io::BufWriter::new(
                std::fs::File::create(raw_dir.join(format!("pod-{p}.log"))).expect("raw file"),
            )
        })
        .collect();
    let sources: Vec<Vec<u8>> = (0..PODS)
        .map(|p| {
            raw_dir
                .join(format!("pod-{p}.log"))
                .into_os_string()
                .into_encoded_bytes()
        })
        .collect();
    let mut offsets = vec![0u64; PODS];
    let end = Timestamp::now().unix_nanos();
    let store = IndexStore::open_or_create(&index_dir).expect("index");
    let mut sink = store
        .sink(SinkOptions {
            commit_interval: Duration::from_secs(3600),
            commit_docs,
            memory_budget_bytes: MEMORY_BUDGET,
            ..SinkOptions::default()
        })
        .expect("sink");
    let mut rng = Rng(SEED);
    let mut raw_bytes = 0u64;
    let mut indexing = Duration::ZERO;
    let mut cpu = 0.0;
    let mut threads = Vec::new();
    let mut i = 0;
    println!("indexing {total} records of {PODS} pods over 24 h, one indexing thread");
    // Records are made a chunk at a time before the clock starts: on two cores, making them
    // while tantivy indexes would take CPU from the indexing being measured.
    while i < total {
        let chunk_end = (i + GENERATED_CHUNK).min(total);
        let mut batches = Vec::new();
        while i < chunk_end {
            let n = (chunk_end - i).min(BATCH);
            let mut records = Vec::with_capacity(n as usize);
            for k in i..i + n {
                let (mut r, raw) = record(k, total, end, &pods, &mut rng);
                raw_bytes += raw.len() as u64;
                let p = pods
                    .iter()
                    .position(|p| Arc::ptr_eq(p, &r.resource))
                    .unwrap_or(0);
                // As the collector names a line: its file and byte offset.
                r.id = RecordId::from_source(&sources[p], offsets[p]);
                offsets[p] += raw.len() as u64;
                files[p].write_all(raw.as_bytes()).expect("write raw");
                records.push(r);
            }
            i += n;
            batches.push(Batch::new(records));
        }
        let sampler = ThreadSampler::start();
        let start = Instant::now();
        let cpu_start = process_cpu_seconds();
        for batch in batches {
            sink.add(batch).expect("add");
            if sink.commit_due() {
                sink.commit().expect("commit");
            }
        }
        indexing += start.elapsed();
        cpu += process_cpu_seconds() - cpu_start;
        sampler.finish(&mut threads);
    }
    let sampler = ThreadSampler::start();
    let start = Instant::now();
    let cpu_start = process_cpu_seconds();
    sink.close().expect("close");
    indexing += start.elapsed();
    cpu += process_cpu_seconds() - cpu_start;
    sampler.finish(&mut threads);
    for f in &mut files {
        f.flush().expect("flush raw");
    }
    let secs = indexing.as_secs_f64();
    let index_bytes = dir_bytes(&index_dir);
    println!(
        "  indexed: {:.0} records/s, {:.1} MB/s of raw CRI text ({:.2} GB raw in {secs:.1} s)",
        total as f64 / secs,
        raw_bytes as f64 / 1e6 / secs,
        raw_bytes as f64 / 1e9
    );
    println!(
        "  CPU: {cpu:.1} s over {secs:.1} s of indexing ({:.2} cores), {:.1} µs per record",
        cpu / secs,
        cpu * 1e6 / total as f64
    );
    print_thread_cpu(threads, total);
    println!(
        "  index size: {:.1} MB = {:.2} of raw",
        index_bytes as f64 / 1e6,
        index_bytes as f64 / raw_bytes as f64
    );

    let store = IndexStore::open_existing(&index_dir).expect("reopen");
    println!(
        "  splits: {}, segments: {} (commits every {commit_docs} records)",
        store.split_count(),
        store.stats().segments
    );
    let usage = store.space_usage().expect("space usage");
    let parts: Vec<String> = usage
        .iter()
        .take(30)
        .map(|(part, bytes)| format!("{part} {:.1} MB", *bytes as f64 / 1e6))
        .collect();
    println!("  largest parts: {}", parts.join(", "));
    let searcher = store.searcher();
    let last_15m = Timestamp::from_unix_nanos(end - 15 * 60 * 1_000_000_000);
    let runs = 30;
    let search = |query: &str, from: Option<Timestamp>| {
        let request = SearchRequest {
            query: query.into(),
            from,
            limit: 100,
            ..Default::default()
        };
        searcher.search(&request).expect("search").total
    };
    time("term `preempted`, newest 100, 24 h", runs, || {
        search("preempted", None)
    });
    time("term `preempted`, newest 100, last 15 min", runs, || {
        search("preempted", Some(last_15m))
    });
    time("everything, newest 100, 24 h", runs, || search("*", None));
    // Prefixes: every request id of a range of them (no cap on the terms it expands to),
    // and the pods whose names begin so (a Deployment's replicas).
    time("prefix `chatcmpl-0000000000000*`, newest 100", runs, || {
        search("chatcmpl-0000000000000*", None)
    });
    time("prefix `k8s.pod.name:vllm-1*`, newest 100", runs, || {
        search("k8s.pod.name:vllm-1*", None)
    });
    let id = format!("chatcmpl-{:016x}", total / 2 / 3);
    time("request-id lookup (trace)", runs, || {
        searcher
            .request_trace(&id, &SearchRequest::default())
            .expect("trace")
            .len()
    });
    time("histogram, 24 h in 1-minute buckets", runs, || {
        searcher
            .histogram(&SearchRequest::default(), Duration::from_secs(60))
            .expect("histogram")
            .len()
    });
    // By model reads the model's column; by pod, the resource column's groups merged per pod.
    for (name, group) in [
        (
            "p95 of llm.e2e_ms by model, 24 h",
            names::GEN_AI_REQUEST_MODEL,
        ),
        ("p95 of llm.e2e_ms by pod, 24 h", names::K8S_POD_NAME),
    ] {
        time(name, runs, || {
            let request = SearchRequest {
                kind: Some(RecordKind::Request),
                ..Default::default()
            };
            searcher
                .field_stats(&request, names::LLM_E2E_MS, Some(group), &[95.0])
                .expect("stats")
                .len()
        });
    }
    let start = Instant::now();
    let grep = std::process::Command::new("grep")
        .args(["-rcF", "preempted"])
        .arg(&raw_dir)
        .output()
        .expect("grep");
    let grep_time = start.elapsed();
    let matches: u64 = String::from_utf8_lossy(&grep.stdout)
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.parse::<u64>().ok())
        .sum();
    println!(
        "  grep -rcF preempted over the raw files: {:.1} ms ({matches} lines)",
        grep_time.as_secs_f64() * 1e3
    );
    drop(searcher);
    drop(store);
    let scrapes: u64 = std::env::var("BENCH_SCRAPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if scrapes > 0 {
        scraped_histograms(&root.join("scrapes"), scrapes, end, &pods);
        let _ = std::fs::remove_dir_all(root.join("scrapes"));
    }

    // The same first records again (same seed), for tantivy alone.
    let floor_records = total.min(GENERATED_CHUNK);
    let mut rng = Rng(SEED);
    let records: Vec<Record> = (0..floor_records)
        .map(|k| record(k, total, end, &pods, &mut rng).0)
        .collect();
    let floor_dir = root.join("floor");
    let _ = std::fs::remove_dir_all(&floor_dir);
    tantivy_floor(&floor_dir, &records);
    let _ = std::fs::remove_dir_all(&floor_dir);
}
