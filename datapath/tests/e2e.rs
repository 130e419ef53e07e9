//! End-to-end on the veth testbed (scripts/testbed.sh): real frames through
//! real AF_XDP sockets. Needs root (network namespaces, XDP); creates only
//! its own namespaces and addresses, and tears them down even on failure.

use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const XDPSCHED: &str = env!("CARGO_BIN_EXE_xdpsched");

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Tests share the namespace names, so they take turns.
static TESTBED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The testbed for the duration of a test; `Drop` tears it down.
struct Testbed {
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Testbed {
    fn up(mode: &str) -> Testbed {
        // A panicking test poisons the lock; the next one still gets its turn.
        let turn = TESTBED.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            Command::new("id")
                .arg("-u")
                .output()
                .map(|o| o.stdout == b"0\n")
                .unwrap_or(false),
            "the AF_XDP end-to-end tests need root (network namespaces, XDP programs)"
        );
        let st = Command::new("bash")
            .arg(repo().join("scripts/testbed.sh"))
            .args(["up", mode])
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

/// xdpsched in the DUT namespace; killed on drop if still running.
struct Xdpsched(Option<Child>);

impl Xdpsched {
    fn start(args: &[&str]) -> Xdpsched {
        let child = Command::new("ip")
            .args(["netns", "exec", "xs-dut", XDPSCHED])
            .args(args)
            .args(["--duration", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start xdpsched");
        Xdpsched(Some(child))
    }

    /// SIGINT, then wait: (exit success, stdout).
    fn stop(mut self) -> (bool, String) {
        let child = self.0.take().expect("running");
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().expect("wait for xdpsched");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), stdout)
    }
}

impl Drop for Xdpsched {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ns(ns: &str, cmd: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("ip netns exec")
}

/// Pings until one succeeds (the sockets take a moment to bind), bounded.
fn wait_for_path(from: &str, to: &str) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if ns(from, &["ping", "-c", "1", "-W", "1", to])
            .status
            .success()
        {
            return true;
        }
        sleep(Duration::from_millis(200));
    }
    false
}

fn xdp_attached(ns_name: &str, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns_name, "link", "show", dev])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

#[test]
fn bridge_forwards_ping_both_ways_and_detaches_cleanly() {
    let _tb = Testbed::up("bridge");
    let x = Xdpsched::start(&[
        "--iface", "dutA", "--out", "dutB", "--sched", "qfq", "--rate", "100mbit",
    ]);
    assert!(
        wait_for_path("xs-gen", "10.211.0.2"),
        "no path gen -> sink across the bridge"
    );
    let out = ns(
        "xs-gen",
        &["ping", "-c", "20", "-i", "0.05", "-W", "1", "10.211.0.2"],
    );
    assert!(
        out.status.success(),
        "ping gen -> sink: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ns(
        "xs-sink",
        &["ping", "-c", "20", "-i", "0.05", "-W", "1", "10.211.0.1"],
    );
    assert!(
        out.status.success(),
        "ping sink -> gen: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(xdp_attached("xs-dut", "dutA") && xdp_attached("xs-dut", "dutB"));
    let (ok, stdout) = x.stop();
    assert!(ok, "xdpsched did not exit cleanly: {stdout}");
    assert!(
        stdout.contains("frames balanced"),
        "frame accounting: {stdout}"
    );
    assert!(!xdp_attached("xs-dut", "dutA"), "XDP program left on dutA");
    assert!(!xdp_attached("xs-dut", "dutB"), "XDP program left on dutB");
}

#[test]
fn missing_interface_is_a_clear_error_not_a_panic() {
    let out = Command::new(XDPSCHED)
        .args(["--iface", "no-such-if0", "--duration", "1s"])
        .output()
        .expect("run xdpsched");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-if0"),
        "message names the interface: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_arguments_are_rejected_with_the_value_named() {
    for (args, needle) in [
        (&["--iface", "lo", "--frame-size", "3000"][..], "3000"),
        (&["--iface", "lo", "--sched", "bogus"][..], "bogus"),
        (&["--iface", "lo", "--rate", "fast"][..], "fast"),
        (&["--iface", "lo", "--out", "lo"][..], "same port"),
    ] {
        let out = Command::new(XDPSCHED)
            .args(args)
            .output()
            .expect("run xdpsched");
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

fn rx_packets(ns_name: &str, dev: &str) -> u64 {
    let out = ns(
        ns_name,
        &[
            "cat",
            &format!("/sys/class/net/{dev}/statistics/rx_packets"),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn reflect_mode_sends_frames_back_with_macs_swapped() {
    let _tb = Testbed::up("reflect");
    let x = Xdpsched::start(&["--iface", "dutA", "--sched", "drr"]);
    // The generator pings a peer that exists only as a static neighbour entry;
    // every echo request comes back reflected (addressed to gen0's MAC).
    let t0 = Instant::now();
    let before = rx_packets("xs-gen", "gen0");
    let mut got = 0;
    while t0.elapsed() < Duration::from_secs(10) {
        let _ = ns(
            "xs-gen",
            &["ping", "-c", "10", "-i", "0.02", "-W", "1", "10.211.0.2"],
        );
        got = rx_packets("xs-gen", "gen0") - before;
        if got >= 10 {
            break;
        }
    }
    let (ok, stdout) = x.stop();
    assert!(got >= 10, "only {got} frames came back");
    assert!(ok, "xdpsched did not exit cleanly: {stdout}");
    assert!(stdout.contains("frames balanced"), "{stdout}");
}
