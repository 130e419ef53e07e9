//! A run: the scheduled directions built from the configuration, the UMEM
//! budget checked, the AF_XDP lanes opened, one worker thread per lane (see
//! `lane`), and at exit every frame home and the counters summed.
//!
//! Bridge mode (`--iface A --out B`): frames from A go through the pipes
//! the configuration gives A→B and out of B; frames from B go through B→A's
//! pipes, or straight to A when no rule or default names that direction.
//! Reflect mode (`--iface A`): frames from A are scheduled and sent back out
//! of A with their MAC addresses swapped.
//!
//! Threads: one worker per served RX socket, unpinned (or one per core of
//! `--cores`, pinned, when fewer), run to completion where it can. A bridge with one
//! queue runs its two directions on two threads, so the kernel work that a
//! TX kick does on veth (the receiving side's stack runs inside the sender's
//! syscall) is spread over two CPUs. Each egress port is owned by one
//! worker, which runs that direction's scheduler (if it is scheduled);
//! workers whose frames are for another worker's egress
//! hand the descriptors over through a lock-free queue, and frames return to
//! the worker whose share of the UMEM they belong to (`plan`).

use crate::config::RunConfig;
use crate::direction::{directions, Sched};
use crate::failopen::{FailOpen, KernelBridge};
use crate::lane::{LaneOut, Shared, Worker};
use crate::plan::Plan;
use crate::stats::{FlowReport, RunStats, SocketReport};
use anyhow::Context;
use sched::config::{Config, Direction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xsk::{Clock, Lane, Xsk};

/// Runs until `stop` is set (or the configured duration passes); reloads
/// the configuration file whenever `hup` is set (SIGHUP).
pub fn run(
    cfg: &RunConfig,
    stop: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
) -> anyhow::Result<RunStats> {
    let mut ifaces = vec![cfg.iface.clone()];
    if let Some(o) = &cfg.out {
        ifaces.push(o.clone());
    }
    let bridge = ifaces.len() == 2;
    let queues = cfg.xsk.queues.max(1) as usize;
    let sockets = ifaces.len() * queues;
    let lanes = if cfg.cores.is_empty() {
        sockets
    } else {
        cfg.cores.len().min(sockets)
    };
    let plan = Plan {
        lanes,
        queues,
        bridge,
    };
    let seed = crate::direction::run_seed(&cfg.emulator);
    tracing::info!(
        "seed {seed}{} (seed = {seed} in the configuration replays its random processes)",
        if cfg.emulator.seed.is_some() {
            ", from the configuration"
        } else {
            ", drawn at start"
        }
    );
    let mut scheds = directions(&cfg.emulator, bridge, seed, 0)?;
    let dirs: Vec<(Direction, &Config)> = scheds
        .iter()
        .flatten()
        .map(|sc| (sc.dir, &sc.cfg))
        .collect();
    for w in crate::budget::check_frames(cfg, &plan, &dirs)? {
        tracing::warn!("{w}");
    }
    // Before anything touches the ports: a second instance on them is refused.
    let mut control = crate::control::Control::bind(&ifaces, cfg.metrics)?;
    control.config.clone_from(&cfg.config_path);
    control.seed = seed;
    let mut xsk = Xsk::open_lanes(&ifaces, &cfg.xsk, &plan)?;
    control.modes = xsk.port_modes();
    if let Some(addr) = cfg.web {
        let live = live::Live::serve(addr).with_context(|| {
            format!("--web {addr}: listening (is the address on an interface of this network namespace, and the port free?)")
        })?;
        tracing::info!("live page at http://{}/", live.addr());
        control.web = Some(crate::control::Web::new(live, ifaces.join(" → ")));
    }
    for (i, (iface, (xdp, zc))) in ifaces.iter().zip(&control.modes).enumerate() {
        tracing::info!(
            "{iface}: XDP program attached in {xdp} mode, AF_XDP sockets in {} mode, {} partial checksums (--checksum)",
            if *zc { "zero-copy" } else { "copy" },
            if cfg.complete_checksums[i] { "completing" } else { "keeping" }
        );
    }
    // Declared after `xsk`, dropped before it: on a clean exit the bridge goes
    // first, then the programs.
    let _bridge = fail_open(cfg)?;
    let total = xsk.total_frames();
    let (trace_logs, log_writer) = crate::tracelog::TraceLogs::start();
    let mut sh = Shared::new(plan, stop, total, trace_logs)?;
    crate::capture::set_names(&sh.tap, &scheds, bridge);
    if let Some(path) = &cfg.capture {
        sh.tap.start(crate::capture::Job {
            path: path.clone(),
            duration: None,
        })?;
    }
    let taken = std::mem::take(&mut xsk.lanes);
    let program = || {
        xsk.program_counters()
            .into_iter()
            .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
    };
    let unbind = || xsk.unbind_sockets();
    control.hup = Some(hup);
    let outs = spawn(cfg, &sh, taken, &mut scheds, program, unbind, &mut control);
    let mut stats = RunStats {
        complete_checksums: cfg.complete_checksums[..ifaces.len()].to_vec(),
        rx_per_queue: vec![0; sockets],
        workers: lanes,
        seed,
        ..RunStats::default()
    };
    let mut done: Vec<(Sched, Vec<FlowReport>)> = Vec::new();
    for out in outs {
        let out = out?;
        stats.add_counts(&out.counts, queues);
        done.extend(out.scheds);
        xsk.lanes.push(out.lane);
    }
    stats.frames_balanced = settle(&mut xsk, &sh) == total as u64;
    // The workers are gone: the packet logs end.
    sh.trace_logs.close();
    let _ = log_writer.join();
    stats.trace_log_lost = sh
        .trace_logs
        .lost
        .load(std::sync::atomic::Ordering::Relaxed);
    for lane in &xsk.lanes {
        for (p, port) in lane.ports.iter().enumerate() {
            if let Some(Ok(s)) = lane.socket_stats(p) {
                stats.kernel += s;
                stats.kernel_sockets.push(SocketReport {
                    iface: port.name.clone(),
                    queue: port.queue,
                    stats: s,
                });
            }
        }
    }
    stats.lost_before_rx = stats.kernel.lost_before_rx();
    if let Ok(s) = sh.tap.status.lock() {
        if s.file.is_some() {
            stats.capture = Some(s.clone());
        }
    }
    for (to_socket, failed_open) in xsk.program_counters() {
        stats.xdp_to_socket += to_socket;
        stats.xdp_failed_open += failed_open;
    }
    if done.is_empty() {
        anyhow::bail!("no worker returned the scheduler");
    }
    stats.add_scheds(done);
    Ok(stats)
}

/// What the ports do if xdpsched dies: the kernel bridge (returned: it
/// goes when dropped), or leftovers of an earlier run removed.
fn fail_open(cfg: &RunConfig) -> anyhow::Result<Option<KernelBridge>> {
    let Some(out) = &cfg.out else {
        return Ok(None);
    };
    match cfg.fail_open {
        FailOpen::Bridge => Ok(Some(
            KernelBridge::create(&cfg.iface, out)
                .context("--fail-open bridge: setting up the kernel bridge")?,
        )),
        FailOpen::Redirect => {
            crate::failopen::remove_leftover(&[&cfg.iface, out])?;
            if crate::failopen::is_veth(&cfg.iface) || crate::failopen::is_veth(out) {
                tracing::warn!("--fail-open redirect into a veth works only if the veth's peer has NAPI (GRO on, or an XDP program attached); with the kernel's defaults a killed xdpsched drops every frame. --fail-open bridge works on any ports");
            }
            Ok(None)
        }
        _ => {
            crate::failopen::remove_leftover(&[&cfg.iface, out])?;
            Ok(None)
        }
    }
}

/// Sets the stop flag if its thread unwinds from a panic.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// How often the thread that started the workers looks at the stop flag.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// How long the workers go on after the sockets left the programs: enough
/// to read what the RX rings hold.
const STOP_GRACE: Duration = Duration::from_millis(20);
/// How often the XDP programs' counters are read for the stats line.
const PROGRAM_EVERY: Duration = Duration::from_millis(100);

/// One worker thread per lane, each with the directions whose egress its
/// lane owns; returns when all have stopped, with their results. Meanwhile
/// this thread watches the stop flag and the duration, answers the control
/// socket (`xdpsched show`), and with
/// `--stats-interval` reads the XDP programs' counters (`program`: frames
/// to the sockets, frames failed open) for the live line. To stop, it takes
/// the sockets out of the programs (`unbind`: new frames go where they
/// would if xdpsched had died, instead of into RX rings nobody reads), lets
/// the workers read what their rings hold, then halts them.
fn spawn(
    cfg: &RunConfig,
    sh: &Shared,
    lanes: Vec<Lane>,
    scheds: &mut [Option<Sched>; 2],
    program: impl Fn() -> (u64, u64),
    unbind: impl Fn() -> std::io::Result<()>,
    control: &mut crate::control::Control,
) -> Vec<anyhow::Result<LaneOut>> {
    let clock = Clock::start();
    let ifaces = control.ifaces().to_vec();
    // Wall-clock time of the run's clock zero: capture timestamps.
    let epoch_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        .saturating_sub(clock.now_ns());
    let capture_halt = AtomicBool::new(false);
    std::thread::scope(|s| {
        // The capture thread: idle until a capture is asked for.
        let capture = std::thread::Builder::new()
            .name("xdpsched-capture".into())
            .spawn_scoped(s, || {
                crate::capture::run(&sh.tap, &ifaces, epoch_ns, &capture_halt)
            });
        let mut handles = Vec::with_capacity(lanes.len());
        let mut outs = Vec::with_capacity(lanes.len() + 1);
        for lane in lanes {
            let mut mine: [Option<Sched>; 2] = [None, None];
            for (side, sc) in scheds.iter_mut().enumerate() {
                if sh.plan.owner(side) == lane.id {
                    mine[side] = sc.take();
                }
            }
            // Where each worker runs: on the listed core, or (no --cores) where
            // the kernel puts it. Unpinned is the default: on 2 vCPUs, where the
            // endpoints share the cores, pinning cost iperf3 TCP and left 64-byte
            // floods the same; it helped only 1500-byte floods with the veths'
            // NAPI threaded (README).
            let core = cfg.cores.get(lane.id).copied();
            let spawned = std::thread::Builder::new()
                .name(format!("xdpsched-{}", lane.id))
                .spawn_scoped(s, move || {
                    // A worker that panics stops the others (they would otherwise
                    // run on, and the owner's inbox fill up, until SIGINT).
                    let _guard = StopOnPanic(&sh.stop);
                    let r = Worker::new(cfg, sh, lane, mine, core, clock).map(Worker::run);
                    if r.is_err() {
                        sh.stop.store(true, Ordering::Relaxed);
                    }
                    r
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(err) => {
                    sh.stop.store(true, Ordering::Relaxed);
                    outs.push(Err(
                        anyhow::Error::from(err).context("starting a worker thread")
                    ));
                    break;
                }
            }
        }
        let started = Instant::now();
        let mut counted: Option<Instant> = None;
        while !handles.iter().all(|h| h.is_finished()) {
            if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
                sh.stop.store(true, Ordering::Relaxed);
            }
            if sh.stop.load(Ordering::Relaxed) {
                break;
            }
            if cfg.stats_interval.is_some() && counted.is_none_or(|t| t.elapsed() >= PROGRAM_EVERY)
            {
                counted = Some(Instant::now());
                let (to_socket, failed_open) = program();
                sh.program[0].store(to_socket, Ordering::Relaxed);
                sh.program[1].store(failed_open, Ordering::Relaxed);
            }
            control.serve(sh, cfg, &program);
            std::thread::sleep(WATCH_EVERY);
        }
        if let Err(err) = unbind() {
            tracing::warn!("taking the sockets out of the XDP programs at stop: {err}; frames arriving from now until the programs detach are lost (counted in lost_before_rx)");
        } else {
            std::thread::sleep(STOP_GRACE);
        }
        sh.halt.store(true, Ordering::Relaxed);
        for w in &sh.wake {
            w.nudge();
        }
        for h in handles {
            outs.push(
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked"))),
            );
        }
        // After the workers: what they recorded is written, then the file closed.
        capture_halt.store(true, Ordering::Relaxed);
        match capture {
            Ok(h) => {
                if h.join().is_err() {
                    outs.push(Err(anyhow::anyhow!("the capture thread panicked")));
                }
            }
            Err(e) => tracing::error!("the capture thread did not start: {e}"),
        }
        outs
    })
}

/// After the workers: frames still travelling between lanes go home; then
/// every frame must be with its lane (free, away or in a ring): the
/// emulators and the pending lists were drained by the workers. Returns
/// the frames the lanes hold.
fn settle(xsk: &mut Xsk, sh: &Shared) -> u64 {
    xsk.lanes.sort_by_key(|l| l.id);
    let mut home = Vec::new();
    for e in &sh.inbox {
        while let Some(d) = e.pop() {
            let f = xsk.lanes[0].adopt(d);
            xsk.lanes[0].release(f);
        }
    }
    xsk.lanes[0].send_away(|o, t| home.push((o, t)));
    for (i, q) in sh.back.iter().enumerate() {
        while let Some(t) = q.pop() {
            home.push((i, t));
        }
    }
    for (o, t) in home {
        xsk.lanes[o].take_back(t);
    }
    xsk.lanes.iter().map(Lane::held).sum()
}
