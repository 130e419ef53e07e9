//! The dummynet model assembled: frame → parse → rules → flowset → per-flow
//! queue in a pipe's scheduler → link → delay → out. Pure and pull-based like
//! its parts: the caller feeds frames with `now_ns` and polls `dequeue` at
//! `next_wakeup()`.

use crate::classify::{Classifier, FlowKey, FlowMask, KeyTable, Match};
use crate::config::{Config, DefaultAction, FlowsetSpec, LossSpec, MaskSpec, PipeSpec, QueueSpec};
use crate::flowset::{Flowset, FlowsetParams};
use crate::pipe::{LossModel, Pipe, PipeDrop, PipeDropped, PipeParams};
use crate::types::{FlowConfig, FlowId, OverflowPolicy, Packet, QueueLimit, SchedConfig};
use crate::wire::{self, Family, ParseError};
use crate::{build, ConfigError, Kind};
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
    /// Its flowset (or the pipe's scheduler) had no room for another flow.
    FlowsetFull,
    /// A dynamic pipe already has `max_instances` instances.
    PipeFull,
    /// The pipe dropped it (loss, queue limits, ...).
    Pipe(PipeDrop),
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

/// dummynet's `pipe N config mask ...`: every masked key gets its own
/// instance of the pipe (its own link, delay line and scheduler), created on
/// its first packet and removed after `idle_timeout_ns` with nothing queued.
/// Creating an instance allocates (its scheduler's pool), as dummynet's
/// dynamic pipes do; the number of instances is bounded by `max_instances`.
/// `dequeue` and `next_wakeup` visit the instances that hold packets.
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
    /// The instance for `key`, created if new; `None` when `max_instances` are in use.
    fn instance_for(&mut self, key: &FlowKey, now_ns: u64) -> Option<u32> {
        let mk = key.masked(&self.mask);
        if let Some(&i) = self.table.get(&mk) {
            return Some(i);
        }
        if self.table.len() >= self.table_max() {
            return None;
        }
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
        self.table.insert(mk, idx);
        self.created += 1;
        Some(idx)
    }

    fn table_max(&self) -> usize {
        self.table.max_len()
    }

    fn dequeue(&mut self, now_ns: u64) -> Option<(FlowId, P)> {
        for _ in 0..self.active.len() {
            let i = self.active.pop_front()?;
            let Some(inst) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
                continue;
            };
            let out = inst.pipe.dequeue(now_ns);
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

    fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let mut removed = 0;
        for inst in self.slots.iter_mut().flatten() {
            for fs in inst.flowsets.iter_mut() {
                removed += fs.expire(now_ns, budget, inst.pipe.sched());
            }
        }
        let n = self.slots.len();
        for _ in 0..budget.min(n) {
            let i = self.cursor % n;
            self.cursor = (i + 1) % n;
            let idle = matches!(&self.slots[i], Some(inst)
                if inst.pipe.backlog_packets() == 0
                    && now_ns.saturating_sub(inst.last_seen) >= self.idle_timeout_ns);
            if idle {
                if let Some(inst) = self.slots[i].take() {
                    self.table.remove(&inst.key);
                    self.free.push(i as u32);
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Packet budget of a pipe: what its flowsets can hold at once, capped.
fn pipe_packets(flowsets: &[&FlowsetSpec], per_instance: bool) -> u32 {
    let total: u64 = flowsets
        .iter()
        .map(|f| {
            let flows = flowset_params(f, per_instance).max_flows as u64;
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

fn pipe_params(p: &PipeSpec, packets: u32, seed: u64) -> PipeParams {
    PipeParams {
        bandwidth_bps: p.bandwidth_bps,
        overhead_bytes: p.overhead_bytes,
        delay_ns: p.delay_ns,
        loss: loss_of(&p.loss),
        // Every queued packet can be on its way at once.
        delay_capacity: packets as usize,
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
        let mut pipes = Vec::with_capacity(cfg.pipes.len());
        for (pi, p) in cfg.pipes.iter().enumerate() {
            let attached: Vec<&FlowsetSpec> =
                cfg.flowsets.iter().filter(|f| f.pipe == pi).collect();
            let dynamic = p.mask.is_some();
            let packets = pipe_packets(&attached, dynamic);
            let max_flows: u64 = attached
                .iter()
                .map(|f| flowset_params(f, dynamic).max_flows as u64)
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
                    &pipe_params(p, packets, pseed),
                )),
                Some(m) => {
                    // Validate the scheduler configuration once, up front.
                    build::<P>(p.sched, sched_cfg).map_err(sched_err)?;
                    PipeRt::Dynamic(Box::new(DynPipe {
                        mask: mask_of(&m),
                        kind: p.sched,
                        sched_cfg,
                        params: pipe_params(p, packets, pseed),
                        flowsets: attached.iter().map(|f| flowset_params(f, true)).collect(),
                        table: KeyTable::new(p.max_instances as usize, pseed),
                        slots: Vec::new(),
                        free: Vec::new(),
                        active: VecDeque::new(),
                        idle_timeout_ns: p.idle_timeout_ns,
                        cursor: 0,
                        seed: pseed,
                        created: 0,
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

    /// Counters of pipe `i`, summed over its instances if it is dynamic:
    /// (counters, instances).
    pub fn pipe_counters(&self, i: usize) -> Option<(crate::pipe::PipeCounters, usize)> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => (p.counters(), 1),
            PipeRt::Dynamic(d) => {
                let mut c = crate::pipe::PipeCounters::default();
                let mut n = 0;
                for inst in d.slots.iter().flatten() {
                    let x = inst.pipe.counters();
                    c.offered += x.offered;
                    c.lost += x.lost;
                    c.delay_line_full += x.delay_line_full;
                    c.delivered += x.delivered;
                    c.delivered_bytes += x.delivered_bytes;
                    n += 1;
                }
                (c, n)
            }
        })
    }

    /// Drops by reason in pipe `i`'s scheduler (summed over instances if dynamic).
    pub fn pipe_drops(&self, i: usize) -> Option<crate::DropCounters> {
        use crate::Scheduler;
        let add = |a: &mut crate::DropCounters, b: crate::DropCounters| {
            a.enqueued += b.enqueued;
            a.dequeued += b.dequeued;
            for (x, y) in a.by_reason.iter_mut().zip(b.by_reason) {
                *x += y;
            }
        };
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => p.sched_ref().counters(),
            PipeRt::Dynamic(d) => {
                let mut c = crate::DropCounters::default();
                for inst in d.slots.iter().flatten() {
                    add(&mut c, inst.pipe.sched_ref().counters());
                }
                c
            }
        })
    }

    /// Flowset `i`: (flows now, counters), summed over a dynamic pipe's instances.
    pub fn flowset_counters(&self, i: usize) -> Option<(usize, crate::flowset::FlowsetCounters)> {
        let rt = self.flowsets.get(i)?;
        match (&rt.fs, self.pipes.get(rt.pipe)?) {
            (Some(fs), _) => Some((fs.flows(), fs.counters())),
            (None, PipeRt::Dynamic(d)) => {
                let mut c = crate::flowset::FlowsetCounters::default();
                let mut flows = 0;
                for fs in d
                    .slots
                    .iter()
                    .flatten()
                    .filter_map(|inst| inst.flowsets.get(rt.local))
                {
                    let x = fs.counters();
                    c.created += x.created;
                    c.expired += x.expired;
                    c.refused += x.refused;
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
                let Some(i) = d.instance_for(key, now_ns) else {
                    return Verdict::Dropped(pkt, Cause::PipeFull);
                };
                let Some(inst) = d.slots.get_mut(i as usize).and_then(Option::as_mut) else {
                    return Verdict::Dropped(pkt, Cause::PipeFull);
                };
                inst.last_seen = now_ns;
                if !inst.active {
                    inst.active = true;
                    d.active.push_back(i);
                }
                let Some(fs) = inst.flowsets.get_mut(rt.local) else {
                    return Verdict::Dropped(pkt, Cause::FlowsetFull);
                };
                (&mut inst.pipe, fs)
            }
            (PipeRt::Static(_), None) => return Verdict::Dropped(pkt, Cause::FlowsetFull),
        };
        let Some((flow, tally)) = fs.flow_for_packet(key, now_ns, pkt.len(), pipe.sched()) else {
            return Verdict::Dropped(pkt, Cause::FlowsetFull);
        };
        match pipe.enqueue(now_ns, flow, pkt) {
            Ok(()) => Verdict::Queued {
                pipe: pipe_idx,
                flow,
            },
            Err(PipeDropped {
                pkt: victim,
                reason: PipeDrop::Sched(crate::DropReason::PushedOut),
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

    /// The next packet that has left a pipe by `now_ns`: (pipe, flow, packet).
    /// Pipes are visited round robin. (For a dynamic pipe, `flow` is a flow of
    /// one of its instances.)
    pub fn dequeue(&mut self, now_ns: u64) -> Option<(usize, FlowId, P)> {
        let n = self.pipes.len();
        for k in 0..n {
            let i = (self.next_pipe + k) % n;
            let out = match &mut self.pipes[i] {
                PipeRt::Static(p) => p.dequeue(now_ns),
                PipeRt::Dynamic(d) => d.dequeue(now_ns),
            };
            if let Some((flow, pkt)) = out {
                self.next_pipe = (i + 1) % n;
                return Some((i, flow, pkt));
            }
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
