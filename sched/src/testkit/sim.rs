//! Deterministic link simulator: drives a scheduler in simulated time next to
//! the fluid GPS reference and reports fairness.
//!
//! Time is counted in *byte-times*: the simulated link sends one byte per
//! unit, so a packet of `len` bytes occupies it for `len` units. Each active
//! flow keeps `depth` packets queued (a new packet arrives when its head
//! starts transmission), so flows are continuously backlogged while active;
//! with [`OnOff`] they switch between active and idle at random times.
//! The GPS reference is fed exactly the same arrivals at the same times.
//! Everything random comes from a seeded [`Rng`]: same scenario, same result.

use super::metrics::{jain_index, share_error, Gps, LagSummary, LagTracker};
use crate::rng::Rng;
use crate::{AnySched, FlowConfig, FlowId, Lmax, Packet, Scheduler, Weight};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The packet the simulator queues: a length and a per-flow sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimPkt {
    /// Bytes.
    pub len: u32,
    /// Per-flow sequence number, from 0.
    pub seq: u32,
}

impl Packet for SimPkt {
    #[inline]
    fn len(&self) -> u32 {
        self.len
    }
}

/// Packet sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeDist {
    /// Every packet this long.
    Fixed(u32),
    /// Uniform in `lo..=hi`.
    Uniform(u32, u32),
}

impl SizeDist {
    /// The largest size this distribution produces.
    pub fn max(&self) -> u32 {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform(_, hi) => hi,
        }
    }
    fn sample(&self, rng: &mut Rng) -> u32 {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform(lo, hi) => rng.range(lo as u64, hi as u64) as u32,
        }
    }
}

/// Flows alternate between active and idle periods, each uniform in
/// `[0.5, 1.5] * mean` byte-times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnOff {
    /// Mean active period.
    pub mean_on: u64,
    /// Mean idle period.
    pub mean_off: u64,
}

/// One simulated run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Label for reports.
    pub name: String,
    /// One entry per flow.
    pub weights: Vec<u32>,
    /// Packet sizes, per flow (one entry: the same for all).
    pub sizes: Vec<SizeDist>,
    /// Packets kept queued per active flow.
    pub depth: u32,
    /// Optional on/off activity; `None` = always active.
    pub on_off: Option<OnOff>,
    /// Packets to transmit.
    pub packets: u64,
    /// RNG seed.
    pub seed: u64,
    /// Start the scheduler's virtual clock here (to test wraparound).
    pub vt_origin: Option<u64>,
}

impl Scenario {
    /// Backlogged flows of the given weights and fixed size.
    pub fn backlogged(name: &str, weights: Vec<u32>, size: SizeDist, packets: u64) -> Self {
        Self {
            name: name.to_string(),
            weights,
            sizes: vec![size],
            depth: 2,
            on_off: None,
            packets,
            seed: 1,
            vt_origin: None,
        }
    }

    fn size_of(&self, flow: usize) -> SizeDist {
        if self.sizes.len() == 1 {
            self.sizes[0]
        } else {
            self.sizes[flow]
        }
    }

    /// Largest packet of any flow.
    pub fn lmax(&self) -> u32 {
        self.sizes.iter().map(SizeDist::max).max().unwrap_or(64)
    }
}

/// Per-flow result.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowReport {
    /// Configured weight.
    pub weight: u32,
    /// Bytes the scheduler sent.
    pub served: u64,
    /// Bytes GPS would have sent by the end.
    pub ideal: f64,
    /// Largest (actual - ideal), bytes.
    pub max_ahead: f64,
    /// Largest (ideal - actual), bytes.
    pub max_behind: f64,
}

/// Result of a run.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// Scenario label.
    pub scenario: String,
    /// Algorithm.
    pub sched: &'static str,
    /// Per flow.
    pub flows: Vec<FlowReport>,
    /// Packets sent.
    pub packets: u64,
    /// Byte-times simulated.
    pub duration: u64,
    /// Jain's index over `served / weight` (flows that sent anything).
    pub jain: f64,
    /// Largest relative error of a flow's share vs `weight / sum(weights)`
    /// (meaningful when every flow was always backlogged).
    pub share_error: f64,
    /// Worst lag over all flows.
    pub worst: LagSummary,
    /// Packets of a flow that left out of order (must be 0).
    pub order_violations: u64,
    /// Packets offered, accepted, dropped, still queued at the end.
    pub offered: u64,
    /// Dropped by the scheduler.
    pub dropped: u64,
    /// Still queued at the end.
    pub queued_at_end: u64,
    /// Times the link idled while packets were queued (must be 0).
    pub idle_while_backlogged: u64,
}

/// Runs `sc` through a fresh scheduler.
pub fn run(sched: &mut AnySched<SimPkt>, sc: &Scenario) -> SimReport {
    let n = sc.weights.len();
    let mut rng = Rng::new(sc.seed);
    let mut gps = Gps::new(1.0);
    let mut lag = LagTracker::new(n);
    let lmax = Lmax::new(sc.lmax() as u64).unwrap_or_default();
    let mut ids = Vec::with_capacity(n);
    let mut index_of = std::collections::HashMap::with_capacity(n);
    for (i, &w) in sc.weights.iter().enumerate() {
        let cfg = FlowConfig {
            weight: Weight::new(w as u64).unwrap_or_default(),
            lmax,
            ..FlowConfig::default()
        };
        let id = sched
            .add_flow(cfg)
            .unwrap_or_else(|e| panic!("scenario {}: add_flow: {e}", sc.name));
        gps.add_flow(w as f64);
        index_of.insert(id, i);
        ids.push(id);
    }
    if let Some(v) = sc.vt_origin {
        sched
            .set_virtual_time(v)
            .unwrap_or_else(|e| panic!("set_virtual_time: {e}"));
    }
    let mut next_seq = vec![0u32; n];
    let mut expect_seq = vec![0u32; n];
    let mut active = vec![false; n];
    let mut offered = 0u64;
    let mut dropped = 0u64;
    let mut order_violations = 0u64;
    let mut idle_while_backlogged = 0u64;

    let mut offer = |sched: &mut AnySched<SimPkt>,
                     gps: &mut Gps,
                     rng: &mut Rng,
                     t: u64,
                     i: usize,
                     next_seq: &mut [u32]| {
        let len = sc.size_of(i).sample(rng);
        let pkt = SimPkt {
            len,
            seq: next_seq[i],
        };
        next_seq[i] += 1;
        offered += 1;
        match sched.enqueue(t, ids[i], pkt) {
            Ok(()) => gps.arrive(t, i, len),
            Err(_) => dropped += 1,
        }
    };

    // Activity toggles: (time, flow).
    let mut toggles: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let period = |rng: &mut Rng, mean: u64| -> u64 {
        let lo = (mean / 2).max(1);
        rng.range(lo, mean + mean / 2)
    };
    for (i, act) in active.iter_mut().enumerate() {
        match sc.on_off {
            None => {
                *act = true;
                for _ in 0..sc.depth {
                    offer(sched, &mut gps, &mut rng, 0, i, &mut next_seq);
                }
            }
            Some(oo) => {
                // Random phase: start idle for a while.
                let t0 = rng.range(0, oo.mean_off);
                toggles.push(Reverse((t0, i)));
            }
        }
    }

    let mut t = 0u64;
    let mut sent = 0u64;
    while sent < sc.packets {
        while let Some(&Reverse((at, i))) = toggles.peek() {
            if at > t {
                break;
            }
            toggles.pop();
            let oo = sc.on_off.unwrap_or(OnOff {
                mean_on: 1,
                mean_off: 1,
            });
            active[i] = !active[i];
            if active[i] {
                let queued = sched.flow_backlog(ids[i]).map_or(0, |b| b.packets);
                for _ in queued..sc.depth {
                    offer(sched, &mut gps, &mut rng, t, i, &mut next_seq);
                }
                toggles.push(Reverse((t + period(&mut rng, oo.mean_on), i)));
            } else {
                toggles.push(Reverse((t + period(&mut rng, oo.mean_off), i)));
            }
        }
        let Some((fid, pkt)) = sched.dequeue(t) else {
            if sched.backlog().packets != 0 {
                idle_while_backlogged += 1;
            }
            match toggles.peek() {
                Some(&Reverse((at, _))) => {
                    t = at.max(t + 1);
                    continue;
                }
                None => break,
            }
        };
        let i = index_of[&fid];
        if pkt.seq < expect_seq[i] {
            order_violations += 1;
        }
        expect_seq[i] = pkt.seq + 1;
        lag.on_start(&mut gps, t, i);
        if active[i] {
            offer(sched, &mut gps, &mut rng, t, i, &mut next_seq);
        }
        t += pkt.len as u64;
        lag.on_complete(&mut gps, t, i, pkt.len);
        sent += 1;
    }
    lag.check_all(&mut gps, t);

    let flows: Vec<FlowReport> = (0..n)
        .map(|i| FlowReport {
            weight: sc.weights[i],
            served: lag.actual(i),
            ideal: gps.served(t, i),
            max_ahead: lag.max_ahead(i),
            max_behind: lag.max_behind(i),
        })
        .collect();
    let norm: Vec<f64> = flows
        .iter()
        .filter(|f| f.served > 0)
        .map(|f| f.served as f64 / f.weight as f64)
        .collect();
    let served: Vec<f64> = flows.iter().map(|f| f.served as f64).collect();
    let weights: Vec<f64> = flows.iter().map(|f| f.weight as f64).collect();
    SimReport {
        scenario: sc.name.clone(),
        sched: sched.name(),
        packets: sent,
        duration: t,
        jain: jain_index(&norm),
        share_error: share_error(&served, &weights),
        worst: lag.worst(),
        flows,
        order_violations,
        offered,
        dropped,
        queued_at_end: sched.backlog().packets as u64,
        idle_while_backlogged,
    }
}

/// The id the simulator's `i`-th flow gets in a fresh scheduler.
pub fn flow_id(i: usize) -> FlowId {
    FlowId(i as u32)
}
