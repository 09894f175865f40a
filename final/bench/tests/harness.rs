//! Proves the harness end to end in a few seconds: the driver starts a real
//! server process and real load-generator processes (the `bench` binary
//! cargo built for this test), for the floor variant only, in quick mode,
//! and writes the JSON, markdown and SVG into a temporary directory.

use std::path::PathBuf;

use mprpc_bench::BoxError;
use mprpc_bench::driver::{self, Options};
use mprpc_bench::report::Report;
use mprpc_bench::variant::Variant;

#[test]
fn quick_floor_run_writes_a_complete_report() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let mut opts = Options::new(PathBuf::from(env!("CARGO_BIN_EXE_bench")), true);
    opts.variants = vec![Variant::Floor];
    opts.verbose = false;
    opts.results_dir = Some(dir.path().to_path_buf());
    opts.svg = Some(dir.path().join("chart.svg"));

    let report = driver::run(&opts)?;

    assert!(
        report.failures.is_empty(),
        "failed runs: {:?}",
        report.failures
    );
    assert_eq!(report.summary.len(), 3, "one cell per concurrency");
    for cell in &report.summary {
        assert_eq!(cell.variant, Variant::Floor);
        assert_eq!(cell.errors, 0);
        assert!(cell.calls_per_sec.median > 0.0);
        assert!(cell.p50_us.median > 0.0 && cell.p50_us.median <= cell.p99_us.median);
        let cpu = cell.cpu_us_per_call.ok_or("no CPU per call measured")?;
        assert!(cpu.median > 0.0, "CPU per call {cpu:?}");
    }
    assert!(report.machine.nproc >= 1);

    let json: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("latest.json"))?)?;
    assert_eq!(json.samples.len(), 3);
    let markdown = std::fs::read_to_string(dir.path().join("latest.md"))?;
    assert!(markdown.contains("| floor | 128 |"), "{markdown}");
    let svg = std::fs::read_to_string(dir.path().join("chart.svg"))?;
    assert!(svg.starts_with("<svg") && svg.contains("floor"));
    Ok(())
}
