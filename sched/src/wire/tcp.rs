//! TCP header (RFC 9293).
//!
//! ```text
//!  0              16             31
//! +--------------+--------------+
//! | source port  |  dest port   |
//! +--------------+--------------+
//! |       sequence number       |
//! |    acknowledgment number    |
//! +----+----+----+--------------+
//! |doff|rsvd|flags|   window    |
//! +----+----+----+--------------+
//! |   checksum   |urgent pointer|
//! +--------------+--------------+
//! |  options (data offset > 5)  |
//! ```
//! TCP has no length field: a view's buffer is the whole segment (the IP
//! payload), and the checksum covers exactly that buffer.

use super::{
    checksum, ip_protocol, read_u16, read_u32, write_u16, write_u32, Field, Layer, ParseError,
};
use core::net::{Ipv4Addr, Ipv6Addr};

/// Byte ranges of the TCP header.
mod field {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Field = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble; header length in 4-byte words) and
    /// reserved bits.
    pub const DATA_OFF: usize = 12;
    /// The eight classic flag bits (CWR ECE URG ACK PSH RST SYN FIN).
    pub const FLAGS: usize = 13;
    /// Receive window.
    pub const WINDOW: Field = 14..16;
    /// Checksum over pseudo-header + segment.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
}

/// Length of the header without options (data offset 5).
pub const HEADER_LEN: usize = field::URGENT.end;

/// Smallest valid data offset: the 20-byte header in 4-byte words.
pub const MIN_DATA_OFFSET: u8 = 5;

/// TCP flag bits, as in [`TcpPacket::flags`] and
/// [`super::Headers::tcp_flags`].
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo (RFC 3168).
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced (RFC 3168).
    pub const CWR: u8 = 0x80;
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than the header.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 20-byte header is present, the data offset is at
    /// least 5, and the header with its options fits.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Tcp,
                need: HEADER_LEN,
                have,
            });
        }
        if self.data_offset() < MIN_DATA_OFFSET {
            return Err(ParseError::BadTcpDataOffset(self.data_offset()));
        }
        let need = self.header_len();
        if have < need {
            return Err(ParseError::Truncated {
                layer: Layer::Tcp,
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Data offset: header length in 4-byte words.
    #[inline]
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[field::DATA_OFF] >> 4
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    /// The flag byte ([`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_pointer(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options (empty when the data offset is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Whether the checksum over the whole buffer is correct over IPv4.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let seg = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, seg.len() as u16);
        checksum::combine(&[pseudo, checksum::sum(seg)]) == 0xffff
    }

    /// Whether the checksum over the whole buffer is correct over IPv6.
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let seg = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_protocol::TCP, seg.len() as u32);
        checksum::combine(&[pseudo, checksum::sum(seg)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The data after the header and options.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM, value);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM, value);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); clears
    /// the reserved bits.
    pub fn set_header_len(&mut self, bytes: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((bytes / 4) as u8) << 4;
    }

    /// Sets the flag byte.
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the window.
    pub fn set_window(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, value);
    }

    /// The options, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The data, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes and stores the checksum over IPv4 (call after everything
    /// else is written).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let seg = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, seg.len() as u16);
        let c = !checksum::combine(&[pseudo, checksum::sum(seg)]);
        self.set_checksum(c);
    }

    /// Computes and stores the checksum over IPv6.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let seg = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_protocol::TCP, seg.len() as u32);
        let c = !checksum::combine(&[pseudo, checksum::sum(seg)]);
        self.set_checksum(c);
    }
}

/// A TCP header's meaning. Options are skipped by `parse` and not emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Flag byte ([`flags`]).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent_pointer: u16,
}

impl TcpRepr {
    /// Parses the header (lengths checked, checksum not verified).
    pub fn parse<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<Self, ParseError> {
        packet.check_len()?;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window(),
            urgent_pointer: packet.urgent_pointer(),
        })
    }

    /// Bytes of header [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 20-byte header with a zero checksum; write the data, then
    /// call `fill_checksum_v4` / `_v6` on a view over the whole segment.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(HEADER_LEN);
        packet.set_flags(self.flags);
        packet.set_window(self.window);
        packet.set_checksum(0);
        packet.set_urgent_pointer(self.urgent_pointer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);

    /// SYN 40000 -> 443, seq 0x01020304, window 64240, MSS option 1460,
    /// checksum over 192.168.1.10 -> 192.168.1.20.
    const SYN: [u8; 24] = [
        0x9c, 0x40, // src port 40000
        0x01, 0xbb, // dst port 443
        0x01, 0x02, 0x03, 0x04, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0x60, // data offset 6 (24 bytes)
        0x02, // SYN
        0xfa, 0xf0, // window 64240
        0x77, 0xc5, // checksum
        0x00, 0x00, // urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    #[test]
    fn golden_view() {
        let p = TcpPacket::new_checked(&SYN[..]).expect("valid");
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 443);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.data_offset(), 6);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!(p.window(), 64240);
        assert_eq!(p.urgent_pointer(), 0);
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn checksum_known_value() {
        let p = TcpPacket::new_checked(&SYN[..]).expect("valid");
        assert_eq!(p.checksum(), 0x77c5);
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(DST, Ipv4Addr::new(1, 2, 3, 4)));
        let mut b = SYN;
        b[16] = 0xa5;
        b[17] = 0xa5;
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum_v4(SRC, DST);
        assert_eq!(b, SYN);
    }

    #[test]
    fn emit_from_a5_round_trips() {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 443,
            seq_number: 0x0102_0304,
            ack_number: 7,
            flags: flags::ACK | flags::PSH,
            window: 512,
            urgent_pointer: 0,
        };
        let mut buf = [0xa5u8; 23];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        p.payload_mut().copy_from_slice(b"xyz");
        p.fill_checksum_v4(SRC, DST);
        let golden_header = [
            0x9c, 0x40, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 7, 0x50, 0x18, 0x02, 0x00,
        ];
        assert_eq!(buf[..16], golden_header);
        assert_eq!(buf[18..20], [0, 0], "urgent pointer written");
        let p = TcpPacket::new_checked(&buf[..]).expect("valid");
        assert!(p.verify_checksum_v4(SRC, DST));
        assert_eq!(TcpRepr::parse(&p), Ok(repr));
        assert_eq!(p.payload(), b"xyz");
    }

    #[test]
    fn bad_offsets() {
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(ParseError::BadTcpDataOffset(4))
        );
        b[12] = 0x70; // 28-byte header in 24 bytes
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Tcp,
                need: 28,
                have: 24
            })
        );
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Tcp,
                need: 20,
                have: 19
            })
        );
    }
}
