//! Prometheus' text format, the pieces both sides' metrics write with: the
//! latency histogram, `# HELP`/`# TYPE` headers, label values. Below
//! `metrics` (the provider's, and the admin endpoint) and `client_metrics`
//! (the caller's), so that the endpoint can serve both and neither imports
//! the other's insides.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ErrorCode;

/// Upper bounds of the latency histogram's buckets, in seconds (the last
/// bucket, `+Inf`, is implicit): 50 µs to 10 s, roughly ×2.5 apart.
pub(crate) const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0,
];

/// A latency histogram over [`BUCKETS`], shared by the provider's and the
/// caller's metrics.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Counts, one per bucket of [`BUCKETS`] plus `+Inf` (not cumulative;
    /// summed when rendered).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of latencies, in nanoseconds.
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Counts one latency.
    pub(crate) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of metric `name`
    /// with labels `l`.
    pub(crate) fn render(&self, out: &mut String, name: &str, l: &str) {
        let mut cumulative = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{l},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{l}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{l}}} {cumulative}");
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A code as a label value: "deadline_exceeded".
pub(crate) fn code_label(code: ErrorCode) -> String {
    code.as_str().replace(' ', "_")
}

/// Escapes a label value (service names are protobuf identifiers, but the
/// format requires it of any value).
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
