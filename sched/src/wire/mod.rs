//! Zero-copy packet header views and the classifier's one-shot parser.
//!
//! Modelled on smoltcp's `wire` module. Each header has:
//!
//! - a **view**, e.g. [`Ipv4Packet<T: AsRef<[u8]>>`](Ipv4Packet), over a byte
//!   buffer, with every field's byte range written once in a private
//!   `mod field`. `new_checked` validates the buffer's length (and the length
//!   fields that later accessors rely on) once, so no accessor can panic
//!   afterwards; `new_unchecked` skips that for callers that already know.
//!   Setters exist when `T: AsMut<[u8]>`.
//! - a **`Repr`**, the parsed meaning, with `parse(&view)` and
//!   `emit(&mut view)`, so tests and the traffic generator can build frames.
//!
//! Checksums (incl. the UDP/TCP pseudo-header, and RFC 1624 incremental
//! updates) are in [`checksum`].
//!
//! [`parse()`] is the classifier's fast path: one pass over a frame, no
//! allocation, no panic for any input, filling a flat [`Headers`].
//!
//! # What [`parse()`] decides
//!
//! - **Ethernet II only.** A frame whose EtherType field (after any VLAN
//!   tags) is below [`ethertype::ETHERNET_II_MIN`] is an IEEE 802.3 frame
//!   whose field is a *length* (LLC/SNAP, STP BPDUs, ...). Those are
//!   legitimate traffic, not malformed, so they parse **`Ok` with
//!   [`Family::None`]** and `ethertype` holds the raw length value (any
//!   `ethertype < 0x0600` means "802.3 length, no EtherType").
//! - **VLAN tags**: TPIDs 0x8100 (802.1Q), 0x88a8 (802.1ad) and 0x9100
//!   (pre-standard QinQ), in any order, at most [`ethernet::MAX_VLAN_TAGS`];
//!   a third tag is [`ParseError::TooManyVlanTags`].
//! - **ARP** gives [`Family::Arp`] and nothing else; the ARP body is not
//!   looked at (not even its length).
//! - **Other EtherTypes** give `Ok` with [`Family::None`].
//! - **IPv4**: version, IHL, total length are validated; options are
//!   skipped; bytes past the total length (Ethernet padding) are ignored;
//!   the header checksum is *not* verified (the classifier does not drop on
//!   it). Only the first fragment (offset 0) carries ports.
//! - **IPv6**: payload length is validated; hop-by-hop (0), routing (43),
//!   fragment (44) and destination options (60) headers are walked, at most
//!   [`ipv6::MAX_EXTENSION_HEADERS`]. Anything else (AH 51, ESP 50, No Next
//!   Header 59, ...) is the final `proto`. A fragment header with offset 0
//!   and M = 0 (an RFC 6946 atomic fragment) is a whole packet:
//!   [`Fragment::None`]. The walk stops at a later fragment's fragment
//!   header: `proto` is that header's next header.
//! - **L4** (first fragments and unfragmented packets only): TCP (the full
//!   header incl. options must be present, data offset >= 5), UDP and
//!   UDP-Lite (8 bytes), SCTP (12-byte common header), ICMP over IPv4 and
//!   ICMPv6 over IPv6 (8 bytes). A shorter L4 header is
//!   [`ParseError::Truncated`]. Any other protocol: `l4_offset` = 0. The L4
//!   header must fit inside the IP packet (total length / payload length),
//!   not merely inside the frame; so a first fragment too short to hold its
//!   L4 header (the RFC 1858 "tiny fragment" trick) is an error, not a
//!   portless match. The UDP length field and all checksums are not checked.

pub mod arp;
pub mod checksum;
pub mod dscp;
pub mod ecn;
pub mod error;
pub mod ethernet;
pub mod ethertype;
mod field;
pub mod icmp;
pub mod ip_protocol;
pub mod ipv4;
pub mod ipv6;
pub mod offload;
mod parse;
pub mod tcp;
pub mod udp;

pub use arp::{ArpPacket, ArpRepr};
pub use error::{Layer, ParseError};
pub use ethernet::{EthernetAddress, EthernetFrame, EthernetRepr, VlanRepr, VlanTag, VlanTags};
pub(crate) use field::{read_u16, read_u32, write_u16, write_u32, Field, Rest};
pub use icmp::IcmpPacket;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{
    Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6FragmentHeader, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr,
};
pub use parse::{ipv4_mapped, parse, Family, Fragment, Headers};
pub use tcp::{TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

/// A 14-byte Ethernet header and a 20-byte IPv4 header with TOS `tos` and
/// a valid checksum (the tests of in-place rewrites: ECN, DSCP).
#[cfg(test)]
pub(crate) fn test_ipv4_frame(tos: u8) -> Vec<u8> {
    let mut f = vec![0xa5; 14];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, tos, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let c = checksum::internet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    f
}
