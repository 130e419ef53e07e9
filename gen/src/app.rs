//! What the `xdpgen` binary does with a parsed command line: run the
//! engine, print interval lines while it runs, then write the summary, CSV,
//! HdrHistogram log and plots.

use crate::capacity::{self, TrainRx};
use crate::cli::{self, CapacityArgs, Mode, SendArgs, SendPlan};
use crate::report::{self, SummaryOptions};
use crate::run::{self, EngineConfig, IntervalEvent, Outcome};
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn open_out(p: &Path) -> anyhow::Result<Box<dyn Write>> {
    if p == Path::new("-") {
        return Ok(Box::new(std::io::stdout()));
    }
    let f = std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok(Box::new(std::io::BufWriter::new(f)))
}

fn port_text(p: &run::PortSpec) -> String {
    match &p.netns {
        Some(n) => format!("{}@{n}", p.iface),
        None => p.iface.clone(),
    }
}

/// Runs `engine` (`run::run` for AF_XDP), handing each interval event to
/// `on_event` as it arrives.
fn drive<E>(
    plan: &SendPlan,
    stop: Arc<AtomicBool>,
    engine: E,
    mut on_event: impl FnMut(&IntervalEvent) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome>
where
    E: FnOnce(
            &EngineConfig,
            Arc<AtomicBool>,
            mpsc::Sender<IntervalEvent>,
        ) -> anyhow::Result<Outcome>
        + Send,
{
    let (etx, erx) = mpsc::channel();
    std::thread::scope(|s| {
        let h = s.spawn(|| engine(&plan.engine, stop, etx));
        let mut first_err = None;
        // The channel closes when the engine's threads are gone.
        while let Ok(ev) = erx.recv() {
            if first_err.is_none() {
                if let Err(e) = on_event(&ev) {
                    first_err = Some(e);
                }
            }
        }
        let out = h
            .join()
            .map_err(|_| anyhow::anyhow!("the engine thread panicked"))??;
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}

/// `xdpgen` without a subcommand.
pub fn send(a: &SendArgs, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    if a.port.mode == Mode::Socket {
        return crate::socket::send(a, stop);
    }
    if !a.verbose {
        xsk::quiet_library_logs();
    }
    let plan = cli::plan(a)?;
    measure(a, &plan, "xdp", stop, run::run)
}

/// Runs `plan` with `engine` and reports it: interval lines, JSON stream,
/// HdrHistogram log, then the summary (`mode` names the engine), CSV and
/// plots. Shared by both modes, so their outputs are identical in form.
pub fn measure<E>(
    a: &SendArgs,
    plan: &SendPlan,
    mode: &str,
    stop: Arc<AtomicBool>,
    engine: E,
) -> anyhow::Result<()>
where
    E: FnOnce(
            &EngineConfig,
            Arc<AtomicBool>,
            mpsc::Sender<IntervalEvent>,
        ) -> anyhow::Result<Outcome>
        + Send,
{
    let flows = &plan.engine.flows;
    let mut stream = a.json_stream.as_deref().map(open_out).transpose()?;
    let mut hdr_file = a.hdr_log.as_deref().map(open_out).transpose()?;
    let mut ser = V2DeflateSerializer::new();
    let mut hdr = match hdr_file.as_mut() {
        Some(f) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("xdpgen one-way latency, ns; tag f<ID> = flow ID")
                .with_start_time(std::time::SystemTime::now())
                .begin_log_with(f, &mut ser)?,
        ),
        None => None,
    };
    let quiet = a.quiet || a.json.as_deref() == Some(Path::new("-"));
    let iv = plan.engine.interval_ns;
    if !quiet {
        eprintln!(
            "xdpgen: {} flow(s) from {} to {}, {:.1} s{}",
            flows.len(),
            port_text(&plan.engine.tx),
            plan.engine
                .rx
                .as_ref()
                .map_or("the same port (reflect)".into(), port_text),
            plan.engine.run_ns as f64 / 1e9,
            plan.description
                .as_deref()
                .map_or(String::new(), |d| format!(" — {d}"))
        );
    }
    let out = drive(plan, stop, engine, |ev| {
        if !quiet {
            eprintln!(
                "{}",
                report::interval_line(flows, ev.index, iv, &ev.bytes, plan.weighted)
            );
        }
        if let Some(w) = stream.as_mut() {
            let secs = iv as f64 / 1e9;
            let line = serde_json::json!({
                "event": "interval",
                "index": ev.index,
                "t_start_s": ev.index as f64 * secs,
                "t_end_s": (ev.index + 1) as f64 * secs,
                "rx_bytes": ev.bytes,
                "rx_packets": ev.packets,
                "rx_bps": ev.bytes.iter().map(|&b| b as f64 * 8.0 / secs).collect::<Vec<_>>(),
            });
            writeln!(w, "{line}")?;
        }
        if let (Some(w), Some(hs)) = (hdr.as_mut(), ev.latency.as_ref()) {
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
        }
        Ok(())
    })?;
    drop(hdr);
    if let Some(mut f) = hdr_file {
        f.flush()?;
    }
    let summary = report::summarize(
        flows,
        &out,
        &SummaryOptions {
            mode: mode.into(),
            tx_port: port_text(&plan.engine.tx),
            rx_port: plan
                .engine
                .rx
                .as_ref()
                .map_or_else(|| port_text(&plan.engine.tx), port_text),
            run_ns: plan.engine.run_ns,
            weighted: plan.weighted,
            link_bps: plan.link_bps,
            link_overhead: plan.link_overhead,
        },
    );
    if let Some(mut w) = stream {
        writeln!(
            w,
            "{}",
            serde_json::json!({"event": "summary", "summary": summary})
        )?;
        w.flush()?;
    }
    write_outputs(a, flows, &out, &summary)?;
    if summary.tx_uncompleted > 0 {
        anyhow::bail!(
            "{} frames counted as sent never left (the kernel did not take or complete them: did the sending interface go away or stop sending?)",
            summary.tx_uncompleted
        );
    }
    if !summary.frames_balanced {
        anyhow::bail!("UMEM frames were not all accounted for at the end (a leak): this is a bug");
    }
    Ok(())
}

/// Summary, CSV and plots (shared by both modes).
pub fn write_outputs(
    a: &SendArgs,
    flows: &[crate::spec::Flow],
    out: &Outcome,
    summary: &report::Summary,
) -> anyhow::Result<()> {
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        print!("{}", report::table(summary));
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
        report::write_csv(&mut w, flows, &out.rx.series, &out.tx.series, weighted)?;
        w.flush()?;
    }
    if let Some(stem) = &a.plot {
        let labels: Vec<String> = flows.iter().map(|f| f.name.clone()).collect();
        let rates = report::rates(&out.rx.series);
        let with = |suffix: &str| -> PathBuf {
            let mut s = stem.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        let mut written = crate::plot::rate_plot(
            &with("-rate"),
            "xdpgen: received rate per flow",
            &crate::plot::RateSeries {
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
        written.extend(crate::plot::latency_cdf_plot(
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

/// `xdpgen capacity`.
pub fn capacity(c: &CapacityArgs, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    if c.port.mode == Mode::Socket {
        anyhow::bail!(
            "xdpgen capacity needs --mode xdp (socket timestamps are too coarse for dispersion)"
        );
    }
    if !c.verbose {
        xsk::quiet_library_logs();
    }
    let (flows, run_ns) = cli::capacity_flows(c)?;
    let args = SendArgs {
        port: c.port.clone(),
        flow: Vec::new(),
        flows: None,
        scenario: None,
        duration: None,
        interval: None,
        drain: "300ms".into(),
        weights: None,
        link_rate: None,
        link_overhead: c.overhead,
        json: None,
        json_stream: None,
        csv: None,
        hdr_log: None,
        plot: None,
        quiet: true,
        verbose: c.verbose,
    };
    let mut plan = cli::plan_with_flows(&args, flows)?;
    plan.engine.run_ns = run_ns;
    // A whole train must fit in the TX ring at once, so it leaves back to back.
    plan.engine.in_flight = plan.engine.in_flight.max(c.train_len * 2);
    plan.engine.batch = plan.engine.batch.max(c.train_len);
    let out = drive(&plan, stop, run::run, |_| Ok(()))?;
    let trains: Vec<TrainRx> = (0..plan.engine.flows.len())
        .map(|i| TrainRx {
            received: out.rx.flows[i].packets,
            first_ns: out.rx.first_ns[i].unwrap_or(0),
            last_ns: out.rx.last_ns[i],
            second_ns: out.rx.second_ns[i],
        })
        .collect();
    let e = capacity::estimate(&trains, c.size, c.overhead);
    let mbit = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.2} Mbit/s", v / 1e6));
    if c.json.as_deref() != Some(Path::new("-")) {
        println!(
            "capacity {} (p10 {}, p90 {}, spread {}); pairs {}; frame bytes only {}; {} of {} trains usable, {} frames of {} B (+{} B overhead)",
            mbit(e.capacity_bps),
            mbit(e.p10_bps),
            mbit(e.p90_bps),
            e.relative_spread.map_or("-".into(), |s| format!("{:.1} %", s * 100.0)),
            mbit(e.pair_capacity_bps),
            mbit(e.capacity_frame_bytes_bps),
            e.usable,
            e.trains,
            c.train_len,
            c.size,
            c.overhead
        );
    }
    if let Some(p) = &c.json {
        let mut w = open_out(p)?;
        serde_json::to_writer_pretty(&mut w, &e)?;
        writeln!(w)?;
        w.flush()?;
    }
    if e.capacity_bps.is_none() {
        anyhow::bail!("no train arrived with two or more frames: is the path up?");
    }
    Ok(())
}
