//! The two engines that send and receive the flows — [`xdp`] (AF_XDP, the
//! default) and [`socket`] (kernel UDP sockets) — and what they share: the
//! configuration they take, the results they return, the receiving side's
//! accounting, the start protocol and the clock.
//!
//! Both engines run a sending and a receiving thread (or one thread doing
//! both, reflecting) on one clock, so one-way latency needs no clock
//! synchronisation; they start together, 1 ms after both ports are up.

pub mod socket;
pub mod xdp;

use crate::measure::series::Series;
use crate::measure::track::{FlowRx, LATENCY_MAX_NS, LATENCY_MIN_NS};
use crate::packet::frame::Template;
use crate::packet::stamp::Stamp;
use crate::traffic::spec::Flow;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use xsk::{Clock, XskParams};

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
    /// Empty statistics.
    pub(crate) fn new() -> FlowTx {
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
    /// Frames that reached the receiving port and never our RX ring (the
    /// kernel's counters of the AF_XDP socket; 0 in socket mode): counted
    /// as lost, but lost at the receiver, not on the path.
    pub lost_at_receiver: u64,
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

/// The clock and run control the threads of an engine share.
#[derive(Debug)]
pub(crate) struct Shared {
    clock: Clock,
    start_ns: AtomicU64,
    go: AtomicBool,
    /// Set by the user (Ctrl-C): sending stops, the receiver drains.
    pub stop: Arc<AtomicBool>,
    /// A thread failed: everyone ends now.
    pub abort: AtomicBool,
}

impl Shared {
    pub fn new(stop: Arc<AtomicBool>) -> Shared {
        Shared {
            clock: Clock::start(),
            start_ns: AtomicU64::new(0),
            go: AtomicBool::new(false),
            stop,
            abort: AtomicBool::new(false),
        }
    }

    /// Nanoseconds on the shared clock.
    #[inline]
    pub fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Whether a thread failed.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Releases the threads waiting in [`Shared::wait_go`], to start at
    /// `start_ns`.
    pub fn go_at(&self, start_ns: u64) {
        self.start_ns.store(start_ns, Ordering::Release);
        self.go.store(true, Ordering::Release);
    }

    /// Waits for [`Shared::go_at`]; returns the start.
    pub fn wait_go(&self) -> u64 {
        while !self.go.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        self.start_ns.load(Ordering::Acquire)
    }

    /// The start given to [`Shared::go_at`].
    pub fn start_ns(&self) -> u64 {
        self.start_ns.load(Ordering::Acquire)
    }
}

/// Waits until each of an engine's `n` threads (`what`: "a port thread")
/// has said whether its port is up; the errors of those that failed, joined.
pub(crate) fn await_ready(
    ready: &mpsc::Receiver<Result<(), String>>,
    n: usize,
    what: &str,
) -> Result<(), String> {
    let mut errors = Vec::new();
    for _ in 0..n {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push(format!("{what} ended before it was ready")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Pins the calling thread (thread `i` of an engine) to `cores[i]` (or the
/// first core listed; none: not pinned) and makes its timers precise.
pub(crate) fn pin(cores: &[usize], i: usize) -> Result<(), String> {
    if let Some(&c) = cores.get(i).or(cores.first()) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
            return Err(format!("could not pin thread {i} to core {c}"));
        }
    }
    // Sleep precisely: timers fire on time, not up to 50 µs later.
    let _ = nix::sys::prctl::set_timerslack(1);
    Ok(())
}

/// Sleeps or spins until `until` (ns on the shared clock): sleeps when more
/// than `spin_ns` away, spins for the rest.
pub(crate) fn wait_until(sh: &Shared, until: u64, max_wait: u64, spin_ns: u64) {
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
                lost_at_receiver: 0,
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
