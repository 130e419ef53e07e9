//! The scheduler plug-in contract (this project's `dn_sched.h`): an
//! algorithm keeps its per-flow fields next to the common queue in a slab
//! slot ([`Flow`]) and decides which flow sends next ([`Algorithm`]); the
//! [`super::engine::Engine`] does the queueing.

use super::queue::FlowQueue;
use crate::types::{ConfigError, FlowConfig, SchedConfig};

/// A slab slot: the common queue first, then the algorithm's own fields
/// (as dummynet's `struct qfq_class` embeds `struct dn_queue`).
#[derive(Debug, Clone, Default)]
pub struct Flow<F> {
    /// Common queue state.
    pub q: FlowQueue,
    /// The algorithm's per-flow state.
    pub a: F,
}

/// The scheduler plug-in API. An algorithm keeps its own per-flow fields in
/// `Flow::a` and its global state in `self`; [`super::engine::Engine`] calls it at these
/// points, always with the queue already updated:
///
/// - `arrived`: after every accepted packet was appended; `was_idle` says the
///   flow just became backlogged.
/// - `select`: pick the backlogged flow whose head packet goes next. Must return
///   `Some` whenever any flow is backlogged (work conservation; a shaper's
///   `select_at` may not, see there). May update
///   internal state (DRR moves a flow whose deficit is exhausted), but calling it
///   again without an intervening `arrived`/`served` must return the same flow.
/// - `served`: after the head packet of `id` (of `len` bytes) was removed; the queue
///   shows the new head (`head_len`); `now_empty` says the flow went idle.
pub trait Algorithm: Sized {
    /// Per-flow state.
    type Flow: Default + Clone + std::fmt::Debug;
    /// Name, as on the command line.
    const NAME: &'static str;
    /// Whether `OverflowPolicy::DropLongest` may be used (it needs per-flow service order).
    const PUSHOUT: bool = true;
    /// Whether flows may have their own rates (`FlowConfig::rate_bps`): the
    /// engine then takes a flow that must wait out of the algorithm by
    /// telling it the flow went idle (`served` with `now_empty`) and brings
    /// it back with `arrived`. An algorithm that serves packets rather than
    /// flows (FIFO), or that finds out lazily that a flow is empty (FQ-CoDel
    /// looks at the queue), cannot.
    const PACEABLE: bool = true;
    /// Whether a packet dropped by queue management at dequeue is charged to
    /// its flow as if it had been sent (`served` gets its length) or not
    /// (`served` gets 0). Virtual-time algorithms must charge it: their
    /// timestamps advance by each head's length. Round robins follow fq_codel,
    /// which does not.
    const CHARGES_DROPS: bool = true;
    /// Bytes the algorithm reserves per potential flow outside the slab (heaps, ...),
    /// for [`super::engine::Engine::memory_per_flow`].
    const RESERVED_BYTES_PER_FLOW: usize = 0;
    /// Builds the algorithm's global state.
    fn new(cfg: &SchedConfig) -> Self;
    /// Applies `cfg` to an idle flow; `fresh` is true when the slot was just allocated.
    /// On error nothing has changed.
    fn configure(
        &mut self,
        flows: &mut [Flow<Self::Flow>],
        id: usize,
        cfg: &FlowConfig,
        fresh: bool,
    ) -> Result<(), ConfigError>;
    /// The idle flow `id` is being removed.
    fn remove(&mut self, flows: &mut [Flow<Self::Flow>], id: usize);
    /// A packet was appended to `id`.
    fn arrived(&mut self, flows: &mut [Flow<Self::Flow>], id: usize, was_idle: bool, now_ns: u64);
    /// The flow to serve next.
    fn select(&mut self, flows: &mut [Flow<Self::Flow>]) -> Option<usize>;
    /// The flow to serve next at `now_ns` (the engine calls this). A
    /// work-conserving algorithm ignores the time (`select`); a shaper
    /// (HTB) may return `None` while flows are backlogged, when none may
    /// send yet ([`Algorithm::next_ready`] says when one may). At
    /// `now_ns = u64::MAX` (a drain) a shaper ignores its limits.
    #[inline]
    fn select_at(&mut self, flows: &mut [Flow<Self::Flow>], _now_ns: u64) -> Option<usize> {
        self.select(flows)
    }
    /// After `select_at` found nothing to send while flows are backlogged:
    /// the instant one may send (`None`: a work-conserving algorithm, or
    /// one may send now).
    fn next_ready(&self) -> Option<u64> {
        None
    }
    /// The head of `id` (`len` bytes) left.
    fn served(
        &mut self,
        flows: &mut [Flow<Self::Flow>],
        id: usize,
        len: u32,
        now_empty: bool,
        now_ns: u64,
    );
    /// Test hook: move the algorithm's virtual clock, if it has one, to `v`
    /// (only while nothing is queued). Used to test timestamp wraparound.
    fn set_virtual_time(&mut self, _v: u64) {}
}
