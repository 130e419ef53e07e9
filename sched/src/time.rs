//! Wrap-safe comparisons for virtual timestamps.
//!
//! Virtual times are `u64` fixed-point values that wrap around (with one
//! unit-weight flow, WF2Q+'s and QFQ's clocks wrap every 16 MiB of traffic,
//! see [`VT_FRAC_BITS`]). Two timestamps are compared by the sign of their
//! difference, which is right as long as they are less than 2^63 apart —
//! the algorithms keep every live timestamp within a few `lmax / weight` of
//! the virtual clock, far below that.

/// Fractional bits of virtual time: a packet of `len` bytes on a flow of
/// weight `w` advances its finish time by `len << VT_FRAC_BITS / w`.
///
/// Who depends on it: `len << VT_FRAC_BITS` must fit in 64 bits for
/// `len <= Lmax::MAX` (2^16 + 40 = 56 bits), and QFQ's group index range
/// (`algo::qfq::MIN_SLOT_SHIFT`) is derived from it.
pub const VT_FRAC_BITS: u32 = 40;

/// `a > b` in wrapping arithmetic (Linux `qfq_gt`: `(s64)(a - b) > 0`).
#[inline(always)]
pub fn vt_gt(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

/// `a >= b` in wrapping arithmetic.
#[inline(always)]
pub fn vt_ge(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) >= 0
}

/// The later of two timestamps, wrap-safely.
#[inline(always)]
pub fn vt_max(a: u64, b: u64) -> u64 {
    if vt_gt(a, b) {
        a
    } else {
        b
    }
}

/// `ONE << VT_FRAC_BITS / weight`, rounded down: the virtual-time cost of one byte.
#[inline]
pub fn inv_weight(weight: u32) -> u64 {
    (1u64 << VT_FRAC_BITS) / weight as u64
}

/// Exact virtual-clock advance: the clock moves by `len / wsum` per packet,
/// carried as quotient plus remainder so that it never drifts, however large
/// the weight sum (dummynet multiplies by a precomputed `ONE / wsum`, which
/// loses all precision once the sum passes 2^30 and is why it caps it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VClock {
    /// Virtual time, `VT_FRAC_BITS` fractional bits, wrapping.
    pub v: u64,
    rem: u64,
}

impl VClock {
    /// Advances by `len` bytes served with total weight `wsum` (> 0).
    #[inline(always)]
    pub fn advance(&mut self, len: u32, wsum: u64) {
        // len << 40 < 2^57, rem < wsum <= 2^24 * 2^16 = 2^40: the sum fits in 64 bits.
        let num = ((len as u64) << VT_FRAC_BITS) + self.rem;
        self.v = self.v.wrapping_add(num / wsum);
        self.rem = num % wsum;
    }

    /// [`VClock::advance`] with a divisor known to be non-zero (no zero test).
    #[inline(always)]
    pub fn advance_nz(&mut self, len: u32, wsum: std::num::NonZeroU64) {
        let num = ((len as u64) << VT_FRAC_BITS) + self.rem;
        self.v = self.v.wrapping_add(num / wsum);
        self.rem = num % wsum;
    }

    /// Sets the clock (drops the carried remainder).
    #[inline]
    pub fn set(&mut self, v: u64) {
        self.v = v;
        self.rem = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_survive_wraparound() {
        let near = u64::MAX - 5;
        let past = near.wrapping_add(10); // wrapped to 4
        assert!(vt_gt(past, near));
        assert!(!vt_gt(near, past));
        assert!(vt_ge(past, past));
        assert_eq!(vt_max(near, past), past);
        assert_eq!(vt_max(past, near), past);
        // Plain comparison would get it wrong.
        assert!(past < near);
    }

    #[test]
    fn equal_is_not_greater() {
        assert!(!vt_gt(7, 7));
        assert!(vt_ge(7, 7));
    }

    #[test]
    fn clock_is_exact_over_many_steps() {
        // 3 bytes at a time over weight sum 7: after 7 steps exactly 3 << 40.
        let mut c = VClock::default();
        for _ in 0..7 {
            c.advance(3, 7);
        }
        assert_eq!(c.v, 3u64 << VT_FRAC_BITS);
        // A huge weight sum still advances (no underflow to zero as with ONE/wsum).
        let mut c = VClock::default();
        let wsum = 1_000_000u64 * 65_536;
        for _ in 0..1000 {
            c.advance(64, wsum);
        }
        assert_eq!(c.v, (64_000u64 << VT_FRAC_BITS) / wsum);
    }

    #[test]
    fn clock_wraps() {
        let mut c = VClock::default();
        c.set(u64::MAX);
        c.advance(1, 1);
        assert_eq!(c.v, (1u64 << VT_FRAC_BITS) - 1);
    }
}
