//! Per-flow one-way latency CDFs on a logarithmic latency axis.

use super::*;

/// One flow's CDF, ready to draw.
struct Curve {
    color: RGBColor,
    legend: String,
    /// (latency ns, fraction of packets ≤ latency), a step line.
    points: Vec<(u64, f64)>,
}

fn cdf_points(h: &Histogram<u64>) -> Vec<(u64, f64)> {
    let total = h.len() as f64;
    let mut pts = Vec::new();
    let mut cum: u64 = 0;
    let mut prev = 0.0;
    for v in h.iter_recorded() {
        cum = cum.saturating_add(v.count_since_last_iteration());
        let frac = (cum as f64 / total).min(1.0);
        let x = v.value_iterated_to();
        pts.push((x, prev));
        pts.push((x, frac));
        prev = frac;
    }
    pts
}

/// Tick positions for a log axis over `[lo, hi]` (both > 0): powers of ten,
/// or 1-2-5 / 1-2-3-5-7 per decade when that gives too few, or plain
/// evenly spaced nice numbers for ranges under about a decade.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const MANTISSAS: [&[f64]; 3] = [&[1.0], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0, 7.0]];
    let mut best: Vec<f64> = Vec::new();
    for set in MANTISSAS {
        let mut ticks = Vec::new();
        let mut e = lo.log10().floor() as i32;
        while 10f64.powi(e) <= hi * (1.0 + 1e-9) && e < 400 {
            for m in set {
                let t = m * 10f64.powi(e);
                if t >= lo * (1.0 - 1e-9) && t <= hi * (1.0 + 1e-9) {
                    ticks.push(t);
                }
            }
            e += 1;
        }
        if ticks.len() >= 5 {
            return ticks;
        }
        best = ticks;
    }
    let linear = linear_ticks(lo, hi, 8);
    if linear.len() > best.len() {
        linear
    } else {
        best
    }
}

/// The CDF's y axis: `0..top`, where `top` ≥ 1 leaves room for the legend,
/// with ticks only at 0, 0.1, ..., 1 (light lines every 0.05).
#[derive(Clone)]
struct FractionAxis {
    linear: RangedCoordf64,
    top: f64,
}

impl FractionAxis {
    fn new(top: f64) -> Self {
        Self {
            linear: (0.0..top).into(),
            top,
        }
    }
}

impl Ranged for FractionAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let steps = if hint.weight().allow_light_points() {
            20
        } else {
            10
        };
        (0..=steps)
            .map(|i| f64::from(i) / f64::from(steps))
            .collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.top
    }
}

/// Minor grid for a log axis over `[lo, hi]`: every m×10^k, m = 1..9.
fn log_minor_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut e = lo.log10().floor() as i32;
    while 10f64.powi(e) <= hi && out.len() < 1000 {
        for m in 1..=9 {
            let t = f64::from(m) * 10f64.powi(e);
            if t >= lo && t <= hi {
                out.push(t);
            }
        }
        e += 1;
    }
    out
}

/// At most about `target` evenly spaced 1/2/5×10^k values in `[lo, hi]`.
fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) || target == 0 {
        return vec![lo];
    }
    let raw = span / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    while t <= hi * (1.0 + 1e-9) && ticks.len() < 100 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// Writes `<stem>.png` and `<stem>.svg`: per-flow one-way latency CDF (x:
/// latency, log scale, in µs or ms as fits; y: fraction of packets 0..1), one
/// line per flow, legend with each flow's p50 and p99. Histograms are in
/// nanoseconds. Flows with empty histograms are skipped; if all are empty,
/// nothing is written and `Ok(vec![])` is returned. Flow `i` of `flows` has
/// the same colour as flow `i` of [`rate_plot`].
pub fn latency_cdf_plot(
    stem: &Path,
    title: &str,
    flows: &[(String, &Histogram<u64>)],
) -> Result<Vec<PathBuf>, PlotError> {
    let mut curves = Vec::new();
    let mut hidden = 0usize;
    for (i, (label, h)) in flows.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        let legend = if curves.len() < LEGEND_MAX_FLOWS {
            format!(
                "{label}: p50 {}, p99 {}",
                fmt_latency(h.value_at_quantile(0.5)),
                fmt_latency(h.value_at_quantile(0.99))
            )
        } else {
            hidden += 1;
            String::new()
        };
        curves.push(Curve {
            color: flow_color(i),
            legend,
            points: cdf_points(h),
        });
    }
    if curves.is_empty() {
        return Ok(Vec::new());
    }
    write_both(
        stem,
        &CdfChart {
            title,
            curves: &curves,
            hidden,
        },
    )
}

struct CdfChart<'a> {
    title: &'a str,
    curves: &'a [Curve],
    hidden: usize,
}

impl Chart for CdfChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        draw_cdf(root, self.title, self.curves, self.hidden)
    }
}

fn draw_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    curves: &[Curve],
    hidden: usize,
) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(draw_err)?;
    let all = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let max_ns = all().max().unwrap_or(1).max(1);
    let min_ns = all().filter(|&v| v > 0).min().unwrap_or(max_ns);
    let (div, unit) = if max_ns >= 10_000_000 {
        (1e6, "ms")
    } else {
        (1e3, "µs")
    };
    let lo_data = min_ns as f64 / div;
    let hi_data = max_ns as f64 / div;
    // Pad a little on each side, and to at least a factor of 2 overall.
    let mut lo = lo_data / 1.25;
    let mut hi = hi_data * 1.25;
    if hi / lo < 2.0 {
        let mid = (lo * hi).sqrt();
        lo = mid / std::f64::consts::SQRT_2;
        hi = mid * std::f64::consts::SQRT_2;
    }
    let ticks = log_ticks(lo, hi);
    let minor = log_minor_ticks(lo, hi);
    let mut legend: Vec<String> = curves
        .iter()
        .take(LEGEND_MAX_FLOWS)
        .map(|c| c.legend.clone())
        .collect();
    if hidden > 0 {
        legend.push(format!("+{hidden} more flows"));
    }
    // Room above 1.0 for the legend; ticks only up to 1.
    let y_top = legend_headroom(1.0, &legend)?.max(1.02);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(
            (lo..hi)
                .log_scale()
                .with_key_points(ticks)
                .with_light_points(minor),
            FractionAxis::new(y_top),
        )
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("one-way latency ({unit}, log scale)"))
        .y_desc("fraction of packets ≤ latency")
        .axis_desc_style((FAMILY, 20))
        .label_style((FAMILY, 16))
        .x_label_formatter(&|x| fmt_tick(*x))
        .y_label_formatter(&|y| fmt_tick(*y))
        .bold_line_style(RGBColor(200, 200, 200))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(draw_err)?;

    let to_x = |ns: u64| (ns as f64 / div).max(lo);
    // Unnamed curves first, so the named ones are drawn on top.
    for c in curves.iter().skip(LEGEND_MAX_FLOWS).rev() {
        let pts = c.points.iter().map(|&(ns, y)| (to_x(ns), y));
        chart
            .draw_series(LineSeries::new(pts, c.color.stroke_width(1)))
            .map_err(draw_err)?;
    }
    for (c, label) in curves.iter().zip(&legend).take(LEGEND_MAX_FLOWS) {
        let color = c.color;
        let pts = c.points.iter().map(|&(ns, y)| (to_x(ns), y));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(draw_err)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    if hidden > 0 {
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?
            .label(legend[legend.len() - 1].as_str())
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }
    draw_legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{has_color, read, read_png, TempDir};
    use super::*;

    fn hist() -> Histogram<u64> {
        Histogram::new_with_bounds(1_000, 10_000_000_000, 3).expect("histogram")
    }

    #[test]
    fn latency_cdf_two_flows() {
        let dir = TempDir::new("cdf");
        // Flow a: uniform 10..20 µs; flow b: uniform 1..2 ms.
        let mut a = hist();
        let mut b = hist();
        for k in 0..10_000u64 {
            a.record(10_000 + k).expect("record a");
            b.record(1_000_000 + 100 * k).expect("record b");
        }
        let flows = vec![("fast".to_string(), &a), ("slow".to_string(), &b)];
        let paths = latency_cdf_plot(&dir.stem("lat"), "One-way latency", &flows).expect("cdf");
        assert_eq!(paths.len(), 2);

        let img = read_png(&paths[0]);
        assert_eq!(img.dimensions(), PLOT_SIZE);
        assert!(has_color(&img, flow_color(0)));
        assert!(has_color(&img, flow_color(1)));

        let svg = read(&paths[1]);
        assert!(svg.contains("<svg"));
        assert!(svg.contains("One-way latency"));
        // Legend text is the histogram's own quantiles...
        for (name, h) in &flows {
            let entry = format!(
                "{name}: p50 {}, p99 {}",
                fmt_latency(h.value_at_quantile(0.5)),
                fmt_latency(h.value_at_quantile(0.99))
            );
            assert!(svg.contains(&entry), "SVG lacks legend entry {entry:?}");
        }
        // ...which are close to the true ones (the histogram's lowest
        // discernible value is 1 µs, so 10..20 µs is quantised coarsely).
        assert!(svg.contains("fast: p50 15."), "fast p50 is about 15 µs");
        assert!(svg.contains("slow: p50 1.50 ms, p99 1.99 ms"));
        assert!(svg.contains("one-way latency (µs, log scale)"));
    }

    #[test]
    fn latency_cdf_uses_ms_for_long_latencies_and_skips_empty() {
        let dir = TempDir::new("cdf-ms");
        let mut a = hist();
        a.record(50_000_000).expect("record"); // 50 ms, a single value
        let empty = hist();
        let flows = vec![("idle".to_string(), &empty), ("busy".to_string(), &a)];
        let paths = latency_cdf_plot(&dir.stem("lat"), "ms", &flows).expect("cdf");
        let svg = read(&paths[1]);
        assert!(svg.contains("(ms, log scale)"));
        assert!(svg.contains("busy: p50 50.0 ms"));
        assert!(!svg.contains("idle"));
        // The busy flow keeps its colour (flow index 1) although flow 0 is skipped.
        assert!(has_color(&read_png(&paths[0]), flow_color(1)));
    }

    #[test]
    fn latency_cdf_all_empty_writes_nothing() {
        let dir = TempDir::new("cdf-empty");
        let (a, b) = (hist(), hist());
        let flows = vec![("a".to_string(), &a), ("b".to_string(), &b)];
        let paths = latency_cdf_plot(&dir.stem("lat"), "t", &flows).expect("cdf");
        assert!(paths.is_empty());
        assert!(!dir.stem("lat.png").exists());
        assert!(!dir.stem("lat.svg").exists());
        let none: Vec<(String, &Histogram<u64>)> = Vec::new();
        assert!(latency_cdf_plot(&dir.stem("none"), "t", &none)
            .expect("cdf")
            .is_empty());
        assert_eq!(std::fs::read_dir(&dir.0).expect("dir").count(), 0);
    }

    #[test]
    fn latency_cdf_many_flows_and_zero_values() {
        let dir = TempDir::new("cdf-many");
        let mut hs = Vec::new();
        for f in 0..40u64 {
            let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("hist");
            h.record(0).expect("record 0");
            h.record(1_000 * (f + 1)).expect("record");
            hs.push(h);
        }
        let flows: Vec<(String, &Histogram<u64>)> = hs
            .iter()
            .enumerate()
            .map(|(f, h)| (format!("f{f}"), h))
            .collect();
        let paths = latency_cdf_plot(&dir.stem("lat"), "many", &flows).expect("cdf");
        let svg = read(&paths[1]);
        assert!(svg.contains("f15: p50"));
        assert!(!svg.contains("f16: p50"));
        assert!(svg.contains("+24 more flows"));
    }

    #[test]
    fn cdf_points_end_at_one() {
        let mut h = hist();
        for v in [10_000, 20_000, 20_000, 40_000] {
            h.record(v).expect("record");
        }
        let pts = cdf_points(&h);
        assert_eq!(pts.first().map(|p| p.1), Some(0.0));
        assert_eq!(pts.last().map(|p| p.1), Some(1.0));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(pts.contains(&(h.highest_equivalent(20_000), 0.75)));
    }

    #[test]
    fn log_ticks_cover_the_range() {
        // Seven decades: powers of ten.
        assert_eq!(
            log_ticks(0.8, 1.2e7),
            vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7]
        );
        // Under a decade: still several ticks, all inside the range.
        for (lo, hi) in [(66.0, 195.0), (8.0, 25.0), (1.1, 1.9), (0.01, 0.5)] {
            let t = log_ticks(lo, hi);
            assert!(t.len() >= 3, "{lo}..{hi}: {t:?}");
            assert!(
                t.iter().all(|&v| v >= lo * 0.999 && v <= hi * 1.001),
                "{t:?}"
            );
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        }
    }
}
