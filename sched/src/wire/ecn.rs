//! Marking a frame Congestion Experienced in place (RFC 3168 §5): the ECN
//! field is the low two bits of the IPv4 TOS byte / IPv6 traffic class.
//! `00` is Not-ECT and is never changed; ECT(0) `10`, ECT(1) `01` and CE
//! `11` become CE. The IPv4 header checksum is updated incrementally
//! (RFC 1624 eqn. 3) over the one 16-bit word that changed, so a header
//! that checked before checks after — and one that did not, still does not.

use super::checksum;

/// What [`set_ce`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// Was ECT(0) or ECT(1), now CE.
    Marked,
    /// Already CE: unchanged.
    AlreadyCe,
    /// Not-ECT, or the header is not there: unchanged.
    NotEct,
}

/// Marks the IP header at `l3` of `frame` (IPv6 if `v6`, else IPv4) CE.
pub fn set_ce(frame: &mut [u8], l3: usize, v6: bool) -> Marked {
    if v6 {
        // Version(4) TC(8) flow label(20): the ECN bits are bits 4-5 of byte 1.
        let Some(b) = frame.get_mut(l3 + 1) else {
            return Marked::NotEct;
        };
        match (*b >> 4) & 3 {
            0 => Marked::NotEct,
            3 => Marked::AlreadyCe,
            _ => {
                *b |= 0x30;
                Marked::Marked
            }
        }
    } else {
        if frame.len() < l3 + 20 {
            return Marked::NotEct;
        }
        let tos = frame[l3 + 1];
        match tos & 3 {
            0 => Marked::NotEct,
            3 => Marked::AlreadyCe,
            _ => {
                let old = u16::from_be_bytes([frame[l3], tos]);
                frame[l3 + 1] = tos | 3;
                let new = u16::from_be_bytes([frame[l3], tos | 3]);
                let c = u16::from_be_bytes([frame[l3 + 10], frame[l3 + 11]]);
                let c = checksum::update(c, old, new);
                frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
                Marked::Marked
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::internet_checksum;
    use proptest::prelude::*;

    use crate::wire::test_ipv4_frame as v4;

    #[test]
    fn ipv4_ect_becomes_ce_and_the_header_still_checks() {
        for (tos, want) in [
            (0x02, Marked::Marked),
            (0x01, Marked::Marked),
            (0xb8 | 0x02, Marked::Marked),
            (0x03, Marked::AlreadyCe),
            (0x00, Marked::NotEct),
            (0xb8, Marked::NotEct),
        ] {
            let mut f = v4(tos);
            let before = f.clone();
            assert_eq!(set_ce(&mut f, 14, false), want, "tos {tos:#x}");
            if want == Marked::Marked {
                assert_eq!(f[15], tos | 3);
                assert_eq!(internet_checksum(&f[14..34]), 0, "checksum verifies");
                // Only the TOS byte and the checksum changed.
                for (i, (a, b)) in before.iter().zip(&f).enumerate() {
                    assert!(a == b || [15, 24, 25].contains(&i), "byte {i}");
                }
            } else {
                assert_eq!(f, before);
            }
        }
    }

    #[test]
    fn ipv6_ect_becomes_ce_in_the_traffic_class() {
        // Version 6, TC 0xb9 (DSCP 46, ECT(1)), flow label 0x12345.
        let mut h = [0x6b, 0x91, 0x23, 0x45];
        assert_eq!(set_ce(&mut h, 0, true), Marked::Marked);
        assert_eq!(h, [0x6b, 0xb1, 0x23, 0x45]);
        assert_eq!(set_ce(&mut h, 0, true), Marked::AlreadyCe);
        let mut h = [0x6b, 0x81, 0x23, 0x45]; // TC 0xb8: Not-ECT
        assert_eq!(set_ce(&mut h, 0, true), Marked::NotEct);
        assert_eq!(h, [0x6b, 0x81, 0x23, 0x45]);
    }

    #[test]
    fn a_truncated_header_is_left_alone() {
        let mut f = v4(0x02);
        f.truncate(30);
        let before = f.clone();
        assert_eq!(set_ce(&mut f, 14, false), Marked::NotEct);
        assert_eq!(f, before);
        assert_eq!(set_ce(&mut [0x60], 0, true), Marked::NotEct);
    }

    proptest! {
        /// Any IPv4 header whose checksum verifies still verifies after a mark.
        #[test]
        fn the_incremental_update_matches_a_full_recompute(
            mut ip in prop::collection::vec(any::<u8>(), 20),
            ecn in 1u8..=2,
        ) {
            ip[0] = 0x45;
            ip[1] = (ip[1] & !3) | ecn;
            ip[10] = 0;
            ip[11] = 0;
            let c = internet_checksum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(set_ce(&mut ip, 0, false), Marked::Marked);
            prop_assert_eq!(internet_checksum(&ip), 0);
        }
    }
}
