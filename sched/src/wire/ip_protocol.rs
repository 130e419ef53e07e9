//! IP protocol / IPv6 next-header numbers the wire module knows (IANA
//! registry).

/// IPv6 hop-by-hop options extension header.
pub const HOPOPT: u8 = 0;
/// ICMP for IPv4.
pub const ICMP: u8 = 1;
/// TCP.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// IPv6 routing extension header.
pub const IPV6_ROUTE: u8 = 43;
/// IPv6 fragment extension header.
pub const IPV6_FRAG: u8 = 44;
/// ICMPv6.
pub const ICMPV6: u8 = 58;
/// IPv6 "no next header".
pub const IPV6_NONXT: u8 = 59;
/// IPv6 destination options extension header.
pub const IPV6_OPTS: u8 = 60;
/// SCTP.
pub const SCTP: u8 = 132;
/// UDP-Lite (RFC 3828).
pub const UDPLITE: u8 = 136;
