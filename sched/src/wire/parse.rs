//! The classifier's one-shot parser: one pass over a frame into a flat
//! [`Headers`] (see the module documentation of [`crate::wire`] for what it
//! decides).

use super::error::{Layer, ParseError};
use super::*;

/// Network-layer family of a parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// Not IP or ARP (any other EtherType, or an 802.3 length field).
    #[default]
    None,
    /// ARP; nothing past the EtherType is parsed.
    Arp,
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Fragment position (IPv4 flags/offset or IPv6 fragment header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fragment {
    /// Not a fragment (also an IPv6 atomic fragment: offset 0, M = 0).
    #[default]
    None,
    /// Offset 0, more fragments follow: carries the L4 header.
    First,
    /// Offset > 0: no L4 header, classify on addresses + protocol.
    Later,
}

/// Everything the classifier needs from one frame, parsed once, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers {
    /// VLAN ids (12 bits), outer first; 0 where absent.
    pub vlans: [u16; 2],
    /// Number of VLAN tags: 0, 1 or 2.
    pub vlan_count: u8,
    /// The EtherType after the VLAN tags (below 0x0600: an 802.3 length).
    pub ethertype: u16,
    /// Network-layer family.
    pub family: Family,
    /// IPv6 source address, or IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`);
    /// zero otherwise.
    pub src: [u8; 16],
    /// Destination address, as `src`.
    pub dst: [u8; 16],
    /// IPv4 protocol / IPv6 final next header (after the extension headers);
    /// 0 if none.
    pub proto: u8,
    /// DSCP, 6 bits.
    pub dscp: u8,
    /// ECN, 2 bits.
    pub ecn: u8,
    /// Fragment position.
    pub fragment: Fragment,
    /// TCP/UDP/SCTP/UDP-Lite source port, 0 if none (later fragments have
    /// none).
    pub src_port: u16,
    /// Destination port, as `src_port`.
    pub dst_port: u16,
    /// ICMP/ICMPv6 type, 0 otherwise.
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code, 0 otherwise.
    pub icmp_code: u8,
    /// TCP flags (CWR ECE URG ACK PSH RST SYN FIN), 0 otherwise.
    pub tcp_flags: u8,
    /// Byte offset of the network-layer header: just past the Ethernet
    /// header and VLAN tags, whatever the EtherType.
    pub l3_offset: u16,
    /// Byte offset of the L4 header; 0 if no L4 header was parsed.
    pub l4_offset: u16,
}

/// Maps an IPv4 address to IPv4-mapped IPv6 (`::ffff:a.b.c.d`, RFC 4291
/// §2.5.5.2), so one 16-byte key covers both families.
#[inline]
pub const fn ipv4_mapped(v4: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3],
    ]
}

/// Parses one Ethernet frame for the classifier. See the module docs for
/// what is accepted and what each error means. Never panics, never reads out
/// of bounds, never allocates.
pub fn parse(frame: &[u8]) -> Result<Headers, ParseError> {
    // The result is assembled from scalars at each return (not filled in
    // field by field on the stack and then copied out), which keeps it in
    // registers until the final store.
    let Some((eth, mut rest)) = frame.split_first_chunk::<{ ethernet::HEADER_LEN }>() else {
        return Err(truncated(
            Layer::Ethernet,
            ethernet::HEADER_LEN,
            frame.len(),
        ));
    };
    let mut ethertype = EthernetFrame::new_unchecked(&eth[..]).ethertype();
    let mut vlans = [0u16; ethernet::MAX_VLAN_TAGS];
    let mut vlan_count = 0u8;
    // One switch over every type the parser knows, VLAN TPIDs included, so
    // an untagged IPv4 or IPv6 frame is dispatched by one decision tree
    // rather than "is it a VLAN tag?" and then "which EtherType?". Each
    // family finishes on its own path (`finish` is inlined into both), so
    // the compiler does not merge them into one register-starved tail.
    loop {
        let l2 = |ethertype| Headers {
            vlans,
            vlan_count,
            ethertype,
            // At most 14 + 2 * 4 bytes: fits.
            l3_offset: (frame.len() - rest.len()) as u16,
            ..Headers::default()
        };
        match ethertype {
            ethertype::IPV4 => {
                let (l3, l4) = parse_ipv4(rest)?;
                return finish(l2(ethertype), l3, l4);
            }
            ethertype::IPV6 => {
                let (l3, l4) = parse_ipv6(rest)?;
                return finish(l2(ethertype), l3, l4);
            }
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY => {
                let Some((tag, after)) = rest.split_first_chunk::<{ ethernet::VLAN_TAG_LEN }>()
                else {
                    return Err(truncated(Layer::Vlan, ethernet::VLAN_TAG_LEN, rest.len()));
                };
                let Some(slot) = vlans.get_mut(usize::from(vlan_count)) else {
                    return Err(ParseError::TooManyVlanTags);
                };
                let tag = VlanTag::new_unchecked(&tag[..]);
                *slot = tag.vlan_id();
                vlan_count += 1;
                ethertype = tag.ethertype();
                rest = after;
            }
            ethertype::ARP => {
                return Ok(Headers {
                    family: Family::Arp,
                    ..l2(ethertype)
                })
            }
            _ => return Ok(l2(ethertype)),
        }
    }
}

/// Reads the L4 header (if any) and assembles the result.
#[inline(always)]
fn finish(l2: Headers, l3: L3Info<'_>, l4: Option<(usize, &[u8])>) -> Result<Headers, ParseError> {
    let l4 = match l4 {
        Some((offset, bytes)) => parse_l4(
            l3.family,
            l3.proto,
            bytes,
            usize::from(l2.l3_offset) + offset,
        )?,
        None => L4Info::default(),
    };
    let (src, dst) = l3.addrs.octets();
    Ok(Headers {
        family: l3.family,
        src,
        dst,
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
struct L3Info<'a> {
    family: Family,
    addrs: Addrs<'a>,
    proto: u8,
    dscp: u8,
    ecn: u8,
    fragment: Fragment,
}

/// Source and destination address as [`Headers`] holds them.
#[derive(Clone, Copy)]
enum Addrs<'a> {
    /// IPv4: the two addresses in the packet, mapped when the result is
    /// assembled.
    V4(&'a [u8; 8]),
    /// IPv6: the two addresses in the packet. Copied only when the result
    /// is assembled, so the extension-header walk does not keep four
    /// address words alive in registers (or spill them).
    V6(&'a [u8; 32]),
}

impl Addrs<'_> {
    /// (source, destination) bytes.
    #[inline(always)]
    fn octets(self) -> ([u8; 16], [u8; 16]) {
        match self {
            Addrs::V4(&[s0, s1, s2, s3, d0, d1, d2, d3]) => {
                (ipv4_mapped([s0, s1, s2, s3]), ipv4_mapped([d0, d1, d2, d3]))
            }
            Addrs::V6(both) => {
                let (src, dst) = both.split_at(16);
                (
                    src.try_into().unwrap_or_default(),
                    dst.try_into().unwrap_or_default(),
                )
            }
        }
    }
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
}

/// What the network layer hands on: its fields and, if the L4 header
/// should be read, its offset from the network header and the bytes from
/// there to the end of the IP packet.
type L3Result<'a> = Result<(L3Info<'a>, Option<(usize, &'a [u8])>), ParseError>;

/// IPv4: addresses, DSCP/ECN, protocol, fragment position.
///
/// One check covers the 20-byte fixed header and its version, one the IHL,
/// and one (`header length <= total length <= bytes there`) the payload;
/// which length error it was is worked out out of line.
#[inline(always)]
fn parse_ipv4(l3: &[u8]) -> L3Result<'_> {
    let hdr = match l3.first_chunk::<{ ipv4::HEADER_LEN }>() {
        Some(hdr) if hdr[0] >> 4 == 4 => hdr,
        _ => return Err(ip_header_error(l3, 4, Layer::Ipv4, ipv4::HEADER_LEN)),
    };
    let ip = Ipv4Packet::new_unchecked(&hdr[..]);
    if ip.ihl() < ipv4::MIN_IHL {
        return Err(bad_ihl(ip.ihl()));
    }
    let header_len = ip.header_len();
    let total = ip.total_len();
    let Some(payload) = l3.get(header_len..usize::from(total)) else {
        return Err(ipv4_length_error(l3.len(), header_len, total));
    };
    let (fragment, l4) = if ip.frag_offset() != 0 {
        (Fragment::Later, None)
    } else if ip.more_frags() {
        (Fragment::First, Some((header_len, payload)))
    } else {
        (Fragment::None, Some((header_len, payload)))
    };
    let info = L3Info {
        family: Family::V4,
        addrs: Addrs::V4(hdr.last_chunk::<8>().unwrap_or(&[0; 8])),
        proto: ip.protocol(),
        dscp: ip.dscp(),
        ecn: ip.ecn(),
        fragment,
    };
    Ok((info, l4))
}

/// Why `l3` is not a `need`-byte header of IP version `version`: the version
/// is checked first (if there is a byte to check), then the length.
#[cold]
#[inline(never)]
fn ip_header_error(l3: &[u8], version: u8, layer: Layer, need: usize) -> ParseError {
    match l3.first() {
        Some(b) if b >> 4 != version => ParseError::BadVersion {
            expected: version,
            got: b >> 4,
        },
        _ => ParseError::Truncated {
            layer,
            need,
            have: l3.len(),
        },
    }
}

/// `ParseError::BadIhl`, out of line.
#[cold]
#[inline(never)]
fn bad_ihl(ihl: u8) -> ParseError {
    ParseError::BadIhl(ihl)
}

/// Which of `header_len <= have`, `header_len <= total`, `total <= have`
/// fails first, as the error [`Ipv4Packet::check_len`] gives.
#[cold]
#[inline(never)]
fn ipv4_length_error(have: usize, header_len: usize, total: u16) -> ParseError {
    if have < header_len {
        ParseError::Truncated {
            layer: Layer::Ipv4,
            need: header_len,
            have,
        }
    } else if usize::from(total) < header_len {
        ParseError::TotalLengthTooShort { total, header_len }
    } else {
        ParseError::BadTotalLength {
            total,
            available: have,
        }
    }
}

/// IPv6: addresses, DSCP/ECN, then the extension-header walk for the final
/// protocol and the fragment position.
///
/// One length check covers the fixed header (a `&[u8; 40]`, so every field
/// read after it is at a fixed offset with no bounds check), one the payload
/// length, and one per extension header (its first 8 bytes, then its full
/// length). Errors are built out of line.
#[inline(always)]
fn parse_ipv6(l3: &[u8]) -> L3Result<'_> {
    let (hdr, after) = match l3.split_first_chunk::<{ ipv6::HEADER_LEN }>() {
        Some((hdr, after)) if hdr[0] >> 4 == 6 => (hdr, after),
        _ => return Err(ip_header_error(l3, 6, Layer::Ipv6, ipv6::HEADER_LEN)),
    };
    let ip = Ipv6Packet::new_unchecked(&hdr[..]);
    let payload_len = ip.payload_len();
    let Some(payload) = after.get(..usize::from(payload_len)) else {
        return Err(bad_payload_length(payload_len, after.len()));
    };
    let mut info = L3Info {
        family: Family::V6,
        addrs: Addrs::V6(hdr.last_chunk::<32>().unwrap_or(&[0; 32])),
        proto: 0,
        dscp: ip.dscp(),
        ecn: ip.ecn(),
        fragment: Fragment::None,
    };

    let mut next = ip.next_header();
    let mut rest = payload;
    let mut offset = ipv6::HEADER_LEN;
    let mut walked = 0usize;
    while ipv6::is_walked_extension(next) {
        if walked == ipv6::MAX_EXTENSION_HEADERS {
            return Err(too_many_extension_headers());
        }
        walked += 1;
        // Every walked header is at least 8 bytes (the fragment header
        // exactly 8), and its fields are in those 8.
        let Some(first8) = rest.first_chunk::<{ ipv6::EXT_HEADER_MIN_LEN }>() else {
            return Err(truncated(
                Layer::Ipv6Extension,
                ipv6::EXT_HEADER_MIN_LEN,
                rest.len(),
            ));
        };
        let len = if next == ip_protocol::IPV6_FRAG {
            let frag = Ipv6FragmentHeader::new_unchecked(&first8[..]);
            if frag.frag_offset() != 0 {
                info.fragment = Fragment::Later;
                info.proto = frag.next_header();
                return Ok((info, None));
            }
            info.fragment = if frag.more_frags() {
                Fragment::First
            } else {
                Fragment::None
            };
            ipv6::FRAGMENT_HEADER_LEN
        } else {
            Ipv6ExtHeader::new_unchecked(&first8[..]).header_len()
        };
        next = first8[0];
        let Some(r) = rest.get(len..) else {
            return Err(truncated(Layer::Ipv6Extension, len, rest.len()));
        };
        rest = r;
        offset += len;
    }
    info.proto = next;
    Ok((info, Some((offset, rest))))
}

/// `ParseError::Truncated`, built out of line (error paths stay off the hot
/// path's registers and code).
#[cold]
#[inline(never)]
fn truncated(layer: Layer, need: usize, have: usize) -> ParseError {
    ParseError::Truncated { layer, need, have }
}

/// `ParseError::BadPayloadLength`, out of line.
#[cold]
#[inline(never)]
fn bad_payload_length(payload: u16, available: usize) -> ParseError {
    ParseError::BadPayloadLength { payload, available }
}

/// `ParseError::TooManyExtensionHeaders`, out of line.
#[cold]
#[inline(never)]
fn too_many_extension_headers() -> ParseError {
    ParseError::TooManyExtensionHeaders {
        max: ipv6::MAX_EXTENSION_HEADERS,
    }
}

/// Reads ports / ICMP type+code / TCP flags from the L4 header of
/// `proto` in `family`.
#[inline(always)]
///
/// `at` is the frame offset of `l4`, recorded if a header is parsed: at most
/// 22 + 60 (IPv4) or 22 + 40 + 8 * 2048 (IPv6 with the largest extension
/// headers the cap allows), below 65536.
fn parse_l4(family: Family, proto: u8, l4: &[u8], at: usize) -> Result<L4Info, ParseError> {
    let offset = at as u16;
    let icmp = match family {
        Family::V6 => ip_protocol::ICMPV6,
        _ => ip_protocol::ICMP,
    };
    match proto {
        ip_protocol::TCP => {
            let Some(hdr) = l4.first_chunk::<{ tcp::HEADER_LEN }>() else {
                return Err(truncated(Layer::Tcp, tcp::HEADER_LEN, l4.len()));
            };
            let tcp = TcpPacket::new_unchecked(&hdr[..]);
            if tcp.data_offset() < tcp::MIN_DATA_OFFSET {
                return Err(bad_tcp_data_offset(tcp.data_offset()));
            }
            if l4.len() < tcp.header_len() {
                return Err(truncated(Layer::Tcp, tcp.header_len(), l4.len()));
            }
            Ok(L4Info {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                tcp_flags: tcp.flags(),
                offset,
                ..L4Info::default()
            })
        }
        ip_protocol::UDP => l4_ports::<{ udp::HEADER_LEN }>(l4, Layer::Udp, offset),
        ip_protocol::UDPLITE => l4_ports::<{ udp::HEADER_LEN }>(l4, Layer::UdpLite, offset),
        ip_protocol::SCTP => l4_ports::<SCTP_COMMON_HEADER_LEN>(l4, Layer::Sctp, offset),
        p if p == icmp => {
            let Some(hdr) = l4.first_chunk::<{ icmp::HEADER_LEN }>() else {
                let layer = match family {
                    Family::V6 => Layer::Icmpv6,
                    _ => Layer::Icmp,
                };
                return Err(truncated(layer, icmp::HEADER_LEN, l4.len()));
            };
            let msg = IcmpPacket::new_unchecked(&hdr[..]);
            Ok(L4Info {
                icmp_type: msg.msg_type(),
                icmp_code: msg.msg_code(),
                offset,
                ..L4Info::default()
            })
        }
        _ => Ok(L4Info::default()),
    }
}

/// The ports of a UDP, UDP-Lite or SCTP header of `N` bytes: all three put
/// them where UDP does, and only those 4 bytes are read.
#[inline(always)]
fn l4_ports<const N: usize>(l4: &[u8], layer: Layer, offset: u16) -> Result<L4Info, ParseError> {
    let Some(hdr) = l4.first_chunk::<N>() else {
        return Err(truncated(layer, N, l4.len()));
    };
    let ports = UdpPacket::new_unchecked(&hdr[..]);
    Ok(L4Info {
        src_port: ports.src_port(),
        dst_port: ports.dst_port(),
        offset,
        ..L4Info::default()
    })
}

/// `ParseError::BadTcpDataOffset`, out of line.
#[cold]
#[inline(never)]
fn bad_tcp_data_offset(offset: u8) -> ParseError {
    ParseError::BadTcpDataOffset(offset)
}

/// SCTP common header (RFC 9260 §3.1): ports, verification tag, checksum.
const SCTP_COMMON_HEADER_LEN: usize = 12;
