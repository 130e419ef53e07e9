//! xdpsched: the AF_XDP packet path with an embedded scheduler.
//!
//! The AF_XDP layer is the `xsk` crate beside it (the project's only
//! `unsafe`); here `worker` moves frames between its rings and the `sched`
//! emulators, `cli` turns the command line into a validated
//! [`worker::RunConfig`], `failopen` and `signals` do what their names say.
//! No `unsafe` here.

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

pub mod cli;
pub mod failopen;
pub mod preflight;
pub mod signals;
pub mod worker;
