//! emu-bench — cost of the whole emulator per frame: parse, classify,
//! find the flow in its flowset, enqueue into the pipe's scheduler, and take
//! one packet out (what xdpsched's scheduling worker does per frame).
//!
//! ```text
//! emu-bench [--sched fifo|drr|wf2q|qfq] [--flows N] [--frames F] [--delay-us D]
//!           [--expire-every K] [--json] [--no-repeat]
//! ```
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
use sched::config::{Config, DefaultAction, Dir, FlowsetSpec, PipeSpec, QueueSpec};
use sched::emu::{Cause, Emulator, Host, Verdict};
use sched::{Kind, Packet};
use std::hint::black_box;
use std::process::ExitCode;
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

/// The bench's configuration has no chained pipes: nothing is asked of it.
struct NoChain;

impl Host<Pkt> for NoChain {
    fn key(&mut self, _: &Pkt) -> FlowKey {
        FlowKey::default()
    }
    fn dropped(&mut self, _: Pkt, _: Cause) {}
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
    }
}

/// The measured loop (callgrind toggles on this name): per frame one
/// enqueue and one dequeue; returns frames that came out.
#[inline(never)]
fn emu_loop(emu: &mut Emulator<Pkt>, frames: &[Vec<u8>], n: usize, expire_every: usize) -> u64 {
    let mut out = 0u64;
    let mut now = 1_000u64;
    for i in 0..n {
        let k = i % frames.len();
        let pkt = Pkt {
            frame: k as u32,
            len: frames[k].len() as u32,
        };
        match emu.enqueue(now, black_box(&frames[k]), pkt) {
            Verdict::Queued { .. } | Verdict::QueuedPushedOut { .. } => {}
            Verdict::Pass(_) | Verdict::Dropped(..) => out += 1 << 32,
        }
        if let Some((_, _, p)) = emu.dequeue(now, &mut NoChain) {
            out += 1;
            black_box(p);
        }
        if expire_every != 0 && i % expire_every == 0 {
            black_box(emu.expire(now, EXPIRE_BUDGET));
        }
        now += 100;
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
            "--json" => json = true,
            "--no-repeat" => repeat = false,
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
        let mut emu = match Emulator::<Pkt>::from_config(&config(kind, delay_ns), 0x5eed) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("emu-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        let t0 = Instant::now();
        got = black_box(emu_loop(&mut emu, &frames, frames_n, expire_every));
        times.push(t0.elapsed().as_nanos() as f64 / frames_n as f64);
    }
    times.sort_by(f64::total_cmp);
    let ns = times[times.len() / 2];
    let (out, refused) = (got & 0xffff_ffff, got >> 32);
    if json {
        println!(
            "{{\"sched\":\"{kind:?}\",\"flows\":{flows},\"delay_us\":{},\"expire_every\":{expire_every},\"frames\":{frames_n},\"out\":{out},\"not_queued\":{refused},\"ns_per_frame\":{ns:.2}}}",
            delay_ns / 1000
        );
    } else {
        println!(
            "{kind:?} flows {flows} delay {} us expire every {expire_every}: {ns:.2} ns/frame (median of {runs}; {out} out, {refused} not queued)",
            delay_ns / 1000
        );
    }
    ExitCode::SUCCESS
}
