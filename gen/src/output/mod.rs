//! What xdpgen writes: the summary table, JSON, the JSON event stream,
//! the HdrHistogram interval log, the CSV time series ([`text`]) and the
//! plots ([`plot`], one module per chart).

pub mod plot;
pub mod text;

use crate::cli::SendArgs;
use crate::engine::{IntervalEvent, Outcome};
use crate::measure::summary::{rates, Summary};
use crate::traffic::spec::Flow;
use hdrhistogram::serialization::interval_log::{IntervalLogWriter, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file to write, or stdout for `-`.
pub fn open_out(p: &Path) -> anyhow::Result<Box<dyn Write>> {
    if p == Path::new("-") {
        return Ok(Box::new(std::io::stdout()));
    }
    let f = std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok(Box::new(std::io::BufWriter::new(f)))
}

/// The JSON event stream's line for a finished interval (`iv` ns long).
pub fn interval_event(ev: &IntervalEvent, iv: u64) -> serde_json::Value {
    let secs = iv as f64 / 1e9;
    serde_json::json!({
        "event": "interval",
        "index": ev.index,
        "t_start_s": ev.index as f64 * secs,
        "t_end_s": (ev.index + 1) as f64 * secs,
        "rx_bytes": ev.bytes,
        "rx_packets": ev.packets,
        "rx_bps": ev.bytes.iter().map(|&b| b as f64 * 8.0 / secs).collect::<Vec<_>>(),
    })
}

/// A finished interval's latency histograms into the HdrHistogram log, one
/// per flow that received packets (tag `f<ID>`).
pub fn hdr_interval<W: Write>(
    w: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    ev: &IntervalEvent,
    iv: u64,
) -> anyhow::Result<()> {
    let Some(hs) = ev.latency.as_ref() else {
        return Ok(());
    };
    for (f, h) in hs.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        let tag = format!("f{f}");
        w.write_histogram(
            h,
            Duration::from_nanos(ev.index as u64 * iv),
            Duration::from_nanos(iv),
            Tag::new(&tag),
        )
        .map_err(|e| anyhow::anyhow!("hdr log: {e}"))?;
    }
    Ok(())
}

/// Summary, CSV and plots (shared by both modes).
pub fn write_outputs(
    a: &SendArgs,
    flows: &[Flow],
    out: &Outcome,
    summary: &Summary,
) -> anyhow::Result<()> {
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        print!("{}", text::table(summary));
    }
    if let Some(p) = &a.json {
        let mut w = open_out(p)?;
        serde_json::to_writer_pretty(&mut w, summary)?;
        writeln!(w)?;
        w.flush()?;
    }
    if let Some(p) = &a.csv {
        let mut w = open_out(p)?;
        let weighted = flows.iter().any(|f| f.weight != 1.0);
        text::write_csv(&mut w, flows, &out.rx.series, &out.tx.series, weighted)?;
        w.flush()?;
    }
    if let Some(stem) = &a.plot {
        let labels: Vec<String> = flows.iter().map(|f| f.name.clone()).collect();
        let rates = rates(&out.rx.series);
        let with = |suffix: &str| -> PathBuf {
            let mut s = stem.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        let mut written = plot::rate_plot(
            &with("-rate"),
            "xdpgen: received rate per flow",
            &plot::RateSeries {
                interval_s: out.rx.series.interval_ns as f64 / 1e9,
                labels: &labels,
                rates_bps: &rates,
            },
        )?;
        let hists: Vec<(String, &hdrhistogram::Histogram<u64>)> = flows
            .iter()
            .zip(&out.rx.flows)
            .map(|(f, r)| (f.name.clone(), &r.latency))
            .collect();
        written.extend(plot::latency_cdf_plot(
            &with("-latency"),
            "xdpgen: one-way latency",
            &hists,
        )?);
        if !to_stdout {
            for p in written {
                println!("wrote {}", p.display());
            }
        }
    }
    Ok(())
}
