//! The book's charts are the committed run drawn by the current chart code:
//! both editions' SVGs are redrawn from `results/latest.json` into a
//! temporary directory and compared byte for byte with the committed ones,
//! so a chart that is missing, hand-edited, drawn from other numbers or left
//! behind by a change to `chart.rs` fails here.

use std::path::Path;

use mprpc_bench::BoxError;
use mprpc_bench::chart::{self, Lang};
use mprpc_bench::report::Report;

#[test]
fn committed_charts_are_the_committed_run_redrawn() -> Result<(), BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(root.join("results/latest.json"))?;
    let report: Report = serde_json::from_str(&json)?;
    let committed = root.join("../../book/src/images/benchmark.svg");
    let dir = tempfile::tempdir()?;
    let fresh = dir.path().join("benchmark.svg");
    chart::draw_all(&report, &fresh)?;
    for lang in Lang::ALL {
        let want = std::fs::read(chart::translated_path(&fresh, lang))?;
        let path = chart::translated_path(&committed, lang);
        let have = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        assert!(
            have == want,
            "{} is stale: redraw it with `cargo run --release -p mprpc-bench --bin bench -- \
             --chart-from final/bench/results/latest.json`",
            path.display()
        );
    }
    // The translation is one: its labels are not the English ones.
    let zh = std::fs::read_to_string(chart::translated_path(&committed, Lang::ZhCn))?;
    assert!(zh.contains("吞吐量") && !zh.contains("Throughput"), "{zh}");
    Ok(())
}
