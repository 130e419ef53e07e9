//! UDP header (RFC 768; over IPv6, RFC 8200 §8.1).
//!
//! ```text
//!  0              16             31
//! +--------------+--------------+
//! | source port  |  dest port   |
//! +--------------+--------------+
//! |    length    |   checksum   |
//! +--------------+--------------+
//! ```
//! The length counts header and data. UDP-Lite (RFC 3828) and SCTP put
//! their ports at the same offsets, which [`super::parse()`] relies on.

use super::{checksum, ip_protocol, read_u16, write_u16, Field, Layer, ParseError};
use core::net::{Ipv4Addr, Ipv6Addr};

/// Byte ranges of the UDP header.
mod field {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Length of header + data.
    pub const LENGTH: Field = 4..6;
    /// Checksum (0 over IPv4 = none).
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it; header accessors may panic if it
    /// is shorter than [`HEADER_LEN`], the payload and checksum ones if the
    /// length field is inconsistent.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header is present and `8 <= length <= buffer length`.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Udp,
                need: HEADER_LEN,
                have,
            });
        }
        let length = self.len();
        if usize::from(length) < HEADER_LEN || usize::from(length) > have {
            return Err(ParseError::BadUdpLength {
                length,
                available: have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field (header + data).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The datagram as the length field bounds it.
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// Whether the checksum is correct over IPv4; a zero checksum means
    /// "not computed" (RFC 768) and is accepted.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, self.len());
        checksum::combine(&[pseudo, checksum::sum(self.datagram())]) == 0xffff
    }

    /// Whether the checksum is correct over IPv6, where it is mandatory
    /// (a zero checksum is rejected).
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_protocol::UDP, u32::from(self.len()));
        checksum::combine(&[pseudo, checksum::sum(self.datagram())]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The data: after the header, up to the length field.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// The data, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Stores the checksum computed with `pseudo` (a pseudo-header sum);
    /// a computed zero is sent as 0xffff, since zero means "none".
    fn fill_checksum_with(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let c = !checksum::combine(&[pseudo, checksum::sum(self.datagram())]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes and stores the checksum over IPv4 (call after the data is
    /// written).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, self.len());
        self.fill_checksum_with(pseudo);
    }

    /// Computes and stores the checksum over IPv6.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_protocol::UDP, u32::from(self.len()));
        self.fill_checksum_with(pseudo);
    }
}

/// A UDP header's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data length (length field - 8); at most 65527 for `emit`.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses the header (lengths checked, checksum not verified: use the
    /// view's `verify_checksum_v4` / `_v6`).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<Self, ParseError> {
        packet.check_len()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Bytes of header [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus data.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header with a zero checksum; write the data, then call
    /// `fill_checksum_v4` / `_v6` on the view.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpPacket<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// 4242 -> 53, length 12, data "abcd", checksum over 10.0.0.1 ->
    /// 10.0.0.2.
    const DATAGRAM: [u8; 12] = [
        0x10, 0x92, // src port 4242
        0x00, 0x35, // dst port 53
        0x00, 0x0c, // length 12
        0x16, 0x46, // checksum
        b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn golden_view() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).expect("valid");
        assert_eq!(p.src_port(), 4242);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.payload(), b"abcd");
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(SRC, Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(
            UdpRepr::parse(&p),
            Ok(UdpRepr {
                src_port: 4242,
                dst_port: 53,
                payload_len: 4
            })
        );
    }

    #[test]
    fn emit_from_a5_matches_golden() {
        let mut buf = [0xa5u8; 12];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        UdpRepr {
            src_port: 4242,
            dst_port: 53,
            payload_len: 4,
        }
        .emit(&mut p);
        p.payload_mut().copy_from_slice(b"abcd");
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn zero_checksum_rules_and_v6() {
        let mut b = DATAGRAM;
        b[6] = 0;
        b[7] = 0;
        let p = UdpPacket::new_checked(&b[..]).expect("valid");
        assert!(p.verify_checksum_v4(SRC, DST), "zero = none over IPv4");
        let (s6, d6): (Ipv6Addr, Ipv6Addr) =
            ("fe80::1".parse().expect("a"), "fe80::2".parse().expect("a"));
        assert!(!p.verify_checksum_v6(&s6, &d6), "mandatory over IPv6");
        let mut p = UdpPacket::new_checked(&mut b[..]).expect("valid");
        p.fill_checksum_v6(&s6, &d6);
        assert!(p.verify_checksum_v6(&s6, &d6));
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Udp,
                need: 8,
                have: 7
            })
        );
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..11]).err(),
            Some(ParseError::BadUdpLength {
                length: 12,
                available: 11
            })
        );
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).err(),
            Some(ParseError::BadUdpLength {
                length: 7,
                available: 12
            })
        );
    }
}
