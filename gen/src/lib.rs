//! xdpgen: paced weighted UDP flows with per-packet latency and fairness.
//!
//! The measuring core is pure and testable: what to send and when
//! ([`traffic`]), what goes into every packet ([`packet`]), what the
//! receiver makes of the packets and how a run sums up ([`measure`]). The
//! [`engine`]s send and receive — AF_XDP through the `xsk` crate (shared
//! with xdpsched, not xdpsched itself), or kernel UDP sockets — on one
//! clock; [`output`] writes the tables, JSON, CSV, HdrHistogram log and
//! plots; [`app`] ties them together for the binary, [`cli`] parses its
//! command line.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod engine;
pub mod measure;
pub mod output;
pub mod packet;
pub mod traffic;
