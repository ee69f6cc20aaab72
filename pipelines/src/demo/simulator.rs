//! A simulated cluster: pods whose servers write CRI lines into the kubelet layout.
//!
//! Each container of a pod is a [`SimulatedServer`] that decides what it prints per tick;
//! the simulator frames the lines as CRI and appends them to
//! `<root>/<ns>_<pod>_<uid>/<container>/<restart>.log`. Richer behaviour (crashes and
//! restarts, rotation, Kubernetes events, GPU load) plugs in as more servers or pod events.

use super::servers::{Calls, IstioProxy, LlamaCpp, SimulatedServer, Tgi, Vllm, VllmMetrics};
use model::{Stream, Timestamp};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Pods of the standard demo.
pub const POD_COUNT: usize = 3;
/// Its namespace.
pub const NAMESPACE: &str = "llm-serving";
/// Its vLLM pod, whose `/metrics` the demo serves.
pub const VLLM_POD: &str = "vllm-llama3-8b-0";
/// Their containers: the vLLM pod has an Istio sidecar.
const CONTAINER_COUNT: usize = 4;

/// A tiny deterministic generator (xorshift64*): the demo needs variety, not cryptography,
/// and a seed makes a run reproducible.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A whole number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A float in `lo..hi`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.float(0.0, 1.0) < p
    }

    /// `n` random lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit((self.next_u64() % 16) as u32, 16).unwrap_or('0'))
            .collect()
    }
}

struct SimulatedPod {
    file: File,
    server: Box<dyn SimulatedServer>,
}

/// The simulated cluster.
pub struct ClusterSimulator {
    pods: Vec<SimulatedPod>,
    vllm_metrics: VllmMetrics,
    rng: Rng,
    lines: Vec<(Stream, String)>,
}

impl ClusterSimulator {
    /// The standard demo: a vLLM pod (with an Istio sidecar), a TGI and a llama.cpp pod in
    /// namespace `llm-serving`.
    pub fn standard(root: &Path, seed: u64) -> io::Result<Self> {
        let mut rng = Rng::new(seed);
        let calls = Calls::default();
        let vllm_metrics = VllmMetrics::default();
        let servers: Vec<(&str, Vec<Box<dyn SimulatedServer>>)> = vec![
            (
                VLLM_POD,
                vec![
                    Box::new(Vllm::new(calls.clone(), vllm_metrics.clone())),
                    Box::new(IstioProxy::new(calls)),
                ],
            ),
            ("tgi-mistral-7b-0", vec![Box::<Tgi>::default()]),
            ("llamacpp-phi3-0", vec![Box::new(LlamaCpp::default())]),
        ];
        let mut pods = Vec::with_capacity(CONTAINER_COUNT);
        for (name, containers) in servers {
            let uid = format!(
                "{}-{}-{}-{}-{}",
                rng.hex(8),
                rng.hex(4),
                rng.hex(4),
                rng.hex(4),
                rng.hex(12)
            );
            for server in containers {
                let dir: PathBuf = root
                    .join(format!("{NAMESPACE}_{name}_{uid}"))
                    .join(server.container());
                std::fs::create_dir_all(&dir)?;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("0.log"))?;
                pods.push(SimulatedPod { file, server });
            }
        }
        Ok(ClusterSimulator {
            pods,
            vllm_metrics,
            rng,
            lines: Vec::new(),
        })
    }

    /// What the vLLM pod's `/metrics` shows.
    pub fn vllm_metrics(&self) -> VllmMetrics {
        self.vllm_metrics.clone()
    }

    /// One tick: every pod writes what its server prints at `now`, framed as CRI.
    pub fn step(&mut self, now: Timestamp) -> io::Result<()> {
        for pod in &mut self.pods {
            self.lines.clear();
            pod.server.tick(now, &mut self.rng, &mut self.lines);
            let mut buf = String::new();
            for (stream, line) in &self.lines {
                // containerd's framing: timestamp, stream, F (a whole line), content.
                buf.push_str(&format!("{now} {} F {line}\n", stream.as_str()));
            }
            pod.file.write_all(buf.as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector::files::{PodLogFile, decode_cri, discover};

    #[test]
    fn writes_valid_cri_lines_for_each_server_in_the_kubelet_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut sim = ClusterSimulator::standard(dir.path(), 7).unwrap();
        let start = Timestamp::parse_rfc3339("2026-11-27T20:00:00Z").unwrap();
        // 80 ticks: TGI takes 0 to 2 calls a tick, a line each; the check below asks half.
        for i in 0..80 {
            sim.step(start.saturating_add_nanos(i * 500_000_000))
                .unwrap();
        }
        let files = discover(dir.path()).unwrap();
        let containers: Vec<&str> = files
            .iter()
            .map(|(_, f): &(_, PodLogFile)| f.container.as_str())
            .collect();
        assert_eq!(containers.len(), CONTAINER_COUNT);
        for (path, meta) in &files {
            assert_eq!(meta.namespace, "llm-serving");
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                text.lines().count() >= 40,
                "{} wrote too little",
                meta.pod_name
            );
            for line in text.lines() {
                assert!(decode_cri(line.as_bytes()).is_ok(), "not CRI: {line}");
            }
        }
        let all: String = files
            .iter()
            .map(|(p, _)| std::fs::read_to_string(p).unwrap())
            .collect();
        for needle in [
            "Engine 000: Avg prompt throughput",
            "Received request chatcmpl-",
            "total_time=",
            "print_timing",
            "\"POST /v1/chat/completions HTTP/1.1\" 200 - via_upstream",
        ] {
            assert!(all.contains(needle), "no {needle:?} in the simulated logs");
        }
        // Its /metrics counts a first token for each request vLLM received.
        let exposition = sim.vllm_metrics().lock().unwrap().exposition();
        let count = exposition
            .lines()
            .find_map(|l| l.strip_prefix("vllm:time_to_first_token_seconds_count{"))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse::<f64>().ok());
        let received = all.matches("Received request chatcmpl-").count();
        assert_eq!(count, Some(received as f64), "{exposition}");
        assert!(exposition.contains("le=\"+Inf\""), "{exposition}");
    }
}
