//! The report: raw samples, per-cell medians with min–max, ratios, the
//! machine, and its rendering as markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::load::LoadResult;
use crate::variant::Variant;

/// Where and with what the numbers were taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Compiler that built the benchmark.
    pub rustc: String,
    /// Kernel release.
    pub kernel: String,
    /// 1-minute load average when the run started (other processes' load).
    pub loadavg_start: Option<f64>,
    /// 1-minute load average when the run ended.
    pub loadavg_end: Option<f64>,
}

impl Machine {
    /// Reads what can be read now; the end-of-run load average is filled in later.
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name")
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            rustc: env!("BENCH_RUSTC_VERSION").to_owned(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            loadavg_start: loadavg(),
            loadavg_end: None,
        }
    }
}

/// The 1-minute load average, if the kernel tells.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Rounds over all cells.
    pub rounds: usize,
    /// Warm-up per run, seconds.
    pub warmup_s: f64,
    /// Measured window per run, seconds.
    pub window_s: f64,
    /// In-flight call counts measured.
    pub concurrencies: Vec<usize>,
    /// Variants measured, in report order.
    pub variants: Vec<Variant>,
    /// Whether `--quick` was given.
    pub quick: bool,
}

/// One load run of one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Round number, from 1.
    pub round: usize,
    /// What the load generator measured.
    pub result: LoadResult,
}

/// A run that produced no numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// Round number, from 1.
    pub round: usize,
    /// Variant.
    pub variant: Variant,
    /// In-flight calls.
    pub concurrency: usize,
    /// Why.
    pub error: String,
}

/// Median and spread of one metric over the rounds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    /// Median over rounds.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Stat {
    /// Median, min and max of `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// One cell of the table: a variant at one concurrency, over all rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Variant.
    pub variant: Variant,
    /// In-flight calls.
    pub concurrency: usize,
    /// Rounds that produced numbers.
    pub rounds: usize,
    /// Throughput.
    pub calls_per_sec: Stat,
    /// Median latency, µs.
    pub p50_us: Stat,
    /// p99 latency, µs.
    pub p99_us: Stat,
    /// p99.9 latency, µs.
    pub p999_us: Stat,
    /// CPU (user + sys, server and load generator together) per call, µs;
    /// `None` when no round could read it.
    #[serde(default)]
    pub cpu_us_per_call: Option<Stat>,
    /// Failed calls, summed over rounds.
    pub errors: u64,
}

/// Throughput ratios at one concurrency (ratios of medians; `None` when a
/// side is missing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratios {
    /// In-flight calls.
    pub concurrency: usize,
    /// final ÷ tonic.
    pub final_over_tonic: Option<f64>,
    /// final ÷ tarpc.
    pub final_over_tarpc: Option<f64>,
    /// final ÷ floor.
    pub final_over_floor: Option<f64>,
    /// step ÷ final.
    pub step_over_final: Option<f64>,
    /// final's p99 latency ÷ the floor's (medians; lower is better).
    #[serde(default)]
    pub final_p99_over_floor: Option<f64>,
    /// final's CPU µs per call ÷ the floor's (medians; lower is better).
    #[serde(default)]
    pub final_cpu_over_floor: Option<f64>,
}

/// Everything one run of the driver produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// When the run finished (UTC).
    pub finished_at: String,
    /// The machine.
    pub machine: Machine,
    /// The configuration.
    pub settings: Settings,
    /// What each variant is.
    pub descriptions: Vec<(Variant, String)>,
    /// Cells, in table order.
    pub summary: Vec<Summary>,
    /// Ratios per concurrency.
    pub ratios: Vec<Ratios>,
    /// Runs that failed.
    pub failures: Vec<Failure>,
    /// Caveats that apply to every number.
    pub notes: Vec<String>,
    /// Every run, as measured.
    pub samples: Vec<Sample>,
    /// How cost grows with connections (absent in reports from before it).
    #[serde(default)]
    pub scale: Option<crate::scale::Scale>,
    /// The streaming section (absent in reports from before it).
    #[serde(default)]
    pub streams: Option<crate::stream::Streams>,
}

/// Builds the cells and ratios from raw samples.
pub fn summarize(settings: &Settings, samples: &[Sample]) -> (Vec<Summary>, Vec<Ratios>) {
    let mut summary = Vec::new();
    for &concurrency in &settings.concurrencies {
        for &variant in &settings.variants {
            let cell: Vec<&LoadResult> = samples
                .iter()
                .map(|s| &s.result)
                .filter(|r| r.variant == variant && r.concurrency == concurrency)
                .collect();
            let pick = |f: fn(&LoadResult) -> f64| {
                Stat::of(&cell.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            if let (Some(calls_per_sec), Some(p50_us), Some(p99_us), Some(p999_us)) = (
                pick(|r| r.calls_per_sec),
                pick(|r| r.p50_us),
                pick(|r| r.p99_us),
                pick(|r| r.p999_us),
            ) {
                summary.push(Summary {
                    variant,
                    concurrency,
                    rounds: cell.len(),
                    calls_per_sec,
                    p50_us,
                    p99_us,
                    p999_us,
                    cpu_us_per_call: Stat::of(
                        &cell
                            .iter()
                            .filter_map(|r| r.cpu_us_per_call)
                            .collect::<Vec<_>>(),
                    ),
                    errors: cell.iter().map(|r| r.errors).sum(),
                });
            }
        }
    }
    let cell = |variant: Variant, concurrency: usize| {
        summary
            .iter()
            .find(|s| s.variant == variant && s.concurrency == concurrency)
    };
    let median = |variant: Variant, concurrency: usize| {
        cell(variant, concurrency).map(|s| s.calls_per_sec.median)
    };
    let p99 =
        |variant: Variant, concurrency: usize| cell(variant, concurrency).map(|s| s.p99_us.median);
    let cpu = |variant: Variant, concurrency: usize| {
        cell(variant, concurrency)
            .and_then(|s| s.cpu_us_per_call)
            .map(|s| s.median)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let ratios = settings
        .concurrencies
        .iter()
        .map(|&c| {
            let f = median(Variant::Final, c);
            Ratios {
                concurrency: c,
                final_over_tonic: ratio(f, median(Variant::Tonic, c)),
                final_over_tarpc: ratio(f, median(Variant::Tarpc, c)),
                final_over_floor: ratio(f, median(Variant::Floor, c)),
                step_over_final: ratio(median(Variant::Step, c), f),
                final_p99_over_floor: ratio(p99(Variant::Final, c), p99(Variant::Floor, c)),
                final_cpu_over_floor: ratio(cpu(Variant::Final, c), cpu(Variant::Floor, c)),
            }
        })
        .collect();
    (summary, ratios)
}

/// `1234567.8` → `1,234,568`.
pub(crate) fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Latency in µs with sensible precision.
fn micros(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// CPU per call in µs: two decimals, it is a small number.
fn cpu_micros(x: f64) -> String {
    format!("{x:.2}")
}

/// `median (min–max)`, formatted with `f`.
fn spread(stat: &Stat, f: fn(f64) -> String) -> String {
    format!("{} ({}–{})", f(stat.median), f(stat.min), f(stat.max))
}

/// A ratio cell.
fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}×"))
}

impl Report {
    /// The report as markdown: conditions, the table, the ratios, failures.
    pub fn to_markdown(&self) -> String {
        let m = &self.machine;
        let s = &self.settings;
        let load = |l: Option<f64>| l.map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Measured {} on {} logical CPUs ({}), Linux {}, {}.",
            self.finished_at, m.nproc, m.cpu_model, m.kernel, m.rustc
        );
        let _ = writeln!(
            out,
            "{} round(s); per run {:.1} s warm-up then a {:.1} s window; variants interleaved (order rotated each round){}. \
             Server and load generator are separate processes sharing the same {} cores; nothing is pinned. \
             1-minute load average {} at start, {} at end (other work on the machine shows up here).",
            s.rounds,
            s.warmup_s,
            s.window_s,
            if s.quick {
                "; `--quick`, so treat as a smoke test"
            } else {
                ""
            },
            m.nproc,
            load(m.loadavg_start),
            load(m.loadavg_end),
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| variant | in flight | calls/s, median (min–max) | p50 µs | p99 µs | p99.9 µs | CPU µs/call | errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for c in &self.summary {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                c.variant,
                c.concurrency,
                spread(&c.calls_per_sec, thousands),
                spread(&c.p50_us, micros),
                spread(&c.p99_us, micros),
                spread(&c.p999_us, micros),
                c.cpu_us_per_call
                    .as_ref()
                    .map_or_else(|| "n/a".to_owned(), |s| spread(s, cpu_micros)),
                c.errors
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Ratios of medians (throughput: higher is better for `final`; p99 and CPU per call: lower is better):"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| in flight | final/tonic | final/tarpc | final/floor | step/final | p99 final/floor | CPU/call final/floor |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.ratios {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.concurrency,
                times(r.final_over_tonic),
                times(r.final_over_tarpc),
                times(r.final_over_floor),
                times(r.step_over_final),
                times(r.final_p99_over_floor),
                times(r.final_cpu_over_floor)
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Variants:");
        let _ = writeln!(out);
        for (v, d) in &self.descriptions {
            let _ = writeln!(out, "- `{v}`: {d}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "- Note: {note}");
        }
        if let Some(scale) = &self.scale {
            scale_markdown(&mut out, scale);
        }
        if let Some(streams) = &self.streams {
            crate::stream::markdown(&mut out, streams);
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "Failed runs:");
            let _ = writeln!(out);
            for f in &self.failures {
                let _ = writeln!(
                    out,
                    "- round {}, `{}`, {} in flight: {}",
                    f.round, f.variant, f.concurrency, f.error
                );
            }
        }
        out
    }
}

/// The scale section of the markdown report: one run each, on a server
/// started for it.
fn scale_markdown(out: &mut String, scale: &crate::scale::Scale) {
    if !scale.idle.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Memory per idle connection (server VmRSS growth / connections, one run each, fresh server):"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| variant | idle connections | VmRSS before → after, MiB | bytes per connection |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for r in &scale.idle {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} → {:.1} | {} |",
                r.variant,
                thousands(r.connections as f64),
                r.rss_before_kib as f64 / 1024.0,
                r.rss_after_kib as f64 / 1024.0,
                thousands(r.bytes_per_connection)
            );
        }
    }
    if !scale.load.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Many connections, one call in flight on each (one run each, fresh server):"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| variant | connections | calls/s | p50 µs | p99 µs | CPU µs/call | errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for r in &scale.load {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.variant,
                thousands(r.connections as f64),
                thousands(r.calls_per_sec),
                micros(r.p50_us),
                micros(r.p99_us),
                r.cpu_us_per_call
                    .map_or_else(|| "n/a".to_owned(), cpu_micros),
                r.errors
            );
        }
    }
    for f in &scale.failures {
        let _ = writeln!(out, "- Scale run failed: {f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_median_min_max() {
        assert_eq!(
            Stat::of(&[3.0, 1.0, 2.0]),
            Some(Stat {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            Stat::of(&[4.0, 1.0]),
            Some(Stat {
                median: 2.5,
                min: 1.0,
                max: 4.0
            })
        );
        assert_eq!(Stat::of(&[]), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }
}
