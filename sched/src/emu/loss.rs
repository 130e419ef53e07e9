//! Loss at a pipe's entrance: uniform (dummynet's `plr`), Gilbert-Elliott,
//! or netem's 4-state Markov model (`loss state p13 p31 p32 p23 p14`: S.
//! Salsano, F. Ludovici, A. Ordine, "Definition of a general and intuitive
//! loss model for packet networks and its implementation in the Netem module
//! in the Linux kernel", 2009; as Linux's `loss_4state` runs it), drawn from
//! the pipe's seeded [`Rng`], one verdict per packet.

use crate::rng::Rng;

/// The loss model applied at the pipe's entrance (a pipe's `plr` or
/// `[pipe.gilbert_elliott]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LossModel {
    /// No loss.
    #[default]
    None,
    /// Each packet is lost independently with probability `plr`.
    Uniform {
        /// Packet loss rate, 0..=1.
        plr: f64,
    },
    /// Gilbert-Elliott: a two-state Markov chain evaluated per packet. First
    /// the state moves (good→bad with probability `p`, bad→good with `r`), then
    /// the packet is delivered with probability `k` in the good state and `h`
    /// in the bad one (loss `1-k` / `1-h`). The Gilbert model is `k = 1, h = 0`.
    GilbertElliott {
        /// P(good → bad).
        p: f64,
        /// P(bad → good).
        r: f64,
        /// P(deliver | good).
        k: f64,
        /// P(deliver | bad).
        h: f64,
    },
    /// netem's 4-state model. States: 1 delivered in a gap, 2 delivered in a
    /// burst, 3 lost in a burst, 4 an isolated loss in a gap. Per packet the
    /// chain moves 1→4 (`p14`), 1→3 (`p13`), 2→3 (`p23`), 3→2 (`p32`), 3→1
    /// (`p31`), 4→1 (always), else stays; the packet is lost when the chain is
    /// then in 3 or 4.
    FourState {
        /// P(1 → 3): a burst starts.
        p13: f64,
        /// P(3 → 1): a burst ends.
        p31: f64,
        /// P(3 → 2): a loss inside a burst is followed by a delivery.
        p32: f64,
        /// P(2 → 3): a delivery inside a burst is followed by a loss.
        p23: f64,
        /// P(1 → 4): an isolated loss.
        p14: f64,
    },
}

impl LossModel {
    /// The long-run loss rate this model produces.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::None => 0.0,
            LossModel::Uniform { plr } => plr,
            LossModel::GilbertElliott { p, r, k, h } => {
                if p + r == 0.0 {
                    1.0 - k
                } else {
                    let pi_bad = p / (p + r);
                    (1.0 - pi_bad) * (1.0 - k) + pi_bad * (1.0 - h)
                }
            }
            LossModel::FourState { .. } => {
                let [_, _, pi3, pi4] = self.stationary();
                pi3 + pi4
            }
        }
    }

    /// The 4-state model's stationary distribution over states 1..=4 (from
    /// the balance equations: π3 = π1·p13/p31, π2 = π3·p32/p23, π4 = π1·p14);
    /// `[1, 0, 0, 0]` for the other models, or where a state is absorbing.
    pub fn stationary(&self) -> [f64; 4] {
        let LossModel::FourState {
            p13,
            p31,
            p32,
            p23,
            p14,
        } = *self
        else {
            return [1.0, 0.0, 0.0, 0.0];
        };
        if p31 <= 0.0 || (p32 > 0.0 && p23 <= 0.0) {
            // Bursts never end (or never lose again): not ergodic.
            return [1.0, 0.0, 0.0, 0.0];
        }
        let r3 = p13 / p31;
        let r2 = if p32 > 0.0 { r3 * p32 / p23 } else { 0.0 };
        let pi1 = 1.0 / (1.0 + r2 + r3 + p14);
        [pi1, pi1 * r2, pi1 * r3, pi1 * p14]
    }
}

/// A probability as a threshold on 64 random bits: `x < t` with probability
/// `prob` (exactly 0 for 0.0 and always for 1.0).
fn threshold(prob: f64) -> u64 {
    if prob <= 0.0 {
        0
    } else if prob >= 1.0 {
        u64::MAX
    } else {
        (prob * 18_446_744_073_709_551_616.0) as u64
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Loss {
    None,
    Uniform {
        t: u64,
    },
    Ge {
        p: u64,
        r: u64,
        k: u64,
        h: u64,
        bad: bool,
    },
    Four {
        /// Cumulative thresholds: state 1: [p14, p14 + p13); state 2: p23;
        /// state 3: [p32, p32 + p31).
        p14: u64,
        p13_14: u64,
        p23: u64,
        p32: u64,
        p31_32: u64,
        /// 1..=4.
        state: u8,
    },
}

impl Loss {
    /// The runtime form of `model`: probabilities as thresholds on 64 bits.
    pub(crate) fn new(model: &LossModel) -> Loss {
        match *model {
            LossModel::None => Loss::None,
            LossModel::Uniform { plr } => Loss::Uniform { t: threshold(plr) },
            LossModel::GilbertElliott { p, r, k, h } => Loss::Ge {
                p: threshold(p),
                r: threshold(r),
                k: threshold(k),
                h: threshold(h),
                bad: false,
            },
            LossModel::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            } => Loss::Four {
                p14: threshold(p14),
                p13_14: threshold(p13 + p14),
                p23: threshold(p23),
                p32: threshold(p32),
                p31_32: threshold(p31 + p32),
                state: 1,
            },
        }
    }

    /// Draws the verdict for one packet: true = lose it.
    #[inline]
    pub(crate) fn lose(&mut self, rng: &mut Rng) -> bool {
        match self {
            Loss::None => false,
            Loss::Uniform { t } => rng.next_u64() < *t,
            Loss::Ge { p, r, k, h, bad } => {
                let x = rng.next_u64();
                *bad = if *bad { x >= *r } else { x < *p };
                let deliver = if *bad { *h } else { *k };
                rng.next_u64() >= deliver
            }
            Loss::Four {
                p14,
                p13_14,
                p23,
                p32,
                p31_32,
                state,
            } => {
                let x = rng.next_u64();
                *state = match *state {
                    1 if x < *p14 => 4,
                    1 if x < *p13_14 => 3,
                    1 => 1,
                    2 if x < *p23 => 3,
                    2 => 2,
                    3 if x < *p32 => 2,
                    3 if x < *p31_32 => 1,
                    3 => 3,
                    _ => 1,
                };
                *state >= 3
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss rate and mean loss-run length of `model` over `n` packets.
    fn run(model: &LossModel, n: usize) -> (f64, f64) {
        let mut l = Loss::new(model);
        let mut rng = Rng::new(11);
        let (mut lost, mut runs, mut prev) = (0usize, 0usize, false);
        for _ in 0..n {
            let x = l.lose(&mut rng);
            lost += x as usize;
            runs += (x && !prev) as usize;
            prev = x;
        }
        (lost as f64 / n as f64, lost as f64 / runs.max(1) as f64)
    }

    #[test]
    fn four_state_loss_matches_its_stationary_rate_and_burst_lengths() {
        for (p13, p31, p32, p23, p14) in [
            (0.01, 0.3, 0.2, 0.4, 0.005),
            (0.05, 0.5, 0.0, 1.0, 0.0),
            (0.002, 0.1, 0.3, 0.2, 0.02),
        ] {
            let m = LossModel::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            };
            let [pi1, pi2, pi3, pi4] = m.stationary();
            assert!((pi1 + pi2 + pi3 + pi4 - 1.0).abs() < 1e-12);
            // Runs of losses: an isolated loss (1 packet), or a stay in state
            // 3 (geometric, mean 1 / (p31 + p32)); entered at these rates.
            let (e4, e3) = (pi1 * p14, pi1 * p13 + pi2 * p23);
            let want_run = (e4 + e3 / (p31 + p32)) / (e4 + e3);
            let n = 4_000_000;
            let (rate, mean_run) = run(&m, n);
            let want = m.mean_loss();
            // Binomial-ish bound inflated for burstiness: 5 % relative.
            assert!(
                (rate - want).abs() < 0.05 * want,
                "{m:?}: loss {rate} vs {want}"
            );
            assert!(
                (mean_run - want_run).abs() < 0.05 * want_run,
                "{m:?}: mean run {mean_run} vs {want_run}"
            );
        }
    }
}
