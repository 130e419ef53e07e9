//! A seeded open-addressing hash table keyed by flow: the table of flows
//! of a flowset and of a dynamic pipe's instances.

use super::key::{hash_key, FlowKey};

/// An open-addressing hash table from [`FlowKey`] to `V`, sized for a fixed
/// number of keys: inserting never allocates.
///
/// Two arrays: a probe array of 8-byte slots (a 32-bit hash tag and the index
/// of an entry; linear probing with backward-shift deletion, so no tombstones
/// and lookups stay short after many deletions) and the entries themselves,
/// dense in insertion order. A lookup reads one or two probe slots (eight to a
/// cache line) and then the one entry it wants, so with a thousand flows in a
/// table sized for 65536 the lines it touches stay in cache; slots holding
/// whole entries would spread those thousand flows over megabytes. Memory in
/// use grows with the keys held: the entries' pages are touched only as they
/// fill.
#[derive(Debug)]
pub struct KeyTable<V: Copy> {
    /// Per slot: 0 when free, else `tag << 32 | (entry + 1)`, the tag being
    /// the low 32 bits of the key's hash (which also give its home slot).
    probe: Vec<u64>,
    entries: Vec<(FlowKey, V)>,
    mask: usize,
    max_len: usize,
    seed: u64,
}

const TAG: u64 = 0xffff_ffff_0000_0000;

impl<V: Copy> Clone for KeyTable<V> {
    /// A copy with the same room: inserting into it does not allocate either
    /// (a derived clone would keep only the entries' length as capacity).
    fn clone(&self) -> Self {
        let mut entries = Vec::with_capacity(self.max_len);
        entries.extend_from_slice(&self.entries);
        Self {
            probe: self.probe.clone(),
            entries,
            mask: self.mask,
            max_len: self.max_len,
            seed: self.seed,
        }
    }
}

impl<V: Copy> KeyTable<V> {
    /// Most keys a table holds: as many flows as a scheduler takes
    /// ([`crate::SchedConfig::MAX_FLOWS`]); the probe array is then 256 MiB.
    pub const MAX_LEN: usize = crate::SchedConfig::MAX_FLOWS as usize;

    /// A table for up to `max_len` keys (clamped to 1..=[`Self::MAX_LEN`]).
    /// Probe slots: the next power of two ≥ 2 × max_len, so the load factor
    /// stays ≤ 1/2 and probes stay short.
    pub fn new(max_len: usize, seed: u64) -> Self {
        let max_len = max_len.clamp(1, Self::MAX_LEN);
        let cap = (max_len * 2).next_power_of_two();
        Self {
            probe: vec![0; cap],
            entries: Vec::with_capacity(max_len),
            mask: cap - 1,
            max_len,
            seed,
        }
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most keys it holds.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// `Ok((slot, entry))` where `key` is, or `Err(slot)`: the free slot that
    /// ends its probe run.
    #[inline]
    fn find(&self, key: &FlowKey, h: u64) -> Result<(usize, usize), usize> {
        let tag = h << 32;
        let mut i = h as usize & self.mask;
        loop {
            let m = self.probe[i];
            if m == 0 {
                return Err(i);
            }
            if m & TAG == tag {
                let e = (m as u32 - 1) as usize;
                if self.entries[e].0 == *key {
                    return Ok((i, e));
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The probe slot that points at entry `e`.
    fn slot_of(&self, e: usize) -> usize {
        let h = hash_key(&self.entries[e].0, self.seed);
        let want = e as u64 + 1;
        let mut i = h as usize & self.mask;
        while self.probe[i] & !TAG != want {
            // Every entry has its slot in its probe run: a free slot means a bug.
            debug_assert_ne!(self.probe[i], 0, "entry {e} has no probe slot");
            i = (i + 1) & self.mask;
        }
        i
    }

    /// The value for `key`.
    #[inline]
    pub fn get(&self, key: &FlowKey) -> Option<&V> {
        let h = hash_key(key, self.seed);
        let (_, e) = self.find(key, h).ok()?;
        Some(&self.entries[e].1)
    }

    /// The value for `key`, mutable.
    #[inline]
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut V> {
        let h = hash_key(key, self.seed);
        let (_, e) = self.find(key, h).ok()?;
        Some(&mut self.entries[e].1)
    }

    /// The value for `key`, inserting `make()` if absent. `None` if the key is
    /// absent and the table is full (or `make` declines).
    #[inline]
    pub fn get_or_insert_with(
        &mut self,
        key: &FlowKey,
        make: impl FnOnce() -> Option<V>,
    ) -> Option<&mut V> {
        let h = hash_key(key, self.seed);
        let e = match self.find(key, h) {
            Ok((_, e)) => e,
            Err(i) => {
                if self.entries.len() >= self.max_len {
                    return None;
                }
                let val = make()?;
                self.push(i, h, *key, val)
            }
        };
        Some(&mut self.entries[e].1)
    }

    /// Stores a new entry, its probe slot being the free slot `i`.
    fn push(&mut self, i: usize, h: u64, key: FlowKey, val: V) -> usize {
        self.entries.push((key, val));
        let e = self.entries.len() - 1;
        self.probe[i] = h << 32 | (e as u64 + 1);
        e
    }

    /// Inserts or replaces; false if the table is full.
    pub fn insert(&mut self, key: FlowKey, val: V) -> bool {
        let h = hash_key(&key, self.seed);
        match self.find(&key, h) {
            Ok((_, e)) => {
                self.entries[e].1 = val;
                true
            }
            Err(i) => {
                if self.entries.len() >= self.max_len {
                    return false;
                }
                self.push(i, h, key, val);
                true
            }
        }
    }

    /// Entry `i` (0..len, for scans): its key and value.
    pub fn entry(&self, i: usize) -> Option<(&FlowKey, &V)> {
        self.entries.get(i).map(|(k, v)| (k, v))
    }

    /// Every entry, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Removes entry `i` (0..len) and returns its value. The last entry
    /// moves into `i`: a scan must look at `i` again.
    pub fn remove_entry(&mut self, i: usize) -> Option<V> {
        if i >= self.entries.len() {
            return None;
        }
        let s = self.slot_of(i);
        self.clear_slot(s);
        let last = self.entries.len() - 1;
        if i != last {
            let moved = self.slot_of(last);
            self.probe[moved] = self.probe[moved] & TAG | (i as u64 + 1);
        }
        Some(self.entries.swap_remove(i).1)
    }

    /// Frees probe slot `hole`, shifting later slots of its run back (so no
    /// tombstone is needed).
    fn clear_slot(&mut self, mut hole: usize) {
        self.probe[hole] = 0;
        let mut j = (hole + 1) & self.mask;
        loop {
            let m = self.probe[j];
            if m == 0 {
                return;
            }
            let home = (m >> 32) as usize & self.mask;
            // Move slot j into the hole unless its home is cyclically in (hole, j].
            if hole.wrapping_sub(home) & self.mask < j.wrapping_sub(home) & self.mask {
                self.probe[hole] = m;
                self.probe[j] = 0;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let h = hash_key(key, self.seed);
        let (_, e) = self.find(key, h).ok()?;
        self.remove_entry(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn key_table_inserts_finds_and_removes_with_backward_shift() {
        let mut t: KeyTable<u32> = KeyTable::new(1000, 7);
        let mut rng = Rng::new(1);
        let keys: Vec<FlowKey> = (0..1000)
            .map(|_| FlowKey {
                src: rng.next_u64() as u128,
                src_port: rng.next_u64() as u16,
                ..FlowKey::default()
            })
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(t.insert(*k, i as u32));
        }
        assert!(!t.insert(
            FlowKey {
                dst: 1,
                ..FlowKey::default()
            },
            0
        ));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(&(i as u32)));
        }
        // Remove every other key; the rest must stay reachable.
        for k in keys.iter().step_by(2) {
            assert!(t.remove(k).is_some());
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k).is_some(), i % 2 == 1, "key {i}");
        }
        assert_eq!(t.len(), 500);
    }

    #[test]
    fn key_table_agrees_with_a_map_under_random_inserts_and_removals() {
        use std::collections::HashMap;
        // Few distinct keys over small tables: long probe runs, wrap-around at
        // the end of the probe array, full tables, and removal by entry index
        // (the scan API) moving the last entry.
        for (max, seed) in [(1usize, 1u64), (3, 2), (8, 3), (64, 4)] {
            let mut t: KeyTable<u32> = KeyTable::new(max, seed);
            let mut model: HashMap<FlowKey, u32> = HashMap::new();
            let mut rng = Rng::new(seed);
            let key = |n: u64| FlowKey {
                src_port: n as u16,
                ..FlowKey::default()
            };
            for step in 0..20_000u32 {
                let k = key(rng.range(0, 3 * max as u64));
                match rng.range(0, 3) {
                    0 => {
                        let fits = model.len() < max || model.contains_key(&k);
                        assert_eq!(t.insert(k, step), fits, "insert, step {step}");
                        if fits {
                            model.insert(k, step);
                        }
                    }
                    1 => assert_eq!(t.remove(&k), model.remove(&k), "remove, step {step}"),
                    2 if !t.is_empty() => {
                        let i = rng.range(0, t.len() as u64 - 1) as usize;
                        let (k, v) = t.entry(i).map(|(k, v)| (*k, *v)).expect("entry i");
                        assert_eq!(model.remove(&k), Some(v));
                        assert_eq!(t.remove_entry(i), Some(v));
                    }
                    _ => {
                        let made = t.get_or_insert_with(&k, || Some(step)).copied();
                        let want = model.get(&k).copied().or_else(|| {
                            (model.len() < max).then(|| {
                                model.insert(k, step);
                                step
                            })
                        });
                        assert_eq!(made, want, "get_or_insert, step {step}");
                    }
                }
                assert_eq!(t.len(), model.len());
                for n in 0..=3 * max as u64 {
                    assert_eq!(t.get(&key(n)), model.get(&key(n)), "get, step {step}");
                }
            }
            let mut seen: Vec<(FlowKey, u32)> = t.iter().map(|(k, v)| (*k, *v)).collect();
            let mut want: Vec<(FlowKey, u32)> = model.into_iter().collect();
            seen.sort_by_key(|(k, _)| k.src_port);
            want.sort_by_key(|(k, _)| k.src_port);
            assert_eq!(seen, want);
        }
    }
}
