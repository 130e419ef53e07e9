//! Queue management through the public API: FQ-CoDel's new-flow priority,
//! CoDel on a pipe (drops handed back and counted, the sojourn histogram,
//! ECN marks instead of drops), the emulator handing CoDel's drops to its
//! host, and a property test that queue management never loses,
//! duplicates or reorders a packet and marks only ECN-capable ones.

use proptest::prelude::*;
use sched::algo::aqm::{Aqm, CodelParams, PieParams, RedParams};
use sched::emu::{Cause, Host, Pipe, PipeDrop, PipeDropped, PipeParams};
use sched::{
    build, DropReason, Dropped, FlowConfig, FlowId, Kind, OverflowPolicy, Packet, SchedConfig,
    Scheduler,
};
use std::collections::VecDeque;

const MS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pk {
    id: u32,
    len: u32,
    ect: bool,
    ce: bool,
}

impl Packet for Pk {
    fn len(&self) -> u32 {
        self.len
    }
    fn ecn_capable(&self) -> bool {
        self.ect || self.ce
    }
    fn set_ce(&mut self) {
        assert!(
            self.ect || self.ce,
            "marked a packet that is not ECN-capable"
        );
        self.ce = true;
    }
}

fn codel(ecn: bool) -> Aqm {
    Aqm::Codel(CodelParams::new(5 * MS, 100 * MS, ecn, None).expect("params"))
}

fn cfg(max_flows: u32, overflow: OverflowPolicy) -> SchedConfig {
    SchedConfig {
        max_flows,
        limit_packets: 10_240,
        overflow,
        ..SchedConfig::default()
    }
}

fn no_drop(d: Dropped<Pk>) {
    panic!("unexpected drop {d:?}")
}

#[test]
fn fq_codel_serves_a_new_sparse_flow_before_any_backlogged_one() {
    let mut s = build::<Pk>(Kind::FqCodel, cfg(8, OverflowPolicy::DropLongest)).expect("build");
    let flows: Vec<FlowId> = (0..5)
        .map(|_| {
            s.add_flow(FlowConfig {
                aqm: codel(true),
                ..FlowConfig::default()
            })
            .expect("flow")
        })
        .collect();
    let mut id = 0;
    let mut pk = |len| {
        id += 1;
        Pk {
            id,
            len,
            ..Pk::default()
        }
    };
    // Four greedy flows, 50 full-size packets each.
    for _ in 0..50 {
        for &f in &flows[..4] {
            s.enqueue(0, f, pk(1500)).expect("enqueue");
        }
    }
    // Serve a while: they are all old flows by now.
    for _ in 0..40 {
        let d = s.dequeue_managed(MS, &mut no_drop).expect("backlogged");
        assert_ne!(d.flow, flows[4]);
    }
    // A sparse flow's packet (a DNS query, an ACK) goes next, ahead of them all.
    let probe = pk(100);
    s.enqueue(2 * MS, flows[4], probe).expect("enqueue");
    let d = s.dequeue_managed(2 * MS, &mut no_drop).expect("backlogged");
    assert_eq!((d.flow, d.pkt), (flows[4], probe));
    // Again after its queue emptied and it went round the old list once.
    for _ in 0..8 {
        let _ = s.dequeue_managed(3 * MS, &mut no_drop).expect("backlogged");
    }
    let probe = pk(100);
    s.enqueue(4 * MS, flows[4], probe).expect("enqueue");
    let d = s.dequeue_managed(4 * MS, &mut no_drop).expect("backlogged");
    assert_eq!((d.flow, d.pkt), (flows[4], probe));
    // The greedy flows share the rest equally (DRR with quantum 1514).
    let mut sent = [0u32; 5];
    while let Some(d) = s.dequeue_managed(5 * MS, &mut no_drop) {
        sent[flows.iter().position(|&f| f == d.flow).expect("known")] += 1;
    }
    assert_eq!(sent[4], 0);
    let (lo, hi) = (sent[..4].iter().min(), sent[..4].iter().max());
    assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{sent:?}");
}

#[test]
fn fq_codel_does_not_let_a_flow_that_empties_every_round_stay_new() {
    // Flow 0 backlogged; flow 1 sends one packet each time it is served, so
    // its queue empties each round. It must still leave the new list and
    // alternate with flow 0 rather than be served every time.
    let mut s = build::<Pk>(Kind::FqCodel, cfg(4, OverflowPolicy::TailDrop)).expect("build");
    let a = s.add_flow(FlowConfig::default()).expect("a");
    let b = s.add_flow(FlowConfig::default()).expect("b");
    for i in 0..100 {
        s.enqueue(
            0,
            a,
            Pk {
                id: i,
                len: 1500,
                ..Pk::default()
            },
        )
        .expect("a");
    }
    let mut order = Vec::new();
    for i in 0..40 {
        s.enqueue(
            0,
            b,
            Pk {
                id: 1000 + i,
                len: 1500,
                ..Pk::default()
            },
        )
        .expect("b");
        let d = s.dequeue_managed(0, &mut no_drop).expect("backlogged");
        order.push(d.flow == b);
        if d.flow == a {
            // b's packet is still queued: send it before offering the next.
            let d = s.dequeue_managed(0, &mut no_drop).expect("b");
            order.push(d.flow == b);
        }
    }
    let bs = order.iter().filter(|&&x| x).count();
    let as_ = order.len() - bs;
    assert!(as_ >= bs - 2, "a {as_} b {bs}: {order:?}");
}

fn codel_pipe(kind: Kind, ecn: bool) -> (Pipe<Pk>, FlowId) {
    let mut p = Pipe::new(
        build(kind, cfg(4, OverflowPolicy::TailDrop)).expect("build"),
        &PipeParams {
            bandwidth_bps: Some(100_000_000),
            ..PipeParams::default()
        },
    );
    let f = p
        .sched()
        .add_flow(FlowConfig {
            aqm: codel(ecn),
            ..FlowConfig::default()
        })
        .expect("flow");
    (p, f)
}

/// A 100 Mbit/s link offered 150 Mbit/s of 1500-byte packets for 1 s.
/// Returns (delivered, dropped at dequeue, first drop time) and checks that
/// every packet is accounted for.
fn overload(p: &mut Pipe<Pk>, f: FlowId, ect: bool) -> (Vec<Pk>, Vec<(u64, Pk)>) {
    let gap = 1500 * 8 * 1000 / 150; // ns between arrivals at 150 Mbit/s
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    let mut offered = 0u32;
    let mut now = 0;
    while now < 1_000 * MS {
        let pkt = Pk {
            id: offered,
            len: 1500,
            ect,
            ce: false,
        };
        offered += 1;
        if p.enqueue(now, f, pkt).is_err() {
            panic!("the queue is unlimited here: no tail drop");
        }
        let t = now;
        while let Some((_, pkt)) = p.dequeue(now, &mut |d: PipeDropped<Pk>| {
            assert_eq!(d.reason, PipeDrop::Sched(DropReason::Aqm));
            dropped.push((t, d.pkt));
        }) {
            out.push(pkt);
        }
        now += gap;
    }
    let queued = p.backlog_packets() as usize;
    assert_eq!(out.len() + dropped.len() + queued, offered as usize);
    (out, dropped)
}

#[test]
fn codel_on_a_pipe_drops_once_the_queue_stands_and_counts_it() {
    let (mut p, f) = codel_pipe(Kind::Fifo, true);
    let (out, dropped) = overload(&mut p, f, false);
    assert!(!dropped.is_empty());
    // The queue grows by 50 Mbit/s: target (5 ms of sojourn) is reached
    // after ~10 ms, plus an interval: nothing is dropped before 110 ms.
    let first = dropped[0].0;
    assert!(
        (100 * MS..130 * MS).contains(&first),
        "first drop at {} ms",
        first / MS
    );
    assert_eq!(p.drops().drops(DropReason::Aqm), dropped.len() as u64);
    assert_eq!(p.sched_ref().counters().marked, 0);
    // FIFO order is kept around the drops.
    assert!(out.windows(2).all(|w| w[0].id < w[1].id));
    // The histogram saw every packet sent, its maximum the queue's.
    let h = p.sojourn();
    assert_eq!(h.len(), p.counters().delivered + p.in_flight() as u64);
    assert!(h.max() > 5 * MS, "max sojourn {}", h.max());
}

#[test]
fn codel_marks_ecn_capable_packets_instead_of_dropping_them() {
    let (mut p, f) = codel_pipe(Kind::Drr, true);
    let (out, dropped) = overload(&mut p, f, true);
    assert!(dropped.is_empty(), "{} dropped", dropped.len());
    let marked = out.iter().filter(|p| p.ce).count() as u64;
    assert!(marked > 0);
    assert_eq!(p.sched_ref().counters().marked, marked);
    // Same traffic without ECN in the queue's configuration: drops.
    let (mut p, f) = codel_pipe(Kind::Drr, false);
    let (out, dropped) = overload(&mut p, f, true);
    assert!(!dropped.is_empty());
    assert!(out.iter().all(|p| !p.ce));
}

struct TestHost {
    dropped: Vec<(u32, Cause)>,
}

impl Host<Pk> for TestHost {
    fn key(&mut self, _pkt: &Pk) -> sched::classify::FlowKey {
        sched::classify::FlowKey::default()
    }
    fn dropped(&mut self, pkt: Pk, cause: Cause) {
        self.dropped.push((pkt.id, cause));
    }
}

#[test]
fn the_emulator_hands_codels_drops_to_its_host_and_counts_them_for_the_flow() {
    let toml = r#"
        [[pipe]]
        name = "link"
        bandwidth = "10Mbit/s"
        sched = "fq_codel"
        [default]
        pipe = "link"
    "#;
    let cfg: sched::config::Config = toml.parse().expect("config");
    assert_eq!(cfg.pipes[0].aqm, Aqm::Codel(CodelParams::default()));
    assert_eq!(cfg.pipes[0].overflow, OverflowPolicy::DropLongest);
    let mut emu = sched::emu::Emulator::<Pk>::from_config(&cfg, 1).expect("build");
    let mut host = TestHost {
        dropped: Vec::new(),
    };
    let key = sched::classify::FlowKey::default();
    let target = emu.classify(&key).0;
    // 20 Mbit/s into 10 Mbit/s for 2 s.
    let gap = 1500 * 8 * 1000 / 20;
    let (mut now, mut id, mut out) = (0, 0, 0u64);
    while now < 2_000 * MS {
        let v = emu.enqueue_key(
            now,
            &key,
            target,
            Pk {
                id,
                len: 1500,
                ..Pk::default()
            },
        );
        assert!(matches!(v, sched::emu::Verdict::Queued { .. }), "{v:?}");
        id += 1;
        while emu.dequeue(now, &mut host).is_some() {
            out += 1;
        }
        now += gap;
    }
    assert!(!host.dropped.is_empty());
    assert!(host
        .dropped
        .iter()
        .all(|&(_, c)| c == Cause::Pipe(PipeDrop::Sched(DropReason::Aqm))));
    let aqm = emu.drops().sched[DropReason::Aqm as usize];
    assert_eq!(aqm, host.dropped.len() as u64);
    assert_eq!(
        out + aqm + emu.backlog_packets(),
        u64::from(id),
        "every packet is delivered, dropped or still held"
    );
    let flows = emu.flow_stats(0);
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].tally.dropped, aqm, "CoDel's drops are the flow's");
}

#[derive(Debug, Clone)]
enum Op {
    Enq { flow: u32, len: u32, ect: bool },
    Deq { advance_us: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..4, 64u32..=1500, any::<bool>())
            .prop_map(|(flow, len, ect)| Op::Enq { flow, len, ect }),
        2 => (0u32..3000).prop_map(|advance_us| Op::Deq { advance_us }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// Short target and interval so that CoDel acts often: every packet is
    /// delivered, dropped by queue management or still queued, exactly once;
    /// each flow's delivered packets keep their order; only ECN-capable
    /// packets are marked, and with ECN on, never dropped by CoDel.
    #[test]
    fn queue_management_conserves_and_keeps_order(
        kind in prop::sample::select(vec![Kind::Fifo, Kind::Drr, Kind::Qfq, Kind::Wf2q, Kind::FqCodel, Kind::Prio]),
        algo in 0u8..4,
        ecn in any::<bool>(),
        lqd in any::<bool>(),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let overflow = if lqd && kind != Kind::Fifo {
            OverflowPolicy::DropLongest
        } else {
            OverflowPolicy::TailDrop
        };
        let c = SchedConfig { max_flows: 4, limit_packets: 64, overflow, ..SchedConfig::default() };
        let mut s = build::<Pk>(kind, c).expect("build");
        // Aggressive parameters, so that each acts often on these short scripts.
        let aqm = match algo {
            0 => Aqm::Codel(CodelParams::new(200_000, 2_000_000, ecn, None).expect("codel")),
            1 => Aqm::Red(RedParams::new(0.5, 1, 4, 0.5, false, false, ecn).expect("red")),
            2 => Aqm::Red(RedParams::new(0.5, 1500, 6000, 0.5, true, true, ecn).expect("gred")),
            _ => Aqm::Pie(PieParams::new(200_000, 1_000_000, 0, 2.0, 2.0, ecn, algo % 2 == 0).expect("pie")),
        };
        let flows: Vec<FlowId> = (0..4)
            .map(|i| s.add_flow(FlowConfig { aqm: if i == 3 { Aqm::None } else { aqm }, ..FlowConfig::default() }).expect("flow"))
            .collect();
        let mut queued: Vec<VecDeque<Pk>> = vec![VecDeque::new(); 4];
        let mut now = 0u64;
        let mut id = 0u32;
        for o in ops {
            match o {
                Op::Enq { flow, len, ect } => {
                    id += 1;
                    let pkt = Pk { id, len, ect, ce: false };
                    let f = flow as usize;
                    match s.enqueue(now, flows[f], pkt) {
                        Ok(()) => queued[f].push_back(pkt),
                        Err(d) if d.reason == DropReason::PushedOut => {
                            queued[f].push_back(pkt);
                            let v = d.flow.index();
                            // (It may have been marked CE on its arrival.)
                            let head = queued[v].pop_front().map(|p| p.id);
                            prop_assert_eq!(head, Some(d.pkt.id));
                            prop_assert!(!d.pkt.ce || d.pkt.ect);
                        }
                        Err(d) => {
                            prop_assert_eq!(d.pkt, pkt);
                            if d.reason == DropReason::Aqm {
                                prop_assert!(f != 3, "a flow without AQM: {:?}", d);
                                prop_assert!(!(ecn && d.pkt.ect && algo != 3), "ECN on: an ECT packet dropped at arrival");
                            }
                        }
                    }
                }
                Op::Deq { advance_us } => {
                    now += u64::from(advance_us) * 1000;
                    let mut drops = Vec::new();
                    let got = s.dequeue_managed(now, &mut |d| drops.push(d));
                    for d in drops {
                        prop_assert_eq!(d.reason, DropReason::Aqm);
                        let f = d.flow.index();
                        prop_assert!(f != 3, "a flow without AQM lost a packet");
                        prop_assert!(!(ecn && d.pkt.ect), "ECN on: an ECT packet was dropped");
                        let head = queued[f].pop_front();
                        prop_assert_eq!(head.map(|p| p.id), Some(d.pkt.id), "AQM drops the head");
                        prop_assert!(!d.pkt.ce || d.pkt.ect);
                    }
                    match got {
                        None => prop_assert!(queued.iter().all(VecDeque::is_empty)),
                        Some(d) => {
                            let f = d.flow.index();
                            let head = queued[f].pop_front().expect("queued");
                            prop_assert_eq!(head.id, d.pkt.id, "per-flow order, exactly once");
                            prop_assert!(!d.pkt.ce || head.ect, "marked a non-ECT packet");
                            prop_assert!(!d.pkt.ce || (ecn && f != 3), "marked without ECN on");
                        }
                    }
                }
            }
        }
        let left: usize = queued.iter().map(VecDeque::len).sum();
        prop_assert_eq!(s.backlog().packets as usize, left);
    }
}

/// The fraction of 150 Mbit/s of 1500-byte packets a 100 Mbit/s link (24
/// bytes of overhead each) cannot carry.
const EXCESS: f64 = 1.0 - (100e6 / (1524.0 * 8.0)) / (150e6 / (1500.0 * 8.0));

/// 150 Mbit/s of unresponsive 1500-byte packets into a 100 Mbit/s pipe for
/// 6 s: returns (fraction dropped by queue management over the last 3 s,
/// mean sojourn of the packets sent then, ns).
fn overload_with(aqm: Aqm, queue: u32) -> (f64, f64) {
    let mut p = Pipe::new(
        build(Kind::Fifo, cfg(4, OverflowPolicy::TailDrop)).expect("build"),
        &PipeParams {
            bandwidth_bps: Some(100_000_000),
            ..PipeParams::default()
        },
    );
    let f = p
        .sched()
        .add_flow(FlowConfig {
            aqm,
            limit: sched::QueueLimit::new(queue, u32::MAX).expect("limit"),
            ..FlowConfig::default()
        })
        .expect("flow");
    let gap = 1500 * 8 * 1000 / 150;
    let (mut now, mut id) = (0u64, 0u32);
    let (mut offered, mut dropped, mut other) = (0u64, 0u64, 0u64);
    let (mut sojourn_sum, mut sent) = (0u128, 0u64);
    let mut enq_at = std::collections::HashMap::new();
    while now < 6_000 * MS {
        let late = now >= 3_000 * MS;
        id += 1;
        let pkt = Pk {
            id,
            len: 1500,
            ..Pk::default()
        };
        offered += late as u64;
        match p.enqueue(now, f, pkt) {
            Ok(_) => {
                enq_at.insert(id, now);
            }
            Err(d) if d.reason == PipeDrop::Sched(DropReason::Aqm) => dropped += late as u64,
            Err(_) => other += late as u64,
        }
        while let Some((due, _, pkt)) = p.dequeue_timed(now, &mut |_| dropped += late as u64) {
            if late {
                // Sojourn: from enqueue to the start of transmission.
                let tx = (1500 + 24) * 8 * 10;
                sojourn_sum += u128::from(due - tx - enq_at[&pkt.id]);
                sent += 1;
            }
        }
        now += gap;
    }
    assert_eq!(other, 0, "the queue limit was never the one dropping");
    let r = (
        dropped as f64 / offered as f64,
        sojourn_sum as f64 / sent as f64,
    );
    eprintln!(
        "{}: dropped {:.4}, mean sojourn {:.3} ms",
        aqm.name(),
        r.0,
        r.1 / 1e6
    );
    r
}

#[test]
fn pie_holds_the_delay_near_target_against_unresponsive_overload() {
    // Needed: 34.4 % of the arrivals dropped. PIE's controller finds it and
    // keeps the queue delay around its 15 ms target.
    let (drop, sojourn) = overload_with(Aqm::Pie(PieParams::default()), 10_000);
    assert!((drop - EXCESS).abs() < 0.005, "dropped {drop:.4}");
    assert!(
        (10e6..20e6).contains(&sojourn),
        "mean sojourn {:.2} ms",
        sojourn / 1e6
    );
}

#[test]
fn red_and_gred_hold_the_average_between_their_thresholds() {
    for gentle in [false, true] {
        let red = RedParams::new(0.002, 10, 30, 0.1, gentle, false, true)
            .expect("red")
            .on_link(Some(100_000_000));
        let (drop, sojourn) = overload_with(Aqm::Red(red), 1000);
        assert!(
            (drop - EXCESS).abs() < 0.005,
            "gentle {gentle}: dropped {drop:.4}"
        );
        // 34.4 % dropped needs p_b near 1/5 (uniformised: gap ~ 1/(2 p_b)),
        // past max_p: RED holds the queue at max_th (30 packets, 3.7 ms),
        // Gentle RED a little above it.
        let pkts = sojourn / (1524.0 * 80.0);
        assert!(
            (25.0..45.0).contains(&pkts),
            "gentle {gentle}: {pkts:.1} packets queued"
        );
    }
}

#[test]
fn each_flowset_gets_its_own_queue_figures() {
    // One 10 Mbit/s DRR pipe: "managed" under CoDel, "plain" tail drop with
    // a 20-packet queue. Plain is offered 10 Mbit/s, managed 5.5 Mbit/s: a
    // little over its half of the link, an excess CoDel's drops can match.
    let toml = r#"
        [[pipe]]
        name = "link"
        bandwidth = "10Mbit/s"
        sched = "drr"
        [[flowset]]
        name = "managed"
        pipe = "link"
        aqm = "codel"
        queue = 1000
        [[flowset]]
        name = "plain"
        pipe = "link"
        queue = 20
        [[rule]]
        flowset = "managed"
        match = { proto = "udp" }
        [[rule]]
        flowset = "plain"
        match = { proto = "tcp" }
    "#;
    let cfg: sched::config::Config = toml.parse().expect("config");
    let mut emu = sched::emu::Emulator::<Pk>::from_config(&cfg, 1).expect("build");
    let mut host = TestHost {
        dropped: Vec::new(),
    };
    let key = sched::classify::FlowKey::default();
    let gaps = [1500 * 8 * 1000 / 55 * 10, 1500 * 8 * 100]; // ns
    let mut next = [0u64, 0];
    let mut id = 0;
    loop {
        let fs = if next[0] <= next[1] { 0 } else { 1 };
        let now = next[fs];
        if now >= 6_000 * MS {
            break;
        }
        id += 1;
        let _ = emu.enqueue_key(
            now,
            &key,
            sched::emu::Target::Flowset(fs),
            Pk {
                id,
                len: 1500,
                ..Pk::default()
            },
        );
        while emu.dequeue(now, &mut host).is_some() {}
        next[fs] += gaps[fs];
    }
    let managed = emu.flowset_queues(0).expect("managed");
    let plain = emu.flowset_queues(1).expect("plain");
    assert!(managed.stats.aqm_drops > 0, "{managed:?}");
    assert_eq!(managed.stats.limit_drops, 0);
    assert_eq!(plain.stats.aqm_drops, 0);
    assert!(plain.stats.limit_drops > 0, "{plain:?}");
    let (hm, hp) = (
        managed
            .stats
            .sojourn
            .as_ref()
            .expect("managed sojourn")
            .to_hdr(),
        plain
            .stats
            .sojourn
            .as_ref()
            .expect("plain sojourn")
            .to_hdr(),
    );
    // The pipe's histogram is the two together.
    assert_eq!(
        hm.len() + hp.len(),
        emu.pipe_sojourn(0).expect("pipe").len()
    );
    // The plain queue sits at its 20 packets, served at half the link
    // (up to 20 × 2.44 ms, less when managed is empty); the managed one's
    // histogram is its own.
    let pp = hp.value_at_quantile(0.5);
    assert!((35 * MS..54 * MS).contains(&pp), "plain p50 {pp}");
    assert_ne!(hm.value_at_quantile(0.5), pp);
    assert_eq!(
        managed.stats.aqm_drops + plain.stats.aqm_drops,
        emu.drops().sched[DropReason::Aqm as usize]
    );
}

#[test]
fn red_sees_every_arrival_even_at_a_full_queue_as_dummynet() {
    // A flow queue of 5 packets that nothing drains, RED 0.1/3/4/0.1: the
    // queue fills while the average lags; the arrivals that find it full
    // still move the average (dummynet runs red_drops before the queue
    // size check), which crosses max_th and makes them RED's drops.
    let mut s = build::<Pk>(Kind::Drr, cfg(2, OverflowPolicy::TailDrop)).expect("build");
    let red = RedParams::new(0.1, 3, 4, 0.1, false, false, false).expect("red");
    let f = s
        .add_flow(FlowConfig {
            aqm: Aqm::Red(red),
            limit: sched::QueueLimit::new(5, u32::MAX).expect("limit"),
            ..FlowConfig::default()
        })
        .expect("flow");
    let mut by = std::collections::HashMap::new();
    for id in 0..100 {
        if let Err(d) = s.enqueue(
            0,
            f,
            Pk {
                id,
                len: 100,
                ..Pk::default()
            },
        ) {
            *by.entry(d.reason).or_insert(0u32) += 1;
        }
    }
    assert_eq!(s.backlog().packets, 5);
    let avg = s.aqm_flow(f).and_then(|m| m.red()).map(|r| r.avg());
    assert!(avg.is_some_and(|a| a > 4.0), "average {avg:?}");
    assert!(
        by.get(&DropReason::Aqm).copied().unwrap_or(0) > 50,
        "{by:?}"
    );
    assert!(by.contains_key(&DropReason::FlowLimit), "{by:?}");
}

#[test]
fn codel_in_a_dynamic_pipe_counts_drops_and_marks_for_its_flows() {
    // Per-source instances of a 10 Mbit/s pipe under CoDel; two sources
    // each overload theirs, one with ECN-capable packets.
    let toml = r#"
        [[pipe]]
        name = "access"
        bandwidth = "10Mbit/s"
        mask = { src_ip = "255.255.255.255" }
        aqm = "codel"
        queue = 10000
        [default]
        pipe = "access"
    "#;
    let cfg: sched::config::Config = toml.parse().expect("config");
    let mut emu = sched::emu::Emulator::<Pk>::from_config(&cfg, 1).expect("build");
    let mut host = TestHost {
        dropped: Vec::new(),
    };
    let keys: Vec<sched::classify::FlowKey> = (1..=2u8)
        .map(|h| sched::classify::FlowKey {
            src: u128::from_be_bytes(sched::wire::ipv4_mapped([10, 0, 0, h])),
            ..Default::default()
        })
        .collect();
    let target = emu.classify(&keys[0]).0;
    let gap = 1500 * 8 * 1000 / 15; // 15 Mbit/s per source
    let (mut now, mut id, mut out) = (0, 0, Vec::new());
    while now < 3_000 * MS {
        for (i, k) in keys.iter().enumerate() {
            id += 1;
            let pkt = Pk {
                id,
                len: 1500,
                ect: i == 1,
                ce: false,
            };
            let v = emu.enqueue_key(now, k, target, pkt);
            assert!(matches!(v, sched::emu::Verdict::Queued { .. }), "{v:?}");
        }
        while let Some((_, _, p)) = emu.dequeue(now, &mut host) {
            out.push(p);
        }
        now += gap;
    }
    let d = emu.pipe_drops(0).expect("pipe");
    let aqm = d.drops(DropReason::Aqm);
    assert_eq!(aqm, host.dropped.len() as u64);
    assert!(aqm > 0);
    assert!(
        host.dropped.iter().all(|&(id, _)| id % 2 == 1),
        "only source 1 (not ECT) dropped"
    );
    let marked = out.iter().filter(|p| p.ce).count() as u64;
    assert!(marked > 0);
    assert_eq!(d.marked, marked, "the instances' marks summed");
    let tallied: u64 = emu.flow_stats(0).iter().map(|f| f.tally.dropped).sum();
    assert_eq!(tallied, aqm, "each instance's flow counted its CoDel drops");
    let q = emu.flowset_queues(0).expect("flowset");
    assert_eq!((q.stats.aqm_drops, q.stats.marks), (aqm, marked));
    // Every packet sent was measured: delivered, or still on a link.
    let measured = q.stats.sojourn.as_ref().map_or(0, |h| h.len());
    assert!(
        (out.len() as u64..=out.len() as u64 + 2).contains(&measured),
        "{measured} measured, {} delivered",
        out.len()
    );
}
