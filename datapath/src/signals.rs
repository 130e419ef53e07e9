//! Signals, as a daemon takes them: SIGINT and SIGTERM stop xdpsched (the
//! workers drain, the XDP programs detach); SIGHUP does not — it is the
//! reload signal of every daemon and service manager (`systemctl reload`),
//! and until configuration reload exists it is logged and ignored.
//!
//! The three signals are blocked in every thread and taken by one thread
//! with `sigwait`, so no code runs in a signal handler. (The ctrlc crate
//! this replaces treats SIGHUP as a termination request with its
//! `termination` feature, and without it does not take SIGTERM.)

use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a signal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGINT or SIGTERM: stop.
    Stop,
    /// SIGHUP: kept running.
    Ignored,
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread — call it from
/// `main` before any other thread starts, so that they all inherit the mask
/// — and starts the thread that takes them: a stop request sets `stop`;
/// `on_signal` is told of each one (for the log).
pub fn install(
    stop: Arc<AtomicBool>,
    on_signal: impl Fn(Signal, Action) + Send + 'static,
) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("xdpsched-signals".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(Signal::SIGHUP) => on_signal(Signal::SIGHUP, Action::Ignored),
                Ok(s) => {
                    stop.store(true, Ordering::Relaxed);
                    on_signal(s, Action::Stop);
                }
                // EINTR and the like: wait again.
                Err(_) => {}
            }
        })?;
    Ok(())
}
