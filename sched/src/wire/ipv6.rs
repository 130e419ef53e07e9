//! IPv6 header (RFC 8200) and the extension headers the classifier walks:
//! hop-by-hop options (0), routing (43), fragment (44) and destination
//! options (60).
//!
//! ```text
//!  0       4               12                                 31
//! +-------+---------------+-----------------------------------+
//! |version| traffic class |            flow label             |
//! +-------+---------------+-------+-------------+-------------+
//! |        payload length         | next header |  hop limit  |
//! +-------------------------------+-------------+-------------+
//! |              source address (16 bytes)                    |
//! |           destination address (16 bytes)                 |
//! ```
//!
//! Hop-by-hop, routing and destination options share one layout
//! ([`Ipv6ExtHeader`]): next header, length in 8-byte units *not counting
//! the first 8*, then data. The fragment header ([`Ipv6FragmentHeader`]) is
//! always 8 bytes: next header, reserved, offset (13 bits, 8-byte units) +
//! 2 reserved bits + M flag, identification.

use super::{ip_protocol, read_u16, read_u32, write_u16, write_u32, Field, Layer, ParseError};
use core::net::Ipv6Addr;

/// Most extension headers [`super::parse()`] walks before giving up with
/// [`ParseError::TooManyExtensionHeaders`]. RFC 8200 §4.1 allows each
/// walked kind once, except destination options twice: 5 in a legitimate
/// packet. 8 leaves room for odd but harmless stacks while bounding the
/// per-packet work: without a cap an attacker fills a 9000-byte jumbo frame
/// with over a thousand 8-byte headers (RFC 7112, RFC 9098 discuss the
/// problem for middleboxes).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Whether `next_header` is an extension header the parser walks
/// (hop-by-hop, routing, fragment, destination options). Anything else ends
/// the walk and is the final protocol.
#[inline]
pub const fn is_walked_extension(next_header: u8) -> bool {
    // One shift and test of a 64-bit set (all four are below 64), not a
    // chain of compares.
    const WALKED: u64 = 1 << ip_protocol::HOPOPT
        | 1 << ip_protocol::IPV6_ROUTE
        | 1 << ip_protocol::IPV6_FRAG
        | 1 << ip_protocol::IPV6_OPTS;
    next_header < 64 && (WALKED >> next_header) & 1 != 0
}

/// Byte ranges of the fixed IPv6 header.
mod field {
    use super::Field;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length: bytes after this 40-byte header.
    pub const LENGTH: Field = 4..6;
    /// Next header.
    pub const NXT_HDR: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Field = 8..24;
    /// Destination address.
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Shift of the version in the first 32-bit word.
const VERSION_SHIFT: u32 = 28;
/// Shift of the traffic class in the first 32-bit word.
const TC_SHIFT: u32 = 20;
/// Mask of the 20-bit flow label.
const FLOW_MASK: u32 = 0x000f_ffff;

/// A read/write view of an IPv6 header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// too short for the header or the payload length.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 40-byte header is present and the payload length
    /// fits in the buffer (bytes past it, e.g. Ethernet padding, are allowed
    /// and ignored). The version is not checked here: [`Ipv6Repr::parse`]
    /// and [`super::parse()`] do.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Ipv6,
                need: HEADER_LEN,
                have,
            });
        }
        let payload = self.payload_len();
        if usize::from(payload) > have - HEADER_LEN {
            return Err(ParseError::BadPayloadLength {
                payload,
                available: have - HEADER_LEN,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The first 32-bit word: version, traffic class, flow label.
    #[inline]
    fn first_word(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    /// Version nibble (6 for IPv6).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.first_word() >> VERSION_SHIFT) as u8
    }

    /// Traffic class: DSCP (high 6 bits) and ECN (low 2).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> TC_SHIFT) as u8
    }

    /// DSCP, 6 bits.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// ECN, 2 bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label, 20 bits.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.first_word() & FLOW_MASK
    }

    /// Payload length: bytes after the fixed header (extension headers
    /// included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header: the first extension header or the upper protocol.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload (extension headers first): `payload_len` bytes after the
    /// fixed header.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the first word from its three parts (masked to their widths).
    fn set_first_word(&mut self, version: u8, traffic_class: u8, flow_label: u32) {
        let word = (u32::from(version & 0x0f) << VERSION_SHIFT)
            | (u32::from(traffic_class) << TC_SHIFT)
            | (flow_label & FLOW_MASK);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, word);
    }

    /// Sets the version nibble.
    pub fn set_version(&mut self, value: u8) {
        let (tc, fl) = (self.traffic_class(), self.flow_label());
        self.set_first_word(value, tc, fl);
    }

    /// Sets the traffic class (DSCP << 2 | ECN).
    pub fn set_traffic_class(&mut self, value: u8) {
        let (v, fl) = (self.version(), self.flow_label());
        self.set_first_word(v, value, fl);
    }

    /// Sets the flow label (20 bits).
    pub fn set_flow_label(&mut self, value: u32) {
        let (v, tc) = (self.version(), self.traffic_class());
        self.set_first_word(v, tc, value);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = value;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// An IPv6 fixed header's meaning (extension headers are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length (extension headers included); at most 65535.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// DSCP, 6 bits.
    pub dscp: u8,
    /// ECN, 2 bits.
    pub ecn: u8,
    /// Flow label, 20 bits.
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses the fixed header: checks lengths and the version.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Self, ParseError> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(ParseError::BadVersion {
                expected: 6,
                got: packet.version(),
            });
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            flow_label: packet.flow_label(),
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

    /// Writes the 40-byte header.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_first_word(6, (self.dscp << 2) | (self.ecn & 0x03), self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

/// Byte ranges of a hop-by-hop / routing / destination-options header.
mod ext_field {
    use super::Field;
    /// Next header.
    pub const NXT_HDR: usize = 0;
    /// Length in 8-byte units, not counting the first 8 bytes.
    pub const LENGTH: usize = 1;
    /// Start of the options / routing data (up to the header length).
    pub const DATA: usize = 2;
    /// The smallest such header (length 0): 8 bytes.
    pub const MIN_LEN: Field = 0..8;
}

/// Smallest hop-by-hop / routing / destination-options header.
pub const EXT_HEADER_MIN_LEN: usize = ext_field::MIN_LEN.end;
/// Extension header lengths count 8-byte units (RFC 8200 §4.3).
const EXT_UNIT: usize = 8;

/// A read/write view of a hop-by-hop, routing or destination-options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Wraps a buffer without checking it.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6ExtHeader { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that the whole header, as long as its length field says,
    /// is in the buffer.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        let need = if have < EXT_HEADER_MIN_LEN {
            EXT_HEADER_MIN_LEN
        } else {
            self.header_len()
        };
        if have < need {
            return Err(ParseError::Truncated {
                layer: Layer::Ipv6Extension,
                need,
                have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ext_field::NXT_HDR]
    }

    /// The raw length field (8-byte units beyond the first 8).
    #[inline]
    pub fn length_field(&self) -> u8 {
        self.buffer.as_ref()[ext_field::LENGTH]
    }

    /// The header's length in bytes: `(length + 1) * 8`.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.length_field()) + 1) * EXT_UNIT
    }

    /// Options or routing data: the header after its first two bytes.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[ext_field::DATA..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6ExtHeader<&'a T> {
    /// The bytes after this header.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6ExtHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[ext_field::NXT_HDR] = value;
    }

    /// Sets the raw length field.
    pub fn set_length_field(&mut self, value: u8) {
        self.buffer.as_mut()[ext_field::LENGTH] = value;
    }

    /// The data, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[ext_field::DATA..end]
    }
}

/// A hop-by-hop / routing / destination-options header's meaning, for
/// building test and generator traffic: the data is not represented, and
/// `emit` zero-fills it (zero bytes are Pad1 options, so a hop-by-hop or
/// destination-options header emitted this way is valid; a routing header
/// becomes type 0 with segments left 0, which receivers ignore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeaderRepr {
    /// Next header.
    pub next_header: u8,
    /// Length field: 8-byte units beyond the first 8.
    pub length: u8,
}

impl Ipv6ExtHeaderRepr {
    /// Parses the next header and length.
    pub fn parse<T: AsRef<[u8]>>(header: &Ipv6ExtHeader<T>) -> Result<Self, ParseError> {
        header.check_len()?;
        Ok(Ipv6ExtHeaderRepr {
            next_header: header.next_header(),
            length: header.length_field(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        (self.length as usize + 1) * EXT_UNIT
    }

    /// Writes the header, data zero-filled.
    ///
    /// # Panics
    /// If the buffer is shorter than [`header_len`](Self::header_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Ipv6ExtHeader<T>) {
        header.set_next_header(self.next_header);
        header.set_length_field(self.length);
        header.data_mut().fill(0);
    }
}

/// Byte ranges of the fragment header.
mod frag_field {
    use super::Field;
    /// Next header (of the fragmentable part).
    pub const NXT_HDR: usize = 0;
    /// Reserved, zero.
    pub const RESERVED: usize = 1;
    /// Offset (13 bits, 8-byte units), 2 reserved bits, M flag.
    pub const OFF_M: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..8;
}

/// Length of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = frag_field::IDENT.end;

/// Offset bits of the offset/M word; the offset counts 8-byte units
/// starting at bit 3, so masking gives the offset in bytes directly.
const FRAG_OFFSET_MASK: u16 = 0xfff8;
/// "More fragments" flag.
const FRAG_M_BIT: u16 = 0x0001;

/// A read/write view of an IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    /// Wraps a buffer without checking it.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6FragmentHeader { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that the 8-byte header is present.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < FRAGMENT_HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Ipv6Extension,
                need: FRAGMENT_HEADER_LEN,
                have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next header of the fragmentable part.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[frag_field::NXT_HDR]
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), frag_field::OFF_M) & FRAG_OFFSET_MASK
    }

    /// "More fragments" flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), frag_field::OFF_M) & FRAG_M_BIT != 0
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), frag_field::IDENT)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6FragmentHeader<&'a T> {
    /// The bytes after this header.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[FRAGMENT_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragmentHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[frag_field::NXT_HDR] = value;
    }

    /// Sets offset (bytes, a multiple of 8) and M flag; clears the reserved
    /// byte and bits.
    pub fn set_offset_and_more(&mut self, offset: u16, more_frags: bool) {
        let word = (offset & FRAG_OFFSET_MASK) | if more_frags { FRAG_M_BIT } else { 0 };
        let b = self.buffer.as_mut();
        b[frag_field::RESERVED] = 0;
        write_u16(b, frag_field::OFF_M, word);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), frag_field::IDENT, value);
    }
}

/// An IPv6 fragment header's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragmentRepr {
    /// Next header of the fragmentable part.
    pub next_header: u8,
    /// Offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    /// "More fragments".
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl Ipv6FragmentRepr {
    /// Parses the header.
    pub fn parse<T: AsRef<[u8]>>(header: &Ipv6FragmentHeader<T>) -> Result<Self, ParseError> {
        header.check_len()?;
        Ok(Ipv6FragmentRepr {
            next_header: header.next_header(),
            frag_offset: header.frag_offset(),
            more_frags: header.more_frags(),
            ident: header.ident(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        FRAGMENT_HEADER_LEN
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the buffer is shorter than [`FRAGMENT_HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Ipv6FragmentHeader<T>) {
        header.set_next_header(self.next_header);
        header.set_offset_and_more(self.frag_offset, self.more_frags);
        header.set_ident(self.ident);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv6 header: traffic class 0xb9 (DSCP 46 EF, ECN 1), flow label
    /// 0x12345, payload 16, next header hop-by-hop, hop limit 64,
    /// 2001:db8::1 -> 2001:db8::2; then a hop-by-hop header (-> UDP, length
    /// 0, PadN of 4 zero bytes) and 8 bytes of "UDP".
    const PACKET: [u8; 56] = [
        0x6b, 0x91, 0x23, 0x45, // version 6, TC 0xb9, flow 0x12345
        0x00, 0x10, // payload length 16
        0x00, // next header: hop-by-hop
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0x11, 0x00, // hop-by-hop: next UDP, length 0 (8 bytes)
        0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // PadN, 4 bytes
        0xaa, 0xbb, 0xcc, 0xdd, 0x00, 0x08, 0x00, 0x00, // "UDP"
    ];

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: "2001:db8::1".parse().expect("addr"),
            dst_addr: "2001:db8::2".parse().expect("addr"),
            next_header: ip_protocol::HOPOPT,
            payload_len: 16,
            hop_limit: 64,
            dscp: 46,
            ecn: 1,
            flow_label: 0x12345,
        }
    }

    #[test]
    fn golden_view_and_ext_header() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).expect("valid");
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb9);
        assert_eq!((p.dscp(), p.ecn()), (46, 1));
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 16);
        assert_eq!(p.next_header(), 0);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(Ipv6Repr::parse(&p), Ok(repr()));

        let hbh = Ipv6ExtHeader::new_checked(p.payload()).expect("ext");
        assert_eq!(hbh.next_header(), ip_protocol::UDP);
        assert_eq!(hbh.header_len(), 8);
        assert_eq!(hbh.data(), &[0x01, 0x04, 0, 0, 0, 0]);
        assert_eq!(hbh.payload(), &PACKET[48..]);
    }

    #[test]
    fn emit_from_a5_matches_golden() {
        let mut buf = [0xa5u8; 56];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut p);
        let payload = p.payload_mut();
        let mut hbh = Ipv6ExtHeader::new_unchecked(&mut payload[..8]);
        Ipv6ExtHeaderRepr {
            next_header: ip_protocol::UDP,
            length: 0,
        }
        .emit(&mut hbh);
        hbh.data_mut()[..2].copy_from_slice(&[0x01, 0x04]);
        payload[8..].copy_from_slice(&PACKET[48..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn fragment_header_golden_and_emit() {
        // next TCP, offset 1448 (181 * 8) with M set, ident 0xdeadbeef.
        let golden = [0x06, 0x00, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef];
        let h = Ipv6FragmentHeader::new_checked(&golden[..]).expect("valid");
        let r = Ipv6FragmentRepr::parse(&h).expect("repr");
        assert_eq!(
            r,
            Ipv6FragmentRepr {
                next_header: 6,
                frag_offset: 1448,
                more_frags: true,
                ident: 0xdead_beef
            }
        );
        let mut out = [0xa5u8; 8];
        r.emit(&mut Ipv6FragmentHeader::new_unchecked(&mut out[..]));
        assert_eq!(out, golden);
    }

    #[test]
    fn walked_extensions_are_exactly_the_four() {
        for nh in 0..=u8::MAX {
            assert_eq!(
                is_walked_extension(nh),
                matches!(nh, 0 | 43 | 44 | 60),
                "next header {nh}"
            );
        }
    }

    #[test]
    fn malformed() {
        let mut b = PACKET;
        b[5] = 17; // payload length one past the buffer
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).err(),
            Some(ParseError::BadPayloadLength {
                payload: 17,
                available: 16
            })
        );
        assert_eq!(
            Ipv6Packet::new_checked(&PACKET[..39]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Ipv6,
                need: 40,
                have: 39
            })
        );
        let mut b = PACKET;
        b[41] = 1; // hop-by-hop claims 16 bytes
        assert!(
            Ipv6ExtHeader::new_checked(&b[40..]).is_ok(),
            "exactly 16 bytes"
        );
        assert_eq!(
            Ipv6ExtHeader::new_checked(&b[40..54]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Ipv6Extension,
                need: 16,
                have: 14
            })
        );
        let mut b = PACKET;
        b[0] = 0x4b;
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&b[..])),
            Err(ParseError::BadVersion {
                expected: 6,
                got: 4
            })
        );
    }
}
