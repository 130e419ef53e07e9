//! Per-flow rate limits (`FlowConfig::rate_bps`, the engine's Carousel
//! wheel) in simulated time: every flow of 100 000 with a random rate sends
//! at its rate within 0.5 % (each packet at its exact instant, at most one
//! wheel slot late), under every scheduler; paced flows share a link fairly
//! when their rates exceed it; properties: conservation and per-flow order.

use proptest::prelude::*;
use sched::{build, FlowConfig, FlowId, Kind, Packet, SchedConfig, Scheduler};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct P {
    len: u32,
    seq: u64,
}

impl Packet for P {
    fn len(&self) -> u32 {
        self.len
    }
}

/// One wheel slot (the engine's `PACE_SHIFT`): how late a paced packet
/// may leave.
const SLOT_NS: u64 = 1024;

fn config(flows: u32, packets: u32) -> SchedConfig {
    SchedConfig {
        max_flows: flows,
        limit_packets: packets,
        limit_bytes: u64::MAX / 2,
        ..SchedConfig::default()
    }
}

/// `n` flows at random rates of 1..10 Mbit/s, each kept backlogged with
/// two 1500-byte packets, on an unlimited link polled at every wake-up
/// until each has sent `per_flow` packets: every departure lies within a
/// slot after its ideal instant (first departure + k · 12000 bits / rate),
/// and each flow's rate over its run is within 0.5 % of its own.
fn rates_are_exact(kind: Kind, n: u32, per_flow: u64) {
    let mut s = build::<P>(kind, config(n, 4 * n)).expect("build");
    let mut r = sched::rng::Rng::new(u64::from(n));
    let rates: Vec<u64> = (0..n)
        .map(|_| 1_000_000 + r.next_u64() % 9_000_000)
        .collect();
    let ids: Vec<FlowId> = rates
        .iter()
        .map(|&rate_bps| {
            s.add_flow(FlowConfig {
                rate_bps,
                ..FlowConfig::default()
            })
            .expect("flow")
        })
        .collect();
    let mut t = 1_000_000_000u64;
    let mut first = vec![None::<u64>; n as usize];
    let mut last = vec![0u64; n as usize];
    let mut sent = vec![0u64; n as usize];
    let mut done = 0;
    for (i, &f) in ids.iter().enumerate() {
        for k in 0..2 {
            s.enqueue(t, f, P { len: 1500, seq: k }).expect("queued");
        }
        let _ = i;
    }
    let mut guard = 0u64;
    while done < n && guard < 100_000_000 {
        guard += 1;
        match s.dequeue(t) {
            Some((f, p)) => {
                let i = f.index();
                let k = sent[i];
                if k >= per_flow {
                    // Its run is over: what it still had queued drains.
                    continue;
                }
                let t0 = *first[i].get_or_insert(t);
                // Exact: packet k leaves k packet times after the first (a
                // flow starting from idle has no credit; the remainder
                // carried), never earlier, at most a slot later.
                let ideal =
                    t0 + (12_000u128 * 1_000_000_000 * u128::from(k) / u128::from(rates[i])) as u64;
                assert!(
                    t + 1 >= ideal && t <= ideal + SLOT_NS,
                    "{kind:?}: flow {i} packet {k} at {t}, ideal {ideal}"
                );
                sent[i] += 1;
                last[i] = t;
                if sent[i] == per_flow {
                    done += 1;
                } else {
                    s.enqueue(
                        t,
                        f,
                        P {
                            len: 1500,
                            seq: p.seq + 2,
                        },
                    )
                    .expect("queued");
                }
            }
            None => t = s.next_ready().expect("paced flows wait with a wake-up"),
        }
    }
    assert_eq!(done, n, "not every flow finished");
    for i in 0..n as usize {
        // per_flow packets, the last per_flow − 1 packet times after the first.
        let secs = (last[i] - first[i].expect("sent")) as f64 / 1e9;
        let got = (per_flow - 1) as f64 * 12_000.0 / secs;
        let want = rates[i] as f64;
        assert!(
            (got - want).abs() <= 0.005 * want,
            "flow {i}: {got:.0} bit/s, its rate {want}"
        );
    }
}

#[test]
fn a_hundred_thousand_flows_each_at_its_own_rate() {
    // Debug builds (overflow checks) run a tenth of them.
    let n = if cfg!(debug_assertions) {
        10_000
    } else {
        100_000
    };
    rates_are_exact(Kind::Drr, n, 12);
}

const PER_FLOW: [Kind; 4] = [Kind::Prio, Kind::Drr, Kind::Wf2q, Kind::Qfq];

#[test]
fn every_scheduler_paces_its_flows() {
    for kind in PER_FLOW {
        rates_are_exact(kind, 300, 20);
    }
    // FIFO serves packets, not flows, and FQ-CoDel finds empty flows by
    // their queues: a rate is refused, clearly.
    for kind in [Kind::Fifo, Kind::FqCodel] {
        let mut s = build::<P>(kind, config(4, 16)).expect("build");
        let e = s
            .add_flow(FlowConfig {
                rate_bps: 1_000_000,
                ..FlowConfig::default()
            })
            .expect_err("refused");
        assert!(e.to_string().contains("per-flow rate"), "{e}");
    }
}

/// Four flows limited to 10, 20, 30 and 60 Mbit/s through a 100 Mbit/s
/// link under DRR (equal quanta): the three whose rate is below the fair
/// share get their rates (a flow the link delays catches up), the fourth
/// the rest, 40 — max-min fairness with caps. And weights still count
/// among flows the link holds back: two flows capped at 80 with weights
/// 1:3 under QFQ split the link 25:75.
#[test]
fn paced_flows_get_their_rates_or_their_share_of_a_congested_link() {
    let run = |kind: Kind, flows: &[(u64, u64)]| -> Vec<f64> {
        let mut s = build::<P>(kind, config(4, 64)).expect("build");
        let ids: Vec<FlowId> = flows
            .iter()
            .map(|&(rate_mbit, w)| {
                s.add_flow(FlowConfig {
                    weight: sched::Weight::new(w).expect("weight"),
                    rate_bps: rate_mbit * 1_000_000,
                    ..FlowConfig::default()
                })
                .expect("flow")
            })
            .collect();
        let mut t = 1_000_000u64;
        let (start, end) = (500_000_000u64, 5_000_000_000u64);
        let mut bytes = vec![0u64; flows.len()];
        while t < end {
            for &f in &ids {
                while s.flow_backlog(f).expect("flow").packets < 4 {
                    s.enqueue(t, f, P { len: 1500, seq: 0 }).expect("queued");
                }
            }
            match s.dequeue(t) {
                Some((f, p)) => {
                    if t >= start {
                        bytes[f.index()] += u64::from(p.len);
                    }
                    t += 12_000 * 10; // 1500 bytes at 100 Mbit/s
                }
                None => t = s.next_ready().expect("wake-up"),
            }
        }
        let secs = (end - start) as f64 / 1e9;
        bytes.iter().map(|&b| b as f64 * 8.0 / secs / 1e6).collect()
    };
    let check = |got: Vec<f64>, want: &[f64]| {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 0.01 * w, "{got:?}, want {want:?}");
        }
    };
    check(
        run(Kind::Drr, &[(10, 1), (20, 1), (30, 1), (60, 1)]),
        &[10.0, 20.0, 30.0, 40.0],
    );
    check(run(Kind::Qfq, &[(80, 1), (80, 3)]), &[25.0, 75.0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random rates (some flows unpaced), random traffic and time: every
    /// accepted packet leaves exactly once, each flow's in order; nothing
    /// is stuck (a wake-up while packets wait); a drain takes the rest.
    #[test]
    fn pacing_conserves_packets_and_keeps_order(
        rates in prop::collection::vec(prop_oneof![Just(0u64), 10_000u64..100_000_000], 8),
        ops in prop::collection::vec(prop_oneof![
            5 => (0usize..8, 64u32..1600).prop_map(|(f, l)| (0u8, f, l as u64)),
            4 => Just((1u8, 0, 0)),
            2 => (1u64..3_000_000).prop_map(|d| (2u8, 0, d)),
        ], 1..400),
        kind in prop::sample::select(PER_FLOW.to_vec()),
        drain in any::<bool>(),
    ) {
        let mut s = build::<P>(kind, config(8, 1000)).expect("build");
        let ids: Vec<FlowId> = rates.iter().map(|&rate_bps| s.add_flow(FlowConfig { rate_bps, ..FlowConfig::default() }).expect("flow")).collect();
        let mut model: Vec<VecDeque<u64>> = vec![VecDeque::new(); 8];
        let mut t = 1_000u64;
        let mut seq = 0;
        let check = |f: FlowId, p: P, model: &mut Vec<VecDeque<u64>>| {
            let i = ids.iter().position(|&g| g == f).expect("known");
            prop_assert_eq!(model[i].pop_front(), Some(p.seq), "flow {} out of order", i);
            Ok(())
        };
        for (op, f, x) in ops {
            match op {
                0 => {
                    seq += 1;
                    s.enqueue(t, ids[f], P { len: x as u32, seq }).expect("queued");
                    model[f].push_back(seq);
                }
                1 => match s.dequeue(t) {
                    Some((g, p)) => check(g, p, &mut model)?,
                    None => {
                        if model.iter().any(|q| !q.is_empty()) {
                            prop_assert!(s.next_ready().is_some_and(|n| n > t), "stuck at {}", t);
                        }
                    }
                },
                _ => t += x,
            }
        }
        if drain {
            while let Some((g, p)) = s.dequeue(u64::MAX) {
                check(g, p, &mut model)?;
            }
        } else {
            let mut guard = 0;
            while model.iter().any(|q| !q.is_empty()) && guard < 100_000 {
                guard += 1;
                match s.dequeue(t) {
                    Some((g, p)) => check(g, p, &mut model)?,
                    None => t = s.next_ready().expect("a wake-up while backlogged"),
                }
            }
        }
        prop_assert!(model.iter().all(VecDeque::is_empty));
        prop_assert_eq!(s.backlog().packets, 0);
    }
}

/// Through the emulator: a flowset with `rate` on a pipe of unlimited
/// bandwidth gives each of its 1000 flows (5-tuple mask) its own 2 Mbit/s,
/// whatever they offer.
#[test]
fn a_flowsets_rate_limits_each_of_its_flows_in_the_emulator() {
    use sched::classify::FlowKey;
    use sched::emu::{Emulator, NoHost, Target, Verdict};
    let cfg = sched::config::from_toml(
        "[[pipe]]\nname = \"p\"\nsched = \"drr\"\n[[flowset]]\nname = \"f\"\npipe = \"p\"\nmask = \"5-tuple\"\nrate = \"2Mbit/s\"\nqueue = 4\n",
    )
    .expect("config");
    let mut emu = Emulator::<P>::from_config(&cfg, 3).expect("emulator");
    let n = 1000u16;
    let keys: Vec<FlowKey> = (0..n)
        .map(|i| FlowKey {
            src_port: 1000 + i,
            dst_port: 80,
            proto: 17,
            ..FlowKey::default()
        })
        .collect();
    let (start, end) = (100_000_000u64, 1_100_000_000u64);
    let mut t = 1_000u64;
    let mut bytes = vec![0u64; n as usize];
    let mut queued = vec![0u32; n as usize];
    while t < end {
        for (i, k) in keys.iter().enumerate() {
            while queued[i] < 3 {
                match emu.enqueue_key(
                    t,
                    k,
                    Target::Flowset(0),
                    P {
                        len: 1500,
                        seq: i as u64,
                    },
                ) {
                    Verdict::Queued { .. } => queued[i] += 1,
                    v => panic!("{v:?}"),
                }
            }
        }
        while let Some((_, _, p)) = emu.dequeue(t, &mut NoHost) {
            queued[p.seq as usize] -= 1;
            if t >= start {
                bytes[p.seq as usize] += u64::from(p.len);
            }
        }
        t = emu.next_wakeup().expect("paced flows wait").max(t + 1);
    }
    let secs = (end - start) as f64 / 1e9;
    for (i, &b) in bytes.iter().enumerate() {
        let rate = b as f64 * 8.0 / secs;
        // 1 s holds 166.7 packets of 1500 bytes at 2 Mbit/s: a packet either side.
        assert!(
            (rate - 2e6).abs() <= 12_000.0 + 0.005 * 2e6,
            "flow {i}: {rate:.0} bit/s"
        );
    }
}

/// The catch-up window, both ways: a backlogged flow whose poll comes late
/// (a busy host's worker off its CPU for 5 ms) sends what it missed at once
/// and then goes on at its rate, losing none of it; a flow idle for long
/// earns at most the window: after 50 ms without packets, 10 ms of its
/// rate (and the packet) leave at once, the rest one packet time apart.
#[test]
fn a_late_poll_is_caught_up_and_idle_time_earns_at_most_the_window() {
    let mut s = build::<P>(Kind::Drr, config(4, 1000)).expect("build");
    // 12 Mbit/s: a 1500-byte packet every 1 ms.
    let f = s
        .add_flow(FlowConfig {
            rate_bps: 12_000_000,
            ..FlowConfig::default()
        })
        .expect("flow");
    let ms = 1_000_000u64;
    let t0 = 1_000 * ms;
    for k in 0..100 {
        s.enqueue(t0, f, P { len: 1500, seq: k }).expect("queued");
    }
    // Polled on time for 10 packets, then nothing until 5 ms late.
    let mut t = t0;
    let mut out = Vec::new();
    while out.len() < 10 {
        match s.dequeue(t) {
            Some((_, p)) => out.push((t, p.seq)),
            None => t = s.next_ready().expect("waits"),
        }
    }
    let near = |t: u64, want: u64| t >= want && t <= want + SLOT_NS;
    assert!(near(out[9].0, t0 + 9 * ms), "{out:?}");
    let late = t0 + 15 * ms;
    let mut burst = 0;
    while s.dequeue(late).is_some() {
        burst += 1;
    }
    assert_eq!(
        burst, 6,
        "packets 10..=15 were due by 15 ms: all leave at once"
    );
    let next = s.next_ready().expect("waits");
    assert!(near(next, t0 + 16 * ms), "then on at its rate: {next}");
    // Drain, then idle for 50 ms.
    let mut t = late;
    while s.backlog().packets > 0 {
        if s.dequeue(t).is_none() {
            t = s.next_ready().expect("waits");
        }
    }
    let back = t + 50 * ms;
    for k in 0..20 {
        s.enqueue(back, f, P { len: 1500, seq: k }).expect("queued");
    }
    let mut times = Vec::new();
    let mut t = back;
    while times.len() < 20 {
        match s.dequeue(t) {
            Some(_) => times.push(t),
            None => t = s.next_ready().expect("waits"),
        }
    }
    assert!(times[..11].iter().all(|&t| t == back), "{times:?}");
    for (k, &t) in times[11..].iter().enumerate() {
        assert!(
            near(t, back + (k as u64 + 1) * ms),
            "then one packet time apart: {times:?}"
        );
    }
}
