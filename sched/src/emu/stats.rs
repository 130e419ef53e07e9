//! The emulator's figures, for reports (not the per-packet path).

use super::dynpipe::{add_drops, add_pipe};
use super::flowset::{Flowset, FlowsetCounters};
use super::pipe::{Pipe, PipeCounters, QueueStats};
use super::{Drops, Emulator, EmulatorCounters, PipeRt};
use crate::classify::Classifier;
use crate::types::{DropCounters, Packet};

/// A flowset's queues, summed ([`Emulator::flowset_queues`]).
#[derive(Debug, Clone, Default)]
pub struct FlowsetQueues {
    /// Drops, marks and sojourn times.
    pub stats: QueueStats,
    /// Its flows in CoDel's dropping state now.
    pub codel_dropping: u32,
    /// The largest CoDel count among them.
    pub codel_max_count: u32,
}

impl<P: Packet + Copy + Default> Emulator<P> {
    /// The static pipes (for stats); dynamic pipes are summed in [`Emulator::pipe_counters`].
    pub fn pipes(&self) -> impl Iterator<Item = &Pipe<P>> {
        self.pipes.iter().filter_map(|p| match p {
            PipeRt::Static(p) => Some(p),
            PipeRt::Dynamic(_) => None,
        })
    }

    /// Counters of pipe `i`, summed over its instances if it is dynamic
    /// (expired ones included): (counters, instances now).
    pub fn pipe_counters(&self, i: usize) -> Option<(PipeCounters, usize)> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => (p.counters(), 1),
            PipeRt::Dynamic(d) => {
                let mut c = d.retired.pipe;
                let mut n = 0;
                for inst in d.slots.iter().flatten() {
                    add_pipe(&mut c, &inst.pipe.counters());
                    n += 1;
                }
                (c, n)
            }
        })
    }

    /// A dynamic pipe's instance figures: (created, expired, packets sent
    /// to the overflow instance); `None` for a static pipe.
    pub fn instance_counters(&self, i: usize) -> Option<(u64, u64, u64)> {
        match self.pipes.get(i)? {
            PipeRt::Static(_) => None,
            PipeRt::Dynamic(d) => Some((d.created, d.expired, d.overflowed)),
        }
    }

    /// What pipe `i` holds now (summed over its instances if dynamic):
    /// (packets, bytes) queued, on the link and propagating.
    pub fn pipe_backlog(&self, i: usize) -> Option<(u64, u64)> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => (p.backlog_packets(), p.backlog_bytes()),
            PipeRt::Dynamic(d) => d
                .slots
                .iter()
                .flatten()
                .map(|inst| (inst.pipe.backlog_packets(), inst.pipe.backlog_bytes()))
                .fold((0, 0), |(a, b), (x, y)| (a + x, b + y)),
        })
    }

    /// Pipe `i`'s HTB classes, in the order of the configuration's
    /// `[[class]]` tables on it (empty without classes). Their counters
    /// start again at a reload.
    pub fn pipe_classes(&self, i: usize) -> Vec<crate::algo::htb::ClassView> {
        match self.pipes.get(i) {
            Some(PipeRt::Static(p)) => p
                .sched_ref()
                .tree()
                .map(|t| (0..t.classes()).filter_map(|c| t.class(c)).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Drops by reason in pipe `i`'s scheduler (summed over instances if
    /// dynamic, expired ones included).
    pub fn pipe_drops(&self, i: usize) -> Option<DropCounters> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => p.drops(),
            PipeRt::Dynamic(d) => {
                let mut c = d.retired.drops;
                for inst in d.slots.iter().flatten() {
                    add_drops(&mut c, &inst.pipe.drops());
                }
                c
            }
        })
    }

    /// Sojourn times of the packets pipe `i` sent (its instances' merged if
    /// dynamic, expired ones included). Allocates: for reports.
    pub fn pipe_sojourn(&self, i: usize) -> Option<hdrhistogram::Histogram<u64>> {
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => p.sojourn().to_hdr(),
            PipeRt::Dynamic(d) => {
                let mut h = d.retired.sojourn.clone().unwrap_or_default();
                for inst in d.slots.iter().flatten() {
                    h.add(inst.pipe.sojourn());
                }
                h.to_hdr()
            }
        })
    }

    /// Queue management state of pipe `i` now (summed over its instances if
    /// dynamic): flows in CoDel's dropping state, the largest count.
    pub fn pipe_aqm(&self, i: usize) -> Option<crate::algo::engine::AqmSummary> {
        let add = |a: crate::algo::engine::AqmSummary, p: &Pipe<P>| {
            let s = p.sched_ref().aqm_summary();
            crate::algo::engine::AqmSummary {
                dropping: a.dropping + s.dropping,
                max_count: a.max_count.max(s.max_count),
            }
        };
        Some(match self.pipes.get(i)? {
            PipeRt::Static(p) => add(Default::default(), p),
            PipeRt::Dynamic(d) => d
                .slots
                .iter()
                .flatten()
                .fold(Default::default(), |a, inst| add(a, &inst.pipe)),
        })
    }

    /// Flowset `i`'s queues (every instance's, for a dynamic pipe, expired
    /// ones included): queue management's drops and marks, limit drops,
    /// sojourn times (its pipe's when it is the pipe's only flowset), and
    /// its flows in CoDel's dropping state now with their largest count.
    /// Allocates: for reports.
    pub fn flowset_queues(&self, i: usize) -> Option<FlowsetQueues> {
        let rt = self.flowsets.get(i)?;
        let mut out = FlowsetQueues::default();
        if let (None, Some(PipeRt::Dynamic(d))) = (&rt.fs, self.pipes.get(rt.pipe)) {
            if let Some(q) = d.retired.queues.get(rt.local) {
                out.stats.add(q);
            }
        }
        let mut add = |pipe: &Pipe<P>, fs: Option<&Flowset>| {
            if let Some(q) = pipe.queue_stats(rt.local) {
                out.stats.add(&QueueStats {
                    sojourn: None,
                    ..q.clone()
                });
                let h = match (&q.sojourn, pipe.queue_stats(1)) {
                    (Some(h), _) => Some(&**h),
                    // The only flowset: the pipe's histogram.
                    (None, None) => Some(pipe.sojourn()),
                    (None, Some(_)) => None,
                };
                if let Some(h) = h {
                    out.stats.sojourn.get_or_insert_default().add(h);
                }
            }
            for f in fs
                .map(|fs| fs.flow_stats(pipe.sched_ref()))
                .unwrap_or_default()
            {
                if let Some(c) = pipe.sched_ref().aqm_flow(f.id).and_then(|m| m.codel()) {
                    if c.dropping() {
                        out.codel_dropping += 1;
                        out.codel_max_count = out.codel_max_count.max(c.count());
                    }
                }
            }
        };
        match (&rt.fs, self.pipes.get(rt.pipe)?) {
            (Some(fs), PipeRt::Static(p)) => add(p, Some(fs)),
            (None, PipeRt::Dynamic(d)) => {
                for inst in d.slots.iter().flatten() {
                    add(&inst.pipe, inst.flowsets.get(rt.local));
                }
            }
            _ => return None,
        }
        Some(out)
    }

    /// Every drop so far, by cause.
    pub fn drops(&self) -> Drops {
        // Malformed, flowset_full and pipe_full are the emulator's own
        // counters (carried over reloads); `retired` holds the loss and the
        // scheduler drops of pipes a reload removed.
        let mut d = Drops {
            malformed: self.counters.malformed,
            flowset_full: self.counters.flowset_full,
            pipe_full: self.counters.pipe_full,
            ..self.retired
        };
        for i in 0..self.pipes.len() {
            if let Some((c, _)) = self.pipe_counters(i) {
                d.loss += c.lost;
            }
            if let Some(c) = self.pipe_drops(i) {
                for (x, y) in d.sched.iter_mut().zip(c.by_reason) {
                    *x += y;
                }
            }
        }
        d
    }

    /// Packets held now: in the schedulers, on the links and in the delay lines.
    pub fn backlog_packets(&self) -> u64 {
        self.pipes
            .iter()
            .map(|p| match p {
                PipeRt::Static(p) => p.backlog_packets(),
                PipeRt::Dynamic(d) => d
                    .slots
                    .iter()
                    .flatten()
                    .map(|inst| inst.pipe.backlog_packets())
                    .sum(),
            })
            .sum()
    }

    /// Flowset `i`: (flows now, counters), summed over a dynamic pipe's
    /// instances (expired ones included).
    pub fn flowset_counters(&self, i: usize) -> Option<(usize, FlowsetCounters)> {
        let rt = self.flowsets.get(i)?;
        match (&rt.fs, self.pipes.get(rt.pipe)?) {
            (Some(fs), _) => Some((fs.flows(), fs.counters())),
            (None, PipeRt::Dynamic(d)) => {
                let mut c = d
                    .retired
                    .flowsets
                    .get(rt.local)
                    .copied()
                    .unwrap_or_default();
                let mut flows = 0;
                for fs in d
                    .slots
                    .iter()
                    .flatten()
                    .filter_map(|inst| inst.flowsets.get(rt.local))
                {
                    c.add(&fs.counters());
                    flows += fs.flows();
                }
                Some((flows, c))
            }
            (None, PipeRt::Static(_)) => None,
        }
    }

    /// Every flow of flowset `i` (all instances of a dynamic pipe), with its
    /// tally and backlog. Allocates: for reports, not per packet.
    pub fn flow_stats(&self, i: usize) -> Vec<crate::emu::flowset::FlowStat> {
        let Some(rt) = self.flowsets.get(i) else {
            return Vec::new();
        };
        match (&rt.fs, self.pipes.get(rt.pipe)) {
            (Some(fs), Some(PipeRt::Static(p))) => fs.flow_stats(p.sched_ref()),
            (None, Some(PipeRt::Dynamic(d))) => d
                .slots
                .iter()
                .flatten()
                .flat_map(|inst| {
                    inst.flowsets
                        .get(rt.local)
                        .map(|fs| fs.flow_stats(inst.pipe.sched_ref()))
                        .unwrap_or_default()
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Flowset `i`'s overflow queues (every instance's, for a dynamic pipe),
    /// summed: (tally, backlog packets, backlog bytes); `None` if none was
    /// ever used.
    pub fn overflow_stat(&self, i: usize) -> Option<(crate::emu::flowset::FlowTally, u32, u64)> {
        let rt = self.flowsets.get(i)?;
        let add =
            |acc: Option<(crate::emu::flowset::FlowTally, u32, u64)>,
             x: Option<(crate::emu::flowset::FlowTally, u32, u64)>| match (acc, x) {
                (Some((mut t, p, b)), Some((u, q, c))) => {
                    t.packets += u.packets;
                    t.bytes += u.bytes;
                    t.dropped += u.dropped;
                    t.dropped_bytes += u.dropped_bytes;
                    Some((t, p + q, b + c))
                }
                (a, b) => a.or(b),
            };
        match (&rt.fs, self.pipes.get(rt.pipe)?) {
            (Some(fs), PipeRt::Static(p)) => fs.overflow_stat(p.sched_ref()),
            (None, PipeRt::Dynamic(d)) => d
                .slots
                .iter()
                .flatten()
                .filter_map(|inst| {
                    Some(
                        inst.flowsets
                            .get(rt.local)?
                            .overflow_stat(inst.pipe.sched_ref()),
                    )
                })
                .fold(None, add),
            _ => None,
        }
    }

    /// The rule classifier (for its cache statistics).
    pub fn classifier(&self) -> &Classifier {
        &self.rules
    }

    /// The flowsets of static pipes (for stats).
    pub fn flowsets(&self) -> impl Iterator<Item = &Flowset> {
        self.flowsets.iter().filter_map(|f| f.fs.as_ref())
    }

    /// Counters.
    pub fn counters(&self) -> EmulatorCounters {
        self.counters
    }
}
