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
pub mod jitter;
pub mod loss;
pub mod pipe;
mod reload;
pub mod sojourn;
mod stats;

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

/// The caller's side of the emulator while packets move on from a chained
/// pipe into the next one.
pub trait Host<P> {
    /// The flow key of `pkt` (the next pipe's flowset classifies it again):
    /// xdpsched reads it from the frame.
    fn key(&mut self, pkt: &P) -> FlowKey;
    /// `pkt` was dropped on its way into the next pipe (loss, limits); the
    /// caller frees it and counts it.
    fn dropped(&mut self, pkt: P, cause: Cause);
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
    /// Next pipe `dequeue` looks at first (round robin across pipes).
    next_pipe: usize,
    counters: EmulatorCounters,
    /// Pipe and flowset names (a reload matches them).
    pipe_names: Vec<String>,
    flowset_names: Vec<String>,
    /// Drops of pipes a reload removed (they stay in [`Emulator::drops`]).
    retired: Drops,
}

impl<P: Packet + Copy + Default> Emulator<P> {
    /// Where a frame goes: (target, matched a rule).
    #[inline]
    pub fn classify(&mut self, key: &FlowKey) -> (Target, bool) {
        match self.rules.lookup(key) {
            Some((_, fs)) => (Target::Flowset(fs as usize), true),
            None => (self.default, false),
        }
    }

    /// Offers a frame (its bytes, for classification) and its packet handle.
    pub fn enqueue(&mut self, now_ns: u64, frame: &[u8], mut pkt: P) -> Verdict<P> {
        self.counters.offered += 1;
        let h = match wire::parse(frame) {
            Ok(h) => h,
            Err(e) => {
                self.counters.malformed += 1;
                return Verdict::Dropped(pkt, Cause::Malformed(e));
            }
        };
        pkt.parsed(&h);
        let key = FlowKey::from_headers(&h);
        let target = if matches!(h.family, Family::V4 | Family::V6) {
            let (t, matched) = self.classify(&key);
            self.counters.matched += matched as u64;
            t
        } else {
            self.non_ip
        };
        self.enqueue_key(now_ns, &key, target, pkt)
    }

    /// Offers a packet already classified to `target` (used by `enqueue`, and
    /// by simulations that have no frame bytes).
    pub fn enqueue_key(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        target: Target,
        pkt: P,
    ) -> Verdict<P> {
        self.offer(now_ns, key, target, pkt, true)
    }

    /// `enqueue_key`, or (not `fresh`) a packet moved at a reload, which was
    /// counted and went through the loss model where it was first offered.
    fn offer(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        target: Target,
        pkt: P,
        fresh: bool,
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
        let (pipe, fs) = match (&mut self.pipes[pipe_idx], rt.fs.as_mut()) {
            (PipeRt::Static(p), Some(fs)) => (p, fs),
            (PipeRt::Dynamic(d), _) => {
                let inst = d.instance_for(key, now_ns).and_then(|i| {
                    let inst = d.slots.get_mut(i as usize)?.as_mut()?;
                    if !inst.active {
                        inst.active = true;
                        d.active.push_back(i);
                    }
                    Some(inst)
                });
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
        let Some((flow, tally)) = fs.flow_of(key, now_ns, pkt.len(), pipe.sched(), fresh) else {
            self.counters.flowset_full += 1;
            return Verdict::Dropped(pkt, Cause::FlowsetFull);
        };
        match pipe.offer(now_ns, flow, pkt, fresh, local) {
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
        }
    }

    /// The next packet that has left a pipe by `now_ns`: (pipe, flow,
    /// packet). Pipes are visited round robin. (For a dynamic pipe, `flow` is
    /// a flow of one of its instances.) What leaves a chained pipe goes on
    /// into its next flowset at the instant it left, classified by
    /// `host.key`; a packet dropped there goes to `host.dropped`.
    pub fn dequeue(&mut self, now_ns: u64, host: &mut impl Host<P>) -> Option<(usize, FlowId, P)> {
        let n = self.pipes.len();
        let mut k = 0;
        while k < n {
            let i = (self.next_pipe + k) % n;
            k += 1;
            let flowsets = &mut self.flowsets;
            // Queue management's drops (the only ones at dequeue): counted
            // in their flow's tally like drops on arrival — in the static
            // pipe's flowsets, or those of the dynamic instance (`inst`).
            let mut dropped = |d: PipeDropped<P>, inst: Option<&mut [Flowset]>| {
                let key = host.key(&d.pkt);
                let len = d.pkt.len();
                match inst {
                    Some(fss) => {
                        let _ = fss.iter_mut().any(|fs| fs.count_drop(&key, d.flow, len));
                    }
                    None => {
                        let _ = flowsets
                            .iter_mut()
                            .filter(|rt| rt.pipe == i)
                            .filter_map(|rt| rt.fs.as_mut())
                            .any(|fs| fs.count_drop(&key, d.flow, len));
                    }
                }
                host.dropped(d.pkt, Cause::Pipe(d.reason));
            };
            let out = match &mut self.pipes[i] {
                PipeRt::Static(p) => p.dequeue_timed(now_ns, &mut |d| dropped(d, None)),
                PipeRt::Dynamic(d) => d.dequeue(now_ns, &mut dropped),
            };
            let Some((due, flow, pkt)) = out else {
                continue;
            };
            let Some(next) = self.next[i] else {
                self.next_pipe = (i + 1) % n;
                return Some((i, flow, pkt));
            };
            // On into the next pipe, at the instant it left this one; then
            // look at every pipe again (it may be due there already). Each
            // packet moves forward along an acyclic chain, so this ends.
            self.counters.chained += 1;
            let key = host.key(&pkt);
            match self.enqueue_key(due, &key, Target::Flowset(next), pkt) {
                Verdict::Queued { .. } => {}
                Verdict::QueuedPushedOut { victim, .. } => {
                    host.dropped(victim, Cause::Pipe(PipeDrop::Sched(DropReason::PushedOut)))
                }
                Verdict::Dropped(p, cause) => host.dropped(p, cause),
                // A chain names a flowset that exists (validated): unreachable,
                // but a packet is never lost: it leaves as it is.
                Verdict::Pass(p) => {
                    self.next_pipe = (i + 1) % n;
                    return Some((i, flow, p));
                }
            }
            k = 0;
        }
        None
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
    /// once per arrival.
    pub fn arrivals_can_wait_until(&self, now_ns: u64) -> u64 {
        if self.default == Target::Pass || self.pipes.is_empty() {
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

    /// When `dequeue` should next be called (`None`: nothing queued).
    pub fn next_wakeup(&self) -> Option<u64> {
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
                        inst.active = false;
                    }
                    d.active.clear();
                }
            }
        }
    }

    /// Removes idle per-flow queues and idle dynamic-pipe instances, looking at
    /// up to `budget` table slots per flowset (and instances per dynamic pipe).
    pub fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let mut n = 0;
        for rt in &mut self.flowsets {
            if let (Some(fs), PipeRt::Static(p)) = (rt.fs.as_mut(), &mut self.pipes[rt.pipe]) {
                n += fs.expire(now_ns, budget, p.sched());
            }
        }
        for p in &mut self.pipes {
            if let PipeRt::Dynamic(d) = p {
                n += d.expire(now_ns, budget);
            }
        }
        n
    }
}
