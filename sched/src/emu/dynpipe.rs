//! dummynet's dynamic pipes: a pipe with a mask, one instance per masked key.

use super::flowset::{Flowset, FlowsetCounters, FlowsetParams};
use super::pipe::{Pipe, PipeCounters, PipeParams};
use super::wake::WakeQueue;
use crate::classify::{FlowKey, FlowMask, KeyTable};
use crate::types::{DropCounters, FlowId, Packet, SchedConfig};
use crate::{build, Kind};

/// One instance of a dynamic pipe: a whole pipe with its own flowsets.
#[derive(Debug)]
pub(super) struct Instance<P: Packet + Copy + Default> {
    pub(super) pipe: Pipe<P>,
    pub(super) flowsets: Vec<Flowset>,
    pub(super) key: FlowKey,
    pub(super) last_seen: u64,
}

/// What expired instances of a dynamic pipe did: kept so that totals never
/// go down when an instance is removed.
#[derive(Debug, Clone, Default)]
pub(super) struct Retired {
    pub(super) pipe: PipeCounters,
    pub(super) drops: DropCounters,
    /// By local flowset index.
    pub(super) flowsets: Vec<FlowsetCounters>,
    /// Sojourn times (empty until an instance retires).
    pub(super) sojourn: Option<super::sojourn::SojournHist>,
    /// Queue figures by local flowset index.
    pub(super) queues: Vec<super::pipe::QueueStats>,
}

/// dummynet's `pipe N config mask ...`: every masked key gets its own
/// instance of the pipe (its own link, delay line and scheduler), created on
/// its first packet and removed after `idle_timeout_ns` with nothing queued
/// or in flight. Creating an instance allocates (its scheduler's pool), as
/// dummynet's dynamic pipes do; the number of instances is bounded by
/// `max_instances`, and keys beyond it share one overflow instance (see the
/// module docs). The instances that hold packets wait in a heap by their
/// next wake-up (`due`): `dequeue` takes the due ones in due order and
/// `next_wakeup` reads the top, O(log n) and O(1) in the instances.
#[derive(Debug)]
pub(super) struct DynPipe<P: Packet + Copy + Default> {
    pub(super) mask: FlowMask,
    pub(super) kind: Kind,
    pub(super) sched_cfg: SchedConfig,
    pub(super) params: PipeParams,
    /// Parameters of the flowsets attached to this pipe, by local index.
    pub(super) flowsets: Vec<FlowsetParams>,
    pub(super) table: KeyTable<u32>,
    pub(super) slots: Vec<Option<Instance<P>>>,
    pub(super) free: Vec<u32>,
    /// Instances holding packets, by slot, keyed by their next wake-up —
    /// never later than it (an arrival only moves a key earlier; one that
    /// turns out early costs a look that finds nothing and re-keys it).
    pub(super) due: WakeQueue,
    pub(super) idle_timeout_ns: u64,
    pub(super) cursor: usize,
    pub(super) seed: u64,
    pub(super) created: u64,
    /// The overflow instance's slot, once created (never expires).
    pub(super) overflow: Option<u32>,
    /// Packets sent to the overflow instance.
    pub(super) overflowed: u64,
    /// Instances removed after their idle timeout.
    pub(super) expired: u64,
    pub(super) retired: Retired,
}

impl<P: Packet + Copy + Default> DynPipe<P> {
    /// The instance for `key`, created if new; the overflow instance when
    /// `max_instances` are in use (or while it holds packets); `None` only
    /// if no instance can be built.
    pub(super) fn instance_for(&mut self, key: &FlowKey, now_ns: u64) -> Option<u32> {
        let mk = key.masked(&self.mask);
        if let Some(&i) = self.table.get(&mk) {
            return Some(i);
        }
        let overflow_busy = self.overflow.is_some_and(|o| {
            self.slots[o as usize]
                .as_ref()
                .is_some_and(|inst| inst.pipe.backlog_packets() != 0)
        });
        if self.table.len() >= self.table.max_len() || overflow_busy {
            let o = match self.overflow {
                Some(o) => o,
                None => {
                    let o = self.create(mk, now_ns)?;
                    self.overflow = Some(o);
                    o
                }
            };
            self.overflowed += 1;
            return Some(o);
        }
        let i = self.create(mk, now_ns)?;
        self.table.insert(mk, i);
        Some(i)
    }

    /// A new instance for masked key `mk` in a free slot.
    pub(super) fn create(&mut self, mk: FlowKey, now_ns: u64) -> Option<u32> {
        let mut sched = build::<P>(self.kind, self.sched_cfg).ok()?;
        if self
            .flowsets
            .iter()
            .any(|f| f.flow.aqm != crate::algo::aqm::Aqm::None)
        {
            // With the instance's other allocations (its scheduler's pool).
            sched.reserve_aqm();
        }
        let seed = self
            .seed
            .wrapping_add(self.created.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let params = PipeParams {
            seed: self.params.seed ^ seed,
            ..self.params.clone()
        };
        let inst = Instance {
            pipe: Pipe::new(sched, &params).with_flowsets(
                self.flowsets.len(),
                self.flowsets.iter().any(|f| f.flow.aqm.at_arrival()),
            ),
            flowsets: self
                .flowsets
                .iter()
                .enumerate()
                .map(|(j, fp)| Flowset::new(*fp, seed.wrapping_add(j as u64)))
                .collect(),
            key: mk,
            last_seen: now_ns,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(inst);
                i
            }
            None => {
                self.slots.push(Some(inst));
                (self.slots.len() - 1) as u32
            }
        };
        self.due.grow(self.slots.len());
        self.created += 1;
        Some(idx)
    }

    /// The next packet out of an instance, the due ones in the order of
    /// their wake-ups; queue management's drops go to `dropped` with the
    /// flowsets of the instance that dropped them. An instance that had
    /// nothing by `now_ns` is keyed past it (looked at once per call).
    pub(super) fn dequeue(
        &mut self,
        now_ns: u64,
        dropped: &mut impl FnMut(super::PipeDropped<P>, Option<&mut [Flowset]>),
    ) -> Option<(u64, FlowId, P)> {
        while let Some(i) = self.due.pop_due(now_ns) {
            let Some(inst) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
                self.due.remove(i);
                continue;
            };
            let fs = &mut inst.flowsets;
            let out = inst
                .pipe
                .dequeue_timed(now_ns, &mut |d| dropped(d, Some(&mut fs[..])));
            match inst.pipe.next_wakeup() {
                Some(w) => {
                    let w = if out.is_some() {
                        w
                    } else {
                        w.max(now_ns.saturating_add(1))
                    };
                    self.due.set(i, w, now_ns);
                }
                None => self.due.remove(i),
            }
            if out.is_some() {
                return out;
            }
        }
        None
    }

    /// The earliest wake-up of an instance holding packets (never later
    /// than the true one).
    #[inline]
    pub(super) fn next_wakeup(&self) -> Option<u64> {
        self.due.peek()
    }

    /// Keys every instance by its wake-up again (after a reload moved
    /// packets in or a new epoch).
    pub(super) fn rekey(&mut self) {
        self.due.clear();
        for (i, inst) in self.slots.iter().enumerate() {
            if let Some(w) = inst.as_ref().and_then(|x| x.pipe.next_wakeup()) {
                self.due.set(i as u32, w, 0);
            }
        }
    }

    /// Looks at up to `budget` instances: expires idle flows inside each
    /// (a few per visit) and removes instances idle past the timeout, their
    /// figures kept in `retired`. Returns flows and instances removed.
    pub(super) fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        /// Flow-table slots looked at per instance visited.
        const FLOWS_PER_VISIT: usize = 8;
        let mut removed = 0;
        let n = self.slots.len();
        for _ in 0..budget.min(n) {
            let i = self.cursor % n;
            self.cursor = (i + 1) % n;
            let Some(inst) = self.slots[i].as_mut() else {
                continue;
            };
            for fs in inst.flowsets.iter_mut() {
                removed += fs.expire(now_ns, FLOWS_PER_VISIT, inst.pipe.sched());
            }
            let idle = inst.pipe.backlog_packets() == 0
                && now_ns.saturating_sub(inst.last_seen) >= self.idle_timeout_ns
                && self.overflow != Some(i as u32);
            if idle {
                if let Some(inst) = self.slots[i].take() {
                    self.due.remove(i as u32);
                    self.table.remove(&inst.key);
                    self.free.push(i as u32);
                    self.retire(&inst);
                    self.expired += 1;
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Adds a removed instance's figures to the retired totals; its flows
    /// count as expired.
    pub(super) fn retire(&mut self, inst: &Instance<P>) {
        let r = &mut self.retired;
        add_pipe(&mut r.pipe, &inst.pipe.counters());
        add_drops(&mut r.drops, &inst.pipe.drops());
        r.sojourn
            .get_or_insert_with(Default::default)
            .add(inst.pipe.sojourn());
        r.flowsets.resize(
            inst.flowsets.len().max(r.flowsets.len()),
            FlowsetCounters::default(),
        );
        r.queues
            .resize(inst.flowsets.len().max(r.queues.len()), Default::default());
        for (j, q) in r.queues.iter_mut().enumerate() {
            if let Some(s) = inst.pipe.queue_stats(j) {
                q.add(s);
            }
        }
        if inst.flowsets.len() == 1 {
            // Its only flowset: the pipe's histogram is the flowset's.
            if let Some(q) = r.queues.first_mut() {
                q.sojourn.get_or_insert_default().add(inst.pipe.sojourn());
            }
        }
        for (acc, fs) in r.flowsets.iter_mut().zip(&inst.flowsets) {
            let mut c = fs.counters();
            c.expired += fs.flows() as u64;
            acc.add(&c);
        }
    }
}

pub(super) fn add_pipe(a: &mut PipeCounters, b: &PipeCounters) {
    a.offered += b.offered;
    a.lost += b.lost;
    a.delivered += b.delivered;
    a.delivered_bytes += b.delivered_bytes;
    a.duplicated += b.duplicated;
    a.dup_no_frame += b.dup_no_frame;
    a.corrupted += b.corrupted;
}

pub(super) fn add_drops(a: &mut DropCounters, b: &DropCounters) {
    a.enqueued += b.enqueued;
    a.dequeued += b.dequeued;
    a.marked += b.marked;
    for (x, y) in a.by_reason.iter_mut().zip(b.by_reason) {
        *x += y;
    }
}
