//! Socket mode's UDP payloads: the kernel builds the headers, the payload
//! is the [`Stamp`] padded with zeros to the flow's frame size minus the
//! Ethernet, IPv4 and UDP headers.

use super::frame::HEADER_LEN;
use super::stamp::{Stamp, STAMP_LEN};
use crate::traffic::spec::Flow;

/// A flow's UDP payload length: its frame size minus the Ethernet, IPv4 and
/// UDP headers (the kernel adds those).
pub fn payload_len(f: &Flow) -> usize {
    (f.size as usize).saturating_sub(HEADER_LEN).max(STAMP_LEN)
}

/// Writes a payload of `len` bytes into `buf`: the stamp, then zeros.
/// Returns the payload, or `None` if `buf` is too short or `len` cannot hold
/// a stamp.
pub fn build_payload<'b>(buf: &'b mut [u8], len: usize, stamp: &Stamp) -> Option<&'b [u8]> {
    let p = buf.get_mut(..len)?;
    stamp.write(p).ok()?;
    p[STAMP_LEN..].fill(0);
    Some(p)
}

/// The stamp of a received payload if it is one of ours for one of
/// `flows` flows.
pub fn parse_payload(payload: &[u8], flows: usize) -> Option<Stamp> {
    Stamp::read(payload)
        .ok()
        .filter(|s| (s.flow as usize) < flows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::spec::parse_flow;

    fn flow(s: &str, i: usize) -> Flow {
        parse_flow(s, i, 1792).expect("valid flow")
    }

    #[test]
    fn payloads_carry_the_stamp_and_the_frame_size() {
        let f = flow("size=60", 0);
        assert_eq!(
            payload_len(&f),
            STAMP_LEN,
            "a minimum frame is just the stamp"
        );
        assert_eq!(payload_len(&flow("size=1500", 0)), 1458);
        let s = Stamp {
            flow: 1,
            seq: 77,
            tx_ns: 123_456_789,
        };
        let mut buf = vec![0xa5u8; 2048];
        let p = build_payload(&mut buf, 1458, &s).expect("fits");
        assert_eq!(p.len(), 1458);
        assert!(p[STAMP_LEN..].iter().all(|&b| b == 0), "zero padding");
        assert_eq!(parse_payload(p, 2), Some(s));
        assert_eq!(parse_payload(p, 1), None, "flow id 1 of one flow");
        assert_eq!(parse_payload(&p[..10], 2), None, "short");
        assert_eq!(parse_payload(&[0u8; 40], 2), None, "not our magic");
        assert!(
            build_payload(&mut buf, 4096, &s).is_none(),
            "buffer too short"
        );
        assert!(
            build_payload(&mut buf, 10, &s).is_none(),
            "no room for the stamp"
        );
    }
}
