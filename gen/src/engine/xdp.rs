//! The AF_XDP engine: a sending thread on one port and a receiving thread on
//! another (each in its own network namespace if asked), or one thread doing
//! both on a single port (reflect mode). One process, one clock: every time
//! is nanoseconds on a shared [`xsk::Clock`], so one-way latency is exact up
//! to the loop's own overhead (reported by a direct loop measurement).
//!
//! Frames never leak: the UMEM ledger of each side must balance at the end
//! (`balanced` in the results), as in xdpsched.

use super::{
    await_ready, interval_cap, pin, wait_until, EngineConfig, FlowTx, IntervalEvent, Outcome,
    PortSpec, RxState, Shared, TxResult,
};
use crate::measure::series::Series;
use crate::packet::frame::{read_stamp, Template};
use crate::packet::stamp::Stamp;
use crate::traffic::pace::Pacer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use xsk::netns;
use xsk::FrameDesc;
use xsk::{Lane, Xsk, XskParams};

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

struct TxState {
    pacer: Pacer,
    templates: Vec<Template>,
    res: TxResult,
    out: Vec<u32>,
    done: bool,
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
    let start = sh.wait_go();
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
            if xsk.kick(0).took {
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
                                // The DSCP it arrived with (remarking on the way shows).
                                if data.get(12..14) == Some(&[0x08, 0x00]) {
                                    if let Some(&tos) = data.get(15) {
                                        r.res.flows[s.flow as usize].dscp_seen |= 1 << (tos >> 2);
                                    }
                                }
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
            r.flush(start, interval, now, Some(elapsed.min(cap)));
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
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
        t.res.uncompleted = unsent + xsk.ledger().in_tx;
        t.res.balanced = xsk.balanced(0);
    }
    if let Some(r) = rx {
        // Interval events cover the run (late arrivals stay in the series).
        let n = interval_cap(cfg.run_ns, start, stopping_at, interval);
        r.flush(start, interval, sh.now(), Some(n.max(r.reported)));
        r.res.balanced = xsk.balanced(0);
        if let Some(Ok(k)) = xsk.socket_stats(0) {
            r.res.lost_at_receiver = k.lost_before_rx();
        }
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
    let sh = Arc::new(Shared::new(stop));
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
        if let Err(e) = await_ready(&ready_rx, handles.len(), "a port thread") {
            sh.stop.store(true, Ordering::Relaxed);
            sh.go_at(sh.now());
            for h in handles {
                let _ = h.join();
            }
            anyhow::bail!("{e}");
        }
        // Both ports are up: start 1 ms from now, together.
        sh.go_at(sh.now() + 1_000_000);
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
        let start_ns = sh.start_ns();
        let (Some(tx), Some(rx)) = (txr, rxr) else {
            anyhow::bail!("missing results");
        };
        Ok(Outcome { tx, rx, start_ns })
    })
}
