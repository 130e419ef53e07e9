//! The plots xdpgen writes: per-flow throughput over time ([`rate_plot`])
//! and per-flow one-way latency CDFs ([`latency_cdf_plot`]), each as a
//! 1200×700 PNG and an SVG.
//!
//! Text is rendered by plotters' `ab_glyph` backend from a TrueType font
//! found at run time (no system font libraries): `$XDPGEN_FONT` if set,
//! otherwise the first readable font of a short list of common DejaVu /
//! Liberation / Noto Sans paths ([`font_candidates`]). The font is loaded and
//! registered once per process ([`ensure_font`]).
//!
//! This module holds what the charts share (fonts, output files, colours,
//! ticks, the legend); each chart is its own module: `rate`, `cdf`.

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

mod cdf;
mod rate;

pub use cdf::latency_cdf_plot;
pub use rate::{rate_plot, RateSeries};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop (kept,
    /// for looking at the plots, when `XDPGEN_KEEP_PLOTS` is set).
    pub(super) struct TempDir(pub(super) PathBuf);

    impl TempDir {
        pub(super) fn new(name: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "xdpgen-plot-{}-{}-{name}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
        pub(super) fn stem(&self, name: &str) -> PathBuf {
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

    pub(super) fn labels(n: usize) -> Vec<String> {
        (0..n).map(|f| format!("flow{f}")).collect()
    }

    pub(super) fn read_png(path: &Path) -> image::RgbImage {
        image::open(path).expect("PNG decodes").to_rgb8()
    }

    pub(super) fn has_color(img: &image::RgbImage, c: RGBColor) -> bool {
        img.pixels().any(|p| p.0 == [c.0, c.1, c.2])
    }

    pub(super) fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("read SVG")
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
    }
}
