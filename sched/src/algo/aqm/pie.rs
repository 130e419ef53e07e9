//! PIE — Proportional Integral controller Enhanced.
//!
//! R. Pan, P. Natarajan, F. Baker, G. White, "Proportional Integral
//! Controller Enhanced (PIE): A Lightweight Control Scheme to Address the
//! Bufferbloat Problem", RFC 8033, 2017; the state machine as Linux
//! `net/sched/sch_pie.c` (`pie_drop_early`, `pie_process_dequeue`,
//! `pie_calculate_probability`) runs it.
//!
//! Every `tupdate` (15 ms) PIE moves its drop probability by
//! `alpha · (qdelay − target) + beta · (qdelay − qdelay_old)` (alpha 0.125,
//! beta 1.25 per second), both scaled down while the probability is small
//! (the RFC's auto-tuning: ÷2 below 10 %, and ÷4 more for each further
//! decade, down to ÷2048 below 10⁻⁶); a step is capped at 2 % once the
//! probability is 10 % or more, and 2 % is added while the delay exceeds
//! 250 ms; two updates in a row with no delay decay it by 1/64. `qdelay` is
//! the queue's bytes divided by its departure rate, measured over each
//! 16 KiB dequeued while at least 16 KiB is queued (`dq_rate_estimator`,
//! RFC 8033 §4.3, the default here), or the sojourn time of the last packet
//! dequeued (Linux's default).
//!
//! At each arrival PIE drops with the probability, derandomised (§5.1):
//! never during the burst allowance (150 ms after a quiet period), while the
//! delay is below `target/2` and the probability below 20 %, or with less
//! than two MTUs queued; otherwise the probabilities of the arrivals
//! accumulate, and a packet is dropped with the probability once they
//! reach 0.85 (always once they reach 8.5). With `ecn`, an ECN-capable
//! packet is marked instead while the probability is at most 10 %.
//!
//! Differences from Linux: probabilities are `f64`; the update runs when a
//! packet arrives or leaves, catching up on every `tupdate` that passed
//! (with the queue as it was: nothing changed in between), instead of from
//! a kernel timer; random numbers come from a seeded generator per queue.

use super::Decision;
use crate::rng::Rng;
use crate::types::ConfigError;

/// Linux's `QUEUE_THRESHOLD`: the departure rate is measured over this many
/// bytes, while at least this many are queued.
pub const DQ_THRESHOLD: u32 = 16_384;
/// The MTU of the "two MTUs queued" exemption.
pub const MTU: u32 = 1514;
/// Most `tupdate` periods caught up at once: after this many the state has
/// decayed to its idle reset anyway (0.984^4096 < 10⁻²⁸).
const MAX_CATCH_UP: u32 = 4096;

/// PIE's parameters, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieParams {
    target_ns: u64,
    tupdate_ns: u64,
    max_burst_ns: u64,
    // f64 kept as bits so the parameters are `Eq`.
    alpha: u64,
    beta: u64,
    ecn: bool,
    dq_rate_estimator: bool,
}

impl Default for PieParams {
    /// RFC 8033's: target 15 ms, tupdate 15 ms, max burst 150 ms, alpha
    /// 0.125, beta 1.25; ECN on; departure-rate estimation.
    fn default() -> Self {
        Self {
            target_ns: 15_000_000,
            tupdate_ns: 15_000_000,
            max_burst_ns: 150_000_000,
            alpha: 0.125f64.to_bits(),
            beta: 1.25f64.to_bits(),
            ecn: true,
            dq_rate_estimator: true,
        }
    }
}

impl PieParams {
    /// Validates: `target` 1 µs..=1 s, `tupdate` 1 ms..=1 s, `max_burst`
    /// 0..=10 s, `alpha` and `beta` 0..=2 Hz (Linux's range: tc takes
    /// them in sixteenths, 0..=32).
    pub fn new(
        target_ns: u64,
        tupdate_ns: u64,
        max_burst_ns: u64,
        alpha: f64,
        beta: f64,
        ecn: bool,
        dq_rate_estimator: bool,
    ) -> Result<Self, ConfigError> {
        let range = |what, v: u64, min: u64, max: u64| {
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    what,
                    value: v,
                    min,
                    max,
                })
            }
        };
        range("target (ns)", target_ns, 1_000, 1_000_000_000)?;
        range("tupdate (ns)", tupdate_ns, 1_000_000, 1_000_000_000)?;
        range("max_burst (ns)", max_burst_ns, 0, 10_000_000_000)?;
        let milli = |x: f64| (x * 1e3).clamp(0.0, u64::MAX as f64) as u64;
        for (what, x) in [("alpha (1/1000 Hz)", alpha), ("beta (1/1000 Hz)", beta)] {
            if !(0.0..=2.0).contains(&x) {
                return Err(ConfigError::OutOfRange {
                    what,
                    value: milli(x),
                    min: 0,
                    max: 2_000,
                });
            }
        }
        Ok(Self {
            target_ns,
            tupdate_ns,
            max_burst_ns,
            alpha: alpha.to_bits(),
            beta: beta.to_bits(),
            ecn,
            dq_rate_estimator,
        })
    }

    /// Target queue delay, ns.
    pub fn target_ns(&self) -> u64 {
        self.target_ns
    }
    /// Update period, ns.
    pub fn tupdate_ns(&self) -> u64 {
        self.tupdate_ns
    }
    /// Burst allowance, ns.
    pub fn max_burst_ns(&self) -> u64 {
        self.max_burst_ns
    }
    /// alpha, Hz.
    pub fn alpha(&self) -> f64 {
        f64::from_bits(self.alpha)
    }
    /// beta, Hz.
    pub fn beta(&self) -> f64 {
        f64::from_bits(self.beta)
    }
    /// Mark ECN-capable packets (while the probability is at most 10 %).
    pub fn ecn(&self) -> bool {
        self.ecn
    }
    /// Queue delay from the departure rate (else from timestamps).
    pub fn dq_rate_estimator(&self) -> bool {
        self.dq_rate_estimator
    }
}

/// One queue's PIE state (Linux's `pie_vars`).
#[derive(Debug, Clone)]
pub struct Pie {
    /// Drop probability, 0..=1.
    prob: f64,
    accu_prob: f64,
    /// Queue delay at the last update (or of the last packet, timestamps), ns.
    qdelay: u64,
    qdelay_old: u64,
    /// Burst allowance left, ns.
    burst_left: u64,
    /// Departure rate, bytes per ns (0: none measured yet).
    avg_dq_rate: f64,
    /// Bytes dequeued in the measurement under way, if one is.
    dq_count: Option<u32>,
    /// When that measurement (or, with timestamps, the last dequeue) was.
    dq_tstamp: Option<u64>,
    /// When the next update is due; `None` before the first packet.
    next_update: Option<u64>,
}

impl Pie {
    /// Fresh state with a full burst allowance (`pie_vars_init`).
    pub fn new(p: &PieParams) -> Self {
        Self {
            prob: 0.0,
            accu_prob: 0.0,
            qdelay: 0,
            qdelay_old: 0,
            burst_left: p.max_burst_ns,
            avg_dq_rate: 0.0,
            dq_count: None,
            dq_tstamp: None,
            next_update: None,
        }
    }

    /// The drop probability.
    pub fn prob(&self) -> f64 {
        self.prob
    }
    /// The queue delay PIE last used, ns.
    pub fn qdelay_ns(&self) -> u64 {
        self.qdelay
    }
    /// The burst allowance left, ns.
    pub fn burst_left_ns(&self) -> u64 {
        self.burst_left
    }
    /// The measured departure rate, bytes per second.
    pub fn dq_rate_bps(&self) -> f64 {
        self.avg_dq_rate * 1e9
    }

    /// Runs the updates due by `now` with `backlog` bytes queued.
    fn catch_up(&mut self, p: &PieParams, now: u64, backlog: u32) {
        let next = *self.next_update.get_or_insert(now + p.tupdate_ns);
        if now < next {
            return;
        }
        let due = (now - next) / p.tupdate_ns + 1;
        for _ in 0..due.min(u64::from(MAX_CATCH_UP)) {
            self.update(p, backlog);
        }
        self.next_update = Some(next + due * p.tupdate_ns);
    }

    /// One `tupdate`: `pie_calculate_probability` with `backlog` bytes queued.
    pub fn update(&mut self, p: &PieParams, backlog: u32) {
        let (qdelay, qdelay_old) = if p.dq_rate_estimator {
            let old = self.qdelay;
            self.qdelay_old = old;
            let q = if self.avg_dq_rate > 0.0 {
                (f64::from(backlog) / self.avg_dq_rate) as u64
            } else {
                0
            };
            (q, old)
        } else {
            (self.qdelay, self.qdelay_old)
        };
        // A delay of zero with packets queued: too small a queue to decay on.
        let mut decay = !(qdelay == 0 && backlog != 0);
        let (mut alpha, mut beta) = (p.alpha(), p.beta());
        if self.prob < 0.1 {
            alpha /= 2.0;
            beta /= 2.0;
            let mut power = 100.0;
            while self.prob < 1.0 / power && power <= 1e6 {
                alpha /= 4.0;
                beta /= 4.0;
                power *= 10.0;
            }
        }
        let s = |ns: u64| ns as f64 * 1e-9;
        let mut delta = alpha * (s(qdelay) - s(p.target_ns)) + beta * (s(qdelay) - s(qdelay_old));
        if delta > 0.02 && self.prob >= 0.1 {
            delta = 0.02;
        }
        if qdelay > 250_000_000 {
            delta += 0.02;
        }
        self.prob += delta;
        if self.prob >= 1.0 {
            if self.prob > 1.0 {
                decay = false;
            }
            self.prob = 1.0;
        } else if self.prob < 0.0 {
            self.prob = 0.0;
        }
        if qdelay == 0 && qdelay_old == 0 && decay {
            self.prob -= self.prob / 64.0;
        }
        self.qdelay = qdelay;
        let quiet = p.target_ns / 2;
        if qdelay < quiet
            && self.qdelay_old < quiet
            && self.prob == 0.0
            && (!p.dq_rate_estimator || self.avg_dq_rate > 0.0)
        {
            *self = Self {
                next_update: self.next_update,
                ..Self::new(p)
            };
        }
        if !p.dq_rate_estimator {
            self.qdelay_old = qdelay;
        }
    }

    /// A packet of `len` bytes arrives at `now`; `backlog` bytes are queued.
    pub fn on_enqueue(
        &mut self,
        p: &PieParams,
        rng: &mut Rng,
        now: u64,
        backlog: u32,
        ecn_capable: bool,
    ) -> Decision {
        self.catch_up(p, now, backlog);
        if !self.drop_early(p, rng, backlog) {
            return Decision::Deliver;
        }
        if p.ecn && self.prob <= 0.1 && ecn_capable {
            return Decision::Mark;
        }
        self.accu_prob = 0.0;
        Decision::Drop
    }

    /// `pie_drop_early`.
    fn drop_early(&mut self, p: &PieParams, rng: &mut Rng, backlog: u32) -> bool {
        if self.burst_left > 0 {
            return false;
        }
        if self.qdelay < p.target_ns / 2 && self.prob < 0.2 {
            return false;
        }
        if backlog < 2 * MTU {
            return false;
        }
        if self.prob == 0.0 {
            self.accu_prob = 0.0;
        } else {
            self.accu_prob += self.prob;
        }
        if self.accu_prob < 0.85 {
            return false;
        }
        if self.accu_prob >= 8.5 {
            return true;
        }
        if rng.unit() < self.prob {
            self.accu_prob = 0.0;
            return true;
        }
        false
    }

    /// A packet of `len` bytes left at `now` after `sojourn` ns; `backlog`
    /// bytes remain (`pie_process_dequeue`).
    pub fn on_dequeue(&mut self, p: &PieParams, now: u64, sojourn: u64, len: u32, backlog: u32) {
        self.catch_up(p, now, backlog);
        let dtime;
        if !p.dq_rate_estimator {
            self.qdelay = if backlog == 0 { 0 } else { sojourn };
            dtime = self.dq_tstamp.map_or(0, |t| now.saturating_sub(t));
            self.dq_tstamp = Some(now);
            if dtime == 0 {
                return;
            }
        } else {
            if backlog >= DQ_THRESHOLD && self.dq_count.is_none() {
                self.dq_tstamp = Some(now);
                self.dq_count = Some(0);
            }
            let Some(count) = self.dq_count else {
                return;
            };
            let count = count.saturating_add(len);
            self.dq_count = Some(count);
            if count < DQ_THRESHOLD {
                return;
            }
            let start = self.dq_tstamp.unwrap_or(now);
            dtime = now.saturating_sub(start);
            if dtime == 0 {
                return;
            }
            let rate = f64::from(count) / dtime as f64;
            self.avg_dq_rate = if self.avg_dq_rate == 0.0 {
                rate
            } else {
                self.avg_dq_rate - self.avg_dq_rate / 8.0 + rate / 8.0
            };
            if backlog < DQ_THRESHOLD {
                self.dq_count = None;
            } else {
                self.dq_count = Some(0);
                self.dq_tstamp = Some(now);
            }
        }
        self.burst_left = self.burst_left.saturating_sub(dtime);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn params(dq: bool) -> PieParams {
        PieParams::new(15 * MS, 15 * MS, 150 * MS, 0.125, 1.25, false, dq).expect("params")
    }

    #[test]
    fn parameters_are_checked_with_their_ranges() {
        assert!(PieParams::new(0, 15 * MS, 0, 0.125, 1.25, true, true).is_err());
        assert!(PieParams::new(15 * MS, 0, 0, 0.125, 1.25, true, true).is_err());
        let e = PieParams::new(15 * MS, 15 * MS, 0, 40.0, 1.25, true, true).expect_err("alpha");
        assert!(e.to_string().contains("alpha"), "{e}");
    }

    /// The update equation for a scripted delay trace (timestamp mode: the
    /// delay is the last packet's sojourn), against the RFC's formula with
    /// its auto-tuning, computed here independently.
    #[test]
    fn the_probability_moves_as_the_update_equation_gives() {
        let p = params(false);
        let mut pie = Pie::new(&p);
        let trace_ms = [
            0u64, 20, 40, 60, 80, 80, 80, 60, 40, 20, 10, 5, 0, 0, 0, 300, 300,
        ];
        let (mut prob, mut old) = (0.0f64, 0.0f64);
        for &d in &trace_ms {
            // The last packet dequeued saw `d` ms, with a queue behind it.
            // With nothing behind it when the delay is 0 (so the decay applies).
            let backlog = if d == 0 { 0 } else { 100_000 };
            pie.on_dequeue(&p, 1, d * MS, 1500, backlog);
            pie.update(&p, backlog);
            let q = d as f64 / 1e3;
            let scale = if prob >= 0.1 {
                1.0
            } else if prob >= 0.01 {
                0.5
            } else if prob >= 0.001 {
                0.5 / 4.0
            } else if prob >= 0.0001 {
                0.5 / 16.0
            } else if prob >= 0.00001 {
                0.5 / 64.0
            } else if prob >= 0.000001 {
                0.5 / 256.0
            } else {
                0.5 / 1024.0
            };
            let mut delta = scale * (0.125 * (q - 0.015) + 1.25 * (q - old));
            if delta > 0.02 && prob >= 0.1 {
                delta = 0.02;
            }
            if q > 0.25 {
                delta += 0.02;
            }
            prob = (prob + delta).clamp(0.0, 1.0);
            if q == 0.0 && old == 0.0 {
                prob -= prob / 64.0;
            }
            old = q;
            assert!(
                (pie.prob() - prob).abs() < 1e-12,
                "after {d} ms: {} vs {prob}",
                pie.prob()
            );
        }
        assert!(
            pie.prob() > 0.04,
            "300 ms of delay raised it: {}",
            pie.prob()
        );
    }

    /// Departure-rate estimation: 100 Mbit/s of departures with 125 KB
    /// queued is 10 ms of delay.
    #[test]
    fn the_departure_rate_gives_the_queue_delay() {
        let p = params(true);
        let mut pie = Pie::new(&p);
        // 1500-byte packets leaving at 100 Mbit/s: one every 120 µs.
        let mut now = 0;
        for _ in 0..1000 {
            now += 120_000;
            pie.on_dequeue(&p, now, 0, 1500, 125_000);
        }
        assert!(
            (pie.dq_rate_bps() - 12.5e6).abs() < 1e3,
            "{}",
            pie.dq_rate_bps()
        );
        pie.update(&p, 125_000);
        assert!(
            (pie.qdelay_ns() as f64 - 10e6).abs() < 1e4,
            "{}",
            pie.qdelay_ns()
        );
        // The burst allowance ran out while measuring (120 ms of dequeues).
        assert!(pie.burst_left_ns() < 150 * MS);
    }

    /// A standing 100 ms queue: nothing is dropped during the burst
    /// allowance; then the probability climbs and PIE drops.
    #[test]
    fn the_burst_allowance_delays_the_first_drop() {
        let p = params(false);
        let mut pie = Pie::new(&p);
        let mut rng = Rng::new(5);
        let mut first = None;
        let mut now = 0;
        while now < 2_000 * MS && first.is_none() {
            now += MS;
            pie.on_dequeue(&p, now, 100 * MS, 1500, 1_000_000);
            if pie.on_enqueue(&p, &mut rng, now, 1_000_000, false) == Decision::Drop {
                first = Some(now);
            }
        }
        let first = first.expect("PIE dropped");
        assert!(first > 150 * MS, "first drop at {} ms", first / MS);
    }
}
