//! `xdpsched show`: asks the instance running on a port for its figures
//! (see `control`) and prints them like `tc -s class show`, or as JSON.

use crate::control::{request, socket_path};
use anyhow::{bail, Context};
use serde_json::Value;
use std::fmt::Write as _;

/// The parts `show` can print alone.
pub const PARTS: [&str; 5] = ["ports", "pipes", "flowsets", "flows", "workers"];

/// The figures of the instance on `iface` (in this network namespace).
pub fn fetch(iface: &str) -> anyhow::Result<Value> {
    let path = socket_path(iface);
    if !path.exists() {
        bail!(
            "no xdpsched runs on {iface} in this network namespace (no control socket {})",
            path.display()
        );
    }
    let v = request(&path, "show")
        .with_context(|| format!("asking the xdpsched on {iface} ({})", path.display()))?;
    if let Some(e) = v["error"].as_str() {
        bail!("the xdpsched on {iface} answered: {e}");
    }
    Ok(v)
}

/// `part` (one of [`PARTS`]) of `v`, or all of it.
pub fn select(v: &Value, part: Option<&str>) -> anyhow::Result<Value> {
    match part {
        None => Ok(v.clone()),
        Some(p) if PARTS.contains(&p) => Ok(v[p].clone()),
        Some(p) => bail!("show {p:?}: expected one of {}", PARTS.join(", ")),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Bytes the way tc prints them.
fn bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b}b"),
        1_000..1_000_000 => format!("{:.1}Kb", b as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}Mb", b as f64 / 1e6),
        _ => format!("{:.2}Gb", b as f64 / 1e9),
    }
}

fn rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2}Gbit", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2}Mbit", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1}Kbit", bps / 1e3)
    } else {
        format!("{bps:.0}bit")
    }
}

/// Drops by reason, the non-zero ones: "flow_limit 12, loss 3" (or "none").
/// A pipe's or flowset's sojourn times and queue management, if it
/// measured any.
fn sojourn(p: &Value) -> String {
    let so = &p["sojourn"];
    if u(&so["count"]) == 0 {
        return String::new();
    }
    let ms = |v: &Value| u(v) as f64 / 1e6;
    let mut s = format!(
        "\n  sojourn p50 {:.3}ms p99 {:.3}ms max {:.3}ms",
        ms(&so["p50_ns"]),
        ms(&so["p99_ns"]),
        ms(&so["max_ns"])
    );
    // A pipe reports its AQM drops by reason, a flowset on its own.
    let aqm = u(&p["drops"]["aqm"]) + u(&p["aqm_drops"]);
    if u(&p["ecn_marked"]) > 0 || u(&p["codel_dropping"]) > 0 || aqm > 0 {
        s.push_str(&format!(
            " aqm drops {} ecn marks {} codel dropping flows {} (max count {})",
            aqm,
            u(&p["ecn_marked"]),
            u(&p["codel_dropping"]),
            u(&p["codel_max_count"])
        ));
    }
    s
}

/// A pipe's duplicates and corruptions, if it made any.
fn impairments(p: &Value) -> String {
    let (d, n, c) = (
        u(&p["duplicated"]),
        u(&p["duplicate_no_frame"]),
        u(&p["corrupted"]),
    );
    if d + n + c == 0 {
        return String::new();
    }
    format!(" duplicated {d} (no frame {n}) corrupted {c}")
}

fn drops(d: &Value) -> String {
    let parts: Vec<String> = d
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| u(n) > 0)
        .map(|(k, n)| format!("{k} {}", u(n)))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The text form of `part` of `v` (all parts if `None`).
pub fn format(v: &Value, part: Option<&str>) -> String {
    let mut o = String::new();
    let want = |p: &str| part.is_none_or(|w| w == p);
    if part.is_none() {
        let _ = writeln!(
            o,
            "xdpsched pid {} up {:.1}s: dropped {} passed {} | kernel: lost before rx {} (rx ring full {}) | xdp: to sockets {} failed open {}{}",
            v["pid"],
            v["uptime_s"].as_f64().unwrap_or(0.0),
            u(&v["dropped"]),
            u(&v["passed"]),
            u(&v["lost_before_rx"]),
            u(&v["kernel"]["rx_ring_full"]),
            u(&v["xdp_to_socket"]),
            u(&v["xdp_failed_open"]),
            if v["complete"].as_bool() == Some(false) {
                " (a worker did not answer in time: some figures are older)"
            } else {
                ""
            }
        );
    }
    if want("ports") {
        for p in v["ports"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "port {} ({}): rx {} tx {}  xdp {} sockets {}",
                p["iface"].as_str().unwrap_or("?"),
                p["side"].as_str().unwrap_or("?"),
                u(&p["rx"]),
                u(&p["tx"]),
                p["xdp_mode"].as_str().unwrap_or("?"),
                p["bind"].as_str().unwrap_or("?")
            );
        }
    }
    if part.is_none() {
        if let Some(c) = v["config"].as_str() {
            let _ = writeln!(o, "config {c} (reloaded {} times)", u(&v["reloads"]));
        }
        let _ = writeln!(o, "seed {}", u(&v["seed"]));
    }
    if want("workers") {
        for w in v["workers"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "worker {}: cpu {:.2}s sleeps {} kicks {} | frames {}: free {} fill {} tx {} queued {}",
                u(&w["worker"]),
                w["cpu_s"].as_f64().unwrap_or(0.0),
                u(&w["sleeps"]),
                u(&w["tx_kicks"]),
                u(&w["frames"]),
                u(&w["frames_free"]),
                u(&w["frames_in_fill"]),
                u(&w["frames_in_tx"]),
                u(&w["frames_queued"])
            );
        }
    }
    let window = v["rate_window_s"].as_f64().unwrap_or(0.0);
    if want("pipes") {
        for p in v["pipes"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "pipe {} {}: sent {} pkt {} rate {} (over {window:.1}s) backlog {}p {} lost {} drops {}{}{}{}",
                p["name"].as_str().unwrap_or("?"),
                p["dir"].as_str().unwrap_or("?"),
                u(&p["delivered"]),
                bytes(u(&p["delivered_bytes"])),
                rate(p["rate_bps"].as_f64().unwrap_or(0.0)),
                u(&p["backlog_packets"]),
                bytes(u(&p["backlog_bytes"])),
                u(&p["lost"]),
                drops(&p["drops"]),
                if u(&p["instances_created"]) > 0 {
                    format!(
                        " instances {} (created {} expired {} overflowed {})",
                        u(&p["instances"]),
                        u(&p["instances_created"]),
                        u(&p["instances_expired"]),
                        u(&p["instances_overflowed"])
                    )
                } else {
                    String::new()
                },
                impairments(p),
                sojourn(p)
            );
            // Its HTB classes, as `tc -s class show` lists them.
            for c in p["classes"].as_array().into_iter().flatten() {
                let parent = c["parent"].as_str().unwrap_or("");
                let _ = writeln!(
                    o,
                    "  class {}{} rate {} ceil {}: sent {} pkt {} lended {} borrowed {} {} tokens {} ctokens {}",
                    c["name"].as_str().unwrap_or("?"),
                    if parent.is_empty() {
                        " (root)".to_owned()
                    } else {
                        format!(" parent {parent}")
                    },
                    rate(c["rate_bps"].as_f64().unwrap_or(0.0)),
                    rate(c["ceil_bps"].as_f64().unwrap_or(0.0)),
                    u(&c["packets"]),
                    bytes(u(&c["bytes"])),
                    u(&c["lends"]),
                    u(&c["borrows"]),
                    c["mode"].as_str().unwrap_or("?"),
                    c["tokens_bytes"].as_i64().unwrap_or(0),
                    c["ctokens_bytes"].as_i64().unwrap_or(0),
                );
            }
        }
    }
    if want("flowsets") {
        for f in v["flowsets"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "flowset {} {}: flows {} (created {} expired {} overflowed {} refused {}) limit drops {}{}",
                f["name"].as_str().unwrap_or("?"),
                f["dir"].as_str().unwrap_or("?"),
                u(&f["flows"]),
                u(&f["created"]),
                u(&f["expired"]),
                u(&f["overflowed"]),
                u(&f["refused"]),
                u(&f["limit_drops"]),
                sojourn(f)
            );
        }
    }
    if want("flows") {
        for f in v["flows"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "flow {} [{} {}]: offered {} pkt {} rate {} dropped {} backlog {}p {}",
                f["key"].as_str().unwrap_or("?"),
                f["flowset"].as_str().unwrap_or("?"),
                f["dir"].as_str().unwrap_or("?"),
                u(&f["packets"]),
                bytes(u(&f["bytes"])),
                rate(f["rate_bps"].as_f64().unwrap_or(0.0)),
                u(&f["dropped"]),
                u(&f["backlog_packets"]),
                bytes(u(&f["backlog_bytes"]))
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_names_every_part() {
        let v = serde_json::json!({
            "pid": 7, "uptime_s": 1.5, "dropped": 3, "passed": 0, "lost_before_rx": 0,
            "kernel": {"rx_ring_full": 0}, "xdp_to_socket": 10, "xdp_failed_open": 0,
            "complete": true, "rate_window_s": 0.3,
            "ports": [{"iface": "dutA", "side": "a", "rx": 10, "tx": 0}],
            "pipes": [{"name": "egress", "dir": "a-to-b", "delivered": 9, "delivered_bytes": 13500,
                       "rate_bps": 9.5e6, "lost": 0, "drops": {"flow_limit": 3, "loss": 0},
                       "instances": 1, "instances_created": 0,
                       "classes": [{"name": "sub1", "parent": "root", "rate_bps": 20_000_000,
                                    "ceil_bps": 100_000_000, "packets": 5, "bytes": 7500,
                                    "lends": 4, "borrows": 1, "mode": "may_borrow",
                                    "tokens_bytes": -300, "ctokens_bytes": 1200}]}],
            "flowsets": [{"name": "flows", "dir": "a-to-b", "flows": 1, "created": 1,
                          "expired": 0, "overflowed": 0, "refused": 0}],
            "flows": [{"key": "udp 10.0.0.1:5 > 10.0.0.2:9", "flowset": "flows", "dir": "a-to-b",
                       "packets": 12, "bytes": 18000, "rate_bps": 1.2e7, "dropped": 3,
                       "backlog_packets": 0, "backlog_bytes": 0}],
        });
        let t = format(&v, None);
        assert!(t.contains("port dutA (a): rx 10 tx 0"), "{t}");
        assert!(
            t.contains("pipe egress a-to-b: sent 9 pkt 13.5Kb rate 9.50Mbit"),
            "{t}"
        );
        assert!(t.contains("drops flow_limit 3\n"), "{t}");
        assert!(t.contains("\n  class sub1 parent root rate "), "{t}");
        assert!(
            t.contains("lended 4 borrowed 1 may_borrow tokens -300 ctokens 1200\n"),
            "{t}"
        );
        assert!(t.contains("flowset flows a-to-b: flows 1"), "{t}");
        assert!(
            t.contains("flow udp 10.0.0.1:5 > 10.0.0.2:9 [flows a-to-b]: offered 12 pkt"),
            "{t}"
        );
        // One part alone.
        let p = format(&v, Some("pipes"));
        assert!(p.starts_with("pipe egress") && !p.contains("flow "), "{p}");
        assert_eq!(select(&v, Some("flows")).expect("flows"), v["flows"]);
        assert!(select(&v, Some("queues")).is_err());
    }
}
