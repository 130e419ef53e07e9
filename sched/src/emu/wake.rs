//! Which pipe (or dynamic-pipe instance) to look at next: each one that
//! holds packets is keyed by its next wake-up, never later than it. Keys
//! are of two kinds: "now" (a packet arrived at an idle link, or more are
//! due) and "later" (the next packet leaves the delay line, the link
//! frees). The later ones wait in an indexed binary heap ([`TimeHeap`],
//! O(log n)); an id due by the instant it was keyed goes to a plain list
//! (O(1)) and keeps its heap entry, if it has one, untouched. The caller
//! looks at each id `pop_due` returns and then keys it again (`set`) or
//! takes it out (`remove`): a pipe that gets a packet while its earlier
//! ones are in flight goes through the list and back to the same heap key
//! without a move — at 100 000 pipes, a packet then costs one trip through
//! the heap (its departure), not three.

use crate::algo::timeheap::TimeHeap;
use std::collections::VecDeque;

/// Ids `0..cap`, keyed by an instant (see the module docs). (No
/// `Default`: an empty list's `now_min` must be `u64::MAX`; see `new`.)
#[derive(Debug, Clone)]
pub(super) struct WakeQueue {
    heap: TimeHeap,
    /// Ids due by the instant they were listed, in the order they were
    /// (round robin among them); an entry whose `listed` flag went down
    /// is stale and skipped.
    now: VecDeque<u32>,
    /// Per id: whether it is listed.
    listed: Vec<bool>,
    /// Ids listed.
    live: usize,
    /// Never later than the earliest key among the listed (`u64::MAX`
    /// when none is).
    now_min: u64,
}

impl WakeQueue {
    /// An empty queue for ids `0..cap`.
    pub(super) fn new(cap: usize) -> Self {
        let mut q = Self {
            heap: TimeHeap::new(0),
            now: VecDeque::new(),
            listed: Vec::new(),
            live: 0,
            now_min: u64::MAX,
        };
        q.grow(cap);
        q
    }

    /// Makes room for ids `0..cap` (allocates: not for the packet path).
    pub(super) fn grow(&mut self, cap: usize) {
        self.heap.grow(cap);
        if cap > self.listed.len() {
            self.listed.resize(cap, false);
            self.now.reserve(cap.saturating_sub(self.now.len()));
        }
    }

    /// Whether `id` is listed as due.
    #[inline]
    pub(super) fn listed(&self, id: u32) -> bool {
        self.listed.get(id as usize).copied().unwrap_or(false)
    }

    /// Lists `id` (due by `at`). Ids past the capacity are ignored.
    #[inline]
    fn list(&mut self, id: u32, at: u64) {
        let Some(f) = self.listed.get_mut(id as usize) else {
            return;
        };
        if !*f {
            *f = true;
            self.live += 1;
            self.now.push_back(id);
        }
        self.now_min = self.now_min.min(at);
    }

    /// Takes `id` off the list if it is there (its entry goes stale).
    #[inline]
    fn unlist(&mut self, id: u32) {
        if let Some(f) = self.listed.get_mut(id as usize) {
            if *f {
                *f = false;
                self.live -= 1;
                if self.live == 0 {
                    self.now.clear();
                    self.now_min = u64::MAX;
                }
            }
        }
    }

    /// Keys `id` at `at` after a look at it; `now` is the caller's instant
    /// (a key by then lists it, its heap entry staying as it is).
    #[inline]
    pub(super) fn set(&mut self, id: u32, at: u64, now: u64) {
        if at <= now {
            self.list(id, at);
        } else {
            self.unlist(id);
            self.heap.set(id, at);
        }
    }

    /// A packet arrived at `id`, whose wake-up is now `at`: its key moves
    /// earlier if it was later (an arrival never delays a wake-up).
    #[inline]
    pub(super) fn woken(&mut self, id: u32, at: u64, now: u64) {
        if at <= now {
            self.list(id, at);
        } else if !self.listed(id) && self.heap.get(id).is_none_or(|k| at < k) {
            self.heap.set(id, at);
        }
    }

    /// Takes an id due by `now_ns` (the caller then `set`s or `remove`s
    /// it): the heap's earliest if it is due (each heap entry is looked at
    /// once and then listed or keyed later, so the list is never starved),
    /// else the longest listed (round robin among those due at once).
    #[inline]
    pub(super) fn pop_due(&mut self, now_ns: u64) -> Option<u32> {
        if let Some((_, id)) = self.heap.pop_due(now_ns) {
            self.unlist(id);
            return Some(id);
        }
        if self.now_min > now_ns {
            return None;
        }
        while let Some(id) = self.now.pop_front() {
            if self.listed(id) {
                self.unlist(id);
                return Some(id);
            }
        }
        None
    }

    /// The earliest key (`None`: empty).
    #[inline]
    pub(super) fn peek(&self) -> Option<u64> {
        if self.live == 0 && self.heap.is_empty() {
            return None;
        }
        let h = self.heap.peek().map_or(u64::MAX, |(t, _)| t);
        Some(h.min(self.now_min))
    }

    /// Takes `id` out, wherever it is.
    #[inline]
    pub(super) fn remove(&mut self, id: u32) {
        self.heap.remove(id);
        self.unlist(id);
    }

    /// Removes every id.
    pub(super) fn clear(&mut self) {
        self.heap.clear();
        for &id in &self.now {
            self.listed[id as usize] = false;
        }
        self.now.clear();
        self.live = 0;
        self.now_min = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Random arrivals (`woken`), removals and pops at a clock that goes
    /// forward, each pop followed by the caller's new key or removal (as
    /// the emulator does), against a plain array of keys: a popped id is
    /// due, nothing due is left behind by a pop that returned `None`,
    /// `peek` is never later than the earliest key, and arrivals only move
    /// keys earlier.
    #[test]
    fn never_late_never_loses_an_id() {
        let mut r = Rng::new(5);
        let cap = 300usize;
        let mut q = WakeQueue::new(cap);
        let mut key: Vec<Option<u64>> = vec![None; cap];
        let mut now = 0u64;
        for step in 0..200_000 {
            let id = (r.next_u64() % cap as u64) as u32;
            match r.next_u64() % 6 {
                0 | 1 => {
                    let at = now + r.next_u64() % 50;
                    let at = if r.next_u64() % 3 == 0 { now } else { at };
                    q.woken(id, at, now);
                    let k = &mut key[id as usize];
                    *k = Some(k.map_or(at, |k| k.min(at)));
                }
                2 => {
                    let at = now + r.next_u64() % 50;
                    q.set(id, at, now);
                    key[id as usize] = Some(at);
                }
                3 => {
                    q.remove(id);
                    key[id as usize] = None;
                }
                _ => {
                    now += r.next_u64() % 10;
                    match q.pop_due(now) {
                        Some(p) => {
                            let k = key[p as usize].take();
                            assert!(k.is_some_and(|k| k <= now), "step {step}: {p} at {k:?}");
                            // The caller's look, then its new key or none.
                            match r.next_u64() % 3 {
                                0 => q.remove(p),
                                1 => {
                                    q.set(p, now, now);
                                    key[p as usize] = Some(now);
                                }
                                _ => {
                                    let at = now + 1 + r.next_u64() % 50;
                                    q.set(p, at, now);
                                    key[p as usize] = Some(at);
                                }
                            }
                        }
                        None => assert!(
                            key.iter().flatten().all(|&k| k > now),
                            "step {step}: something due was left"
                        ),
                    }
                }
            }
            let min = key.iter().flatten().min().copied();
            match (q.peek(), min) {
                (None, None) => {}
                (Some(p), Some(m)) => assert!(p <= m, "step {step}: peek {p} after {m}"),
                (p, m) => panic!("step {step}: peek {p:?}, keys {m:?}"),
            }
        }
        q.clear();
        assert_eq!(q.peek(), None);
        assert_eq!(q.pop_due(u64::MAX), None);
    }
}
