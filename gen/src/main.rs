//! xdpgen: parse the command line, run, report. See `gen::app`.
#![forbid(unsafe_code)]

use clap::Parser;
use gen::cli::{Cli, Command};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Completions { shell }) => {
            gen::cli::completions(*shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man { dir }) => {
            return match gen::cli::man_pages(dir) {
                Ok(pages) => {
                    for p in pages {
                        println!("{}", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "xdpgen: error: writing man pages into {}: {e}",
                        dir.display()
                    );
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed)) {
        eprintln!("xdpgen: error: cannot handle SIGINT/SIGTERM: {e}");
        return ExitCode::from(1);
    }
    let r = match &cli.command {
        Some(Command::Capacity(c)) => gen::app::capacity(c, stop),
        Some(Command::Completions { .. } | Command::Man { .. }) => Ok(()),
        None => gen::app::send(&cli.send, stop),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpgen: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
