//! Signals, as a daemon takes them: SIGINT and SIGTERM stop xdpsched (the
//! workers drain, the XDP programs detach); SIGHUP reloads the
//! configuration file (`systemctl reload`): it sets a flag that the thread
//! serving the control socket acts on (see `Control::reload`).
//!
//! The three signals are blocked in every thread and taken by one thread
//! with `sigwait`, so no code runs in a signal handler. (The ctrlc crate
//! this replaces treats SIGHUP as a termination request with its
//! `termination` feature, and without it does not take SIGTERM.)

use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread — call it from
/// `main` before any other thread starts, so that they all inherit the mask
/// — and starts the thread that takes them: a stop request sets `stop`, a
/// SIGHUP sets `hup`.
pub fn install(stop: Arc<AtomicBool>, hup: Arc<AtomicBool>) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("xdpsched-signals".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(Signal::SIGHUP) => hup.store(true, Ordering::Relaxed),
                Ok(s) => {
                    stop.store(true, Ordering::Relaxed);
                    tracing::info!("{s}: stopping");
                }
                // EINTR and the like: wait again.
                Err(_) => {}
            }
        })?;
    Ok(())
}
