//! xdpgen: paced weighted UDP flows with per-packet latency and fairness.
//!
//! The measuring core is pure and testable: what goes into every packet
//! ([`stamp`], [`frame`]), what to send and when ([`spec`], [`pace`]), what the
//! receiver makes of the packets of one flow ([`track`]) and the per-interval
//! series with fairness ([`series`]). The AF_XDP plumbing comes from the
//! datapath crate (the `xsk` crate); [`run`] drives it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod capacity;
pub mod cli;
pub mod frame;
pub mod pace;
pub mod plot;
pub mod report;
pub mod run;
pub mod series;
pub mod socket;
pub mod spec;
pub mod stamp;
pub mod track;
