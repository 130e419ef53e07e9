//! Queue management end to end on the veth testbed: greedy TCP through a
//! 100 Mbit/s FQ-CoDel bottleneck, with the endpoints at the kernel's
//! defaults (ECN off: CoDel drops) and with ECN on in their namespaces
//! (CoDel marks CE, the frames are rewritten, TCP slows down without
//! losses), and a sparse probe across the loaded link; the RED and PIE
//! examples under the same TCP load. Needs root; tears its namespaces down
//! even on failure.

mod common;

use common::*;
use std::thread::sleep;
use std::time::Duration;

/// 100 Mbit/s, fq_codel with its defaults (target 5 ms, interval 100 ms,
/// ECN on, a queue per 5-tuple, 10240 packets).
const FQ_CODEL: &str =
    "[[pipe]]\nname = \"bottleneck\"\nbandwidth = \"100Mbit/s\"\nsched = \"fq_codel\"\n[[rule]]\npipe = \"bottleneck\"\n";

/// Frame bytes on the emulated wire per TCP payload byte: 1448 bytes of
/// payload (MSS with timestamps) in a 1514-byte frame plus 24 of overhead.
const WIRE_PER_PAYLOAD: f64 = (1514.0 + 24.0) / 1448.0;

/// What one run measured.
struct Run {
    /// Goodput of the 4 flows together, over seconds 2..10, Mbit/s.
    goodput_mbit: f64,
    /// The pipe's figures from --stats-json.
    pipe: serde_json::Value,
    /// The whole --stats-json.
    stats: serde_json::Value,
    /// Probe RTTs across the loaded link, ms.
    probe_ms: Vec<f64>,
    /// `xdpsched show` 6 s into the flows.
    show: String,
    /// `/metrics` then, if `--metrics` was given.
    metrics: String,
}

/// 4 greedy TCP flows gen → sink for 10 s through xdpsched with `args`
/// (`rate_mbit`: the bottleneck, for the goodput's share of it)
/// (whose pipe is called `pipe`), pings every 100 ms alongside; `ecn` sets
/// net.ipv4.tcp_ecn=1 in both endpoints.
fn run(name: &str, args: &[&str], pipe: &str, ecn: bool) -> Run {
    let _tb = Testbed::up("bridge");
    if ecn {
        for n in ["xs-gen", "xs-sink"] {
            let out = ns(n, &["sysctl", "-qw", "net.ipv4.tcp_ecn=1"]);
            assert!(out.status.success(), "sysctl in {n}");
        }
    }
    let stats = scratch(&format!("{name}.json"));
    let mut all = args.to_vec();
    all.extend(["--stats-json", stats.to_str().expect("path")]);
    let x = start_bridge(&all);
    assert!(wait_for_path("xs-gen", "10.211.0.2"));
    let probe = std::thread::spawn(|| {
        sleep(Duration::from_secs(3));
        ping_rtts("xs-gen", "10.211.0.2", 50, "0.1")
    });
    let metrics_port = args
        .iter()
        .position(|a| *a == "--metrics")
        .and_then(|i| args.get(i + 1)?.rsplit(':').next()?.parse::<u16>().ok());
    let look = std::thread::spawn(move || {
        sleep(Duration::from_secs(6));
        let show = ns("xs-dut", &[XDPSCHED, "show", "--iface", "dutA"]);
        let metrics = metrics_port.map_or_else(String::new, |port| {
            let cmd = format!(
                "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; timeout 3 cat <&3"
            );
            String::from_utf8_lossy(&ns("xs-dut", &["bash", "-c", &cmd]).stdout).into_owned()
        });
        (String::from_utf8_lossy(&show.stdout).into_owned(), metrics)
    });
    let servers = iperf3(
        &[5201, 5202, 5203, 5204],
        &["-t", "10", "-i", "1", "-C", "cubic"],
    );
    let probe_ms = probe.join().expect("ping");
    let (show, metrics) = look.join().expect("show");
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    let bytes: f64 = servers
        .iter()
        .flat_map(|j| j["intervals"].as_array().into_iter().flatten())
        .filter(|i| (2.0..10.0).contains(&i["sum"]["start"].as_f64().unwrap_or(-1.0)))
        .map(|i| i["sum"]["bytes"].as_f64().unwrap_or(0.0))
        .sum();
    let stats = stats_json(&stats);
    let pipe = stats["pipes"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == pipe))
        .cloned()
        .unwrap_or_else(|| panic!("no pipe in {stats}"));
    Run {
        goodput_mbit: bytes * 8.0 / (10.0 - 2.0) / 1e6,
        pipe,
        stats,
        probe_ms,
        show,
        metrics,
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The idle link's probe RTT, ms (same testbed, same configuration).
fn idle_probe_ms() -> f64 {
    let _tb = Testbed::up("bridge");
    let cfg = config_file("aqm-idle.toml", FQ_CODEL);
    let x = start_bridge(&["--config", &cfg]);
    assert!(wait_for_path("xs-gen", "10.211.0.2"));
    let rtts = ping_rtts("xs-gen", "10.211.0.2", 20, "0.1");
    let (ok, stdout) = x.stop();
    assert!(ok && stdout.contains("frames balanced"), "{stdout}");
    median(&rtts)
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The bar: with FQ-CoDel and kernel-default endpoints (no ECN),
/// the TCP flows' own queueing delay stays within 2 × target, the link
/// stays ≥ 95 % utilised, CoDel (not the limit) does the dropping, and a
/// sparse probe's RTT stays the order of the idle link's.
#[test]
fn fq_codel_keeps_greedy_tcp_queues_short_and_the_link_full() {
    let idle = idle_probe_ms();
    let cfg = config_file("aqm-fq-codel.toml", FQ_CODEL);
    let r = run("aqm-fq-codel", &["--config", &cfg], "bottleneck", false);
    let p = &r.pipe;
    let so = &p["sojourn"];
    let util = r.goodput_mbit * WIRE_PER_PAYLOAD / 100.0;
    let probe = median(&r.probe_ms);
    eprintln!(
        "fq_codel: goodput {:.1} Mbit/s, link {:.1} %, sojourn p50 {:.2} ms p99 {:.2} ms max {:.2} ms, \
         aqm drops {}, limit drops {}, marks {}, probe p50 {probe:.3} ms (idle {idle:.3} ms, {} replies)",
        r.goodput_mbit,
        100.0 * util,
        u(&so["p50_ns"]) as f64 / 1e6,
        u(&so["p99_ns"]) as f64 / 1e6,
        u(&so["max_ns"]) as f64 / 1e6,
        u(&p["drops"]["aqm"]),
        u(&p["drops"]["pushed_out"]) + u(&p["drops"]["global_limit"]) + u(&p["drops"]["flow_limit"]),
        u(&p["ecn_marked"]),
        r.probe_ms.len(),
    );
    assert!(
        u(&so["p50_ns"]) <= 10_000_000,
        "sojourn p50 {} ns > 2 × target: {p}",
        u(&so["p50_ns"])
    );
    assert!(util >= 0.95, "link {:.1} % utilised: {p}", 100.0 * util);
    assert!(u(&p["drops"]["aqm"]) > 0, "CoDel never dropped: {p}");
    assert_eq!(u(&p["ecn_marked"]), 0, "endpoints without ECN: {p}");
    assert_eq!(u(&r.stats["ce_marked"]), 0);
    assert!(r.probe_ms.len() >= 45, "probe replies {}", r.probe_ms.len());
    assert!(
        probe <= (10.0 * idle).max(idle + 2.0),
        "probe p50 {probe:.3} ms vs idle {idle:.3} ms"
    );
}

/// With ECN on in the endpoints' namespaces, CoDel marks instead of
/// dropping: marks appear, the frames leave rewritten (the sink's TCP
/// accepted them: IPv4 header checksums verify), drops stay near zero.
/// Through the simple form (`--sched fq_codel --rate 100mbit`).
#[test]
fn fq_codel_marks_ecn_tcp_instead_of_dropping() {
    let r = run(
        "aqm-ecn",
        &[
            "--sched",
            "fq_codel",
            "--rate",
            "100mbit",
            "--metrics",
            "127.0.0.1:9471",
        ],
        "egress",
        true,
    );
    let p = &r.pipe;
    let so = &p["sojourn"];
    let util = r.goodput_mbit * WIRE_PER_PAYLOAD / 100.0;
    let drops: u64 = p["drops"]
        .as_object()
        .map(|d| d.values().map(u).sum())
        .unwrap_or(0);
    eprintln!(
        "fq_codel+ECN: goodput {:.1} Mbit/s, link {:.1} %, sojourn p50 {:.2} ms p99 {:.2} ms, \
         marks {} (frames rewritten {}), drops {drops}",
        r.goodput_mbit,
        100.0 * util,
        u(&so["p50_ns"]) as f64 / 1e6,
        u(&so["p99_ns"]) as f64 / 1e6,
        u(&p["ecn_marked"]),
        u(&r.stats["ce_marked"]),
    );
    assert!(u(&p["ecn_marked"]) > 0, "no marks: {p}");
    assert!(u(&r.stats["ce_marked"]) > 0, "no frame rewritten");
    assert!(
        u(&r.stats["ce_marked"]) <= u(&p["ecn_marked"]),
        "more frames rewritten than marks"
    );
    // Near zero: a handful at most (a SYN, a retransmission is Not-ECT).
    assert!(
        drops * 100 <= u(&p["ecn_marked"]),
        "{drops} drops vs {} marks: {p}",
        u(&p["ecn_marked"])
    );
    assert!(
        u(&so["p50_ns"]) <= 10_000_000,
        "sojourn p50 {} ns",
        u(&so["p50_ns"])
    );
    assert!(util >= 0.95, "link {:.1} % utilised: {p}", 100.0 * util);
    // The running instance shows them: `show` and /metrics mid-run.
    assert!(r.show.contains("sojourn p50 "), "{}", r.show);
    assert!(r.show.contains("ecn marks "), "{}", r.show);
    let marks = r
        .metrics
        .lines()
        .find(|l| l.starts_with("xdpsched_ecn_marks_total{") && l.contains("pipe=\"egress\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(marks.is_some_and(|m| m > 0), "{}", r.metrics);
    assert!(
        r.metrics.contains("xdpsched_sojourn_seconds{") && r.metrics.contains("quantile=\"0.99\""),
        "{}",
        r.metrics
    );
    assert!(
        r.metrics.contains("xdpsched_flowset_ecn_marks_total{"),
        "{}",
        r.metrics
    );
    // The flowset's figures: all of the pipe's (one flowset).
    let fs = r.stats["flowsets"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "flows"))
        .unwrap_or_else(|| panic!("{}", r.stats));
    assert_eq!(fs["ecn_marked"], p["ecn_marked"], "{fs}");
    assert_eq!(fs["sojourn"], p["sojourn"], "{fs}");
    assert_eq!(u(&fs["limit_drops"]) + u(&fs["aqm_drops"]), drops, "{fs}");
}

/// The link's share a run used: goodput scaled to frames with overhead.
fn utilisation(r: &Run, rate_mbit: f64) -> f64 {
    r.goodput_mbit * WIRE_PER_PAYLOAD / rate_mbit
}

fn drops_by(p: &serde_json::Value, reason: &str) -> u64 {
    u(&p["drops"][reason])
}

/// examples/12-red.toml (dummynet's `pipe 1 config bw 10Mbit/s queue 50
/// red 0.002/10/30/0.1`) and examples/13-pie.toml (tc's pie behind a
/// 50 Mbit/s shaper), each under 4 greedy TCP flows from kernel-default
/// endpoints: the queue management does the dropping and keeps the delay
/// near where it aims (RED: the average between its thresholds; PIE: its
/// 15 ms target), and the link stays full.
#[test]
fn the_red_and_pie_examples_manage_tcp_queues() {
    // (example, its pipe, the rate, the sojourn p50 it must stay under: RED
    // below max_th — 30 packets of 1524 bytes at 10 Mbit/s, 36.6 ms — half
    // the time; PIE within 2 × its 15 ms target).
    for (example, pipe, rate, p50_max) in [
        ("12-red.toml", "1", 10.0, 36_600_000),
        ("13-pie.toml", "eth0", 50.0, 30_000_000),
    ] {
        let path = testbed::repo().join("examples").join(example);
        let r = run(
            example,
            &["--config", path.to_str().expect("path")],
            pipe,
            false,
        );
        let p = &r.pipe;
        let so = &p["sojourn"];
        let util = utilisation(&r, rate);
        eprintln!(
            "{example}: goodput {:.2} Mbit/s, link {:.1} %, sojourn p50 {:.2} ms p99 {:.2} ms, aqm drops {}, tail drops {}",
            r.goodput_mbit,
            100.0 * util,
            u(&so["p50_ns"]) as f64 / 1e6,
            u(&so["p99_ns"]) as f64 / 1e6,
            drops_by(p, "aqm"),
            drops_by(p, "flow_limit"),
        );
        assert!(
            drops_by(p, "aqm") > 0,
            "{example}: the AQM never dropped: {p}"
        );
        assert!(
            u(&so["p50_ns"]) <= p50_max,
            "{example}: sojourn p50 {} ns > {p50_max}",
            u(&so["p50_ns"])
        );
        assert!(
            util >= 0.95,
            "{example}: link {:.1} % utilised: {p}",
            100.0 * util
        );
    }
}
