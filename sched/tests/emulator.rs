//! End to end in simulated time: a TOML configuration → rules → flowsets →
//! a pipe, fed real frame bytes.

use sched::classify::FlowKey;
use sched::emu::{Cause, Emulator, Host, Verdict};
use sched::{config, Packet};

/// The packet handle the emulator queues: which test flow, and the frame length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pk {
    tag: u32,
    len: u32,
}

impl Packet for Pk {
    fn len(&self) -> u32 {
        self.len
    }
}

/// For configurations without chained pipes: the emulator never calls back.
struct NoChain;

impl Host<Pk> for NoChain {
    fn key(&mut self, p: &Pk) -> FlowKey {
        panic!("no chained pipe here, yet asked for the key of {p:?}")
    }
    fn dropped(&mut self, p: Pk, c: Cause) {
        panic!("no chained pipe here, yet {p:?} was dropped on the way: {c:?}")
    }
}

fn pk(tag: u32, frame: &[u8]) -> Pk {
    Pk {
        tag,
        len: frame.len() as u32,
    }
}

/// An Ethernet/IPv4/UDP frame (checksums zero: the classifier does not check them).
fn udp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    dscp: u8,
    payload: usize,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + 8 + payload) as u16;
    f.extend_from_slice(&[0x45, dscp << 2]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(42 + payload, 0xab);
    f
}

const WEIGHTED: &str = r#"
[[pipe]]
name = "link"
bandwidth = "100Mbit/s"
queue = 400
sched = "qfq"

[[flowset]]
name = "w1"
pipe = "link"
weight = 1
queue = 100

[[flowset]]
name = "w2"
pipe = "link"
weight = 2
queue = 100

[[flowset]]
name = "w3"
pipe = "link"
weight = 3
queue = 100

[[flowset]]
name = "w4"
pipe = "link"
weight = 4
queue = 100

[[rule]]
flowset = "w1"
match = { proto = "udp", dst_port = 10001 }

[[rule]]
flowset = "w2"
match = { proto = "udp", dst_port = 10002 }

[[rule]]
flowset = "w3"
match = { proto = "udp", dst_port = 10003 }

[[rule]]
flowset = "w4"
match = { proto = "udp", dst_port = 10004 }
"#;

#[test]
fn four_weighted_flows_through_qfq_at_100_mbit_get_their_shares() {
    let cfg = config::from_toml(WEIGHTED).expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|i| udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 5000, 10001 + i, 0, 1458))
        .collect();
    // Every flow keeps 20 packets queued.
    let offer = |emu: &mut Emulator<Pk>, now: u64, i: usize| match emu.enqueue(
        now,
        &frames[i],
        pk(i as u32, &frames[i]),
    ) {
        Verdict::Queued { .. } => {}
        other => panic!("flow {i}: {other:?}"),
    };
    for _ in 0..20 {
        for i in 0..4 {
            offer(&mut emu, 0, i);
        }
    }
    let mut bytes = [0u64; 4];
    let mut now = 0u64;
    let end = 2_000_000_000; // 2 simulated seconds
    while let Some(t) = emu.next_wakeup() {
        if t > end {
            break;
        }
        now = now.max(t);
        while let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) {
            bytes[p.tag as usize] += p.len as u64;
            offer(&mut emu, now, p.tag as usize);
        }
    }
    let total: u64 = bytes.iter().sum();
    // 100 Mbit/s for 2 s with 24 bytes of overhead per 1500-byte frame.
    let expect_total = 2.0 * 100e6 / 8.0 * 1500.0 / 1524.0;
    assert!(
        (total as f64 - expect_total).abs() / expect_total < 0.001,
        "total {total} vs {expect_total}"
    );
    for (i, b) in bytes.iter().enumerate() {
        let share = *b as f64 / total as f64;
        let want = (i + 1) as f64 / 10.0;
        assert!(
            (share - want).abs() <= 0.01 * want,
            "flow {i}: share {share:.4}, want {want}"
        );
    }
    let c = emu.counters();
    assert_eq!(c.malformed, 0);
    assert_eq!(c.matched, c.offered);
    // One 5-tuple-less flowset per weight: one flow each, nothing refused or dropped.
    for i in 0..4 {
        let (flows, fc) = emu.flowset_counters(i).expect("flowset");
        assert_eq!((flows, fc.created, fc.refused), (1, 1, 0), "flowset {i}");
    }
    assert_eq!(emu.pipe_drops(0).expect("pipe").total_drops(), 0);
}

#[test]
fn arp_and_unmatched_traffic_pass_malformed_frames_are_dropped() {
    let cfg = config::from_toml(WEIGHTED).expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
    ]);
    assert_eq!(
        emu.enqueue(0, &arp, pk(7, &arp)),
        Verdict::Pass(pk(7, &arp))
    );
    let other = udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 5000, 53, 0, 10);
    assert_eq!(
        emu.enqueue(0, &other, pk(8, &other)),
        Verdict::Pass(pk(8, &other)),
        "no rule matches: default pass"
    );
    let mut bad = udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 5000, 10001, 0, 10);
    bad[14] = 0x44; // IHL 4 < 5
    let p = pk(9, &bad);
    assert!(matches!(emu.enqueue(0, &bad, p), Verdict::Dropped(q, Cause::Malformed(_)) if q == p));
    let p = pk(10, &bad[..20]);
    assert!(
        matches!(emu.enqueue(0, &bad[..20], p), Verdict::Dropped(q, Cause::Malformed(_)) if q == p)
    );
    let c = emu.counters();
    assert_eq!((c.offered, c.passed, c.malformed), (4, 2, 2));
}

#[test]
fn delay_pipe_holds_packets_exactly_as_long_as_configured() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "wan"
bandwidth = "1Gbit/s"
delay = "5ms"

[[flowset]]
name = "all"
pipe = "wan"

[default]
flowset = "all"
"#,
    )
    .expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let f = udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 1, 2, 0, 958); // 1000-byte frame
    assert!(matches!(
        emu.enqueue(1_000, &f, pk(1, &f)),
        Verdict::Queued { .. }
    ));
    // (1000 + 24) * 8 bits at 1 Gbit/s = 8192 ns, then 5 ms.
    let due = 1_000 + 8_192 + 5_000_000;
    assert_eq!(emu.dequeue(1_000, &mut NoChain), None);
    assert_eq!(emu.next_wakeup(), Some(due));
    assert_eq!(emu.dequeue(due - 1, &mut NoChain), None);
    assert_eq!(
        emu.dequeue(due, &mut NoChain).map(|(_, _, p)| p),
        Some(pk(1, &f))
    );
}

/// dummynet's per-host dynamic pipe (examples/03-per-host-pipe.toml): every
/// source host gets its own 200 kbit/s link.
#[test]
fn per_host_dynamic_pipe_gives_every_host_its_own_link() {
    let text = include_str!("../../examples/03-per-host-pipe.toml");
    let cfg = config::from_toml(text).expect("example config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 3).expect("emulator");
    let hosts = 3u8;
    let frames: Vec<Vec<u8>> = (0..hosts)
        .map(|h| udp_frame([192, 168, 2, 10 + h], [10, 0, 0, 1], 7, 9, 0, 476)) // 518-byte frames
        .collect();
    let offer = |emu: &mut Emulator<Pk>, now: u64, h: usize| {
        let v = emu.enqueue(now, &frames[h], pk(h as u32, &frames[h]));
        assert!(matches!(v, Verdict::Queued { .. }), "host {h}: {v:?}");
    };
    for _ in 0..10 {
        for h in 0..hosts as usize {
            offer(&mut emu, 0, h);
        }
    }
    let mut bytes = [0u64; 3];
    let mut now = 0;
    let end = 10_000_000_000; // 10 simulated seconds
    while let Some(t) = emu.next_wakeup() {
        if t > end {
            break;
        }
        now = now.max(t);
        while let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) {
            bytes[p.tag as usize] += p.len as u64;
            offer(&mut emu, now, p.tag as usize);
        }
    }
    // Each host alone gets 200 kbit/s (wire bits incl. 24 bytes overhead), not a third of it.
    for (h, b) in bytes.iter().enumerate() {
        let wire_bits = *b as f64 * 8.0 * (518.0 + 24.0) / 518.0;
        let rate = wire_bits / 10.0;
        assert!(
            (rate - 200_000.0).abs() / 200_000.0 < 0.01,
            "host {h}: {rate} bit/s"
        );
    }
    let (_, instances) = emu.pipe_counters(0).expect("pipe 0");
    assert_eq!(instances, 3);
    // The rule sends traffic to the pipe itself: its implicit flowset has one
    // flow in each of the three instances.
    let (flows, fc) = emu.flowset_counters(0).expect("implicit flowset");
    assert_eq!((flows, fc.created), (3, 3));
    // Traffic from outside 192.168.2.0/24 is not for this pipe.
    let other = udp_frame([192, 168, 3, 1], [10, 0, 0, 1], 7, 9, 0, 100);
    assert!(matches!(
        emu.enqueue(now, &other, pk(9, &other)),
        Verdict::Pass(_)
    ));
}

/// A dynamic pipe of 1 Mbit/s per source host (last octet) taking every
/// packet, with `max_instances` and `idle_timeout`.
fn per_host_pipe(max_instances: u32, idle_timeout: &str) -> Emulator<Pk> {
    let cfg = config::from_toml(&format!(
        "[[pipe]]\nname = \"per-host\"\nbandwidth = \"1Mbit/s\"\nmask = {{ src_ip = \"0.0.0.255\" }}\n\
         max_instances = {max_instances}\nidle_timeout = \"{idle_timeout}\"\n[default]\npipe = \"per-host\"\n"
    ))
    .expect("config");
    Emulator::from_config(&cfg, 3).expect("emulator")
}

#[test]
fn dynamic_pipe_instances_are_bounded_overflow_shares_one_and_idle_ones_expire() {
    let mut emu = per_host_pipe(2, "1s");
    let f = |h: u8| udp_frame([10, 0, 0, h], [10, 0, 0, 100], 7, 9, 0, 100);
    for h in 1..=4 {
        assert!(
            matches!(
                emu.enqueue(0, &f(h), pk(h as u32, &f(h))),
                Verdict::Queued { .. }
            ),
            "host {h} is served: hosts 3 and 4 share the overflow instance"
        );
    }
    assert_eq!(emu.instance_counters(0), Some((3, 0, 2)));
    assert_eq!(emu.pipe_counters(0).map(|(_, n)| n), Some(3));
    // Drain, wait past the idle timeout, expire: the two instances go (the
    // overflow one stays), their figures stay in the totals.
    let mut now = 0;
    while let Some(t) = emu.next_wakeup() {
        now = now.max(t);
        while emu.dequeue(now, &mut NoChain).is_some() {}
    }
    let (before, _) = emu.pipe_counters(0).expect("pipe");
    assert_eq!(before.delivered, 4);
    assert_eq!(emu.expire(now + 2_000_000_000, 64), 2);
    assert_eq!(emu.pipe_counters(0).map(|(_, n)| n), Some(1));
    assert_eq!(emu.instance_counters(0), Some((3, 2, 2)));
    let (after, _) = emu.pipe_counters(0).expect("pipe");
    assert_eq!(after, before, "expired instances stay in the totals");
    let (_, fc) = emu.flowset_counters(0).expect("implicit flowset");
    assert_eq!((fc.created, fc.expired), (3, 2));
    // Room again: a new host gets its own instance.
    assert!(matches!(
        emu.enqueue(now, &f(5), pk(5, &f(5))),
        Verdict::Queued { .. }
    ));
    assert_eq!(emu.instance_counters(0), Some((4, 2, 2)));
}

/// The dynamic pipe's ordering rule: while its overflow instance holds
/// packets, a key that went there keeps going there even when an instance
/// expires and makes room; once it is empty, new keys get instances again.
#[test]
fn new_instances_wait_while_the_overflow_instance_is_busy() {
    let mut emu = per_host_pipe(1, "1ms");
    let f = |h: u8| udp_frame([10, 0, 0, h], [10, 0, 0, 100], 7, 9, 0, 1000);
    // Host 1 takes the one instance (1 packet); host 2 goes to the overflow
    // instance with 5 packets (~42 ms at 1 Mbit/s).
    let _ = emu.enqueue(0, &f(1), pk(1 << 16, &f(1)));
    for i in 0..5 {
        let _ = emu.enqueue(0, &f(2), pk(2 << 16 | i, &f(2)));
    }
    assert_eq!(emu.instance_counters(0), Some((2, 0, 5)));
    // Host 1's packet leaves (its link is its own), its instance expires.
    let mut out = Vec::new();
    let mut now = 0;
    while !out.contains(&(1 << 16)) {
        now = emu.next_wakeup().expect("backlog");
        while let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) {
            out.push(p.tag);
        }
    }
    now += 2_000_000;
    assert_eq!(emu.expire(now, 64), 1, "host 1's instance");
    assert_eq!(
        emu.pipe_counters(0).map(|(_, n)| n),
        Some(1),
        "only the overflow one"
    );
    // Room for an instance, but host 2's packets still wait in the overflow
    // instance: host 2 (and a new host 3) go there too.
    let _ = emu.enqueue(now, &f(2), pk(2 << 16 | 5, &f(2)));
    let _ = emu.enqueue(now, &f(3), pk(3 << 16, &f(3)));
    assert_eq!(emu.instance_counters(0), Some((2, 1, 7)));
    while let Some(t) = emu.next_wakeup() {
        now = now.max(t);
        while let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) {
            out.push(p.tag);
        }
    }
    let host2: Vec<u32> = out
        .iter()
        .filter(|t| *t >> 16 == 2)
        .map(|t| t & 0xffff)
        .collect();
    assert_eq!(host2, [0, 1, 2, 3, 4, 5], "host 2 in order");
    // Drained: a new host gets an instance of its own again.
    let _ = emu.enqueue(now, &f(4), pk(4 << 16, &f(4)));
    assert_eq!(emu.instance_counters(0), Some((3, 1, 7)));
}

#[test]
fn a_chain_that_loops_is_refused_even_when_built_in_code() {
    let mut cfg = config::from_toml(
        "[[pipe]]\nname = \"a\"\nnext = \"b\"\n[[pipe]]\nname = \"b\"\n[[rule]]\npipe = \"a\"\n",
    )
    .expect("config");
    // Close the loop by hand: b -> a's implicit flowset.
    let fa = cfg.flowset_index("pipe:a").expect("a's implicit flowset");
    cfg.pipes[1].next = Some(fa);
    let e = Emulator::<Pk>::from_config(&cfg, 1).expect_err("a loop");
    assert!(e.to_string().contains("leads back"), "{e}");
    cfg.pipes[1].next = Some(99);
    let e = Emulator::<Pk>::from_config(&cfg, 1).expect_err("no flowset 99");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn drain_hands_back_everything_held_without_chaining_or_counting_it() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "first"
delay = "10ms"
queue = 100
next = "second"

[[pipe]]
name = "second"
bandwidth = "1Mbit/s"
queue = 100

[[rule]]
pipe = "first"
"#,
    )
    .expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let mut host = Frames::new();
    for i in 0..20 {
        let f = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0, 100);
        assert!(matches!(
            host.offer(&mut emu, 0, i, f),
            Verdict::Queued { .. }
        ));
    }
    // Some reach the second pipe, the rest are in the first one's delay line.
    let mut out = drain(&mut emu, &mut host, 0, 10_000_000);
    let before = emu.counters().chained;
    emu.drain(|p| out.push((u64::MAX, p)));
    assert_eq!(out.len(), 20, "every packet once");
    assert_eq!(emu.backlog_packets(), 0);
    assert_eq!(emu.next_wakeup(), None);
    assert_eq!(emu.counters().chained, before, "nothing moved on");
    assert!(host.dropped.is_empty());
}

#[test]
fn a_full_flowset_puts_new_flows_in_its_overflow_queue_in_order() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "link"
bandwidth = "1Mbit/s"
sched = "drr"

[[flowset]]
name = "flows"
pipe = "link"
mask = "5-tuple"
max_flows = 2
queue = 100
idle_timeout = "1s"

[default]
flowset = "flows"
"#,
    )
    .expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 3).expect("emulator");
    let f = |port: u16| udp_frame([10, 0, 0, 1], [10, 0, 0, 2], port, 9, 0, 100);
    // Flows 1 and 2 (2 packets each) take the table; 3 and 4 (5 each) share
    // the overflow queue.
    for seq in 0..5u32 {
        for port in 1..=4u16 {
            if port <= 2 && seq >= 2 {
                continue;
            }
            let tag = u32::from(port) << 16 | seq;
            let v = emu.enqueue(0, &f(port), pk(tag, &f(port)));
            assert!(matches!(v, Verdict::Queued { .. }), "{port}/{seq}: {v:?}");
        }
    }
    let (flows, c) = emu.flowset_counters(0).expect("flowset");
    assert_eq!((flows, c.created, c.overflowed, c.refused), (2, 2, 10, 0));
    // Flows 1 and 2 drain and expire while the overflow queue still holds
    // packets: flow 5 finds room in the table but must wait in the overflow
    // queue (it may be one of the flows there), so that no flow's packets
    // overtake its earlier ones.
    let mut out = Vec::new();
    let mut now = 0;
    let own = |out: &Vec<u32>| out.iter().filter(|t| *t >> 16 <= 2).count();
    while own(&out) < 4 {
        now = emu.next_wakeup().expect("backlog");
        while let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) {
            out.push(p.tag);
        }
    }
    assert!(
        out.len() < 14,
        "the overflow queue still holds packets: {out:x?}"
    );
    assert_eq!(emu.expire(now + 2_000_000_000, 64), 2);
    assert_eq!(emu.flowset_counters(0).map(|(n, _)| n), Some(0), "room");
    let now = now + 2_000_000_000;
    assert!(matches!(
        emu.enqueue(now, &f(5), pk(5 << 16, &f(5))),
        Verdict::Queued { .. }
    ));
    // Flow 3, whose earlier packets still wait in the overflow queue, sends
    // again: its packet must not get a queue of its own and overtake them.
    assert!(matches!(
        emu.enqueue(now, &f(3), pk(3 << 16 | 9, &f(3))),
        Verdict::Queued { .. }
    ));
    let (_, c) = emu.flowset_counters(0).expect("flowset");
    assert_eq!(
        c.overflowed, 12,
        "new flows wait while the overflow queue is busy"
    );
    while let Some(t) = emu.next_wakeup() {
        while let Some((_, _, p)) = emu.dequeue(t.max(now), &mut NoChain) {
            out.push(p.tag);
        }
    }
    assert_eq!(out.len(), 16, "every packet left");
    for port in 1..=5u32 {
        let seqs: Vec<u32> = out
            .iter()
            .filter(|t| *t >> 16 == port)
            .map(|t| t & 0xffff)
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "flow {port} in order: {seqs:?}"
        );
    }
}

#[test]
fn per_flow_stats_count_offers_drops_and_backlog() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "slow"
bandwidth = "1Mbit/s"

[[flowset]]
name = "per-flow"
pipe = "slow"
mask = "5-tuple"
queue = 3

[[rule]]
flowset = "per-flow"
"#,
    )
    .expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let a = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 2000, 0, 100);
    let b = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1001, 2000, 0, 200);
    // Flow a: 5 packets into a 3-packet queue (2 dropped); flow b: 1 packet.
    for i in 0..5 {
        let _ = emu.enqueue(0, &a, pk(i, &a));
    }
    let _ = emu.enqueue(0, &b, pk(9, &b));
    let mut stats = emu.flow_stats(0);
    stats.sort_by_key(|s| s.key.src_port);
    assert_eq!(stats.len(), 2);
    let (sa, sb) = (&stats[0], &stats[1]);
    assert_eq!(sa.key.src_port, 1000);
    assert_eq!((sa.tally.packets, sa.tally.bytes), (5, 5 * a.len() as u64));
    assert_eq!(sa.tally.dropped, 2, "queue of 3");
    assert_eq!(sa.backlog_packets, 3);
    assert_eq!(
        (sb.tally.packets, sb.tally.dropped, sb.backlog_packets),
        (1, 0, 1)
    );
    assert_eq!(sb.backlog_bytes, b.len() as u64);
    // Drained: the backlog goes, the tallies stay.
    while emu.dequeue(u64::MAX, &mut NoChain).is_some() {}
    let stats = emu.flow_stats(0);
    assert!(stats.iter().all(|s| s.backlog_packets == 0));
    assert_eq!(stats.iter().map(|s| s.tally.packets).sum::<u64>(), 6);
    assert!(emu.flow_stats(7).is_empty(), "no such flowset");
}

/// For chained pipes: reads a packet's key from its frame (as xdpsched
/// does), and keeps what was dropped on the way.
struct Frames {
    /// By tag.
    frames: std::collections::HashMap<u32, Vec<u8>>,
    dropped: Vec<(Pk, Cause)>,
}

impl Frames {
    fn new() -> Self {
        Self {
            frames: std::collections::HashMap::new(),
            dropped: Vec::new(),
        }
    }

    /// Offers `frame` as packet `tag` at `now`.
    fn offer(&mut self, emu: &mut Emulator<Pk>, now: u64, tag: u32, frame: Vec<u8>) -> Verdict<Pk> {
        let v = emu.enqueue(now, &frame, pk(tag, &frame));
        self.frames.insert(tag, frame);
        v
    }
}

impl Host<Pk> for Frames {
    fn key(&mut self, p: &Pk) -> FlowKey {
        let f = &self.frames[&p.tag];
        FlowKey::from_headers(&sched::wire::parse(f).expect("frames parse"))
    }
    fn dropped(&mut self, p: Pk, c: Cause) {
        self.dropped.push((p, c));
    }
}

/// Runs the emulator at its wake-up times from `from` (time never goes
/// back) until `end`, returning (exit time, packet) of everything that left.
fn drain(emu: &mut Emulator<Pk>, host: &mut Frames, from: u64, end: u64) -> Vec<(u64, Pk)> {
    let mut out = Vec::new();
    let mut now = from;
    while let Some(t) = emu.next_wakeup() {
        if t > end {
            break;
        }
        now = now.max(t);
        while let Some((_, _, p)) = emu.dequeue(now, host) {
            out.push((now, p));
        }
    }
    out
}

#[test]
fn chained_pipes_add_their_delays_and_run_at_the_smaller_rate() {
    for (first, second) in [
        // A delay-only pipe feeding a bandwidth pipe, and the other way round.
        (
            "bandwidth = \"unlimited\"\ndelay = \"20ms\"",
            "bandwidth = \"10Mbit/s\"\ndelay = \"5ms\"",
        ),
        (
            "bandwidth = \"10Mbit/s\"\ndelay = \"5ms\"",
            "bandwidth = \"100Mbit/s\"\ndelay = \"20ms\"",
        ),
    ] {
        let text = format!(
            "[[pipe]]\nname = \"a\"\n{first}\nnext = \"b\"\n\n[[pipe]]\nname = \"b\"\n{second}\nqueue = 1000\n\n[[rule]]\npipe = \"a\"\n"
        );
        let cfg = config::from_toml(&text).expect("config");
        let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
        let mut host = Frames::new();
        // One 1000-byte frame alone: its delay is the sum of both pipes' delays
        // and transmission times.
        let f = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0, 958);
        assert!(matches!(
            host.offer(&mut emu, 1_000, 0, f.clone()),
            Verdict::Queued { .. }
        ));
        let out = drain(&mut emu, &mut host, 1_000, u64::MAX);
        let bits = (1000 + 24) * 8;
        let tx = |bps: u64| bits * 1_000_000_000 / bps;
        let want = 1_000
            + 25_000_000
            + tx(10_000_000)
            + if first.contains("unlimited") {
                0
            } else {
                tx(100_000_000)
            };
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, want, "{text}");
        // 50 packets at once: they leave at the smaller rate.
        for i in 1..=50 {
            host.offer(&mut emu, 100_000_000, i, f.clone());
        }
        let out = drain(&mut emu, &mut host, 100_000_000, u64::MAX);
        assert_eq!(out.len(), 50);
        let span = out[49].0 - out[0].0;
        assert_eq!(span, 49 * tx(10_000_000), "{text}");
        assert!(host.dropped.is_empty());
        let c = emu.counters();
        assert_eq!(c.chained, 51);
    }
}

/// A per-host dynamic pipe of 1 Mbit/s feeding a shared 10 Mbit/s uplink
/// with per-host QFQ (examples/10-chained-pipes.toml): 20 hosts want 20
/// Mbit/s, each gets its half share of the uplink, and a host alone gets its
/// whole 1 Mbit/s.
#[test]
fn per_host_pipes_into_a_shared_uplink_share_it_fairly() {
    let text = include_str!("../../examples/10-chained-pipes.toml");
    let cfg = config::from_toml(text).expect("example config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 5).expect("emulator");
    let mut host = Frames::new();
    let hosts = 20u32;
    let frame = |h: u32| udp_frame([192, 168, 2, 10 + h as u8], [10, 0, 0, 1], 7, 9, 0, 1458);
    let mut seq = vec![0u32; hosts as usize];
    let tag = |h: u32, seq: &mut Vec<u32>| {
        seq[h as usize] += 1;
        h << 24 | seq[h as usize]
    };
    // Every host keeps 5 packets waiting in its own pipe.
    for _ in 0..5 {
        for h in 0..hosts {
            let t = tag(h, &mut seq);
            let v = host.offer(&mut emu, 0, t, frame(h));
            assert!(matches!(v, Verdict::Queued { .. }), "{v:?}");
        }
    }
    let end = 20_000_000_000u64;
    let mut bytes = vec![0u64; hosts as usize];
    let mut now = 0;
    let mut last = vec![0u32; hosts as usize];
    while let Some(t) = emu.next_wakeup() {
        if t > end {
            break;
        }
        now = now.max(t);
        while let Some((_, _, p)) = emu.dequeue(now, &mut host) {
            let h = p.tag >> 24;
            assert!(p.tag & 0xff_ffff > last[h as usize], "host {h} in order");
            last[h as usize] = p.tag & 0xff_ffff;
            if now > 2_000_000_000 {
                bytes[h as usize] += u64::from(p.len);
            }
            let t = tag(h, &mut seq);
            let v = host.offer(&mut emu, now, t, frame(h));
            assert!(matches!(v, Verdict::Queued { .. }), "{v:?}");
        }
    }
    let secs = (end - 2_000_000_000) as f64 / 1e9;
    let wire = |b: u64| b as f64 * 8.0 * (1500.0 + 24.0) / 1500.0 / secs;
    let total: f64 = bytes.iter().map(|&b| wire(b)).sum();
    assert!(
        (total - 10e6).abs() / 10e6 < 0.01,
        "uplink carries {total} bit/s"
    );
    for (h, &b) in bytes.iter().enumerate() {
        let r = wire(b);
        assert!((r - 0.5e6).abs() / 0.5e6 < 0.03, "host {h}: {r} bit/s");
    }
    assert!(
        host.dropped.is_empty(),
        "{:?}",
        &host.dropped[..3.min(host.dropped.len())]
    );
}

#[test]
fn a_packet_dropped_entering_the_next_pipe_is_handed_back() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "fast"
next = "slow"
queue = 1000

[[pipe]]
name = "slow"
bandwidth = "1Mbit/s"
queue = 5
plr = 0.5

[[rule]]
pipe = "fast"
"#,
    )
    .expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 9).expect("emulator");
    let mut host = Frames::new();
    for i in 0..200 {
        let f = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0, 100);
        assert!(matches!(
            host.offer(&mut emu, 0, i, f),
            Verdict::Queued { .. }
        ));
    }
    let out = drain(&mut emu, &mut host, 0, u64::MAX);
    assert_eq!(
        out.len() + host.dropped.len(),
        200,
        "every packet out or handed back"
    );
    let d = emu.drops();
    assert_eq!(d.total(), host.dropped.len() as u64);
    assert!(
        d.loss > 50 && d.sched[sched::DropReason::FlowLimit as usize] > 50,
        "{d:?}"
    );
    let mut tags: Vec<u32> = out.iter().map(|(_, p)| p.tag).collect();
    tags.extend(host.dropped.iter().map(|(p, _)| p.tag));
    tags.sort_unstable();
    assert_eq!(tags, (0..200).collect::<Vec<_>>(), "each exactly once");
}

mod chains {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Through a random chain of 2-3 pipes (rates, delays, schedulers,
        /// queue limits, loss), every packet leaves or is dropped exactly
        /// once, and each flow's packets leave in the order they came.
        #[test]
        fn a_pipe_chain_conserves_packets_and_keeps_flow_order(
            pipes in prop::collection::vec(
                (prop::option::of(1u64..200), 0u64..20, 0usize..4, 1u32..40, prop::bool::ANY),
                2..=3,
            ),
            arrivals in prop::collection::vec((0u16..6, 0u64..2_000_000, 64usize..1500), 1..300),
        ) {
            let scheds = ["fifo", "drr", "wf2q", "qfq"];
            let mut text = String::new();
            for (i, (mbit, delay_ms, s, queue, lossy)) in pipes.iter().enumerate() {
                text += &format!("[[pipe]]\nname = \"p{i}\"\nsched = \"{}\"\ndelay = {delay_ms}\n", scheds[*s]);
                if let Some(m) = mbit {
                    text += &format!("bandwidth = \"{m}Mbit/s\"\n");
                }
                if *lossy {
                    text += "plr = 0.1\n";
                }
                if i + 1 < pipes.len() {
                    text += &format!("next = {{ flowset = \"f{}\" }}\n", i + 1);
                }
                text += &format!("[[flowset]]\nname = \"f{i}\"\npipe = \"p{i}\"\nmask = \"5-tuple\"\nqueue = {queue}\n");
            }
            text += "[[rule]]\nflowset = \"f0\"\n";
            let cfg = config::from_toml(&text).expect("config");
            let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 11).expect("emulator");
            let mut host = Frames::new();
            let mut arrivals = arrivals;
            arrivals.sort_by_key(|a| a.1);
            let mut out = Vec::new();
            let mut direct = Vec::new();
            let mut now = 0;
            for (i, &(flow, at, len)) in arrivals.iter().enumerate() {
                // Everything due before this arrival leaves first (bounded: each
                // wake-up moves at least one packet on, or is the last).
                for _ in 0..100_000 {
                    let Some(t) = emu.next_wakeup().filter(|&t| t <= at) else { break };
                    now = now.max(t);
                    let before = out.len() + host.dropped.len();
                    while let Some((_, _, p)) = emu.dequeue(now, &mut host) {
                        out.push(p.tag);
                    }
                    if out.len() + host.dropped.len() == before && emu.next_wakeup() == Some(t) {
                        break;
                    }
                }
                now = now.max(at);
                let f = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000 + flow, 9, 0, len.saturating_sub(42));
                match host.offer(&mut emu, now, (flow as u32) << 16 | i as u32, f) {
                    Verdict::Queued { .. } => {}
                    Verdict::QueuedPushedOut { victim, .. } => direct.push(victim.tag),
                    Verdict::Dropped(p, _) => direct.push(p.tag),
                    Verdict::Pass(p) => prop_assert!(false, "passed {p:?}"),
                }
            }
            let last = arrivals.last().map_or(0, |a| a.1);
            out.extend(drain(&mut emu, &mut host, last, u64::MAX).into_iter().map(|(_, p)| p.tag));
            let mut all: Vec<u32> = out.iter().copied().chain(direct).chain(host.dropped.iter().map(|(p, _)| p.tag)).collect();
            all.sort_unstable();
            let want: Vec<u32> = arrivals.iter().enumerate().map(|(i, a)| (a.0 as u32) << 16 | i as u32).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(all, want);
            prop_assert_eq!(emu.drops().total() as usize, arrivals.len() - out.len());
            for flow in 0..6u32 {
                let seq: Vec<u32> = out.iter().filter(|t| *t >> 16 == flow).map(|t| t & 0xffff).collect();
                prop_assert!(seq.windows(2).all(|w| w[0] < w[1]), "flow {} out of order: {:?}", flow, seq);
            }
        }
    }
}

/// Reading arrivals late, at the instant `arrivals_can_wait_until` gives,
/// changes nothing: the same packets leave at the same instants and the same
/// ones are dropped as when every arrival is read at once (1 µs steps; a
/// 100 Mbit/s link offered 1000-byte frames every 50 µs, its queue
/// overflowing, then idle, then offered again).
#[test]
fn arrivals_read_when_every_link_is_free_again_change_nothing() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "link"
bandwidth = "100Mbit/s"
delay = "1ms"
queue = 10

[[flowset]]
name = "all"
pipe = "link"

[default]
flowset = "all"
"#,
    )
    .expect("config");
    let f = udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 1, 2, 0, 958);
    let arrivals: Vec<u64> = (0..200u64)
        .map(|i| i * 50_000)
        .chain((0..50).map(|i| 30_000_000 + i * 60_000))
        .collect();
    // (departures (µs, tag), drops (tag), reads deferred)
    let run = |defer: bool| {
        let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
        let (mut out, mut dropped, mut deferred) = (Vec::new(), Vec::new(), 0);
        let (mut next, mut read_at) = (0usize, 0u64);
        for us in 0..40_000u64 {
            let t = us * 1_000;
            if t >= read_at {
                while next < arrivals.len() && arrivals[next] <= t {
                    if let Verdict::Dropped(p, _) = emu.enqueue(t, &f, pk(next as u32, &f)) {
                        dropped.push(p.tag);
                    }
                    next += 1;
                }
            } else if next < arrivals.len() && arrivals[next] <= t {
                deferred += 1;
            }
            while let Some((_, _, p)) = emu.dequeue(t, &mut NoChain) {
                out.push((us, p.tag));
            }
            if defer {
                read_at = emu.arrivals_can_wait_until(t);
            }
        }
        (out, dropped, deferred)
    };
    let (now_out, now_dropped, _) = run(false);
    let (late_out, late_dropped, deferred) = run(true);
    assert!(
        deferred > 1000,
        "arrivals were deferred ({deferred} µs-steps)"
    );
    assert!(!now_dropped.is_empty(), "the queue overflowed");
    assert_eq!(now_out.len() + now_dropped.len(), arrivals.len());
    assert_eq!(late_dropped, now_dropped);
    assert_eq!(late_out, now_out);
}

/// Only a busy rate-limited link lets arrivals wait: an idle one, an
/// unlimited one and unmatched traffic that passes do not.
#[test]
fn arrivals_wait_only_for_a_busy_link() {
    let build = |toml: &str| -> Emulator<Pk> {
        Emulator::from_config(&config::from_toml(toml).expect("config"), 1).expect("emulator")
    };
    let shaped = r#"
[[pipe]]
name = "link"
bandwidth = "100Mbit/s"
[[flowset]]
name = "all"
pipe = "link"
[default]
flowset = "all"
"#;
    let f = udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 1, 2, 0, 958);
    let mut emu = build(shaped);
    assert_eq!(emu.arrivals_can_wait_until(5), 5, "idle link");
    for tag in 1..=2 {
        assert!(matches!(
            emu.enqueue(0, &f, pk(tag, &f)),
            Verdict::Queued { .. }
        ));
    }
    assert_eq!(
        emu.dequeue(0, &mut NoChain),
        None,
        "the first one is on the wire"
    );
    // (1000 + 24) * 8 bits at 100 Mbit/s: busy until 81 920 ns, one waiting.
    assert_eq!(emu.arrivals_can_wait_until(10), 81_920);
    assert_eq!(emu.arrivals_can_wait_until(81_920), 81_920, "free again");
    assert_eq!(
        emu.dequeue(81_920, &mut NoChain).map(|(_, _, p)| p.tag),
        Some(1)
    );
    // The second is on the wire, nothing waits behind it: an arrival would
    // start the link when the second is done, so it is read at once.
    assert_eq!(
        emu.arrivals_can_wait_until(81_921),
        81_921,
        "nothing waiting"
    );
    let unlimited = build(&shaped.replace("bandwidth = \"100Mbit/s\"", "delay = \"10ms\""));
    assert_eq!(unlimited.arrivals_can_wait_until(7), 7);
    let mut passing = build(&format!(
        "{}\n[[rule]]\nflowset = \"all\"\nmatch = {{ proto = \"tcp\" }}\n",
        shaped.replace("[default]\nflowset = \"all\"\n", "")
    ));
    let t = udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 1, 2, 0, 958);
    assert!(matches!(
        passing.enqueue(0, &t, pk(2, &t)),
        Verdict::Pass(_)
    ));
    assert_eq!(passing.arrivals_can_wait_until(3), 3, "default passes");
}
