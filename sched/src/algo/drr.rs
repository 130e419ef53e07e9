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

use super::plugin::{Algorithm, Flow};
use super::queue::NIL;
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

/// DRR state: the active list, circular and singly linked through
/// `DrrFlow::next`, with both ends held: `head` is the flow being served,
/// `tail` the last in the round (`flows[tail].next == head`). Ending the head's
/// round (moving it to the tail) is then two stores, `tail = head` and
/// `head = next`, and `select` reads the head without first reading the
/// tail's link.
#[derive(Debug, Clone)]
pub struct Drr {
    head: u32,
    tail: u32,
}

impl Drr {
    /// `select`'s rare case: the head's deficit does not cover its head packet
    /// (only with a quantum smaller than the packet: `served` already rotates a
    /// flow whose round is over). Top up and rotate until one is ready.
    #[cold]
    #[inline(never)]
    fn rotate_until_ready(&mut self, flows: &mut [Flow<DrrFlow>]) -> usize {
        let mut id = self.head as usize;
        loop {
            let f = &mut flows[id];
            if f.q.head_len() <= f.a.deficit {
                return id;
            }
            f.a.deficit += f.a.quantum;
            self.tail = id as u32;
            id = f.a.next as usize;
            self.head = id as u32;
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
    // As fq_codel: a flow is not charged for what its queue management dropped.
    const CHARGES_DROPS: bool = false;

    fn new(_cfg: &SchedConfig) -> Self {
        Self {
            head: NIL,
            tail: NIL,
        }
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
        let f = &mut flows[id].a;
        f.deficit = f.quantum;
        if self.tail == NIL {
            f.next = id as u32;
            self.head = id as u32;
        } else {
            f.next = self.head;
            flows[self.tail as usize].a.next = id as u32;
        }
        self.tail = id as u32;
    }

    #[inline]
    fn select(&mut self, flows: &mut [Flow<DrrFlow>]) -> Option<usize> {
        // `get` on NIL is None: the emptiness test and the bounds check in one.
        let id = self.head as usize;
        let f = flows.get(id)?;
        if f.q.head_len() <= f.a.deficit {
            Some(id)
        } else {
            // Bounds-checked here too, so that on both paths the compiler knows
            // `id < flows.len()`.
            let id = self.rotate_until_ready(flows);
            flows.get(id).map(|_| id)
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
        // `id` is the head (the flow `select` returned).
        let f = &mut flows[id];
        let deficit = f.a.deficit - len;
        let next = f.a.next;
        if now_empty {
            // Idle: leave the list, forfeiting the deficit (DRR resets idle flows).
            f.a.deficit = 0;
            if self.tail as usize == id {
                self.head = NIL;
                self.tail = NIL;
            } else {
                self.head = next;
                flows[self.tail as usize].a.next = next;
            }
        } else if f.q.head_len() > deficit {
            // Its round is over: top up and rotate now, so that `select` usually
            // finds the head ready at the first look.
            f.a.deficit = deficit + f.a.quantum;
            self.tail = id as u32;
            self.head = next;
        } else {
            f.a.deficit = deficit;
        }
    }
}
