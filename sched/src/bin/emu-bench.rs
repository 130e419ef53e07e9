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

use sched::classify::FlowKey;
use sched::classify::FlowMask;
use sched::config::{
    ChanceSpec, Config, DefaultAction, Dir, Distribution, FlowsetSpec, JitterSpec, LossModel,
    Match, PipeSpec, ProfileSpec, QueueSpec, ReorderSpec, RuleSpec, SlotDelaySpec, SlotSpec,
    TraceSpec,
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

/// Ethernet/IPv4/UDP, 60 bytes (64 on the wire).
fn v4_udp(sport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[172, 16, 0, 1, 172, 16, 0, 2]);
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

/// The measured loop (callgrind toggles on this name): per frame one
/// enqueue; after every `batch` frames, `pulls` dequeues (or, with `pulls`
/// = `usize::MAX`, until nothing is due); returns frames that came out.
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
) -> u64 {
    let mut out = 0u64;
    let mut now = 1_000u64;
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
                Ok(c) => emu.enqueue_classified(now, &c, pkt, &mut NoChain),
                Err(e) => Verdict::Dropped(pkt, Cause::Malformed(e)),
            };
            match v {
                Verdict::Queued { .. } | Verdict::QueuedPushedOut { .. } => {}
                Verdict::Pass(_) | Verdict::Dropped(..) => out += 1 << 32,
            }
            if i + 1 == end {
                for _ in 0..pulls {
                    let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) else {
                        break;
                    };
                    out += 1;
                    black_box(p);
                }
            }
            if expire_every != 0 && i % expire_every == 0 {
                black_box(emu.expire(now, EXPIRE_BUDGET));
            }
            now += 100;
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
            other => {
                eprintln!("emu-bench: unknown option '{other}'");
                return ExitCode::from(2);
            }
        }
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
