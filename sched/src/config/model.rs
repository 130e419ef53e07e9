//! The validated configuration: pipes, flowsets, rules and the default,
//! with every value in range (see the module documentation of
//! [`crate::config`] for the file format).

use std::net::{IpAddr, Ipv4Addr};

use crate::algo::aqm::{Aqm, CodelParams};
use crate::classify::FlowMask;
pub use crate::classify::{Match, Prefix};
pub use crate::emu::loss::LossModel;
use crate::{Kind, Lmax, OverflowPolicy, Priority, Quantum, Weight};

/// Default queue limit of a flowset or of a pipe's implicit flowset: 50
/// packets, as dummynet.
pub const DEFAULT_QUEUE: QueueSpec = QueueSpec::Packets(50);
/// Default per-frame overhead: Ethernet preamble + SFD (8), inter-frame gap
/// (12) and FCS (4).
pub const DEFAULT_OVERHEAD_BYTES: u32 = 24;
/// Largest per-frame overhead accepted.
pub const MAX_OVERHEAD_BYTES: u32 = 1024;
/// Default scheduler of a pipe: WF2Q+, as dummynet.
pub const DEFAULT_SCHED: Kind = Kind::Wf2q;
/// Longest pipe delay accepted (one hour: a longer one is a unit mistake).
pub const MAX_DELAY_NS: u64 = 3_600_000_000_000;
/// Default `max_flows` of a flowset.
pub const DEFAULT_MAX_FLOWS: u32 = 65_536;
/// Default `max_instances` of a dynamic pipe.
pub const DEFAULT_MAX_INSTANCES: u32 = 1024;
/// Default idle timeout of per-flow queues and of dynamic pipe instances: 30 s.
pub const DEFAULT_IDLE_TIMEOUT_NS: u64 = 30_000_000_000;
/// Smallest queue limit in bytes.
pub const MIN_QUEUE_BYTES: u64 = 64;
/// Largest queue limit in bytes (limits are kept as `u32` by the engine).
pub const MAX_QUEUE_BYTES: u64 = u32::MAX as u64;
/// Longest object name.
pub const MAX_NAME_LEN: usize = 64;
/// Packets an `fq_codel` pipe holds in total unless `limit` says otherwise
/// (Linux fq_codel's `limit`).
pub const FQ_CODEL_LIMIT: u32 = 10_240;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The pipes, in file order (at least one).
    pub pipes: Vec<PipeSpec>,
    /// The flowsets: declared ones in file order, then the implicit flowsets
    /// of pipes named by rules or `[default]`, in order of first use.
    pub flowsets: Vec<FlowsetSpec>,
    /// The rules, in file order: the first that matches wins.
    pub rules: Vec<RuleSpec>,
    /// What happens to packets no rule matches and to non-IP frames.
    pub default: DefaultAction,
    /// The direction(s) `default` applies to; in the other one such packets pass.
    pub default_dir: Dir,
    /// The seed of every random process (loss, jitter, duplication, rules'
    /// `prob`, ...): the same seed replays a run. `None`: the program picks
    /// one (xdpsched: at random, reported at start and in its statistics).
    pub seed: Option<u64>,
    /// HTB classes (`[[class]]`), in file order: a parent before its
    /// children.
    pub classes: Vec<ClassSpec>,
}

/// An HTB class of a pipe's link (`[[class]]`, see [`crate::algo::htb`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSpec {
    /// Unique among classes.
    pub name: String,
    /// Index into [`Config::pipes`]: the link its tree shapes.
    pub pipe: usize,
    /// Index into [`Config::classes`] (`None`: a root of the pipe's tree).
    pub parent: Option<usize>,
    /// Guaranteed rate, bit/s.
    pub rate_bps: u64,
    /// Most it reaches by borrowing, bit/s (default: its rate).
    pub ceil_bps: u64,
    /// Bytes beyond the rate at once (default: tc's, one MTU of 1600).
    pub burst_bytes: u32,
    /// Bytes beyond the ceil at once (default: tc's).
    pub cburst_bytes: u32,
    /// A leaf's priority for spare bandwidth, 0 (first) to 7.
    pub prio: u8,
    /// A leaf's round-robin quantum, bytes (default: tc's, rate / 10 per
    /// second within 1000..=200000).
    pub quantum: u32,
}

impl Config {
    /// Files the configuration names that have not been read yet
    /// ([`crate::config::load_files`]): (pipe, what, file).
    pub fn unloaded(&self) -> Option<(String, &'static str, String)> {
        for p in &self.pipes {
            let pending = |d: &Distribution| match d {
                Distribution::Table { name, table: None } => Some(name.clone()),
                _ => None,
            };
            if let Some(n) = p.jitter.as_ref().and_then(|j| pending(&j.distribution)) {
                return Some((p.name.clone(), "distribution", n));
            }
            if let Some(SlotDelaySpec::Table { distribution, .. }) =
                p.slot.as_ref().map(|s| &s.delay)
            {
                if let Some(n) = pending(distribution) {
                    return Some((p.name.clone(), "slot distribution", n));
                }
            }
            if let Some(f) = p.profile.as_ref().filter(|f| f.profile.is_none()) {
                return Some((p.name.clone(), "profile", f.file.clone()));
            }
            if let Some(t) = p.trace.as_ref().filter(|t| t.trace.is_none()) {
                return Some((p.name.clone(), "trace", t.file.clone()));
            }
        }
        None
    }

    /// The index in [`Config::pipes`] of the pipe called `name`.
    pub fn pipe_index(&self, name: &str) -> Option<usize> {
        self.pipes.iter().position(|p| p.name == name)
    }

    /// The index in [`Config::flowsets`] of the flowset called `name`
    /// (implicit flowsets are called `"pipe:NAME"`).
    pub fn flowset_index(&self, name: &str) -> Option<usize> {
        self.flowsets.iter().position(|f| f.name == name)
    }

    /// True if a rule or the default applies to B→A only (which a single
    /// port, reflecting, does not have; `both` includes A→B).
    pub fn only_b_to_a(&self) -> bool {
        self.rules.iter().any(|r| r.dir == Dir::BToA)
            || (self.default != DefaultAction::Pass && self.default_dir == Dir::BToA)
    }

    /// True if a rule or the default applies to direction `d`.
    pub fn uses(&self, d: Direction) -> bool {
        self.rules.iter().any(|r| r.dir.includes(d))
            || (self.default != DefaultAction::Pass && self.default_dir.includes(d))
    }

    /// The configuration of one direction: its rules and default, and the
    /// pipes and flowsets they reach (through chains too), renumbered, with
    /// every `dir` set to [`Dir::Both`] (it has one direction left). A
    /// pipe used in both directions is in both results (one link each way).
    /// Pipes and flowsets that no rule or default reaches in either
    /// direction stay with A→B, so that they still show in its statistics.
    pub fn for_direction(&self, d: Direction) -> Config {
        let np = self.pipes.len();
        // Pipes reached in each direction, starting from the flowsets the
        // rules and the default name, following chains.
        let reached = |dir: Direction| -> Vec<bool> {
            let mut pipe_in = vec![false; np];
            let mut stack: Vec<usize> = self
                .rules
                .iter()
                .filter(|r| r.dir.includes(dir))
                .map(|r| r.flowset)
                .collect();
            if let DefaultAction::Flowset(f) = self.default {
                if self.default_dir.includes(dir) {
                    stack.push(f);
                }
            }
            while let Some(f) = stack.pop() {
                let p = self.flowsets[f].pipe;
                if !std::mem::replace(&mut pipe_in[p], true) {
                    stack.extend(self.pipes[p].next);
                }
            }
            pipe_in
        };
        let mut keep = reached(d);
        if d == Direction::AToB {
            let other = reached(Direction::BToA);
            for (k, o) in keep.iter_mut().zip(other) {
                // Reached in neither direction: stays with A→B.
                *k |= !o;
            }
        }
        let mut pipe_map = vec![None; np];
        let mut pipes = Vec::new();
        for (i, p) in self.pipes.iter().enumerate() {
            if keep[i] {
                pipe_map[i] = Some(pipes.len());
                pipes.push(p.clone());
            }
        }
        // Classes of the kept pipes (a parent is on its child's pipe).
        let mut class_map = vec![None; self.classes.len()];
        let mut classes = Vec::new();
        for (i, c) in self.classes.iter().enumerate() {
            if let Some(p) = pipe_map[c.pipe] {
                class_map[i] = Some(classes.len());
                classes.push(ClassSpec {
                    pipe: p,
                    parent: c.parent.and_then(|q| class_map[q]),
                    ..c.clone()
                });
            }
        }
        let mut fs_map = vec![None; self.flowsets.len()];
        let mut flowsets = Vec::new();
        for (i, f) in self.flowsets.iter().enumerate() {
            if let Some(p) = pipe_map[f.pipe] {
                fs_map[i] = Some(flowsets.len());
                flowsets.push(FlowsetSpec {
                    pipe: p,
                    class: f.class.and_then(|c| class_map[c]),
                    ..f.clone()
                });
            }
        }
        for p in &mut pipes {
            // A kept pipe's next flowset is on a kept pipe (chains are followed above).
            p.next = p.next.and_then(|f| fs_map[f]);
        }
        let rules = self
            .rules
            .iter()
            .filter(|r| r.dir.includes(d))
            .filter_map(|r| {
                Some(RuleSpec {
                    matcher: r.matcher,
                    flowset: fs_map[r.flowset]?,
                    dir: Dir::Both,
                    prob: r.prob,
                    set_dscp: r.set_dscp,
                })
            })
            .collect();
        let default = match self.default {
            DefaultAction::Flowset(f) if self.default_dir.includes(d) => {
                fs_map[f].map_or(DefaultAction::Pass, DefaultAction::Flowset)
            }
            _ => DefaultAction::Pass,
        };
        Config {
            pipes,
            flowsets,
            rules,
            default,
            default_dir: Dir::Both,
            seed: self.seed,
            classes,
        }
    }
}

/// An emulated link (dummynet pipe).
#[derive(Debug, Clone, PartialEq)]
pub struct PipeSpec {
    /// Unique among pipes.
    pub name: String,
    /// Link rate in bits per second; `None` = unlimited.
    pub bandwidth_bps: Option<u64>,
    /// Propagation delay added after transmission, in nanoseconds.
    pub delay_ns: u64,
    /// Random loss applied on the pipe.
    pub loss: LossModel,
    /// Per-flow queue limit of the pipe's implicit flowset (see the module docs).
    pub queue: QueueSpec,
    /// Bytes added to each frame's length for rate accounting.
    pub overhead_bytes: u32,
    /// The scheduler that serves the pipe's flows.
    pub sched: Kind,
    /// `Some`: a dynamic pipe, one instance per masked key. Never `Some(FlowMask::NONE)`.
    pub mask: Option<FlowMask>,
    /// Dynamic pipes: most instances at once (1..=2^24). Ignored without a mask.
    pub max_instances: u32,
    /// Dynamic pipes: an instance idle (nothing queued or in flight) this long
    /// is removed, in nanoseconds. Ignored without a mask.
    pub idle_timeout_ns: u64,
    /// What leaves this pipe goes on into this flowset (index into
    /// [`Config::flowsets`]; a pipe's implicit flowset for `next = "pipe"`).
    /// Never leads back to this pipe.
    pub next: Option<usize>,
    /// Queue management of its implicit flowset, and of its flowsets that
    /// set none ([`Aqm::Codel`] by default on an `fq_codel` pipe).
    pub aqm: Aqm,
    /// Most packets queued in the pipe's scheduler at once, over all its
    /// flows; `None`: what its flowsets can hold (capped at
    /// [`crate::emu::MAX_PIPE_PACKETS`]).
    pub limit: Option<u32>,
    /// What happens when `limit` is reached.
    pub overflow: OverflowPolicy,
    /// Delay jitter (netem's `delay D J`); `None`: the delay is constant.
    pub jitter: Option<JitterSpec>,
    /// netem's `reorder P [CORR] gap G`: packets that skip the delay.
    pub reorder: Option<ReorderSpec>,
    /// netem's `duplicate P [CORR]`.
    pub duplicate: Option<ChanceSpec>,
    /// netem's `corrupt P [CORR]`.
    pub corrupt: Option<ChanceSpec>,
    /// netem's `slot`.
    pub slot: Option<SlotSpec>,
    /// dummynet's `profile FILE`.
    pub profile: Option<ProfileSpec>,
    /// A Mahimahi trace as the link (instead of `bandwidth`).
    pub trace: Option<TraceSpec>,
    /// Bandwidth, delay and loss changes over time.
    pub schedule: Option<std::sync::Arc<crate::emu::schedule::ScheduleSpec>>,
}

/// A probability with netem's correlation (`duplicate`, `corrupt`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChanceSpec {
    /// 0..=1.
    pub probability: f64,
    /// 0..=1.
    pub correlation: f64,
}

/// netem's `slot` (see [`crate::emu::impair`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SlotSpec {
    /// How the gaps between slots are drawn.
    pub delay: SlotDelaySpec,
    /// Packets per slot; 0: no limit.
    pub packets: u32,
    /// Bytes per slot; 0: no limit.
    pub bytes: u64,
}

/// The gaps between slots.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotDelaySpec {
    /// Uniform in `[min, max)`.
    Uniform {
        /// ns.
        min_ns: u64,
        /// ns.
        max_ns: u64,
    },
    /// `delay` ± `jitter` from a distribution table.
    Table {
        /// ns.
        delay_ns: u64,
        /// ns.
        jitter_ns: u64,
        /// The table, as for jitter ([`Distribution::Table`]).
        distribution: Distribution,
    },
}

impl SlotSpec {
    /// The emulator's parameters (a table not loaded yet counts as none:
    /// [`Config::unloaded`] says so first).
    pub fn params(&self) -> crate::emu::impair::SlotParams {
        use crate::emu::impair::SlotDelay;
        let delay = match &self.delay {
            SlotDelaySpec::Uniform { min_ns, max_ns } => SlotDelay::Uniform {
                min_ns: *min_ns,
                max_ns: *max_ns,
            },
            SlotDelaySpec::Table {
                delay_ns,
                jitter_ns,
                distribution,
            } => match distribution {
                Distribution::Table { table: Some(t), .. } => SlotDelay::Table {
                    delay_ns: *delay_ns,
                    jitter_ns: *jitter_ns,
                    table: t.clone(),
                },
                _ => SlotDelay::Uniform {
                    min_ns: delay_ns.saturating_sub(*jitter_ns),
                    max_ns: delay_ns + jitter_ns,
                },
            },
        };
        crate::emu::impair::SlotParams {
            delay,
            packets: self.packets,
            bytes: self.bytes,
        }
    }
}

/// dummynet's `profile FILE` on a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSpec {
    /// The file as written (relative to the configuration's folder).
    pub file: String,
    /// Its contents once [`crate::config::load_files`] has read it.
    pub profile: Option<std::sync::Arc<crate::emu::impair::Profile>>,
}

/// A Mahimahi trace as a pipe's link.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpec {
    /// The file as written (relative to the configuration's folder).
    pub file: String,
    /// Its contents once [`crate::config::load_files`] has read it.
    pub trace: Option<std::sync::Arc<crate::emu::trace::Trace>>,
    /// Where to write Mahimahi's packet log, if anywhere (the program
    /// writes it: xdpsched).
    pub log: Option<String>,
}

/// netem's reordering: after `gap − 1` delayed packets, each packet skips
/// the pipe's delay with probability `probability`, so it leaves ahead of
/// packets sent before it (see [`crate::emu::jitter::Reorder`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReorderSpec {
    /// 0..=1.
    pub probability: f64,
    /// Correlation of successive draws, 0..=1.
    pub correlation: f64,
    /// At least 1 (tc's default when `gap` is not given).
    pub gap: u32,
}

/// Delay jitter on a pipe: netem's `delay D J [correlation] distribution X`
/// (see [`crate::emu::jitter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JitterSpec {
    /// The spread around the pipe's delay, ns (netem's `J`).
    pub jitter_ns: u64,
    /// Correlation of successive samples, 0..=1.
    pub correlation: f64,
    /// The distribution.
    pub distribution: Distribution,
    /// Let jitter reorder packets (netem without `rate`); by default a
    /// packet never leaves before the one sent before it.
    pub reorder: bool,
}

/// A jitter distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Uniform on `[D − J, D + J)` (netem's default).
    Uniform,
    /// An iproute2 distribution table: `name` as written (`normal`,
    /// `pareto`, `paretonormal`, or a `.dist` file), its entries once
    /// [`crate::config::load_files`] has read it.
    Table {
        /// As written in the configuration.
        name: String,
        /// The entries; `None` until loaded.
        table: Option<std::sync::Arc<[i16]>>,
    },
}

impl PipeSpec {
    /// A pipe with every field but the name at its default: unlimited, no
    /// delay, no loss, 50 packets, 24 bytes of overhead, WF2Q+, no mask.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bandwidth_bps: None,
            delay_ns: 0,
            loss: LossModel::None,
            queue: DEFAULT_QUEUE,
            overhead_bytes: DEFAULT_OVERHEAD_BYTES,
            sched: DEFAULT_SCHED,
            mask: None,
            max_instances: DEFAULT_MAX_INSTANCES,
            idle_timeout_ns: DEFAULT_IDLE_TIMEOUT_NS,
            next: None,
            aqm: Aqm::None,
            limit: None,
            overflow: OverflowPolicy::TailDrop,
            jitter: None,
            reorder: None,
            duplicate: None,
            corrupt: None,
            slot: None,
            profile: None,
            trace: None,
            schedule: None,
        }
    }

    /// A pipe with `sched = "fq_codel"` and its defaults, as `tc qdisc add
    /// dev X root fq_codel`: CoDel (target 5 ms, interval 100 ms, ECN) on
    /// every flow, 10240 packets in all and no smaller limit per flow,
    /// longest-queue-drop at that limit. Its implicit flowset has a queue per
    /// 5-tuple (see `config::validate`).
    pub fn fq_codel(name: impl Into<String>) -> Self {
        Self {
            sched: Kind::FqCodel,
            aqm: Aqm::Codel(CodelParams::default()),
            queue: QueueSpec::Packets(FQ_CODEL_LIMIT),
            limit: Some(FQ_CODEL_LIMIT),
            overflow: OverflowPolicy::DropLongest,
            ..Self::new(name)
        }
    }
}

/// A queue limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueSpec {
    /// At most this many packets (1..=2^26).
    Packets(u32),
    /// At most this many bytes (64..=u32::MAX).
    Bytes(u64),
}

impl Default for QueueSpec {
    fn default() -> Self {
        DEFAULT_QUEUE
    }
}

/// A class of traffic feeding one pipe (dummynet queue / flowset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsetSpec {
    /// Unique among flowsets; `"pipe:NAME"` for an implicit flowset.
    pub name: String,
    /// Index into [`Config::pipes`].
    pub pipe: usize,
    /// Which header bits tell this flowset's flows apart.
    pub mask: FlowMask,
    /// Each flow's weight.
    pub weight: Weight,
    /// Each flow's strict priority (PRIO).
    pub priority: Priority,
    /// Each flow's DRR quantum; `None`: the DRR default from the weight.
    pub quantum: Option<Quantum>,
    /// Longest packet accepted on each flow.
    pub lmax: Lmax,
    /// Each flow's queue limit.
    pub queue: QueueSpec,
    /// Most per-flow queues at once (1..=2^24).
    pub max_flows: u32,
    /// A per-flow queue idle (empty) this long is removed, in nanoseconds;
    /// 0 = as soon as it is empty.
    pub idle_timeout_ns: u64,
    /// Each flow's queue management; `None`: its pipe's [`PipeSpec::aqm`].
    pub aqm: Option<Aqm>,
    /// The leaf class (index into [`Config::classes`]) its flows go to, on
    /// a pipe with classes.
    pub class: Option<usize>,
    /// Each flow's own rate limit, bit/s (`rate`; `None`: none).
    pub rate_bps: Option<u64>,
}

impl FlowsetSpec {
    /// A flowset on pipe index `pipe` with every other field at its default:
    /// mask none, weight 1, priority 0, no quantum, lmax 65536, 50 packets,
    /// 65536 flows, 30 s.
    pub fn new(name: impl Into<String>, pipe: usize) -> Self {
        Self {
            name: name.into(),
            pipe,
            mask: FlowMask::NONE,
            weight: Weight::default(),
            priority: Priority::default(),
            quantum: None,
            lmax: Lmax::default(),
            queue: DEFAULT_QUEUE,
            max_flows: DEFAULT_MAX_FLOWS,
            idle_timeout_ns: DEFAULT_IDLE_TIMEOUT_NS,
            aqm: None,
            class: None,
            rate_bps: None,
        }
    }
}

/// One rule: packets matching `matcher` go to flowset `flowset`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// What the rule matches.
    pub matcher: Match,
    /// Index into [`Config::flowsets`].
    pub flowset: usize,
    /// The direction(s) it applies to.
    pub dir: Dir,
    /// dummynet's `prob`: the rule matches with this probability (else the
    /// next rule is tried); `None`: always.
    pub prob: Option<f64>,
    /// Rewrites the DSCP of the packets it matches (dummynet `setdscp`, tc
    /// `skbedit`/`pedit`).
    pub set_dscp: Option<u8>,
}

/// An IPv4 address in the mapped 128-bit form `::ffff:a.b.c.d`.
pub fn mapped_v4(addr: Ipv4Addr) -> u128 {
    u128::from_be_bytes(crate::wire::ipv4_mapped(addr.octets()))
}

/// Any address in the 128-bit form used by [`Prefix`] and [`FlowMask`].
pub fn addr_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => mapped_v4(a),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// One direction of a two-port bridge (reflect mode has only [`Direction::AToB`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received on port A (`--iface`), sent out of port B (`--out`).
    AToB,
    /// Received on port B, sent out of port A.
    BToA,
}

impl Direction {
    /// Both, A→B first.
    pub const ALL: [Direction; 2] = [Direction::AToB, Direction::BToA];

    /// As written in the configuration: `"a-to-b"`, `"b-to-a"`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::AToB => "a-to-b",
            Direction::BToA => "b-to-a",
        }
    }
}

/// The direction(s) a rule or the default applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dir {
    /// A→B only (the default).
    #[default]
    AToB,
    /// B→A only.
    BToA,
    /// Both directions.
    Both,
}

impl Dir {
    /// True if this covers direction `d`.
    pub fn includes(self, d: Direction) -> bool {
        matches!(
            (self, d),
            (Dir::Both, _) | (Dir::AToB, Direction::AToB) | (Dir::BToA, Direction::BToA)
        )
    }
}

/// What happens to packets no rule matches, and to non-IP frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DefaultAction {
    /// Forwarded without scheduling.
    #[default]
    Pass,
    /// Sent to this flowset (index into [`Config::flowsets`]).
    Flowset(usize),
}
