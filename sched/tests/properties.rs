//! Property tests for every algorithm against a plain model of per-flow FIFO
//! queues: every accepted packet is dequeued exactly once and in per-flow
//! order, `dequeue` returns nothing only when nothing is queued (work
//! conservation), `peek` shows what `dequeue` returns, and drops happen only
//! at the configured limits, with the right reason, and hand the packet back.

use proptest::prelude::*;
use sched::{
    build, ConfigError, DropReason, FlowConfig, FlowId, Kind, Lmax, OverflowPolicy, Packet,
    Priority, QueueLimit, SchedConfig, Scheduler, Weight,
};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct TPkt {
    len: u32,
    id: u64,
}

impl Packet for TPkt {
    fn len(&self) -> u32 {
        self.len
    }
}

#[derive(Debug, Clone)]
enum Op {
    Enq { flow: u32, len: u32 },
    Deq,
    PeekDeq,
    Reweight { flow: u32, weight: u32 },
}

fn op(nflows: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..=nflows, prop_oneof![9 => 64u32..=1600, 1 => 0u32..=10_000])
            .prop_map(|(flow, len)| Op::Enq { flow, len }),
        4 => Just(Op::Deq),
        1 => Just(Op::PeekDeq),
        1 => (0..nflows, 1u32..=65_536).prop_map(|(flow, weight)| Op::Reweight { flow, weight }),
    ]
}

#[derive(Debug, Clone)]
struct FlowSpec {
    weight: u32,
    prio: u32,
    lmax: u32,
    limit_pkts: u32,
    limit_bytes: u32,
}

fn flow_spec() -> impl Strategy<Value = FlowSpec> {
    (
        1u32..=65_536,
        0u32..=15,
        prop_oneof![Just(65_536u32), 64u32..=9000],
        prop_oneof![Just(u32::MAX), 1u32..=20],
        prop_oneof![Just(u32::MAX), 64u32..=20_000],
    )
        .prop_map(|(weight, prio, lmax, limit_pkts, limit_bytes)| FlowSpec {
            weight,
            prio,
            lmax,
            limit_pkts,
            limit_bytes,
        })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

fn flow_config(s: &FlowSpec) -> FlowConfig {
    FlowConfig {
        weight: Weight::new(s.weight as u64).expect("weight"),
        priority: Priority::new(s.prio as u64).expect("prio"),
        quantum: None,
        lmax: Lmax::new(s.lmax as u64).expect("lmax"),
        limit: QueueLimit::new(s.limit_pkts, s.limit_bytes).expect("limit"),
        ..FlowConfig::default()
    }
}

struct Model {
    q: Vec<VecDeque<TPkt>>,
    spec: Vec<FlowSpec>,
    pkts: u32,
    bytes: u64,
}

impl Model {
    fn flow_bytes(&self, f: usize) -> u64 {
        self.q[f].iter().map(|p| p.len as u64).sum()
    }
}

fn check_run(
    kind: Kind,
    specs: Vec<FlowSpec>,
    ops: Vec<Op>,
    limit_packets: u32,
    limit_bytes: u64,
    lqd: bool,
) -> Result<(), TestCaseError> {
    let overflow = if lqd && kind != Kind::Fifo {
        OverflowPolicy::DropLongest
    } else {
        OverflowPolicy::TailDrop
    };
    let cfg = SchedConfig {
        max_flows: specs.len() as u32,
        limit_packets,
        limit_bytes,
        overflow,
    };
    let mut s = build::<TPkt>(kind, cfg).expect("build");
    let mut flows = Vec::new();
    for sp in &specs {
        flows.push(s.add_flow(flow_config(sp)).expect("add_flow"));
    }
    prop_assert_eq!(
        s.add_flow(FlowConfig::default()),
        Err(ConfigError::TooManyFlows {
            max: specs.len() as u32
        })
    );
    let n = specs.len();
    let mut m = Model {
        q: vec![VecDeque::new(); n],
        spec: specs,
        pkts: 0,
        bytes: 0,
    };
    let mut next_id = 0u64;
    let mut accepted = 0u64;
    let mut dequeued = 0u64;

    let mut do_deq =
        |s: &mut sched::AnySched<TPkt>, m: &mut Model, peek: bool| -> Result<(), TestCaseError> {
            let peeked = if peek {
                s.peek(0).map(|(f, p)| (f, *p))
            } else {
                None
            };
            match s.dequeue(0) {
                None => prop_assert_eq!(m.pkts, 0, "work conservation: None while backlogged"),
                Some((f, p)) => {
                    let fi = f.index();
                    prop_assert!(fi < n);
                    let head = m.q[fi].pop_front();
                    prop_assert_eq!(head, Some(p), "per-flow FIFO / exactly once");
                    m.pkts -= 1;
                    m.bytes -= p.len as u64;
                    dequeued += 1;
                    if peek {
                        prop_assert_eq!(peeked, Some((f, p)), "peek shows the next dequeue");
                    }
                }
            }
            Ok(())
        };

    for o in ops {
        match o {
            Op::Enq { flow, len } => {
                let pkt = TPkt { len, id: next_id };
                next_id += 1;
                let fi = flow as usize;
                // What the model expects.
                let expect: Option<DropReason> = if fi >= n {
                    Some(DropReason::UnknownFlow)
                } else if len == 0 || len > m.spec[fi].lmax {
                    Some(DropReason::BadLength)
                } else if m.q[fi].len() as u32 >= m.spec[fi].limit_pkts
                    || m.flow_bytes(fi) + len as u64 > m.spec[fi].limit_bytes as u64
                {
                    Some(DropReason::FlowLimit)
                } else if m.pkts >= limit_packets || m.bytes + len as u64 > limit_bytes {
                    Some(DropReason::GlobalLimit) // or PushedOut, checked below
                } else {
                    None
                };
                let fid = if fi < n { flows[fi] } else { FlowId(flow) };
                match (s.enqueue(0, fid, pkt), expect) {
                    (Ok(()), None) => {
                        m.q[fi].push_back(pkt);
                        m.pkts += 1;
                        m.bytes += len as u64;
                        accepted += 1;
                    }
                    (Err(d), Some(DropReason::GlobalLimit))
                        if d.reason == DropReason::PushedOut =>
                    {
                        prop_assert_eq!(overflow, OverflowPolicy::DropLongest);
                        let v = d.flow.index();
                        let longest = m.q.iter().map(|q| q.len()).max().unwrap_or(0);
                        prop_assert_eq!(m.q[v].len(), longest, "victim is a longest queue");
                        prop_assert!(v != fi && m.q[v].len() >= m.q[fi].len() + 2);
                        let head = m.q[v].pop_front();
                        prop_assert_eq!(head, Some(d.pkt), "victim is the head of its queue");
                        m.pkts -= 1;
                        m.bytes -= d.pkt.len as u64;
                        m.q[fi].push_back(pkt);
                        m.pkts += 1;
                        m.bytes += len as u64;
                        accepted += 1;
                    }
                    (Err(d), Some(r)) => {
                        prop_assert_eq!(d.reason, r);
                        prop_assert_eq!(d.pkt, pkt, "the dropped packet is handed back");
                        prop_assert_eq!(d.flow, fid);
                        if r == DropReason::GlobalLimit && overflow == OverflowPolicy::DropLongest {
                            // Push-out was declined: the arrival would be among the longest,
                            // or the room it would make is not enough.
                            let longest = m.q.iter().map(|q| q.len()).max().unwrap_or(0);
                            prop_assert!(
                                longest <= m.q[fi].len() + 1 || limit_bytes != u64::MAX,
                                "push-out declined although flow {} is shorter ({}) than the longest ({})",
                                fi,
                                m.q[fi].len(),
                                longest
                            );
                        }
                    }
                    (got, want) => {
                        prop_assert!(false, "enqueue: got {:?}, model expected {:?}", got, want);
                    }
                }
            }
            Op::Deq => do_deq(&mut s, &mut m, false)?,
            Op::PeekDeq => do_deq(&mut s, &mut m, true)?,
            Op::Reweight { flow, weight } => {
                let fi = flow as usize;
                if fi >= n {
                    continue;
                }
                let mut sp = m.spec[fi].clone();
                sp.weight = weight;
                let r = s.configure_flow(flows[fi], flow_config(&sp));
                if m.q[fi].is_empty() {
                    prop_assert_eq!(r, Ok(()));
                    m.spec[fi] = sp;
                } else {
                    let busy = matches!(r, Err(ConfigError::FlowBusy { .. }));
                    prop_assert!(busy, "reconfiguring a busy flow must fail: {:?}", r);
                }
            }
        }
        // Backlog accounting matches the model at every step.
        prop_assert_eq!(s.backlog().packets, m.pkts);
        prop_assert_eq!(s.backlog().bytes, m.bytes);
    }
    for (i, f) in flows.iter().enumerate() {
        let b = s.flow_backlog(*f).expect("configured");
        prop_assert_eq!(b.packets as usize, m.q[i].len());
    }
    // Drain: everything accepted comes out exactly once.
    while m.pkts > 0 {
        do_deq(&mut s, &mut m, false)?;
    }
    prop_assert!(s.dequeue(0).is_none());
    let c = s.counters();
    prop_assert_eq!(c.dequeued, dequeued);
    prop_assert_eq!(c.enqueued, accepted);
    // Idle flows can be removed; their ids come back.
    for f in &flows {
        prop_assert_eq!(s.remove_flow(*f), Ok(()));
    }
    prop_assert_eq!(s.flows(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn queues_behave_like_per_flow_fifos(
        kind in kind(),
        specs in prop::collection::vec(flow_spec(), 1..8),
        ops in prop::collection::vec(op(8), 0..400),
        limit_packets in 1u32..64,
        lqd in any::<bool>(),
    ) {
        // Flow ops name flows 0..=8; those >= specs.len() are unknown flows.
        check_run(kind, specs, ops, limit_packets, u64::MAX, lqd)?;
    }

    #[test]
    fn global_byte_limit_is_exact(
        kind in kind(),
        specs in prop::collection::vec(flow_spec(), 1..6),
        ops in prop::collection::vec(op(6), 0..300),
        limit_bytes in 65_536u64..200_000,
        lqd in any::<bool>(),
    ) {
        check_run(kind, specs, ops, 1 << 12, limit_bytes, lqd)?;
    }
}

#[test]
fn fifo_refuses_drop_longest() {
    let cfg = SchedConfig {
        overflow: OverflowPolicy::DropLongest,
        ..SchedConfig::default()
    };
    assert!(matches!(
        build::<u32>(Kind::Fifo, cfg),
        Err(ConfigError::Unsupported(_))
    ));
}

#[test]
fn prio_is_strict() {
    let mut s = build::<TPkt>(Kind::Prio, SchedConfig::default()).expect("build");
    let lo = s
        .add_flow(FlowConfig {
            priority: Priority::new(5).expect("prio"),
            ..FlowConfig::default()
        })
        .expect("flow");
    let hi = s.add_flow(FlowConfig::default()).expect("flow");
    for i in 0..10 {
        s.enqueue(0, lo, TPkt { len: 100, id: i }).expect("enq");
    }
    for i in 10..15 {
        s.enqueue(0, hi, TPkt { len: 100, id: i }).expect("enq");
    }
    let order: Vec<FlowId> = std::iter::from_fn(|| s.dequeue(0).map(|(f, _)| f)).collect();
    assert_eq!(&order[..5], &[hi; 5]);
    assert_eq!(&order[5..], &[lo; 10]);
}

#[test]
fn flow_ids_are_reused_after_removal() {
    let mut s = build::<u32>(Kind::Qfq, SchedConfig::default()).expect("build");
    let a = s.add_flow(FlowConfig::default()).expect("a");
    let b = s.add_flow(FlowConfig::default()).expect("b");
    s.enqueue(0, b, 100).expect("enq");
    assert!(matches!(
        s.remove_flow(b),
        Err(ConfigError::FlowBusy { packets: 1, .. })
    ));
    assert_eq!(s.dequeue(0), Some((b, 100)));
    s.remove_flow(a).expect("remove");
    assert!(matches!(s.remove_flow(a), Err(ConfigError::UnknownFlow(_))));
    assert_eq!(s.add_flow(FlowConfig::default()).expect("again"), a);
}

#[test]
fn a_packet_longer_than_lmax_is_dropped_and_counted_not_queued() {
    for kind in Kind::ALL {
        let mut s = build::<u32>(kind, SchedConfig::default()).expect("build");
        let f = s
            .add_flow(FlowConfig {
                lmax: Lmax::new(1500).expect("lmax"),
                ..FlowConfig::default()
            })
            .expect("flow");
        let d = s.enqueue(0, f, 1501).expect_err("too long");
        assert_eq!((d.reason, d.pkt), (DropReason::BadLength, 1501));
        assert_eq!(s.counters().drops(DropReason::BadLength), 1);
        s.enqueue(0, f, 1500).expect("fits");
        assert_eq!(s.dequeue(0), Some((f, 1500)), "{kind}");
    }
}

#[test]
fn an_idle_configured_flow_costs_at_most_128_bytes() {
    use sched::algo::{drr::Drr, fifo::Fifo, prio::Prio, qfq::Qfq, wf2q::Wf2q};
    use sched::Engine;
    let sizes = [
        ("fifo", Engine::<TPkt, Fifo>::memory_per_flow()),
        ("prio", Engine::<TPkt, Prio>::memory_per_flow()),
        ("drr", Engine::<TPkt, Drr>::memory_per_flow()),
        ("wf2q", Engine::<TPkt, Wf2q>::memory_per_flow()),
        ("qfq", Engine::<TPkt, Qfq>::memory_per_flow()),
        // Drop-longest engines add their bucket links.
        ("prio+lqd", Engine::<TPkt, Prio, true>::memory_per_flow()),
        ("drr+lqd", Engine::<TPkt, Drr, true>::memory_per_flow()),
        ("wf2q+lqd", Engine::<TPkt, Wf2q, true>::memory_per_flow()),
        ("qfq+lqd", Engine::<TPkt, Qfq, true>::memory_per_flow()),
    ];
    for (name, bytes) in sizes {
        println!("{name}: {bytes} bytes per flow");
        assert!(bytes <= 128, "{name}: {bytes} bytes per idle flow");
    }
}

#[test]
fn the_engine_type_must_match_the_overflow_policy() {
    use sched::algo::drr::Drr;
    use sched::Engine;
    let lqd = SchedConfig {
        overflow: OverflowPolicy::DropLongest,
        ..SchedConfig::default()
    };
    assert!(matches!(
        Engine::<u32, Drr>::new(lqd),
        Err(ConfigError::Unsupported(_))
    ));
    assert!(matches!(
        Engine::<u32, Drr, true>::new(SchedConfig::default()),
        Err(ConfigError::Unsupported(_))
    ));
    assert!(Engine::<u32, Drr, true>::new(lqd).is_ok());
    // `build` picks the engine from the configuration.
    assert!(matches!(
        build::<u32>(Kind::Drr, lqd),
        Ok(sched::AnySched::DrrLqd(_))
    ));
    assert!(matches!(
        build::<u32>(Kind::Drr, SchedConfig::default()),
        Ok(sched::AnySched::Drr(_))
    ));
}
