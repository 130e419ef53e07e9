//! Receive-side accounting for one flow: packets, bytes, loss, duplicates,
//! reordering and one-way latency (an HdrHistogram, ns resolution, 1 µs..10 s).
//!
//! Sequence numbers are tracked with a sliding window of [`WINDOW`] sequence
//! numbers above the contiguous prefix: inside it a repeat is a *duplicate*
//! and an arrival below the highest seen a *reorder*. When the window has to
//! move past holes, those are *given up*; an arrival below the window is then
//! taken as one of them (`late`, also a reorder), else as a duplicate.
//! Loss is what never arrived: `highest + 1 - unique`.

use hdrhistogram::Histogram;

/// Sequence numbers remembered above the contiguous prefix.
pub const WINDOW: u64 = 4096;

/// Latency range of the histogram, ns.
pub const LATENCY_MIN_NS: u64 = 1_000;
/// Upper end, ns.
pub const LATENCY_MAX_NS: u64 = 10_000_000_000;

/// One flow's receive statistics.
#[derive(Debug, Clone)]
pub struct FlowRx {
    /// Packets received (including duplicates).
    pub packets: u64,
    /// Bytes received (including duplicates).
    pub bytes: u64,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Repeats of a sequence number already received.
    pub duplicates: u64,
    /// Arrivals below the highest sequence number seen.
    pub reordered: u64,
    /// Arrivals too old for the window (counted in `reordered` too).
    pub late: u64,
    /// Highest sequence number seen (None before the first packet).
    pub highest: Option<u64>,
    /// All sequence numbers below this have arrived.
    base: u64,
    /// Bit i: `base + i` has arrived.
    window: Vec<u64>,
    /// Sequence numbers the window moved past without their arrival.
    given_up: u64,
    /// One-way latency, ns.
    pub latency: Histogram<u64>,
    /// Latencies outside the histogram's range (clock skew, > 10 s).
    pub latency_out_of_range: u64,
    /// The DSCP values seen (bit d: DSCP d), where the engine sees the IP
    /// header (AF_XDP; the socket engine does not).
    pub dscp_seen: u64,
}

impl Default for FlowRx {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowRx {
    /// Empty statistics.
    pub fn new() -> Self {
        Self {
            packets: 0,
            bytes: 0,
            unique: 0,
            duplicates: 0,
            reordered: 0,
            late: 0,
            highest: None,
            base: 0,
            window: vec![0; (WINDOW / 64) as usize],
            given_up: 0,
            dscp_seen: 0,
            latency: Histogram::new_with_bounds(LATENCY_MIN_NS, LATENCY_MAX_NS, 3)
                .expect("static histogram bounds are valid"),
            latency_out_of_range: 0,
        }
    }

    fn bit(&self, seq: u64) -> bool {
        let i = seq - self.base;
        self.window[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, seq: u64) {
        let i = seq - self.base;
        self.window[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Slides the window so that `seq` fits. A sequence number pushed out
    /// below the window without having arrived is *given up*: if it turns up
    /// later it is a late arrival, otherwise it stays lost.
    fn slide(&mut self, seq: u64) {
        while seq >= self.base + WINDOW {
            if !self.bit(self.base) {
                self.given_up += 1;
            }
            self.shift_one();
        }
    }

    fn shift_one(&mut self) {
        // Drop bit 0 (base), shift the bitmap down by one.
        let mut carry = 0u64;
        for w in self.window.iter_mut().rev() {
            let next = *w & 1;
            *w = (*w >> 1) | (carry << 63);
            carry = next;
        }
        self.base += 1;
    }

    /// Records a packet of `len` bytes with stamp sequence `seq`, sent at
    /// `tx_ns` and received at `rx_ns` (same clock).
    pub fn record(&mut self, seq: u64, len: u32, tx_ns: u64, rx_ns: u64) {
        self.packets += 1;
        self.bytes += len as u64;
        let lat = rx_ns.saturating_sub(tx_ns).max(LATENCY_MIN_NS);
        if rx_ns < tx_ns || self.latency.record(lat).is_err() {
            self.latency_out_of_range += 1;
        }
        let below_highest = self.highest.is_some_and(|h| seq < h);
        if seq < self.base {
            // Below the window: everything there arrived, except what the window gave
            // up on. Ambiguous without a longer memory: while holes were given up,
            // take it as one of them (late); otherwise it is a duplicate.
            if self.given_up > 0 {
                self.given_up -= 1;
                self.late += 1;
                self.reordered += 1;
                self.unique += 1;
            } else {
                self.duplicates += 1;
            }
            return;
        }
        self.slide(seq);
        if self.bit(seq) {
            self.duplicates += 1;
            return;
        }
        self.set(seq);
        self.unique += 1;
        if below_highest {
            self.reordered += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        while self.bit(self.base) {
            self.shift_one();
        }
    }

    /// Packets that never arrived (of those up to the highest seen).
    pub fn lost(&self) -> u64 {
        self.highest
            .map_or(0, |h| (h + 1).saturating_sub(self.unique))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: &[u64]) -> FlowRx {
        let mut f = FlowRx::new();
        for &s in seqs {
            f.record(s, 100, 0, 10_000);
        }
        f
    }

    #[test]
    fn in_order_no_loss() {
        let f = feed(&(0..10_000).collect::<Vec<_>>());
        assert_eq!(
            (f.unique, f.lost(), f.duplicates, f.reordered),
            (10_000, 0, 0, 0)
        );
        assert_eq!(f.bytes, 1_000_000);
    }

    #[test]
    fn loss_duplicates_and_reordering_are_told_apart() {
        // 0 1 3 2 2 5 (4 lost) 6 6
        let f = feed(&[0, 1, 3, 2, 2, 5, 6, 6]);
        assert_eq!(f.unique, 6);
        assert_eq!(f.duplicates, 2, "2 and 6 repeated");
        assert_eq!(f.reordered, 1, "2 after 3");
        assert_eq!(f.lost(), 1, "4 never came");
        assert_eq!(f.packets, 8);
    }

    #[test]
    fn a_late_arrival_fills_a_hole() {
        let mut seqs: Vec<u64> = (0..100).filter(|&s| s != 40).collect();
        seqs.push(40);
        let f = feed(&seqs);
        assert_eq!((f.lost(), f.reordered, f.duplicates), (0, 1, 0));
    }

    #[test]
    fn arrivals_older_than_the_window_count_as_late() {
        let mut seqs: Vec<u64> = (1..WINDOW * 3).collect(); // 0 missing
        seqs.push(0);
        let f = feed(&seqs);
        assert_eq!(f.late, 1);
        assert_eq!(f.lost(), 0, "it did arrive");
    }

    #[test]
    fn latency_lands_in_the_histogram() {
        let mut f = FlowRx::new();
        for i in 0..1000u64 {
            f.record(i, 64, 1_000_000 * i, 1_000_000 * i + 5_000_000 + i);
        }
        let p50 = f.latency.value_at_quantile(0.5);
        assert!((4_990_000..=5_010_000).contains(&p50), "p50 {p50}");
        f.record(1000, 64, 10, 5); // clock went backwards
        assert_eq!(f.latency_out_of_range, 1);
    }
}
