//! The classifier's parser as it was before the fast-path rewrite, kept
//! verbatim as the oracle for differential tests (sched/tests/wire.rs, the
//! `frame` fuzz target): the optimised [`crate::wire::parse`] must return
//! exactly what this returns, `Ok` or `Err`, for every input.

use crate::wire::*;

/// Parses one Ethernet frame for the classifier. See the module docs for
/// what is accepted and what each error means. Never panics, never reads out
/// of bounds, never allocates.
pub fn parse(frame: &[u8]) -> Result<Headers, ParseError> {
    // The result is assembled from scalars at each return (not filled in
    // field by field on the stack and then copied out), which keeps it in
    // registers until the final store.
    let eth = EthernetFrame::new_checked(frame)?;
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    let mut vlans = [0u16; ethernet::MAX_VLAN_TAGS];
    let mut vlan_count = 0u8;
    while ethertype::is_vlan(ethertype) {
        let tag = VlanTag::new_checked(rest)?;
        let Some(slot) = vlans.get_mut(usize::from(vlan_count)) else {
            return Err(ParseError::TooManyVlanTags);
        };
        *slot = tag.vlan_id();
        vlan_count += 1;
        ethertype = tag.ethertype();
        rest = tag.payload();
    }
    // At most 14 + 2 * 4 bytes: fits.
    let l3_offset = frame.len() - rest.len();
    let l2 = Headers {
        vlans,
        vlan_count,
        ethertype,
        l3_offset: l3_offset as u16,
        ..Headers::default()
    };
    // Each family finishes on its own path (`finish` is inlined into
    // both), so the compiler does not merge them into one register-starved
    // tail.
    match ethertype {
        ethertype::IPV4 => {
            let (l3, l4) = parse_ipv4(rest)?;
            finish(l2, l3, l4)
        }
        ethertype::IPV6 => {
            let (l3, l4) = parse_ipv6(rest)?;
            finish(l2, l3, l4)
        }
        ethertype::ARP => Ok(Headers {
            family: Family::Arp,
            ..l2
        }),
        _ => Ok(l2),
    }
}

/// Reads the L4 header (if any) and assembles the result.
#[inline(always)]
fn finish(l2: Headers, l3: L3Info, l4: Option<(usize, &[u8])>) -> Result<Headers, ParseError> {
    let l4 = match l4 {
        Some((offset, bytes)) => {
            parse_l4(l3.family, l3.proto, bytes)?.at(usize::from(l2.l3_offset) + offset)
        }
        None => L4Info::default(),
    };
    Ok(Headers {
        family: l3.family,
        src: l3.src,
        dst: l3.dst,
        proto: l3.proto,
        dscp: l3.dscp,
        ecn: l3.ecn,
        fragment: l3.fragment,
        src_port: l4.src_port,
        dst_port: l4.dst_port,
        icmp_type: l4.icmp_type,
        icmp_code: l4.icmp_code,
        tcp_flags: l4.tcp_flags,
        l4_offset: l4.offset,
        ..l2
    })
}

/// The network-layer part of [`Headers`].
#[derive(Clone, Copy)]
struct L3Info {
    family: Family,
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    dscp: u8,
    ecn: u8,
    fragment: Fragment,
}

/// The transport-layer part of [`Headers`].
#[derive(Clone, Copy, Default)]
struct L4Info {
    src_port: u16,
    dst_port: u16,
    icmp_type: u8,
    icmp_code: u8,
    tcp_flags: u8,
    /// Frame offset of the L4 header; 0 if none was parsed.
    offset: u16,
    /// Whether an L4 header was parsed.
    parsed: bool,
}

impl L4Info {
    /// Records the frame offset of a parsed header.
    #[inline(always)]
    fn at(self, offset: usize) -> Self {
        // At most 22 + 60 (IPv4) or 22 + 40 + 8 * 2048 (IPv6 with the
        // largest extension headers the cap allows): below 65536.
        let offset = if self.parsed { offset as u16 } else { 0 };
        L4Info { offset, ..self }
    }
}

/// What the network layer hands on: its fields and, if the L4 header
/// should be read, its offset from the network header and the bytes from
/// there to the end of the IP packet.
type L3Result<'a> = Result<(L3Info, Option<(usize, &'a [u8])>), ParseError>;

/// The version nibble of the first byte, or `Truncated` for an empty header.
#[inline(always)]
fn ip_version(l3: &[u8], layer: Layer, need: usize) -> Result<u8, ParseError> {
    match l3.first() {
        Some(b) => Ok(b >> 4),
        None => Err(ParseError::Truncated {
            layer,
            need,
            have: 0,
        }),
    }
}

/// IPv4: addresses, DSCP/ECN, protocol, fragment position.
#[inline(always)]
fn parse_ipv4(l3: &[u8]) -> L3Result<'_> {
    let version = ip_version(l3, Layer::Ipv4, ipv4::HEADER_LEN)?;
    if version != 4 {
        return Err(ParseError::BadVersion {
            expected: 4,
            got: version,
        });
    }
    let ip = Ipv4Packet::new_checked(l3)?;
    let (fragment, l4) = if ip.frag_offset() != 0 {
        (Fragment::Later, None)
    } else if ip.more_frags() {
        (Fragment::First, Some((ip.header_len(), ip.payload())))
    } else {
        (Fragment::None, Some((ip.header_len(), ip.payload())))
    };
    let info = L3Info {
        family: Family::V4,
        src: ipv4_mapped(ip.src_addr().octets()),
        dst: ipv4_mapped(ip.dst_addr().octets()),
        proto: ip.protocol(),
        dscp: ip.dscp(),
        ecn: ip.ecn(),
        fragment,
    };
    Ok((info, l4))
}

/// IPv6: addresses, DSCP/ECN, then the extension-header walk for the final
/// protocol and the fragment position.
#[inline(always)]
fn parse_ipv6(l3: &[u8]) -> L3Result<'_> {
    let version = ip_version(l3, Layer::Ipv6, ipv6::HEADER_LEN)?;
    if version != 6 {
        return Err(ParseError::BadVersion {
            expected: 6,
            got: version,
        });
    }
    let ip = Ipv6Packet::new_checked(l3)?;
    let mut info = L3Info {
        family: Family::V6,
        src: ip.src_addr().octets(),
        dst: ip.dst_addr().octets(),
        proto: 0,
        dscp: ip.dscp(),
        ecn: ip.ecn(),
        fragment: Fragment::None,
    };

    let mut next = ip.next_header();
    let mut rest = ip.payload();
    let mut offset = ipv6::HEADER_LEN;
    let mut walked = 0usize;
    while ipv6::is_walked_extension(next) {
        if walked == ipv6::MAX_EXTENSION_HEADERS {
            return Err(ParseError::TooManyExtensionHeaders {
                max: ipv6::MAX_EXTENSION_HEADERS,
            });
        }
        walked += 1;
        if next == ip_protocol::IPV6_FRAG {
            let frag = Ipv6FragmentHeader::new_checked(rest)?;
            next = frag.next_header();
            if frag.frag_offset() != 0 {
                info.fragment = Fragment::Later;
                info.proto = next;
                return Ok((info, None));
            }
            info.fragment = if frag.more_frags() {
                Fragment::First
            } else {
                Fragment::None
            };
            rest = frag.payload();
            offset += ipv6::FRAGMENT_HEADER_LEN;
        } else {
            let ext = Ipv6ExtHeader::new_checked(rest)?;
            next = ext.next_header();
            offset += ext.header_len();
            rest = ext.payload();
        }
    }
    info.proto = next;
    Ok((info, Some((offset, rest))))
}

/// Reads ports / ICMP type+code / TCP flags from the L4 header of
/// `proto` in `family`.
#[inline(always)]
fn parse_l4(family: Family, proto: u8, l4: &[u8]) -> Result<L4Info, ParseError> {
    let icmp = match family {
        Family::V6 => ip_protocol::ICMPV6,
        _ => ip_protocol::ICMP,
    };
    let (layer, need) = match proto {
        ip_protocol::TCP => {
            let tcp = TcpPacket::new_checked(l4)?;
            return Ok(L4Info {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                tcp_flags: tcp.flags(),
                parsed: true,
                ..L4Info::default()
            });
        }
        ip_protocol::UDP => (Layer::Udp, udp::HEADER_LEN),
        ip_protocol::UDPLITE => (Layer::UdpLite, udp::HEADER_LEN),
        ip_protocol::SCTP => (Layer::Sctp, SCTP_COMMON_HEADER_LEN),
        p if p == icmp => {
            let layer = match family {
                Family::V6 => Layer::Icmpv6,
                _ => Layer::Icmp,
            };
            if l4.len() < icmp::HEADER_LEN {
                return Err(ParseError::Truncated {
                    layer,
                    need: icmp::HEADER_LEN,
                    have: l4.len(),
                });
            }
            // Length checked just above.
            let msg = IcmpPacket::new_unchecked(l4);
            return Ok(L4Info {
                icmp_type: msg.msg_type(),
                icmp_code: msg.msg_code(),
                parsed: true,
                ..L4Info::default()
            });
        }
        _ => return Ok(L4Info::default()),
    };
    if l4.len() < need {
        return Err(ParseError::Truncated {
            layer,
            need,
            have: l4.len(),
        });
    }
    // Length checked just above; UDP-Lite and SCTP put their ports where
    // UDP does, and only those 4 bytes are read.
    let ports = UdpPacket::new_unchecked(l4);
    Ok(L4Info {
        src_port: ports.src_port(),
        dst_port: ports.dst_port(),
        parsed: true,
        ..L4Info::default()
    })
}

/// SCTP common header (RFC 9260 §3.1): ports, verification tag, checksum.
const SCTP_COMMON_HEADER_LEN: usize = 12;
