//! Criterion: ns per frame for `sched::wire::parse` against the same
//! extraction (ethertype, VLAN ids, addresses, protocol, DSCP/ECN, fragment
//! position, ports, TCP flags, offsets) done with `pnet_packet`'s views.
//!
//! Two frames, both built with the `wire` Reprs:
//! - Ethernet / IPv4 / UDP, 18 bytes of data (a 60-byte minimum frame);
//! - Ethernet / IPv6 / hop-by-hop options / TCP, 16 bytes of data.
//!
//! Before measuring, the pnet extraction is checked to produce the same
//! `Headers` as `parse` for both frames, so the two do the same work.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::ipv4::Ipv4Packet as PnetIpv4;
use pnet_packet::ipv6::{ExtensionPacket, FragmentPacket, Ipv6Packet as PnetIpv6};
use pnet_packet::tcp::TcpPacket as PnetTcp;
use pnet_packet::udp::UdpPacket as PnetUdp;
use pnet_packet::vlan::VlanPacket;
use pnet_packet::Packet as _;
use sched::wire::{
    ethertype, ip_protocol, ipv4_mapped, parse, EthernetFrame, EthernetRepr, Family, Fragment,
    Headers, Ipv4Packet, Ipv4Repr, Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6Packet, Ipv6Repr,
    TcpPacket, TcpRepr, UdpPacket, UdpRepr, VlanTags,
};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Ethernet / IPv4 / UDP with 18 data bytes: 60 bytes, the minimum frame.
fn frame_v4_udp() -> Vec<u8> {
    let eth = EthernetRepr {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
        vlans: VlanTags::None,
        ethertype: ethertype::IPV4,
    };
    let data = [0x5au8; 18];
    let ip = Ipv4Repr {
        src_addr: Ipv4Addr::new(10, 0, 0, 1),
        dst_addr: Ipv4Addr::new(10, 0, 0, 2),
        protocol: ip_protocol::UDP,
        payload_len: 8 + data.len(),
        ttl: 64,
        dscp: 46,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut f = vec![0u8; eth.header_len() + ip.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let mut ipp = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.emit(&mut ipp);
    let mut udp = UdpPacket::new_unchecked(ipp.payload_mut());
    UdpRepr {
        src_port: 5000,
        dst_port: 6000,
        payload_len: data.len(),
    }
    .emit(&mut udp);
    udp.payload_mut().copy_from_slice(&data);
    udp.fill_checksum_v4(ip.src_addr, ip.dst_addr);
    f
}

/// Ethernet / IPv6 / hop-by-hop (8 bytes) / TCP with 16 data bytes.
fn frame_v6_hbh_tcp() -> Vec<u8> {
    let eth = EthernetRepr {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
        vlans: VlanTags::None,
        ethertype: ethertype::IPV6,
    };
    let src: Ipv6Addr = "2001:db8::1".parse().expect("addr");
    let dst: Ipv6Addr = "2001:db8::2".parse().expect("addr");
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: ip_protocol::HOPOPT,
        payload_len: 8 + 20 + 16,
        hop_limit: 64,
        dscp: 10,
        ecn: 1,
        flow_label: 0x12345,
    };
    let mut f = vec![0u8; eth.header_len() + ip.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
    Ipv6ExtHeaderRepr {
        next_header: ip_protocol::TCP,
        length: 0,
    }
    .emit(&mut Ipv6ExtHeader::new_unchecked(&mut f[54..62]));
    let mut tcp = TcpPacket::new_unchecked(&mut f[62..]);
    TcpRepr {
        src_port: 443,
        dst_port: 50000,
        seq_number: 1,
        ack_number: 2,
        flags: 0x18,
        window: 1024,
        urgent_pointer: 0,
    }
    .emit(&mut tcp);
    tcp.payload_mut().fill(0x5a);
    tcp.fill_checksum_v6(&src, &dst);
    f
}

/// The same extraction as `sched::wire::parse`, with pnet's views.
fn pnet_extract(frame: &[u8]) -> Option<Headers> {
    let mut h = Headers::default();
    let eth = EthernetPacket::new(frame)?;
    let mut ty = eth.get_ethertype().0;
    let mut l3 = eth.payload();
    for slot in 0..=2 {
        if !ethertype::is_vlan(ty) {
            break;
        }
        if slot == 2 {
            return None;
        }
        let tag = VlanPacket::new(l3)?;
        h.vlans[slot] = tag.get_vlan_identifier();
        h.vlan_count += 1;
        ty = tag.get_ethertype().0;
        // pnet's payload() borrows the view; the bytes after the tag are
        // the same slice.
        l3 = l3.get(VlanPacket::minimum_packet_size()..)?;
    }
    h.ethertype = ty;
    h.l3_offset = (frame.len() - l3.len()) as u16;
    match ty {
        ethertype::IPV4 => {
            let ip = PnetIpv4::new(l3)?;
            if ip.get_version() != 4 || ip.get_header_length() < 5 {
                return None;
            }
            h.family = Family::V4;
            h.src = ipv4_mapped(ip.get_source().octets());
            h.dst = ipv4_mapped(ip.get_destination().octets());
            h.proto = ip.get_next_level_protocol().0;
            h.dscp = ip.get_dscp();
            h.ecn = ip.get_ecn();
            if ip.get_fragment_offset() != 0 {
                h.fragment = Fragment::Later;
                return Some(h);
            }
            if ip.get_flags() & 0x1 != 0 {
                h.fragment = Fragment::First;
            }
            let off = usize::from(h.l3_offset) + usize::from(ip.get_header_length()) * 4;
            l4_ports(h.proto, ip.payload(), off, &mut h)?;
        }
        ethertype::IPV6 => {
            let ip = PnetIpv6::new(l3)?;
            if ip.get_version() != 6 {
                return None;
            }
            h.family = Family::V6;
            h.src = ip.get_source().octets();
            h.dst = ip.get_destination().octets();
            h.dscp = ip.get_traffic_class() >> 2;
            h.ecn = ip.get_traffic_class() & 3;
            let mut next = ip.get_next_header().0;
            let mut rest = ip.payload();
            let mut off = usize::from(h.l3_offset) + 40;
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let ext = ExtensionPacket::new(rest)?;
                        let len = (usize::from(ext.get_hdr_ext_len()) + 1) * 8;
                        next = ext.get_next_header().0;
                        rest = rest.get(len..)?;
                        off += len;
                    }
                    44 => {
                        let frag = FragmentPacket::new(rest)?;
                        next = frag.get_next_header().0;
                        if frag.get_fragment_offset() != 0 {
                            h.fragment = Fragment::Later;
                            h.proto = next;
                            return Some(h);
                        }
                        if !frag.is_last_fragment() {
                            h.fragment = Fragment::First;
                        }
                        rest = rest.get(8..)?;
                        off += 8;
                    }
                    _ => break,
                }
            }
            h.proto = next;
            l4_ports(next, rest, off, &mut h)?;
        }
        _ => {}
    }
    Some(h)
}

/// Ports and TCP flags with pnet's TCP/UDP views.
fn l4_ports(proto: u8, l4: &[u8], off: usize, h: &mut Headers) -> Option<()> {
    match proto {
        ip_protocol::TCP => {
            let tcp = PnetTcp::new(l4)?;
            h.src_port = tcp.get_source();
            h.dst_port = tcp.get_destination();
            h.tcp_flags = tcp.get_flags();
        }
        ip_protocol::UDP => {
            let udp = PnetUdp::new(l4)?;
            h.src_port = udp.get_source();
            h.dst_port = udp.get_destination();
        }
        _ => return Some(()),
    }
    h.l4_offset = off as u16;
    Some(())
}

fn bench(c: &mut Criterion) {
    let frames = [
        ("eth-ipv4-udp", frame_v4_udp()),
        ("eth-ipv6-hbh-tcp", frame_v6_hbh_tcp()),
    ];
    for (name, f) in &frames {
        let ours = parse(f).expect("our parse");
        let theirs = pnet_extract(f).expect("pnet extraction");
        assert_eq!(ours, theirs, "{name}: both extractions must agree");
        assert!(
            ours.src_port != 0 && ours.l4_offset != 0,
            "{name}: L4 reached"
        );
    }

    let mut g = c.benchmark_group("parse");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for (name, f) in &frames {
        g.bench_function(format!("wire/{name}"), |b| {
            b.iter(|| parse(black_box(f.as_slice())))
        });
        g.bench_function(format!("pnet/{name}"), |b| {
            b.iter(|| pnet_extract(black_box(f.as_slice())))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
