//! Proves the harness end to end in a few seconds: the driver starts a real
//! server process and real load-generator processes (the `bench` binary
//! cargo built for this test), for the floor variant only, in quick mode,
//! and writes the JSON, markdown and SVG into a temporary directory; its
//! scale section (idle connections, many connections) and its streaming
//! section included.

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
    // The scale section: quick mode's 1,000 idle connections and 100
    // connections × 1 call in flight, in the JSON and in the table.
    let scale = json.scale.ok_or("no scale section in the JSON")?;
    assert!(scale.failures.is_empty(), "{:?}", scale.failures);
    let [idle] = scale.idle.as_slice() else {
        panic!("one idle run expected: {:?}", scale.idle);
    };
    assert_eq!((idle.variant, idle.connections), (Variant::Floor, 1_000));
    // Each connection costs the floor's server at least its task and the
    // first page of a buffer: the growth cannot be zero.
    assert!(idle.rss_after_kib > idle.rss_before_kib, "{idle:?}");
    assert!(idle.bytes_per_connection > 0.0, "{idle:?}");
    let [load] = scale.load.as_slice() else {
        panic!("one many-connection run expected: {:?}", scale.load);
    };
    assert_eq!(
        (load.variant, load.connections, load.concurrency),
        (Variant::Floor, 100, 100)
    );
    assert!(load.calls > 0 && load.errors == 0, "{load:?}");
    assert!(markdown.contains("| floor | 1,000 |"), "{markdown}");
    assert!(markdown.contains("| floor | 100 |"), "{markdown}");
    // The streaming section: the floor's stream at both sizes, in order
    // (a run that saw a message out of order fails), in the JSON and the table.
    let streams = json.streams.ok_or("no streaming section in the JSON")?;
    assert!(streams.failures.is_empty(), "{:?}", streams.failures);
    let sizes: Vec<(Variant, usize)> = streams
        .results
        .iter()
        .map(|r| (r.variant, r.message_bytes))
        .collect();
    assert_eq!(sizes, [(Variant::Floor, 64), (Variant::Floor, 1024)]);
    for r in &streams.results {
        assert!(r.messages > 0 && r.messages_per_sec > 0.0, "{r:?}");
        assert!(r.cpu_ns_per_message.is_some_and(|c| c > 0.0), "{r:?}");
    }
    assert!(markdown.contains("| floor | 64 |"), "{markdown}");
    assert!(markdown.contains("| floor | 1024 |"), "{markdown}");
    let svg = std::fs::read_to_string(dir.path().join("chart.svg"))?;
    assert!(svg.starts_with("<svg") && svg.contains("floor"));
    Ok(())
}
