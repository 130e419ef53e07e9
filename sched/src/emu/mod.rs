//! The dummynet model assembled: frame → parse → rules → flowset → per-flow
//! queue in a pipe's scheduler → link → delay → out (or, for a chained pipe,
//! into the next pipe's flowset). Pure and pull-based like its parts: the
//! caller feeds frames with `now_ns` and polls `dequeue` at `next_wakeup()`.
//!
//! **Every packet is handed back.** A packet offered to `enqueue` is queued,
//! passed, or dropped and returned in the [`Verdict`]; one dropped on its
//! way from a chained pipe into the next is returned through
//! [`Host::dropped`]. Nothing is dropped anywhere else: the delay lines hold
//! whatever the links have sent (see [`pipe`]). Drops are counted by
//! cause ([`Emulator::drops`]).
//!
//! **Tables never black-hole.** A flowset whose `max_flows` flows are busy
//! puts new flows into its overflow queue ([`flowset`]); a dynamic
//! pipe with `max_instances` instances sends new keys to one shared
//! overflow instance (counted, with the same ordering rule: new instances
//! wait while it holds packets). Idle flows and instances expire in
//! [`Emulator::expire`], a sweep with a bounded budget per call.

//!
//! The parts: [`pipe`] (an emulated link: scheduler, bandwidth, delay line,
//! loss from [`loss`]), [`flowset`] (per-flow queues from a mask), `dynpipe`
//! (a pipe with a mask: an instance per key), [`build`] (the runtime objects
//! of a validated [`crate::config::Config`]), and here the emulator that
//! routes frames through them; `stats` reads its figures.

pub mod build;
mod dynpipe;
pub mod flowset;
pub mod impair;
pub mod jitter;
pub mod loss;
pub mod pipe;
mod reload;
pub mod schedule;
pub mod sojourn;
mod stats;
pub mod trace;
mod wake;

pub use build::{
    in_flight, BuildError, FLOW_CACHE_SLOTS, FULL_FRAME, MAX_FLOWS_PER_INSTANCE, MAX_PIPE_PACKETS,
};
pub use flowset::{FlowStat, FlowTally, Flowset, FlowsetCounters, FlowsetParams};
pub use loss::LossModel;
pub use pipe::{Pipe, PipeCounters, PipeDrop, PipeDropped, PipeParams, QueueStats};
pub use reload::Takeover;
pub use stats::FlowsetQueues;

use crate::classify::{Classifier, FlowKey};
use crate::types::{DropReason, FlowId, Packet};
use crate::wire::{self, Family, ParseError};
use dynpipe::DynPipe;
use wake::WakeQueue;

/// Where a frame goes when no rule matches, or what a rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Forward unscheduled (ARP, non-IP, unmatched traffic by default).
    Pass,
    /// Into this flowset.
    Flowset(usize),
}

/// Why the emulator dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The frame did not parse.
    Malformed(ParseError),
    /// Its flowset had no room for another flow and not even for its
    /// overflow queue (the scheduler's flow slab was full).
    FlowsetFull,
    /// A dynamic pipe could not create an instance, not even its overflow
    /// instance (its scheduler could not be built).
    PipeFull,
    /// The pipe dropped it (loss, queue limits, ...).
    Pipe(PipeDrop),
}

/// The caller's side of the emulator where a packet needs its buffer:
/// while packets move on from a chained pipe into the next one, and for
/// netem's duplication and corruption.
pub trait Host<P> {
    /// The flow key of `pkt` (the next pipe's flowset classifies it again):
    /// xdpsched reads it from the frame.
    fn key(&mut self, pkt: &P) -> FlowKey;
    /// `pkt` was dropped where no verdict could return it (on its way into
    /// the next pipe, a copy's drop, queue management at dequeue); the
    /// caller frees it and counts it.
    fn dropped(&mut self, pkt: P, cause: Cause);
    /// A copy of `pkt` in a buffer of its own, for duplication (xdpsched
    /// takes a free frame of the lane and copies the bytes); `None` when no
    /// buffer is free right now — the pipe counts it
    /// ([`PipeCounters::dup_no_frame`]) and goes on, never waits. The
    /// default has no buffers.
    fn duplicate(&mut self, _pkt: &P) -> Option<P> {
        None
    }
    /// Flips the bit `flip` says in `pkt`'s bytes past the link-layer
    /// header (corruption; checksums are left as they become). The default
    /// has no bytes to flip (simulations).
    fn corrupt(&mut self, _pkt: &mut P, _flip: impair::Flip) {}
}

/// A host without buffers: no copies, nothing to flip, keys unknown, and
/// drops handed to it vanish — only for packets that have no buffer
/// (simulations that call [`Emulator::enqueue`] and [`Emulator::enqueue_key`],
/// whose copies are counted as not made and which hold no chain drops).
#[derive(Debug, Default)]
pub struct NoHost;

impl<P> Host<P> for NoHost {
    fn key(&mut self, _pkt: &P) -> FlowKey {
        FlowKey::default()
    }
    fn dropped(&mut self, _pkt: P, _cause: Cause) {}
}

/// A frame parsed and classified ([`Emulator::classify_frame`]): its key,
/// where it goes, and the DSCP the matching rule rewrites it to (the
/// caller writes it into the frame: [`crate::wire::dscp::set`]); the key
/// already carries the new DSCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The flow key.
    pub key: FlowKey,
    /// Where it goes.
    pub target: Target,
    /// The rule's `set_dscp`, if any.
    pub set_dscp: Option<u8>,
}

/// What the entrance asked for beyond queueing: a duplicate (made by the
/// host, counted by the pipe) and a bit flipped — netem clones before it
/// corrupts, so the copy is intact.
#[inline(never)]
fn entry_extras<P: Packet + Copy + Default>(
    pipe: &mut Pipe<P>,
    a: pipe::Admitted,
    pkt: &mut P,
    host: &mut impl Host<P>,
) -> Option<P> {
    let copy = if a.copy {
        let c = host.duplicate(pkt);
        pipe.copied(c.is_some());
        c
    } else {
        None
    };
    if let Some(f) = a.flip {
        host.corrupt(pkt, f);
    }
    copy
}

/// How a packet enters a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A new packet: counted, through loss, duplication, corruption.
    Fresh,
    /// A duplicate: the same, but not duplicated again.
    Copy,
    /// Moved at a reload: it went through the entrance where it was first offered.
    Moved,
}

/// Drops by cause, summed over every pipe, instance and flowset (instances
/// that expired included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Frames that did not parse.
    pub malformed: u64,
    /// [`Cause::FlowsetFull`].
    pub flowset_full: u64,
    /// [`Cause::PipeFull`].
    pub pipe_full: u64,
    /// Random loss in the pipes.
    pub loss: u64,
    /// The schedulers' drops, indexed like [`DropReason::ALL`].
    pub sched: [u64; DropReason::COUNT],
}

impl Drops {
    /// Every drop.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.flowset_full
            + self.pipe_full
            + self.loss
            + self.sched.iter().sum::<u64>()
    }

    /// (name, count) for every cause, for reports: `malformed`,
    /// `flowset_full`, `pipe_full`, `loss`, then the scheduler's reasons.
    pub fn by_name(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("malformed", self.malformed),
            ("flowset_full", self.flowset_full),
            ("pipe_full", self.pipe_full),
            ("loss", self.loss),
        ]
        .into_iter()
        .chain(
            DropReason::ALL
                .iter()
                .zip(self.sched)
                .map(|(r, n)| (r.name(), n)),
        )
    }
}

/// What happened to an offered packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<P> {
    /// Queued in `pipe` as `flow`.
    Queued {
        /// Pipe index.
        pipe: usize,
        /// Flow in that pipe's scheduler.
        flow: FlowId,
    },
    /// Queued, and another packet was pushed out to make room (handed back).
    QueuedPushedOut {
        /// Pipe index.
        pipe: usize,
        /// The pushed-out packet.
        victim: P,
    },
    /// Not scheduled: forward it as is.
    Pass(P),
    /// Dropped (handed back so the caller can free its buffer).
    Dropped(P, Cause),
}

/// Cumulative counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorCounters {
    /// Frames offered.
    pub offered: u64,
    /// Frames that failed to parse.
    pub malformed: u64,
    /// Frames passed through unscheduled.
    pub passed: u64,
    /// Frames matched by a rule (the rest took the default).
    pub matched: u64,
    /// Packets dropped with [`Cause::FlowsetFull`].
    pub flowset_full: u64,
    /// Packets dropped with [`Cause::PipeFull`].
    pub pipe_full: u64,
    /// Packets moved from a chained pipe into the next.
    pub chained: u64,
}

/// A flowset's runtime: its table of flows (static pipes), or its position in
/// each instance of a dynamic pipe.
#[derive(Debug)]
struct FlowsetRt {
    /// `Some` on a static pipe; `None` on a dynamic one (each instance has its own).
    fs: Option<Flowset>,
    pipe: usize,
    /// Index among the flowsets of its pipe (instances keep theirs in this order).
    local: usize,
}

// A handful of pipes per emulator; the static ones sit on the per-packet path,
// so they stay inline rather than behind another pointer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum PipeRt<P: Packet + Copy + Default> {
    Static(Pipe<P>),
    Dynamic(Box<DynPipe<P>>),
}

/// Rules, flowsets and pipes.
#[derive(Debug)]
pub struct Emulator<P: Packet + Copy + Default> {
    rules: Classifier,
    default: Target,
    non_ip: Target,
    flowsets: Vec<FlowsetRt>,
    pipes: Vec<PipeRt<P>>,
    /// Per pipe: the flowset what leaves it goes into (a chain), if any.
    next: Vec<Option<usize>>,
    /// Pipes holding packets, keyed by their next wake-up (a dynamic
    /// pipe's: its earliest instance's) — never later than it: an arrival
    /// moves a key earlier, a dequeue sets it again, a key that turns out
    /// early costs one look. `dequeue` takes the due pipes from it (see
    /// [`wake`]) and `next_wakeup` reads the earliest key: O(log n) in
    /// pipes, O(1) for a pipe due at once.
    due: WakeQueue,
    /// Few static pipes (at most [`SCAN_PIPES`]): `dequeue` visits them
    /// round robin and `next_wakeup` takes their minimum, which costs less
    /// than keeping the wake queue; `due` is then unused.
    scan: bool,
    /// Next pipe a scanning `dequeue` looks at first.
    next_pipe: usize,
    /// Per pipe: its flowsets' indices (a drop at dequeue is counted in one).
    pipe_flowsets: Vec<Vec<usize>>,
    /// Where `expire` goes on: (flowset, dynamic pipe).
    expire_cursor: (usize, usize),
    counters: EmulatorCounters,
    /// Pipe and flowset names (a reload matches them).
    pipe_names: Vec<String>,
    flowset_names: Vec<String>,
    /// Drops of pipes a reload removed (they stay in [`Emulator::drops`]).
    retired: Drops,
    /// Per rule: its `prob` as a 64-bit threshold (`u64::MAX`: always);
    /// empty when no rule has one.
    rule_prob: Vec<u64>,
    /// Per rule: the DSCP it rewrites packets to.
    rule_dscp: Vec<Option<u8>>,
    /// Draws the rules' `prob`.
    rng: crate::rng::Rng,
}

impl<P: Packet + Copy + Default> Emulator<P> {
    /// Where a frame goes: (target, matched a rule).
    #[inline]
    pub fn classify(&mut self, key: &FlowKey) -> (Target, bool) {
        let (t, rule) = self.classify_rule(key);
        (t, rule.is_some())
    }

    /// Where a frame goes, and the rule that matched. A rule with `prob`
    /// matches with that probability, else the next matching rule is tried
    /// (dummynet's `prob`).
    #[inline]
    fn classify_rule(&mut self, key: &FlowKey) -> (Target, Option<usize>) {
        let mut hit = self.rules.lookup(key);
        if !self.rule_prob.is_empty() {
            while let Some((r, _)) = hit {
                let p = self.rule_prob.get(r).copied().unwrap_or(u64::MAX);
                if p == u64::MAX || self.rng.next_u64() < p {
                    break;
                }
                hit = self.rules.table().lookup_after(key, r);
            }
        }
        match hit {
            Some((r, fs)) => (Target::Flowset(fs as usize), Some(r)),
            None => (self.default, None),
        }
    }

    /// Parses and classifies a frame (counting it offered, and malformed
    /// if it does not parse); the packet keeps what it needs from the
    /// headers ([`Packet::parsed`]). The first half of [`Emulator::enqueue`],
    /// for a caller that rewrites the frame (a rule's `set_dscp`) before
    /// [`Emulator::enqueue_classified`].
    #[inline]
    pub fn classify_frame(&mut self, frame: &[u8], pkt: &mut P) -> Result<Classified, ParseError> {
        self.counters.offered += 1;
        let h = match wire::parse(frame) {
            Ok(h) => h,
            Err(e) => {
                self.counters.malformed += 1;
                return Err(e);
            }
        };
        pkt.parsed(&h);
        let mut key = FlowKey::from_headers(&h);
        let (target, set_dscp) = if matches!(h.family, Family::V4 | Family::V6) {
            let (t, rule) = self.classify_rule(&key);
            self.counters.matched += rule.is_some() as u64;
            let dscp = rule.and_then(|r| self.rule_dscp.get(r).copied().flatten());
            if let Some(d) = dscp {
                key.dscp = d;
            }
            (t, dscp)
        } else {
            (self.non_ip, None)
        };
        Ok(Classified {
            key,
            target,
            set_dscp,
        })
    }

    /// Offers a frame (its bytes, for classification) and its packet handle,
    /// read-only: a rule's DSCP rewrite and netem's duplication and
    /// corruption need the caller's buffers (see
    /// [`Emulator::classify_frame`], [`Emulator::enqueue_classified`]).
    pub fn enqueue(&mut self, now_ns: u64, frame: &[u8], mut pkt: P) -> Verdict<P> {
        match self.classify_frame(frame, &mut pkt) {
            Ok(c) => self.enqueue_classified(now_ns, &c, pkt, &mut NoHost),
            Err(e) => Verdict::Dropped(pkt, Cause::Malformed(e)),
        }
    }

    /// Offers a classified packet; `host` makes duplicates, flips bits and
    /// takes back what is dropped beyond the verdict (a duplicate's drop).
    #[inline]
    pub fn enqueue_classified(
        &mut self,
        now_ns: u64,
        c: &Classified,
        pkt: P,
        host: &mut impl Host<P>,
    ) -> Verdict<P> {
        self.offer(now_ns, &c.key, c.target, pkt, Entry::Fresh, host)
    }

    /// Offers a packet already classified to `target` (used by simulations
    /// that have no frame bytes; no buffers for duplicates).
    pub fn enqueue_key(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        target: Target,
        pkt: P,
    ) -> Verdict<P> {
        self.offer(now_ns, key, target, pkt, Entry::Fresh, &mut NoHost)
    }

    /// `enqueue_key` with a host (simulations that make duplicates).
    pub fn enqueue_key_with(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        target: Target,
        pkt: P,
        host: &mut impl Host<P>,
    ) -> Verdict<P> {
        self.offer(now_ns, key, target, pkt, Entry::Fresh, host)
    }

    /// Offers a packet: a new one, a duplicate, or one moved at a reload
    /// (see [`Entry`]).
    #[inline]
    fn offer(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        target: Target,
        mut pkt: P,
        entry: Entry,
        host: &mut impl Host<P>,
    ) -> Verdict<P> {
        let fsi = match target {
            Target::Pass => {
                self.counters.passed += 1;
                return Verdict::Pass(pkt);
            }
            Target::Flowset(i) => i,
        };
        let Some(rt) = self.flowsets.get_mut(fsi) else {
            self.counters.passed += 1;
            return Verdict::Pass(pkt);
        };
        let pipe_idx = rt.pipe;
        let local = rt.local;
        let mut inst_slot = None;
        let (pipe, fs) = match (&mut self.pipes[pipe_idx], rt.fs.as_mut()) {
            (PipeRt::Static(p), Some(fs)) => (p, fs),
            (PipeRt::Dynamic(d), _) => {
                let slot = d.instance_for(key, now_ns);
                inst_slot = slot;
                let inst = slot.and_then(|i| d.slots.get_mut(i as usize)?.as_mut());
                let Some(inst) = inst else {
                    self.counters.pipe_full += 1;
                    return Verdict::Dropped(pkt, Cause::PipeFull);
                };
                inst.last_seen = now_ns;
                // Every instance has every flowset of its pipe.
                let Some(fs) = inst.flowsets.get_mut(rt.local) else {
                    self.counters.flowset_full += 1;
                    return Verdict::Dropped(pkt, Cause::FlowsetFull);
                };
                (&mut inst.pipe, fs)
            }
            (PipeRt::Static(_), None) => {
                self.counters.flowset_full += 1;
                return Verdict::Dropped(pkt, Cause::FlowsetFull);
            }
        };
        // Keys to move: an instance's always; a pipe's in the wake queue
        // unless it is listed as due already.
        let keyed = inst_slot.is_some() || (!self.scan && !self.due.listed(pipe_idx as u32));
        let fresh = entry != Entry::Moved;
        let Some((flow, tally)) = fs.flow_of(key, now_ns, pkt.len(), pipe.sched(), fresh) else {
            self.counters.flowset_full += 1;
            return Verdict::Dropped(pkt, Cause::FlowsetFull);
        };
        let mut copy = None;
        if fresh {
            let Some(a) = pipe.admit(now_ns, entry == Entry::Fresh) else {
                tally.dropped += 1;
                tally.dropped_bytes += u64::from(pkt.len());
                return Verdict::Dropped(pkt, Cause::Pipe(PipeDrop::Loss));
            };
            if a.copy || a.flip.is_some() {
                copy = entry_extras(pipe, a, &mut pkt, host);
            }
        }
        let verdict = match pipe.offer(now_ns, flow, pkt, local) {
            Ok(()) => Verdict::Queued {
                pipe: pipe_idx,
                flow,
            },
            Err(PipeDropped {
                pkt: victim,
                reason: PipeDrop::Sched(DropReason::PushedOut),
                ..
            }) => Verdict::QueuedPushedOut {
                pipe: pipe_idx,
                victim,
            },
            Err(d) => {
                tally.dropped += 1;
                tally.dropped_bytes += u64::from(d.pkt.len());
                Verdict::Dropped(d.pkt, Cause::Pipe(d.reason))
            }
        };
        if keyed {
            if let Some(w) = pipe.next_wakeup() {
                self.woken(pipe_idx, inst_slot, w, now_ns);
            }
        }
        if let Some(c) = copy {
            self.offer_copy(now_ns, key, target, c, host);
        }
        verdict
    }

    /// A duplicate enters the same flowset as a new packet (netem
    /// re-enqueues it at the root), not duplicated again; what it displaces
    /// or what drops it goes back to the host.
    #[inline(never)]
    fn offer_copy(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        target: Target,
        c: P,
        host: &mut impl Host<P>,
    ) {
        match self.offer(now_ns, key, target, c, Entry::Copy, host) {
            Verdict::Queued { .. } => {}
            Verdict::QueuedPushedOut { victim, .. } => {
                host.dropped(victim, Cause::Pipe(PipeDrop::Sched(DropReason::PushedOut)))
            }
            Verdict::Dropped(p, cause) => host.dropped(p, cause),
            // The original went to this flowset: unreachable, but a
            // buffer is never lost.
            Verdict::Pass(p) => host.dropped(p, Cause::FlowsetFull),
        }
    }

    /// A packet entered pipe `i` (instance `inst` of a dynamic one), whose
    /// next wake-up is now `at`: the keys move earlier if they were later.
    #[inline]
    fn woken(&mut self, i: usize, inst: Option<u32>, at: u64, now_ns: u64) {
        if let (Some(k), PipeRt::Dynamic(d)) = (inst, &mut self.pipes[i]) {
            d.due.woken(k, at, now_ns);
        }
        if !self.scan {
            self.due.woken(i as u32, at, now_ns);
        }
    }

    /// Keys every pipe (and instance) by its wake-up again: after a reload
    /// moved links and packets in, or a new epoch.
    pub(super) fn rekey(&mut self) {
        self.due.clear();
        let scan = self.scan;
        for (i, p) in self.pipes.iter_mut().enumerate() {
            let w = match p {
                PipeRt::Static(p) => p.next_wakeup(),
                PipeRt::Dynamic(d) => {
                    d.rekey();
                    d.next_wakeup()
                }
            };
            if let (Some(w), false) = (w, scan) {
                self.due.set(i as u32, w, 0);
            }
        }
    }

    /// Keys its pipes in the wake queue whatever their number (tests:
    /// the same configuration both ways).
    #[doc(hidden)]
    pub fn with_wake_queue(mut self) -> Self {
        self.scan = false;
        self.rekey();
        self
    }

    /// The next packet that has left a pipe by `now_ns`: (pipe, flow,
    /// packet). With many pipes, the wake queue gives the due ones — those
    /// whose later wake-up has come, earliest first, then those due at
    /// once, round robin (O(log n) in pipes) — and one that has nothing by
    /// `now_ns` is looked at once per call; with a few (at most
    /// [`SCAN_PIPES`], static), every pipe in turn. (For a dynamic pipe, `flow` is
    /// a flow of one of its instances.) What leaves a chained pipe goes on
    /// into its next flowset at the instant it left, classified by
    /// `host.key`; a packet dropped there goes to `host.dropped`.
    pub fn dequeue(&mut self, now_ns: u64, host: &mut impl Host<P>) -> Option<(usize, FlowId, P)> {
        if !self.scan {
            return self.dequeue_wake(now_ns, host);
        }
        // A few pipes: round robin, every pipe once per call, again from
        // the start after a packet moved on along a chain.
        let n = self.pipes.len();
        let mut k = 0;
        while k < n {
            let i = (self.next_pipe + k) % n;
            k += 1;
            let Some((due, flow, pkt)) = self.look(i, now_ns, host) else {
                continue;
            };
            match self.onward(i, due, flow, pkt, host) {
                Some(out) => {
                    self.next_pipe = (i + 1) % n;
                    return Some(out);
                }
                // It may be due in the next pipe already: every pipe again.
                None => k = 0,
            }
        }
        None
    }

    /// `dequeue` through the wake queue (many pipes, or dynamic ones).
    #[inline(never)]
    fn dequeue_wake(&mut self, now_ns: u64, host: &mut impl Host<P>) -> Option<(usize, FlowId, P)> {
        while let Some(pi) = self.due.pop_due(now_ns) {
            let i = pi as usize;
            let out = self.look(i, now_ns, host);
            let w = match &self.pipes[i] {
                PipeRt::Static(p) => p.next_wakeup(),
                PipeRt::Dynamic(d) => d.next_wakeup(),
            };
            match w {
                Some(w) => {
                    let w = if out.is_some() {
                        w
                    } else {
                        w.max(now_ns.saturating_add(1))
                    };
                    self.due.set(pi, w, now_ns);
                }
                None => self.due.remove(pi),
            }
            let Some((due, flow, pkt)) = out else {
                continue;
            };
            match self.onward(i, due, flow, pkt, host) {
                Some(out) => return Some(out),
                // Moved on into the next pipe: its key went with it.
                None => continue,
            }
        }
        None
    }

    /// One look at pipe `i`: the next packet that has left it by `now_ns`,
    /// with the instant it left. Queue management's drops (the only ones at
    /// dequeue) are counted in their flow's tally like drops on arrival — in
    /// the static pipe's flowsets, or those of the dynamic instance — and
    /// handed to `host`.
    #[inline(always)]
    fn look(&mut self, i: usize, now_ns: u64, host: &mut impl Host<P>) -> Option<(u64, FlowId, P)> {
        let (flowsets, mine) = (&mut self.flowsets, &self.pipe_flowsets[i]);
        let mut dropped = |d: PipeDropped<P>, inst: Option<&mut [Flowset]>| {
            let key = host.key(&d.pkt);
            let len = d.pkt.len();
            match inst {
                Some(fss) => {
                    let _ = fss.iter_mut().any(|fs| fs.count_drop(&key, d.flow, len));
                }
                None => {
                    for &f in mine {
                        let fs = flowsets[f].fs.as_mut();
                        if fs.is_some_and(|fs| fs.count_drop(&key, d.flow, len)) {
                            break;
                        }
                    }
                }
            }
            host.dropped(d.pkt, Cause::Pipe(d.reason));
        };
        match &mut self.pipes[i] {
            PipeRt::Static(p) => p.dequeue_timed(now_ns, &mut |d| dropped(d, None)),
            PipeRt::Dynamic(d) => d.dequeue(now_ns, &mut dropped),
        }
    }

    /// A packet that left pipe `i` at `due`: out (returned), or on into the
    /// pipe's next flowset at that instant (`None`; what drops it there goes
    /// to `host`). Each packet moves forward along an acyclic chain. (The
    /// check for a chain inline, the move out of line.)
    #[inline(always)]
    fn onward(
        &mut self,
        i: usize,
        due: u64,
        flow: FlowId,
        pkt: P,
        host: &mut impl Host<P>,
    ) -> Option<(usize, FlowId, P)> {
        match self.next[i] {
            None => Some((i, flow, pkt)),
            Some(next) => self.chain(i, next, due, flow, pkt, host),
        }
    }

    #[inline(never)]
    fn chain(
        &mut self,
        i: usize,
        next: usize,
        due: u64,
        flow: FlowId,
        pkt: P,
        host: &mut impl Host<P>,
    ) -> Option<(usize, FlowId, P)> {
        self.counters.chained += 1;
        let key = host.key(&pkt);
        match self.offer(due, &key, Target::Flowset(next), pkt, Entry::Fresh, host) {
            Verdict::Queued { .. } => None,
            Verdict::QueuedPushedOut { victim, .. } => {
                host.dropped(victim, Cause::Pipe(PipeDrop::Sched(DropReason::PushedOut)));
                None
            }
            Verdict::Dropped(p, cause) => {
                host.dropped(p, cause);
                None
            }
            // A chain names a flowset that exists (validated): unreachable,
            // but a packet is never lost: it leaves as it is.
            Verdict::Pass(p) => Some((i, flow, p)),
        }
    }

    /// Starts the pipes' schedules, traces and slots at `now_ns` (a
    /// caller whose clock does not start at 0 when the emulator is built,
    /// or a reload's new emulator). Dynamic pipes' instances, made later,
    /// take it too.
    pub fn set_epoch(&mut self, now_ns: u64) {
        for p in &mut self.pipes {
            match p {
                PipeRt::Static(p) => p.set_epoch(now_ns),
                PipeRt::Dynamic(d) => {
                    d.params.epoch_ns = now_ns;
                    for inst in d.slots.iter_mut().flatten() {
                        inst.pipe.set_epoch(now_ns);
                    }
                }
            }
        }
        self.rekey();
    }

    /// Hands the packet log lines of the pipes that replay a trace with a
    /// log to `f` (pipe index, line); returns the lines that did not fit
    /// since the last call (see [`trace`]).
    pub fn drain_trace_logs(&mut self, mut f: impl FnMut(usize, &trace::LogLine)) -> u64 {
        let mut lost = 0;
        for (i, p) in self.pipes.iter_mut().enumerate() {
            if let PipeRt::Static(p) = p {
                if p.trace_logging() {
                    lost += p.drain_trace_log(&mut |l| f(i, l));
                }
            }
        }
        lost
    }

    /// Until when a frame arriving now could wait unread without changing
    /// what the emulator does with it: the soonest end of a transmission when
    /// every pipe is a static, rate-limited link that is transmitting with
    /// packets waiting behind (a new packet cannot start before then, it
    /// does not restart an idle link, and the scheduler decides nothing in
    /// between; drop decisions see the same queue), else `now_ns`. (A
    /// deferred packet's enqueue stamp is the later instant, so the sojourn
    /// time queue management judges and the histogram record is short by at
    /// most one transmission time — 120 µs for 1500 bytes at 100 Mbit/s,
    /// against CoDel's 5 ms target.) IP traffic that
    /// matches no rule must not pass unscheduled (it would be delayed);
    /// non-IP frames that pass (ARP, ND) may wait. A caller that defers
    /// reading arrivals to this instant wakes once per departure instead of
    /// once per arrival. (With more than [`ARRIVALS_WAIT_MAX_PIPES`] pipes,
    /// `now_ns`: the answer would cost a look at every pipe, and with many
    /// links some is rarely busy with a backlog.)
    pub fn arrivals_can_wait_until(&self, now_ns: u64) -> u64 {
        if self.default == Target::Pass
            || self.pipes.is_empty()
            || self.pipes.len() > ARRIVALS_WAIT_MAX_PIPES
        {
            return now_ns;
        }
        let mut until = u64::MAX;
        for p in &self.pipes {
            match p {
                PipeRt::Static(p) => match p.busy_with_backlog() {
                    Some(t) if t > now_ns => until = until.min(t),
                    _ => return now_ns,
                },
                PipeRt::Dynamic(_) => return now_ns,
            }
        }
        until
    }

    /// When `dequeue` should next be called (`None`: nothing queued): the
    /// top of the pipes' heap, O(1). Never later than a pipe's wake-up; it
    /// may be earlier after drops (a call then finds nothing, and the next
    /// answer is exact).
    #[inline]
    pub fn next_wakeup(&self) -> Option<u64> {
        if !self.scan {
            return self.due.peek();
        }
        self.pipes
            .iter()
            .filter_map(|p| match p {
                PipeRt::Static(p) => p.next_wakeup(),
                PipeRt::Dynamic(d) => d.next_wakeup(),
            })
            .min()
    }

    /// Hands every packet the emulator holds (queued or in flight) to `f`,
    /// without moving anything along a chain and without counting it as
    /// delivered: for the caller's exit, which frees them.
    pub fn drain(&mut self, mut f: impl FnMut(P)) {
        for p in &mut self.pipes {
            match p {
                PipeRt::Static(p) => p.drain(&mut f),
                PipeRt::Dynamic(d) => {
                    for inst in d.slots.iter_mut().flatten() {
                        inst.pipe.drain(&mut f);
                    }
                    d.due.clear();
                }
            }
        }
        self.due.clear();
    }

    /// Removes idle per-flow queues and idle dynamic-pipe instances, looking at
    /// up to `budget` table slots per flowset (and instances per dynamic
    /// pipe), in at most [`EXPIRE_TABLES_PER_CALL`] flowsets and as many
    /// dynamic pipes per call, going round (so a call's cost stays bounded
    /// however many pipes there are).
    pub fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let mut n = 0;
        let nf = self.flowsets.len();
        for _ in 0..nf.min(EXPIRE_TABLES_PER_CALL) {
            let i = self.expire_cursor.0 % nf;
            self.expire_cursor.0 = (i + 1) % nf;
            let rt = &mut self.flowsets[i];
            if let (Some(fs), PipeRt::Static(p)) = (rt.fs.as_mut(), &mut self.pipes[rt.pipe]) {
                n += fs.expire(now_ns, budget, p.sched());
            }
        }
        let np = self.pipes.len();
        let mut seen = 0;
        for _ in 0..np {
            if seen == EXPIRE_TABLES_PER_CALL {
                break;
            }
            let i = self.expire_cursor.1 % np;
            self.expire_cursor.1 = (i + 1) % np;
            if let PipeRt::Dynamic(d) = &mut self.pipes[i] {
                n += d.expire(now_ns, budget);
                seen += 1;
            }
        }
        n
    }
}

/// Most pipes an emulator visits round robin (see [`Emulator::dequeue`]);
/// with more, or with a dynamic pipe, it keeps the wake queue.
pub const SCAN_PIPES: usize = 8;

/// Most pipes [`Emulator::arrivals_can_wait_until`] looks at.
pub const ARRIVALS_WAIT_MAX_PIPES: usize = 8;

/// Flow tables (flowsets of static pipes, and dynamic pipes) one
/// [`Emulator::expire`] call sweeps.
pub const EXPIRE_TABLES_PER_CALL: usize = 16;
