//! The wire views and the classifier's parser: golden frames, every error,
//! the fuzz corpus, and properties (never panics; agrees with the frozen
//! reference parser, `sched::testkit::reference`, on every input).

use core::net::{Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use sched::testkit::reference;
use sched::wire::*;

// ---- golden frames (every checksum in them is valid) ----

/// Ethernet / IPv4 / UDP: EF-marked "ping", 192.0.2.1:5000 ->
/// 198.51.100.7:6000.
const ETH_IPV4_UDP: [u8; 46] = [
    0x02, 0, 0, 0, 0, 0x02, // dst 02:00:00:00:00:02
    0x02, 0, 0, 0, 0, 0x01, // src 02:00:00:00:00:01
    0x08, 0x00, // IPv4
    0x45, // version 4, IHL 5
    0xb8, // DSCP 46 (EF), ECN 0
    0x00, 0x20, // total length 32
    0x00, 0x01, // ident 1
    0x40, 0x00, // DF, offset 0
    0x40, 0x11, // TTL 64, UDP
    0x4d, 0xd8, // header checksum
    192, 0, 2, 1, // src
    198, 51, 100, 7, // dst
    0x13, 0x88, // UDP src port 5000
    0x17, 0x70, // dst port 6000
    0x00, 0x0c, // length 12
    0x09, 0xd1, // checksum
    b'p', b'i', b'n', b'g',
];

/// 802.1Q (PCP 3, VID 42) / IPv4 (ECN 2 = ECT(0)) / TCP SYN+ACK
/// 10.1.1.1:33000 -> 10.1.1.2:80.
const VLAN_IPV4_TCP: [u8; 58] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x81, 0x00, // TPID 802.1Q
    0x60, 0x2a, // PCP 3, DEI 0, VID 42
    0x08, 0x00, // IPv4
    0x45, 0x02, // IHL 5; DSCP 0, ECN 2
    0x00, 0x28, // total length 40
    0x22, 0x22, // ident
    0x40, 0x00, // DF
    0x3f, 0x06, // TTL 63, TCP
    0x03, 0xa8, // header checksum
    10, 1, 1, 1, // src
    10, 1, 1, 2, // dst
    0x80, 0xe8, // TCP src port 33000
    0x00, 0x50, // dst port 80
    0x00, 0x00, 0x00, 0x01, // seq 1
    0x00, 0x00, 0x00, 0x02, // ack 2
    0x50, // data offset 5
    0x12, // SYN | ACK
    0x04, 0x00, // window 1024
    0x14, 0x93, // checksum
    0x00, 0x00, // urgent pointer
];

/// QinQ: 802.1ad S-tag VID 100 over 802.1Q C-tag VID 200 / IPv4 / UDP
/// 10.0.0.1:1234 -> 10.0.0.2:4321, no data.
const QINQ_IPV4_UDP: [u8; 50] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x88, 0xa8, // TPID 802.1ad
    0x00, 0x64, // VID 100
    0x81, 0x00, // TPID 802.1Q
    0x00, 0xc8, // VID 200
    0x08, 0x00, // IPv4
    0x45, 0x00, 0x00, 0x1c, // IHL 5, TOS 0, total 28
    0x00, 0x03, 0x00, 0x00, // ident 3, no flags
    0x40, 0x11, 0x66, 0xcc, // TTL 64, UDP, checksum
    10, 0, 0, 1, // src
    10, 0, 0, 2, // dst
    0x04, 0xd2, 0x10, 0xe1, // UDP 1234 -> 4321
    0x00, 0x08, 0xd6, 0x28, // length 8, checksum
];

/// Broadcast ARP request: who has 10.0.0.2? tell 10.0.0.1.
const ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst broadcast
    0x02, 0, 0, 0, 0, 0x01, // src
    0x08, 0x06, // ARP
    0x00, 0x01, 0x08, 0x00, // Ethernet, IPv4
    0x06, 0x04, 0x00, 0x01, // hlen 6, plen 4, request
    0x02, 0, 0, 0, 0, 0x01, // sender MAC
    10, 0, 0, 1, // sender IP
    0, 0, 0, 0, 0, 0, // target MAC
    10, 0, 0, 2, // target IP
];

/// IPv4 with 8 bytes of options (Router Alert, 3 NOPs, EOL) / UDP
/// 10.0.0.1:7 -> 224.0.0.9:9.
const IPV4_OPTIONS_UDP: [u8; 50] = [
    0x01, 0x00, 0x5e, 0x00, 0x00, 0x09, // dst (multicast MAC)
    0x02, 0, 0, 0, 0, 0x01, // src
    0x08, 0x00, // IPv4
    0x47, 0x00, // IHL 7 (28 bytes), TOS 0
    0x00, 0x24, // total length 36
    0x00, 0x04, 0x00, 0x00, // ident 4, no flags
    0x01, 0x11, // TTL 1, UDP
    0x37, 0xb6, // header checksum
    10, 0, 0, 1, // src
    224, 0, 0, 9, // dst
    0x94, 0x04, 0x00, 0x00, // Router Alert (RFC 2113)
    0x01, 0x01, 0x01, 0x00, // NOP NOP NOP EOL
    0x00, 0x07, 0x00, 0x09, // UDP 7 -> 9
    0x00, 0x08, 0x15, 0xc4, // length 8, checksum
];

/// IPv4 later fragment: offset 1480, last; its 8 data bytes would read
/// as ports 57005 -> 48879 if mistaken for a UDP header.
const IPV4_LATER_FRAGMENT: [u8; 42] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x08, 0x00, // IPv4
    0x45, 0x00, 0x00, 0x1c, // IHL 5, TOS 0, total 28
    0x55, 0x55, // ident
    0x00, 0xb9, // MF 0, offset 185 * 8 = 1480
    0x40, 0x11, 0x10, 0xc1, // TTL 64, UDP, checksum
    10, 0, 0, 1, // src
    10, 0, 0, 2, // dst
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x08, 0x00, 0x00, // fragment data
];

/// IPv4 first fragment (MF, offset 0) / UDP 12345 -> 53 whose length
/// (1480) spans later fragments.
const IPV4_FIRST_FRAGMENT: [u8; 50] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x08, 0x00, // IPv4
    0x45, 0x00, 0x00, 0x24, // IHL 5, TOS 0, total 36
    0x55, 0x55, // ident
    0x20, 0x00, // MF, offset 0
    0x40, 0x11, 0xf1, 0x71, // TTL 64, UDP, checksum
    10, 0, 0, 1, // src
    10, 0, 0, 2, // dst
    0x30, 0x39, 0x00, 0x35, // UDP 12345 -> 53
    0x05, 0xc8, 0x00, 0x00, // length 1480, checksum (unchecked)
    1, 2, 3, 4, 5, 6, 7, 8, // data
];

/// Ethernet / IPv6 (DSCP 10 AF11, ECN 1) / hop-by-hop (8) /
/// destination options (16) / TCP PSH+ACK [2001:db8::1]:443 ->
/// [2001:db8::2]:50000.
const IPV6_HBH_DST_TCP: [u8; 98] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x86, 0xdd, // IPv6
    0x62, 0x90, 0x00, 0x00, // version 6, TC 0x29, flow 0
    0x00, 0x2c, // payload length 44
    0x00, // next: hop-by-hop
    0x40, // hop limit 64
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
    0x3c, 0x00, // hop-by-hop: next dst-opts, 8 bytes
    0x01, 0x04, 0, 0, 0, 0, // PadN 4
    0x06, 0x01, // dst-opts: next TCP, 16 bytes
    0x01, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // PadN 12
    0x01, 0xbb, 0xc3, 0x50, // TCP 443 -> 50000
    0x00, 0x00, 0x10, 0x00, // seq 4096
    0x00, 0x00, 0x20, 0x00, // ack 8192
    0x50, 0x18, // data offset 5, PSH | ACK
    0xff, 0xff, // window
    0x5f, 0x4c, // checksum
    0x00, 0x00, // urgent pointer
];

/// IPv6 first fragment (offset 0, M) / UDP 8080 -> 53.
const IPV6_FIRST_FRAGMENT: [u8; 70] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x86, 0xdd, // IPv6
    0x60, 0x00, 0x00, 0x00, // version 6, TC 0, flow 0
    0x00, 0x10, 0x2c, 0x40, // payload 16, next: fragment, hop limit 64
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
    0x11, 0x00, // fragment: next UDP, reserved
    0x00, 0x01, // offset 0, M
    0x00, 0x00, 0x30, 0x39, // ident 12345
    0x1f, 0x90, 0x00, 0x35, // UDP 8080 -> 53
    0x05, 0xa0, 0x00, 0x00, // length 1440, checksum (unchecked)
];

/// IPv6 later fragment (offset 1440, last) of the datagram above.
const IPV6_LATER_FRAGMENT: [u8; 70] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x86, 0xdd, // IPv6
    0x60, 0x00, 0x00, 0x00, // version 6, TC 0, flow 0
    0x00, 0x10, 0x2c, 0x40, // payload 16, next: fragment, hop limit 64
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
    0x11, 0x00, // fragment: next UDP, reserved
    0x05, 0xa0, // offset 180 * 8 = 1440, M 0
    0x00, 0x00, 0x30, 0x39, // ident 12345
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x08, 0x00, 0x00, // fragment data
];

/// IPv4 ICMP echo request, ident 0x1234, seq 1, data "ping".
const IPV4_ICMP_ECHO: [u8; 46] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x08, 0x00, // IPv4
    0x45, 0x00, 0x00, 0x20, // IHL 5, TOS 0, total 32
    0x00, 0x07, 0x00, 0x00, // ident 7, no flags
    0x40, 0x01, 0x66, 0xd4, // TTL 64, ICMP, checksum
    10, 0, 0, 1, // src
    10, 0, 0, 2, // dst
    0x08, 0x00, 0x06, 0xfa, // echo request, code 0, checksum
    0x12, 0x34, 0x00, 0x01, // ident, seq
    b'p', b'i', b'n', b'g',
];

/// IPv6 ICMPv6 echo request, ident 0xbeef, seq 1.
const IPV6_ICMP_ECHO: [u8; 62] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x86, 0xdd, // IPv6
    0x60, 0x00, 0x00, 0x00, // version 6, TC 0, flow 0
    0x00, 0x08, 0x3a, 0xff, // payload 8, next ICMPv6, hop limit 255
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
    0x80, 0x00, 0x65, 0x57, // echo request, code 0, checksum
    0xbe, 0xef, 0x00, 0x01, // ident, seq
];

/// Every golden frame, for the prefix and mutation tests.
const GOLDEN: [&[u8]; 12] = [
    &ETH_IPV4_UDP,
    &VLAN_IPV4_TCP,
    &QINQ_IPV4_UDP,
    &ARP_REQUEST,
    &IPV4_OPTIONS_UDP,
    &IPV4_LATER_FRAGMENT,
    &IPV4_FIRST_FRAGMENT,
    &IPV6_HBH_DST_TCP,
    &IPV6_FIRST_FRAGMENT,
    &IPV6_LATER_FRAGMENT,
    &IPV4_ICMP_ECHO,
    &IPV6_ICMP_ECHO,
];

const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn ok(frame: &[u8]) -> Headers {
    parse(frame).expect("golden frame parses")
}

#[test]
fn eth_ipv4_udp() {
    assert_eq!(
        ok(&ETH_IPV4_UDP),
        Headers {
            ethertype: 0x0800,
            family: Family::V4,
            src: ipv4_mapped([192, 0, 2, 1]),
            dst: ipv4_mapped([198, 51, 100, 7]),
            proto: 17,
            dscp: 46,
            ecn: 0,
            src_port: 5000,
            dst_port: 6000,
            l3_offset: 14,
            l4_offset: 34,
            ..Headers::default()
        }
    );
    assert_eq!(
        ok(&ETH_IPV4_UDP).src,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]
    );
}

#[test]
fn vlan_ipv4_tcp() {
    assert_eq!(
        ok(&VLAN_IPV4_TCP),
        Headers {
            vlans: [42, 0],
            vlan_count: 1,
            ethertype: 0x0800,
            family: Family::V4,
            src: ipv4_mapped([10, 1, 1, 1]),
            dst: ipv4_mapped([10, 1, 1, 2]),
            proto: 6,
            dscp: 0,
            ecn: 2,
            src_port: 33000,
            dst_port: 80,
            tcp_flags: tcp::flags::SYN | tcp::flags::ACK,
            l3_offset: 18,
            l4_offset: 38,
            ..Headers::default()
        }
    );
}

#[test]
fn qinq_both_outer_tpids() {
    let expect = Headers {
        vlans: [100, 200],
        vlan_count: 2,
        ethertype: 0x0800,
        family: Family::V4,
        src: ipv4_mapped([10, 0, 0, 1]),
        dst: ipv4_mapped([10, 0, 0, 2]),
        proto: 17,
        src_port: 1234,
        dst_port: 4321,
        l3_offset: 22,
        l4_offset: 42,
        ..Headers::default()
    };
    assert_eq!(ok(&QINQ_IPV4_UDP), expect);
    let mut legacy = QINQ_IPV4_UDP;
    legacy[12..14].copy_from_slice(&[0x91, 0x00]); // TPID 0x9100
    assert_eq!(ok(&legacy), expect);
}

#[test]
fn arp_is_recognised_only() {
    assert_eq!(
        ok(&ARP_REQUEST),
        Headers {
            ethertype: 0x0806,
            family: Family::Arp,
            l3_offset: 14,
            ..Headers::default()
        }
    );
    // The ARP body is not looked at: even an empty one.
    assert_eq!(ok(&ARP_REQUEST[..14]).family, Family::Arp);
    let arp = ArpPacket::new_checked(&ARP_REQUEST[14..]).expect("view");
    assert_eq!(arp.operation(), arp::operation::REQUEST);
}

#[test]
fn ipv4_options_are_skipped() {
    let h = ok(&IPV4_OPTIONS_UDP);
    assert_eq!((h.src_port, h.dst_port), (7, 9));
    assert_eq!(h.dst, ipv4_mapped([224, 0, 0, 9]));
    assert_eq!(h.l4_offset, 14 + 28);
}

#[test]
fn ipv4_fragments() {
    assert_eq!(
        ok(&IPV4_LATER_FRAGMENT),
        Headers {
            ethertype: 0x0800,
            family: Family::V4,
            src: ipv4_mapped([10, 0, 0, 1]),
            dst: ipv4_mapped([10, 0, 0, 2]),
            proto: 17,
            fragment: Fragment::Later,
            l3_offset: 14,
            ..Headers::default()
        }
    );
    let first = ok(&IPV4_FIRST_FRAGMENT);
    assert_eq!(first.fragment, Fragment::First);
    assert_eq!((first.src_port, first.dst_port), (12345, 53));
    assert_eq!(first.l4_offset, 34);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    assert_eq!(
        ok(&IPV6_HBH_DST_TCP),
        Headers {
            ethertype: 0x86dd,
            family: Family::V6,
            src: V6_SRC,
            dst: V6_DST,
            proto: 6,
            dscp: 10,
            ecn: 1,
            src_port: 443,
            dst_port: 50000,
            tcp_flags: tcp::flags::PSH | tcp::flags::ACK,
            l3_offset: 14,
            l4_offset: 14 + 40 + 8 + 16,
            ..Headers::default()
        }
    );
}

#[test]
fn ipv6_fragments() {
    let first = ok(&IPV6_FIRST_FRAGMENT);
    assert_eq!(first.fragment, Fragment::First);
    assert_eq!(first.proto, 17);
    assert_eq!((first.src_port, first.dst_port), (8080, 53));
    assert_eq!(first.l4_offset, 14 + 40 + 8);

    assert_eq!(
        ok(&IPV6_LATER_FRAGMENT),
        Headers {
            ethertype: 0x86dd,
            family: Family::V6,
            src: V6_SRC,
            dst: V6_DST,
            proto: 17,
            fragment: Fragment::Later,
            l3_offset: 14,
            ..Headers::default()
        }
    );

    // Atomic fragment (RFC 6946): offset 0, M = 0 is a whole packet.
    let mut atomic = IPV6_FIRST_FRAGMENT;
    atomic[57] = 0x00;
    let h = ok(&atomic);
    assert_eq!(h.fragment, Fragment::None);
    assert_eq!(h.src_port, 8080);
}

#[test]
fn icmp_echo_v4_and_v6() {
    let h = ok(&IPV4_ICMP_ECHO);
    assert_eq!((h.proto, h.icmp_type, h.icmp_code), (1, 8, 0));
    assert_eq!((h.src_port, h.dst_port, h.l4_offset), (0, 0, 34));
    let h = ok(&IPV6_ICMP_ECHO);
    assert_eq!((h.proto, h.icmp_type, h.icmp_code), (58, 128, 0));
    assert_eq!(h.l4_offset, 54);
    // Protocol 1 inside IPv6 (or 58 inside IPv4) is not ICMP for that
    // family: no L4 header is read.
    let mut odd = IPV6_ICMP_ECHO;
    odd[20] = 1;
    let h = ok(&odd);
    assert_eq!((h.proto, h.icmp_type, h.l4_offset), (1, 0, 0));
}

#[test]
fn golden_checksums_are_valid() {
    let eth = EthernetFrame::new_checked(&ETH_IPV4_UDP[..]).expect("eth");
    let ip = Ipv4Packet::new_checked(eth.payload()).expect("ip");
    assert!(ip.verify_checksum());
    let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
    assert!(udp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));

    let ip = Ipv4Packet::new_checked(&VLAN_IPV4_TCP[18..]).expect("ip");
    assert!(ip.verify_checksum());
    let tcp = TcpPacket::new_checked(ip.payload()).expect("tcp");
    assert!(tcp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));

    for f in [&QINQ_IPV4_UDP[22..], &IPV4_OPTIONS_UDP[14..]] {
        let ip = Ipv4Packet::new_checked(f).expect("ip");
        assert!(ip.verify_checksum());
        let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
        assert!(udp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
    }
    for f in [
        &IPV4_LATER_FRAGMENT[14..],
        &IPV4_FIRST_FRAGMENT[14..],
        &IPV4_ICMP_ECHO[14..],
    ] {
        assert!(Ipv4Packet::new_checked(f).expect("ip").verify_checksum());
    }
    let icmp = IcmpPacket::new_checked(&IPV4_ICMP_ECHO[34..]).expect("icmp");
    assert!(icmp.verify_checksum_v4());

    let (s, d) = (Ipv6Addr::from(V6_SRC), Ipv6Addr::from(V6_DST));
    let tcp = TcpPacket::new_checked(&IPV6_HBH_DST_TCP[78..]).expect("tcp");
    assert!(tcp.verify_checksum_v6(&s, &d));
    let icmp = IcmpPacket::new_checked(&IPV6_ICMP_ECHO[54..]).expect("icmp");
    assert!(icmp.verify_checksum_v6(&s, &d));
}

#[test]
fn non_ip_frames() {
    // IEEE 802.3 + LLC (STP BPDU): type/length field 0x0026 is a length.
    let mut stp = [0u8; 60];
    stp[..6].copy_from_slice(&[0x01, 0x80, 0xc2, 0, 0, 0]);
    stp[12..17].copy_from_slice(&[0x00, 0x26, 0x42, 0x42, 0x03]);
    assert_eq!(
        ok(&stp),
        Headers {
            ethertype: 0x0026,
            l3_offset: 14,
            ..Headers::default()
        }
    );
    // LLDP (0x88cc): a real EtherType, not IP.
    let mut lldp = [0u8; 60];
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(ok(&lldp).family, Family::None);
    assert_eq!(ok(&lldp).ethertype, 0x88cc);
    // VLAN-tagged non-IP.
    let mut tagged = [0u8; 60];
    tagged[12..18].copy_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x88, 0xcc]);
    let h = ok(&tagged);
    assert_eq!((h.vlans, h.vlan_count, h.ethertype), ([7, 0], 1, 0x88cc));
    assert_eq!(h.l3_offset, 18);
}

#[test]
fn ethernet_padding_is_ignored_but_l4_must_fit_the_ip_packet() {
    let mut padded = [0xeeu8; 64];
    padded[..46].copy_from_slice(&ETH_IPV4_UDP);
    assert_eq!(ok(&padded), ok(&ETH_IPV4_UDP));

    // Total length 24: only 4 bytes of UDP inside the IP packet, even
    // though the frame's padding would make 8.
    let mut short = padded;
    short[17] = 24;
    assert_eq!(
        parse(&short),
        Err(ParseError::Truncated {
            layer: Layer::Udp,
            need: 8,
            have: 4
        })
    );
}

#[test]
fn other_protocols_have_no_l4() {
    // ESP over IPv4: proto 50, nothing more.
    let mut esp = ETH_IPV4_UDP;
    esp[23] = 50;
    let h = ok(&esp);
    assert_eq!((h.proto, h.src_port, h.l4_offset), (50, 0, 0));
    // IPv6 "no next header".
    let mut none = IPV6_ICMP_ECHO;
    none[20] = ip_protocol::IPV6_NONXT;
    let h = ok(&none);
    assert_eq!((h.proto, h.icmp_type, h.l4_offset), (59, 0, 0));
    // UDP-Lite and SCTP carry ports where UDP does.
    let mut lite = ETH_IPV4_UDP;
    lite[23] = ip_protocol::UDPLITE;
    assert_eq!(ok(&lite).src_port, 5000);
    let mut sctp = ETH_IPV4_UDP;
    sctp[23] = ip_protocol::SCTP;
    let h = ok(&sctp);
    assert_eq!((h.proto, h.src_port, h.dst_port), (132, 5000, 6000));
    // An SCTP common header needs 12 bytes.
    sctp[17] = 28;
    assert_eq!(
        parse(&sctp),
        Err(ParseError::Truncated {
            layer: Layer::Sctp,
            need: 12,
            have: 8
        })
    );
}

#[test]
fn malformed_ipv4() {
    let mut f = ETH_IPV4_UDP;
    f[14] = 0x44;
    assert_eq!(parse(&f), Err(ParseError::BadIhl(4)));
    f[14] = 0x40;
    assert_eq!(parse(&f), Err(ParseError::BadIhl(0)));

    let mut f = ETH_IPV4_UDP;
    f[17] = 33;
    assert_eq!(
        parse(&f),
        Err(ParseError::BadTotalLength {
            total: 33,
            available: 32
        })
    );
    f[16] = 0xff;
    assert_eq!(
        parse(&f),
        Err(ParseError::BadTotalLength {
            total: 0xff21,
            available: 32
        })
    );

    let mut f = ETH_IPV4_UDP;
    f[17] = 16;
    assert_eq!(
        parse(&f),
        Err(ParseError::TotalLengthTooShort {
            total: 16,
            header_len: 20
        })
    );

    let mut f = ETH_IPV4_UDP;
    f[14] = 0x65;
    assert_eq!(
        parse(&f),
        Err(ParseError::BadVersion {
            expected: 4,
            got: 6
        })
    );

    let mut f = VLAN_IPV4_TCP;
    f[50] = 0x40; // TCP data offset 4
    assert_eq!(parse(&f), Err(ParseError::BadTcpDataOffset(4)));
    f[50] = 0x60; // 24-byte header in a 20-byte segment
    assert_eq!(
        parse(&f),
        Err(ParseError::Truncated {
            layer: Layer::Tcp,
            need: 24,
            have: 20
        })
    );
}

#[test]
fn malformed_ipv6() {
    let mut f = IPV6_HBH_DST_TCP;
    f[19] = 45;
    assert_eq!(
        parse(&f),
        Err(ParseError::BadPayloadLength {
            payload: 45,
            available: 44
        })
    );

    let mut f = IPV6_HBH_DST_TCP;
    f[14] = 0x42;
    assert_eq!(
        parse(&f),
        Err(ParseError::BadVersion {
            expected: 6,
            got: 4
        })
    );

    // Destination options claiming 88 bytes where 36 remain.
    let mut f = IPV6_HBH_DST_TCP;
    f[63] = 10;
    assert_eq!(
        parse(&f),
        Err(ParseError::Truncated {
            layer: Layer::Ipv6Extension,
            need: 88,
            have: 36
        })
    );

    // Payload length cuts the TCP header short (frame bytes after it
    // do not count).
    let mut f = IPV6_HBH_DST_TCP;
    f[19] = 40;
    assert_eq!(
        parse(&f),
        Err(ParseError::Truncated {
            layer: Layer::Tcp,
            need: 20,
            have: 16
        })
    );
}

/// Ethernet / IPv6 with `n` 8-byte headers (destination options, or
/// fragment headers where `frag_at` says) and then a UDP header.
fn ipv6_chain(n: usize, frag_at: Option<usize>) -> Vec<u8> {
    let payload = n * 8 + 8;
    let mut f = vec![0u8; 14 + 40 + payload];
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&(payload as u16).to_be_bytes());
    let kind = |i: usize| {
        if Some(i) == frag_at {
            ip_protocol::IPV6_FRAG
        } else {
            ip_protocol::IPV6_OPTS
        }
    };
    f[20] = if n == 0 { ip_protocol::UDP } else { kind(0) };
    for i in 0..n {
        let at = 54 + i * 8;
        f[at] = if i + 1 == n {
            ip_protocol::UDP
        } else {
            kind(i + 1)
        };
    }
    let udp = 54 + n * 8;
    f[udp..udp + 8].copy_from_slice(&[0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0, 0]);
    f
}

#[test]
fn extension_header_cap() {
    for n in 0..=ipv6::MAX_EXTENSION_HEADERS {
        let h = parse(&ipv6_chain(n, None)).expect("within the cap");
        assert_eq!((h.proto, h.src_port, h.dst_port), (17, 1, 2), "n = {n}");
        assert_eq!(usize::from(h.l4_offset), 54 + n * 8);
    }
    assert_eq!(
        parse(&ipv6_chain(ipv6::MAX_EXTENSION_HEADERS + 1, None)),
        Err(ParseError::TooManyExtensionHeaders {
            max: ipv6::MAX_EXTENSION_HEADERS
        })
    );
    // A fragment header counts toward the cap too.
    assert_eq!(
        parse(&ipv6_chain(ipv6::MAX_EXTENSION_HEADERS + 1, Some(3))),
        Err(ParseError::TooManyExtensionHeaders {
            max: ipv6::MAX_EXTENSION_HEADERS
        })
    );
    let h = parse(&ipv6_chain(ipv6::MAX_EXTENSION_HEADERS, Some(7))).expect("ok");
    assert_eq!(h.fragment, Fragment::None, "atomic fragment");
    // A long chain inside a later fragment stops at its fragment header.
    let mut f = ipv6_chain(40, Some(0));
    f[56] = 0x00;
    f[57] = 0x08; // offset 8
    let h = parse(&f).expect("walk stops at the later fragment");
    assert_eq!(
        (h.fragment, h.proto),
        (Fragment::Later, ip_protocol::IPV6_OPTS)
    );
}

#[test]
fn too_many_vlan_tags() {
    let mut f = vec![0u8; 14 + 12 + 20];
    f[12..14].copy_from_slice(&[0x88, 0xa8]);
    f[16..18].copy_from_slice(&[0x81, 0x00]);
    f[20..22].copy_from_slice(&[0x81, 0x00]);
    f[24..26].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(parse(&f), Err(ParseError::TooManyVlanTags));
}

#[test]
fn every_prefix_parses_or_fails_typed() {
    for frame in GOLDEN {
        let full = parse(frame).expect("golden");
        for n in 0..frame.len() {
            let prefix = &frame[..n];
            match parse(prefix) {
                Ok(h) => {
                    // Only frames whose body parse() does not read (ARP)
                    // may parse when cut.
                    assert_eq!(h.family, Family::Arp, "prefix {n} of {frame:02x?}");
                    assert!(n >= 14);
                }
                Err(ParseError::Truncated { need, have, .. }) => {
                    assert!(have < need, "prefix {n}: have {have} need {need}");
                    if n < 14 {
                        assert_eq!(
                            parse(prefix),
                            Err(ParseError::Truncated {
                                layer: Layer::Ethernet,
                                need: 14,
                                have: n
                            })
                        );
                    }
                }
                Err(ParseError::BadTotalLength { available, .. }) => {
                    assert_eq!(full.family, Family::V4);
                    assert_eq!(available, n - usize::from(full.l3_offset));
                }
                Err(ParseError::BadPayloadLength { available, .. }) => {
                    assert_eq!(full.family, Family::V6);
                    assert_eq!(available, n - usize::from(full.l3_offset) - 40);
                }
                Err(e) => panic!("prefix {n}: unexpected {e}"),
            }
        }
    }
}

#[test]
fn error_messages_name_layer_and_values() {
    let e = ParseError::Truncated {
        layer: Layer::Ipv6Extension,
        need: 88,
        have: 36,
    };
    assert_eq!(
        e.to_string(),
        "truncated IPv6 extension header: need 88 bytes, have 36"
    );
    assert_eq!(
        ParseError::BadIhl(3).to_string(),
        "IPv4 IHL 3 is below the minimum of 5"
    );
    assert_eq!(
        ParseError::TooManyExtensionHeaders { max: 8 }.to_string(),
        "more than 8 IPv6 extension headers"
    );
    assert_eq!(
        ParseError::TooManyVlanTags.to_string(),
        "more than 2 VLAN tags"
    );
    assert_eq!(
        ParseError::BadVersion {
            expected: 4,
            got: 6
        }
        .to_string(),
        "IP version 6 under the IPv4 EtherType"
    );
}

// ---- emit -> parse round trips, from 0xa5-filled buffers ----

/// The transport part of a test frame.
#[derive(Debug, Clone, Copy)]
enum L4 {
    Udp(UdpRepr),
    Tcp(TcpRepr),
}

/// The network part of a test frame.
#[derive(Debug, Clone, Copy)]
enum L3 {
    V4(Ipv4Repr),
    V6(Ipv6Repr),
}

/// Builds Ethernet (+tags) / IP / L4 / data with the Reprs, into a
/// buffer of 0xa5, checksums filled.
fn build(eth: EthernetRepr, l3: L3, l4: L4, data: &[u8]) -> Vec<u8> {
    let l4_len = match l4 {
        L4::Udp(u) => u.header_len(),
        L4::Tcp(t) => t.header_len(),
    } + data.len();
    let l3_len = match l3 {
        L3::V4(_) => ipv4::HEADER_LEN,
        L3::V6(_) => ipv6::HEADER_LEN,
    };
    let mut buf = vec![0xa5u8; eth.header_len() + l3_len + l4_len];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let ip_buf = &mut buf[eth.header_len()..];
    let (seg, src, dst) = match l3 {
        L3::V4(mut ip) => {
            ip.payload_len = l4_len;
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut ip_buf[..]));
            (
                &mut ip_buf[l3_len..],
                Some((ip.src_addr, ip.dst_addr)),
                None,
            )
        }
        L3::V6(mut ip) => {
            ip.payload_len = l4_len;
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut ip_buf[..]));
            (
                &mut ip_buf[l3_len..],
                None,
                Some((ip.src_addr, ip.dst_addr)),
            )
        }
    };
    match l4 {
        L4::Udp(mut u) => {
            u.payload_len = data.len();
            let mut p = UdpPacket::new_unchecked(&mut seg[..]);
            u.emit(&mut p);
            p.payload_mut().copy_from_slice(data);
            if let Some((s, d)) = src {
                p.fill_checksum_v4(s, d);
            }
            if let Some((s, d)) = dst {
                p.fill_checksum_v6(&s, &d);
            }
        }
        L4::Tcp(t) => {
            let mut p = TcpPacket::new_unchecked(&mut seg[..]);
            t.emit(&mut p);
            p.payload_mut().copy_from_slice(data);
            if let Some((s, d)) = src {
                p.fill_checksum_v4(s, d);
            }
            if let Some((s, d)) = dst {
                p.fill_checksum_v6(&s, &d);
            }
        }
    }
    buf
}

/// Parses `frame` with the Reprs and with [`parse`], checks both against
/// what built it, and checks every checksum.
fn check_round_trip(frame: &[u8], eth: EthernetRepr, l3: L3, l4: L4, data: &[u8]) {
    let ef = EthernetFrame::new_checked(frame).expect("eth");
    let eth_back = EthernetRepr::parse(&ef).expect("eth repr");
    assert_eq!(eth_back, eth);
    let ip_bytes = &frame[eth.header_len()..];
    let h = parse(frame).expect("fast parse");
    assert_eq!(usize::from(h.l3_offset), eth.header_len());
    let tags = eth.vlans.as_array();
    for (i, t) in tags.iter().enumerate() {
        assert_eq!(h.vlans[i], t.map_or(0, |t| t.vlan_id));
    }
    assert_eq!(usize::from(h.vlan_count), eth.vlans.len());
    assert_eq!(h.ethertype, eth.ethertype);
    let seg = match l3 {
        L3::V4(ip) => {
            let p = Ipv4Packet::new_checked(ip_bytes).expect("v4");
            assert!(p.verify_checksum());
            let back = Ipv4Repr::parse(&p).expect("v4 repr");
            assert_eq!(
                back,
                Ipv4Repr {
                    payload_len: back.payload_len,
                    ..ip
                }
            );
            assert_eq!(h.family, Family::V4);
            assert_eq!(h.src, ipv4_mapped(ip.src_addr.octets()));
            assert_eq!(h.dst, ipv4_mapped(ip.dst_addr.octets()));
            assert_eq!((h.proto, h.dscp, h.ecn), (ip.protocol, ip.dscp, ip.ecn));
            &ip_bytes[ipv4::HEADER_LEN..]
        }
        L3::V6(ip) => {
            let p = Ipv6Packet::new_checked(ip_bytes).expect("v6");
            let back = Ipv6Repr::parse(&p).expect("v6 repr");
            assert_eq!(
                back,
                Ipv6Repr {
                    payload_len: back.payload_len,
                    ..ip
                }
            );
            assert_eq!(h.family, Family::V6);
            assert_eq!((h.src, h.dst), (ip.src_addr.octets(), ip.dst_addr.octets()));
            assert_eq!((h.proto, h.dscp, h.ecn), (ip.next_header, ip.dscp, ip.ecn));
            &ip_bytes[ipv6::HEADER_LEN..]
        }
    };
    assert_eq!(usize::from(h.l4_offset), frame.len() - seg.len());
    let (s4, d4, s6, d6) = match l3 {
        L3::V4(ip) => (ip.src_addr, ip.dst_addr, None, None),
        L3::V6(ip) => (
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Some(ip.src_addr),
            Some(ip.dst_addr),
        ),
    };
    match l4 {
        L4::Udp(u) => {
            let p = UdpPacket::new_checked(seg).expect("udp");
            match (s6, d6) {
                (Some(s), Some(d)) => assert!(p.verify_checksum_v6(&s, &d)),
                _ => assert!(p.verify_checksum_v4(s4, d4)),
            }
            assert_eq!(
                UdpRepr::parse(&p),
                Ok(UdpRepr {
                    payload_len: data.len(),
                    ..u
                })
            );
            assert_eq!(p.payload(), data);
            assert_eq!((h.src_port, h.dst_port), (u.src_port, u.dst_port));
        }
        L4::Tcp(t) => {
            let p = TcpPacket::new_checked(seg).expect("tcp");
            match (s6, d6) {
                (Some(s), Some(d)) => assert!(p.verify_checksum_v6(&s, &d)),
                _ => assert!(p.verify_checksum_v4(s4, d4)),
            }
            assert_eq!(TcpRepr::parse(&p), Ok(t));
            assert_eq!(p.payload(), data);
            assert_eq!((h.src_port, h.dst_port), (t.src_port, t.dst_port));
            assert_eq!(h.tcp_flags, t.flags);
        }
    }
}

fn eth_repr(vlans: VlanTags, ethertype: u16) -> EthernetRepr {
    EthernetRepr {
        src: [0x02, 0, 0, 0, 0, 0x01],
        dst: [0x02, 0, 0, 0, 0, 0x02],
        vlans,
        ethertype,
    }
}

#[test]
fn emit_reproduces_golden_eth_ipv4_udp() {
    let eth = eth_repr(VlanTags::None, ethertype::IPV4);
    let ip = Ipv4Repr {
        src_addr: Ipv4Addr::new(192, 0, 2, 1),
        dst_addr: Ipv4Addr::new(198, 51, 100, 7),
        protocol: ip_protocol::UDP,
        payload_len: 0,
        ttl: 64,
        dscp: 46,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let udp = UdpRepr {
        src_port: 5000,
        dst_port: 6000,
        payload_len: 0,
    };
    let f = build(eth, L3::V4(ip), L4::Udp(udp), b"ping");
    assert_eq!(f[..], ETH_IPV4_UDP[..]);
}

#[test]
fn emit_reproduces_golden_vlan_ipv4_tcp() {
    let eth = eth_repr(
        VlanTags::Single(VlanRepr {
            tpid: ethertype::VLAN,
            pcp: 3,
            dei: false,
            vlan_id: 42,
        }),
        ethertype::IPV4,
    );
    let ip = Ipv4Repr {
        src_addr: Ipv4Addr::new(10, 1, 1, 1),
        dst_addr: Ipv4Addr::new(10, 1, 1, 2),
        protocol: ip_protocol::TCP,
        payload_len: 0,
        ttl: 63,
        dscp: 0,
        ecn: 2,
        ident: 0x2222,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let tcp = TcpRepr {
        src_port: 33000,
        dst_port: 80,
        seq_number: 1,
        ack_number: 2,
        flags: tcp::flags::SYN | tcp::flags::ACK,
        window: 1024,
        urgent_pointer: 0,
    };
    let f = build(eth, L3::V4(ip), L4::Tcp(tcp), b"");
    assert_eq!(f[..], VLAN_IPV4_TCP[..]);
    check_round_trip(&f, eth, L3::V4(ip), L4::Tcp(tcp), b"");
}

#[test]
fn emit_ipv6_with_extension_headers_reproduces_golden() {
    let mut buf = [0xa5u8; 98];
    eth_repr(VlanTags::None, ethertype::IPV6).emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let ip = Ipv6Repr {
        src_addr: Ipv6Addr::from(V6_SRC),
        dst_addr: Ipv6Addr::from(V6_DST),
        next_header: ip_protocol::HOPOPT,
        payload_len: 44,
        hop_limit: 64,
        dscp: 10,
        ecn: 1,
        flow_label: 0,
    };
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[14..]));
    let hbh = Ipv6ExtHeaderRepr {
        next_header: ip_protocol::IPV6_OPTS,
        length: 0,
    };
    let mut v = Ipv6ExtHeader::new_unchecked(&mut buf[54..62]);
    hbh.emit(&mut v);
    v.data_mut()[..2].copy_from_slice(&[0x01, 0x04]); // PadN 4
    let dst = Ipv6ExtHeaderRepr {
        next_header: ip_protocol::TCP,
        length: 1,
    };
    let mut v = Ipv6ExtHeader::new_unchecked(&mut buf[62..78]);
    dst.emit(&mut v);
    v.data_mut()[..2].copy_from_slice(&[0x01, 0x0c]); // PadN 12
    let tcp = TcpRepr {
        src_port: 443,
        dst_port: 50000,
        seq_number: 4096,
        ack_number: 8192,
        flags: tcp::flags::PSH | tcp::flags::ACK,
        window: 0xffff,
        urgent_pointer: 0,
    };
    let mut p = TcpPacket::new_unchecked(&mut buf[78..]);
    tcp.emit(&mut p);
    p.fill_checksum_v6(&ip.src_addr, &ip.dst_addr);
    assert_eq!(buf, IPV6_HBH_DST_TCP);
    let back = Ipv6ExtHeaderRepr::parse(&Ipv6ExtHeader::new_checked(&buf[62..]).expect("ext"));
    assert_eq!(back, Ok(dst));
}

#[test]
fn emit_ipv6_fragment_reproduces_golden() {
    let mut buf = [0xa5u8; 70];
    eth_repr(VlanTags::None, ethertype::IPV6).emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    Ipv6Repr {
        src_addr: Ipv6Addr::from(V6_SRC),
        dst_addr: Ipv6Addr::from(V6_DST),
        next_header: ip_protocol::IPV6_FRAG,
        payload_len: 16,
        hop_limit: 64,
        dscp: 0,
        ecn: 0,
        flow_label: 0,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut buf[14..]));
    Ipv6FragmentRepr {
        next_header: ip_protocol::UDP,
        frag_offset: 1440,
        more_frags: false,
        ident: 12345,
    }
    .emit(&mut Ipv6FragmentHeader::new_unchecked(&mut buf[54..]));
    buf[62..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x08, 0x00, 0x00]);
    assert_eq!(buf, IPV6_LATER_FRAGMENT);
}

#[test]
fn fuzz_corpus_matches_the_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(f) = std::fs::read(e.path()) else {
            continue;
        };
        for n in 0..=f.len() {
            check_invariants(&f[..n]);
        }
    }
}

// ---- property tests ----

/// What must hold for any input: no panic (implicit), and any `Ok`
/// describes the frame consistently.
fn check_invariants(frame: &[u8]) {
    assert_eq!(parse(frame), reference::parse(frame), "frame {frame:02x?}");
    match parse(frame) {
        Ok(h) => {
            let len = frame.len();
            assert!(usize::from(h.l3_offset) <= len);
            assert!(usize::from(h.l4_offset) <= len);
            assert!(h.l3_offset >= 14);
            if h.l4_offset != 0 {
                assert!(h.l4_offset > h.l3_offset);
                assert!(matches!(h.family, Family::V4 | Family::V6));
                assert_ne!(h.fragment, Fragment::Later);
            }
            assert!(h.vlan_count <= 2);
            assert_eq!(usize::from(h.l3_offset), 14 + 4 * usize::from(h.vlan_count));
            assert!(h.dscp < 64 && h.ecn < 4);
            if h.fragment == Fragment::Later {
                assert_eq!((h.src_port, h.dst_port, h.l4_offset), (0, 0, 0));
            }
            if h.family == Family::V4 {
                assert_eq!(h.src[..12], ipv4_mapped([0; 4])[..12]);
            }
            if matches!(h.family, Family::None | Family::Arp) {
                assert_eq!(h.src, [0; 16]);
                assert_eq!(h.l4_offset, 0);
            }
        }
        Err(e) => {
            // Display must not panic either.
            let _ = e.to_string();
        }
    }
}

/// The EtherTypes (and TPIDs) worth steering random bytes into.
fn interesting_ethertype() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(ethertype::IPV4),
        Just(ethertype::IPV6),
        Just(ethertype::ARP),
        Just(ethertype::VLAN),
        Just(ethertype::QINQ),
        Just(ethertype::QINQ_LEGACY),
        any::<u16>(),
    ]
}

fn vlan_repr() -> impl Strategy<Value = VlanRepr> {
    (
        prop_oneof![
            Just(ethertype::VLAN),
            Just(ethertype::QINQ),
            Just(ethertype::QINQ_LEGACY)
        ],
        0u8..8,
        any::<bool>(),
        0u16..4096,
    )
        .prop_map(|(tpid, pcp, dei, vlan_id)| VlanRepr {
            tpid,
            pcp,
            dei,
            vlan_id,
        })
}

fn vlan_tags() -> impl Strategy<Value = VlanTags> {
    prop_oneof![
        Just(VlanTags::None),
        vlan_repr().prop_map(VlanTags::Single),
        (vlan_repr(), vlan_repr()).prop_map(|(outer, inner)| VlanTags::Double { outer, inner }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn structured_frames_match_the_reference(
        vlans in proptest::collection::vec(
            prop_oneof![Just(ethertype::VLAN), Just(ethertype::QINQ), Just(ethertype::QINQ_LEGACY)],
            0..4,
        ),
        v6 in any::<bool>(),
        first in any::<u8>(),
        ihl_or_tc in any::<u8>(),
        len_delta in prop_oneof![Just(0i32), -16i32..16, any::<u16>().prop_map(i32::from)],
        frag in prop_oneof![Just(0u16), Just(1), Just(0x2000), any::<u16>()],
        chain in proptest::collection::vec(
            (
                prop_oneof![
                    // Walked headers weighted up, so chains past the
                    // cap (9+ in a row) come up.
                    3 => Just(ip_protocol::HOPOPT),
                    3 => Just(ip_protocol::IPV6_ROUTE),
                    3 => Just(ip_protocol::IPV6_FRAG),
                    3 => Just(ip_protocol::IPV6_OPTS),
                    1 => Just(ip_protocol::TCP),
                    1 => Just(ip_protocol::UDP),
                    1 => Just(ip_protocol::ICMP),
                    1 => Just(ip_protocol::ICMPV6),
                    1 => Just(ip_protocol::SCTP),
                    1 => Just(ip_protocol::UDPLITE),
                    1 => Just(ip_protocol::IPV6_NONXT),
                    1 => any::<u8>(),
                ],
                prop_oneof![Just(0u8), Just(1), any::<u8>()],
                // Fragment offset/M: mostly a first fragment or an
                // atomic one, so the walk goes on.
                prop_oneof![Just(0u16), Just(1), any::<u16>()],
            ),
            0..12,
        ),
        l4 in proptest::collection::vec(any::<u8>(), 0..64),
        version_ok in prop_oneof![3 => Just(true), 1 => Just(false)],
        cut in any::<usize>(),
        do_cut in any::<bool>(),
    ) {
        // A frame shaped like the real thing (valid lengths unless
        // `len_delta` says otherwise), so the walk gets deep.
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for t in &vlans {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x0f, 0xff]);
        }
        f.extend_from_slice(&(if v6 { ethertype::IPV6 } else { ethertype::IPV4 }).to_be_bytes());
        let l3 = f.len();
        let first_nh = chain.first().map_or(ip_protocol::TCP, |c| c.0);
        let mut body = Vec::new();
        for (i, &(_, len, word)) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map_or(ip_protocol::TCP, |c| c.0);
            let kind = chain[i].0;
            if kind == ip_protocol::IPV6_FRAG {
                body.push(next);
                body.push(0);
                body.extend_from_slice(&word.to_be_bytes());
                body.extend_from_slice(&[0, 0, 0, 7]);
            } else {
                let n = (usize::from(len % 4) + 1) * 8;
                body.push(next);
                body.push(len % 4);
                body.resize(body.len() + n - 2, 1);
            }
        }
        body.extend_from_slice(&l4);
        if v6 {
            let plen = (body.len() as i32 + len_delta).clamp(0, 0xffff) as u16;
            let v = if version_ok { 0x60 } else { first & 0xf0 };
            f.extend_from_slice(&[v | (ihl_or_tc >> 4), ihl_or_tc << 4, 0, 0]);
            f.extend_from_slice(&plen.to_be_bytes());
            f.extend_from_slice(&[first_nh, 64]);
            f.extend_from_slice(&V6_SRC);
            f.extend_from_slice(&V6_DST);
        } else {
            let ihl = if version_ok { 5 + (first % 3) } else { first & 0x0f };
            let total = (usize::from(ihl) * 4 + body.len()) as i32 + len_delta;
            let v = if version_ok { 0x40 } else { first & 0xf0 };
            f.extend_from_slice(&[v | ihl, ihl_or_tc]);
            f.extend_from_slice(&(total.clamp(0, 0xffff) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 1]);
            f.extend_from_slice(&frag.to_be_bytes());
            f.extend_from_slice(&[64, first_nh, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            f.resize(f.len() + usize::from(ihl.saturating_sub(5)) * 4, 1);
        }
        f.extend_from_slice(&body);
        check_invariants(&f);
        if do_cut {
            let n = l3 + cut % (f.len() - l3 + 1);
            check_invariants(&f[..n]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_invariants(&bytes);
    }

    #[test]
    fn steered_bytes_never_panic(
        ty in interesting_ethertype(),
        inner in interesting_ethertype(),
        version in prop_oneof![Just(0x45u8), Just(0x60), Just(0x4f), any::<u8>()],
        mut rest in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ty.to_be_bytes());
        if ethertype::is_vlan(ty) {
            f.extend_from_slice(&[0, 1]);
            f.extend_from_slice(&inner.to_be_bytes());
        }
        if let Some(b) = rest.first_mut() {
            *b = version;
        }
        f.extend_from_slice(&rest);
        check_invariants(&f);
    }

    #[test]
    fn mutated_golden_frames_never_panic(
        which in 0..GOLDEN.len(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
        extend in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut f = GOLDEN[which].to_vec();
        for (at, v) in flips {
            let i = at % f.len();
            f[i] = v;
        }
        check_invariants(&f);
        f.extend_from_slice(&extend);
        check_invariants(&f);
        let n = cut % (f.len() + 1);
        check_invariants(&f[..n]);
    }

    #[test]
    fn emit_parse_round_trip(
        vlans in vlan_tags(),
        v6 in any::<bool>(),
        tcp in any::<bool>(),
        a in any::<[u8; 16]>(),
        b in any::<[u8; 16]>(),
        dscp in 0u8..64,
        ecn in 0u8..4,
        ttl in any::<u8>(),
        ident in any::<u16>(),
        flow_label in 0u32..0x10_0000,
        sport in any::<u16>(),
        dport in any::<u16>(),
        seq in any::<u32>(),
        flags in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let proto = if tcp { ip_protocol::TCP } else { ip_protocol::UDP };
        let l3 = if v6 {
            L3::V6(Ipv6Repr {
                src_addr: Ipv6Addr::from(a),
                dst_addr: Ipv6Addr::from(b),
                next_header: proto,
                payload_len: 0,
                hop_limit: ttl,
                dscp,
                ecn,
                flow_label,
            })
        } else {
            L3::V4(Ipv4Repr {
                src_addr: Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                dst_addr: Ipv4Addr::new(b[0], b[1], b[2], b[3]),
                protocol: proto,
                payload_len: 0,
                ttl,
                dscp,
                ecn,
                ident,
                dont_frag: ident % 2 == 0,
                more_frags: false,
                frag_offset: 0,
            })
        };
        let l4 = if tcp {
            L4::Tcp(TcpRepr {
                src_port: sport,
                dst_port: dport,
                seq_number: seq,
                ack_number: !seq,
                flags,
                window: ident,
                urgent_pointer: sport ^ dport,
            })
        } else {
            L4::Udp(UdpRepr { src_port: sport, dst_port: dport, payload_len: data.len() })
        };
        let eth = eth_repr(vlans, if v6 { ethertype::IPV6 } else { ethertype::IPV4 });
        let f = build(eth, l3, l4, &data);
        check_round_trip(&f, eth, l3, l4, &data);
    }
}
