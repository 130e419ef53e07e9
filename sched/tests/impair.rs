//! netem's and dummynet's impairments through the emulator, in simulated
//! time: duplication (with the caller's buffers, which all come back),
//! corruption, slots, profiles, Mahimahi traces against a reference
//! implementation of their semantics, schedules switching at their
//! nanosecond, rules' `prob` and `set_dscp`, and seeded replay.

use sched::classify::FlowKey;
use sched::emu::impair::Flip;
use sched::emu::trace::{Trace, TraceLink, OPPORTUNITY_BYTES};
use sched::emu::{Cause, Classified, Emulator, Host, Target, Verdict};
use sched::{config, Packet};
use std::sync::Arc;

/// A packet: the buffer it lives in, its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pk {
    buf: u32,
    len: u32,
}

impl Packet for Pk {
    fn len(&self) -> u32 {
        self.len
    }
    fn l3_offset(&self) -> u32 {
        14
    }
}

/// The caller's buffers, as xdpsched's UMEM frames: each is free or holds
/// one packet; copies take a free one.
struct Pool {
    bytes: Vec<Vec<u8>>,
    free: Vec<u32>,
    held: Vec<bool>,
    dropped: u64,
}

impl Pool {
    fn new(n: u32) -> Self {
        Pool {
            bytes: vec![Vec::new(); n as usize],
            free: (0..n).rev().collect(),
            held: vec![false; n as usize],
            dropped: 0,
        }
    }

    /// A packet of `len` bytes whose bytes are `fill`, if a buffer is free.
    fn packet(&mut self, len: u32, fill: u8) -> Option<Pk> {
        let buf = self.take()?;
        self.bytes[buf as usize] = vec![fill; len as usize];
        Some(Pk { buf, len })
    }

    fn take(&mut self) -> Option<u32> {
        let buf = self.free.pop()?;
        self.held[buf as usize] = true;
        Some(buf)
    }

    fn release(&mut self, p: Pk) {
        let h = &mut self.held[p.buf as usize];
        assert!(*h, "buffer {} freed twice", p.buf);
        *h = false;
        self.free.push(p.buf);
    }
}

impl Host<Pk> for Pool {
    fn key(&mut self, _p: &Pk) -> FlowKey {
        key(1)
    }
    fn dropped(&mut self, p: Pk, _c: Cause) {
        self.dropped += 1;
        self.release(p);
    }
    fn duplicate(&mut self, p: &Pk) -> Option<Pk> {
        let buf = self.take()?;
        self.bytes[buf as usize] = self.bytes[p.buf as usize].clone();
        Some(Pk { buf, len: p.len })
    }
    fn corrupt(&mut self, p: &mut Pk, flip: Flip) {
        let b = &mut self.bytes[p.buf as usize];
        if let Some(o) = flip.offset(b.len(), 14) {
            b[o] ^= 1 << flip.bit;
        }
    }
}

fn key(port: u16) -> FlowKey {
    FlowKey {
        src_port: port,
        proto: 17,
        ..FlowKey::default()
    }
}

fn emulator(text: &str, seed: u64) -> Emulator<Pk> {
    let cfg = config::from_toml(text).expect("config");
    Emulator::from_config(&cfg, seed).expect("emulator")
}

fn classified(port: u16) -> Classified {
    Classified {
        key: key(port),
        target: Target::Flowset(0),
        set_dscp: None,
    }
}

/// Offers `p` at `now`; frees what the verdict hands back.
fn offer(emu: &mut Emulator<Pk>, pool: &mut Pool, now: u64, p: Pk) {
    match emu.enqueue_classified(now, &classified(1), p, pool) {
        Verdict::Queued { .. } => {}
        Verdict::QueuedPushedOut { victim, .. } => pool.release(victim),
        Verdict::Pass(p) | Verdict::Dropped(p, _) => pool.release(p),
    }
}

/// Everything that left by `now`: (exit time, packet).
fn pull(emu: &mut Emulator<Pk>, pool: &mut Pool, now: u64, out: &mut Vec<(u64, Pk)>) {
    while let Some((_, _, p)) = emu.dequeue(now, pool) {
        out.push((now, p));
    }
}

/// Runs the emulator at its wake-ups until it is empty (or `end`).
fn finish(emu: &mut Emulator<Pk>, pool: &mut Pool, from: u64, end: u64, out: &mut Vec<(u64, Pk)>) {
    let mut now = from;
    while let Some(t) = emu.next_wakeup() {
        if t > end {
            break;
        }
        now = now.max(t);
        pull(emu, pool, now, out);
    }
}

/// |x − n·p| within `k` binomial standard deviations.
fn binomial(x: u64, n: u64, p: f64, k: f64) -> bool {
    let mean = n as f64 * p;
    (x as f64 - mean).abs() <= k * (mean * (1.0 - p)).sqrt() + 1.0
}

const DUP: &str = r#"
[[pipe]]
name = "p"
bandwidth = "100Mbit/s"
delay = "10ms"
plr = 0.1
duplicate = 0.2
queue = 2000

[[rule]]
pipe = "p"
"#;

/// netem's order: duplication, then loss (a duplicated packet that is lost
/// goes through once, uncopied); the copy goes through loss on its own.
#[test]
fn duplication_copies_at_its_rate_and_every_buffer_comes_back() {
    let mut emu = emulator(DUP, 7);
    let mut pool = Pool::new(100_000);
    let n = 40_000u64;
    let mut out = Vec::new();
    let mut now = 0;
    for i in 0..n {
        now = i * 200_000; // 5000 packets/s of 1000 bytes: 40 Mbit/s
        let p = pool.packet(1000, 0).expect("a buffer");
        offer(&mut emu, &mut pool, now, p);
        pull(&mut emu, &mut pool, now, &mut out);
    }
    finish(&mut emu, &mut pool, now, u64::MAX, &mut out);
    let (c, _) = emu.pipe_counters(0).expect("pipe");
    // Copies when duplicated and not lost: 0.2 · 0.9.
    assert_eq!(c.dup_no_frame, 0);
    assert!(
        binomial(c.duplicated, n, 0.18, 4.0),
        "{} copies",
        c.duplicated
    );
    assert_eq!(c.offered, n + c.duplicated, "copies are offered too");
    // Lost: originals not duplicated and lost (0.8 · 0.1), and copies (0.1).
    let want = n as f64 * 0.08 + c.duplicated as f64 * 0.1;
    assert!(
        (c.lost as f64 - want).abs() < 4.0 * want.sqrt(),
        "lost {} want {want}",
        c.lost
    );
    assert_eq!(out.len() as u64, n + c.duplicated - c.lost);
    for (_, p) in out {
        pool.release(p);
    }
    assert_eq!(pool.free.len(), 100_000, "every buffer came back");
}

/// With the caller's buffers running short, duplicates that find none are
/// counted and the run goes on; nothing leaks.
#[test]
fn duplicates_without_a_buffer_are_counted_and_nothing_leaks() {
    let text = DUP
        .replace("plr = 0.1\n", "")
        .replace("duplicate = 0.2", "duplicate = 0.5");
    let mut emu = emulator(&text, 3);
    let total = 120u32;
    let mut pool = Pool::new(total);
    let mut out = Vec::new();
    let (mut offered, mut no_buffer) = (0u64, 0u64);
    for i in 0..20_000u64 {
        let now = i * 100_000;
        // Frames received only while a buffer is free, as from an RX ring.
        match pool.packet(1000, 0) {
            Some(p) => {
                offered += 1;
                offer(&mut emu, &mut pool, now, p);
            }
            None => no_buffer += 1,
        }
        pull(&mut emu, &mut pool, now, &mut out);
        for (_, p) in out.drain(..) {
            pool.release(p);
        }
    }
    let (c, _) = emu.pipe_counters(0).expect("pipe");
    assert!(no_buffer > 0, "the pool never ran short");
    assert!(
        c.dup_no_frame > 0,
        "no duplicate ever went without a buffer"
    );
    assert!(
        binomial(c.duplicated + c.dup_no_frame, offered, 0.5, 4.0),
        "{} + {} of {offered}",
        c.duplicated,
        c.dup_no_frame
    );
    // Whatever is still inside comes back at the end.
    emu.drain(|p| pool.release(p));
    assert_eq!(pool.free.len(), total as usize);
}

#[test]
fn corruption_flips_one_bit_past_the_link_header_at_its_rate() {
    let text = "[[pipe]]\nname = \"p\"\ncorrupt = 0.05\nqueue = 10\n\n[[rule]]\npipe = \"p\"\n";
    let mut emu = emulator(text, 11);
    let mut pool = Pool::new(64);
    let n = 100_000u64;
    let (mut flipped, mut out) = (0u64, Vec::new());
    for i in 0..n {
        let p = pool.packet(100, 0x5a).expect("buffer");
        offer(&mut emu, &mut pool, i, p);
        pull(&mut emu, &mut pool, i, &mut out);
        for (_, p) in out.drain(..) {
            let b = &pool.bytes[p.buf as usize];
            let diff: Vec<usize> = (0..b.len()).filter(|&j| b[j] != 0x5a).collect();
            match diff.as_slice() {
                [] => {}
                [o] => {
                    assert!(*o >= 14, "flipped the Ethernet header at {o}");
                    assert_eq!((b[*o] ^ 0x5a).count_ones(), 1);
                    flipped += 1;
                }
                more => panic!("{} bytes changed", more.len()),
            }
            pool.release(p);
        }
    }
    let (c, _) = emu.pipe_counters(0).expect("pipe");
    assert_eq!(c.corrupted, flipped);
    assert!(binomial(flipped, n, 0.05, 4.0), "{flipped}");
}

/// examples/17: `netem slot 800us 8.5ms packets 4 bytes 6000`.
#[test]
fn slots_let_packets_out_in_bursts_at_slot_boundaries() {
    let text = "[[pipe]]\nname = \"p\"\nqueue = 1000\n[pipe.slot]\nmin = \"800us\"\nmax = \"8.5ms\"\npackets = 4\nbytes = 6000\n\n[[rule]]\npipe = \"p\"\n";
    let mut emu = emulator(text, 5);
    let mut pool = Pool::new(5000);
    let mut out = Vec::new();
    let mut now = 0;
    let mut sent = Vec::new();
    for i in 0..2000u64 {
        now = i * 2_000_000; // one packet every 2 ms, 1000 or 2500 bytes
        let len = if i % 3 == 0 { 2500 } else { 1000 };
        // Exits are recorded at the emulator's wake-ups (their instants).
        while let Some(w) = emu.next_wakeup().filter(|&w| w < now) {
            pull(&mut emu, &mut pool, w, &mut out);
        }
        let p = pool.packet(len, 0).expect("buffer");
        sent.push((now, p.buf));
        offer(&mut emu, &mut pool, now, p);
        pull(&mut emu, &mut pool, now, &mut out);
    }
    finish(&mut emu, &mut pool, now, u64::MAX, &mut out);
    assert_eq!(out.len(), sent.len());
    // Exit instants come from dequeue calls at wake-ups: group by instant.
    let mut bursts: Vec<(u64, u32, u64)> = Vec::new(); // (instant, packets, bytes)
    for &(t, p) in &out {
        match bursts.last_mut() {
            Some(b) if b.0 == t => {
                b.1 += 1;
                b.2 += u64::from(p.len);
            }
            _ => bursts.push((t, 1, u64::from(p.len))),
        }
    }
    for b in &bursts {
        assert!(b.1 <= 4, "{} packets in one slot", b.1);
        // The slot closes once its bytes are used up: at most one packet past 6000.
        assert!(b.2 < 6000 + 2500, "{} bytes in one slot", b.2);
    }
    let gaps: Vec<u64> = bursts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().all(|&g| g >= 800_000), "a gap under 800 µs");
    assert!(
        bursts.iter().any(|b| b.1 > 1),
        "never a burst: {:?}",
        &bursts[..20]
    );
    // Order kept, and nobody left before it arrived.
    let order: Vec<u32> = out.iter().map(|(_, p)| p.buf).collect();
    let want: Vec<u32> = sent.iter().map(|&(_, b)| b).collect();
    assert_eq!(order, want);
}

/// dummynet's profile: extra air time per packet (samples 0..9 ms), drops
/// at or above the loss level (80 %) after their air time.
#[test]
fn a_profile_adds_air_time_and_drops_above_its_loss_level() {
    let profile = "name test\nsamples 10\nloss-level 0.8\nprob delay\n0 0\n1.0 10\n";
    let p = sched::emu::impair::Profile::parse(profile).expect("profile");
    assert_eq!(p.samples_ms, (0..10).collect::<Vec<u32>>());
    let text = "[[pipe]]\nname = \"p\"\nbandwidth = \"1Mbit/s\"\nprofile = \"t.profile\"\nqueue = 10000\n\n[[rule]]\npipe = \"p\"\n";
    let mut cfg = config::from_toml(text).expect("config");
    config::load_files(&mut cfg, |kind, name| {
        assert_eq!((kind, name), (config::FileKind::Profile, "t.profile"));
        Ok(profile.to_owned())
    })
    .expect("load");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 9).expect("emulator");
    let mut pool = Pool::new(20_000);
    for _ in 0..5000 {
        let p = pool.packet(1000, 0).expect("buffer");
        offer(&mut emu, &mut pool, 0, p);
    }
    let mut out = Vec::new();
    let end = 20_000_000_000u64;
    finish(&mut emu, &mut pool, 0, end, &mut out);
    let (c, _) = emu.pipe_counters(0).expect("pipe");
    // Each packet: 1024 bytes at 1 Mbit/s (8.192 ms) plus 4.5 ms on average.
    let sent = c.delivered + c.lost;
    let want = end as f64 / 12.692e6;
    assert!(
        (sent as f64 - want).abs() < 0.03 * want,
        "{sent} packets on the link in 20 s, want {want:.0}"
    );
    assert!(
        binomial(c.lost, sent, 0.2, 4.0),
        "{} of {sent} lost",
        c.lost
    );
    assert_eq!(pool.dropped, c.lost, "profile drops handed back");
}

/// Mahimahi's semantics, written out one opportunity at a time: a FIFO of
/// (arrival, bytes); at each opportunity, 1504 bytes for the packets that
/// arrived before it, in order, a packet's bytes carried over to the next.
fn mahimahi(trace: &[u64], arrivals: &[(u64, u32)]) -> Vec<u64> {
    let period = *trace.last().expect("trace") * 1_000_000;
    let mut out = Vec::with_capacity(arrivals.len());
    let (mut next, mut left_in_packet) = (0usize, 0u32);
    let mut k = 0u64;
    while out.len() < arrivals.len() {
        let t = (k / trace.len() as u64) * period
            + trace[(k % trace.len() as u64) as usize] * 1_000_000;
        k += 1;
        let mut budget = OPPORTUNITY_BYTES;
        while budget > 0 && next < arrivals.len() && arrivals[next].0 < t {
            if left_in_packet == 0 {
                left_in_packet = arrivals[next].1;
            }
            let take = budget.min(left_in_packet);
            budget -= take;
            left_in_packet -= take;
            if left_in_packet == 0 {
                out.push(t);
                next += 1;
            }
        }
    }
    out
}

#[test]
fn a_trace_link_delivers_as_mahimahi_does() {
    let trace = [1u64, 1, 3, 4, 4, 4, 9, 12];
    // Random arrivals, bursts and idle spells, sizes 60..1514 (IP bytes = len − 14).
    let mut rng = sched::rng::Rng::new(4);
    let mut arrivals = Vec::new();
    let mut t = 0u64;
    for _ in 0..5000 {
        t += match rng.range(0, 9) {
            0 => rng.range(0, 40_000_000),
            1..=4 => 0,
            _ => rng.range(0, 2_000_000),
        };
        arrivals.push((t, rng.range(60, 1514) as u32));
    }
    let ip: Vec<(u64, u32)> = arrivals.iter().map(|&(t, l)| (t, l - 14)).collect();
    let want = mahimahi(&trace, &ip);
    // The link alone.
    let mut link = TraceLink::new(Arc::new(Trace { ms: trace.to_vec() }), 0, false);
    let mut busy = 0u64;
    let got: Vec<u64> = ip
        .iter()
        .map(|&(a, b)| {
            // The head's wait starts when it arrives or the link frees.
            busy = link.depart(a, b).max(busy);
            busy
        })
        .collect();
    assert_eq!(got, want, "TraceLink against the reference");
    // Through a pipe (FIFO, 5 ms of delay), driven at its wake-ups.
    let text = "[[pipe]]\nname = \"p\"\ntrace = \"t\"\ndelay = \"5ms\"\nsched = \"fifo\"\nqueue = 10000\n\n[[rule]]\npipe = \"p\"\n";
    let mut cfg = config::from_toml(text).expect("config");
    let body: String = trace.iter().map(|t| format!("{t}\n")).collect();
    config::load_files(&mut cfg, |_, _| Ok(body.clone())).expect("load");
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let mut pool = Pool::new(10_000);
    let mut out = Vec::new();
    for &(a, len) in &arrivals {
        // Poll at every wake-up before this arrival, then offer it.
        while let Some(w) = emu.next_wakeup().filter(|&w| w < a) {
            pull(&mut emu, &mut pool, w, &mut out);
        }
        let p = pool.packet(len, 0).expect("buffer");
        offer(&mut emu, &mut pool, a, p);
    }
    while let Some(w) = emu.next_wakeup() {
        pull(&mut emu, &mut pool, w, &mut out);
    }
    let exits: Vec<u64> = out.iter().map(|&(t, _)| t).collect();
    let want5: Vec<u64> = want.iter().map(|t| t + 5_000_000).collect();
    assert_eq!(exits, want5, "through the pipe");
}

/// A backlogged 12 Mbit/s link stepping to 6 Mbit/s at 10 ms and adding
/// 5 ms of delay at 20 ms: departures exact to the nanosecond, the
/// transmission under way at 10 ms split between the two rates.
#[test]
fn a_schedule_switches_at_its_nanosecond() {
    let text = r#"
[[pipe]]
name = "p"
bandwidth = "12Mbit/s"
sched = "fifo"
queue = 100

[[pipe.schedule]]
at = "10ms"
bandwidth = "6Mbit/s"

[[pipe.schedule]]
at = "20ms"
delay = "5ms"

[[rule]]
pipe = "p"
"#;
    let mut emu = emulator(text, 1);
    let mut pool = Pool::new(100);
    for _ in 0..30 {
        let p = pool.packet(1500, 0).expect("buffer");
        offer(&mut emu, &mut pool, 0, p);
    }
    let mut out = Vec::new();
    finish(&mut emu, &mut pool, 0, u64::MAX, &mut out);
    // Each packet is (1500 + 24) · 8 = 12 192 bits: 1 016 000 ns at 12 Mbit/s.
    let bits = 12_192u64;
    let mut want = Vec::new();
    // Work in bit·ns·(bit/s) units: exact.
    let (mut t, mut rate) = (0u64, 12_000_000u64);
    for _ in 0..30 {
        let mut work = u128::from(bits) * 1_000_000_000;
        loop {
            let end = t + (work / u128::from(rate)) as u64;
            if rate == 12_000_000 && end > 10_000_000 {
                work -= u128::from(10_000_000 - t) * u128::from(rate);
                t = 10_000_000;
                rate = 6_000_000;
                continue;
            }
            t = end;
            break;
        }
        want.push(if t >= 20_000_000 { t + 5_000_000 } else { t });
    }
    let got: Vec<u64> = out.iter().map(|&(t, _)| t).collect();
    assert_eq!(got, want);
    // The split packet: 9.144 ms + 856 µs at 12 Mbit/s (10 272 bits), the
    // other 1920 bits at 6 Mbit/s: 320 µs.
    assert_eq!(want[9], 10_320_000);
}

/// A delay step moves the delay jitter spreads: before it 10 ms ± 2 ms,
/// after it 50 ms ± 2 ms (the jitter's centre is the pipe's current delay).
#[test]
fn a_delay_step_moves_the_jittered_delay() {
    let text = r#"
[[pipe]]
name = "p"
delay = "10ms"
jitter = "2ms"
sched = "fifo"
queue = 10000

[[pipe.schedule]]
at = "1s"
delay = "50ms"

[[rule]]
pipe = "p"
"#;
    let mut emu = emulator(text, 3);
    let mut pool = Pool::new(4000);
    let mut out = Vec::new();
    // One packet every 1 ms for 2 s; its send time by buffer (none is
    // reused: the pool is larger than the run).
    let mut sent = vec![0u64; 4000];
    for i in 0..2000u64 {
        let now = i * 1_000_000;
        pull(&mut emu, &mut pool, now, &mut out);
        let p = pool.packet(100, 0).expect("buffer");
        sent[p.buf as usize] = now;
        offer(&mut emu, &mut pool, now, p);
    }
    finish(&mut emu, &mut pool, 2_000_000_000, u64::MAX, &mut out);
    assert_eq!(out.len(), 2000);
    let delays: Vec<(u64, u64)> = out
        .iter()
        .map(|&(t, p)| (sent[p.buf as usize], t - sent[p.buf as usize]))
        .collect();
    // Well before the step: within 10 ms ± 2 ms (in order: a packet may
    // wait for its predecessor, never beyond the spread), seen at a poll up
    // to 1 ms later.
    for &(at, d) in delays.iter().filter(|&&(at, _)| at < 900_000_000) {
        assert!((8_000_000..=13_000_000).contains(&d), "sent {at}: {d} ns");
    }
    // Sent well after the step: 50 ms ± 2 ms.
    for &(at, d) in delays.iter().filter(|&&(at, _)| at > 1_100_000_000) {
        assert!((48_000_000..=53_000_000).contains(&d), "sent {at}: {d} ns");
    }
}

#[test]
fn a_loss_step_applies_to_packets_arriving_from_its_instant() {
    let text = "[[pipe]]\nname = \"p\"\nqueue = 10\n\n[[pipe.schedule]]\nat = \"1s\"\nplr = 1.0\n\n[[pipe.schedule]]\nat = \"2s\"\nplr = 0\n\n[[rule]]\npipe = \"p\"\n";
    let mut emu = emulator(text, 1);
    let mut pool = Pool::new(10);
    let mut out = Vec::new();
    for (t, lost) in [
        (999_999_999u64, false),
        (1_000_000_000, true),
        (1_999_999_999, true),
        (2_000_000_000, false),
    ] {
        let before = emu.pipe_counters(0).expect("pipe").0.lost;
        let p = pool.packet(100, 0).expect("buffer");
        offer(&mut emu, &mut pool, t, p);
        pull(&mut emu, &mut pool, t, &mut out);
        for (_, p) in out.drain(..) {
            pool.release(p);
        }
        let after = emu.pipe_counters(0).expect("pipe").0.lost;
        assert_eq!(after - before, u64::from(lost), "at {t}");
    }
}

const PROB: &str = r#"
[[pipe]]
name = "a"

[[pipe]]
name = "b"

[[rule]]
pipe = "a"
prob = 0.3
set_dscp = "ef"

[[rule]]
pipe = "b"
"#;

/// dummynet's `prob`: the rule matches 30 % of the packets, the rest go on
/// to the next rule — per packet, even for one flow (the flow cache keeps
/// the deterministic match only).
#[test]
fn prob_splits_traffic_and_set_dscp_rewrites_what_the_rule_matches() {
    let mut emu = emulator(PROB, 21);
    let n = 100_000u64;
    let mut to_a = 0u64;
    for i in 0..n {
        let k = key((i % 7) as u16);
        match emu.classify(&k) {
            (Target::Flowset(0), true) => to_a += 1,
            (Target::Flowset(1), true) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(binomial(to_a, n, 0.3, 4.0), "{to_a} of {n}");
    // A frame matched by the first rule carries its DSCP rewrite, and its
    // key already has it; one that fell through to the second does not.
    let frame = udp(0);
    let (mut ef, mut other) = (0, 0);
    for _ in 0..1000 {
        let mut p = Pk::default();
        let c = emu.classify_frame(&frame, &mut p).expect("parses");
        match c.target {
            Target::Flowset(0) => {
                assert_eq!((c.set_dscp, c.key.dscp), (Some(46), 46));
                ef += 1;
            }
            _ => {
                assert_eq!((c.set_dscp, c.key.dscp), (None, 0));
                other += 1;
            }
        }
    }
    assert!(ef > 200 && other > 600, "{ef} / {other}");
}

/// An Ethernet/IPv4/UDP frame with DSCP `dscp`.
fn udp(dscp: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, dscp << 2, 0, 128, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2, 0, 108, 0, 0]);
    f.resize(142, 0);
    f
}

/// The same seed replays every random process exactly; another seed does not.
#[test]
fn a_seed_replays_a_run_exactly() {
    let text = r#"
seed = 12345

[[pipe]]
name = "p"
bandwidth = "50Mbit/s"
delay = "10ms"
jitter = "3ms"
plr = 0.05
duplicate = 0.1
corrupt = 0.1
reorder = 0.1
queue = 500

[[rule]]
pipe = "p"
"#;
    let cfg = config::from_toml(text).expect("config");
    assert_eq!(cfg.seed, Some(12345));
    let run = |seed: u64| {
        let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, seed).expect("emulator");
        let mut pool = Pool::new(10_000);
        let mut out = Vec::new();
        for i in 0..5000u64 {
            let p = pool
                .packet(500 + (i % 1000) as u32, (i % 251) as u8)
                .expect("buffer");
            offer(&mut emu, &mut pool, i * 100_000, p);
            pull(&mut emu, &mut pool, i * 100_000, &mut out);
        }
        finish(&mut emu, &mut pool, 500_000_000, u64::MAX, &mut out);
        out.iter()
            .map(|&(t, p)| (t, p.len, pool.bytes[p.buf as usize].clone()))
            .collect::<Vec<_>>()
    };
    let a = run(12345);
    assert_eq!(a, run(12345));
    assert_ne!(a, run(54321));
}

/// Slots, a rate and a stepping schedule together, polled late (every 5 ms
/// with slots tens of µs apart and steps inside): no packet is lost, none
/// leaves before its time, order is kept.
#[test]
fn slots_a_rate_and_a_schedule_polled_late_lose_nothing() {
    let text = r#"
[[pipe]]
name = "p"
bandwidth = "20Mbit/s"
sched = "fifo"
queue = 5000
schedule_repeat = "2ms"
[pipe.slot]
min = "10us"
max = "40us"
packets = 3

[[pipe.schedule]]
at = "0ms"
bandwidth = "20Mbit/s"

[[pipe.schedule]]
at = "0.7ms"
bandwidth = "5Mbit/s"

[[pipe.schedule]]
at = "1.3ms"
delay = "1ms"

[[rule]]
pipe = "p"
"#;
    let mut emu = emulator(text, 2);
    let mut pool = Pool::new(4000);
    let mut out = Vec::new();
    let mut sent = Vec::new();
    for i in 0..3000u64 {
        let now = i * 50_000;
        let p = pool.packet(500, 0).expect("buffer");
        sent.push(p.buf);
        offer(&mut emu, &mut pool, now, p);
        if i % 100 == 99 {
            pull(&mut emu, &mut pool, now, &mut out);
        }
    }
    finish(&mut emu, &mut pool, 150_000_000, u64::MAX, &mut out);
    let order: Vec<u32> = out.iter().map(|(_, p)| p.buf).collect();
    assert_eq!(order, sent, "every packet out, in order");
}

/// A dynamic pipe sums its instances' duplicates (and keeps those of
/// instances that expired).
#[test]
fn a_dynamic_pipe_counts_its_instances_duplicates() {
    let text = "[[pipe]]\nname = \"p\"\nmask = { src_port = 0xffff }\nduplicate = 0.5\nqueue = 100\n\n[[rule]]\npipe = \"p\"\n";
    let mut emu = emulator(text, 4);
    let mut pool = Pool::new(10_000);
    let mut out = Vec::new();
    for i in 0..2000u64 {
        let p = pool.packet(100, 0).expect("buffer");
        let c = Classified {
            key: key((i % 8) as u16),
            target: Target::Flowset(0),
            set_dscp: None,
        };
        match emu.enqueue_classified(i * 1000, &c, p, &mut pool) {
            Verdict::Queued { .. } => {}
            Verdict::QueuedPushedOut { victim, .. } => pool.release(victim),
            Verdict::Pass(p) | Verdict::Dropped(p, _) => pool.release(p),
        }
        pull(&mut emu, &mut pool, i * 1000, &mut out);
    }
    let (c, instances) = emu.pipe_counters(0).expect("pipe");
    assert_eq!(instances, 8);
    assert!(
        binomial(c.duplicated, 2000, 0.5, 4.0),
        "{} copies",
        c.duplicated
    );
}

/// Arrivals may wait for a busy rate-limited link (nothing they do changes
/// before it frees), never for a trace or slots, whose decisions depend on
/// each packet's arrival.
#[test]
fn arrivals_never_wait_for_a_trace_or_slots() {
    for (extra, waits) in [
        ("bandwidth = \"1Mbit/s\"\n", true),
        ("trace = \"t\"\n", false),
        (
            "bandwidth = \"1Mbit/s\"\n[pipe.slot]\nmin = \"1ms\"\n",
            false,
        ),
    ] {
        let text =
            format!("[[pipe]]\nname = \"p\"\nqueue = 100\n{extra}\n[default]\npipe = \"p\"\n");
        let mut cfg = config::from_toml(&text).expect("config");
        config::load_files(&mut cfg, |_, _| Ok("1\n2\n".into())).expect("load");
        let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
        let mut pool = Pool::new(10);
        for _ in 0..3 {
            let p = pool.packet(1500, 0).expect("buffer");
            offer(&mut emu, &mut pool, 0, p);
        }
        let mut out = Vec::new();
        pull(&mut emu, &mut pool, 0, &mut out);
        let until = emu.arrivals_can_wait_until(0);
        assert_eq!(until > 0, waits, "{extra}: arrivals may wait until {until}");
    }
}
