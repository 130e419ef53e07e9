//! RED and Gentle RED, as dummynet configures and runs them.
//!
//! S. Floyd, V. Jacobson, "Random Early Detection Gateways for Congestion
//! Avoidance", IEEE/ACM ToN 1(4), 1993; S. Floyd, "Recommendation on using
//! the 'gentle_' variant of RED", 2000; the algorithm as FreeBSD dummynet's
//! `red_drops()` (`sys/netpfil/ipfw/ip_dn_io.c`) runs it for
//! `pipe N config ... red|gred w_q/min_th/max_th/max_p`.
//!
//! At each arrival, the average queue `avg` (in packets, or in bytes when
//! the thresholds are) follows the queue the packet finds:
//! `avg += w_q · (q − avg)`; after an idle period of `t` "small packet
//! times" (512 bytes at the link's rate) it decays to `avg · (1 − w_q)^(t+1)`
//! (0 after 256 of them). Below `min_th` every packet is accepted; between
//! the thresholds the drop probability is `p_b = max_p · (avg − min_th) /
//! (max_th − min_th)`; at `max_th` and above RED drops every packet, and
//! Gentle RED instead ramps `p_b` from `max_p` at `max_th` to 1 at
//! `2 · max_th`. With byte thresholds `p_b` scales with `len / 1500`. Drops
//! are spread evenly: the packet is dropped when `p_b · count > u`, `count`
//! the packets accepted since the last drop and `u` uniform in [0, 1) drawn
//! after each drop (dummynet's uniformisation, RED paper §7).
//!
//! Differences from dummynet: arithmetic in `f64` rather than 16-bit fixed
//! point; the random numbers come from a seeded generator per flow queue
//! (deterministic runs). With `ecn`, a packet RED would drop is marked CE
//! instead if it is ECN-capable (as Linux's RED; dummynet's `ecn` flag
//! instead marks every packet above `min_th`), so the same probabilities
//! apply to ECN and non-ECN traffic.

use super::{Arrival, Decision};
use crate::rng::Rng;
use crate::types::ConfigError;

/// dummynet's `red_avg_pkt_size`: the idle decay counts this many bytes
/// per step at the link's rate.
pub const IDLE_STEP_BYTES: u64 = 512;
/// dummynet's `red_lookup_depth`: after this many idle steps the average is 0.
pub const LOOKUP_DEPTH: u64 = 256;
/// dummynet's `red_max_pkt_size`: with byte thresholds, `p_b` scales with
/// `len / MAX_PKT_SIZE`.
pub const MAX_PKT_SIZE: f64 = 1500.0;

/// RED's parameters, validated. Thresholds are packets, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedParams {
    // f64 kept as bits so the parameters are `Eq` (configurations compare).
    w_q: u64,
    min_th: u32,
    max_th: u32,
    max_p: u64,
    gentle: bool,
    bytes: bool,
    ecn: bool,
    /// Time to send `IDLE_STEP_BYTES` at the link's rate, ns (0: unlimited).
    idle_step_ns: u64,
}

impl RedParams {
    /// Validates dummynet's four numbers: `0 < w_q <= 1`, `0 < max_p <= 1`,
    /// `min_th < max_th` (packets, or bytes if `bytes`), both at most 2^24.
    pub fn new(
        w_q: f64,
        min_th: u32,
        max_th: u32,
        max_p: f64,
        gentle: bool,
        bytes: bool,
        ecn: bool,
    ) -> Result<Self, ConfigError> {
        // Probabilities in millionths for the range message.
        let ppm = |x: f64| (x * 1e6).clamp(0.0, u64::MAX as f64) as u64;
        if !(w_q > 0.0 && w_q <= 1.0) {
            return Err(ConfigError::OutOfRange {
                what: "w_q (millionths)",
                value: ppm(w_q),
                min: 1,
                max: 1_000_000,
            });
        }
        if !(max_p > 0.0 && max_p <= 1.0) {
            return Err(ConfigError::OutOfRange {
                what: "max_p (millionths)",
                value: ppm(max_p),
                min: 1,
                max: 1_000_000,
            });
        }
        const MAX_TH: u32 = 1 << 24;
        if !(1..=MAX_TH).contains(&max_th) {
            return Err(ConfigError::OutOfRange {
                what: "max_th",
                value: u64::from(max_th),
                min: 1,
                max: u64::from(MAX_TH),
            });
        }
        if min_th >= max_th {
            return Err(ConfigError::OutOfRange {
                what: "min_th (below max_th)",
                value: u64::from(min_th),
                min: 0,
                max: u64::from(max_th) - 1,
            });
        }
        Ok(Self {
            w_q: w_q.to_bits(),
            min_th,
            max_th,
            max_p: max_p.to_bits(),
            gentle,
            bytes,
            ecn,
            idle_step_ns: 0,
        })
    }

    /// The same on a link of `bps` bit/s (`None`: unlimited), which sets the
    /// idle decay's step.
    pub fn on_link(self, bps: Option<u64>) -> Self {
        let idle_step_ns = bps.map_or(0, |b| IDLE_STEP_BYTES * 8 * 1_000_000_000 / b.max(1));
        Self {
            idle_step_ns,
            ..self
        }
    }

    /// The EWMA weight.
    pub fn w_q(&self) -> f64 {
        f64::from_bits(self.w_q)
    }
    /// Drop probability at `max_th`.
    pub fn max_p(&self) -> f64 {
        f64::from_bits(self.max_p)
    }
    /// Lower threshold.
    pub fn min_th(&self) -> u32 {
        self.min_th
    }
    /// Upper threshold.
    pub fn max_th(&self) -> u32 {
        self.max_th
    }
    /// Gentle RED.
    pub fn gentle(&self) -> bool {
        self.gentle
    }
    /// Thresholds in bytes (else packets).
    pub fn bytes(&self) -> bool {
        self.bytes
    }
    /// Mark ECN-capable packets instead of dropping them.
    pub fn ecn(&self) -> bool {
        self.ecn
    }
    /// The idle decay's step, ns.
    pub fn idle_step_ns(&self) -> u64 {
        self.idle_step_ns
    }

    /// The drop probability for an average queue `avg` (before the byte
    /// scaling and the uniformisation): the RED or Gentle RED curve.
    pub fn p_b(&self, avg: f64) -> f64 {
        let (min, max, max_p) = (f64::from(self.min_th), f64::from(self.max_th), self.max_p());
        if avg <= min {
            0.0
        } else if avg < max {
            max_p * (avg - min) / (max - min)
        } else if self.gentle {
            // c_3 · avg − c_4: max_p at max_th, 1 at 2 · max_th.
            (1.0 - max_p) / max * avg - (1.0 - 2.0 * max_p)
        } else {
            1.0
        }
    }
}

/// One queue's RED state.
#[derive(Debug, Clone)]
pub struct Red {
    /// Average queue, packets or bytes.
    avg: f64,
    /// Packets accepted since the last drop; -1 right after crossing
    /// `min_th` from below (dummynet's `count`).
    count: i64,
    /// The uniform number of the uniformisation.
    random: f64,
    /// When the queue went empty, ns.
    idle_since: u64,
}

impl Default for Red {
    fn default() -> Self {
        Self {
            avg: 0.0,
            count: -1,
            random: 0.0,
            idle_since: 0,
        }
    }
}

impl Red {
    /// The average queue.
    pub fn avg(&self) -> f64 {
        self.avg
    }

    /// A packet arrives and finds its queue as `a` says. Accept, mark or
    /// drop it.
    pub fn on_enqueue(&mut self, p: &RedParams, rng: &mut Rng, a: Arrival) -> Decision {
        let Arrival {
            now_ns: now,
            len,
            ecn_capable,
            ..
        } = a;
        let q = if p.bytes { a.bytes } else { a.pkts };
        if q != 0 {
            self.avg += (f64::from(q) - self.avg) * p.w_q();
        } else if self.avg != 0.0 {
            let idle = now.saturating_sub(self.idle_since);
            let t = idle.checked_div(p.idle_step_ns).unwrap_or(u64::MAX);
            self.avg = if t < LOOKUP_DEPTH {
                self.avg * (1.0 - p.w_q()).powi(t as i32 + 1)
            } else {
                0.0
            };
        }
        let (min, max) = (f64::from(p.min_th), f64::from(p.max_th));
        if self.avg < min {
            self.count = -1;
            return Decision::Deliver;
        }
        if self.avg >= max && !p.gentle {
            self.count = -1;
            return self.drop(p, ecn_capable);
        }
        let mut p_b = p.p_b(self.avg);
        if p.bytes {
            p_b = p_b * f64::from(len) / MAX_PKT_SIZE;
        }
        self.count += 1;
        if self.count == 0 {
            self.random = rng.unit();
        } else if p_b * self.count as f64 > self.random {
            self.count = 0;
            self.random = rng.unit();
            return self.drop(p, ecn_capable);
        }
        Decision::Deliver
    }

    fn drop(&self, p: &RedParams, ecn_capable: bool) -> Decision {
        if p.ecn && ecn_capable {
            Decision::Mark
        } else {
            Decision::Drop
        }
    }

    /// The queue went empty at `now` (the idle decay counts from here).
    pub fn on_empty(&mut self, now: u64) {
        self.idle_since = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(now_ns: u64, pkts: u32, bytes: u32, len: u32, ecn_capable: bool) -> Arrival {
        Arrival {
            now_ns,
            pkts,
            bytes,
            len,
            ecn_capable,
        }
    }

    #[test]
    fn parameters_are_checked_with_their_ranges() {
        assert!(RedParams::new(0.002, 10, 30, 0.1, false, false, false).is_ok());
        for (w, min, max, p) in [
            (0.0, 10, 30, 0.1),
            (1.5, 10, 30, 0.1),
            (0.002, 30, 30, 0.1),
            (0.002, 10, 30, 0.0),
            (0.002, 10, 30, 1.1),
            (0.002, 0, 0, 0.1),
        ] {
            assert!(
                RedParams::new(w, min, max, p, false, false, false).is_err(),
                "{w} {min} {max} {p}"
            );
        }
    }

    #[test]
    fn the_drop_curves_are_reds_and_gentle_reds() {
        let red = RedParams::new(0.002, 10, 30, 0.1, false, false, false).expect("red");
        let gred = RedParams::new(0.002, 10, 30, 0.1, true, false, false).expect("gred");
        for (avg, want_red, want_gred) in [
            (5.0, 0.0, 0.0),
            (10.0, 0.0, 0.0),
            (20.0, 0.05, 0.05),
            (29.0, 0.095, 0.095),
            (30.0, 1.0, 0.1),
            (45.0, 1.0, 0.55),
            (60.0, 1.0, 1.0),
        ] {
            assert!((red.p_b(avg) - want_red).abs() < 1e-12, "red {avg}");
            assert!((gred.p_b(avg) - want_gred).abs() < 1e-12, "gred {avg}");
        }
    }

    #[test]
    fn the_average_follows_the_ewma_and_decays_when_idle() {
        let p = RedParams::new(0.25, 100, 200, 0.1, false, false, false)
            .expect("red")
            .on_link(Some(4_096_000)); // 512 B = 1 ms
        assert_eq!(p.idle_step_ns(), 1_000_000);
        let mut r = Red::default();
        let mut rng = Rng::new(1);
        let mut avg = 0.0f64;
        for q in [4u32, 8, 8, 2, 40] {
            let _ = r.on_enqueue(&p, &mut rng, arr(0, q, 0, 1500, false));
            avg += (f64::from(q) - avg) * 0.25;
            assert!((r.avg() - avg).abs() < 1e-12);
        }
        // Idle from 10 ms to 13.5 ms: 3 whole steps, (1 - w_q)^4.
        r.on_empty(10_000_000);
        let _ = r.on_enqueue(&p, &mut rng, arr(13_500_000, 0, 0, 1500, false));
        avg *= 0.75f64.powi(4);
        assert!((r.avg() - avg).abs() < 1e-12, "{} vs {avg}", r.avg());
        // 256 steps or more: 0.
        let _ = r.on_enqueue(&p, &mut rng, arr(13_500_001, 20, 0, 1500, false));
        r.on_empty(20_000_000);
        let _ = r.on_enqueue(
            &p,
            &mut rng,
            arr(20_000_000 + 256_000_000, 0, 0, 1500, false),
        );
        assert_eq!(r.avg(), 0.0);
    }

    /// A queue held at a constant length: the average converges to it, and
    /// the drop rate is what uniformised RED gives for its `p_b`: the gap
    /// between drops is `ceil(u / p_b)`, uniform on 1..=1/p_b, of mean
    /// `sum over k >= 0 of max(0, 1 - k·p_b)` (10.5 packets at p_b = 0.05).
    #[test]
    fn the_drop_rate_matches_the_formula_at_a_steady_queue() {
        for (q, gentle, want_pb) in [(20u32, false, 0.05), (40, true, 0.4)] {
            let p = RedParams::new(0.02, 10, 30, 0.1, gentle, false, false).expect("red");
            let mut r = Red::default();
            let mut rng = Rng::new(7);
            for _ in 0..2000 {
                let _ = r.on_enqueue(&p, &mut rng, arr(0, q, 0, 1500, false));
            }
            assert!((r.avg() - f64::from(q)).abs() < 1e-6);
            let n = 400_000;
            let drops = (0..n)
                .filter(|_| r.on_enqueue(&p, &mut rng, arr(0, q, 0, 1500, false)) == Decision::Drop)
                .count();
            let gap: f64 = (0..)
                .map(|k| 1.0 - f64::from(k) * want_pb)
                .take_while(|&x| x > 0.0)
                .sum();
            let want = n as f64 / gap;
            let got = drops as f64;
            assert!(
                (got - want).abs() < 0.03 * want,
                "q {q}: {drops} drops, want {want:.0}"
            );
        }
    }

    #[test]
    fn above_max_th_red_drops_everything_and_ecn_marks_instead() {
        let p = RedParams::new(1.0, 10, 30, 0.1, false, false, true).expect("red");
        let mut r = Red::default();
        let mut rng = Rng::new(3);
        assert_eq!(
            r.on_enqueue(&p, &mut rng, arr(0, 31, 0, 100, false)),
            Decision::Drop
        );
        assert_eq!(
            r.on_enqueue(&p, &mut rng, arr(0, 31, 0, 100, true)),
            Decision::Mark
        );
        assert_eq!(
            r.on_enqueue(&p, &mut rng, arr(0, 5, 0, 100, true)),
            Decision::Deliver
        );
    }
}
