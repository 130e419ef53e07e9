//! Delay jitter, drawn as Linux netem draws it (`net/sched/sch_netem.c`:
//! `tabledist`, `get_crandom`), for `delay D jitter J distribution X`.
//!
//! A packet's propagation delay is `D` plus a sample of the distribution
//! scaled by `J`: uniform on `[D − J, D + J)` by default; with a table, `D +
//! J · t / 8192` for an entry `t` picked at random from the table — an
//! inverse CDF in units of 1/8192 of `J`, the format of iproute2's `.dist`
//! files (`normal`, `pareto`, `paretonormal`, or a file of one's own; the
//! tables are read where iproute2 installed them, never copied here). The
//! random numbers are 32-bit; with a `correlation` ρ each is `(1 − ρ)·u +
//! ρ·previous` in netem's fixed point (which, as netem's, narrows the
//! spread as ρ grows rather than keeping the marginal distribution: a
//! probability compared with such draws, as `reorder 25% 50%` does, comes
//! out near 7 %, not 25 %). A negative delay counts as 0.
//!
//! Order: by default a packet never leaves before the one sent before it on
//! the same link (its delay is raised to keep it behind), as users expect of
//! a link; `reorder_by_jitter` lets jitter reorder packets, as netem does
//! without `rate`.

use crate::rng::Rng;
use std::sync::Arc;

/// The unit of a distribution table's entries: one `jitter` is 8192.
pub const DIST_SCALE: i64 = 8192;
/// Largest jitter accepted: 10 s (netem keeps it in a signed 32-bit ns
/// count within its arithmetic; beyond this it is a unit mistake).
pub const MAX_JITTER_NS: u64 = 10_000_000_000;
/// Most entries a table may have (tc's limit).
pub const MAX_TABLE: usize = 16 * 1024;

/// A distribution table as iproute2 writes it: `#` comments, then
/// whitespace-separated integers in −32768..=32767. Errors name the
/// offending word.
pub fn parse_table(text: &str) -> Result<Arc<[i16]>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for w in line.split_whitespace() {
            let v: i16 = w.parse().map_err(|_| {
                format!("line {}: {w:?} is not an integer in -32768..=32767", n + 1)
            })?;
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err("no entries".to_owned());
    }
    if out.len() > MAX_TABLE {
        return Err(format!("{} entries: at most {MAX_TABLE}", out.len()));
    }
    Ok(out.into())
}

/// netem's correlated random numbers (`get_crandom`): each 32-bit draw is
/// `(1 − ρ)·u + ρ·previous` in fixed point.
#[derive(Debug, Clone)]
pub struct CorrRandom {
    /// The correlation in units of 2^-32.
    rho: u32,
    last: u32,
    rng: Rng,
}

impl CorrRandom {
    /// Correlation 0..=1, seeded.
    pub fn new(correlation: f64, seed: u64) -> Self {
        Self {
            rho: (correlation.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32,
            last: 0,
            rng: Rng::new(seed),
        }
    }

    /// The next 32-bit number.
    #[inline]
    pub fn draw(&mut self) -> u32 {
        let value = (self.rng.next_u64() >> 32) as u32;
        if self.rho == 0 {
            return value;
        }
        let rho = u64::from(self.rho) + 1;
        let answer = (u64::from(value) * ((1u64 << 32) - rho) + u64::from(self.last) * rho) >> 32;
        self.last = answer as u32;
        self.last
    }
}

/// A probability as a 32-bit threshold, as tc passes netem's percentages.
pub(super) fn threshold32(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32
}

/// netem's `reorder P [CORR] gap G`: after `G − 1` packets sent with the
/// delay, each packet skips it with probability `P` (correlated), which
/// sends it ahead of the delayed ones; the count restarts after one does.
#[derive(Debug, Clone)]
pub struct Reorder {
    p: u32,
    /// `gap − 1`: packets delayed after one sent early.
    gap_less_one: u32,
    counter: u32,
    rnd: CorrRandom,
}

impl Reorder {
    /// Probability 0..=1, correlation 0..=1, gap ≥ 1, seeded.
    pub fn new(p: f64, correlation: f64, gap: u32, seed: u64) -> Self {
        Self {
            p: threshold32(p),
            gap_less_one: gap.max(1) - 1,
            counter: 0,
            rnd: CorrRandom::new(correlation, seed),
        }
    }

    /// Whether the next packet skips the delay (netem's test, inverted:
    /// delayed when `counter < gap − 1` or `p < rnd`).
    #[inline]
    pub fn skips_delay(&mut self) -> bool {
        if self.counter < self.gap_less_one || self.p < self.rnd.draw() {
            self.counter = self.counter.saturating_add(1);
            false
        } else {
            self.counter = 0;
            true
        }
    }
}

/// A distribution table scaled to a jitter σ, once when the pipe is built
/// (shared by a dynamic pipe's instances): each entry `e` as its offset
/// `σ·e/8192` ns, rounded half away from zero as netem's `(σ % 8192)·e ±
/// 4096) / 8192 + (σ / 8192)·e` (equal: both parts have e's sign; σ ≤ 10 s
/// and |e| ≤ 2^15 fit in i64). A packet then costs a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledTable(Arc<[i64]>);

impl ScaledTable {
    /// `table`'s entries scaled to `sigma_ns` (at most [`MAX_JITTER_NS`]).
    pub fn new(sigma_ns: u64, table: &[i16]) -> Self {
        let sigma = i64::try_from(sigma_ns.min(MAX_JITTER_NS)).unwrap_or(0);
        Self(
            table
                .iter()
                .map(|&e| {
                    let mut x = sigma * i64::from(e);
                    x += if x >= 0 {
                        DIST_SCALE / 2
                    } else {
                        -DIST_SCALE / 2
                    };
                    x / DIST_SCALE
                })
                .collect(),
        )
    }
}

/// Draws each packet's delay.
#[derive(Debug, Clone)]
pub struct Jitter {
    /// −σ and 2σ: the uniform draw's base and span.
    lo_ns: i64,
    span_ns: u64,
    table: Option<ScaledTable>,
    rnd: CorrRandom,
}

impl Jitter {
    /// Jitter `sigma_ns` (`table`: the distribution scaled to it, `None`
    /// uniform), correlation 0..=1, seeded. The delay it spreads is given
    /// with each draw ([`Jitter::delay`]): a schedule may change it.
    pub fn new(sigma_ns: u64, table: Option<ScaledTable>, correlation: f64, seed: u64) -> Self {
        let sigma = i64::try_from(sigma_ns.min(MAX_JITTER_NS)).unwrap_or(0);
        Self {
            lo_ns: -sigma,
            span_ns: 2 * sigma as u64,
            table,
            rnd: CorrRandom::new(correlation, seed),
        }
    }

    /// The next packet's offset from the delay, ns.
    #[inline]
    pub fn offset(&mut self) -> i64 {
        let rnd = u64::from(self.rnd.draw());
        match &self.table {
            // Uniform on [−σ, σ): netem's `(rnd % 2σ) − σ`, the 32-bit draw
            // scaled to 2σ instead of reduced (the same distribution,
            // without a division).
            None => self.lo_ns + ((u128::from(rnd) * u128::from(self.span_ns)) >> 32) as i64,
            // An entry picked uniformly (netem: `rnd % size`).
            Some(ScaledTable(t)) => {
                let i = ((rnd * t.len() as u64) >> 32) as usize;
                t.get(i).copied().unwrap_or(0)
            }
        }
    }

    /// The next packet's delay around `mu_ns` (at most
    /// [`crate::config::MAX_DELAY_NS`], an hour: a pipe's delay is kept
    /// within it), ns; a negative one counts as 0; with σ = 0, `mu_ns`.
    #[inline]
    pub fn delay(&mut self, mu_ns: u64) -> u64 {
        // μ ≤ an hour and |offset| ≤ 10 s: neither the cast nor the sum
        // can overflow.
        (mu_ns as i64 + self.offset()).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kolmogorov-Smirnov statistic of `samples` against the CDF `cdf`.
    fn ks(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
        samples.sort_by(f64::total_cmp);
        let n = samples.len() as f64;
        samples
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
            })
            .fold(0.0, f64::max)
    }

    /// The critical value at α = 0.001 for n samples.
    fn ks_critical(n: usize) -> f64 {
        1.949 / (n as f64).sqrt()
    }

    /// netem scales a table entry in two parts to stay in 32 bits; the
    /// one-step form [`ScaledTable`] uses gives the same value for every σ
    /// and entry.
    #[test]
    fn table_scaling_equals_netems_two_part_form() {
        let mut r = Rng::new(3);
        for _ in 0..200_000 {
            let sigma = (r.next_u64() % (MAX_JITTER_NS + 1)) as i64;
            let e = (r.next_u64() % 65536) as i64 - 32768;
            let netem = {
                let mut t = (sigma % DIST_SCALE) * e;
                t += if t >= 0 {
                    DIST_SCALE / 2
                } else {
                    -DIST_SCALE / 2
                };
                t / DIST_SCALE + (sigma / DIST_SCALE) * e
            };
            let ScaledTable(t) = ScaledTable::new(sigma as u64, &[e as i16]);
            assert_eq!(t[0], netem, "sigma {sigma} e {e}");
        }
    }

    #[test]
    fn tables_parse_as_iproute2_writes_them() {
        let t = parse_table("# a comment\n -32768 -1 0\n 5 32767 # more\n").expect("table");
        assert_eq!(&t[..], &[-32768, -1, 0, 5, 32767]);
        assert!(parse_table("1 2 x").expect_err("word").contains("\"x\""));
        assert!(parse_table("40000").is_err());
        assert!(parse_table("# nothing\n").is_err());
    }

    #[test]
    fn uniform_jitter_is_uniform_on_mu_plus_minus_sigma() {
        let mut j = Jitter::new(20_000_000, None, 0.0, 1);
        let mut s: Vec<f64> = (0..20_000).map(|_| j.delay(100_000_000) as f64).collect();
        let d = ks(&mut s, |x| ((x - 80e6) / 40e6).clamp(0.0, 1.0));
        assert!(d < ks_critical(20_000), "D = {d}");
    }

    /// A table's samples follow the table: each entry equally likely, scaled
    /// as netem scales it (`μ + round(σ·e/8192)`). The distribution is
    /// discrete, so the Kolmogorov-Smirnov distance is taken at its values.
    #[test]
    fn table_jitter_follows_the_tables_distribution() {
        // A coarse "normal-like" inverse CDF: 64 entries.
        let table: Arc<[i16]> = (0..64)
            .map(|i| ((i as f64 - 31.5) / 16.0 * 8192.0) as i16)
            .collect();
        let (mu, sigma) = (50_000_000i64, 10_000_000i64);
        let scaled_table = ScaledTable::new(sigma as u64, &table);
        let mut j = Jitter::new(sigma as u64, Some(scaled_table), 0.0, 7);
        let scaled = |e: i64| mu + (sigma as f64 * e as f64 / DIST_SCALE as f64).round() as i64;
        let mut values: Vec<i64> = table.iter().map(|&e| scaled(i64::from(e))).collect();
        values.sort_unstable();
        let n = 20_000;
        let mut s: Vec<i64> = (0..n).map(|_| j.delay(mu as u64) as i64).collect();
        s.sort_unstable();
        assert!(
            s.iter().all(|x| values.binary_search(x).is_ok()),
            "a value off the table"
        );
        let d = values
            .iter()
            .map(|&x| {
                let emp = s.partition_point(|&v| v <= x) as f64 / n as f64;
                let model = values.partition_point(|&v| v <= x) as f64 / values.len() as f64;
                (emp - model).abs()
            })
            .fold(0.0, f64::max);
        assert!(d < ks_critical(n), "D = {d}");
    }

    #[test]
    fn correlation_makes_successive_samples_alike() {
        let corr = |rho: f64| {
            let mut j = Jitter::new(1 << 30, None, rho, 3);
            let s: Vec<f64> = (0..50_000).map(|_| j.rnd.draw() as f64).collect();
            let m = s.iter().sum::<f64>() / s.len() as f64;
            let (mut num, mut den) = (0.0, 0.0);
            for w in s.windows(2) {
                num += (w[0] - m) * (w[1] - m);
                den += (w[0] - m) * (w[0] - m);
            }
            num / den
        };
        assert!(corr(0.0).abs() < 0.05);
        assert!((corr(0.5) - 0.5).abs() < 0.05, "{}", corr(0.5));
        assert!((corr(0.9) - 0.9).abs() < 0.05, "{}", corr(0.9));
    }

    #[test]
    fn negative_delays_count_as_zero() {
        let mut j = Jitter::new(1_000_000, None, 0.0, 9);
        assert!((0..1000).map(|_| j.delay(1_000)).any(|d| d == 0));
    }

    /// The share of packets that skip the delay: `P` with gap 1; with gap
    /// `G`, one per `G − 1 + 1/P` packets.
    #[test]
    fn reorder_skips_the_delay_at_netems_rate() {
        for (p, gap) in [(0.25, 1u32), (0.5, 5), (0.1, 3)] {
            let mut r = Reorder::new(p, 0.0, gap, 5);
            let n = 200_000;
            let k = (0..n).filter(|_| r.skips_delay()).count() as f64;
            let want = 1.0 / (f64::from(gap - 1) + 1.0 / p);
            let sd = (n as f64 * want * (1.0 - want)).sqrt();
            assert!(
                (k - n as f64 * want).abs() < 4.0 * sd + 0.01 * n as f64 * want,
                "p {p} gap {gap}: {k} of {n}, want {:.0}",
                n as f64 * want
            );
        }
    }
}
