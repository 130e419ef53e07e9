//! xdpsched — thin main: parse, validate, run, report.
#![forbid(unsafe_code)]
use anyhow::Context;
use clap::Parser;
use datapath::cli::Cli;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let cfg = Cli::parse().into_run_config()?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
        .context("installing the SIGINT/SIGTERM handler")?;
    let stats = datapath::worker::run(&cfg, stop).context("xdpsched")?;
    println!(
        "xdpsched: rx {:?} tx {:?} dropped {} passed {} frames {}",
        stats.rx,
        stats.tx,
        stats.dropped,
        stats.passed,
        if stats.frames_balanced {
            "balanced"
        } else {
            "UNBALANCED"
        }
    );
    if !stats.frames_balanced {
        anyhow::bail!("frame accounting did not balance at exit");
    }
    Ok(())
}
