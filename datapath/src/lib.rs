//! xdpsched: the AF_XDP packet path with an embedded scheduler.
//!
//! The AF_XDP layer is the `xsk` crate beside it (the project's only
//! `unsafe`); here the application around it, no `unsafe`:
//!
//! - [`cli`] turns the command line into a validated [`config::RunConfig`];
//! - [`run`] builds the scheduled directions (`direction`), checks the UMEM budget
//!   (`budget`), opens the lanes and starts one worker per lane (`plan`
//!   says which does what), and sums up at exit;
//! - `lane` is a worker: its loop and its steps (rx, inbox, tx, home, idle,
//!   drain); `egress` the emulators of the ports it owns; `idle` how it
//!   waits (a learned spin margin, arrivals left in the RX rings while the
//!   links are busy); `wake` how workers wake each other;
//! - [`stats`] the counters at exit and the live line;
//! - [`failopen`], [`preflight`] and [`signals`] do what their names say.

#![forbid(unsafe_code)]

/// `eprintln!` that cannot panic: once xdpsched survives SIGHUP, its
/// terminal may be gone and stderr answer EIO; a log line must not stop a
/// worker or the signal thread.
#[macro_export]
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod budget;
pub mod capture;
pub mod cli;
pub mod config;
pub mod control;
mod direction;
mod egress;
pub mod failopen;
mod idle;
mod lane;
pub mod log;
mod metrics;
mod plan;
pub mod preflight;
pub mod run;
pub mod show;
pub mod signals;
pub mod stats;
mod tracelog;
mod wake;
