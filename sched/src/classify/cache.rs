//! The exact-match flow cache in front of the rule table: [`Classifier`].

use super::key::{key_words, FlowKey, Words};
use super::rules::{tuple_hash, Match, RuleTable};
use crate::rng::Rng;

/// Rule lookup with an exact-match flow cache in front (what Open vSwitch
/// calls its exact-match cache): packets of a flow after the first cost one
/// hash probe, however many match shapes the rules have. The cache is
/// direct-mapped and preallocated; a miss runs the tuple-space search and
/// overwrites the slot. Rules never change after construction, so entries
/// never go stale.
#[derive(Debug, Clone)]
pub struct Classifier {
    table: RuleTable,
    cache: Vec<CacheEntry>,
    mask: usize,
    /// log2 of the cache size: the slot is the top `bits` bits of the hash.
    bits: u32,
    /// The cache's hash multipliers (odd), from the seed.
    mul: Words,
    hits: u64,
    misses: u64,
}

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    key: Words,
    /// Rule index + 1 (0 = no rule matched); `u32::MAX` = empty slot.
    rule: u32,
}

/// Use the cache only when a search probes at least this many shapes: below
/// that, a search costs about what a cache probe does, and a thrashing cache
/// only adds to it (classify-bench, 3-shape ACL, 100k flows: 44 ns without the
/// cache, 67-83 ns with it; 32 shapes, 1000 flows: 38 ns with, 280 without).
pub const CACHE_MIN_SHAPES: usize = 4;

impl Classifier {
    /// A classifier over `rules` with a cache of `cache_slots` entries
    /// (rounded up to a power of two; 0 disables it). The cache is also
    /// disabled when the table has fewer than [`CACHE_MIN_SHAPES`] shapes.
    pub fn new(rules: &[(Match, u32)], cache_slots: usize, seed: u64) -> Self {
        let table = RuleTable::new(rules, seed);
        let slots = if cache_slots == 0 || table.shapes() < CACHE_MIN_SHAPES {
            0
        } else {
            cache_slots.next_power_of_two()
        };
        let mut mix = Rng::new(seed ^ 0x5851_f42d_4c95_7f2d);
        Self {
            table,
            cache: vec![
                CacheEntry {
                    key: [0; 5],
                    rule: u32::MAX,
                };
                slots
            ],
            mask: slots.wrapping_sub(1),
            bits: slots.max(1).trailing_zeros(),
            mul: std::array::from_fn(|_| mix.next_u64() | 1),
            hits: 0,
            misses: 0,
        }
    }

    /// The rule table.
    pub fn table(&self) -> &RuleTable {
        &self.table
    }

    /// Cache (hits, misses).
    pub fn cache_stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Whether the cache is in use.
    pub fn cached(&self) -> bool {
        !self.cache.is_empty()
    }

    /// The first rule matching `k`: (rule index, target).
    #[inline(always)]
    pub fn lookup(&mut self, k: &FlowKey) -> Option<(usize, u32)> {
        // The words once, for both paths (no `FlowKey` kept in memory).
        let w = key_words(k);
        if self.cache.is_empty() {
            self.table.lookup_words(&w)
        } else {
            self.lookup_cached(&w)
        }
    }

    #[inline(never)]
    fn lookup_cached(&mut self, w: &Words) -> Option<(usize, u32)> {
        let w = *w;
        let i = tuple_hash(&w, &self.mul).rotate_left(self.bits) as usize & self.mask;
        let e = self.cache.get(i).copied().unwrap_or(CacheEntry {
            key: [0; 5],
            rule: u32::MAX,
        });
        let diff = (e.key[0] ^ w[0])
            | (e.key[1] ^ w[1])
            | (e.key[2] ^ w[2])
            | (e.key[3] ^ w[3])
            | (e.key[4] ^ w[4]);
        let rule = if e.rule != u32::MAX && diff == 0 {
            self.hits += 1;
            e.rule
        } else {
            self.misses += 1;
            let r = self.table.search(&w).wrapping_add(1);
            if let Some(slot) = self.cache.get_mut(i) {
                *slot = CacheEntry { key: w, rule: r };
            }
            r
        };
        match rule {
            0 => None,
            r => {
                let r = (r - 1) as usize;
                self.table.targets.get(r).map(|&t| (r, t))
            }
        }
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::classify::Prefix;

    #[test]
    fn cached_lookups_agree_with_the_table() {
        let mut rng = Rng::new(11);
        let rules: Vec<(Match, u32)> = (0..200)
            .map(|i| {
                let mut m = Match::default();
                match i % 4 {
                    0 => m.src = Some(Prefix::new((rng.range(0, 15) as u128) << 100, 8)),
                    1 => m.proto = Some(17),
                    2 => {
                        let p = rng.range(0, 40) as u16;
                        m.dst_port = Some((p, p + 3));
                    }
                    _ => m.dscp = Some(rng.range(0, 3) as u8),
                }
                (m, i as u32)
            })
            .collect();
        let mut c = Classifier::new(&rules, 64, 1);
        assert!(c.cached());
        for _ in 0..50_000 {
            let k = FlowKey {
                src: (rng.range(0, 31) as u128) << 99,
                dst_port: rng.range(0, 50) as u16,
                proto: [6u8, 17][rng.range(0, 1) as usize],
                dscp: rng.range(0, 4) as u8,
                ..FlowKey::default()
            };
            assert_eq!(c.lookup(&k), c.table().lookup_linear(&k));
        }
        let (hits, misses) = c.cache_stats();
        assert!(hits > 0 && misses > 0);
    }
}
