//! FIFO: one queue in arrival order across all flows.
//!
//! Packets still sit in their flow's queue (so per-flow limits and counters
//! work as for every algorithm); a ring of flow ids, one entry per queued
//! packet, records the global arrival order. Drop-longest is refused: with a
//! single arrival order there is no per-flow service order to push out of.

use super::plugin::{Algorithm, Flow};
use crate::types::{ConfigError, FlowConfig, SchedConfig};

/// FIFO state: a ring of flow ids as long as the packet pool.
#[derive(Debug, Clone)]
pub struct Fifo {
    ring: Vec<u32>,
    head: usize,
    len: usize,
}

impl Algorithm for Fifo {
    type Flow = ();
    const NAME: &'static str = "fifo";
    const PUSHOUT: bool = false;
    const PACEABLE: bool = false;

    fn new(cfg: &SchedConfig) -> Self {
        // One entry per queued packet; the engine never queues more than limit_packets.
        Self {
            ring: vec![0; cfg.limit_packets as usize],
            head: 0,
            len: 0,
        }
    }

    fn configure(
        &mut self,
        _flows: &mut [Flow<()>],
        _id: usize,
        _cfg: &FlowConfig,
        _fresh: bool,
    ) -> Result<(), ConfigError> {
        Ok(())
    }

    fn remove(&mut self, _flows: &mut [Flow<()>], _id: usize) {}

    #[inline]
    fn arrived(&mut self, _flows: &mut [Flow<()>], id: usize, _was_idle: bool, _now: u64) {
        let mut slot = self.head + self.len;
        if slot >= self.ring.len() {
            slot -= self.ring.len();
        }
        self.ring[slot] = id as u32;
        self.len += 1;
    }

    #[inline]
    fn select(&mut self, _flows: &mut [Flow<()>]) -> Option<usize> {
        if self.len == 0 {
            None
        } else {
            Some(self.ring[self.head] as usize)
        }
    }

    #[inline]
    fn served(
        &mut self,
        _flows: &mut [Flow<()>],
        _id: usize,
        _len: u32,
        _now_empty: bool,
        _now: u64,
    ) {
        self.head += 1;
        if self.head == self.ring.len() {
            self.head = 0;
        }
        self.len -= 1;
    }
}
