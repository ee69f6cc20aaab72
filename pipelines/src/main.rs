//! `infersight`: the command line. Parses arguments, sets up logging, and turns every error
//! into one clear message and a non-zero exit: never a panic or a backtrace.

mod commands;
mod config;
mod demo;
mod self_metrics;
mod topology;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// LLM inference observability for Kubernetes: logs, events and GPU metrics of vLLM, TGI,
/// SGLang and friends, parsed, indexed and searchable.
#[derive(Parser)]
#[command(name = "infersight", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline (the `local` preset unless --config or --preset says otherwise).
    Run(Box<commands::RunArgs>),
    /// Simulate a small inference cluster writing logs, and run the `local` preset on it.
    Demo(demo::DemoArgs),
    /// Parse log lines from stdin and print one JSON record per line.
    Parse(commands::ParseArgs),
    /// Search an index directory offline.
    Search(commands::SearchArgs),
    /// Sample the node's GPUs through NVML alone and print each snapshot as JSON.
    GpuCheck(commands::GpuCheckArgs),
    /// Check a config file and report every problem.
    Validate {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
}

/// mimalloc, not glibc's malloc: `malloc`/`free`/`memmove` were ~18 % of the pipeline's CPU
/// at saturation, and with mimalloc the local pipeline sustains 101k instead of 84k lines/s
/// (`e2e-bench -- --step-s 30`). Capping glibc at one arena per core instead held the heap
/// at 126 MiB (glibc's default: ~280 MiB after four minutes at 42k lines/s, mimalloc: 338)
/// but cost a third more CPU per GB (56k lines/s sustained).
///
/// Built without transparent huge pages (`no_thp`: mimalloc's `allow_thp` off, which also
/// turns THP off for the process with `PR_SET_THP_DISABLE`). With them, memory mimalloc
/// handed back came back as fresh 2 MiB pages the kernel zeroes whole: `clear_page_erms`
/// was a fifth of the agent's samples in the Kafka bench. Without: 33–37k → 41–47k
/// records/s through Kafka, a fifth less CPU in agent and aggregator, and 46–52k →
/// 55–57k lines/s locally (`scripts/bench-kafka.sh`, `scripts/bench-ingest.sh`, builds
/// alternated). `MIMALLOC_ALLOW_THP=1` turns them back on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run(args) => commands::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Parse(args) => commands::parse(args),
        Command::Search(args) => commands::search(args),
        Command::Validate { config } => commands::validate(&config),
        Command::GpuCheck(args) => commands::gpu_check(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infersight: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Our own logs go to stderr through `tracing`; `RUST_LOG` tunes them (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .init();
}
