//! The plots xdpgen writes: per-flow throughput over time ([`rate_plot`])
//! and per-flow one-way latency CDFs ([`latency_cdf_plot`]), each as a
//! 1200×700 PNG and an SVG.
//!
//! Text is rendered by plotters' `ab_glyph` backend from a TrueType font
//! found at run time (no system font libraries): `$XDPGEN_FONT` if set,
//! otherwise the first readable font of a short list of common DejaVu /
//! Liberation / Noto Sans paths ([`font_candidates`]). The font is loaded and
//! registered once per process ([`ensure_font`]).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::CoordTranslate;
use plotters::coord::Shift;
use plotters::element::{DashedPathElement, MultiLineText};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Width and height of every plot, pixels (the SVG uses the same size).
pub const PLOT_SIZE: (u32, u32) = (1200, 700);

/// Environment variable naming the TTF/OTF file to render text with.
pub const FONT_ENV: &str = "XDPGEN_FONT";

/// At most this many flows get a legend entry; the rest are drawn and counted
/// in a "+N more flows" entry.
pub const LEGEND_MAX_FLOWS: usize = 16;

/// Family name the font is registered under and every text style uses.
const FAMILY: &str = "sans-serif";

/// Where fonts usually live (Debian/Ubuntu, Fedora/RHEL, Arch, Alpine).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/ttf-dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/google-noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
];

/// Line colours for the first flows (Tableau 10, then darker tones); flow `f`
/// gets `COLORS[f % len]` in every plot, so a flow has the same colour in the
/// rate plot and the latency CDF.
const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(57, 59, 121),
    RGBColor(99, 121, 57),
    RGBColor(140, 109, 49),
    RGBColor(132, 60, 57),
    RGBColor(123, 65, 115),
    RGBColor(0, 128, 128),
];

/// Colour of the dashed "total" line and of the legend border.
const TOTAL_COLOR: RGBColor = RGBColor(0, 0, 0);

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No usable font: none of the searched files exists or parses as a font.
    #[error(
        "no usable TrueType font to draw plot text with (searched: {}); \
         install one (e.g. `apt-get install fonts-dejavu-core`) or set \
         {FONT_ENV}=/path/to/font.ttf",
        display_paths(searched)
    )]
    NoFont {
        /// The files that were tried, in order.
        searched: Vec<PathBuf>,
    },
    /// The data cannot be plotted (e.g. a non-positive interval, an empty stem).
    #[error("cannot plot: {0}")]
    InvalidInput(String),
    /// plotters failed while drawing, encoding or writing a file (the
    /// message names the file).
    #[error("drawing the plot failed: {0}")]
    Draw(String),
    /// Creating the output directory failed (the message names it).
    #[error("writing the plot: {0}")]
    Io(#[from] std::io::Error),
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_string();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error returned when none of `searched` is a usable font.
pub fn no_font_error(searched: &[PathBuf]) -> PlotError {
    PlotError::NoFont {
        searched: searched.to_vec(),
    }
}

fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Font files to try, in order: only `env_override` when it is set and not
/// empty (an explicit choice is not second-guessed), else the built-in list.
pub fn font_candidates(env_override: Option<&OsStr>) -> Vec<PathBuf> {
    match env_override {
        Some(p) if !p.is_empty() => vec![PathBuf::from(p)],
        _ => FONT_PATHS.iter().map(PathBuf::from).collect(),
    }
}

/// TrueType, OpenType (CFF), "true" (old Apple) or a font collection.
fn looks_like_font(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(..4),
        Some([0, 1, 0, 0]) | Some(b"OTTO") | Some(b"true") | Some(b"ttcf")
    )
}

/// Registers the first usable candidate; `Err(candidates)` if none is.
fn register_first(candidates: &[PathBuf]) -> Result<PathBuf, Vec<PathBuf>> {
    for path in candidates {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        if !looks_like_font(&bytes) {
            continue;
        }
        // plotters keeps a `&'static` reference; this runs at most once per
        // process (see `ensure_font`), so the leak is bounded.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
            return Ok(path.clone());
        }
    }
    Err(candidates.to_vec())
}

/// Finds and registers the plot font (once per process; later calls return
/// the first outcome). Returns the font file used. Call it early to fail
/// before a long run rather than when the plots are written.
pub fn ensure_font() -> Result<&'static Path, PlotError> {
    static FONT: OnceLock<Result<PathBuf, Vec<PathBuf>>> = OnceLock::new();
    let found = FONT.get_or_init(|| {
        let env: Option<OsString> = std::env::var_os(FONT_ENV);
        register_first(&font_candidates(env.as_deref()))
    });
    match found {
        Ok(path) => Ok(path.as_path()),
        Err(searched) => Err(no_font_error(searched)),
    }
}

/// `<stem>.png` and `<stem>.svg` (appending, so `run.1` gives `run.1.png`);
/// creates the parent directory.
fn output_paths(stem: &Path) -> Result<(PathBuf, PathBuf), PlotError> {
    if stem.file_name().is_none() {
        return Err(PlotError::InvalidInput(format!(
            "output stem {} does not name a file",
            stem.display()
        )));
    }
    if let Some(parent) = stem.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                std::io::Error::new(e.kind(), format!("creating {}: {e}", parent.display()))
            })?;
        }
    }
    let with_ext = |ext: &str| {
        let mut s = stem.as_os_str().to_owned();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    Ok((with_ext("png"), with_ext("svg")))
}

/// A chart that can be drawn on any plotters backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>;
}

/// Draws the same chart into `<stem>.png` and `<stem>.svg`.
fn write_both<C: Chart>(stem: &Path, chart: &C) -> Result<Vec<PathBuf>, PlotError> {
    ensure_font()?;
    let (png, svg) = output_paths(stem)?;
    {
        let root = BitMapBackend::new(&png, PLOT_SIZE).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present().map_err(draw_err))
            .map_err(|e| in_file(&png, e))?;
    }
    {
        let root = SVGBackend::new(&svg, PLOT_SIZE).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present().map_err(draw_err))
            .map_err(|e| in_file(&svg, e))?;
    }
    Ok(vec![png, svg])
}

/// Names the file in a drawing error.
fn in_file(path: &Path, e: PlotError) -> PlotError {
    match e {
        PlotError::Draw(msg) => PlotError::Draw(format!("{}: {msg}", path.display())),
        other => other,
    }
}

fn flow_color(f: usize) -> RGBColor {
    COLORS[f % COLORS.len()]
}

/// A tick label: integers plainly, otherwise up to 3 significant decimals,
/// trailing zeros trimmed.
fn fmt_tick(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    let decimals = if a == 0.0 || a >= 100.0 {
        0
    } else {
        // 3 significant digits.
        (2 - a.log10().floor() as i32).clamp(0, 12) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// A duration in nanoseconds with 3 significant digits and a fitting unit.
fn fmt_latency(ns: u64) -> String {
    let v = ns as f64;
    let (x, unit) = if v < 1e3 {
        (v, "ns")
    } else if v < 1e6 {
        (v / 1e3, "µs")
    } else if v < 1e9 {
        (v / 1e6, "ms")
    } else {
        (v / 1e9, "s")
    };
    let decimals = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.decimals$} {unit}")
}

/// Legend text size, inner margin and distance from the plot edge (plotters'), px.
const LEGEND_FONT: u32 = 17;
const LEGEND_MARGIN: u32 = 12;
const LEGEND_OFFSET: i32 = 5;

/// Height of the plotting area (inside the axes) of a [`PLOT_SIZE`] chart with
/// the caption, margins and label areas used here, px (measured; only used
/// to size the headroom above the data for the legend).
const PLOT_AREA_HEIGHT: f64 = 565.0;

/// Where the top of the y axis goes so that a legend with `entries` fits in
/// an upper corner above data reaching `data_top` (the legend covers at most
/// 40% of the height; beyond that it overlaps the data).
fn legend_headroom(data_top: f64, entries: &[String]) -> Result<f64, PlotError> {
    if entries.is_empty() {
        return Ok(data_top);
    }
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), (FAMILY, LEGEND_FONT));
    for e in entries {
        text.push_line(e.as_str());
    }
    let (_, h) = text.estimate_dimension().map_err(draw_err)?;
    let px = f64::from(h) + 2.0 * f64::from(LEGEND_MARGIN) + 2.0 * f64::from(LEGEND_OFFSET);
    let frac = (px / PLOT_AREA_HEIGHT).clamp(0.0, 0.4);
    Ok(data_top / (1.0 - frac))
}

/// Draws the legend of `chart` in its upper right corner.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), PlotError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.filled())
        .border_style(TOTAL_COLOR)
        .label_font((FAMILY, LEGEND_FONT))
        .margin(LEGEND_MARGIN)
        .draw()
        .map_err(draw_err)
}

// ---------------------------------------------------------------------------
// Rate plot

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

// ---------------------------------------------------------------------------
// Latency CDF

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
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop (kept,
    /// for looking at the plots, when `XDPGEN_KEEP_PLOTS` is set).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "xdpgen-plot-{}-{}-{name}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
        fn stem(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if std::env::var_os("XDPGEN_KEEP_PLOTS").is_some() {
                eprintln!("kept {}", self.0.display());
                return;
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|f| format!("flow{f}")).collect()
    }

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

    fn read_png(path: &Path) -> image::RgbImage {
        image::open(path).expect("PNG decodes").to_rgb8()
    }

    fn has_color(img: &image::RgbImage, c: RGBColor) -> bool {
        img.pixels().any(|p| p.0 == [c.0, c.1, c.2])
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("read SVG")
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
    fn no_font_error_names_searched_paths() {
        let searched = font_candidates(None);
        assert!(searched
            .iter()
            .any(|p| p.ends_with("truetype/dejavu/DejaVuSans.ttf")));
        let msg = no_font_error(&searched).to_string();
        for p in &searched {
            assert!(msg.contains(&p.display().to_string()), "{msg}");
        }
        assert!(msg.contains("fonts-dejavu-core"));
        assert!(msg.contains(FONT_ENV));

        // An override is the only candidate.
        let only = font_candidates(Some(OsStr::new("/opt/fonts/My.ttf")));
        assert_eq!(only, vec![PathBuf::from("/opt/fonts/My.ttf")]);
        assert_eq!(font_candidates(Some(OsStr::new(""))), searched);

        // Files that are missing or not fonts are skipped, and reported.
        let dir = TempDir::new("font");
        let junk = dir.stem("junk.ttf");
        std::fs::write(&junk, b"not a font").expect("write junk");
        let tried = vec![dir.stem("missing.ttf"), junk];
        let err = register_first(&tried).expect_err("no usable font");
        assert_eq!(err, tried);
        let msg = no_font_error(&err).to_string();
        assert!(
            msg.contains("missing.ttf") && msg.contains("junk.ttf"),
            "{msg}"
        );
    }

    #[test]
    fn font_is_found_here() {
        let path = ensure_font().expect("a font is installed on the test machine");
        assert!(path.is_file());
        assert_eq!(ensure_font().expect("cached").as_os_str(), path.as_os_str());
    }

    #[test]
    fn tick_helpers() {
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(100.0), "100");
        assert_eq!(fmt_tick(12.5), "12.5");
        assert_eq!(fmt_tick(0.30000000000000004), "0.3");
        assert_eq!(fmt_tick(0.0012345), "0.00123");
        assert_eq!(fmt_tick(2500.0), "2500");
        assert_eq!(fmt_tick(f64::NAN), "");

        assert_eq!(fmt_latency(850), "850 ns");
        assert_eq!(fmt_latency(12_345), "12.3 µs");
        assert_eq!(fmt_latency(1_250_000), "1.25 ms");
        assert_eq!(fmt_latency(2_000_000_000), "2.00 s");

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

    #[test]
    fn step_points_merge_runs() {
        assert!(step_points(&[], 1.0).is_empty());
        assert_eq!(step_points(&[3.0], 0.5), vec![(0.0, 3.0), (0.5, 3.0)]);
        assert_eq!(
            step_points(&[1.0, 1.0, 2.0], 1.0),
            vec![(0.0, 1.0), (2.0, 1.0), (2.0, 2.0), (3.0, 2.0)]
        );
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
}
