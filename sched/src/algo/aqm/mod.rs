//! Active queue management: what a flow queue does about a standing queue
//! before it overflows. The engine keeps one [`AqmFlow`] per flow slot once
//! any flow has queue management, stamps every packet with its enqueue time
//! (`now_ns` at `enqueue`) and asks the flow's AQM about each head packet in
//! [`crate::Scheduler::dequeue_managed`]: deliver it, deliver it marked
//! Congestion Experienced, or drop it (handed back to the caller).
//!
//! One file per algorithm, each citing its reference: [`codel`] (RFC 8289,
//! decided at dequeue from each packet's sojourn time).

pub mod codel;

pub use codel::{Codel, CodelParams};

/// The queue management of one flow queue (part of [`crate::FlowConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aqm {
    /// Tail drop at the queue's limits only.
    #[default]
    None,
    /// CoDel (RFC 8289).
    Codel(CodelParams),
}

impl Aqm {
    /// The name as written in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Aqm::None => "none",
            Aqm::Codel(_) => "codel",
        }
    }
}

/// What queue management does with the packet at the head of a flow queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it as it is.
    Deliver,
    /// Send it marked Congestion Experienced (it is ECN-capable).
    Mark,
    /// Drop it.
    Drop,
}

/// One flow queue's queue management: its parameters and state.
#[derive(Debug, Clone, Default)]
pub struct AqmFlow {
    params: Aqm,
    codel: Codel,
}

impl AqmFlow {
    /// Fresh state for a flow configured with `params`.
    pub fn new(params: Aqm) -> Self {
        Self {
            params,
            codel: Codel::default(),
        }
    }

    /// The configured algorithm.
    pub fn params(&self) -> &Aqm {
        &self.params
    }

    /// CoDel's state (meaningful with [`Aqm::Codel`]).
    pub fn codel(&self) -> &Codel {
        &self.codel
    }

    /// The head packet was taken off the queue at `now_ns` after
    /// `sojourn_ns` in it; `backlog_bytes` is what the scheduler still holds
    /// without it; `ecn_capable` is the packet's.
    #[inline]
    pub fn on_dequeue(
        &mut self,
        now_ns: u64,
        sojourn_ns: u64,
        backlog_bytes: u64,
        ecn_capable: bool,
    ) -> Decision {
        match &self.params {
            Aqm::None => Decision::Deliver,
            Aqm::Codel(p) => {
                self.codel
                    .on_dequeue(p, now_ns, sojourn_ns, backlog_bytes, ecn_capable)
            }
        }
    }

    /// The flow's queue went empty.
    #[inline]
    pub fn on_empty(&mut self) {
        self.codel.on_empty();
    }

    /// A packet of this flow was pushed out at the scheduler's global limit
    /// (longest-queue-drop): as fq_codel, tell CoDel to signal harder.
    pub fn on_pushed_out(&mut self) {
        if matches!(self.params, Aqm::Codel(_)) {
            self.codel.on_pushed_out();
        }
    }
}
