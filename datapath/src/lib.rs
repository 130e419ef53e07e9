//! xdpsched: the AF_XDP packet path with an embedded scheduler.
//!
//! `xsk` is the only module with `unsafe` (AF_XDP rings and UMEM); `worker`
//! moves frames between the rings and the `sched` emulator; `cli` turns the
//! command line into a validated [`worker::RunConfig`].

#![deny(unsafe_code)]

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
pub mod netns;
pub mod preflight;
pub mod signals;
pub mod worker;
// The one place with `unsafe`: every block carries a `// SAFETY:` comment.
#[allow(unsafe_code)]
pub mod xsk;
