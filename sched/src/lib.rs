//! # sched — the pure core of xdpsched
//!
//! Wire views, classification, dummynet pipes and flowsets, and packet
//! schedulers, as a pure, deterministic library: no I/O, no clock reads
//! (every call that depends on time takes `now_ns`, fed by the caller), no
//! `unsafe`, and no allocation on the per-packet path (slabs and pools are
//! reserved when things are built).
//!
//! The pipeline, in modules: [`wire`] reads a frame's headers; [`classify`]
//! turns them into a flow key and finds the rule it matches; [`emu`] puts
//! it into its flowset's per-flow queue in a pipe (an emulated link) and
//! takes it out when the link lets it go; [`algo`] holds the schedulers
//! behind the one [`Scheduler`] trait (FIFO, PRIO, DRR, WF2Q+, QFQ);
//! [`config`] reads and validates the TOML that describes it all. With the
//! `testkit` feature, [`testkit`] holds the instruments that measure it:
//! an exact fluid GPS reference and a deterministic link simulator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod algo;
pub mod classify;
pub mod config;
pub mod emu;
pub mod rng;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod types;
pub mod units;
pub mod wire;

pub use algo::engine::Engine;
pub use algo::plugin::{Algorithm, Flow};
pub use algo::queue::FlowQueue;
pub use algo::{
    build, build_tree, AnySched, ClassTree, Drr, DrrLqd, Fifo, FqCodel, FqCodelLqd, Kind, Prio,
    PrioLqd, Qfq, QfqLqd, Scheduler, Wf2q, Wf2qLqd,
};
pub use types::{
    Backlog, ConfigError, Departure, DropCounters, DropReason, Dropped, FlowConfig, FlowId, Lmax,
    OverflowPolicy, Packet, Priority, Quantum, QueueLimit, SchedConfig, Weight,
};
