//! Validated configuration newtypes, the packet abstraction and the error types.
//!
//! Every value a user can set is checked once, here, into a newtype whose
//! constructor names the bad value and the allowed range. After that the
//! schedulers never re-check it on the packet path.

use std::fmt;

/// A small integer naming a flow: the index of its slot in the scheduler's slab.
///
/// Ids are handed out by [`crate::Scheduler::add_flow`] and reused after
/// [`crate::Scheduler::remove_flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u32);

impl FlowId {
    /// The slab index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow {}", self.0)
    }
}

/// What the scheduler needs to know about a packet: its length on the wire, in bytes.
///
/// The datapath stores 16-byte UMEM descriptors; tests store lengths or
/// small structs. The length must not change while the packet is queued.
#[allow(clippy::len_without_is_empty)] // a packet is never empty; `len` is its wire length
pub trait Packet {
    /// Length in bytes, as charged to the flow's share.
    fn len(&self) -> u32;
    /// Whether the packet is ECN-capable (ECT(0), ECT(1) or already CE): an
    /// AQM with ECN on marks such a packet instead of dropping it. Packets
    /// that carry no ECN field (the default) are never marked.
    #[inline]
    fn ecn_capable(&self) -> bool {
        false
    }
    /// Marks the packet Congestion Experienced. Called only for packets whose
    /// [`Packet::ecn_capable`] is true; the datapath rewrites the frame
    /// (IPv4 TOS with its checksum, IPv6 traffic class) when it sends it.
    #[inline]
    fn set_ce(&mut self) {}
    /// The emulator parsed the packet's frame ([`crate::emu::Emulator::enqueue`]):
    /// a packet that can be marked keeps what it needs from the headers (the
    /// datapath: the ECN field and where the IP header starts).
    #[inline]
    fn parsed(&mut self, _h: &crate::wire::Headers) {}
    /// Where the network header starts in the packet's bytes (0 when
    /// unknown or without a link layer): a trace-driven link charges the
    /// bytes from there on, as Mahimahi sees IP packets.
    #[inline]
    fn l3_offset(&self) -> u32 {
        0
    }
}

impl Packet for u32 {
    #[inline]
    fn len(&self) -> u32 {
        *self
    }
}

/// A configuration value outside its allowed range, or an operation the
/// scheduler's current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A numeric parameter is out of range.
    #[error("{what} = {value} is out of range (allowed {min}..={max})")]
    OutOfRange {
        /// The parameter's name as a user writes it.
        what: &'static str,
        /// The rejected value.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// The scheduler already holds `max` flows.
    #[error("too many flows: the scheduler was built for at most {max}")]
    TooManyFlows {
        /// The configured maximum.
        max: u32,
    },
    /// The flow id names no configured flow.
    #[error("{0} is not configured")]
    UnknownFlow(FlowId),
    /// A flow cannot be removed or changed while packets are queued on it.
    #[error("{flow} still has {packets} packets queued; drain it first")]
    FlowBusy {
        /// The flow.
        flow: FlowId,
        /// Packets still queued.
        packets: u32,
    },
    /// The combination of options is not supported by this algorithm.
    #[error("{0}")]
    Unsupported(&'static str),
}

macro_rules! ranged_u32 {
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:expr, $max:expr, $default:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u32);

        impl $name {
            /// Smallest allowed value.
            pub const MIN: u32 = $min;
            /// Largest allowed value.
            pub const MAX: u32 = $max;
            /// Validates `v` against `MIN..=MAX`.
            pub fn new(v: u64) -> Result<Self, ConfigError> {
                if (Self::MIN as u64..=Self::MAX as u64).contains(&v) {
                    Ok(Self(v as u32))
                } else {
                    Err(ConfigError::OutOfRange {
                        what: $what,
                        value: v,
                        min: Self::MIN as u64,
                        max: Self::MAX as u64,
                    })
                }
            }
            /// The validated value.
            #[inline]
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self($default)
            }
        }
    };
}

ranged_u32!(
    /// A flow's weight: its share of the link is `weight / sum of weights`.
    /// 1..=65536, like dummynet's `weight`, without its cap on the sum.
    Weight, "weight", 1, 65_536, 1
);
ranged_u32!(
    /// Strict priority level for PRIO: 0 is served first (as in Linux `prio`), 15 last.
    Priority, "priority", 0, 15, 0
);
ranged_u32!(
    /// DRR quantum in bytes: what a flow may send per round.
    /// Without one, DRR uses `weight * DEFAULT_QUANTUM_UNIT`.
    Quantum, "quantum", 64, 16 * 1024 * 1024, 1514
);
ranged_u32!(
    /// The longest packet a flow may send, in bytes.
    ///
    /// QFQ places a flow in its group from `lmax / weight` and its bound is
    /// proportional to it; a packet longer than the flow's lmax is dropped
    /// with [`DropReason::BadLength`] (and counted) by every algorithm, never
    /// enqueued, because QFQ's slot arithmetic assumes `len <= lmax`
    /// (Linux's QFQ corrupted its state when that was violated).
    /// The default is the maximum, so only a user who lowers it sees such drops.
    Lmax, "lmax", 64, 65_536, 65_536
);

/// Per-flow queue limits. A packet that would exceed either is dropped
/// with [`DropReason::FlowLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimit {
    /// Most packets queued on the flow.
    pub packets: u32,
    /// Most bytes queued on the flow.
    pub bytes: u32,
}

impl QueueLimit {
    /// No per-flow limit (the global limit still applies).
    pub const UNLIMITED: QueueLimit = QueueLimit {
        packets: u32::MAX,
        bytes: u32::MAX,
    };

    /// Validates a limit: both values at least 1.
    pub fn new(packets: u32, bytes: u32) -> Result<Self, ConfigError> {
        if packets == 0 {
            return Err(ConfigError::OutOfRange {
                what: "queue limit (packets)",
                value: 0,
                min: 1,
                max: u32::MAX as u64,
            });
        }
        if bytes == 0 {
            return Err(ConfigError::OutOfRange {
                what: "queue limit (bytes)",
                value: 0,
                min: 1,
                max: u32::MAX as u64,
            });
        }
        Ok(Self { packets, bytes })
    }
}

impl Default for QueueLimit {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// Everything an algorithm may need to know about one flow.
/// Each algorithm reads the fields it uses and ignores the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowConfig {
    /// DRR, WF2Q+, QFQ: the flow's share.
    pub weight: Weight,
    /// PRIO: the strict priority level.
    pub priority: Priority,
    /// DRR: bytes per round; `None` means `weight * DEFAULT_QUANTUM_UNIT`.
    pub quantum: Option<Quantum>,
    /// Longest packet accepted on this flow.
    pub lmax: Lmax,
    /// Per-flow queue limit.
    pub limit: QueueLimit,
    /// The flow queue's active queue management.
    pub aqm: crate::algo::aqm::Aqm,
    /// HTB: the leaf class the flow belongs to (its index in the tree).
    pub class: u32,
    /// The flow's own rate limit, bit/s (0: none): its packets leave at
    /// most this fast, whatever the scheduler's order (any algorithm).
    pub rate_bps: u64,
}

impl FlowConfig {
    /// A flow of the given weight with every other field at its default.
    pub fn weighted(weight: Weight) -> Self {
        Self {
            weight,
            ..Self::default()
        }
    }
}

/// What to do when the scheduler's global packet or byte limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the arriving packet.
    #[default]
    TailDrop,
    /// Longest Queue Drop (Suter et al., 1998): push out the tail packet of
    /// the flow with the most packets queued, and accept the arriving one —
    /// unless the arriving flow would itself be (one of) the longest, in
    /// which case the arriving packet is dropped. Because the victim queue
    /// then always holds at least two packets, removing its tail never
    /// changes any flow's head packet, so no algorithm's timestamps move.
    DropLongest,
}

/// Scheduler-wide configuration, fixed when the scheduler is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedConfig {
    /// Most flows that can be configured at once (slab capacity, allocated up front).
    pub max_flows: u32,
    /// Most packets queued in total (packet pool capacity, allocated up front).
    pub limit_packets: u32,
    /// Most bytes queued in total.
    pub limit_bytes: u64,
    /// What happens at the global limit.
    pub overflow: OverflowPolicy,
}

impl SchedConfig {
    /// Largest `max_flows` accepted: flow ids must stay below the list terminator.
    pub const MAX_FLOWS: u32 = 1 << 24;
    /// Largest pool accepted.
    pub const MAX_PACKETS: u32 = 1 << 26;

    /// Checks the ranges (the constructor of every scheduler calls this).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=Self::MAX_FLOWS).contains(&self.max_flows) {
            return Err(ConfigError::OutOfRange {
                what: "max_flows",
                value: self.max_flows as u64,
                min: 1,
                max: Self::MAX_FLOWS as u64,
            });
        }
        if !(1..=Self::MAX_PACKETS).contains(&self.limit_packets) {
            return Err(ConfigError::OutOfRange {
                what: "limit_packets",
                value: self.limit_packets as u64,
                min: 1,
                max: Self::MAX_PACKETS as u64,
            });
        }
        if self.limit_bytes < Lmax::MAX as u64 {
            return Err(ConfigError::OutOfRange {
                what: "limit_bytes",
                value: self.limit_bytes,
                min: Lmax::MAX as u64,
                max: u64::MAX,
            });
        }
        Ok(())
    }
}

impl Default for SchedConfig {
    fn default() -> Self {
        Self {
            max_flows: 65_536,
            limit_packets: 65_536,
            limit_bytes: u64::MAX,
            overflow: OverflowPolicy::TailDrop,
        }
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The flow id names no configured flow.
    UnknownFlow,
    /// Zero bytes, or longer than the flow's [`Lmax`].
    BadLength,
    /// The flow's own packet or byte limit.
    FlowLimit,
    /// The scheduler's global packet or byte limit (tail drop).
    GlobalLimit,
    /// Pushed out of the longest queue to make room ([`OverflowPolicy::DropLongest`]).
    PushedOut,
    /// Dropped by the flow's active queue management (CoDel at dequeue).
    Aqm,
}

impl DropReason {
    /// All reasons, in the order of [`DropCounters::by_reason`].
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::UnknownFlow,
        DropReason::BadLength,
        DropReason::FlowLimit,
        DropReason::GlobalLimit,
        DropReason::PushedOut,
        DropReason::Aqm,
    ];
    /// Number of reasons.
    pub const COUNT: usize = 6;

    /// A short lowercase name for stats output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::UnknownFlow => "unknown_flow",
            DropReason::BadLength => "bad_length",
            DropReason::FlowLimit => "flow_limit",
            DropReason::GlobalLimit => "global_limit",
            DropReason::PushedOut => "pushed_out",
            DropReason::Aqm => "aqm",
        }
    }
}

/// One dropped packet, handed back to the caller (who owns its buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped<P> {
    /// The packet: the offered one, or for [`DropReason::PushedOut`] the victim.
    pub pkt: P,
    /// The flow the dropped packet belonged to.
    pub flow: FlowId,
    /// Why.
    pub reason: DropReason,
}

/// A packet leaving the scheduler, with the time it spent queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure<P> {
    /// Its flow.
    pub flow: FlowId,
    /// The packet (marked CE if queue management marked it).
    pub pkt: P,
    /// Its sojourn time: from its enqueue to this dequeue, in ns (the two
    /// `now_ns` the scheduler was given).
    pub sojourn_ns: u64,
    /// Queue management marked it CE at this dequeue.
    pub marked: bool,
}

/// Packets and bytes queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Packets.
    pub packets: u32,
    /// Bytes.
    pub bytes: u64,
}

/// Cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounters {
    /// Packets accepted by `enqueue`.
    pub enqueued: u64,
    /// Packets returned by `dequeue`.
    pub dequeued: u64,
    /// Drops, indexed like [`DropReason::ALL`].
    pub by_reason: [u64; DropReason::COUNT],
    /// ECN-capable packets marked CE by queue management instead of being
    /// dropped (at arrival, then queued; or at dequeue, then delivered).
    pub marked: u64,
}

impl DropCounters {
    /// Drops for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.by_reason[reason as usize]
    }
    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.by_reason.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newtypes_reject_out_of_range_with_a_message() {
        assert!(Weight::new(0).is_err());
        assert_eq!(Weight::new(65_536).map(Weight::get), Ok(65_536));
        let e = Weight::new(70_000).expect_err("out of range");
        assert_eq!(
            e.to_string(),
            "weight = 70000 is out of range (allowed 1..=65536)"
        );
        assert!(Lmax::new(63).is_err());
        assert!(Priority::new(16).is_err());
        assert!(Quantum::new(10).is_err());
        assert!(QueueLimit::new(0, 10).is_err());
        assert!(QueueLimit::new(1, 0).is_err());
    }

    #[test]
    fn sched_config_validation() {
        assert!(SchedConfig::default().validate().is_ok());
        let bad = SchedConfig {
            max_flows: 0,
            ..SchedConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = SchedConfig {
            limit_bytes: 100,
            ..SchedConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
