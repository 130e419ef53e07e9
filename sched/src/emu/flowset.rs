//! Flowsets (dummynet's `queue`): a flow mask that splits matching traffic
//! into per-flow queues, created on demand in a pipe's scheduler with the
//! flowset's weight, priority and limits.
//!
//! The masked key maps to a scheduler `FlowId` through a preallocated
//! [`KeyTable`] bounded by `max_flows`, so creating a flow never allocates.
//! Flows that have been idle (nothing queued) for `idle_timeout_ns` are
//! removed by [`Flowset::expire`], an incremental sweep with a budget of slots
//! per call, so the caller can run it every batch without a pause.
//!
//! **A full table never black-holes a flow.** When `max_flows` flows are
//! busy, a new flow's packets go to the flowset's *overflow queue*, one
//! more flow of the scheduler with the same weight and limits, shared by
//! every flow that found no room (counted in
//! [`FlowsetCounters::overflowed`]). While the overflow queue holds packets,
//! new flows keep going there even if room frees up, so that a flow's later
//! packets never overtake its earlier ones; once it is empty, new flows get
//! their own queues again.

use crate::classify::{FlowKey, FlowMask, KeyTable};
use crate::types::{FlowConfig, FlowId, Packet};
use crate::{AnySched, Scheduler};

/// How a flowset is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowsetParams {
    /// Which key bits tell flows apart (`FlowMask::NONE`: one queue).
    pub mask: FlowMask,
    /// Weight, priority, limits of every flow it creates.
    pub flow: FlowConfig,
    /// Most flows at once; more are refused (counted).
    pub max_flows: u32,
    /// A flow idle this long is removed (0: never).
    pub idle_timeout_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: FlowId,
    last_seen: u64,
    tally: FlowTally,
}

/// What one flow of a flowset has offered and lost since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTally {
    /// Packets offered (classified to this flow).
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets of this flow dropped on arrival (limits, loss, bad length).
    pub dropped: u64,
    /// Their bytes. (`bytes - dropped_bytes` less what is queued is what the
    /// flow's queue has sent on to the link.)
    pub dropped_bytes: u64,
}

/// One flow's figures, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStat {
    /// The flow's key under the flowset's mask.
    pub key: FlowKey,
    /// Its scheduler flow id.
    pub id: FlowId,
    /// Offered and dropped.
    pub tally: FlowTally,
    /// Packets queued now.
    pub backlog_packets: u32,
    /// Bytes queued now.
    pub backlog_bytes: u64,
}

/// Flowset counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowsetCounters {
    /// Flows created.
    pub created: u64,
    /// Flows removed after their idle timeout.
    pub expired: u64,
    /// Packets that went to the overflow queue (their flow had no queue of
    /// its own: `max_flows` were busy).
    pub overflowed: u64,
    /// Packets refused because not even the overflow queue could be
    /// created (the scheduler had no room for another flow).
    pub refused: u64,
}

impl FlowsetCounters {
    /// Adds `o` to these counters (figures of a removed dynamic-pipe instance).
    pub fn add(&mut self, o: &FlowsetCounters) {
        self.created += o.created;
        self.expired += o.expired;
        self.overflowed += o.overflowed;
        self.refused += o.refused;
    }
}

/// A flowset's runtime state.
#[derive(Debug, Clone)]
pub struct Flowset {
    params: FlowsetParams,
    table: KeyTable<Entry>,
    /// The overflow queue's flow, created on first use, and its tally.
    overflow: Option<FlowId>,
    overflow_tally: FlowTally,
    /// Next slot the expiry sweep looks at.
    cursor: usize,
    counters: FlowsetCounters,
}

impl Flowset {
    /// An empty flowset. `seed` keys its hash table.
    pub fn new(params: FlowsetParams, seed: u64) -> Self {
        Self {
            table: KeyTable::new(params.max_flows.max(1) as usize, seed),
            params,
            overflow: None,
            overflow_tally: FlowTally::default(),
            cursor: 0,
            counters: FlowsetCounters::default(),
        }
    }

    /// Its parameters.
    pub fn params(&self) -> &FlowsetParams {
        &self.params
    }

    /// Flows currently configured.
    pub fn flows(&self) -> usize {
        self.table.len()
    }

    /// Counters.
    pub fn counters(&self) -> FlowsetCounters {
        self.counters
    }

    /// Counts a packet of `len` bytes with key `key` that its scheduler
    /// dropped after accepting it (queue management) in its flow's tally,
    /// if the flow is `flow` of this flowset. Returns whether it was.
    pub fn count_drop(&mut self, key: &FlowKey, flow: FlowId, len: u32) -> bool {
        let mk = key.masked(&self.params.mask);
        let tally = match self.table.get_mut(&mk) {
            Some(e) if e.id == flow => &mut e.tally,
            _ if self.overflow == Some(flow) => &mut self.overflow_tally,
            _ => return false,
        };
        tally.dropped += 1;
        tally.dropped_bytes += u64::from(len);
        true
    }

    /// The flow a packet with key `key` belongs to, created in `sched` if new.
    /// `None` when the flowset or the scheduler has no room for another flow.
    #[inline]
    pub fn flow_for<P: Packet + Copy + Default>(
        &mut self,
        key: &FlowKey,
        now_ns: u64,
        sched: &mut AnySched<P>,
    ) -> Option<FlowId> {
        self.flow_for_packet(key, now_ns, 0, sched)
            .map(|(id, _)| id)
    }

    /// Like [`Flowset::flow_for`] for a packet of `len` bytes: counts it in
    /// the flow's tally and returns the tally, so that the caller can count a
    /// drop. A packet whose flow finds no room gets the overflow queue (see
    /// the module docs); `None` only if not even that can be created.
    #[inline]
    pub fn flow_for_packet<P: Packet + Copy + Default>(
        &mut self,
        key: &FlowKey,
        now_ns: u64,
        len: u32,
        sched: &mut AnySched<P>,
    ) -> Option<(FlowId, &mut FlowTally)> {
        self.flow_of(key, now_ns, len, sched, true)
    }

    /// `flow_for_packet`, or (not `fresh`) for a packet moved here at a
    /// reload, which was counted where it was first offered.
    #[inline]
    pub(super) fn flow_of<P: Packet + Copy + Default>(
        &mut self,
        key: &FlowKey,
        now_ns: u64,
        len: u32,
        sched: &mut AnySched<P>,
        fresh: bool,
    ) -> Option<(FlowId, &mut FlowTally)> {
        let mk = key.masked(&self.params.mask);
        let cfg = self.params.flow;
        let mut created = false;
        let overflow = self.overflow;
        let e = self.table.get_or_insert_with(&mk, || {
            // New flows wait while the overflow queue holds packets (order).
            if let Some(o) = overflow {
                if sched.flow_backlog(o).is_some_and(|b| b.packets != 0) {
                    return None;
                }
            }
            let id = sched.add_flow(cfg).ok()?;
            created = true;
            Some(Entry {
                id,
                last_seen: now_ns,
                tally: FlowTally::default(),
            })
        });
        let (id, tally) = match e {
            Some(e) => {
                e.last_seen = now_ns;
                self.counters.created += created as u64;
                (e.id, &mut e.tally)
            }
            None => {
                let id = match self.overflow {
                    Some(id) => id,
                    None => match sched.add_flow(cfg) {
                        Ok(id) => *self.overflow.insert(id),
                        Err(_) => {
                            self.counters.refused += 1;
                            return None;
                        }
                    },
                };
                self.counters.overflowed += fresh as u64;
                (id, &mut self.overflow_tally)
            }
        };
        if fresh {
            tally.packets += 1;
            tally.bytes += len as u64;
        }
        Some((id, tally))
    }

    /// The scheduler flows of this flowset: its flows' and its overflow
    /// queue's (for a reload).
    pub(super) fn flow_ids(&self) -> impl Iterator<Item = FlowId> + '_ {
        self.table.iter().map(|(_, e)| e.id).chain(self.overflow)
    }

    /// At a reload: adds `c` (the figures of the flowset of the same name
    /// this one replaces) to its counters.
    pub(super) fn add_counters(&mut self, c: &FlowsetCounters) {
        self.counters.add(c);
    }

    /// At a reload: takes over the flows of `old` (a flowset of the same
    /// name and mask, whose flows live in `old_sched`), created in `sched`
    /// with this flowset's parameters, with their tallies and last
    /// activity, up to this flowset's `max_flows` (flows with packets
    /// waiting first). Returns the flows carried over.
    pub(super) fn take_flows<P: Packet + Copy + Default>(
        &mut self,
        old: &Flowset,
        old_sched: &AnySched<P>,
        sched: &mut AnySched<P>,
    ) -> u64 {
        let mut n = 0;
        let busy = |e: &Entry| old_sched.flow_backlog(e.id).is_some_and(|b| b.packets != 0);
        let order = old
            .table
            .iter()
            .filter(|(_, e)| busy(e))
            .chain(old.table.iter().filter(|(_, e)| !busy(e)));
        for (k, e) in order {
            if self.table.len() >= self.table.max_len() {
                break;
            }
            let Ok(id) = sched.add_flow(self.params.flow) else {
                break;
            };
            if self.table.insert(
                *k,
                Entry {
                    id,
                    last_seen: e.last_seen,
                    tally: e.tally,
                },
            ) {
                n += 1;
            } else {
                let _ = sched.remove_flow(id);
            }
        }
        let (t, o) = (&mut self.overflow_tally, &old.overflow_tally);
        t.packets += o.packets;
        t.bytes += o.bytes;
        t.dropped += o.dropped;
        t.dropped_bytes += o.dropped_bytes;
        n
    }

    /// The overflow queue: its tally and backlog (packets, bytes), once it exists.
    pub fn overflow_stat<P: Packet + Copy + Default>(
        &self,
        sched: &AnySched<P>,
    ) -> Option<(FlowTally, u32, u64)> {
        let id = self.overflow?;
        let b = sched.flow_backlog(id);
        Some((
            self.overflow_tally,
            b.map_or(0, |b| b.packets),
            b.map_or(0, |b| b.bytes),
        ))
    }

    /// Every flow's figures (allocates: for reports, not per packet).
    pub fn flow_stats<P: Packet + Copy + Default>(&self, sched: &AnySched<P>) -> Vec<FlowStat> {
        self.table
            .iter()
            .map(|(k, e)| {
                let b = sched.flow_backlog(e.id);
                FlowStat {
                    key: *k,
                    id: e.id,
                    tally: e.tally,
                    backlog_packets: b.map_or(0, |b| b.packets),
                    backlog_bytes: b.map_or(0, |b| b.bytes),
                }
            })
            .collect()
    }

    /// Looks at up to `budget` flows and removes those idle longer
    /// than the timeout (nothing queued in `sched`). Returns how many it removed.
    pub fn expire<P: Packet + Copy + Default>(
        &mut self,
        now_ns: u64,
        budget: usize,
        sched: &mut AnySched<P>,
    ) -> usize {
        let timeout = self.params.idle_timeout_ns;
        if timeout == 0 || self.table.is_empty() {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..budget.min(self.table.len()) {
            if self.cursor >= self.table.len() {
                self.cursor = 0;
            }
            let i = self.cursor;
            let idle = match self.table.entry(i) {
                Some((_, e)) => {
                    now_ns.saturating_sub(e.last_seen) >= timeout
                        && sched.flow_backlog(e.id).is_some_and(|b| b.packets == 0)
                }
                None => false,
            };
            if idle {
                if let Some(e) = self.table.remove_entry(i) {
                    // Idle and configured: removal cannot fail.
                    let _ = sched.remove_flow(e.id);
                    removed += 1;
                    self.counters.expired += 1;
                }
                // The last entry moved into i: look again.
                continue;
            }
            self.cursor = i + 1;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build, Kind, SchedConfig};

    fn key(src_port: u16) -> FlowKey {
        FlowKey {
            src: 1,
            dst: 2,
            src_port,
            dst_port: 80,
            proto: 17,
            ..FlowKey::default()
        }
    }

    fn params(max_flows: u32, timeout: u64) -> FlowsetParams {
        FlowsetParams {
            mask: FlowMask::FIVE_TUPLE,
            flow: FlowConfig::default(),
            max_flows,
            idle_timeout_ns: timeout,
        }
    }

    #[test]
    fn flows_are_created_once_per_masked_key_and_bounded() {
        let mut s = build::<u32>(Kind::Drr, SchedConfig::default()).expect("sched");
        let mut fs = Flowset::new(params(3, 0), 9);
        let a = fs.flow_for(&key(1), 0, &mut s).expect("a");
        assert_eq!(fs.flow_for(&key(1), 5, &mut s), Some(a));
        let b = fs.flow_for(&key(2), 0, &mut s).expect("b");
        assert_ne!(a, b);
        let c = fs.flow_for(&key(3), 0, &mut s).expect("c");
        // max_flows = 3: flows 4 and 5 share the overflow queue.
        let o = fs.flow_for(&key(4), 0, &mut s).expect("overflow");
        assert!(![a, b, c].contains(&o));
        assert_eq!(fs.flow_for(&key(5), 0, &mut s), Some(o));
        assert_eq!(fs.flows(), 3);
        let n = fs.counters();
        assert_eq!((n.created, n.overflowed, n.refused), (3, 2, 0));
        assert_eq!(s.flows(), 4);
        // A mask that ignores ports folds them into one flow.
        let mut one = Flowset::new(
            FlowsetParams {
                mask: FlowMask::NONE,
                ..params(10, 0)
            },
            9,
        );
        let x = one.flow_for(&key(1), 0, &mut s).expect("x");
        assert_eq!(one.flow_for(&key(2), 0, &mut s), Some(x));
    }

    #[test]
    fn idle_flows_expire_busy_ones_do_not() {
        let mut s = build::<u32>(Kind::Qfq, SchedConfig::default()).expect("sched");
        let mut fs = Flowset::new(params(1000, 1_000), 9);
        let ids: Vec<FlowId> = (0..500)
            .map(|p| fs.flow_for(&key(p), 0, &mut s).expect("flow"))
            .collect();
        // Flow 7 has a packet queued, flow 8 was seen recently.
        s.enqueue(0, ids[7], 100).expect("enqueue");
        fs.flow_for(&key(8), 900, &mut s);
        let mut removed = 0;
        for _ in 0..100 {
            removed += fs.expire(1_500, 64, &mut s);
        }
        assert_eq!(removed, 498);
        assert_eq!(fs.flows(), 2);
        assert_eq!(s.flows(), 2);
        assert_eq!(fs.counters().expired, 498);
        // The surviving flows are still found under their keys.
        assert_eq!(fs.flow_for(&key(7), 1_600, &mut s), Some(ids[7]));
        assert_eq!(fs.flow_for(&key(8), 1_600, &mut s), Some(ids[8]));
    }
}
