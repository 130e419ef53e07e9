//! TOML configuration of pipes, flowsets and rules, dummynet-style.
//!
//! [`from_toml`] reads a configuration from text and validates all of it up
//! front into a [`Config`]; after that nothing is checked again. Every error
//! names the object (`pipe "wan"`, `flowset "web"`, `rule 3`, `default`),
//! the field and the rejected value, and, when the TOML text locates it, the
//! line and column.
//!
//! # The model
//! - A **pipe** is an emulated link: a rate, a propagation delay, a loss
//!   model, a scheduler, and the queue of its implicit flowset. With a
//!   `mask` it is a *dynamic* pipe (dummynet `pipe N config mask ...`): each
//!   distinct masked key gets its own instance of the pipe (own rate, delay
//!   line and scheduler).
//! - A **flowset** (dummynet `queue N config pipe P`) feeds one pipe: its
//!   `mask` splits its traffic into per-flow queues, created on demand (at
//!   most `max_flows`, expired after `idle_timeout`), each with the flowset's
//!   weight, priority, quantum, lmax and queue limit.
//! - **Rules** are tried in order; the first that matches sends the packet to
//!   its flowset. A rule may name a `pipe` instead (dummynet `ipfw add pipe N`):
//!   the packet then goes to that pipe's *implicit flowset* (see below).
//! - **`[default]`** says what happens to packets no rule matches, and to
//!   non-IP frames: `action = "pass"` (the default: forwarded unscheduled),
//!   `flowset = "name"` or `pipe = "name"`.
//! - **Directions.** xdpsched's bridge (`--iface A --out B`) carries two
//!   directions; each rule and the default apply to one of them (`dir`,
//!   default `"a-to-b"`: what `--iface` receives and `--out` sends) or to
//!   both. Each direction is scheduled on its own with what its rules name
//!   ([`Config::for_direction`]): a pipe used in both directions is two
//!   links with the same parameters, one per direction (full duplex, as
//!   netem on each interface; dummynet would share one pipe). In reflect
//!   mode (one port) there is only `"a-to-b"`.
//! - **Chains.** A pipe's `next` sends what leaves it (after its delay) into
//!   another pipe's implicit flowset (`next = "pipe"`) or into a flowset
//!   (`next = { flowset = "name" }`), where it is classified again by that
//!   flowset's mask — dummynet with `one_pass` off, or stacked tc qdiscs.
//!   Chains may not loop back.
//!
//! # Keys, values and defaults
//! ```toml
//! [[pipe]]
//! name = "wan"              # required; 1..=64 of A-Z a-z 0-9 _ - .
//! bandwidth = "40Mbit/s"    # a rate (units::parse_rate), an integer in bit/s, or "unlimited" (default)
//! delay = "80ms"            # a duration (units::parse_duration), an integer in ms; 0..=1h; default 0
//! plr = 0.01                # uniform loss probability 0..=1; default 0 (no loss)
//! # [pipe.gilbert_elliott]  # instead of plr: p, r required; k default 1, h default 0
//! queue = 50                # the implicit flowset's per-flow queue: packets, or bytes with a unit; default 50 packets
//! overhead = 24             # bytes added to every frame for rate accounting, 0..=1024; default 24
//! sched = "wf2q"            # fifo, prio, drr, wf2q, qfq; default wf2q (dummynet's)
//! mask = { src_ip = "0.0.0.255" }  # optional: a dynamic pipe, one instance per masked key
//! max_instances = 1024      # dynamic pipes only: most instances at once, 1..=2^24; default 1024
//!                           # (more keys share one overflow instance)
//! idle_timeout = "30s"      # dynamic pipes only: idle instances expire; default 30s
//! next = "uplink"           # optional: what leaves this pipe goes on into pipe "uplink"
//!                           # (or next = { flowset = "name" }); no cycles
//!
//! [[flowset]]
//! name = "web"              # required
//! pipe = "wan"              # required: the pipe it feeds
//! mask = "5-tuple"          # "none" (default: one queue), "5-tuple", "src-ip", "dst-ip", "all", or a table
//! weight = 10               # 1..=65536; default 1
//! priority = 0              # 0..=15, 0 served first (PRIO); default 0
//! quantum = "3028B"         # DRR bytes per round, 64..=16MiB; default: none (weight × the DRR unit)
//! lmax = 1514               # longest packet in bytes, 64..=65536; default 65536
//! queue = 50                # per-flow queue: packets, or bytes with a unit; default 50 packets
//! max_flows = 65536         # per-flow queues at once, 1..=2^24; default 65536
//!                           # (more flows share the flowset's overflow queue)
//! idle_timeout = "30s"      # idle per-flow queues expire; default 30s
//!
//! [[rule]]                  # ordered; first match wins
//! flowset = "web"           # or pipe = "wan"
//! match = { src = "10.0.0.0/8", dst = "192.168.1.0/24", proto = "tcp", src_port = "1024-65535", dst_port = 443, dscp = "ef", vlan = 100 }
//! dir = "a-to-b"            # "a-to-b" (default), "b-to-a" or "both"
//!
//! [default]
//! action = "pass"           # or flowset = "name", or pipe = "name"
//! dir = "a-to-b"            # the direction(s) it applies to; the other one passes
//! ```
//! Unknown keys anywhere are errors. A configuration needs at least one pipe.
//!
//! ## Values
//! - **Rates, sizes, durations**: see [`crate::units`]. Rates are SI
//!   (`K` = 1000) in bits per second (`"100Mbps"` is bits; `"12.5MByte/s"`
//!   is bytes). Sizes are binary (`K` = 1024, as dummynet and tc). A plain
//!   integer duration is milliseconds (`delay = 80`, as dummynet).
//! - **Queues**: an integer, or a string of digits only, is a number of
//!   packets (1..=2^26, dummynet's "slots"); a string with a unit is bytes
//!   (64..=4294967295). `queue = "50KBytes"` is 51200 bytes.
//! - **Loss**: `plr` is dummynet's uniform packet loss rate. The
//!   `[pipe.gilbert_elliott]` table is the 4-parameter Gilbert-Elliott model
//!   in its standard form: a two-state Markov chain with `p` = P(good → bad)
//!   and `r` = P(bad → good), evaluated per packet; in the good state a packet
//!   is lost with probability `1 - k`, in the bad state with `1 - h`. With
//!   `k = 1, h = 0` (the defaults) it is the simple Gilbert model. Linux
//!   netem's `loss gemodel p r 1-h 1-k` takes the same four numbers (as
//!   percentages, the last two as loss probabilities). `plr = 0` is read as
//!   no loss ([`LossSpec::None`]); `plr` and `gilbert_elliott` together are an error.
//! - **Overhead** (default 24) counts what an Ethernet link carries per frame
//!   beyond the frame as the datapath sees it (no FCS): preamble and start
//!   delimiter 8, inter-frame gap 12, FCS 4.
//!
//! ## Masks
//! A mask selects the bits of a packet's key that tell flows (flowset) or
//! pipe instances (dynamic pipe) apart. As a table, each field is optional
//! (absent = 0, ignored):
//! - `src_ip`, `dst_ip`: an IPv4 mask (`"0.0.0.255"`, `"0x000000ff"` — up to
//!   8 hex digits —, an integer up to `0xffffffff`, or a prefix length `"/24"`
//!   with 0..=32), an IPv6 mask (`"ffff:ffff::"`, 9..=32 hex digits, or `"/48"`
//!   with 33..=128), or `true` (all 128 bits).
//! - `src_port`, `dst_port`: 0..=0xffff; `proto`: 0..=0xff; `dscp`: 0..=0x3f;
//!   `vlan`: 0..=0xfff (the 12-bit VLAN id). An integer, a string `"0x..."` or
//!   decimal, or `true` for all bits.
//!
//! Addresses and masks are `u128` in IPv6 space, IPv4 as the IPv4-mapped
//! address `::ffff:a.b.c.d` (v4 in the low 32 bits). An IPv4 mask `m` also
//! keeps the upper 96 bits: it is `(!0 << 32) | m`, so the v4 mask of prefix
//! length `n` is the 128-bit mask of length `96 + n` (as [`Prefix`] lengths),
//! IPv4 and IPv6 flows never share a key, and IPv6 traffic under an IPv4
//! mask is split by its upper 96 bits. A pipe mask of all zeros (`"none"`)
//! is the same as no mask.
//!
//! ## Matches
//! All fields are optional; an absent field matches everything, and a rule
//! with no `match` matches every packet.
//! - `src`, `dst`: `"10.0.0.0/8"`, `"2001:db8::/32"`, a bare address (a host:
//!   /32 or /128), or `"any"`. A prefix with host bits set (`"10.0.0.1/8"`)
//!   is **rejected**, naming the prefix it probably meant: such a prefix is
//!   more often a typo for a host than a deliberate network. IPv6 prefixes
//!   shorter than /96 also match IPv4 packets (in their mapped form).
//! - `proto`: `tcp`, `udp`, `icmp`, `icmpv6` (or `ipv6-icmp`), `sctp`, `gre`,
//!   `esp`, `ah`, `dccp`, `udplite`, or a number 0..=255.
//! - `src_port`, `dst_port`: `443`, `"443"`, or an inclusive range
//!   `"1024-65535"`. Needs no proto, but if a proto is given it must be one
//!   with ports (tcp, udp, sctp, dccp, udplite).
//! - `dscp`: `ef` (46), `af11`..`af43`, `cs0`..`cs7`, `be`/`df` (0), `le` (1),
//!   `va` (44), or a number 0..=63.
//! - `vlan`: the VLAN id 0..=4095.
//!
//! ## Implicit flowsets
//! A rule or `[default]` that names a pipe sends to that pipe's implicit
//! flowset, as dummynet does for `ipfw add pipe N`. It is created once per
//! pipe, appended to [`Config::flowsets`] after the declared ones, and named
//! `"pipe:NAME"` (a `:` cannot appear in declared names). It has one queue
//! per pipe instance (mask none), the pipe's `queue` as its limit, and every
//! other field at its default (`max_flows` 1). The pipe's `queue` key has no
//! other use: flowsets declared on a pipe have their own limits.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::units::{self, UnitError};
use crate::{Kind, Lmax, Priority, Quantum, SchedConfig, Weight};

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
}

impl Config {
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
        let mut fs_map = vec![None; self.flowsets.len()];
        let mut flowsets = Vec::new();
        for (i, f) in self.flowsets.iter().enumerate() {
            if let Some(p) = pipe_map[f.pipe] {
                fs_map[i] = Some(flowsets.len());
                flowsets.push(FlowsetSpec {
                    pipe: p,
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
        }
    }
}

impl std::str::FromStr for Config {
    type Err = ConfigFileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        from_toml(s)
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
    pub loss: LossSpec,
    /// Per-flow queue limit of the pipe's implicit flowset (see the module docs).
    pub queue: QueueSpec,
    /// Bytes added to each frame's length for rate accounting.
    pub overhead_bytes: u32,
    /// The scheduler that serves the pipe's flows.
    pub sched: Kind,
    /// `Some`: a dynamic pipe, one instance per masked key. Never `Some(MaskSpec::NONE)`.
    pub mask: Option<MaskSpec>,
    /// Dynamic pipes: most instances at once (1..=2^24). Ignored without a mask.
    pub max_instances: u32,
    /// Dynamic pipes: an instance idle (nothing queued or in flight) this long
    /// is removed, in nanoseconds. Ignored without a mask.
    pub idle_timeout_ns: u64,
    /// What leaves this pipe goes on into this flowset (index into
    /// [`Config::flowsets`]; a pipe's implicit flowset for `next = "pipe"`).
    /// Never leads back to this pipe.
    pub next: Option<usize>,
}

impl PipeSpec {
    /// A pipe with every field but the name at its default: unlimited, no
    /// delay, no loss, 50 packets, 24 bytes of overhead, WF2Q+, no mask.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bandwidth_bps: None,
            delay_ns: 0,
            loss: LossSpec::None,
            queue: DEFAULT_QUEUE,
            overhead_bytes: DEFAULT_OVERHEAD_BYTES,
            sched: DEFAULT_SCHED,
            mask: None,
            max_instances: DEFAULT_MAX_INSTANCES,
            idle_timeout_ns: DEFAULT_IDLE_TIMEOUT_NS,
            next: None,
        }
    }
}

/// Random packet loss on a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LossSpec {
    /// No random loss.
    #[default]
    None,
    /// Each packet is lost independently with probability `plr` (0 < plr <= 1).
    Uniform {
        /// Loss probability.
        plr: f64,
    },
    /// Gilbert-Elliott two-state model (all four in 0..=1): see the module docs.
    GilbertElliott {
        /// P(good → bad), per packet.
        p: f64,
        /// P(bad → good), per packet.
        r: f64,
        /// P(delivered | good): loss in the good state is `1 - k`.
        k: f64,
        /// P(delivered | bad): loss in the bad state is `1 - h`.
        h: f64,
    },
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
    pub mask: MaskSpec,
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
}

impl FlowsetSpec {
    /// A flowset on pipe index `pipe` with every other field at its default:
    /// mask none, weight 1, priority 0, no quantum, lmax 65536, 50 packets,
    /// 65536 flows, 30 s.
    pub fn new(name: impl Into<String>, pipe: usize) -> Self {
        Self {
            name: name.into(),
            pipe,
            mask: MaskSpec::NONE,
            weight: Weight::default(),
            priority: Priority::default(),
            quantum: None,
            lmax: Lmax::default(),
            queue: DEFAULT_QUEUE,
            max_flows: DEFAULT_MAX_FLOWS,
            idle_timeout_ns: DEFAULT_IDLE_TIMEOUT_NS,
        }
    }
}

/// Header bits that identify a flow: a packet's key is each field ANDed
/// with its mask. Addresses in the mapped `u128` form (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MaskSpec {
    /// Source address mask.
    pub src_ip: u128,
    /// Destination address mask.
    pub dst_ip: u128,
    /// Source port mask.
    pub src_port: u16,
    /// Destination port mask.
    pub dst_port: u16,
    /// IP protocol mask.
    pub proto: u8,
    /// DSCP mask (6 bits).
    pub dscp: u8,
    /// VLAN id mask (12 bits).
    pub vlan: u16,
}

impl MaskSpec {
    /// Nothing: every packet has the same key (one queue).
    pub const NONE: MaskSpec = MaskSpec {
        src_ip: 0,
        dst_ip: 0,
        src_port: 0,
        dst_port: 0,
        proto: 0,
        dscp: 0,
        vlan: 0,
    };
    /// Addresses, ports and protocol: one queue per transport flow.
    pub const FIVE_TUPLE: MaskSpec = MaskSpec {
        src_ip: u128::MAX,
        dst_ip: u128::MAX,
        src_port: 0xffff,
        dst_port: 0xffff,
        proto: 0xff,
        dscp: 0,
        vlan: 0,
    };
    /// Every field, all bits.
    pub const ALL: MaskSpec = MaskSpec {
        dscp: 0x3f,
        vlan: 0x0fff,
        ..MaskSpec::FIVE_TUPLE
    };

    /// True if no bit is selected.
    pub fn is_none(&self) -> bool {
        *self == MaskSpec::NONE
    }
}

/// One rule: packets matching `matcher` go to flowset `flowset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// What the rule matches.
    pub matcher: MatchSpec,
    /// Index into [`Config::flowsets`].
    pub flowset: usize,
    /// The direction(s) it applies to.
    pub dir: Dir,
}

/// Conditions of a rule, all of which must hold; `None` matches anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MatchSpec {
    /// Source address prefix.
    pub src: Option<Prefix>,
    /// Destination address prefix.
    pub dst: Option<Prefix>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Source port, inclusive range `(lo, hi)`, `lo <= hi`.
    pub src_port: Option<(u16, u16)>,
    /// Destination port, inclusive range `(lo, hi)`, `lo <= hi`.
    pub dst_port: Option<(u16, u16)>,
    /// DSCP value 0..=63.
    pub dscp: Option<u8>,
    /// VLAN id 0..=4095.
    pub vlan: Option<u16>,
}

impl MatchSpec {
    /// Matches every packet.
    pub const ANY: MatchSpec = MatchSpec {
        src: None,
        dst: None,
        proto: None,
        src_port: None,
        dst_port: None,
        dscp: None,
        vlan: None,
    };
}

/// An address prefix in the mapped 128-bit space: IPv4 `a.b.c.d/n` is
/// `::ffff:a.b.c.d/(96 + n)`. Host bits of `addr` are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: u128,
    /// Prefix length 0..=128.
    pub len: u8,
}

impl Prefix {
    /// The netmask of this prefix length.
    pub fn mask(&self) -> u128 {
        prefix_mask(self.len)
    }

    /// True if `addr` (mapped form) is inside the prefix.
    pub fn contains(&self, addr: u128) -> bool {
        addr & self.mask() == self.addr
    }
}

/// An IPv4 address in the mapped 128-bit form `::ffff:a.b.c.d`.
pub fn mapped_v4(addr: Ipv4Addr) -> u128 {
    u128::from(addr.to_ipv6_mapped())
}

/// Any address in the 128-bit form used by [`Prefix`] and [`MaskSpec`].
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

/// Where in the text an error is: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFileError {
    /// Not TOML, or not shaped like a configuration (an unknown key, a table
    /// where a list of tables belongs): the TOML library's message.
    Toml {
        /// Where, if known.
        at: Option<Location>,
        /// The TOML library's message.
        message: String,
    },
    /// Well-formed, but a value is not valid.
    Invalid {
        /// Where, if known.
        at: Option<Location>,
        /// The object: `pipe "wan"`, `pipe 2` (no valid name yet), `flowset "web"`,
        /// `rule 3` (counted from 1), `default` or `config`.
        object: String,
        /// The field, the value and what is allowed.
        message: String,
    },
}

impl ConfigFileError {
    /// Where in the text the error is, if known.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigFileError::Toml { at, .. } | ConfigFileError::Invalid { at, .. } => *at,
        }
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.location();
        if let Some(at) = at {
            write!(f, "{at}: ")?;
        }
        match self {
            ConfigFileError::Toml { message, .. } => f.write_str(message),
            ConfigFileError::Invalid {
                object, message, ..
            } => write!(f, "{object}: {message}"),
        }
    }
}

impl std::error::Error for ConfigFileError {}

// ---------------------------------------------------------------------------
// The file as written.

type Field = Option<Spanned<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    pipe: Vec<Spanned<RawPipe>>,
    #[serde(default)]
    flowset: Vec<Spanned<RawFlowset>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    default: Option<Spanned<RawDefault>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipe {
    name: Field,
    bandwidth: Field,
    delay: Field,
    plr: Field,
    gilbert_elliott: Option<Spanned<RawGilbertElliott>>,
    queue: Field,
    overhead: Field,
    sched: Field,
    mask: Field,
    max_instances: Field,
    idle_timeout: Field,
    next: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGilbertElliott {
    p: Field,
    r: Field,
    k: Field,
    h: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlowset {
    name: Field,
    pipe: Field,
    mask: Field,
    weight: Field,
    priority: Field,
    quantum: Field,
    lmax: Field,
    queue: Field,
    max_flows: Field,
    idle_timeout: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    flowset: Field,
    pipe: Field,
    #[serde(rename = "match")]
    matcher: Option<Spanned<RawMatch>>,
    dir: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    src: Field,
    dst: Field,
    proto: Field,
    src_port: Field,
    dst_port: Field,
    dscp: Field,
    vlan: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    action: Field,
    flowset: Field,
    pipe: Field,
    dir: Field,
}

// ---------------------------------------------------------------------------
// Validation.

/// Reads and validates a configuration. See the [module documentation](self)
/// for the format.
pub fn from_toml(text: &str) -> Result<Config, ConfigFileError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let mut message = e.message().trim_end().to_owned();
        if message.ends_with("expected a sequence") {
            message.push_str(
                " (pipes, flowsets and rules are lists: write [[pipe]], [[flowset]], [[rule]])",
            );
        }
        ConfigFileError::Toml {
            at: e.span().map(|s| locate(text, s.start)),
            message,
        }
    })?;
    Cx { text }.config(raw)
}

/// The 1-based line and character column of byte `offset` in `text`.
fn locate(text: &str, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// A field's message, before the object is named.
type Msg = String;

struct Cx<'a> {
    text: &'a str,
}

impl Cx<'_> {
    fn err(&self, object: &str, span: Option<Range<usize>>, message: Msg) -> ConfigFileError {
        ConfigFileError::Invalid {
            at: span.map(|s| locate(self.text, s.start)),
            object: object.to_owned(),
            message,
        }
    }

    /// Parses an optional field with `f`, naming `object` on error.
    fn opt<T>(
        &self,
        object: &str,
        field: &Field,
        f: impl FnOnce(&Value) -> Result<T, Msg>,
    ) -> Result<Option<T>, ConfigFileError> {
        match field {
            None => Ok(None),
            Some(v) => f(v.get_ref())
                .map(Some)
                .map_err(|m| self.err(object, Some(v.span()), m)),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigFileError> {
        if raw.pipe.is_empty() {
            return Err(self.err(
                "config",
                None,
                "no [[pipe]] is defined (at least one is needed)".to_owned(),
            ));
        }
        let mut pipes: Vec<PipeSpec> = Vec::with_capacity(raw.pipe.len());
        let mut pipe_names: HashMap<String, usize> = HashMap::new();
        for (i, p) in raw.pipe.iter().enumerate() {
            let spec = self.pipe(i, p)?;
            if let Some(&first) = pipe_names.get(&spec.name) {
                return Err(self.err(
                    &format!("pipe {:?}", spec.name),
                    p.get_ref().name.as_ref().map(Spanned::span),
                    format!(
                        "name: {:?} is already the name of pipe {} (pipe names must be unique)",
                        spec.name,
                        first + 1
                    ),
                ));
            }
            pipe_names.insert(spec.name.clone(), i);
            pipes.push(spec);
        }

        let mut flowsets: Vec<FlowsetSpec> = Vec::with_capacity(raw.flowset.len());
        let mut flowset_names: HashMap<String, usize> = HashMap::new();
        for (i, f) in raw.flowset.iter().enumerate() {
            let spec = self.flowset(i, f, &pipe_names)?;
            if let Some(&first) = flowset_names.get(&spec.name) {
                return Err(self.err(
                    &format!("flowset {:?}", spec.name),
                    f.get_ref().name.as_ref().map(Spanned::span),
                    format!(
                        "name: {:?} is already the name of flowset {} (flowset names must be unique)",
                        spec.name,
                        first + 1
                    ),
                ));
            }
            flowset_names.insert(spec.name.clone(), i);
            flowsets.push(spec);
        }

        let mut targets = Targets {
            pipe_names: &pipe_names,
            flowset_names: &flowset_names,
            pipes: &pipes,
            implicit: HashMap::new(),
            flowsets,
        };
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, r) in raw.rule.iter().enumerate() {
            let object = format!("rule {}", i + 1);
            let rr = r.get_ref();
            let flowset = self.target(&object, r.span(), &rr.flowset, &rr.pipe, &mut targets)?;
            let matcher = match &rr.matcher {
                None => MatchSpec::ANY,
                Some(m) => self.matcher(&object, m)?,
            };
            let dir = self.opt(&object, &rr.dir, dir)?.unwrap_or_default();
            rules.push(RuleSpec {
                matcher,
                flowset,
                dir,
            });
        }
        let (default, default_dir) = match &raw.default {
            None => (DefaultAction::Pass, Dir::default()),
            Some(d) => (
                self.default(d, &mut targets)?,
                self.opt("default", &d.get_ref().dir, dir)?
                    .unwrap_or_default(),
            ),
        };
        // Chains: resolved once every flowset is known (a `next` pipe's
        // implicit flowset may be created here), then checked for loops.
        let mut nexts = vec![None; pipes.len()];
        for (i, p) in raw.pipe.iter().enumerate() {
            if let Some(n) = &p.get_ref().next {
                let o = format!("pipe {:?}", pipes[i].name);
                nexts[i] = Some(self.next(&o, n, &mut targets)?);
            }
        }
        let flowsets = targets.flowsets;
        for (p, n) in pipes.iter_mut().zip(nexts) {
            p.next = n;
        }
        for (i, p) in raw.pipe.iter().enumerate() {
            let mut path = vec![i];
            let mut at = i;
            while let Some(f) = pipes[at].next {
                at = flowsets[f].pipe;
                path.push(at);
                if at == i {
                    let names: Vec<&str> = path.iter().map(|&k| pipes[k].name.as_str()).collect();
                    return Err(self.err(
                        &format!("pipe {:?}", pipes[i].name),
                        p.get_ref().next.as_ref().map(Spanned::span),
                        format!(
                            "next: the chain {} leads back to {:?} (chained pipes may not form a cycle)",
                            names.join(" -> "),
                            pipes[i].name
                        ),
                    ));
                }
                if path.len() > pipes.len() {
                    // A loop that does not pass through pipe i: reported from its own pipe.
                    break;
                }
            }
        }
        Ok(Config {
            pipes,
            flowsets,
            rules,
            default,
            default_dir,
        })
    }

    /// A pipe's `next`: a pipe name (its implicit flowset) or `{ flowset = "name" }`.
    fn next(
        &self,
        o: &str,
        v: &Spanned<Value>,
        t: &mut Targets<'_>,
    ) -> Result<usize, ConfigFileError> {
        let err = |m: Msg| self.err(o, Some(v.span()), m);
        match v.get_ref() {
            Value::String(_) => {
                let p = reference("next", v.get_ref(), t.pipe_names).map_err(err)?;
                Ok(t.implicit(p))
            }
            Value::Table(tab) => {
                let unknown: Vec<&String> = tab.keys().filter(|k| *k != "flowset").collect();
                if let Some(k) = unknown.first() {
                    return Err(err(format!(
                        "next.{k}: unknown key (write next = \"pipe\" or next = {{ flowset = \"name\" }})"
                    )));
                }
                match tab.get("flowset") {
                    Some(f) => reference("next.flowset", f, t.flowset_names).map_err(err),
                    None => Err(err("next: a table needs flowset = \"name\"".to_owned())),
                }
            }
            other => Err(err(wrong_type(
                "next",
                "a pipe name or { flowset = \"name\" }",
                other,
            ))),
        }
    }

    fn name(
        &self,
        kind: &str,
        i: usize,
        field: &Field,
        span: Range<usize>,
    ) -> Result<String, ConfigFileError> {
        let object = format!("{kind} {}", i + 1);
        match self.opt(&object, field, name)? {
            Some(n) => Ok(n),
            None => Err(self.err(
                &object,
                Some(span),
                format!("name: missing (every {kind} needs a name)"),
            )),
        }
    }

    fn pipe(&self, i: usize, raw: &Spanned<RawPipe>) -> Result<PipeSpec, ConfigFileError> {
        let p = raw.get_ref();
        let name = self.name("pipe", i, &p.name, raw.span())?;
        let o = format!("pipe {name:?}");
        let o = o.as_str();
        let mut spec = PipeSpec::new(name);
        if let Some(bw) = self.opt(o, &p.bandwidth, |v| bandwidth("bandwidth", v))? {
            spec.bandwidth_bps = bw;
        }
        if let Some(d) = self.opt(o, &p.delay, |v| duration("delay", v, MAX_DELAY_NS))? {
            spec.delay_ns = d;
        }
        let plr = self.opt(o, &p.plr, |v| probability("plr", v))?;
        spec.loss = match (plr, &p.gilbert_elliott) {
            (Some(_), Some(ge)) => {
                return Err(self.err(
                    o,
                    Some(ge.span()),
                    "plr and gilbert_elliott are two loss models: give one of them".to_owned(),
                ))
            }
            (None, None) => LossSpec::None,
            (Some(plr), None) => {
                if plr == 0.0 {
                    LossSpec::None
                } else {
                    LossSpec::Uniform { plr }
                }
            }
            (None, Some(ge)) => self.gilbert_elliott(o, ge)?,
        };
        if let Some(q) = self.opt(o, &p.queue, |v| queue("queue", v))? {
            spec.queue = q;
        }
        if let Some(b) = self.opt(o, &p.overhead, |v| {
            bytes("overhead", v, 0, u64::from(MAX_OVERHEAD_BYTES))
        })? {
            // In range by the check above.
            spec.overhead_bytes = u32::try_from(b).unwrap_or(MAX_OVERHEAD_BYTES);
        }
        if let Some(k) = self.opt(o, &p.sched, sched)? {
            spec.sched = k;
        }
        if let Some(m) = self.opt(o, &p.mask, |v| mask("mask", v))? {
            spec.mask = if m.is_none() { None } else { Some(m) };
        }
        if let Some(n) = self.opt(o, &p.max_instances, |v| {
            count("max_instances", v, SchedConfig::MAX_FLOWS)
        })? {
            spec.max_instances = n;
        }
        if let Some(t) = self.opt(o, &p.idle_timeout, |v| {
            duration("idle_timeout", v, u64::MAX)
        })? {
            spec.idle_timeout_ns = t;
        }
        Ok(spec)
    }

    fn gilbert_elliott(
        &self,
        o: &str,
        ge: &Spanned<RawGilbertElliott>,
    ) -> Result<LossSpec, ConfigFileError> {
        let g = ge.get_ref();
        let need = |field: &Field, key: &str| -> Result<f64, ConfigFileError> {
            self.opt(o, field, |v| {
                probability(&format!("gilbert_elliott.{key}"), v)
            })?
            .ok_or_else(|| {
                self.err(
                    o,
                    Some(ge.span()),
                    format!("gilbert_elliott.{key}: missing (p and r are required)"),
                )
            })
        };
        let p = need(&g.p, "p")?;
        let r = need(&g.r, "r")?;
        let k = self
            .opt(o, &g.k, |v| probability("gilbert_elliott.k", v))?
            .unwrap_or(1.0);
        let h = self
            .opt(o, &g.h, |v| probability("gilbert_elliott.h", v))?
            .unwrap_or(0.0);
        Ok(LossSpec::GilbertElliott { p, r, k, h })
    }

    fn flowset(
        &self,
        i: usize,
        raw: &Spanned<RawFlowset>,
        pipe_names: &HashMap<String, usize>,
    ) -> Result<FlowsetSpec, ConfigFileError> {
        let f = raw.get_ref();
        let name = self.name("flowset", i, &f.name, raw.span())?;
        if name.starts_with("pipe:") {
            // Unreachable: ':' is not allowed in names. Kept for clarity.
            return Err(self.err(
                &format!("flowset {name:?}"),
                None,
                "name: \"pipe:\" names are reserved for implicit flowsets".to_owned(),
            ));
        }
        let o = format!("flowset {name:?}");
        let o = o.as_str();
        let pipe = match self.opt(o, &f.pipe, |v| reference("pipe", v, pipe_names))? {
            Some(p) => p,
            None => {
                return Err(self.err(
                    o,
                    Some(raw.span()),
                    "pipe: missing (every flowset feeds a pipe)".to_owned(),
                ))
            }
        };
        let mut spec = FlowsetSpec::new(name, pipe);
        if let Some(m) = self.opt(o, &f.mask, |v| mask("mask", v))? {
            spec.mask = m;
        }
        if let Some(w) = self.opt(o, &f.weight, |v| {
            let w = int("weight", v, u64::from(Weight::MIN), u64::from(Weight::MAX))?;
            Weight::new(w).map_err(|e| e.to_string())
        })? {
            spec.weight = w;
        }
        if let Some(p) = self.opt(o, &f.priority, |v| {
            let p = int(
                "priority",
                v,
                u64::from(Priority::MIN),
                u64::from(Priority::MAX),
            )?;
            Priority::new(p).map_err(|e| e.to_string())
        })? {
            spec.priority = p;
        }
        spec.quantum = self.opt(o, &f.quantum, |v| {
            let q = bytes(
                "quantum",
                v,
                u64::from(Quantum::MIN),
                u64::from(Quantum::MAX),
            )?;
            Quantum::new(q).map_err(|e| e.to_string())
        })?;
        if let Some(l) = self.opt(o, &f.lmax, |v| {
            let l = bytes("lmax", v, u64::from(Lmax::MIN), u64::from(Lmax::MAX))?;
            Lmax::new(l).map_err(|e| e.to_string())
        })? {
            spec.lmax = l;
        }
        if let Some(q) = self.opt(o, &f.queue, |v| queue("queue", v))? {
            spec.queue = q;
        }
        if let Some(n) = self.opt(o, &f.max_flows, |v| {
            count("max_flows", v, SchedConfig::MAX_FLOWS)
        })? {
            spec.max_flows = n;
        }
        if let Some(t) = self.opt(o, &f.idle_timeout, |v| {
            duration("idle_timeout", v, u64::MAX)
        })? {
            spec.idle_timeout_ns = t;
        }
        Ok(spec)
    }

    /// Resolves `flowset = ` / `pipe = ` of a rule or `[default]`.
    fn target(
        &self,
        o: &str,
        span: Range<usize>,
        flowset: &Field,
        pipe: &Field,
        t: &mut Targets<'_>,
    ) -> Result<usize, ConfigFileError> {
        match (flowset, pipe) {
            (Some(_), Some(p)) => Err(self.err(
                o,
                Some(p.span()),
                "give either flowset or pipe, not both".to_owned(),
            )),
            (None, None) => Err(self.err(
                o,
                Some(span),
                "flowset: missing (say where matching packets go: flowset = \"name\" or pipe = \"name\")"
                    .to_owned(),
            )),
            (Some(_), None) => self
                .opt(o, flowset, |v| reference("flowset", v, t.flowset_names))
                .map(|f| f.unwrap_or_default()),
            (None, Some(_)) => {
                let p = self
                    .opt(o, pipe, |v| reference("pipe", v, t.pipe_names))?
                    .unwrap_or_default();
                Ok(t.implicit(p))
            }
        }
    }

    fn matcher(&self, o: &str, m: &Spanned<RawMatch>) -> Result<MatchSpec, ConfigFileError> {
        let r = m.get_ref();
        let spec = MatchSpec {
            src: self.opt(o, &r.src, |v| prefix("match.src", v))?.flatten(),
            dst: self.opt(o, &r.dst, |v| prefix("match.dst", v))?.flatten(),
            proto: self.opt(o, &r.proto, |v| proto("match.proto", v))?,
            src_port: self.opt(o, &r.src_port, |v| ports("match.src_port", v))?,
            dst_port: self.opt(o, &r.dst_port, |v| ports("match.dst_port", v))?,
            dscp: self.opt(o, &r.dscp, |v| dscp("match.dscp", v))?,
            vlan: self.opt(o, &r.vlan, |v| {
                int("match.vlan", v, 0, 4095).map(|x| x as u16)
            })?,
        };
        if let Some(p) = spec.proto {
            if !PORT_PROTOCOLS.contains(&p) {
                let field = if spec.src_port.is_some() {
                    &r.src_port
                } else {
                    &r.dst_port
                };
                if let Some(f) = field {
                    let key = if spec.src_port.is_some() {
                        "match.src_port"
                    } else {
                        "match.dst_port"
                    };
                    return Err(self.err(
                        o,
                        Some(f.span()),
                        format!(
                            "{key}: proto {} has no ports (ports need proto tcp, udp, sctp, dccp or udplite)",
                            proto_name(p)
                        ),
                    ));
                }
            }
        }
        Ok(spec)
    }

    fn default(
        &self,
        d: &Spanned<RawDefault>,
        t: &mut Targets<'_>,
    ) -> Result<DefaultAction, ConfigFileError> {
        let o = "default";
        let r = d.get_ref();
        match &r.action {
            None if r.flowset.is_none() && r.pipe.is_none() => Ok(DefaultAction::Pass),
            None => self
                .target(o, d.span(), &r.flowset, &r.pipe, t)
                .map(DefaultAction::Flowset),
            Some(a) => {
                self.opt(o, &r.action, |v| match v {
                    Value::String(s) if s == "pass" => Ok(()),
                    Value::String(s) => Err(format!(
                        "action = {s:?} is not an action (allowed: \"pass\"; or flowset = \"name\" or pipe = \"name\" instead of action)"
                    )),
                    _ => Err(wrong_type("action", "\"pass\"", v)),
                })?;
                if r.flowset.is_some() || r.pipe.is_some() {
                    return Err(self.err(
                        o,
                        Some(a.span()),
                        "give either action = \"pass\" or a flowset/pipe, not both".to_owned(),
                    ));
                }
                Ok(DefaultAction::Pass)
            }
        }
    }
}

/// Name lookups for rules and `[default]`, and the implicit flowsets they create.
struct Targets<'a> {
    pipe_names: &'a HashMap<String, usize>,
    flowset_names: &'a HashMap<String, usize>,
    pipes: &'a [PipeSpec],
    implicit: HashMap<usize, usize>,
    flowsets: Vec<FlowsetSpec>,
}

impl Targets<'_> {
    /// The implicit flowset of pipe `p`, created on first use.
    fn implicit(&mut self, p: usize) -> usize {
        if let Some(&f) = self.implicit.get(&p) {
            return f;
        }
        let pipe = &self.pipes[p];
        let mut spec = FlowsetSpec::new(format!("pipe:{}", pipe.name), p);
        spec.queue = pipe.queue;
        spec.max_flows = 1;
        let f = self.flowsets.len();
        self.flowsets.push(spec);
        self.implicit.insert(p, f);
        f
    }
}

// ---------------------------------------------------------------------------
// Field parsers: each returns the whole message after the object's name.

/// `dir = "a-to-b" | "b-to-a" | "both"`.
fn dir(v: &Value) -> Result<Dir, Msg> {
    match v {
        Value::String(s) => match s.as_str() {
            "a-to-b" => Ok(Dir::AToB),
            "b-to-a" => Ok(Dir::BToA),
            "both" => Ok(Dir::Both),
            _ => Err(format!(
                "dir = {s:?} is not a direction (allowed: \"a-to-b\", \"b-to-a\", \"both\")"
            )),
        },
        _ => Err(wrong_type("dir", "\"a-to-b\", \"b-to-a\" or \"both\"", v)),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

fn wrong_type(key: &str, expected: &str, v: &Value) -> Msg {
    format!("{key}: expected {expected}, found {}", describe(v))
}

fn out_of_range(key: &str, shown: impl fmt::Display, min: u64, max: u64) -> Msg {
    format!("{key} = {shown} is out of range (allowed {min}..={max})")
}

fn unit_error(key: &str, e: UnitError) -> Msg {
    format!("{key}: {e}")
}

/// An integer in `min..=max`.
fn int(key: &str, v: &Value, min: u64, max: u64) -> Result<u64, Msg> {
    match v {
        Value::Integer(i) => u64::try_from(*i)
            .ok()
            .filter(|x| (min..=max).contains(x))
            .ok_or_else(|| out_of_range(key, i, min, max)),
        _ => Err(wrong_type(key, "an integer", v)),
    }
}

/// A count `1..=max` that fits a `u32`.
fn count(key: &str, v: &Value, max: u32) -> Result<u32, Msg> {
    let n = int(key, v, 1, u64::from(max))?;
    u32::try_from(n).map_err(|_| out_of_range(key, n, 1, u64::from(max)))
}

fn name(v: &Value) -> Result<String, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type("name", "a string", v));
    };
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(s.clone())
    } else {
        Err(format!(
            "name: {s:?} is not a valid name (use 1..={MAX_NAME_LEN} letters, digits, '_', '-' or '.')"
        ))
    }
}

/// A name that must be in `names`.
fn reference(key: &str, v: &Value, names: &HashMap<String, usize>) -> Result<usize, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type(key, "a name", v));
    };
    names
        .get(s)
        .copied()
        .ok_or_else(|| format!("{key} {s:?} is not defined"))
}

fn bandwidth(key: &str, v: &Value) -> Result<Option<u64>, Msg> {
    match v {
        Value::String(s) if s.trim().eq_ignore_ascii_case("unlimited") => Ok(None),
        Value::String(s) => match units::parse_rate(s) {
            Ok(r) => Ok(Some(r)),
            Err(e @ UnitError::Zero { .. }) => Err(format!(
                "{}; write \"unlimited\" for no limit",
                unit_error(key, e)
            )),
            Err(e) => Err(unit_error(key, e)),
        },
        Value::Integer(_) => int(key, v, 1, i64::MAX as u64).map(Some),
        _ => Err(wrong_type(
            key,
            "a rate such as \"100Mbit/s\", or \"unlimited\"",
            v,
        )),
    }
}

/// A duration in ns, at most `max` ns: a string with a unit, or an integer of milliseconds.
fn duration(key: &str, v: &Value, max: u64) -> Result<u64, Msg> {
    let ns = match v {
        Value::String(s) => units::parse_duration(s).map_err(|e| unit_error(key, e))?,
        Value::Integer(i) => {
            let ms = u64::try_from(*i)
                .map_err(|_| format!("{key} = {i} is out of range (durations are not negative)"))?;
            ms.checked_mul(1_000_000)
                .ok_or_else(|| format!("{key} = {i} (milliseconds) is too large"))?
        }
        _ => return Err(wrong_type(key, "a duration such as \"20ms\"", v)),
    };
    if ns > max {
        return Err(format!(
            "{key} = {} is out of range (allowed 0..={})",
            show(v),
            units::format_duration(max)
        ));
    }
    Ok(ns)
}

/// A value as written: strings quoted.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn probability(key: &str, v: &Value) -> Result<f64, Msg> {
    let x = match v {
        Value::Float(f) => *f,
        Value::Integer(i) => *i as f64,
        _ => return Err(wrong_type(key, "a number 0..=1", v)),
    };
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!(
            "{key} = {} is out of range (allowed 0..=1)",
            show(v)
        ))
    }
}

/// Parses a queue limit as written on a command line: packets if all digits
/// ("100"), bytes with a unit ("64KB"); `what` names it in the error.
pub fn parse_queue(what: &str, s: &str) -> Result<QueueSpec, String> {
    queue(what, &Value::String(s.to_string()))
}

/// A queue limit: packets if an integer (or a string of digits), bytes if it has a unit.
fn queue(key: &str, v: &Value) -> Result<QueueSpec, Msg> {
    let max_packets = u64::from(SchedConfig::MAX_PACKETS);
    let packets = |n: u64, shown: &dyn fmt::Display| -> Result<QueueSpec, Msg> {
        if (1..=max_packets).contains(&n) {
            Ok(QueueSpec::Packets(n as u32))
        } else {
            Err(format!(
                "{key} = {shown} is out of range (allowed 1..={max_packets} packets, or bytes with a unit such as \"64KB\")"
            ))
        }
    };
    match v {
        Value::Integer(i) => packets(u64::try_from(*i).unwrap_or(0), i),
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return packets(t.parse().unwrap_or(u64::MAX), &format!("{s:?}"));
            }
            let b = units::parse_size(s).map_err(|e| unit_error(key, e))?;
            if (MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES).contains(&b) {
                Ok(QueueSpec::Bytes(b))
            } else {
                Err(format!(
                    "{key} = {s:?} ({b} bytes) is out of range (allowed {MIN_QUEUE_BYTES}..={MAX_QUEUE_BYTES} bytes)"
                ))
            }
        }
        _ => Err(wrong_type(
            key,
            "a number of packets, or a size such as \"64KB\"",
            v,
        )),
    }
}

/// Bytes in `min..=max`: an integer, or a size with a unit.
fn bytes(key: &str, v: &Value, min: u64, max: u64) -> Result<u64, Msg> {
    match v {
        Value::Integer(_) => int(key, v, min, max),
        Value::String(s) => {
            let b = units::parse_size(s).map_err(|e| unit_error(key, e))?;
            if (min..=max).contains(&b) {
                Ok(b)
            } else {
                Err(format!(
                    "{key} = {s:?} ({b} bytes) is out of range (allowed {min}..={max})"
                ))
            }
        }
        _ => Err(wrong_type(
            key,
            "a number of bytes, or a size such as \"1514B\"",
            v,
        )),
    }
}

fn sched(v: &Value) -> Result<Kind, Msg> {
    match v {
        Value::String(s) => s.parse::<Kind>().map_err(|e| format!("sched: {e}")),
        _ => Err(wrong_type(
            "sched",
            "one of \"fifo\", \"prio\", \"drr\", \"wf2q\", \"qfq\"",
            v,
        )),
    }
}

/// The netmask of a prefix length in 128-bit space.
fn prefix_mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

/// An IPv4 mask in the mapped space: the upper 96 bits are kept.
fn v4_mask(m: u32) -> u128 {
    (u128::MAX << 32) | u128::from(m)
}

fn mask(key: &str, v: &Value) -> Result<MaskSpec, Msg> {
    match v {
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(MaskSpec::NONE),
            "5-tuple" | "5tuple" | "five-tuple" => Ok(MaskSpec::FIVE_TUPLE),
            "all" => Ok(MaskSpec::ALL),
            "src-ip" | "src-host" => Ok(MaskSpec {
                src_ip: u128::MAX,
                ..MaskSpec::NONE
            }),
            "dst-ip" | "dst-host" => Ok(MaskSpec {
                dst_ip: u128::MAX,
                ..MaskSpec::NONE
            }),
            _ => Err(format!(
                "{key}: {s:?} is not a mask (expected \"none\", \"5-tuple\", \"src-ip\", \"dst-ip\", \"all\", or a table such as {{ src_ip = \"0.0.0.255\" }})"
            )),
        },
        Value::Table(t) => {
            let mut m = MaskSpec::NONE;
            for (k, x) in t {
                let key = format!("{key}.{k}");
                match k.as_str() {
                    "src_ip" => m.src_ip = ip_mask(&key, x)?,
                    "dst_ip" => m.dst_ip = ip_mask(&key, x)?,
                    "src_port" => m.src_port = field_mask(&key, x, 0xffff)? as u16,
                    "dst_port" => m.dst_port = field_mask(&key, x, 0xffff)? as u16,
                    "proto" => m.proto = field_mask(&key, x, 0xff)? as u8,
                    "dscp" => m.dscp = field_mask(&key, x, 0x3f)? as u8,
                    "vlan" => m.vlan = field_mask(&key, x, 0x0fff)? as u16,
                    _ => {
                        return Err(format!(
                            "{key}: unknown mask field (allowed: src_ip, dst_ip, src_port, dst_port, proto, dscp, vlan)"
                        ))
                    }
                }
            }
            Ok(m)
        }
        _ => Err(wrong_type(key, "\"none\", \"5-tuple\" or a table of masks", v)),
    }
}

/// A mask of a field at most `max` (all ones): integer, "0x.." or decimal string, or a boolean.
fn field_mask(key: &str, v: &Value, max: u64) -> Result<u64, Msg> {
    let range = || format!("allowed 0..={max} or {max:#x}, or true for all bits");
    let n = match v {
        Value::Boolean(true) => return Ok(max),
        Value::Boolean(false) => return Ok(0),
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::String(s) => parse_uint(s),
        _ => return Err(wrong_type(key, "an integer mask or true", v)),
    };
    match n {
        Some(n) if n <= max => Ok(n),
        Some(_) => Err(format!("{key} = {} is out of range ({})", show(v), range())),
        None => Err(format!("{key}: {} is not a mask ({})", show(v), range())),
    }
}

/// A decimal or `0x` hexadecimal unsigned integer.
fn parse_uint(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()
        }
        Some(_) => None,
        None if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse().ok(),
        None => None,
    }
}

fn ip_mask(key: &str, v: &Value) -> Result<u128, Msg> {
    let bad = || {
        format!(
            "{key}: {} is not an address mask (expected e.g. \"0.0.0.255\", \"0x000000ff\", \"/24\", \"ffff:ffff::\" or true)",
            show(v)
        )
    };
    match v {
        Value::Boolean(true) => Ok(u128::MAX),
        Value::Boolean(false) => Ok(0),
        Value::Integer(i) => u32::try_from(*i).map(v4_mask).map_err(|_| {
            format!(
                "{key} = {i} is out of range (an integer is an IPv4 mask, 0..=0xffffffff; write an IPv6 mask as a string)"
            )
        }),
        Value::String(s) => {
            let t = s.trim();
            if let Some(len) = t.strip_prefix('/') {
                return match len.parse::<u8>() {
                    Ok(n) if n <= 32 => Ok(v4_mask((prefix_mask(n + 96) & 0xffff_ffff) as u32)),
                    Ok(n) if n <= 128 => Ok(prefix_mask(n)),
                    _ => Err(format!(
                        "{key}: {s:?} is not a prefix length (allowed /0../32 for IPv4, /33../128 for IPv6)"
                    )),
                };
            }
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                if h.is_empty() || h.len() > 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                let n = u128::from_str_radix(h, 16).map_err(|_| bad())?;
                return Ok(if h.len() <= 8 {
                    v4_mask(n as u32)
                } else {
                    n
                });
            }
            match t.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => Ok(v4_mask(u32::from(a))),
                Ok(IpAddr::V6(a)) => Ok(u128::from(a)),
                Err(_) => Err(bad()),
            }
        }
        _ => Err(wrong_type(key, "an address mask", v)),
    }
}

fn prefix(key: &str, v: &Value) -> Result<Option<Prefix>, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type(
            key,
            "an address or prefix such as \"10.0.0.0/8\"",
            v,
        ));
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "{key}: {s:?} is not an address or prefix (expected e.g. \"10.0.0.0/8\", \"192.168.1.1\" or \"2001:db8::/32\")"
        )
    };
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t, None),
    };
    let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
    let (full, offset) = match addr {
        IpAddr::V4(_) => (32u8, 96u8),
        IpAddr::V6(_) => (128, 0),
    };
    let len = match len {
        None => full,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(n) if n <= full => n,
            _ => {
                return Err(format!(
                    "{key}: {s:?} has prefix length {l:?} (allowed 0..={full} for {})",
                    if full == 32 { "IPv4" } else { "IPv6" }
                ))
            }
        },
    };
    let p = Prefix {
        addr: addr_u128(addr),
        len: len + offset,
    };
    let net = p.addr & p.mask();
    if net != p.addr {
        let shown = match addr {
            IpAddr::V4(_) => Ipv4Addr::from(net as u32).to_string(),
            IpAddr::V6(_) => Ipv6Addr::from(net).to_string(),
        };
        return Err(format!(
            "{key}: {s:?} has host bits set (did you mean \"{shown}/{len}\"?)"
        ));
    }
    Ok(Some(p))
}

/// Protocols whose headers carry ports.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

const PROTOCOLS: [(&str, u8); 11] = [
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("dccp", 33),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("sctp", 132),
    ("udplite", 136),
];

fn proto_name(p: u8) -> String {
    PROTOCOLS
        .iter()
        .find(|(_, n)| *n == p)
        .map_or_else(|| p.to_string(), |(name, _)| (*name).to_owned())
}

fn proto(key: &str, v: &Value) -> Result<u8, Msg> {
    match v {
        Value::Integer(_) => int(key, v, 0, 255).map(|p| p as u8),
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            if let Some(&(_, n)) = PROTOCOLS.iter().find(|(name, _)| *name == t) {
                return Ok(n);
            }
            match parse_uint(&t) {
                Some(n) if n <= 255 => Ok(n as u8),
                _ => Err(format!(
                    "{key}: {s:?} is not a protocol (expected tcp, udp, icmp, icmpv6, sctp, gre, esp, ah, dccp, udplite, or a number 0..=255)"
                )),
            }
        }
        _ => Err(wrong_type(key, "a protocol name or number", v)),
    }
}

fn ports(key: &str, v: &Value) -> Result<(u16, u16), Msg> {
    let port = |t: &str| -> Option<u16> {
        let t = t.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    match v {
        Value::Integer(_) => int(key, v, 0, 65535).map(|p| (p as u16, p as u16)),
        Value::String(s) => {
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (port(a), port(b)),
                None => (port(s), port(s)),
            };
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
                (Some(lo), Some(hi)) => Err(format!(
                    "{key}: {s:?} is an empty range (low end {lo} > high end {hi})"
                )),
                _ => Err(format!(
                    "{key}: {s:?} is not a port or range (expected e.g. 443 or \"1024-65535\", ports 0..=65535)"
                )),
            }
        }
        _ => Err(wrong_type(
            key,
            "a port or a range such as \"1024-65535\"",
            v,
        )),
    }
}

fn dscp(key: &str, v: &Value) -> Result<u8, Msg> {
    match v {
        Value::Integer(_) => int(key, v, 0, 63).map(|d| d as u8),
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            let named = match t.as_str() {
                "ef" => Some(46),
                "va" | "voice-admit" => Some(44),
                "be" | "df" | "default" => Some(0),
                "le" | "lowest-effort" => Some(1),
                _ => dscp_class(&t),
            };
            if let Some(d) = named {
                return Ok(d);
            }
            match parse_uint(&t) {
                Some(n) if n <= 63 => Ok(n as u8),
                Some(_) => Err(format!("{key} = {s:?} is out of range (allowed 0..=63)")),
                None => Err(format!(
                    "{key}: {s:?} is not a DSCP (expected ef, af11..af43, cs0..cs7, be, le, va, or a number 0..=63)"
                )),
            }
        }
        _ => Err(wrong_type(key, "a DSCP name or number", v)),
    }
}

/// `afXY` (X 1..=4, Y 1..=3) = 8X + 2Y; `csX` (X 0..=7) = 8X.
fn dscp_class(t: &str) -> Option<u8> {
    let d = |c: u8| c.wrapping_sub(b'0');
    match t.as_bytes() {
        [b'a', b'f', x, y] if (1..=4).contains(&d(*x)) && (1..=3).contains(&d(*y)) => {
            Some(8 * d(*x) + 2 * d(*y))
        }
        [b'c', b's', x] if d(*x) <= 7 => Some(8 * d(*x)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Config {
        match from_toml(text) {
            Ok(c) => c,
            Err(e) => panic!("config should parse: {e}\n{text}"),
        }
    }

    fn error(text: &str) -> String {
        from_toml(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    /// Asserts that `text` is rejected with a message containing every part.
    fn rejects(text: &str, parts: &[&str]) {
        let e = error(text);
        for p in parts {
            assert!(e.contains(p), "message {e:?} lacks {p:?}");
        }
    }

    const PIPE: &str = "[[pipe]]\nname = \"wan\"\n";

    #[test]
    fn the_documented_example() {
        let c = parse(
            r#"
[[pipe]]
name = "wan"
bandwidth = "40Mbit/s"
delay = "80ms"
plr = 0.01
queue = "1000KB"
overhead = 24
sched = "qfq"
mask = { src_ip = "0.0.0.255" }

[[flowset]]
name = "web"
pipe = "wan"
mask = "5-tuple"
weight = 10
priority = 0
quantum = "3028B"
lmax = 1514
queue = 50
max_flows = 65536
idle_timeout = "30s"

[[rule]]
flowset = "web"
match = { src = "10.0.0.0/8", dst = "192.168.1.0/24", proto = "tcp", src_port = "1024-65535", dst_port = 443, dscp = 46, vlan = 100 }

[default]
action = "pass"
"#,
        );
        let mut pipe = PipeSpec::new("wan");
        pipe.bandwidth_bps = Some(40_000_000);
        pipe.delay_ns = 80_000_000;
        pipe.loss = LossSpec::Uniform { plr: 0.01 };
        pipe.queue = QueueSpec::Bytes(1_024_000);
        pipe.sched = Kind::Qfq;
        pipe.mask = Some(MaskSpec {
            src_ip: 0xffff_ffff_ffff_ffff_ffff_ffff_0000_00ff,
            ..MaskSpec::NONE
        });
        assert_eq!(c.pipes, vec![pipe]);
        let fs = FlowsetSpec {
            mask: MaskSpec::FIVE_TUPLE,
            weight: Weight::new(10).expect("valid"),
            quantum: Some(Quantum::new(3028).expect("valid")),
            lmax: Lmax::new(1514).expect("valid"),
            ..FlowsetSpec::new("web", 0)
        };
        assert_eq!(c.flowsets, vec![fs]);
        let v4 = |a: [u8; 4]| mapped_v4(Ipv4Addr::from(a));
        assert_eq!(
            c.rules,
            vec![RuleSpec {
                matcher: MatchSpec {
                    src: Some(Prefix {
                        addr: v4([10, 0, 0, 0]),
                        len: 104
                    }),
                    dst: Some(Prefix {
                        addr: v4([192, 168, 1, 0]),
                        len: 120
                    }),
                    proto: Some(6),
                    src_port: Some((1024, 65535)),
                    dst_port: Some((443, 443)),
                    dscp: Some(46),
                    vlan: Some(100),
                },
                flowset: 0,
                dir: Dir::AToB,
            }]
        );
        assert_eq!(c.default, DefaultAction::Pass);
        assert_eq!(c.pipe_index("wan"), Some(0));
        assert_eq!(c.flowset_index("web"), Some(0));
        assert_eq!(c.flowset_index("nope"), None);
        let again: Config = "[[pipe]]\nname = \"x\"".parse().expect("valid");
        assert_eq!(again.pipes[0].name, "x");
    }

    #[test]
    fn defaults() {
        let c = parse("[[pipe]]\nname = \"p\"\n[[flowset]]\nname = \"f\"\npipe = \"p\"\n");
        assert_eq!(c.pipes, vec![PipeSpec::new("p")]);
        assert_eq!(c.flowsets, vec![FlowsetSpec::new("f", 0)]);
        assert!(c.rules.is_empty());
        assert_eq!(c.default, DefaultAction::Pass);
        let p = &c.pipes[0];
        assert_eq!(p.bandwidth_bps, None);
        assert_eq!(p.delay_ns, 0);
        assert_eq!(p.loss, LossSpec::None);
        assert_eq!(p.queue, QueueSpec::Packets(50));
        assert_eq!(p.overhead_bytes, 24);
        assert_eq!(p.sched, Kind::Wf2q);
        assert_eq!(p.mask, None);
        let f = &c.flowsets[0];
        assert_eq!(f.mask, MaskSpec::NONE);
        assert_eq!(f.weight.get(), 1);
        assert_eq!(f.priority.get(), 0);
        assert_eq!(f.quantum, None);
        assert_eq!(f.lmax.get(), 65_536);
        assert_eq!(f.queue, QueueSpec::Packets(50));
        assert_eq!(f.max_flows, 65_536);
        assert_eq!(f.idle_timeout_ns, 30_000_000_000);
        assert_eq!(
            parse(&format!("{PIPE}[default]\n")).default,
            DefaultAction::Pass
        );
    }

    #[test]
    fn value_forms() {
        let c = parse(
            r#"
[[pipe]]
name = "a"
bandwidth = 64000
delay = 80
queue = "50KBytes"
overhead = "0B"
sched = "DRR"
mask = "none"
[[pipe]]
name = "b"
bandwidth = "unlimited"
delay = "1.5ms"
queue = "100"
plr = 0
[[pipe]]
name = "c"
bandwidth = "1.5Gbit/s"
plr = 1
mask = { dst_ip = "/24", dst_port = true, proto = "0xff", dscp = 63, vlan = "4095", src_ip = "ffff:ffff::" }
max_instances = 10
idle_timeout = "1min"
"#,
        );
        let [a, b, cc] = &c.pipes[..] else {
            panic!("three pipes")
        };
        assert_eq!(a.bandwidth_bps, Some(64_000));
        assert_eq!(a.delay_ns, 80_000_000);
        assert_eq!(a.queue, QueueSpec::Bytes(51_200));
        assert_eq!(a.overhead_bytes, 0);
        assert_eq!(a.sched, Kind::Drr);
        assert_eq!(a.mask, None, "an all-zero pipe mask is no mask");
        assert_eq!(b.bandwidth_bps, None);
        assert_eq!(b.delay_ns, 1_500_000);
        assert_eq!(b.queue, QueueSpec::Packets(100));
        assert_eq!(b.loss, LossSpec::None, "plr = 0 is no loss");
        assert_eq!(cc.bandwidth_bps, Some(1_500_000_000));
        assert_eq!(cc.loss, LossSpec::Uniform { plr: 1.0 });
        assert_eq!(cc.max_instances, 10);
        assert_eq!(cc.idle_timeout_ns, 60_000_000_000);
        assert_eq!(
            cc.mask,
            Some(MaskSpec {
                src_ip: 0xffff_ffff << 96,
                dst_ip: (u128::MAX << 32) | 0xffff_ff00,
                src_port: 0,
                dst_port: 0xffff,
                proto: 0xff,
                dscp: 63,
                vlan: 4095,
            })
        );
    }

    #[test]
    fn ip_masks() {
        let m = |s: &str| -> u128 {
            let c = parse(&format!(
                "[[pipe]]\nname = \"p\"\nmask = {{ src_ip = {s} }}\n"
            ));
            c.pipes[0].mask.map_or(0, |m| m.src_ip)
        };
        let v4 = |x: u32| (u128::MAX << 32) | u128::from(x);
        assert_eq!(m("\"0.0.0.255\""), v4(0xff));
        assert_eq!(m("\"0x000000ff\""), v4(0xff));
        assert_eq!(m("0x000000ff"), v4(0xff));
        assert_eq!(m("255"), v4(0xff));
        assert_eq!(m("\"/24\""), v4(0xffff_ff00));
        assert_eq!(m("\"/32\""), u128::MAX);
        assert_eq!(m("\"/0\""), v4(0));
        assert_eq!(m("\"/48\""), u128::MAX << 80);
        assert_eq!(m("\"/128\""), u128::MAX);
        assert_eq!(m("\"ffff:ffff::\""), 0xffff_ffff << 96);
        assert_eq!(m("\"0xffffffffffffffff0000000000000000\""), u128::MAX << 64);
        assert_eq!(m("true"), u128::MAX);
        assert_eq!(m("false"), 0);
        // The v4 prefix-length mask equals the mask of the Prefix of that length.
        let p = Prefix {
            addr: 0,
            len: 96 + 24,
        };
        assert_eq!(m("\"/24\""), p.mask());
        for bad in [
            "\"/129\"",
            "\"/x\"",
            "\"0x\"",
            "\"0x1ffffffffffffffffffffffffffffffff\"",
            "\"1.2.3\"",
            "-1",
            "4294967296",
            "1.5",
        ] {
            let e = error(&format!(
                "[[pipe]]\nname = \"p\"\nmask = {{ src_ip = {bad} }}\n"
            ));
            assert!(e.contains("pipe \"p\": mask.src_ip"), "{bad}: {e}");
        }
    }

    #[test]
    fn field_masks() {
        rejects(
            &format!("{PIPE}mask = {{ dscp = 64 }}"),
            &["pipe \"wan\"", "mask.dscp = 64 is out of range", "0..=63"],
        );
        rejects(
            &format!("{PIPE}mask = {{ vlan = \"0x1000\" }}"),
            &["mask.vlan = \"0x1000\" is out of range", "0..=4095"],
        );
        rejects(
            &format!("{PIPE}mask = {{ src_port = \"ports\" }}"),
            &["mask.src_port: \"ports\" is not a mask"],
        );
        rejects(
            &format!("{PIPE}mask = {{ sport = 1 }}"),
            &["mask.sport: unknown mask field", "src_port"],
        );
        rejects(
            &format!("{PIPE}mask = \"4-tuple\""),
            &["mask: \"4-tuple\" is not a mask", "5-tuple"],
        );
        rejects(&format!("{PIPE}mask = 5"), &["mask: expected"]);
        let c = parse(&format!(
            "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\nmask = \"src-ip\"\n\
             [[flowset]]\nname = \"g\"\npipe = \"wan\"\nmask = \"all\"\n"
        ));
        assert_eq!(c.flowsets[0].mask.src_ip, u128::MAX);
        assert_eq!(c.flowsets[0].mask.dst_ip, 0);
        assert_eq!(c.flowsets[1].mask, MaskSpec::ALL);
    }

    #[test]
    fn pipe_errors_name_object_field_and_value() {
        let e = error(&format!("{PIPE}bandwidth = \"40Mbot/s\"\n"));
        assert_eq!(
            e,
            r#"line 3, column 13: pipe "wan": bandwidth: "40Mbot/s" is not a rate (expected e.g. "100Mbit/s")"#
        );
        rejects(
            &format!("{PIPE}bandwidth = \"0bit/s\""),
            &["bandwidth: \"0bit/s\"", "more than 0", "unlimited"],
        );
        rejects(
            &format!("{PIPE}bandwidth = 0"),
            &["bandwidth = 0 is out of range (allowed 1..="],
        );
        rejects(
            &format!("{PIPE}bandwidth = true"),
            &["bandwidth: expected a rate", "found boolean true"],
        );
        rejects(
            &format!("{PIPE}plr = 1.5"),
            &["pipe \"wan\": plr = 1.5 is out of range (allowed 0..=1)"],
        );
        rejects(
            &format!("{PIPE}plr = -0.1"),
            &["plr = -0.1 is out of range"],
        );
        rejects(&format!("{PIPE}plr = nan"), &["plr = nan is out of range"]);
        rejects(&format!("{PIPE}plr = \"1%\""), &["plr: expected a number"]);
        rejects(
            &format!("{PIPE}delay = \"2h\""),
            &["delay = \"2h\" is out of range (allowed 0..=1h)"],
        );
        rejects(
            &format!("{PIPE}delay = -5"),
            &["delay = -5 is out of range"],
        );
        rejects(
            &format!("{PIPE}delay = \"5m\""),
            &["delay: \"5m\" is ambiguous", "\"5min\"", "\"5ms\""],
        );
        rejects(
            &format!("{PIPE}queue = 0"),
            &["queue = 0 is out of range (allowed 1..=67108864 packets"],
        );
        rejects(
            &format!("{PIPE}queue = \"10B\""),
            &["queue = \"10B\" (10 bytes) is out of range (allowed 64..=4294967295 bytes)"],
        );
        rejects(
            &format!("{PIPE}queue = \"4GB\""),
            &["queue = \"4GB\" (4294967296 bytes) is out of range"],
        );
        rejects(
            &format!("{PIPE}queue = \"99999999999999999999999\""),
            &["queue = \"99999999999999999999999\" is out of range"],
        );
        rejects(
            &format!("{PIPE}queue = \"50 slots\""),
            &["queue: \"50 slots\" is not a size"],
        );
        rejects(
            &format!("{PIPE}overhead = 2000"),
            &["overhead = 2000 is out of range (allowed 0..=1024)"],
        );
        rejects(
            &format!("{PIPE}sched = \"cbq\""),
            &["sched: unknown scheduler 'cbq'", "qfq"],
        );
        rejects(
            &format!("{PIPE}max_instances = 0"),
            &["max_instances = 0 is out of range (allowed 1..=16777216)"],
        );
        rejects(
            &format!("{PIPE}idle_timeout = \"soon\""),
            &["idle_timeout: \"soon\" is not a duration"],
        );
    }

    #[test]
    fn gilbert_elliott() {
        let c = parse(&format!(
            "{PIPE}[pipe.gilbert_elliott]\np = 0.01\nr = 0.3\nk = 0.99\nh = 0.2\n"
        ));
        assert_eq!(
            c.pipes[0].loss,
            LossSpec::GilbertElliott {
                p: 0.01,
                r: 0.3,
                k: 0.99,
                h: 0.2
            }
        );
        let c = parse(&format!("{PIPE}gilbert_elliott = {{ p = 0.1, r = 0.5 }}\n"));
        assert_eq!(
            c.pipes[0].loss,
            LossSpec::GilbertElliott {
                p: 0.1,
                r: 0.5,
                k: 1.0,
                h: 0.0
            }
        );
        rejects(
            &format!("{PIPE}gilbert_elliott = {{ p = 0.1 }}"),
            &["pipe \"wan\": gilbert_elliott.r: missing"],
        );
        rejects(
            &format!("{PIPE}gilbert_elliott = {{ p = 2, r = 0.5 }}"),
            &["gilbert_elliott.p = 2 is out of range (allowed 0..=1)"],
        );
        rejects(
            &format!("{PIPE}plr = 0.1\ngilbert_elliott = {{ p = 0.1, r = 0.5 }}"),
            &["plr and gilbert_elliott", "give one"],
        );
        rejects(
            &format!("{PIPE}gilbert_elliott = {{ p = 0.1, r = 0.5, q = 1 }}"),
            &["unknown field `q`", "line 3"],
        );
    }

    #[test]
    fn flowset_errors() {
        let fs =
            |body: &str| format!("{PIPE}[[flowset]]\nname = \"web\"\npipe = \"wan\"\n{body}\n");
        assert_eq!(
            error(&fs("weight = 0")),
            r#"line 6, column 10: flowset "web": weight = 0 is out of range (allowed 1..=65536)"#
        );
        rejects(
            &fs("weight = 70000"),
            &["flowset \"web\": weight = 70000 is out of range (allowed 1..=65536)"],
        );
        rejects(
            &fs("weight = -3"),
            &["weight = -3 is out of range (allowed 1..=65536)"],
        );
        rejects(
            &fs("weight = \"ten\""),
            &["weight: expected an integer, found string \"ten\""],
        );
        rejects(
            &fs("priority = 16"),
            &["priority = 16 is out of range (allowed 0..=15)"],
        );
        rejects(
            &fs("quantum = 10"),
            &["quantum = 10 is out of range (allowed 64..=16777216)"],
        );
        rejects(
            &fs("quantum = \"32MB\""),
            &["quantum = \"32MB\" (33554432 bytes) is out of range (allowed 64..=16777216)"],
        );
        rejects(
            &fs("lmax = 63"),
            &["lmax = 63 is out of range (allowed 64..=65536)"],
        );
        rejects(
            &fs("max_flows = 0"),
            &["max_flows = 0 is out of range (allowed 1..=16777216)"],
        );
        rejects(&fs("queue = -1"), &["queue = -1 is out of range"]);
        rejects(
            &fs("idle_timeout = 1.5"),
            &["idle_timeout: expected a duration"],
        );
        rejects(
            &fs("mask = \"per-host\""),
            &["flowset \"web\": mask: \"per-host\" is not a mask"],
        );
        let c = parse(&fs(
            "quantum = \"3028B\"\nlmax = \"1.5KB\"\nqueue = \"64KB\"\nidle_timeout = 0",
        ));
        let f = &c.flowsets[0];
        assert_eq!(f.quantum.map(Quantum::get), Some(3028));
        assert_eq!(f.lmax.get(), 1536);
        assert_eq!(f.queue, QueueSpec::Bytes(65_536));
        assert_eq!(f.idle_timeout_ns, 0);
        rejects(
            &format!("{PIPE}[[flowset]]\nname = \"web\"\npipe = \"nope\"\n"),
            &["line 5, column 8: flowset \"web\": pipe \"nope\" is not defined"],
        );
        rejects(
            &format!("{PIPE}[[flowset]]\nname = \"web\"\n"),
            &["flowset \"web\": pipe: missing"],
        );
    }

    #[test]
    fn names() {
        rejects(
            "[[pipe]]\nbandwidth = \"1Mbit/s\"\n",
            &["line 1, column 1: pipe 1: name: missing"],
        );
        rejects(
            "[[pipe]]\nname = \"a\"\n[[pipe]]\nname = \"a b\"\n",
            &["pipe 2: name: \"a b\" is not a valid name"],
        );
        rejects(
            "[[pipe]]\nname = \"\"\n",
            &["pipe 1: name: \"\" is not a valid name"],
        );
        rejects(
            "[[pipe]]\nname = 1\n",
            &["pipe 1: name: expected a string, found integer 1"],
        );
        rejects(
            &format!("[[pipe]]\nname = \"{}\"\n", "x".repeat(65)),
            &["is not a valid name"],
        );
        rejects(
            "[[pipe]]\nname = \"a\"\n[[pipe]]\nname = \"a\"\n",
            &["line 4, column 8: pipe \"a\": name: \"a\" is already the name of pipe 1"],
        );
        rejects(
            &format!(
                "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[flowset]]\nname = \"f\"\npipe = \"wan\"\n"
            ),
            &["flowset \"f\": name: \"f\" is already the name of flowset 1"],
        );
        rejects(
            &format!("{PIPE}[[flowset]]\nname = \"pipe:wan\"\npipe = \"wan\"\n"),
            &["flowset 1: name: \"pipe:wan\" is not a valid name"],
        );
        // A pipe and a flowset may share a name: they are different namespaces.
        let c = parse(&format!(
            "{PIPE}[[flowset]]\nname = \"wan\"\npipe = \"wan\"\n"
        ));
        assert_eq!(c.flowsets[0].name, "wan");
    }

    #[test]
    fn structure_errors_carry_line_and_column() {
        rejects("", &["config: no [[pipe]] is defined"]);
        rejects(
            "[[flowset]]\nname = \"f\"\npipe = \"p\"\n",
            &["no [[pipe]]"],
        );
        let e = from_toml(&format!("{PIPE}bandwidht = \"1Mbit/s\"\n")).expect_err("unknown key");
        assert!(matches!(e, ConfigFileError::Toml { .. }), "{e:?}");
        assert_eq!(e.location(), Some(Location { line: 3, column: 1 }));
        assert!(e.to_string().contains("unknown field `bandwidht`"), "{e}");
        rejects(
            "[[pipe]]\nname = \"wan\"\nbandwidth = \n",
            &["line 3, column"],
        );
        rejects("[[pipe]]\nname = \"wan\"\n[[pipe]\n", &["line 3, column"]);
        rejects(
            "[pipe]\nname = \"wan\"\n",
            &["line 1, column 1: ", "write [[pipe]]"],
        );
        rejects("pipes = 1\n", &["unknown field `pipes`"]);
        rejects(
            &format!("{PIPE}[[rule]]\npipe = \"wan\"\nmatch = {{ sport = 1 }}\n"),
            &["unknown field `sport`", "line 5"],
        );
        rejects(
            &format!("{PIPE}[default]\nverdict = \"pass\"\n"),
            &["unknown field `verdict`"],
        );
        // Columns count characters, not bytes.
        let e =
            from_toml("[[pipe]]\nname = \"wan\" # é\nbandwidth = \"µ\"\n").expect_err("bad rate");
        assert_eq!(
            e.location(),
            Some(Location {
                line: 3,
                column: 13
            })
        );
        let e = from_toml("[[pipe]]\nname = \"é\"\n").expect_err("bad name");
        assert_eq!(e.location(), Some(Location { line: 2, column: 8 }));
    }

    #[test]
    fn rules_and_matches() {
        let r = |m: &str| {
            let c = parse(&format!(
                "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[rule]]\nflowset = \"f\"\nmatch = {{ {m} }}\n"
            ));
            c.rules[0].matcher
        };
        let v4 = |a: [u8; 4]| mapped_v4(Ipv4Addr::from(a));
        assert_eq!(r(""), MatchSpec::ANY);
        assert_eq!(
            r("src = \"10.1.2.3\"").src,
            Some(Prefix {
                addr: v4([10, 1, 2, 3]),
                len: 128
            })
        );
        assert_eq!(r("src = \"any\"").src, None);
        assert_eq!(
            r("dst = \"2001:db8::/32\"").dst,
            Some(Prefix {
                addr: 0x2001_0db8 << 96,
                len: 32
            })
        );
        assert_eq!(
            r("dst = \"0.0.0.0/0\"").dst,
            Some(Prefix {
                addr: v4([0, 0, 0, 0]),
                len: 96
            })
        );
        assert_eq!(r("dst = \"::/0\"").dst, Some(Prefix { addr: 0, len: 0 }));
        for (p, n) in [
            ("\"tcp\"", 6),
            ("\"UDP\"", 17),
            ("\"icmp\"", 1),
            ("\"icmpv6\"", 58),
            ("\"ipv6-icmp\"", 58),
            ("\"sctp\"", 132),
            ("\"gre\"", 47),
            ("\"47\"", 47),
            ("89", 89),
        ] {
            assert_eq!(r(&format!("proto = {p}")).proto, Some(n), "{p}");
        }
        for (d, n) in [
            ("\"ef\"", 46),
            ("\"EF\"", 46),
            ("\"af11\"", 10),
            ("\"af12\"", 12),
            ("\"af13\"", 14),
            ("\"af21\"", 18),
            ("\"af31\"", 26),
            ("\"af41\"", 34),
            ("\"af43\"", 38),
            ("\"cs0\"", 0),
            ("\"cs1\"", 8),
            ("\"cs6\"", 48),
            ("\"cs7\"", 56),
            ("\"be\"", 0),
            ("\"le\"", 1),
            ("\"va\"", 44),
            ("\"0x2e\"", 46),
            ("\"46\"", 46),
            ("63", 63),
        ] {
            assert_eq!(r(&format!("dscp = {d}")).dscp, Some(n), "{d}");
        }
        assert_eq!(r("src_port = 53").src_port, Some((53, 53)));
        assert_eq!(r("src_port = \"53\"").src_port, Some((53, 53)));
        assert_eq!(r("dst_port = \"0-1023\"").dst_port, Some((0, 1023)));
        assert_eq!(r("dst_port = \"80 - 80\"").dst_port, Some((80, 80)));
        assert_eq!(r("vlan = 4095").vlan, Some(4095));
        assert_eq!(
            r("proto = \"udp\", src_port = 1").proto,
            Some(17),
            "udp has ports"
        );

        let bad = |m: &str, parts: &[&str]| {
            rejects(
                &format!(
                    "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[rule]]\nflowset = \"f\"\n\
                     [[rule]]\nflowset = \"f\"\nmatch = {{ {m} }}\n"
                ),
                parts,
            )
        };
        bad(
            "src = \"10.0.0.1/8\"",
            &["rule 2: match.src: \"10.0.0.1/8\" has host bits set (did you mean \"10.0.0.0/8\"?)"],
        );
        bad(
            "dst = \"2001:db8::1/32\"",
            &["match.dst: \"2001:db8::1/32\" has host bits set (did you mean \"2001:db8::/32\"?)"],
        );
        bad(
            "src = \"10.0.0.0/33\"",
            &["match.src: \"10.0.0.0/33\" has prefix length \"33\" (allowed 0..=32 for IPv4)"],
        );
        bad(
            "src = \"10.0.0/8\"",
            &["match.src: \"10.0.0/8\" is not an address or prefix"],
        );
        bad("src = 10", &["match.src: expected an address"]);
        bad(
            "dst_port = \"2000-1000\"",
            &["rule 2: match.dst_port: \"2000-1000\" is an empty range (low end 2000 > high end 1000)"],
        );
        bad(
            "dst_port = 70000",
            &["match.dst_port = 70000 is out of range (allowed 0..=65535)"],
        );
        bad(
            "dst_port = \"1-70000\"",
            &["match.dst_port: \"1-70000\" is not a port or range"],
        );
        bad(
            "dst_port = \"http\"",
            &["match.dst_port: \"http\" is not a port"],
        );
        bad(
            "proto = \"tcpp\"",
            &["match.proto: \"tcpp\" is not a protocol", "tcp, udp"],
        );
        bad(
            "proto = 256",
            &["match.proto = 256 is out of range (allowed 0..=255)"],
        );
        bad(
            "proto = \"icmp\", dst_port = 80",
            &["match.dst_port: proto icmp has no ports"],
        );
        bad(
            "dscp = 64",
            &["match.dscp = 64 is out of range (allowed 0..=63)"],
        );
        bad(
            "dscp = \"af44\"",
            &["match.dscp: \"af44\" is not a DSCP", "ef, af11..af43"],
        );
        bad("dscp = \"cs8\"", &["is not a DSCP"]);
        bad(
            "dscp = \"99\"",
            &["match.dscp = \"99\" is out of range (allowed 0..=63)"],
        );
        bad(
            "vlan = 4096",
            &["match.vlan = 4096 is out of range (allowed 0..=4095)"],
        );
    }

    #[test]
    fn rule_targets_and_implicit_flowsets() {
        rejects(
            &format!("{PIPE}[[rule]]\npipe = \"wan\"\n[[rule]]\npipe = \"wan\"\n[[rule]]\nflowset = \"nope\"\n"),
            &["line 8, column 11: rule 3: flowset \"nope\" is not defined"],
        );
        rejects(
            &format!("{PIPE}[[rule]]\npipe = \"lan\"\n"),
            &["rule 1: pipe \"lan\" is not defined"],
        );
        rejects(
            &format!("{PIPE}[[rule]]\nmatch = {{ proto = \"tcp\" }}\n"),
            &["rule 1: flowset: missing"],
        );
        rejects(
            &format!("{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[rule]]\nflowset = \"f\"\npipe = \"wan\"\n"),
            &["rule 1: give either flowset or pipe, not both"],
        );
        rejects(
            &format!("{PIPE}[default]\naction = \"drop\"\n"),
            &["default: action = \"drop\" is not an action"],
        );
        rejects(
            &format!("{PIPE}[default]\naction = \"pass\"\npipe = \"wan\"\n"),
            &["default: give either action"],
        );
        rejects(
            &format!("{PIPE}[default]\nflowset = \"x\"\n"),
            &["default: flowset \"x\" is not defined"],
        );

        let c = parse(
            r#"
[[pipe]]
name = "a"
queue = "20KB"
mask = "src-ip"
[[pipe]]
name = "b"
[[flowset]]
name = "f"
pipe = "b"
[[rule]]
pipe = "a"
match = { proto = "udp" }
[[rule]]
flowset = "f"
[[rule]]
pipe = "a"
[default]
pipe = "b"
"#,
        );
        assert_eq!(c.flowsets.len(), 3);
        let a = &c.flowsets[1];
        assert_eq!(a.name, "pipe:a");
        assert_eq!(a.pipe, 0);
        assert_eq!(a.queue, QueueSpec::Bytes(20_480));
        assert_eq!(a.mask, MaskSpec::NONE);
        assert_eq!(a.max_flows, 1);
        assert_eq!(c.flowsets[2].name, "pipe:b");
        assert_eq!(
            c.rules.iter().map(|r| r.flowset).collect::<Vec<_>>(),
            vec![1, 0, 1]
        );
        assert_eq!(c.default, DefaultAction::Flowset(2));
        assert_eq!(c.flowset_index("pipe:b"), Some(2));
        let c = parse(&format!(
            "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[default]\nflowset = \"f\"\n"
        ));
        assert_eq!(c.default, DefaultAction::Flowset(0));
    }

    #[test]
    fn prefixes() {
        let p = Prefix {
            addr: mapped_v4(Ipv4Addr::new(10, 0, 0, 0)),
            len: 104,
        };
        assert!(p.contains(mapped_v4(Ipv4Addr::new(10, 200, 3, 4))));
        assert!(!p.contains(mapped_v4(Ipv4Addr::new(11, 0, 0, 0))));
        assert!(!p.contains(10 << 24), "IPv4-compatible ::a00:0 is not IPv4");
        let all = Prefix { addr: 0, len: 0 };
        assert!(all.contains(u128::MAX));
        assert_eq!(
            addr_u128("::ffff:1.2.3.4".parse().expect("addr")),
            addr_u128("1.2.3.4".parse().expect("addr"))
        );
    }

    fn examples_dir() -> std::path::PathBuf {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
    }

    #[test]
    fn every_example_parses_and_validates() {
        let mut n = 0;
        let entries = std::fs::read_dir(examples_dir()).expect("examples/ exists");
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            if let Err(e) = from_toml(&text) {
                panic!("{}: {e}", path.display());
            }
            n += 1;
        }
        assert!(n >= 9, "expected at least 9 examples, found {n}");
    }

    #[test]
    fn the_round_trip_and_chain_examples_mean_what_their_commands_say() {
        // dnctl pipe 1 config bw 20Mbit/s delay 40ms (in recv A); pipe 2 2Mbit/s (in recv B)
        let c = parse(include_str!("../../examples/09-round-trip.toml"));
        let down = c.for_direction(Direction::AToB);
        let up = c.for_direction(Direction::BToA);
        assert_eq!(
            (
                down.pipes.len(),
                down.pipes[0].bandwidth_bps,
                down.pipes[0].delay_ns
            ),
            (1, Some(20_000_000), 40_000_000)
        );
        assert_eq!(
            (
                up.pipes.len(),
                up.pipes[0].bandwidth_bps,
                up.pipes[0].delay_ns
            ),
            (1, Some(2_000_000), 40_000_000)
        );
        assert_eq!((down.rules.len(), up.rules.len()), (1, 1));
        // pipe 1 (per host, 1 Mbit/s) then queue 2 (per host) of pipe 2 (10 Mbit/s, QFQ)
        let c = parse(include_str!("../../examples/10-chained-pipes.toml"));
        assert_eq!(c.pipes[0].bandwidth_bps, Some(1_000_000));
        assert!(c.pipes[0].mask.is_some());
        let next = c.pipes[0].next.expect("chained");
        assert_eq!(c.flowsets[next].name, "hosts");
        assert_eq!(
            c.pipes[c.flowsets[next].pipe].bandwidth_bps,
            Some(10_000_000)
        );
        assert_eq!(c.pipes[1].sched, Kind::Qfq);
    }

    #[test]
    fn examples_mean_what_their_commands_say() {
        let bw = |c: &Config| c.pipes[0].bandwidth_bps;
        // dnctl pipe 1 config bw 300Kbit/s queue 50KBytes
        let c = parse(include_str!("../../examples/01-bw-queue.toml"));
        assert_eq!(bw(&c), Some(300_000));
        assert_eq!(c.pipes[0].queue, QueueSpec::Bytes(51_200));
        assert_eq!(c.default, DefaultAction::Flowset(0));
        assert_eq!(c.flowsets[0].queue, QueueSpec::Bytes(51_200));
        // dnctl pipe 3 config delay 80ms bw 40Mbit/s plr 0.01 queue 1000Kbytes
        let c = parse(include_str!("../../examples/02-wan-emulation.toml"));
        assert_eq!(bw(&c), Some(40_000_000));
        assert_eq!(c.pipes[0].delay_ns, 80_000_000);
        assert_eq!(c.pipes[0].loss, LossSpec::Uniform { plr: 0.01 });
        assert_eq!(c.pipes[0].queue, QueueSpec::Bytes(1_024_000));
        // dnctl pipe 1 config mask src-ip 0x000000ff bw 200Kbit/s
        let c = parse(include_str!("../../examples/03-per-host-pipe.toml"));
        assert_eq!(bw(&c), Some(200_000));
        assert_eq!(
            c.pipes[0].mask.map(|m| m.src_ip),
            Some((u128::MAX << 32) | 0xff)
        );
        // dnctl sched 1 config type qfq + three weighted queues
        let c = parse(include_str!("../../examples/04-dummynet-qfq-weights.toml"));
        assert_eq!(c.pipes[0].sched, Kind::Qfq);
        assert_eq!(bw(&c), Some(100_000_000));
        let w: Vec<u32> = c.flowsets.iter().map(|f| f.weight.get()).collect();
        assert_eq!(w, vec![100, 10, 1]);
        assert_eq!(c.rules.len(), 3);
        // tc qfq
        let c = parse(include_str!("../../examples/05-tc-qfq.toml"));
        assert_eq!(c.pipes[0].sched, Kind::Qfq);
        let w: Vec<u32> = c.flowsets.iter().map(|f| f.weight.get()).collect();
        assert_eq!(w, vec![100, 10, 1]);
        // tc drr
        let c = parse(include_str!("../../examples/06-tc-drr.toml"));
        assert_eq!(c.pipes[0].sched, Kind::Drr);
        assert!(c.flowsets.iter().all(|f| f.quantum.is_some()));
        // HTB as one pipe with weights proportional to the rates
        let c = parse(include_str!("../../examples/07-htb-as-weights.toml"));
        assert_eq!(bw(&c), Some(100_000_000));
        let w: Vec<u32> = c.flowsets.iter().map(|f| f.weight.get()).collect();
        assert_eq!(w, vec![60, 30, 10]);
        // DSCP EF to the top priority
        let c = parse(include_str!("../../examples/08-dscp-ef-priority.toml"));
        assert_eq!(c.pipes[0].sched, Kind::Prio);
        assert_eq!(c.rules[0].matcher.dscp, Some(46));
        let ef = c.rules[0].flowset;
        assert_eq!(c.flowsets[ef].priority.get(), 0);
        assert!(c
            .flowsets
            .iter()
            .all(|f| f.priority.get() > 0 || f.name == c.flowsets[ef].name));
        // default.toml spells out the defaults
        let c = parse(include_str!("../../examples/default.toml"));
        assert_eq!(c.pipes[0], PipeSpec::new(c.pipes[0].name.clone()));
        assert_eq!(
            c.flowsets[0],
            FlowsetSpec::new(c.flowsets[0].name.clone(), 0)
        );
        assert_eq!(c.rules[0].matcher, MatchSpec::ANY);
        assert_eq!(c.default, DefaultAction::Pass);
    }

    /// Deletes, duplicates or replaces characters of `text` at the given places.
    fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(at, op, c) in edits {
            if chars.is_empty() {
                break;
            }
            let i = at % chars.len();
            match op % 3 {
                0 => {
                    chars.remove(i);
                }
                1 => chars.insert(i, c),
                _ => chars[i] = c,
            }
        }
        chars.into_iter().collect()
    }

    #[test]
    fn rules_and_the_default_have_a_direction_and_each_direction_its_config() {
        let c = parse(
            r#"
[[pipe]]
name = "down"
bandwidth = "20Mbit/s"
delay = "40ms"

[[pipe]]
name = "up"
bandwidth = "2Mbit/s"
delay = "40ms"

[[pipe]]
name = "both"
delay = "1ms"

[[pipe]]
name = "unused"

[[rule]]
pipe = "up"
dir = "b-to-a"
match = { proto = "udp" }

[[rule]]
pipe = "both"
dir = "both"
match = { proto = "icmp" }

[default]
pipe = "down"
"#,
        );
        assert_eq!(
            c.rules.iter().map(|r| r.dir).collect::<Vec<_>>(),
            vec![Dir::BToA, Dir::Both]
        );
        assert_eq!(c.default_dir, Dir::AToB);
        assert!(c.uses(Direction::AToB) && c.uses(Direction::BToA));
        let ab = c.for_direction(Direction::AToB);
        let names = |c: &Config| c.pipes.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&ab), ["down", "both", "unused"]);
        assert_eq!(ab.rules.len(), 1, "the icmp rule");
        assert_eq!(ab.flowsets[ab.rules[0].flowset].name, "pipe:both");
        assert_eq!(ab.flowsets[ab.rules[0].flowset].pipe, 1);
        match ab.default {
            DefaultAction::Flowset(f) => assert_eq!(ab.pipes[ab.flowsets[f].pipe].name, "down"),
            DefaultAction::Pass => panic!("A→B keeps its default"),
        }
        let ba = c.for_direction(Direction::BToA);
        assert_eq!(names(&ba), ["up", "both"]);
        assert_eq!(ba.rules.len(), 2);
        assert_eq!(ba.default, DefaultAction::Pass, "the default is A→B's");
        assert!(ba.rules.iter().all(|r| r.dir == Dir::Both));
        // A configuration without directions is all A→B, as before.
        let old = parse("[[pipe]]\nname = \"p\"\n[[rule]]\npipe = \"p\"\n");
        assert!(old.uses(Direction::AToB) && !old.uses(Direction::BToA));
        assert_eq!(old.for_direction(Direction::AToB), {
            let mut o = old.clone();
            o.rules[0].dir = Dir::Both;
            o.default_dir = Dir::Both;
            o
        });
        rejects(
            &format!("{PIPE}[[rule]]\npipe = \"wan\"\ndir = \"in\"\n"),
            &[
                "rule 1",
                "dir = \"in\"",
                "a-to-b",
                "b-to-a",
                "both",
                "line 5",
            ],
        );
        rejects(
            &format!("{PIPE}[default]\npipe = \"wan\"\ndir = 1\n"),
            &["default", "dir: expected", "integer 1"],
        );
    }

    #[test]
    fn chains_name_a_pipe_or_a_flowset_and_may_not_loop() {
        let c = parse(
            r#"
[[pipe]]
name = "a"
next = "b"

[[pipe]]
name = "b"
next = { flowset = "fc" }

[[pipe]]
name = "c"

[[flowset]]
name = "fc"
pipe = "c"
mask = "src-ip"

[[rule]]
pipe = "a"
"#,
        );
        // next = "b": b's implicit flowset, created for the chain.
        let fb = c.pipes[0].next.expect("a has a next");
        assert_eq!(c.flowsets[fb].name, "pipe:b");
        assert_eq!(c.flowsets[fb].pipe, 1);
        assert_eq!(c.pipes[1].next, c.flowset_index("fc"));
        assert_eq!(c.pipes[2].next, None);
        // A direction takes the whole chain along.
        let ab = c.for_direction(Direction::AToB);
        assert_eq!(ab.pipes.len(), 3);
        let ba = c.for_direction(Direction::BToA);
        assert!(ba.pipes.is_empty() && ba.rules.is_empty());
        // Loops.
        rejects(
            "[[pipe]]\nname = \"a\"\nnext = \"b\"\n[[pipe]]\nname = \"b\"\nnext = \"a\"\n",
            &[
                "pipe \"a\"",
                "next: the chain a -> b -> a leads back to \"a\"",
                "line 3",
            ],
        );
        rejects(
            "[[pipe]]\nname = \"a\"\nnext = \"a\"\n",
            &["pipe \"a\"", "a -> a", "cycle"],
        );
        rejects(
            "[[pipe]]\nname = \"a\"\nnext = \"zz\"\n",
            &["pipe \"a\"", "next \"zz\" is not defined"],
        );
        rejects(
            "[[pipe]]\nname = \"a\"\nnext = { pipe = \"a\" }\n",
            &["next.pipe: unknown key"],
        );
        rejects("[[pipe]]\nname = \"a\"\nnext = 3\n", &["next: expected"]);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = from_toml(&s);
        }

        #[test]
        fn mutated_examples_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((0usize..10_000, 0u8..3, proptest::char::any()), 1..6),
        ) {
            let base = [
                include_str!("../../examples/02-wan-emulation.toml"),
                include_str!("../../examples/04-dummynet-qfq-weights.toml"),
                include_str!("../../examples/default.toml"),
            ][which];
            let text = mutate(base, &edits);
            if let Err(e) = from_toml(&text) {
                // Every error says where or what.
                let msg = e.to_string();
                prop_assert!(!msg.is_empty());
                if let Some(at) = e.location() {
                    prop_assert!(at.line >= 1 && at.line <= text.lines().count() + 1, "{}", msg);
                }
            }
        }

        #[test]
        fn rendered_values_parse_back_exactly(
            bw in 1u64..=u64::MAX,
            delay in 0u64..=MAX_DELAY_NS,
            qbytes in MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES,
            idle in 0u64..=u64::MAX,
            w in 1u64..=65_536,
        ) {
            let text = format!(
                "[[pipe]]\nname = \"p\"\nbandwidth = \"{}\"\ndelay = \"{}\"\nqueue = \"{}\"\n\
                 [[flowset]]\nname = \"f\"\npipe = \"p\"\nweight = {w}\nidle_timeout = \"{}\"\n",
                units::format_rate(bw),
                units::format_duration(delay),
                units::format_size(qbytes),
                units::format_duration(idle),
            );
            let c = from_toml(&text).expect("valid");
            prop_assert_eq!(c.pipes[0].bandwidth_bps, Some(bw));
            prop_assert_eq!(c.pipes[0].delay_ns, delay);
            prop_assert_eq!(c.pipes[0].queue, QueueSpec::Bytes(qbytes));
            prop_assert_eq!(c.flowsets[0].idle_timeout_ns, idle);
            prop_assert_eq!(u64::from(c.flowsets[0].weight.get()), w);
        }

        #[test]
        fn random_match_values_never_panic(
            src in "[0-9a-f.:/]{0,20}",
            port in "[0-9 -]{0,12}",
            dscp in "[a-z0-9]{0,5}",
            proto in "[a-z0-9-]{0,8}",
        ) {
            let text = format!(
                "[[pipe]]\nname = \"p\"\n[[rule]]\npipe = \"p\"\n\
                 match = {{ src = {src:?}, dst_port = {port:?}, dscp = {dscp:?}, proto = {proto:?} }}\n"
            );
            if let Err(e) = from_toml(&text) {
                prop_assert!(e.to_string().contains("rule 1: match."), "{}", e);
            }
        }
    }
}
