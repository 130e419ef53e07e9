//! xdpsched — thin main: parse, validate, run, report.
#![forbid(unsafe_code)]
use anyhow::Context;
use clap::Parser;
use datapath::cli::{Cli, Command};
use std::io::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn cleanup(ifaces: &[String]) -> anyhow::Result<()> {
    datapath::preflight::check_privileges()?;
    for name in ifaces {
        let idx: u32 = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
            .with_context(|| {
                format!("interface {name:?} does not exist (in this network namespace)")
            })?
            .trim()
            .parse()
            .with_context(|| format!("ifindex of {name:?}"))?;
        // The fail-open bridge first: once the program is gone, frames would
        // otherwise cross it unscheduled.
        if let Some(m) = datapath::failopen::master_of(name) {
            if datapath::failopen::remove_bridge(&m)? {
                println!("{name}: removed the fail-open bridge {m}");
            }
        }
        // A killed instance's control socket (a live one answers: leave it).
        let sock = datapath::control::socket_path(name);
        if sock.exists() && datapath::control::request(&sock, "ping").is_err() {
            std::fs::remove_file(&sock).with_context(|| format!("removing {}", sock.display()))?;
            println!(
                "{name}: removed the stale control socket {}",
                sock.display()
            );
        }
        let modes = xsk::detach_xdp(idx).with_context(|| format!("detaching XDP from {name}"))?;
        if modes.is_empty() {
            println!("{name}: no XDP program attached");
        } else {
            println!("{name}: detached the XDP program ({})", modes.join(", "));
        }
    }
    Ok(())
}

/// `xdpsched reload`: asks the instance on `iface` to apply `file` (or its
/// own file again) and prints what it did.
fn reload(iface: &str, file: Option<&std::path::Path>, json: bool) -> anyhow::Result<()> {
    let sock = datapath::control::socket_path(iface);
    let mut req = serde_json::json!({ "cmd": "reload" });
    if let Some(f) = file {
        // The instance runs elsewhere: it gets an absolute path.
        let abs = std::fs::canonicalize(f).with_context(|| format!("{}", f.display()))?;
        req["file"] = abs.display().to_string().into();
    }
    let v = datapath::control::request_with(&sock, &req, datapath::control::RELOAD_TIMEOUT)
        .with_context(|| format!("no xdpsched answers on {iface} ({})", sock.display()))?;
    if let Some(e) = v["error"].as_str() {
        anyhow::bail!("{e}");
    }
    let mut out = std::io::stdout();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let _ = writeln!(out, "reloaded {}", v["file"].as_str().unwrap_or("?"));
    for d in v["directions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {}: pipes kept {} removed {}, flowsets kept {} removed {}, flows kept {}; packets: requeued {} reclassified {} in flight kept {} released {} dropped {}",
            d["dir"].as_str().unwrap_or("?"), d["pipes_kept"], d["pipes_removed"], d["flowsets_kept"], d["flowsets_removed"], d["flows_kept"], d["requeued"], d["reclassified"], d["in_flight_kept"], d["released"], d["dropped"]
        );
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  warning: {}", w.as_str().unwrap_or("?"));
    }
    Ok(())
}

/// `xdpsched capture`: asks the instance on `iface` to write `file` for
/// `duration`, waits, and prints what it wrote.
fn capture(iface: &str, file: &std::path::Path, duration: &str) -> anyhow::Result<()> {
    let secs = sched::units::parse_duration(duration)
        .with_context(|| format!("--duration {duration:?}"))? as f64
        / 1e9;
    // The instance writes the file: an absolute path, in a directory that exists.
    let abs = std::path::absolute(file).with_context(|| file.display().to_string())?;
    if let Some(dir) = abs.parent() {
        anyhow::ensure!(dir.is_dir(), "{}: no such directory", dir.display());
    }
    let sock = datapath::control::socket_path(iface);
    let ask = |req: serde_json::Value| {
        datapath::control::request_with(&sock, &req, datapath::control::RELOAD_TIMEOUT)
            .with_context(|| format!("no xdpsched answers on {iface} ({})", sock.display()))
    };
    let v = ask(serde_json::json!({
        "cmd": "capture", "file": abs.display().to_string(), "seconds": secs,
    }))?;
    if let Some(e) = v["error"].as_str() {
        anyhow::bail!("capture refused: {e}");
    }
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    // Then until the instance has written and closed it (bounded).
    let t0 = std::time::Instant::now();
    let status = loop {
        let s = ask(serde_json::json!({ "cmd": "capture-status" }))?;
        if s["active"] != true || t0.elapsed() > std::time::Duration::from_secs(10) {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if let Some(e) = status["error"].as_str() {
        anyhow::bail!("capture failed: {e}");
    }
    if status["active"] == true {
        anyhow::bail!("the capture has not ended 10 s after its time");
    }
    let _ = writeln!(
        std::io::stdout(),
        "wrote {} frames to {} ({} not recorded: a worker's ring was full)",
        status["written"],
        abs.display(),
        status["lost"]
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with the cause chain; no backtrace for a user error.
            eprintln!("xdpsched: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Cleanup { iface }) => return cleanup(iface),
        Some(Command::Show { part, iface, json }) => {
            let v = datapath::show::fetch(iface)?;
            let out = if *json {
                serde_json::to_string_pretty(&datapath::show::select(&v, part.as_deref())?)?
            } else {
                datapath::show::select(&v, part.as_deref())?;
                datapath::show::format(&v, part.as_deref())
            };
            let _ = writeln!(std::io::stdout(), "{}", out.trim_end());
            return Ok(());
        }
        Some(Command::Reload { file, iface, json }) => {
            return reload(iface, file.as_deref(), *json)
        }
        Some(Command::Capture {
            file,
            iface,
            duration,
        }) => return capture(iface, file, duration),
        Some(Command::Completions { shell }) => {
            datapath::cli::completions(*shell, &mut std::io::stdout());
            return Ok(());
        }
        Some(Command::Man { dir }) => {
            let pages = datapath::cli::man_pages(dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            for p in pages {
                let _ = writeln!(std::io::stdout(), "{}", p.display());
            }
            return Ok(());
        }
        None => {}
    }
    let cfg = cli.into_run_config()?;
    datapath::log::init(cfg.verbose)?;
    if !cfg.verbose {
        xsk::quiet_library_logs();
    }
    if let Some(note) = datapath::preflight::bpffs_note() {
        tracing::debug!("{note}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    datapath::signals::install(stop.clone(), hup.clone())
        .context("setting up signal handling (SIGINT, SIGTERM, SIGHUP)")?;
    let stats = datapath::run::run(&cfg, stop, hup).context("xdpsched")?;
    // Not println!: stdout may be gone (a hung-up terminal); the JSON and the
    // exit status still tell.
    let _ = writeln!(
        std::io::stdout(),
        "xdpsched: rx {:?} tx {:?} dropped {} passed {} malformed {} frames {}",
        stats.rx,
        stats.tx,
        stats.dropped,
        stats.passed,
        stats.malformed,
        if stats.frames_balanced {
            "balanced"
        } else {
            "UNBALANCED"
        }
    );
    if stats.lost_before_rx > 0 {
        tracing::warn!(
            "the kernel dropped {} frames before xdpsched's RX rings (rx ring full {}, no fill-ring buffer {}): the input was cut short (--stats-json: kernel, kernel_sockets)",
            stats.lost_before_rx,
            stats.kernel.rx_ring_full,
            stats.kernel.rx_dropped
        );
    }
    if let Some(path) = &cfg.stats_json {
        std::fs::write(path, serde_json::to_string_pretty(&stats)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !stats.frames_balanced {
        anyhow::bail!("frame accounting did not balance at exit");
    }
    Ok(())
}
