//! The dummynet model assembled: frame → parse → rules → flowset → per-flow
//! queue in a pipe's scheduler → link → delay → out (or, for a chained pipe,
//! into the next pipe's flowset). Pure and pull-based like its parts: the
//! caller feeds frames with `now_ns` and polls `dequeue` at `next_wakeup()`.
//!
//! **Every packet is handed back.** A packet offered to `enqueue` is queued,
//! passed, or dropped and returned in the [`Verdict`]; one dropped on its
//! way from a chained pipe into the next is returned through
//! [`Host::dropped`]. Nothing is dropped anywhere else: the delay lines hold
//! whatever the links have sent (see [`crate::pipe`]). Drops are counted by
//! cause ([`Emulator::drops`]).
//!
//! **Tables never black-hole.** A flowset whose `max_flows` flows are busy
//! puts new flows into its overflow queue ([`crate::flowset`]); a dynamic
//! pipe with `max_instances` instances sends new keys to one shared
//! overflow instance (counted, with the same ordering rule: new instances
//! wait while it holds packets). Idle flows and instances expire in
//! [`Emulator::expire`], a sweep with a bounded budget per call.

use crate::classify::{Classifier, FlowKey, FlowMask, KeyTable, Match};
use crate::config::{Config, DefaultAction, FlowsetSpec, LossSpec, MaskSpec, PipeSpec, QueueSpec};
use crate::flowset::{Flowset, FlowsetCounters, FlowsetParams};
use crate::pipe::{LossModel, Pipe, PipeCounters, PipeDrop, PipeDropped, PipeParams};
use crate::types::{
    DropCounters, DropReason, FlowConfig, FlowId, OverflowPolicy, Packet, QueueLimit, SchedConfig,
};
use crate::wire::{self, Family, ParseError};
use crate::{build, ConfigError, Kind, Scheduler};
use std::collections::VecDeque;

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
    pub sched: [u64; 5],
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

/// Building an emulator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A pipe's scheduler could not be built.
    #[error("pipe {pipe:?}: {source}")]
    Sched {
        /// Pipe name.
        pipe: String,
        /// Why.
        source: ConfigError,
    },
    /// Not implemented yet.
    #[error(
        "pipe {0:?}: a pipe mask (per-flow dynamic pipes) is not supported yet; use a flowset mask"
    )]
    PipeMask(String),
    /// A chain of `next` leads back to a pipe (a configuration built in code:
    /// `config::from_toml` rejects these).
    #[error("pipe {0:?}: its chain of next pipes leads back to it")]
    Cycle(String),
    /// A `next` names a flowset that does not exist.
    #[error("pipe {0:?}: next names flowset {1}, which does not exist")]
    NoSuchFlowset(String, usize),
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

/// One instance of a dynamic pipe: a whole pipe with its own flowsets.
#[derive(Debug)]
struct Instance<P: Packet + Copy + Default> {
    pipe: Pipe<P>,
    flowsets: Vec<Flowset>,
    key: FlowKey,
    last_seen: u64,
    /// In `DynPipe::active`.
    active: bool,
}

/// What expired instances of a dynamic pipe did: kept so that totals never
/// go down when an instance is removed.
#[derive(Debug, Clone, Default)]
struct Retired {
    pipe: PipeCounters,
    drops: DropCounters,
    /// By local flowset index.
    flowsets: Vec<FlowsetCounters>,
}

/// dummynet's `pipe N config mask ...`: every masked key gets its own
/// instance of the pipe (its own link, delay line and scheduler), created on
/// its first packet and removed after `idle_timeout_ns` with nothing queued
/// or in flight. Creating an instance allocates (its scheduler's pool), as
/// dummynet's dynamic pipes do; the number of instances is bounded by
/// `max_instances`, and keys beyond it share one overflow instance (see the
/// module docs). `dequeue` and `next_wakeup` visit the instances that hold
/// packets.
#[derive(Debug)]
struct DynPipe<P: Packet + Copy + Default> {
    mask: FlowMask,
    kind: Kind,
    sched_cfg: SchedConfig,
    params: PipeParams,
    /// Parameters of the flowsets attached to this pipe, by local index.
    flowsets: Vec<FlowsetParams>,
    table: KeyTable<u32>,
    slots: Vec<Option<Instance<P>>>,
    free: Vec<u32>,
    active: VecDeque<u32>,
    idle_timeout_ns: u64,
    cursor: usize,
    seed: u64,
    created: u64,
    /// The overflow instance's slot, once created (never expires).
    overflow: Option<u32>,
    /// Packets sent to the overflow instance.
    overflowed: u64,
    /// Instances removed after their idle timeout.
    expired: u64,
    retired: Retired,
}

// A handful of pipes per emulator; the static ones sit on the per-packet path,
// so they stay inline rather than behind another pointer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum PipeRt<P: Packet + Copy + Default> {
    Static(Pipe<P>),
    Dynamic(Box<DynPipe<P>>),
}

/// Flows of one flowset inside one instance of a dynamic pipe: bounded so
/// that a thousand instances do not each reserve a table for `max_flows`.
pub const MAX_FLOWS_PER_INSTANCE: u32 = 256;

/// Most packets one pipe (or one dynamic-pipe instance) holds in total: the
/// size of its scheduler's packet pool. The per-flow limits of its flowsets
/// apply inside it. (In the datapath the UMEM frames bound this too.)
pub const MAX_PIPE_PACKETS: u32 = 65_536;

impl<P: Packet + Copy + Default> DynPipe<P> {
    /// The instance for `key`, created if new; the overflow instance when
    /// `max_instances` are in use (or while it holds packets); `None` only
    /// if no instance can be built.
    fn instance_for(&mut self, key: &FlowKey, now_ns: u64) -> Option<u32> {
        let mk = key.masked(&self.mask);
        if let Some(&i) = self.table.get(&mk) {
            return Some(i);
        }
        let overflow_busy = self.overflow.is_some_and(|o| {
            self.slots[o as usize]
                .as_ref()
                .is_some_and(|inst| inst.pipe.backlog_packets() != 0)
        });
        if self.table.len() >= self.table.max_len() || overflow_busy {
            let o = match self.overflow {
                Some(o) => o,
                None => {
                    let o = self.create(mk, now_ns)?;
                    self.overflow = Some(o);
                    o
                }
            };
            self.overflowed += 1;
            return Some(o);
        }
        let i = self.create(mk, now_ns)?;
        self.table.insert(mk, i);
        Some(i)
    }

    /// A new instance for masked key `mk` in a free slot.
    fn create(&mut self, mk: FlowKey, now_ns: u64) -> Option<u32> {
        let sched = build::<P>(self.kind, self.sched_cfg).ok()?;
        let seed = self
            .seed
            .wrapping_add(self.created.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let params = PipeParams {
            seed: self.params.seed ^ seed,
            ..self.params.clone()
        };
        let inst = Instance {
            pipe: Pipe::new(sched, &params),
            flowsets: self
                .flowsets
                .iter()
                .enumerate()
                .map(|(j, fp)| Flowset::new(*fp, seed.wrapping_add(j as u64)))
                .collect(),
            key: mk,
            last_seen: now_ns,
            active: false,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(inst);
                i
            }
            None => {
                self.slots.push(Some(inst));
                (self.slots.len() - 1) as u32
            }
        };
        self.created += 1;
        Some(idx)
    }

    fn dequeue(&mut self, now_ns: u64) -> Option<(u64, FlowId, P)> {
        for _ in 0..self.active.len() {
            let i = self.active.pop_front()?;
            let Some(inst) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
                continue;
            };
            let out = inst.pipe.dequeue_timed(now_ns);
            if inst.pipe.backlog_packets() == 0 {
                inst.active = false;
            } else {
                self.active.push_back(i);
            }
            if out.is_some() {
                return out;
            }
        }
        None
    }

    fn next_wakeup(&self) -> Option<u64> {
        self.active
            .iter()
            .filter_map(|&i| self.slots.get(i as usize)?.as_ref()?.pipe.next_wakeup())
            .min()
    }

    /// Looks at up to `budget` instances: expires idle flows inside each
    /// (a few per visit) and removes instances idle past the timeout, their
    /// figures kept in `retired`. Returns flows and instances removed.
    fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        /// Flow-table slots looked at per instance visited.
        const FLOWS_PER_VISIT: usize = 8;
        let mut removed = 0;
        let n = self.slots.len();
        for _ in 0..budget.min(n) {
            let i = self.cursor % n;
            self.cursor = (i + 1) % n;
            let Some(inst) = self.slots[i].as_mut() else {
                continue;
            };
            for fs in inst.flowsets.iter_mut() {
                removed += fs.expire(now_ns, FLOWS_PER_VISIT, inst.pipe.sched());
            }
            let idle = !inst.active
                && inst.pipe.backlog_packets() == 0
                && now_ns.saturating_sub(inst.last_seen) >= self.idle_timeout_ns
                && self.overflow != Some(i as u32);
            if idle {
                if let Some(inst) = self.slots[i].take() {
                    self.table.remove(&inst.key);
                    self.free.push(i as u32);
                    self.retire(&inst);
                    self.expired += 1;
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Adds a removed instance's figures to the retired totals; its flows
    /// count as expired.
    fn retire(&mut self, inst: &Instance<P>) {
        let r = &mut self.retired;
        add_pipe(&mut r.pipe, &inst.pipe.counters());
        add_drops(&mut r.drops, &inst.pipe.sched_ref().counters());
        r.flowsets.resize(
            inst.flowsets.len().max(r.flowsets.len()),
            FlowsetCounters::default(),
        );
        for (acc, fs) in r.flowsets.iter_mut().zip(&inst.flowsets) {
            let mut c = fs.counters();
            c.expired += fs.flows() as u64;
            acc.add(&c);
        }
    }
}

fn add_pipe(a: &mut PipeCounters, b: &PipeCounters) {
    a.offered += b.offered;
    a.lost += b.lost;
    a.delivered += b.delivered;
    a.delivered_bytes += b.delivered_bytes;
}

fn add_drops(a: &mut DropCounters, b: &DropCounters) {
    a.enqueued += b.enqueued;
    a.dequeued += b.dequeued;
    for (x, y) in a.by_reason.iter_mut().zip(b.by_reason) {
        *x += y;
    }
}

/// Packet budget of a pipe: what its flowsets can hold at once, capped.
fn pipe_packets(flowsets: &[&FlowsetSpec], per_instance: bool) -> u32 {
    let total: u64 = flowsets
        .iter()
        .map(|f| {
            // Its flows and its overflow queue.
            let flows = flowset_params(f, per_instance).max_flows as u64 + 1;
            let per_flow = match f.queue {
                QueueSpec::Packets(n) => n as u64,
                QueueSpec::Bytes(b) => b / MIN_FRAME + 1,
            };
            flows.saturating_mul(per_flow)
        })
        .fold(0u64, u64::saturating_add);
    total.clamp(1, MAX_PIPE_PACKETS as u64) as u32
}

fn flowset_params(f: &FlowsetSpec, per_instance: bool) -> FlowsetParams {
    let limit = match f.queue {
        QueueSpec::Packets(n) => QueueLimit {
            packets: n.max(1),
            bytes: u32::MAX,
        },
        QueueSpec::Bytes(b) => QueueLimit {
            packets: u32::MAX,
            bytes: b.clamp(1, u32::MAX as u64) as u32,
        },
    };
    FlowsetParams {
        mask: mask_of(&f.mask),
        flow: FlowConfig {
            weight: f.weight,
            priority: f.priority,
            quantum: f.quantum,
            lmax: f.lmax,
            limit,
        },
        max_flows: if per_instance {
            f.max_flows.min(MAX_FLOWS_PER_INSTANCE)
        } else {
            f.max_flows
        },
        idle_timeout_ns: f.idle_timeout_ns,
    }
}

/// The frames a link of `bps` keeps in flight over `delay_ns`, at frames of
/// `frame` bytes plus `overhead`: `bps · delay / ((frame + overhead) · 8)`,
/// rounded up, plus the one on the wire. 0 for an unlimited link (its
/// arrivals decide).
pub fn in_flight(bps: Option<u64>, delay_ns: u64, frame: u64, overhead: u64) -> u64 {
    let Some(bps) = bps.filter(|_| delay_ns > 0) else {
        return 0;
    };
    let bits = u128::from((frame + overhead).max(1) * 8);
    let n = (u128::from(bps) * u128::from(delay_ns)).div_ceil(bits * 1_000_000_000);
    u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1)
}

/// Full-size Ethernet frames (1500-byte MTU) as the datapath sees them.
pub const FULL_FRAME: u64 = 1514;

fn pipe_params(p: &PipeSpec, packets: u32, seed: u64, dynamic: bool) -> PipeParams {
    // Room for what the queues hold, or what the link keeps in flight at
    // full-size frames, to be on its way at once, allocated up front (a
    // dynamic pipe's instances reserve less); the line grows beyond it if more
    // (smaller frames) is in flight.
    let link = in_flight(
        p.bandwidth_bps,
        p.delay_ns,
        FULL_FRAME,
        u64::from(p.overhead_bytes),
    );
    let cap = if dynamic { 1024 } else { 65_536 };
    PipeParams {
        bandwidth_bps: p.bandwidth_bps,
        overhead_bytes: p.overhead_bytes,
        delay_ns: p.delay_ns,
        loss: loss_of(&p.loss),
        delay_reserve: (link.max(u64::from(packets).min(4096)) as usize).min(cap),
        seed,
    }
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
}

/// Converts a configured mask.
pub fn mask_of(m: &MaskSpec) -> FlowMask {
    FlowMask {
        src: m.src_ip,
        dst: m.dst_ip,
        src_port: m.src_port,
        dst_port: m.dst_port,
        proto: m.proto,
        dscp: m.dscp,
        vlan: m.vlan,
    }
}

fn loss_of(l: &LossSpec) -> LossModel {
    match *l {
        LossSpec::None => LossModel::None,
        LossSpec::Uniform { plr } => LossModel::Uniform { plr },
        LossSpec::GilbertElliott { p, r, k, h } => LossModel::GilbertElliott { p, r, k, h },
    }
}

/// Entries of the exact-match flow cache in front of the rule table.
pub const FLOW_CACHE_SLOTS: usize = 8192;

/// Smallest frame we account for when a limit is given in bytes (sizing the
/// packet pool for a byte limit).
const MIN_FRAME: u64 = 64;

impl<P: Packet + Copy + Default> Emulator<P> {
    /// Builds the runtime objects of a validated configuration. `seed` keys
    /// the hash tables and the loss RNGs (different seeds, different loss
    /// patterns; same seed, same run).
    pub fn from_config(cfg: &Config, seed: u64) -> Result<Self, BuildError> {
        // `dequeue` relies on chains ending: check them here too (a Config may
        // be built in code).
        for (i, p) in cfg.pipes.iter().enumerate() {
            let mut at = i;
            for _ in 0..=cfg.pipes.len() {
                let Some(f) = cfg.pipes[at].next else { break };
                at = cfg
                    .flowsets
                    .get(f)
                    .map(|fs| fs.pipe)
                    .filter(|&p| p < cfg.pipes.len())
                    .ok_or_else(|| BuildError::NoSuchFlowset(p.name.clone(), f))?;
                if at == i {
                    return Err(BuildError::Cycle(p.name.clone()));
                }
            }
        }
        let mut pipes = Vec::with_capacity(cfg.pipes.len());
        for (pi, p) in cfg.pipes.iter().enumerate() {
            let attached: Vec<&FlowsetSpec> =
                cfg.flowsets.iter().filter(|f| f.pipe == pi).collect();
            let dynamic = p.mask.is_some();
            let packets = pipe_packets(&attached, dynamic);
            // Each flowset's flows and its overflow queue.
            let max_flows: u64 = attached
                .iter()
                .map(|f| flowset_params(f, dynamic).max_flows as u64 + 1)
                .sum::<u64>()
                .clamp(1, SchedConfig::MAX_FLOWS as u64);
            let sched_cfg = SchedConfig {
                max_flows: max_flows as u32,
                limit_packets: packets,
                limit_bytes: u64::MAX,
                overflow: OverflowPolicy::TailDrop,
            };
            let pseed = seed ^ (pi as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let sched_err = |source| BuildError::Sched {
                pipe: p.name.clone(),
                source,
            };
            pipes.push(match p.mask {
                None => PipeRt::Static(Pipe::new(
                    build(p.sched, sched_cfg).map_err(sched_err)?,
                    &pipe_params(p, packets, pseed, false),
                )),
                Some(m) => {
                    // Validate the scheduler configuration once, up front.
                    build::<P>(p.sched, sched_cfg).map_err(sched_err)?;
                    PipeRt::Dynamic(Box::new(DynPipe {
                        mask: mask_of(&m),
                        kind: p.sched,
                        sched_cfg,
                        params: pipe_params(p, packets, pseed, true),
                        flowsets: attached.iter().map(|f| flowset_params(f, true)).collect(),
                        table: KeyTable::new(p.max_instances as usize, pseed),
                        slots: Vec::new(),
                        free: Vec::new(),
                        active: VecDeque::new(),
                        idle_timeout_ns: p.idle_timeout_ns,
                        cursor: 0,
                        seed: pseed,
                        created: 0,
                        overflow: None,
                        overflowed: 0,
                        expired: 0,
                        retired: Retired::default(),
                    }))
                }
            });
        }
        let mut locals = vec![0usize; cfg.pipes.len()];
        let mut flowsets = Vec::with_capacity(cfg.flowsets.len());
        for (i, f) in cfg.flowsets.iter().enumerate() {
            let local = locals[f.pipe];
            locals[f.pipe] += 1;
            let fs = match pipes[f.pipe] {
                PipeRt::Static(_) => Some(Flowset::new(
                    flowset_params(f, false),
                    seed.wrapping_add(i as u64 + 1),
                )),
                PipeRt::Dynamic(_) => None,
            };
            flowsets.push(FlowsetRt {
                fs,
                pipe: f.pipe,
                local,
            });
        }
        let rules: Vec<(Match, u32)> = cfg
            .rules
            .iter()
            .map(|r| {
                let m = &r.matcher;
                (
                    Match {
                        src: m.src.map(|p| (p.addr, p.len)),
                        dst: m.dst.map(|p| (p.addr, p.len)),
                        proto: m.proto,
                        src_port: m.src_port,
                        dst_port: m.dst_port,
                        dscp: m.dscp,
                        vlan: m.vlan,
                    },
                    r.flowset as u32,
                )
            })
            .collect();
        let default = match cfg.default {
            DefaultAction::Pass => Target::Pass,
            DefaultAction::Flowset(i) => Target::Flowset(i),
        };
        Ok(Self {
            rules: Classifier::new(&rules, FLOW_CACHE_SLOTS, seed),
            default,
            // Unmatched IP and non-IP frames (ARP, 802.3, ...) take the configured
            // default; `pass` (the default default) keeps ARP working across a bridge.
            non_ip: default,
            flowsets,
            pipes,
            next: cfg.pipes.iter().map(|p| p.next).collect(),
            next_pipe: 0,
            counters: EmulatorCounters::default(),
        })
    }

    /// The static pipes (for stats); dynamic pipes are summed in [`Emulator::pipe_counters`].
    pub fn pipes(&self) -> impl Iterator<Item = &Pipe<P>> {
        self.pipes.iter().filter_map(|p| match p {
            PipeRt::Static(p) => Some(p),
            PipeRt::Dynamic(_) => None,
        })
    }

    /// Counters of pipe `i`, summed over its instances if it is dynamic
    /// (expired ones included): (counters, instances now).
    pub fn pipe_counters(&self, i: usize) -> Option<(PipeCounters, usize)> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => (p.counters(), 1),
            PipeRt::Dynamic(d) => {
                let mut c = d.retired.pipe;
                let mut n = 0;
                for inst in d.slots.iter().flatten() {
                    add_pipe(&mut c, &inst.pipe.counters());
                    n += 1;
                }
                (c, n)
            }
        })
    }

    /// A dynamic pipe's instance figures: (created, expired, packets sent
    /// to the overflow instance); `None` for a static pipe.
    pub fn instance_counters(&self, i: usize) -> Option<(u64, u64, u64)> {
        match self.pipes.get(i)? {
            PipeRt::Static(_) => None,
            PipeRt::Dynamic(d) => Some((d.created, d.expired, d.overflowed)),
        }
    }

    /// Drops by reason in pipe `i`'s scheduler (summed over instances if
    /// dynamic, expired ones included).
    pub fn pipe_drops(&self, i: usize) -> Option<DropCounters> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => p.sched_ref().counters(),
            PipeRt::Dynamic(d) => {
                let mut c = d.retired.drops;
                for inst in d.slots.iter().flatten() {
                    add_drops(&mut c, &inst.pipe.sched_ref().counters());
                }
                c
            }
        })
    }

    /// Every drop so far, by cause.
    pub fn drops(&self) -> Drops {
        let mut d = Drops {
            malformed: self.counters.malformed,
            flowset_full: self.counters.flowset_full,
            pipe_full: self.counters.pipe_full,
            ..Drops::default()
        };
        for i in 0..self.pipes.len() {
            if let Some((c, _)) = self.pipe_counters(i) {
                d.loss += c.lost;
            }
            if let Some(c) = self.pipe_drops(i) {
                for (x, y) in d.sched.iter_mut().zip(c.by_reason) {
                    *x += y;
                }
            }
        }
        d
    }

    /// Packets held now: in the schedulers, on the links and in the delay lines.
    pub fn backlog_packets(&self) -> u64 {
        self.pipes
            .iter()
            .map(|p| match p {
                PipeRt::Static(p) => p.backlog_packets(),
                PipeRt::Dynamic(d) => d
                    .slots
                    .iter()
                    .flatten()
                    .map(|inst| inst.pipe.backlog_packets())
                    .sum(),
            })
            .sum()
    }

    /// Flowset `i`: (flows now, counters), summed over a dynamic pipe's
    /// instances (expired ones included).
    pub fn flowset_counters(&self, i: usize) -> Option<(usize, FlowsetCounters)> {
        let rt = self.flowsets.get(i)?;
        match (&rt.fs, self.pipes.get(rt.pipe)?) {
            (Some(fs), _) => Some((fs.flows(), fs.counters())),
            (None, PipeRt::Dynamic(d)) => {
                let mut c = d
                    .retired
                    .flowsets
                    .get(rt.local)
                    .copied()
                    .unwrap_or_default();
                let mut flows = 0;
                for fs in d
                    .slots
                    .iter()
                    .flatten()
                    .filter_map(|inst| inst.flowsets.get(rt.local))
                {
                    c.add(&fs.counters());
                    flows += fs.flows();
                }
                Some((flows, c))
            }
            (None, PipeRt::Static(_)) => None,
        }
    }

    /// Every flow of flowset `i` (all instances of a dynamic pipe), with its
    /// tally and backlog. Allocates: for reports, not per packet.
    pub fn flow_stats(&self, i: usize) -> Vec<crate::flowset::FlowStat> {
        let Some(rt) = self.flowsets.get(i) else {
            return Vec::new();
        };
        match (&rt.fs, self.pipes.get(rt.pipe)) {
            (Some(fs), Some(PipeRt::Static(p))) => fs.flow_stats(p.sched_ref()),
            (None, Some(PipeRt::Dynamic(d))) => d
                .slots
                .iter()
                .flatten()
                .flat_map(|inst| {
                    inst.flowsets
                        .get(rt.local)
                        .map(|fs| fs.flow_stats(inst.pipe.sched_ref()))
                        .unwrap_or_default()
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Flowset `i`'s overflow queues (every instance's, for a dynamic pipe),
    /// summed: (tally, backlog packets, backlog bytes); `None` if none was
    /// ever used.
    pub fn overflow_stat(&self, i: usize) -> Option<(crate::flowset::FlowTally, u32, u64)> {
        let rt = self.flowsets.get(i)?;
        let add =
            |acc: Option<(crate::flowset::FlowTally, u32, u64)>,
             x: Option<(crate::flowset::FlowTally, u32, u64)>| match (acc, x) {
                (Some((mut t, p, b)), Some((u, q, c))) => {
                    t.packets += u.packets;
                    t.bytes += u.bytes;
                    t.dropped += u.dropped;
                    Some((t, p + q, b + c))
                }
                (a, b) => a.or(b),
            };
        match (&rt.fs, self.pipes.get(rt.pipe)?) {
            (Some(fs), PipeRt::Static(p)) => fs.overflow_stat(p.sched_ref()),
            (None, PipeRt::Dynamic(d)) => d
                .slots
                .iter()
                .flatten()
                .filter_map(|inst| {
                    Some(
                        inst.flowsets
                            .get(rt.local)?
                            .overflow_stat(inst.pipe.sched_ref()),
                    )
                })
                .fold(None, add),
            _ => None,
        }
    }

    /// The rule classifier (for its cache statistics).
    pub fn classifier(&self) -> &Classifier {
        &self.rules
    }

    /// The flowsets of static pipes (for stats).
    pub fn flowsets(&self) -> impl Iterator<Item = &Flowset> {
        self.flowsets.iter().filter_map(|f| f.fs.as_ref())
    }

    /// Counters.
    pub fn counters(&self) -> EmulatorCounters {
        self.counters
    }

    /// Where a frame goes: (target, matched a rule).
    #[inline]
    pub fn classify(&mut self, key: &FlowKey) -> (Target, bool) {
        match self.rules.lookup(key) {
            Some((_, fs)) => (Target::Flowset(fs as usize), true),
            None => (self.default, false),
        }
    }

    /// Offers a frame (its bytes, for classification) and its packet handle.
    pub fn enqueue(&mut self, now_ns: u64, frame: &[u8], pkt: P) -> Verdict<P> {
        self.counters.offered += 1;
        let h = match wire::parse(frame) {
            Ok(h) => h,
            Err(e) => {
                self.counters.malformed += 1;
                return Verdict::Dropped(pkt, Cause::Malformed(e));
            }
        };
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
        let Some((flow, tally)) = fs.flow_for_packet(key, now_ns, pkt.len(), pipe.sched()) else {
            self.counters.flowset_full += 1;
            return Verdict::Dropped(pkt, Cause::FlowsetFull);
        };
        match pipe.enqueue(now_ns, flow, pkt) {
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
            let out = match &mut self.pipes[i] {
                PipeRt::Static(p) => p.dequeue_timed(now_ns),
                PipeRt::Dynamic(d) => d.dequeue(now_ns),
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
