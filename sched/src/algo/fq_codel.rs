//! FQ-CoDel's flow scheduler: deficit round robin over two lists, new
//! flows first.
//!
//! T. Hoeiland-Joergensen, P. McKenney, D. Taht, J. Gettys, E. Dumazet,
//! "The Flow Queue CoDel Packet Scheduler and Active Queue Management
//! Algorithm", RFC 8290, 2018; as Linux `net/sched/sch_fq_codel.c` runs it.
//!
//! This file is the scheduling half; the CoDel half is each flow's queue
//! management ([`super::aqm::codel`], on by default for `sched = "fq_codel"`),
//! which the engine applies to every head packet this scheduler picks.
//!
//! A flow that becomes active (it is on neither list) joins the tail of the
//! **new** list with a full quantum. The scheduler serves the head of the new
//! list if there is one, else the head of the old list. A flow whose deficit
//! is spent (`<= 0`, it is signed: a packet may take it below zero) gets a
//! quantum more and moves to the tail of the old list. A flow found empty
//! leaves its list — except that an empty flow from the new list goes to the
//! tail of the old list first when that list is not empty, so a flow cannot
//! stay "new" by emptying its queue each round and starve the old flows
//! (RFC 8290 §4.2). A sparse flow (a DNS query, a TCP ACK, a game's updates)
//! whose packets find its queue empty thus goes before every backlogged flow.
//!
//! Packets that CoDel drops are not charged to the flow's deficit (as Linux:
//! only the packets sent are), see [`Algorithm::CHARGES_DROPS`].
//!
//! Differences from Linux: flows are exact (the flowset's mask, e.g. the
//! 5-tuple), not 1024 hash buckets that colliding flows share; a flow's
//! quantum follows its weight (`weight × 1514` bytes unless `quantum` is
//! set), so weighted FQ-CoDel is possible; at the global limit the engine's
//! longest-queue-drop pushes out one packet of the flow with the most
//! packets (Linux drops up to 64 packets from the flow with the most bytes)
//! and, as Linux, raises that flow's CoDel count.
//!
//! No virtual time, so nothing to wrap.

use super::drr::quantum_of;
use super::plugin::{Algorithm, Flow};
use super::queue::NIL;
use crate::types::{ConfigError, FlowConfig, SchedConfig};

/// Which list a flow is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum On {
    #[default]
    Neither,
    New,
    Old,
}

/// Per-flow FQ-CoDel scheduling state.
#[derive(Debug, Clone)]
pub struct FqFlow {
    /// Bytes added to the deficit per round.
    quantum: u32,
    /// Bytes the flow may still send this round; a packet may take it below 0.
    deficit: i64,
    on: On,
    prev: u32,
    next: u32,
}

impl Default for FqFlow {
    fn default() -> Self {
        Self {
            quantum: 0,
            deficit: 0,
            on: On::Neither,
            prev: NIL,
            next: NIL,
        }
    }
}

impl FqFlow {
    /// The deficit, bytes.
    pub fn deficit(&self) -> i64 {
        self.deficit
    }
    /// Whether the flow is on the new list.
    pub fn is_new(&self) -> bool {
        self.on == On::New
    }
}

/// A doubly linked list of flows through `FqFlow::{prev, next}`.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// FQ-CoDel's lists.
#[derive(Debug, Clone)]
pub struct FqCodel {
    new: List,
    old: List,
    /// Flows that joined the new list (Linux's `new_flow_count`).
    new_flows: u64,
}

impl FqCodel {
    /// Times a flow joined the new list.
    pub fn new_flow_count(&self) -> u64 {
        self.new_flows
    }

    fn list(&mut self, on: On) -> &mut List {
        match on {
            On::Old => &mut self.old,
            _ => &mut self.new,
        }
    }

    fn push_tail(&mut self, flows: &mut [Flow<FqFlow>], id: usize, on: On) {
        let l = *self.list(on);
        let f = &mut flows[id].a;
        f.on = on;
        f.prev = l.tail;
        f.next = NIL;
        if l.tail == NIL {
            self.list(on).head = id as u32;
        } else {
            flows[l.tail as usize].a.next = id as u32;
        }
        self.list(on).tail = id as u32;
    }

    fn unlink(&mut self, flows: &mut [Flow<FqFlow>], id: usize) {
        let (on, prev, next) = {
            let f = &flows[id].a;
            (f.on, f.prev, f.next)
        };
        if on == On::Neither {
            return;
        }
        if prev == NIL {
            self.list(on).head = next;
        } else {
            flows[prev as usize].a.next = next;
        }
        if next == NIL {
            self.list(on).tail = prev;
        } else {
            flows[next as usize].a.prev = prev;
        }
        let f = &mut flows[id].a;
        f.on = On::Neither;
        f.prev = NIL;
        f.next = NIL;
    }
}

impl Algorithm for FqCodel {
    type Flow = FqFlow;
    const NAME: &'static str = "fq_codel";
    // Finds emptied flows lazily, by their queue: it cannot be told a
    // backlogged flow must wait (per-flow rates).
    const PACEABLE: bool = false;
    const CHARGES_DROPS: bool = false;

    fn new(_cfg: &SchedConfig) -> Self {
        Self {
            new: List::EMPTY,
            old: List::EMPTY,
            new_flows: 0,
        }
    }

    fn configure(
        &mut self,
        flows: &mut [Flow<FqFlow>],
        id: usize,
        cfg: &FlowConfig,
        _fresh: bool,
    ) -> Result<(), ConfigError> {
        flows[id].a.quantum = quantum_of(cfg);
        Ok(())
    }

    fn remove(&mut self, flows: &mut [Flow<FqFlow>], id: usize) {
        // An idle flow may still be on a list (left lazily, see `select`).
        self.unlink(flows, id);
    }

    #[inline]
    fn arrived(&mut self, flows: &mut [Flow<FqFlow>], id: usize, _was_idle: bool, _now: u64) {
        // Only a flow on neither list is new: one that emptied but is still
        // listed keeps its place (and its deficit).
        if flows[id].a.on == On::Neither {
            flows[id].a.deficit = i64::from(flows[id].a.quantum);
            self.push_tail(flows, id, On::New);
            self.new_flows += 1;
        }
    }

    fn select(&mut self, flows: &mut [Flow<FqFlow>]) -> Option<usize> {
        loop {
            let (on, id) = if self.new.head != NIL {
                (On::New, self.new.head as usize)
            } else if self.old.head != NIL {
                (On::Old, self.old.head as usize)
            } else {
                return None;
            };
            let f = &mut flows[id];
            if f.a.deficit <= 0 {
                f.a.deficit += i64::from(f.a.quantum);
                self.unlink(flows, id);
                self.push_tail(flows, id, On::Old);
                continue;
            }
            if f.q.is_empty() {
                let to_old = on == On::New && self.old.head != NIL;
                self.unlink(flows, id);
                if to_old {
                    self.push_tail(flows, id, On::Old);
                }
                continue;
            }
            return Some(id);
        }
    }

    #[inline]
    fn served(
        &mut self,
        flows: &mut [Flow<FqFlow>],
        id: usize,
        len: u32,
        _now_empty: bool,
        _now: u64,
    ) {
        // An emptied flow stays where it is; `select` moves it on when it
        // comes to the head.
        flows[id].a.deficit -= i64::from(len);
    }
}
