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

/// Names of the protocols users write in rules, with their numbers (the
/// first name of a number is the one reports show).
pub const NAMES: [(&str, u8); 11] = [
    ("icmp", ICMP),
    ("tcp", TCP),
    ("udp", UDP),
    ("dccp", 33),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", ICMPV6),
    ("ipv6-icmp", ICMPV6),
    ("sctp", SCTP),
    ("udplite", UDPLITE),
];

/// The name of protocol `p`, if it has one in [`NAMES`].
pub fn name(p: u8) -> Option<&'static str> {
    NAMES.iter().find(|(_, n)| *n == p).map(|(name, _)| *name)
}

/// The number of the protocol called `name` (lower case), if it is in [`NAMES`].
pub fn by_name(name: &str) -> Option<u8> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}
