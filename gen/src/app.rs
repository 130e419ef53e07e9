//! What the `xdpgen` binary does with a parsed command line: pick the
//! engine, run it, print interval lines while it runs, then write the
//! summary, CSV, HdrHistogram log and plots (`crate::output`).

use crate::cli::{self, CapacityArgs, Mode, SendArgs, SendPlan};
use crate::engine::{self, EngineConfig, IntervalEvent, Outcome, PortSpec};
use crate::measure::capacity::{self, TrainRx};
use crate::measure::summary::{self, SummaryOptions};
use crate::output::{self, open_out, text};
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

fn port_text(p: &PortSpec) -> String {
    match &p.netns {
        Some(n) => format!("{}@{n}", p.iface),
        None => p.iface.clone(),
    }
}

/// Runs `engine` (`engine::xdp::run` for AF_XDP), handing each interval event to
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
        return send_socket(a, stop);
    }
    if !a.verbose {
        xsk::quiet_library_logs();
    }
    let plan = cli::plan(a)?;
    measure(a, &plan, "xdp", stop, engine::xdp::run)
}

/// Sends and measures the flows with kernel UDP sockets.
fn send_socket(a: &SendArgs, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    if a.port.rx_iface.is_none() {
        anyhow::bail!(
            "--mode socket needs --rx-iface (and --rx-netns if it is in another namespace): \
             kernel sockets cannot reflect, the receiver binds UDP sockets on that port's IPv4 address"
        );
    }
    let plan = crate::cli::plan(a)?;
    let cfg = &plan.engine;
    let Some(rxp) = cfg.rx.as_ref() else {
        anyhow::bail!("--mode socket needs --rx-iface");
    };
    engine::socket::tx_groups(&cfg.flows)?;
    engine::socket::rx_ports(&cfg.flows)?;
    let src = address(&cfg.tx, a.port.src_ip, "--src-ip")?;
    let dst = address(rxp, a.port.dst_ip, "--dst-ip")?;
    if cfg.tx.netns == rxp.netns {
        eprintln!(
            "xdpgen: warning: both ports are in the same network namespace; the kernel may deliver \
             {src} -> {dst} locally instead of through the interfaces (use --netns/--rx-netns)"
        );
    }
    measure(a, &plan, "socket", stop, move |cfg, stop, events| {
        engine::socket::run(cfg, src, dst, stop, events)
    })
}

/// The IPv4 address of a port: `given`, else the interface's first.
fn address(port: &PortSpec, given: Option<Ipv4Addr>, flag: &str) -> anyhow::Result<Ipv4Addr> {
    if let Some(ip) = given {
        return Ok(ip);
    }
    let info = cli::iface_info(&port.iface, port.netns.as_deref())?;
    info.ipv4.ok_or_else(|| {
        let ns = port
            .netns
            .as_deref()
            .map_or(String::new(), |n| format!(" in network namespace {n:?}"));
        let ip = port
            .netns
            .as_deref()
            .map_or("ip".to_string(), |n| format!("ip -n {n}"));
        anyhow::anyhow!(
            "--mode socket: interface {:?}{ns} has no IPv4 address; add one (`{ip} addr add ADDR/LEN dev {}`) or give {flag}",
            port.iface,
            port.iface
        )
    })
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
    let web = match a.web.as_deref() {
        None => None,
        Some(w) => {
            let addr = web_addr(w)?;
            let live = live::Live::serve(addr)
                .map_err(|e| anyhow::anyhow!("--web {addr}: listening: {e} (is the port free?)"))?;
            if !quiet {
                eprintln!("xdpgen: live page at http://{}/", live.addr());
            }
            Some(live)
        }
    };
    let title = plan
        .description
        .clone()
        .unwrap_or_else(|| format!("xdpgen: {} flow(s), received rates", flows.len()));
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
                text::interval_line(flows, ev.index, iv, &ev.bytes, plan.weighted)
            );
        }
        if let Some(w) = stream.as_mut() {
            writeln!(w, "{}", output::interval_event(ev, iv))?;
        }
        if let Some(live) = &web {
            live.publish(&web_snapshot(plan, &title, ev));
        }
        if let Some(w) = hdr.as_mut() {
            output::hdr_interval(w, ev, iv)?;
        }
        Ok(())
    })?;
    drop(hdr);
    if let Some(mut f) = hdr_file {
        f.flush()?;
    }
    let summary = summary::summarize(
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
    output::write_outputs(a, flows, &out, &summary)?;
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

/// `--web`'s address: a port (loopback) or an address and port.
fn web_addr(s: &str) -> anyhow::Result<std::net::SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        anyhow::anyhow!(
            "--web {s:?}: expected a port (5006) or an address and port (127.0.0.1:5006)"
        )
    })
}

/// The live page's view of one interval: each flow's received rate, Jain's
/// index of the active flows' rates per unit of weight, and the largest
/// error against the max-min fair shares of --link-rate (as a share of the
/// link, like the summary's) or else against the weighted shares.
pub fn web_snapshot(plan: &SendPlan, title: &str, ev: &IntervalEvent) -> live::Snapshot {
    let flows = &plan.engine.flows;
    let secs = plan.engine.interval_ns as f64 / 1e9;
    let rates: Vec<f64> = ev.bytes.iter().map(|&b| b as f64 * 8.0 / secs).collect();
    let active: Vec<usize> = (0..rates.len()).filter(|&i| rates[i] > 0.0).collect();
    let w = |i: usize| if plan.weighted { flows[i].weight } else { 1.0 };
    let fairness = (active.len() >= 2).then(|| {
        let norm: Vec<f64> = active.iter().map(|&i| rates[i] / w(i)).collect();
        let jain = live::jain(&norm);
        match plan.link_bps {
            Some(link) => {
                // On the wire: frames plus the link's per-frame overhead.
                let oh = u64::from(plan.link_overhead);
                let wire = |i: usize| {
                    (ev.bytes[i] + ev.packets.get(i).copied().unwrap_or(0) * oh) as f64 * 8.0 / secs
                };
                let offered: Vec<f64> = active
                    .iter()
                    .map(|&i| {
                        let f = &flows[i];
                        f.rate_bps.map_or(f64::INFINITY, |r| {
                            r as f64 * (f.size + plan.link_overhead) as f64 / f.size as f64
                        })
                    })
                    .collect();
                let weights: Vec<f64> = active.iter().map(|&i| w(i)).collect();
                let fair = crate::measure::summary::max_min_shares(&offered, &weights, link);
                let err = active
                    .iter()
                    .zip(&fair)
                    .map(|(&i, s)| (wire(i) - s).abs() / link)
                    .fold(0.0, f64::max);
                live::Fairness {
                    jain,
                    max_error: err,
                    reference: format!(
                        "max-min fair shares of the {:.0} Mbit/s link (as a share of it)",
                        link / 1e6
                    ),
                }
            }
            None => {
                let r: Vec<f64> = active.iter().map(|&i| rates[i]).collect();
                let weights: Vec<f64> = active.iter().map(|&i| w(i)).collect();
                live::Fairness {
                    jain,
                    max_error: live::max_share_error(&r, &weights),
                    reference: if plan.weighted {
                        "weighted shares"
                    } else {
                        "equal shares"
                    }
                    .into(),
                }
            }
        }
    });
    live::Snapshot {
        title: title.to_owned(),
        t: (ev.index + 1) as f64 * secs,
        flows: flows
            .iter()
            .zip(&rates)
            .map(|(f, &bps)| live::FlowRate {
                name: f.name.clone(),
                bps,
            })
            .collect(),
        fairness,
    }
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
        web: None,
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
    let out = drive(&plan, stop, engine::xdp::run, |_| Ok(()))?;
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
