//! End to end in simulated time: a TOML configuration → rules → flowsets →
//! a pipe, fed real frame bytes.

use sched::emulator::{Cause, Emulator, Verdict};
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
        while let Some((_, _, p)) = emu.dequeue(now) {
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
    assert_eq!(emu.dequeue(1_000), None);
    assert_eq!(emu.next_wakeup(), Some(due));
    assert_eq!(emu.dequeue(due - 1), None);
    assert_eq!(emu.dequeue(due).map(|(_, _, p)| p), Some(pk(1, &f)));
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
        while let Some((_, _, p)) = emu.dequeue(now) {
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

#[test]
fn dynamic_pipe_instances_are_bounded_and_expire_when_idle() {
    let cfg = config::from_toml(
        r#"
[[pipe]]
name = "per-host"
bandwidth = "1Mbit/s"
mask = { src_ip = "0.0.0.255" }
max_instances = 2
idle_timeout = "1s"

[default]
pipe = "per-host"
"#,
    )
    .expect("config");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 3).expect("emulator");
    let f = |h: u8| udp_frame([10, 0, 0, h], [10, 0, 0, 100], 7, 9, 0, 100);
    for h in 1..=2 {
        assert!(matches!(
            emu.enqueue(0, &f(h), pk(h as u32, &f(h))),
            Verdict::Queued { .. }
        ));
    }
    assert!(matches!(
        emu.enqueue(0, &f(3), pk(3, &f(3))),
        Verdict::Dropped(_, Cause::PipeFull)
    ));
    // Drain, wait past the idle timeout, expire: room for a new host.
    let mut now = 0;
    while let Some(t) = emu.next_wakeup() {
        now = now.max(t);
        while emu.dequeue(now).is_some() {}
    }
    assert_eq!(emu.expire(now + 2_000_000_000, 64), 2);
    assert_eq!(emu.pipe_counters(0).map(|(_, n)| n), Some(0));
    assert!(matches!(
        emu.enqueue(now, &f(3), pk(3, &f(3))),
        Verdict::Queued { .. }
    ));
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
    while emu.dequeue(u64::MAX).is_some() {}
    let stats = emu.flow_stats(0);
    assert!(stats.iter().all(|s| s.backlog_packets == 0));
    assert_eq!(stats.iter().map(|s| s.tally.packets).sum::<u64>(), 6);
    assert!(emu.flow_stats(7).is_empty(), "no such flowset");
}
