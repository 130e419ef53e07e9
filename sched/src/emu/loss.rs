//! Loss at a pipe's entrance: uniform (dummynet's `plr`) or Gilbert-Elliott,
//! drawn from the pipe's seeded [`Rng`], one verdict per packet.

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
        }
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
        }
    }
}
