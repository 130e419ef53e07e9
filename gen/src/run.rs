//! The AF_XDP engine: a sending thread on one port and a receiving thread on
//! another (each in its own network namespace if asked), or one thread doing
//! both on a single port (reflect mode). One process, one clock: every time
//! is nanoseconds since a shared [`Instant`], so one-way latency is exact up
//! to the loop's own overhead (reported by a direct loop measurement).
//!
//! Frames never leak: the UMEM ledger of each side must balance at the end
//! (`balanced` in the results), as in xdpsched.

use crate::frame::{read_stamp, Template};
use crate::pace::Pacer;
use crate::series::Series;
use crate::spec::Flow;
use crate::stamp::Stamp;
use crate::track::{FlowRx, LATENCY_MAX_NS, LATENCY_MIN_NS};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xsk::netns;
use xsk::FrameDesc;
use xsk::{Lane, Xsk, XskParams};

/// A port: an interface, optionally in a named network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Interface name.
    pub iface: String,
    /// Network namespace (`ip netns` name or a path), or the caller's.
    pub netns: Option<String>,
}

/// What the engine needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sending port.
    pub tx: PortSpec,
    /// Receiving port; `None`: receive on the sending port (reflect).
    pub rx: Option<PortSpec>,
    /// The flows (ids are their indexes).
    pub flows: Vec<Flow>,
    /// One header template per flow.
    pub templates: Vec<Template>,
    /// Run length, ns (nothing is sent after it).
    pub run_ns: u64,
    /// How long the receiver keeps listening after the run, ns.
    pub drain_ns: u64,
    /// Report interval, ns.
    pub interval_ns: u64,
    /// UMEM and rings.
    pub xsk: XskParams,
    /// Frames per batch.
    pub batch: usize,
    /// Most frames submitted and not yet completed (keeps the TX ring short,
    /// so stamps are taken close to the real departure).
    pub in_flight: usize,
    /// Cores for the sending and the receiving thread (empty: not pinned).
    pub cores: Vec<usize>,
    /// Keep per-interval latency histograms (for the HdrHistogram log).
    pub interval_histograms: bool,
}

/// One flow's sending statistics.
#[derive(Debug, Clone)]
pub struct FlowTx {
    /// Frames sent.
    pub packets: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// First and last stamp, ns.
    pub first_ns: Option<u64>,
    /// Last stamp.
    pub last_ns: u64,
    /// Inter-departure times, ns.
    pub idt: Histogram<u64>,
    /// Stamp minus due time, ns (how late the pacer was).
    pub lateness: Histogram<u64>,
}

impl FlowTx {
    fn new() -> FlowTx {
        let h = || Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("static bounds");
        FlowTx {
            packets: 0,
            bytes: 0,
            first_ns: None,
            last_ns: 0,
            idt: h(),
            lateness: h(),
        }
    }
}

/// What the sending side did.
#[derive(Debug, Clone)]
pub struct TxResult {
    /// Per flow.
    pub flows: Vec<FlowTx>,
    /// Bytes sent per interval.
    pub series: Series,
    /// Times a due frame waited for a free UMEM frame or TX room.
    pub stalls: u64,
    /// UMEM ledger balanced at the end.
    pub balanced: bool,
    /// Frames the sending port received (not ours to count; recycled).
    pub received_other: u64,
    /// Frames counted as sent that the kernel never completed: still in its
    /// rings when the sender stopped waiting, or never given to it (0 unless
    /// the interface went away or stopped sending).
    pub uncompleted: u64,
}

/// What the receiving side saw.
#[derive(Debug, Clone)]
pub struct RxResult {
    /// Per flow.
    pub flows: Vec<FlowRx>,
    /// First arrival per flow, ns.
    pub first_ns: Vec<Option<u64>>,
    /// Last arrival per flow, ns.
    pub last_ns: Vec<u64>,
    /// Second arrival per flow, ns (packet-pair dispersion).
    pub second_ns: Vec<Option<u64>>,
    /// Bytes received per interval.
    pub series: Series,
    /// Frames without our stamp (or with an unknown flow id).
    pub foreign: u64,
    /// UMEM ledger balanced at the end.
    pub balanced: bool,
}

/// A finished interval, sent by the receiver while running.
#[derive(Debug, Clone)]
pub struct IntervalEvent {
    /// Interval index (0 = the first `interval_ns` after the start).
    pub index: usize,
    /// Bytes per flow.
    pub bytes: Vec<u64>,
    /// Packets per flow.
    pub packets: Vec<u64>,
    /// Latency per flow in the interval (if asked for).
    pub latency: Option<Vec<Histogram<u64>>>,
}

/// Everything the engine measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Sending side.
    pub tx: TxResult,
    /// Receiving side.
    pub rx: RxResult,
    /// Start of the schedule, ns on the shared clock.
    pub start_ns: u64,
}

/// Shared clock and run control.
#[derive(Debug)]
struct Shared {
    base: Instant,
    start_ns: AtomicU64,
    go: AtomicBool,
    stop: Arc<AtomicBool>,
}

impl Shared {
    #[inline]
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

fn pin(cores: &[usize], i: usize) -> Result<(), String> {
    if let Some(&c) = cores.get(i).or(cores.first()) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
            return Err(format!("could not pin thread {i} to core {c}"));
        }
    }
    // Sleep precisely: timers fire on time, not up to 50 µs later.
    let _ = nix::sys::prctl::set_timerslack(1);
    Ok(())
}

/// Opens the port from a thread that stays in the port's namespace for the
/// rest of its life: the XDP program is detached (by ifindex, over netlink)
/// when the `Xsk` drops, and that must happen in the same namespace.
fn open(port: &PortSpec, p: &XskParams) -> Result<Xsk, String> {
    if let Some(ns) = &port.netns {
        netns::enter(ns).map_err(|e| e.to_string())?;
    }
    Xsk::open(std::slice::from_ref(&port.iface), p)
        .map_err(|e| format!("{}: {:#}", port.iface, anyhow::Error::from(e)))
}

/// Sleeps or spins until `until` (ns on the shared clock): sleeps when more
/// than `spin_ns` away, spins for the rest.
fn wait_until(sh: &Shared, until: u64, max_wait: u64, spin_ns: u64) {
    let now = sh.now();
    let until = until.min(now + max_wait);
    if until <= now {
        return;
    }
    if until - now > spin_ns {
        std::thread::sleep(Duration::from_nanos(until - now - spin_ns));
    }
    while sh.now() < until {
        std::hint::spin_loop();
    }
}

struct TxState {
    pacer: Pacer,
    templates: Vec<Template>,
    res: TxResult,
    out: Vec<u32>,
    done: bool,
}

/// The receiving side's state, shared by the AF_XDP engine and socket mode.
pub(crate) struct RxState {
    pub(crate) res: RxResult,
    pub(crate) interval: Option<Vec<Histogram<u64>>>,
    pub(crate) reported: usize,
    pub(crate) events: mpsc::Sender<IntervalEvent>,
    pub(crate) last_work: u64,
}

impl RxState {
    /// Empty state for `n` flows (per-interval latency histograms if asked).
    pub(crate) fn new(
        n: usize,
        interval_ns: u64,
        histograms: bool,
        events: mpsc::Sender<IntervalEvent>,
    ) -> RxState {
        RxState {
            res: RxResult {
                flows: (0..n).map(|_| FlowRx::new()).collect(),
                first_ns: vec![None; n],
                last_ns: vec![0; n],
                second_ns: vec![None; n],
                series: Series::new(n, interval_ns, 0),
                foreign: 0,
                balanced: false,
            },
            interval: histograms.then(|| (0..n).map(|_| rx_hist()).collect()),
            reported: 0,
            events,
            last_work: 0,
        }
    }

    /// Counts a stamped packet of flow `f` (`len` frame bytes) read at `rx_ns`.
    #[inline]
    pub(crate) fn count(&mut self, s: &Stamp, len: u64, rx_ns: u64) {
        let f = s.flow as usize;
        let r = &mut self.res;
        r.flows[f].record(s.seq, len as u32, s.tx_ns, rx_ns);
        if r.first_ns[f].is_none() {
            r.first_ns[f] = Some(rx_ns);
        } else if r.second_ns[f].is_none() {
            r.second_ns[f] = Some(rx_ns);
        }
        r.last_ns[f] = rx_ns;
        r.series.record(f, len, rx_ns);
        if let Some(h) = self.interval.as_mut() {
            let _ = h[f].record(rx_ns.saturating_sub(s.tx_ns).max(LATENCY_MIN_NS));
        }
    }

    /// Sends interval events for every interval that ended before `now`, or
    /// up to `upto_end`.
    pub(crate) fn flush(&mut self, start: u64, interval: u64, now: u64, upto_end: Option<usize>) {
        flush_intervals(self, start, interval, now, upto_end);
    }
}

pub(crate) fn rx_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_MIN_NS, LATENCY_MAX_NS, 3).expect("static bounds")
}

/// Sends interval events for every interval that ended before `now`.
/// Intervals of the run: up to its end, or up to a stop (Ctrl-C).
pub fn interval_cap(run_ns: u64, start: u64, stopped_at: Option<u64>, interval: u64) -> usize {
    let len = stopped_at.map_or(run_ns, |s| s.saturating_sub(start).min(run_ns));
    len.div_ceil(interval.max(1)) as usize
}

fn flush_intervals(rx: &mut RxState, start: u64, interval: u64, now: u64, upto_end: Option<usize>) {
    let done = match upto_end {
        Some(n) => n,
        None => (now.saturating_sub(start) / interval) as usize,
    };
    while rx.reported < done {
        let i = rx.reported;
        let nflows = rx.res.flows.len();
        let bytes = rx
            .res
            .series
            .bytes(i)
            .map_or(vec![0; nflows], <[u64]>::to_vec);
        let packets = rx
            .res
            .series
            .packets(i)
            .map_or(vec![0; nflows], <[u64]>::to_vec);
        let latency = rx.interval.as_mut().map(|v| {
            v.iter_mut()
                .map(|h| {
                    let c = h.clone();
                    h.reset();
                    c
                })
                .collect()
        });
        let _ = rx.events.send(IntervalEvent {
            index: i,
            bytes,
            packets,
            latency,
        });
        rx.reported += 1;
    }
}

/// How long, once the run and its drain are over, a sender waits for the
/// kernel to complete one more frame before it gives up on the rest.
const COMPLETION_WAIT_NS: u64 = 1_000_000_000;

/// One thread's loop over one port: sends if `tx`, receives if `rx`.
fn port_loop(
    sh: &Shared,
    cfg: &EngineConfig,
    xsk: &mut Lane,
    mut tx: Option<&mut TxState>,
    mut rx: Option<&mut RxState>,
) {
    let batch = cfg.batch.max(1);
    let mut scratch = vec![FrameDesc::default(); batch];
    let mut scratch_v: Vec<FrameDesc> = Vec::with_capacity(batch * 2);
    let mut got: Vec<u32> = Vec::with_capacity(batch);
    let fill = (cfg.xsk.ring_size as usize).min(xsk.total_frames() / 2);
    xsk.refill(0, fill, &mut scratch_v);
    while !sh.go.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
    let start = sh.start_ns.load(Ordering::Acquire);
    let end = start + cfg.run_ns;
    let listen_end = end + cfg.drain_ns;
    let interval = cfg.interval_ns.max(1);
    // The series count from the common start.
    if let Some(t) = tx.as_deref_mut() {
        t.res.series = Series::new(t.res.flows.len(), interval, start);
    }
    if let Some(r) = rx.as_deref_mut() {
        r.res.series = Series::new(r.res.flows.len(), interval, start);
    }
    let mut stopping_at: Option<u64> = None;
    // When the kernel last completed frames of ours.
    let mut tx_progress = start;
    loop {
        let now = sh.now();
        if stopping_at.is_none() && sh.stop.load(Ordering::Relaxed) {
            stopping_at = Some(now);
        }
        let mut work = 0usize;
        // Send.
        if let Some(t) = tx.as_deref_mut() {
            if xsk.complete(0, &mut scratch) > 0 {
                tx_progress = now;
            }
            if !t.done {
                let stopped = stopping_at.is_some();
                let rel = now.saturating_sub(start);
                let room = cfg
                    .in_flight
                    .saturating_sub(xsk.ports[0].in_flight as usize + t.out.len());
                let mut made = 0;
                while !stopped && made < room.min(batch) {
                    if xsk.free_frames() == 0 {
                        t.res.stalls += 1;
                        break;
                    }
                    let Some(d) = t.pacer.pop_due(rel) else { break };
                    let Some(frame) = xsk.pop_free() else { break };
                    let tpl = &t.templates[d.flow as usize];
                    let stamp = Stamp {
                        flow: d.flow as u16,
                        seq: d.seq,
                        tx_ns: now,
                    };
                    // Cannot fail: sizes were validated against the frame size.
                    let _ = xsk.with_frame_mut(frame, tpl.len as usize, |b| tpl.write(b, &stamp));
                    t.out.push(frame);
                    let f = &mut t.res.flows[d.flow as usize];
                    if let Some(_first) = f.first_ns {
                        let _ = f.idt.record(now.saturating_sub(f.last_ns).max(1));
                    } else {
                        f.first_ns = Some(now);
                    }
                    f.last_ns = now;
                    f.packets += 1;
                    f.bytes += tpl.len as u64;
                    let _ = f.lateness.record(rel.saturating_sub(d.due).max(1));
                    t.res.series.record(d.flow as usize, tpl.len as u64, now);
                    made += 1;
                }
                if room == 0 && t.pacer.next_due().is_some_and(|d| d <= rel) {
                    t.res.stalls += 1;
                }
                if !t.out.is_empty() {
                    let n = xsk.transmit(0, &t.out, &mut scratch_v);
                    t.out.drain(..n);
                    work += n;
                }
                if (stopped || t.pacer.next_due().is_none()) && t.out.is_empty() {
                    t.done = true;
                }
            }
            if xsk.kick(0) {
                work += 1;
            }
        }
        // Receive (on a send-only port: recycle whatever arrives).
        got.clear();
        let n = xsk.receive(0, &mut scratch, &mut got);
        if n > 0 {
            let rx_now = sh.now();
            work += n;
            match rx.as_deref_mut() {
                Some(r) => {
                    r.last_work = rx_now;
                    for &fr in &got {
                        let data = xsk.data(fr);
                        let len = data.len() as u64;
                        match read_stamp(data) {
                            Some(s) if (s.flow as usize) < r.res.flows.len() => {
                                r.count(&s, len, rx_now);
                            }
                            _ => r.res.foreign += 1,
                        }
                    }
                }
                None => {
                    if let Some(t) = tx.as_deref_mut() {
                        t.res.received_other += n as u64;
                    }
                }
            }
            for &f in &got {
                xsk.release(f);
            }
        }
        xsk.refill(0, batch, &mut scratch_v);
        if let Some(r) = rx.as_deref_mut() {
            let cap = interval_cap(cfg.run_ns, start, stopping_at, interval);
            let elapsed = (now.saturating_sub(start) / interval) as usize;
            flush_intervals(r, start, interval, now, Some(elapsed.min(cap)));
        }
        // Done?
        let tx_done = tx
            .as_deref()
            .is_none_or(|t| t.done && xsk.ports[0].in_flight == 0);
        let rx_done = rx.is_none()
            || now >= listen_end
            || stopping_at.is_some_and(|s| now >= s + cfg.drain_ns);
        if tx_done && rx_done {
            break;
        }
        if tx_done && rx.is_none() && (now >= end || stopping_at.is_some()) {
            break;
        }
        // The kernel completes what it was given, unless the interface went away
        // (or stopped sending): past the drain, a sender whose frames have not
        // moved for a while stops waiting for them. One still sending a backlog
        // (behind its schedule, but progressing) goes on.
        let drained = stopping_at.map_or(listen_end, |s| s + cfg.drain_ns);
        if rx_done && now >= drained && now.saturating_sub(tx_progress) >= COMPLETION_WAIT_NS {
            break;
        }
        if work == 0 {
            // Sleep until the next departure; a receiver that saw traffic in the last
            // millisecond spins (its timestamps are taken when it looks).
            let next_tx = tx
                .as_deref()
                .filter(|t| !t.done)
                .and_then(|t| t.pacer.next_due())
                .map_or(u64::MAX, |d| start + d);
            let rx_hot = rx
                .as_deref()
                .is_some_and(|r| now.saturating_sub(r.last_work) < 1_000_000);
            if rx_hot && next_tx.saturating_sub(now) > 30_000 {
                // Traffic is flowing: look again at once, but let whatever else is
                // runnable on this CPU go first (on a small machine that is often
                // the kernel thread that fills our RX ring).
                std::thread::yield_now();
            } else {
                let max_wait = if rx.is_some() { 20_000 } else { 200_000 };
                wait_until(sh, next_tx, if rx_hot { 0 } else { max_wait }, 30_000);
            }
        }
    }
    // Give back what is still ours and let TX complete.
    if let Some(t) = tx {
        // Built and counted, never given to the kernel (only when it stopped taking them).
        let unsent = t.out.len() as u64;
        for f in t.out.drain(..) {
            xsk.release(f);
        }
        for _ in 0..200 {
            xsk.complete(0, &mut scratch);
            if xsk.ledger().in_tx == 0 {
                break;
            }
            let _ = xsk.kick(0);
            std::thread::sleep(Duration::from_micros(500));
        }
        t.res.uncompleted = unsent + xsk.ledger().in_tx;
        t.res.balanced = xsk.balanced(0);
    }
    if let Some(r) = rx {
        // Interval events cover the run (late arrivals stay in the series).
        let n = interval_cap(cfg.run_ns, start, stopping_at, interval);
        flush_intervals(r, start, interval, sh.now(), Some(n.max(r.reported)));
        r.res.balanced = xsk.balanced(0);
    }
}

/// Runs the flows: opens the ports, starts together, returns when the run
/// and the drain time are over (or `stop` is set: then sending stops and the
/// receiver drains). Interval events arrive on `events` while it runs.
pub fn run(
    cfg: &EngineConfig,
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<IntervalEvent>,
) -> anyhow::Result<Outcome> {
    let n = cfg.flows.len();
    let sh = Arc::new(Shared {
        base: Instant::now(),
        start_ns: AtomicU64::new(0),
        go: AtomicBool::new(false),
        stop,
    });
    let mk_tx = || TxState {
        pacer: Pacer::new(&cfg.flows, cfg.run_ns),
        templates: cfg.templates.clone(),
        res: TxResult {
            flows: (0..n).map(|_| FlowTx::new()).collect(),
            series: Series::new(n, cfg.interval_ns, 0),
            stalls: 0,
            balanced: false,
            received_other: 0,
            uncompleted: 0,
        },
        out: Vec::with_capacity(cfg.batch.max(1)),
        done: false,
    };
    let mk_rx = |events: mpsc::Sender<IntervalEvent>| {
        RxState::new(n, cfg.interval_ns, cfg.interval_histograms, events)
    };
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    std::thread::scope(|s| -> anyhow::Result<Outcome> {
        let mut handles = Vec::new();
        match &cfg.rx {
            None => {
                let (sh, ready) = (sh.clone(), ready_tx.clone());
                let events = events.clone();
                handles.push(
                    s.spawn(move || -> Option<(Option<TxState>, Option<RxState>)> {
                        let mut xsk = match pin(&cfg.cores, 0).and_then(|_| open(&cfg.tx, &cfg.xsk))
                        {
                            Ok(x) => x,
                            Err(e) => {
                                let _ = ready.send(Err(e));
                                return None;
                            }
                        };
                        let _ = ready.send(Ok(()));
                        let (mut t, mut r) = (mk_tx(), mk_rx(events));
                        port_loop(&sh, cfg, &mut xsk.lanes[0], Some(&mut t), Some(&mut r));
                        Some((Some(t), Some(r)))
                    }),
                );
            }
            Some(rxp) => {
                let (sh1, ready1) = (sh.clone(), ready_tx.clone());
                handles.push(s.spawn(move || {
                    let mut xsk = match pin(&cfg.cores, 0).and_then(|_| open(&cfg.tx, &cfg.xsk)) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = ready1.send(Err(e));
                            return None;
                        }
                    };
                    let _ = ready1.send(Ok(()));
                    let mut t = mk_tx();
                    port_loop(&sh1, cfg, &mut xsk.lanes[0], Some(&mut t), None);
                    Some((Some(t), None))
                }));
                let (sh2, ready2) = (sh.clone(), ready_tx.clone());
                let events = events.clone();
                handles.push(s.spawn(move || {
                    let mut xsk = match pin(&cfg.cores, 1).and_then(|_| open(rxp, &cfg.xsk)) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = ready2.send(Err(e));
                            return None;
                        }
                    };
                    let _ = ready2.send(Ok(()));
                    let mut r = mk_rx(events);
                    port_loop(&sh2, cfg, &mut xsk.lanes[0], None, Some(&mut r));
                    Some((None, Some(r)))
                }));
            }
        }
        drop(ready_tx);
        let mut errors = Vec::new();
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("a port thread ended before it was ready".into()),
            }
        }
        if !errors.is_empty() {
            sh.stop.store(true, Ordering::Relaxed);
            sh.start_ns.store(sh.now(), Ordering::Release);
            sh.go.store(true, Ordering::Release);
            for h in handles {
                let _ = h.join();
            }
            anyhow::bail!("{}", errors.join("; "));
        }
        // Both ports are up: start 1 ms from now, together.
        sh.start_ns.store(sh.now() + 1_000_000, Ordering::Release);
        sh.go.store(true, Ordering::Release);
        let mut txr = None;
        let mut rxr = None;
        for h in handles {
            match h.join() {
                Ok(Some((t, r))) => {
                    if let Some(t) = t {
                        txr = Some(t.res);
                    }
                    if let Some(r) = r {
                        rxr = Some(r.res);
                    }
                }
                Ok(None) => anyhow::bail!("a port thread failed"),
                Err(_) => anyhow::bail!("a port thread panicked"),
            }
        }
        let start_ns = sh.start_ns.load(Ordering::Acquire);
        let (Some(tx), Some(rx)) = (txr, rxr) else {
            anyhow::bail!("missing results");
        };
        Ok(Outcome { tx, rx, start_ns })
    })
}
