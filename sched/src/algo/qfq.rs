//! QFQ — Quick Fair Queueing.
//!
//! F. Checconi, L. Rizzo, P. Valente, "QFQ: Efficient Packet Scheduling
//! With Tight Guarantees", IEEE/ACM ToN 21(3), 2013. The structure follows
//! the paper and its reference code (dummynet `dn_sched_qfq.c`, Linux
//! `sch_qfq.c` before aggregates): O(1) per packet, no loop over flows.
//!
//! ## Virtual time
//! Flow timestamps `S`, `F` and the system clock `V` are `u64` fixed point
//! with [`VT_FRAC_BITS`] = 40 fractional bits, wrapping, compared with
//! [`vt_gt`]. A packet of `len` bytes on a flow of weight `w` costs
//! `len * inv_w`, `inv_w = 2^40 / w`. `V` advances by `len / wsum` per packet
//! with `wsum` the sum of the weights of all configured flows (the paper's
//! normalisation `sum(phi) <= 1`); the advance is exact ([`VClock`]: quotient
//! plus carried remainder), so the weight sum is not capped. dummynet
//! multiplies by a precomputed `2^30 / wsum`, which is why it caps the sum at
//! 2^17; Linux caps weights at 1024 and the sum at 65536.
//!
//! ## Groups
//! A flow belongs to group `i = ceil(log2(lmax * inv_w)) - MIN_SLOT_SHIFT`,
//! whose slot size is `sigma_i = 2^(i + MIN_SLOT_SHIFT)` (so `lmax / w <=
//! sigma_i < 2 lmax / w` in byte units). With `lmax` in 64..=65536 and `w` in
//! 1..=65536 the index runs 0..=26: [`NUM_GROUPS`] = 27, one bit each in the
//! ER/IR/EB/IB bitmaps (eligible/ineligible × ready/blocked). A group keeps
//! its backlogged flows in [`MAX_SLOTS`] = 32 buckets by rounded start time;
//! `full_slots` has bit `k` set when bucket `front + k` is non-empty.
//!
//! ## Packets longer than lmax
//! The engine drops them with `DropReason::BadLength` (counted) before they
//! reach QFQ: a flow's group is fixed by its `lmax`, and `F - S <= sigma_i`
//! is what keeps a flow within the 32 slots (Linux's QFQ corrupted its slot
//! state when a packet exceeded lmax).
//!
//! ## Bound (used by the tests)
//! The paper's B-WFI: a continuously backlogged flow `k` in group `i` is
//! never served less than its guaranteed share by more than
//! `3 * phi_k * sigma_i + 2 * Lmax` bytes, with `phi_k * sigma_i` in
//! `[lmax_k, 2 lmax_k)`; [`Qfq::lag_bound`] computes it for a flow.

use super::plugin::{Algorithm, Flow};
use super::queue::NIL;
use crate::time::{inv_weight, vt_gt, VClock, VT_FRAC_BITS};
use crate::types::{ConfigError, FlowConfig, Lmax, SchedConfig, Weight};
use std::num::NonZeroU64;

/// Buckets per group. Start times within a group span at most a few slot
/// sizes (paper, Lemma 4); `slot_insert` clamps at `MAX_SLOTS - 2` (as Linux
/// does) so that `slot_rotate`'s shift by one can never push a bucket out.
pub const MAX_SLOTS: u32 = 32;
/// log2 of the smallest slot: `Lmax::MIN * 2^VT_FRAC_BITS / Weight::MAX`
/// = 2^(6 + 40 - 16). Depends on `VT_FRAC_BITS`, `Lmax::MIN`, `Weight::MAX`.
pub const MIN_SLOT_SHIFT: u32 =
    VT_FRAC_BITS + Lmax::MIN.trailing_zeros() - Weight::MAX.trailing_zeros();
/// Groups: indexes 0..=log2(Lmax::MAX * 2^40 / 1) - MIN_SLOT_SHIFT = 26.
pub const NUM_GROUPS: usize =
    (Lmax::MAX.trailing_zeros() + VT_FRAC_BITS - MIN_SLOT_SHIFT) as usize + 1;

/// Group indexes are masked with this (the array has 32 entries, indexes stay < 27).
const GROUP_MASK: usize = 31;
/// Slot indexes are masked with this (`MAX_SLOTS` = 32).
const SLOT_MASK: u32 = MAX_SLOTS - 1;

const ER: usize = 0;
const IR: usize = 1;
const EB: usize = 2;
const IB: usize = 3;

/// Per-flow QFQ state.
#[derive(Debug, Clone)]
pub struct QfqFlow {
    /// Virtual start of the head packet.
    s: u64,
    /// Virtual finish of the head packet (of the last packet when idle).
    f: u64,
    /// `2^40 / weight`.
    inv_w: u64,
    /// Next flow in the same bucket.
    next: u32,
    /// Weight (for `wsum`).
    weight: u32,
    /// Group index.
    grp: u8,
}

impl Default for QfqFlow {
    fn default() -> Self {
        Self {
            s: 0,
            f: 0,
            inv_w: 0,
            next: NIL,
            weight: 0,
            grp: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Group {
    /// Approximate (rounded) start and finish of the group.
    s: u64,
    f: u64,
    /// `round_down(ts, slot_shift) == ts & mask`.
    mask: u64,
    slot_shift: u32,
    front: u32,
    full_slots: u32,
    slots: [u32; MAX_SLOTS as usize],
}

/// QFQ state.
#[derive(Debug, Clone)]
pub struct Qfq {
    clock: VClock,
    /// Sum of the weights of all configured flows.
    wsum: u64,
    /// `max(wsum, 1)`, the divisor of the clock's advance (typed non-zero, so
    /// the division needs no zero test; nothing is served while `wsum` is 0).
    wsum_div: NonZeroU64,
    bitmaps: [u32; 4],
    /// Indexed `& GROUP_MASK`: 32 entries (27 used) so the index needs no bounds check.
    groups: [Group; 32],
    /// Times a bucket index had to be clamped (see [`MAX_SLOTS`]); stays 0 in
    /// every scenario of the test suite.
    pub slot_clamps: u64,
}

#[inline(always)]
fn round_down(ts: u64, shift: u32) -> u64 {
    ts & !((1u64 << shift) - 1)
}

#[inline(always)]
fn mask_from(bitmap: u32, from: u32) -> u32 {
    bitmap & !((1u32 << from) - 1)
}

/// Puts flow `id` (state `fa`, rounded start `rounded_s`) in its bucket of `grp`.
#[inline(always)]
fn bucket_insert(grp: &mut Group, fa: &mut QfqFlow, id: usize, rounded_s: u64, clamps: &mut u64) {
    let mut slot = rounded_s.wrapping_sub(grp.s) >> grp.slot_shift;
    if slot > (MAX_SLOTS - 2) as u64 {
        // Outside the window the theory allows (only reachable through
        // reconfiguration corner cases): pull the flow's timestamps back,
        // as Linux does, rather than index past the bucket ring.
        let delta = rounded_s
            .wrapping_sub(grp.s)
            .wrapping_sub(((MAX_SLOTS - 2) as u64) << grp.slot_shift);
        fa.s = fa.s.wrapping_sub(delta);
        fa.f = fa.f.wrapping_sub(delta);
        slot = (MAX_SLOTS - 2) as u64;
        *clamps += 1;
    }
    let i = ((grp.front + slot as u32) & SLOT_MASK) as usize;
    fa.next = grp.slots[i];
    grp.slots[i] = id as u32;
    grp.full_slots |= 1 << slot;
}

/// Group index for a flow: `ceil(log2(lmax * inv_w)) - MIN_SLOT_SHIFT`, at least 0.
pub fn group_index(inv_w: u64, lmax: u32) -> u32 {
    let slot_size = lmax as u64 * inv_w;
    let ceil_log2 = 64 - (slot_size - 1).leading_zeros();
    ceil_log2.saturating_sub(MIN_SLOT_SHIFT)
}

impl Qfq {
    /// Virtual time.
    pub fn virtual_time(&self) -> u64 {
        self.clock.v
    }

    /// The QFQ B-WFI bound for a flow in bytes: `3 * phi_k * sigma_i + 2 * lmax_all`,
    /// where `phi_k * sigma_i = weight * sigma_i / 2^40` in our units.
    pub fn lag_bound(flow: &Flow<QfqFlow>, lmax_all: u32) -> f64 {
        let shift = group_index(flow.a.inv_w, flow.q.lmax()) + MIN_SLOT_SHIFT;
        let phi_sigma = flow.a.weight as f64 * (2f64).powi(shift as i32 - VT_FRAC_BITS as i32);
        3.0 * phi_sigma + 2.0 * lmax_all as f64
    }

    /// The group a flow was placed in (for tests and introspection).
    pub fn group_of(flow: &Flow<QfqFlow>) -> u32 {
        flow.a.grp as u32
    }

    #[inline(always)]
    fn bit(g: usize) -> u32 {
        1u32 << g
    }

    #[inline]
    fn move_groups(&mut self, mask: u32, src: usize, dst: usize) {
        self.bitmaps[dst] |= self.bitmaps[src] & mask;
        self.bitmaps[src] &= !mask;
    }

    /// ER=0, IR=1, EB=2, IB=3: eligibility from S vs V, then blocked if a
    /// lower-index ER group finishes earlier.
    #[inline]
    fn calc_state(&self, g: usize) -> usize {
        let grp = &self.groups[g & GROUP_MASK];
        let mut state = vt_gt(grp.s, self.clock.v) as usize;
        let mask = mask_from(self.bitmaps[ER], g as u32);
        if mask != 0 {
            let next = &self.groups[(mask.trailing_zeros() as usize) & GROUP_MASK];
            if vt_gt(grp.f, next.f) {
                state |= EB;
            }
        }
        state
    }

    #[inline]
    fn unblock_groups(&mut self, g: usize, old_finish: u64) {
        let mask = mask_from(self.bitmaps[ER], g as u32 + 1);
        if mask != 0 {
            let next = &self.groups[(mask.trailing_zeros() as usize) & GROUP_MASK];
            if !vt_gt(next.f, old_finish) {
                return;
            }
        }
        let mask = Self::bit(g) - 1;
        self.move_groups(mask, EB, ER);
        self.move_groups(mask, IB, IR);
    }

    /// After V moved from `old_v`: groups whose slot boundary V crossed become eligible.
    #[inline]
    fn make_eligible(&mut self, old_v: u64) {
        let vslot = self.clock.v >> MIN_SLOT_SHIFT;
        let old_vslot = old_v >> MIN_SLOT_SHIFT;
        if vslot != old_vslot {
            // 1-based position of the highest flipped bit (Linux `fls`): every group up to
            // and including that index saw V cross one of its slot boundaries.
            let last_flip = 64 - (vslot ^ old_vslot).leading_zeros();
            let mask = if last_flip >= 32 {
                u32::MAX
            } else {
                (1u32 << last_flip) - 1
            };
            self.move_groups(mask, IR, ER);
            self.move_groups(mask, IB, EB);
        }
    }

    #[inline]
    fn update_eligible(&mut self, old_v: u64) {
        let ineligible = self.bitmaps[IR] | self.bitmaps[IB];
        if ineligible != 0 {
            if self.bitmaps[ER] == 0 {
                let s = self.groups[(ineligible.trailing_zeros() as usize) & GROUP_MASK].s;
                if vt_gt(s, self.clock.v) {
                    self.clock.set(s);
                }
            }
            self.make_eligible(old_v);
        }
    }

    /// First non-empty bucket's head flow; moves `front` to it.
    #[inline]
    fn slot_scan(&mut self, g: usize) -> Option<usize> {
        let grp = &mut self.groups[g & GROUP_MASK];
        if grp.full_slots == 0 {
            return None;
        }
        let i = grp.full_slots.trailing_zeros();
        if i > 0 {
            grp.front = (grp.front + i) % MAX_SLOTS;
            grp.full_slots >>= i;
        }
        Some(grp.slots[(grp.front & SLOT_MASK) as usize] as usize)
    }

    /// The group's start moves back to `rounded_s`: shift the bucket window down.
    #[inline]
    fn slot_rotate(&mut self, g: usize, rounded_s: u64) {
        let grp = &mut self.groups[g & GROUP_MASK];
        // At most 1 by construction (S <= round(V) + sigma for an ineligible group, and the
        // new flow starts at or after round(V)); insertions stop at MAX_SLOTS - 2 so the
        // top bucket survives the shift.
        let i =
            (grp.s.wrapping_sub(rounded_s) >> grp.slot_shift).min((MAX_SLOTS - 1) as u64) as u32;
        grp.full_slots <<= i;
        grp.front = (grp.front + MAX_SLOTS - i) % MAX_SLOTS;
    }

    /// Start time for a flow that becomes backlogged (paper §4.3; Linux `qfq_update_start`).
    #[inline]
    fn update_start(&self, fl: &mut QfqFlow) {
        let g = fl.grp as usize;
        let shift = self.groups[g & GROUP_MASK].slot_shift;
        let v = self.clock.v;
        let rounded_f = round_down(fl.f, shift);
        let limit = round_down(v, shift).wrapping_add(1u64 << shift);
        if !vt_gt(fl.f, v) || vt_gt(rounded_f, limit) {
            // Stale F (the flow has been idle): start at V, unless that would
            // break the ordering of the ER groups.
            let mask = mask_from(self.bitmaps[ER], g as u32);
            if mask != 0 {
                let next_f = self.groups[(mask.trailing_zeros() as usize) & GROUP_MASK].f;
                if vt_gt(rounded_f, next_f) {
                    fl.s = if vt_gt(limit, next_f) { next_f } else { limit };
                    return;
                }
            }
            fl.s = v;
        } else {
            fl.s = fl.f;
        }
    }

    /// The front bucket of group `g` emptied (its head left it, idle or for a
    /// later bucket): the group starts at its next non-empty bucket, or has
    /// gone, and the groups' states follow. Out of line: with many flows per
    /// group the front bucket rarely empties.
    #[inline(never)]
    fn front_emptied(&mut self, flows: &[Flow<QfqFlow>], g: usize) {
        let old_f = self.groups[g & GROUP_MASK].f;
        match self.slot_scan(g) {
            None => self.bitmaps[ER] &= !Self::bit(g),
            Some(head) => {
                let grp = &mut self.groups[g & GROUP_MASK];
                let rounded_s = flows[head].a.s & grp.mask;
                if grp.s == rounded_s {
                    return;
                }
                grp.s = rounded_s;
                grp.f = rounded_s.wrapping_add(2u64 << grp.slot_shift);
                self.bitmaps[ER] &= !Self::bit(g);
                let st = self.calc_state(g);
                self.bitmaps[st] |= Self::bit(g);
            }
        }
        // Unblock even if the group has gone away.
        self.unblock_groups(g, old_f);
    }

    /// A flow became backlogged: start time, bucket, group state (out of line:
    /// most packets arrive at a flow that is already backlogged).
    #[inline(never)]
    fn activate(&mut self, flows: &mut [Flow<QfqFlow>], id: usize) {
        let len = flows[id].q.head_len() as u64;
        let g = flows[id].a.grp as usize;
        let fl = &mut flows[id].a;
        self.update_start(fl);
        fl.f = fl.s.wrapping_add(len * fl.inv_w);
        let s = fl.s;
        let shift = self.groups[g & GROUP_MASK].slot_shift;
        let rounded_s = s & self.groups[g & GROUP_MASK].mask;
        // Insert the flow in its bucket. If it starts before the group, the group's
        // start moves back (make room, recompute its state); if the group was empty
        // and nothing is eligible, V catches up to it.
        let update_group = if self.groups[g & GROUP_MASK].full_slots != 0 {
            if vt_gt(self.groups[g & GROUP_MASK].s, s) {
                self.slot_rotate(g, rounded_s);
                // The group was ineligible (its S > this flow's S >= V).
                self.bitmaps[IR] &= !Self::bit(g);
                self.bitmaps[IB] &= !Self::bit(g);
                true
            } else {
                false
            }
        } else {
            if self.bitmaps[ER] == 0 && vt_gt(rounded_s, self.clock.v) {
                self.clock.set(rounded_s);
            }
            true
        };
        if update_group {
            let grp = &mut self.groups[g & GROUP_MASK];
            grp.s = rounded_s;
            grp.f = rounded_s.wrapping_add(2u64 << shift);
            let st = self.calc_state(g);
            self.bitmaps[st] |= Self::bit(g);
        }
        bucket_insert(
            &mut self.groups[g & GROUP_MASK],
            &mut flows[id].a,
            id,
            rounded_s,
            &mut self.slot_clamps,
        );
    }
}

impl Algorithm for Qfq {
    type Flow = QfqFlow;
    const NAME: &'static str = "qfq";

    fn new(_cfg: &SchedConfig) -> Self {
        let groups = std::array::from_fn(|i| Group {
            s: 0,
            f: 0,
            mask: u64::MAX << (i as u32 + MIN_SLOT_SHIFT),
            slot_shift: i as u32 + MIN_SLOT_SHIFT,
            front: 0,
            full_slots: 0,
            slots: [NIL; MAX_SLOTS as usize],
        });
        Self {
            clock: VClock::default(),
            wsum: 0,
            wsum_div: NonZeroU64::MIN,
            bitmaps: [0; 4],
            groups,
            slot_clamps: 0,
        }
    }

    fn configure(
        &mut self,
        flows: &mut [Flow<QfqFlow>],
        id: usize,
        cfg: &FlowConfig,
        fresh: bool,
    ) -> Result<(), ConfigError> {
        let w = cfg.weight.get();
        let inv_w = inv_weight(w);
        let grp = group_index(inv_w, cfg.lmax.get());
        if grp as usize >= NUM_GROUPS {
            // Unreachable with validated Weight/Lmax; refuse rather than index out of range.
            return Err(ConfigError::Unsupported(
                "lmax / weight outside QFQ's group range",
            ));
        }
        let fl = &mut flows[id].a;
        if !fresh {
            self.wsum -= fl.weight as u64;
        }
        self.wsum += w as u64;
        self.wsum_div = NonZeroU64::new(self.wsum).unwrap_or(NonZeroU64::MIN);
        fl.weight = w;
        fl.inv_w = inv_w;
        fl.grp = grp as u8;
        if fresh {
            fl.s = self.clock.v;
            fl.f = self.clock.v;
        }
        Ok(())
    }

    fn remove(&mut self, flows: &mut [Flow<QfqFlow>], id: usize) {
        self.wsum -= flows[id].a.weight as u64;
        self.wsum_div = NonZeroU64::new(self.wsum).unwrap_or(NonZeroU64::MIN);
    }

    #[inline(always)]
    fn arrived(&mut self, flows: &mut [Flow<QfqFlow>], id: usize, was_idle: bool, _now: u64) {
        if was_idle {
            self.activate(flows, id);
        }
    }

    #[inline]
    fn select(&mut self, _flows: &mut [Flow<QfqFlow>]) -> Option<usize> {
        if self.bitmaps[ER] == 0 {
            // Defensive: keep work conservation even if nothing is eligible.
            if self.bitmaps[IR] | self.bitmaps[IB] == 0 {
                return None;
            }
            let old_v = self.clock.v;
            self.update_eligible(old_v);
            if self.bitmaps[ER] == 0 {
                return None;
            }
        }
        let grp = &self.groups[(self.bitmaps[ER].trailing_zeros() as usize) & GROUP_MASK];
        Some(grp.slots[(grp.front & SLOT_MASK) as usize] as usize)
    }

    #[inline]
    fn served(
        &mut self,
        flows: &mut [Flow<QfqFlow>],
        id: usize,
        len: u32,
        now_empty: bool,
        _now: u64,
    ) {
        let old_v = self.clock.v;
        self.clock.advance_nz(len, self.wsum_div);
        let fl = &mut flows[id];
        let g = fl.a.grp as usize & GROUP_MASK;
        let grp = &mut self.groups[g];
        // `id` heads its group's front bucket (`select` picked it there).
        let front = (grp.front & SLOT_MASK) as usize;
        debug_assert_eq!(grp.slots[front] as usize, id);
        // The served packet's finish is the flow's new start.
        let s = fl.a.f;
        fl.a.s = s;
        let rounded_s = s & grp.mask;
        if !now_empty {
            fl.a.f = s.wrapping_add(fl.q.head_len() as u64 * fl.a.inv_w);
            if rounded_s == grp.s {
                // Still in the front bucket, at its head: nothing moves.
                self.update_eligible(old_v);
                return;
            }
        }
        // It leaves the front bucket, for a later one if still backlogged.
        let next = fl.a.next;
        grp.slots[front] = next;
        if next == NIL {
            grp.full_slots &= !1;
        }
        if !now_empty {
            bucket_insert(grp, &mut fl.a, id, rounded_s, &mut self.slot_clamps);
        }
        // While the front bucket holds flows its head starts in the group's
        // slot (`grp.s`), so the group's timestamps and state stay (the
        // reference code rescans and compares, to the same effect).
        if grp.full_slots & 1 == 0 {
            self.front_emptied(flows, g);
        } else {
            debug_assert_eq!(
                flows[grp.slots[front] as usize].a.s & grp.mask,
                grp.s,
                "the front bucket's flows start in the group's slot"
            );
        }
        self.update_eligible(old_v);
    }

    fn set_virtual_time(&mut self, v: u64) {
        self.clock.set(v);
        for g in self.groups.iter_mut() {
            g.s = v;
            g.f = v;
        }
    }
}
