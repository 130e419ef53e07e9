//! Active queue management: what a flow queue does about a standing queue
//! before it overflows. The engine keeps one [`AqmFlow`] per flow slot once
//! any flow has queue management and stamps every packet with its enqueue
//! time (`now_ns` at `enqueue`). Algorithms that decide at arrival (RED,
//! PIE) are asked in `enqueue`, before the packet is queued; those that
//! decide at departure (CoDel) in [`crate::Scheduler::dequeue_managed`],
//! about each head packet. Either may deliver the packet, deliver it marked
//! Congestion Experienced (ECN-capable packets, with `ecn` on), or drop it:
//! at arrival the offered packet comes back from `enqueue`, at departure
//! it goes to the caller's sink; both are counted under
//! [`crate::DropReason::Aqm`], marks in [`crate::DropCounters::marked`].
//!
//! One file per algorithm, each citing its reference: [`codel`] (RFC 8289),
//! [`red`] (RED and Gentle RED as dummynet runs them), [`pie`] (RFC 8033).

pub mod codel;
pub mod pie;
pub mod red;

pub use codel::{Codel, CodelParams};
pub use pie::{Pie, PieParams};
pub use red::{Red, RedParams};

use crate::rng::Rng;

/// The queue management of one flow queue (part of [`crate::FlowConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aqm {
    /// Tail drop at the queue's limits only.
    #[default]
    None,
    /// CoDel (RFC 8289), at dequeue.
    Codel(CodelParams),
    /// RED or Gentle RED, at arrival.
    Red(RedParams),
    /// PIE (RFC 8033), at arrival.
    Pie(PieParams),
}

impl Aqm {
    /// The name as written in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Aqm::None => "none",
            Aqm::Codel(_) => "codel",
            Aqm::Red(p) if p.gentle() => "gred",
            Aqm::Red(_) => "red",
            Aqm::Pie(_) => "pie",
        }
    }

    /// Whether it decides before the queue's limit is checked: RED (dummynet
    /// runs `red_drops` first, so every arrival moves the average); PIE
    /// decides after it (Linux drops at the limit first).
    pub fn before_limits(&self) -> bool {
        matches!(self, Aqm::Red(_))
    }

    /// Whether it decides when packets arrive (RED, PIE).
    pub fn at_arrival(&self) -> bool {
        matches!(self, Aqm::Red(_) | Aqm::Pie(_))
    }

    /// The same on a link of `bps` bit/s (`None`: unlimited): RED's idle
    /// decay counts time in packets at the link's rate.
    pub fn on_link(self, bps: Option<u64>) -> Self {
        match self {
            Aqm::Red(p) => Aqm::Red(p.on_link(bps)),
            other => other,
        }
    }
}

/// What queue management does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Queue (at arrival) or send (at departure) it as it is.
    Deliver,
    /// The same, marked Congestion Experienced (it is ECN-capable).
    Mark,
    /// Drop it.
    Drop,
}

/// A packet arriving at a flow queue.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// When, ns.
    pub now_ns: u64,
    /// Packets its flow holds (without it).
    pub pkts: u32,
    /// Bytes its flow holds (without it).
    pub bytes: u32,
    /// Its length, bytes.
    pub len: u32,
    /// Whether it is ECN-capable.
    pub ecn_capable: bool,
}

/// The packet at the head of a flow queue, just taken off it.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// How long it was queued, ns.
    pub sojourn_ns: u64,
    /// Its length, bytes.
    pub len: u32,
    /// Whether it is ECN-capable.
    pub ecn_capable: bool,
    /// Bytes its flow still holds.
    pub flow_bytes: u32,
    /// Bytes the whole scheduler still holds.
    pub total_bytes: u64,
}

// Inline, not boxed: a flow's state is made when the flow is, which may be
// on its first packet; the table of them is reserved at configuration time.
#[derive(Debug, Clone, Default)]
#[allow(clippy::large_enum_variant)]
enum State {
    #[default]
    None,
    Codel(Codel),
    Red(Red),
    Pie(Pie),
}

/// One flow queue's queue management: its parameters and state.
#[derive(Debug, Clone)]
pub struct AqmFlow {
    params: Aqm,
    state: State,
    rng: Rng,
}

impl Default for AqmFlow {
    fn default() -> Self {
        Self::new(Aqm::None, 0)
    }
}

impl AqmFlow {
    /// Fresh state for a flow configured with `params`; `seed` keys its
    /// random numbers (RED, PIE).
    pub fn new(params: Aqm, seed: u64) -> Self {
        let state = match &params {
            Aqm::None => State::None,
            Aqm::Codel(_) => State::Codel(Codel::default()),
            Aqm::Red(_) => State::Red(Red::default()),
            Aqm::Pie(p) => State::Pie(Pie::new(p)),
        };
        Self {
            params,
            state,
            rng: Rng::new(seed),
        }
    }

    /// The configured algorithm.
    pub fn params(&self) -> &Aqm {
        &self.params
    }

    /// CoDel's state, with [`Aqm::Codel`].
    pub fn codel(&self) -> Option<&Codel> {
        match &self.state {
            State::Codel(c) => Some(c),
            _ => None,
        }
    }

    /// RED's state, with [`Aqm::Red`].
    pub fn red(&self) -> Option<&Red> {
        match &self.state {
            State::Red(r) => Some(r),
            _ => None,
        }
    }

    /// PIE's state, with [`Aqm::Pie`].
    pub fn pie(&self) -> Option<&Pie> {
        match &self.state {
            State::Pie(p) => Some(p),
            _ => None,
        }
    }

    /// A packet arrives: whether to queue, mark or drop it.
    #[inline]
    pub fn on_enqueue(&mut self, a: Arrival) -> Decision {
        match (&self.params, &mut self.state) {
            (Aqm::Red(p), State::Red(r)) => r.on_enqueue(p, &mut self.rng, a),
            (Aqm::Pie(p), State::Pie(s)) => {
                s.on_enqueue(p, &mut self.rng, a.now_ns, a.bytes, a.ecn_capable)
            }
            _ => Decision::Deliver,
        }
    }

    /// The head packet `h` was taken off the queue at `now_ns`: whether to
    /// send, mark or drop it.
    #[inline]
    pub fn on_dequeue(&mut self, now_ns: u64, h: Head) -> Decision {
        match (&self.params, &mut self.state) {
            (Aqm::Codel(p), State::Codel(c)) => {
                c.on_dequeue(p, now_ns, h.sojourn_ns, h.total_bytes, h.ecn_capable)
            }
            (Aqm::Pie(p), State::Pie(s)) => {
                s.on_dequeue(p, now_ns, h.sojourn_ns, h.len, h.flow_bytes);
                Decision::Deliver
            }
            _ => Decision::Deliver,
        }
    }

    /// The flow's queue went empty at `now_ns`.
    #[inline]
    pub fn on_empty(&mut self, now_ns: u64) {
        match &mut self.state {
            State::Codel(c) => c.on_empty(),
            State::Red(r) => r.on_empty(now_ns),
            _ => {}
        }
    }

    /// A packet of this flow was pushed out at the scheduler's global limit
    /// (longest-queue-drop): as fq_codel, tell CoDel to signal harder.
    pub fn on_pushed_out(&mut self) {
        if let State::Codel(c) = &mut self.state {
            c.on_pushed_out();
        }
    }
}
