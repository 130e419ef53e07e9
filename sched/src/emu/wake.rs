//! Which pipe (or dynamic-pipe instance) to look at next: each one that
//! holds packets is keyed by its next wake-up, never later than it. Most
//! keys are of two kinds: "now" (a packet arrived at an idle link, or more
//! are due) and "later" (the next packet leaves the delay line, the link
//! frees). The later ones wait in an indexed binary heap ([`TimeHeap`],
//! O(log n)); the ones due by the instant they were set go to a plain list
//! (O(1)), which `pop_due` empties first unless the heap holds an earlier
//! key — so an arrival at an idle link costs no trip to the top of the heap
//! and back (at 100 000 pipes, that trip was most of a packet's cost).

use crate::algo::timeheap::TimeHeap;

/// Ids `0..cap`, each at most once, keyed by an instant (see the module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct WakeQueue {
    heap: TimeHeap,
    /// Ids due by the instant they were put here, most recent last.
    now: Vec<u32>,
    /// Per id: whether it is in `now`.
    in_now: Vec<bool>,
    /// The earliest key among `now`'s (`u64::MAX` when empty).
    now_min: u64,
}

impl WakeQueue {
    /// An empty queue for ids `0..cap`.
    pub(super) fn new(cap: usize) -> Self {
        Self {
            heap: TimeHeap::new(cap),
            now: Vec::with_capacity(cap.min(4096)),
            in_now: vec![false; cap],
            now_min: u64::MAX,
        }
    }

    /// Makes room for ids `0..cap` (allocates: not for the packet path).
    pub(super) fn grow(&mut self, cap: usize) {
        self.heap.grow(cap);
        if cap > self.in_now.len() {
            self.in_now.resize(cap, false);
        }
    }

    /// Puts `id` at `at`, wherever it was; `now` is the caller's instant
    /// (a key by then goes to the list). Ids past the capacity are ignored.
    #[inline]
    pub(super) fn set(&mut self, id: u32, at: u64, now: u64) {
        if at <= now {
            self.heap.remove(id);
            self.list_now(id, at);
        } else {
            self.take_from_now(id);
            self.heap.set(id, at);
        }
    }

    /// A packet arrived at `id`, whose wake-up is now `at`: its key moves
    /// earlier if it was later (an arrival never delays a wake-up).
    #[inline]
    pub(super) fn woken(&mut self, id: u32, at: u64, now: u64) {
        if self.in_now.get(id as usize).copied().unwrap_or(true) {
            // Already due (or an id past the capacity).
            self.now_min = self.now_min.min(at);
            return;
        }
        match self.heap.get(id) {
            Some(k) if k <= at => {}
            _ if at <= now => {
                self.heap.remove(id);
                self.list_now(id, at);
            }
            _ => {
                self.heap.set(id, at);
            }
        }
    }

    #[inline]
    fn list_now(&mut self, id: u32, at: u64) {
        if let Some(f) = self.in_now.get_mut(id as usize) {
            if !*f {
                *f = true;
                self.now.push(id);
            }
            self.now_min = self.now_min.min(at);
        }
    }

    /// Takes `id` out of the list if it is there (rare: a key set later
    /// while due; a linear search).
    fn take_from_now(&mut self, id: u32) {
        if self.in_now.get(id as usize).copied().unwrap_or(false) {
            self.in_now[id as usize] = false;
            if let Some(i) = self.now.iter().rposition(|&x| x == id) {
                self.now.swap_remove(i);
            }
            if self.now.is_empty() {
                self.now_min = u64::MAX;
            }
        }
    }

    /// Takes an id due by `now_ns`: the heap's top if it is earlier than
    /// every listed key, else the most recently listed.
    #[inline]
    pub(super) fn pop_due(&mut self, now_ns: u64) -> Option<u32> {
        if let Some((t, _)) = self.heap.peek() {
            if t < self.now_min && t <= now_ns {
                return self.heap.pop_due(now_ns).map(|(_, id)| id);
            }
        }
        if self.now_min > now_ns {
            return None;
        }
        let id = self.now.pop()?;
        self.in_now[id as usize] = false;
        if self.now.is_empty() {
            self.now_min = u64::MAX;
        }
        Some(id)
    }

    /// The earliest key (`None`: empty).
    #[inline]
    pub(super) fn peek(&self) -> Option<u64> {
        if self.now.is_empty() && self.heap.is_empty() {
            return None;
        }
        let h = self.heap.peek().map_or(u64::MAX, |(t, _)| t);
        Some(h.min(self.now_min))
    }

    /// Takes `id` out, wherever it is.
    pub(super) fn remove(&mut self, id: u32) {
        self.heap.remove(id);
        self.take_from_now(id);
    }

    /// Removes every id.
    pub(super) fn clear(&mut self) {
        self.heap.clear();
        for &id in &self.now {
            self.in_now[id as usize] = false;
        }
        self.now.clear();
        self.now_min = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Random arrivals (`woken`), re-keys (`set`), removals and pops at a
    /// clock that goes forward, against a plain array of keys: a popped id
    /// is due, nothing due is left behind by a pop that returned `None`,
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
