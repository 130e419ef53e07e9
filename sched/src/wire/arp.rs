//! ARP (RFC 826). Recognised, never classified further: the fast
//! [`super::parse()`] stops at the EtherType. This view exists for tests, the
//! generator and diagnostics.
//!
//! ```text
//!  0        2        4    5    6        8
//! +--------+--------+----+----+--------+-----+-----+-----+-----+
//! | htype  | ptype  |hlen|plen| oper   | SHA | SPA | THA | TPA |
//! +--------+--------+----+----+--------+-----+-----+-----+-----+
//! ```
//! The four addresses are `hlen` / `plen` bytes long.

use super::{ethernet::EthernetAddress, ethertype, read_u16, write_u16, Field, Layer, ParseError};
use core::net::Ipv4Addr;

/// Byte ranges of the ARP header; the address fields depend on the lengths.
mod field {
    #![allow(non_snake_case)]
    use super::Field;
    /// Hardware type.
    pub const HTYPE: Field = 0..2;
    /// Protocol type (an EtherType).
    pub const PTYPE: Field = 2..4;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Field = 6..8;
    /// Sender hardware address.
    pub const fn SHA(hlen: u8, _plen: u8) -> Field {
        let start = OPER.end;
        start..start + hlen as usize
    }
    /// Sender protocol address.
    pub const fn SPA(hlen: u8, plen: u8) -> Field {
        let start = SHA(hlen, plen).end;
        start..start + plen as usize
    }
    /// Target hardware address.
    pub const fn THA(hlen: u8, plen: u8) -> Field {
        let start = SPA(hlen, plen).end;
        start..start + hlen as usize
    }
    /// Target protocol address.
    pub const fn TPA(hlen: u8, plen: u8) -> Field {
        let start = THA(hlen, plen).end;
        start..start + plen as usize
    }
}

/// Length of the fixed part (before the addresses).
pub const FIXED_LEN: usize = field::OPER.end;
/// Length of an Ethernet/IPv4 ARP packet: 8 + 2 * (6 + 4).
pub const ETHERNET_IPV4_LEN: usize = 28;

/// Hardware type of Ethernet (RFC 826, IANA "Hardware Types").
pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operation codes.
pub mod operation {
    /// Who has `target_ip`? Tell `sender_ip`.
    pub const REQUEST: u16 = 1;
    /// `sender_ip` is at `sender_hw`.
    pub const REPLY: u16 = 2;
}

/// A read/write view of an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the fixed part and the four addresses
    /// whose lengths it announces.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        let need = if have < FIXED_LEN {
            FIXED_LEN
        } else {
            field::TPA(self.hardware_len(), self.protocol_len()).end
        };
        if have < need {
            return Err(ParseError::Truncated {
                layer: Layer::Arp,
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

    /// Hardware type (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (an EtherType, 0x0800 = IPv4).
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation ([`operation`]).
    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address (`hardware_len` bytes).
    pub fn sender_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SHA(self.hardware_len(), self.protocol_len())]
    }

    /// Sender protocol address (`protocol_len` bytes).
    pub fn sender_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SPA(self.hardware_len(), self.protocol_len())]
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::THA(self.hardware_len(), self.protocol_len())]
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TPA(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::HTYPE, value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::PTYPE, value);
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::OPER, value);
    }

    /// Sets the sender hardware address (length must match `hardware_len`).
    pub fn set_sender_hardware_addr(&mut self, addr: &[u8]) {
        let f = field::SHA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    /// Sets the sender protocol address (length must match `protocol_len`).
    pub fn set_sender_protocol_addr(&mut self, addr: &[u8]) {
        let f = field::SPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let f = field::THA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let f = field::TPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }
}

/// An Ethernet/IPv4 ARP packet's meaning (the only kind on our links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation ([`operation`]).
    pub operation: u16,
    /// Sender MAC.
    pub sender_hw: EthernetAddress,
    /// Sender IPv4 address.
    pub sender_ip: Ipv4Addr,
    /// Target MAC (zero in a request).
    pub target_hw: EthernetAddress,
    /// Target IPv4 address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Parses an Ethernet/IPv4 ARP packet; any other kind is
    /// [`ParseError::UnsupportedArp`].
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self, ParseError> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != ethertype::IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(ParseError::UnsupportedArp {
                hardware: packet.hardware_type(),
                protocol: packet.protocol_type(),
            });
        }
        let mut sender_hw = [0; 6];
        sender_hw.copy_from_slice(packet.sender_hardware_addr());
        let mut target_hw = [0; 6];
        target_hw.copy_from_slice(packet.target_hardware_addr());
        let mut sip = [0; 4];
        sip.copy_from_slice(packet.sender_protocol_addr());
        let mut tip = [0; 4];
        tip.copy_from_slice(packet.target_protocol_addr());
        Ok(ArpRepr {
            operation: packet.operation(),
            sender_hw,
            sender_ip: Ipv4Addr::from(sip),
            target_hw,
            target_ip: Ipv4Addr::from(tip),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// If the buffer is shorter than [`ETHERNET_IPV4_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(ethertype::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(&self.sender_hw);
        packet.set_sender_protocol_addr(&self.sender_ip.octets());
        packet.set_target_hardware_addr(&self.target_hw);
        packet.set_target_protocol_addr(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 10.0.0.2? Tell 10.0.0.1 (02:00:00:00:00:01).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, // htype Ethernet
        0x08, 0x00, // ptype IPv4
        0x06, 0x04, // hlen 6, plen 4
        0x00, 0x01, // request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // SHA
        0x0a, 0x00, 0x00, 0x01, // SPA 10.0.0.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // THA unknown
        0x0a, 0x00, 0x00, 0x02, // TPA 10.0.0.2
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: operation::REQUEST,
            sender_hw: [2, 0, 0, 0, 0, 1],
            sender_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_hw: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        }
    }

    #[test]
    fn golden_request_view_and_repr() {
        let p = ArpPacket::new_checked(&REQUEST[..]).expect("valid");
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.operation(), operation::REQUEST);
        assert_eq!(p.sender_hardware_addr(), &[2, 0, 0, 0, 0, 1]);
        assert_eq!(p.sender_protocol_addr(), &[10, 0, 0, 1]);
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &[10, 0, 0, 2]);
        assert_eq!(ArpRepr::parse(&p), Ok(request_repr()));
    }

    #[test]
    fn emit_from_a5_matches_golden() {
        let mut buf = [0xa5u8; ETHERNET_IPV4_LEN];
        request_repr().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn truncated_and_unsupported() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Arp,
                need: 28,
                have: 27
            })
        );
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..5]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Arp,
                need: 8,
                have: 5
            })
        );
        let mut odd = REQUEST;
        odd[3] = 0x06; // ptype 0x0806: not IPv4
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&odd[..])),
            Err(ParseError::UnsupportedArp {
                hardware: 1,
                protocol: 0x0806
            })
        );
    }
}
