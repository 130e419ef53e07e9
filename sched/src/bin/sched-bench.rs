//! sched-bench — the scheduler test harness, modelled on dummynet's
//! `test/main.c` (test_sched).
//!
//! ```text
//! sched-bench --sched {null,fifo,prio,drr,wf2q,qfq} --flows N
//!             [--flowsets "w:len:n,..."] [--qmin X --qmax Y] [--packets P] [--len L] [--json]
//! ```
//! A controller alternates between filling and draining the scheduler with
//! hysteresis: it enqueues until `qmax` packets are pending, then dequeues
//! until `qmin` remain (defaults as dummynet: `qmin 0`, `qmax 20n` = 20 per
//! flow). Filling visits the flows round robin, which with `qmin 0` is the
//! same as dummynet's "flow with the shortest backlog". Packets are 16-byte
//! descriptors, like the datapath's UMEM descriptors. `X`/`Y` accept an `n`
//! suffix meaning "times the number of flows".
//!
//! `null` is the harness's own baseline: one ring buffer instead of a
//! scheduler, so *scheduler cost = sched - null*. Every run also times the
//! null baseline (`null_ns_per_pkt`). For instruction counts, run under
//! callgrind with `--collect-atstart=no --toggle-collect='*measure_loop*'`:
//! only the selected scheduler's loop is counted (the baseline runs in
//! `baseline_loop`). See bench-results/sched/README.md.

use sched::{Engine, FlowConfig, FlowId, Lmax, Packet, SchedConfig, Scheduler, Weight};
use std::process::ExitCode;
use std::time::Instant;

/// A UMEM-like descriptor: frame address, length, options (16 bytes).
#[derive(Debug, Clone, Copy, Default)]
struct Desc {
    addr: u64,
    len: u32,
    _opts: u32,
}

impl Packet for Desc {
    #[inline(always)]
    fn len(&self) -> u32 {
        self.len
    }
}

/// What the measured loop drives.
trait Bench {
    fn enq(&mut self, flow: u32, d: Desc) -> bool;
    fn deq(&mut self) -> Option<Desc>;
}

/// The null scheduler: one power-of-two ring, no per-flow anything (the
/// equivalent of dummynet's harness tailq: a few instructions per packet, so
/// that `sched - null` is the scheduler's whole cost).
struct Null {
    ring: Vec<Desc>,
    mask: usize,
    head: usize,
    tail: usize,
}

impl Null {
    fn new(cap: u64) -> Self {
        let size = (cap.max(1) as usize).next_power_of_two();
        Self {
            ring: vec![
                Desc {
                    addr: 0,
                    len: 0,
                    _opts: 0
                };
                size
            ],
            mask: size - 1,
            head: 0,
            tail: 0,
        }
    }
}

impl Bench for Null {
    #[inline(always)]
    fn enq(&mut self, _flow: u32, d: Desc) -> bool {
        // The controller never holds more than qmax <= ring size packets.
        self.ring[self.tail & self.mask] = d;
        self.tail = self.tail.wrapping_add(1);
        true
    }
    #[inline(always)]
    fn deq(&mut self) -> Option<Desc> {
        if self.head == self.tail {
            return None;
        }
        let d = self.ring[self.head & self.mask];
        self.head = self.head.wrapping_add(1);
        Some(d)
    }
}

impl<A: sched::Algorithm> Bench for Engine<Desc, A> {
    #[inline(always)]
    fn enq(&mut self, flow: u32, d: Desc) -> bool {
        self.enqueue(0, FlowId(flow), d).is_ok()
    }
    #[inline(always)]
    fn deq(&mut self) -> Option<Desc> {
        self.dequeue(0).map(|(_, d)| d)
    }
}

struct Plan {
    /// Per flow: (weight, len).
    flows: Vec<(u32, u32)>,
    qmin: u64,
    qmax: u64,
    packets: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    dequeued: u64,
    drops: u64,
    checksum: u64,
}

/// The controller (dummynet `mainloop` + `controller`): fill until `qmax`
/// packets are pending, then drain until `qmin` remain, and again. Written as
/// two tight loops (the same hysteresis as dummynet's per-iteration state
/// machine) so the harness itself stays cheap and the null baseline small.
#[inline(always)]
fn drive<B: Bench>(b: &mut B, plan: &Plan) -> Outcome {
    let n = plan.flows.len();
    let lens: Vec<u32> = plan.flows.iter().map(|f| f.1).collect();
    let mut out = Outcome::default();
    let mut pending = 0u64;
    let mut next_flow = 0usize;
    let mut addr = 0u64;
    while out.dequeued < plan.packets {
        let before = out.dequeued;
        // Fill: qmax - pending attempts (a dropped packet counts as one).
        let attempts = plan.qmax.saturating_sub(pending);
        for _ in 0..attempts {
            let d = Desc {
                addr,
                len: lens[next_flow],
                _opts: 0,
            };
            addr += 2048;
            if b.enq(next_flow as u32, d) {
                pending += 1;
            } else {
                out.drops += 1;
            }
            next_flow += 1;
            if next_flow == n {
                next_flow = 0;
            }
        }
        // Drain.
        while pending > plan.qmin {
            match b.deq() {
                Some(d) => {
                    pending -= 1;
                    out.dequeued += 1;
                    out.checksum ^= d.addr;
                }
                None => break,
            }
        }
        if out.dequeued == before {
            break; // everything was dropped: no progress possible
        }
    }
    out
}

/// The measured loop (callgrind toggles collection on this name).
#[inline(never)]
fn measure_loop<B: Bench>(b: &mut B, plan: &Plan) -> Outcome {
    drive(b, plan)
}

/// The null baseline, timed in every run (not counted by callgrind's toggle).
#[inline(never)]
fn baseline_loop(b: &mut Null, plan: &Plan) -> Outcome {
    drive(b, plan)
}

fn parse_count(s: &str, flows: u64, what: &str) -> Result<u64, String> {
    let (num, per_flow) = match s.strip_suffix('n') {
        Some(x) => (x, true),
        None => (s, false),
    };
    let v: u64 = num
        .parse()
        .map_err(|_| format!("{what}: '{s}' is not a number (an 'n' suffix means per flow)"))?;
    Ok(if per_flow { v * flows } else { v })
}

fn parse_flowsets(spec: &str, default_len: u32) -> Result<Vec<(u32, u32)>, String> {
    let mut flows = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let f: Vec<&str> = part.split(':').collect();
        if f.len() != 3 {
            return Err(format!("flowset '{part}': expected weight:len:count"));
        }
        let w: u32 = f[0]
            .parse()
            .map_err(|_| format!("flowset '{part}': bad weight"))?;
        Weight::new(w as u64).map_err(|e| format!("flowset '{part}': {e}"))?;
        let len: u32 = if f[1].is_empty() {
            default_len
        } else {
            f[1].parse()
                .map_err(|_| format!("flowset '{part}': bad len"))?
        };
        Lmax::new(len as u64).map_err(|e| format!("flowset '{part}': {e}"))?;
        let n: u32 = f[2]
            .parse()
            .map_err(|_| format!("flowset '{part}': bad count"))?;
        flows.extend(std::iter::repeat_n((w, len), n as usize));
    }
    if flows.is_empty() {
        return Err("flowsets: no flows".into());
    }
    Ok(flows)
}

struct Args {
    sched: String,
    plan: Plan,
    json: bool,
    baseline: bool,
    flowsets: String,
}

fn parse_args() -> Result<Args, String> {
    let mut sched = "null".to_string();
    let mut flows_n: u64 = 1;
    let mut flowsets: Option<String> = None;
    let mut qmin = "0".to_string();
    let mut qmax = "20n".to_string();
    let mut packets: u64 = 1_000_000;
    let mut len: u32 = 1280;
    let mut json = false;
    let mut baseline = true;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--sched" => sched = val("--sched")?,
            "--flows" => {
                flows_n = val("--flows")?
                    .parse()
                    .map_err(|_| "--flows: not a number".to_string())?
            }
            "--flowsets" => flowsets = Some(val("--flowsets")?),
            "--qmin" => qmin = val("--qmin")?,
            "--qmax" => qmax = val("--qmax")?,
            "--packets" => {
                packets = val("--packets")?
                    .parse()
                    .map_err(|_| "--packets: not a number".to_string())?
            }
            "--len" => {
                len = val("--len")?
                    .parse()
                    .map_err(|_| "--len: not a number".to_string())?
            }
            "--json" => json = true,
            // Under callgrind: skip the timed null baseline so only measure_loop runs.
            "--no-baseline" => baseline = false,
            "-h" | "--help" => {
                println!(
                    "usage: sched-bench --sched {{null,fifo,prio,drr,wf2q,qfq}} --flows N \
                     [--flowsets \"w:len:n,...\"] [--qmin X --qmax Y] [--packets P] [--len L] [--json]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option '{other}' (try --help)")),
        }
    }
    Lmax::new(len as u64).map_err(|e| format!("--len: {e}"))?;
    let spec = flowsets.unwrap_or_else(|| format!("1:{len}:{flows_n}"));
    let flows = parse_flowsets(&spec, len)?;
    let n = flows.len() as u64;
    let qmin = parse_count(&qmin, n, "--qmin")?;
    let qmax = parse_count(&qmax, n, "--qmax")?.max(qmin + 1);
    Ok(Args {
        sched,
        plan: Plan {
            flows,
            qmin,
            qmax,
            packets,
        },
        json,
        baseline,
        flowsets: spec,
    })
}

fn build_engine<A: sched::Algorithm>(plan: &Plan) -> Result<Engine<Desc, A>, String> {
    let cfg = SchedConfig {
        max_flows: plan.flows.len() as u32,
        limit_packets: plan.qmax.min(SchedConfig::MAX_PACKETS as u64) as u32,
        ..SchedConfig::default()
    };
    let mut e = Engine::<Desc, A>::new(cfg).map_err(|e| e.to_string())?;
    for &(w, len) in &plan.flows {
        let fc = FlowConfig {
            weight: Weight::new(w as u64).map_err(|e| e.to_string())?,
            lmax: Lmax::new(len as u64).map_err(|e| e.to_string())?,
            ..FlowConfig::default()
        };
        e.add_flow(fc).map_err(|e| e.to_string())?;
    }
    Ok(e)
}

fn timed<B: Bench>(b: &mut B, plan: &Plan, f: fn(&mut B, &Plan) -> Outcome) -> (Outcome, f64) {
    let t0 = Instant::now();
    let out = f(b, plan);
    let ns = t0.elapsed().as_nanos() as f64 / out.dequeued.max(1) as f64;
    (out, ns)
}

fn run_sched(args: &Args) -> Result<(Outcome, f64), String> {
    let plan = &args.plan;
    macro_rules! go {
        ($alg:ty) => {{
            let mut e = build_engine::<$alg>(plan)?;
            Ok(timed(&mut e, plan, measure_loop))
        }};
    }
    match args.sched.as_str() {
        "null" => {
            let mut n = Null::new(plan.qmax);
            Ok(timed(&mut n, plan, measure_loop))
        }
        "fifo" => go!(sched::algo::fifo::Fifo),
        "prio" => go!(sched::algo::prio::Prio),
        "drr" => go!(sched::algo::drr::Drr),
        "wf2q" | "wf2q+" | "wf2qp" => go!(sched::algo::wf2q::Wf2q),
        "qfq" => go!(sched::algo::qfq::Qfq),
        other => Err(format!(
            "unknown scheduler '{other}' (expected null, fifo, prio, drr, wf2q, qfq)"
        )),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sched-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = &args.plan;
    let mut null = Null::new(plan.qmax);
    let null_ns = if args.baseline {
        timed(&mut null, plan, baseline_loop).1
    } else {
        f64::NAN
    };
    let (out, ns) = match run_sched(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sched-bench: {e}");
            return ExitCode::from(2);
        }
    };
    // The checksum of dequeued addresses only keeps the measured loop from being
    // optimised away; it means nothing to a reader, so it is not printed.
    std::hint::black_box(out.checksum);
    if args.json {
        println!(
            "{{\"sched\":\"{}\",\"flows\":{},\"flowsets\":\"{}\",\"qmin\":{},\"qmax\":{},\"packets\":{},\
             \"ns_per_pkt\":{:.2},\"null_ns_per_pkt\":{:.2},\"sched_ns_per_pkt\":{:.2},\"drops\":{}}}",
            args.sched,
            plan.flows.len(),
            args.flowsets,
            plan.qmin,
            plan.qmax,
            out.dequeued,
            ns,
            null_ns,
            ns - null_ns,
            out.drops
        );
    } else {
        println!(
            "{:<6} flows {:>8} packets {:>10} qlen {}..{}  {:8.2} ns/pkt  (null {:.2}, sched-only {:.2})  drops {}",
            args.sched,
            plan.flows.len(),
            out.dequeued,
            plan.qmin,
            plan.qmax,
            ns,
            null_ns,
            ns - null_ns,
            out.drops
        );
    }
    ExitCode::SUCCESS
}
