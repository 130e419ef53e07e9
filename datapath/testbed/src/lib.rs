//! What the end-to-end tests of xdpsched (`datapath/tests`) and xdpgen
//! (`gen/tests`) share: the veth testbed of `scripts/testbed.sh` held for
//! the length of a test and torn down even when it fails, commands run in
//! one of its namespaces, and a child process stopped (SIGINT, then
//! SIGKILL) when its guard drops. Test support only: a dev-dependency.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Tests share the namespace names, so they take turns.
static TURN: Mutex<()> = Mutex::new(());

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// The testbed for the duration of a test; `Drop` tears it down.
#[derive(Debug)]
pub struct Testbed {
    _turn: MutexGuard<'static, ()>,
}

impl Testbed {
    /// `scripts/testbed.sh up <mode>` (direct, bridge, ...), after the
    /// previous test's testbed is down.
    pub fn up(mode: &str) -> Testbed {
        Testbed::up_env(mode, &[])
    }

    /// The testbed with `queues` RX/TX queues per veth.
    pub fn up_with(mode: &str, queues: u32) -> Testbed {
        Testbed::up_env(mode, &[("XS_QUEUES", &queues.to_string())])
    }

    /// The testbed with GRO on at the endpoints (the kernel's default is off).
    pub fn up_gro(mode: &str) -> Testbed {
        Testbed::up_env(mode, &[("XS_GRO", "on")])
    }

    /// The testbed with testbed.sh's environment settings `env`.
    pub fn up_env(mode: &str, env: &[(&str, &str)]) -> Testbed {
        // A panicking test poisons the lock; the next one still gets its turn.
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            is_root(),
            "the AF_XDP end-to-end tests need root (network namespaces, XDP programs)"
        );
        let st = Command::new("bash")
            .arg(repo().join("scripts/testbed.sh"))
            .args(["up", mode])
            .envs(env.iter().copied())
            .status()
            .expect("run testbed.sh");
        assert!(st.success(), "testbed.sh up {mode} failed");
        Testbed { _turn: turn }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/testbed.sh"))
            .arg("down")
            .status();
    }
}

/// Runs `cmd` in network namespace `ns`; its output.
pub fn ns(ns: &str, cmd: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("ip netns exec")
}

/// Sends `sig` (e.g. "INT", "HUP") to process `pid`; whether `kill` succeeded.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops `child` as a user would: SIGINT, up to `grace` to exit, then
/// SIGKILL. Returns its output.
pub fn interrupt(child: Child, grace: Duration) -> Output {
    signal(child.id(), "INT");
    bounded(child, grace)
}

/// Waits for `child` at most `limit` (then kills it); its output. Its
/// pipes are read while it runs, so a child that writes more than a pipe
/// holds (xdpgen's summary of thousands of flows) does not block on them.
pub fn bounded(mut child: Child, limit: Duration) -> Output {
    use std::io::Read;
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for the child");
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Pings from namespace `from` to `to` until one answers (sockets take a
/// moment to bind), at most 10 s.
pub fn wait_for_path(from: &str, to: &str) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if ns(from, &["ping", "-c", "1", "-W", "1", to])
            .status
            .success()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

pub mod browser;
