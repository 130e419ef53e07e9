//! The sojourn-time histogram a pipe records into for every packet it
//! sends: HdrHistogram's log-linear layout at two significant digits, cut
//! down to what the packet path needs — one index computation and one
//! increment. Reports convert it to an [`hdrhistogram::Histogram`]
//! ([`SojournHist::to_hdr`]) for its quantiles and merging.
//!
//! Why not record into `hdrhistogram` directly: measured with callgrind in
//! `emu-bench` (fifo, 1024 flows), its `record` cost 46 instructions per
//! packet — 6 % of the emulator's whole per-packet cost — against about 12
//! here; the layout and precision are the same.
//!
//! Layout: values below 256 ns have a bucket each; above, each power of two
//! is split into 128 equal buckets (a bucket is within 1/128 of its value:
//! under 0.8 %), up to [`MAX_NS`]; longer times count as `MAX_NS`.

use hdrhistogram::Histogram;

/// Buckets per power of two above the exact range (2^7).
const SUB_BITS: u32 = 7;
/// Values below this are exact.
const EXACT: u64 = 1 << (SUB_BITS + 1);
/// Largest value kept apart, ns (2^40 ns, about 18 minutes).
pub const MAX_NS: u64 = (1 << 40) - 1;
/// Buckets: the exact ones, then 128 per power of two from 2^8 to 2^39.
const LEN: usize = EXACT as usize + (40 - (SUB_BITS as usize + 1)) * (1 << SUB_BITS);

/// Sojourn times, ns.
#[derive(Debug, Clone)]
pub struct SojournHist {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for SojournHist {
    fn default() -> Self {
        Self::new()
    }
}

impl SojournHist {
    /// An empty histogram (about 34 KiB).
    pub fn new() -> Self {
        Self {
            counts: vec![0; LEN].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    /// The bucket of `v` (already at most `MAX_NS`).
    #[inline]
    fn index(v: u64) -> usize {
        if v < EXACT {
            v as usize
        } else {
            // msb in 8..=39; keep the 8 bits from it down: 128..=255.
            let shift = 63 - v.leading_zeros() - SUB_BITS;
            let m = (v >> shift) as usize - (1 << SUB_BITS);
            EXACT as usize + ((shift as usize - 1) << SUB_BITS) + m
        }
    }

    /// The smallest value of bucket `i`, and its width.
    fn bucket(i: usize) -> (u64, u64) {
        if i < EXACT as usize {
            (i as u64, 1)
        } else {
            let j = i - EXACT as usize;
            let shift = (j >> SUB_BITS) as u32 + 1;
            let m = (j & ((1 << SUB_BITS) - 1)) as u64 + (1 << SUB_BITS);
            (m << shift, 1 << shift)
        }
    }

    /// Counts one packet that waited `ns`.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let v = ns.min(MAX_NS);
        if let Some(c) = self.counts.get_mut(Self::index(v)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Packets counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The longest time counted (exact, up to `MAX_NS`).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &SojournHist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }

    /// The same counts as an HdrHistogram (each bucket at its middle, and
    /// one count of the maximum's bucket at the maximum, exactly), for
    /// quantiles and reports. Allocates.
    pub fn to_hdr(&self) -> Histogram<u64> {
        let mut h = super::pipe::sojourn_histogram();
        let top = (self.total > 0).then(|| Self::index(self.max));
        for (i, &n) in self.counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            let (lo, width) = Self::bucket(i);
            let mid = lo + width / 2;
            if Some(i) == top {
                h.saturating_record_n(mid.min(self.max), n - 1);
                h.saturating_record(self.max);
            } else {
                h.saturating_record_n(mid, n);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_and_each_value_lands_in_its_own() {
        let mut next = 0u64;
        for i in 0..LEN {
            let (lo, w) = SojournHist::bucket(i);
            assert_eq!(lo, next, "bucket {i}");
            assert_eq!(SojournHist::index(lo), i);
            assert_eq!(SojournHist::index(lo + w - 1), i);
            // Within 1/128 of its values above the exact range.
            assert!(w == 1 || w * 128 <= lo, "bucket {i}: {lo} + {w}");
            next = lo + w;
        }
        assert_eq!(next, MAX_NS + 1);
    }

    #[test]
    fn quantiles_match_an_exact_histogram_within_its_precision() {
        let mut ours = SojournHist::new();
        let mut exact = super::super::pipe::sojourn_histogram();
        let mut x = 12_345u64;
        for _ in 0..100_000 {
            // A spread of values from ns to seconds.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((x >> 40) % 5_000_000_000) >> ((x >> 20) % 24);
            ours.record(v);
            exact.saturating_record(v);
        }
        let h = ours.to_hdr();
        assert_eq!(h.len(), 100_000);
        assert_eq!(h.max(), exact.max());
        for q in [0.01, 0.1, 0.5, 0.9, 0.99, 0.999] {
            let (a, b) = (
                h.value_at_quantile(q) as f64,
                exact.value_at_quantile(q) as f64,
            );
            assert!((a - b).abs() <= 0.02 * b + 1.0, "q {q}: {a} vs {b}");
        }
        let mut twice = ours.clone();
        twice.add(&ours);
        assert_eq!(twice.len(), 200_000);
    }
}
