//! The record's JSON form as the Kafka sink writes it and the Kafka source reads it (issue
//! 9): records shaped like those the agent publishes for vLLM pods (an access line, a
//! received request with its sampling parameters, a finished request, an engine stats line
//! and the request record the lifecycle derives), 20 pods, each pod's records sharing one
//! resource as they do in the pipeline.
//!
//! `cargo bench -p model --bench record_json`; criterion prints records/s (elements), and
//! the bytes a record takes in each form are printed once. The binary form's group reads
//! and writes the same records, for comparison.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::{
    AttrValue, Attributes, BinaryMessage, Record, RecordId, RecordKind, ResourceJsons, Severity,
    SharedResources, Stream, Timestamp, names, read_binary,
};
use std::hint::black_box;
use std::sync::Arc;

fn resource(pod: usize) -> Arc<Attributes> {
    Arc::new(
        [
            (names::K8S_CONTAINER_NAME, AttrValue::from("vllm")),
            (names::K8S_CONTAINER_RESTART_COUNT, AttrValue::Int(0)),
            (names::K8S_NAMESPACE_NAME, AttrValue::from("llm-serving")),
            (names::K8S_POD_NAME, AttrValue::from(format!("vllm-{pod}"))),
            (names::K8S_POD_UID, AttrValue::from(format!("uid-{pod:04}"))),
        ]
        .into_iter()
        .collect(),
    )
}

fn records(n: usize) -> Vec<Record> {
    let resources: Vec<Arc<Attributes>> = (0..20).map(resource).collect();
    let start = Timestamp::parse_rfc3339("2026-12-04T20:54:42Z").expect("a timestamp");
    (0..n)
        .map(|i| {
            let ts = start.saturating_add_nanos(i as i64 * 997);
            let request = format!("chatcmpl-{:016x}", i / 5);
            let p = "(APIServer pid=1) INFO 11-27 20:41:07";
            let body = match i % 5 {
                0 => format!(
                    "{p} [loggers.py:271] Engine 000: Avg prompt throughput: 988.9 tokens/s, Avg generation throughput: 200.1 tokens/s, Running: 10 reqs, Waiting: 2 reqs, GPU KV cache usage: 96.4%, Prefix cache hit rate: 0.0% seq={i}"
                ),
                1 => format!(
                    "{p} [logger.py:49] Received request {request}: params: SamplingParams(n=1, temperature=0.7, top_p=0.95, max_tokens=512) seq={i}"
                ),
                2 => format!(
                    "(APIServer pid=1) INFO:     10.42.0.{}:31999 - \"POST /v1/chat/completions HTTP/1.1\" 200 OK seq={i}",
                    i % 250
                ),
                3 => format!("{p} [async_llm.py:271] Finished request {request}. seq={i}"),
                _ => format!("request {request} finished"),
            };
            let mut r = Record::log(
                RecordId::from_source(format!("pod-{}", i % 20).as_bytes(), i as u64),
                ts,
                ts.saturating_add_nanos(180_000_000),
                Arc::clone(&resources[i % 20]),
                body,
            );
            r.severity = Some(Severity::Info);
            r.stream = Some(Stream::Stdout);
            let a = &mut r.attributes;
            a.insert(names::LLM_SERVER, "vllm");
            match i % 5 {
                0 => {
                    r.kind = RecordKind::EngineStats;
                    a.insert(names::LLM_EVENT, "stats");
                    a.insert(names::LLM_RUNNING, 10i64);
                    a.insert(names::LLM_WAITING, 2i64);
                    a.insert_f64(names::LLM_KV_CACHE_PCT, 96.4);
                    a.insert_f64(names::LLM_PROMPT_THROUGHPUT_TPS, 988.9);
                    a.insert_f64(names::LLM_GEN_THROUGHPUT_TPS, 200.1);
                }
                1 => {
                    a.insert(names::LLM_EVENT, "request_received");
                    a.insert(names::LLM_REQUEST_ID, request);
                    a.insert(names::GEN_AI_REQUEST_MAX_TOKENS, 512i64);
                    a.insert_f64(names::GEN_AI_REQUEST_TEMPERATURE, 0.7);
                }
                2 => {
                    a.insert(names::LLM_EVENT, "access");
                    a.insert(names::HTTP_REQUEST_METHOD, "POST");
                    a.insert(names::HTTP_RESPONSE_STATUS_CODE, 200i64);
                    a.insert(names::URL_PATH, "/v1/chat/completions");
                    a.insert(names::CLIENT_ADDRESS, format!("10.42.0.{}", i % 250));
                }
                3 => {
                    a.insert(names::LLM_EVENT, "request_finished");
                    a.insert(names::LLM_REQUEST_ID, request);
                }
                _ => {
                    r.kind = RecordKind::Request;
                    r.stream = None;
                    a.insert(names::LLM_EVENT, "request_finished");
                    a.insert(names::LLM_REQUEST_ID, request);
                    a.insert(names::GEN_AI_REQUEST_MAX_TOKENS, 512i64);
                    a.insert_f64(names::LLM_E2E_MS, 1000.000603 + i as f64);
                }
            }
            if r.kind != RecordKind::Request {
                a.insert(names::LOG_PROCESS_TAG, "APIServer pid=1");
            }
            r
        })
        .collect()
}

fn json(c: &mut Criterion) {
    let records = records(50_000);
    let mut resources = ResourceJsons::default();
    let lines: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            r.write_json(&mut out, &mut resources);
            out
        })
        .collect();
    let bytes: usize = lines.iter().map(Vec::len).sum();
    println!(
        "{} records, {:.0} bytes of JSON each",
        records.len(),
        bytes as f64 / records.len() as f64
    );
    let mut g = c.benchmark_group("record_json");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("write", |b| {
        let mut out = Vec::with_capacity(bytes + records.len());
        b.iter(|| {
            out.clear();
            for r in &records {
                r.write_json(&mut out, &mut resources);
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    g.bench_function("read_sharing", |b| {
        let mut shared = SharedResources::default();
        b.iter(|| {
            for line in &lines {
                let text = std::str::from_utf8(line).expect("our own JSON");
                black_box(Record::from_json_sharing(text, &mut shared).ok());
            }
        })
    });
    g.finish();
}

/// The same records in the binary form, packed per pod into messages of up to 256 KiB as
/// the Kafka sink packs them.
fn binary(c: &mut Criterion) {
    const LIMIT: usize = 256 * 1024;
    let records = records(50_000);
    let pack = |records: &[Record]| {
        let mut open: Vec<BinaryMessage> = (0..20).map(|_| BinaryMessage::new()).collect();
        let mut done = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let m = &mut open[i % 20];
            if !m.push(r, LIMIT) {
                done.push(std::mem::take(m).into_bytes());
                m.push(r, LIMIT);
            }
        }
        done.extend(open.into_iter().map(BinaryMessage::into_bytes));
        done
    };
    let messages = pack(&records);
    let bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "{} records, {:.0} bytes of the binary form each",
        records.len(),
        bytes as f64 / records.len() as f64
    );
    let mut g = c.benchmark_group("record_binary");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("write", |b| b.iter(|| black_box(pack(&records).len())));
    g.bench_function("read_sharing", |b| {
        let mut shared = SharedResources::default();
        let mut out = Vec::with_capacity(records.len());
        b.iter(|| {
            out.clear();
            for m in &messages {
                read_binary(m, &mut shared, &mut out).expect("our own messages");
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = json, binary
}
criterion_main!(benches);
