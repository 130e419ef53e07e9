//! The one random number generator of the crate: wyrand (Wang Yi's
//! generator: a Weyl sequence through a 64×64→128-bit multiply, period
//! 2^64, passes BigCrush and PractRand), seeded, the same sequence on every
//! platform (which `rand`'s `StdRng` does not promise). Loss models,
//! impairments, hash-table seeds and simulations take it. It replaced
//! SplitMix64 (so a seed now gives other draws than before) because every
//! impairment draws once per packet and wyrand takes about half the
//! instructions (bench-results/impair/).

/// A small, fast, seedable PRNG (wyrand). Deterministic across platforms,
/// which `rand`'s `StdRng` does not promise.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
