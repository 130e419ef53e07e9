//! The forwarding loop: RX → classify/schedule (sched::emulator) → TX.
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
//! the worker whose share of the UMEM they belong to. The clock is read once
//! per loop iteration (and again after a non-empty RX batch) and fed to the
//! emulator as `now_ns`.

use anyhow::Context;
use crossbeam_queue::ArrayQueue;
use nix::sys::eventfd::{EfdFlags, EventFd};
use sched::classify::FlowKey;
use sched::config::{Config, Direction};
use sched::emu::{Cause, Emulator, Host, Verdict};
use sched::Packet;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xsk::FrameDesc;
use xsk::{Handoff, Homeward, Lane, LanePlan, Xsk, XskParams};

/// How close to a due departure the idle loop stops sleeping and spins
/// (covers a sleep's wake-up latency on a VM).
const SPIN_NS: u64 = 30_000;
/// Longest idle sleep while frames wait for TX room or completion.
const SHORT_IDLE_NS: u64 = 100_000;
/// Longest idle sleep otherwise (ppoll wakes the lane on arrivals; this
/// bounds how late it sees the stop flag).
const LONG_IDLE_NS: u64 = 20_000_000;
/// How often the scheduling worker sweeps its flow tables for idle flows
/// and dynamic-pipe instances (never per packet).
const EXPIRE_EVERY_NS: u64 = 1_000_000;
/// Table slots (and instances) looked at per sweep and flowset: a table of
/// 65 536 flows is swept in a quarter of a second.
const EXPIRE_BUDGET: usize = 256;
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
    /// Pipes, flowsets and rules (each rule and the default for A→B, B→A
    /// or both; see [`Config::for_direction`]).
    pub emulator: Config,
    /// UMEM and ring sizes.
    pub xsk: XskParams,
    /// What the ports do if xdpsched dies (the program's `no_socket` in
    /// `xsk` follows it).
    pub fail_open: crate::failopen::FailOpen,
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

/// One pipe's figures (summed over its instances if dynamic, expired ones included).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PipeReport {
    /// Pipe name.
    pub name: String,
    /// The direction it carries: "a-to-b" or "b-to-a" (a pipe used in both
    /// directions is reported once for each).
    pub dir: &'static str,
    /// Instances now (1 for a static pipe).
    pub instances: usize,
    /// Dynamic pipes: instances created, expired, and packets that went to
    /// the shared overflow instance because `max_instances` were in use.
    pub instances_created: u64,
    /// See `instances_created`.
    pub instances_expired: u64,
    /// See `instances_created`.
    pub instances_overflowed: u64,
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
    /// Its direction ("a-to-b", "b-to-a").
    pub dir: &'static str,
    /// Per-flow queues now.
    pub flows: usize,
    /// Created so far.
    pub created: u64,
    /// Removed after their idle timeout.
    pub expired: u64,
    /// Packets that found `max_flows` flows busy and went to the flowset's
    /// shared overflow queue.
    pub overflowed: u64,
    /// Packets refused because not even the overflow queue had room.
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
    /// Frames dropped (loss, limits, malformed), the sum of `drops`.
    pub dropped: u64,
    /// Drops by cause, over both directions: malformed, flowset_full,
    /// pipe_full, loss, and the schedulers' unknown_flow, bad_length,
    /// flow_limit, global_limit, pushed_out.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    /// Frames still queued in the emulators when xdpsched stopped (freed,
    /// not sent).
    pub exit_drained: u64,
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
    /// Its direction ("a-to-b", "b-to-a").
    pub dir: &'static str,
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
    sched::wire::ip_protocol::name(p).map_or_else(|| format!("proto{p}"), str::to_owned)
}

fn flow_reports(sc: &Sched) -> Vec<FlowReport> {
    let mut out = Vec::new();
    for (i, fs) in sc.cfg.flowsets.iter().enumerate() {
        let mut v = sc.emu.flow_stats(i);
        v.sort_by_key(|s| std::cmp::Reverse(s.tally.bytes));
        out.extend(v.into_iter().take(TOP_FLOWS).map(|s| FlowReport {
            flowset: fs.name.clone(),
            dir: sc.dir.name(),
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
        // The flows that found the table full, in their shared queue.
        if let Some((t, packets, bytes)) = sc.emu.overflow_stat(i) {
            out.push(FlowReport {
                flowset: fs.name.clone(),
                dir: sc.dir.name(),
                key: "(overflow queue)".into(),
                packets: t.packets,
                bytes: t.bytes,
                dropped: t.dropped,
                backlog_packets: packets,
                backlog_bytes: bytes,
                ..FlowReport::default()
            });
        }
    }
    out
}

fn pipe_reports(sc: &Sched) -> Vec<PipeReport> {
    let emu = &sc.emu;
    sc.cfg
        .pipes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (c, instances) = emu.pipe_counters(i).unwrap_or_default();
            let d = emu.pipe_drops(i).unwrap_or_default();
            let (created, expired, overflowed) = emu.instance_counters(i).unwrap_or_default();
            PipeReport {
                name: p.name.clone(),
                dir: sc.dir.name(),
                instances,
                instances_created: created,
                instances_expired: expired,
                instances_overflowed: overflowed,
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

fn flowset_reports(sc: &Sched) -> Vec<FlowsetReport> {
    sc.cfg
        .flowsets
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (flows, c) = sc.emu.flowset_counters(i).unwrap_or_default();
            FlowsetReport {
                name: f.name.clone(),
                dir: sc.dir.name(),
                flows,
                created: c.created,
                expired: c.expired,
                overflowed: c.overflowed,
                refused: c.refused,
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
    inbox: [ArrayQueue<Handoff<FrameDesc>>; 2],
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
    /// Frames left in the emulators at exit (freed).
    exit_drained: u64,
    /// Frames received per local port index (with the port's side and queue).
    rx_ports: Vec<(usize, u32, u64)>,
}

/// One lane's result.
struct LaneOut {
    lane: Lane,
    counts: Counts,
    /// The directions this lane scheduled, with their per-flow figures
    /// taken before the drain (backlogs included).
    scheds: Vec<(Sched, Vec<FlowReport>)>,
}

/// One scheduled direction: its configuration and emulator, on the worker
/// that owns the direction's egress port.
struct Sched {
    dir: Direction,
    cfg: Config,
    emu: Emulator<Desc>,
    /// Frames inside the emulator.
    queued: usize,
}

/// What the emulator asks of the worker while a packet moves from a
/// chained pipe into the next: its key (read from the frame) and, if it is
/// dropped there, the frame back.
struct LaneHost<'a> {
    lane: &'a mut Lane,
    dropped: u64,
}

impl Host<Desc> for LaneHost<'_> {
    fn key(&mut self, d: &Desc) -> FlowKey {
        // The frame parsed when it arrived; it has not changed since.
        sched::wire::parse(self.lane.data(d.frame))
            .map_or_else(|_| FlowKey::default(), |h| FlowKey::from_headers(&h))
    }

    fn dropped(&mut self, d: Desc, _: Cause) {
        self.lane.release(d.frame);
        self.dropped += 1;
    }
}

/// The egress side of a lane: the emulators of the directions whose egress
/// it owns, and the frames waiting for room in a TX ring.
struct Egress {
    /// Per egress side: the scheduler of the direction that leaves there.
    sched: [Option<Sched>; 2],
    /// Per egress side.
    pending: [Vec<u32>; 2],
    reflect: bool,
    /// When the flow tables were last swept for idle flows.
    last_expire: u64,
}

impl Egress {
    /// A frame arriving for egress `e` (received here or handed over): through
    /// that direction's emulator if it is scheduled, else straight on.
    fn arrive(&mut self, lane: &mut Lane, c: &mut Counts, e: usize, now: u64, f: u32) {
        let Some(sc) = self.sched[e].as_mut() else {
            self.pending[e].push(f);
            return;
        };
        let len = lane.frame_len(f);
        match sc.emu.enqueue(now, lane.data(f), Desc { frame: f, len }) {
            Verdict::Queued { .. } => sc.queued += 1,
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

    /// Moves due packets from the emulators to the pending lists, keeping at
    /// most `batch` in each (with the TX budget in the loop, the TX ring stays
    /// shallow and the backlog stays in the scheduler). Every
    /// `EXPIRE_EVERY_NS`, sweeps the flow tables for idle flows.
    fn dequeue(&mut self, lane: &mut Lane, c: &mut Counts, now: u64, batch: usize) {
        let expire = now >= self.last_expire + EXPIRE_EVERY_NS;
        if expire {
            self.last_expire = now;
        }
        for (sc, out) in self.sched.iter_mut().zip(self.pending.iter_mut()) {
            let Some(sc) = sc.as_mut() else {
                continue;
            };
            if expire {
                sc.emu.expire(now, EXPIRE_BUDGET);
            }
            while out.len() < batch {
                let mut host = LaneHost { lane, dropped: 0 };
                let got = sc.emu.dequeue(now, &mut host);
                sc.queued -= host.dropped as usize;
                c.dropped += host.dropped;
                let Some((_, _, d)) = got else {
                    break;
                };
                sc.queued -= 1;
                if self.reflect {
                    lane.with_data_mut(d.frame, swap_macs);
                }
                out.push(d.frame);
            }
        }
    }

    /// When an emulator next wants to be called.
    fn next_wakeup(&self) -> Option<u64> {
        self.sched
            .iter()
            .flatten()
            .filter_map(|sc| sc.emu.next_wakeup())
            .min()
    }

    /// Frames in the emulators.
    fn queued(&self) -> usize {
        self.sched.iter().flatten().map(|sc| sc.queued).sum()
    }
}

/// The side whose traffic direction `d` is (A→B: received on side 0).
fn ingress(d: Direction) -> usize {
    match d {
        Direction::AToB => 0,
        Direction::BToA => 1,
    }
}

/// The lanes that receive the traffic of `sides`.
fn rx_lanes(plan: &Plan, sides: &[usize]) -> Vec<bool> {
    let lanes = plan.lanes.max(1);
    let mut mine = vec![false; lanes];
    for &side in sides {
        for q in 0..plan.queues as u32 {
            mine[plan.rx_lane(side, q) % lanes] = true;
        }
    }
    mine
}

/// About how many UMEM frames can wait in the queues and links of the
/// traffic received on `sides`: the frames of the lanes that receive it,
/// less what their fill rings hold to keep receiving (the split of
/// `Xsk::open_lanes`).
fn frames_for(cfg: &RunConfig, plan: &Plan, sides: &[usize]) -> u64 {
    let all = if plan.bridge { 2 } else { 1 };
    let lanes = plan.lanes.max(1);
    let span = u64::from(cfg.xsk.frames) / lanes as u64;
    let mut receiving = vec![0u64; lanes];
    for s in 0..all {
        for q in 0..plan.queues as u32 {
            receiving[plan.rx_lane(s, q) % lanes] += 1;
        }
    }
    let mine = rx_lanes(plan, sides);
    (0..lanes)
        .filter(|&l| mine[l])
        .map(|l| {
            let fill = u64::from(cfg.xsk.ring_size).min(span / (receiving[l] + 1));
            span.saturating_sub(fill * receiving[l])
        })
        .sum()
}

/// Checks that the UMEM can hold what the scheduled directions `dirs` keep
/// in flight on their links (rate × delay at full-size frames; smaller frames
/// need more; one instance per dynamic pipe): an error naming the `--frames`
/// needed if not even that fits; warnings (returned) if the links plus one
/// full queue per flowset do not, for every instance of a dynamic pipe, and
/// for delay on an unlimited link (its arrival rate decides). Directions
/// received by the same worker are checked together.
fn check_frames(
    cfg: &RunConfig,
    plan: &Plan,
    dirs: &[(Direction, &Config)],
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    // Groups of directions whose frames come from the same lanes.
    let mut groups: Vec<Vec<(Direction, &Config)>> = Vec::new();
    for &(d, c) in dirs {
        let mine = rx_lanes(plan, &[ingress(d)]);
        match groups.iter_mut().find(|g| {
            let theirs = rx_lanes(plan, &[ingress(g[0].0)]);
            mine.iter().zip(&theirs).any(|(a, b)| *a && *b)
        }) {
            Some(g) => g.push((d, c)),
            None => groups.push(vec![(d, c)]),
        }
    }
    for group in groups {
        let sides: Vec<usize> = group.iter().map(|&(d, _)| ingress(d)).collect();
        let names: Vec<&str> = group.iter().map(|&(d, _)| d.name()).collect();
        let what = names.join(" and ");
        let have = frames_for(cfg, plan, &sides);
        let (mut in_flight, mut queues) = (0u64, 0u64);
        let mut links = Vec::new();
        for &(_, dcfg) in &group {
            for p in &dcfg.pipes {
                let n = sched::emu::in_flight(
                    p.bandwidth_bps,
                    p.delay_ns,
                    sched::emu::FULL_FRAME,
                    u64::from(p.overhead_bytes),
                );
                if p.bandwidth_bps.is_none() && p.delay_ns > 0 {
                    warnings.push(format!(
                        "pipe {:?} delays {} on an unlimited link: it holds whatever arrives in that time (at 100 000 packets/s, {} frames), out of about {have} UMEM frames for {what}",
                        p.name,
                        sched::units::format_duration(p.delay_ns),
                        p.delay_ns / 10_000
                    ));
                }
                if n == 0 {
                    continue;
                }
                if p.mask.is_some() && p.max_instances > 1 {
                    warnings.push(format!(
                        "dynamic pipe {:?} keeps about {n} full-size frames in flight per instance; {} busy instances would need {}",
                        p.name,
                        p.max_instances,
                        n.saturating_mul(u64::from(p.max_instances))
                    ));
                }
                in_flight = in_flight.saturating_add(n);
                links.push(format!(
                    "pipe {:?} {} x {}: {n}",
                    p.name,
                    sched::units::format_rate(p.bandwidth_bps.unwrap_or(0)),
                    sched::units::format_duration(p.delay_ns)
                ));
            }
            queues += dcfg
                .flowsets
                .iter()
                .map(|f| match f.queue {
                    sched::config::QueueSpec::Packets(n) => u64::from(n),
                    sched::config::QueueSpec::Bytes(b) => b.div_ceil(sched::emu::FULL_FRAME),
                })
                .sum::<u64>();
        }
        // Frames the rest of the program may hold: hand-over and TX batches.
        let spare = 4 * cfg.batch as u64;
        // The smallest --frames (doubling) that gives this group `need`.
        let scale = |need: u64| -> String {
            let mut c = cfg.clone();
            let mut f = u64::from(cfg.xsk.frames);
            while f < 1 << 20 {
                f = (f * 2).min(1 << 20);
                c.xsk.frames = f as u32;
                c.xsk.ring_size = xsk::ring_size_for(f as u32);
                if frames_for(&c, plan, &sides) >= need + spare {
                    return format!("use --frames {f} or more");
                }
            }
            "not even --frames 1048576 (the most) is enough: lower rate x delay".to_owned()
        };
        if in_flight + spare > have {
            anyhow::bail!(
                "{what}: the emulated links keep about {in_flight} full-size frames in flight ({}; more with smaller frames), but with --frames {} the workers scheduling it have about {have} for their queues and links: {}",
                links.join(", "),
                cfg.xsk.frames,
                scale(in_flight)
            );
        }
        if in_flight + queues + spare > have {
            warnings.push(format!(
                "{what}: the links keep about {in_flight} full-size frames in flight and one full queue of each flowset holds {queues}, but with --frames {} about {have} frames are there for them: beyond that the kernel drops arrivals before xdpsched sees them ({} to hold both)",
                cfg.xsk.frames,
                scale(in_flight + queues)
            ));
        }
    }
    Ok(warnings)
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
    // The scheduled directions, by egress side: A→B leaves on B (on A when
    // reflecting), B→A on A when the configuration schedules it.
    let mut scheds: [Option<Sched>; 2] = [None, None];
    for dir in Direction::ALL {
        let egress = match (dir, bridge) {
            (Direction::AToB, true) => 1,
            (Direction::AToB, false) => 0,
            (Direction::BToA, true) => 0,
            (Direction::BToA, false) => {
                if cfg.emulator.only_b_to_a() {
                    anyhow::bail!("the configuration schedules b-to-a traffic only, but reflect mode (no --out) has only a-to-b");
                }
                continue;
            }
        };
        if dir == Direction::BToA && !cfg.emulator.uses(dir) {
            continue;
        }
        let dcfg = cfg.emulator.for_direction(dir);
        let seed = 0x5eed_1234 ^ (egress as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let emu = Emulator::from_config(&dcfg, seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.name()))?;
        scheds[egress] = Some(Sched {
            dir,
            cfg: dcfg,
            emu,
            queued: 0,
        });
    }
    let dirs: Vec<(Direction, &Config)> = scheds
        .iter()
        .flatten()
        .map(|sc| (sc.dir, &sc.cfg))
        .collect();
    for w in check_frames(cfg, &plan, &dirs)? {
        crate::note!("xdpsched: warning: {w}");
    }
    let mut xsk = Xsk::open_lanes(&ifaces, &cfg.xsk, &plan)?;
    // Declared after `xsk`, dropped before it: on a clean exit the bridge goes
    // first, then the programs.
    let _bridge = match (cfg.fail_open, &cfg.out) {
        (crate::failopen::FailOpen::Bridge, Some(out)) => Some(
            crate::failopen::KernelBridge::create(&cfg.iface, out)
                .context("--fail-open bridge: setting up the kernel bridge")?,
        ),
        (crate::failopen::FailOpen::Redirect, Some(out)) => {
            crate::failopen::remove_leftover(&[&cfg.iface, out])?;
            if crate::failopen::is_veth(&cfg.iface) || crate::failopen::is_veth(out) {
                crate::note!("xdpsched: warning: --fail-open redirect into a veth works only if the veth's peer has NAPI (GRO on, or an XDP program attached); with the kernel's defaults a killed xdpsched drops every frame. --fail-open bridge works on any ports");
            }
            None
        }
        (_, Some(out)) => {
            crate::failopen::remove_leftover(&[&cfg.iface, out])?;
            None
        }
        _ => None,
    };
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
    let taken = std::mem::take(&mut xsk.lanes);
    let outs: Vec<anyhow::Result<LaneOut>> = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(lanes);
        let mut outs = Vec::with_capacity(lanes + 1);
        for lane in taken {
            // The directions whose egress this lane owns.
            let mut e: [Option<Sched>; 2] = [None, None];
            for (side, sc) in scheds.iter_mut().enumerate() {
                if plan.owner(side) == lane.id {
                    e[side] = sc.take();
                }
            }
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
    let mut done: Vec<(Sched, Vec<FlowReport>)> = Vec::new();
    for out in outs {
        let out = out?;
        let c = out.counts;
        for i in 0..2 {
            stats.rx[i] += c.rx[i];
            stats.tx[i] += c.tx[i];
        }
        stats.dropped += c.dropped;
        stats.passed += c.passed;
        stats.exit_drained += c.exit_drained;
        stats.tx_in_flight_max = stats.tx_in_flight_max.max(c.in_flight_max);
        for (side, queue, n) in c.rx_ports {
            stats.rx_per_queue[side * queues + queue as usize] += n;
        }
        done.extend(out.scheds);
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
    if done.is_empty() {
        anyhow::bail!("no worker returned the scheduler");
    }
    // A→B first.
    done.sort_by_key(|(sc, _)| sc.dir != Direction::AToB);
    for (sc, flows) in &done {
        stats.flows.extend_from_slice(flows);
        stats.pipes.extend(pipe_reports(sc));
        stats.flowsets.extend(flowset_reports(sc));
        stats.malformed += sc.emu.counters().malformed;
        for (name, n) in sc.emu.drops().by_name() {
            *stats.drops.entry(name).or_default() += n;
        }
    }
    stats.pipe_delivered = stats.pipes.iter().map(|p| p.delivered).sum();
    stats.pipe_lost = stats.pipes.iter().map(|p| p.lost).sum();
    Ok(stats)
}

/// One worker thread: receives on its lane's sockets, schedules and
/// transmits for the egress ports it owns, hands frames for other egress
/// ports to their owner and returns other lanes' frames home.
fn lane_loop(
    cfg: &RunConfig,
    sh: &Shared,
    mut lane: Lane,
    scheds: [Option<Sched>; 2],
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
        sched: scheds,
        pending: [Vec::with_capacity(batch * 4), Vec::with_capacity(batch * 4)],
        reflect,
        last_expire: 0,
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
        eg.dequeue(&mut lane, &mut out, now, batch);
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
        if let Some(iv) = cfg.stats_interval {
            // Every lane with a scheduler prints its pipes; the one with A→B's
            // also the counters of all lanes.
            if eg.sched.iter().any(Option::is_some) && now_i - last_stats >= iv {
                last_stats = now_i;
                print_line(sh, &eg);
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
            let tx_busy = lane.ledger().in_tx > 0 || eg.pending.iter().any(|p| !p.is_empty());
            let cap = if tx_busy { SHORT_IDLE_NS } else { LONG_IDLE_NS };
            let wait = eg
                .next_wakeup()
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
    let flows: Vec<Vec<FlowReport>> = eg.sched.iter().flatten().map(flow_reports).collect();
    // Drain: what is in the emulators, the pending lists and the inboxes goes
    // back to its lane. (Not along chains: nothing is offered to another pipe
    // and counted there.)
    for sc in eg.sched.iter_mut().flatten() {
        sc.emu.drain(|d| {
            lane.release(d.frame);
            out.exit_drained += 1;
            sc.queued -= 1;
        });
        debug_assert_eq!(sc.queued, 0);
    }
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
        if lane.ledger().in_tx == 0 {
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
        scheds: eg.sched.into_iter().flatten().zip(flows).collect(),
    })
}

/// The one-line summary of a scheduling lane: the pipes of its emulators,
/// after the counters of every lane if it schedules A→B.
fn print_line(sh: &Shared, eg: &Egress) {
    let pipes: Vec<String> = eg
        .sched
        .iter()
        .flatten()
        .flat_map(pipe_reports)
        .map(|p| {
            format!(
                "{} ({}): {} out, {} lost",
                p.name, p.dir, p.delivered, p.lost
            )
        })
        .collect();
    if !eg
        .sched
        .iter()
        .flatten()
        .any(|sc| sc.dir == Direction::AToB)
    {
        crate::note!("xdpsched: | {}", pipes.join("; "));
        return;
    }
    let mut c = [0u64; 6];
    for l in &sh.live {
        for (s, a) in c.iter_mut().zip(l) {
            *s += a.load(Ordering::Relaxed);
        }
    }
    crate::note!(
        "xdpsched: rx [{}, {}] tx [{}, {}] dropped {} passed {} queued {} | {}",
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        eg.queued(),
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
