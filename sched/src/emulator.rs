//! The dummynet model assembled: frame → parse → rules → flowset → per-flow
//! queue in a pipe's scheduler → link → delay → out. Pure and pull-based like
//! its parts: the caller feeds frames with `now_ns` and polls `dequeue` at
//! `next_wakeup()`.

use crate::classify::{Classifier, FlowKey, FlowMask, Match};
use crate::config::{Config, DefaultAction, LossSpec, MaskSpec, QueueSpec};
use crate::flowset::{Flowset, FlowsetParams};
use crate::pipe::{LossModel, Pipe, PipeDrop, PipeDropped, PipeParams};
use crate::types::{FlowConfig, FlowId, OverflowPolicy, Packet, QueueLimit, SchedConfig};
use crate::wire::{self, Family, ParseError};
use crate::{build, ConfigError};

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

#[derive(Debug)]
struct FlowsetRt {
    fs: Flowset,
    pipe: usize,
}

/// Rules, flowsets and pipes.
#[derive(Debug)]
pub struct Emulator<P: Packet + Copy + Default> {
    rules: Classifier,
    default: Target,
    non_ip: Target,
    flowsets: Vec<FlowsetRt>,
    pipes: Vec<Pipe<P>>,
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
            if p.mask.is_some() {
                return Err(BuildError::PipeMask(p.name.clone()));
            }
            let max_flows: u64 = cfg
                .flowsets
                .iter()
                .filter(|f| f.pipe == pi)
                .map(|f| f.max_flows as u64)
                .sum::<u64>()
                .clamp(1, SchedConfig::MAX_FLOWS as u64);
            let (limit_packets, limit_bytes) = match p.queue {
                QueueSpec::Packets(n) => (n, u64::MAX),
                QueueSpec::Bytes(b) => (
                    (b / MIN_FRAME + 1).min(SchedConfig::MAX_PACKETS as u64) as u32,
                    b.max(crate::Lmax::MAX as u64),
                ),
            };
            let sc = SchedConfig {
                max_flows: max_flows as u32,
                limit_packets: limit_packets.max(1),
                limit_bytes,
                overflow: OverflowPolicy::TailDrop,
            };
            let sched = build(p.sched, sc).map_err(|source| BuildError::Sched {
                pipe: p.name.clone(),
                source,
            })?;
            let params = PipeParams {
                bandwidth_bps: p.bandwidth_bps,
                overhead_bytes: p.overhead_bytes,
                delay_ns: p.delay_ns,
                loss: loss_of(&p.loss),
                // Every queued packet can be on its way at once.
                delay_capacity: limit_packets.max(1) as usize,
                seed: seed ^ (pi as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            };
            pipes.push(Pipe::new(sched, &params));
        }
        let flowsets = cfg
            .flowsets
            .iter()
            .enumerate()
            .map(|(i, f)| {
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
                FlowsetRt {
                    fs: Flowset::new(
                        FlowsetParams {
                            mask: mask_of(&f.mask),
                            flow: FlowConfig {
                                weight: f.weight,
                                priority: f.priority,
                                quantum: f.quantum,
                                lmax: f.lmax,
                                limit,
                            },
                            max_flows: f.max_flows,
                            idle_timeout_ns: f.idle_timeout_ns,
                        },
                        seed.wrapping_add(i as u64 + 1),
                    ),
                    pipe: f.pipe,
                }
            })
            .collect();
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
            // ARP, ND and other non-IP frames always pass: endpoints must resolve each other.
            non_ip: Target::Pass,
            flowsets,
            pipes,
            next_pipe: 0,
            counters: EmulatorCounters::default(),
        })
    }

    /// The pipes (for stats).
    pub fn pipes(&self) -> &[Pipe<P>] {
        &self.pipes
    }

    /// The rule classifier (for its cache statistics).
    pub fn classifier(&self) -> &Classifier {
        &self.rules
    }

    /// The flowsets (for stats).
    pub fn flowsets(&self) -> impl Iterator<Item = &Flowset> {
        self.flowsets.iter().map(|f| &f.fs)
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
        let pipe = &mut self.pipes[rt.pipe];
        let Some(flow) = rt.fs.flow_for(key, now_ns, pipe.sched()) else {
            return Verdict::Dropped(pkt, Cause::FlowsetFull);
        };
        match pipe.enqueue(now_ns, flow, pkt) {
            Ok(()) => Verdict::Queued {
                pipe: rt.pipe,
                flow,
            },
            Err(PipeDropped {
                pkt: victim,
                reason: PipeDrop::Sched(crate::DropReason::PushedOut),
                ..
            }) => Verdict::QueuedPushedOut {
                pipe: rt.pipe,
                victim,
            },
            Err(d) => Verdict::Dropped(d.pkt, Cause::Pipe(d.reason)),
        }
    }

    /// The next packet that has left a pipe by `now_ns`: (pipe, flow, packet).
    /// Pipes are visited round robin.
    pub fn dequeue(&mut self, now_ns: u64) -> Option<(usize, FlowId, P)> {
        let n = self.pipes.len();
        for k in 0..n {
            let i = (self.next_pipe + k) % n;
            if let Some((flow, pkt)) = self.pipes[i].dequeue(now_ns) {
                self.next_pipe = (i + 1) % n;
                return Some((i, flow, pkt));
            }
        }
        None
    }

    /// When `dequeue` should next be called (`None`: nothing queued).
    pub fn next_wakeup(&self) -> Option<u64> {
        self.pipes.iter().filter_map(Pipe::next_wakeup).min()
    }

    /// Removes idle per-flow queues, looking at up to `budget` table slots per flowset.
    pub fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let mut n = 0;
        for rt in &mut self.flowsets {
            n += rt.fs.expire(now_ns, budget, self.pipes[rt.pipe].sched());
        }
        n
    }
}
