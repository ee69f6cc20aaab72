//! `infersight demo`: a self-contained run on a simulated inference cluster.
//!
//! A temporary `/var/log/pods`-shaped tree is filled, live, with CRI lines from a few
//! simulated pods ([`simulator`]), and the `local` preset runs on it. Ctrl-C stops both and
//! removes the tree unless `--keep` is given.

mod servers;
mod simulator;

use crate::commands::{Preset, load_config, run_pipeline};
use crate::config::Overrides;
use anyhow::Context;
use clap::Args;
use collector::Shutdown;
use model::Timestamp;
use simulator::ClusterSimulator;
use std::time::Duration;

/// How often the simulated pods write.
const TICK: Duration = Duration::from_millis(500);

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
