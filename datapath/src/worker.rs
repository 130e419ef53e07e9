//! The forwarding loop: RX → classify/schedule (sched::emulator) → TX.
//!
//! Bridge mode (`--iface A --out B`): frames from A go through the
//! configured pipes to B; frames from B go to A unscheduled. Reflect mode
//! (`--iface A`): frames from A are scheduled and sent back out of A with
//! their MAC addresses swapped. One thread serves both directions; the clock
//! is read once per loop iteration and fed to the emulator as `now_ns`.

use crate::xsk::{Xsk, XskParams};
use sched::config::Config;
use sched::emulator::{Emulator, Verdict};
use sched::Packet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xsk_rs::FrameDesc;

/// How close to a due departure the idle loop stops sleeping and spins
/// (covers a sleep's wake-up latency on a VM).
const SPIN_NS: u64 = 30_000;

/// What the scheduler queues: a UMEM frame number and the packet length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Desc {
    /// Frame number in the UMEM.
    pub frame: u32,
    /// Packet length in bytes.
    pub len: u32,
}

impl Packet for Desc {
    #[inline]
    fn len(&self) -> u32 {
        self.len
    }
}

/// Everything `run` needs, validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Port A (and the only port in reflect mode).
    pub iface: String,
    /// Port B: bridge mode.
    pub out: Option<String>,
    /// Pipes, flowsets and rules for traffic from A.
    pub emulator: Config,
    /// UMEM and ring sizes.
    pub xsk: XskParams,
    /// Frames per RX/TX batch.
    pub batch: usize,
    /// Stop after this long (None: until stopped).
    pub duration: Option<Duration>,
    /// Print a one-line summary this often (None: never).
    pub stats_interval: Option<Duration>,
    /// Write the final counters as JSON here.
    pub stats_json: Option<std::path::PathBuf>,
    /// Keep the BPF libraries' log lines.
    pub verbose: bool,
    /// Never sleep when idle.
    pub busy_poll: bool,
    /// Cores to pin workers to (empty: not pinned). One worker serves both
    /// ports today; it runs on the first core of the list.
    pub cores: Vec<usize>,
}

/// One pipe's figures (summed over its instances if dynamic).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PipeReport {
    /// Pipe name.
    pub name: String,
    /// Instances (1 for a static pipe).
    pub instances: usize,
    /// Packets and bytes delivered.
    pub delivered: u64,
    /// Bytes delivered.
    pub delivered_bytes: u64,
    /// Lost to the loss model.
    pub lost: u64,
    /// Dropped by the scheduler, by reason (unknown_flow, bad_length, flow_limit, global_limit, pushed_out).
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

/// One flowset's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowsetReport {
    /// Flowset name.
    pub name: String,
    /// Per-flow queues now.
    pub flows: usize,
    /// Created so far.
    pub created: u64,
    /// Removed after their idle timeout.
    pub expired: u64,
    /// Packets refused because the flowset was full.
    pub refused: u64,
}

/// Counters printed at exit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunStats {
    /// Frames received per port.
    pub rx: [u64; 2],
    /// Frames received per socket (port A's queues, then port B's).
    pub rx_per_queue: Vec<u64>,
    /// Frames transmitted per port.
    pub tx: [u64; 2],
    /// Frames dropped (loss, limits, malformed).
    pub dropped: u64,
    /// Frames passed unscheduled.
    pub passed: u64,
    /// Whether every UMEM frame was accounted for at exit.
    pub frames_balanced: bool,
    /// Packets delivered by the pipes (sum over pipes).
    pub pipe_delivered: u64,
    /// Packets lost to the pipes' loss models.
    pub pipe_lost: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Frames our XDP program steered to the sockets (all ports).
    pub xdp_to_socket: u64,
    /// Frames it sent past the sockets (none bound for their queue: fail-open).
    pub xdp_failed_open: u64,
    /// Per pipe.
    pub pipes: Vec<PipeReport>,
    /// Per flowset.
    pub flowsets: Vec<FlowsetReport>,
    /// Per flow: the [`TOP_FLOWS`] flows with the most bytes of each flowset.
    pub flows: Vec<FlowReport>,
}

/// Flows listed per flowset in the report (by bytes offered).
pub const TOP_FLOWS: usize = 64;

/// One flow's figures (key under its flowset's mask).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowReport {
    /// Flowset name.
    pub flowset: String,
    /// The flow: `proto src:port > dst:port` (masked fields are zero).
    pub key: String,
    /// DSCP.
    pub dscp: u8,
    /// VLAN id.
    pub vlan: u16,
    /// Packets offered.
    pub packets: u64,
    /// Bytes offered.
    pub bytes: u64,
    /// Packets dropped on arrival (limits, loss, bad length).
    pub dropped: u64,
    /// Packets queued at the end.
    pub backlog_packets: u32,
    /// Bytes queued at the end.
    pub backlog_bytes: u64,
}

fn addr(a: u128) -> String {
    let v6 = std::net::Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => format!("[{v6}]"),
    }
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        n => format!("proto{n}"),
    }
}

fn flow_reports(cfg: &Config, emu: &Emulator<Desc>) -> Vec<FlowReport> {
    let mut out = Vec::new();
    for (i, fs) in cfg.flowsets.iter().enumerate() {
        let mut v = emu.flow_stats(i);
        v.sort_by_key(|s| std::cmp::Reverse(s.tally.bytes));
        out.extend(v.into_iter().take(TOP_FLOWS).map(|s| FlowReport {
            flowset: fs.name.clone(),
            key: format!(
                "{} {}:{} > {}:{}",
                proto_name(s.key.proto),
                addr(s.key.src),
                s.key.src_port,
                addr(s.key.dst),
                s.key.dst_port
            ),
            dscp: s.key.dscp,
            vlan: s.key.vlan,
            packets: s.tally.packets,
            bytes: s.tally.bytes,
            dropped: s.tally.dropped,
            backlog_packets: s.backlog_packets,
            backlog_bytes: s.backlog_bytes,
        }));
    }
    out
}

fn pipe_reports(cfg: &Config, emu: &Emulator<Desc>) -> Vec<PipeReport> {
    cfg.pipes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (c, instances) = emu.pipe_counters(i).unwrap_or_default();
            let d = emu.pipe_drops(i).unwrap_or_default();
            PipeReport {
                name: p.name.clone(),
                instances,
                delivered: c.delivered,
                delivered_bytes: c.delivered_bytes,
                lost: c.lost,
                drops: sched::DropReason::ALL
                    .iter()
                    .map(|r| (r.name(), d.drops(*r)))
                    .collect(),
            }
        })
        .collect()
}

fn swap_macs(b: &mut [u8]) {
    if b.len() >= 12 {
        let (dst, rest) = b.split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }
}

/// Runs until `stop` is set (or the configured duration passes).
pub fn run(cfg: &RunConfig, stop: Arc<AtomicBool>) -> anyhow::Result<RunStats> {
    let mut ifaces = vec![cfg.iface.clone()];
    if let Some(o) = &cfg.out {
        ifaces.push(o.clone());
    }
    let bridge = ifaces.len() == 2;
    if let Some(&core) = cfg.cores.first() {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            anyhow::bail!("could not pin the worker to core {core}");
        }
    }
    // Timers fire when asked, not up to 50 µs (the default slack) later.
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut xsk = Xsk::open(&ifaces, &cfg.xsk)?;
    let mut emu: Emulator<Desc> = Emulator::from_config(&cfg.emulator, 0x5eed_1234)?;
    let out_port = if bridge { 1 } else { 0 };
    let batch = cfg.batch.max(1);
    let mut scratch = vec![FrameDesc::default(); batch];
    let mut scratch_v: Vec<FrameDesc> = Vec::with_capacity(batch * 4);
    let mut rx: Vec<u32> = Vec::with_capacity(batch);
    // Frames waiting for room in a TX ring, per port.
    let mut pending: [Vec<u32>; 2] = [Vec::with_capacity(batch * 4), Vec::with_capacity(batch * 4)];
    let mut queued = 0usize; // frames inside the emulator
    let mut stats = RunStats::default();
    let t0 = Instant::now();
    let mut last_stats = t0;
    // Sockets: side-major, `queues` per interface; each side transmits on the
    // socket of its queue 0 (one scheduler per egress port: fairness is global
    // across the RX queues).
    let nports = xsk.ports.len();
    let queues = cfg.xsk.queues.max(1) as usize;
    let tx_port = [0, if bridge { queues } else { 0 }];
    stats.rx_per_queue = vec![0; nports];
    let fill = (cfg.xsk.ring_size as usize).min(xsk.total_frames() / (nports + 1));
    for p in 0..nports {
        xsk.refill(p, fill, &mut scratch_v);
    }
    while !stop.load(Ordering::Relaxed) {
        let now_i = Instant::now();
        if cfg.duration.is_some_and(|d| now_i - t0 >= d) {
            break;
        }
        let mut now = (now_i - t0).as_nanos() as u64;
        let mut work = 0usize;

        for p in 0..nports {
            rx.clear();
            let n = xsk.receive(p, &mut scratch, &mut rx);
            let side = xsk.ports[p].side;
            stats.rx[side] += n as u64;
            stats.rx_per_queue[p] += n as u64;
            work += n;
            if side == 1 {
                // Port B (bridge): straight back to A.
                pending[0].extend_from_slice(&rx);
                continue;
            }
            if n > 0 {
                // Arrival time: read after the frames were taken, never before (a
                // thread preempted between a clock read and the RX ring would
                // otherwise date frames too early and shorten a pipe's delay).
                now = now.max(t0.elapsed().as_nanos() as u64);
            }
            // Port A: through the emulator.
            for &f in &rx {
                let len = xsk.descs[f as usize].lengths().data() as u32;
                let d = Desc { frame: f, len };
                match emu.enqueue(now, xsk.data(f), d) {
                    Verdict::Queued { .. } => queued += 1,
                    Verdict::QueuedPushedOut { victim, .. } => {
                        xsk.free.push(victim.frame);
                        stats.dropped += 1;
                    }
                    Verdict::Pass(p) => {
                        stats.passed += 1;
                        if !bridge {
                            xsk.with_data_mut(p.frame, swap_macs);
                        }
                        pending[out_port].push(p.frame);
                    }
                    Verdict::Dropped(p, _) => {
                        stats.dropped += 1;
                        xsk.free.push(p.frame);
                    }
                }
            }
        }
        // Scheduled output, keeping the TX ring shallow: queueing happens in the
        // scheduler, where it can be fair, not in the ring.
        while pending[out_port].len() < batch {
            let Some((_, _, d)) = emu.dequeue(now) else {
                break;
            };
            queued -= 1;
            pending[out_port].push(d.frame);
        }
        if !bridge {
            for &f in &pending[0] {
                xsk.with_data_mut(f, swap_macs);
            }
        }
        for (side, out) in pending.iter_mut().enumerate().take(ifaces.len()) {
            if !out.is_empty() {
                let sent = xsk.transmit(tx_port[side], out, &mut scratch_v);
                out.drain(..sent);
                stats.tx[side] += sent as u64;
                work += sent;
            }
        }
        for p in 0..nports {
            if xsk.kick(p) {
                // The kernel needs kicks to make progress: not idle.
                work += 1;
            }
            xsk.complete(p, &mut scratch);
            xsk.refill(p, batch, &mut scratch_v);
        }
        if let Some(iv) = cfg.stats_interval {
            if now_i - last_stats >= iv {
                last_stats = now_i;
                let pipes: Vec<String> = pipe_reports(&cfg.emulator, &emu)
                    .iter()
                    .map(|p| format!("{}: {} out, {} lost", p.name, p.delivered, p.lost))
                    .collect();
                eprintln!(
                    "xdpsched: rx {:?} tx {:?} dropped {} passed {} queued {} | {}",
                    stats.rx,
                    stats.tx,
                    stats.dropped,
                    stats.passed,
                    queued,
                    pipes.join("; ")
                );
            }
        }
        if work == 0 && !cfg.busy_poll {
            // Idle: sleep until shortly before the next scheduled departure (at most
            // 100 µs, so that new arrivals are picked up promptly), then spin: a
            // departure leaves within the loop time of its due time, not a timer's
            // overshoot later.
            let wait = emu
                .next_wakeup()
                .map_or(100_000, |t| t.saturating_sub(now).min(100_000));
            if wait > SPIN_NS {
                std::thread::sleep(Duration::from_nanos(wait - SPIN_NS));
            } else {
                std::hint::spin_loop();
            }
        }
    }
    // Per-flow figures as they stand (backlogs included), before the drain.
    stats.flows = flow_reports(&cfg.emulator, &emu);
    // Drain what is in the emulator and the pending lists back to the free list.
    while let Some((_, _, d)) = emu.dequeue(u64::MAX) {
        queued -= 1;
        xsk.free.push(d.frame);
    }
    for p in pending.iter_mut() {
        xsk.free.append(p);
    }
    // Let in-flight TX complete.
    for _ in 0..100 {
        if xsk.ledger.in_tx == 0 {
            break;
        }
        for p in 0..nports {
            xsk.complete(p, &mut scratch);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stats.frames_balanced = xsk.balanced(queued);
    for (to_socket, failed_open) in xsk.program_counters() {
        stats.xdp_to_socket += to_socket;
        stats.xdp_failed_open += failed_open;
    }
    stats.pipes = pipe_reports(&cfg.emulator, &emu);
    stats.pipe_delivered = stats.pipes.iter().map(|p| p.delivered).sum();
    stats.pipe_lost = stats.pipes.iter().map(|p| p.lost).sum();
    stats.flowsets = cfg
        .emulator
        .flowsets
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (flows, c) = emu.flowset_counters(i).unwrap_or_default();
            FlowsetReport {
                name: f.name.clone(),
                flows,
                created: c.created,
                expired: c.expired,
                refused: c.refused,
            }
        })
        .collect();
    stats.malformed = emu.counters().malformed;
    Ok(stats)
}
