//! A timing wheel of ids (Carousel: Saeed et al., "Carousel: Scalable
//! Traffic Shaping at End Hosts", SIGCOMM 2017): an id waits in the slot of
//! the instant it may go. Slots are `2^shift` ns wide, an id is put in the
//! first slot that starts at or after its instant (so it is never released
//! early, and at most one slot late), a bitmap finds the occupied slots,
//! and ids further out than the wheel's span wait in a heap until they come
//! within it. O(1) to add an id; O(1) per id released, plus one bitmap word
//! per 64 slots the release passes over. Nothing allocates after `new`.

use super::timeheap::TimeHeap;

const NIL: u32 = u32::MAX;

/// Ids `0..cap` waiting for their instants.
#[derive(Debug, Clone)]
pub struct Wheel {
    shift: u32,
    /// Per slot: the first id of its list.
    heads: Vec<u32>,
    /// Occupied slots.
    bits: Vec<u64>,
    /// Per id: the next in its slot's list.
    next: Vec<u32>,
    /// Per id: whether it waits (in a slot or in `far`).
    waiting: Vec<bool>,
    /// The absolute number of the next slot to release (`instant >>
    /// shift`): every slot before it is empty.
    cursor: u64,
    /// Ids beyond the span, by instant.
    far: TimeHeap,
    len: usize,
}

impl Wheel {
    /// A wheel for ids `0..cap` of `2^slots_log2` slots, each `2^shift`
    /// ns wide (`slots_log2` at least 6).
    pub fn new(cap: usize, shift: u32, slots_log2: u32) -> Self {
        let n = 1usize << slots_log2.max(6);
        Self {
            shift,
            heads: vec![NIL; n],
            bits: vec![0; n / 64],
            next: vec![NIL; cap],
            waiting: vec![false; cap],
            cursor: 0,
            far: TimeHeap::new(cap),
            len: 0,
        }
    }

    /// Ids waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when none waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `id` waits.
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.waiting.get(id as usize).copied().unwrap_or(false)
    }

    fn span(&self) -> u64 {
        self.heads.len() as u64
    }

    /// Puts `id` (not waiting, below the capacity) to wait for instant
    /// `at`; false if it cannot (an id out of range, or one waiting).
    pub fn insert(&mut self, id: u32, at: u64) -> bool {
        match self.waiting.get(id as usize) {
            Some(false) => {}
            _ => return false,
        }
        self.waiting[id as usize] = true;
        self.len += 1;
        let slot = self.slot_of(at).max(self.cursor);
        if slot - self.cursor >= self.span() {
            self.far.set(id, at);
        } else {
            self.link(id, slot);
        }
        true
    }

    fn link(&mut self, id: u32, slot: u64) {
        let i = (slot & (self.span() - 1)) as usize;
        self.next[id as usize] = self.heads[i];
        self.heads[i] = id;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    /// The earliest instant an id may be released: a lower bound (the
    /// start of the first occupied slot, or the earliest far instant).
    pub fn next_at(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let n = self.span();
        let start = (self.cursor & (n - 1)) as usize;
        let far = self.far.peek().map(|(t, _)| self.slot_of(t) << self.shift);
        // The first occupied slot from the cursor on, wrapping once (a far
        // id may be earlier: the span moved on since it was put there).
        let words = self.bits.len();
        for k in 0..=words {
            let w = (start / 64 + k) % words;
            let mut word = self.bits[w];
            if k == 0 {
                word &= u64::MAX << (start % 64);
            } else if k == words {
                word &= !(u64::MAX << (start % 64));
            }
            if word != 0 {
                let i = (w * 64 + word.trailing_zeros() as usize) as u64;
                let offset = (i + n - (self.cursor & (n - 1))) & (n - 1);
                let slot = (self.cursor + offset) << self.shift;
                return Some(far.map_or(slot, |f| f.min(slot)));
            }
        }
        far
    }

    /// Releases every id, whatever its instant (a drain), to `f`; the
    /// cursor stays where it was.
    pub fn release_all(&mut self, mut f: impl FnMut(u32)) {
        while let Some((_, id)) = self.far.pop_due(u64::MAX) {
            self.waiting[id as usize] = false;
            self.len -= 1;
            f(id);
        }
        for w in 0..self.bits.len() {
            self.take_slots(w, u64::MAX, &mut f);
        }
    }

    /// Empties the slots of bitmap word `w` that `mask` selects, handing
    /// their ids to `f`.
    fn take_slots(&mut self, w: usize, mask: u64, f: &mut impl FnMut(u32)) {
        let mut word = self.bits[w] & mask;
        self.bits[w] &= !mask;
        while word != 0 {
            let j = w * 64 + word.trailing_zeros() as usize;
            word &= word - 1;
            let mut id = std::mem::replace(&mut self.heads[j], NIL);
            while id != NIL {
                let nx = std::mem::replace(&mut self.next[id as usize], NIL);
                self.waiting[id as usize] = false;
                self.len -= 1;
                f(id);
                id = nx;
            }
        }
    }

    /// The slot an instant is due in: the first starting at or after it.
    #[inline]
    fn slot_of(&self, at: u64) -> u64 {
        (at >> self.shift) + u64::from(at & ((1 << self.shift) - 1) != 0)
    }

    /// Releases every id whose slot starts at or before `now`, in slot
    /// order (far ones last), to `f`.
    pub fn release(&mut self, now: u64, mut f: impl FnMut(u32)) {
        let target = now >> self.shift;
        if self.len == 0 {
            self.cursor = self.cursor.max(target);
            return;
        }
        let n = self.span();
        if target >= self.cursor {
            // Slots cursor..=target (at most one revolution: every slot then).
            let count = (target - self.cursor + 1).min(n);
            let first = (self.cursor & (n - 1)) as usize;
            let mut done = 0u64;
            while done < count {
                let i = (first + done as usize) % n as usize;
                let w = i / 64;
                let bit = i % 64;
                // The rest of this word within the range.
                let take = (64 - bit as u64).min(count - done);
                let mask = if take == 64 {
                    u64::MAX
                } else {
                    ((1u64 << take) - 1) << bit
                };
                self.take_slots(w, mask, &mut f);
                done += take;
            }
            self.cursor = target + 1;
        }
        // Far ids now due, or now within the span (from the cursor as it
        // is now: it may have moved a long way).
        while let Some((at, id)) = self.far.peek() {
            let slot = self.slot_of(at);
            if slot > target && slot.max(self.cursor) - self.cursor >= n {
                break;
            }
            self.far.remove(id);
            if slot <= target {
                self.waiting[id as usize] = false;
                self.len -= 1;
                f(id);
            } else {
                self.link(id, slot.max(self.cursor));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Against a plain list: every id comes out exactly once, never before
    /// its instant, at most one slot after it (or at the first release
    /// after that), whatever the mix of near and far instants.
    #[test]
    fn releases_each_id_once_never_early_at_most_a_slot_late() {
        let mut r = Rng::new(5);
        let cap = 500u32;
        let shift = 10; // 1024 ns slots
        let mut w = Wheel::new(cap as usize, shift, 8); // 256 slots: 262 µs
        let mut at = vec![None::<u64>; cap as usize];
        let mut due = vec![0u64; cap as usize];
        let mut now = 1_000_000u64;
        let mut released = 0u64;
        for _ in 0..200_000 {
            match r.next_u64() % 3 {
                0 | 1 => {
                    let id = (r.next_u64() % u64::from(cap)) as u32;
                    // Mostly near, sometimes past the span, sometimes past.
                    let d = match r.next_u64() % 10 {
                        0 => r.next_u64() % 5_000_000,
                        1 => 0,
                        _ => r.next_u64() % 200_000,
                    };
                    let t = if r.next_u64() % 20 == 0 {
                        now.saturating_sub(r.next_u64() % 5000)
                    } else {
                        now + d
                    };
                    let ok = w.insert(id, t);
                    assert_eq!(ok, at[id as usize].is_none());
                    if ok {
                        at[id as usize] = Some(t);
                        // Due in its first slot, but not in one a release
                        // has passed already.
                        let ceil = t.div_ceil(1 << shift) << shift;
                        due[id as usize] = ceil.max(((released >> shift) + 1) << shift);
                    }
                }
                _ => {
                    now += r.next_u64() % 50_000;
                    assert_eq!(w.next_at().is_some(), !w.is_empty());
                    if let Some(n) = w.next_at() {
                        // A lower bound: nothing is released before it
                        // (time moves on to just before it).
                        if n > now + 1 && r.next_u64() % 2 == 0 {
                            now = n - 1;
                            let mut early = 0;
                            w.release(now, |_| early += 1);
                            assert_eq!(early, 0, "released before next_at {n}");
                        }
                    }
                    let mut out = Vec::new();
                    w.release(now, |id| out.push(id));
                    released = now;
                    for id in out {
                        let t = at[id as usize].take().expect("released once");
                        assert!(t <= now, "released early: {t} > {now}");
                    }
                    // Nothing due is left behind.
                    for (id, t) in at.iter().enumerate() {
                        if let Some(t) = t {
                            assert!(
                                due[id] > now,
                                "id {id} at {t} (due {}) still waiting at {now}",
                                due[id]
                            );
                        }
                    }
                }
            }
            assert_eq!(w.len(), at.iter().flatten().count());
        }
        let mut out = Vec::new();
        w.release_all(|id| out.push(id));
        assert_eq!(out.len(), at.iter().flatten().count());
        assert!(w.is_empty() && w.next_at().is_none());
    }
}
