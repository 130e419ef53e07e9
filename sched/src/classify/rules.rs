//! The ordered rule table: first match wins, looked up by tuple-space
//! search (one hash probe per match shape).

use super::key::{key_from_words, key_words, mask_words, FlowKey, FlowMask, Prefix, Words};
use crate::rng::Rng;

/// A rule's match, all of whose conditions must hold: every `None` is a
/// wildcard. Prefixes are in the 128-bit (IPv4-mapped) address space. (The
/// configuration's rules are these, validated.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Match {
    /// Source address prefix.
    pub src: Option<Prefix>,
    /// Destination address prefix.
    pub dst: Option<Prefix>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Source port, inclusive range `(lo, hi)`, `lo <= hi`.
    pub src_port: Option<(u16, u16)>,
    /// Destination port, inclusive range `(lo, hi)`, `lo <= hi`.
    pub dst_port: Option<(u16, u16)>,
    /// DSCP value 0..=63.
    pub dscp: Option<u8>,
    /// VLAN id 0..=4095.
    pub vlan: Option<u16>,
}

impl Match {
    /// Matches every packet.
    pub const ANY: Match = Match {
        src: None,
        dst: None,
        proto: None,
        src_port: None,
        dst_port: None,
        dscp: None,
        vlan: None,
    };

    /// Whether `k` matches (the reference semantics; the table must agree).
    pub fn matches(&self, k: &FlowKey) -> bool {
        let pfx = |p: Option<Prefix>, a: u128| p.is_none_or(|p| p.contains(a));
        let range = |r: Option<(u16, u16)>, v: u16| r.is_none_or(|(lo, hi)| lo <= v && v <= hi);
        pfx(self.src, k.src)
            && pfx(self.dst, k.dst)
            && self.proto.is_none_or(|p| p == k.proto)
            && range(self.src_port, k.src_port)
            && range(self.dst_port, k.dst_port)
            && self.dscp.is_none_or(|d| d == k.dscp)
            && self.vlan.is_none_or(|v| v == k.vlan & 0x0fff)
    }

    /// The bits this match looks at exactly (ranges count as wildcards here).
    fn shape(&self) -> FlowMask {
        let exact_port = |r: Option<(u16, u16)>| match r {
            Some((lo, hi)) if lo == hi => 0xffff,
            _ => 0,
        };
        FlowMask {
            src: self.src.map_or(0, |p| p.mask()),
            dst: self.dst.map_or(0, |p| p.mask()),
            src_port: exact_port(self.src_port),
            dst_port: exact_port(self.dst_port),
            proto: if self.proto.is_some() { 0xff } else { 0 },
            dscp: if self.dscp.is_some() { 0x3f } else { 0 },
            vlan: if self.vlan.is_some() { 0x0fff } else { 0 },
        }
    }

    /// The key this match expects under its shape.
    fn value(&self) -> FlowKey {
        let exact = |r: Option<(u16, u16)>| match r {
            Some((lo, hi)) if lo == hi => lo,
            _ => 0,
        };
        FlowKey {
            src: self.src.map_or(0, |p| p.addr & p.mask()),
            dst: self.dst.map_or(0, |p| p.addr & p.mask()),
            src_port: exact(self.src_port),
            dst_port: exact(self.dst_port),
            proto: self.proto.unwrap_or(0),
            dscp: self.dscp.unwrap_or(0) & 0x3f,
            vlan: self.vlan.unwrap_or(0) & 0x0fff,
        }
    }

    /// True when a range remains to be checked after the hash probe.
    fn has_ranges(&self) -> bool {
        matches!(self.src_port, Some((lo, hi)) if lo != hi)
            || matches!(self.dst_port, Some((lo, hi)) if lo != hi)
    }
}

/// A slot of a shape's table: a masked key and its run of rule indexes in
/// `RuleTable::runs`; `len == 0` marks a free slot.
#[derive(Debug, Clone, Copy, Default)]
struct TupleSlot {
    key: Words,
    start: u32,
    len: u32,
}

/// One shape of rules: masked key → a run of rule indexes in `RuleTable::runs`.
/// Its own open-addressing table (linear probing, load ≤ 1/4, built once),
/// hashed by multiply-shift over the masked key's words (the multipliers are
/// the table's, drawn from its seed): the keys are the rules' own values, so
/// a frame can pick which slot it probes but cannot lengthen any probe run.
#[derive(Debug, Clone)]
struct Tuple {
    mask: Words,
    /// Smallest rule index in this tuple (tuples are visited in this order).
    first: u32,
    /// `64 - log2(slots.len())`: the slot is the top bits of the hash.
    shift: u32,
    /// The table's hash multipliers, next to the mask (one cache line).
    mul: Words,
    /// When the mask keeps bits of two words at most: those two words (the
    /// second one a word it ignores if it keeps one). Every other word is
    /// then zero in a masked key and in every stored key, so hashing and
    /// comparing the two is the same as all five, for less work.
    narrow: Option<(WordIdx, WordIdx)>,
    slots: Vec<TupleSlot>,
}

/// The index of one of a key's five [`Words`]: an index in range by type,
/// so indexing with it needs no bounds check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum WordIdx {
    W0 = 0,
    W1 = 1,
    W2 = 2,
    W3 = 3,
    W4 = 4,
}

impl WordIdx {
    /// The index `i`, if below 5.
    fn new(i: usize) -> Option<Self> {
        [Self::W0, Self::W1, Self::W2, Self::W3, Self::W4]
            .get(i)
            .copied()
    }
}

/// Multilinear multiply-shift hash of masked key words (a universal family
/// over the odd multipliers `mul`); callers take its top bits.
#[inline(always)]
pub(crate) fn tuple_hash(w: &Words, mul: &Words) -> u64 {
    w[0].wrapping_mul(mul[0])
        .wrapping_add(w[1].wrapping_mul(mul[1]))
        .wrapping_add(w[2].wrapping_mul(mul[2]))
        .wrapping_add(w[3].wrapping_mul(mul[3]))
        .wrapping_add(w[4].wrapping_mul(mul[4]))
}

impl Tuple {
    fn new(mask: Words, first: u32, groups: &[(Words, u32, u32)], mul: &Words) -> Self {
        // At least two slots, so the shift stays below 64. Load ≤ 1/4: a
        // frame that misses (most probes) then mostly lands on a free slot
        // (1.4 slots looked at on average, 2.5 at load 1/2); 48 bytes a slot.
        let cap = (groups.len().max(1) * 4).next_power_of_two();
        let mut slots = vec![TupleSlot::default(); cap];
        let shift = 64 - cap.trailing_zeros();
        for &(key, start, len) in groups {
            let mut i = (tuple_hash(&key, mul) >> shift) as usize;
            while slots[i].len != 0 {
                i = (i + 1) & (cap - 1);
            }
            slots[i] = TupleSlot { key, start, len };
        }
        let used: Vec<usize> = (0..mask.len()).filter(|&j| mask[j] != 0).collect();
        let unused = (0..mask.len()).find(|&j| mask[j] == 0);
        let narrow = match (used.as_slice(), unused) {
            ([a, b], _) => WordIdx::new(*a).zip(WordIdx::new(*b)),
            ([a], Some(b)) => WordIdx::new(*a).zip(WordIdx::new(b)),
            _ => None,
        };
        Self {
            mask,
            first,
            shift,
            mul: *mul,
            narrow,
            slots,
        }
    }

    /// The run (start, len) of key words `w`, for a narrow tuple: as [`Tuple::get`]
    /// on the masked key, looking at words `a` and `b` only.
    #[inline(always)]
    fn get_narrow(&self, w: &Words, a: WordIdx, b: WordIdx) -> Option<(u32, u32)> {
        // In range by type: no bounds checks.
        let (a, b) = (a as usize, b as usize);
        let x = w[a] & self.mask[a];
        let y = w[b] & self.mask[b];
        let h = x
            .wrapping_mul(self.mul[a])
            .wrapping_add(y.wrapping_mul(self.mul[b]));
        let wrap = self.slots.len() - 1;
        let mut i = (h >> self.shift) as usize;
        loop {
            let s = self.slots.get(i)?;
            if s.len == 0 {
                return None;
            }
            if ((s.key[a] ^ x) | (s.key[b] ^ y)) == 0 {
                return Some((s.start, s.len));
            }
            i = (i + 1) & wrap;
        }
    }

    /// The run (start, len) of masked key `mk`.
    #[inline(always)]
    fn get(&self, mk: &Words) -> Option<(u32, u32)> {
        let wrap = self.slots.len() - 1;
        let mut i = (tuple_hash(mk, &self.mul) >> self.shift) as usize;
        loop {
            let s = self.slots.get(i)?;
            if s.len == 0 {
                return None;
            }
            // Word by word, branch-free (`==` on the array calls memcmp).
            let diff = (s.key[0] ^ mk[0])
                | (s.key[1] ^ mk[1])
                | (s.key[2] ^ mk[2])
                | (s.key[3] ^ mk[3])
                | (s.key[4] ^ mk[4]);
            if diff == 0 {
                return Some((s.start, s.len));
            }
            i = (i + 1) & wrap;
        }
    }
}

/// Ordered rules (first match wins) mapping keys to a target (a flowset
/// index, for instance).
#[derive(Debug, Clone)]
pub struct RuleTable {
    rules: Vec<(Match, u32)>,
    tuples: Vec<Tuple>,
    /// Rule indexes, grouped per (tuple, key) in ascending order; the top bit
    /// set when the rule has a port range left to check after the probe.
    runs: Vec<u32>,
    /// `rules[i].1`, on its own (the last read of a lookup).
    pub(crate) targets: Vec<u32>,
}

/// In `RuleTable::runs`: the rule has a port range to check.
const RANGED: u32 = 1 << 31;

impl RuleTable {
    /// Builds the table; `rules[i] = (match, target)`, earlier rules win.
    pub fn new(rules: &[(Match, u32)], seed: u64) -> Self {
        assert!(rules.len() < RANGED as usize, "too many rules");
        // Group rules by shape, then by key within a shape, keeping rule order.
        let mut shapes: Vec<(FlowMask, Vec<u32>)> = Vec::new();
        for (i, (m, _)) in rules.iter().enumerate() {
            let s = m.shape();
            match shapes.iter_mut().find(|(sh, _)| *sh == s) {
                Some((_, v)) => v.push(i as u32),
                None => shapes.push((s, vec![i as u32])),
            }
        }
        // The hash multipliers, odd, from the seed.
        let mut mix = Rng::new(seed);
        let mul: Words = std::array::from_fn(|_| mix.next_u64() | 1);
        let mut tuples = Vec::with_capacity(shapes.len());
        let mut runs = Vec::with_capacity(rules.len());
        for (mask, idxs) in shapes {
            // In order of first rule; found by key (100 000 rules of one
            // shape build in linear time).
            let mut groups: Vec<(FlowKey, Vec<u32>)> = Vec::new();
            let mut at: std::collections::HashMap<FlowKey, usize> = Default::default();
            for &i in &idxs {
                let v = rules[i as usize].0.value();
                match at.get(&v) {
                    Some(&g) => groups[g].1.push(i),
                    None => {
                        at.insert(v, groups.len());
                        groups.push((v, vec![i]));
                    }
                }
            }
            let mut keyed = Vec::with_capacity(groups.len());
            for (k, g) in groups {
                let start = runs.len() as u32;
                runs.extend(g.iter().map(|&i| {
                    if rules[i as usize].0.has_ranges() {
                        i | RANGED
                    } else {
                        i
                    }
                }));
                keyed.push((key_words(&k), start, g.len() as u32));
            }
            tuples.push(Tuple::new(mask_words(&mask), idxs[0], &keyed, &mul));
        }
        tuples.sort_by_key(|t| t.first);
        Self {
            rules: rules.to_vec(),
            tuples,
            runs,
            targets: rules.iter().map(|&(_, t)| t).collect(),
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Distinct match shapes (hash probes per lookup at most).
    pub fn shapes(&self) -> usize {
        self.tuples.len()
    }

    /// The first rule matching `k`: (rule index, target).
    #[inline(always)]
    pub fn lookup(&self, k: &FlowKey) -> Option<(usize, u32)> {
        self.lookup_words(&key_words(k))
    }

    /// [`RuleTable::lookup`] of the key whose words are `w`.
    #[inline(always)]
    pub(crate) fn lookup_words(&self, w: &Words) -> Option<(usize, u32)> {
        let best = self.search(w);
        self.targets
            .get(best as usize)
            .map(|&target| (best as usize, target))
    }

    /// Tuple-space search: the index of the first rule matching the key
    /// whose words are `w`, `u32::MAX` if none.
    #[inline(always)]
    pub(crate) fn search(&self, w: &Words) -> u32 {
        let mut best = u32::MAX;
        for t in &self.tuples {
            if t.first >= best {
                break; // every later tuple starts after the match found
            }
            let found = match t.narrow {
                Some((a, b)) => t.get_narrow(w, a, b),
                None => t.get(&[
                    w[0] & t.mask[0],
                    w[1] & t.mask[1],
                    w[2] & t.mask[2],
                    w[3] & t.mask[3],
                    w[4] & t.mask[4],
                ]),
            };
            if let Some((start, n)) = found {
                let run = self
                    .runs
                    .get(start as usize..(start + n) as usize)
                    .unwrap_or_default();
                for &e in run {
                    let r = e & !RANGED;
                    if r >= best {
                        break;
                    }
                    if e & RANGED == 0 || self.rule_matches(r, w) {
                        best = r;
                        break;
                    }
                }
            }
        }
        best
    }

    /// Whether rule `r` matches the key whose words are `w` (the check of
    /// a port range after the probe). Out of line: the key is rebuilt from
    /// its words here, so the search does not keep a [`FlowKey`] on the
    /// stack for the few rules with ranges.
    #[inline(never)]
    fn rule_matches(&self, r: u32, w: &Words) -> bool {
        let k = key_from_words(w);
        self.rules
            .get(r as usize)
            .is_some_and(|(m, _)| m.matches(&k))
    }

    /// The first rule after rule `r` matching `k` (a linear scan: for a
    /// rule whose `prob` said no).
    #[cold]
    #[inline(never)]
    pub fn lookup_after(&self, k: &FlowKey, r: usize) -> Option<(usize, u32)> {
        self.rules
            .iter()
            .enumerate()
            .skip(r + 1)
            .find(|(_, (m, _))| m.matches(k))
            .map(|(i, &(_, t))| (i, t))
    }

    /// Reference lookup: a linear scan (tests compare the two).
    pub fn lookup_linear(&self, k: &FlowKey) -> Option<(usize, u32)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, (m, _))| m.matches(k))
            .map(|(i, &(_, t))| (i, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
        0xffff_0000_0000 | (u32::from_be_bytes([a, b, c, d]) as u128)
    }

    #[test]
    fn rule_table_agrees_with_a_linear_scan() {
        let mut rng = Rng::new(5);
        for nrules in [1usize, 20, 1000] {
            let rules: Vec<(Match, u32)> = (0..nrules)
                .map(|i| {
                    let mut m = Match::default();
                    if rng.range(0, 2) == 0 {
                        m.src = Some(Prefix::new(
                            v4(10, rng.range(0, 3) as u8, 0, 0),
                            [104u8, 112, 120][rng.range(0, 2) as usize],
                        ));
                    }
                    if rng.range(0, 2) == 0 {
                        m.proto = Some([6u8, 17][rng.range(0, 1) as usize]);
                    }
                    match rng.range(0, 3) {
                        0 => {
                            let p = rng.range(1, 50) as u16;
                            m.dst_port = Some((p, p));
                        }
                        1 => {
                            let lo = rng.range(1, 40) as u16;
                            m.dst_port = Some((lo, lo + rng.range(0, 20) as u16));
                        }
                        _ => {}
                    }
                    if rng.range(0, 5) == 0 {
                        m.dscp = Some(46);
                    }
                    (m, i as u32)
                })
                .collect();
            let table = RuleTable::new(&rules, 3);
            for _ in 0..20_000 {
                let k = FlowKey {
                    src: v4(10, rng.range(0, 3) as u8, rng.range(0, 2) as u8, 1),
                    dst: v4(192, 168, 0, 1),
                    src_port: 999,
                    dst_port: rng.range(0, 60) as u16,
                    proto: [6u8, 17, 1][rng.range(0, 2) as usize],
                    dscp: [0u8, 46][rng.range(0, 1) as usize],
                    vlan: 0,
                };
                assert_eq!(
                    table.lookup(&k),
                    table.lookup_linear(&k),
                    "{nrules} rules, key {k:?}"
                );
            }
        }
    }
}
