//! What xdpsched's end-to-end tests share: xdpsched in the DUT namespace,
//! iperf3 and ping between the endpoints, the stats JSON. The testbed
//! itself, commands in a namespace and the path check come from the
//! `testbed` crate, which xdpgen's tests use too.
#![allow(dead_code)] // each test binary uses a part of it

use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;
pub use testbed::{ns, wait_for_path, Testbed};

pub const XDPSCHED: &str = env!("CARGO_BIN_EXE_xdpsched");

/// xdpsched in the DUT namespace; killed on drop if still running.
pub struct Xdpsched(pub Option<Child>);

impl Xdpsched {
    pub fn start(args: &[&str]) -> Xdpsched {
        Xdpsched::start_for(args, "60s")
    }

    /// Started with `--duration limit` (a bound on a test gone wrong).
    pub fn start_for(args: &[&str], limit: &str) -> Xdpsched {
        let child = Command::new("ip")
            .args(["netns", "exec", "xs-dut", XDPSCHED])
            .args(args)
            .args(["--duration", limit])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start xdpsched");
        Xdpsched(Some(child))
    }

    /// Voluntary context switches of its worker threads so far (how often
    /// they went to sleep).
    pub fn worker_sleeps(&self) -> u64 {
        let pid = self.0.as_ref().expect("running").id();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("its threads");
        tasks
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("xdpsched-"))
            })
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .filter_map(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// kill -9 (no chance to detach): its program stays on dutA.
    pub fn kill9(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert!(
            xdp_attached("xs-dut", "dutA"),
            "expected a leftover program after kill -9"
        );
    }

    /// SIGINT, then wait: (exit success, stdout).
    pub fn stop(self) -> (bool, String) {
        let (ok, stdout, _) = self.stop_all();
        (ok, stdout)
    }

    /// SIGINT, then wait: (exit success, stdout, stderr).
    pub fn stop_all(mut self) -> (bool, String, String) {
        let child = self.0.take().expect("running");
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().expect("wait for xdpsched");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Sends `sig` (e.g. "HUP") to it.
    pub fn signal(&self, sig: &str) {
        let pid = self.0.as_ref().expect("running").id();
        assert!(testbed::signal(pid, sig), "kill -{sig} {pid}");
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Resident memory now, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.0.as_ref().expect("running").id();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
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

/// xdpsched bridging dutA and dutB with `extra` arguments, once a ping
/// crosses it.
pub fn start_bridge(extra: &[&str]) -> Xdpsched {
    start_bridge_for(extra, "60s")
}

/// `start_bridge` with `--duration limit`.
pub fn start_bridge_for(extra: &[&str], limit: &str) -> Xdpsched {
    let mut args = vec!["--iface", "dutA", "--out", "dutB"];
    args.extend_from_slice(extra);
    let x = Xdpsched::start_for(&args, limit);
    assert!(
        wait_for_path("xs-gen", "10.211.0.2"),
        "no path across the bridge"
    );
    x
}

pub fn xdp_attached(ns_name: &str, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns_name, "link", "show", dev])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

pub fn rx_packets(ns_name: &str, dev: &str) -> u64 {
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

/// Starts one-shot iperf3 servers in the sink on `ports`, runs clients from
/// the generator with `args`, returns each server's JSON.
pub fn iperf3(ports: &[u16], client_args: &[&str]) -> Vec<serde_json::Value> {
    iperf3_between("xs-sink", "xs-gen", "10.211.0.2", ports, client_args)
}

/// A UDP iperf3 run through a path that loses packets at random: iperf3
/// 3.12's UDP start is one datagram each way, never retransmitted, so when
/// the loss takes it the client waits forever. A run that delivered no
/// datagram at all is tried again (at most `tries` times, each bounded to
/// `limit_s` seconds); the last result is returned whatever it is.
pub fn iperf3_udp_through_loss(
    ports: &[u16],
    client_args: &[&str],
    limit_s: u32,
    tries: u32,
) -> Vec<serde_json::Value> {
    let mut res = Vec::new();
    for attempt in 1..=tries.max(1) {
        res = iperf3_limited(
            "xs-sink",
            "xs-gen",
            "10.211.0.2",
            ports,
            client_args,
            limit_s,
        );
        let started = res
            .iter()
            .all(|r| r["end"]["sum"]["packets"].as_u64().unwrap_or(0) > 0);
        if started {
            break;
        }
        eprintln!("iperf3 attempt {attempt}: its UDP start was lost, again");
    }
    res
}

/// iperf3 servers in `server_ns`, clients in `client_ns` sending to `server_ip`.
pub fn iperf3_between(
    server_ns: &str,
    client_ns: &str,
    server_ip: &str,
    ports: &[u16],
    client_args: &[&str],
) -> Vec<serde_json::Value> {
    iperf3_limited(server_ns, client_ns, server_ip, ports, client_args, 120)
}

/// As [`iperf3_between`], each client killed after `limit_s` seconds and
/// each server 30 s later.
pub fn iperf3_limited(
    server_ns: &str,
    client_ns: &str,
    server_ip: &str,
    ports: &[u16],
    client_args: &[&str],
    limit_s: u32,
) -> Vec<serde_json::Value> {
    let server_limit = (limit_s + 30).to_string();
    let client_limit = limit_s.to_string();
    let servers: Vec<Child> = ports
        .iter()
        .map(|p| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    server_ns,
                    // Bounded: a test whose path broke must not wait forever.
                    "timeout",
                    &server_limit,
                    "iperf3",
                    "-s",
                    "-1",
                    "-J",
                    "-p",
                    &p.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("iperf3 server")
        })
        .collect();
    sleep(Duration::from_millis(500));
    let clients: Vec<Child> = ports
        .iter()
        .map(|p| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    client_ns,
                    "timeout",
                    &client_limit,
                    "iperf3",
                    "-c",
                    server_ip,
                    "-p",
                    &p.to_string(),
                ])
                .args(client_args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("iperf3 client")
        })
        .collect();
    for c in clients {
        let _ = c.wait_with_output();
    }
    servers
        .into_iter()
        .map(|s| {
            let out = s.wait_with_output().expect("iperf3 server output");
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
        })
        .collect()
}

pub fn xdpsched_in_dut(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", "xs-dut", XDPSCHED])
        .args(args)
        .output()
        .expect("run xdpsched");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON xdpsched wrote with `--stats-json`.
pub fn stats_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("stats file {}: {e}", path.display()));
    serde_json::from_str(&text).expect("stats JSON")
}

/// A scratch file path for this test.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("xdpsched-e2e-{name}"));
    let _ = std::fs::remove_file(&p);
    p
}

/// Writes `text` to a scratch file and returns its path as a string.
pub fn config_file(name: &str, text: &str) -> String {
    let p = scratch(name);
    std::fs::write(&p, text).expect("write config");
    p.to_str().expect("utf-8 path").to_owned()
}

/// Round-trip times (ms) of `count` pings from `from` to `to`, `interval` s apart.
pub fn ping_rtts(from: &str, to: &str, count: u32, interval: &str) -> Vec<f64> {
    let out = ns(
        from,
        &[
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            interval,
            "-W",
            "2",
            to,
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

/// UDP datagrams an iperf3 server received (sent - lost) and its loss count.
pub fn udp_received(server: &serde_json::Value) -> (u64, u64) {
    let s = &server["end"]["sum"];
    let sent = s["packets"].as_u64().unwrap_or(0);
    let lost = s["lost_packets"].as_u64().unwrap_or(0);
    (sent.saturating_sub(lost), lost)
}
