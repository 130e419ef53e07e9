//! PRIO: strict priority levels (0 served first, 15 last, as Linux `prio`
//! bands), packet-by-packet round robin among the backlogged flows of one
//! level. A lower level is served only when every higher one is empty, so it
//! can starve: that is the point of strict priority.
//!
//! O(1): a 16-bit map of non-empty levels (find-first-set picks the level)
//! and a circular list of backlogged flows per level.

use super::plugin::{Algorithm, Flow};
use super::queue::NIL;
use crate::types::{ConfigError, FlowConfig, Priority, SchedConfig};

const LEVELS: usize = Priority::MAX as usize + 1;

/// Per-flow PRIO state.
#[derive(Debug, Clone)]
pub struct PrioFlow {
    level: u8,
    /// Next flow in the level's list of backlogged flows.
    next: u32,
}

impl Default for PrioFlow {
    fn default() -> Self {
        Self {
            level: 0,
            next: NIL,
        }
    }
}

/// PRIO state.
#[derive(Debug, Clone)]
pub struct Prio {
    /// Bit `l` set: level `l` has backlogged flows.
    nonempty: u32,
    head: [u32; LEVELS],
    tail: [u32; LEVELS],
}

impl Algorithm for Prio {
    type Flow = PrioFlow;
    const NAME: &'static str = "prio";

    fn new(_cfg: &SchedConfig) -> Self {
        Self {
            nonempty: 0,
            head: [NIL; LEVELS],
            tail: [NIL; LEVELS],
        }
    }

    fn configure(
        &mut self,
        flows: &mut [Flow<PrioFlow>],
        id: usize,
        cfg: &FlowConfig,
        _fresh: bool,
    ) -> Result<(), ConfigError> {
        flows[id].a.level = cfg.priority.get() as u8;
        Ok(())
    }

    fn remove(&mut self, _flows: &mut [Flow<PrioFlow>], _id: usize) {}

    #[inline]
    fn arrived(&mut self, flows: &mut [Flow<PrioFlow>], id: usize, was_idle: bool, _now: u64) {
        if !was_idle {
            return;
        }
        let l = flows[id].a.level as usize;
        flows[id].a.next = NIL;
        if self.tail[l] == NIL {
            self.head[l] = id as u32;
            self.nonempty |= 1 << l;
        } else {
            flows[self.tail[l] as usize].a.next = id as u32;
        }
        self.tail[l] = id as u32;
    }

    #[inline]
    fn select(&mut self, _flows: &mut [Flow<PrioFlow>]) -> Option<usize> {
        if self.nonempty == 0 {
            return None;
        }
        Some(self.head[self.nonempty.trailing_zeros() as usize] as usize)
    }

    #[inline]
    fn served(
        &mut self,
        flows: &mut [Flow<PrioFlow>],
        id: usize,
        _len: u32,
        now_empty: bool,
        _now: u64,
    ) {
        let l = flows[id].a.level as usize;
        let next = flows[id].a.next;
        // `id` is the head of level l. Take it off; put it back at the tail if still backlogged.
        self.head[l] = next;
        if next == NIL {
            self.tail[l] = NIL;
        }
        if !now_empty {
            flows[id].a.next = NIL;
            if self.tail[l] == NIL {
                self.head[l] = id as u32;
            } else {
                flows[self.tail[l] as usize].a.next = id as u32;
            }
            self.tail[l] = id as u32;
        } else if next == NIL {
            self.nonempty &= !(1 << l);
        }
    }
}
