//! `infersight demo`: a self-contained run on a simulated inference cluster.
//!
//! A temporary `/var/log/pods`-shaped tree is filled, live, with CRI lines from a few
//! simulated pods ([`simulator`]), the vLLM pod's `/metrics` is served on loopback, and
//! the `local` preset runs on both. Ctrl-C stops them and removes the tree unless `--keep`
//! is given.

mod servers;
mod simulator;

use crate::commands::{Preset, load_config, run_pipeline};
use crate::config::Overrides;
use anyhow::Context;
use clap::Args;
use collector::Shutdown;
use model::Timestamp;
use servers::VllmMetrics;
use simulator::ClusterSimulator;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How often the simulated pods write.
const TICK: Duration = Duration::from_millis(500);
/// How often the vLLM pod's `/metrics` is scraped (a real one's default is 5 s; the demo's
/// dashboard fills sooner).
const SCRAPE_INTERVAL_MS: u64 = 2000;

/// `infersight demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// API address, IP:PORT.
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: String,
    /// Keep the generated logs and index instead of deleting them at exit.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the demo until Ctrl-C.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("infersight-demo-")
        .tempdir()
        .context("cannot create the demo's temporary directory")?;
    let logs_dir = tmp.path().join("pods");
    let data_dir = tmp.path().join("data");
    let seed = Timestamp::now().unix_nanos() as u64;
    let mut cluster = ClusterSimulator::standard(&logs_dir, seed)
        .context("cannot create the simulated pod logs")?;
    cluster
        .step(Timestamp::now())
        .context("cannot write the simulated pod logs")?;

    let overrides = Overrides {
        logs_dir: Some(logs_dir.clone()),
        data_dir: Some(data_dir),
        listen: Some(args.listen.clone()),
        ..Overrides::default()
    };
    let mut config = load_config(None, Some(Preset::Local), overrides)?;
    // The cluster is simulated: a kubeconfig on this machine must not mix a real one in.
    config
        .sources
        .retain(|_, s| !matches!(s, crate::config::SourceConfig::Kube(_)));
    let shutdown = Shutdown::new();
    let metrics_url = serve_metrics(cluster.vllm_metrics(), shutdown.clone())?;
    if let Some(crate::config::SourceConfig::Scrape(scrape)) = config.sources.get_mut("metrics") {
        scrape.targets.push(crate::config::ScrapeTargetConfig::Pod {
            url: metrics_url,
            namespace: Some(simulator::NAMESPACE.into()),
            pod: Some(simulator::VLLM_POD.into()),
            container: Some("vllm".into()),
        });
        scrape.interval_ms = SCRAPE_INTERVAL_MS;
    }
    let writer = {
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("demo-cluster".into())
            .spawn(move || {
                while !shutdown.wait_timeout(TICK) {
                    if let Err(e) = cluster.step(Timestamp::now()) {
                        tracing::error!(error = %e, "the simulated cluster cannot write; stopping it");
                        return;
                    }
                }
            })
            .context("cannot start the simulated cluster")?
    };
    let result = run_pipeline(config, shutdown.clone(), |ready| {
        let base = ready
            .api_addr
            .map_or_else(|| args.listen.clone(), |a| a.to_string());
        println!(
            "infersight demo: simulating {} pods writing to {}",
            simulator::POD_COUNT,
            logs_dir.display()
        );
        println!("infersight demo: listening on http://{base}");
        println!("  the UI:              http://{base}/");
        println!("  LLM dashboard:       http://{base}/#/dashboard?range=15m");
        println!("  the CUDA OOM crash:  http://{base}/#/incidents");
        println!("  search everything:   http://{base}/api/v1/search?q=*&from=now-15m");
        println!("  vLLM engine stats:   http://{base}/api/v1/search?q=kv&kind=engine_stats");
        println!("  press Ctrl-C to stop");
    });
    shutdown.trigger();
    let _ = writer.join();
    if args.keep {
        let kept = tmp.keep();
        println!("infersight demo: kept {}", kept.display());
    }
    result
}

/// Serves `metrics` as the vLLM pod's `/metrics` on a loopback port until `shutdown`;
/// returns its URL.
fn serve_metrics(metrics: VllmMetrics, shutdown: Shutdown) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .context("cannot listen for the simulated vLLM's /metrics")?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    // Not blocking, so that the thread sees the shutdown between scrapes.
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("demo-metrics".into())
        .spawn(move || {
            while !shutdown.is_triggered() {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let body = match metrics.lock() {
                            Ok(m) => m.exposition(),
                            Err(poisoned) => poisoned.into_inner().exposition(),
                        };
                        if let Err(e) = answer(stream, &body) {
                            tracing::debug!(error = %e, "a scrape of the simulated vLLM failed");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        shutdown.wait_timeout(Duration::from_millis(50));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the simulated vLLM's /metrics stopped");
                        return;
                    }
                }
            }
        })
        .context("cannot start the simulated vLLM's /metrics")?;
    Ok(url)
}

/// Reads one HTTP request from `stream` and answers it with `body` as Prometheus text.
fn answer(mut stream: TcpStream, body: &str) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf)? {
            0 => break,
            n => request.extend_from_slice(&buf[..n]),
        }
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
