//! HTB class trees (sched::algo::htb) in simulated time: long-run shares
//! against the model in the module docs (rates when all are backlogged,
//! spare by priority then by quantum, ceilings), ceil over every window,
//! on/off workloads, and properties: conservation and per-flow order
//! through random trees.

use proptest::prelude::*;
use sched::algo::htb::{default_burst, default_quantum, ClassSpec, Tree};
use sched::{build_tree, FlowConfig, FlowId, Kind, Packet, SchedConfig, Scheduler};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct P {
    len: u32,
    flow: u32,
    seq: u64,
}

impl Packet for P {
    fn len(&self) -> u32 {
        self.len
    }
}

const M: u64 = 1_000_000;

fn class(parent: Option<u32>, rate_mbit: u64, ceil_mbit: u64, prio: u8) -> ClassSpec {
    let (rate, ceil) = (rate_mbit * M, ceil_mbit * M);
    ClassSpec {
        parent,
        rate_bps: rate,
        ceil_bps: ceil,
        burst_bytes: default_burst(rate),
        cburst_bytes: default_burst(ceil),
        prio,
        quantum: default_quantum(rate),
    }
}

/// examples/14-htb-tree.toml: an uplink of 100 Mbit/s; subscribers at
/// 20/30/50 with ceil 100/60/100; two classes under the third (voice 10,
/// prio 0; bulk 40, prio 1; both ceil 100).
fn example_tree() -> Tree {
    Tree::new(vec![
        class(None, 100, 100, 0),   // 0 uplink
        class(Some(0), 20, 100, 0), // 1 sub1
        class(Some(0), 30, 60, 0),  // 2 sub2
        class(Some(0), 50, 100, 0), // 3 sub3
        class(Some(3), 10, 100, 0), // 4 sub3 voice
        class(Some(3), 40, 100, 1), // 5 sub3 bulk
    ])
    .expect("tree")
}

const LEAVES: [u32; 4] = [1, 2, 4, 5];

fn config(flows: u32) -> SchedConfig {
    SchedConfig {
        max_flows: flows,
        limit_packets: 100_000,
        limit_bytes: u64::MAX / 2,
        ..SchedConfig::default()
    }
}

/// A link of 1 Gbit/s under the tree; `flows[i]` flows in leaf `leaf[i]`,
/// each kept at two 1500-byte packets while `on(t, leaf)`; runs `secs`
/// seconds and returns each leaf's rate, bit/s, over `[from, secs]` s.
fn run(
    kind: Kind,
    tree: &Tree,
    leaves: &[u32],
    flows_per_leaf: u32,
    secs: f64,
    from: f64,
    on: impl Fn(u64, u32) -> bool,
) -> Vec<f64> {
    let n = leaves.len() as u32 * flows_per_leaf;
    let mut s = build_tree::<P>(kind, config(n), tree).expect("build");
    let mut ids = Vec::new();
    for &leaf in leaves {
        for _ in 0..flows_per_leaf {
            let f = s
                .add_flow(FlowConfig {
                    class: leaf,
                    ..FlowConfig::default()
                })
                .expect("flow");
            ids.push((f, leaf));
        }
    }
    let end = (secs * 1e9) as u64;
    let start = (from * 1e9) as u64;
    let mut bytes = vec![0u64; leaves.len()];
    let mut t = 1_000_000_000u64; // the clock does not start at 0
    let t0 = t;
    let mut seq = 0u64;
    let mut last_seq = vec![0u64; n as usize];
    while t - t0 < end {
        for &(f, leaf) in &ids {
            if on(t - t0, leaf) {
                while s.flow_backlog(f).expect("flow").packets < 2 {
                    seq += 1;
                    let p = P {
                        len: 1500,
                        flow: f.0,
                        seq,
                    };
                    s.enqueue(t, f, p).expect("queued");
                }
            }
        }
        match s.dequeue(t) {
            Some((f, p)) => {
                assert_eq!(f.0, p.flow);
                assert!(p.seq > last_seq[f.index()], "a flow's order broke");
                last_seq[f.index()] = p.seq;
                if t - t0 >= start {
                    let li = ids.iter().find(|(g, _)| *g == f).expect("known").1;
                    let k = leaves.iter().position(|&l| l == li).expect("leaf");
                    bytes[k] += u64::from(p.len);
                }
                t += u64::from(p.len) * 8; // ns at 1 Gbit/s
            }
            None => {
                let next = s.next_ready().unwrap_or(t + 100_000);
                assert!(next > t, "next_ready {next} not after {t}");
                // Wake at the event, or when an on/off phase may change.
                t = next.min(t + 1_000_000);
            }
        }
    }
    let span = secs - from;
    bytes.iter().map(|&b| b as f64 * 8.0 / span).collect()
}

fn assert_rates(got: &[f64], want_mbit: &[f64], what: &str) {
    for (i, (&g, &w)) in got.iter().zip(want_mbit).enumerate() {
        let w = w * 1e6;
        if w == 0.0 {
            assert!(g < 1e4, "{what}: leaf {i} got {g:.0} bit/s, want 0");
        } else {
            assert!(
                (g - w).abs() <= 0.005 * w,
                "{what}: leaf {i} got {:.3} Mbit/s, want {:.3} (all: {:?})",
                g / 1e6,
                w / 1e6,
                got.iter()
                    .map(|g| (g / 1e4).round() / 100.0)
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Everyone backlogged: each leaf gets exactly its rate (they add up to the
/// uplink), whatever the scheduler inside the leaves.
#[test]
fn backlogged_classes_get_their_rates() {
    for kind in [Kind::Drr, Kind::Qfq, Kind::FqCodel, Kind::Prio] {
        let got = run(kind, &example_tree(), &LEAVES, 3, 6.0, 1.0, |_, _| true);
        assert_rates(&got, &[20.0, 30.0, 10.0, 40.0], kind.name());
    }
}

/// sub1 idle: its 20 Mbit/s go to the borrowers of the highest priority
/// (sub2 and voice, prio 0; bulk at prio 1 gets none), in proportion to
/// their quanta: sub2's is 30 Mbit/s / 8 / 10 = 375 000 bytes, clamped to
/// 200 000; voice's 125 000. So sub2 30 + 20·200/325, voice 10 +
/// 20·125/325, bulk 40.
#[test]
fn spare_goes_by_priority_then_quantum() {
    let got = run(Kind::Drr, &example_tree(), &LEAVES, 2, 6.0, 1.0, |_, l| {
        l != 1
    });
    let b = 20.0 * 200.0 / 325.0;
    assert_rates(&got, &[0.0, 30.0 + b, 10.0 + 20.0 - b, 40.0], "sub1 idle");
}

/// A ceil caps a class that could borrow more: sub2 alone gets its ceil
/// (60), not the uplink; bulk alone gets the whole uplink (its ceil 100);
/// voice and bulk together: bulk its rate, voice (prio 0) all the rest.
#[test]
fn ceilings_cap_and_priority_orders_borrowing() {
    let t = example_tree();
    let got = run(Kind::Drr, &t, &LEAVES, 1, 6.0, 1.0, |_, l| l == 2);
    assert_rates(&got, &[0.0, 60.0, 0.0, 0.0], "sub2 alone");
    let got = run(Kind::Drr, &t, &LEAVES, 1, 6.0, 1.0, |_, l| l == 5);
    assert_rates(&got, &[0.0, 0.0, 0.0, 100.0], "bulk alone");
    let got = run(Kind::Drr, &t, &LEAVES, 1, 6.0, 1.0, |_, l| l >= 4);
    assert_rates(&got, &[0.0, 0.0, 60.0, 40.0], "voice and bulk");
}

/// sub1 on for 1 s, off for 1 s; the others always backlogged: the
/// long-run rates are the mean of the two phases' shares. (Each switch
/// costs a few packets of transient — sub1's full bucket and its queue
/// draining after it stops, a packet or two lent as the others' borrowing
/// ends — about 0.05 % of a phase.)
#[test]
fn on_off_classes_get_the_mean_of_their_phases() {
    let on = |t: u64, l: u32| l != 1 || (t / 1_000_000_000) % 2 == 0;
    let got = run(Kind::Drr, &example_tree(), &LEAVES, 2, 12.0, 0.0, on);
    let b = 20.0 * 200.0 / 325.0;
    let want = [
        10.0,
        (30.0 + 30.0 + b) / 2.0,
        (10.0 + 10.0 + 20.0 - b) / 2.0,
        40.0,
    ];
    assert_rates(&got, &want, "sub1 on/off");
}

/// Over every window longer than a few packets, a class alone sends at
/// most its ceil · window + cburst + one packet.
#[test]
fn a_ceil_is_never_exceeded_over_any_window() {
    let tree = example_tree();
    let mut s = build_tree::<P>(Kind::Drr, config(1), &tree).expect("build");
    let f = s
        .add_flow(FlowConfig {
            class: 2,
            ..FlowConfig::default()
        })
        .expect("flow");
    let mut t = 5_000_000_000u64;
    let mut sent: Vec<(u64, u64)> = Vec::new(); // (instant, bytes so far)
    let mut total = 0u64;
    for _ in 0..200_000 {
        while s.flow_backlog(f).expect("flow").packets < 4 {
            s.enqueue(
                t,
                f,
                P {
                    len: 1500,
                    flow: 0,
                    seq: 0,
                },
            )
            .expect("queued");
        }
        match s.dequeue(t) {
            Some((_, p)) => {
                total += u64::from(p.len);
                sent.push((t, total));
            }
            // An unlimited link: only the classes keep time.
            None => t = s.next_ready().expect("a wake-up while backlogged"),
        }
    }
    let ceil = 60.0 * 1e6 / 8.0; // bytes/s
    let cburst = f64::from(default_burst(60 * M));
    // Every window from each sample to every later one (sampled).
    for i in (0..sent.len()).step_by(97) {
        let (t1, b1) = sent[i];
        for &(t2, b2) in sent[i..].iter().step_by(13) {
            let bytes = (b2 - b1) as f64 + 1500.0; // the packet at t1 too
            let allowed = ceil * (t2 - t1) as f64 / 1e9 + cburst + 1500.0;
            assert!(
                bytes <= allowed,
                "{bytes} bytes in {} ns > {allowed}",
                t2 - t1
            );
        }
    }
    let secs = (sent.last().expect("sent").0 - sent[0].0) as f64 / 1e9;
    let rate = total as f64 * 8.0 / secs;
    assert!((rate - 60e6).abs() < 0.005 * 60e6, "{rate}");
}

/// Leaves only: a flow in an inner class is refused; so are bad trees.
#[test]
fn flows_go_to_leaves_and_bad_trees_are_refused() {
    let mut s = build_tree::<P>(Kind::Drr, config(4), &example_tree()).expect("build");
    for inner in [0u32, 3] {
        assert!(s
            .add_flow(FlowConfig {
                class: inner,
                ..FlowConfig::default()
            })
            .is_err());
    }
    assert!(s
        .add_flow(FlowConfig {
            class: 99,
            ..FlowConfig::default()
        })
        .is_err());
    assert!(Tree::new(vec![]).is_err());
    assert!(
        Tree::new(vec![class(Some(0), 10, 10, 0)]).is_err(),
        "parent after child"
    );
    assert!(
        Tree::new(vec![class(None, 10, 5, 0)]).is_err(),
        "ceil below rate"
    );
    assert!(Tree::new(vec![class(None, 10, 10, 8)]).is_err(), "prio 8");
    // Eight levels of classes: at most seven above the leaves.
    let deep: Vec<ClassSpec> = (0..9)
        .map(|i| class(if i == 0 { None } else { Some(i - 1) }, 10, 10, 0))
        .collect();
    assert!(Tree::new(deep[..8].to_vec()).is_ok());
    assert!(Tree::new(deep).is_err());
    assert!(build_tree::<P>(Kind::Fifo, config(4), &example_tree()).is_err());
}

fn random_tree() -> impl Strategy<Value = Tree> {
    // Up to 12 classes, each with an earlier parent (or none), random
    // rates 1..100 Mbit/s, ceilings, priorities and quanta.
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            prop::bool::weighted(0.2),
            1u64..100,
            0u64..100,
            0u8..8,
            1u32..5000,
        ),
        1..12,
    )
    .prop_map(|specs| {
        let classes = specs
            .iter()
            .enumerate()
            .map(|(i, &(p, root, rate, extra, prio, quantum))| {
                let parent = if i == 0 || root {
                    None
                } else {
                    Some(p.index(i) as u32)
                };
                ClassSpec {
                    parent,
                    rate_bps: rate * M,
                    ceil_bps: (rate + extra) * M,
                    burst_bytes: 1600,
                    cburst_bytes: 1600,
                    prio,
                    quantum,
                }
            })
            .collect::<Vec<_>>();
        // Depth may exceed the limit: cut such classes loose (roots).
        let mut depth = vec![0usize; classes.len()];
        let mut fixed = classes.clone();
        for i in 0..classes.len() {
            if let Some(p) = fixed[i].parent {
                if depth[p as usize] + 1 >= 7 {
                    fixed[i].parent = None;
                } else {
                    depth[i] = depth[p as usize] + 1;
                }
            }
        }
        Tree::new(fixed).expect("valid")
    })
}

#[derive(Debug, Clone)]
enum Op {
    Enq { flow: usize, len: u32 },
    Deq,
    Advance(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            5 => (0usize..16, 64u32..1600).prop_map(|(flow, len)| Op::Enq { flow, len }),
            4 => Just(Op::Deq),
            2 => (1u64..2_000_000).prop_map(Op::Advance),
        ],
        1..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the tree and the traffic: every accepted packet leaves
    /// exactly once (the rest at a drain), each flow's in order; `dequeue`
    /// returns nothing while packets wait only with a wake-up in the future.
    #[test]
    fn trees_conserve_packets_and_keep_each_flows_order(tree in random_tree(), ops in ops(), kind in prop::sample::select(vec![Kind::Drr, Kind::Qfq, Kind::FqCodel, Kind::Prio])) {
        let leaves: Vec<u32> = (0..tree.classes().len()).filter(|&i| tree.is_leaf(i)).map(|i| i as u32).collect();
        let mut s = build_tree::<P>(kind, config(16), &tree).expect("build");
        let ids: Vec<FlowId> = (0..16)
            .map(|i| s.add_flow(FlowConfig { class: leaves[i % leaves.len()], ..FlowConfig::default() }).expect("flow"))
            .collect();
        let mut model: Vec<VecDeque<u64>> = vec![VecDeque::new(); 16];
        let mut t = 1_000u64;
        let mut seq = 0;
        let out = |f: FlowId, p: P, model: &mut Vec<VecDeque<u64>>| {
            let i = ids.iter().position(|&g| g == f).expect("known flow");
            prop_assert_eq!(model[i].pop_front(), Some(p.seq), "flow {} out of order", i);
            Ok(())
        };
        for op in ops {
            match op {
                Op::Enq { flow, len } => {
                    seq += 1;
                    s.enqueue(t, ids[flow], P { len, flow: flow as u32, seq }).expect("queued");
                    model[flow].push_back(seq);
                }
                Op::Deq => match s.dequeue(t) {
                    Some((f, p)) => out(f, p, &mut model)?,
                    None => {
                        let queued: usize = model.iter().map(VecDeque::len).sum();
                        if queued > 0 {
                            let next = s.next_ready();
                            prop_assert!(next.is_some_and(|n| n > t), "stuck at {} with {} queued: {:?}", t, queued, next);
                        }
                    }
                },
                Op::Advance(d) => t += d,
            }
        }
        // Waiting out the wake-ups empties it, in order.
        let mut guard = 0;
        while model.iter().any(|q| !q.is_empty()) && guard < 100_000 {
            guard += 1;
            match s.dequeue(t) {
                Some((f, p)) => out(f, p, &mut model)?,
                None => t = s.next_ready().expect("a wake-up while backlogged"),
            }
        }
        prop_assert!(model.iter().all(VecDeque::is_empty));
        prop_assert_eq!(s.backlog().packets, 0);
    }

    /// A drain (`u64::MAX`) takes everything at once, limits ignored.
    #[test]
    fn a_drain_takes_everything(tree in random_tree(), n in 1usize..300) {
        let leaves: Vec<u32> = (0..tree.classes().len()).filter(|&i| tree.is_leaf(i)).map(|i| i as u32).collect();
        let mut s = build_tree::<P>(Kind::Drr, config(8), &tree).expect("build");
        let ids: Vec<FlowId> = (0..8)
            .map(|i| s.add_flow(FlowConfig { class: leaves[i % leaves.len()], ..FlowConfig::default() }).expect("flow"))
            .collect();
        for i in 0..n {
            s.enqueue(5, ids[i % 8], P { len: 1500, flow: 0, seq: i as u64 }).expect("queued");
        }
        let mut got = 0;
        while s.dequeue(u64::MAX).is_some() {
            got += 1;
        }
        prop_assert_eq!(got, n);
    }
}

/// examples/14-htb-tree.toml through the emulator (classification by the
/// example's rules, flowsets, the pipe's next wake-ups): sub1 idle, four
/// flows in each other leaf: sub2 42.3, voice 17.7, bulk 40 Mbit/s.
#[test]
fn the_example_shapes_through_the_emulator() {
    use sched::classify::FlowKey;
    use sched::emu::{Emulator, NoHost, Verdict};
    let cfg =
        sched::config::from_toml(include_str!("../../examples/14-htb-tree.toml")).expect("example");
    let mut emu = Emulator::<P>::from_config(&cfg, 7).expect("emulator");
    let v4 = |a: u8, b: u8| u128::from(u32::from_be_bytes([10, 0, a, b])) | (0xffffu128 << 32);
    // (source subnet, DSCP) of sub2, sub3 voice (EF), sub3 bulk; 4 flows each.
    let sources = [(2u8, 0u8), (3, 46), (3, 0)];
    let keys: Vec<(usize, FlowKey)> = sources
        .iter()
        .enumerate()
        .flat_map(|(k, &(net, dscp))| {
            (0..4u16).map(move |i| {
                (
                    k,
                    FlowKey {
                        src: v4(net, 1 + i as u8),
                        dst: v4(9, 9),
                        src_port: 1000 + i,
                        dst_port: 5201,
                        proto: 17,
                        dscp,
                        ..FlowKey::default()
                    },
                )
            })
        })
        .collect();
    let mut queued = vec![0u32; keys.len()];
    let mut bytes = [0u64; 3];
    let mut t = 1_000_000u64;
    let (start, end) = (1_000_000_000u64, 5_000_000_000u64);
    while t < end {
        // Keep each flow at 4 packets in the emulator.
        for (j, (k, key)) in keys.iter().enumerate() {
            while queued[j] < 4 {
                let p = P {
                    len: 1500,
                    flow: j as u32,
                    seq: *k as u64,
                };
                let target = emu.classify(key).0;
                match emu.enqueue_key(t, key, target, p) {
                    Verdict::Queued { .. } => queued[j] += 1,
                    other => panic!("not queued: {other:?}"),
                }
            }
        }
        let mut any = false;
        while let Some((_, _, p)) = emu.dequeue(t, &mut NoHost) {
            any = true;
            queued[p.flow as usize] -= 1;
            if t >= start {
                bytes[p.seq as usize] += u64::from(p.len);
            }
        }
        let next = emu.next_wakeup().expect("backlogged");
        assert!(any || next > t, "no progress at {t}");
        t = next.max(t + 1);
    }
    let secs = (end - start) as f64 / 1e9;
    let got: Vec<f64> = bytes.iter().map(|&b| b as f64 * 8.0 / secs).collect();
    let b = 20.0 * 200.0 / 325.0;
    assert_rates(&got, &[30.0 + b, 30.0 - b, 40.0], "example 14");
}

/// Per-flow rates inside a leaf class, competing with a greedy class of
/// the same priority (the soak's shape: 64 flows of 500 kbit/s in "paced",
/// rate 40 / ceil 100; 16 greedy flows in "bulk", rate 60 / ceil 100; a
/// 100 Mbit/s root on a 1 Gbit/s link): each paced flow gets its rate
/// within 0.5 %, the bulk class the rest.
#[test]
fn paced_flows_in_a_class_keep_their_rate_beside_a_greedy_class() {
    let tree = Tree::new(vec![
        class(None, 100, 100, 0),
        class(Some(0), 40, 100, 0),
        class(Some(0), 60, 100, 0),
    ])
    .expect("tree");
    let mut s = build_tree::<P>(Kind::Drr, config(80), &tree).expect("build");
    let mut ids = Vec::new();
    for i in 0..80u32 {
        let paced = i < 64;
        let f = s
            .add_flow(FlowConfig {
                class: if paced { 1 } else { 2 },
                rate_bps: if paced { 500_000 } else { 0 },
                ..FlowConfig::default()
            })
            .expect("flow");
        ids.push((f, if paced { 1242u32 } else { 1514 }));
    }
    let (from, end) = (2_000_000_000u64, 10_000_000_000u64);
    let mut bytes = vec![0u64; ids.len()];
    let mut t = 1_000_000_000u64;
    let t0 = t;
    let mut seq = 0;
    while t - t0 < end {
        for &(f, len) in &ids {
            while s.flow_backlog(f).expect("flow").packets < 2 {
                seq += 1;
                let p = P {
                    len,
                    flow: f.0,
                    seq,
                };
                s.enqueue(t, f, p).expect("queued");
            }
        }
        match s.dequeue(t) {
            Some((f, p)) => {
                if t - t0 >= from {
                    bytes[f.index()] += u64::from(p.len);
                }
                t += u64::from(p.len) * 8; // ns at 1 Gbit/s
            }
            None => t = s.next_ready().expect("something waits"),
        }
    }
    let secs = (end - from) as f64 / 1e9;
    let rates: Vec<f64> = bytes.iter().map(|&b| b as f64 * 8.0 / secs).collect();
    let (lo, hi) = rates[..64]
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &r| (a.min(r), b.max(r)));
    let bulk: f64 = rates[64..].iter().sum();
    eprintln!("paced {lo:.0}..{hi:.0} bit/s (rate 500000), bulk {bulk:.0}");
    assert!(
        lo >= 0.995 * 500_000.0 && hi <= 1.005 * 500_000.0,
        "paced flows {lo:.0}..{hi:.0} bit/s against 500 000"
    );
    assert!(
        (bulk - 68e6).abs() <= 0.01 * 68e6,
        "bulk {bulk:.0} against 100 - 64 x 0.5 = 68 Mbit/s"
    );
}
