//! Pipes at scale, in simulated time: thousands of static pipes and a
//! dynamic pipe with 100 000 instances (10 000 in a debug build). The
//! emulator finds the next pipe or instance due with a heap; these tests
//! check that none is ever missed or served late: driven by
//! `next_wakeup()` alone, every packet leaves at exactly the instant a pipe
//! on its own gives it (or its link's arithmetic gives it), and every
//! packet offered comes out.

use sched::classify::FlowKey;
use sched::config;
use sched::emu::{Cause, Emulator, Host, Target, Verdict};
use sched::rng::Rng;
use sched::Packet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pk {
    /// Index of the packet in the test's arrival list.
    id: u32,
    len: u32,
}

impl Packet for Pk {
    fn len(&self) -> u32 {
        self.len
    }
}

/// No chained pipe, no queue management: nothing comes back.
struct NoChain;

impl Host<Pk> for NoChain {
    fn key(&mut self, p: &Pk) -> FlowKey {
        panic!("no chain here, yet asked for the key of {p:?}")
    }
    fn dropped(&mut self, p: Pk, c: Cause) {
        panic!("nothing drops here, yet {p:?}: {c:?}")
    }
}

/// One arrival: at `at`, into flowset `fs`, as flow `port`, `len` bytes.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: u64,
    fs: usize,
    key: FlowKey,
    len: u32,
}

/// Runs `arrivals` (sorted by time) through `emu`, calling `dequeue` only
/// at the instants `next_wakeup()` names; returns each packet's departure
/// instant (`u64::MAX`: never left) and the calls that found nothing.
fn run(emu: &mut Emulator<Pk>, arrivals: &[Arrival]) -> (Vec<u64>, u64) {
    let mut left = vec![u64::MAX; arrivals.len()];
    let mut idle_calls = 0;
    let mut next = 0;
    // The caller's clock: never back (a wake-up may name an instant
    // already passed: "now").
    let mut clock = 0u64;
    loop {
        let wake = emu.next_wakeup().map(|w| w.max(clock));
        let arrive = arrivals.get(next).map(|a| a.at);
        match (wake, arrive) {
            (None, None) => break,
            (Some(w), a) if a.is_none_or(|a| w <= a) => {
                clock = w;
                let mut got = false;
                while let Some((_, _, p)) = emu.dequeue(w, &mut NoChain) {
                    assert_eq!(left[p.id as usize], u64::MAX, "{p:?} left twice");
                    left[p.id as usize] = w;
                    got = true;
                }
                idle_calls += u64::from(!got);
                assert!(
                    emu.next_wakeup().is_none_or(|n| n > w),
                    "a wake-up at {w} left something due by then"
                );
            }
            (_, Some(_)) => {
                let a = arrivals[next];
                clock = clock.max(a.at);
                let pkt = Pk {
                    id: next as u32,
                    len: a.len,
                };
                let v = emu.enqueue_key(a.at, &a.key, Target::Flowset(a.fs), pkt);
                assert!(matches!(v, Verdict::Queued { .. }), "arrival {next}: {v:?}");
                next += 1;
            }
            (Some(_), None) => unreachable!("no arrival left: the wake-up arm takes it"),
        }
    }
    (left, idle_calls)
}

fn key(src: u32, port: u16) -> FlowKey {
    FlowKey {
        src: u128::from(src),
        dst: 1,
        src_port: port,
        dst_port: 9,
        proto: 17,
        ..FlowKey::default()
    }
}

/// A pipe per line: (bandwidth in Mbit/s, delay in µs, scheduler), each
/// with one flowset of two flows by source port.
fn pipes_toml(pipes: &[(u64, u64, &str)]) -> String {
    let mut t = String::new();
    for (i, (mbit, delay_us, sched)) in pipes.iter().enumerate() {
        t += &format!(
            "[[pipe]]\nname = \"p{i}\"\nbandwidth = \"{mbit}Mbit/s\"\ndelay = \"{delay_us}us\"\n\
             sched = \"{sched}\"\n[[flowset]]\nname = \"f{i}\"\npipe = \"p{i}\"\nqueue = 100\nmax_flows = 16\n\
             mask = \"5-tuple\"\n"
        );
    }
    t += "[default]\naction = \"pass\"\n";
    t
}

/// Thousands of static pipes of random rates, delays and schedulers, fed
/// random bursts: each packet leaves at the same instant as through its
/// pipe alone (an emulator of that one pipe, the same arrivals).
#[test]
fn thousands_of_pipes_each_deliver_as_if_alone() {
    let n = if cfg!(debug_assertions) { 400 } else { 4000 };
    let mut r = Rng::new(7);
    let scheds = ["fifo", "drr", "qfq", "wf2q+", "prio"];
    let pipes: Vec<(u64, u64, &str)> = (0..n)
        .map(|_| {
            (
                1 + r.next_u64() % 200,
                r.next_u64() % 20_000,
                scheds[(r.next_u64() % 5) as usize],
            )
        })
        .collect();
    let cfg = config::from_toml(&pipes_toml(&pipes)).expect("config");
    let mut arrivals = Vec::new();
    for _ in 0..n * 10 {
        let p = (r.next_u64() % n as u64) as usize;
        let at = r.next_u64() % 200_000_000; // within 0.2 s
        for k in 0..1 + r.next_u64() % 4 {
            arrivals.push(Arrival {
                at: at + k * 1000,
                fs: cfg.flowset_index(&format!("f{p}")).expect("flowset"),
                key: key(1, 1 + (r.next_u64() % 2) as u16),
                len: 64 + (r.next_u64() % 1451) as u32,
            });
        }
    }
    arrivals.sort_by_key(|a| a.at);
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let (left, idle_calls) = run(&mut emu, &arrivals);
    assert!(left.iter().all(|&t| t != u64::MAX), "every packet left");
    // Each pipe alone.
    let mut alone_left = vec![u64::MAX; arrivals.len()];
    for (p, spec) in pipes.iter().enumerate() {
        let one = config::from_toml(&pipes_toml(&[*spec])).expect("config");
        let mut e: Emulator<Pk> = Emulator::from_config(&one, 1).expect("emulator");
        let fs = cfg.flowset_index(&format!("f{p}")).expect("flowset");
        let ids: Vec<usize> = (0..arrivals.len())
            .filter(|&i| arrivals[i].fs == fs)
            .collect();
        let mine: Vec<Arrival> = ids
            .iter()
            .map(|&i| Arrival {
                fs: 0,
                ..arrivals[i]
            })
            .collect();
        let (l, _) = run(&mut e, &mine);
        for (k, &i) in ids.iter().enumerate() {
            alone_left[i] = l[k];
        }
    }
    let differ = left.iter().zip(&alone_left).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "packets that left at another instant than alone");
    // Calls that found nothing are the links' own events (a transmission
    // ends, the next starts), never more than packets.
    assert!(
        idle_calls <= arrivals.len() as u64,
        "{idle_calls} idle calls"
    );
}

/// A dynamic pipe with 100 000 active instances (one per source address),
/// 8 Mbit/s (a byte per µs) and 5 ms each: every packet leaves at the
/// instant its own link gives it, then every instance expires.
#[test]
fn a_dynamic_pipe_with_100k_instances_serves_each_on_time() {
    let n: u32 = if cfg!(debug_assertions) {
        10_000
    } else {
        100_000
    };
    let cfg = config::from_toml(&format!(
        "[[pipe]]\nname = \"per-host\"\nbandwidth = \"8Mbit/s\"\ndelay = \"5ms\"\noverhead = 0\n\
         mask = {{ src_ip = \"255.255.255.255\" }}\nmax_instances = {n}\nidle_timeout = \"1s\"\n\
         queue = 20\n[default]\npipe = \"per-host\"\n"
    ))
    .expect("config");
    let fs = cfg.flowset_index("pipe:per-host").unwrap_or(0);
    let mut r = Rng::new(3);
    let mut arrivals = Vec::new();
    for h in 0..n {
        // A few packets per host over 100 ms, some back to back.
        let mut at = r.next_u64() % 100_000_000;
        for _ in 0..1 + r.next_u64() % 4 {
            arrivals.push(Arrival {
                at,
                fs,
                key: key(0x0a00_0000 + h, 7),
                len: 100 + (r.next_u64() % 1400) as u32,
            });
            at += r.next_u64() % 2_000_000;
        }
    }
    arrivals.sort_by_key(|a| a.at);
    // Each host's link: FIFO at a byte per µs, then 5 ms.
    let mut busy = vec![0u64; n as usize];
    let want: Vec<u64> = arrivals
        .iter()
        .map(|a| {
            let h = (a.key.src - 0x0a00_0000) as usize;
            let done = a.at.max(busy[h]) + u64::from(a.len) * 1000;
            busy[h] = done;
            done + 5_000_000
        })
        .collect();
    let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
    let (left, idle_calls) = run(&mut emu, &arrivals);
    let late = left.iter().zip(&want).filter(|(l, w)| l != w).count();
    assert_eq!(late, 0, "packets not leaving at their link's instant");
    assert!(
        idle_calls <= arrivals.len() as u64,
        "{idle_calls} idle calls"
    );
    assert_eq!(emu.instance_counters(0), Some((u64::from(n), 0, 0)));
    let (c, live) = emu.pipe_counters(0).expect("pipe");
    assert_eq!((c.delivered, live), (arrivals.len() as u64, n as usize));
    // Past the idle timeout, the sweep removes them all, a bounded budget a call.
    let later = 2_000_000_000;
    let mut expired = 0;
    for _ in 0..(n as usize / 256 + 2) * 2 {
        expired += emu.expire(later, 256);
    }
    let (c2, live) = emu.pipe_counters(0).expect("pipe");
    assert_eq!(live, 0, "{expired} removed (instances and flows)");
    assert_eq!(c2, c, "expired instances stay in the totals");
    assert_eq!(emu.next_wakeup(), None);
}

/// A packet for a class that may send, arriving while the tree holds every
/// waiting packet back (another class out of tokens for ~12 ms), leaves at
/// its arrival (plus its transmission on a rate-limited link), not when
/// the held class may go again: on an unlimited and on a 1 Gbit/s link,
/// with the pipes scanned and in the wake queue, driven by `next_wakeup`
/// alone.
#[test]
fn an_arrival_for_a_class_that_may_send_is_not_held_by_another() {
    for bandwidth in ["unlimited", "1Gbit/s"] {
        for wake in [false, true] {
            let cfg = config::from_toml(&format!(
                "[[pipe]]\nname = \"up\"\nbandwidth = \"{bandwidth}\"\noverhead = 0\n\
                 [[class]]\nname = \"root\"\npipe = \"up\"\nrate = \"100Mbit/s\"\n\
                 [[class]]\nname = \"a\"\nparent = \"root\"\nrate = \"1Mbit/s\"\n\
                 [[class]]\nname = \"b\"\nparent = \"root\"\nrate = \"50Mbit/s\"\nceil = \"100Mbit/s\"\n\
                 [[flowset]]\nname = \"fa\"\nclass = \"a\"\n[[flowset]]\nname = \"fb\"\nclass = \"b\"\n"
            ))
            .expect("config");
            let (fa, fb) = (
                cfg.flowset_index("fa").expect("fa"),
                cfg.flowset_index("fb").expect("fb"),
            );
            let mut emu: Emulator<Pk> = Emulator::from_config(&cfg, 1).expect("emulator");
            if wake {
                emu = emu.with_wake_queue();
            }
            let t0 = 1_000_000_000u64;
            let mut arrivals: Vec<Arrival> = (0..4)
                .map(|_| Arrival {
                    at: t0,
                    fs: fa,
                    key: key(1, 1),
                    len: 1500,
                })
                .collect();
            arrivals.push(Arrival {
                at: t0 + 1_000_000,
                fs: fb,
                key: key(2, 2),
                len: 1500,
            });
            let (left, _) = run(&mut emu, &arrivals);
            let tx = if bandwidth == "unlimited" { 0 } else { 12_000 };
            assert_eq!(
                left[4],
                t0 + 1_000_000 + tx,
                "{bandwidth}, wake queue {wake}: b's packet at {} (a's: {:?})",
                left[4],
                &left[..4]
            );
            assert!(left[3] > t0 + 20_000_000, "a is held: {left:?}");
        }
    }
}
