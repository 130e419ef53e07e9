//! Why a frame did not parse: the layer and what was wrong with it.

use super::ethernet;

/// The protocol layer a [`ParseError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The 14-byte Ethernet II header.
    Ethernet,
    /// A 4-byte 802.1Q/802.1ad VLAN tag.
    Vlan,
    /// An ARP packet.
    Arp,
    /// The IPv4 header.
    Ipv4,
    /// The fixed 40-byte IPv6 header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Extension,
    /// The TCP header.
    Tcp,
    /// The UDP header.
    Udp,
    /// The UDP-Lite header.
    UdpLite,
    /// The SCTP common header.
    Sctp,
    /// The ICMP (v4) header.
    Icmp,
    /// The ICMPv6 header.
    Icmpv6,
}

impl core::fmt::Display for Layer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN tag",
            Layer::Arp => "ARP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Extension => "IPv6 extension",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
            Layer::UdpLite => "UDP-Lite",
            Layer::Sctp => "SCTP",
            Layer::Icmp => "ICMP",
            Layer::Icmpv6 => "ICMPv6",
        })
    }
}

/// Why a frame or header could not be parsed. `Copy` and allocation-free, so
/// the per-packet path can return and count it cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The buffer ends before the header does. `need` and `have` count bytes
    /// from the start of that header (for L4 headers and IPv6 extension
    /// headers, `have` stops at the IP packet's end, not the frame's).
    #[error("truncated {layer} header: need {need} bytes, have {have}")]
    Truncated {
        /// The header that is cut short.
        layer: Layer,
        /// Bytes the header needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// More VLAN tags than [`ethernet::MAX_VLAN_TAGS`].
    #[error("more than {} VLAN tags", ethernet::MAX_VLAN_TAGS)]
    TooManyVlanTags,
    /// The IP version nibble does not match the EtherType.
    #[error("IP version {got} under the IPv{expected} EtherType")]
    BadVersion {
        /// 4 or 6, from the EtherType.
        expected: u8,
        /// The header's version nibble.
        got: u8,
    },
    /// IPv4 IHL below 5 (a header is at least 20 bytes).
    #[error("IPv4 IHL {0} is below the minimum of 5")]
    BadIhl(u8),
    /// IPv4 total length smaller than the header it must include.
    #[error("IPv4 total length {total} is shorter than its {header_len}-byte header")]
    TotalLengthTooShort {
        /// The total-length field.
        total: u16,
        /// IHL * 4.
        header_len: usize,
    },
    /// IPv4 total length beyond the bytes the frame holds.
    #[error("IPv4 total length {total} exceeds the {available} bytes in the frame")]
    BadTotalLength {
        /// The total-length field.
        total: u16,
        /// Bytes from the IPv4 header to the end of the frame.
        available: usize,
    },
    /// IPv6 payload length beyond the bytes the frame holds.
    #[error("IPv6 payload length {payload} exceeds the {available} bytes after the header")]
    BadPayloadLength {
        /// The payload-length field.
        payload: u16,
        /// Bytes after the 40-byte header to the end of the frame.
        available: usize,
    },
    /// The IPv6 extension-header chain is longer than the walk's cap.
    #[error("more than {max} IPv6 extension headers")]
    TooManyExtensionHeaders {
        /// The cap, [`super::ipv6::MAX_EXTENSION_HEADERS`].
        max: usize,
    },
    /// TCP data offset below 5 (a header is at least 20 bytes).
    #[error("TCP data offset {0} is below the minimum of 5")]
    BadTcpDataOffset(u8),
    /// UDP length field below 8 or beyond the bytes available.
    #[error("UDP length {length} is not within 8..={available}")]
    BadUdpLength {
        /// The length field.
        length: u16,
        /// Bytes from the UDP header to the end of the buffer.
        available: usize,
    },
    /// An ARP packet that is not Ethernet/IPv4 (the only kind
    /// [`super::ArpRepr`] represents).
    #[error("unsupported ARP: hardware type {hardware}, protocol type {protocol:#06x}")]
    UnsupportedArp {
        /// Hardware type (1 = Ethernet).
        hardware: u16,
        /// Protocol type (0x0800 = IPv4).
        protocol: u16,
    },
}
