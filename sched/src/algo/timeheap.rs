//! An indexed binary min-heap of `(instant, id)`: each id (below a capacity
//! fixed at construction) is in the heap at most once, and can be moved or
//! removed in O(log n) by its id. Shapers keep their next events in it
//! (HTB's classes waiting for tokens); nothing allocates after `new`.
//!
//! Instants are absolute nanoseconds compared as plain integers (no
//! wrap-around: a `u64` of ns lasts 584 years). Ties pop in no set order.

/// Marks an id that is not in the heap.
const NOT_IN: u32 = u32::MAX;

/// Min-heap of `(instant, id)`, ids below the capacity, each at most once.
#[derive(Debug, Clone, Default)]
pub struct TimeHeap {
    items: Vec<(u64, u32)>,
    /// id → its index in `items`, or [`NOT_IN`].
    pos: Vec<u32>,
}

impl TimeHeap {
    /// An empty heap for ids `0..cap` (`cap` below `u32::MAX`).
    pub fn new(cap: usize) -> Self {
        Self {
            items: Vec::with_capacity(cap),
            pos: vec![NOT_IN; cap],
        }
    }

    /// Makes room for ids `0..cap` (never shrinks; allocates: not for
    /// the packet path).
    pub fn grow(&mut self, cap: usize) {
        if cap > self.pos.len() {
            self.pos.resize(cap, NOT_IN);
        }
    }

    /// Entries in the heap.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The earliest entry.
    #[inline]
    pub fn peek(&self) -> Option<(u64, u32)> {
        self.items.first().copied()
    }

    /// Whether `id` is in the heap, and at which instant.
    #[inline]
    pub fn get(&self, id: u32) -> Option<u64> {
        let i = *self.pos.get(id as usize)?;
        self.items.get(i as usize).map(|&(t, _)| t)
    }

    /// Puts `id` at `at` (moves it if it is in already). An id at or above
    /// the capacity is ignored (returns false).
    pub fn set(&mut self, id: u32, at: u64) -> bool {
        let Some(&p) = self.pos.get(id as usize) else {
            return false;
        };
        if p == NOT_IN {
            let i = self.items.len();
            self.items.push((at, id));
            self.up(i);
        } else {
            let i = p as usize;
            let old = self.items[i].0;
            self.items[i].0 = at;
            if at < old {
                self.up(i);
            } else {
                self.down(i);
            }
        }
        true
    }

    /// Takes `id` out; false if it was not in.
    pub fn remove(&mut self, id: u32) -> bool {
        let Some(&p) = self.pos.get(id as usize) else {
            return false;
        };
        if p == NOT_IN {
            return false;
        }
        self.take_at(p as usize);
        true
    }

    /// Takes the earliest entry if it is due by `now`.
    #[inline]
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, u32)> {
        match self.items.first() {
            Some(&(t, _)) if t <= now => Some(self.take_at(0)),
            _ => None,
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        for &(_, id) in &self.items {
            self.pos[id as usize] = NOT_IN;
        }
        self.items.clear();
    }

    fn take_at(&mut self, i: usize) -> (u64, u32) {
        let out = self.items[i];
        self.pos[out.1 as usize] = NOT_IN;
        let Some(last) = self.items.pop() else {
            return out;
        };
        if i < self.items.len() {
            // Floyd's way: the hole goes down to a leaf along the smaller
            // children (one comparison a level, not two), then the last
            // entry goes into it and up to where it belongs (usually not
            // far: it came from the bottom) — above `i` too, if it must.
            let leaf = self.hole_down(i);
            self.items[leaf] = last;
            self.up(leaf);
        }
        out
    }

    /// Moves the hole at `i` down to a leaf, each step filling it with the
    /// smaller child; returns the leaf.
    fn hole_down(&mut self, mut i: usize) -> usize {
        let items = &mut self.items[..];
        let n = items.len();
        loop {
            let l = 2 * i + 1;
            let Some(&lv) = items.get(l) else {
                return i;
            };
            let (c, cv) = match items.get(l + 1) {
                Some(&rv) if rv.0 < lv.0 => (l + 1, rv),
                _ => (l, lv),
            };
            debug_assert!(c < n);
            items[i] = cv;
            if let Some(p) = self.pos.get_mut(cv.1 as usize) {
                *p = i as u32;
            }
            i = c;
        }
    }

    /// Sifts entry `i` up; returns where it ended.
    fn up(&mut self, mut i: usize) -> usize {
        let items = &mut self.items[..];
        let e = items[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            let pv = items[parent];
            if pv.0 <= e.0 {
                break;
            }
            items[i] = pv;
            if let Some(p) = self.pos.get_mut(pv.1 as usize) {
                *p = i as u32;
            }
            i = parent;
        }
        items[i] = e;
        if let Some(p) = self.pos.get_mut(e.1 as usize) {
            *p = i as u32;
        }
        i
    }

    fn down(&mut self, mut i: usize) {
        let items = &mut self.items[..];
        let e = items[i];
        loop {
            let l = 2 * i + 1;
            let Some(&lv) = items.get(l) else {
                break;
            };
            let (c, cv) = match items.get(l + 1) {
                Some(&rv) if rv.0 < lv.0 => (l + 1, rv),
                _ => (l, lv),
            };
            if cv.0 >= e.0 {
                break;
            }
            items[i] = cv;
            if let Some(p) = self.pos.get_mut(cv.1 as usize) {
                *p = i as u32;
            }
            i = c;
        }
        items[i] = e;
        if let Some(p) = self.pos.get_mut(e.1 as usize) {
            *p = i as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::BTreeSet;

    /// Random sets, moves, removals and pops against an ordered set.
    #[test]
    fn behaves_as_an_ordered_set_of_instant_id() {
        let mut r = Rng::new(11);
        let cap = 200u32;
        let mut h = TimeHeap::new(cap as usize);
        let mut model: BTreeSet<(u64, u32)> = BTreeSet::new();
        let mut at = vec![None; cap as usize];
        for step in 0..100_000 {
            let id = (r.next_u64() % u64::from(cap)) as u32;
            match r.next_u64() % 4 {
                0 | 1 => {
                    let t = r.next_u64() % 1000;
                    if let Some(old) = at[id as usize].replace(t) {
                        model.remove(&(old, id));
                    }
                    model.insert((t, id));
                    assert!(h.set(id, t));
                }
                2 => {
                    let had = at[id as usize].take();
                    if let Some(old) = had {
                        model.remove(&(old, id));
                    }
                    assert_eq!(h.remove(id), had.is_some(), "step {step}");
                }
                _ => {
                    let now = r.next_u64() % 1000;
                    let want = model.first().copied().filter(|&(t, _)| t <= now);
                    let got = h.pop_due(now);
                    assert_eq!(got.map(|g| g.0), want.map(|w| w.0), "step {step}");
                    if let Some((t, id)) = got {
                        assert!(model.remove(&(t, id)), "popped an absent entry");
                        at[id as usize] = None;
                    }
                }
            }
            assert_eq!(h.len(), model.len());
            assert_eq!(h.peek().map(|p| p.0), model.first().map(|m| m.0));
        }
        for id in 0..cap {
            assert_eq!(h.get(id), at[id as usize]);
        }
        assert!(!h.set(cap, 5), "an id past the capacity is refused");
        h.grow(cap as usize + 1);
        assert!(h.set(cap, 5) && h.get(cap) == Some(5), "grown");
        h.clear();
        assert!(h.is_empty() && h.get(0).is_none());
    }
}
