//! Link emulation end to end on the veth testbed, at the sizes users
//! configure: a delay line longer than the queue, more flows than the
//! table, both directions, chained pipes, every drop path, overload, and a
//! daemon's signals. Needs root; tears its namespaces down even on failure.

mod common;

use common::*;
use std::thread::sleep;
use std::time::{Duration, Instant};
use testbed::repo;

/// dummynet's classic `pipe 1 config bw 10Mbit/s delay 100ms` with the
/// default queue (50 packets), carrying 8 Mbit/s of UDP: the link keeps
/// ~83 full-size frames in flight, more than the queue; none may be lost
/// and every frame must come back.
#[test]
fn a_10_mbit_100_ms_pipe_carries_8_mbit_without_loss() {
    let _tb = Testbed::up("bridge");
    let cfg = config_file(
        "dn-classic.toml",
        "[[pipe]]\nname = \"dn\"\nbandwidth = \"10Mbit/s\"\ndelay = \"100ms\"\n[[rule]]\npipe = \"dn\"\n",
    );
    let stats = scratch("dn-classic.json");
    let x = start_bridge(&[
        "--config",
        &cfg,
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    let res = iperf3(&[5201], &["-u", "-b", "8M", "-l", "1400", "-t", "5"]);
    let (got, lost) = udp_received(&res[0]);
    let (ok, stdout) = x.stop();
    let mbit = got as f64 * 1400.0 * 8.0 / 5.0 / 1e6;
    assert!(
        mbit >= 7.5,
        "{mbit:.2} Mbit/s arrived ({got} datagrams, {lost} lost)"
    );
    assert!(
        lost as f64 <= 0.01 * (got + lost) as f64,
        "{lost} of {} lost",
        got + lost
    );
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let v = stats_json(&stats);
    assert_eq!(v["dropped"], 0, "{v}");
}

/// examples/02-wan-emulation.toml (40 Mbit/s, 80 ms, 1 % loss, 1000 KB
/// queue) at 90 % of its rate: the measured loss is the configured 1 %,
/// within a 99.9 % binomial bound, and nothing else is lost.
#[test]
fn the_wan_example_at_90_percent_loses_what_it_is_configured_to() {
    let _tb = Testbed::up("bridge");
    let example = repo().join("examples/02-wan-emulation.toml");
    let stats = scratch("wan.json");
    let x = start_bridge(&[
        "--config",
        example.to_str().expect("path"),
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    // 1400-byte datagrams are 1442-byte frames, 1466 bytes with the pipe's
    // overhead: 90 % of 40 Mbit/s is 34.4 Mbit/s of payload. Every packet
    // crosses the lossy pipe, iperf3's UDP start too (a fixed seed does not
    // help: which packet meets which draw depends on the kernel's own
    // traffic), so a run whose start was lost is tried again.
    let res = iperf3_udp_through_loss(
        &[5201],
        &["-u", "-b", "34.4M", "-l", "1400", "-t", "6"],
        25,
        3,
    );
    let (got, lost) = udp_received(&res[0]);
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let n = (got + lost) as f64;
    assert!(n > 15_000.0, "only {n} datagrams");
    let mean = 0.01 * n;
    let bound = 3.29 * (mean * 0.99).sqrt();
    assert!(
        (lost as f64 - mean).abs() <= bound,
        "lost {lost} of {n}, expected {mean:.0} ± {bound:.0}"
    );
    let v = stats_json(&stats);
    // Every drop was the loss model's, and each is counted by cause.
    assert_eq!(v["drops"]["loss"], v["dropped"], "{v}");
    assert_eq!(v["drops"]["flow_limit"], 0, "{v}");
}

/// Sends one UDP datagram from each of `n` fresh sockets (a new source port
/// each: a new flow) from the generator namespace to `dst`.
fn churn_udp(n: usize, dst: &str) {
    let dst = dst.to_owned();
    std::thread::spawn(move || {
        xsk::netns::enter("xs-gen").expect("enter xs-gen");
        for _ in 0..n {
            let s = std::net::UdpSocket::bind("10.211.0.1:0").expect("bind");
            let _ = s.send_to(b"churn", &dst);
        }
    })
    .join()
    .expect("churn thread");
}

/// More flows than the table, then a fresh TCP connection: a full flowset
/// (and a dynamic pipe at max_instances) must not black-hole it; idle flows
/// and instances expire in the running datapath, visible in the stats.
#[test]
fn churn_beyond_max_flows_never_black_holes_a_new_connection() {
    let _tb = Testbed::up("bridge");
    let cfg = config_file(
        "churn.toml",
        r#"
[[pipe]]
name = "link"
bandwidth = "100Mbit/s"
sched = "qfq"

[[flowset]]
name = "flows"
pipe = "link"
mask = "5-tuple"
max_flows = 1000
idle_timeout = "2s"

[[pipe]]
name = "per-port"
bandwidth = "10Mbit/s"
mask = { src_port = 0xffff }
max_instances = 500
idle_timeout = "2s"

[[rule]]
pipe = "per-port"
match = { proto = "udp", dst_port = 9 }

[default]
flowset = "flows"
"#,
    );
    let stats = scratch("churn.json");
    let x = start_bridge(&[
        "--config",
        &cfg,
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    // 4000 new flows into each table (port 10: the flowset; port 9: the dynamic pipe).
    churn_udp(4000, "10.211.0.2:10");
    churn_udp(4000, "10.211.0.2:9");
    // Both tables are full now: TCP goes to the overflow queue, and works.
    let r = iperf3(&[5201], &["-t", "2"]);
    let full = r[0]["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(full > 10e6, "TCP with a full flow table: {full} bit/s");
    // After the idle timeout the sweep has emptied the tables: a new
    // connection gets a queue of its own.
    sleep(Duration::from_secs(3));
    let r = iperf3(&[5202], &["-t", "2"]);
    let later = r[0]["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(later > 10e6, "TCP after expiry: {later} bit/s");
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let v = stats_json(&stats);
    let fs = &v["flowsets"][0];
    assert_eq!(fs["name"], "flows", "{v}");
    assert!(fs["overflowed"].as_u64().unwrap_or(0) >= 2000, "{fs}");
    assert!(fs["expired"].as_u64().unwrap_or(0) >= 1000, "{fs}");
    assert!(fs["flows"].as_u64().unwrap_or(u64::MAX) < 100, "{fs}");
    assert_eq!(fs["refused"], 0, "{fs}");
    let dynp = v["pipes"]
        .as_array()
        .expect("pipes")
        .iter()
        .find(|p| p["name"] == "per-port")
        .expect("per-port pipe");
    assert!(
        dynp["instances_overflowed"].as_u64().unwrap_or(0) >= 2000,
        "{dynp}"
    );
    assert!(
        dynp["instances_expired"].as_u64().unwrap_or(0) >= 500,
        "{dynp}"
    );
    assert!(
        dynp["instances"].as_u64().unwrap_or(u64::MAX) < 50,
        "{dynp}"
    );
    // Every churned datagram is accounted for, those of expired instances
    // included: delivered, or dropped where the shared overflow instance's one
    // queue (50 packets) overflowed under the burst.
    let delivered = dynp["delivered"].as_u64().unwrap_or(0);
    let dropped = dynp["drops"]["flow_limit"].as_u64().unwrap_or(0);
    assert_eq!(delivered + dropped, 4000, "{dynp}");
    assert!(delivered >= 500, "{dynp}");
}

/// A daemon survives SIGHUP (the reload signal) and says so — started
/// from the simple flags, it has no file to re-read; SIGINT and SIGTERM
/// still stop it cleanly.
#[test]
fn sighup_is_survived_and_logged_sigterm_stops() {
    let _tb = Testbed::up("bridge");
    let mut x = start_bridge(&[]);
    x.signal("HUP");
    sleep(Duration::from_millis(300));
    assert!(x.running(), "xdpsched exited on SIGHUP");
    assert!(
        wait_for_path("xs-gen", "10.211.0.2"),
        "no path after SIGHUP"
    );
    let (ok, stdout, stderr) = x.stop_all();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    assert!(
        stderr.contains("SIGHUP: reload refused, the running configuration kept")
            && stderr.contains("started without --config"),
        "{stderr}"
    );
    // SIGTERM (what service managers send): a clean exit, programs detached.
    let mut x = start_bridge(&[]);
    x.signal("TERM");
    let t0 = Instant::now();
    while x.running() && t0.elapsed() < Duration::from_secs(10) {
        sleep(Duration::from_millis(50));
    }
    assert!(!x.running(), "still running 10 s after SIGTERM");
    let (ok, stdout, _) = x.stop_all();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    assert!(
        !xdp_attached("xs-dut", "dutA"),
        "program left after SIGTERM"
    );
}

/// Stopped while traffic flows (a 1 Gbit/s pipe offered 1.2 Gbit/s of
/// UDP), xdpsched loses no frame in the kernel: the sockets leave the XDP
/// programs first (new frames take the fail-open path), the workers read
/// what their RX rings hold, and only then drain. Before, every frame that
/// arrived between the workers' stop and the programs' detach was lost at
/// a full RX ring or an empty fill ring (thousands at 1 Gbit/s).
#[test]
fn a_stop_under_load_loses_nothing_before_rx() {
    let _tb = Testbed::up("bridge");
    let stats = scratch("stop-under-load.json");
    let x = start_bridge(&[
        "--rate",
        "1gbit",
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    // iperf3 bounded by `timeout`: once xdpsched is gone the bridge is too,
    // and the client's control connection never sees the end of the test.
    let bounded = |netns: &str, secs: &str, args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", netns, "timeout", secs, "iperf3"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("iperf3")
    };
    let mut server = bounded("xs-sink", "12", &["-s", "-1", "-p", "5209"]);
    sleep(Duration::from_millis(300));
    let mut client = bounded(
        "xs-gen",
        "8",
        &[
            "-c",
            "10.211.0.2",
            "-p",
            "5209",
            "-u",
            "-b",
            "200M",
            "-l",
            "1400",
            "-t",
            "4",
        ],
    );
    sleep(Duration::from_secs(2));
    let (ok, stdout) = x.stop();
    let _ = client.wait();
    let _ = server.wait();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let v = stats_json(&stats);
    assert!(v["rx"][0].as_u64().unwrap_or(0) > 10_000, "{v}");
    assert_eq!(v["lost_before_rx"].as_u64(), Some(0), "{v}");
    // The frames that came after the stop took the fail-open path.
    assert!(v["xdp_failed_open"].as_u64().unwrap_or(0) > 0, "{v}");
}

/// examples/09-round-trip.toml: 40 ms each way, 20 Mbit/s down and 2 Mbit/s
/// up. Ping reads 80 ms; TCP carries what each link carries after the
/// headers and the configured overhead.
#[test]
fn the_round_trip_example_emulates_both_directions() {
    let _tb = Testbed::up("bridge");
    let example = repo().join("examples/09-round-trip.toml");
    let stats = scratch("round-trip.json");
    let x = start_bridge_for(
        &[
            "--config",
            example.to_str().expect("path"),
            "--stats-json",
            stats.to_str().expect("path"),
        ],
        "120s",
    );
    let rtts = ping_rtts("xs-gen", "10.211.0.2", 20, "0.1");
    assert!(rtts.len() >= 19, "{rtts:?}");
    let mut sorted = rtts.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        (median - 80.0).abs() <= 2.0,
        "RTT median {median} ms: {rtts:?}"
    );
    // TCP goodput: 1448 bytes of payload (timestamps on) in a 1514-byte frame,
    // 1538 bytes with the 24 bytes of overhead. Measured over 10 s after 2 s
    // of slow start, with CUBIC (Linux's built-in default): within 2 %. This
    // machine's configured default is BBR, which every 10 s drains its
    // window to 4 packets for 200 ms (PROBE_RTT) and paces at its bandwidth
    // estimate: it gets 3 % less by its own design, so it is held to 5 %.
    let goodput = |bps: f64| bps * 1448.0 / 1538.0;
    for (server, client, ip, rate, cc, tolerance) in [
        ("xs-sink", "xs-gen", "10.211.0.2", 20e6, "cubic", 0.02),
        ("xs-gen", "xs-sink", "10.211.0.1", 2e6, "cubic", 0.02),
        ("xs-sink", "xs-gen", "10.211.0.2", 20e6, "bbr", 0.05),
    ] {
        let r = iperf3_between(
            server,
            client,
            ip,
            &[5201],
            &["-t", "12", "-O", "2", "-C", cc],
        );
        let bps = r[0]["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        let want = goodput(rate);
        assert!(
            (bps - want).abs() <= tolerance * want,
            "{client} -> {server} ({cc}): {:.3} Mbit/s, want {:.3} ± {} %",
            bps / 1e6,
            want / 1e6,
            tolerance * 100.0
        );
    }
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let v = stats_json(&stats);
    let dirs: Vec<(&str, &str)> = v["pipes"]
        .as_array()
        .expect("pipes")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or(""),
                p["dir"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(dirs, [("down", "a-to-b"), ("up", "b-to-a")], "{v}");
    assert_eq!(v["workers"], 2, "each direction on its own worker: {v}");
}

/// A delay-only pipe feeding a bandwidth pipe (`next`): the delays add up
/// and the rate is the smaller one.
#[test]
fn chained_pipes_add_delays_and_take_the_smaller_rate() {
    let _tb = Testbed::up("bridge");
    let cfg = config_file(
        "chain.toml",
        r#"
[[pipe]]
name = "path"
delay = "30ms"
queue = 1000
next = "bottleneck"

[[pipe]]
name = "bottleneck"
bandwidth = "10Mbit/s"
delay = "10ms"
queue = 20

[[rule]]
pipe = "path"
"#,
    );
    let stats = scratch("chain.json");
    let x = start_bridge(&[
        "--config",
        &cfg,
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    // B→A is not scheduled: the round trip is the A→B chain's 40 ms.
    let rtts = ping_rtts("xs-gen", "10.211.0.2", 10, "0.1");
    assert!(rtts.len() >= 9, "{rtts:?}");
    let mut sorted = rtts.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        (median - 40.0).abs() <= 1.5,
        "RTT median {median} ms: {rtts:?}"
    );
    // 20 Mbit/s offered into a 10 Mbit/s bottleneck.
    let res = iperf3(&[5201], &["-u", "-b", "20M", "-l", "1400", "-t", "5"]);
    let (got, _) = udp_received(&res[0]);
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    // Wire rate: 1442-byte frames plus 24 bytes of overhead (the 20 queued
    // packets that leave after the sender stops are 0.5 % of the count).
    let wire = got as f64 * 1466.0 * 8.0 / 5.0;
    assert!(
        (wire - 10e6).abs() <= 0.03 * 10e6,
        "{:.3} Mbit/s on the wire",
        wire / 1e6
    );
    let v = stats_json(&stats);
    let drops = v["drops"]["flow_limit"].as_u64().unwrap_or(0);
    assert!(drops > 1000, "the bottleneck's queue overflowed: {v}");
    assert_eq!(v["dropped"].as_u64(), Some(drops), "{v}");
    assert_eq!(
        v["lost_before_rx"], 0,
        "dropped by the scheduler, not the RX ring: {v}"
    );
}

/// Every drop path of the datapath hands its frame back and is counted by
/// cause: malformed frames, loss, per-flow limits, packets longer than
/// lmax, a drop inside a chain, frames still queued at exit.
#[test]
fn every_drop_path_returns_its_frame_and_counts_it() {
    let _tb = Testbed::up("bridge");
    let cfg = config_file(
        "drops.toml",
        r#"
[[pipe]]
name = "lossy"
plr = 0.2
next = "slow"
queue = 1000

[[pipe]]
name = "slow"
bandwidth = "2Mbit/s"
queue = 20

[[pipe]]
name = "short"
[[flowset]]
name = "small"
pipe = "short"
lmax = 200

[[rule]]
flowset = "small"
match = { proto = "udp", dst_port = 5202 }

[[rule]]
pipe = "lossy"
match = { proto = "udp", dst_port = 5201 }
"#,
    );
    let stats = scratch("drops.json");
    // It stops by itself (--duration) while traffic still flows.
    // A fixed seed: iperf3's first UDP datagram (its handshake) must not be
    // the one the 20 % loss takes, or the stream never starts.
    let mut x = start_bridge_for(
        &[
            "--config",
            &cfg,
            "--stats-json",
            stats.to_str().expect("path"),
            "--seed",
            "1",
        ],
        "12s",
    );
    // Loss in the first pipe, queue overflow in the second (inside the chain),
    // and datagrams over lmax on port 5202.
    let _ = iperf3(&[5201, 5202], &["-u", "-b", "20M", "-l", "1000", "-t", "3"]);
    // Malformed frames: IPv4 headers cut short, from a raw socket.
    std::thread::spawn(|| {
        xsk::netns::enter("xs-gen").expect("enter xs-gen");
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == "gen0")
            .expect("gen0");
        let Ok(pnet_datalink::Channel::Ethernet(mut tx, _)) =
            pnet_datalink::channel(&iface, Default::default())
        else {
            panic!("raw socket on gen0");
        };
        let mut frame = vec![0xffu8; 6];
        frame.extend_from_slice(&iface.mac.expect("mac").octets());
        // EtherType IPv4, then an IPv4 header that claims 60 bytes but has 10.
        frame.extend_from_slice(&[0x08, 0x00, 0x4f, 0, 0, 60, 0, 0, 0, 0, 64, 17]);
        for _ in 0..100 {
            tx.send_to(&frame, None).expect("send").expect("sent");
        }
    })
    .join()
    .expect("raw sender");
    // A backlog for the exit: UDP into the slow pipe until xdpsched has
    // stopped (bounded), so that it still holds packets then.
    let sending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let go = sending.clone();
    let sender = std::thread::spawn(move || {
        xsk::netns::enter("xs-gen").expect("enter xs-gen");
        let s = std::net::UdpSocket::bind("10.211.0.1:0").expect("bind");
        let t0 = Instant::now();
        while go.load(std::sync::atomic::Ordering::Relaxed)
            && t0.elapsed() < Duration::from_secs(30)
        {
            let _ = s.send_to(&[0u8; 1000], "10.211.0.2:5201");
            sleep(Duration::from_micros(200));
        }
    });
    let t0 = Instant::now();
    while x.running() && t0.elapsed() < Duration::from_secs(30) {
        sleep(Duration::from_millis(100));
    }
    sending.store(false, std::sync::atomic::Ordering::Relaxed);
    sender.join().expect("sender");
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let v = stats_json(&stats);
    let d = &v["drops"];
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    assert!(n("malformed") >= 100, "{v}");
    assert!(n("loss") > 100, "{v}");
    assert!(n("flow_limit") > 100, "{v}");
    assert!(n("bad_length") > 100, "{v}");
    let sum: u64 = d
        .as_object()
        .expect("drops by cause")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(
        v["dropped"].as_u64(),
        Some(sum),
        "dropped is the sum by cause: {v}"
    );
    assert_eq!(v["malformed"].as_u64(), Some(n("malformed")), "{v}");
    // What the slow pipe held when xdpsched stopped was freed, and counted.
    assert!(v["exit_drained"].as_u64().unwrap_or(0) >= 1, "{v}");
}

/// Ten times a pipe's rate for 30 s: memory stays within the UMEM and
/// queue budget (no growth once the queues are full), drops are counted by
/// cause, every frame is accounted for, and what is queued drains in order
/// when the load stops.
#[test]
fn ten_times_the_rate_for_30_s_is_survived_and_accounted() {
    let _tb = Testbed::up("bridge");
    let stats = scratch("overload.json");
    let x = start_bridge(&[
        "--sched",
        "qfq",
        "--rate",
        "10mbit",
        "--delay",
        "20ms",
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    let rss_start = x.rss_kib();
    // 100 Mbit/s of UDP in 4 flows against a 10 Mbit/s pipe, for 30 s; RSS
    // sampled meanwhile.
    let load = std::thread::spawn(|| {
        iperf3(
            &[5201, 5202, 5203, 5204],
            &["-u", "-b", "25M", "-l", "1400", "-t", "30"],
        )
    });
    let t0 = Instant::now();
    let mut rss = Vec::new();
    while !load.is_finished() && t0.elapsed() < Duration::from_secs(45) {
        sleep(Duration::from_secs(1));
        rss.push(x.rss_kib());
    }
    let res = load.join().expect("iperf3");
    // The queues drain after the load (4 flows x 100 packets at 10 Mbit/s < 0.5 s).
    sleep(Duration::from_secs(1));
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    // Memory: the UMEM (8192 x 2 KiB = 16 MiB) is mapped at start; the queues
    // add little. No growth over the last 20 s of overload.
    assert!(rss.len() >= 25, "{rss:?}");
    let (early, late) = (rss[5], *rss.iter().max().expect("samples"));
    assert!(
        late <= early + 2048,
        "RSS grew from {early} to {late} KiB under overload: {rss:?}"
    );
    assert!(
        late <= rss_start.max(1) + 64 * 1024,
        "RSS {late} KiB: {rss:?}"
    );
    let v = stats_json(&stats);
    // Delivered at the pipe's rate, the rest dropped at the per-flow limits
    // and counted; nothing reordered.
    let delivered = v["pipes"][0]["delivered"].as_u64().unwrap_or(0);
    let wire = delivered as f64 * 1466.0 * 8.0 / 30.0;
    assert!(
        (wire - 10e6).abs() <= 0.05 * 10e6,
        "{:.2} Mbit/s delivered",
        wire / 1e6
    );
    let flow_limit = v["drops"]["flow_limit"].as_u64().unwrap_or(0);
    assert!(flow_limit > 100_000, "{v}");
    assert_eq!(v["dropped"].as_u64(), Some(flow_limit), "{v}");
    // The worker sleeps through arrivals while the link is busy, but never so
    // long that the RX ring overflows: the drops are the scheduler's (fair),
    // not the kernel's.
    let rx = v["rx"][0].as_u64().unwrap_or(0);
    let before_rx = v["lost_before_rx"].as_u64().expect("lost_before_rx");
    assert!(
        before_rx <= rx / 1000,
        "{before_rx} lost before RX of {rx}: {v}"
    );
    for r in &res {
        let s = &r["end"]["sum"];
        assert_eq!(s["out_of_order"].as_u64().unwrap_or(0), 0, "{s}");
    }
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    0.5 * (1.0 + if z < 0.0 { -erf } else { erf })
}

/// netem's `delay 20ms 5ms distribution normal` on a pipe, with iproute2's
/// own normal.dist table read where iproute2 installed it: 200 pings 25 ms
/// apart see round-trip times that pass a Kolmogorov-Smirnov test against
/// N(20 ms, 5 ms) at α = 0.001 (the return path and the stacks add ~0.1 ms,
/// subtracted as the idle link's RTT).
#[test]
fn normal_jitter_from_iproute2s_table_shows_in_ping_rtts() {
    let _tb = Testbed::up("bridge");
    let idle = {
        let x = start_bridge(&[]);
        let rtts = ping_rtts("xs-gen", "10.211.0.2", 20, "0.05");
        let (ok, stdout) = x.stop();
        assert!(ok && stdout.contains("frames balanced"), "{stdout}");
        let mut r = rtts;
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let cfg = config_file(
        "jitter.toml",
        "[[pipe]]\nname = \"j\"\ndelay = \"20ms\"\njitter = \"5ms\"\ndistribution = \"normal\"\n[[rule]]\npipe = \"j\"\n",
    );
    let x = start_bridge(&["--config", &cfg]);
    let mut rtts = ping_rtts("xs-gen", "10.211.0.2", 200, "0.025");
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    assert!(rtts.len() >= 195, "{} replies", rtts.len());
    rtts.sort_by(f64::total_cmp);
    let n = rtts.len() as f64;
    let d = rtts
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let f = normal_cdf((r - idle - 20.0) / 5.0);
            (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
        })
        .fold(0.0, f64::max);
    let mean = rtts.iter().sum::<f64>() / n;
    eprintln!("jitter: {n} RTTs, mean {mean:.2} ms, idle {idle:.3} ms, KS D = {d:.4}");
    assert!(
        d < 1.949 / n.sqrt(),
        "KS D = {d} against N(20, 5): {rtts:?}"
    );
}

/// examples/16-netem-reorder.toml (`netem delay 10ms reorder 25% 50%`)
/// through xdpsched: the pings that skip the 10 ms (their RTT is the idle
/// link's) are as many as netem's generator gives — its 50 % correlation
/// narrows the draws toward the middle, so fewer than 25 % (the share is
/// taken from the same generator over a million draws) — within a 4σ
/// binomial bound, doubled for the correlation; the rest take the delay.
#[test]
fn the_reorder_example_sends_netems_share_ahead_of_the_delay() {
    let _tb = Testbed::up("bridge");
    let example = testbed::repo().join("examples/16-netem-reorder.toml");
    let x = start_bridge(&["--config", example.to_str().expect("path")]);
    let rtts = ping_rtts("xs-gen", "10.211.0.2", 200, "0.02");
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    assert!(rtts.len() >= 195, "{} replies", rtts.len());
    let quick = rtts.iter().filter(|&&r| r < 5.0).count() as f64;
    // Took the delay: 10 ms and up (a busy VM adds a few ms now and then).
    let slow = rtts.iter().filter(|&&r| (9.9..60.0).contains(&r)).count() as f64;
    let n = rtts.len() as f64;
    eprintln!("reorder: {quick} of {n} pings skipped the delay, {slow} took it");
    let mut r = sched::emu::jitter::Reorder::new(0.25, 0.5, 1, 99);
    let p = (0..1_000_000).filter(|_| r.skips_delay()).count() as f64 / 1e6;
    let (want, sd) = (p * n, (n * p * (1.0 - p)).sqrt());
    eprintln!("netem's generator: {:.2} % skip", 100.0 * p);
    assert!(
        (quick - want).abs() < 8.0 * sd,
        "{quick} quick, want {want}: {rtts:?}"
    );
    assert_eq!(
        quick + slow,
        n,
        "each RTT is the idle link's or the delay's: {rtts:?}"
    );
}
