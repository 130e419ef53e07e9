//! Classification: flow keys and masks (dummynet semantics), a seeded
//! open-addressing hash table keyed by flow, and the ordered rule table.
//!
//! A [`FlowKey`] is what a frame is classified on: addresses (IPv6, or IPv4 in
//! the low 32 bits of the IPv4-mapped form `::ffff:a.b.c.d`), protocol, ports,
//! DSCP and the outer VLAN id. A [`FlowMask`] keeps some bits of each field —
//! a flowset's mask splits its traffic into per-flow queues (dummynet's
//! `mask src-ip 0x000000ff`), and rules match on prefixes, exact values and
//! port ranges.
//!
//! Rules are first-match in table order. Lookup is tuple-space search (as in
//! Open vSwitch): rules are grouped by the *shape* of their match (which bits
//! they look at); each group is one hash table from masked key to the group's
//! rules with that key, so a lookup costs one probe per group, not one test per
//! rule. Groups are visited in order of their first rule and the search stops
//! as soon as no later group can hold an earlier rule. Port ranges that are not
//! a single value are checked after the probe.

use crate::wire::{Family, Headers};

/// What a frame is classified on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FlowKey {
    /// Source address, IPv6 or IPv4-mapped.
    pub src: u128,
    /// Destination address, IPv6 or IPv4-mapped.
    pub dst: u128,
    /// TCP/UDP/SCTP source port (0 if none).
    pub src_port: u16,
    /// Destination port (0 if none).
    pub dst_port: u16,
    /// IP protocol / IPv6 final next header (0 for non-IP).
    pub proto: u8,
    /// DSCP, 6 bits.
    pub dscp: u8,
    /// Outer VLAN id, 12 bits (0 if untagged).
    pub vlan: u16,
}

impl FlowKey {
    /// The key of a parsed frame. Non-IP frames (and ARP) have zero addresses.
    #[inline]
    pub fn from_headers(h: &Headers) -> Self {
        let ip = matches!(h.family, Family::V4 | Family::V6);
        Self {
            src: if ip { u128::from_be_bytes(h.src) } else { 0 },
            dst: if ip { u128::from_be_bytes(h.dst) } else { 0 },
            src_port: h.src_port,
            dst_port: h.dst_port,
            proto: h.proto,
            dscp: h.dscp,
            vlan: h.vlans[0] & 0x0fff,
        }
    }

    /// Only the bits `mask` keeps.
    #[inline]
    pub fn masked(&self, m: &FlowMask) -> FlowKey {
        FlowKey {
            src: self.src & m.src,
            dst: self.dst & m.dst,
            src_port: self.src_port & m.src_port,
            dst_port: self.dst_port & m.dst_port,
            proto: self.proto & m.proto,
            dscp: self.dscp & m.dscp,
            vlan: self.vlan & m.vlan,
        }
    }
}

/// Which bits of each key field matter (1 = keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FlowMask {
    /// Source address bits.
    pub src: u128,
    /// Destination address bits.
    pub dst: u128,
    /// Source port bits.
    pub src_port: u16,
    /// Destination port bits.
    pub dst_port: u16,
    /// Protocol bits.
    pub proto: u8,
    /// DSCP bits (6).
    pub dscp: u8,
    /// VLAN id bits (12).
    pub vlan: u16,
}

impl FlowMask {
    /// Nothing: every frame maps to one key (one queue).
    pub const NONE: FlowMask = FlowMask {
        src: 0,
        dst: 0,
        src_port: 0,
        dst_port: 0,
        proto: 0,
        dscp: 0,
        vlan: 0,
    };
    /// The 5-tuple (addresses, ports, protocol), like Linux fq/sfq.
    pub const FIVE_TUPLE: FlowMask = FlowMask {
        src: u128::MAX,
        dst: u128::MAX,
        src_port: 0xffff,
        dst_port: 0xffff,
        proto: 0xff,
        dscp: 0,
        vlan: 0,
    };
}

/// The mask of an address prefix of `len` bits in the 128-bit space.
pub fn prefix_mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - l as u32),
    }
}

/// Seeded hash of a key: folded 64x64->128 multiplies over the key's words
/// (wyhash-style). The seed comes from the caller, so keys chosen by an
/// attacker cannot be aimed at one bucket.
#[inline]
pub fn hash_key(k: &FlowKey, seed: u64) -> u64 {
    #[inline(always)]
    fn fold(a: u64, b: u64) -> u64 {
        let r = (a as u128).wrapping_mul(b as u128);
        (r as u64) ^ ((r >> 64) as u64)
    }
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
    let tail = (k.src_port as u64) << 48
        | (k.dst_port as u64) << 32
        | (k.proto as u64) << 24
        | (k.dscp as u64) << 16
        | k.vlan as u64;
    let a = fold(k.src as u64 ^ seed ^ P0, (k.src >> 64) as u64 ^ P1);
    let b = fold(k.dst as u64 ^ P2, (k.dst >> 64) as u64 ^ seed);
    fold(a ^ tail ^ P1, b ^ P0)
}

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

/// A rule's match, as validated from configuration: every `None` is a
/// wildcard. Prefixes are in the 128-bit (IPv4-mapped) address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Match {
    /// Source prefix (address, length in bits of the 128-bit space).
    pub src: Option<(u128, u8)>,
    /// Destination prefix.
    pub dst: Option<(u128, u8)>,
    /// Protocol.
    pub proto: Option<u8>,
    /// Source port range, inclusive.
    pub src_port: Option<(u16, u16)>,
    /// Destination port range, inclusive.
    pub dst_port: Option<(u16, u16)>,
    /// DSCP.
    pub dscp: Option<u8>,
    /// VLAN id.
    pub vlan: Option<u16>,
}

impl Match {
    /// Whether `k` matches (the reference semantics; the table must agree).
    pub fn matches(&self, k: &FlowKey) -> bool {
        let pfx = |p: Option<(u128, u8)>, a: u128| {
            p.is_none_or(|(addr, len)| (a ^ addr) & prefix_mask(len) == 0)
        };
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
            src: self.src.map_or(0, |(_, l)| prefix_mask(l)),
            dst: self.dst.map_or(0, |(_, l)| prefix_mask(l)),
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
            src: self.src.map_or(0, |(a, l)| a & prefix_mask(l)),
            dst: self.dst.map_or(0, |(a, l)| a & prefix_mask(l)),
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

/// A key as the five words tuple-space search hashes and compares: the
/// addresses' high and low halves, then ports, protocol, DSCP and VLAN packed
/// into one word (the layout of [`pack_tail`]). Masking a key is then five
/// ANDs with a shape's mask in the same layout, whatever the shape.
type Words = [u64; 5];

#[inline(always)]
fn pack_tail(src_port: u16, dst_port: u16, proto: u8, dscp: u8, vlan: u16) -> u64 {
    (src_port as u64) << 48
        | (dst_port as u64) << 32
        | (proto as u64) << 24
        | (dscp as u64) << 16
        | vlan as u64
}

/// Two 128-bit addresses and the packed tail as the five key words.
#[inline(always)]
fn words(src: u128, dst: u128, tail: u64) -> Words {
    [
        (src >> 64) as u64,
        src as u64,
        (dst >> 64) as u64,
        dst as u64,
        tail,
    ]
}

#[inline(always)]
fn key_words(k: &FlowKey) -> Words {
    words(
        k.src,
        k.dst,
        pack_tail(k.src_port, k.dst_port, k.proto, k.dscp, k.vlan),
    )
}

/// The key whose words are `w`: the inverse of [`key_words`] (every field
/// has its own bits in the words).
fn key_from_words(w: &Words) -> FlowKey {
    let tail = w[4];
    FlowKey {
        src: (u128::from(w[0]) << 64) | u128::from(w[1]),
        dst: (u128::from(w[2]) << 64) | u128::from(w[3]),
        src_port: (tail >> 48) as u16,
        dst_port: (tail >> 32) as u16,
        proto: (tail >> 24) as u8,
        dscp: (tail >> 16) as u8,
        vlan: tail as u16,
    }
}

#[inline(always)]
fn mask_words(m: &FlowMask) -> Words {
    words(
        m.src,
        m.dst,
        pack_tail(m.src_port, m.dst_port, m.proto, m.dscp, m.vlan),
    )
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

/// SplitMix64: the tables' hash multipliers from their seed.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Multilinear multiply-shift hash of masked key words (a universal family
/// over the odd multipliers `mul`); callers take its top bits.
#[inline(always)]
fn tuple_hash(w: &Words, mul: &Words) -> u64 {
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
    targets: Vec<u32>,
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
        let mut mix = seed;
        let mul: Words = std::array::from_fn(|_| splitmix64(&mut mix) | 1);
        let mut tuples = Vec::with_capacity(shapes.len());
        let mut runs = Vec::with_capacity(rules.len());
        for (mask, idxs) in shapes {
            let mut groups: Vec<(FlowKey, Vec<u32>)> = Vec::new();
            for &i in &idxs {
                let v = rules[i as usize].0.value();
                match groups.iter_mut().find(|(k, _)| *k == v) {
                    Some((_, g)) => g.push(i),
                    None => groups.push((v, vec![i])),
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
    fn lookup_words(&self, w: &Words) -> Option<(usize, u32)> {
        let best = self.search(w);
        self.targets
            .get(best as usize)
            .map(|&target| (best as usize, target))
    }

    /// Tuple-space search: the index of the first rule matching the key
    /// whose words are `w`, `u32::MAX` if none.
    #[inline(always)]
    fn search(&self, w: &Words) -> u32 {
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
    use crate::sim::Rng;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
        0xffff_0000_0000 | (u32::from_be_bytes([a, b, c, d]) as u128)
    }

    #[test]
    fn masks_and_prefixes() {
        assert_eq!(prefix_mask(0), 0);
        assert_eq!(prefix_mask(128), u128::MAX);
        assert_eq!(prefix_mask(96 + 24), !0xffu128);
        let k = FlowKey {
            src: v4(10, 1, 2, 3),
            dst: v4(192, 168, 1, 9),
            src_port: 1234,
            dst_port: 80,
            proto: 6,
            dscp: 46,
            vlan: 100,
        };
        // dummynet `mask src-ip 0x000000ff`: only the last octet of the source.
        let m = FlowMask {
            src: 0xff,
            ..FlowMask::NONE
        };
        assert_eq!(
            k.masked(&m),
            FlowKey {
                src: 3,
                ..FlowKey::default()
            }
        );
        assert_eq!(k.masked(&FlowMask::FIVE_TUPLE).dscp, 0);
        assert_eq!(k.masked(&FlowMask::FIVE_TUPLE).dst_port, 80);
    }

    #[test]
    fn key_words_round_trip() {
        let mut rng = Rng::new(9);
        for _ in 0..1000 {
            let k = FlowKey {
                src: (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()),
                dst: (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()),
                src_port: rng.next_u64() as u16,
                dst_port: rng.next_u64() as u16,
                proto: rng.next_u64() as u8,
                dscp: rng.next_u64() as u8,
                vlan: rng.next_u64() as u16,
            };
            assert_eq!(key_from_words(&key_words(&k)), k);
        }
    }

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

    #[test]
    fn rule_table_agrees_with_a_linear_scan() {
        let mut rng = Rng::new(5);
        for nrules in [1usize, 20, 1000] {
            let rules: Vec<(Match, u32)> = (0..nrules)
                .map(|i| {
                    let mut m = Match::default();
                    if rng.range(0, 2) == 0 {
                        m.src = Some((
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
        let mut mix = seed ^ 0x5851_f42d_4c95_7f2d;
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
            mul: std::array::from_fn(|_| splitmix64(&mut mix) | 1),
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
    use crate::sim::Rng;

    #[test]
    fn cached_lookups_agree_with_the_table() {
        let mut rng = Rng::new(11);
        let rules: Vec<(Match, u32)> = (0..200)
            .map(|i| {
                let mut m = Match::default();
                match i % 4 {
                    0 => m.src = Some(((rng.range(0, 15) as u128) << 100, 8)),
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
