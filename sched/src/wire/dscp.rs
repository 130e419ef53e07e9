//! Rewriting a frame's DSCP in place (a rule's `set_dscp`, dummynet's
//! `setdscp`, tc's `skbedit`/`pedit`): the upper six bits of the IPv4 TOS
//! byte / IPv6 traffic class; the ECN bits below them are kept. The IPv4
//! header checksum is updated incrementally (RFC 1624 eqn. 3) over the one
//! 16-bit word that changed; IPv6 has no header checksum, and the traffic
//! class straddles bytes 0 and 1 of its header.

use super::checksum;

/// Sets the DSCP (0..=63) of the IP header at `l3` of `frame` (IPv6 if
/// `v6`). Returns whether the frame changed (false when it already had
/// that DSCP or the header is not there).
pub fn set(frame: &mut [u8], l3: usize, v6: bool, dscp: u8) -> bool {
    let dscp = dscp & 0x3f;
    if v6 {
        // Version(4) TC(8) flow label(20): TC's upper 4 bits are byte 0's
        // low nibble, its lower 4 bits byte 1's high nibble.
        let Some(h) = frame.get_mut(l3..l3 + 2) else {
            return false;
        };
        let tc = (h[0] << 4) | (h[1] >> 4);
        let new = (dscp << 2) | (tc & 3);
        if new == tc {
            return false;
        }
        h[0] = (h[0] & 0xf0) | (new >> 4);
        h[1] = (h[1] & 0x0f) | (new << 4);
        true
    } else {
        if frame.len() < l3 + 20 {
            return false;
        }
        let tos = frame[l3 + 1];
        let new = (dscp << 2) | (tos & 3);
        if new == tos {
            return false;
        }
        let old_w = u16::from_be_bytes([frame[l3], tos]);
        frame[l3 + 1] = new;
        let new_w = u16::from_be_bytes([frame[l3], new]);
        let c = u16::from_be_bytes([frame[l3 + 10], frame[l3 + 11]]);
        let c = checksum::update(c, old_w, new_w);
        frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::internet_checksum;
    use proptest::prelude::*;

    use crate::wire::test_ipv4_frame as v4;

    proptest! {
        #[test]
        fn ipv4_dscp_is_rewritten_ecn_kept_and_the_header_checks(tos in any::<u8>(), dscp in 0u8..64) {
            let mut f = v4(tos);
            let changed = set(&mut f, 14, false, dscp);
            prop_assert_eq!(f[15] >> 2, dscp);
            prop_assert_eq!(f[15] & 3, tos & 3);
            prop_assert_eq!(changed, tos >> 2 != dscp);
            prop_assert_eq!(internet_checksum(&f[14..34]), 0);
        }

        #[test]
        fn ipv6_traffic_class_is_rewritten_around_the_flow_label(tc in any::<u8>(), dscp in 0u8..64, fl in 0u32..(1 << 20)) {
            let word = (6u32 << 28) | (u32::from(tc) << 20) | fl;
            let mut f = vec![0u8; 14];
            f.extend(word.to_be_bytes());
            f.extend([0u8; 36]);
            let changed = set(&mut f, 14, true, dscp);
            let w = u32::from_be_bytes([f[14], f[15], f[16], f[17]]);
            prop_assert_eq!(w >> 28, 6);
            prop_assert_eq!(w & 0xfffff, fl);
            let new_tc = ((w >> 20) & 0xff) as u8;
            prop_assert_eq!(new_tc >> 2, dscp);
            prop_assert_eq!(new_tc & 3, tc & 3);
            prop_assert_eq!(changed, tc >> 2 != dscp);
        }
    }

    #[test]
    fn a_short_frame_is_left_alone() {
        let mut f = vec![0u8; 20];
        assert!(!set(&mut f, 14, false, 46));
        assert!(!set(&mut f, 19, true, 46));
    }
}
