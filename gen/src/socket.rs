//! `--mode socket`: the same flows over kernel UDP sockets.

use crate::cli::SendArgs;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sends and measures the flows with kernel UDP sockets.
pub fn send(_a: &SendArgs, _stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    anyhow::bail!("--mode socket is not available yet; use --mode xdp")
}
