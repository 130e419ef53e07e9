//! The schedulers: the one [`Scheduler`] trait and its contract, the plug-in
//! contract an algorithm implements ([`plugin`], this project's
//! `dn_sched.h`), the [`engine`] that does the queueing for every algorithm,
//! and one file per algorithm. [`build`] makes an [`AnySched`] from a
//! [`Kind`] and a validated [`SchedConfig`].

pub mod aqm;
pub mod drr;
pub mod engine;
pub mod fifo;
pub mod fq_codel;
pub mod htb;
pub mod plugin;
pub mod prio;
pub mod qfq;
pub mod queue;
pub mod timeheap;
pub mod vtheap;
pub mod wf2q;
pub mod wheel;

use crate::types::{
    Backlog, ConfigError, Departure, DropCounters, Dropped, FlowConfig, FlowId, OverflowPolicy,
    Packet, SchedConfig,
};
use engine::Engine;

/// A packet scheduler: per-flow queues and the rule that decides which flow
/// sends next.
///
/// # Contract (every algorithm)
/// - **Flows.** `add_flow` configures a flow and returns its id (a small
///   integer, the slab index; ids are reused after `remove_flow`).
///   `configure_flow` and `remove_flow` need the flow to be idle (no packets
///   queued) and fail with [`ConfigError::FlowBusy`] otherwise. A rejected
///   configuration changes nothing.
/// - **Enqueue** takes ownership of `pkt`. `Ok(())`: the packet is queued.
///   `Err(d)`: exactly one packet was dropped and is handed back in `d.pkt`,
///   with its flow and the reason. That is the offered packet, except for
///   [`crate::DropReason::PushedOut`], where the offered packet *was* queued and
///   `d.pkt` is another flow's packet pushed out to make room. So every call
///   consumes one packet and returns at most one: nothing is ever lost or
///   duplicated, and drops happen only at the configured limits (flow limit,
///   global limit, `lmax`) or for an unknown flow.
/// - **Dequeue** returns the next packet and its flow. Every flow scheduler
///   here is *work-conserving*: `dequeue` returns `None` only when nothing
///   is queued (a link's rate is the pipe's business). The exception is a
///   shaper, HTB ([`htb`]): its `dequeue` returns `None` while every
///   backlogged class is over its limits, and [`Scheduler::next_ready`]
///   says when one will not be; `now_ns = u64::MAX` drains it, limits
///   ignored.
/// - **Queue management.** `dequeue` takes the next packet as the algorithm
///   orders them, whatever the flows' [`crate::algo::aqm::Aqm`] (the caller's
///   drain and reload use it). `dequeue_managed` is the sending path: each
///   head packet is first put to its flow's queue management, which may mark
///   it CE or drop it; drops are handed to `dropped` (counted under
///   [`crate::DropReason::Aqm`]) and the next packet is looked at, so that
///   the call returns `None` only when nothing is queued. It also returns how
///   long the packet was queued (from the `now_ns` of its `enqueue`).
/// - **Order.** Packets of one flow leave in the order they were accepted.
/// - **Peek** returns what the next `dequeue` will return, provided nothing is
///   enqueued or reconfigured in between. It takes `&mut self` because some
///   algorithms (DRR) settle their choice lazily; it does not change what
///   will be served.
/// - **Time.** `now_ns` is the caller's clock in nanoseconds. The work-conserving
///   algorithms here order packets by virtual time and do not depend on it.
pub trait Scheduler<P: Packet> {
    /// The algorithm's name as written on the command line.
    fn name(&self) -> &'static str;
    /// Configures a new flow.
    fn add_flow(&mut self, cfg: FlowConfig) -> Result<FlowId, ConfigError>;
    /// Changes an idle flow's configuration.
    fn configure_flow(&mut self, flow: FlowId, cfg: FlowConfig) -> Result<(), ConfigError>;
    /// Removes an idle flow; its id may be handed out again.
    fn remove_flow(&mut self, flow: FlowId) -> Result<(), ConfigError>;
    /// Offers a packet to a flow. See the contract above.
    fn enqueue(&mut self, now_ns: u64, flow: FlowId, pkt: P) -> Result<(), Dropped<P>>;
    /// Takes the next packet to send.
    #[must_use]
    fn dequeue(&mut self, now_ns: u64) -> Option<(FlowId, P)>;
    /// Takes the next packet to send under the flows' queue management; see
    /// the contract above.
    #[must_use]
    fn dequeue_managed(
        &mut self,
        now_ns: u64,
        dropped: &mut dyn FnMut(Dropped<P>),
    ) -> Option<Departure<P>>;
    /// Looks at the next packet to send without taking it.
    fn peek(&mut self, now_ns: u64) -> Option<(FlowId, &P)>;
    /// Everything queued.
    fn backlog(&self) -> Backlog;
    /// One flow's queue, `None` if the flow is not configured.
    fn flow_backlog(&self, flow: FlowId) -> Option<Backlog>;
    /// Cumulative enqueue/dequeue/drop counters.
    fn counters(&self) -> DropCounters;
    /// Number of configured flows.
    fn flows(&self) -> u32;
    /// A shaper ([`htb`]) whose `dequeue` found nothing it may send while
    /// packets are queued: the instant one may go (`None`: the algorithm
    /// is work-conserving, or one may go now).
    fn next_ready(&self) -> Option<u64> {
        None
    }
}

/// The algorithms, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One queue in arrival order.
    Fifo,
    /// Strict priority levels, round robin within a level.
    Prio,
    /// Deficit round robin.
    Drr,
    /// WF2Q+ (exact, heap-based).
    Wf2q,
    /// Quick Fair Queueing.
    Qfq,
    /// FQ-CoDel: DRR over new and old flow lists, new flows first (CoDel on
    /// each flow is the flows' queue management, on by default).
    FqCodel,
}

impl Kind {
    /// Every kind, in the order used by reports.
    pub const ALL: [Kind; 6] = [
        Kind::Fifo,
        Kind::Prio,
        Kind::Drr,
        Kind::Wf2q,
        Kind::Qfq,
        Kind::FqCodel,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fifo => "fifo",
            Kind::Prio => "prio",
            Kind::Drr => "drr",
            Kind::Wf2q => "wf2q",
            Kind::Qfq => "qfq",
            Kind::FqCodel => "fq_codel",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fifo" => Ok(Kind::Fifo),
            "prio" => Ok(Kind::Prio),
            "drr" => Ok(Kind::Drr),
            "wf2q" | "wf2q+" | "wf2qp" => Ok(Kind::Wf2q),
            "qfq" => Ok(Kind::Qfq),
            "fq_codel" | "fq-codel" | "fqcodel" => Ok(Kind::FqCodel),
            other => Err(format!(
                "unknown scheduler '{other}' (expected one of: fifo, prio, drr, wf2q, qfq, fq_codel)"
            )),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// FIFO scheduler over packets `P`.
pub type Fifo<P> = Engine<P, fifo::Fifo>;
/// PRIO scheduler over packets `P`.
pub type Prio<P> = Engine<P, prio::Prio>;
/// DRR scheduler over packets `P`.
pub type Drr<P> = Engine<P, drr::Drr>;
/// WF2Q+ scheduler over packets `P`.
pub type Wf2q<P> = Engine<P, wf2q::Wf2q>;
/// QFQ scheduler over packets `P`.
pub type Qfq<P> = Engine<P, qfq::Qfq>;
/// FQ-CoDel's flow scheduler over packets `P` (CoDel comes with the flows'
/// [`aqm::Aqm`]).
pub type FqCodel<P> = Engine<P, fq_codel::FqCodel>;
/// FQ-CoDel with longest-queue-drop (as Linux's, at the global limit).
pub type FqCodelLqd<P> = Engine<P, fq_codel::FqCodel, true>;
/// HTB with DRR in each leaf.
pub type HtbDrr<P> = Engine<P, htb::Htb<drr::Drr>>;
/// HTB with QFQ in each leaf.
pub type HtbQfq<P> = Engine<P, htb::Htb<qfq::Qfq>>;
/// HTB with FQ-CoDel's flow scheduler in each leaf.
pub type HtbFqCodel<P> = Engine<P, htb::Htb<fq_codel::FqCodel>>;
/// HTB with PRIO in each leaf.
pub type HtbPrio<P> = Engine<P, htb::Htb<prio::Prio>>;
/// PRIO with longest-queue-drop ([`OverflowPolicy::DropLongest`]).
pub type PrioLqd<P> = Engine<P, prio::Prio, true>;
/// DRR with longest-queue-drop.
pub type DrrLqd<P> = Engine<P, drr::Drr, true>;
/// WF2Q+ with longest-queue-drop.
pub type Wf2qLqd<P> = Engine<P, wf2q::Wf2q, true>;
/// QFQ with longest-queue-drop.
pub type QfqLqd<P> = Engine<P, qfq::Qfq, true>;

/// Any of the algorithms, chosen at run time. A plain enum (not a trait
/// object) so the per-packet dispatch is one predictable branch.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum AnySched<P: Packet + Copy + Default> {
    /// FIFO.
    Fifo(Fifo<P>),
    /// PRIO.
    Prio(Prio<P>),
    /// DRR.
    Drr(Drr<P>),
    /// WF2Q+.
    Wf2q(Wf2q<P>),
    /// QFQ.
    Qfq(Qfq<P>),
    /// PRIO, longest-queue-drop.
    PrioLqd(PrioLqd<P>),
    /// DRR, longest-queue-drop.
    DrrLqd(DrrLqd<P>),
    /// WF2Q+, longest-queue-drop.
    Wf2qLqd(Wf2qLqd<P>),
    /// QFQ, longest-queue-drop.
    QfqLqd(QfqLqd<P>),
    /// FQ-CoDel.
    FqCodel(FqCodel<P>),
    /// FQ-CoDel, longest-queue-drop.
    FqCodelLqd(FqCodelLqd<P>),
    /// HTB classes, DRR in each leaf.
    HtbDrr(HtbDrr<P>),
    /// HTB classes, QFQ in each leaf.
    HtbQfq(HtbQfq<P>),
    /// HTB classes, FQ-CoDel in each leaf.
    HtbFqCodel(HtbFqCodel<P>),
    /// HTB classes, PRIO in each leaf.
    HtbPrio(HtbPrio<P>),
}

/// Builds a scheduler of the given kind, with the overflow policy of `cfg`
/// (the drop-longest engines are separate types, see [`Engine`]).
pub fn build<P: Packet + Copy + Default>(
    kind: Kind,
    cfg: SchedConfig,
) -> Result<AnySched<P>, ConfigError> {
    let lqd = cfg.overflow == OverflowPolicy::DropLongest;
    Ok(match (kind, lqd) {
        // FIFO refuses drop-longest (Engine::new says why).
        (Kind::Fifo, _) => AnySched::Fifo(Engine::new(cfg)?),
        (Kind::Prio, false) => AnySched::Prio(Engine::new(cfg)?),
        (Kind::Drr, false) => AnySched::Drr(Engine::new(cfg)?),
        (Kind::Wf2q, false) => AnySched::Wf2q(Engine::new(cfg)?),
        (Kind::Qfq, false) => AnySched::Qfq(Engine::new(cfg)?),
        (Kind::Prio, true) => AnySched::PrioLqd(Engine::new(cfg)?),
        (Kind::Drr, true) => AnySched::DrrLqd(Engine::new(cfg)?),
        (Kind::Wf2q, true) => AnySched::Wf2qLqd(Engine::new(cfg)?),
        (Kind::Qfq, true) => AnySched::QfqLqd(Engine::new(cfg)?),
        (Kind::FqCodel, false) => AnySched::FqCodel(Engine::new(cfg)?),
        (Kind::FqCodel, true) => AnySched::FqCodelLqd(Engine::new(cfg)?),
    })
}

/// Builds an HTB class tree over `kind` in each leaf (DRR, QFQ, FQ-CoDel
/// or PRIO: the leaves share the flow slab and packet pool, and FIFO's
/// ring and WF2Q+'s heaps are sized for the whole scheduler, once per
/// leaf — a flowset without a mask is one FIFO queue under any of them).
/// Tail drop only.
pub fn build_tree<P: Packet + Copy + Default>(
    kind: Kind,
    cfg: SchedConfig,
    tree: &htb::Tree,
) -> Result<AnySched<P>, ConfigError> {
    if cfg.overflow == OverflowPolicy::DropLongest {
        return Err(ConfigError::Unsupported(
            "a class tree drops at the tail: drop-longest is not available with classes",
        ));
    }
    Ok(match kind {
        Kind::Drr => AnySched::HtbDrr(Engine::with_algorithm(cfg, |c| {
            htb::Htb::with_tree(c, tree)
        })?),
        Kind::Qfq => AnySched::HtbQfq(Engine::with_algorithm(cfg, |c| {
            htb::Htb::with_tree(c, tree)
        })?),
        Kind::FqCodel => AnySched::HtbFqCodel(Engine::with_algorithm(cfg, |c| {
            htb::Htb::with_tree(c, tree)
        })?),
        Kind::Prio => AnySched::HtbPrio(Engine::with_algorithm(cfg, |c| {
            htb::Htb::with_tree(c, tree)
        })?),
        Kind::Fifo | Kind::Wf2q => {
            return Err(ConfigError::Unsupported(
                "inside classes the flow scheduler is drr, qfq, fq_codel or prio (a flowset without a mask is one FIFO queue under any of them)",
            ))
        }
    })
}

/// An HTB tree's view of its classes, whatever the leaves' algorithm.
pub trait ClassTree {
    /// Classes in the tree.
    fn classes(&self) -> usize;
    /// Class `i`'s state and counters.
    fn class(&self, i: usize) -> Option<htb::ClassView>;
}

impl<A: plugin::Algorithm> ClassTree for htb::Htb<A> {
    fn classes(&self) -> usize {
        htb::Htb::classes(self)
    }
    fn class(&self, i: usize) -> Option<htb::ClassView> {
        htb::Htb::class(self, i)
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnySched::Fifo($s) => $e,
            AnySched::Prio($s) => $e,
            AnySched::Drr($s) => $e,
            AnySched::Wf2q($s) => $e,
            AnySched::Qfq($s) => $e,
            AnySched::PrioLqd($s) => $e,
            AnySched::DrrLqd($s) => $e,
            AnySched::Wf2qLqd($s) => $e,
            AnySched::QfqLqd($s) => $e,
            AnySched::FqCodel($s) => $e,
            AnySched::FqCodelLqd($s) => $e,
            AnySched::HtbDrr($s) => $e,
            AnySched::HtbQfq($s) => $e,
            AnySched::HtbFqCodel($s) => $e,
            AnySched::HtbPrio($s) => $e,
        }
    };
}

impl<P: Packet + Copy + Default> Scheduler<P> for AnySched<P> {
    fn name(&self) -> &'static str {
        dispatch!(self, s => s.name())
    }
    fn add_flow(&mut self, cfg: FlowConfig) -> Result<FlowId, ConfigError> {
        dispatch!(self, s => s.add_flow(cfg))
    }
    fn configure_flow(&mut self, flow: FlowId, cfg: FlowConfig) -> Result<(), ConfigError> {
        dispatch!(self, s => s.configure_flow(flow, cfg))
    }
    fn remove_flow(&mut self, flow: FlowId) -> Result<(), ConfigError> {
        dispatch!(self, s => s.remove_flow(flow))
    }
    #[inline]
    fn enqueue(&mut self, now_ns: u64, flow: FlowId, pkt: P) -> Result<(), Dropped<P>> {
        dispatch!(self, s => s.enqueue(now_ns, flow, pkt))
    }
    #[inline]
    fn dequeue(&mut self, now_ns: u64) -> Option<(FlowId, P)> {
        dispatch!(self, s => s.dequeue(now_ns))
    }
    #[inline]
    fn dequeue_managed(
        &mut self,
        now_ns: u64,
        dropped: &mut dyn FnMut(Dropped<P>),
    ) -> Option<Departure<P>> {
        dispatch!(self, s => s.dequeue_managed(now_ns, dropped))
    }
    fn peek(&mut self, now_ns: u64) -> Option<(FlowId, &P)> {
        dispatch!(self, s => s.peek(now_ns))
    }
    fn backlog(&self) -> Backlog {
        dispatch!(self, s => s.backlog())
    }
    fn flow_backlog(&self, flow: FlowId) -> Option<Backlog> {
        dispatch!(self, s => s.flow_backlog(flow))
    }
    fn counters(&self) -> DropCounters {
        dispatch!(self, s => s.counters())
    }
    fn flows(&self) -> u32 {
        dispatch!(self, s => s.flows())
    }
    #[inline]
    fn next_ready(&self) -> Option<u64> {
        dispatch!(self, s => s.next_ready())
    }
}

impl<P: Packet + Copy + Default> AnySched<P> {
    /// The configuration it was built with.
    pub fn config(&self) -> &SchedConfig {
        dispatch!(self, s => s.config())
    }

    /// Packets queue management marked CE so far (one field of
    /// [`Scheduler::counters`], cheaply).
    #[inline]
    pub fn marked(&self) -> u64 {
        dispatch!(self, s => s.marked())
    }

    /// See [`Engine::reserve_aqm`].
    pub fn reserve_aqm(&mut self) {
        dispatch!(self, s => s.reserve_aqm())
    }

    /// See [`Engine::reserve_pacing`].
    pub fn reserve_pacing(&mut self) {
        dispatch!(self, s => s.reserve_pacing())
    }

    /// See [`Engine::aqm_summary`].
    pub fn aqm_summary(&self) -> engine::AqmSummary {
        dispatch!(self, s => s.aqm_summary())
    }

    /// See [`Engine::aqm_flow`].
    pub fn aqm_flow(&self, flow: FlowId) -> Option<&aqm::AqmFlow> {
        dispatch!(self, s => s.aqm_flow(flow))
    }

    /// The class tree, if this is HTB.
    pub fn tree(&self) -> Option<&dyn ClassTree> {
        match self {
            AnySched::HtbDrr(s) => Some(s.algorithm()),
            AnySched::HtbQfq(s) => Some(s.algorithm()),
            AnySched::HtbFqCodel(s) => Some(s.algorithm()),
            AnySched::HtbPrio(s) => Some(s.algorithm()),
            _ => None,
        }
    }

    /// Test hook: see [`crate::Algorithm::set_virtual_time`].
    pub fn set_virtual_time(&mut self, v: u64) -> Result<(), ConfigError> {
        dispatch!(self, s => s.set_virtual_time(v))
    }
}
