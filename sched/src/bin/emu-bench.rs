//! emu-bench — cost of the whole emulator per frame: parse, classify,
//! find the flow in its flowset, enqueue into the pipe's scheduler, and take
//! one packet out (what xdpsched's scheduling worker does per frame).
//!
//! ```text
//! emu-bench [--sched fifo|drr|wf2q|qfq] [--flows N] [--frames F] [--delay-us D]
//!           [--expire-every K] [--impair NAME] [--batch B] [--json] [--no-repeat]
//! ```
//! Each frame is followed by one dequeue (two with `--impair duplicate`);
//! with `--batch B`, every B frames are followed by dequeues until nothing
//! is due, as xdpsched's worker takes a batch of frames and then drains
//! what is due (the empty dequeue that ends a drain is then paid once per
//! batch, not once per frame, whatever an impairment does to the order of
//! due times).
//! `--impair` adds one of issue 17's impairments to the pipe (see
//! [`impair`]): `jitter`, `jitter-table`, `reorder`, `duplicate`, `corrupt`,
//! `loss4`, `slot`, `profile`, `trace`, `schedule`, `prob` (a rule, 0.5: half the
//! frames are classified twice), `prob-draw` (the draw alone), or
//! `none`; compare with `none` at the same delay for its cost (`profile`
//! with `rate`, a 100 Gbit/s link without one; `prob` with `rules`, the same
//! two rules without prob).
//! The configuration is xdpsched's simple form: one pipe of unlimited
//! bandwidth (`--delay-us` adds a delay line), one flowset with a 5-tuple
//! mask (65 536 flows, 100 packets each). The frames are 64-byte IPv4/UDP
//! frames of `--flows` flows (source ports) in turn; simulated time
//! advances 100 ns per frame. `--expire-every K` runs the emulator's expiry
//! sweep once every K frames with xdpsched's budget (256 table slots per
//! flowset): xdpsched sweeps once a millisecond, so K = 1000 is its cost at
//! 1 Mpps (it costs per millisecond, not per packet). For instruction counts, run under callgrind with
//! `--collect-atstart=no --toggle-collect='*emu_loop*' --no-repeat` and
//! divide by `--frames`.
//!
//! **Scale** (issue 16): `--scale pipes|instances|classes|shaped --n N`
//! measures the same loop (`--batch 32`) with N of one thing, each source
//! address (10.x.y.z) its own subscriber, frames from the N sources in
//! turn at 100 ns a frame (10 Mpps offered, 64-byte frames):
//! - `pipes`: N static pipes, one rule each (`src_ip` /32), each a link of
//!   twice its share of the offered load with a 1 ms delay;
//! - `instances`: one dynamic pipe with a `src_ip` mask, `max_instances` N,
//!   the same link per instance;
//! - `classes`: one pipe with an HTB tree: N leaf classes under one root
//!   of 1.25× the offered load, each leaf's rate half its offered load and
//!   its ceil the root's (every leaf borrows), a flowset and a rule each;
//! - `shaped`: one pipe of unlimited bandwidth, one flowset (`src_ip`
//!   mask, N flows) with a per-flow `rate` of half each flow's offered load
//!   (every flow is paced; half the frames find their flow's queue full).
//!
//! Before the measured loop (`measured`: for callgrind,
//! `--toggle-collect='*measured*'`), `--frames` frames warm every flow,
//! instance and class up (their creation is not what is measured); the
//! JSON line adds the peak resident set (`rss_kb`) after the run.

use sched::classify::FlowMask;
use sched::classify::{FlowKey, Prefix};
use sched::config::{
    ChanceSpec, ClassSpec, Config, DefaultAction, Dir, Distribution, FlowsetSpec, JitterSpec,
    LossModel, Match, PipeSpec, ProfileSpec, QueueSpec, ReorderSpec, RuleSpec, SlotDelaySpec,
    SlotSpec, TraceSpec,
};
use sched::emu::impair::{Flip, Profile};
use sched::emu::schedule::{ScheduleSpec, Step};
use sched::emu::trace::Trace;
use sched::emu::{Cause, Emulator, Host, Verdict};
use sched::{Kind, Packet};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Table slots looked at per sweep and flowset (xdpsched's `EXPIRE_BUDGET`).
const EXPIRE_BUDGET: usize = 256;

/// What the bench queues: like xdpsched's descriptor, a frame index and a length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pkt {
    frame: u32,
    len: u32,
}

impl Packet for Pkt {
    fn len(&self) -> u32 {
        self.len
    }
}

/// Ethernet/IPv4/UDP, 60 bytes (64 on the wire), from 172.16.0.1.
fn v4_udp(sport: u16) -> Vec<u8> {
    v4_udp_from([172, 16, 0, 1], sport)
}

/// Ethernet/IPv4/UDP, 60 bytes (64 on the wire), from `src`.
fn v4_udp_from(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[172, 16, 0, 2]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&[0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

/// The bench's configuration has no chained pipes; duplicates are copies
/// of the handle, flips are not written (xdpsched copies and writes the
/// frame: the emulator's share is what is measured).
struct NoChain;

impl Host<Pkt> for NoChain {
    fn key(&mut self, _: &Pkt) -> FlowKey {
        FlowKey::default()
    }
    fn dropped(&mut self, _: Pkt, _: Cause) {}
    fn duplicate(&mut self, p: &Pkt) -> Option<Pkt> {
        Some(*p)
    }
    fn corrupt(&mut self, p: &mut Pkt, f: Flip) {
        p.frame ^= u32::from(f.bit);
    }
}

/// A normal distribution table in iproute2's format (4096 entries), for
/// `jitter-table` (the bench reads no files).
fn normal_table() -> Arc<[i16]> {
    (0..4096)
        .map(|i| {
            // Inverse normal CDF by bisection on the erf-free logistic
            // approximation: good enough for a cost measure.
            let p = (f64::from(i) + 0.5) / 4096.0;
            let z = (p / (1.0 - p)).ln() / 1.702;
            (z * 8192.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Adds impairment `name` to `cfg`'s pipe (or rules): see the module docs.
fn impair(cfg: &mut Config, name: &str) -> Result<(), String> {
    let p = &mut cfg.pipes[0];
    let chance = |probability| {
        Some(ChanceSpec {
            probability,
            correlation: 0.0,
        })
    };
    match name {
        "none" => {}
        "jitter" | "jitter-table" => {
            p.jitter = Some(JitterSpec {
                jitter_ns: 20_000,
                correlation: 0.0,
                distribution: if name == "jitter" {
                    Distribution::Uniform
                } else {
                    Distribution::Table {
                        name: "normal".into(),
                        table: Some(normal_table()),
                    }
                },
                reorder: false,
            })
        }
        "reorder" => {
            p.reorder = Some(ReorderSpec {
                probability: 0.25,
                correlation: 0.0,
                gap: 1,
            })
        }
        "duplicate" => p.duplicate = chance(0.1),
        // The decision alone: a copy once in a million packets.
        "duplicate-draw" => p.duplicate = chance(1e-6),
        "corrupt" => p.corrupt = chance(0.01),
        "loss4" => {
            p.loss = LossModel::FourState {
                p13: 0.001,
                p31: 0.999,
                p32: 0.0,
                p23: 1.0,
                p14: 0.0,
            }
        }
        "slot" => {
            p.slot = Some(SlotSpec {
                delay: SlotDelaySpec::Uniform {
                    min_ns: 1_000,
                    max_ns: 2_000,
                },
                packets: 0,
                bytes: 0,
            })
        }
        "profile" => {
            // Zero extra air time on a 100 Gbit/s link: the draw's cost.
            p.bandwidth_bps = Some(100_000_000_000);
            p.profile = Some(ProfileSpec {
                file: "bench".into(),
                profile: Some(Arc::new(Profile {
                    name: "bench".into(),
                    bandwidth_bps: None,
                    samples_ms: vec![0; 100],
                    loss_level: 100,
                })),
            })
        }
        "trace" => {
            // 2000 opportunities every ms: 24 Gbit/s, more than the offered load.
            let ms = (1..=10)
                .flat_map(|t| std::iter::repeat_n(t, 2000))
                .collect();
            p.trace = Some(TraceSpec {
                file: "bench".into(),
                trace: Some(Arc::new(Trace { ms })),
                log: None,
            })
        }
        "schedule" => {
            // A step an hour away: the check per packet.
            p.schedule = Some(Arc::new(ScheduleSpec {
                steps: vec![Step {
                    at_ns: 3_600_000_000_000,
                    bandwidth_bps: None,
                    delay_ns: None,
                    plr: Some(0.0),
                }],
                repeat_ns: None,
            }))
        }
        "rules" => {
            // prob's baseline: the same two rules, without prob.
            for _ in 0..2 {
                cfg.rules.push(RuleSpec {
                    matcher: Match::ANY,
                    flowset: 0,
                    dir: Dir::Both,
                    prob: None,
                    set_dscp: None,
                });
            }
        }
        "rate" => p.bandwidth_bps = Some(100_000_000_000),
        "prob" | "prob-draw" => {
            // Every frame meets a rule that matches half the time (or all
            // but once in a million: the draw alone), then one that always does.
            let p = if name == "prob" { 0.5 } else { 1.0 - 1e-6 };
            for prob in [Some(p), None] {
                cfg.rules.push(RuleSpec {
                    matcher: Match::ANY,
                    flowset: 0,
                    dir: Dir::Both,
                    prob,
                    set_dscp: None,
                });
            }
        }
        other => return Err(format!("unknown impairment '{other}'")),
    }
    Ok(())
}

fn config(kind: Kind, delay_ns: u64) -> Config {
    let mut pipe = PipeSpec::new("egress");
    pipe.sched = kind;
    pipe.delay_ns = delay_ns;
    let mut fs = FlowsetSpec::new("flows", 0);
    fs.mask = FlowMask::FIVE_TUPLE;
    fs.max_flows = 65_536;
    fs.queue = QueueSpec::Packets(100);
    Config {
        pipes: vec![pipe],
        flowsets: vec![fs],
        rules: Vec::new(),
        default: DefaultAction::Flowset(0),
        default_dir: Dir::AToB,
        seed: None,
        classes: Vec::new(),
    }
}

/// Subscriber `i`'s source address: 10.x.y.z.
fn subscriber(i: usize) -> [u8; 4] {
    let a = 0x0a00_0000u32 + i as u32;
    a.to_be_bytes()
}

/// The rule matching subscriber `i` (its source address /32), into `fs`.
fn subscriber_rule(i: usize, fs: usize) -> RuleSpec {
    let [a, b, c, d] = subscriber(i);
    RuleSpec {
        matcher: Match {
            src: Some(Prefix::new(
                0xffff_0000_0000 | u128::from(u32::from_be_bytes([a, b, c, d])),
                128,
            )),
            ..Match::ANY
        },
        flowset: fs,
        dir: Dir::Both,
        prob: None,
        set_dscp: None,
    }
}

/// Offered load: a 64-byte frame every 100 ns, in bit/s on the wire
/// (frame + 24 bytes of overhead).
const OFFERED_BPS: u64 = (64 + 24) * 8 * 10_000_000;

/// `--scale`'s configuration of `n` (see the module docs).
fn scale_config(what: &str, n: usize) -> Result<Config, String> {
    let share = (OFFERED_BPS / n as u64).max(1);
    let mut cfg = Config {
        pipes: Vec::new(),
        flowsets: Vec::new(),
        rules: Vec::new(),
        default: DefaultAction::Pass,
        default_dir: Dir::AToB,
        seed: None,
        classes: Vec::new(),
    };
    let link = |name: String| {
        let mut p = PipeSpec::new(name);
        p.sched = Kind::Fifo;
        p.bandwidth_bps = Some(2 * share);
        p.delay_ns = 1_000_000;
        p
    };
    let one_flow = |name: String, pipe: usize| {
        let mut fs = FlowsetSpec::new(name, pipe);
        fs.max_flows = 1;
        fs.queue = QueueSpec::Packets(50);
        fs
    };
    match what {
        "pipes" => {
            for i in 0..n {
                cfg.pipes.push(link(format!("p{i}")));
                cfg.flowsets.push(one_flow(format!("f{i}"), i));
                cfg.rules.push(subscriber_rule(i, i));
            }
        }
        "instances" => {
            let mut p = link("per-host".into());
            p.mask = Some(FlowMask {
                src: u128::MAX,
                ..FlowMask::NONE
            });
            p.max_instances = n as u32;
            cfg.pipes.push(p);
            cfg.flowsets.push(one_flow("f".into(), 0));
            cfg.default = DefaultAction::Flowset(0);
        }
        "classes" => {
            let root_bps = OFFERED_BPS / 4 * 5;
            let mut p = PipeSpec::new("uplink");
            p.sched = Kind::Drr;
            cfg.pipes.push(p);
            cfg.classes
                .push(class("root".into(), None, root_bps, root_bps));
            for i in 0..n {
                cfg.classes.push(class(
                    format!("c{i}"),
                    Some(0),
                    (share / 2).max(8),
                    root_bps,
                ));
                let mut fs = one_flow(format!("f{i}"), 0);
                fs.class = Some(i + 1);
                cfg.flowsets.push(fs);
                cfg.rules.push(subscriber_rule(i, i));
            }
        }
        "shaped" => {
            let mut p = PipeSpec::new("egress");
            p.sched = Kind::Drr;
            cfg.pipes.push(p);
            let mut fs = FlowsetSpec::new("flows", 0);
            fs.mask = FlowMask {
                src: u128::MAX,
                ..FlowMask::NONE
            };
            fs.max_flows = n as u32;
            fs.queue = QueueSpec::Packets(50);
            // The pacer charges frames without the link's overhead.
            fs.rate_bps = Some((60 * 8 * 10_000_000 / n as u64 / 2).max(8));
            cfg.flowsets.push(fs);
            cfg.default = DefaultAction::Flowset(0);
        }
        other => return Err(format!("unknown --scale '{other}'")),
    }
    Ok(cfg)
}

/// An HTB class of pipe 0 with tc's defaults for burst, cburst, quantum.
fn class(name: String, parent: Option<usize>, rate_bps: u64, ceil_bps: u64) -> ClassSpec {
    ClassSpec {
        name,
        pipe: 0,
        parent,
        rate_bps,
        ceil_bps,
        burst_bytes: sched::algo::htb::default_burst(rate_bps),
        cburst_bytes: sched::algo::htb::default_burst(ceil_bps),
        prio: 0,
        quantum: sched::algo::htb::default_quantum(rate_bps),
    }
}

/// Peak resident set of this process, KiB (0 if unknown).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The measured loop of `--scale` (callgrind toggles on this name); the
/// warm-up calls [`emu_loop`] directly.
#[inline(never)]
fn measured(
    emu: &mut Emulator<Pkt>,
    frames: &[Vec<u8>],
    n: usize,
    batch: usize,
    now: &mut u64,
) -> u64 {
    emu_loop(emu, frames, n, 0, batch, usize::MAX, now)
}

/// The measured loop (callgrind toggles on this name): per frame one
/// enqueue; after every `batch` frames, `pulls` dequeues (or, with `pulls`
/// = `usize::MAX`, until nothing is due); returns frames that came out.
/// Simulated time goes on from `now` (100 ns a frame).
/// One call site per emulator function, so the compiler inlines them as
/// into xdpsched's worker.
#[inline(never)]
fn emu_loop(
    emu: &mut Emulator<Pkt>,
    frames: &[Vec<u8>],
    n: usize,
    expire_every: usize,
    batch: usize,
    pulls: usize,
    now: &mut u64,
) -> u64 {
    let mut out = 0u64;
    let mut start = 0;
    while start < n {
        // A batch of frames; with `batch` 1, the loop every revision had.
        let end = (start + batch).min(n);
        for i in start..end {
            let k = i % frames.len();
            let mut pkt = Pkt {
                frame: k as u32,
                len: frames[k].len() as u32,
            };
            let v = match emu.classify_frame(black_box(&frames[k]), &mut pkt) {
                Ok(c) => emu.enqueue_classified(*now, &c, pkt, &mut NoChain),
                Err(e) => Verdict::Dropped(pkt, Cause::Malformed(e)),
            };
            match v {
                Verdict::Queued { .. } | Verdict::QueuedPushedOut { .. } => {}
                Verdict::Pass(_) | Verdict::Dropped(..) => out += 1 << 32,
            }
            if i + 1 == end {
                for _ in 0..pulls {
                    let Some((_, _, p)) = emu.dequeue(*now, &mut NoChain) else {
                        break;
                    };
                    out += 1;
                    black_box(p);
                }
            }
            if expire_every != 0 && i % expire_every == 0 {
                black_box(emu.expire(*now, EXPIRE_BUDGET));
            }
            *now += 100;
        }
        start = end;
    }
    out
}

fn main() -> ExitCode {
    let mut kind = Kind::Qfq;
    let mut flows = 1024usize;
    let mut frames_n = 2_000_000usize;
    let mut delay_ns = 0u64;
    let mut expire_every = 0usize;
    let mut json = false;
    let mut repeat = true;
    let mut impairment = String::from("none");
    let mut batch = 1usize;
    let mut scale: Option<String> = None;
    let mut n = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--sched" => match val().parse() {
                Ok(k) => kind = k,
                Err(e) => {
                    eprintln!("emu-bench: {e}");
                    return ExitCode::from(2);
                }
            },
            "--flows" => flows = val().parse().unwrap_or(flows).clamp(1, 60_000),
            "--frames" => frames_n = val().parse().unwrap_or(frames_n),
            "--delay-us" => delay_ns = val().parse::<u64>().unwrap_or(0) * 1000,
            "--expire-every" => expire_every = val().parse().unwrap_or(0),
            "--impair" => impairment = val(),
            "--json" => json = true,
            "--no-repeat" => repeat = false,
            "--batch" => batch = val().parse().unwrap_or(1).max(1),
            "--scale" => scale = Some(val()),
            "--n" => n = val().parse().unwrap_or(n).clamp(1, 1 << 24),
            other => {
                eprintln!("emu-bench: unknown option '{other}'");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(what) = scale {
        return scale_main(&what, n, frames_n, repeat, json);
    }
    let frames: Vec<Vec<u8>> = (0..flows).map(|i| v4_udp(1024 + i as u16)).collect();
    let runs = if repeat { 5 } else { 1 };
    let mut times = Vec::with_capacity(runs);
    let mut got = 0;
    for _ in 0..runs {
        let mut cfg = config(kind, delay_ns);
        if let Err(e) = impair(&mut cfg, &impairment) {
            eprintln!("emu-bench: --impair: {e}");
            return ExitCode::from(2);
        }
        let mut emu = match Emulator::<Pkt>::from_config(&cfg, 0x5eed) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("emu-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        let t0 = Instant::now();
        let pulls = black_box(if batch > 1 {
            usize::MAX
        } else if impairment == "duplicate" {
            2
        } else {
            1
        });
        got = black_box(emu_loop(
            &mut emu,
            &frames,
            frames_n,
            expire_every,
            batch,
            pulls,
            &mut 1_000,
        ));
        times.push(t0.elapsed().as_nanos() as f64 / frames_n as f64);
    }
    times.sort_by(f64::total_cmp);
    let ns = times[times.len() / 2];
    let (out, refused) = (got & 0xffff_ffff, got >> 32);
    if json {
        println!(
            "{{\"sched\":\"{kind:?}\",\"impair\":\"{impairment}\",\"flows\":{flows},\"delay_us\":{},\"expire_every\":{expire_every},\"frames\":{frames_n},\"out\":{out},\"not_queued\":{refused},\"ns_per_frame\":{ns:.2}}}",
            delay_ns / 1000
        );
    } else {
        println!(
            "{kind:?} {impairment} flows {flows} delay {} us expire every {expire_every}: {ns:.2} ns/frame (median of {runs}; {out} out, {refused} not queued)",
            delay_ns / 1000
        );
    }
    ExitCode::SUCCESS
}

/// `--scale WHAT --n N`: see the module docs.
fn scale_main(what: &str, n: usize, frames_n: usize, repeat: bool, json: bool) -> ExitCode {
    let frames: Vec<Vec<u8>> = (0..n).map(|i| v4_udp_from(subscriber(i), 7)).collect();
    let runs = if repeat { 5 } else { 1 };
    let mut times = Vec::with_capacity(runs);
    let mut got = 0;
    let t_build = Instant::now();
    let cfg = match scale_config(what, n) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("emu-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut emu = match Emulator::<Pkt>::from_config(&cfg, 0x5eed) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("emu-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let build_ms = t_build.elapsed().as_secs_f64() * 1e3;
    // Warm-up: every subscriber's flow, instance or class exists, queues
    // and links in their steady state.
    let mut now = 1_000u64;
    black_box(emu_loop(
        &mut emu,
        &frames,
        frames_n.max(2 * n),
        0,
        32,
        usize::MAX,
        &mut now,
    ));
    for _ in 0..runs {
        let t0 = Instant::now();
        got = black_box(measured(&mut emu, &frames, frames_n, 32, &mut now));
        times.push(t0.elapsed().as_nanos() as f64 / frames_n as f64);
    }
    times.sort_by(f64::total_cmp);
    let ns = times[times.len() / 2];
    let (out, refused) = (got & 0xffff_ffff, got >> 32);
    let rss = peak_rss_kb();
    if json {
        println!(
            "{{\"scale\":\"{what}\",\"n\":{n},\"frames\":{frames_n},\"out\":{out},\"not_queued\":{refused},\"ns_per_frame\":{ns:.2},\"build_ms\":{build_ms:.1},\"rss_kb\":{rss}}}"
        );
    } else {
        println!(
            "scale {what} n {n}: {ns:.2} ns/frame (median of {runs}; {out} out, {refused} not queued; built in {build_ms:.1} ms; peak RSS {rss} KiB)"
        );
    }
    ExitCode::SUCCESS
}
