//! The Internet checksum (RFC 1071): 16-bit ones'-complement sum of the
//! data, complemented. Includes the UDP/TCP/ICMPv6 pseudo-headers for IPv4
//! (RFC 768/793) and IPv6 (RFC 8200 §8.1), and the incremental update of
//! RFC 1624 for rewriting one field (DSCP, a port) without re-summing.
//!
//! Building blocks return the *folded sum* (not complemented) so they can be
//! [`combine`]d; the checksum field holds `!combine(...)`. A region whose
//! checksum field is correct sums, with that field included, to `0xffff`.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 64-bit ones'-complement accumulator to 16 bits.
#[inline]
const fn fold(mut acc: u64) -> u16 {
    // Two folds from 64 to 32 bits and two from 32 to 16 absorb every carry.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Ones'-complement sum of `data` as big-endian 16-bit words, folded to 16
/// bits, not complemented. An odd final byte is padded with a zero byte.
pub fn sum(data: &[u8]) -> u16 {
    // Summing 32-bit words with end-around carry gives the same folded
    // result as 16-bit words (ones'-complement addition is associative and
    // byte-order independent within aligned words), with half the adds.
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let v = u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
        let (s, carry) = acc.overflowing_add(v);
        acc = s + u64::from(carry);
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    let (s, carry) = acc.overflowing_add(u64::from(u32::from_be_bytes(tail)));
    acc = s + u64::from(carry);
    fold(acc)
}

/// Ones'-complement sum of several partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    let acc: u64 = sums.iter().map(|&s| u64::from(s)).sum();
    fold(acc)
}

/// The Internet checksum of `data`: `!sum(data)`. Computing it over a header
/// whose checksum field is zero gives the value to store there.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Sum of the IPv4 pseudo-header: source, destination, zero + protocol,
/// upper-layer length (RFC 768, RFC 793 §3.1).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    combine(&[
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(protocol),
        length,
    ])
}

/// Sum of the IPv6 pseudo-header: source, destination, 32-bit upper-layer
/// length, zero + next header (RFC 8200 §8.1).
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    combine(&[
        sum(&src.octets()),
        sum(&dst.octets()),
        (length >> 16) as u16,
        length as u16,
        u16::from(next_header),
    ])
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word covered by it
/// changes from `old_word` to `new_word`: `HC' = ~(~HC + ~m + m')`. Use it to
/// fix an IPv4 header checksum after a DSCP/ECN or TTL rewrite, or an L4
/// checksum after a port or address rewrite (once per changed word).
pub fn update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    !combine(&[!old_checksum, !old_word, new_word])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // The classic example header (Wikipedia "IPv4 header checksum"):
        // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&hdr), 0xb861);
        hdr[10] = 0xb8;
        hdr[11] = 0x61;
        assert_eq!(sum(&hdr), 0xffff, "a correct header sums to all ones");
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn word_size_does_not_matter() {
        // Compare the 32-bit-word sum with a plain 16-bit-word reference.
        fn reference(data: &[u8]) -> u16 {
            let mut acc: u32 = 0;
            for c in data.chunks(2) {
                let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
                acc += u32::from(w);
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        }
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(sum(&data[..len]), reference(&data[..len]), "len {len}");
        }
        assert_eq!(sum(&[0xff; 4096]), 0xffff);
    }

    #[test]
    fn pseudo_headers() {
        // 192.168.0.1 -> 192.168.0.199, UDP, length 8:
        // c0a8 + 0001 + c0a8 + 00c7 + 0011 + 0008 = 0x18231 -> 0x8232.
        let v4 = pseudo_header_v4(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            17,
            8,
        );
        assert_eq!(v4, 0x8232);
        // ::1 -> ::2, TCP, length 0x0001_0000 (a jumbogram-sized value
        // exercises the high half): 1 + 2 + 1 + 0 + 6 = 10.
        let v6 = pseudo_header_v6(
            &Ipv6Addr::LOCALHOST,
            &"::2".parse().expect("addr"),
            6,
            0x1_0000,
        );
        assert_eq!(v6, 10);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        // Rewrite DSCP to EF (46 << 2 = 0xb8): word 0 goes 0x4500 -> 0x45b8.
        let updated = update(0xb861, 0x4500, 0x45b8);
        hdr[1] = 0xb8;
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(updated, internet_checksum(&hdr));
    }
}
