//! classify-bench — cost of parse + classify per frame.
//!
//! ```text
//! classify-bench [--rules N] [--frame v4udp|v6tcp] [--rule-set acl|shapes] [--hit last|none]
//!                [--frames F] [--flows N] [--cache SLOTS] [--json] [--no-repeat]
//! ```
//! Each iteration parses one frame (`sched::wire::parse`), builds its flow key
//! and looks it up in a rule table of N rules. Rule sets:
//! - `acl`: what an access list looks like — rules on a source /24, on a
//!   protocol + destination port, and on DSCP (3 match shapes, whatever N);
//! - `shapes`: every rule a different combination of fields, prefix lengths and
//!   port ranges (up to 24 shapes): the worst case for tuple-space search,
//!   which probes once per shape.
//!
//! `--hit last` uses frames matched by the last rule, `--hit none` frames that
//! no rule matches (every shape is probed). `--flows N` cycles through N
//! frames of different flows (source ports); `--cache SLOTS` sets the
//! exact-match flow cache (0 = off; it is also off below
//! `classify::CACHE_MIN_SHAPES` shapes): with more flows than slots, most
//! lookups miss and pay the full search. For instruction counts, run under
//! callgrind with `--collect-atstart=no --toggle-collect='*classify_loop*'
//! --no-repeat` and divide by `--frames`.

use sched::classify::{Classifier, FlowKey, Match, Prefix};
use sched::rng::Rng;
use sched::wire;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    0xffff_0000_0000 | (u32::from_be_bytes([a, b, c, d]) as u128)
}

/// Ethernet/IPv4/UDP, 64-byte frame.
fn v4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, dscp: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, dscp << 2, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

/// Ethernet/IPv6/hop-by-hop/TCP frame.
fn v6_tcp(dport: u16, sport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd];
    // version 6, traffic class 0, flow label 0; payload 8 (HBH) + 20 (TCP); next header 0 (HBH)
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 28, 0, 64]);
    f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    // hop-by-hop: next header TCP (6), length 0 (8 bytes), PadN padding
    f.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

fn acl_rules(n: usize) -> Vec<(Match, u32)> {
    (0..n)
        .map(|i| {
            let m = match i % 3 {
                0 => Match {
                    src: Some(Prefix::new(
                        v4(10, (i / 256) as u8, (i % 256) as u8, 0),
                        96 + 24,
                    )),
                    ..Match::default()
                },
                1 => Match {
                    proto: Some(if i % 2 == 0 { 6 } else { 17 }),
                    dst_port: Some(((1000 + i) as u16, (1000 + i) as u16)),
                    ..Match::default()
                },
                _ => Match {
                    dscp: Some((i % 64) as u8),
                    vlan: Some((i % 4000) as u16 + 1),
                    ..Match::default()
                },
            };
            (m, i as u32)
        })
        .collect()
}

fn shaped_rules(n: usize, rng: &mut Rng) -> Vec<(Match, u32)> {
    (0..n)
        .map(|i| {
            let mut m = Match::default();
            // Every rule names an address in 10/8 or 192.168/16, which the test
            // frames (172.16/16, 2001:db8::/32) never use: only the appended
            // last rule can match them.
            match i % 4 {
                0 => m.src = Some(Prefix::new(v4(10, rng.range(0, 255) as u8, 0, 0), 96 + 16)),
                1 => {
                    m.src = Some(Prefix::new(
                        v4(10, rng.range(0, 255) as u8, rng.range(0, 255) as u8, 0),
                        96 + 24,
                    ))
                }
                2 => {
                    m.dst = Some(Prefix::new(
                        v4(192, 168, rng.range(0, 255) as u8, 0),
                        96 + 24,
                    ))
                }
                _ => m.dst = Some(Prefix::new(v4(192, 168, 0, 0), 96 + 16)),
            }
            if i % 3 == 0 {
                m.proto = Some(17);
            }
            match i % 5 {
                0 => {
                    let p = rng.range(1, 60_000) as u16;
                    m.dst_port = Some((p, p));
                }
                1 => {
                    let lo = rng.range(1, 60_000) as u16;
                    m.dst_port = Some((lo, lo + 100));
                }
                _ => {}
            }
            if i % 7 == 0 {
                m.dscp = Some(46);
            }
            (m, i as u32)
        })
        .collect()
}

/// The measured loop (callgrind toggles on this name).
#[inline(never)]
fn classify_loop(table: &mut Classifier, frames: &[Vec<u8>], n: usize) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        let f = &frames[i % frames.len()];
        if let Ok(h) = wire::parse(black_box(f)) {
            let k = FlowKey::from_headers(&h);
            acc = acc.wrapping_add(table.lookup(&k).map_or(u32::MAX as u64, |(r, _)| r as u64));
        }
    }
    acc
}

fn main() -> ExitCode {
    let mut rules_n = 20usize;
    let mut frame = "v4udp".to_string();
    let mut set = "acl".to_string();
    let mut hit = "last".to_string();
    let mut frames_n = 10_000_000usize;
    let mut flows_n = 1usize;
    let mut cache = 8192usize;
    let mut json = false;
    let mut repeat = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--rules" => rules_n = val().parse().unwrap_or(20),
            "--frame" => frame = val(),
            "--rule-set" => set = val(),
            "--hit" => hit = val(),
            "--frames" => frames_n = val().parse().unwrap_or(frames_n),
            "--flows" => flows_n = val().parse().unwrap_or(1).max(1),
            "--cache" => cache = val().parse().unwrap_or(cache),
            "--json" => json = true,
            "--no-repeat" => repeat = false,
            other => {
                eprintln!("classify-bench: unknown option '{other}'");
                return ExitCode::from(2);
            }
        }
    }
    let mut rng = Rng::new(7);
    let mut rules = match set.as_str() {
        "acl" => acl_rules(rules_n),
        "shapes" => shaped_rules(rules_n, &mut rng),
        other => {
            eprintln!("classify-bench: unknown rule set '{other}' (acl, shapes)");
            return ExitCode::from(2);
        }
    };
    // The frames: matched by the last rule (appended), or by none.
    let make = |i: usize| match frame.as_str() {
        "v4udp" => Some(v4_udp(
            [172, 16, 0, 1],
            [172, 16, 0, 2],
            40_000 + i as u16,
            9,
            0,
        )),
        "v6tcp" => Some(v6_tcp(9, 40_000 + i as u16)),
        _ => None,
    };
    let Some(f) = make(0) else {
        eprintln!("classify-bench: unknown frame '{frame}' (v4udp, v6tcp)");
        return ExitCode::from(2);
    };
    let key = wire::parse(&f)
        .map(|h| FlowKey::from_headers(&h))
        .expect("valid frame");
    if hit == "last" {
        rules.pop();
        rules.push((
            Match {
                proto: Some(key.proto),
                dst_port: Some((9, 9)),
                ..Match::default()
            },
            rules_n as u32,
        ));
    }
    let mut table = Classifier::new(&rules, cache, 0x5eed);
    let expect = table.table().lookup_linear(&key).map(|(r, _)| r);
    assert_eq!(
        table.lookup(&key).map(|(r, _)| r),
        expect,
        "table disagrees with a linear scan"
    );
    let frames: Vec<Vec<u8>> = (0..flows_n).filter_map(make).collect();
    let runs = if repeat { 5 } else { 1 };
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            black_box(classify_loop(&mut table, &frames, frames_n));
            t0.elapsed().as_nanos() as f64 / frames_n as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let ns = times[times.len() / 2];
    if json {
        println!(
            "{{\"frame\":\"{frame}\",\"rule_set\":\"{set}\",\"rules\":{rules_n},\"shapes\":{},\"hit\":\"{hit}\",\"flows\":{flows_n},\"cache\":{},\"matched_rule\":{},\"frames\":{frames_n},\"ns_per_frame\":{ns:.2}}}",
            table.table().shapes(),
            table.cached(),
            expect.map_or(-1, |r| r as i64)
        );
    } else {
        println!(
            "{frame:<6} {set:<6} rules {rules_n:>5} shapes {:>3} flows {flows_n:>6} cache {:<5} hit {hit:<4} (rule {:?})  {ns:6.2} ns/frame (median of {runs})",
            table.table().shapes(),
            table.cached(),
            expect
        );
    }
    ExitCode::SUCCESS
}
