//! The frames xdpgen sends: Ethernet II + IPv4 + UDP + [`Stamp`], built once
//! per flow as a header template; per packet only the stamp is written.
//!
//! The IPv4 header is constant per flow (identification 0 with DF set, as
//! for atomic datagrams, RFC 6864), so its checksum is computed once. The UDP
//! checksum is 0 ("not computed", allowed for IPv4): receivers here are AF_XDP
//! sockets that read the stamp, and in socket mode the kernel builds the
//! frames itself.

use super::stamp::{Stamp, StampError, STAMP_LEN};
use crate::traffic::spec::Flow;
use sched::wire::{
    self, ethertype, ip_protocol, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, UdpPacket,
    UdpRepr, VlanTags,
};
use std::net::Ipv4Addr;

/// Ethernet + IPv4 + UDP header bytes.
pub const HEADER_LEN: usize =
    wire::ethernet::HEADER_LEN + wire::ipv4::HEADER_LEN + wire::udp::HEADER_LEN;

/// Addresses common to all flows of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
}

/// One flow's header template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The headers, ready to copy.
    pub header: [u8; HEADER_LEN],
    /// Frame length.
    pub len: u32,
}

impl Template {
    /// The template of `flow` between `ep`, written with `sched::wire`'s
    /// reprs (the IPv4 checksum by its emitter).
    pub fn new(flow: &Flow, ep: &Endpoints) -> Template {
        let mut h = [0u8; HEADER_LEN];
        let (eth, rest) = h.split_at_mut(wire::ethernet::HEADER_LEN);
        let (ip, udp) = rest.split_at_mut(wire::ipv4::HEADER_LEN);
        let udp_len = flow.size as usize - HEADER_LEN;
        EthernetRepr {
            src: ep.src_mac,
            dst: ep.dst_mac,
            vlans: VlanTags::None,
            ethertype: ethertype::IPV4,
        }
        .emit(&mut EthernetFrame::new_unchecked(eth));
        Ipv4Repr {
            src_addr: ep.src_ip,
            dst_addr: ep.dst_ip,
            protocol: ip_protocol::UDP,
            payload_len: wire::udp::HEADER_LEN + udp_len,
            ttl: 64,
            dscp: flow.dscp,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut Ipv4Packet::new_unchecked(ip));
        // Checksum 0: not computed (allowed for IPv4).
        UdpRepr {
            src_port: flow.sport,
            dst_port: flow.dport,
            payload_len: udp_len,
        }
        .emit(&mut UdpPacket::new_unchecked(udp));
        Template {
            header: h,
            len: flow.size,
        }
    }

    /// Writes the frame (headers + stamp; the rest of the payload is left as
    /// it is) into `buf`, which must hold `len` bytes.
    #[inline]
    pub fn write(&self, buf: &mut [u8], stamp: &Stamp) -> Result<(), StampError> {
        let have = buf.len();
        let frame = buf
            .get_mut(..self.len as usize)
            .filter(|f| f.len() >= HEADER_LEN + STAMP_LEN)
            .ok_or(StampError::Short(have))?;
        frame[..HEADER_LEN].copy_from_slice(&self.header);
        stamp.write(&mut frame[HEADER_LEN..])
    }
}

/// The stamp of a received frame, if it is one of ours: IPv4/UDP (any
/// VLAN tags, IPv4 options) with our magic.
#[inline]
pub fn read_stamp(frame: &[u8]) -> Option<Stamp> {
    // Fast path: what we send (untagged, IHL 5, UDP).
    if frame.len() >= HEADER_LEN + STAMP_LEN
        && frame[12..14] == [0x08, 0x00]
        && frame[14] == 0x45
        && frame[23] == 17
        && frame[20] & 0x1f == 0
        && frame[21] == 0
    {
        return Stamp::read(&frame[HEADER_LEN..]).ok();
    }
    let h = sched::wire::parse(frame).ok()?;
    if h.proto != 17 || h.l4_offset == 0 || h.fragment == sched::wire::Fragment::Later {
        return None;
    }
    Stamp::read(frame.get(h.l4_offset as usize + 8..)?).ok()
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// Formats a MAC address.
pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::spec::parse_flow;
    use pnet_packet::ethernet::EthernetPacket;
    use pnet_packet::ipv4::{checksum as pnet_ipv4_checksum, Ipv4Packet};
    use pnet_packet::udp::UdpPacket;
    use pnet_packet::Packet as _;

    fn ep() -> Endpoints {
        Endpoints {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(10, 211, 0, 1),
            dst_ip: Ipv4Addr::new(10, 211, 0, 2),
        }
    }

    #[test]
    fn frames_are_valid_ipv4_udp_read_by_an_independent_parser() {
        let f = parse_flow("dport=10007,sport=4000,size=1500,dscp=46", 0, 2048).expect("valid");
        let t = Template::new(&f, &ep());
        let mut buf = vec![0u8; 2048];
        let st = Stamp {
            flow: 7,
            seq: 99,
            tx_ns: 123_456_789,
        };
        t.write(&mut buf, &st).expect("fits");
        let frame = &buf[..t.len as usize];
        let eth = EthernetPacket::new(frame).expect("eth");
        assert_eq!(eth.get_ethertype().0, 0x0800);
        let ip = Ipv4Packet::new(eth.payload()).expect("ip");
        assert_eq!(ip.get_total_length(), 1486);
        assert_eq!(ip.get_dscp(), 46);
        assert_eq!(
            ip.get_checksum(),
            pnet_ipv4_checksum(&ip),
            "header checksum"
        );
        assert_eq!(ip.get_source(), Ipv4Addr::new(10, 211, 0, 1));
        let udp = UdpPacket::new(ip.payload()).expect("udp");
        assert_eq!((udp.get_source(), udp.get_destination()), (4000, 10007));
        assert_eq!(udp.get_length(), 1466);
        assert_eq!(read_stamp(frame), Some(st));
    }

    #[test]
    fn minimum_frames_carry_a_whole_stamp() {
        let f = parse_flow("size=60", 0, 2048).expect("valid");
        let t = Template::new(&f, &ep());
        let mut buf = [0u8; 60];
        let st = Stamp {
            flow: 1,
            seq: 2,
            tx_ns: 3,
        };
        t.write(&mut buf, &st).expect("fits");
        assert_eq!(read_stamp(&buf), Some(st));
        // A buffer shorter than the frame is an error, not a panic.
        assert!(t.write(&mut [0u8; 59], &st).is_err());
    }

    #[test]
    fn foreign_frames_have_no_stamp() {
        let f = parse_flow("size=100", 0, 2048).expect("valid");
        let t = Template::new(&f, &ep());
        let mut buf = [0u8; 100];
        t.write(
            &mut buf,
            &Stamp {
                flow: 0,
                seq: 0,
                tx_ns: 0,
            },
        )
        .expect("fits");
        let mut tcp = buf;
        tcp[23] = 6; // protocol TCP
        assert_eq!(read_stamp(&tcp), None);
        let mut magic = buf;
        magic[42] ^= 0xff;
        assert_eq!(read_stamp(&magic), None);
        assert_eq!(read_stamp(&buf[..50]), None, "truncated");
        assert_eq!(read_stamp(&[]), None);
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:0a:ff:00:01"), Some([2, 0, 10, 255, 0, 1]));
        assert_eq!(parse_mac("02:00:0a:ff:00"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:02"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:zz"), None);
        assert_eq!(format_mac(&[2, 0, 10, 255, 0, 1]), "02:00:0a:ff:00:01");
    }
}
