//! Per-flow throughput over time, one step line per flow and the total.

use super::*;

/// Per-flow throughput over time. `rates_bps[i][f]` = rate of flow f in
/// interval i (bit/s); interval i covers `[i*interval_s, (i+1)*interval_s)`.
#[derive(Debug, Clone, Copy)]
pub struct RateSeries<'a> {
    /// Interval length, seconds (must be finite and > 0).
    pub interval_s: f64,
    /// Flow names, index = flow; missing names become "flow N".
    pub labels: &'a [String],
    /// `rates_bps[i][f]`: rate of flow `f` in interval `i`, bit/s. Rows may be
    /// shorter than the flow count (missing = 0); non-finite and negative
    /// rates are drawn as 0.
    pub rates_bps: &'a [Vec<f64>],
}

/// The series prepared for drawing: Mbit/s, per flow.
struct RateData {
    dt: f64,
    intervals: usize,
    labels: Vec<String>,
    /// `mbps[f][i]`.
    mbps: Vec<Vec<f64>>,
    /// Sum over flows per interval (only drawn for more than one flow).
    total: Vec<f64>,
    y_max: f64,
}

impl RateData {
    fn new(s: &RateSeries) -> Self {
        let intervals = s.rates_bps.len();
        let flows = s
            .rates_bps
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(s.labels.len());
        let clean = |r: f64| {
            if r.is_finite() && r > 0.0 {
                r / 1e6
            } else {
                0.0
            }
        };
        let mbps: Vec<Vec<f64>> = (0..flows)
            .map(|f| {
                s.rates_bps
                    .iter()
                    .map(|row| row.get(f).copied().map_or(0.0, clean))
                    .collect()
            })
            .collect();
        let total: Vec<f64> = (0..intervals)
            .map(|i| mbps.iter().map(|flow| flow[i]).sum())
            .collect();
        let peak_flow = mbps.iter().flatten().copied().fold(0.0, f64::max);
        let peak_total = if flows > 1 {
            total.iter().copied().fold(0.0, f64::max)
        } else {
            0.0
        };
        let labels = (0..flows)
            .map(|f| {
                s.labels
                    .get(f)
                    .cloned()
                    .unwrap_or_else(|| format!("flow {f}"))
            })
            .collect();
        RateData {
            dt: s.interval_s,
            intervals,
            labels,
            mbps,
            total,
            y_max: peak_flow.max(peak_total),
        }
    }
}

/// A step line for per-interval values: level `v[i]` over
/// `[i*dt, (i+1)*dt)`, with runs of equal values merged.
fn step_points(values: &[f64], dt: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(values.len().min(1024) * 2 + 2);
    let mut prev: Option<f64> = None;
    for (i, &v) in values.iter().enumerate() {
        let x = i as f64 * dt;
        match prev {
            None => pts.push((x, v)),
            Some(p) if p != v => {
                pts.push((x, p));
                pts.push((x, v));
            }
            Some(_) => {}
        }
        prev = Some(v);
    }
    if let Some(p) = prev {
        pts.push((values.len() as f64 * dt, p));
    }
    pts
}

/// Writes `<stem>.png` and `<stem>.svg`: per-flow rate over time (Mbit/s on
/// y, seconds on x), one coloured step line per flow with a legend, plus a
/// dashed "total" line when there is more than one flow. Only the first
/// [`LEGEND_MAX_FLOWS`] flows are named in the legend (then "+N more flows").
/// With no intervals, an empty chart with axes is written. Returns the paths
/// written.
pub fn rate_plot(stem: &Path, title: &str, s: &RateSeries) -> Result<Vec<PathBuf>, PlotError> {
    if !(s.interval_s.is_finite() && s.interval_s > 0.0) {
        return Err(PlotError::InvalidInput(format!(
            "rate interval must be a positive number of seconds, got {}",
            s.interval_s
        )));
    }
    let data = RateData::new(s);
    write_both(stem, &RateChart { title, data: &data })
}

struct RateChart<'a> {
    title: &'a str,
    data: &'a RateData,
}

impl Chart for RateChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        draw_rate(root, self.title, self.data)
    }
}

fn draw_rate<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    d: &RateData,
) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(draw_err)?;
    let flows = d.mbps.len();
    let has_data = d.intervals > 0 && flows > 0;
    let caption = if has_data {
        title.to_string()
    } else {
        format!("{title} (no data)")
    };
    let x_max = d.dt * d.intervals.max(1) as f64;
    let named = flows.min(LEGEND_MAX_FLOWS);
    let mut legend: Vec<String> = d.labels[..named].to_vec();
    if flows > 1 {
        legend.push("total".to_string());
    }
    if flows > LEGEND_MAX_FLOWS {
        legend.push(format!("+{} more flows", flows - LEGEND_MAX_FLOWS));
    }
    if !has_data {
        legend.clear();
    }
    let y_top = if d.y_max > 0.0 {
        legend_headroom(d.y_max, &legend)?.max(d.y_max * 1.1)
    } else {
        1.0
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..x_max, 0f64..y_top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("rate (Mbit/s)")
        .axis_desc_style((FAMILY, 20))
        .label_style((FAMILY, 16))
        .x_labels(12)
        .y_labels(10)
        .x_label_formatter(&|x| fmt_tick(*x))
        .y_label_formatter(&|y| fmt_tick(*y))
        .bold_line_style(RGBColor(200, 200, 200))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(draw_err)?;
    if !has_data {
        return Ok(());
    }

    // Unnamed flows first (thin), so the named ones are drawn on top.
    for f in (LEGEND_MAX_FLOWS..flows).rev() {
        let pts = step_points(&d.mbps[f], d.dt);
        chart
            .draw_series(LineSeries::new(pts, flow_color(f).stroke_width(1)))
            .map_err(draw_err)?;
    }
    for (f, label) in legend.iter().enumerate().take(named) {
        let color = flow_color(f);
        let pts = step_points(&d.mbps[f], d.dt);
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(draw_err)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    if flows > 1 {
        let pts = step_points(&d.total, d.dt);
        chart
            .draw_series(DashedLineSeries::new(
                pts,
                10,
                6,
                TOTAL_COLOR.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(legend[named].as_str())
            .legend(|(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + 24, y)], 7, 4, TOTAL_COLOR.stroke_width(2))
            });
    }
    if flows > LEGEND_MAX_FLOWS {
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?
            .label(legend[named + 1].as_str())
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }
    draw_legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{has_color, labels, read, read_png, TempDir};
    use super::*;

    /// The lab scenario: four flows offering 100/60/30/10 Mbit/s, starting at
    /// 0/10/20/30 s, through a 100 Mbit/s fair-queued link, 0.5 s intervals.
    fn lab_rates() -> Vec<Vec<f64>> {
        let offered: [f64; 4] = [100e6, 60e6, 30e6, 10e6];
        (0..80)
            .map(|i| {
                let t = i as f64 * 0.5;
                let active: Vec<usize> = (0..4).filter(|&f| t >= 10.0 * f as f64).collect();
                // Max-min fair share of 100 Mbit/s.
                let mut left = 100e6;
                let mut rates = vec![0.0; 4];
                let mut todo = active.clone();
                todo.sort_by(|a, b| offered[*a].total_cmp(&offered[*b]));
                let mut n = todo.len();
                for f in todo {
                    let r = f64::min(offered[f], left / n as f64);
                    rates[f] = r;
                    left -= r;
                    n -= 1;
                }
                rates
            })
            .collect()
    }

    #[test]
    fn rate_plot_writes_png_and_svg() {
        let dir = TempDir::new("rate");
        let names: Vec<String> = ["udp-100M", "udp-60M", "udp-30M", "udp-10M"]
            .map(String::from)
            .to_vec();
        let rates = lab_rates();
        let s = RateSeries {
            interval_s: 0.5,
            labels: &names,
            rates_bps: &rates,
        };
        let stem = dir.stem("fq-4flows");
        let paths = rate_plot(&stem, "Four UDP flows through FQ", &s).expect("rate plot");
        assert_eq!(
            paths,
            vec![dir.stem("fq-4flows.png"), dir.stem("fq-4flows.svg")]
        );

        let img = read_png(&paths[0]);
        assert_eq!(img.dimensions(), PLOT_SIZE);
        let first = *img.get_pixel(0, 0);
        assert!(img.pixels().any(|p| *p != first), "PNG is a single colour");
        // Every flow's line is drawn in its own colour, and the total in black.
        for f in 0..4 {
            assert!(has_color(&img, flow_color(f)), "no pixels of flow {f}");
        }
        assert!(has_color(&img, TOTAL_COLOR));

        let svg = read(&paths[1]);
        assert!(svg.contains("<svg"));
        assert!(svg.contains("Four UDP flows through FQ"));
        for l in &names {
            assert!(svg.contains(l.as_str()), "legend lacks {l}");
        }
        assert!(svg.contains("total"));
        assert!(svg.contains("rate (Mbit/s)"));
        assert!(svg.contains("time (s)"));
        assert!(!svg.contains("more flows"));
    }

    #[test]
    fn single_flow_has_no_total_line() {
        let dir = TempDir::new("one-flow");
        let names = labels(1);
        let rates = vec![vec![5e6], vec![7e6], vec![6e6]];
        let s = RateSeries {
            interval_s: 1.0,
            labels: &names,
            rates_bps: &rates,
        };
        let paths = rate_plot(&dir.stem("one"), "one flow", &s).expect("rate plot");
        let svg = read(&paths[1]);
        assert!(svg.contains("flow0"));
        assert!(!svg.contains("total"));
    }

    #[test]
    fn rate_plot_edge_cases_do_not_panic() {
        let dir = TempDir::new("rate-edges");
        let names = labels(3);

        // No intervals: an empty chart with axes.
        let s = RateSeries {
            interval_s: 1.0,
            labels: &names,
            rates_bps: &[],
        };
        let paths = rate_plot(&dir.stem("empty"), "nothing", &s).expect("empty");
        assert_eq!(read_png(&paths[0]).dimensions(), PLOT_SIZE);
        let svg = read(&paths[1]);
        assert!(svg.contains("nothing (no data)"));
        assert!(svg.contains("rate (Mbit/s)"));

        // No flows at all.
        let s = RateSeries {
            interval_s: 1.0,
            labels: &[],
            rates_bps: &[vec![], vec![]],
        };
        rate_plot(&dir.stem("noflows"), "no flows", &s).expect("no flows");

        // One interval: the levels are horizontal segments, so visible.
        let rates = vec![vec![1e6, 2e6, 3e6]];
        let s = RateSeries {
            interval_s: 0.1,
            labels: &names,
            rates_bps: &rates,
        };
        let paths = rate_plot(&dir.stem("one"), "one interval", &s).expect("one");
        let img = read_png(&paths[0]);
        for f in 0..3 {
            assert!(has_color(&img, flow_color(f)), "flow {f} not drawn");
        }

        // Zero, NaN, infinite, negative and missing rates; more rows than labels.
        let rates = vec![
            vec![0.0, f64::NAN, f64::INFINITY],
            vec![f64::NEG_INFINITY, -5.0, 1e6, 2e6],
            vec![3e6],
            vec![0.0; 3],
        ];
        let s = RateSeries {
            interval_s: 1.0,
            labels: &names,
            rates_bps: &rates,
        };
        let paths = rate_plot(&dir.stem("weird"), "weird", &s).expect("weird");
        let svg = read(&paths[1]);
        assert!(
            svg.contains("flow 3"),
            "unnamed 4th flow gets a default name"
        );

        // Absurdly large rates and a tiny interval.
        let rates = vec![vec![f64::MAX, 1e300, 1.0]; 3];
        let s = RateSeries {
            interval_s: 1e-9,
            labels: &names,
            rates_bps: &rates,
        };
        rate_plot(&dir.stem("huge"), "huge", &s).expect("huge");

        // All rates zero or non-finite.
        let rates = vec![vec![0.0, f64::NAN]; 4];
        let s = RateSeries {
            interval_s: 1.0,
            labels: &names,
            rates_bps: &rates,
        };
        rate_plot(&dir.stem("zeros"), "zeros", &s).expect("zeros");

        // A bad interval is an error, not a panic, and writes nothing.
        for dt in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let s = RateSeries {
                interval_s: dt,
                labels: &names,
                rates_bps: &rates,
            };
            let err = rate_plot(&dir.stem("bad"), "bad", &s).expect_err("bad interval");
            assert!(matches!(err, PlotError::InvalidInput(_)), "{err}");
        }
        assert!(!dir.stem("bad.png").exists());
    }

    #[test]
    fn rate_plot_many_flows_labels_first_16() {
        let dir = TempDir::new("many");
        let names = labels(1000);
        let rates: Vec<Vec<f64>> = (0..20)
            .map(|i| (0..1000).map(|f| 1e5 * ((f + i) % 7) as f64).collect())
            .collect();
        let s = RateSeries {
            interval_s: 1.0,
            labels: &names,
            rates_bps: &rates,
        };
        let paths = rate_plot(&dir.stem("many"), "1000 flows", &s).expect("many");
        assert_eq!(read_png(&paths[0]).dimensions(), PLOT_SIZE);
        let svg = read(&paths[1]);
        assert!(svg.contains("flow15"));
        assert!(!svg.contains("flow16"));
        assert!(!svg.contains("flow999"));
        assert!(svg.contains("+984 more flows"));
    }

    #[test]
    fn output_goes_to_stem_plus_extension_in_a_new_dir() {
        let dir = TempDir::new("stem");
        let names = labels(1);
        let rates = vec![vec![1e6]];
        let s = RateSeries {
            interval_s: 1.0,
            labels: &names,
            rates_bps: &rates,
        };
        let stem = dir.0.join("sub").join("run.1");
        let paths = rate_plot(&stem, "t", &s).expect("plot");
        assert_eq!(
            paths,
            vec![dir.0.join("sub/run.1.png"), dir.0.join("sub/run.1.svg")]
        );
        assert!(paths.iter().all(|p| p.is_file()));
        let err = rate_plot(Path::new("/"), "t", &s).expect_err("no file name");
        assert!(matches!(err, PlotError::InvalidInput(_)), "{err}");
    }

    #[test]
    fn step_points_merge_runs() {
        assert!(step_points(&[], 1.0).is_empty());
        assert_eq!(step_points(&[3.0], 0.5), vec![(0.0, 3.0), (0.5, 3.0)]);
        assert_eq!(
            step_points(&[1.0, 1.0, 2.0], 1.0),
            vec![(0.0, 1.0), (2.0, 1.0), (2.0, 2.0), (3.0, 2.0)]
        );
    }
}
