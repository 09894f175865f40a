//! The SVG chart for the book: throughput and p99 latency per variant,
//! grouped by calls in flight, medians as bars and min–max as whiskers.
//!
//! plotters is built with only its SVG backend: text becomes `<text>`
//! elements that the browser lays out, and plotters estimates text sizes
//! itself, so no font files, font-kit or fontconfig are needed.
//!
//! The chart is drawn once per edition of the book from the same report:
//! English at `images/benchmark.svg`, Chinese at `images/zh-CN/benchmark.svg`
//! ([`translated_path`]); only the labels differ, never the numbers.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::BoxError;
use crate::report::{Report, Stat, Summary};
use crate::variant::Variant;

/// Fill colour of a variant's bars.
fn colour(variant: Variant) -> RGBColor {
    match variant {
        Variant::Final => RGBColor(0xd6, 0x27, 0x28),
        Variant::FinalTls => RGBColor(0xe3, 0x77, 0xc2),
        Variant::FinalMetrics => RGBColor(0xff, 0x7f, 0x0e),
        Variant::Tonic => RGBColor(0x1f, 0x77, 0xb4),
        Variant::Tarpc => RGBColor(0x2c, 0xa0, 0x2c),
        Variant::Step => RGBColor(0x7f, 0x7f, 0x7f),
        Variant::Floor => RGBColor(0x33, 0x33, 0x33),
        Variant::FloorCombine => RGBColor(0x44, 0x44, 0x44),
        Variant::FloorShared => RGBColor(0x55, 0x55, 0x55),
        Variant::FloorQueue => RGBColor(0x88, 0x88, 0x88),
        Variant::FloorLock => RGBColor(0xbb, 0xbb, 0xbb),
    }
}

/// The language of a chart's labels: one per edition of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lang {
    /// The English book (`book/src/images/`).
    En,
    /// The Chinese edition (`book/src/images/zh-CN/`).
    ZhCn,
}

impl Lang {
    /// Every edition, in the order the driver draws them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The edition's folder beside the English images (`None` for English),
    /// named as the book's languages are (`tools/i18n.sh`).
    pub fn folder(self) -> Option<&'static str> {
        match self {
            Lang::En => None,
            Lang::ZhCn => Some("zh-CN"),
        }
    }

    /// The chart's title.
    fn title(self, cores: usize) -> String {
        match self {
            Lang::En => format!(
                "UserServiceRpc.Login over loopback, {cores} cores shared by server and load generator"
            ),
            Lang::ZhCn => {
                format!("UserServiceRpc.Login，走回环地址，服务端与负载生成器共用 {cores} 个核")
            }
        }
    }

    /// A panel's caption.
    fn caption(self, metric: Metric) -> &'static str {
        match (self, metric) {
            (Lang::En, Metric::Throughput) => "Throughput, calls/s (bar: median, whisker: min–max)",
            (Lang::En, Metric::P99) => "p99 latency, µs, log scale (lower is better)",
            (Lang::ZhCn, Metric::Throughput) => "吞吐量，次调用/秒（柱：中位数，须线：最小–最大）",
            (Lang::ZhCn, Metric::P99) => "p99 延迟，µs，对数刻度（越低越好）",
        }
    }

    /// The label under a group of bars.
    fn in_flight(self, concurrency: usize) -> String {
        match self {
            Lang::En => format!("{concurrency} in flight"),
            Lang::ZhCn => format!("{concurrency} 个在途调用"),
        }
    }
}

/// Where the chart of `lang` goes, given the English chart's path: the
/// edition's folder beside it (`images/benchmark.svg` →
/// `images/zh-CN/benchmark.svg`), which is where the translated book's
/// image line points (`tools/i18n.sh update`).
pub fn translated_path(english: &Path, lang: Lang) -> PathBuf {
    match (lang.folder(), english.parent(), english.file_name()) {
        (Some(folder), Some(parent), Some(name)) => parent.join(folder).join(name),
        _ => english.to_path_buf(),
    }
}

/// Draws `report` once per language: English at `english`, the others at
/// [`translated_path`], creating their folders.
pub fn draw_all(report: &Report, english: &Path) -> Result<(), BoxError> {
    for lang in Lang::ALL {
        let path = translated_path(english, lang);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        draw_in(report, &path, lang)?;
    }
    Ok(())
}

/// Which metric a panel shows.
#[derive(Debug, Clone, Copy)]
enum Metric {
    /// Calls per second, linear axis.
    Throughput,
    /// p99 latency, logarithmic axis.
    P99,
}

impl Metric {
    /// The metric's statistic in a cell.
    fn stat(self, cell: &Summary) -> Stat {
        match self {
            Metric::Throughput => cell.calls_per_sec,
            Metric::P99 => cell.p99_us,
        }
    }
}

/// Draws `report` as an SVG file at `path`, with English labels.
pub fn draw(report: &Report, path: &Path) -> Result<(), BoxError> {
    draw_in(report, path, Lang::En)
}

/// Draws `report` as an SVG file at `path`, with labels in `lang`.
pub fn draw_in(report: &Report, path: &Path, lang: Lang) -> Result<(), BoxError> {
    let root = SVGBackend::new(path, (1000, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = lang.title(report.machine.nproc);
    let root = root.titled(&title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(500);
    panel(&left, report, Metric::Throughput, lang)?;
    panel(&right, report, Metric::P99, lang)?;
    root.present()?;
    Ok(())
}

/// One panel: bars grouped by concurrency, one bar per variant.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    metric: Metric,
    lang: Lang,
) -> Result<(), BoxError> {
    let concurrencies = &report.settings.concurrencies;
    let variants: Vec<Variant> = report
        .settings
        .variants
        .iter()
        .copied()
        .filter(|v| v.charted() && report.summary.iter().any(|s| s.variant == *v))
        .collect();
    let groups = concurrencies.len() as f64;
    let top = report
        .summary
        .iter()
        .filter(|s| s.variant.charted())
        .map(|s| metric.stat(s).max)
        .fold(0.0, f64::max);
    let bottom = report
        .summary
        .iter()
        .filter(|s| s.variant.charted())
        .map(|s| metric.stat(s).min)
        .fold(f64::INFINITY, f64::min);
    let label_of = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < concurrencies.len() {
            lang.in_flight(concurrencies[i as usize])
        } else {
            String::new()
        }
    };

    match metric {
        Metric::Throughput => {
            let mut chart = ChartBuilder::on(area)
                .caption(lang.caption(metric), ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(56)
                .build_cartesian_2d(-0.5f64..(groups - 0.5), 0f64..(top * 1.12).max(1.0))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                // One faint minor line between labels, not plotters' ten.
                .y_max_light_lines(1)
                .light_line_style(BLACK.mix(0.05))
                .y_labels(6)
                .x_labels(concurrencies.len() * 2 + 1)
                .x_label_formatter(&label_of)
                .y_label_formatter(&|y| {
                    if *y >= 1000.0 {
                        format!("{:.0}k", y / 1000.0)
                    } else {
                        format!("{y:.0}")
                    }
                })
                .draw()?;
            bars(&mut chart, report, metric, &variants, 0.0)?;
        }
        Metric::P99 => {
            let lo = (bottom / 2.0).max(1.0);
            let hi = (top * 2.0).max(lo * 10.0);
            let mut chart = ChartBuilder::on(area)
                .caption(lang.caption(metric), ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(56)
                .build_cartesian_2d(-0.5f64..(groups - 0.5), (lo..hi).log_scale())?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .y_max_light_lines(1)
                .light_line_style(BLACK.mix(0.05))
                .x_labels(concurrencies.len() * 2 + 1)
                .x_label_formatter(&label_of)
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()?;
            bars(&mut chart, report, metric, &variants, lo)?;
        }
    }
    Ok(())
}

/// Draws one panel's bars (median, starting at `base`), min–max whiskers and
/// legend. Shared by both panels: the y axis is linear for throughput and
/// logarithmic for p99, so it is generic over the y coordinate; a log axis
/// cannot start its bars at 0, which is why `base` is passed in.
fn bars<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    report: &Report,
    metric: Metric,
    variants: &[Variant],
    base: f64,
) -> Result<(), BoxError> {
    let concurrencies = &report.settings.concurrencies;
    let bar_width = 0.8 / variants.len().max(1) as f64;
    let slot = |group: usize, j: usize| {
        let x0 = group as f64 - 0.4 + j as f64 * bar_width;
        (x0 + bar_width * 0.08, x0 + bar_width * 0.92)
    };
    for (j, &variant) in variants.iter().enumerate() {
        let fill = colour(variant);
        let cells: Vec<(usize, Stat)> = concurrencies
            .iter()
            .enumerate()
            .filter_map(|(g, c)| {
                report
                    .summary
                    .iter()
                    .find(|s| s.variant == variant && s.concurrency == *c)
                    .map(|s| (g, metric.stat(s)))
            })
            .collect();
        chart
            .draw_series(cells.iter().map(|(g, st)| {
                let (x0, x1) = slot(*g, j);
                Rectangle::new([(x0, base), (x1, st.median)], fill.filled())
            }))?
            .label(variant.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
        chart.draw_series(cells.iter().map(|(g, st)| {
            let (x0, x1) = slot(*g, j);
            let mid = (x0 + x1) / 2.0;
            PathElement::new(vec![(mid, st.min), (mid, st.max)], BLACK.stroke_width(1))
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}
