//! One worker thread: receives on its lane's sockets, schedules and
//! transmits for the egress ports it owns, hands frames for other egress
//! ports to their owner and returns other lanes' frames home.
//!
//! [`Worker::run`] is the loop; each step is a method: [`Worker::rx`],
//! [`Worker::inbox`], [`Worker::tx`], [`Worker::home`], [`Worker::idle`],
//! and [`Worker::drain`] at exit. The clock is read once per iteration and
//! again after a non-empty RX batch, and fed to the emulators as `now_ns`.

use crate::config::RunConfig;
use crate::direction::Sched;
use crate::egress::Egress;
use crate::idle::{ArrivalRate, SpinMargin};
use crate::plan::Plan;
use crate::stats::{
    flow_reports, flowset_reports, pipe_reports, print_line, Counts, FlowReport, LaneShow,
};
use crate::wake::Wake;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xsk::{Clock, FrameDesc, Handoff, Homeward, Lane, SocketStats};

/// What a probing sleep leaves before the departure (see `Worker::idle`).
const MIN_PROBE_NS: u64 = 4_000;
/// Longest idle sleep while frames wait for TX room or completion.
const SHORT_IDLE_NS: u64 = 100_000;
/// Longest idle sleep otherwise (ppoll wakes the lane on arrivals; this
/// bounds how late it sees the stop flag).
const LONG_IDLE_NS: u64 = 20_000_000;
/// How often, with `--stats-interval`, a worker reads the kernel's counters
/// of its sockets.
const KERNEL_EVERY_NS: u64 = 100_000_000;
/// `SO_BUSY_POLL` with `--busy-poll`: how long one poll may spin in the
/// kernel waiting for packets (xdpsock's and the kernel documentation's 20).
const BUSY_POLL_US: u32 = 20;

/// What the workers share: hand-off queues, wake-ups and live counters.
pub(crate) struct Shared {
    pub plan: Plan,
    /// The trace-driven pipes' packet logs (their writer).
    pub trace_logs: crate::tracelog::TraceLogs,
    /// Asked to stop (a signal, the duration, a worker that failed): the
    /// thread that started the workers takes the sockets out of the XDP
    /// programs, lets the workers read what the RX rings hold, then halts
    /// them.
    pub stop: Arc<AtomicBool>,
    /// The workers leave their loops and drain.
    pub halt: AtomicBool,
    /// Per egress side: frames received by a lane that does not own it.
    pub inbox: [ArrayQueue<Handoff<FrameDesc>>; 2],
    /// Per lane: its frames coming back from other lanes.
    pub back: Vec<ArrayQueue<Homeward>>,
    /// Per lane: how another lane wakes it after pushing into its inbox or
    /// return queue.
    pub wake: Vec<Wake>,
    /// Per lane: rx A, rx B, tx A, tx B, dropped, passed (for the stats line).
    pub live: Vec<[AtomicU64; 6]>,
    /// Per lane: the kernel's counters of the sockets it receives on
    /// (`xsk::SocketStats::to_array`), for the stats line.
    pub kernel: Vec<[AtomicU64; 6]>,
    /// The XDP programs' counters (to the sockets, failed open), summed over
    /// the ports; kept by the thread that started the workers.
    pub program: [AtomicU64; 2],
    /// `xdpsched show`: the latest request (a count) ...
    pub show_req: AtomicU64,
    /// ... and per lane its figures, built by the worker when it sees a new
    /// request (it only ever try-locks: the packet path never waits).
    pub show: Vec<Mutex<LaneShow>>,
    /// A reload: the latest request (a count) ...
    pub reload_req: AtomicU64,
    /// ... and per lane the new directions for the egress ports it owns,
    /// taken by the worker when it sees the request (try-lock only).
    pub reload: Vec<Mutex<ReloadSlot>>,
    /// Capture: the workers' rings and the capture thread's job.
    pub tap: crate::capture::Tap,
}

/// A reload handed to one worker, and its answer.
#[derive(Default)]
pub(crate) struct ReloadSlot {
    /// The request these are for.
    pub gen: u64,
    /// Per egress side: `Some(new)` replaces that side's direction (`new`
    /// None: no longer scheduled).
    pub new: [Option<Option<Sched>>; 2],
    /// The last request the worker carried out ...
    pub done: u64,
    /// ... and what it did, per egress side it replaced.
    pub report: Vec<(usize, sched::emu::Takeover)>,
}

impl Shared {
    /// Room for every frame of the UMEM (`total`) in every queue: a push
    /// cannot fail.
    pub fn new(
        plan: Plan,
        stop: Arc<AtomicBool>,
        total: usize,
        trace_logs: crate::tracelog::TraceLogs,
    ) -> anyhow::Result<Self> {
        Ok(Shared {
            trace_logs,
            plan,
            stop,
            halt: AtomicBool::new(false),
            inbox: [ArrayQueue::new(total), ArrayQueue::new(total)],
            back: (0..plan.lanes).map(|_| ArrayQueue::new(total)).collect(),
            wake: (0..plan.lanes)
                .map(|_| Wake::new())
                .collect::<anyhow::Result<_>>()?,
            live: (0..plan.lanes).map(|_| Default::default()).collect(),
            kernel: (0..plan.lanes).map(|_| Default::default()).collect(),
            program: Default::default(),
            show_req: AtomicU64::new(0),
            show: (0..plan.lanes).map(|_| Mutex::default()).collect(),
            reload_req: AtomicU64::new(0),
            reload: (0..plan.lanes).map(|_| Mutex::default()).collect(),
            tap: crate::capture::Tap::new(plan.lanes),
        })
    }
}

/// One worker's result.
pub(crate) struct LaneOut {
    pub lane: Lane,
    pub counts: Counts,
    /// The directions this worker scheduled, with their per-flow figures
    /// taken before the drain (backlogs included).
    pub scheds: Vec<(Sched, Vec<FlowReport>)>,
}

/// One worker thread's state.
pub(crate) struct Worker<'a> {
    cfg: &'a RunConfig,
    sh: &'a Shared,
    lane: Lane,
    eg: Egress<'a>,
    out: Counts,
    clock: Clock,
    /// This lane's id.
    me: usize,
    /// Per egress side this lane owns: the local port it transmits on.
    tx_port: [Option<usize>; 2],
    /// The egress sides this lane owns.
    owned: Vec<usize>,
    /// The local ports it receives on.
    receiving: Vec<usize>,
    /// Lanes this iteration sent frames home to (to wake them once).
    homeward: Vec<bool>,
    batch: usize,
    scratch: Vec<FrameDesc>,
    scratch_v: Vec<FrameDesc>,
    rx: Vec<u32>,
    /// When the stats line was last printed.
    last_stats: u64,
    /// When the kernel's socket counters were last read.
    last_kernel: u64,
    /// How long before a departure to stop sleeping (learned).
    margin: SpinMargin,
    /// The departure waited for last, and the one before it (their
    /// difference is the gap whose precision the margin is for).
    due_cur: u64,
    due_prev: u64,
    /// How fast frames arrive (bounds how long they may wait unread).
    arrivals: ArrivalRate,
    /// The last `show` request this worker answered.
    show_served: u64,
    /// The last reload request this worker looked at.
    reload_served: u64,
}

impl<'a> Worker<'a> {
    /// A worker for `lane`, scheduling the directions in `scheds` (by egress
    /// side; those whose egress the lane owns). Pins the thread to `core` and
    /// sets up busy polling if asked.
    pub fn new(
        cfg: &'a RunConfig,
        sh: &'a Shared,
        mut lane: Lane,
        scheds: [Option<Sched>; 2],
        core: Option<usize>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        if let Some(core) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                anyhow::bail!("could not pin worker {} to core {core}", lane.id);
            }
        }
        // Timers fire when asked, not up to 50 µs (the default slack) later.
        let _ = nix::sys::prctl::set_timerslack(1);
        if cfg.busy_poll {
            lane.enable_busy_poll(BUSY_POLL_US, cfg.batch.max(1) as u32)
                .map_err(|e| anyhow::anyhow!("--busy-poll: setting SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on the AF_XDP sockets: {e}"))?;
        }
        let me = lane.id;
        let sides = if sh.plan.bridge { 2 } else { 1 };
        let mut tx_port: [Option<usize>; 2] = [None; 2];
        for (i, p) in lane.ports.iter().enumerate() {
            if p.transmits() {
                tx_port[p.side] = Some(i);
            }
        }
        let owned = (0..sides).filter(|&e| tx_port[e].is_some()).collect();
        // Other lanes wake this one when they push frames for it.
        lane.watch(sh.wake[me].fd());
        let receiving = (0..lane.ports.len())
            .filter(|&i| lane.ports[i].receives())
            .collect();
        let batch = cfg.batch.max(1);
        let out = Counts {
            rx_ports: lane.ports.iter().map(|p| (p.side, p.queue, 0)).collect(),
            ..Counts::default()
        };
        Ok(Worker {
            cfg,
            sh,
            // Egress e's frames were received on the other port (the same
            // one when reflecting).
            eg: Egress::new(
                scheds,
                !sh.plan.bridge,
                if sh.plan.bridge {
                    [cfg.complete_checksums[1], cfg.complete_checksums[0]]
                } else {
                    [cfg.complete_checksums[0], false]
                },
                batch,
                &sh.tap,
                &sh.trace_logs,
                lane.id,
            ),
            out,
            clock,
            me,
            tx_port,
            owned,
            receiving,
            homeward: vec![false; sh.back.len()],
            batch,
            scratch: vec![FrameDesc::default(); batch],
            scratch_v: Vec::with_capacity(batch * 4),
            rx: Vec::with_capacity(batch),
            last_stats: 0,
            last_kernel: 0,
            margin: SpinMargin::new(),
            due_cur: 0,
            due_prev: 0,
            arrivals: ArrivalRate::new(),
            show_served: 0,
            reload_served: 0,
            lane,
        })
    }

    /// The loop: until stopped (or the configured duration passes).
    pub fn run(mut self) -> LaneOut {
        while !self.sh.halt.load(Ordering::Relaxed) {
            let mut now = self.clock.now_ns();
            if self.cfg.busy_poll {
                self.lane.busy_poll();
            }
            let mut work = self.rx(&mut now);
            work += self.inbox(&mut now);
            self.eg
                .dequeue(&mut self.lane, &mut self.out, now, self.batch);
            work += self.tx();
            self.home();
            if work > 0 {
                self.publish();
            }
            self.kernel_counters(now, false);
            self.serve_show(now);
            self.serve_reload();
            self.print_stats(now);
            if work == 0 && !self.cfg.busy_poll {
                self.idle();
            }
        }
        self.drain()
    }

    /// Receives a batch on each RX socket: frames for an egress port this
    /// lane owns go into its emulator, others to the owner's inbox. Returns
    /// the frames received; `now` moves to after the last batch was taken.
    fn rx(&mut self, now: &mut u64) -> usize {
        let plan = self.sh.plan;
        let mut work = 0;
        for &p in &self.receiving {
            self.rx.clear();
            let n = self.lane.receive(p, &mut self.scratch, &mut self.rx);
            if n == 0 {
                continue;
            }
            let side = self.lane.ports[p].side;
            self.arrivals.add(*now, n);
            self.out.rx[side] += n as u64;
            self.out.rx_ports[p].2 += n as u64;
            work += n;
            let e = plan.egress(side);
            if self.tx_port[e].is_none() {
                for &f in &self.rx {
                    // Room for every frame of the UMEM: a push cannot fail.
                    let _ = self.sh.inbox[e].push(self.lane.hand_over(f));
                }
                self.sh.wake[plan.owner(e)].nudge();
                continue;
            }
            // Arrival time: read after the frames were taken, never before (a
            // thread preempted between a clock read and the RX ring would
            // otherwise date frames too early and shorten a pipe's delay).
            *now = (*now).max(self.clock.now_ns());
            for &f in &self.rx {
                self.eg.arrive(&mut self.lane, &mut self.out, e, *now, f);
            }
        }
        work
    }

    /// Frames other lanes received for the egress ports this lane owns, dated
    /// now (not at the loop's start: they may have arrived since), up to four
    /// batches. Returns how many.
    fn inbox(&mut self, now: &mut u64) -> usize {
        let mut work = 0;
        for &e in &self.owned {
            let inbox = &self.sh.inbox[e];
            if inbox.is_empty() {
                continue;
            }
            *now = (*now).max(self.clock.now_ns());
            for _ in 0..self.batch * 4 {
                let Some(d) = inbox.pop() else { break };
                let f = self.lane.adopt(d);
                work += 1;
                self.eg.arrive(&mut self.lane, &mut self.out, e, *now, f);
            }
        }
        work
    }

    /// Scheduled output into the TX rings, keeping them shallow (queueing
    /// happens in the scheduler, where it can be fair, not in the ring),
    /// kicks and completions. Returns the work done (frames sent, kicks the
    /// kernel needed).
    fn tx(&mut self) -> usize {
        let mut work = 0;
        for &e in &self.owned {
            let Some(p) = self.tx_port[e] else { continue };
            // The TX budget (like BQL): at most two batches with the kernel, so
            // that a device that falls behind leaves the backlog in the scheduler.
            let room = (2 * self.batch).saturating_sub(self.lane.ports[p].in_flight as usize);
            let pending = &mut self.eg.pending[e];
            let take = pending.len().min(room);
            if take > 0 {
                let sent = self.lane.transmit(p, &pending[..take], &mut self.scratch_v);
                self.out.in_flight_max = self.out.in_flight_max.max(self.lane.ports[p].in_flight);
                pending.drain(..sent);
                self.out.tx[e] += sent as u64;
                work += sent;
            }
            let t0 = self.clock.now_ns();
            let kick = self.lane.kick(p);
            if kick.calls > 0 {
                self.out.kicks += u64::from(kick.calls);
                self.out.kick_ns += self.clock.now_ns().saturating_sub(t0);
            }
            if kick.took {
                // The kernel needs kicks to make progress: not idle.
                work += 1;
            }
            self.lane.complete(p, &mut self.scratch);
        }
        work
    }

    /// Other lanes' frames go home (waking each of those lanes once); ours
    /// come back; the fill rings are topped up.
    fn home(&mut self) {
        let (sh, homeward) = (self.sh, &mut self.homeward);
        self.lane.send_away(|o, f| {
            // Room for every frame of the UMEM: a push cannot fail.
            let _ = sh.back[o].push(f);
            homeward[o] = true;
        });
        for (o, sent) in self.homeward.iter_mut().enumerate() {
            if std::mem::take(sent) {
                sh.wake[o].nudge();
            }
        }
        while let Some(t) = sh.back[self.me].pop() {
            self.lane.take_back(t);
        }
        for &p in &self.receiving {
            self.lane.refill(p, self.batch, &mut self.scratch_v);
        }
    }

    /// The live counters for the stats line.
    fn publish(&self) {
        let c = &self.out;
        for (a, v) in self.sh.live[self.me]
            .iter()
            .zip([c.rx[0], c.rx[1], c.tx[0], c.tx[1], c.dropped, c.passed])
        {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// With `--stats-interval`, every `KERNEL_EVERY_NS`: the kernel's counters
    /// of this lane's sockets, for the stats line (a getsockopt per socket).
    fn kernel_counters(&mut self, now: u64, now_anyway: bool) {
        if !now_anyway
            && (self.cfg.stats_interval.is_none() || now - self.last_kernel < KERNEL_EVERY_NS)
        {
            return;
        }
        self.last_kernel = now;
        let mut sum = SocketStats::default();
        for p in 0..self.lane.ports.len() {
            if let Some(Ok(s)) = self.lane.socket_stats(p) {
                sum += s;
            }
        }
        for (a, v) in self.sh.kernel[self.me].iter().zip(sum.to_array()) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// `xdpsched show` asked (a new request count): this lane's figures —
    /// its counters, its sockets' kernel counters, its pipes, flowsets and
    /// top flows — built here, once per request, and left in its slot. Only
    /// ever try-locks the slot: if the reader holds it, the next iteration
    /// tries again.
    fn serve_show(&mut self, now: u64) {
        let want = self.sh.show_req.load(Ordering::Relaxed);
        if want == self.show_served {
            return;
        }
        let Ok(mut slot) = self.sh.show[self.me].try_lock() else {
            return;
        };
        self.publish();
        self.kernel_counters(now, true);
        slot.pipes.clear();
        slot.flowsets.clear();
        slot.flows.clear();
        slot.workers.clear();
        let cpu_s = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9);
        let l = self.lane.ledger();
        slot.workers.push(crate::stats::WorkerShow {
            worker: self.me,
            cpu_s,
            sleeps: self.out.sleeps,
            checksums_completed: self.out.checksums_completed,
            tx_kicks: self.out.kicks,
            frames: self.lane.total_frames() as u64,
            frames_free: self.lane.free_frames() as u64,
            frames_in_fill: l.in_fill,
            frames_in_tx: l.in_tx,
            frames_queued: self.eg.queued() as u64,
        });
        for sc in self.eg.sched.iter().flatten().chain(&self.eg.retired) {
            slot.pipes.extend(pipe_reports(sc));
            slot.flowsets.extend(flowset_reports(sc));
            slot.flows.extend(flow_reports(sc));
        }
        let at = self.clock.now_ns();
        for f in &mut slot.flows {
            f.at_ns = at;
        }
        slot.gen = want;
        self.show_served = want;
    }

    /// A reload (a new request count): the new directions for the egress
    /// ports this lane owns take over the running ones, between two packets.
    /// Only ever try-locks the slot.
    fn serve_reload(&mut self) {
        let want = self.sh.reload_req.load(Ordering::Acquire);
        if want == self.reload_served {
            return;
        }
        let Ok(mut slot) = self.sh.reload[self.me].try_lock() else {
            return;
        };
        self.reload_served = want;
        if slot.gen != want {
            // Not for this lane, or withdrawn.
            return;
        }
        // Fresh: the new emulators start from the instant they take over.
        let now = self.clock.now_ns();
        let new = std::mem::take(&mut slot.new);
        slot.report.clear();
        for (e, n) in new.into_iter().enumerate() {
            if let Some(n) = n {
                let t = self.eg.replace(&mut self.lane, &mut self.out, e, n, now);
                slot.report.push((e, t));
            }
        }
        slot.done = want;
        drop(slot);
        self.publish();
    }

    /// Every lane with a scheduler prints its pipes each `--stats-interval`;
    /// the one with A→B's also the counters of all lanes.
    fn print_stats(&mut self, now: u64) {
        let Some(iv) = self.cfg.stats_interval else {
            return;
        };
        if self.eg.sched.iter().any(Option::is_some)
            && now - self.last_stats >= iv.as_nanos() as u64
        {
            self.last_stats = now;
            print_line(
                &self.sh.live,
                &self.sh.kernel,
                &self.sh.program,
                self.eg.sched.iter().flatten(),
                self.eg.queued(),
            );
        }
    }

    /// Nothing to do: sleep in ppoll on the RX sockets (an arrival wakes the
    /// lane at once) and on its eventfd (another lane handing it frames or
    /// sending its frames home wakes it) until shortly before the next
    /// scheduled departure, then spin: a departure leaves within the loop
    /// time of its due time, not a timer's overshoot later. How shortly is
    /// learned from this lane's own sleeps ([`SpinMargin`]). While every link
    /// this lane receives for is busy with packets waiting, arrivals cannot
    /// change what leaves next: the lane then sleeps through them (they wait
    /// in the RX rings, at most a quarter ring's worth) and wakes once per
    /// departure, not once per arrival. Sleeps are short while frames wait
    /// for TX room or completion (nothing wakes ppoll for those); otherwise
    /// an idle lane costs nothing.
    fn idle(&mut self) {
        // Fresh: the loop's work (a TX kick runs the receiver's stack on veth)
        // may have taken a while since the iteration read the clock.
        let now = self.clock.now_ns();
        let tx_busy = self.lane.ledger().in_tx > 0 || self.eg.tx_waiting();
        let cap = if tx_busy { SHORT_IDLE_NS } else { LONG_IDLE_NS };
        let due = self.eg.next_wakeup().map(|t| t.saturating_sub(now));
        let wait = due.map_or(cap, |d| d.min(cap));
        // Only sleeps that end before a departure teach the margin (a long
        // idle sleep overshoots more, and nothing waits for it).
        let teaches = due.is_some_and(|d| d <= cap);
        if let Some(d) = due {
            if now + d != self.due_cur {
                self.due_prev = self.due_cur;
                self.due_cur = now + d;
            }
        }
        let gap = self.due_cur.saturating_sub(self.due_prev);
        let margin = self.margin.for_gap(gap, self.cfg.pacing_tolerance);
        let sleep = if wait > margin {
            wait - margin
        } else if teaches && wait > 2 * MIN_PROBE_NS && self.margin.spun(now + wait) {
            // Spinning through every departure teaches nothing: now and then
            // sleep through most of a wait anyway, so that a margin learned
            // in a bad moment comes down again.
            wait - MIN_PROBE_NS
        } else {
            std::hint::spin_loop();
            return;
        };
        let defer = self
            .rx_can_wait_until(now)
            .min(now + self.arrivals.max_defer(self.lane.ring_size()));
        let rx = defer < now + sleep;
        self.out.sleeps += 1;
        let (sh, me, owned, lane) = (self.sh, self.me, &self.owned, &mut self.lane);
        let mut woken = false;
        sh.wake[me].sleep(
            || owned.iter().any(|&e| !sh.inbox[e].is_empty()) || !sh.back[me].is_empty(),
            || {
                let t = Duration::from_nanos(sleep);
                woken = if rx {
                    lane.wait_rx(t)
                } else {
                    lane.wait_watched(t)
                };
                woken
            },
        );
        let slept = self.clock.now_ns() - now;
        if teaches && !woken && slept >= sleep {
            self.margin.record(sleep, slept);
        }
    }

    /// Until when arrivals on this lane's RX sockets may wait unread: the
    /// soonest instant any of them could matter to the egress it is for
    /// (`now` for traffic handed to another lane or forwarded unscheduled).
    fn rx_can_wait_until(&self, now: u64) -> u64 {
        let plan = self.sh.plan;
        let mut until = u64::MAX;
        for &p in &self.receiving {
            let e = plan.egress(self.lane.ports[p].side);
            let t = match (self.tx_port[e], &self.eg.sched[e]) {
                (Some(_), Some(sc)) => sc.emu.arrivals_can_wait_until(now),
                _ => now,
            };
            until = until.min(t);
        }
        until
    }

    /// At exit: per-flow figures as they stand (backlogs included), then
    /// every frame in the emulators, the pending lists and the inboxes back
    /// to its lane; in-flight TX completes; other lanes' frames go home.
    fn drain(mut self) -> LaneOut {
        let flows: Vec<Vec<FlowReport>> =
            self.eg.sched.iter().flatten().map(flow_reports).collect();
        self.eg.drain(&mut self.lane, &mut self.out);
        for &e in &self.owned {
            while let Some(d) = self.sh.inbox[e].pop() {
                let f = self.lane.adopt(d);
                self.lane.release(f);
            }
        }
        for _ in 0..100 {
            if self.lane.ledger().in_tx == 0 {
                break;
            }
            for &e in &self.owned {
                if let Some(p) = self.tx_port[e] {
                    // Frames still in the TX ring need a kick to leave (copy mode).
                    self.lane.kick(p);
                    self.lane.complete(p, &mut self.scratch);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let sh = self.sh;
        self.lane.send_away(|o, f| {
            // Room for every frame of the UMEM: a push cannot fail.
            let _ = sh.back[o].push(f);
        });
        LaneOut {
            lane: self.lane,
            counts: self.out,
            scheds: self
                .eg
                .sched
                .into_iter()
                .flatten()
                .zip(flows)
                .chain(self.eg.retired.into_iter().map(|sc| (sc, Vec::new())))
                .collect(),
        }
    }
}
