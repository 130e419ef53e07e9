//! Checksums a local sender left to "hardware": a frame sent through a
//! virtual device (veth, tap) by a stack that offloads its TCP/UDP checksum
//! carries only the pseudo-header sum in the checksum field (Linux's
//! `CHECKSUM_PARTIAL`: `~csum_tcpudp_magic(...)`, the folded pseudo-header
//! sum), and the device that would complete it is the one xdpsched replaces:
//! in AF_XDP copy mode the frame arrives with the partial value and no word
//! saying so. Forwarded as is, the receiver drops it.
//!
//! [`complete`] finishes such a checksum as a NIC would: when the field
//! holds exactly the pseudo-header sum and the segment does not already
//! check, it sums the TCP/UDP segment and stores the result. A frame whose
//! field is anything else — a full checksum, right or wrong — is left
//! alone, so a corrupted frame is not "repaired". The usual case (full
//! checksums) costs one pseudo-header sum per TCP/UDP frame.

use super::checksum::{combine, pseudo_header_v4, pseudo_header_v6, sum};
use super::parse::{Family, Fragment, Headers};
use core::net::{Ipv4Addr, Ipv6Addr};

/// What [`complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Not a TCP/UDP segment it can check (other protocols, fragments,
    /// truncated frames, UDP over IPv4 without a checksum).
    NotApplicable,
    /// The field holds something other than a partial sum: left alone.
    Untouched,
    /// The field held the pseudo-header sum and the segment already checked
    /// (a full checksum that happens to equal it): left alone.
    AlreadyValid,
    /// The partial checksum was completed.
    Completed,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Completes a partial TCP/UDP checksum in `frame` (parsed into `h`); see
/// the module docs.
pub fn complete(frame: &mut [u8], h: &Headers) -> Completion {
    if h.l4_offset == 0 || h.fragment != Fragment::None {
        return Completion::NotApplicable;
    }
    let field_at = match h.proto {
        6 => 16,
        17 => 6,
        _ => return Completion::NotApplicable,
    };
    let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
    // The segment's length from the IP header (the frame may be padded).
    let end = match h.family {
        Family::V4 => be16(frame, l3 + 2).map(|t| l3 + usize::from(t)),
        Family::V6 => be16(frame, l3 + 4).map(|p| l3 + 40 + usize::from(p)),
        _ => None,
    };
    let Some(end) = end.filter(|&e| e <= frame.len() && e >= l4 + field_at + 2) else {
        return Completion::NotApplicable;
    };
    let len = end - l4;
    let pseudo = match h.family {
        Family::V4 => {
            let a = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
            pseudo_header_v4(a(l3 + 12), a(l3 + 16), h.proto, len as u16)
        }
        _ => {
            let a = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&frame[o..o + 16]);
                Ipv6Addr::from(b)
            };
            pseudo_header_v6(&a(l3 + 8), &a(l3 + 24), h.proto, len as u32)
        }
    };
    let at = l4 + field_at;
    let field = u16::from_be_bytes([frame[at], frame[at + 1]]);
    if h.proto == 17 && field == 0 && h.family == Family::V4 {
        // UDP over IPv4 without a checksum.
        return Completion::NotApplicable;
    }
    // Zero has two forms in ones' complement.
    let partial =
        field == pseudo || (field == 0 && pseudo == 0xffff) || (field == 0xffff && pseudo == 0);
    if !partial {
        return Completion::Untouched;
    }
    let seg = &mut frame[l4..end];
    if combine(&[pseudo, sum(seg)]) == 0xffff {
        return Completion::AlreadyValid;
    }
    seg[field_at] = 0;
    seg[field_at + 1] = 0;
    let mut c = !combine(&[pseudo, sum(seg)]);
    if h.proto == 17 && c == 0 {
        c = 0xffff;
    }
    seg[field_at..field_at + 2].copy_from_slice(&c.to_be_bytes());
    Completion::Completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::internet_checksum;
    use crate::wire::parse;

    /// An Ethernet frame with an IPv4 or IPv6 header and a TCP (proto 6) or
    /// UDP (17) segment carrying `payload`, every checksum full and right.
    fn frame(v6: bool, proto: u8, payload: &[u8]) -> Vec<u8> {
        let l4_len = if proto == 6 { 20 } else { 8 } + payload.len();
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        let l4 = if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend((0..16).map(|i| 0x20 + i as u8));
            f.extend((0..16).map(|i| 0x40 + i as u8));
            14 + 40
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 1, 1]);
            let c = internet_checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            14 + 20
        };
        f.extend_from_slice(&[0x13, 0x88, 0x27, 0x11]); // ports 5000 -> 10001
        if proto == 6 {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        let at = l4 + if proto == 6 { 16 } else { 6 };
        let c = !combine(&[pseudo_of(&f), sum(&f[l4..])]);
        let c = if proto == 17 && c == 0 { 0xffff } else { c };
        f[at..at + 2].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn pseudo_of(f: &[u8]) -> u16 {
        let h = parse(f).expect("parses");
        let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
        let end = if h.family == Family::V4 {
            l3 + usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]))
        } else {
            l3 + 40 + usize::from(u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]))
        };
        let len = end - l4;
        if h.family == Family::V4 {
            let a = |o: usize| Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]);
            pseudo_header_v4(a(l3 + 12), a(l3 + 16), h.proto, len as u16)
        } else {
            let a = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&f[o..o + 16]);
                Ipv6Addr::from(b)
            };
            pseudo_header_v6(&a(l3 + 8), &a(l3 + 24), h.proto, len as u32)
        }
    }

    fn field_at(f: &[u8]) -> usize {
        let h = parse(f).expect("parses");
        usize::from(h.l4_offset) + if h.proto == 6 { 16 } else { 6 }
    }

    /// The frame as a checksum-offloading stack hands it over: the field
    /// holds the pseudo-header sum.
    fn partial(full: &[u8]) -> Vec<u8> {
        let mut p = full.to_vec();
        let at = field_at(&p);
        let ph = pseudo_of(&p);
        p[at..at + 2].copy_from_slice(&ph.to_be_bytes());
        p
    }

    fn run(f: &mut [u8]) -> Completion {
        let h = parse(f).expect("parses");
        complete(f, &h)
    }

    #[test]
    fn partial_checksums_are_completed_to_what_the_sender_would_have_sent() {
        for v6 in [false, true] {
            for proto in [6, 17] {
                for n in [0usize, 1, 7, 100, 1400] {
                    let payload: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
                    let full = frame(v6, proto, &payload);
                    let mut p = partial(&full);
                    assert_ne!(p, full);
                    assert_eq!(
                        run(&mut p),
                        Completion::Completed,
                        "v6 {v6} proto {proto} n {n}"
                    );
                    assert_eq!(p, full, "v6 {v6} proto {proto} n {n}");
                    // Padding after the IP packet (short Ethernet frames) is not summed.
                    let mut padded = partial(&full);
                    padded.extend_from_slice(&[0xee; 9]);
                    assert_eq!(run(&mut padded), Completion::Completed);
                    assert_eq!(&padded[..full.len()], &full[..]);
                }
            }
        }
    }

    #[test]
    fn full_checksums_right_or_wrong_are_left_alone() {
        for v6 in [false, true] {
            for proto in [6, 17] {
                let full = frame(v6, proto, b"some payload bytes");
                let mut same = full.clone();
                assert_eq!(run(&mut same), Completion::Untouched);
                assert_eq!(same, full);
                // Corrupted in transit: not "repaired".
                let mut bad = full.clone();
                let at = field_at(&bad);
                bad[at] ^= 0x40;
                let before = bad.clone();
                assert_eq!(run(&mut bad), Completion::Untouched);
                assert_eq!(bad, before);
            }
        }
    }

    #[test]
    fn a_full_checksum_equal_to_the_pseudo_header_sum_is_kept() {
        // Choose two payload bytes so that the right checksum equals the
        // pseudo-header sum: it must be recognised as already valid.
        let mut f = frame(false, 17, &[0, 0, 1, 2, 3]);
        let l4 = usize::from(parse(&f).expect("parses").l4_offset);
        let at = field_at(&f);
        let ph = pseudo_of(&f);
        // With the field set to ph, the segment must sum (with the pseudo
        // header) to 0xffff: pick the free word w to make it so.
        f[at..at + 2].copy_from_slice(&ph.to_be_bytes());
        f[l4 + 8..l4 + 10].copy_from_slice(&[0, 0]);
        let s = combine(&[ph, sum(&f[l4..])]);
        let w = !s;
        f[l4 + 8..l4 + 10].copy_from_slice(&w.to_be_bytes());
        assert_eq!(combine(&[ph, sum(&f[l4..])]), 0xffff);
        let before = f.clone();
        assert_eq!(run(&mut f), Completion::AlreadyValid);
        assert_eq!(f, before);
    }

    #[test]
    fn other_frames_are_not_touched() {
        // UDP over IPv4 without a checksum.
        let mut f = frame(false, 17, b"x");
        let at = field_at(&f);
        f[at..at + 2].copy_from_slice(&[0, 0]);
        assert_eq!(run(&mut f), Completion::NotApplicable);
        // ICMP.
        let mut icmp = frame(false, 17, b"xy");
        icmp[23] = 1;
        let c = internet_checksum(&{
            let mut h = icmp[14..34].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        });
        icmp[24..26].copy_from_slice(&c.to_be_bytes());
        let before = icmp.clone();
        assert_eq!(run(&mut icmp), Completion::NotApplicable);
        assert_eq!(icmp, before);
        // An IP length past the frame's end (parse refuses such frames;
        // `complete` does not rely on it): not summed, no panic.
        let mut cut = partial(&frame(false, 6, &[7; 50]));
        let h = parse(&cut).expect("parses");
        cut.truncate(cut.len() - 10);
        assert_eq!(complete(&mut cut, &h), Completion::NotApplicable);
    }
}
