//! What xdpsched reports: the counters at exit (`--stats-json`, built
//! from every worker's `Counts` and every direction's emulator) and the
//! live one-line summary (`--stats-interval`).

use crate::direction::Sched;
use sched::config::Direction;
use std::sync::atomic::{AtomicU64, Ordering};
use xsk::SocketStats;

/// One worker's counters.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub rx: [u64; 2],
    pub tx: [u64; 2],
    pub dropped: u64,
    pub passed: u64,
    /// Most frames in flight on one TX port at once.
    pub in_flight_max: u64,
    /// Frames left in the emulators at exit (freed).
    pub exit_drained: u64,
    /// TX kicks (sendto) and the time spent in them.
    pub kicks: u64,
    pub kick_ns: u64,
    /// Sleeps of an idle worker.
    pub sleeps: u64,
    /// Partial TCP/UDP checksums completed (`--checksum`).
    pub checksums_completed: u64,
    /// Frames rewritten with a CE mark (queue management with ECN).
    pub ce_marked: u64,
    /// Frames whose DSCP a rule's `set_dscp` rewrote.
    pub dscp_rewritten: u64,
    /// Frames taken from the free list for duplicates (netem `duplicate`).
    pub duplicated: u64,
    /// Frames received per local port index (with the port's side and queue).
    pub rx_ports: Vec<(usize, u32, u64)>,
}

/// A pipe with its delivery rate.
#[derive(Debug, serde::Serialize)]
pub struct PipeShow {
    /// Its figures.
    #[serde(flatten)]
    pub report: PipeReport,
    /// Delivered, bit/s (frame bytes), over `rate_window_s`.
    pub rate_bps: f64,
}

/// A flow with its arrival rate.
#[derive(Debug, serde::Serialize)]
pub struct FlowShow {
    /// Its figures.
    #[serde(flatten)]
    pub report: FlowReport,
    /// Offered, bit/s (frame bytes), over `rate_window_s`.
    pub rate_bps: f64,
}

/// What `show` answers (and what `/metrics` exposes).
#[derive(Debug, serde::Serialize)]
pub struct Show {
    /// The instance's process id.
    pub pid: u32,
    /// Its ports.
    pub ports: Vec<PortShow>,
    /// Seconds since it started.
    pub uptime_s: f64,
    /// Frames dropped (all causes).
    pub dropped: u64,
    /// Frames passed unscheduled.
    pub passed: u64,
    /// The kernel's counters of the sockets, summed.
    pub kernel: SocketStats,
    /// Frames that reached the ports and never the RX rings.
    pub lost_before_rx: u64,
    /// Frames the XDP programs steered to the sockets.
    pub xdp_to_socket: u64,
    /// Frames they sent past the sockets (fail-open).
    pub xdp_failed_open: u64,
    /// The window the rates are measured over.
    pub rate_window_s: f64,
    /// Whether every worker answered in time (else some figures are older).
    pub complete: bool,
    /// Per pipe.
    pub pipes: Vec<PipeShow>,
    /// Per flowset.
    pub flowsets: Vec<FlowsetReport>,
    /// The top flows of each flowset.
    pub flows: Vec<FlowShow>,
    /// Per worker thread: CPU, wake-ups, frames.
    pub workers: Vec<WorkerShow>,
    /// The configuration file it runs (None: the simple flags).
    pub config: Option<String>,
    /// Reloads applied since it started.
    pub reloads: u64,
    /// The seed of its random processes (see `RunStats::seed`).
    pub seed: u64,
}

/// One port's frames.
#[derive(Debug, serde::Serialize)]
pub struct PortShow {
    /// The interface.
    pub iface: String,
    /// "a" (--iface) or "b" (--out).
    pub side: &'static str,
    /// Frames received on it.
    pub rx: u64,
    /// Frames sent on it.
    pub tx: u64,
    /// How its XDP program is attached: "native" or "skb".
    pub xdp_mode: &'static str,
    /// Its AF_XDP sockets' mode: "zerocopy" or "copy".
    pub bind: &'static str,
}

/// A worker's figures for `xdpsched show`, built on request.
#[derive(Debug, Default)]
pub(crate) struct LaneShow {
    /// The request these answer.
    pub gen: u64,
    pub pipes: Vec<PipeReport>,
    pub flowsets: Vec<FlowsetReport>,
    pub flows: Vec<FlowReport>,
    pub workers: Vec<WorkerShow>,
}

/// One worker thread's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WorkerShow {
    /// Its lane (thread `xdpsched-N`).
    pub worker: usize,
    /// CPU time it has used, seconds (its busy fraction is the rate).
    pub cpu_s: f64,
    /// Times it slept (each ends in a wake-up).
    pub sleeps: u64,
    /// Partial TCP/UDP checksums it completed (`--checksum`).
    pub checksums_completed: u64,
    /// TX kicks (sendto) it made.
    pub tx_kicks: u64,
    /// UMEM frames of its share: all, free, in fill rings, in TX rings or
    /// awaiting completion.
    pub frames: u64,
    /// See `frames`.
    pub frames_free: u64,
    /// See `frames`.
    pub frames_in_fill: u64,
    /// See `frames`.
    pub frames_in_tx: u64,
    /// Frames inside its emulators (queued or on an emulated link).
    pub frames_queued: u64,
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
    /// Lost to the loss model (and to a profile's loss level).
    pub lost: u64,
    /// Duplicates made (netem `duplicate`), and those no free frame was
    /// there for (not made).
    pub duplicated: u64,
    /// See `duplicated`.
    pub duplicate_no_frame: u64,
    /// Packets with a bit flipped (netem `corrupt`).
    pub corrupted: u64,
    /// Packets it holds now: queued, on the link, propagating.
    pub backlog_packets: u64,
    /// Their bytes.
    pub backlog_bytes: u64,
    /// Dropped by the scheduler, by reason (unknown_flow, bad_length,
    /// flow_limit, global_limit, pushed_out, aqm).
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    /// ECN-capable packets queue management marked CE instead of dropping.
    pub ecn_marked: u64,
    /// Time the packets sent spent in the scheduler, until their
    /// transmission started on the emulated link.
    pub sojourn: SojournReport,
    /// Flows in CoDel's dropping state now.
    pub codel_dropping: u32,
    /// The largest CoDel count among them (drops and marks since the state
    /// was entered).
    pub codel_max_count: u32,
    /// Its HTB classes (`[[class]]`), in configuration order.
    pub classes: Vec<ClassReport>,
}

/// One HTB class's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClassReport {
    /// Class name.
    pub name: String,
    /// Its parent's name ("" for a root).
    pub parent: String,
    /// Guaranteed rate and ceil, bit/s.
    pub rate_bps: u64,
    /// See `rate_bps`.
    pub ceil_bps: u64,
    /// Packets and bytes sent through it (since the start or the last
    /// reload).
    pub packets: u64,
    /// See `packets`.
    pub bytes: u64,
    /// Packets it sent lending its own tokens (its level), and packets it
    /// sent borrowing from an ancestor.
    pub lends: u64,
    /// See `lends`.
    pub borrows: u64,
    /// "can_send", "may_borrow" or "cant_send", as of its last update.
    pub mode: &'static str,
    /// Tokens and ctokens, bytes at its rate / ceil (negative: in debt).
    pub tokens_bytes: i64,
    /// See `tokens_bytes`.
    pub ctokens_bytes: i64,
}

/// A sojourn-time distribution, ns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SojournReport {
    /// Packets measured.
    pub count: u64,
    /// Mean, ns.
    pub mean_ns: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
}

impl SojournReport {
    /// The figures of a histogram (empty: all zero).
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        SojournReport {
            count: h.len(),
            mean_ns: h.mean() as u64,
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }
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
    /// Its queues' drops by queue management (at arrival or dequeue).
    pub aqm_drops: u64,
    /// Its queues' drops at their limits (the flow's queue, the pipe's
    /// limit, longest-queue-drop) or for a bad length.
    pub limit_drops: u64,
    /// ECN-capable packets its queue management marked CE.
    pub ecn_marked: u64,
    /// Time its packets sent spent queued.
    pub sojourn: SojournReport,
    /// Its flows in CoDel's dropping state now.
    pub codel_dropping: u32,
    /// The largest CoDel count among them.
    pub codel_max_count: u32,
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
    /// TX kicks (sendto calls that make the kernel transmit; copy mode).
    pub tx_kicks: u64,
    /// Wall time spent inside them, in ns. On veth the kernel runs the
    /// receiving end's stack inside the kick, so this is mostly the
    /// receiver's work charged to xdpsched's CPU time.
    pub tx_kick_ns: u64,
    /// Times an idle worker went to sleep (each sleep and wake-up costs
    /// CPU: compare with the frames sent).
    pub sleeps: u64,
    /// The capture of the run (`--capture`, or the last `xdpsched
    /// capture`): its file, frames written, frames not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<crate::capture::Status>,
    /// Partial TCP/UDP checksums completed (frames a local stack sent with
    /// the checksum left to the device; `--checksum`).
    pub checksums_completed: u64,
    /// Frames rewritten with a CE mark on their way out (queue management
    /// with ECN; a packet two pipes marked is rewritten once).
    pub ce_marked: u64,
    /// Frames whose DSCP a rule's `set_dscp` rewrote.
    pub dscp_rewritten: u64,
    /// Frames taken from the free list for duplicates (netem `duplicate`;
    /// per pipe, with those that found none, in `pipes`).
    pub duplicated: u64,
    /// Packet log lines of trace-driven pipes that were not written (the
    /// writer fell behind).
    pub trace_log_lost: u64,
    /// The seed of the run's random processes (`seed` in the
    /// configuration, or the one picked at start): the same seed and input
    /// replay the same losses, delays and duplicates.
    pub seed: u64,
    /// Per port (A, B): whether partial checksums of the frames it receives
    /// are completed.
    pub complete_checksums: Vec<bool>,
    /// Packets delivered by the pipes (sum over pipes).
    pub pipe_delivered: u64,
    /// Packets lost to the pipes' loss models.
    pub pipe_lost: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Frames that reached the ports' queues and never xdpsched's RX rings
    /// (the kernel's `rx_dropped` + `rx_ring_full`, over every socket): the
    /// input was cut short by that much.
    pub lost_before_rx: u64,
    /// The kernel's counters (XDP_STATISTICS), summed over the sockets.
    pub kernel: SocketStats,
    /// The kernel's counters per socket.
    pub kernel_sockets: Vec<SocketReport>,
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

impl RunStats {
    /// Adds one worker's counters (`queues`: sockets per port).
    pub(crate) fn add_counts(&mut self, c: &Counts, queues: usize) {
        for i in 0..2 {
            self.rx[i] += c.rx[i];
            self.tx[i] += c.tx[i];
        }
        self.dropped += c.dropped;
        self.passed += c.passed;
        self.exit_drained += c.exit_drained;
        self.tx_kicks += c.kicks;
        self.tx_kick_ns += c.kick_ns;
        self.sleeps += c.sleeps;
        self.checksums_completed += c.checksums_completed;
        self.ce_marked += c.ce_marked;
        self.dscp_rewritten += c.dscp_rewritten;
        self.duplicated += c.duplicated;
        self.tx_in_flight_max = self.tx_in_flight_max.max(c.in_flight_max);
        for &(side, queue, n) in &c.rx_ports {
            self.rx_per_queue[side * queues + queue as usize] += n;
        }
    }

    /// Adds the figures of the scheduled directions (A→B first), with their
    /// per-flow reports taken before the drain.
    pub(crate) fn add_scheds(&mut self, mut done: Vec<(Sched, Vec<FlowReport>)>) {
        done.sort_by_key(|(sc, _)| sc.dir != Direction::AToB);
        for (sc, flows) in &done {
            self.flows.extend_from_slice(flows);
            self.pipes.extend(pipe_reports(sc));
            self.flowsets.extend(flowset_reports(sc));
            self.malformed += sc.emu.counters().malformed;
            for (name, n) in sc.emu.drops().by_name() {
                *self.drops.entry(name).or_default() += n;
            }
        }
        self.pipe_delivered = self.pipes.iter().map(|p| p.delivered).sum();
        self.pipe_lost = self.pipes.iter().map(|p| p.lost).sum();
    }
}

/// One AF_XDP socket's counters, as the kernel keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SocketReport {
    /// Its interface.
    pub iface: String,
    /// Its queue.
    pub queue: u32,
    /// The counters.
    #[serde(flatten)]
    pub stats: SocketStats,
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
    /// Bytes its queue has sent on to the link: offered, less dropped, less
    /// queued (what the scheduler gave it; the rate of this is its share).
    pub sent_bytes: u64,
    /// Its flowset's weight.
    pub weight: u32,
    /// When the worker read these figures (the run's clock, ns): rates are
    /// measured between such instants, not between the reader's requests.
    #[serde(skip)]
    pub at_ns: u64,
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

pub(crate) fn flow_reports(sc: &Sched) -> Vec<FlowReport> {
    let mut out = Vec::new();
    for (i, fs) in sc.cfg.flowsets.iter().enumerate() {
        let mut v = sc.emu.flow_stats(i);
        v.sort_by_key(|s| std::cmp::Reverse(s.tally.bytes));
        out.extend(v.into_iter().take(TOP_FLOWS).map(|s| {
            FlowReport {
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
                sent_bytes: s
                    .tally
                    .bytes
                    .saturating_sub(s.tally.dropped_bytes + s.backlog_bytes),
                weight: fs.weight.get(),
                at_ns: 0,
            }
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
                sent_bytes: t.bytes.saturating_sub(t.dropped_bytes + bytes),
                ..FlowReport::default()
            });
        }
    }
    out
}

pub(crate) fn pipe_reports(sc: &Sched) -> Vec<PipeReport> {
    let emu = &sc.emu;
    sc.cfg
        .pipes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (c, instances) = emu.pipe_counters(i).unwrap_or_default();
            let d = emu.pipe_drops(i).unwrap_or_default();
            let (created, expired, overflowed) = emu.instance_counters(i).unwrap_or_default();
            let aqm = emu.pipe_aqm(i).unwrap_or_default();
            let (backlog_packets, backlog_bytes) = emu.pipe_backlog(i).unwrap_or_default();
            PipeReport {
                backlog_packets,
                backlog_bytes,
                name: p.name.clone(),
                dir: sc.dir.name(),
                instances,
                instances_created: created,
                instances_expired: expired,
                instances_overflowed: overflowed,
                delivered: c.delivered,
                delivered_bytes: c.delivered_bytes,
                lost: c.lost,
                duplicated: c.duplicated,
                duplicate_no_frame: c.dup_no_frame,
                corrupted: c.corrupted,
                drops: sched::DropReason::ALL
                    .iter()
                    .map(|r| (r.name(), d.drops(*r)))
                    .collect(),
                ecn_marked: d.marked,
                sojourn: emu
                    .pipe_sojourn(i)
                    .map(|h| SojournReport::of(&h))
                    .unwrap_or_default(),
                codel_dropping: aqm.dropping,
                codel_max_count: aqm.max_count,
                classes: class_reports(sc, i),
            }
        })
        .collect()
}

/// Pipe `pi`'s classes: the configuration's names beside the tree's state.
fn class_reports(sc: &Sched, pi: usize) -> Vec<ClassReport> {
    use sched::algo::htb::Mode;
    let specs: Vec<&sched::config::ClassSpec> =
        sc.cfg.classes.iter().filter(|c| c.pipe == pi).collect();
    let views = sc.emu.pipe_classes(pi);
    specs
        .iter()
        .zip(views)
        .map(|(c, v)| {
            // ps of transmission at a rate → bytes.
            let bytes =
                |ps: i64, bps: u64| (i128::from(ps) * i128::from(bps) / 8_000_000_000_000) as i64;
            ClassReport {
                name: c.name.clone(),
                parent: c
                    .parent
                    .and_then(|p| sc.cfg.classes.get(p))
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                rate_bps: c.rate_bps,
                ceil_bps: c.ceil_bps,
                packets: v.stats.packets,
                bytes: v.stats.bytes,
                lends: v.stats.lends,
                borrows: v.stats.borrows,
                mode: match v.mode {
                    Mode::CanSend => "can_send",
                    Mode::MayBorrow => "may_borrow",
                    Mode::CantSend => "cant_send",
                },
                tokens_bytes: bytes(v.tokens_ps, c.rate_bps),
                ctokens_bytes: bytes(v.ctokens_ps, c.ceil_bps),
            }
        })
        .collect()
}

pub(crate) fn flowset_reports(sc: &Sched) -> Vec<FlowsetReport> {
    sc.cfg
        .flowsets
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (flows, c) = sc.emu.flowset_counters(i).unwrap_or_default();
            let q = sc.emu.flowset_queues(i).unwrap_or_default();
            FlowsetReport {
                name: f.name.clone(),
                dir: sc.dir.name(),
                flows,
                created: c.created,
                expired: c.expired,
                overflowed: c.overflowed,
                refused: c.refused,
                aqm_drops: q.stats.aqm_drops,
                limit_drops: q.stats.limit_drops,
                ecn_marked: q.stats.marks,
                sojourn: q
                    .stats
                    .sojourn
                    .as_deref()
                    .map(|h| SojournReport::of(&h.to_hdr()))
                    .unwrap_or_default(),
                codel_dropping: q.codel_dropping,
                codel_max_count: q.codel_max_count,
            }
        })
        .collect()
}

/// The one-line summary of a scheduling lane: the pipes of its emulators,
/// after the counters of every lane if it schedules A→B.
pub(crate) fn print_line<'a>(
    live: &[[AtomicU64; 6]],
    kernel: &[[AtomicU64; 6]],
    program: &[AtomicU64; 2],
    scheds: impl Iterator<Item = &'a Sched> + Clone,
    queued: usize,
) {
    let pipes: Vec<String> = scheds
        .clone()
        .flat_map(pipe_reports)
        .map(|p| {
            format!(
                "{} ({}): {} out, {} lost",
                p.name, p.dir, p.delivered, p.lost
            )
        })
        .collect();
    if !scheds.clone().any(|sc| sc.dir == Direction::AToB) {
        crate::note!("xdpsched: | {}", pipes.join("; "));
        return;
    }
    let c = sum(live);
    let k = SocketStats::from_array(sum(kernel));
    crate::note!(
        "xdpsched: rx [{}, {}] tx [{}, {}] dropped {} passed {} queued {} | kernel: lost before rx {} (rx ring full {}, no fill buffer {}) | xdp: to sockets {}, failed open {} | {}",
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        queued,
        k.lost_before_rx(),
        k.rx_ring_full,
        k.rx_dropped,
        program[0].load(Ordering::Relaxed),
        program[1].load(Ordering::Relaxed),
        pipes.join("; ")
    );
}

/// The per-lane counters summed.
pub(crate) fn sum(per_lane: &[[AtomicU64; 6]]) -> [u64; 6] {
    let mut c = [0u64; 6];
    for l in per_lane {
        for (s, a) in c.iter_mut().zip(l) {
            *s += a.load(Ordering::Relaxed);
        }
    }
    c
}
