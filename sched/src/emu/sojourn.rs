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
//!
//! The buckets live in 34 blocks of 128 (1 KiB each; a block is a power of
//! two). A static pipe's histogram has every block from the start
//! ([`SojournHist::new`]: no allocation when recording). A dynamic pipe's
//! instances — up to millions, each with its own — take a block when a
//! time first falls in it ([`SojournHist::lazy`]: the times of one link
//! cluster in a few powers of two, so an instance holds a few KiB instead
//! of 34; at most 34 allocations in its life, like its creation's).

use hdrhistogram::Histogram;

/// Buckets per power of two above the exact range (2^7).
const SUB_BITS: u32 = 7;
/// Values below this are exact.
const EXACT: u64 = 1 << (SUB_BITS + 1);
/// Largest value kept apart, ns (2^40 ns, about 18 minutes).
pub const MAX_NS: u64 = (1 << 40) - 1;
/// Buckets: the exact ones, then 128 per power of two from 2^8 to 2^39.
const LEN: usize = EXACT as usize + (40 - (SUB_BITS as usize + 1)) * (1 << SUB_BITS);
/// Buckets per block.
const BLOCK: usize = 1 << SUB_BITS;
/// Blocks.
const BLOCKS: usize = LEN / BLOCK;

/// A block of buckets.
type Block = Box<[u64; BLOCK]>;

/// Sojourn times, ns.
#[derive(Debug, Clone)]
pub struct SojournHist {
    /// `BLOCKS` blocks, each allocated (`new`) or when first used (`lazy`).
    blocks: Box<[Option<Block>]>,
    total: u64,
    max: u64,
}

impl Default for SojournHist {
    fn default() -> Self {
        Self::new()
    }
}

impl SojournHist {
    /// An empty histogram with all its buckets (about 34 KiB): recording
    /// never allocates.
    pub fn new() -> Self {
        Self {
            blocks: (0..BLOCKS).map(|_| Some(Box::new([0; BLOCK]))).collect(),
            total: 0,
            max: 0,
        }
    }

    /// An empty histogram that takes a block of buckets (1 KiB) when a
    /// time first falls in it.
    pub fn lazy() -> Self {
        Self {
            blocks: (0..BLOCKS).map(|_| None).collect(),
            total: 0,
            max: 0,
        }
    }

    /// Whether it was made [`SojournHist::lazy`] (and has not used every block).
    pub fn is_lazy(&self) -> bool {
        self.blocks.iter().any(Option::is_none)
    }

    /// The counts, bucket by bucket (0 for blocks never taken).
    fn counts(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.iter().flat_map(|b| {
            let blk: &[u64] = b.as_deref().map_or(&[0; BLOCK], |b| &b[..]);
            blk.iter().copied()
        })
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
        let i = Self::index(v);
        match self.blocks.get_mut(i / BLOCK) {
            Some(Some(b)) => b[i % BLOCK] += 1,
            Some(b @ None) => Self::first_in(b, i),
            None => {}
        }
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// A lazy histogram's first time in the block of bucket `i`.
    #[cold]
    fn first_in(b: &mut Option<Block>, i: usize) {
        b.get_or_insert_with(|| Box::new([0; BLOCK]))[i % BLOCK] += 1;
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
        for (a, b) in self.blocks.iter_mut().zip(o.blocks.iter()) {
            if let Some(b) = b {
                let a = a.get_or_insert_with(|| Box::new([0; BLOCK]));
                for (x, y) in a.iter_mut().zip(b.iter()) {
                    *x += y;
                }
            }
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
        for (i, n) in self.counts().enumerate().filter(|&(_, n)| n > 0) {
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
        // A lazy one records the same, holding only the blocks it used.
        let mut lazy = SojournHist::lazy();
        for v in [5, 300, 310, 600_000, 1_000_000] {
            lazy.record(v);
        }
        let used = lazy.blocks.iter().filter(|b| b.is_some()).count();
        assert_eq!(used, 3, "blocks of 5, ~300 and 0.5-1 ms");
        let mut eager = SojournHist::new();
        eager.add(&lazy);
        assert_eq!(eager.to_hdr(), lazy.to_hdr());
        assert_eq!(lazy.counts().sum::<u64>(), 5);
    }
}
