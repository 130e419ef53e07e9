//! IPv4 header (RFC 791; DSCP/ECN per RFC 2474 / RFC 3168).
//!
//! ```text
//!  0       4       8              16      19             31
//! +-------+-------+--------------+----------------------+
//! |version|  IHL  |  DSCP  | ECN |     total length     |
//! +-------+-------+--------------+------+---------------+
//! |        identification        |flags | frag offset   |
//! +---------------+--------------+------+---------------+
//! |      TTL      |   protocol   |   header checksum    |
//! +---------------+--------------+----------------------+
//! |                 source address                      |
//! |               destination address                   |
//! |          options (IHL > 5), up to 40 bytes          |
//! ```

use super::{checksum, read_u16, write_u16, Field, Layer, ParseError};
use core::net::Ipv4Addr;

/// Byte ranges of the IPv4 header.
mod field {
    use super::Field;
    /// Version (high nibble) and IHL (low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits).
    pub const DSCP_ECN: usize = 1;
    /// Total length: header + payload, in bytes.
    pub const LENGTH: Field = 2..4;
    /// Identification, shared by the fragments of one datagram.
    pub const IDENT: Field = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC_ADDR: Field = 12..16;
    /// Destination address.
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the header without options (IHL = 5).
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Smallest valid IHL: the 20-byte fixed header in 4-byte words.
pub const MIN_IHL: u8 = 5;

/// "Don't fragment" flag in the flags/offset word.
const DF_BIT: u16 = 0x4000;
/// "More fragments" flag in the flags/offset word.
const MF_BIT: u16 = 0x2000;
/// Fragment offset bits (in 8-byte units) of the flags/offset word.
const OFFSET_MASK: u16 = 0x1fff;
/// Fragment offsets count 8-byte units (RFC 791).
const OFFSET_UNIT: u16 = 8;

/// A read/write view of an IPv4 header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// too short or its IHL / total length are inconsistent.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks what the accessors rely on: the 20-byte header is present,
    /// IHL >= 5, the header with its options fits, and
    /// `header_len <= total length <= buffer length` (bytes past the total
    /// length, e.g. Ethernet padding, are allowed and ignored). The version
    /// is not checked here: [`Ipv4Repr::parse`] and [`super::parse()`] do.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Ipv4,
                need: HEADER_LEN,
                have,
            });
        }
        if self.ihl() < MIN_IHL {
            return Err(ParseError::BadIhl(self.ihl()));
        }
        let header_len = self.header_len();
        if have < header_len {
            return Err(ParseError::Truncated {
                layer: Layer::Ipv4,
                need: header_len,
                have,
            });
        }
        let total = self.total_len();
        if usize::from(total) < header_len {
            return Err(ParseError::TotalLengthTooShort { total, header_len });
        }
        if usize::from(total) > have {
            return Err(ParseError::BadTotalLength {
                total,
                available: have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Internet header length in 4-byte words.
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// Differentiated services code point (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// "Don't fragment" flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & DF_BIT != 0
    }

    /// "More fragments" flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & MF_BIT != 0
    }

    /// Fragment offset in bytes (0 for the first fragment or a whole
    /// datagram).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) * OFFSET_UNIT
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload ([`super::ip_protocol`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        let mut a = [0; 4];
        a.copy_from_slice(&d[field::SRC_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        let mut a = [0; 4];
        a.copy_from_slice(&d[field::DST_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Whether the header checksum is correct (the header, options
    /// included, sums to all ones).
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The options (empty when IHL = 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload: from the end of the header to the total length.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, bytes: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((bytes / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP (6 bits; higher bits are dropped).
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }

    /// Sets the ECN (2 bits).
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (value & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    /// Sets flags and fragment offset at once (offset in bytes, a multiple
    /// of 8; the reserved flag is cleared).
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let word = if dont_frag { DF_BIT } else { 0 }
            | if more_frags { MF_BIT } else { 0 }
            | ((offset / OFFSET_UNIT) & OFFSET_MASK);
        write_u16(self.buffer.as_mut(), field::FLG_OFF, word);
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and stores the header checksum (call after every other
    /// header field, options included, is written).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let c = checksum::internet_checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(c);
    }

    /// The options, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The payload (header end to total length), mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An IPv4 header's meaning. Options are skipped by `parse` and not
/// emitted (`emit` writes IHL = 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol ([`super::ip_protocol`]).
    pub protocol: u8,
    /// Payload length in bytes (total length - header length); at most
    /// 65515 for `emit`.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP, 6 bits.
    pub dscp: u8,
    /// ECN, 2 bits.
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// "Don't fragment".
    pub dont_frag: bool,
    /// "More fragments".
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses a header: checks lengths and the version; does **not** verify
    /// the checksum (call [`Ipv4Packet::verify_checksum`] for that).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Self, ParseError> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(ParseError::BadVersion {
                expected: 4,
                got: packet.version(),
            });
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Bytes of header [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header, checksum included.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp(self.dscp);
        packet.set_ecn(self.ecn);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_offset(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4/UDP header + 12 bytes of payload: DSCP AF41 (34), ECN ECT(0),
    /// total 32, ident 0x1234, DF, TTL 64, UDP, 10.0.0.1 -> 10.0.0.2.
    const HEADER: [u8; 32] = [
        0x45, // version 4, IHL 5
        0x8a, // DSCP 34 (100010), ECN 10
        0x00, 0x20, // total length 32
        0x12, 0x34, // ident
        0x40, 0x00, // DF, offset 0
        0x40, // TTL 64
        0x11, // UDP
        0x14, 0x0d, // header checksum
        0x0a, 0x00, 0x00, 0x01, // src
        0x0a, 0x00, 0x00, 0x02, // dst
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, // payload
    ];

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 17,
            payload_len: 12,
            ttl: 64,
            dscp: 34,
            ecn: 2,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn golden_view() {
        let p = Ipv4Packet::new_checked(&HEADER[..]).expect("valid");
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (34, 2));
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.checksum(), 0x140d);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &HEADER[20..]);
        assert_eq!(Ipv4Repr::parse(&p), Ok(repr()));
    }

    #[test]
    fn emit_from_a5_matches_golden() {
        let mut buf = [0xa5u8; 32];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut p);
        p.payload_mut()
            .copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(buf, HEADER);
    }

    #[test]
    fn options_and_padding() {
        // IHL 6 with a Router Alert option (RFC 2113: 94 04 0000), total 24,
        // then 4 bytes of Ethernet padding past the total length.
        let mut b = [0u8; 28];
        b[..24].copy_from_slice(&[
            0x46, 0x00, 0x00, 0x18, 0, 0, 0, 0, 1, 2, 0, 0, 10, 0, 0, 1, 224, 0, 0, 22, 0x94, 0x04,
            0x00, 0x00,
        ]);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&b[..]).expect("valid");
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert!(p.payload().is_empty(), "padding is not payload");
        let r = Ipv4Repr::parse(&p).expect("repr");
        assert_eq!(r.payload_len, 0);
        assert_eq!(r.protocol, 2);
    }

    #[test]
    fn fragment_fields() {
        let mut b = HEADER;
        b[6] = 0x20; // MF, offset 0x0b9 * 8 = 1480
        b[7] = 0xb9;
        let p = Ipv4Packet::new_checked(&b[..]).expect("valid");
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        let mut out = [0xa5u8; 20];
        let r = Ipv4Repr::parse(&p).expect("repr");
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[6..8], [0x20, 0xb9]);
    }

    #[test]
    fn malformed() {
        let mut b = HEADER;
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(ParseError::BadIhl(4))
        );
        let mut b = HEADER;
        b[0] = 0x4f; // 60-byte header in a 32-byte buffer
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Ipv4,
                need: 60,
                have: 32
            })
        );
        let mut b = HEADER;
        b[3] = 33;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(ParseError::BadTotalLength {
                total: 33,
                available: 32
            })
        );
        let mut b = HEADER;
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(ParseError::TotalLengthTooShort {
                total: 19,
                header_len: 20
            })
        );
        let mut b = HEADER;
        b[0] = 0x65;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..])),
            Err(ParseError::BadVersion {
                expected: 4,
                got: 6
            })
        );
        assert_eq!(
            Ipv4Packet::new_checked(&HEADER[..19]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Ipv4,
                need: 20,
                have: 19
            })
        );
    }
}
