//! Flow keys and masks (dummynet semantics), their hash, and the five-word
//! form tuple-space search works on.

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
    /// Every field, all bits.
    pub const ALL: FlowMask = FlowMask {
        dscp: 0x3f,
        vlan: 0x0fff,
        ..FlowMask::FIVE_TUPLE
    };

    /// True if no bit is selected.
    pub fn is_none(&self) -> bool {
        *self == FlowMask::NONE
    }
}

/// An address prefix in the mapped 128-bit space: IPv4 `a.b.c.d/n` is
/// `::ffff:a.b.c.d/(96 + n)`. Host bits of `addr` are zero when it comes
/// from a configuration (validation rejects them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: u128,
    /// Prefix length 0..=128.
    pub len: u8,
}

impl Prefix {
    /// The prefix `addr/len`.
    pub const fn new(addr: u128, len: u8) -> Prefix {
        Prefix { addr, len }
    }

    /// The netmask of this prefix length.
    pub fn mask(&self) -> u128 {
        prefix_mask(self.len)
    }

    /// True if `addr` (mapped form) is inside the prefix.
    pub fn contains(&self, addr: u128) -> bool {
        (addr ^ self.addr) & self.mask() == 0
    }
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

/// A key as the five words tuple-space search hashes and compares: the
/// addresses' high and low halves, then ports, protocol, DSCP and VLAN packed
/// into one word (the layout of [`pack_tail`]). Masking a key is then five
/// ANDs with a shape's mask in the same layout, whatever the shape.
pub(crate) type Words = [u64; 5];

#[inline(always)]
pub(crate) fn pack_tail(src_port: u16, dst_port: u16, proto: u8, dscp: u8, vlan: u16) -> u64 {
    (src_port as u64) << 48
        | (dst_port as u64) << 32
        | (proto as u64) << 24
        | (dscp as u64) << 16
        | vlan as u64
}

/// Two 128-bit addresses and the packed tail as the five key words.
#[inline(always)]
pub(crate) fn words(src: u128, dst: u128, tail: u64) -> Words {
    [
        (src >> 64) as u64,
        src as u64,
        (dst >> 64) as u64,
        dst as u64,
        tail,
    ]
}

#[inline(always)]
pub(crate) fn key_words(k: &FlowKey) -> Words {
    words(
        k.src,
        k.dst,
        pack_tail(k.src_port, k.dst_port, k.proto, k.dscp, k.vlan),
    )
}

/// The key whose words are `w`: the inverse of [`key_words`] (every field
/// has its own bits in the words).
pub(crate) fn key_from_words(w: &Words) -> FlowKey {
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
pub(crate) fn mask_words(m: &FlowMask) -> Words {
    words(
        m.src,
        m.dst,
        pack_tail(m.src_port, m.dst_port, m.proto, m.dscp, m.vlan),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

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
}
