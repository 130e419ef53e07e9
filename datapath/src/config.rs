//! What a run needs, validated: [`RunConfig`], built by `cli` from the
//! command line.

use sched::config::Config;
use std::time::Duration;
use xsk::XskParams;

/// Everything `run` needs, validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Port A (and the only port in reflect mode).
    pub iface: String,
    /// Port B: bridge mode.
    pub out: Option<String>,
    /// Pipes, flowsets and rules (each rule and the default for A→B, B→A
    /// or both; see [`Config::for_direction`]).
    pub emulator: Config,
    /// The file `emulator` came from (absolute; None: the simple flags): what
    /// SIGHUP and `xdpsched reload` without a file re-read.
    pub config_path: Option<std::path::PathBuf>,
    /// UMEM and ring sizes.
    pub xsk: XskParams,
    /// What the ports do if xdpsched dies (the program's `no_socket` in
    /// `xsk` follows it).
    pub fail_open: crate::failopen::FailOpen,
    /// Frames per RX/TX batch.
    pub batch: usize,
    /// Stop after this long (None: until stopped).
    pub duration: Option<Duration>,
    /// Print a one-line summary this often (None: never).
    pub stats_interval: Option<Duration>,
    /// Write the final counters as JSON here.
    pub stats_json: Option<std::path::PathBuf>,
    /// Keep the BPF libraries' log lines.
    pub verbose: bool,
    /// Never sleep when idle, and busy-poll the receiving devices' NAPI
    /// (SO_PREFER_BUSY_POLL) from the workers.
    pub busy_poll: bool,
    /// Departures may be spaced this far off their gap (a share, 0..0.5)
    /// before an idle worker spins to be on time (0: always spin).
    pub pacing_tolerance: f64,
    /// Per port (A, B): complete the partial TCP/UDP checksums of frames
    /// received on it (`--checksum`, resolved).
    pub complete_checksums: [bool; 2],
    /// Write what the scheduler did to this pcapng file (None: off).
    pub capture: Option<std::path::PathBuf>,
    /// Serve `/metrics` here (None: off).
    pub metrics: Option<std::net::SocketAddr>,
    /// Serve the live page here (None: off).
    pub web: Option<std::net::SocketAddr>,
    /// Cores to pin workers to, one worker each (empty: one unpinned worker
    /// per RX socket).
    pub cores: Vec<usize>,
}
