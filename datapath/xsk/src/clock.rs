//! The one clock of a run: nanoseconds since it started, monotonic
//! (`CLOCK_MONOTONIC` through [`std::time::Instant`]). xdpsched's workers
//! date arrivals and departures with it and feed it to the emulator as
//! `now_ns`; xdpgen's sender and receiver share one so that one-way latency
//! needs no clock synchronisation.

use std::time::{Duration, Instant};

/// A run's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    t0: Instant,
}

impl Clock {
    /// A clock that reads 0 now.
    pub fn start() -> Clock {
        Clock { t0: Instant::now() }
    }

    /// Nanoseconds since the start.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// The instant at `ns` after the start.
    pub fn at(&self, ns: u64) -> Instant {
        self.t0 + Duration::from_nanos(ns)
    }

    /// The instant it started.
    pub fn origin(&self) -> Instant {
        self.t0
    }
}
