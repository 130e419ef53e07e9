//! EtherType values the wire module knows (IEEE registry).

/// Smallest value of the type/length field that is an EtherType; below
/// it (up to 1500) the field is an IEEE 802.3 payload length.
pub const ETHERNET_II_MIN: u16 = 0x0600;
/// IPv4 (RFC 894).
pub const IPV4: u16 = 0x0800;
/// ARP (RFC 826).
pub const ARP: u16 = 0x0806;
/// IPv6 (RFC 2464).
pub const IPV6: u16 = 0x86dd;
/// IEEE 802.1Q customer VLAN tag (C-tag) TPID.
pub const VLAN: u16 = 0x8100;
/// IEEE 802.1ad service VLAN tag (S-tag, the outer tag of QinQ) TPID.
pub const QINQ: u16 = 0x88a8;
/// Pre-802.1ad QinQ outer TPID still emitted by some switches.
pub const QINQ_LEGACY: u16 = 0x9100;

/// Whether `ethertype` is one of the VLAN TPIDs above.
#[inline]
pub const fn is_vlan(ethertype: u16) -> bool {
    matches!(ethertype, VLAN | QINQ | QINQ_LEGACY)
}
