//! Pipes: emulated links (dummynet's `pipe`), as pull-based state machines.
//!
//! A pipe is a scheduler feeding a link of a given bandwidth, followed by a
//! constant propagation delay, with random loss at the entrance:
//!
//! ```text
//! enqueue ─► loss ─► scheduler (per-flow queues) ─► link (bandwidth) ─► delay line ─► dequeue
//! ```
//!
//! Time is passed in (`now_ns`); nothing here reads a clock. The link sends
//! one packet after another: a packet starts when the previous one has
//! finished (or when it arrives, if the link was idle) and occupies the link
//! for `(len + overhead) * 8 / bandwidth` seconds; it leaves the pipe when its
//! transmission ends plus the delay (store-and-forward, as dummynet). The
//! transmission time is carried as nanoseconds plus an exact remainder, so the
//! long-run rate is exact at any bandwidth. `next_wakeup()` says when the
//! caller must call `dequeue` again; calling it later only delays output, it
//! never changes which packet was sent when, except that packets which arrived
//! during the lateness compete for the link slot (poll at `next_wakeup()` to
//! avoid that).
//!
//! Unlimited bandwidth means "as fast as the egress takes it": the scheduler
//! still orders packets, but the link adds no time.
//!
//! The queue and the delay line are separate, as in dummynet: the flowsets'
//! limits bound what waits for the link, never what the link has already
//! sent. The delay line holds every packet in flight — at a rate `R` and a
//! delay `D`, about `R·D / size` of them, which can be far more than the
//! queue — and never drops: it starts with `delay_reserve` slots and grows
//! (amortised doubling, never shrinking) when more are in flight, so the
//! caller's own buffers (UMEM frames in xdpsched) are the bound. Every
//! packet a pipe drops is handed back to the caller: from `enqueue` (loss,
//! limits), or to the `dropped` sink of `dequeue` (queue management, which
//! decides when a packet's transmission would start).
//!
//! Each packet's sojourn time in the scheduler — from its arrival to the
//! start of its transmission on the emulated link, in the pipe's own time
//! (the `now_ns` it arrived with, and the instant the link became free for
//! it) — goes into a histogram ([`Pipe::sojourn`]); queue management (CoDel)
//! judges the same figure.

use super::impair::{Chance, Corrupt, Flip, Profile, ProfileDraw, SlotParams, Slots};
use super::jitter::{Jitter, Reorder, ScaledTable};
use super::loss::{Loss, LossModel};
use super::schedule::{Schedule, ScheduleSpec};
use super::sojourn::SojournHist;
use super::trace::{LogLine, Trace, TraceLink};
use crate::config::MAX_DELAY_NS;
use crate::rng::Rng;
use crate::types::{DropCounters, DropReason, Dropped, FlowId, Packet};
use crate::{AnySched, Scheduler};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::Arc;

/// Largest sojourn time the histograms hold, ns (longer ones count as this).
pub const SOJOURN_MAX_NS: u64 = 100_000_000_000;

/// What one flowset's queues in a pipe did: the queue management's drops
/// and marks, the drops at the queues' limits, and (when the pipe has more
/// than one flowset) their sojourn times.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Dropped by queue management (at arrival or dequeue).
    pub aqm_drops: u64,
    /// Marked CE by queue management.
    pub marks: u64,
    /// Dropped at a limit (the flow's queue, the pipe's `limit`, pushed out
    /// by longest-queue-drop) or for a bad length.
    pub limit_drops: u64,
    /// Sojourn times of its packets sent; `None` until one is, and for the
    /// only flowset of a pipe (the pipe's histogram is its).
    pub sojourn: Option<Box<SojournHist>>,
}

impl QueueStats {
    fn count(&mut self, reason: DropReason) {
        if reason == DropReason::Aqm {
            self.aqm_drops += 1;
        } else {
            self.limit_drops += 1;
        }
    }

    /// Adds `o` (a retired instance's, or an old pipe's at a reload).
    pub fn add(&mut self, o: &QueueStats) {
        self.aqm_drops += o.aqm_drops;
        self.marks += o.marks;
        self.limit_drops += o.limit_drops;
        if let Some(h) = &o.sojourn {
            self.sojourn.get_or_insert_default().add(h);
        }
    }
}

/// Most flowsets of one pipe whose sojourn histograms have every bucket
/// from the start ([`SojournHist::new`], 34 KiB each); a pipe with more
/// (one per subscriber's class) gives them [`SojournHist::lazy`] ones, which
/// take a 1 KiB block when a time first falls in it — at most 34
/// allocations in a flowset's life, on the packet path.
pub const EAGER_QUEUE_HISTOGRAMS: usize = 64;

/// The figures of the flowset `flow` belongs to (by `owner`; the only one
/// without an owner table).
#[inline]
fn queue_of<'a>(
    queues: &'a mut [QueueStats],
    owner: &[u32],
    flow: FlowId,
) -> Option<&'a mut QueueStats> {
    let i = owner.get(flow.index()).map_or(0, |&o| o as usize);
    queues.get_mut(i)
}

/// An empty sojourn-time histogram: 1 ns to [`SOJOURN_MAX_NS`], 2
/// significant digits (about 30 KiB).
pub fn sojourn_histogram() -> Histogram<u64> {
    // Fixed bounds: never resizes, so recording never allocates.
    #[allow(clippy::expect_used)] // constant, valid bounds: cannot fail
    Histogram::new_with_bounds(1, SOJOURN_MAX_NS, 2).expect("valid histogram bounds")
}

/// Why a pipe dropped a packet (beyond the scheduler's own reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipeDrop {
    /// Random loss (`plr` or Gilbert-Elliott).
    Loss,
    /// The scheduler dropped it (queue limits, unknown flow, bad length).
    Sched(DropReason),
}

/// A packet the pipe dropped, handed back to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeDropped<P> {
    /// The packet.
    pub pkt: P,
    /// Its flow.
    pub flow: FlowId,
    /// Why.
    pub reason: PipeDrop,
}

/// How a pipe is built (validated by the caller, e.g. `config`).
#[derive(Debug, Clone, PartialEq)]
pub struct PipeParams {
    /// Sojourn histograms that take their buckets as times come
    /// ([`SojournHist::lazy`]): a dynamic pipe's instances, by the thousand.
    pub lazy_stats: bool,
    /// Link rate in bit/s; `None` = unlimited.
    pub bandwidth_bps: Option<u64>,
    /// Bytes added to every frame for rate accounting (Ethernet preamble 7 +
    /// start delimiter 1 + FCS 4 + inter-frame gap 12 = 24 by default).
    pub overhead_bytes: u32,
    /// Constant propagation delay.
    pub delay_ns: u64,
    /// Loss at the entrance.
    pub loss: LossModel,
    /// Slots of the delay line allocated up front; it grows beyond them
    /// when more packets are in flight (see the module docs), never drops.
    pub delay_reserve: usize,
    /// Seed of the loss RNG (deterministic runs).
    pub seed: u64,
    /// Delay jitter: the spread, the distribution table (`None`: uniform),
    /// the correlation, and whether it may reorder packets; `None`: none.
    pub jitter: Option<JitterParams>,
    /// netem's reordering: (probability, correlation, gap); `None`: none.
    pub reorder: Option<(f64, f64, u32)>,
    /// netem's duplication: (probability, correlation); `None`: none.
    pub duplicate: Option<(f64, f64)>,
    /// netem's corruption: (probability, correlation); `None`: none.
    pub corrupt: Option<(f64, f64)>,
    /// netem's slots; `None`: packets leave when due.
    pub slot: Option<SlotParams>,
    /// A dummynet delay profile (needs a bandwidth); `None`: none.
    pub profile: Option<Arc<Profile>>,
    /// A Mahimahi trace as the link (instead of `bandwidth_bps`), and
    /// whether to keep its packet log.
    pub trace: Option<(Arc<Trace>, bool)>,
    /// Bandwidth, delay and loss changes over time; `None`: none.
    pub schedule: Option<Arc<ScheduleSpec>>,
    /// The instant the pipe starts (its schedule's and trace's zero), ns.
    pub epoch_ns: u64,
}

/// What the pipe's entrance decided for a packet it admitted: whether the
/// caller should make a copy of it (netem's duplication) and flip one of
/// its bits (netem's corruption).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admitted {
    /// Make a copy and offer it too (not to be duplicated again).
    pub copy: bool,
    /// Flip this bit of the packet.
    pub flip: Option<Flip>,
}

/// A pipe's delay jitter (see [`super::jitter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JitterParams {
    /// The spread, ns.
    pub jitter_ns: u64,
    /// The distribution table scaled to `jitter_ns`; `None`: uniform.
    pub table: Option<ScaledTable>,
    /// Correlation of successive samples, 0..=1.
    pub correlation: f64,
    /// Whether jitter may reorder packets.
    pub reorder: bool,
}

impl Default for PipeParams {
    fn default() -> Self {
        Self {
            lazy_stats: false,
            bandwidth_bps: None,
            overhead_bytes: 24,
            delay_ns: 0,
            loss: LossModel::None,
            delay_reserve: 1024,
            seed: 1,
            jitter: None,
            reorder: None,
            duplicate: None,
            corrupt: None,
            slot: None,
            profile: None,
            trace: None,
            schedule: None,
            epoch_ns: 0,
        }
    }
}

/// Cumulative pipe counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipeCounters {
    /// Packets offered to `enqueue`.
    pub offered: u64,
    /// Packets lost to the loss model.
    pub lost: u64,
    /// Packets that left through `dequeue`.
    pub delivered: u64,
    /// Bytes that left through `dequeue`.
    pub delivered_bytes: u64,
    /// Copies the caller made for duplication (each also counted as offered).
    pub duplicated: u64,
    /// Duplications the caller had no buffer for (netem's `duplicate`
    /// decided a copy, none was made).
    pub dup_no_frame: u64,
    /// Packets with a bit flipped (corruption).
    pub corrupted: u64,
}

/// An emulated link with its scheduler.
#[derive(Debug)]
pub struct Pipe<P: Packet + Copy + Default> {
    sched: AnySched<P>,
    bandwidth_bps: u64, // 0 = unlimited
    overhead: u64,
    delay_ns: u64,
    /// The link is busy until this instant (ns) plus `busy_rem / bandwidth` ns.
    busy_until: u64,
    busy_rem: u64,
    /// Packets on the wire or propagating: (due time, flow, packet), due times non-decreasing.
    delay_line: VecDeque<(u64, FlowId, P)>,
    /// Packets netem's reordering sent without the delay, due times
    /// non-decreasing: they leave ahead of the delay line's.
    express: VecDeque<(u64, FlowId, P)>,
    /// A rate, a trace or slots keep the link's time (see `paced`).
    paced: bool,
    /// The instants of the schedule's next link and loss steps
    /// (`u64::MAX`: none): compared on the packet path.
    link_step_at: u64,
    loss_step_at: u64,
    /// A trace with a packet log: arrivals are logged.
    log_arrivals: bool,
    /// The instant the scheduler (a class tree) said it may next send,
    /// when it last held every packet back (0: never).
    shaped_until: u64,
    loss: Loss,
    rng: Rng,
    counters: PipeCounters,
    /// Drops of the schedulers this pipe had before a reload (see
    /// [`Pipe::drops`]).
    carried: DropCounters,
    /// Delay jitter, if any, and whether it may reorder.
    jitter: Option<(Jitter, bool)>,
    /// netem's reordering, if any.
    reorder: Option<Reorder>,
    /// The due time of the packet last put on the delay line (jitter keeps
    /// order by never letting one be due before it).
    last_due: u64,
    /// Sojourn times of the packets sent (see the module docs).
    sojourn: SojournHist,
    /// Per flowset feeding the pipe (by its index among them): its queues'
    /// figures.
    queues: Vec<QueueStats>,
    /// Flow id → the flowset it belongs to; empty with one flowset.
    owner: Vec<u32>,
    /// Some flowset's queue management may mark packets at arrival (RED,
    /// PIE): `offer` then looks for a mark.
    marks_at_arrival: bool,
    /// netem's duplication and corruption, if on.
    dup: Option<Chance>,
    corrupt: Option<Corrupt>,
    /// netem's slots, dummynet's profile, a Mahimahi trace as the link, if on.
    slots: Option<Box<Slots>>,
    profile: Option<Box<ProfileDraw>>,
    trace: Option<Box<TraceLink>>,
    /// The schedule, twice: the link's changes (bandwidth, delay) are
    /// applied as transmissions reach them, the loss changes as packets
    /// arrive.
    link_steps: Option<Box<Schedule>>,
    loss_steps: Option<Box<Schedule>>,
    /// What the pipe was built from (a new epoch restarts the schedule,
    /// the trace and the slots from it).
    params: Box<PipeParams>,
}

impl<P: Packet + Copy + Default> Pipe<P> {
    /// A pipe around `sched`.
    pub fn new(sched: AnySched<P>, params: &PipeParams) -> Self {
        let loss = Loss::new(&params.loss);
        let mut pipe = Self {
            sched,
            bandwidth_bps: params.bandwidth_bps.unwrap_or(0),
            overhead: params.overhead_bytes as u64,
            delay_ns: params.delay_ns.min(MAX_DELAY_NS),
            busy_until: 0,
            busy_rem: 0,
            delay_line: VecDeque::with_capacity(params.delay_reserve),
            express: VecDeque::new(),
            paced: false,
            link_step_at: u64::MAX,
            loss_step_at: u64::MAX,
            log_arrivals: false,
            shaped_until: 0,
            loss,
            rng: Rng::new(params.seed),
            counters: PipeCounters::default(),
            carried: DropCounters::default(),
            jitter: params.jitter.as_ref().map(|j| {
                (
                    Jitter::new(
                        j.jitter_ns,
                        j.table.clone(),
                        j.correlation,
                        params.seed ^ 0x6a09_e667_f3bc_c908,
                    ),
                    j.reorder,
                )
            }),
            last_due: 0,
            reorder: params
                .reorder
                .map(|(p, c, g)| Reorder::new(p, c, g, params.seed ^ 0xbb67_ae85_84ca_a73b)),
            sojourn: if params.lazy_stats {
                SojournHist::lazy()
            } else {
                SojournHist::new()
            },
            queues: vec![QueueStats::default()],
            owner: Vec::new(),
            marks_at_arrival: true,
            dup: params
                .duplicate
                .map(|(p, c)| Chance::new(p, c, params.seed ^ 0x3c6e_f372_fe94_f82b)),
            corrupt: params
                .corrupt
                .map(|(p, c)| Corrupt::new(p, c, params.seed ^ 0xa54f_f53a_5f1d_36f1)),
            slots: None,
            profile: params.profile.as_ref().map(|pf| {
                Box::new(ProfileDraw::new(
                    pf.clone(),
                    params.seed ^ 0x510e_527f_ade6_82d1,
                ))
            }),
            trace: None,
            link_steps: None,
            loss_steps: None,
            params: Box::new(params.clone()),
        };
        pipe.set_epoch(params.epoch_ns);
        pipe
    }

    /// Starts the pipe's schedule, trace and slots at `epoch_ns` (the
    /// emulator's start; a reload's new pipes start at the reload).
    pub fn set_epoch(&mut self, epoch_ns: u64) {
        let p = &self.params;
        self.slots = p.slot.as_ref().map(|s| {
            Box::new(Slots::new(
                s.clone(),
                p.seed ^ 0x9b05_688c_2b3e_6c1f,
                epoch_ns,
            ))
        });
        self.trace = p
            .trace
            .as_ref()
            .map(|(t, log)| Box::new(TraceLink::new(t.clone(), epoch_ns, *log)));
        self.link_steps = p
            .schedule
            .as_ref()
            .map(|s| Box::new(Schedule::new(s.clone(), epoch_ns)));
        self.loss_steps = self.link_steps.clone();
        self.update_flags();
    }

    /// The same, fed by `n` flowsets whose figures are kept apart
    /// ([`Pipe::queue_stats`]); a flowset names itself when it offers a
    /// packet. `marks_at_arrival`: whether any of them has queue management
    /// that marks at arrival (else `offer` need not look).
    pub fn with_flowsets(mut self, n: usize, marks_at_arrival: bool) -> Self {
        self.marks_at_arrival = marks_at_arrival;
        let n = n.max(1);
        self.queues = vec![QueueStats::default(); n];
        if n > 1 {
            // Configuration time: one entry per flow the scheduler can hold,
            // and each flowset's histogram (with one flowset, the pipe's is it).
            let flows = self.sched.config().max_flows as usize;
            self.owner = vec![0; flows];
            // Up to EAGER_QUEUE_HISTOGRAMS flowsets, every bucket up front;
            // beyond (a class per subscriber: 34 KiB each would be GBs), blocks
            // as times come.
            let lazy = self.sojourn.is_lazy() || n > EAGER_QUEUE_HISTOGRAMS;
            for q in &mut self.queues {
                q.sojourn = Some(Box::new(if lazy {
                    SojournHist::lazy()
                } else {
                    SojournHist::new()
                }));
            }
        }
        self
    }

    /// The figures of flowset `local`'s queues (its index among the
    /// flowsets feeding the pipe).
    pub fn queue_stats(&self, local: usize) -> Option<&QueueStats> {
        self.queues.get(local)
    }

    /// Counts a mark queue management made at arrival (the scheduler's
    /// mark count moved from `before`) for `flow`'s flowset.
    #[cold]
    fn count_arrival_mark(&mut self, flow: FlowId, before: u64) {
        if self.sched.marked() != before {
            if let Some(q) = queue_of(&mut self.queues, &self.owner, flow) {
                q.marks += 1;
            }
        }
    }

    /// Sojourn times of the packets sent so far, ns (see the module docs).
    pub fn sojourn(&self) -> &SojournHist {
        &self.sojourn
    }

    /// The scheduler (to add and configure flows).
    pub fn sched(&mut self) -> &mut AnySched<P> {
        &mut self.sched
    }

    /// The scheduler, read-only.
    pub fn sched_ref(&self) -> &AnySched<P> {
        &self.sched
    }

    /// Counters.
    pub fn counters(&self) -> PipeCounters {
        self.counters
    }

    /// The scheduler's counters (drops by reason), including those of the
    /// schedulers this pipe replaced at reloads.
    pub fn drops(&self) -> DropCounters {
        let mut d = self.sched.counters();
        super::dynpipe::add_drops(&mut d, &self.carried);
        d
    }

    /// Packets in the scheduler plus on the link or in the delay line.
    pub fn backlog_packets(&self) -> u64 {
        self.sched.backlog().packets as u64 + self.in_flight() as u64
    }

    /// Bytes in the scheduler plus on the link or in the delay line (walks
    /// the delay line: for reports).
    pub fn backlog_bytes(&self) -> u64 {
        self.sched.backlog().bytes
            + self
                .delay_line
                .iter()
                .chain(&self.express)
                .map(|(_, _, p)| u64::from(p.len()))
                .sum::<u64>()
    }

    /// A packet arrived while the scheduler held every waiting one back
    /// until `shaped_until` (a class tree, per-flow rates): it may belong
    /// to a class or flow that can go now, so the link is free for it from
    /// its arrival — the pipe's wake-up comes back to now (the scheduler
    /// holds it again if not). On a rate-limited link the shaper had kept
    /// the link idle until then (`busy_until` at the same instant); the
    /// link's own transmission ended before the look that set it.
    #[cold]
    fn arrived_while_held(&mut self, now_ns: u64) {
        if self.paced && self.busy_until == self.shaped_until {
            self.busy_until = now_ns;
            self.busy_rem = 0;
        }
        self.shaped_until = now_ns;
    }

    /// Offers a packet at `now_ns`: through the entrance (loss, duplication, corruption)
    /// into the scheduler. A caller that can copy packets and flip their
    /// bits acts on what it returns (the emulator does, through its
    /// [`super::Host`]).
    pub fn enqueue(
        &mut self,
        now_ns: u64,
        flow: FlowId,
        pkt: P,
    ) -> Result<Admitted, PipeDropped<P>> {
        let Some(a) = self.admit(now_ns, true) else {
            return Err(PipeDropped {
                pkt,
                flow,
                reason: PipeDrop::Loss,
            });
        };
        self.offer(now_ns, flow, pkt, 0).map(|()| a)
    }

    /// The entrance of a new packet arriving at `now_ns` (`may_copy`: not a
    /// copy itself): counts it, applies the schedule's loss changes due by
    /// then, and draws as netem does — duplication, then loss (a duplicated
    /// packet that is lost goes through once, uncopied), then corruption.
    /// `None`: lost.
    #[inline]
    pub(super) fn admit(&mut self, now_ns: u64, may_copy: bool) -> Option<Admitted> {
        self.counters.offered += 1;
        // Each impairment off is one test here: a compare, or an `Option`.
        if now_ns >= self.loss_step_at {
            self.apply_loss_steps(now_ns);
        }
        let copy = may_copy && self.dup.as_mut().is_some_and(Chance::hit);
        let lost = self.loss.lose(&mut self.rng);
        if lost && !copy {
            self.counters.lost += 1;
            return None;
        }
        let flip = match &mut self.corrupt {
            None => None,
            Some(c) => {
                let f = c.draw();
                self.counters.corrupted += u64::from(f.is_some());
                f
            }
        };
        Some(Admitted {
            copy: copy && !lost,
            flip,
        })
    }

    /// The schedule's loss changes due by `t`.
    #[cold]
    fn apply_loss_steps(&mut self, t: u64) {
        while let Some((_, step)) = self.loss_steps.as_mut().and_then(|s| s.pop_due(t)) {
            if let Some(plr) = step.plr {
                let model = if plr > 0.0 {
                    LossModel::Uniform { plr }
                } else {
                    LossModel::None
                };
                self.loss = Loss::new(&model);
            }
        }
        self.loss_step_at = self.loss_steps.as_ref().map_or(u64::MAX, |s| s.next_at());
    }

    /// The caller made the copy [`Admitted::copy`] asked for (`made`), or
    /// had no buffer for it.
    pub fn copied(&mut self, made: bool) {
        if made {
            self.counters.duplicated += 1;
        } else {
            self.counters.dup_no_frame += 1;
        }
    }

    /// Offers an admitted packet (or, at a reload, one moved here: it was
    /// counted and went through the entrance where it was first offered)
    /// to the scheduler, from flowset `local` (its index among the pipe's).
    #[inline]
    pub(super) fn offer(
        &mut self,
        now_ns: u64,
        flow: FlowId,
        pkt: P,
        local: usize,
    ) -> Result<(), PipeDropped<P>> {
        if let Some(o) = self.owner.get_mut(flow.index()) {
            *o = local as u32;
        }
        if self.log_arrivals {
            if let Some(t) = &mut self.trace {
                t.arrived(now_ns, pkt.len().saturating_sub(pkt.l3_offset()));
            }
        }
        let idle = self.sched.backlog().packets == 0;
        // One call site: the scheduler's enqueue stays inlined here.
        let marked = if self.marks_at_arrival {
            self.sched.marked()
        } else {
            0
        };
        let result = self.sched.enqueue(now_ns, flow, pkt);
        if self.marks_at_arrival {
            self.count_arrival_mark(flow, marked);
        }
        match result {
            Ok(()) => {
                // A packet reaching an idle link starts at its arrival, not at the next poll.
                if idle && self.busy_until < now_ns {
                    self.busy_until = now_ns;
                    self.busy_rem = 0;
                }
                if self.shaped_until > now_ns {
                    self.arrived_while_held(now_ns);
                }
                Ok(())
            }
            Err(Dropped { pkt, flow, reason }) => {
                // A pushed-out victim is counted for its own flowset.
                if let Some(q) = queue_of(&mut self.queues, &self.owner, flow) {
                    q.count(reason);
                }
                if let Some(t) = &mut self.trace {
                    t.dropped(now_ns, pkt.len().saturating_sub(pkt.l3_offset()));
                }
                Err(PipeDropped {
                    pkt,
                    flow,
                    reason: PipeDrop::Sched(reason),
                })
            }
        }
    }

    /// Whether the link keeps its own time (a rate, a trace, or slots):
    /// packets start at `busy_until`, not at the call.
    #[inline]
    fn paced(&self) -> bool {
        self.paced
    }

    /// Recomputes what the packet path tests (after a change of
    /// bandwidth, or of the impairments in use).
    fn update_flags(&mut self) {
        self.paced = self.bandwidth_bps != 0 || self.trace.is_some() || self.slots.is_some();
        self.link_step_at = self.link_steps.as_ref().map_or(u64::MAX, |s| s.next_at());
        self.loss_step_at = self.loss_steps.as_ref().map_or(u64::MAX, |s| s.next_at());
        self.log_arrivals = self.trace.as_ref().is_some_and(|t| t.logging());
        let bps = self.bandwidth_bps;
        if let Some(p) = &mut self.profile {
            p.set_rate(bps);
        }
    }

    /// The schedule's link changes due by `t` (bandwidth, delay).
    #[cold]
    fn apply_link_steps(&mut self, t: u64) {
        while let Some((at, step)) = self.link_steps.as_mut().and_then(|s| s.pop_due(t)) {
            self.apply_link_step(at, step);
        }
        self.link_step_at = self.link_steps.as_ref().map_or(u64::MAX, |s| s.next_at());
    }

    fn apply_link_step(&mut self, at: u64, step: super::schedule::Step) {
        if let Some(bw) = step.bandwidth_bps {
            // The link was free by `at` (or a transmission is split there:
            // see `occupy_stepped`): the next one starts no earlier than
            // `at` at the new rate, its remainder in the new units.
            if self.busy_until <= at {
                self.busy_until = at;
                self.busy_rem = 0;
            }
            self.bandwidth_bps = bw;
            self.update_flags();
        }
        if let Some(d) = step.delay_ns {
            self.delay_ns = d.min(MAX_DELAY_NS);
        }
    }

    /// Occupies the rate-limited link with `bits` from its current end:
    /// returns the end of this transmission. Exact: whole ns plus a
    /// remainder carried over.
    #[inline]
    fn occupy(&mut self, bits: u64) -> u64 {
        // bits * 1e9 / bps, exactly: whole ns plus a remainder carried over.
        let num = u128::from(bits) * 1_000_000_000 + u128::from(self.busy_rem);
        let bw = u128::from(self.bandwidth_bps);
        self.busy_until += (num / bw) as u64;
        self.busy_rem = (num % bw) as u64;
        self.busy_until
    }

    /// [`Pipe::occupy`], or with a schedule [`Pipe::occupy_stepped`].
    #[inline]
    fn occupy_any(&mut self, bits: u64) -> u64 {
        if self.link_step_at == u64::MAX {
            self.occupy(bits)
        } else {
            self.occupy_stepped(bits)
        }
    }

    /// [`Pipe::occupy`] with a schedule: a bandwidth step inside the
    /// transmission splits it (the bits before the step at the old rate).
    fn occupy_stepped(&mut self, bits: u64) -> u64 {
        let mut work = u128::from(bits) * 1_000_000_000;
        loop {
            let bw = u128::from(self.bandwidth_bps);
            if bw == 0 {
                // Unlimited from a step on: the rest goes at once.
                return self.busy_until;
            }
            let num = work + u128::from(self.busy_rem);
            let end = self.busy_until + (num / bw) as u64;
            let step = self.link_steps.as_ref().map_or(u64::MAX, |s| s.next_at());
            if step >= end {
                self.busy_until = end;
                self.busy_rem = (num % bw) as u64;
                return end;
            }
            // The step falls inside: the work done by then at this rate
            // (steps up to the start were applied, so step > busy_until).
            let by_step = (u128::from(step.saturating_sub(self.busy_until)) * bw)
                .saturating_sub(u128::from(self.busy_rem));
            work -= by_step.min(work);
            self.busy_until = step;
            self.busy_rem = 0;
            if let Some((at, st)) = self.link_steps.as_mut().and_then(|s| s.pop_due(step)) {
                self.apply_link_step(at, st);
            }
            self.link_step_at = self.link_steps.as_ref().map_or(u64::MAX, |s| s.next_at());
        }
    }

    /// A step of the schedule is due by `start`: applies it; the instant
    /// the next packet may start then (`None`: not by `now_ns`).
    #[cold]
    fn step_before(&mut self, start: u64, now_ns: u64) -> Option<u64> {
        self.apply_link_steps(start);
        if !self.paced {
            return Some(now_ns);
        }
        (self.busy_until <= now_ns).then_some(self.busy_until)
    }

    /// The end of a trace link's transmission of `pkt`, at the head since
    /// `start` after `sojourn` in the queue.
    #[inline(always)]
    fn trace_done(&mut self, start: u64, sojourn: u64, pkt: &P) -> u64 {
        let bytes = pkt.len().saturating_sub(pkt.l3_offset());
        let t = self
            .trace
            .as_mut()
            .map_or(start, |t| t.depart(start.saturating_sub(sojourn), bytes));
        self.busy_until = t;
        t
    }

    /// Moves packets whose transmission can start by `now_ns` from the
    /// scheduler onto the link (into the delay line, due when their
    /// transmission ends plus the delay); queue management's drops and
    /// the profile's go to `dropped`.
    fn transmit(&mut self, now_ns: u64, dropped: &mut impl FnMut(PipeDropped<P>)) {
        while !self.paced || self.busy_until <= now_ns {
            // The instant the link takes the next packet: queue management
            // judges its sojourn then, not at this (possibly late) call.
            // (An unpaced link whose scheduler held packets back — a class
            // tree, per-flow rates — goes on from the instant it said one
            // may go, not from this call: a late call delays the output
            // but never costs the classes or flows their service.)
            let mut start = if self.paced {
                self.busy_until
            } else if self.shaped_until != 0 && self.shaped_until <= now_ns {
                self.shaped_until
            } else {
                now_ns
            };
            // Each impairment off is one test: a compare, or an `Option`.
            if start >= self.link_step_at {
                match self.step_before(start, now_ns) {
                    Some(s) => start = s,
                    None => break,
                }
            }
            if let Some(s) = &mut self.slots {
                if self.sched.backlog().packets == 0 {
                    break;
                }
                // The head may start only in an open slot.
                let open = s.gate(start);
                if open > start {
                    self.busy_until = open;
                    self.busy_rem = 0;
                }
                if open > now_ns {
                    break;
                }
                start = open;
                if start >= self.link_step_at {
                    // Steps between the old start and the slot apply first.
                    self.apply_link_steps(start);
                    if self.busy_until > start {
                        self.busy_until = start;
                        self.busy_rem = 0;
                    }
                }
            }
            let (owner, queues) = (&self.owner, &mut self.queues);
            let mut sink = |d: Dropped<P>| {
                if let Some(q) = queue_of(queues, owner, d.flow) {
                    q.aqm_drops += 1;
                }
                dropped(PipeDropped {
                    pkt: d.pkt,
                    flow: d.flow,
                    reason: PipeDrop::Sched(d.reason),
                })
            };
            let Some(dep) = self.sched.dequeue_managed(start, &mut sink) else {
                // A class tree or per-flow rates may hold packets back: the
                // link waits for the instant one may go (then tries again,
                // if that is due by now).
                if self.sched.backlog().packets == 0 {
                    self.shaped_until = 0;
                } else if let Some(t) = self.sched.next_ready().filter(|&t| t > start) {
                    self.shaped_until = t;
                    if self.paced {
                        self.busy_until = t;
                        self.busy_rem = 0;
                        continue;
                    }
                    if t <= now_ns {
                        continue;
                    }
                }
                break;
            };
            let sojourn = dep.sojourn_ns;
            self.sojourn.record(sojourn);
            if dep.marked || !self.owner.is_empty() {
                if let Some(q) = queue_of(&mut self.queues, &self.owner, dep.flow) {
                    q.marks += u64::from(dep.marked);
                    if let Some(h) = &mut q.sojourn {
                        h.record(sojourn);
                    }
                }
            }
            let (flow, pkt) = (dep.flow, dep.pkt);
            if let Some(s) = &mut self.slots {
                s.sent(pkt.len(), start);
            }
            let done = if self.bandwidth_bps != 0 {
                let mut bits = (u64::from(pkt.len()) + self.overhead) * 8;
                if let Some(p) = &mut self.profile {
                    // dummynet's extra air time; past its loss level the
                    // packet uses it and is dropped.
                    let (extra, doomed) = p.draw();
                    bits += extra;
                    if doomed {
                        self.occupy_any(bits);
                        self.counters.lost += 1;
                        dropped(PipeDropped {
                            pkt,
                            flow,
                            reason: PipeDrop::Loss,
                        });
                        continue;
                    }
                }
                self.occupy_any(bits)
            } else if self.trace.is_some() {
                self.trace_done(start, sojourn, &pkt)
            } else {
                start
            };
            if done >= self.link_step_at {
                // A delay step at or before the end of this transmission.
                self.apply_link_steps(done);
            }
            if self.reorder.as_mut().is_some_and(Reorder::skips_delay) {
                // netem's reordering: this one skips the delay, ahead of the
                // delayed packets: the express lane, sorted by construction.
                self.express.push_back((done, flow, pkt));
                continue;
            }
            match &mut self.jitter {
                None => {
                    let mut due = done.saturating_add(self.delay_ns);
                    if self.link_steps.is_some() {
                        // Never due before the packet sent before it (a
                        // delay the schedule shortened).
                        due = due.max(self.last_due);
                        self.last_due = due;
                    }
                    self.delay_line.push_back((due, flow, pkt));
                }
                Some((j, false)) => {
                    // In order: never due before the packet sent before it.
                    let due = done
                        .saturating_add(j.delay(self.delay_ns))
                        .max(self.last_due);
                    self.last_due = due;
                    self.delay_line.push_back((due, flow, pkt));
                }
                Some((j, true)) => {
                    // Reordered by its delay: kept sorted by due time (most
                    // land near the back), ties in sending order.
                    let due = done.saturating_add(j.delay(self.delay_ns));
                    let at = self.delay_line.partition_point(|&(d, _, _)| d <= due);
                    self.delay_line.insert(at, (due, flow, pkt));
                }
            }
        }
    }

    /// The due time of the next packet to leave: the delay line's head, or
    /// the express lane's (reordered packets) when it is not later.
    #[inline]
    fn head_due(&self) -> Option<u64> {
        let line = self.delay_line.front().map(|&(d, _, _)| d);
        match self.express.front() {
            None => line,
            Some(&(e, _, _)) => Some(line.map_or(e, |l| l.min(e))),
        }
    }

    /// Takes the head [`Pipe::head_due`] names if it is due by `now_ns`.
    #[inline]
    fn take_due(&mut self, now_ns: u64) -> Option<(u64, FlowId, P)> {
        let line = self.delay_line.front().map_or(u64::MAX, |&(d, _, _)| d);
        if let Some(&(e, _, _)) = self.express.front() {
            if e <= line && e <= now_ns {
                return self.express.pop_front();
            }
        }
        if line <= now_ns {
            self.delay_line.pop_front()
        } else {
            None
        }
    }

    /// Takes the next packet that has left the pipe by `now_ns`, with the
    /// instant it left (its due time, `<= now_ns`): (due, flow, packet).
    /// Packets queue management dropped on the way go to `dropped`.
    pub fn dequeue_timed(
        &mut self,
        now_ns: u64,
        dropped: &mut impl FnMut(PipeDropped<P>),
    ) -> Option<(u64, FlowId, P)> {
        let out = match self.take_due(now_ns) {
            Some(out) => out,
            None => {
                self.transmit(now_ns, dropped);
                self.take_due(now_ns)?
            }
        };
        self.counters.delivered += 1;
        self.counters.delivered_bytes += out.2.len() as u64;
        Some(out)
    }

    /// Takes the next packet that has left the pipe by `now_ns`; drops of
    /// queue management go to `dropped`.
    pub fn dequeue(
        &mut self,
        now_ns: u64,
        dropped: &mut impl FnMut(PipeDropped<P>),
    ) -> Option<(FlowId, P)> {
        self.dequeue_timed(now_ns, dropped).map(|(_, f, p)| (f, p))
    }

    /// Hands the trace's packet log lines kept so far to `f` (see
    /// [`super::trace`]); returns how many did not fit since the last call.
    pub fn drain_trace_log(&mut self, f: &mut impl FnMut(&LogLine)) -> u64 {
        self.trace.as_mut().map_or(0, |t| t.drain_log(f))
    }

    /// Whether the pipe replays a trace with a packet log.
    pub fn trace_logging(&self) -> bool {
        self.trace.as_ref().is_some_and(|t| t.logging())
    }

    /// Hands every packet to `f`: the delay line's, then the scheduler's (not
    /// counted as delivered).
    pub fn drain(&mut self, f: &mut impl FnMut(P)) {
        for (_, _, p) in self.express.drain(..).chain(self.delay_line.drain(..)) {
            f(p);
        }
        while let Some((_, p)) = self.sched.dequeue(u64::MAX) {
            f(p);
        }
    }

    /// At a reload: takes over `old`'s link — the transmission under way and
    /// every packet sent and not yet out, with their due times — and its
    /// counters. `old` keeps what waits in its scheduler.
    /// `same` pairs the flowsets kept on this pipe: (index among the old
    /// pipe's, index among this one's); their queue figures carry over.
    pub(super) fn take_link(&mut self, old: &mut Pipe<P>, same: &[(usize, usize)]) {
        // The remainder is in units of the old rate: round up to a whole ns.
        // (Never earlier than a transmission this pipe already started.)
        let until = old.busy_until + (old.busy_rem != 0) as u64;
        if until > self.busy_until {
            self.busy_until = until;
            self.busy_rem = 0;
        }
        self.delay_line.append(&mut old.delay_line);
        self.express.append(&mut old.express);
        // Jitter keeps order behind what the old link sent.
        let last = self.delay_line.back().map_or(0, |&(due, _, _)| due);
        self.last_due = self.last_due.max(old.last_due).max(last);
        super::dynpipe::add_pipe(&mut self.counters, &old.counters);
        let d = old.drops();
        super::dynpipe::add_drops(&mut self.carried, &d);
        self.sojourn.add(&old.sojourn);
        // Per flowset kept on the pipe, by name (a flowset moved to
        // another pipe starts its queue figures there afresh).
        let single = self.queues.len() == 1;
        for &(o, n) in same {
            if let (Some(q), Some(oq)) = (self.queues.get_mut(n), old.queues.get(o)) {
                let mut oq = oq.clone();
                if oq.sojourn.is_none() && old.queues.len() == 1 {
                    // The old pipe's only flowset: the pipe's histogram was its.
                    oq.sojourn = Some(Box::new(old.sojourn.clone()));
                }
                if single {
                    // This pipe's only flowset: its histogram is the pipe's.
                    oq.sojourn = None;
                }
                q.add(&oq);
            }
        }
    }

    /// At a reload: the packets on the link or in the delay line, handed to `f`.
    pub(super) fn take_in_flight(&mut self, f: &mut impl FnMut(P)) {
        for (_, _, p) in self.express.drain(..).chain(self.delay_line.drain(..)) {
            f(p);
        }
    }

    /// At a reload: the next packet waiting in the scheduler (in its order,
    /// so each flow's packets come in theirs), with its flow.
    pub(super) fn take_queued(&mut self) -> Option<(FlowId, P)> {
        self.sched.dequeue(u64::MAX)
    }

    /// Packets on the link or in the delay line (sent, not yet out).
    pub fn in_flight(&self) -> usize {
        self.delay_line.len() + self.express.len()
    }

    /// On a rate-limited link with packets waiting in its scheduler: the end
    /// of the transmission under way (no packet can start before it, and one
    /// arriving before it does not start the link). `None` otherwise.
    /// (A trace or slots decide by each packet's arrival — whether it
    /// waited for an opportunity or a slot — so their arrivals may not wait:
    /// `None`.)
    pub fn busy_with_backlog(&self) -> Option<u64> {
        let rate_only = self.trace.is_none() && self.slots.is_none();
        (self.paced && rate_only && self.sched.backlog().packets != 0).then_some(self.busy_until)
    }

    /// When something next becomes due: the head of the delay line, or the
    /// end of the current transmission if packets wait in the scheduler.
    /// `None` when the pipe is empty.
    pub fn next_wakeup(&self) -> Option<u64> {
        let line = self.head_due();
        let link = if self.sched.backlog().packets != 0 {
            let free = if !self.paced() {
                0
            } else {
                self.busy_until + (self.busy_rem != 0) as u64
            };
            // A class tree holding packets back: not before it lets one go.
            Some(free.max(self.shaped_until))
        } else {
            None
        };
        match (line, link) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build, FlowConfig, Kind, Lmax, SchedConfig, Weight};

    /// The `dropped` sink of pipes without queue management.
    fn no_drop(d: PipeDropped<u32>) {
        panic!("no queue management, yet a drop at dequeue: {d:?}")
    }

    fn pipe(kind: Kind, params: PipeParams, flows: &[u32]) -> (Pipe<u32>, Vec<FlowId>) {
        let cfg = SchedConfig {
            max_flows: 64,
            limit_packets: 100_000,
            ..SchedConfig::default()
        };
        let mut p = Pipe::new(build(kind, cfg).expect("sched"), &params);
        let ids = flows
            .iter()
            .map(|&w| {
                p.sched()
                    .add_flow(FlowConfig {
                        weight: Weight::new(w as u64).expect("w"),
                        lmax: Lmax::new(9000).expect("lmax"),
                        ..FlowConfig::default()
                    })
                    .expect("flow")
            })
            .collect();
        (p, ids)
    }

    /// Drives a pipe exactly at its wake-up times, keeping `depth` packets of
    /// `len` bytes queued per flow, until `until_ns`; returns (flow, exit time, len).
    fn drive(
        p: &mut Pipe<u32>,
        ids: &[FlowId],
        len: u32,
        depth: usize,
        until_ns: u64,
    ) -> Vec<(usize, u64, u32)> {
        let mut out = Vec::new();
        for _ in 0..depth {
            for &f in ids {
                p.enqueue(0, f, len).expect("enqueue");
            }
        }
        let mut now = 0;
        loop {
            while let Some((f, l)) = p.dequeue(now, &mut no_drop) {
                let i = ids.iter().position(|&x| x == f).expect("known flow");
                out.push((i, now, l));
                p.enqueue(now, f, len).expect("refill");
            }
            match p.next_wakeup() {
                Some(t) if t <= until_ns => now = t.max(now),
                _ => break,
            }
        }
        out
    }

    #[test]
    fn rate_is_exact_from_10_kbit_to_100_gbit() {
        for bps in [
            10_000u64,
            1_000_000,
            100_000_000,
            1_000_000_000,
            10_000_000_000,
            100_000_000_000,
        ] {
            let params = PipeParams {
                bandwidth_bps: Some(bps),
                ..PipeParams::default()
            };
            let (mut p, ids) = pipe(Kind::Fifo, params, &[1]);
            // Small frames at low rates, so that one simulated second holds several.
            let len = if bps < 10_000_000 { 64u32 } else { 1500 };
            let out = drive(&mut p, &ids, len, 4, 1_000_000_000);
            assert!(out.len() >= 10, "{bps}: only {} frames in 1 s", out.len());
            let bits: u64 = out.iter().map(|&(_, _, l)| (l as u64 + 24) * 8).sum();
            let last = out.last().map_or(0, |&(_, t, _)| t);
            // Rate over the simulated interval [0, last]: exact to one packet.
            let rate = bits as f64 / (last as f64 / 1e9);
            let err = (rate - bps as f64).abs() / bps as f64;
            assert!(
                err < 0.001,
                "{bps} bit/s: measured {rate:.1}, error {err:.6}"
            );
            // And over exactly one second: within one packet of the ideal count.
            let ideal = bps as f64 / ((len as f64 + 24.0) * 8.0);
            assert!(
                (out.len() as f64 - ideal).abs() <= 1.0,
                "{bps}: {} vs {ideal}",
                out.len()
            );
        }
    }

    #[test]
    fn delay_is_exact_to_the_nanosecond() {
        let params = PipeParams {
            bandwidth_bps: Some(1_000_000_000),
            delay_ns: 20_000_000,
            ..PipeParams::default()
        };
        let (mut p, ids) = pipe(Kind::Fifo, params, &[1]);
        // One 1000-byte packet at t = 5 ms: 1024 bytes on the wire at 1 Gbit/s = 8192 ns.
        p.enqueue(5_000_000, ids[0], 1000).expect("enqueue");
        assert_eq!(p.next_wakeup(), Some(5_000_000));
        assert_eq!(p.dequeue(5_000_000, &mut no_drop), None);
        let due = 5_000_000 + 8192 + 20_000_000;
        assert_eq!(p.next_wakeup(), Some(due));
        assert_eq!(p.dequeue(due - 1, &mut no_drop), None);
        assert_eq!(p.dequeue(due, &mut no_drop), Some((ids[0], 1000)));
        assert_eq!(p.next_wakeup(), None);
    }

    #[test]
    fn unlimited_bandwidth_and_no_delay_passes_straight_through() {
        let (mut p, ids) = pipe(Kind::Fifo, PipeParams::default(), &[1]);
        p.enqueue(7, ids[0], 64).expect("enqueue");
        assert_eq!(p.next_wakeup(), Some(0));
        assert_eq!(p.dequeue(7, &mut no_drop), Some((ids[0], 64)));
    }

    #[test]
    fn uniform_loss_matches_plr_within_a_binomial_bound() {
        for plr in [0.001, 0.01, 0.1, 0.5] {
            let params = PipeParams {
                loss: LossModel::Uniform { plr },
                seed: 42,
                ..PipeParams::default()
            };
            let (mut p, ids) = pipe(Kind::Fifo, params, &[1]);
            let n = 200_000u64;
            let mut lost = 0u64;
            for _ in 0..n {
                match p.enqueue(0, ids[0], 100) {
                    Err(PipeDropped {
                        reason: PipeDrop::Loss,
                        ..
                    }) => lost += 1,
                    Err(e) => panic!("unexpected drop {e:?}"),
                    Ok(_) => {
                        let _ = p.dequeue(0, &mut no_drop);
                    }
                }
            }
            // 99.9 % two-sided binomial bound: |x - np| <= 3.29 sqrt(np(1-p)).
            let mean = n as f64 * plr;
            let bound = 3.29 * (mean * (1.0 - plr)).sqrt();
            assert!(
                (lost as f64 - mean).abs() <= bound,
                "plr {plr}: lost {lost}, expected {mean} ± {bound:.1}"
            );
        }
    }

    #[test]
    fn gilbert_elliott_loss_matches_its_stationary_rate_and_is_bursty() {
        let model = LossModel::GilbertElliott {
            p: 0.01,
            r: 0.2,
            k: 1.0,
            h: 0.3,
        };
        let params = PipeParams {
            loss: model,
            seed: 7,
            ..PipeParams::default()
        };
        let (mut p, ids) = pipe(Kind::Fifo, params, &[1]);
        let n = 400_000;
        let mut lost = 0u64;
        let mut runs = 0u64;
        let mut prev_lost = false;
        for _ in 0..n {
            let l = p.enqueue(0, ids[0], 100).is_err();
            if l {
                lost += 1;
                if !prev_lost {
                    runs += 1;
                }
            } else {
                let _ = p.dequeue(0, &mut no_drop);
            }
            prev_lost = l;
        }
        let rate = lost as f64 / n as f64;
        let expect = model.mean_loss();
        assert!(
            (rate - expect).abs() < 0.1 * expect,
            "GE loss {rate} vs {expect}"
        );
        // Bursty: mean loss run longer than uniform loss would give (1 / (1 - rate)).
        let mean_run = lost as f64 / runs as f64;
        assert!(mean_run > 1.3, "mean loss burst {mean_run}");
    }

    #[test]
    fn queue_limit_drops_exactly_at_the_limit_and_counts_it() {
        let cfg = SchedConfig {
            max_flows: 4,
            limit_packets: 50,
            ..SchedConfig::default()
        };
        let params = PipeParams {
            bandwidth_bps: Some(1_000_000),
            ..PipeParams::default()
        };
        let mut p: Pipe<u32> = Pipe::new(build(Kind::Fifo, cfg).expect("sched"), &params);
        let f = p.sched().add_flow(FlowConfig::default()).expect("flow");
        for i in 0..50 {
            assert!(p.enqueue(0, f, 1000).is_ok(), "packet {i} fits");
        }
        let d = p.enqueue(0, f, 1000).expect_err("51st");
        assert_eq!(d.reason, PipeDrop::Sched(DropReason::GlobalLimit));
        assert_eq!(p.sched_ref().counters().drops(DropReason::GlobalLimit), 1);
    }

    #[test]
    fn qfq_pipe_shares_100_mbit_by_weight() {
        let params = PipeParams {
            bandwidth_bps: Some(100_000_000),
            ..PipeParams::default()
        };
        let (mut p, ids) = pipe(Kind::Qfq, params, &[1, 2, 3, 4]);
        let out = drive(&mut p, &ids, 1500, 8, 1_000_000_000);
        let mut bytes = [0u64; 4];
        for &(i, _, l) in &out {
            bytes[i] += l as u64;
        }
        let total: u64 = bytes.iter().sum();
        for (i, b) in bytes.iter().enumerate() {
            let share = *b as f64 / total as f64;
            let want = (i + 1) as f64 / 10.0;
            assert!(
                (share - want).abs() < 0.01 * want,
                "flow {i}: {share} vs {want}"
            );
        }
    }

    #[test]
    fn the_delay_line_holds_rate_times_delay_beyond_its_reserve_and_the_queue() {
        // 10 Mbit/s, 100 ms, a queue of 50 packets and 2 reserved slots: at 1500 B
        // about 83 packets are in flight at once, none may be lost.
        let params = PipeParams {
            bandwidth_bps: Some(10_000_000),
            delay_ns: 100_000_000,
            delay_reserve: 2,
            ..PipeParams::default()
        };
        let cfg = SchedConfig {
            max_flows: 4,
            limit_packets: 50,
            ..SchedConfig::default()
        };
        let mut p: Pipe<u32> = Pipe::new(build(Kind::Fifo, cfg).expect("sched"), &params);
        let f = p.sched().add_flow(FlowConfig::default()).expect("flow");
        // Offer 8 Mbit/s of 1500-byte packets for 2 s: one every 1.5 ms.
        let (mut sent, mut got, mut most) = (0u32, 0u32, 0usize);
        let mut last_due = 0;
        for i in 0..1334u64 {
            let now = i * 1_500_000;
            while let Some((due, _, len)) = p.dequeue_timed(now, &mut no_drop) {
                assert_eq!(len, 1500);
                assert!(due <= now && due >= last_due, "due {due} at {now}");
                last_due = due;
                got += 1;
            }
            p.enqueue(now, f, 1500)
                .map_err(|d| d.reason)
                .expect("no drop");
            sent += 1;
            most = most.max(p.in_flight());
        }
        let mut now = 1334 * 1_500_000;
        while got < sent {
            now += 1_000_000;
            while p.dequeue(now, &mut no_drop).is_some() {
                got += 1;
            }
            assert!(now < 10_000_000_000, "drained");
        }
        assert_eq!(p.counters().delivered, sent as u64);
        assert!(
            most >= 60,
            "at most {most} in flight: the line did not grow"
        );
    }

    fn jittery(reorder: bool) -> (Pipe<u32>, Vec<FlowId>) {
        let params = PipeParams {
            bandwidth_bps: Some(100_000_000),
            delay_ns: 10_000_000,
            jitter: Some(JitterParams {
                jitter_ns: 5_000_000,
                table: None,
                correlation: 0.0,
                reorder,
            }),
            ..PipeParams::default()
        };
        pipe(Kind::Fifo, params, &[1])
    }

    #[test]
    fn jitter_keeps_order_by_default_and_reorders_when_asked() {
        for reorder in [false, true] {
            let (mut p, ids) = jittery(reorder);
            let mut exits = Vec::new();
            let mut now = 0;
            for i in 0..10_000u64 {
                now = i * 100_000;
                p.enqueue(now, ids[0], 1000).expect("enqueue");
                while let Some((due, _, _)) = p.dequeue_timed(now, &mut no_drop) {
                    exits.push(due);
                }
            }
            while let Some(t) = p.next_wakeup() {
                now = now.max(t);
                while let Some((due, _, _)) = p.dequeue_timed(now, &mut no_drop) {
                    exits.push(due);
                }
            }
            assert_eq!(exits.len(), 10_000);
            // Due times come out non-decreasing either way (the line is sorted).
            assert!(exits.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn jitter_spreads_the_delay_uniformly_and_reorder_lets_packets_pass() {
        for reorder in [false, true] {
            let (mut p, ids) = jittery(reorder);
            // Packet i has length 64 + i % 1000 and is sent at i * 100 µs; it
            // leaves at send + transmission + delay.
            let mut delays = Vec::new();
            let mut order = Vec::new();
            let mut now = 0;
            let pull =
                |p: &mut Pipe<u32>, now: u64, delays: &mut Vec<f64>, order: &mut Vec<u32>| {
                    while let Some((due, _, len)) = p.dequeue_timed(now, &mut no_drop) {
                        // Sent at (len - 64) * 100 µs; on the wire (len + 24) * 80 ns.
                        let (sent, tx) =
                            (u64::from(len - 64) * 100_000, (u64::from(len) + 24) * 80);
                        delays.push((due - sent - tx) as f64);
                        order.push(len);
                    }
                };
            for i in 0..900u32 {
                now = u64::from(i) * 100_000;
                let len = 64 + i;
                p.enqueue(now, ids[0], len).expect("enqueue");
                pull(&mut p, now, &mut delays, &mut order);
            }
            now += 100_000_000;
            pull(&mut p, now, &mut delays, &mut order);
            assert_eq!(order.len(), 900);
            let passed = order.windows(2).filter(|w| w[1] < w[0]).count();
            if reorder {
                // 5 ms of jitter against 100 µs gaps: packets pass each other,
                // and each delay is its own draw, uniform on [5, 15) ms.
                assert!(passed > 100, "only {passed} passed");
                let mean = delays.iter().sum::<f64>() / delays.len() as f64;
                assert!((mean - 10e6).abs() < 0.3e6, "mean {mean}");
                assert!(delays.iter().all(|&d| (5e6..15e6 + 1.0).contains(&d)));
            } else {
                assert_eq!(passed, 0, "order kept");
                // Raised to keep order: never below the draw's range.
                assert!(delays.iter().all(|&d| d >= 5e6));
            }
        }
    }

    /// netem's `delay 10ms reorder 25%`: a quarter of the packets leave
    /// without the delay, ahead of those sent before them; the rest take it.
    #[test]
    fn reorder_sends_a_share_ahead_without_the_delay() {
        // Unlimited rate: packet i (of length 64 + i) leaves its link at once.
        let params = PipeParams {
            delay_ns: 10_000_000,
            reorder: Some((0.25, 0.0, 1)),
            ..PipeParams::default()
        };
        let (mut p, ids) = pipe(Kind::Fifo, params, &[1]);
        let n = 8_000u32;
        let (mut out, mut now) = (Vec::new(), 0);
        for i in 0..n {
            now = u64::from(i) * 100_000;
            p.enqueue(now, ids[0], 64 + i).expect("enqueue");
            while let Some((due, _, len)) = p.dequeue_timed(now, &mut no_drop) {
                out.push((due, len));
            }
        }
        while let Some(t) = p.next_wakeup() {
            now = now.max(t);
            while let Some((due, _, len)) = p.dequeue_timed(now, &mut no_drop) {
                out.push((due, len));
            }
        }
        assert_eq!(out.len(), n as usize);
        // Sent at id * 100 µs, the id read from the length.
        let id = |len: u32| len - 64;
        let quick = out
            .iter()
            .filter(|&&(due, len)| due - u64::from(id(len)) * 100_000 < 1_000_000)
            .count() as f64;
        let want = 0.25 * f64::from(n);
        let sd = (want * 0.75).sqrt();
        assert!(
            (quick - want).abs() < 4.0 * sd,
            "{quick} skipped the delay, want {want}"
        );
        // They overtook: the exit order is not the sending order.
        let passed = out.windows(2).filter(|w| id(w[1].1) < id(w[0].1)).count();
        assert!(passed as f64 > 0.2 * f64::from(n), "{passed} passed");
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
