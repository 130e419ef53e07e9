//! Logging: `tracing` events, one line each on stderr, quiet by default
//! (start, reload, stop and warnings; nothing per packet).
//!
//! The filter comes from `XDPSCHED_LOG`, else `RUST_LOG` (the `tracing`
//! env-filter syntax: `debug`, `warn`, `datapath::control=debug,info`),
//! else `info` (`debug` with `--verbose`). Under systemd (`JOURNAL_STREAM`
//! set) lines carry no timestamp and no colour: journald adds its own time
//! and keeps the level. A line that cannot be written (the terminal is
//! gone) is dropped, never a panic.

use tracing_subscriber::EnvFilter;

/// The filter `XDPSCHED_LOG` / `RUST_LOG` give, or the default.
pub fn filter(
    xdpsched_log: Option<&str>,
    rust_log: Option<&str>,
    verbose: bool,
) -> anyhow::Result<EnvFilter> {
    let (var, spec) = match (xdpsched_log, rust_log) {
        (Some(s), _) if !s.trim().is_empty() => ("XDPSCHED_LOG", s),
        (_, Some(s)) if !s.trim().is_empty() => ("RUST_LOG", s),
        _ => ("", if verbose { "debug" } else { "info" }),
    };
    EnvFilter::builder()
        .parse(spec)
        .map_err(|e| anyhow::anyhow!("{var}={spec:?}: {e} (e.g. XDPSCHED_LOG=debug, or warn, or datapath::control=debug,info)"))
}

/// Installs the subscriber for the process (once; later calls do nothing).
pub fn init(verbose: bool) -> anyhow::Result<()> {
    let var = |k: &str| std::env::var(k).ok();
    let filter = filter(
        var("XDPSCHED_LOG").as_deref(),
        var("RUST_LOG").as_deref(),
        verbose,
    )?;
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false);
    let r = if journald {
        b.without_time().with_ansi(false).try_init()
    } else {
        b.with_ansi(false).try_init()
    };
    // Already installed (a test calling twice): keep the first.
    let _ = r;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_comes_from_xdpsched_log_then_rust_log_then_the_default() {
        assert_eq!(
            filter(None, None, false).expect("default").to_string(),
            "info"
        );
        assert_eq!(
            filter(None, None, true).expect("verbose").to_string(),
            "debug"
        );
        assert_eq!(
            filter(None, Some("warn"), false).expect("rust").to_string(),
            "warn"
        );
        assert_eq!(
            filter(Some("datapath::control=debug"), Some("warn"), false)
                .expect("ours first")
                .to_string(),
            "datapath::control=debug"
        );
        assert_eq!(
            filter(Some(" "), None, false).expect("blank").to_string(),
            "info"
        );
    }

    #[test]
    fn a_bad_filter_is_an_error_naming_the_variable() {
        let e = filter(Some("info,=[{"), None, false)
            .expect_err("bad")
            .to_string();
        assert!(e.contains("XDPSCHED_LOG"), "{e}");
    }
}
