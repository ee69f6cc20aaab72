//! `e2e-bench`: the end-to-end benchmark of the local pipeline (see `tests::bench`).
//!
//! ```text
//! cargo build --release --bin infersight
//! cargo run --release -p tests --bin e2e-bench -- [--short] [--rate N]... [--step-s S]
//!     [--pods N] [--ramp-from N] [--rotate-mib M] [--binary PATH] [--json FILE]
//! ```
//! Without `--rate`, the rate ramps up by half each step until the pipeline falls behind,
//! tries once between the best rate that kept up and the first that did not,
//! then one more step runs at half the highest sustained rate (freshness under load).
//! Prints the table on stdout and, with `--json`, writes the figures as JSON.

use std::path::PathBuf;
use std::time::Duration;
use tests::bench::{BenchOptions, run};

fn main() {
    let mut options = BenchOptions {
        binary: PathBuf::from("target/release/infersight"),
        pods: 20,
        rates: Vec::new(),
        ramp_from: 20_000,
        step: Duration::from_secs(60),
        rotate_bytes: 10 << 20,
    };
    let mut json_out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    let number = |name: &str, v: Option<String>| -> u64 {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("e2e-bench: {name} takes a whole number");
            std::process::exit(2)
        })
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--short" => {
                let binary = options.binary.clone();
                options = BenchOptions::short(binary);
            }
            "--rate" => options.rates.push(number("--rate", args.next())),
            "--step-s" => options.step = Duration::from_secs(number("--step-s", args.next())),
            "--pods" => options.pods = number("--pods", args.next()) as usize,
            "--ramp-from" => options.ramp_from = number("--ramp-from", args.next()),
            "--rotate-mib" => options.rotate_bytes = number("--rotate-mib", args.next()) << 20,
            "--binary" => {
                options.binary = args.next().map(PathBuf::from).unwrap_or_else(|| {
                    eprintln!("e2e-bench: --binary takes a path");
                    std::process::exit(2)
                })
            }
            "--json" => json_out = args.next().map(PathBuf::from),
            "--dump-pool" => {
                for (server, lines) in tests::bench::line_pool().iter().enumerate() {
                    for line in lines {
                        println!("{server}\t{line}");
                    }
                }
                return;
            }
            "-h" | "--help" => {
                println!(
                    "e2e-bench [--short] [--rate N]... [--step-s S] [--pods N] [--ramp-from N] [--rotate-mib M] [--binary PATH] [--json FILE]"
                );
                return;
            }
            other => {
                eprintln!("e2e-bench: unknown argument `{other}` (see --help)");
                std::process::exit(2)
            }
        }
    }
    if !options.binary.is_file() {
        eprintln!(
            "e2e-bench: {} is missing: run `cargo build --release --bin infersight` first, or pass --binary",
            options.binary.display()
        );
        std::process::exit(2);
    }
    let report = run(&options);
    print!("{}", report.table());
    let json = report.json();
    println!("{json}");
    if let Some(path) = json_out
        && let Err(e) = std::fs::write(&path, format!("{json:#}\n"))
    {
        eprintln!("e2e-bench: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    if report.records_indexed != report.records_expected {
        eprintln!(
            "e2e-bench: {} records indexed, {} expected",
            report.records_indexed, report.records_expected
        );
        std::process::exit(1);
    }
}
