//! Departure times: each flow's frame `k` is due at exactly
//! `start + k · size·8 / rate` (an exact fraction, so there is no drift over
//! any run length), and the flows are merged in due order with a heap.
//! Unpaced flows (`rate=max`) are due from their start and take turns.
//!
//! Pure and clock-free: the sender asks [`Pacer::pop_due`] with the time it
//! read, and sleeps until [`Pacer::next_due`].

use crate::traffic::spec::Flow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone)]
struct Clock {
    start: u64,
    end: Option<u64>,
    /// ns between frames as num/den; den 0 = unpaced.
    num: u128,
    den: u128,
    /// Next sequence number.
    next: u64,
    /// Frames to send at most.
    count: u64,
}

impl Clock {
    #[inline]
    fn due(&self, k: u64) -> u64 {
        if self.den == 0 {
            return self.start;
        }
        let off = (k as u128 * self.num) / self.den;
        self.start.saturating_add(off.min(u64::MAX as u128) as u64)
    }
}

/// The next frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    /// Flow index.
    pub flow: u32,
    /// Its sequence number.
    pub seq: u64,
    /// When it was due, ns.
    pub due: u64,
}

/// Merges the flows' departure schedules.
#[derive(Debug, Clone)]
pub struct Pacer {
    clocks: Vec<Clock>,
    /// (due, seq, flow): ties go to the lower sequence number, so unpaced
    /// flows (all due at their start) take turns.
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Run end: nothing is due at or after it.
    run_end: u64,
}

impl Pacer {
    /// Schedules `flows` for a run of `run_ns`.
    pub fn new(flows: &[Flow], run_ns: u64) -> Pacer {
        let clocks: Vec<Clock> = flows
            .iter()
            .map(|f| {
                let (num, den) = f.gap().unwrap_or((0, 0));
                Clock {
                    start: f.start_ns,
                    end: f.end_ns(),
                    num,
                    den,
                    next: 0,
                    count: f.count.unwrap_or(u64::MAX),
                }
            })
            .collect();
        let mut p = Pacer {
            heap: BinaryHeap::with_capacity(clocks.len()),
            clocks,
            run_end: run_ns,
        };
        for i in 0..p.clocks.len() {
            p.push(i as u32);
        }
        p
    }

    fn push(&mut self, flow: u32) {
        let c = &self.clocks[flow as usize];
        let due = c.due(c.next);
        let end = c.end.map_or(self.run_end, |e| e.min(self.run_end));
        if due < end && c.next < c.count {
            self.heap.push(Reverse((due, c.next, flow)));
        }
    }

    /// When the next frame is due (`None`: all flows have ended).
    #[inline]
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// The next frame if it is due at `now`; advances its flow. Unpaced
    /// flows end when `now` passes their end.
    #[inline]
    pub fn pop_due(&mut self, now: u64) -> Option<Departure> {
        loop {
            let &Reverse((due, seq, flow)) = self.heap.peek()?;
            if due > now {
                return None;
            }
            self.heap.pop();
            let c = &mut self.clocks[flow as usize];
            let end = c.end.map_or(self.run_end, |e| e.min(self.run_end));
            if c.den == 0 && now >= end {
                continue; // an unpaced flow past its end
            }
            c.next = seq + 1;
            self.push(flow);
            return Some(Departure { flow, seq, due });
        }
    }

    /// Frames each flow has been given so far.
    pub fn sent(&self, flow: usize) -> u64 {
        self.clocks.get(flow).map_or(0, |c| c.next)
    }

    /// Frames flow `flow` is scheduled to send in all (`None` if unpaced).
    pub fn planned(&self, flow: usize) -> Option<u64> {
        let c = self.clocks.get(flow)?;
        if c.den == 0 {
            return None;
        }
        let end = c.end.map_or(self.run_end, |e| e.min(self.run_end));
        if end <= c.start {
            return Some(0);
        }
        // Smallest k with due(k) >= end.
        let span = (end - c.start) as u128;
        Some(((span * c.den).div_ceil(c.num) as u64).min(c.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::spec::parse_flow;

    fn drain(p: &mut Pacer) -> Vec<Departure> {
        let mut v = Vec::new();
        while let Some(t) = p.next_due() {
            while let Some(d) = p.pop_due(t) {
                v.push(d);
            }
        }
        v
    }

    #[test]
    fn one_flow_is_exact_over_a_second() {
        // 1500 B at 1 Gbit/s: 12 µs apart; at 7 Mbit/s: 1714285.71… ns apart.
        for (rate, gap) in [(1_000_000_000u64, 12_000.0f64), (7_000_000, 1_714_285.714)] {
            let f = parse_flow(&format!("rate={rate}"), 0, 2048).expect("valid");
            let mut p = Pacer::new(&[f], 1_000_000_000);
            let d = drain(&mut p);
            let expect = (1e9 / gap).ceil() as usize;
            assert_eq!(d.len(), expect, "rate {rate}");
            assert_eq!(p.planned(0), Some(expect as u64));
            for (k, x) in d.iter().enumerate() {
                assert_eq!(x.seq, k as u64);
                let ideal = k as f64 * gap;
                assert!(
                    (x.due as f64 - ideal).abs() < 1.0,
                    "k {k}: {} vs {ideal}",
                    x.due
                );
            }
            let bits = d.len() as f64 * 1500.0 * 8.0;
            assert!(
                (bits - rate as f64).abs() / rate as f64 <= 0.005,
                "rate {rate}: {bits}"
            );
        }
    }

    #[test]
    fn flows_merge_in_due_order_and_respect_start_and_duration() {
        let a = parse_flow("rate=12M,size=1500", 0, 2048).expect("valid"); // 1 ms
        let b = parse_flow(
            "rate=24M,size=1500,dport=2,start=10ms,duration=5ms",
            1,
            2048,
        )
        .expect("valid"); // 0.5 ms
        let mut p = Pacer::new(&[a, b], 20_000_000);
        let d = drain(&mut p);
        assert!(d.windows(2).all(|w| w[0].due <= w[1].due), "in due order");
        let bs: Vec<u64> = d.iter().filter(|x| x.flow == 1).map(|x| x.due).collect();
        assert_eq!(bs.len(), 10, "5 ms at 0.5 ms");
        assert_eq!(bs[0], 10_000_000);
        assert_eq!(*bs.last().expect("some"), 14_500_000);
        assert_eq!(d.iter().filter(|x| x.flow == 0).count(), 20);
    }

    #[test]
    fn nothing_is_given_before_it_is_due() {
        let a = parse_flow("rate=12M,size=1500", 0, 2048).expect("valid");
        let mut p = Pacer::new(&[a], 10_000_000);
        assert_eq!(p.pop_due(0).map(|d| d.seq), Some(0));
        assert_eq!(p.pop_due(999_999), None);
        assert_eq!(p.next_due(), Some(1_000_000));
        // Late: the schedule does not move, the backlog comes out at once.
        let late: Vec<u64> = std::iter::from_fn(|| p.pop_due(3_500_000).map(|d| d.seq)).collect();
        assert_eq!(late, vec![1, 2, 3]);
        assert_eq!(p.next_due(), Some(4_000_000));
    }

    #[test]
    fn counted_flows_stop_after_their_count() {
        let a = parse_flow("rate=max,size=60,count=3", 0, 2048).expect("valid");
        let b = parse_flow("rate=1M,size=1000,dport=2,count=2", 1, 2048).expect("valid");
        let mut p = Pacer::new(&[a, b], 1_000_000_000);
        let d = drain(&mut p);
        assert_eq!(d.iter().filter(|x| x.flow == 0).count(), 3);
        assert_eq!(d.iter().filter(|x| x.flow == 1).count(), 2);
        assert_eq!(p.planned(1), Some(2));
    }

    #[test]
    fn unpaced_flows_take_turns_until_their_end() {
        let a = parse_flow("rate=max,size=60", 0, 2048).expect("valid");
        let b = parse_flow("rate=max,size=60,dport=2,duration=1ms", 1, 2048).expect("valid");
        let mut p = Pacer::new(&[a, b], 2_000_000);
        let first: Vec<u32> = (0..6)
            .filter_map(|_| p.pop_due(10).map(|d| d.flow))
            .collect();
        assert_eq!(first, vec![0, 1, 0, 1, 0, 1]);
        let later: Vec<u32> = (0..4)
            .filter_map(|_| p.pop_due(1_500_000).map(|d| d.flow))
            .collect();
        assert_eq!(later, vec![0, 0, 0, 0], "b ended at 1 ms");
        assert_eq!(p.pop_due(2_000_000), None, "the run ended");
        assert_eq!(p.planned(0), None);
    }
}
