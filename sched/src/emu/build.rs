//! The runtime objects of a validated configuration: pipes (static or
//! dynamic) with their schedulers, flowsets, rules.

use super::dynpipe::{DynPipe, Retired};
use super::flowset::{Flowset, FlowsetParams};
use super::jitter::ScaledTable;
use super::pipe::{JitterParams, Pipe, PipeParams};
use super::wake::WakeQueue;
use super::{Emulator, EmulatorCounters, FlowsetRt, PipeRt, Target};
use crate::algo::htb::{ClassSpec as TreeClass, Tree};
use crate::classify::{Classifier, KeyTable, Match};
use crate::config::{Config, DefaultAction, Distribution, FlowsetSpec, PipeSpec, QueueSpec};
use crate::types::{FlowConfig, Packet, QueueLimit, SchedConfig};
use crate::{build, build_tree, ConfigError};

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
    /// A pipe names a file (a distribution table, a profile, a trace) that
    /// was not read ([`crate::config::load_files`]).
    #[error("pipe {0:?}: {1} {2:?} was not loaded (config::load_files)")]
    NotLoaded(String, &'static str, String),
    /// A `next` names a flowset that does not exist.
    #[error("pipe {0:?}: next names flowset {1}, which does not exist")]
    NoSuchFlowset(String, usize),
}

/// Flows of one flowset inside one instance of a dynamic pipe: bounded so
/// that a thousand instances do not each reserve a table for `max_flows`.
pub const MAX_FLOWS_PER_INSTANCE: u32 = 256;

/// Most packets one pipe (or one dynamic-pipe instance) holds in total: the
/// size of its scheduler's packet pool. The per-flow limits of its flowsets
/// apply inside it. (In the datapath the UMEM frames bound this too.)
pub const MAX_PIPE_PACKETS: u32 = 65_536;

/// Packet budget of a pipe: what its flowsets can hold at once, capped.
fn pipe_packets(pipe: &PipeSpec, flowsets: &[&FlowsetSpec], per_instance: bool) -> u32 {
    if let Some(n) = pipe.limit {
        return n.clamp(1, MAX_PIPE_PACKETS);
    }
    let total: u64 = flowsets
        .iter()
        .map(|f| {
            // Its flows and its overflow queue.
            let flows = flowset_params(f, pipe, per_instance).max_flows as u64 + 1;
            let per_flow = match f.queue {
                QueueSpec::Packets(n) => n as u64,
                QueueSpec::Bytes(b) => b / MIN_FRAME + 1,
            };
            flows.saturating_mul(per_flow)
        })
        .fold(0u64, u64::saturating_add);
    total.clamp(1, MAX_PIPE_PACKETS as u64) as u32
}

/// Each class's index in its pipe's tree (its position among the pipe's
/// classes), and each pipe's tree.
fn class_trees(cfg: &Config) -> Result<(Vec<u32>, Vec<Option<Tree>>), BuildError> {
    let mut index = vec![0u32; cfg.classes.len()];
    let mut specs: Vec<Vec<TreeClass>> = vec![Vec::new(); cfg.pipes.len()];
    for (i, c) in cfg.classes.iter().enumerate() {
        let Some(tree) = specs.get_mut(c.pipe) else {
            continue;
        };
        index[i] = tree.len() as u32;
        tree.push(TreeClass {
            parent: c.parent.map(|p| index[p]),
            rate_bps: c.rate_bps,
            ceil_bps: c.ceil_bps,
            burst_bytes: c.burst_bytes,
            cburst_bytes: c.cburst_bytes,
            prio: c.prio,
            quantum: c.quantum,
        });
    }
    let trees = specs
        .into_iter()
        .enumerate()
        .map(|(pi, t)| {
            if t.is_empty() {
                return Ok(None);
            }
            Tree::new(t).map(Some).map_err(|source| BuildError::Sched {
                pipe: cfg.pipes[pi].name.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((index, trees))
}

fn flowset_params(f: &FlowsetSpec, pipe: &PipeSpec, per_instance: bool) -> FlowsetParams {
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
        mask: f.mask,
        flow: FlowConfig {
            weight: f.weight,
            priority: f.priority,
            quantum: f.quantum,
            lmax: f.lmax,
            limit,
            aqm: f.aqm.unwrap_or(pipe.aqm).on_link(pipe.bandwidth_bps),
            class: 0,
            rate_bps: f.rate_bps.unwrap_or(0),
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
        lazy_stats: dynamic,
        reorder: p.reorder.map(|r| (r.probability, r.correlation, r.gap)),
        jitter: p.jitter.as_ref().map(|j| JitterParams {
            jitter_ns: j.jitter_ns,
            table: match &j.distribution {
                Distribution::Uniform => None,
                Distribution::Table { table, .. } => {
                    table.as_ref().map(|t| ScaledTable::new(j.jitter_ns, t))
                }
            },
            correlation: j.correlation,
            reorder: j.reorder,
        }),
        bandwidth_bps: p.bandwidth_bps,
        overhead_bytes: p.overhead_bytes,
        delay_ns: p.delay_ns,
        loss: p.loss,
        delay_reserve: (link.max(u64::from(packets).min(4096)) as usize).min(cap),
        seed,
        duplicate: p.duplicate.map(|c| (c.probability, c.correlation)),
        corrupt: p.corrupt.map(|c| (c.probability, c.correlation)),
        slot: p.slot.as_ref().map(|s| s.params()),
        profile: p.profile.as_ref().and_then(|f| f.profile.clone()),
        trace: p
            .trace
            .as_ref()
            .and_then(|t| t.trace.clone().map(|tr| (tr, t.log.is_some()))),
        schedule: p.schedule.clone(),
        epoch_ns: 0,
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
        if let Some((pipe, what, file)) = cfg.unloaded() {
            return Err(BuildError::NotLoaded(pipe, what, file));
        }
        let (class_index, trees) = class_trees(cfg)?;
        let mut pipes = Vec::with_capacity(cfg.pipes.len());
        // Each pipe's flowsets (one pass: configurations of 100 000 pipes).
        let mut by_pipe: Vec<Vec<&FlowsetSpec>> = vec![Vec::new(); cfg.pipes.len()];
        for f in &cfg.flowsets {
            if let Some(v) = by_pipe.get_mut(f.pipe) {
                v.push(f);
            }
        }
        for (pi, p) in cfg.pipes.iter().enumerate() {
            let attached = std::mem::take(&mut by_pipe[pi]);
            let dynamic = p.mask.is_some();
            let packets = pipe_packets(p, &attached, dynamic);
            let marks_at_arrival = attached.iter().any(|f| f.aqm.unwrap_or(p.aqm).at_arrival());
            let any_aqm = attached
                .iter()
                .any(|f| f.aqm.unwrap_or(p.aqm) != crate::algo::aqm::Aqm::None);
            // Each flowset's flows and its overflow queue.
            let max_flows: u64 = attached
                .iter()
                .map(|f| flowset_params(f, p, dynamic).max_flows as u64 + 1)
                .sum::<u64>()
                .clamp(1, SchedConfig::MAX_FLOWS as u64);
            let sched_cfg = SchedConfig {
                max_flows: max_flows as u32,
                limit_packets: packets,
                limit_bytes: u64::MAX,
                overflow: p.overflow,
            };
            let pseed = seed ^ (pi as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let sched_err = |source| BuildError::Sched {
                pipe: p.name.clone(),
                source,
            };
            pipes.push(match p.mask {
                None => {
                    let mut sched = match &trees[pi] {
                        None => build(p.sched, sched_cfg),
                        Some(tree) => build_tree(p.sched, sched_cfg, tree),
                    }
                    .map_err(sched_err)?;
                    if any_aqm {
                        sched.reserve_aqm();
                    }
                    if attached.iter().any(|f| f.rate_bps.is_some()) {
                        sched.reserve_pacing();
                    }
                    PipeRt::Static(
                        Pipe::new(sched, &pipe_params(p, packets, pseed, false))
                            .with_flowsets(attached.len(), marks_at_arrival),
                    )
                }
                Some(m) => {
                    // Validate the scheduler configuration once, up front.
                    build::<P>(p.sched, sched_cfg).map_err(sched_err)?;
                    PipeRt::Dynamic(Box::new(DynPipe {
                        mask: m,
                        kind: p.sched,
                        sched_cfg,
                        params: pipe_params(p, packets, pseed, true),
                        flowsets: attached
                            .iter()
                            .map(|f| flowset_params(f, p, true))
                            .collect(),
                        table: KeyTable::new(p.max_instances as usize, pseed),
                        slots: Vec::new(),
                        free: Vec::new(),
                        due: WakeQueue::new(0),
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
                PipeRt::Static(_) => {
                    let mut params = flowset_params(f, &cfg.pipes[f.pipe], false);
                    if let Some(c) = f.class {
                        params.flow.class = class_index.get(c).copied().unwrap_or(0);
                    }
                    Some(Flowset::new(params, seed.wrapping_add(i as u64 + 1)))
                }
                PipeRt::Dynamic(_) => None,
            };
            flowsets.push(FlowsetRt {
                fs,
                pipe: f.pipe,
                local,
            });
        }
        let mut pipe_flowsets = vec![Vec::new(); pipes.len()];
        for (i, f) in cfg.flowsets.iter().enumerate() {
            pipe_flowsets[f.pipe].push(i);
        }
        let rules: Vec<(Match, u32)> = cfg
            .rules
            .iter()
            .map(|r| (r.matcher, r.flowset as u32))
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
            due: WakeQueue::new(cfg.pipes.len()),
            scan: cfg.pipes.len() <= super::SCAN_PIPES
                && cfg.pipes.iter().all(|p| p.mask.is_none()),
            next_pipe: 0,
            pipe_flowsets,
            expire_cursor: (0, 0),
            counters: EmulatorCounters::default(),
            pipe_names: cfg.pipes.iter().map(|p| p.name.clone()).collect(),
            flowset_names: cfg.flowsets.iter().map(|f| f.name.clone()).collect(),
            retired: super::Drops::default(),
            rule_prob: if cfg.rules.iter().any(|r| r.prob.is_some()) {
                cfg.rules
                    .iter()
                    .map(|r| match r.prob {
                        // p · 2^64, 1 (or more) as "always".
                        Some(p) if p < 1.0 => (p.max(0.0) * 18_446_744_073_709_551_616.0) as u64,
                        _ => u64::MAX,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            rule_dscp: cfg.rules.iter().map(|r| r.set_dscp).collect(),
            rng: crate::rng::Rng::new(seed ^ 0x1f83_d9ab_fb41_bd6b),
        })
    }
}
