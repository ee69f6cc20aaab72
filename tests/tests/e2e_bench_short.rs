//! Issue 10's end-to-end benchmark in its short mode, as CI runs it: it must finish, and
//! every record written (mixed servers, rotations with gzip, an OOM crash and restart,
//! tracebacks, probes) must be indexed exactly as often as it was written. Its speed
//! figures are printed, never asserted (the machine is shared and noisy).

use tests::bench::{BenchOptions, run};

#[test]
fn the_short_benchmark_indexes_every_record_it_writes_and_reports_each_figure() {
    let report = run(&BenchOptions::short(tests::binary()));
    println!("{}", report.table());
    println!("{}", report.json());
    assert_eq!(
        report.records_indexed, report.records_expected,
        "every record once"
    );
    assert!(report.rotations > 0, "the logs rotated");
    assert!(
        report.lines_written > report.records_expected + 3,
        "tracebacks (several lines, one record) were written"
    );
    let step = &report.steps[0];
    assert!(step.freshness_ms.n > 0, "probes were found");
    assert!(step.search_ms.n > 0, "searches ran under load");
    assert!(report.peak_rss_mib >= report.peak_anon_mib && report.peak_anon_mib > 0.0);
    assert!(report.index_bytes_per_raw_byte > 0.0);
    assert!(step.written_lines_per_s > 0.0 && step.cpu_s_per_gb > 0.0);
}
