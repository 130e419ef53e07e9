//! The machinery every algorithm shares: the flow slab, the packet pool,
//! the per-flow FIFO queues (their list operations in `queue`), limits and
//! drop policies. An algorithm plugs in
//! through [`Algorithm`] and only decides *which flow* sends next; this
//! module moves the packets. (dummynet splits the same way: `dn_queue` and
//! `dn_enqueue` are common, a scheduler plug-in supplies `enqueue`/`dequeue`
//! over them.)
//!
//! Nothing here allocates after construction: the slab and the pool are
//! reserved up front (`SchedConfig::max_flows`, `SchedConfig::limit_packets`)
//! and reused through free lists.

use super::aqm::{Aqm, AqmFlow, Arrival, Decision, Head};
use super::plugin::{Algorithm, Flow};
use super::queue::{link, mark_empty, unlink_head, FlowQueue, Node, NIL};
use super::wheel::Wheel;
use super::Scheduler;
use crate::types::{
    Backlog, ConfigError, Departure, DropCounters, DropReason, Dropped, FlowConfig, FlowId,
    OverflowPolicy, Packet, SchedConfig,
};

/// How far `enqueue`'s fast path got before giving up: which room counters it
/// had already decremented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    Nothing,
    /// The flow's packet room.
    FlowPacket,
    /// The flow's packet and byte room.
    FlowRoom,
    /// The flow's rooms and the global byte room.
    AllRoom,
}

/// What `enqueue_slow` decided. Eight bytes, returned in a register.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    /// The node the offered packet goes into, `NIL` if it was dropped.
    node: u32,
    /// The packet dropped, if any: the offered one, or for `PushedOut` (the
    /// offered one was queued) the victim parked in `Engine::victim`.
    drop: Option<DropReason>,
    /// Queue management marks the offered packet CE.
    mark: bool,
}

/// Longest-queue-drop bookkeeping (only allocated by an `Engine<_, _, true>`):
/// `bucket[n]` heads a doubly linked list of the flows with exactly `n`
/// packets queued (n >= 1), linked through `links[flow] = [prev, next]`; `max`
/// is the largest non-empty `n`.
#[derive(Debug, Clone, Default)]
struct LongestQueue {
    bucket: Vec<u32>,
    links: Vec<[u32; 2]>,
    max: u32,
}

/// The scheduler-wide fields every packet updates. They sit behind their own
/// pointer on purpose: the compiler then cannot prove that stores into the flow
/// slab or the pool leave them alone, so it updates each in memory with one
/// read-modify-write instruction. Inline in `Engine` (reachable only through the
/// caller's exclusive `&mut`), LLVM carries them in registers across a caller's
/// enqueue/dequeue loop instead, and under that loop's register pressure each
/// one-instruction update became a reload, the add, a spill and the store
/// (+6 instructions per packet for DRR in callgrind).
#[derive(Debug, Clone)]
struct Hot {
    /// Head of the free list. The list ends with `NIL` (out of the pool's range),
    /// so one `nodes.get()` both tests for an empty free list and bounds-checks
    /// the index.
    free_node: u32,
    /// Bytes that may still be queued in total (`cfg.limit_bytes - queued bytes`).
    room_bytes: u64,
    /// Packets accepted (queued) so far; with `dequeued` and the pushed-out
    /// count this gives the packets queued, so a packet costs one counter
    /// update on each side.
    accepted: u64,
    /// Packets dequeued so far.
    dequeued: u64,
}

/// One scheduler: an algorithm over the shared flow slab and packet pool.
///
/// `LQD` selects the overflow policy at the type level: `false` (the default)
/// is [`OverflowPolicy::TailDrop`], `true` is [`OverflowPolicy::DropLongest`].
/// The tail-drop engine then carries no longest-queue-drop state and pays no
/// test for it per packet; [`crate::build`] picks the right one from
/// `SchedConfig::overflow`, and [`Engine::new`] refuses a configuration whose
/// policy does not match `LQD`.
#[derive(Debug, Clone)]
pub struct Engine<P, A: Algorithm, const LQD: bool = false> {
    flows: Vec<Flow<A::Flow>>,
    free_ids: Vec<u32>,
    configured: u32,
    /// Pool of packet nodes, `limit_packets` long; every node is either on the
    /// free list or in exactly one flow queue, so "free list empty" is the global
    /// packet limit.
    nodes: Box<[Node<P>]>,
    /// The scheduler-wide state every packet updates (see [`Hot`]).
    hot: Box<Hot>,
    /// The packet pushed out by the last `DropLongest` overflow, handed from the
    /// slow path to `enqueue`.
    victim: Option<(FlowId, P)>,
    cfg: SchedConfig,
    /// Drop counters (enqueued/dequeued are derived in `counters()`).
    counters: DropCounters,
    /// Empty unless `LQD`.
    lq: LongestQueue,
    /// Per flow slot: its queue management, once any flow has some (empty
    /// until then; then as long as `flows`, reserved for `max_flows`).
    aqm: Vec<AqmFlow>,
    /// Some flow has queue management that decides at arrival (RED, PIE):
    /// every enqueue takes the slow path.
    aqm_at_arrival: bool,
    /// Queued packets queue management dropped at dequeue (for the count of
    /// packets queued; `counters` has them with the arrival drops).
    aqm_dequeue_drops: u64,
    /// Per-flow rates, once any flow has one (see [`Pacer`]).
    pacer: Option<Box<Pacer>>,
    algo: A,
}

/// Width of the pacing wheel's slots: 2^10 ns (about 1 µs).
const PACE_SHIFT: u32 = 10;
/// Its slots: 2^16, a span of 67 ms (slower flows wait in a heap until
/// their turn comes within it).
const PACE_SLOTS_LOG2: u32 = 16;
/// How much a paced flow behind its schedule may send at once to catch up:
/// 10 ms at its rate (or one packet, if longer) — a token bucket's depth,
/// in time. Carousel's timestamps run on from the previous packet's; the
/// bound keeps a flow the link held back (congestion, the algorithm's
/// weights), or one idle for long, from coming back with a long burst; a
/// new flow starts from its first packet. 1 ms was too short for a busy
/// host: on the 2-vCPU VM the thread that reads the frames is off its CPU
/// for more than that now and then, the flow's queue runs dry behind it,
/// and a 1 Gbit/s flow lost 0.4-1.4 % of its rate (`bench-results/pacing/`).
pub const PACE_CATCH_UP_NS: u64 = 10_000_000;

/// Per-flow rate limits (`FlowConfig::rate_bps`), Carousel's way: each
/// flow's next departure is kept exactly (ns plus a remainder carried, so
/// the long-run rate is exact), and a backlogged flow whose next packet is
/// not due yet leaves the algorithm — which sees it go idle — and waits in
/// a timing wheel ([`Wheel`]) until it is; it then comes back as a newly
/// backlogged flow, at most one wheel slot late. A flow the link delays
/// (its departures later than its schedule) catches up by at most
/// [`PACE_CATCH_UP_NS`] (or a packet), so it gets its rate when the link
/// has room for it and the algorithm's share when it has not; one idle for
/// long starts with at most that much at once. Algorithms that serve per packet rather
/// than per flow (FIFO) cannot pace flows. O(1) per packet, whatever the
/// number of flows.
#[derive(Debug, Clone)]
struct Pacer {
    /// Per flow: bit/s (0: none), the instant its next packet may leave,
    /// and the remainder of that instant (in bit·ns / rate units).
    rate: Vec<u64>,
    next: Vec<u64>,
    rem: Vec<u64>,
    wheel: Wheel,
}

impl Pacer {
    fn new(max_flows: usize) -> Self {
        Self {
            rate: vec![0; max_flows],
            next: vec![0; max_flows],
            rem: vec![0; max_flows],
            wheel: Wheel::new(max_flows, PACE_SHIFT, PACE_SLOTS_LOG2),
        }
    }

    /// Flow `id` sent `len` bytes at `now`: its next instant, if it must
    /// wait for it. The schedule runs on from the previous instant (a flow
    /// the link, the wheel or a late poll delayed catches up), but never
    /// from further back than [`PACE_CATCH_UP_NS`] or this packet's own
    /// time, whichever is longer (a flow idle or starved for long comes
    /// back with at most that much of a burst).
    #[inline]
    fn sent(&mut self, id: usize, len: u32, now: u64) -> Option<u64> {
        let rate = *self.rate.get(id)?;
        if rate == 0 {
            return None;
        }
        let num = u128::from(len) * 8_000_000_000 + u128::from(self.rem[id]);
        let cost = (num / u128::from(rate)).min(u128::from(u64::MAX / 4)) as u64;
        self.rem[id] = (num % u128::from(rate)) as u64;
        let catch_up = cost.max(PACE_CATCH_UP_NS);
        let next = self.next[id]
            .max(now.saturating_sub(catch_up))
            .saturating_add(cost);
        self.next[id] = next;
        (next > now).then_some(next)
    }

    /// An arrival to flow `id` (`was_idle`: its queue was empty): whether
    /// the algorithm must not hear of it (the flow waits in the wheel). A
    /// new flow (no packet sent since its rate was set) starts from `now`.
    #[inline]
    fn holds(&mut self, id: usize, was_idle: bool, now: u64) -> bool {
        if self.rate.get(id).is_none_or(|&r| r == 0) {
            return false;
        }
        if self.wheel.contains(id as u32) {
            return true;
        }
        if was_idle {
            if self.next[id] == 0 {
                self.next[id] = now;
            } else if self.next[id] > now {
                self.wheel.insert(id as u32, self.next[id]);
                return true;
            }
        }
        false
    }
}

impl<P: Packet + Copy + Default, A: Algorithm, const LQD: bool> Engine<P, A, LQD> {
    /// Builds a scheduler, reserving the flow slab and the packet pool.
    ///
    /// `cfg.overflow` must be `DropLongest` exactly when `LQD` is true.
    pub fn new(cfg: SchedConfig) -> Result<Self, ConfigError> {
        Self::with_algorithm(cfg, |c| A::new(c))
    }

    /// [`Engine::new`] with the algorithm built by `make` (one that needs
    /// more than the [`SchedConfig`], as HTB its class tree).
    pub fn with_algorithm(
        cfg: SchedConfig,
        make: impl FnOnce(&SchedConfig) -> A,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let lqd = cfg.overflow == OverflowPolicy::DropLongest;
        if lqd && !A::PUSHOUT {
            return Err(ConfigError::Unsupported(
                "drop-longest needs per-flow queues served out of order; FIFO has one queue: use tail drop",
            ));
        }
        if lqd != LQD {
            return Err(ConfigError::Unsupported(if LQD {
                "this engine type is built for drop-longest (Engine<_, _, true>); use Engine<_, _, false> for tail drop"
            } else {
                "drop-longest needs Engine<_, _, true> (sched::build picks it from the configuration)"
            }));
        }
        Ok(Self {
            flows: Vec::with_capacity(cfg.max_flows as usize),
            // Grows only on remove_flow (a configuration call), so not reserved.
            free_ids: Vec::new(),
            configured: 0,
            nodes: (0..cfg.limit_packets)
                .map(|i| Node {
                    pkt: P::default(),
                    next: if i + 1 < cfg.limit_packets {
                        i + 1
                    } else {
                        NIL
                    },
                    next_len: 0,
                    stamp: 0,
                })
                .collect(),
            hot: Box::new(Hot {
                free_node: 0,
                room_bytes: cfg.limit_bytes,
                accepted: 0,
                dequeued: 0,
            }),
            victim: None,
            counters: DropCounters::default(),
            lq: if LQD {
                LongestQueue {
                    bucket: vec![NIL; cfg.limit_packets as usize + 1],
                    links: vec![[NIL; 2]; cfg.max_flows as usize],
                    max: 0,
                }
            } else {
                LongestQueue::default()
            },
            aqm: Vec::new(),
            aqm_at_arrival: false,
            aqm_dequeue_drops: 0,
            pacer: None,
            algo: make(&cfg),
            cfg,
        })
    }

    /// The algorithm's state (for tests and introspection).
    pub fn algorithm(&self) -> &A {
        &self.algo
    }

    /// Per-flow state of `flow`, if configured.
    pub fn flow_state(&self, flow: FlowId) -> Option<&Flow<A::Flow>> {
        self.flows.get(flow.index()).filter(|f| f.q.is_configured())
    }

    /// Test hook: see [`Algorithm::set_virtual_time`]. Refused while packets are queued.
    pub fn set_virtual_time(&mut self, v: u64) -> Result<(), ConfigError> {
        if self.total_pkts() != 0 {
            return Err(ConfigError::Unsupported(
                "the virtual clock can only be moved while the scheduler is empty",
            ));
        }
        self.algo.set_virtual_time(v);
        Ok(())
    }

    /// Memory per configured flow in bytes: its slab slot, what the algorithm
    /// reserves per flow, and with drop-longest its bucket links. Packets cost
    /// a pool node each on top (`limit_packets`).
    pub fn memory_per_flow() -> usize {
        std::mem::size_of::<Flow<A::Flow>>()
            + A::RESERVED_BYTES_PER_FLOW
            + if LQD {
                std::mem::size_of::<[u32; 2]>()
            } else {
                0
            }
    }

    /// Reserves the per-flow queue management table for every flow the
    /// scheduler can hold, so that no flow added later allocates for it: the
    /// emulator calls this at configuration time when some flowset of the
    /// pipe has queue management (flows are added on their first packet).
    pub fn reserve_aqm(&mut self) {
        self.aqm.reserve_exact(self.cfg.max_flows as usize);
    }

    /// Makes the per-flow pacing tables now (configuration time) rather
    /// than with the first flow that has a rate.
    pub fn reserve_pacing(&mut self) {
        if self.pacer.is_none() {
            self.pacer = Some(Box::new(Pacer::new(self.cfg.max_flows as usize)));
        }
    }

    /// Slot `id`'s rate (0: none); its schedule starts over. The caller
    /// checked [`Engine::check_rate`].
    fn set_rate(&mut self, id: usize, rate_bps: u64) {
        if rate_bps != 0 {
            self.reserve_pacing();
        }
        if let Some(p) = self.pacer.as_deref_mut() {
            if let Some(r) = p.rate.get_mut(id) {
                *r = rate_bps;
                p.next[id] = 0;
                p.rem[id] = 0;
            }
        }
    }

    /// A rate needs an algorithm that serves flows, not packets.
    fn check_rate(cfg: &FlowConfig) -> Result<(), ConfigError> {
        if cfg.rate_bps != 0 && !A::PACEABLE {
            return Err(ConfigError::Unsupported(
                "a per-flow rate needs a scheduler that can hold a backlogged flow back: drr, qfq, wf2q or prio (not fifo, which serves packets in arrival order, nor fq_codel)",
            ));
        }
        Ok(())
    }

    /// Paced flows due by `now_ns` go back to the algorithm, as newly
    /// backlogged (all of them at `u64::MAX`: a drain).
    #[inline(never)]
    fn release_paced(&mut self, now_ns: u64) {
        let Some(p) = self.pacer.as_deref_mut() else {
            return;
        };
        if p.wheel.is_empty() {
            return;
        }
        let (algo, flows) = (&mut self.algo, &mut self.flows);
        let back = |id: u32| algo.arrived(flows, id as usize, true, now_ns);
        if now_ns == u64::MAX {
            p.wheel.release_all(back);
        } else {
            p.wheel.release(now_ns, back);
        }
    }

    /// Gives slot `id` fresh queue management `params` (its state starts
    /// over). The per-slot table is made on the first flow with any (see
    /// [`Engine::reserve_aqm`]).
    fn set_aqm(&mut self, id: usize, params: Aqm) {
        if self.aqm.is_empty() {
            if params == Aqm::None {
                return;
            }
            // Configuration time, once: reserved for every flow the slab may
            // hold, so that adding flows later never reallocates.
            self.aqm.reserve_exact(self.cfg.max_flows as usize);
        }
        if self.aqm.len() < self.flows.len() {
            self.aqm.resize(self.flows.len(), AqmFlow::default());
        }
        self.aqm_at_arrival |= params.at_arrival();
        self.aqm[id] = AqmFlow::new(params, (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }

    /// The queue management of `flow`, if configured and any flow has some.
    pub fn aqm_flow(&self, flow: FlowId) -> Option<&AqmFlow> {
        self.flow_state(flow)?;
        self.aqm.get(flow.index())
    }

    /// Queue management state summed over the flows: (flows in CoDel's
    /// dropping state, the largest CoDel count among them). Walks the slab:
    /// for reports.
    pub fn aqm_summary(&self) -> AqmSummary {
        let mut s = AqmSummary::default();
        for (f, m) in self.flows.iter().zip(&self.aqm) {
            match m.codel() {
                Some(c) if f.q.is_configured() && c.dropping() => {
                    s.dropping += 1;
                    s.max_count = s.max_count.max(c.count());
                }
                _ => {}
            }
        }
        s
    }

    /// Packets queue management marked CE so far.
    #[inline]
    pub fn marked(&self) -> u64 {
        self.counters.marked
    }

    /// The next packet as the algorithm orders them, with its enqueue stamp.
    #[inline]
    fn pop(&mut self, now_ns: u64) -> Option<(FlowId, P, u64)> {
        // One load of the `Hot` pointer for the whole call.
        if self.pacer.is_some() {
            self.release_paced(now_ns);
        }
        let hot = &mut *self.hot;
        let flows = &mut self.flows[..];
        let id = self.algo.select_at(flows, now_ns)?;
        let q = &mut flows[id].q;
        let (pkt, len, stamp, now_empty) = unlink_head(q, &mut self.nodes, &mut hot.free_node);
        hot.room_bytes += len as u64;
        hot.dequeued += 1;
        if LQD {
            let n = q.pkts();
            lq_move(&mut self.lq, id, n + 1, n);
        }
        // One test of `now_empty`, and each call of `served` inlined with it constant.
        if now_empty {
            mark_empty(q);
            self.algo.served(flows, id, len, true, now_ns);
            if let Some(p) = self.pacer.as_deref_mut() {
                p.sent(id, len, now_ns);
            }
        } else if let Some(at) = self
            .pacer
            .as_deref_mut()
            .and_then(|p| p.sent(id, len, now_ns))
        {
            // Not due again yet: out of the algorithm, into the wheel.
            self.algo.served(flows, id, len, true, now_ns);
            if let Some(p) = self.pacer.as_deref_mut() {
                p.wheel.insert(id as u32, at);
            }
        } else {
            self.algo.served(flows, id, len, false, now_ns);
        }
        Some((FlowId(id as u32), pkt, stamp))
    }

    /// `dequeue_managed` with queue management: each head packet is put to
    /// its flow's AQM first. Out of line: the engines without queue
    /// management keep their dequeue as small as it was.
    #[inline(never)]
    fn dequeue_aqm(
        &mut self,
        now_ns: u64,
        dropped: &mut dyn FnMut(Dropped<P>),
    ) -> Option<Departure<P>> {
        loop {
            if self.pacer.is_some() {
                self.release_paced(now_ns);
            }
            let hot = &mut *self.hot;
            let flows = &mut self.flows[..];
            let id = self.algo.select_at(flows, now_ns)?;
            let q = &mut flows[id].q;
            let (mut pkt, len, stamp, now_empty) =
                unlink_head(q, &mut self.nodes, &mut hot.free_node);
            hot.room_bytes += len as u64;
            if LQD {
                let n = q.pkts();
                lq_move(&mut self.lq, id, n + 1, n);
            }
            if now_empty {
                mark_empty(q);
            }
            let sojourn_ns = now_ns.saturating_sub(stamp);
            let flow = FlowId(id as u32);
            let decision = match self.aqm.get_mut(id) {
                None => Decision::Deliver,
                Some(m) => {
                    let head = Head {
                        sojourn_ns,
                        len,
                        ecn_capable: pkt.ecn_capable(),
                        flow_bytes: q.bytes(),
                        total_bytes: self.cfg.limit_bytes - hot.room_bytes,
                    };
                    let d = m.on_dequeue(now_ns, head);
                    if now_empty {
                        m.on_empty(now_ns);
                    }
                    d
                }
            };
            let marked = decision == Decision::Mark;
            match decision {
                Decision::Drop => {
                    self.counters.by_reason[DropReason::Aqm as usize] += 1;
                    self.aqm_dequeue_drops += 1;
                    // Linux fq_codel does not charge a flow's deficit for the
                    // packets CoDel drops; virtual-time algorithms must be.
                    let charged = if A::CHARGES_DROPS { len } else { 0 };
                    self.algo.served(flows, id, charged, now_empty, now_ns);
                    dropped(Dropped {
                        pkt,
                        flow,
                        reason: DropReason::Aqm,
                    });
                    continue;
                }
                Decision::Mark => {
                    pkt.set_ce();
                    self.counters.marked += 1;
                }
                Decision::Deliver => {}
            }
            hot.dequeued += 1;
            let wait = self
                .pacer
                .as_deref_mut()
                .and_then(|p| p.sent(id, len, now_ns));
            match wait {
                Some(at) if !now_empty => {
                    // Not due again yet: out of the algorithm, into the wheel.
                    self.algo.served(flows, id, len, true, now_ns);
                    if let Some(p) = self.pacer.as_deref_mut() {
                        p.wheel.insert(id as u32, at);
                    }
                }
                _ => self.algo.served(flows, id, len, now_empty, now_ns),
            }
            return Some(Departure {
                flow,
                pkt,
                sojourn_ns,
                marked,
            });
        }
    }

    /// The configuration the scheduler was built with.
    pub fn config(&self) -> &SchedConfig {
        &self.cfg
    }

    /// Packets queued in total.
    #[inline]
    fn total_pkts(&self) -> u32 {
        (self.hot.accepted
            - self.hot.dequeued
            - self.counters.drops(DropReason::PushedOut)
            - self.aqm_dequeue_drops) as u32
    }

    fn idle_flow(&self, flow: FlowId) -> Result<usize, ConfigError> {
        let id = flow.index();
        match self.flows.get(id) {
            Some(f) if f.q.is_configured() => {
                if !f.q.is_empty() {
                    Err(ConfigError::FlowBusy {
                        flow,
                        packets: f.q.pkts(),
                    })
                } else {
                    Ok(id)
                }
            }
            _ => Err(ConfigError::UnknownFlow(flow)),
        }
    }

    /// Sets an idle queue's limits.
    fn apply_queue_config(q: &mut FlowQueue, cfg: &FlowConfig) {
        q.lmax = cfg.lmax.get();
        q.limit_pkts = cfg.limit.packets;
        q.limit_bytes = cfg.limit.bytes;
        q.room_pkts = cfg.limit.packets;
        q.room_bytes = cfg.limit.bytes;
    }

    /// The slow half of `enqueue`: every drop, the global limits, longest-queue-drop.
    /// First returns the room the fast path had `taken` before it gave up. The
    /// packet itself stays with the caller (only its length comes here): passed
    /// by value to an out-of-line function it would be built in memory on every
    /// enqueue, fast path included, and copied from there (+3 instructions per
    /// packet in callgrind). The caller writes it into `Verdict::node` and builds
    /// the `Result` from the verdict, which comes back in a register.
    #[cold]
    #[inline(never)]
    fn enqueue_slow(
        &mut self,
        now_ns: u64,
        id: usize,
        taken: Taken,
        len: u32,
        ecn_capable: bool,
    ) -> Verdict {
        // Undo what the fast path took. Wrapping: a counter the fast path took
        // below zero (its borrow is how it saw the limit) comes back to zero.
        if taken != Taken::Nothing {
            let q = &mut self.flows[id].q;
            q.room_pkts = q.room_pkts.wrapping_add(1);
            if taken != Taken::FlowPacket {
                q.room_bytes = q.room_bytes.wrapping_add(len);
            }
            if taken == Taken::AllRoom {
                self.hot.room_bytes = self.hot.room_bytes.wrapping_add(len as u64);
            }
        }
        let dropped = |r| Verdict {
            node: NIL,
            drop: Some(r),
            mark: false,
        };
        let reason = match self.flows.get(id) {
            None => Some(DropReason::UnknownFlow),
            Some(f) if len.wrapping_sub(1) >= f.q.lmax => Some(if f.q.lmax == 0 {
                DropReason::UnknownFlow
            } else {
                DropReason::BadLength
            }),
            Some(_) => None,
        };
        if let Some(r) = reason {
            self.counters.by_reason[r as usize] += 1;
            return dropped(r);
        }
        // Arrival-time queue management: RED before the queue's limit (as
        // dummynet: every arrival moves its average), PIE after it (as Linux).
        let mut mark = false;
        let (has_aqm, before) = match self.aqm.get(id) {
            Some(m) if self.aqm_at_arrival => (true, m.params().before_limits()),
            _ => (false, false),
        };
        if before {
            match self.arrival_aqm(now_ns, id, len, ecn_capable) {
                Some(true) => mark = true,
                Some(false) => {}
                None => return dropped(DropReason::Aqm),
            }
        }
        let q = &self.flows[id].q;
        if q.room_pkts == 0 || len > q.room_bytes {
            self.counters.by_reason[DropReason::FlowLimit as usize] += 1;
            return dropped(DropReason::FlowLimit);
        }
        if has_aqm && !before {
            match self.arrival_aqm(now_ns, id, len, ecn_capable) {
                Some(true) => mark = true,
                Some(false) => {}
                None => return dropped(DropReason::Aqm),
            }
        }
        let mut pushed_out = None;
        if self.hot.free_node as usize >= self.nodes.len() || len as u64 > self.hot.room_bytes {
            match self.overflow(id, len) {
                Ok(v) => pushed_out = Some(v),
                Err(r) => return dropped(r),
            }
        }
        // Queue it (the caller writes the packet into the node).
        let n = self.hot.free_node;
        let slot = &mut self.nodes[n as usize];
        self.hot.free_node = slot.next;
        self.hot.accepted += 1;
        self.hot.room_bytes -= len as u64;
        let q = &mut self.flows[id].q;
        q.room_pkts -= 1;
        q.room_bytes -= len;
        let was_idle = link(q, &mut self.nodes, n, len);
        if LQD {
            let c = q.pkts();
            lq_move(&mut self.lq, id, c - 1, c);
        }
        // A paced flow waiting in the wheel (or now sent there) is not the
        // algorithm's until it is due.
        let held = self
            .pacer
            .as_deref_mut()
            .is_some_and(|p| p.holds(id, was_idle, now_ns));
        if !held {
            self.algo.arrived(&mut self.flows, id, was_idle, now_ns);
        }
        Verdict {
            node: n,
            drop: pushed_out.map(|v| {
                self.victim = Some(v);
                DropReason::PushedOut
            }),
            mark,
        }
    }

    /// Flow `id`'s arrival-time queue management on a packet of `len` bytes:
    /// `Some(mark)` to queue it (marked CE or not), `None` if it dropped it
    /// (counted here).
    fn arrival_aqm(&mut self, now_ns: u64, id: usize, len: u32, ecn_capable: bool) -> Option<bool> {
        let (Some(m), Some(f)) = (self.aqm.get_mut(id), self.flows.get(id)) else {
            return Some(false);
        };
        let a = Arrival {
            now_ns,
            pkts: f.q.pkts(),
            bytes: f.q.bytes(),
            len,
            ecn_capable,
        };
        match m.on_enqueue(a) {
            Decision::Deliver => Some(false),
            Decision::Mark => Some(true),
            Decision::Drop => {
                self.counters.by_reason[DropReason::Aqm as usize] += 1;
                None
            }
        }
    }

    /// Global limit reached while offering `len` bytes to flow `id`.
    /// `Ok(victim)`: the arrival may be queued, `victim` was pushed out to make
    /// room; `Err`: the arrival is dropped (counted here).
    #[cold]
    fn overflow(&mut self, id: usize, len: u32) -> Result<(FlowId, P), DropReason> {
        if !LQD || self.lq.max == 0 {
            self.counters.by_reason[DropReason::GlobalLimit as usize] += 1;
            return Err(DropReason::GlobalLimit);
        }
        let victim = self.lq.bucket[self.lq.max as usize] as usize;
        let vq = &self.flows[victim].q;
        // The arriving flow would be (one of) the longest, or the victim would
        // empty and change the algorithm's active set, or the room made is not
        // enough: drop the arrival instead.
        if victim == id
            || vq.pkts() <= self.flows[id].q.pkts() + 1
            || len as u64 > self.hot.room_bytes + vq.head_len as u64
        {
            self.counters.by_reason[DropReason::GlobalLimit as usize] += 1;
            return Err(DropReason::GlobalLimit);
        }
        // Drop the victim's head (O(1) in a singly linked list). Its queue keeps at
        // least one packet, so the algorithm's active set is unchanged; the victim's
        // timestamps stay as computed for the dropped packet (it is charged for it:
        // at most one lmax of its service).
        let old = vq.pkts();
        let (vpkt, vlen, _, emptied) = unlink_head(
            &mut self.flows[victim].q,
            &mut self.nodes,
            &mut self.hot.free_node,
        );
        debug_assert!(!emptied, "a victim keeps at least one packet");
        self.hot.room_bytes += vlen as u64;
        lq_move(&mut self.lq, victim, old, old - 1);
        if let Some(m) = self.aqm.get_mut(victim) {
            m.on_pushed_out();
        }
        self.counters.by_reason[DropReason::PushedOut as usize] += 1;
        Ok((FlowId(victim as u32), vpkt))
    }
}

impl<P: Packet + Copy + Default, A: Algorithm, const LQD: bool> Scheduler<P> for Engine<P, A, LQD> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn add_flow(&mut self, cfg: FlowConfig) -> Result<FlowId, ConfigError> {
        Self::check_rate(&cfg)?;
        let (id, fresh_slot) = match self.free_ids.last() {
            Some(&id) => (id as usize, false),
            None => {
                if self.flows.len() >= self.cfg.max_flows as usize {
                    return Err(ConfigError::TooManyFlows {
                        max: self.cfg.max_flows,
                    });
                }
                self.flows.push(Flow::default());
                (self.flows.len() - 1, true)
            }
        };
        self.flows[id] = Flow::default();
        if let Err(e) = self.algo.configure(&mut self.flows, id, &cfg, true) {
            if fresh_slot {
                self.flows.pop();
            }
            return Err(e);
        }
        if !fresh_slot {
            self.free_ids.pop();
        }
        Self::apply_queue_config(&mut self.flows[id].q, &cfg);
        self.set_aqm(id, cfg.aqm);
        self.set_rate(id, cfg.rate_bps);
        self.configured += 1;
        Ok(FlowId(id as u32))
    }

    fn configure_flow(&mut self, flow: FlowId, cfg: FlowConfig) -> Result<(), ConfigError> {
        let id = self.idle_flow(flow)?;
        Self::check_rate(&cfg)?;
        self.algo.configure(&mut self.flows, id, &cfg, false)?;
        Self::apply_queue_config(&mut self.flows[id].q, &cfg);
        self.set_aqm(id, cfg.aqm);
        self.set_rate(id, cfg.rate_bps);
        Ok(())
    }

    fn remove_flow(&mut self, flow: FlowId) -> Result<(), ConfigError> {
        let id = self.idle_flow(flow)?;
        self.algo.remove(&mut self.flows, id);
        self.flows[id] = Flow::default();
        self.set_aqm(id, Aqm::None);
        self.set_rate(id, 0);
        self.free_ids.push(id as u32);
        self.configured -= 1;
        Ok(())
    }

    #[inline]
    fn enqueue(&mut self, now_ns: u64, flow: FlowId, pkt: P) -> Result<(), Dropped<P>> {
        let id = flow.index();
        let len = pkt.len();
        // Fast path: a configured flow (lmax != 0), 1 <= len <= lmax (len 0 wraps),
        // room in the flow, a free node (= under the global packet limit), room
        // under the global byte limit. Anything else takes the slow path. Each
        // room counter is decremented first and the borrow tested after (one
        // read-modify-write and a branch, no separate compare); the slow path
        // undoes what the fast path took (`Taken`).
        let hot = &mut *self.hot;
        let taken = 'fast: {
            if self.aqm_at_arrival | self.pacer.is_some() {
                break 'fast Taken::Nothing;
            }
            let Some(f) = self.flows.get_mut(id) else {
                break 'fast Taken::Nothing;
            };
            let q = &mut f.q;
            if len.wrapping_sub(1) >= q.lmax {
                break 'fast Taken::Nothing;
            }
            let (pkts, short) = q.room_pkts.overflowing_sub(1);
            q.room_pkts = pkts;
            if short {
                break 'fast Taken::FlowPacket;
            }
            let (bytes, short) = q.room_bytes.overflowing_sub(len);
            q.room_bytes = bytes;
            if short {
                break 'fast Taken::FlowRoom;
            }
            let Some(slot) = self.nodes.get_mut(hot.free_node as usize) else {
                break 'fast Taken::FlowRoom;
            };
            let (room, short) = hot.room_bytes.overflowing_sub(len as u64);
            hot.room_bytes = room;
            if short {
                break 'fast Taken::AllRoom;
            }
            let n = hot.free_node;
            hot.free_node = slot.next;
            hot.accepted += 1;
            slot.pkt = pkt;
            slot.stamp = now_ns;
            let was_idle = link(q, &mut self.nodes, n, len);
            if LQD {
                let c = q.pkts();
                lq_move(&mut self.lq, id, c - 1, c);
            }
            // Each call inlined with `was_idle` constant (the common one is
            // empty for most algorithms): no second test.
            if was_idle {
                self.algo.arrived(&mut self.flows, id, true, now_ns);
            } else {
                self.algo.arrived(&mut self.flows, id, false, now_ns);
            }
            return Ok(());
        };
        let mut pkt = pkt;
        let v = self.enqueue_slow(now_ns, id, taken, len, pkt.ecn_capable());
        if v.mark {
            pkt.set_ce();
            self.counters.marked += 1;
        }
        if let Some(slot) = self.nodes.get_mut(v.node as usize) {
            slot.pkt = pkt;
            slot.stamp = now_ns;
        }
        match v.drop {
            None => Ok(()),
            Some(DropReason::PushedOut) => {
                let (vflow, vpkt) = self.victim.take().unwrap_or((flow, pkt));
                Err(Dropped {
                    pkt: vpkt,
                    flow: vflow,
                    reason: DropReason::PushedOut,
                })
            }
            Some(reason) => Err(Dropped { pkt, flow, reason }),
        }
    }

    #[inline]
    fn dequeue(&mut self, now_ns: u64) -> Option<(FlowId, P)> {
        self.pop(now_ns).map(|(f, p, _)| (f, p))
    }

    fn dequeue_managed(
        &mut self,
        now_ns: u64,
        dropped: &mut dyn FnMut(Dropped<P>),
    ) -> Option<Departure<P>> {
        if self.aqm.is_empty() {
            // No queue management: the plain pop, with the packet's stamp.
            return self.pop(now_ns).map(|(flow, pkt, stamp)| Departure {
                flow,
                pkt,
                sojourn_ns: now_ns.saturating_sub(stamp),
                marked: false,
            });
        }
        self.dequeue_aqm(now_ns, dropped)
    }

    fn peek(&mut self, now_ns: u64) -> Option<(FlowId, &P)> {
        let id = self.algo.select_at(&mut self.flows, now_ns)?;
        let head = self.flows[id].q.head as usize;
        Some((FlowId(id as u32), &self.nodes[head].pkt))
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            packets: self.total_pkts(),
            bytes: self.cfg.limit_bytes - self.hot.room_bytes,
        }
    }

    fn flow_backlog(&self, flow: FlowId) -> Option<Backlog> {
        self.flow_state(flow).map(|f| Backlog {
            packets: f.q.pkts(),
            bytes: f.q.bytes() as u64,
        })
    }

    fn counters(&self) -> DropCounters {
        // Derived, not counted per packet: every packet ever accepted is either
        // still queued, dequeued, or was pushed out.
        let mut c = self.counters;
        c.enqueued = self.hot.accepted;
        c.dequeued = self.hot.dequeued;
        c
    }

    fn flows(&self) -> u32 {
        self.configured
    }

    fn next_ready(&self) -> Option<u64> {
        let paced = self.pacer.as_ref().and_then(|p| p.wheel.next_at());
        match (self.algo.next_ready(), paced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Queue management state over a scheduler's flows ([`Engine::aqm_summary`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AqmSummary {
    /// Flows in CoDel's dropping state.
    pub dropping: u32,
    /// The largest CoDel count among them.
    pub max_count: u32,
}

// --- longest-queue-drop buckets ------------------------------------------

fn lq_unlink(lq: &mut LongestQueue, id: usize, len: u32) {
    let [prev, next] = lq.links[id];
    if prev == NIL {
        lq.bucket[len as usize] = next;
    } else {
        lq.links[prev as usize][1] = next;
    }
    if next != NIL {
        lq.links[next as usize][0] = prev;
    }
}

fn lq_link(lq: &mut LongestQueue, id: usize, len: u32) {
    let head = lq.bucket[len as usize];
    lq.links[id] = [NIL, head];
    if head != NIL {
        lq.links[head as usize][0] = id as u32;
    }
    lq.bucket[len as usize] = id as u32;
}

/// Moves flow `id` from bucket `old` to bucket `new` (0 = in no bucket).
#[cold]
#[inline(never)]
fn lq_move(lq: &mut LongestQueue, id: usize, old: u32, new: u32) {
    if old != 0 {
        lq_unlink(lq, id, old);
    }
    if new != 0 {
        lq_link(lq, id, new);
        if new > lq.max {
            lq.max = new;
        }
    }
    // Lengths change by one, so when the top bucket empties the next one down is not empty.
    while lq.max > 0 && lq.bucket[lq.max as usize] == NIL {
        lq.max -= 1;
    }
}
