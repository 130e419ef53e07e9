//! ICMP (RFC 792) and ICMPv6 (RFC 4443) headers. Both start with type,
//! code, checksum and four type-specific bytes (identifier + sequence
//! number for echo), so one view serves both; only the checksum differs:
//! ICMPv6's covers the IPv6 pseudo-header, ICMP's does not.
//!
//! ```text
//!  0       8       16             31
//! +-------+-------+--------------+
//! | type  | code  |   checksum   |
//! +-------+-------+--------------+
//! | echo identifier | echo seq   |   (other types: their own 4 bytes)
//! +-----------------+------------+
//! ```

use super::{checksum, ip_protocol, read_u16, write_u16, Field, Layer, ParseError};
use core::net::Ipv6Addr;

/// Byte ranges of the ICMP / ICMPv6 header.
mod field {
    use super::Field;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier (echo request / reply).
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number (echo request / reply).
    pub const ECHO_SEQ_NO: Field = 6..8;
}

/// Length of the header every ICMP and ICMPv6 message has: type, code,
/// checksum and four type-specific bytes.
pub const HEADER_LEN: usize = field::ECHO_SEQ_NO.end;

/// ICMP (v4) message types.
pub mod icmpv4_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// ICMPv6 message types.
pub mod icmpv6_type {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor solicitation (RFC 4861).
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement (RFC 4861).
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// A read/write view of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than [`HEADER_LEN`].
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte header is present (reported as
    /// [`Layer::Icmp`] for both versions: the view cannot tell them apart).
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Icmp,
                need: HEADER_LEN,
                have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type ([`icmpv4_type`] / [`icmpv6_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request / reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number (meaningful for echo request / reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// Whether an ICMP (v4) checksum over the whole buffer is correct.
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }

    /// Whether an ICMPv6 checksum (pseudo-header + whole buffer) is correct.
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let msg = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, msg.len() as u32);
        checksum::combine(&[pseudo, checksum::sum(msg)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> IcmpPacket<&'a T> {
    /// The bytes after the 8-byte header.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ_NO, value);
    }

    /// The bytes after the header, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and stores an ICMP (v4) checksum over the whole buffer.
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet_checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Computes and stores an ICMPv6 checksum.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let msg = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, msg.len() as u32);
        let c = !checksum::combine(&[pseudo, checksum::sum(msg)]);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMP echo request, ident 0x0001, seq 0x0001, data "abcdefghijklmnop
    /// qrstuvwabcdefghi" (Windows ping): checksum 0x4d5a is the well-known
    /// value of that capture.
    const ECHO_V4: [u8; 40] = [
        0x08, 0x00, // echo request, code 0
        0x4d, 0x5a, // checksum
        0x00, 0x01, // ident 1
        0x00, 0x01, // seq 1
        b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', b'j', b'k', b'l', b'm', b'n', b'o',
        b'p', b'q', b'r', b's', b't', b'u', b'v', b'w', b'a', b'b', b'c', b'd', b'e', b'f', b'g',
        b'h', b'i',
    ];

    #[test]
    fn golden_echo_v4() {
        let p = IcmpPacket::new_checked(&ECHO_V4[..]).expect("valid");
        assert_eq!(p.msg_type(), icmpv4_type::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x4d5a);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (1, 1));
        assert_eq!(p.payload().len(), 32);
        assert!(p.verify_checksum_v4());
    }

    #[test]
    fn emit_echo_v4_from_a5() {
        let mut buf = [0xa5u8; 40];
        let mut p = IcmpPacket::new_unchecked(&mut buf[..]);
        p.set_msg_type(icmpv4_type::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(1);
        p.set_echo_seq_no(1);
        p.payload_mut().copy_from_slice(&ECHO_V4[8..]);
        p.fill_checksum_v4();
        assert_eq!(buf, ECHO_V4);
    }

    #[test]
    fn echo_v6_checksum() {
        // ICMPv6 echo request fe80::1 -> fe80::2, ident 0x1234, seq 7, no
        // data. Pseudo-header sum: fe80+1 + fe80+2 + 8 + 58 = 0x1fd45 ->
        // 0xfd46; message: 8000 + 1234 + 0007 = 0x923b; total 0x18f81 ->
        // 0x8f82; checksum !0x8f82 = 0x707d.
        let golden = [0x80, 0x00, 0x70, 0x7d, 0x12, 0x34, 0x00, 0x07];
        let src: Ipv6Addr = "fe80::1".parse().expect("addr");
        let dst: Ipv6Addr = "fe80::2".parse().expect("addr");
        let p = IcmpPacket::new_checked(&golden[..]).expect("valid");
        assert_eq!(p.msg_type(), icmpv6_type::ECHO_REQUEST);
        assert!(p.verify_checksum_v6(&src, &dst));
        assert!(
            !p.verify_checksum_v4(),
            "v6 checksum covers the pseudo-header"
        );
        let mut buf = [0xa5u8; 8];
        let mut q = IcmpPacket::new_unchecked(&mut buf[..]);
        q.set_msg_type(icmpv6_type::ECHO_REQUEST);
        q.set_msg_code(0);
        q.set_echo_ident(0x1234);
        q.set_echo_seq_no(7);
        q.fill_checksum_v6(&src, &dst);
        assert_eq!(buf, golden);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            IcmpPacket::new_checked(&ECHO_V4[..7]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Icmp,
                need: 8,
                have: 7
            })
        );
    }
}
