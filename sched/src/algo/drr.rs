//! DRR — Deficit Round Robin.
//!
//! M. Shreedhar and G. Varghese, "Efficient fair queueing using deficit
//! round robin", IEEE/ACM ToN 4(3), 1996.
//!
//! Backlogged flows sit in one circular list. The flow at the head may send
//! while its deficit covers its head packet; when it cannot, it gets its
//! quantum added and goes to the tail. A flow's quantum is its configured
//! `quantum`, or `weight * DEFAULT_QUANTUM_UNIT` bytes, so long-run shares
//! follow the weights. O(1) per packet when every quantum is at least the
//! flow's largest packet; with smaller quanta a flow may be passed over
//! `lmax / quantum` times before it sends (still amortised O(1)).
//!
//! Bound (used by the tests): against the fluid GPS reference, a continuously
//! backlogged flow's service lags or leads by at most its quantum plus two
//! maximum packets (the paper's fairness measure `Q + 2 Max`), plus its share of
//! the other flows' deficit carry-over.
//!
//! No virtual time, so nothing to wrap.

use crate::engine::{Algorithm, Flow, NIL};
use crate::types::{ConfigError, FlowConfig, Quantum, SchedConfig};

/// Bytes of quantum per unit of weight when a flow has no explicit quantum:
/// one Ethernet frame without FCS, so a weight-1 flow of full-size frames
/// sends one frame per round (as Linux DRR's default of one MTU).
pub const DEFAULT_QUANTUM_UNIT: u32 = 1514;

/// Per-flow DRR state.
#[derive(Debug, Clone)]
pub struct DrrFlow {
    /// Bytes added to the deficit per round.
    quantum: u32,
    /// Bytes the flow may still send this round (< quantum + lmax).
    deficit: u32,
    /// Next flow in the active list.
    next: u32,
}

impl Default for DrrFlow {
    fn default() -> Self {
        Self {
            quantum: 0,
            deficit: 0,
            next: NIL,
        }
    }
}

/// DRR state: the active list, circular and singly linked, held by its tail
/// (the head is `flows[tail].next`). Ending a flow's round — moving the head
/// to the tail — is then one store: `tail = head`.
#[derive(Debug, Clone)]
pub struct Drr {
    tail: u32,
}

impl Drr {
    /// Unlinks the head `id` of a non-empty list.
    #[inline(always)]
    fn remove_head(&mut self, flows: &mut [Flow<DrrFlow>], id: usize) {
        if self.tail as usize == id {
            self.tail = NIL;
        } else {
            let next = flows[id].a.next;
            flows[self.tail as usize].a.next = next;
        }
    }
}

/// The quantum a flow gets from its configuration.
pub fn quantum_of(cfg: &FlowConfig) -> u32 {
    match cfg.quantum {
        Some(q) => q.get(),
        // weight <= 2^16, unit < 2^11: fits in u32; capped at Quantum::MAX.
        None => (cfg.weight.get() * DEFAULT_QUANTUM_UNIT).min(Quantum::MAX),
    }
}

impl Algorithm for Drr {
    type Flow = DrrFlow;
    const NAME: &'static str = "drr";

    fn new(_cfg: &SchedConfig) -> Self {
        Self { tail: NIL }
    }

    fn configure(
        &mut self,
        flows: &mut [Flow<DrrFlow>],
        id: usize,
        cfg: &FlowConfig,
        _fresh: bool,
    ) -> Result<(), ConfigError> {
        flows[id].a.quantum = quantum_of(cfg);
        Ok(())
    }

    fn remove(&mut self, _flows: &mut [Flow<DrrFlow>], _id: usize) {}

    #[inline]
    fn arrived(&mut self, flows: &mut [Flow<DrrFlow>], id: usize, was_idle: bool, _now: u64) {
        if !was_idle {
            return;
        }
        // A newly active flow starts with a full quantum (as Linux sch_drr) and
        // joins at the tail.
        flows[id].a.deficit = flows[id].a.quantum;
        if self.tail == NIL {
            flows[id].a.next = id as u32;
        } else {
            let t = self.tail as usize;
            flows[id].a.next = flows[t].a.next;
            flows[t].a.next = id as u32;
        }
        self.tail = id as u32;
    }

    #[inline]
    fn select(&mut self, flows: &mut [Flow<DrrFlow>]) -> Option<usize> {
        // `get` on NIL is None: the emptiness test and the bounds check in one.
        let mut id = flows.get(self.tail as usize)?.a.next as usize;
        loop {
            let f = &mut flows[id];
            if f.q.head_len() <= f.a.deficit {
                return Some(id);
            }
            // Round over for this flow: top up, and it becomes the tail.
            f.a.deficit += f.a.quantum;
            self.tail = id as u32;
            id = f.a.next as usize;
        }
    }

    #[inline]
    fn served(
        &mut self,
        flows: &mut [Flow<DrrFlow>],
        id: usize,
        len: u32,
        now_empty: bool,
        _now: u64,
    ) {
        let f = &mut flows[id];
        f.a.deficit -= len;
        if now_empty {
            // Idle: leave the list, forfeiting the deficit (DRR resets idle flows).
            f.a.deficit = 0;
            self.remove_head(flows, id);
        } else if f.q.head_len() > f.a.deficit {
            // Its round is over: top up and rotate now, so that `select` usually
            // finds the head ready at the first look.
            f.a.deficit += f.a.quantum;
            self.tail = id as u32;
        }
    }
}
