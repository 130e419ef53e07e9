//! xdpgen's measuring core, pure and testable: what goes into every packet
//! ([`stamp`]), what the receiver makes of the packets of one flow
//! ([`track`]), and the per-interval series with fairness ([`series`]).
//! The AF_XDP plumbing comes from the datapath crate (next step).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod series;
pub mod stamp;
pub mod track;
