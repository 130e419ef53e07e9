//! The forwarding loop: RX → classify/schedule (sched::emulator) → TX.
//!
//! Bridge mode (`--iface A --out B`): frames from A go through the
//! configured pipes to B; frames from B go to A unscheduled. Reflect mode
//! (`--iface A`): frames from A are scheduled and sent back out of A with
//! their MAC addresses swapped.
//!
//! Threads: one worker per served RX socket, unpinned (or one per core of
//! `--cores`, pinned, when fewer), run to completion where it can. A bridge with one
//! queue runs its two directions on two threads, so the kernel work that a
//! TX kick does on veth (the receiving side's stack runs inside the sender's
//! syscall) is spread over two CPUs. Each egress port is owned by one
//! worker, and the scheduled one has the scheduler (a bridge's other
//! direction is forwarded unscheduled); workers whose frames are for another worker's egress
//! hand the descriptors over through a lock-free queue, and frames return to
//! the worker whose share of the UMEM they belong to. The clock is read once
//! per loop iteration (and again after a non-empty RX batch) and fed to the
//! emulator as `now_ns`.

use crate::xsk::{Handoff, Homeward, Lane, LanePlan, Xsk, XskParams};
use crossbeam_queue::ArrayQueue;
use nix::sys::eventfd::{EfdFlags, EventFd};
use sched::config::Config;
use sched::emulator::{Emulator, Verdict};
use sched::Packet;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xsk_rs::FrameDesc;

/// How close to a due departure the idle loop stops sleeping and spins
/// (covers a sleep's wake-up latency on a VM).
const SPIN_NS: u64 = 30_000;
/// Longest idle sleep while frames wait for TX room or completion.
const SHORT_IDLE_NS: u64 = 100_000;
/// Longest idle sleep otherwise (ppoll wakes the lane on arrivals; this
/// bounds how late it sees the stop flag).
const LONG_IDLE_NS: u64 = 20_000_000;
/// `SO_BUSY_POLL` with `--busy-poll`: how long one poll may spin in the
/// kernel waiting for packets (xdpsock's and the kernel documentation's 20).
const BUSY_POLL_US: u32 = 20;

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
    /// Never sleep when idle, and busy-poll the receiving devices' NAPI
    /// (SO_PREFER_BUSY_POLL) from the workers.
    pub busy_poll: bool,
    /// Cores to pin workers to, one worker each (empty: one unpinned worker
    /// per RX socket).
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
    /// Worker threads (one per lane).
    pub workers: usize,
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
    /// Most frames one port had with the kernel for transmission at once
    /// (TX ring and completion), bounded by the TX budget of two batches.
    pub tx_in_flight_max: u64,
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

/// Which thread does what. Sockets are per (side, queue), numbered side
/// first; socket `i` is received on by lane `i % lanes`, shifted by one on
/// side B when that would put both sides' queue 0 on one lane, so that the
/// two directions of a bridge run on two threads whenever there are two.
/// Each egress port transmits on its queue-0 socket, driven by the lane that
/// receives the traffic for it on queue 0 (run to completion); other lanes
/// hand their frames over.
#[derive(Debug, Clone, Copy)]
struct Plan {
    lanes: usize,
    queues: usize,
    bridge: bool,
}

impl Plan {
    /// The egress side of traffic received on `side`.
    fn egress(&self, side: usize) -> usize {
        if self.bridge {
            1 - side
        } else {
            0
        }
    }

    /// The lane that owns (transmits on, schedules for) egress side `e`.
    fn owner(&self, e: usize) -> usize {
        self.rx_lane(self.egress(e), 0)
    }
}

impl LanePlan for Plan {
    fn lanes(&self) -> usize {
        self.lanes
    }
    fn rx_lane(&self, side: usize, queue: u32) -> usize {
        let shift = side * usize::from(self.queues % self.lanes == 0);
        (side * self.queues + queue as usize + shift) % self.lanes
    }
    fn tx_lane(&self, side: usize, queue: u32) -> Option<usize> {
        (queue == 0).then(|| self.owner(side))
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

/// What the lanes share: hand-off queues and live counters.
struct Shared {
    plan: Plan,
    stop: Arc<AtomicBool>,
    /// Per egress side: frames received by a lane that does not own it.
    inbox: [ArrayQueue<Handoff>; 2],
    /// Per lane: its frames coming back from other lanes.
    back: Vec<ArrayQueue<Homeward>>,
    /// Per lane: how another lane wakes it after pushing into its inbox or
    /// return queue.
    wake: Vec<Wake>,
    /// Per lane: rx A, rx B, tx A, tx B, dropped, passed (for the stats line).
    live: Vec<[AtomicU64; 6]>,
}

/// Wakes a lane sleeping in `ppoll` (its eventfd is in the poll set).
struct Wake {
    fd: EventFd,
    sleeping: AtomicBool,
}

impl Wake {
    fn new() -> anyhow::Result<Self> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|e| anyhow::anyhow!("creating an eventfd for a worker: {e}"))?;
        Ok(Self {
            fd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// After pushing frames for this lane: wakes it if it sleeps. The fence
    /// pairs with the one in [`Wake::sleep`]: either the sleeper sees the
    /// frames before it sleeps, or this sees it sleeping.
    fn nudge(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            let _ = self.fd.write(1);
        }
    }

    /// Sleeps in `wait` unless `pending()` finds frames pushed for the lane.
    fn sleep(&self, pending: impl FnOnce() -> bool, wait: impl FnOnce() -> bool) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let woken = !pending() && wait();
        self.sleeping.store(false, Ordering::Relaxed);
        if woken {
            // Reset the counter (non-blocking; nothing to read is fine).
            let _ = self.fd.read();
        }
    }
}

/// One lane's counters.
#[derive(Debug, Default)]
struct Counts {
    rx: [u64; 2],
    tx: [u64; 2],
    dropped: u64,
    passed: u64,
    /// Most frames in flight on one TX port at once.
    in_flight_max: u64,
    /// Frames received per local port index (with the port's side and queue).
    rx_ports: Vec<(usize, u32, u64)>,
}

/// One lane's result.
struct LaneOut {
    lane: Lane,
    counts: Counts,
    /// The scheduling lane's emulator, and its per-flow figures taken before
    /// the drain (backlogs included).
    emu: Option<(Emulator<Desc>, Vec<FlowReport>)>,
}

/// The egress side of a lane: the emulator (on the lane that schedules) and
/// the frames waiting for room in a TX ring.
struct Egress {
    emu: Option<Emulator<Desc>>,
    /// Per egress side.
    pending: [Vec<u32>; 2],
    /// Frames inside the emulator.
    queued: usize,
    sched_side: usize,
    reflect: bool,
}

impl Egress {
    /// A frame arriving for egress `e` (received here or handed over): through
    /// the emulator if `e` is the scheduled side, else straight on.
    fn arrive(&mut self, lane: &mut Lane, c: &mut Counts, e: usize, now: u64, f: u32) {
        let Some(emu) = self.emu.as_mut().filter(|_| e == self.sched_side) else {
            self.pending[e].push(f);
            return;
        };
        let len = lane.frame_len(f);
        match emu.enqueue(now, lane.data(f), Desc { frame: f, len }) {
            Verdict::Queued { .. } => self.queued += 1,
            Verdict::QueuedPushedOut { victim, .. } => {
                lane.release(victim.frame);
                c.dropped += 1;
            }
            Verdict::Pass(p) => {
                c.passed += 1;
                if self.reflect {
                    lane.with_data_mut(p.frame, swap_macs);
                }
                self.pending[e].push(p.frame);
            }
            Verdict::Dropped(p, _) => {
                c.dropped += 1;
                lane.release(p.frame);
            }
        }
    }

    /// Moves due packets from the emulator to the pending list, keeping at
    /// most `batch` there (with the TX budget in the loop, the TX ring stays
    /// shallow and the backlog stays in the scheduler).
    fn dequeue(&mut self, lane: &mut Lane, now: u64, batch: usize) {
        let Some(emu) = self.emu.as_mut() else {
            return;
        };
        let out = &mut self.pending[self.sched_side];
        while out.len() < batch {
            let Some((_, _, d)) = emu.dequeue(now) else {
                break;
            };
            self.queued -= 1;
            if self.reflect {
                lane.with_data_mut(d.frame, swap_macs);
            }
            out.push(d.frame);
        }
    }
}

/// Runs until `stop` is set (or the configured duration passes).
pub fn run(cfg: &RunConfig, stop: Arc<AtomicBool>) -> anyhow::Result<RunStats> {
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
    let mut xsk = Xsk::open_lanes(&ifaces, &cfg.xsk, &plan)?;
    let emu: Emulator<Desc> = Emulator::from_config(&cfg.emulator, 0x5eed_1234)?;
    let total = xsk.total_frames();
    let sh = Shared {
        plan,
        stop,
        inbox: [ArrayQueue::new(total), ArrayQueue::new(total)],
        back: (0..lanes).map(|_| ArrayQueue::new(total)).collect(),
        wake: (0..lanes)
            .map(|_| Wake::new())
            .collect::<anyhow::Result<_>>()?,
        live: (0..lanes).map(|_| Default::default()).collect(),
    };
    let sched_side = plan.egress(0);
    let mut emu = Some(emu);
    let taken = std::mem::take(&mut xsk.lanes);
    let outs: Vec<anyhow::Result<LaneOut>> = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(lanes);
        let mut outs = Vec::with_capacity(lanes + 1);
        for lane in taken {
            let e = (lane.id == plan.owner(sched_side))
                .then(|| emu.take())
                .flatten();
            // Where each worker runs: on the listed core, or (no --cores) where
            // the kernel puts it. Unpinned is the default: on 2 vCPUs, where the
            // endpoints share the cores, pinning cost iperf3 TCP and left 64-byte
            // floods the same; it helped only 1500-byte floods with the veths'
            // NAPI threaded (README).
            let core = cfg.cores.get(lane.id).copied();
            let sh = &sh;
            let spawned = std::thread::Builder::new()
                .name(format!("xdpsched-{}", lane.id))
                .spawn_scoped(s, move || {
                    // A worker that panics stops the others (they would otherwise
                    // run on, and the owner's inbox fill up, until SIGINT).
                    let _guard = StopOnPanic(&sh.stop);
                    let r = lane_loop(cfg, sh, lane, e, core);
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
        for h in handles {
            outs.push(
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked"))),
            );
        }
        outs
    });
    let mut stats = RunStats {
        rx_per_queue: vec![0; sockets],
        workers: lanes,
        ..RunStats::default()
    };
    let mut emu = None;
    for out in outs {
        let out = out?;
        let c = out.counts;
        for i in 0..2 {
            stats.rx[i] += c.rx[i];
            stats.tx[i] += c.tx[i];
        }
        stats.dropped += c.dropped;
        stats.passed += c.passed;
        stats.tx_in_flight_max = stats.tx_in_flight_max.max(c.in_flight_max);
        for (side, queue, n) in c.rx_ports {
            stats.rx_per_queue[side * queues + queue as usize] += n;
        }
        if out.emu.is_some() {
            emu = out.emu;
        }
        xsk.lanes.push(out.lane);
    }
    xsk.lanes.sort_by_key(|l| l.id);
    // Frames still travelling between lanes go home; then every frame must be
    // with its lane (free, away or in a ring): the emulator and the pending
    // lists were drained by the lanes.
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
    let held: u64 = xsk.lanes.iter().map(Lane::held).sum();
    stats.frames_balanced = held == total as u64;
    for (to_socket, failed_open) in xsk.program_counters() {
        stats.xdp_to_socket += to_socket;
        stats.xdp_failed_open += failed_open;
    }
    let (emu, flows) =
        emu.ok_or_else(|| anyhow::anyhow!("the scheduling lane returned no emulator"))?;
    stats.flows = flows;
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

/// One worker thread: receives on its lane's sockets, schedules and
/// transmits for the egress ports it owns, hands frames for other egress
/// ports to their owner and returns other lanes' frames home.
fn lane_loop(
    cfg: &RunConfig,
    sh: &Shared,
    mut lane: Lane,
    emu: Option<Emulator<Desc>>,
    core: Option<usize>,
) -> anyhow::Result<LaneOut> {
    if let Some(core) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            anyhow::bail!("could not pin worker {} to core {core}", lane.id);
        }
    }
    // Timers fire when asked, not up to 50 µs (the default slack) later.
    let _ = nix::sys::prctl::set_timerslack(1);
    if cfg.busy_poll {
        lane.enable_busy_poll(BUSY_POLL_US, cfg.batch.max(1) as u32)
            .map_err(|e| anyhow::anyhow!("--busy-poll: setting SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on the AF_XDP sockets: {e}"))?;
    }
    let me = lane.id;
    let plan = sh.plan;
    let sched_side = plan.egress(0);
    let reflect = !plan.bridge;
    let sides = if plan.bridge { 2 } else { 1 };
    // The egress sides this lane owns, and the local port it transmits them on.
    let mut tx_port: [Option<usize>; 2] = [None; 2];
    for (i, p) in lane.ports.iter().enumerate() {
        if p.transmits() {
            tx_port[p.side] = Some(i);
        }
    }
    let owned: Vec<usize> = (0..sides).filter(|&e| tx_port[e].is_some()).collect();
    // Other lanes wake this one when they push frames for it.
    lane.watch(sh.wake[me].fd.as_raw_fd());
    // Lanes this iteration sent frames home to (to wake them once).
    let mut homeward = vec![false; sh.back.len()];
    let receiving: Vec<usize> = (0..lane.ports.len())
        .filter(|&i| lane.ports[i].receives())
        .collect();
    let batch = cfg.batch.max(1);
    let mut scratch = vec![FrameDesc::default(); batch];
    let mut scratch_v: Vec<FrameDesc> = Vec::with_capacity(batch * 4);
    let mut rx: Vec<u32> = Vec::with_capacity(batch);
    let mut eg = Egress {
        emu,
        pending: [Vec::with_capacity(batch * 4), Vec::with_capacity(batch * 4)],
        queued: 0,
        sched_side,
        reflect,
    };
    let mut out = Counts {
        rx_ports: lane.ports.iter().map(|p| (p.side, p.queue, 0)).collect(),
        ..Counts::default()
    };
    let t0 = Instant::now();
    let mut last_stats = t0;
    while !sh.stop.load(Ordering::Relaxed) {
        let now_i = Instant::now();
        if cfg.duration.is_some_and(|d| now_i - t0 >= d) {
            break;
        }
        let mut now = (now_i - t0).as_nanos() as u64;
        let mut work = 0usize;
        if cfg.busy_poll {
            lane.busy_poll();
        }
        for &p in &receiving {
            rx.clear();
            let n = lane.receive(p, &mut scratch, &mut rx);
            if n == 0 {
                continue;
            }
            let side = lane.ports[p].side;
            out.rx[side] += n as u64;
            out.rx_ports[p].2 += n as u64;
            work += n;
            let e = plan.egress(side);
            if tx_port[e].is_none() {
                for &f in &rx {
                    // Room for every frame of the UMEM: a push cannot fail.
                    let _ = sh.inbox[e].push(lane.hand_over(f));
                }
                sh.wake[plan.owner(e)].nudge();
                continue;
            }
            // Arrival time: read after the frames were taken, never before (a
            // thread preempted between a clock read and the RX ring would
            // otherwise date frames too early and shorten a pipe's delay).
            now = now.max(t0.elapsed().as_nanos() as u64);
            for &f in &rx {
                eg.arrive(&mut lane, &mut out, e, now, f);
            }
        }
        // Frames other lanes received for the egress ports this lane owns, dated
        // now (not at the loop's start: they may have arrived since).
        for &e in &owned {
            if sh.inbox[e].is_empty() {
                continue;
            }
            now = now.max(t0.elapsed().as_nanos() as u64);
            for _ in 0..batch * 4 {
                let Some(d) = sh.inbox[e].pop() else { break };
                let f = lane.adopt(d);
                work += 1;
                eg.arrive(&mut lane, &mut out, e, now, f);
            }
        }
        // Scheduled output, keeping the TX ring shallow: queueing happens in the
        // scheduler, where it can be fair, not in the ring.
        eg.dequeue(&mut lane, now, batch);
        for &e in &owned {
            let Some(p) = tx_port[e] else { continue };
            // The TX budget (like BQL): at most two batches with the kernel, so that
            // a device that falls behind leaves the backlog in the scheduler.
            let room = (2 * batch).saturating_sub(lane.ports[p].in_flight as usize);
            let take = eg.pending[e].len().min(room);
            if take > 0 {
                let sent = lane.transmit(p, &eg.pending[e][..take], &mut scratch_v);
                out.in_flight_max = out.in_flight_max.max(lane.ports[p].in_flight);
                eg.pending[e].drain(..sent);
                out.tx[e] += sent as u64;
                work += sent;
            }
            if lane.kick(p) {
                // The kernel needs kicks to make progress: not idle.
                work += 1;
            }
            lane.complete(p, &mut scratch);
        }
        // Other lanes' frames go home; ours come back.
        lane.send_away(|o, f| {
            // Room for every frame of the UMEM: a push cannot fail.
            let _ = sh.back[o].push(f);
            homeward[o] = true;
        });
        for (o, sent) in homeward.iter_mut().enumerate() {
            if std::mem::take(sent) {
                sh.wake[o].nudge();
            }
        }
        while let Some(t) = sh.back[me].pop() {
            lane.take_back(t);
        }
        for &p in &receiving {
            lane.refill(p, batch, &mut scratch_v);
        }
        if work > 0 {
            let l = &sh.live[me];
            for (a, v) in l.iter().zip([
                out.rx[0],
                out.rx[1],
                out.tx[0],
                out.tx[1],
                out.dropped,
                out.passed,
            ]) {
                a.store(v, Ordering::Relaxed);
            }
        }
        if let (Some(iv), Some(emu)) = (cfg.stats_interval, eg.emu.as_ref()) {
            if now_i - last_stats >= iv {
                last_stats = now_i;
                print_line(sh, &cfg.emulator, emu, eg.queued);
            }
        }
        if work == 0 && !cfg.busy_poll {
            // Idle: sleep in ppoll on the RX sockets (an arrival wakes the lane at
            // once) and on its eventfd (another lane handing it frames or sending
            // its frames home wakes it) until shortly before the next scheduled
            // departure, then spin: a departure leaves within the loop time of its
            // due time, not a timer's overshoot later. Sleeps are short while
            // frames wait for TX room or completion (nothing wakes ppoll for
            // those); otherwise an idle lane costs nothing.
            let tx_busy = lane.ledger.in_tx > 0 || eg.pending.iter().any(|p| !p.is_empty());
            let cap = if tx_busy { SHORT_IDLE_NS } else { LONG_IDLE_NS };
            let wait = eg
                .emu
                .as_ref()
                .and_then(Emulator::next_wakeup)
                .map_or(cap, |t| t.saturating_sub(now).min(cap));
            if wait > SPIN_NS {
                sh.wake[me].sleep(
                    || owned.iter().any(|&e| !sh.inbox[e].is_empty()) || !sh.back[me].is_empty(),
                    || lane.wait_rx(Duration::from_nanos(wait - SPIN_NS)),
                );
            } else {
                std::hint::spin_loop();
            }
        }
    }
    // Per-flow figures as they stand (backlogs included), before the drain.
    let flows = eg.emu.as_ref().map(|e| flow_reports(&cfg.emulator, e));
    // Drain: what is in the emulator, the pending lists and the inboxes goes
    // back to its lane.
    if let Some(emu) = eg.emu.as_mut() {
        while let Some((_, _, d)) = emu.dequeue(u64::MAX) {
            eg.queued -= 1;
            lane.release(d.frame);
        }
    }
    debug_assert_eq!(eg.queued, 0);
    for p in eg.pending.iter_mut() {
        for f in p.drain(..) {
            lane.release(f);
        }
    }
    for &e in &owned {
        while let Some(d) = sh.inbox[e].pop() {
            let f = lane.adopt(d);
            lane.release(f);
        }
    }
    // Let in-flight TX complete.
    for _ in 0..100 {
        if lane.ledger.in_tx == 0 {
            break;
        }
        for &e in &owned {
            if let Some(p) = tx_port[e] {
                // Frames still in the TX ring need a kick to leave (copy mode).
                lane.kick(p);
                lane.complete(p, &mut scratch);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    lane.send_away(|o, f| {
        // Room for every frame of the UMEM: a push cannot fail.
        let _ = sh.back[o].push(f);
    });
    Ok(LaneOut {
        lane,
        counts: out,
        emu: eg.emu.zip(flows),
    })
}

/// The one-line summary: counters of every lane, pipes of the emulator.
fn print_line(sh: &Shared, cfg: &Config, emu: &Emulator<Desc>, queued: usize) {
    let mut c = [0u64; 6];
    for l in &sh.live {
        for (s, a) in c.iter_mut().zip(l) {
            *s += a.load(Ordering::Relaxed);
        }
    }
    let pipes: Vec<String> = pipe_reports(cfg, emu)
        .iter()
        .map(|p| format!("{}: {} out, {} lost", p.name, p.delivered, p.lost))
        .collect();
    eprintln!(
        "xdpsched: rx [{}, {}] tx [{}, {}] dropped {} passed {} queued {} | {}",
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        queued,
        pipes.join("; ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rx lane of every socket, side first; owner of egress A, B).
    fn layout(lanes: usize, queues: usize, bridge: bool) -> (Vec<usize>, Vec<usize>) {
        let p = Plan {
            lanes,
            queues,
            bridge,
        };
        let sides = if bridge { 2 } else { 1 };
        let rx = (0..sides)
            .flat_map(|s| (0..queues).map(move |q| (s, q as u32)))
            .map(|(s, q)| p.rx_lane(s, q))
            .collect();
        (rx, (0..sides).map(|e| p.owner(e)).collect())
    }

    #[test]
    fn the_two_directions_of_a_bridge_get_two_threads() {
        // One queue, two lanes: A on 0, B on 1; B's egress (A→B) on lane 0.
        assert_eq!(layout(2, 1, true), (vec![0, 1], vec![1, 0]));
        // Two queues, two lanes: each lane one queue of each side, owners differ.
        assert_eq!(layout(2, 2, true), (vec![0, 1, 1, 0], vec![1, 0]));
        // One lane per socket.
        assert_eq!(layout(4, 2, true), (vec![0, 1, 2, 3], vec![2, 0]));
        assert_eq!(layout(3, 3, true), (vec![0, 1, 2, 1, 2, 0], vec![1, 0]));
        // One lane does everything.
        assert_eq!(layout(1, 2, true), (vec![0, 0, 0, 0], vec![0, 0]));
        // Reflect: every queue on its lane, egress on queue 0's.
        assert_eq!(layout(2, 2, false), (vec![0, 1], vec![0]));
    }

    #[test]
    fn each_egress_transmits_on_queue_zero_only() {
        let p = Plan {
            lanes: 2,
            queues: 2,
            bridge: true,
        };
        assert_eq!(p.tx_lane(0, 0), Some(p.owner(0)));
        assert_eq!(p.tx_lane(1, 0), Some(p.owner(1)));
        assert_eq!(p.tx_lane(0, 1), None);
        assert_eq!(p.tx_lane(1, 1), None);
    }
}
