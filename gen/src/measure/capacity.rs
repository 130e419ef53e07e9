//! Bottleneck capacity from dispersion (the packet-pair / packet-train
//! method of pathrate): frames sent back to back leave the narrowest link
//! spaced by their transmission time there, and keep that spacing if
//! nothing else queues behind them. A train of `n` frames of `size` bytes
//! arriving over `dispersion` ns gives `(n-1)·(size+overhead)·8 / dispersion`.
//!
//! Each train gives one estimate; pairs are the first two frames of each
//! train (more sensitive to cross traffic and timer noise, as in the
//! literature). The estimate is the median of the trains, with the spread
//! (10th–90th percentile) reported so that a noisy path is visible.

use serde::Serialize;

/// What one train looked like at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainRx {
    /// Frames received.
    pub received: u64,
    /// First arrival, ns.
    pub first_ns: u64,
    /// Last arrival, ns.
    pub last_ns: u64,
    /// Second arrival, ns (for the pair estimate).
    pub second_ns: Option<u64>,
}

/// The estimate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Estimate {
    /// Trains sent.
    pub trains: usize,
    /// Trains with at least two frames received and a positive dispersion.
    pub usable: usize,
    /// Frame size (without FCS).
    pub size: u32,
    /// Overhead counted per frame.
    pub overhead: u32,
    /// Median train estimate, bit/s (frame + overhead bytes).
    pub capacity_bps: Option<f64>,
    /// 10th percentile.
    pub p10_bps: Option<f64>,
    /// 90th percentile.
    pub p90_bps: Option<f64>,
    /// Median packet-pair estimate, bit/s.
    pub pair_capacity_bps: Option<f64>,
    /// The same median counting frame bytes only (no overhead).
    pub capacity_frame_bytes_bps: Option<f64>,
    /// (p90 - p10) / median.
    pub relative_spread: Option<f64>,
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    Some(sorted[lo] * (1.0 - frac) + sorted[hi] * frac)
}

/// Estimates the capacity from the trains' arrivals.
pub fn estimate(trains: &[TrainRx], size: u32, overhead: u32) -> Estimate {
    let bits = (size + overhead) as f64 * 8.0;
    let mut t: Vec<f64> = trains
        .iter()
        .filter(|r| r.received >= 2 && r.last_ns > r.first_ns)
        .map(|r| (r.received - 1) as f64 * bits * 1e9 / (r.last_ns - r.first_ns) as f64)
        .collect();
    let mut p: Vec<f64> = trains
        .iter()
        .filter_map(|r| {
            let s = r.second_ns?;
            (s > r.first_ns).then(|| bits * 1e9 / (s - r.first_ns) as f64)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    p.sort_by(f64::total_cmp);
    let med = quantile(&t, 0.5);
    let (p10, p90) = (quantile(&t, 0.1), quantile(&t, 0.9));
    Estimate {
        trains: trains.len(),
        usable: t.len(),
        size,
        overhead,
        capacity_bps: med,
        p10_bps: p10,
        p90_bps: p90,
        pair_capacity_bps: quantile(&p, 0.5),
        capacity_frame_bytes_bps: med.map(|m| m * size as f64 / (size + overhead) as f64),
        relative_spread: match (med, p10, p90) {
            (Some(m), Some(a), Some(b)) if m > 0.0 => Some((b - a) / m),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_100_mbit_path() {
        // 1500 + 24 bytes at 100 Mbit/s: 121.92 µs apart.
        let gap = 121_920u64;
        let trains: Vec<TrainRx> = (0..10)
            .map(|i| TrainRx {
                received: 32,
                first_ns: i * 10_000_000,
                last_ns: i * 10_000_000 + 31 * gap,
                second_ns: Some(i * 10_000_000 + gap),
            })
            .collect();
        let e = estimate(&trains, 1500, 24);
        let c = e.capacity_bps.expect("usable");
        assert!((c - 100e6).abs() < 1e3, "{c}");
        assert!((e.pair_capacity_bps.expect("pairs") - 100e6).abs() < 1e3);
        assert!(e.relative_spread.expect("spread") < 1e-9);
        assert_eq!(e.usable, 10);
        let fb = e.capacity_frame_bytes_bps.expect("frame bytes");
        assert!((fb - 100e6 * 1500.0 / 1524.0).abs() < 1e3);
    }

    #[test]
    fn noisy_trains_show_their_spread_and_the_median_resists_outliers() {
        let mut trains: Vec<TrainRx> = (0..9)
            .map(|i| TrainRx {
                received: 16,
                first_ns: 0,
                last_ns: 15 * 120_000 + i * 1_000,
                second_ns: None,
            })
            .collect();
        // Cross traffic compressed one train (a far too high estimate).
        trains.push(TrainRx {
            received: 16,
            first_ns: 0,
            last_ns: 15 * 10_000,
            second_ns: None,
        });
        let e = estimate(&trains, 1476, 24);
        let c = e.capacity_bps.expect("usable");
        assert!((c - 100e6).abs() / 100e6 < 0.03, "{c}");
        assert!(e.relative_spread.expect("spread") > 0.0);
        assert_eq!(e.pair_capacity_bps, None);
    }

    #[test]
    fn unusable_trains_are_skipped() {
        let trains = [
            TrainRx {
                received: 1,
                first_ns: 5,
                last_ns: 5,
                second_ns: None,
            },
            TrainRx {
                received: 0,
                first_ns: 0,
                last_ns: 0,
                second_ns: None,
            },
        ];
        let e = estimate(&trains, 1500, 24);
        assert_eq!((e.usable, e.capacity_bps), (0, None));
    }
}
