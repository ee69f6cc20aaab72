//! Peak memory of the files source tailing many files (issue 3: 1,000 files, ≤ 100 MiB).
//!
//! `cargo run --release -p collector --example tail_many_files [FILES] [LINES_PER_FILE]`
//! writes FILES container logs in the kubelet layout, tails them all to the end (records are
//! counted and dropped, as a sink would after acknowledging), then appends to every file and
//! tails again; prints lines, MB/s and the process's peak RSS (VmHWM).

use collector::files::{FileSource, FileSourceConfig};
use model::CheckpointSet;
use std::io::Write;
use std::time::Instant;
use tokio::sync::mpsc;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_file: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let mut bytes = 0usize;
    let mut write_all = |round: usize| -> std::io::Result<()> {
        for f in 0..files {
            let path = dir.path().join(format!("ns_pod-{f}_uid-{f}/server/0.log"));
            std::fs::create_dir_all(path.parent().expect("parent"))?;
            let mut out = std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?,
            );
            for i in 0..per_file {
                let line = format!(
                    "2026-11-27T20:41:07.{:09}Z stdout F (APIServer pid=1) INFO 11-27 20:41:07 [logger.py:49] Received request chatcmpl-{f:08x}{i:08x}: round {round}\n",
                    round * per_file + i
                );
                bytes += line.len();
                out.write_all(line.as_bytes())?;
            }
        }
        Ok(())
    };
    write_all(0)?;
    let mut source = FileSource::new(
        "bench",
        FileSourceConfig::new(dir.path().into()),
        CheckpointSet::new(),
    )
    .map_err(std::io::Error::other)?;
    // A consumer thread plays the sink: it counts, acknowledges and drops, so the source's
    // bounded channel never stalls it.
    let (tx, mut rx) = mpsc::channel::<model::Batch>(64);
    let consumer = std::thread::spawn(move || {
        let mut records = 0usize;
        while let Some(batch) = rx.blocking_recv() {
            records += batch.records.len();
            batch.finalizers.deliver();
        }
        records
    });
    let drain = |source: &mut FileSource| while source.poll(&tx).unwrap_or(false) {};
    let start = Instant::now();
    drain(&mut source);
    write_all(1)?;
    drain(&mut source);
    drop(tx);
    let records = consumer.join().unwrap_or(0);
    // With multi-line grouping on (the default), each file's last line waits in an open
    // group for the line or timeout that closes it: read, held, not yet sent.
    let lines = source
        .metrics()
        .lines_read
        .load(std::sync::atomic::Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    println!(
        "{files} files, {lines} lines ({records} records sent, the rest held in open groups), {:.1} MB in {secs:.2} s ({:.0} MB/s, {:.0} lines/s); peak RSS {}",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        lines as f64 / secs,
        hwm.trim_start_matches("VmHWM:").trim()
    );
    Ok(())
}
