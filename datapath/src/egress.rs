//! The egress side of a worker: the emulators of the directions whose
//! egress port it owns, and the frames waiting for room in a TX ring.
//!
//! A frame for an egress port arrives here (received by the owning worker,
//! or handed over by another), goes through its direction's emulator if the
//! direction is scheduled (or straight on if not), and leaves for the TX
//! ring when the emulator releases it. Every frame the emulator drops goes
//! back to the lane's free list here, counted.

use crate::capture::{Event, Tap};
use crate::direction::{Desc, Sched};
use crate::stats::Counts;
use sched::classify::FlowKey;
use sched::emu::{Cause, Host, PipeDrop, Takeover, Verdict};
use std::sync::atomic::Ordering;
use xsk::Lane;

/// How often the scheduling worker sweeps its flow tables for idle flows
/// and dynamic-pipe instances (never per packet).
const EXPIRE_EVERY_NS: u64 = 1_000_000;
/// Table slots (and instances) looked at per sweep and flowset: a table of
/// 65 536 flows is swept in a quarter of a second.
const EXPIRE_BUDGET: usize = 256;

/// What the emulator asks of the worker while a packet moves from a
/// chained pipe into the next: its key (read from the frame) and, if it is
/// dropped there, the frame back.
struct LaneHost<'a> {
    lane: &'a mut Lane,
    dropped: u64,
    /// Frames taken from the free list for duplicates.
    copies: u64,
    /// Where drops are recorded when capturing: (tap, lane, port, egress, now).
    tap: Option<(&'a Tap, usize, usize, usize, u64)>,
}

impl Host<Desc> for LaneHost<'_> {
    fn key(&mut self, d: &Desc) -> FlowKey {
        // The frame parsed when it arrived; it has not changed since.
        sched::wire::parse(self.lane.data(d.frame))
            .map_or_else(|_| FlowKey::default(), |h| FlowKey::from_headers(&h))
    }

    fn dropped(&mut self, d: Desc, cause: Cause) {
        if let Some((tap, me, port, e, now)) = self.tap {
            let ev = Event::Dropped {
                reason: reason(&cause),
            };
            tap.record(me, now, port, e, ev, self.lane.data(d.frame));
        }
        self.lane.release(d.frame);
        self.dropped += 1;
    }

    fn duplicate(&mut self, d: &Desc) -> Option<Desc> {
        // A free frame of this lane, or none (the pipe counts it): never waits.
        let frame = self.lane.copy_frame(d.frame)?;
        self.copies += 1;
        Some(Desc { frame, ..*d })
    }

    fn corrupt(&mut self, d: &mut Desc, flip: sched::emu::impair::Flip) {
        // Past the Ethernet header (and VLAN tags): from the IP header on,
        // or byte 14 of a frame that has none.
        let l2 = d.ip().map_or(14, |(l3, _)| l3);
        self.lane.with_data_mut(d.frame, |b| {
            if let Some(o) = flip.offset(b.len(), l2) {
                b[o] ^= 1 << flip.bit;
            }
        });
    }
}

/// Hands the packet log lines `sc`'s trace-driven pipes kept to the
/// writer (once per sweep, not per packet).
fn drain_logs(sc: &mut Sched, logs: &crate::tracelog::TraceLogs) {
    let mut per: Vec<Vec<sched::emu::trace::LogLine>> = vec![Vec::new(); sc.logs.len()];
    let targets = &sc.logs;
    let lost = sc.emu.drain_trace_logs(|pipe, l| {
        if let Some(i) = targets.iter().position(|t| t.pipe == pipe) {
            per[i].push(*l);
        }
    });
    logs.lost.fetch_add(lost, Ordering::Relaxed);
    for (t, lines) in sc.logs.iter().zip(per) {
        if !lines.is_empty() {
            logs.send(t, lines);
        }
    }
}

/// The name of a drop's cause (as in `--stats-json`'s drops).
fn reason(c: &Cause) -> &'static str {
    match c {
        Cause::Malformed(_) => "malformed",
        Cause::FlowsetFull => "flowset_full",
        Cause::PipeFull => "pipe_full",
        Cause::Pipe(PipeDrop::Loss) => "loss",
        Cause::Pipe(PipeDrop::Sched(r)) => r.name(),
    }
}

/// Writes the CE mark queue management gave `d` into its frame, if any
/// (every path by which a frame leaves an emulator to be sent).
#[inline]
fn mark_ce(lane: &mut Lane, c: &mut Counts, d: &Desc) {
    if let Some((l3, v6)) = d.ce_mark() {
        let m = lane.with_data_mut(d.frame, |b| sched::wire::ecn::set_ce(b, l3, v6));
        c.ce_marked += u64::from(m == sched::wire::ecn::Marked::Marked);
    }
}

/// Reflect mode: the frame goes back where it came from.
fn swap_macs(b: &mut [u8]) {
    if b.len() >= 12 {
        let (dst, rest) = b.split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }
}

/// The egress side of a worker.
pub(crate) struct Egress<'a> {
    /// Per egress side: the scheduler of the direction that leaves there.
    pub sched: [Option<Sched>; 2],
    /// Per egress side: frames for the TX ring.
    pub pending: [Vec<u32>; 2],
    /// Directions a reload stopped scheduling (empty): kept for their
    /// figures, which the reports still show.
    pub retired: Vec<Sched>,
    reflect: bool,
    /// Per egress side: complete partial checksums of the frames for it
    /// (received on a port `--checksum` says to fix).
    fix_checksums: [bool; 2],
    /// When the flow tables were last swept for idle flows.
    last_expire: u64,
    /// The capture tap (records when it is on), and this worker's lane.
    tap: &'a Tap,
    me: usize,
    /// Where the trace-driven pipes' packet logs go.
    logs: &'a crate::tracelog::TraceLogs,
}

impl<'a> Egress<'a> {
    pub fn new(
        sched: [Option<Sched>; 2],
        reflect: bool,
        fix_checksums: [bool; 2],
        batch: usize,
        tap: &'a Tap,
        logs: &'a crate::tracelog::TraceLogs,
        me: usize,
    ) -> Self {
        Egress {
            sched,
            pending: [Vec::with_capacity(batch * 4), Vec::with_capacity(batch * 4)],
            retired: Vec::new(),
            reflect,
            fix_checksums,
            last_expire: 0,
            tap,
            me,
            logs,
        }
    }

    /// The port frames for egress `e` leave by, and the one they came in by.
    #[inline]
    fn ports(&self, e: usize) -> (usize, usize) {
        if self.reflect {
            (0, 0)
        } else {
            (e, 1 - e)
        }
    }

    /// A frame arriving for egress `e` (received here or handed over): through
    /// that direction's emulator if it is scheduled, else straight on.
    #[inline]
    pub fn arrive(&mut self, lane: &mut Lane, c: &mut Counts, e: usize, now: u64, f: u32) {
        if self.fix_checksums[e] {
            let done = lane.with_data_mut(f, |b| match sched::wire::parse(b) {
                Ok(h) => sched::wire::offload::complete(b, &h),
                Err(_) => sched::wire::offload::Completion::NotApplicable,
            });
            c.checksums_completed += u64::from(done == sched::wire::offload::Completion::Completed);
        }
        let capturing = self.tap.on.load(Ordering::Relaxed);
        let (out_port, in_port) = self.ports(e);
        let Some(sc) = self.sched[e].as_mut() else {
            if capturing {
                self.tap
                    .record(self.me, now, out_port, e, Event::Passed, lane.data(f));
            }
            self.pending[e].push(f);
            return;
        };
        let mut d = Desc::new(f, lane.frame_len(f), now);
        let verdict = match sc.emu.classify_frame(lane.data(f), &mut d) {
            Err(e) => Verdict::Dropped(d, Cause::Malformed(e)),
            Ok(cl) => {
                if let (Some(dscp), Some((l3, v6))) = (cl.set_dscp, d.ip()) {
                    let changed =
                        lane.with_data_mut(f, |b| sched::wire::dscp::set(b, l3, v6, dscp));
                    c.dscp_rewritten += u64::from(changed);
                }
                let mut host = LaneHost {
                    lane,
                    dropped: 0,
                    copies: 0,
                    tap: capturing.then_some((self.tap, self.me, in_port, e, now)),
                };
                let v = sc.emu.enqueue_classified(now, &cl, d, &mut host);
                // Copies queued (or dropped, and given back) with it.
                sc.queued += host.copies as usize;
                sc.queued -= host.dropped as usize;
                c.dropped += host.dropped;
                c.duplicated += host.copies;
                v
            }
        };
        match verdict {
            Verdict::Queued { .. } => sc.queued += 1,
            Verdict::QueuedPushedOut { victim, .. } => {
                if capturing {
                    let ev = Event::Dropped {
                        reason: "pushed_out",
                    };
                    self.tap
                        .record(self.me, now, in_port, e, ev, lane.data(victim.frame));
                }
                lane.release(victim.frame);
                c.dropped += 1;
            }
            Verdict::Pass(p) => {
                c.passed += 1;
                if capturing {
                    self.tap
                        .record(self.me, now, out_port, e, Event::Passed, lane.data(p.frame));
                }
                if self.reflect {
                    lane.with_data_mut(p.frame, swap_macs);
                }
                self.pending[e].push(p.frame);
            }
            Verdict::Dropped(p, cause) => {
                c.dropped += 1;
                if capturing {
                    let ev = Event::Dropped {
                        reason: reason(&cause),
                    };
                    self.tap
                        .record(self.me, now, in_port, e, ev, lane.data(p.frame));
                }
                lane.release(p.frame);
            }
        }
    }

    /// Moves due packets from the emulators to the pending lists, keeping at
    /// most `batch` in each (with the TX budget of the worker, the TX ring
    /// stays shallow and the backlog stays in the scheduler). Every
    /// `EXPIRE_EVERY_NS`, sweeps the flow tables for idle flows.
    pub fn dequeue(&mut self, lane: &mut Lane, c: &mut Counts, now: u64, batch: usize) {
        let expire = now >= self.last_expire + EXPIRE_EVERY_NS;
        if expire {
            self.last_expire = now;
        }
        let capturing = self.tap.on.load(Ordering::Relaxed);
        for (e, (sc, out)) in self
            .sched
            .iter_mut()
            .zip(self.pending.iter_mut())
            .enumerate()
        {
            let Some(sc) = sc.as_mut() else {
                continue;
            };
            if expire {
                sc.emu.expire(now, EXPIRE_BUDGET);
                if !sc.logs.is_empty() {
                    drain_logs(sc, self.logs);
                }
            }
            let (out_port, in_port) = if self.reflect { (0, 0) } else { (e, 1 - e) };
            while out.len() < batch {
                let mut host = LaneHost {
                    lane,
                    dropped: 0,
                    copies: 0,
                    tap: capturing.then_some((self.tap, self.me, in_port, e, now)),
                };
                let got = sc.emu.dequeue(now, &mut host);
                // Duplicates made along a chain join the emulator.
                sc.queued += host.copies as usize;
                sc.queued -= host.dropped as usize;
                c.dropped += host.dropped;
                c.duplicated += host.copies;
                let Some((pipe, flow, d)) = got else {
                    break;
                };
                sc.queued -= 1;
                mark_ce(lane, c, &d);
                if capturing {
                    let ev = Event::Sent {
                        pipe: pipe as u16,
                        flow: flow.0,
                        delay_ns: now.saturating_sub(d.arrived),
                    };
                    self.tap
                        .record(self.me, now, out_port, e, ev, lane.data(d.frame));
                }
                if self.reflect {
                    lane.with_data_mut(d.frame, swap_macs);
                }
                out.push(d.frame);
            }
        }
    }

    /// A reload: egress `e`'s direction gets `new` (None: no longer
    /// scheduled). The new emulator takes over the old one's packets (see
    /// `sched::emu::Emulator::take_over`); those that leave at once go to
    /// the pending list, those the new limits drop back to the lane,
    /// counted. Without a new emulator every packet leaves at once,
    /// unscheduled. Returns what happened, for the caller.
    pub fn replace(
        &mut self,
        lane: &mut Lane,
        c: &mut Counts,
        e: usize,
        new: Option<Sched>,
        now: u64,
    ) -> Takeover {
        let pending = &mut self.pending[e];
        let first = pending.len();
        let mut t = Takeover::default();
        let old = self.sched[e].take();
        match (old, new) {
            (Some(old), Some(mut new)) => {
                // Schedules, traces and slots start from the reload.
                new.emu.set_epoch(now);
                let mut host = LaneHost {
                    lane,
                    dropped: 0,
                    copies: 0,
                    tap: None,
                };
                // Released at once (a reload time, not per packet: a Vec
                // is fine), then marked and sent.
                let mut out = Vec::new();
                t = new
                    .emu
                    .take_over(old.emu, now, &mut host, &mut |d| out.push(d));
                let dropped = host.dropped;
                c.dropped += dropped;
                for d in &out {
                    mark_ce(lane, c, d);
                    pending.push(d.frame);
                }
                new.queued = old.queued - (t.released + dropped) as usize;
                self.sched[e] = Some(new);
            }
            (Some(mut old), None) => {
                let mut out = Vec::new();
                old.emu.drain(|d| out.push(d));
                for d in &out {
                    mark_ce(lane, c, d);
                    pending.push(d.frame);
                }
                t.released = (pending.len() - first) as u64;
                old.queued = 0;
                self.retired.push(old);
            }
            (None, mut new) => {
                if let Some(n) = &mut new {
                    n.emu.set_epoch(now);
                }
                self.sched[e] = new
            }
        }
        if self.reflect {
            for &f in &pending[first..] {
                lane.with_data_mut(f, swap_macs);
            }
        }
        t
    }

    /// When an emulator next wants to be called.
    pub fn next_wakeup(&self) -> Option<u64> {
        self.sched
            .iter()
            .flatten()
            .filter_map(|sc| sc.emu.next_wakeup())
            .min()
    }

    /// Frames in the emulators.
    pub fn queued(&self) -> usize {
        self.sched.iter().flatten().map(|sc| sc.queued).sum()
    }

    /// Whether frames wait for a TX ring.
    pub fn tx_waiting(&self) -> bool {
        self.pending.iter().any(|p| !p.is_empty())
    }

    /// At exit: every frame in the emulators and the pending lists back to
    /// `lane` (emulator frames counted as `exit_drained`). Not along chains:
    /// nothing is offered to another pipe and counted there.
    pub fn drain(&mut self, lane: &mut Lane, c: &mut Counts) {
        for sc in self.sched.iter_mut().flatten() {
            sc.emu.drain(|d| {
                lane.release(d.frame);
                c.exit_drained += 1;
                sc.queued -= 1;
            });
            debug_assert_eq!(sc.queued, 0);
        }
        for p in self.pending.iter_mut() {
            for f in p.drain(..) {
                lane.release(f);
            }
        }
    }
}
