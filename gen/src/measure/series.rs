//! Per-interval throughput series and fairness (Jain's index over the flows
//! active in each interval, share-vs-weight error when weights are given),
//! using the same definitions as the scheduler's tests (`sched::testkit::metrics`).

use sched::testkit::metrics::{jain_index, share_error};

/// Bytes per flow per interval.
#[derive(Debug, Clone)]
pub struct Series {
    /// Interval length, ns.
    pub interval_ns: u64,
    /// Start of interval 0, ns.
    pub start_ns: u64,
    flows: usize,
    /// `buckets[i][f]`: bytes flow `f` received in interval `i`.
    buckets: Vec<Vec<u64>>,
    /// `packets[i][f]`: its packets.
    packets: Vec<Vec<u64>>,
}

/// One interval's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalReport {
    /// Interval index.
    pub index: usize,
    /// Per-flow rate, bit/s.
    pub rate_bps: Vec<f64>,
    /// Jain's index over the flows with traffic in the interval.
    pub jain: f64,
    /// Largest relative error of a flow's share vs its weight (flows with traffic).
    pub share_error: Option<f64>,
}

impl Series {
    /// A series of `flows` flows, intervals of `interval_ns` from `start_ns`.
    pub fn new(flows: usize, interval_ns: u64, start_ns: u64) -> Self {
        Self {
            interval_ns: interval_ns.max(1),
            start_ns,
            flows,
            buckets: Vec::new(),
            packets: Vec::new(),
        }
    }

    /// Counts a packet of `bytes` bytes of flow `flow` at `t_ns` (ignored
    /// before the start).
    #[inline]
    pub fn record(&mut self, flow: usize, bytes: u64, t_ns: u64) {
        if flow >= self.flows || t_ns < self.start_ns {
            return;
        }
        let i = ((t_ns - self.start_ns) / self.interval_ns) as usize;
        while self.buckets.len() <= i {
            self.buckets.push(vec![0; self.flows]);
            self.packets.push(vec![0; self.flows]);
        }
        self.buckets[i][flow] += bytes;
        self.packets[i][flow] += 1;
    }

    /// Bytes per flow in interval `i`.
    pub fn bytes(&self, i: usize) -> Option<&[u64]> {
        self.buckets.get(i).map(Vec::as_slice)
    }

    /// Packets per flow in interval `i`.
    pub fn packets(&self, i: usize) -> Option<&[u64]> {
        self.packets.get(i).map(Vec::as_slice)
    }

    /// Number of flows.
    pub fn flows(&self) -> usize {
        self.flows
    }

    /// Intervals recorded so far.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The figures of interval `i`; `weights` (one per flow) for the share error.
    pub fn report(&self, i: usize, weights: Option<&[f64]>) -> Option<IntervalReport> {
        let b = self.buckets.get(i)?;
        let secs = self.interval_ns as f64 / 1e9;
        let rate_bps: Vec<f64> = b.iter().map(|&x| x as f64 * 8.0 / secs).collect();
        let active: Vec<usize> = (0..self.flows).filter(|&f| b[f] > 0).collect();
        let act_rates: Vec<f64> = active.iter().map(|&f| rate_bps[f]).collect();
        let share = weights.map(|w| {
            let aw: Vec<f64> = active
                .iter()
                .map(|&f| w.get(f).copied().unwrap_or(1.0))
                .collect();
            share_error(&act_rates, &aw)
        });
        // Jain's index over weight-normalised rates, as in the scheduler's tests.
        let norm: Vec<f64> = match weights {
            Some(w) => active
                .iter()
                .map(|&f| rate_bps[f] / w.get(f).copied().unwrap_or(1.0))
                .collect(),
            None => act_rates,
        };
        Some(IntervalReport {
            index: i,
            rate_bps,
            jain: jain_index(&norm),
            share_error: share,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_land_in_their_interval() {
        let mut s = Series::new(2, 100_000_000, 1_000);
        s.record(0, 1000, 1_000); // interval 0
        s.record(1, 500, 100_000_999); // still interval 0
        s.record(1, 700, 100_001_000); // interval 1
        s.record(0, 9, 999); // before the start: ignored
        s.record(5, 9, 2_000); // unknown flow: ignored
        assert_eq!(s.len(), 2);
        let r0 = s.report(0, None).expect("interval 0");
        assert_eq!(r0.rate_bps, vec![80_000.0, 40_000.0]);
        let r1 = s.report(1, None).expect("interval 1");
        assert_eq!(r1.rate_bps[1], 56_000.0);
        assert_eq!(r1.jain, 1.0, "one active flow is trivially fair");
    }

    #[test]
    fn weighted_fairness_per_interval() {
        let mut s = Series::new(4, 1_000_000_000, 0);
        for (f, w) in [1u64, 2, 3, 4].iter().enumerate() {
            s.record(f, 1_000_000 * w, 500);
        }
        let r = s.report(0, Some(&[1.0, 2.0, 3.0, 4.0])).expect("report");
        assert!((r.jain - 1.0).abs() < 1e-12, "{}", r.jain);
        assert!(r.share_error.expect("weights given") < 1e-12);
        let unweighted = s.report(0, None).expect("report");
        assert!(
            unweighted.jain < 0.9,
            "1:2:3:4 is unfair without weights: {}",
            unweighted.jain
        );
    }
}
