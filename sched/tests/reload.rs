//! Reload in simulated time: an emulator built from a new configuration
//! takes over a running one's packets (`Emulator::take_over`). Nothing is
//! lost or duplicated, flows keep their queues and their order, new weights
//! take effect, counters never go down.

use sched::classify::FlowKey;
use sched::emu::{Cause, Emulator, Host, Takeover, Verdict};
use sched::{config, Packet};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pk {
    /// flow << 20 | sequence number.
    tag: u32,
    len: u32,
}

impl Packet for Pk {
    fn len(&self) -> u32 {
        self.len
    }
}

/// The frames the packets stand for (the emulator asks for keys), and what
/// was dropped on the way.
struct Frames {
    frames: HashMap<u32, Vec<u8>>,
    dropped: Vec<(Pk, Cause)>,
}

impl Host<Pk> for Frames {
    fn key(&mut self, p: &Pk) -> FlowKey {
        FlowKey::from_headers(&sched::wire::parse(&self.frames[&p.tag]).expect("frames parse"))
    }
    fn dropped(&mut self, p: Pk, c: Cause) {
        self.dropped.push((p, c));
    }
}

/// An Ethernet/IPv4/UDP frame to port `dport`.
fn udp_frame(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + 8 + payload) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 1]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(42 + payload, 0xab);
    f
}

/// A simulation: offers frames, runs the emulator at its wake-ups, keeps
/// what left (with when) and what was dropped on arrival.
struct Sim {
    host: Frames,
    emu: Emulator<Pk>,
    now: u64,
    out: Vec<(u64, Pk)>,
    refused: Vec<Pk>,
    seq: [u32; 16],
}

impl Sim {
    fn new(toml: &str) -> Self {
        Sim {
            host: Frames {
                frames: HashMap::new(),
                dropped: Vec::new(),
            },
            emu: Emulator::from_config(&config::from_toml(toml).expect("config"), 7)
                .expect("emulator"),
            now: 0,
            out: Vec::new(),
            refused: Vec::new(),
            seq: [0; 16],
        }
    }

    /// Offers one packet of `flow` (UDP to port 10001 + flow).
    fn offer(&mut self, flow: u32, payload: usize) {
        let tag = flow << 20 | self.seq[flow as usize];
        self.seq[flow as usize] += 1;
        let f = udp_frame(5000, 10001 + flow as u16, payload);
        let len = f.len() as u32;
        let v = self.emu.enqueue(self.now, &f, Pk { tag, len });
        self.host.frames.insert(tag, f);
        match v {
            Verdict::Queued { .. } => {}
            Verdict::QueuedPushedOut { victim, .. } => self.refused.push(victim),
            Verdict::Dropped(p, _) => self.refused.push(p),
            Verdict::Pass(p) => self.out.push((self.now, p)),
        }
    }

    /// Runs until `end`, keeping every flow in `busy` `depth` packets deep
    /// (a packet of the same flow is offered as each one leaves).
    fn run(&mut self, end: u64, busy: &[u32], depth: usize) {
        for &f in busy {
            for _ in 0..depth {
                self.offer(f, 1458);
            }
        }
        while let Some(t) = self.emu.next_wakeup() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            while let Some((_, _, p)) = self.emu.dequeue(self.now, &mut self.host) {
                self.out.push((self.now, p));
                let flow = p.tag >> 20;
                if busy.contains(&flow) {
                    self.offer(flow, 1458);
                }
            }
        }
        self.now = self.now.max(end);
    }

    /// Takes over with a new configuration at the current time.
    fn reload(&mut self, toml: &str) -> Takeover {
        let new: Emulator<Pk> =
            Emulator::from_config(&config::from_toml(toml).expect("new config"), 8)
                .expect("new emulator");
        let old = std::mem::replace(&mut self.emu, new);
        let (now, out) = (self.now, &mut self.out);
        self.emu
            .take_over(old, now, &mut self.host, &mut |p| out.push((now, p)))
    }

    /// Every tag offered.
    fn offered(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.host.frames.keys().copied().collect();
        all.sort_unstable();
        all
    }

    /// Every tag accounted for: left, refused on arrival, dropped on the way.
    fn accounted(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self
            .out
            .iter()
            .map(|(_, p)| p.tag)
            .chain(self.refused.iter().map(|p| p.tag))
            .chain(self.host.dropped.iter().map(|(p, _)| p.tag))
            .collect();
        all.sort_unstable();
        all
    }

    /// Bytes of each flow that left in [from, to).
    fn bytes(&self, from: u64, to: u64) -> HashMap<u32, u64> {
        let mut b = HashMap::new();
        for (t, p) in &self.out {
            if (from..to).contains(t) {
                *b.entry(p.tag >> 20).or_default() += u64::from(p.len);
            }
        }
        b
    }

    /// Whether each flow's packets left in the order they came.
    fn in_order(&self) -> bool {
        let mut last: HashMap<u32, u32> = HashMap::new();
        self.out.iter().all(|(_, p)| {
            let (f, s) = (p.tag >> 20, p.tag & 0xfffff);
            let ok = last.get(&f).is_none_or(|&l| s > l);
            last.insert(f, s);
            ok
        })
    }
}

/// Four flows on a 100 Mbit/s QFQ link with a 5 ms delay, weights given.
fn weighted(weights: [u32; 4], queue: u32) -> String {
    let mut t =
        "[[pipe]]\nname = \"link\"\nbandwidth = \"100Mbit/s\"\ndelay = \"5ms\"\nsched = \"qfq\"\n"
            .to_owned();
    for (i, w) in weights.iter().enumerate() {
        t += &format!("[[flowset]]\nname = \"w{i}\"\npipe = \"link\"\nmask = \"5-tuple\"\nweight = {w}\nqueue = {queue}\n");
        t += &format!(
            "[[rule]]\nflowset = \"w{i}\"\nmatch = {{ proto = \"udp\", dst_port = {} }}\n",
            10001 + i
        );
    }
    t
}

const MS: u64 = 1_000_000;

#[test]
fn new_weights_take_effect_and_every_queued_packet_stays_in_order() {
    let mut sim = Sim::new(&weighted([1, 2, 3, 4], 100));
    sim.run(1000 * MS, &[0, 1, 2, 3], 30);
    let before = sim.bytes(200 * MS, 1000 * MS);
    let total: u64 = before.values().sum();
    for f in 0..4u32 {
        let share = before[&f] as f64 / total as f64;
        let want = f64::from(f + 1) / 10.0;
        assert!(
            (share - want).abs() < 0.02 * want,
            "before: flow {f} {share:.4}"
        );
    }
    let held = sim.emu.backlog_packets();
    let delivered = sim.emu.pipe_counters(0).expect("pipe").0.delivered;
    let flows = sim.emu.flowset_counters(0).expect("flowset").1.created;
    let t = sim.reload(&weighted([4, 3, 2, 1], 100));
    // Every packet held is still held (the link and the queues kept).
    assert_eq!(t.packets(), held, "{t:?}");
    assert_eq!((t.released, t.dropped, t.reclassified), (0, 0, 0), "{t:?}");
    assert!(t.in_flight_kept > 0 && t.requeued > 0, "{t:?}");
    assert_eq!((t.pipes_kept, t.flowsets_kept, t.flows_kept), (1, 4, 4));
    assert_eq!(sim.emu.backlog_packets(), held);
    // Counters go on from where they were.
    assert_eq!(
        sim.emu.pipe_counters(0).expect("pipe").0.delivered,
        delivered
    );
    assert_eq!(
        sim.emu.flowset_counters(0).expect("flowset").1.created,
        flows
    );
    let at = sim.now;
    sim.run(at + 2000 * MS, &[0, 1, 2, 3], 0);
    // The new shares, once the old queues have left (well within 200 ms).
    let after = sim.bytes(at + 200 * MS, at + 2000 * MS);
    let total: u64 = after.values().sum();
    for f in 0..4u32 {
        let share = after[&f] as f64 / total as f64;
        let want = f64::from(4 - f) / 10.0;
        assert!(
            (share - want).abs() < 0.02 * want,
            "after: flow {f} {share:.4}, want {want}"
        );
    }
    // The link never stopped: 100 Mbit/s across the reload.
    let across = sim
        .bytes(at - 100 * MS, at + 100 * MS)
        .values()
        .sum::<u64>() as f64;
    let line = 0.2 * 100e6 / 8.0 * 1500.0 / 1524.0;
    assert!((across - line).abs() / line < 0.01, "{across} vs {line}");
    assert!(sim.in_order());
    assert!(sim.refused.is_empty() && sim.host.dropped.is_empty());
    // Drain: every packet offered left exactly once.
    sim.run(u64::MAX, &[], 0);
    assert_eq!(sim.accounted(), sim.offered());
}

#[test]
fn a_smaller_queue_drops_what_no_longer_fits_and_counts_it() {
    let mut sim = Sim::new(&weighted([1, 1, 1, 1], 100));
    sim.run(500 * MS, &[0, 1, 2, 3], 60);
    let drops_before = sim.emu.drops().total();
    let t = sim.reload(&weighted([1, 1, 1, 1], 10));
    assert!(t.dropped > 0, "{t:?}");
    assert_eq!(sim.host.dropped.len() as u64, t.dropped);
    assert!(sim
        .host
        .dropped
        .iter()
        .all(|(_, c)| matches!(c, Cause::Pipe(_))));
    // Counted as any drop, on top of what was counted before.
    assert_eq!(sim.emu.drops().total(), drops_before + t.dropped);
    for f in 0..4 {
        let b = sim.emu.flow_stats(f);
        assert!(b.iter().all(|s| s.backlog_packets <= 10), "{b:?}");
    }
    sim.run(u64::MAX, &[], 0);
    assert_eq!(sim.accounted(), sim.offered());
    assert!(sim.in_order());
}

const TWO_PIPES: &str = r#"
[[pipe]]
name = "slow"
bandwidth = "10Mbit/s"
delay = "50ms"
queue = 200

[[pipe]]
name = "other"
bandwidth = "10Mbit/s"
queue = 200

[[flowset]]
name = "one"
pipe = "slow"
queue = 200

[[flowset]]
name = "two"
pipe = "slow"
queue = 200

[[flowset]]
name = "three"
pipe = "other"
queue = 200

[[rule]]
flowset = "one"
match = { dst_port = 10001 }

[[rule]]
flowset = "two"
match = { dst_port = 10002 }

[[rule]]
flowset = "three"
match = { dst_port = 10003 }
"#;

/// "slow" and its flowsets are gone: port 10001 goes to a new pipe, 10002
/// passes; "other" stays.
const ONE_NEW_PIPE: &str = r#"
[[pipe]]
name = "fast"
bandwidth = "1Gbit/s"
queue = 200

[[pipe]]
name = "other"
bandwidth = "20Mbit/s"
queue = 200

[[flowset]]
name = "new"
pipe = "fast"
queue = 200

[[flowset]]
name = "three"
pipe = "other"
queue = 200

[[rule]]
flowset = "new"
match = { dst_port = 10001 }

[[rule]]
flowset = "three"
match = { dst_port = 10003 }
"#;

#[test]
fn packets_of_a_removed_flowset_go_where_the_new_rules_send_them() {
    let mut sim = Sim::new(TWO_PIPES);
    // Queues build: 3 flows offered far faster than 10 Mbit/s.
    for _ in 0..150 {
        for f in 0..3 {
            sim.offer(f, 958);
        }
    }
    sim.run(100 * MS, &[], 0);
    let held = sim.emu.backlog_packets();
    let drops_before = sim.emu.drops().total();
    let in_slow: u64 = sim
        .emu
        .pipe_counters(0)
        .map(|(c, _)| c.offered - c.delivered)
        .expect("slow");
    let out_before = sim.out.len() as u64;
    let t = sim.reload(ONE_NEW_PIPE);
    assert_eq!(t.packets(), held, "{t:?}");
    assert_eq!((t.pipes_kept, t.pipes_removed), (1, 1), "{t:?}");
    assert_eq!((t.flowsets_kept, t.flowsets_removed), (1, 2), "{t:?}");
    // Flow 3's queue stayed in "other"; flow 1's went to "new"; flow 2's and
    // what was propagating on "slow" left at once.
    let three = sim.emu.flow_stats(1);
    assert!(
        three
            .iter()
            .map(|s| u64::from(s.backlog_packets))
            .sum::<u64>()
            > 0
    );
    assert!(t.reclassified > 0 && t.released > 0, "{t:?}");
    assert_eq!(t.released + t.reclassified, in_slow, "{t:?}");
    assert_eq!(sim.out.len() as u64 - out_before, t.released);
    // What left at once is flow 0's and 1's (on "slow"), never flow 2's
    // (kept in "other"); flow 1 (now `pass`) has nothing left inside.
    let released = &sim.out[out_before as usize..];
    assert!(
        released.iter().all(|(_, p)| p.tag >> 20 < 2),
        "{released:?}"
    );
    assert_eq!(
        sim.out.iter().filter(|(_, p)| p.tag >> 20 == 1).count(),
        150
    );
    assert_eq!(sim.emu.drops().total(), drops_before);
    sim.run(u64::MAX, &[], 0);
    assert_eq!(sim.accounted(), sim.offered());
    assert!(sim.host.dropped.is_empty());
}

mod any_reload {
    use super::*;
    use proptest::prelude::*;

    /// A pipe: (name from a pool of 4, scheduler, Mbit/s, delay in ms,
    /// queue, dynamic).
    type PipeArgs = (usize, usize, Option<u64>, u64, u32, bool);

    /// A configuration: up to 3 pipes (name from a pool of 4) with a
    /// scheduler, rate and delay, each with a flowset (name from a pool)
    /// taking one port, under queue management picked by its queue size
    /// (none, CoDel, RED, PIE: aggressive, so that they act).
    fn config(pipes: &[PipeArgs]) -> String {
        let scheds = ["fifo", "drr", "wf2q", "qfq", "prio", "fq_codel"];
        let aqms = [
            "",
            "aqm = \"codel\"\ntarget = \"1ms\"\ninterval = \"5ms\"\n",
            "red = \"0.2/2/8/0.5\"\n",
            "aqm = \"pie\"\ntarget = \"1ms\"\ntupdate = \"1ms\"\nmax_burst = 0\n",
        ];
        let mut t = String::new();
        let mut seen = Vec::new();
        for (i, &(name, s, mbit, delay_ms, queue, dynamic)) in pipes.iter().enumerate() {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            t += &format!(
                "[[pipe]]\nname = \"p{name}\"\nsched = \"{}\"\ndelay = {delay_ms}\n",
                scheds[s]
            );
            if let Some(m) = mbit {
                t += &format!("bandwidth = \"{m}Mbit/s\"\n");
            }
            if dynamic {
                t += "mask = { src_port = \"0xffff\" }\n";
            }
            t += &format!("[[flowset]]\nname = \"f{name}\"\npipe = \"p{name}\"\nmask = \"5-tuple\"\nqueue = {queue}\n");
            t += aqms[queue as usize % aqms.len()];
            t += &format!(
                "[[rule]]\nflowset = \"f{name}\"\nmatch = {{ dst_port = {} }}\n",
                10001 + i
            );
        }
        t
    }

    fn pipes() -> impl Strategy<Value = Vec<PipeArgs>> {
        prop::collection::vec(
            (
                0usize..4,
                0usize..6,
                prop::option::of(1u64..100),
                0u64..30,
                1u32..50,
                prop::bool::weighted(0.2),
            ),
            1..=3,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Any configuration to any other, at any moment: every packet
        /// offered leaves, or is dropped and handed back, exactly once, and
        /// the drop counters never go down.
        #[test]
        fn every_packet_is_accounted_for_exactly_once(
            old in pipes(),
            new in pipes(),
            arrivals in prop::collection::vec((0u32..4, 0u64..40_000_000, 64usize..1400), 1..300),
            at in 0u64..40_000_000,
        ) {
            let mut sim = Sim::new(&config(&old));
            let mut arrivals = arrivals;
            arrivals.sort_by_key(|a| a.1);
            let mut reloaded = false;
            for &(flow, t, len) in &arrivals {
                if !reloaded && t >= at {
                    sim.run(at, &[], 0);
                    let before = sim.emu.drops().total();
                    let held = sim.emu.backlog_packets();
                    let tk = sim.reload(&config(&new));
                    prop_assert_eq!(tk.packets(), held);
                    prop_assert!(sim.emu.drops().total() >= before + tk.dropped);
                    reloaded = true;
                }
                sim.run(t, &[], 0);
                sim.offer(flow, len.saturating_sub(42));
            }
            sim.run(u64::MAX, &[], 0);
            prop_assert_eq!(sim.accounted(), sim.offered());
        }
    }
}

/// Pipe "b" idle, flowset "x" on "a" backlogged; then "a" is gone and "x"
/// moves to "b": its packets go out of "b" at "b"'s rate, not at once.
#[test]
fn a_flowset_moved_to_an_idle_kept_pipe_leaves_at_that_pipes_rate() {
    let old = "[[pipe]]\nname = \"a\"\nbandwidth = \"10Mbit/s\"\n[[pipe]]\nname = \"b\"\nbandwidth = \"10Mbit/s\"\n\
               [[flowset]]\nname = \"x\"\npipe = \"a\"\nqueue = 500\n[[flowset]]\nname = \"y\"\npipe = \"b\"\n\
               [[rule]]\nflowset = \"x\"\nmatch = { dst_port = 10001 }\n[[rule]]\nflowset = \"y\"\nmatch = { dst_port = 10002 }\n";
    let new = "[[pipe]]\nname = \"b\"\nbandwidth = \"10Mbit/s\"\n\
               [[flowset]]\nname = \"x\"\npipe = \"b\"\nqueue = 500\n[[flowset]]\nname = \"y\"\npipe = \"b\"\n\
               [[rule]]\nflowset = \"x\"\nmatch = { dst_port = 10001 }\n[[rule]]\nflowset = \"y\"\nmatch = { dst_port = 10002 }\n";
    let mut sim = Sim::new(old);
    for _ in 0..400 {
        sim.offer(0, 1458);
    }
    sim.run(50 * MS, &[], 0);
    let t = sim.reload(new);
    assert!(t.requeued > 300, "{t:?}");
    let at = sim.now;
    sim.run(at + 200 * MS, &[], 0);
    let sent: u64 = sim
        .out
        .iter()
        .filter(|(w, _)| *w > at && *w <= at + 200 * MS)
        .map(|(_, p)| u64::from(p.len) + 24)
        .sum();
    let line = (10e6 * 0.2 / 8.0) as u64;
    assert!(
        sent <= line + 1524,
        "{sent} bytes in 200 ms at 10 Mbit/s ({line})"
    );
    assert!(
        sent >= line - 2 * 1524,
        "{sent} bytes in 200 ms at 10 Mbit/s ({line})"
    );
    sim.run(u64::MAX, &[], 0);
    assert_eq!(sim.accounted(), sim.offered());
    assert!(sim.in_order());
}

/// A removed pipe that fed another (`next`): what was propagating on it goes
/// on into the next flowset, not straight out.
#[test]
fn what_propagates_on_a_removed_chained_pipe_goes_on_into_its_next_flowset() {
    let old =
        "[[pipe]]\nname = \"delay\"\ndelay = \"50ms\"\nqueue = 200\nnext = { flowset = \"z\" }\n\
               [[pipe]]\nname = \"link\"\nbandwidth = \"10Mbit/s\"\n\
               [[flowset]]\nname = \"z\"\npipe = \"link\"\nqueue = 500\n\
               [[rule]]\npipe = \"delay\"\n";
    let new = "[[pipe]]\nname = \"link\"\nbandwidth = \"10Mbit/s\"\n\
               [[flowset]]\nname = \"z\"\npipe = \"link\"\nqueue = 500\n\
               [[rule]]\nflowset = \"z\"\n";
    let mut sim = Sim::new(old);
    for _ in 0..100 {
        sim.offer(0, 958);
    }
    sim.run(20 * MS, &[], 0);
    let held = sim.emu.backlog_packets();
    assert_eq!(held, 100, "all 100 still propagating on \"delay\"");
    let t = sim.reload(new);
    assert_eq!((t.released, t.requeued, t.dropped), (0, 100, 0), "{t:?}");
    let at = sim.now;
    sim.run(u64::MAX, &[], 0);
    // Out of "link" at 10 Mbit/s: 100 packets of 1000 B take 80 ms.
    let last = sim.out.iter().map(|(w, _)| *w).max().unwrap_or(0);
    assert!(last >= at + 79 * MS, "{}", (last - at) / MS);
    assert_eq!(sim.accounted(), sim.offered());
    assert!(sim.in_order());
}
