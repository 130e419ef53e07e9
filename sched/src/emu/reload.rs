//! Reload: an emulator built from a new configuration takes over what the
//! running one holds, so that a configuration change loses no packet.
//!
//! Pipes and flowsets are matched **by name**:
//!
//! - A static pipe kept (same name, static in both) keeps its link: the
//!   transmission under way and every packet sent and still propagating stay,
//!   with their due times, and its counters go on. Its new bandwidth applies
//!   from the next packet, its new delay to packets sent from now on.
//! - A flowset kept (same name) keeps its queues: the packets waiting in it
//!   wait in the new flowset, each flow's in its order. With the same mask on
//!   a static pipe, its flows are carried over too (up to the new
//!   `max_flows`), with their figures, under the new weight, priority,
//!   quantum and limits.
//! - Packets of a flowset that is gone are **drained to their new target**:
//!   classified again by the new rules (or the new default), like a new
//!   arrival; a packet whose new target is `pass` leaves at once.
//! - Packets in flight on a removed pipe, or on a dynamic pipe (whose
//!   instances are rebuilt), have crossed that link: they go on at once
//!   into its `next` flowset (by name, else where the new rules send them)
//!   if it had one, else they leave; only what remained of its delay is cut
//!   short.
//! - A kept link does not reorder: with a shorter delay, packets sent after
//!   the reload leave no earlier than those still propagating. A flowset
//!   moved to another pipe starts there while its packets still propagating
//!   on the old link finish there.
//! - Flowset figures follow the name; flows carried over (same mask, static
//!   pipes; when the new `max_flows` is smaller, those with packets
//!   waiting first) keep theirs. A dynamic pipe's instances are rebuilt:
//!   its flows count as expired.
//! - A packet the new limits have no room for is dropped, handed to
//!   [`Host::dropped`] and counted under its reason (a queue limit, as any
//!   other drop), and in [`Takeover::dropped`].
//!
//! Nothing else is dropped, and no packet is counted twice: a moved packet
//! does not go through the loss model again and is not offered again in the
//! counters. Counters never go down: those of removed pipes stay in
//! [`Emulator::drops`].

use super::dynpipe::{add_drops, add_pipe};
use super::pipe::{PipeCounters, PipeDrop};
use super::{Cause, Drops, Emulator, EmulatorCounters, Host, PipeRt, Target, Verdict};
use crate::classify::FlowKey;
use crate::types::{DropCounters, DropReason, Packet};

/// What [`Emulator::take_over`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Takeover {
    /// Static pipes kept (by name): their links and delay lines taken over.
    pub pipes_kept: u32,
    /// Pipes of the old configuration that are gone (or changed between
    /// static and dynamic).
    pub pipes_removed: u32,
    /// Flowsets kept (by name).
    pub flowsets_kept: u32,
    /// Flowsets that are gone.
    pub flowsets_removed: u32,
    /// Flows carried over with their figures.
    pub flows_kept: u64,
    /// Packets that waited in a kept flowset and wait in it again.
    pub requeued: u64,
    /// Packets whose flowset is gone, classified again into a flowset.
    pub reclassified: u64,
    /// Packets in flight on a kept link: they stay, with their due times.
    pub in_flight_kept: u64,
    /// Packets handed to the caller to leave now: in flight on a removed or
    /// dynamic pipe, or whose new target is `pass`.
    pub released: u64,
    /// Packets the new limits had no room for (handed to [`Host::dropped`]).
    pub dropped: u64,
    /// Of `dropped`, packets already moved (and counted in `requeued` or
    /// `reclassified`) and then pushed out by a later one.
    pub pushed_out: u64,
}

impl Takeover {
    /// Every packet the old emulator held, wherever it went.
    pub fn packets(&self) -> u64 {
        self.requeued + self.reclassified + self.in_flight_kept + self.released + self.dropped
            - self.pushed_out
    }
}

fn add_counters(a: &mut EmulatorCounters, b: &EmulatorCounters) {
    a.offered += b.offered;
    a.malformed += b.malformed;
    a.passed += b.passed;
    a.matched += b.matched;
    a.flowset_full += b.flowset_full;
    a.pipe_full += b.pipe_full;
    a.chained += b.chained;
}

fn add_dropsum(a: &mut Drops, b: &Drops) {
    a.malformed += b.malformed;
    a.flowset_full += b.flowset_full;
    a.pipe_full += b.pipe_full;
    a.loss += b.loss;
    for (x, y) in a.sched.iter_mut().zip(b.sched) {
        *x += y;
    }
}

/// Whether a key is a non-IP frame's (ARP, ...: no addresses, no protocol).
fn non_ip(k: &FlowKey) -> bool {
    k.src == 0 && k.dst == 0 && k.proto == 0
}

impl<P: Packet + Copy + Default> Emulator<P> {
    /// Takes over every packet `old` holds and its figures (see the module
    /// docs for where each goes). `self` is freshly built from the new
    /// configuration; `host` gives packets' keys and takes back the dropped
    /// ones; `out` takes the packets that leave at once. Allocates (the
    /// flows it carries over): for a reload, not the packet path.
    pub fn take_over(
        &mut self,
        mut old: Emulator<P>,
        now_ns: u64,
        host: &mut impl Host<P>,
        out: &mut impl FnMut(P),
    ) -> Takeover {
        let mut t = Takeover::default();
        add_counters(&mut self.counters, &old.counters);
        add_dropsum(&mut self.retired, &old.retired);
        // Old flowset → the new flowset of the same name.
        let fs_map: Vec<Option<usize>> = old
            .flowset_names
            .iter()
            .map(|n| self.flowset_names.iter().position(|m| m == n))
            .collect();
        t.flowsets_kept = fs_map.iter().filter(|m| m.is_some()).count() as u32;
        t.flowsets_removed = fs_map.len() as u32 - t.flowsets_kept;
        // Per old static pipe: which flowset each scheduler flow belongs to.
        let mut owner: Vec<Vec<Option<usize>>> = vec![Vec::new(); old.pipes.len()];
        for (i, rt) in old.flowsets.iter().enumerate() {
            if let Some(fs) = &rt.fs {
                let v = &mut owner[rt.pipe];
                for id in fs.flow_ids() {
                    if v.len() <= id.index() {
                        v.resize(id.index() + 1, None);
                    }
                    v[id.index()] = Some(i);
                }
            }
        }
        // Flowset figures follow the name (summed over a dynamic pipe's
        // instances, taken before they are dismantled).
        for (i, &ni) in fs_map.iter().enumerate() {
            let (Some(ni), Some((_, c))) = (ni, old.flowset_counters(i)) else {
                continue;
            };
            let nrt = &mut self.flowsets[ni];
            match (nrt.fs.as_mut(), &mut self.pipes[nrt.pipe]) {
                (Some(nfs), _) => nfs.add_counters(&c),
                (None, PipeRt::Dynamic(nd)) => {
                    let r = &mut nd.retired.flowsets;
                    if r.len() <= nrt.local {
                        r.resize(nrt.local + 1, Default::default());
                    }
                    r[nrt.local].add(&c);
                }
                (None, PipeRt::Static(_)) => {}
            }
        }
        // Flows of kept flowsets with the same mask, static on both sides.
        for (i, rt) in old.flowsets.iter().enumerate() {
            let (Some(ofs), Some(ni), Some(PipeRt::Static(op))) =
                (&rt.fs, fs_map[i], old.pipes.get(rt.pipe))
            else {
                continue;
            };
            let nrt = &mut self.flowsets[ni];
            let (Some(nfs), PipeRt::Static(np)) = (nrt.fs.as_mut(), &mut self.pipes[nrt.pipe])
            else {
                continue;
            };
            if nfs.params().mask == ofs.params().mask {
                t.flows_kept += nfs.take_flows(ofs, op.sched_ref(), np.sched());
            }
        }
        let mut old_pipes = std::mem::take(&mut old.pipes);
        // Kept static pipes: the links first, so that no packet moved into
        // a pipe finds its link state about to be replaced.
        let mut kept = vec![false; old_pipes.len()];
        for (oi, op) in old_pipes.iter_mut().enumerate() {
            let PipeRt::Static(p) = op else { continue };
            let ni = self
                .pipe_names
                .iter()
                .position(|n| *n == old.pipe_names[oi]);
            // Its flowsets kept on it: (old local index, new local index).
            let same: Vec<(usize, usize)> = old
                .flowsets
                .iter()
                .enumerate()
                .filter(|(_, rt)| rt.pipe == oi)
                .filter_map(|(i, rt)| {
                    let nrt = &self.flowsets[fs_map[i]?];
                    (Some(nrt.pipe) == ni).then_some((rt.local, nrt.local))
                })
                .collect();
            if let Some(PipeRt::Static(np)) = ni.map(|n| &mut self.pipes[n]) {
                t.in_flight_kept += p.in_flight() as u64;
                np.take_link(p, &same);
                t.pipes_kept += 1;
                kept[oi] = true;
            }
        }
        for (oi, op) in old_pipes.into_iter().enumerate() {
            let ni = self
                .pipe_names
                .iter()
                .position(|n| *n == old.pipe_names[oi]);
            // What was on a link that is gone: on along its chain, or out.
            let mut in_flight = Vec::new();
            match op {
                PipeRt::Static(mut p) => {
                    if !kept[oi] {
                        p.take_in_flight(&mut |pkt| in_flight.push(pkt));
                        self.retire_pipe(&p.counters(), &p.drops());
                        t.pipes_removed += 1;
                    }
                    while let Some((fid, pkt)) = p.take_queued() {
                        let from = owner[oi].get(fid.index()).copied().flatten();
                        let to = from.and_then(|f| fs_map[f]);
                        self.move_packet(now_ns, to, pkt, host, out, &mut t);
                    }
                }
                PipeRt::Dynamic(mut d) => {
                    // The old flowsets of this pipe, by local index.
                    let globals: Vec<usize> = old
                        .flowsets
                        .iter()
                        .enumerate()
                        .filter(|(_, rt)| rt.pipe == oi)
                        .map(|(i, _)| i)
                        .collect();
                    for mut inst in std::mem::take(&mut d.slots).into_iter().flatten() {
                        inst.pipe.take_in_flight(&mut |pkt| in_flight.push(pkt));
                        let mut own: Vec<Option<usize>> = Vec::new();
                        for (j, fs) in inst.flowsets.iter().enumerate() {
                            for id in fs.flow_ids() {
                                if own.len() <= id.index() {
                                    own.resize(id.index() + 1, None);
                                }
                                own[id.index()] = globals.get(j).copied();
                            }
                        }
                        while let Some((fid, pkt)) = inst.pipe.take_queued() {
                            let from = own.get(fid.index()).copied().flatten();
                            let to = from.and_then(|f| fs_map[f]);
                            self.move_packet(now_ns, to, pkt, host, out, &mut t);
                        }
                        d.retire(&inst);
                    }
                    let kept = ni.filter(|&n| matches!(self.pipes[n], PipeRt::Dynamic(_)));
                    if let Some(PipeRt::Dynamic(nd)) = kept.map(|n| &mut self.pipes[n]) {
                        nd.take_figures(&d);
                    } else {
                        self.retire_pipe(&d.retired.pipe, &d.retired.drops);
                        t.pipes_removed += 1;
                    }
                }
            }
            match old.next.get(oi).copied().flatten() {
                Some(f) => {
                    for pkt in in_flight {
                        self.move_packet(now_ns, fs_map[f], pkt, host, out, &mut t);
                    }
                }
                None => {
                    t.released += in_flight.len() as u64;
                    in_flight.into_iter().for_each(&mut *out);
                }
            }
        }
        // Links taken over brought their delay lines: every key again.
        self.rekey();
        t
    }

    /// A removed pipe's loss and drops stay in the totals.
    fn retire_pipe(&mut self, c: &PipeCounters, d: &DropCounters) {
        self.retired.loss += c.lost;
        for (x, y) in self.retired.sched.iter_mut().zip(d.by_reason) {
            *x += y;
        }
    }

    /// One packet that waited in the old emulator: into the kept flowset
    /// `to`, or (its flowset is gone) wherever the new rules send it.
    fn move_packet(
        &mut self,
        now_ns: u64,
        to: Option<usize>,
        pkt: P,
        host: &mut impl Host<P>,
        out: &mut impl FnMut(P),
        t: &mut Takeover,
    ) {
        let key = host.key(&pkt);
        let (target, kept) = match to {
            Some(f) => (Target::Flowset(f), true),
            None if non_ip(&key) => (self.non_ip, false),
            None => (self.classify(&key).0, false),
        };
        let queued = |t: &mut Takeover| {
            if kept {
                t.requeued += 1;
            } else {
                t.reclassified += 1;
            }
        };
        match self.offer(now_ns, &key, target, pkt, super::Entry::Moved, host) {
            Verdict::Queued { .. } => queued(t),
            Verdict::QueuedPushedOut { victim, .. } => {
                queued(t);
                t.dropped += 1;
                t.pushed_out += 1;
                host.dropped(victim, Cause::Pipe(PipeDrop::Sched(DropReason::PushedOut)));
            }
            Verdict::Pass(p) => {
                t.released += 1;
                out(p);
            }
            Verdict::Dropped(p, cause) => {
                t.dropped += 1;
                host.dropped(p, cause);
            }
        }
    }
}

impl<P: Packet + Copy + Default> super::dynpipe::DynPipe<P> {
    /// At a reload: the figures of `old` (the dynamic pipe of the same name
    /// this one replaces; its instances already retired into them).
    /// (Flowset figures follow their names: see `take_over`.)
    pub(super) fn take_figures(&mut self, old: &Self) {
        add_pipe(&mut self.retired.pipe, &old.retired.pipe);
        add_drops(&mut self.retired.drops, &old.retired.drops);
        if let Some(h) = &old.retired.sojourn {
            self.retired.sojourn.get_or_insert_default().add(h);
        }
        let (r, o) = (&mut self.retired.queues, &old.retired.queues);
        r.resize(r.len().max(o.len()), Default::default());
        for (a, b) in r.iter_mut().zip(o) {
            a.add(b);
        }
        self.created += old.created;
        self.expired += old.expired;
        self.overflowed += old.overflowed;
    }
}
