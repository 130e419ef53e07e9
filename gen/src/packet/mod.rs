//! What goes into every packet: the [`stamp`] (flow, sequence number,
//! transmit time), the AF_XDP engine's whole [`frame`] (Ethernet + IPv4 +
//! UDP, built with `sched::wire`'s reprs, and the stamp read back), and
//! socket mode's UDP [`payload`].

pub mod frame;
pub mod payload;
pub mod stamp;
