//! The configuration format: the documented example, every error message,
//! every value form, the examples in examples/, and properties (rendered
//! values parse back; arbitrary and mutated text never panics).

use proptest::prelude::*;
use sched::algo::aqm::{Aqm, CodelParams};
use sched::classify::FlowMask;
use sched::config::*;
use sched::units;
use sched::{Kind, Lmax, Quantum, Weight};
use std::net::Ipv4Addr;

fn parse(text: &str) -> Config {
    match from_toml(text) {
        Ok(c) => c,
        Err(e) => panic!("config should parse: {e}\n{text}"),
    }
}

fn error(text: &str) -> String {
    from_toml(text)
        .expect_err("config should be rejected")
        .to_string()
}

/// Asserts that `text` is rejected with a message containing every part.
fn rejects(text: &str, parts: &[&str]) {
    let e = error(text);
    for p in parts {
        assert!(e.contains(p), "message {e:?} lacks {p:?}");
    }
}

const PIPE: &str = "[[pipe]]\nname = \"wan\"\n";

#[test]
fn the_documented_example() {
    let c = parse(
        r#"
[[pipe]]
name = "wan"
bandwidth = "40Mbit/s"
delay = "80ms"
plr = 0.01
queue = "1000KB"
overhead = 24
sched = "qfq"
mask = { src_ip = "0.0.0.255" }

[[flowset]]
name = "web"
pipe = "wan"
mask = "5-tuple"
weight = 10
priority = 0
quantum = "3028B"
lmax = 1514
queue = 50
max_flows = 65536
idle_timeout = "30s"

[[rule]]
flowset = "web"
match = { src = "10.0.0.0/8", dst = "192.168.1.0/24", proto = "tcp", src_port = "1024-65535", dst_port = 443, dscp = 46, vlan = 100 }

[default]
action = "pass"
"#,
    );
    let mut pipe = PipeSpec::new("wan");
    pipe.bandwidth_bps = Some(40_000_000);
    pipe.delay_ns = 80_000_000;
    pipe.loss = LossModel::Uniform { plr: 0.01 };
    pipe.queue = QueueSpec::Bytes(1_024_000);
    pipe.sched = Kind::Qfq;
    pipe.mask = Some(FlowMask {
        src: 0xffff_ffff_ffff_ffff_ffff_ffff_0000_00ff,
        ..FlowMask::NONE
    });
    assert_eq!(c.pipes, vec![pipe]);
    let fs = FlowsetSpec {
        mask: FlowMask::FIVE_TUPLE,
        weight: Weight::new(10).expect("valid"),
        quantum: Some(Quantum::new(3028).expect("valid")),
        lmax: Lmax::new(1514).expect("valid"),
        ..FlowsetSpec::new("web", 0)
    };
    assert_eq!(c.flowsets, vec![fs]);
    let v4 = |a: [u8; 4]| mapped_v4(Ipv4Addr::from(a));
    assert_eq!(
        c.rules,
        vec![RuleSpec {
            matcher: Match {
                src: Some(Prefix {
                    addr: v4([10, 0, 0, 0]),
                    len: 104
                }),
                dst: Some(Prefix {
                    addr: v4([192, 168, 1, 0]),
                    len: 120
                }),
                proto: Some(6),
                src_port: Some((1024, 65535)),
                dst_port: Some((443, 443)),
                dscp: Some(46),
                vlan: Some(100),
            },
            flowset: 0,
            dir: Dir::AToB,
            prob: None,
            set_dscp: None,
        }]
    );
    assert_eq!(c.default, DefaultAction::Pass);
    assert_eq!(c.pipe_index("wan"), Some(0));
    assert_eq!(c.flowset_index("web"), Some(0));
    assert_eq!(c.flowset_index("nope"), None);
    let again: Config = "[[pipe]]\nname = \"x\"".parse().expect("valid");
    assert_eq!(again.pipes[0].name, "x");
}

#[test]
fn defaults() {
    let c = parse("[[pipe]]\nname = \"p\"\n[[flowset]]\nname = \"f\"\npipe = \"p\"\n");
    assert_eq!(c.pipes, vec![PipeSpec::new("p")]);
    assert_eq!(c.flowsets, vec![FlowsetSpec::new("f", 0)]);
    assert!(c.rules.is_empty());
    assert_eq!(c.default, DefaultAction::Pass);
    let p = &c.pipes[0];
    assert_eq!(p.bandwidth_bps, None);
    assert_eq!(p.delay_ns, 0);
    assert_eq!(p.loss, LossModel::None);
    assert_eq!(p.queue, QueueSpec::Packets(50));
    assert_eq!(p.overhead_bytes, 24);
    assert_eq!(p.sched, Kind::Wf2q);
    assert_eq!(p.mask, None);
    let f = &c.flowsets[0];
    assert_eq!(f.mask, FlowMask::NONE);
    assert_eq!(f.weight.get(), 1);
    assert_eq!(f.priority.get(), 0);
    assert_eq!(f.quantum, None);
    assert_eq!(f.lmax.get(), 65_536);
    assert_eq!(f.queue, QueueSpec::Packets(50));
    assert_eq!(f.max_flows, 65_536);
    assert_eq!(f.idle_timeout_ns, 30_000_000_000);
    assert_eq!(
        parse(&format!("{PIPE}[default]\n")).default,
        DefaultAction::Pass
    );
}

#[test]
fn value_forms() {
    let c = parse(
        r#"
[[pipe]]
name = "a"
bandwidth = 64000
delay = 80
queue = "50KBytes"
overhead = "0B"
sched = "DRR"
mask = "none"
[[pipe]]
name = "b"
bandwidth = "unlimited"
delay = "1.5ms"
queue = "100"
plr = 0
[[pipe]]
name = "c"
bandwidth = "1.5Gbit/s"
plr = 1
mask = { dst_ip = "/24", dst_port = true, proto = "0xff", dscp = 63, vlan = "4095", src_ip = "ffff:ffff::" }
max_instances = 10
idle_timeout = "1min"
"#,
    );
    let [a, b, cc] = &c.pipes[..] else {
        panic!("three pipes")
    };
    assert_eq!(a.bandwidth_bps, Some(64_000));
    assert_eq!(a.delay_ns, 80_000_000);
    assert_eq!(a.queue, QueueSpec::Bytes(51_200));
    assert_eq!(a.overhead_bytes, 0);
    assert_eq!(a.sched, Kind::Drr);
    assert_eq!(a.mask, None, "an all-zero pipe mask is no mask");
    assert_eq!(b.bandwidth_bps, None);
    assert_eq!(b.delay_ns, 1_500_000);
    assert_eq!(b.queue, QueueSpec::Packets(100));
    assert_eq!(b.loss, LossModel::None, "plr = 0 is no loss");
    assert_eq!(cc.bandwidth_bps, Some(1_500_000_000));
    assert_eq!(cc.loss, LossModel::Uniform { plr: 1.0 });
    assert_eq!(cc.max_instances, 10);
    assert_eq!(cc.idle_timeout_ns, 60_000_000_000);
    assert_eq!(
        cc.mask,
        Some(FlowMask {
            src: 0xffff_ffff << 96,
            dst: (u128::MAX << 32) | 0xffff_ff00,
            src_port: 0,
            dst_port: 0xffff,
            proto: 0xff,
            dscp: 63,
            vlan: 4095,
        })
    );
}

#[test]
fn ip_masks() {
    let m = |s: &str| -> u128 {
        let c = parse(&format!(
            "[[pipe]]\nname = \"p\"\nmask = {{ src_ip = {s} }}\n"
        ));
        c.pipes[0].mask.map_or(0, |m| m.src)
    };
    let v4 = |x: u32| (u128::MAX << 32) | u128::from(x);
    assert_eq!(m("\"0.0.0.255\""), v4(0xff));
    assert_eq!(m("\"0x000000ff\""), v4(0xff));
    assert_eq!(m("0x000000ff"), v4(0xff));
    assert_eq!(m("255"), v4(0xff));
    assert_eq!(m("\"/24\""), v4(0xffff_ff00));
    assert_eq!(m("\"/32\""), u128::MAX);
    assert_eq!(m("\"/0\""), v4(0));
    assert_eq!(m("\"/48\""), u128::MAX << 80);
    assert_eq!(m("\"/128\""), u128::MAX);
    assert_eq!(m("\"ffff:ffff::\""), 0xffff_ffff << 96);
    assert_eq!(m("\"0xffffffffffffffff0000000000000000\""), u128::MAX << 64);
    assert_eq!(m("true"), u128::MAX);
    assert_eq!(m("false"), 0);
    // The v4 prefix-length mask equals the mask of the Prefix of that length.
    let p = Prefix {
        addr: 0,
        len: 96 + 24,
    };
    assert_eq!(m("\"/24\""), p.mask());
    for bad in [
        "\"/129\"",
        "\"/x\"",
        "\"0x\"",
        "\"0x1ffffffffffffffffffffffffffffffff\"",
        "\"1.2.3\"",
        "-1",
        "4294967296",
        "1.5",
    ] {
        let e = error(&format!(
            "[[pipe]]\nname = \"p\"\nmask = {{ src_ip = {bad} }}\n"
        ));
        assert!(e.contains("pipe \"p\": mask.src_ip"), "{bad}: {e}");
    }
}

#[test]
fn field_masks() {
    rejects(
        &format!("{PIPE}mask = {{ dscp = 64 }}"),
        &["pipe \"wan\"", "mask.dscp = 64 is out of range", "0..=63"],
    );
    rejects(
        &format!("{PIPE}mask = {{ vlan = \"0x1000\" }}"),
        &["mask.vlan = \"0x1000\" is out of range", "0..=4095"],
    );
    rejects(
        &format!("{PIPE}mask = {{ src_port = \"ports\" }}"),
        &["mask.src_port: \"ports\" is not a mask"],
    );
    rejects(
        &format!("{PIPE}mask = {{ sport = 1 }}"),
        &["mask.sport: unknown mask field", "src_port"],
    );
    rejects(
        &format!("{PIPE}mask = \"4-tuple\""),
        &["mask: \"4-tuple\" is not a mask", "5-tuple"],
    );
    rejects(&format!("{PIPE}mask = 5"), &["mask: expected"]);
    let c = parse(&format!(
        "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\nmask = \"src-ip\"\n\
         [[flowset]]\nname = \"g\"\npipe = \"wan\"\nmask = \"all\"\n"
    ));
    assert_eq!(c.flowsets[0].mask.src, u128::MAX);
    assert_eq!(c.flowsets[0].mask.dst, 0);
    assert_eq!(c.flowsets[1].mask, FlowMask::ALL);
}

#[test]
fn pipe_errors_name_object_field_and_value() {
    let e = error(&format!("{PIPE}bandwidth = \"40Mbot/s\"\n"));
    assert_eq!(
        e,
        r#"line 3, column 13: pipe "wan": bandwidth: "40Mbot/s" is not a rate (expected e.g. "100Mbit/s")"#
    );
    rejects(
        &format!("{PIPE}bandwidth = \"0bit/s\""),
        &["bandwidth: \"0bit/s\"", "more than 0", "unlimited"],
    );
    rejects(
        &format!("{PIPE}bandwidth = 0"),
        &["bandwidth = 0 is out of range (allowed 1..="],
    );
    rejects(
        &format!("{PIPE}bandwidth = true"),
        &["bandwidth: expected a rate", "found boolean true"],
    );
    rejects(
        &format!("{PIPE}plr = 1.5"),
        &["pipe \"wan\": plr = 1.5 is out of range (allowed 0..=1)"],
    );
    rejects(
        &format!("{PIPE}plr = -0.1"),
        &["plr = -0.1 is out of range"],
    );
    rejects(&format!("{PIPE}plr = nan"), &["plr = nan is out of range"]);
    rejects(&format!("{PIPE}plr = \"1%\""), &["plr: expected a number"]);
    rejects(
        &format!("{PIPE}delay = \"2h\""),
        &["delay = \"2h\" is out of range (allowed 0..=1h)"],
    );
    rejects(
        &format!("{PIPE}delay = -5"),
        &["delay = -5 is out of range"],
    );
    rejects(
        &format!("{PIPE}delay = \"5m\""),
        &["delay: \"5m\" is ambiguous", "\"5min\"", "\"5ms\""],
    );
    rejects(
        &format!("{PIPE}queue = 0"),
        &["queue = 0 is out of range (allowed 1..=67108864 packets"],
    );
    rejects(
        &format!("{PIPE}queue = \"10B\""),
        &["queue = \"10B\" (10 bytes) is out of range (allowed 64..=4294967295 bytes)"],
    );
    rejects(
        &format!("{PIPE}queue = \"4GB\""),
        &["queue = \"4GB\" (4294967296 bytes) is out of range"],
    );
    rejects(
        &format!("{PIPE}queue = \"99999999999999999999999\""),
        &["queue = \"99999999999999999999999\" is out of range"],
    );
    rejects(
        &format!("{PIPE}queue = \"50 slots\""),
        &["queue: \"50 slots\" is not a size"],
    );
    rejects(
        &format!("{PIPE}overhead = 2000"),
        &["overhead = 2000 is out of range (allowed 0..=1024)"],
    );
    rejects(
        &format!("{PIPE}sched = \"cbq\""),
        &["sched: unknown scheduler 'cbq'", "qfq"],
    );
    rejects(
        &format!("{PIPE}max_instances = 0"),
        &["max_instances = 0 is out of range (allowed 1..=16777216)"],
    );
    rejects(
        &format!("{PIPE}idle_timeout = \"soon\""),
        &["idle_timeout: \"soon\" is not a duration"],
    );
}

#[test]
fn gilbert_elliott() {
    let c = parse(&format!(
        "{PIPE}[pipe.gilbert_elliott]\np = 0.01\nr = 0.3\nk = 0.99\nh = 0.2\n"
    ));
    assert_eq!(
        c.pipes[0].loss,
        LossModel::GilbertElliott {
            p: 0.01,
            r: 0.3,
            k: 0.99,
            h: 0.2
        }
    );
    let c = parse(&format!("{PIPE}gilbert_elliott = {{ p = 0.1, r = 0.5 }}\n"));
    assert_eq!(
        c.pipes[0].loss,
        LossModel::GilbertElliott {
            p: 0.1,
            r: 0.5,
            k: 1.0,
            h: 0.0
        }
    );
    rejects(
        &format!("{PIPE}gilbert_elliott = {{ p = 0.1 }}"),
        &["pipe \"wan\": gilbert_elliott.r: missing"],
    );
    rejects(
        &format!("{PIPE}gilbert_elliott = {{ p = 2, r = 0.5 }}"),
        &["gilbert_elliott.p = 2 is out of range (allowed 0..=1)"],
    );
    rejects(
        &format!("{PIPE}plr = 0.1\ngilbert_elliott = {{ p = 0.1, r = 0.5 }}"),
        &["plr and gilbert_elliott", "give one"],
    );
    rejects(
        &format!("{PIPE}gilbert_elliott = {{ p = 0.1, r = 0.5, q = 1 }}"),
        &["unknown field `q`", "line 3"],
    );
}

#[test]
fn flowset_errors() {
    let fs = |body: &str| format!("{PIPE}[[flowset]]\nname = \"web\"\npipe = \"wan\"\n{body}\n");
    assert_eq!(
        error(&fs("weight = 0")),
        r#"line 6, column 10: flowset "web": weight = 0 is out of range (allowed 1..=65536)"#
    );
    rejects(
        &fs("weight = 70000"),
        &["flowset \"web\": weight = 70000 is out of range (allowed 1..=65536)"],
    );
    rejects(
        &fs("weight = -3"),
        &["weight = -3 is out of range (allowed 1..=65536)"],
    );
    rejects(
        &fs("weight = \"ten\""),
        &["weight: expected an integer, found string \"ten\""],
    );
    rejects(
        &fs("priority = 16"),
        &["priority = 16 is out of range (allowed 0..=15)"],
    );
    rejects(
        &fs("quantum = 10"),
        &["quantum = 10 is out of range (allowed 64..=16777216)"],
    );
    rejects(
        &fs("quantum = \"32MB\""),
        &["quantum = \"32MB\" (33554432 bytes) is out of range (allowed 64..=16777216)"],
    );
    rejects(
        &fs("lmax = 63"),
        &["lmax = 63 is out of range (allowed 64..=65536)"],
    );
    rejects(
        &fs("max_flows = 0"),
        &["max_flows = 0 is out of range (allowed 1..=16777216)"],
    );
    rejects(&fs("queue = -1"), &["queue = -1 is out of range"]);
    rejects(
        &fs("idle_timeout = 1.5"),
        &["idle_timeout: expected a duration"],
    );
    rejects(
        &fs("mask = \"per-host\""),
        &["flowset \"web\": mask: \"per-host\" is not a mask"],
    );
    let c = parse(&fs(
        "quantum = \"3028B\"\nlmax = \"1.5KB\"\nqueue = \"64KB\"\nidle_timeout = 0",
    ));
    let f = &c.flowsets[0];
    assert_eq!(f.quantum.map(Quantum::get), Some(3028));
    assert_eq!(f.lmax.get(), 1536);
    assert_eq!(f.queue, QueueSpec::Bytes(65_536));
    assert_eq!(f.idle_timeout_ns, 0);
    rejects(
        &format!("{PIPE}[[flowset]]\nname = \"web\"\npipe = \"nope\"\n"),
        &["line 5, column 8: flowset \"web\": pipe \"nope\" is not defined"],
    );
    rejects(
        &format!("{PIPE}[[flowset]]\nname = \"web\"\n"),
        &["flowset \"web\": pipe: missing"],
    );
}

#[test]
fn names() {
    rejects(
        "[[pipe]]\nbandwidth = \"1Mbit/s\"\n",
        &["line 1, column 1: pipe 1: name: missing"],
    );
    rejects(
        "[[pipe]]\nname = \"a\"\n[[pipe]]\nname = \"a b\"\n",
        &["pipe 2: name: \"a b\" is not a valid name"],
    );
    rejects(
        "[[pipe]]\nname = \"\"\n",
        &["pipe 1: name: \"\" is not a valid name"],
    );
    rejects(
        "[[pipe]]\nname = 1\n",
        &["pipe 1: name: expected a string, found integer 1"],
    );
    rejects(
        &format!("[[pipe]]\nname = \"{}\"\n", "x".repeat(65)),
        &["is not a valid name"],
    );
    rejects(
        "[[pipe]]\nname = \"a\"\n[[pipe]]\nname = \"a\"\n",
        &["line 4, column 8: pipe \"a\": name: \"a\" is already the name of pipe 1"],
    );
    rejects(
        &format!(
            "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[flowset]]\nname = \"f\"\npipe = \"wan\"\n"
        ),
        &["flowset \"f\": name: \"f\" is already the name of flowset 1"],
    );
    rejects(
        &format!("{PIPE}[[flowset]]\nname = \"pipe:wan\"\npipe = \"wan\"\n"),
        &["flowset 1: name: \"pipe:wan\" is not a valid name"],
    );
    // A pipe and a flowset may share a name: they are different namespaces.
    let c = parse(&format!(
        "{PIPE}[[flowset]]\nname = \"wan\"\npipe = \"wan\"\n"
    ));
    assert_eq!(c.flowsets[0].name, "wan");
}

#[test]
fn structure_errors_carry_line_and_column() {
    rejects("", &["config: no [[pipe]] is defined"]);
    rejects(
        "[[flowset]]\nname = \"f\"\npipe = \"p\"\n",
        &["no [[pipe]]"],
    );
    let e = from_toml(&format!("{PIPE}bandwidht = \"1Mbit/s\"\n")).expect_err("unknown key");
    assert!(matches!(e, ConfigFileError::Toml { .. }), "{e:?}");
    assert_eq!(e.location(), Some(Location { line: 3, column: 1 }));
    assert!(e.to_string().contains("unknown field `bandwidht`"), "{e}");
    rejects(
        "[[pipe]]\nname = \"wan\"\nbandwidth = \n",
        &["line 3, column"],
    );
    rejects("[[pipe]]\nname = \"wan\"\n[[pipe]\n", &["line 3, column"]);
    rejects(
        "[pipe]\nname = \"wan\"\n",
        &["line 1, column 1: ", "write [[pipe]]"],
    );
    rejects("pipes = 1\n", &["unknown field `pipes`"]);
    rejects(
        &format!("{PIPE}[[rule]]\npipe = \"wan\"\nmatch = {{ sport = 1 }}\n"),
        &["unknown field `sport`", "line 5"],
    );
    rejects(
        &format!("{PIPE}[default]\nverdict = \"pass\"\n"),
        &["unknown field `verdict`"],
    );
    // Columns count characters, not bytes.
    let e = from_toml("[[pipe]]\nname = \"wan\" # é\nbandwidth = \"µ\"\n").expect_err("bad rate");
    assert_eq!(
        e.location(),
        Some(Location {
            line: 3,
            column: 13
        })
    );
    let e = from_toml("[[pipe]]\nname = \"é\"\n").expect_err("bad name");
    assert_eq!(e.location(), Some(Location { line: 2, column: 8 }));
}

#[test]
fn rules_and_matches() {
    let r = |m: &str| {
        let c = parse(&format!(
            "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[rule]]\nflowset = \"f\"\nmatch = {{ {m} }}\n"
        ));
        c.rules[0].matcher
    };
    let v4 = |a: [u8; 4]| mapped_v4(Ipv4Addr::from(a));
    assert_eq!(r(""), Match::ANY);
    assert_eq!(
        r("src = \"10.1.2.3\"").src,
        Some(Prefix {
            addr: v4([10, 1, 2, 3]),
            len: 128
        })
    );
    assert_eq!(r("src = \"any\"").src, None);
    assert_eq!(
        r("dst = \"2001:db8::/32\"").dst,
        Some(Prefix {
            addr: 0x2001_0db8 << 96,
            len: 32
        })
    );
    assert_eq!(
        r("dst = \"0.0.0.0/0\"").dst,
        Some(Prefix {
            addr: v4([0, 0, 0, 0]),
            len: 96
        })
    );
    assert_eq!(r("dst = \"::/0\"").dst, Some(Prefix { addr: 0, len: 0 }));
    for (p, n) in [
        ("\"tcp\"", 6),
        ("\"UDP\"", 17),
        ("\"icmp\"", 1),
        ("\"icmpv6\"", 58),
        ("\"ipv6-icmp\"", 58),
        ("\"sctp\"", 132),
        ("\"gre\"", 47),
        ("\"47\"", 47),
        ("89", 89),
    ] {
        assert_eq!(r(&format!("proto = {p}")).proto, Some(n), "{p}");
    }
    for (d, n) in [
        ("\"ef\"", 46),
        ("\"EF\"", 46),
        ("\"af11\"", 10),
        ("\"af12\"", 12),
        ("\"af13\"", 14),
        ("\"af21\"", 18),
        ("\"af31\"", 26),
        ("\"af41\"", 34),
        ("\"af43\"", 38),
        ("\"cs0\"", 0),
        ("\"cs1\"", 8),
        ("\"cs6\"", 48),
        ("\"cs7\"", 56),
        ("\"be\"", 0),
        ("\"le\"", 1),
        ("\"va\"", 44),
        ("\"0x2e\"", 46),
        ("\"46\"", 46),
        ("63", 63),
    ] {
        assert_eq!(r(&format!("dscp = {d}")).dscp, Some(n), "{d}");
    }
    assert_eq!(r("src_port = 53").src_port, Some((53, 53)));
    assert_eq!(r("src_port = \"53\"").src_port, Some((53, 53)));
    assert_eq!(r("dst_port = \"0-1023\"").dst_port, Some((0, 1023)));
    assert_eq!(r("dst_port = \"80 - 80\"").dst_port, Some((80, 80)));
    assert_eq!(r("vlan = 4095").vlan, Some(4095));
    assert_eq!(
        r("proto = \"udp\", src_port = 1").proto,
        Some(17),
        "udp has ports"
    );

    let bad = |m: &str, parts: &[&str]| {
        rejects(
            &format!(
                "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[rule]]\nflowset = \"f\"\n\
                 [[rule]]\nflowset = \"f\"\nmatch = {{ {m} }}\n"
            ),
            parts,
        )
    };
    bad(
        "src = \"10.0.0.1/8\"",
        &["rule 2: match.src: \"10.0.0.1/8\" has host bits set (did you mean \"10.0.0.0/8\"?)"],
    );
    bad(
        "dst = \"2001:db8::1/32\"",
        &["match.dst: \"2001:db8::1/32\" has host bits set (did you mean \"2001:db8::/32\"?)"],
    );
    bad(
        "src = \"10.0.0.0/33\"",
        &["match.src: \"10.0.0.0/33\" has prefix length \"33\" (allowed 0..=32 for IPv4)"],
    );
    bad(
        "src = \"10.0.0/8\"",
        &["match.src: \"10.0.0/8\" is not an address or prefix"],
    );
    bad("src = 10", &["match.src: expected an address"]);
    bad(
        "dst_port = \"2000-1000\"",
        &["rule 2: match.dst_port: \"2000-1000\" is an empty range (low end 2000 > high end 1000)"],
    );
    bad(
        "dst_port = 70000",
        &["match.dst_port = 70000 is out of range (allowed 0..=65535)"],
    );
    bad(
        "dst_port = \"1-70000\"",
        &["match.dst_port: \"1-70000\" is not a port or range"],
    );
    bad(
        "dst_port = \"http\"",
        &["match.dst_port: \"http\" is not a port"],
    );
    bad(
        "proto = \"tcpp\"",
        &["match.proto: \"tcpp\" is not a protocol", "tcp, udp"],
    );
    bad(
        "proto = 256",
        &["match.proto = 256 is out of range (allowed 0..=255)"],
    );
    bad(
        "proto = \"icmp\", dst_port = 80",
        &["match.dst_port: proto icmp has no ports"],
    );
    bad(
        "dscp = 64",
        &["match.dscp = 64 is out of range (allowed 0..=63)"],
    );
    bad(
        "dscp = \"af44\"",
        &["match.dscp: \"af44\" is not a DSCP", "ef, af11..af43"],
    );
    bad("dscp = \"cs8\"", &["is not a DSCP"]);
    bad(
        "dscp = \"99\"",
        &["match.dscp = \"99\" is out of range (allowed 0..=63)"],
    );
    bad(
        "vlan = 4096",
        &["match.vlan = 4096 is out of range (allowed 0..=4095)"],
    );
}

#[test]
fn rule_targets_and_implicit_flowsets() {
    rejects(
        &format!("{PIPE}[[rule]]\npipe = \"wan\"\n[[rule]]\npipe = \"wan\"\n[[rule]]\nflowset = \"nope\"\n"),
        &["line 8, column 11: rule 3: flowset \"nope\" is not defined"],
    );
    rejects(
        &format!("{PIPE}[[rule]]\npipe = \"lan\"\n"),
        &["rule 1: pipe \"lan\" is not defined"],
    );
    rejects(
        &format!("{PIPE}[[rule]]\nmatch = {{ proto = \"tcp\" }}\n"),
        &["rule 1: flowset: missing"],
    );
    rejects(
        &format!("{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[[rule]]\nflowset = \"f\"\npipe = \"wan\"\n"),
        &["rule 1: give either flowset or pipe, not both"],
    );
    rejects(
        &format!("{PIPE}[default]\naction = \"drop\"\n"),
        &["default: action = \"drop\" is not an action"],
    );
    rejects(
        &format!("{PIPE}[default]\naction = \"pass\"\npipe = \"wan\"\n"),
        &["default: give either action"],
    );
    rejects(
        &format!("{PIPE}[default]\nflowset = \"x\"\n"),
        &["default: flowset \"x\" is not defined"],
    );

    let c = parse(
        r#"
[[pipe]]
name = "a"
queue = "20KB"
mask = "src-ip"
[[pipe]]
name = "b"
[[flowset]]
name = "f"
pipe = "b"
[[rule]]
pipe = "a"
match = { proto = "udp" }
[[rule]]
flowset = "f"
[[rule]]
pipe = "a"
[default]
pipe = "b"
"#,
    );
    assert_eq!(c.flowsets.len(), 3);
    let a = &c.flowsets[1];
    assert_eq!(a.name, "pipe:a");
    assert_eq!(a.pipe, 0);
    assert_eq!(a.queue, QueueSpec::Bytes(20_480));
    assert_eq!(a.mask, FlowMask::NONE);
    assert_eq!(a.max_flows, 1);
    assert_eq!(c.flowsets[2].name, "pipe:b");
    assert_eq!(
        c.rules.iter().map(|r| r.flowset).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
    assert_eq!(c.default, DefaultAction::Flowset(2));
    assert_eq!(c.flowset_index("pipe:b"), Some(2));
    let c = parse(&format!(
        "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n[default]\nflowset = \"f\"\n"
    ));
    assert_eq!(c.default, DefaultAction::Flowset(0));
}

#[test]
fn prefixes() {
    let p = Prefix {
        addr: mapped_v4(Ipv4Addr::new(10, 0, 0, 0)),
        len: 104,
    };
    assert!(p.contains(mapped_v4(Ipv4Addr::new(10, 200, 3, 4))));
    assert!(!p.contains(mapped_v4(Ipv4Addr::new(11, 0, 0, 0))));
    assert!(!p.contains(10 << 24), "IPv4-compatible ::a00:0 is not IPv4");
    let all = Prefix { addr: 0, len: 0 };
    assert!(all.contains(u128::MAX));
    assert_eq!(
        addr_u128("::ffff:1.2.3.4".parse().expect("addr")),
        addr_u128("1.2.3.4".parse().expect("addr"))
    );
}

fn examples_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

#[test]
fn every_example_parses_and_validates() {
    let mut n = 0;
    let entries = std::fs::read_dir(examples_dir()).expect("examples/ exists");
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut c = match from_toml(&text) {
            Ok(c) => c,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        // The files an example names ship beside it (distribution tables
        // are iproute2's: a stand-in here).
        load_files(&mut c, |kind, name| match kind {
            FileKind::Distribution => Ok("-8192 0 8192\n".into()),
            _ => std::fs::read_to_string(examples_dir().join(name)).map_err(|e| e.to_string()),
        })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(e) = sched::emu::Emulator::<u32>::from_config(&c, 1) {
            panic!("{}: {e}", path.display());
        }
        n += 1;
    }
    assert!(n >= 19, "expected at least 19 examples, found {n}");
}

#[test]
fn the_impairment_examples_mean_what_their_commands_say() {
    // netem slot 800us 8.5ms packets 4 bytes 6000
    let c = parse(include_str!("../../examples/17-netem-slot.toml"));
    let s = c.pipes[0].slot.clone().expect("slot");
    assert_eq!(
        (s.delay, s.packets, s.bytes),
        (
            SlotDelaySpec::Uniform {
                min_ns: 800_000,
                max_ns: 8_500_000
            },
            4,
            6000
        )
    );
    // mm-delay 20 mm-link UP DOWN: a trace each way, 20 ms each way.
    let mut c = parse(include_str!("../../examples/18-cellular-trace.toml"));
    load_files(&mut c, |_, name| {
        std::fs::read_to_string(examples_dir().join(name)).map_err(|e| e.to_string())
    })
    .expect("traces");
    for (p, dir, mbit) in [(0, Dir::AToB, 4.16), (1, Dir::BToA, 11.635)] {
        let pipe = &c.pipes[p];
        assert_eq!(pipe.delay_ns, 20_000_000);
        assert_eq!(c.rules[p].dir, dir);
        // The traces' mean rates: the generator's steps, time-weighted.
        let t = pipe
            .trace
            .as_ref()
            .and_then(|t| t.trace.clone())
            .expect("loaded");
        let mean = t.mean_bps() as f64 / 1e6;
        assert!((mean - mbit).abs() < 0.02, "{}: {mean} Mbit/s", pipe.name);
        assert_eq!(t.period_ms(), 20_000);
    }
    // dnctl pipe 1 config bw 20Mbit/s delay 2ms profile wifi.profile
    let mut c = parse(include_str!("../../examples/19-dummynet-profile.toml"));
    load_files(&mut c, |_, name| {
        std::fs::read_to_string(examples_dir().join(name)).map_err(|e| e.to_string())
    })
    .expect("profile");
    let p = &c.pipes[0];
    assert_eq!((p.bandwidth_bps, p.delay_ns), (Some(20_000_000), 2_000_000));
    let pf = p
        .profile
        .as_ref()
        .and_then(|f| f.profile.clone())
        .expect("loaded");
    assert_eq!((pf.samples_ms.len(), pf.loss_level), (100, 98));
    assert_eq!(
        (pf.samples_ms[0], pf.samples_ms[98], pf.samples_ms[99]),
        (0, 20, 30)
    );
    // ipfw add setdscp ef udp from 10.20.0.0/16 to any dst-port 5004-5005
    let c = parse(include_str!("../../examples/20-dscp-remark.toml"));
    assert_eq!(
        c.rules.iter().map(|r| r.set_dscp).collect::<Vec<_>>(),
        vec![Some(46), Some(0)]
    );
    assert_eq!(c.rules[0].matcher.dst_port, Some((5004, 5005)));
}

#[test]
fn the_round_trip_and_chain_examples_mean_what_their_commands_say() {
    // dnctl pipe 1 config bw 20Mbit/s delay 40ms (in recv A); pipe 2 2Mbit/s (in recv B)
    let c = parse(include_str!("../../examples/09-round-trip.toml"));
    let down = c.for_direction(Direction::AToB);
    let up = c.for_direction(Direction::BToA);
    assert_eq!(
        (
            down.pipes.len(),
            down.pipes[0].bandwidth_bps,
            down.pipes[0].delay_ns
        ),
        (1, Some(20_000_000), 40_000_000)
    );
    assert_eq!(
        (
            up.pipes.len(),
            up.pipes[0].bandwidth_bps,
            up.pipes[0].delay_ns
        ),
        (1, Some(2_000_000), 40_000_000)
    );
    assert_eq!((down.rules.len(), up.rules.len()), (1, 1));
    // pipe 1 (per host, 1 Mbit/s) then queue 2 (per host) of pipe 2 (10 Mbit/s, QFQ)
    let c = parse(include_str!("../../examples/10-chained-pipes.toml"));
    assert_eq!(c.pipes[0].bandwidth_bps, Some(1_000_000));
    assert!(c.pipes[0].mask.is_some());
    let next = c.pipes[0].next.expect("chained");
    assert_eq!(c.flowsets[next].name, "hosts");
    assert_eq!(
        c.pipes[c.flowsets[next].pipe].bandwidth_bps,
        Some(10_000_000)
    );
    assert_eq!(c.pipes[1].sched, Kind::Qfq);
}

#[test]
fn examples_mean_what_their_commands_say() {
    let bw = |c: &Config| c.pipes[0].bandwidth_bps;
    // dnctl pipe 1 config bw 300Kbit/s queue 50KBytes
    let c = parse(include_str!("../../examples/01-bw-queue.toml"));
    assert_eq!(bw(&c), Some(300_000));
    assert_eq!(c.pipes[0].queue, QueueSpec::Bytes(51_200));
    assert_eq!(c.default, DefaultAction::Flowset(0));
    assert_eq!(c.flowsets[0].queue, QueueSpec::Bytes(51_200));
    // dnctl pipe 3 config delay 80ms bw 40Mbit/s plr 0.01 queue 1000Kbytes
    let c = parse(include_str!("../../examples/02-wan-emulation.toml"));
    assert_eq!(bw(&c), Some(40_000_000));
    assert_eq!(c.pipes[0].delay_ns, 80_000_000);
    assert_eq!(c.pipes[0].loss, LossModel::Uniform { plr: 0.01 });
    assert_eq!(c.pipes[0].queue, QueueSpec::Bytes(1_024_000));
    // dnctl pipe 1 config mask src-ip 0x000000ff bw 200Kbit/s
    let c = parse(include_str!("../../examples/03-per-host-pipe.toml"));
    assert_eq!(bw(&c), Some(200_000));
    assert_eq!(
        c.pipes[0].mask.map(|m| m.src),
        Some((u128::MAX << 32) | 0xff)
    );
    // dnctl sched 1 config type qfq + three weighted queues
    let c = parse(include_str!("../../examples/04-dummynet-qfq-weights.toml"));
    assert_eq!(c.pipes[0].sched, Kind::Qfq);
    assert_eq!(bw(&c), Some(100_000_000));
    let w: Vec<u32> = c.flowsets.iter().map(|f| f.weight.get()).collect();
    assert_eq!(w, vec![100, 10, 1]);
    assert_eq!(c.rules.len(), 3);
    // tc qfq
    let c = parse(include_str!("../../examples/05-tc-qfq.toml"));
    assert_eq!(c.pipes[0].sched, Kind::Qfq);
    let w: Vec<u32> = c.flowsets.iter().map(|f| f.weight.get()).collect();
    assert_eq!(w, vec![100, 10, 1]);
    // tc drr
    let c = parse(include_str!("../../examples/06-tc-drr.toml"));
    assert_eq!(c.pipes[0].sched, Kind::Drr);
    assert!(c.flowsets.iter().all(|f| f.quantum.is_some()));
    // HTB as one pipe with weights proportional to the rates
    let c = parse(include_str!("../../examples/07-htb-as-weights.toml"));
    assert_eq!(bw(&c), Some(100_000_000));
    let w: Vec<u32> = c.flowsets.iter().map(|f| f.weight.get()).collect();
    assert_eq!(w, vec![60, 30, 10]);
    // DSCP EF to the top priority
    let c = parse(include_str!("../../examples/08-dscp-ef-priority.toml"));
    assert_eq!(c.pipes[0].sched, Kind::Prio);
    assert_eq!(c.rules[0].matcher.dscp, Some(46));
    let ef = c.rules[0].flowset;
    assert_eq!(c.flowsets[ef].priority.get(), 0);
    assert!(c
        .flowsets
        .iter()
        .all(|f| f.priority.get() > 0 || f.name == c.flowsets[ef].name));
    // tc qdisc add dev eth0 root fq_codel limit 10240 target 5ms interval 100ms ecn
    let c = parse(include_str!("../../examples/11-fq-codel.toml"));
    assert_eq!(c.pipes[0].sched, Kind::FqCodel);
    assert_eq!(c.pipes[0].limit, Some(10_240));
    assert_eq!(c.pipes[0].overflow, sched::OverflowPolicy::DropLongest);
    assert_eq!(c.pipes[0].aqm, Aqm::Codel(CodelParams::default()));
    let fs = &c.flowsets[c.flowset_index("pipe:eth0").expect("implicit")];
    assert_eq!(fs.mask, FlowMask::FIVE_TUPLE);
    assert_eq!(fs.queue, QueueSpec::Packets(10_240));
    // ... and sched = "fq_codel" alone means the same.
    let short = parse("[[pipe]]\nname = \"eth0\"\nsched = \"fq_codel\"\nbandwidth = \"100Mbit/s\"\n[default]\npipe = \"eth0\"\n");
    assert_eq!(short, c);
    // dnctl pipe 1 config bw 10Mbit/s queue 50 red 0.002/10/30/0.1
    let c = parse(include_str!("../../examples/12-red.toml"));
    assert_eq!(bw(&c), Some(10_000_000));
    assert_eq!(c.pipes[0].queue, QueueSpec::Packets(50));
    let Aqm::Red(r) = c.pipes[0].aqm else {
        panic!("{:?}", c.pipes[0].aqm)
    };
    assert_eq!(
        (r.w_q(), r.min_th(), r.max_th(), r.max_p()),
        (0.002, 10, 30, 0.1)
    );
    assert!(!r.gentle() && !r.bytes() && !r.ecn());
    // tc ... pie limit 1000 target 15ms tupdate 15ms alpha 2 beta 20 ecn
    let c = parse(include_str!("../../examples/13-pie.toml"));
    assert_eq!(bw(&c), Some(50_000_000));
    assert_eq!(c.pipes[0].sched, Kind::Fifo);
    assert_eq!(c.pipes[0].queue, QueueSpec::Packets(1000));
    assert_eq!(
        c.pipes[0].aqm,
        Aqm::Pie(
            sched::algo::aqm::PieParams::new(
                15_000_000,
                15_000_000,
                150_000_000,
                2.0 / 16.0,
                20.0 / 16.0,
                true,
                false
            )
            .expect("params")
        )
    );
    // default.toml spells out the defaults
    let c = parse(include_str!("../../examples/default.toml"));
    assert_eq!(c.pipes[0], PipeSpec::new(c.pipes[0].name.clone()));
    assert_eq!(
        c.flowsets[0],
        FlowsetSpec::new(c.flowsets[0].name.clone(), 0)
    );
    assert_eq!(c.rules[0].matcher, Match::ANY);
    assert_eq!(c.default, DefaultAction::Pass);
}

/// Deletes, duplicates or replaces characters of `text` at the given places.
fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(at, op, c) in edits {
        if chars.is_empty() {
            break;
        }
        let i = at % chars.len();
        match op % 3 {
            0 => {
                chars.remove(i);
            }
            1 => chars.insert(i, c),
            _ => chars[i] = c,
        }
    }
    chars.into_iter().collect()
}

#[test]
fn rules_and_the_default_have_a_direction_and_each_direction_its_config() {
    let c = parse(
        r#"
[[pipe]]
name = "down"
bandwidth = "20Mbit/s"
delay = "40ms"

[[pipe]]
name = "up"
bandwidth = "2Mbit/s"
delay = "40ms"

[[pipe]]
name = "both"
delay = "1ms"

[[pipe]]
name = "unused"

[[rule]]
pipe = "up"
dir = "b-to-a"
match = { proto = "udp" }

[[rule]]
pipe = "both"
dir = "both"
match = { proto = "icmp" }

[default]
pipe = "down"
"#,
    );
    assert_eq!(
        c.rules.iter().map(|r| r.dir).collect::<Vec<_>>(),
        vec![Dir::BToA, Dir::Both]
    );
    assert_eq!(c.default_dir, Dir::AToB);
    assert!(c.uses(Direction::AToB) && c.uses(Direction::BToA));
    let ab = c.for_direction(Direction::AToB);
    let names = |c: &Config| c.pipes.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ab), ["down", "both", "unused"]);
    assert_eq!(ab.rules.len(), 1, "the icmp rule");
    assert_eq!(ab.flowsets[ab.rules[0].flowset].name, "pipe:both");
    assert_eq!(ab.flowsets[ab.rules[0].flowset].pipe, 1);
    match ab.default {
        DefaultAction::Flowset(f) => assert_eq!(ab.pipes[ab.flowsets[f].pipe].name, "down"),
        DefaultAction::Pass => panic!("A→B keeps its default"),
    }
    let ba = c.for_direction(Direction::BToA);
    assert_eq!(names(&ba), ["up", "both"]);
    assert_eq!(ba.rules.len(), 2);
    assert_eq!(ba.default, DefaultAction::Pass, "the default is A→B's");
    assert!(ba.rules.iter().all(|r| r.dir == Dir::Both));
    // A configuration without directions is all A→B, as before.
    let old = parse("[[pipe]]\nname = \"p\"\n[[rule]]\npipe = \"p\"\n");
    assert!(old.uses(Direction::AToB) && !old.uses(Direction::BToA));
    assert_eq!(old.for_direction(Direction::AToB), {
        let mut o = old.clone();
        o.rules[0].dir = Dir::Both;
        o.default_dir = Dir::Both;
        o
    });
    rejects(
        &format!("{PIPE}[[rule]]\npipe = \"wan\"\ndir = \"in\"\n"),
        &[
            "rule 1",
            "dir = \"in\"",
            "a-to-b",
            "b-to-a",
            "both",
            "line 5",
        ],
    );
    rejects(
        &format!("{PIPE}[default]\npipe = \"wan\"\ndir = 1\n"),
        &["default", "dir: expected", "integer 1"],
    );
}

#[test]
fn chains_name_a_pipe_or_a_flowset_and_may_not_loop() {
    let c = parse(
        r#"
[[pipe]]
name = "a"
next = "b"

[[pipe]]
name = "b"
next = { flowset = "fc" }

[[pipe]]
name = "c"

[[flowset]]
name = "fc"
pipe = "c"
mask = "src-ip"

[[rule]]
pipe = "a"
"#,
    );
    // next = "b": b's implicit flowset, created for the chain.
    let fb = c.pipes[0].next.expect("a has a next");
    assert_eq!(c.flowsets[fb].name, "pipe:b");
    assert_eq!(c.flowsets[fb].pipe, 1);
    assert_eq!(c.pipes[1].next, c.flowset_index("fc"));
    assert_eq!(c.pipes[2].next, None);
    // A direction takes the whole chain along.
    let ab = c.for_direction(Direction::AToB);
    assert_eq!(ab.pipes.len(), 3);
    let ba = c.for_direction(Direction::BToA);
    assert!(ba.pipes.is_empty() && ba.rules.is_empty());
    // Loops.
    rejects(
        "[[pipe]]\nname = \"a\"\nnext = \"b\"\n[[pipe]]\nname = \"b\"\nnext = \"a\"\n",
        &[
            "pipe \"a\"",
            "next: the chain a -> b -> a leads back to \"a\"",
            "line 3",
        ],
    );
    rejects(
        "[[pipe]]\nname = \"a\"\nnext = \"a\"\n",
        &["pipe \"a\"", "a -> a", "cycle"],
    );
    rejects(
        "[[pipe]]\nname = \"a\"\nnext = \"zz\"\n",
        &["pipe \"a\"", "next \"zz\" is not defined"],
    );
    rejects(
        "[[pipe]]\nname = \"a\"\nnext = { pipe = \"a\" }\n",
        &["next.pipe: unknown key"],
    );
    rejects("[[pipe]]\nname = \"a\"\nnext = 3\n", &["next: expected"]);
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = from_toml(&s);
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((0usize..10_000, 0u8..3, proptest::char::any()), 1..6),
    ) {
        let base = [
            include_str!("../../examples/02-wan-emulation.toml"),
            include_str!("../../examples/04-dummynet-qfq-weights.toml"),
            include_str!("../../examples/default.toml"),
        ][which];
        let text = mutate(base, &edits);
        if let Err(e) = from_toml(&text) {
            // Every error says where or what.
            let msg = e.to_string();
            prop_assert!(!msg.is_empty());
            if let Some(at) = e.location() {
                prop_assert!(at.line >= 1 && at.line <= text.lines().count() + 1, "{}", msg);
            }
        }
    }

    #[test]
    fn rendered_values_parse_back_exactly(
        bw in 1u64..=u64::MAX,
        delay in 0u64..=MAX_DELAY_NS,
        qbytes in MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES,
        idle in 0u64..=u64::MAX,
        w in 1u64..=65_536,
    ) {
        let text = format!(
            "[[pipe]]\nname = \"p\"\nbandwidth = \"{}\"\ndelay = \"{}\"\nqueue = \"{}\"\n\
             [[flowset]]\nname = \"f\"\npipe = \"p\"\nweight = {w}\nidle_timeout = \"{}\"\n",
            units::format_rate(bw),
            units::format_duration(delay),
            units::format_size(qbytes),
            units::format_duration(idle),
        );
        let c = from_toml(&text).expect("valid");
        prop_assert_eq!(c.pipes[0].bandwidth_bps, Some(bw));
        prop_assert_eq!(c.pipes[0].delay_ns, delay);
        prop_assert_eq!(c.pipes[0].queue, QueueSpec::Bytes(qbytes));
        prop_assert_eq!(c.flowsets[0].idle_timeout_ns, idle);
        prop_assert_eq!(u64::from(c.flowsets[0].weight.get()), w);
    }

    #[test]
    fn random_match_values_never_panic(
        src in "[0-9a-f.:/]{0,20}",
        port in "[0-9 -]{0,12}",
        dscp in "[a-z0-9]{0,5}",
        proto in "[a-z0-9-]{0,8}",
    ) {
        let text = format!(
            "[[pipe]]\nname = \"p\"\n[[rule]]\npipe = \"p\"\n\
             match = {{ src = {src:?}, dst_port = {port:?}, dscp = {dscp:?}, proto = {proto:?} }}\n"
        );
        if let Err(e) = from_toml(&text) {
            prop_assert!(e.to_string().contains("rule 1: match."), "{}", e);
        }
    }
}

#[test]
fn queue_management_keys() {
    const MS: u64 = 1_000_000;
    // CoDel on one flowset of a DRR pipe, its own target and interval.
    let c = parse(&format!(
        "{PIPE}sched = \"drr\"\n[[flowset]]\nname = \"bulk\"\npipe = \"wan\"\naqm = \"codel\"\ntarget = \"2ms\"\ninterval = \"40ms\"\necn = false\n[[flowset]]\nname = \"other\"\npipe = \"wan\"\n"
    ));
    assert_eq!(
        c.flowsets[0].aqm,
        Some(Aqm::Codel(
            CodelParams::new(2 * MS, 40 * MS, false, None).expect("params")
        ))
    );
    assert_eq!(c.flowsets[1].aqm, None, "the pipe's (none)");
    assert_eq!(c.pipes[0].aqm, Aqm::None);
    // A CoDel key alone implies CoDel with the other defaults.
    let c = parse(&format!("{PIPE}ce_threshold = \"1ms\"\n"));
    assert_eq!(
        c.pipes[0].aqm,
        Aqm::Codel(CodelParams::new(5 * MS, 100 * MS, true, Some(MS)).expect("params"))
    );
    // fq_codel without CoDel is allowed (pure flow queueing).
    let c = parse(&format!("{PIPE}sched = \"fq_codel\"\naqm = \"none\"\n"));
    assert_eq!(c.pipes[0].aqm, Aqm::None);
    assert_eq!(c.pipes[0].overflow, sched::OverflowPolicy::DropLongest);
    // Overflow and limit on any pipe with per-flow queues.
    let c = parse(&format!(
        "{PIPE}sched = \"qfq\"\noverflow = \"longest\"\nlimit = 500\n"
    ));
    assert_eq!(c.pipes[0].overflow, sched::OverflowPolicy::DropLongest);
    assert_eq!(c.pipes[0].limit, Some(500));

    rejects(
        &format!("{PIPE}aqm = \"blue\"\n"),
        &[
            "pipe \"wan\"",
            "aqm",
            "\"blue\"",
            "\"codel\", \"red\", \"gred\" or \"pie\"",
        ],
    );
    rejects(
        &format!("{PIPE}target = \"200ms\"\n"),
        &[
            "pipe \"wan\"",
            "target",
            "200000000",
            "allowed 1000..=100000000",
        ],
    );
    rejects(
        &format!("{PIPE}interval = \"0ms\"\n"),
        &["interval", "allowed 1000..=100000000000"],
    );
    rejects(&format!("{PIPE}ecn = \"yes\"\n"), &["ecn", "true or false"]);
    rejects(
        &format!("{PIPE}aqm = \"none\"\ntarget = \"5ms\"\n"),
        &["target", "aqm = \"none\" has none"],
    );
    // RED and GRED, dummynet's four numbers or the keys.
    let c = parse(&format!(
        "{PIPE}bandwidth = \"10Mbit/s\"\nred = \"0.002/10/30/0.1\"\necn = false\n"
    ));
    let Aqm::Red(r) = c.pipes[0].aqm else {
        panic!("{:?}", c.pipes[0].aqm)
    };
    assert_eq!(
        (r.w_q(), r.min_th(), r.max_th(), r.max_p()),
        (0.002, 10, 30, 0.1)
    );
    assert!(!r.gentle() && !r.bytes() && !r.ecn());
    let c = parse(&format!(
        "{PIPE}aqm = \"gred\"\nmin_th = \"15KB\"\nmax_th = \"45KB\"\n"
    ));
    let Aqm::Red(r) = c.pipes[0].aqm else {
        panic!("{:?}", c.pipes[0].aqm)
    };
    assert_eq!(
        (r.w_q(), r.min_th(), r.max_th(), r.max_p()),
        (0.002, 15 * 1024, 45 * 1024, 0.1)
    );
    assert!(r.gentle() && r.bytes() && r.ecn());
    // PIE with its RFC defaults, some changed.
    let c = parse(&format!(
        "{PIPE}aqm = \"pie\"\ntarget = \"20ms\"\ndq_rate_estimator = false\n"
    ));
    let Aqm::Pie(pp) = c.pipes[0].aqm else {
        panic!("{:?}", c.pipes[0].aqm)
    };
    assert_eq!(
        (pp.target_ns(), pp.tupdate_ns(), pp.max_burst_ns()),
        (20 * MS, 15 * MS, 150 * MS)
    );
    assert_eq!(
        (pp.alpha(), pp.beta(), pp.ecn(), pp.dq_rate_estimator()),
        (0.125, 1.25, true, false)
    );
    rejects(
        &format!("{PIPE}red = \"0.002/30/10/0.1\"\n"),
        &["min_th", "allowed 0..=9"],
    );
    rejects(&format!("{PIPE}red = \"0.002/10/30\"\n"), &["four values"]);
    rejects(&format!("{PIPE}red = \"2/10/30/0.1\"\n"), &["w_q"]);
    rejects(
        &format!("{PIPE}red = \"0.002/10/30KB/0.1\"\n"),
        &["one is in packets, the other in bytes"],
    );
    rejects(
        &format!("{PIPE}aqm = \"red\"\nmax_th = 30\n"),
        &["min_th: missing"],
    );
    rejects(
        &format!("{PIPE}aqm = \"pie\"\ninterval = \"100ms\"\n"),
        &["interval is not a parameter of aqm = \"pie\"", "tupdate"],
    );
    rejects(
        &format!("{PIPE}w_q = 0.1\n"),
        &["w_q: say which queue management"],
    );
    rejects(
        &format!("{PIPE}aqm = \"codel\"\nred = \"0.002/10/30/0.1\"\n"),
        &["needs aqm = \"red\""],
    );
    rejects(
        &format!("{PIPE}aqm = \"pie\"\nalpha = 2\nbeta = 20\n"),
        &["beta", "20000", "allowed 0..=2000"],
    );
    rejects(
        &format!("{PIPE}overflow = \"longest\"\nsched = \"fifo\"\n"),
        &["overflow", "fifo has one queue"],
    );
    rejects(
        &format!("{PIPE}overflow = \"head\"\n"),
        &["\"tail\" or \"longest\""],
    );
    rejects(&format!("{PIPE}limit = 0\n"), &["limit", "0"]);
    rejects(&format!("{PIPE}limit = 70000\n"), &["limit", "65536"]);
}

#[test]
fn jitter_keys_and_distribution_tables() {
    const MS: u64 = 1_000_000;
    // tc qdisc add dev eth0 root netem delay 100ms 20ms 25% distribution normal
    let mut c = parse(include_str!("../../examples/15-netem-jitter.toml"));
    assert_eq!(c.pipes[0].delay_ns, 100 * MS);
    let j = c.pipes[0].jitter.clone().expect("jitter");
    assert_eq!(
        (j.jitter_ns, j.correlation, j.reorder),
        (20 * MS, 0.25, false)
    );
    assert_eq!(
        j.distribution,
        Distribution::Table {
            name: "normal".into(),
            table: None
        }
    );
    // Not loaded: building says so.
    let e = sched::emu::Emulator::<u32>::from_config(&c, 1).expect_err("not loaded");
    assert!(e.to_string().contains("normal"), "{e}");
    // The caller reads the table (here a small one of its own).
    load_files(&mut c, |kind, name| {
        assert_eq!((kind, name), (FileKind::Distribution, "normal"));
        Ok("# test\n-8192 0 8192\n".to_owned())
    })
    .expect("load");
    let Some(JitterSpec {
        distribution: Distribution::Table { table: Some(t), .. },
        ..
    }) = &c.pipes[0].jitter
    else {
        panic!("{:?}", c.pipes[0].jitter)
    };
    assert_eq!(&t[..], &[-8192, 0, 8192]);
    assert!(sched::emu::Emulator::<u32>::from_config(&c, 1).is_ok());
    // A reader's error and a bad table name the pipe and the table.
    let mut c = parse(include_str!("../../examples/15-netem-jitter.toml"));
    let e = load_files(&mut c, |_, _| Err("no such file".into())).expect_err("missing");
    assert!(
        e.to_string().contains("pipe \"eth0\"") && e.to_string().contains("no such file"),
        "{e}"
    );
    let e = load_files(&mut c, |_, _| Ok("1 2 banana".into())).expect_err("bad");
    assert!(e.to_string().contains("banana"), "{e}");
    // Uniform by default; the other keys need a jitter.
    let c = parse(&format!("{PIPE}delay = \"10ms\"\njitter = \"2ms\"\n"));
    let j = c.pipes[0].jitter.clone().expect("jitter");
    assert_eq!(
        (j.distribution, j.correlation),
        (Distribution::Uniform, 0.0)
    );
    rejects(
        &format!("{PIPE}distribution = \"normal\"\n"),
        &["distribution", "needs jitter"],
    );
    rejects(
        &format!("{PIPE}jitter = \"1ms\"\ndistribution = \"gaussian\"\n"),
        &["distribution = \"gaussian\"", ".dist"],
    );
    rejects(
        &format!("{PIPE}jitter = \"1ms\"\njitter_correlation = 2\n"),
        &["jitter_correlation", "0..=1"],
    );
    rejects(&format!("{PIPE}jitter = \"11s\"\n"), &["jitter", "10s"]);
}

#[test]
fn netems_four_state_loss() {
    // tc ... netem loss state 1% (p31 = 99 %, p32 = 0, p23 = 100 %, p14 = 0)
    let c = parse(&format!("{PIPE}[pipe.loss_4state]\np13 = 0.01\n"));
    assert_eq!(
        c.pipes[0].loss,
        LossModel::FourState {
            p13: 0.01,
            p31: 0.99,
            p32: 0.0,
            p23: 1.0,
            p14: 0.0
        }
    );
    let c = parse(&format!(
        "{PIPE}[pipe.loss_4state]\np13 = 0.01\np31 = 0.3\np32 = 0.2\np23 = 0.4\np14 = 0.005\n"
    ));
    // pi1 = 1 / (1 + p13 p32 / (p31 p23) + p13 / p31 + p14); loss = pi1 (p13 / p31 + p14).
    assert!(
        (c.pipes[0].loss.mean_loss() - 0.036_335).abs() < 1e-6,
        "{:?}",
        c.pipes[0].loss.mean_loss()
    );
    rejects(
        &format!("{PIPE}[pipe.loss_4state]\np31 = 0.5\n"),
        &["loss_4state.p13: missing"],
    );
    rejects(
        &format!("{PIPE}[pipe.loss_4state]\np13 = 0.6\np14 = 0.6\n"),
        &["p13 + p14", "above 1"],
    );
    rejects(
        &format!("{PIPE}[pipe.loss_4state]\np13 = 1.5\n"),
        &["loss_4state.p13", "0..=1"],
    );
    rejects(
        &format!("{PIPE}plr = 0.1\n[pipe.loss_4state]\np13 = 0.01\n"),
        &["three loss models"],
    );
}

#[test]
fn netems_reorder() {
    // tc qdisc add dev eth0 root netem delay 10ms reorder 25% 50%
    let c = parse(include_str!("../../examples/16-netem-reorder.toml"));
    assert_eq!(c.pipes[0].delay_ns, 10_000_000);
    assert_eq!(
        c.pipes[0].reorder,
        Some(ReorderSpec {
            probability: 0.25,
            correlation: 0.5,
            gap: 1
        })
    );
    let c = parse(&format!(
        "{PIPE}delay = \"5ms\"\nreorder = 0.5\nreorder_gap = 5\n"
    ));
    assert_eq!(c.pipes[0].reorder.map(|r| r.gap), Some(5));
    rejects(
        &format!("{PIPE}reorder = 0.25\n"),
        &["reorder", "needs a delay"],
    );
    rejects(
        &format!("{PIPE}delay = \"5ms\"\nreorder_gap = 5\n"),
        &["reorder_gap", "needs reorder"],
    );
    rejects(
        &format!("{PIPE}delay = \"5ms\"\nreorder = 0.2\nreorder_gap = 0\n"),
        &["reorder_gap"],
    );
}

#[test]
fn netem_and_dummynet_impairment_keys_parse_and_bad_ones_are_named() {
    let c = parse(&format!(
        "{PIPE}delay = \"10ms\"\nduplicate = 0.01\nduplicate_correlation = 0.25\ncorrupt = 0.001\nprofile = \"p.profile\"\nbandwidth = \"1Mbit/s\"\n[pipe.slot]\nmin = \"800us\"\nmax = \"8.5ms\"\npackets = 4\nbytes = 6000\n"
    ));
    let p = &c.pipes[0];
    assert_eq!(
        p.duplicate,
        Some(ChanceSpec {
            probability: 0.01,
            correlation: 0.25
        })
    );
    assert_eq!(p.corrupt.map(|c| c.probability), Some(0.001));
    let s = p.slot.clone().expect("slot");
    assert_eq!(
        (s.delay, s.packets, s.bytes),
        (
            SlotDelaySpec::Uniform {
                min_ns: 800_000,
                max_ns: 8_500_000
            },
            4,
            6000
        )
    );
    assert_eq!(
        p.profile.as_ref().map(|f| f.file.as_str()),
        Some("p.profile")
    );
    // A slot from a distribution, a trace with its log, a schedule.
    let c = parse(&format!(
        "{PIPE}trace = \"up.trace\"\ntrace_log = \"up.log\"\nschedule_repeat = \"30s\"\n[pipe.slot]\ndistribution = \"normal\"\ndelay = \"2ms\"\njitter = \"1ms\"\n[[pipe.schedule]]\nat = \"0s\"\ndelay = \"20ms\"\n[[pipe.schedule]]\nat = \"10s\"\nplr = 0.05\n"
    ));
    let p = &c.pipes[0];
    assert!(matches!(
        p.slot.as_ref().map(|s| &s.delay),
        Some(SlotDelaySpec::Table {
            delay_ns: 2_000_000,
            jitter_ns: 1_000_000,
            ..
        })
    ));
    let t = p.trace.clone().expect("trace");
    assert_eq!(
        (t.file.as_str(), t.log.as_deref()),
        ("up.trace", Some("up.log"))
    );
    let sc = p.schedule.clone().expect("schedule");
    assert_eq!(sc.repeat_ns, Some(30_000_000_000));
    assert_eq!(sc.steps.len(), 2);
    assert_eq!(
        (sc.steps[1].at_ns, sc.steps[1].plr),
        (10_000_000_000, Some(0.05))
    );
    // Not loaded yet: building says which file.
    let e = sched::emu::Emulator::<u32>::from_config(&c, 1).expect_err("not loaded");
    assert!(e.to_string().contains("normal"), "{e}");
    // Rules: prob and set_dscp; the seed.
    let c = parse(&format!(
        "seed = 42\n{PIPE}\n[[rule]]\npipe = \"wan\"\nprob = 0.25\nset_dscp = \"af41\"\n"
    ));
    assert_eq!(c.seed, Some(42));
    assert_eq!(
        (c.rules[0].prob, c.rules[0].set_dscp),
        (Some(0.25), Some(34))
    );
    for (text, parts) in [
        (format!("{PIPE}duplicate_correlation = 0.5\n"), vec!["duplicate_correlation", "needs duplicate"]),
        (format!("{PIPE}corrupt = 1.5\n"), vec!["corrupt"]),
        (format!("{PIPE}[pipe.slot]\nmin = \"5ms\"\nmax = \"1ms\"\n"), vec!["max is below min"]),
        (format!("{PIPE}[pipe.slot]\npackets = 4\n"), vec!["slot: needs min"]),
        (format!("{PIPE}[pipe.slot]\nmin = \"1ms\"\ndistribution = \"normal\"\n"), vec!["not both"]),
        (format!("{PIPE}trace = \"t\"\nbandwidth = \"10Mbit/s\"\n"), vec!["bandwidth", "trace"]),
        (format!("{PIPE}trace_log = \"l\"\n"), vec!["needs trace"]),
        (format!("{PIPE}[[pipe.schedule]]\nat = \"1s\"\n"), vec!["names none"]),
        (format!("{PIPE}[[pipe.schedule]]\nat = \"2s\"\nplr = 0.1\n[[pipe.schedule]]\nat = \"1s\"\nplr = 0\n"), vec!["step 2", "time order"]),
        (format!("{PIPE}schedule_repeat = \"1s\"\n"), vec!["there is none"]),
        (format!("{PIPE}schedule_repeat = \"1s\"\n[[pipe.schedule]]\nat = \"1s\"\nplr = 0\n"), vec!["longer than the last step"]),
        (format!("{PIPE}\n[[rule]]\npipe = \"wan\"\nprob = 0\n"), vec!["rule 1", "never match"]),
        (format!("{PIPE}\n[[rule]]\npipe = \"wan\"\nset_dscp = \"bogus\"\n"), vec!["rule 1", "set_dscp"]),
        ("seed = -1\n".to_owned() + PIPE, vec!["seed"]),
    ] {
        rejects(&text, &parts);
    }
}

#[test]
fn files_are_read_once_through_the_callers_reader_and_their_errors_name_them() {
    let mut c = parse(&format!(
        "{PIPE}profile = \"p.profile\"\n[pipe.slot]\ndistribution = \"pareto\"\ndelay = \"2ms\"\njitter = \"1ms\"\n"
    ));
    let mut asked = Vec::new();
    load_files(&mut c, |kind, name| {
        asked.push((kind, name.to_owned()));
        Ok(match kind {
            FileKind::Profile => "bw 2Mbit/s\nprob delay\n0 1\n1 3\n".to_owned(),
            _ => "-8192 0 8192\n".to_owned(),
        })
    })
    .expect("load");
    assert_eq!(
        asked,
        vec![
            (FileKind::Distribution, "pareto".to_owned()),
            (FileKind::Profile, "p.profile".to_owned())
        ]
    );
    // The profile's bw is the pipe's bandwidth when it sets none.
    assert_eq!(c.pipes[0].bandwidth_bps, Some(2_000_000));
    assert!(sched::emu::Emulator::<u32>::from_config(&c, 1).is_ok());
    // A profile without any bandwidth, a bad trace: named.
    let mut c = parse(&format!("{PIPE}profile = \"p\"\n"));
    let e = load_files(&mut c, |_, _| Ok("prob delay\n0 1\n1 2\n".into())).expect_err("no bw");
    assert!(e.to_string().contains("needs a bandwidth"), "{e}");
    let mut c = parse(&format!("{PIPE}trace = \"t\"\n"));
    let e = load_files(&mut c, |_, _| Ok("5\n3\n".into())).expect_err("bad trace");
    assert!(
        e.to_string().contains("trace \"t\"") && e.to_string().contains("line 2"),
        "{e}"
    );
}

/// `[[class]]`: tc's defaults, the example's tree, and each mistake named.
#[test]
fn class_trees_parse_with_tcs_defaults_and_bad_ones_are_named() {
    let c = parse(include_str!("../../examples/14-htb-tree.toml"));
    assert_eq!(c.classes.len(), 6);
    let sub2 = &c.classes[2];
    assert_eq!(
        (
            sub2.name.as_str(),
            sub2.parent,
            sub2.rate_bps,
            sub2.ceil_bps
        ),
        ("sub2", Some(0), 30_000_000, 60_000_000)
    );
    // tc's defaults: burst = rate / 10^9 + 1600, quantum = rate / 8 / 10
    // within 1000..=200000, ceil = rate.
    assert_eq!((sub2.burst_bytes, sub2.cburst_bytes), (1600, 1600));
    assert_eq!(sub2.quantum, 200_000);
    assert_eq!(c.classes[4].quantum, 125_000);
    assert_eq!(c.classes[0].ceil_bps, 100_000_000);
    assert_eq!((c.classes[4].prio, c.classes[5].prio), (0, 1));
    // The leaves' flowsets feed the pipe; its scheduler inside leaves: drr.
    assert!(c.flowsets.iter().all(|f| f.pipe == 0 && f.class.is_some()));
    assert_eq!(c.pipes[0].sched, sched::Kind::Drr);
    // Explicit keys.
    let c = parse(&format!(
        "{PIPE}[[class]]\nname = \"r\"\npipe = \"wan\"\nrate = \"10mbit\"\nceil = \"20mbit\"\nburst = \"15k\"\ncburst = 3000\nprio = 3\nquantum = 1514\n[[flowset]]\nname = \"f\"\nclass = \"r\"\n"
    ));
    let r = &c.classes[0];
    assert_eq!(
        (
            r.rate_bps,
            r.ceil_bps,
            r.burst_bytes,
            r.cburst_bytes,
            r.prio,
            r.quantum
        ),
        (10_000_000, 20_000_000, 15_360, 3000, 3, 1514) // "15k": 1024s, as tc
    );
    let root = "[[class]]\nname = \"r\"\npipe = \"wan\"\nrate = \"10mbit\"\n";
    for (text, parts) in [
        (format!("{PIPE}[[class]]\nname = \"a\"\nrate = \"1mbit\"\n"), vec!["class \"a\"", "parent or pipe"]),
        (format!("{PIPE}{root}[[class]]\nname = \"a\"\nparent = \"r\"\npipe = \"wan\"\nrate = \"1mbit\"\n"), vec!["not both"]),
        (format!("{PIPE}[[class]]\nname = \"a\"\nparent = \"r\"\nrate = \"1mbit\"\n{root}"), vec!["parent", "before"]),
        (format!("{PIPE}{root}{root}"), vec!["already the name of class 1"]),
        (format!("{PIPE}[[class]]\nname = \"r\"\npipe = \"wan\"\n"), vec!["rate: missing"]),
        (format!("{PIPE}[[class]]\nname = \"r\"\npipe = \"wan\"\nrate = \"unlimited\"\n"), vec!["finite rate"]),
        (format!("{PIPE}[[class]]\nname = \"r\"\npipe = \"wan\"\nrate = \"10mbit\"\nceil = \"5mbit\"\n"), vec!["ceil", "below the rate"]),
        (format!("{PIPE}[[class]]\nname = \"r\"\npipe = \"wan\"\nrate = \"10mbit\"\nprio = 8\n"), vec!["prio"]),
        (format!("{PIPE}{root}[[flowset]]\nname = \"f\"\nclass = \"nope\"\n"), vec!["class \"nope\" is not defined"]),
        (format!("{PIPE}{root}[[flowset]]\nname = \"f\"\nclass = \"r\"\npipe = \"wan\"\n"), vec!["not both"]),
        (format!("{PIPE}{root}[[class]]\nname = \"a\"\nparent = \"r\"\nrate = \"1mbit\"\n[[flowset]]\nname = \"f\"\nclass = \"r\"\n"), vec!["flowset \"f\"", "has children"]),
        (format!("{PIPE}{root}[[flowset]]\nname = \"f\"\npipe = \"wan\"\n"), vec!["shaped by classes"]),
        (format!("{PIPE}{root}[[flowset]]\nname = \"f\"\nclass = \"r\"\n[[rule]]\npipe = \"wan\"\n"), vec!["names pipe \"wan\"", "leaf classes"]),
        (format!("[[pipe]]\nname = \"wan\"\nsched = \"wf2q\"\n{root}[[flowset]]\nname = \"f\"\nclass = \"r\"\n"), vec!["sched", "drr"]),
        (format!("[[pipe]]\nname = \"wan\"\nmask = \"src-ip\"\n{root}[[flowset]]\nname = \"f\"\nclass = \"r\"\n"), vec!["mask", "classes"]),
    ] {
        rejects(&text, &parts);
    }
    // Eight levels of classes are accepted, nine are not.
    let mut deep = format!("{PIPE}{root}");
    for i in 1..8 {
        let parent = if i == 1 {
            "r".to_owned()
        } else {
            format!("c{}", i - 1)
        };
        deep.push_str(&format!(
            "[[class]]\nname = \"c{i}\"\nparent = \"{parent}\"\nrate = \"1mbit\"\n"
        ));
    }
    parse(&deep);
    deep.push_str("[[class]]\nname = \"c8\"\nparent = \"c7\"\nrate = \"1mbit\"\n");
    rejects(&deep, &["levels deep"]);
}

/// A flowset's `rate`: each flow's own limit, refused where the scheduler
/// cannot hold a flow back.
#[test]
fn per_flow_rates_parse_and_need_a_paceable_scheduler() {
    let c = parse(
        "[[pipe]]\nname = \"wan\"\nsched = \"drr\"\n[[flowset]]\nname = \"f\"\npipe = \"wan\"\nmask = \"5-tuple\"\nrate = \"10Mbit/s\"\n",
    );
    assert_eq!(c.flowsets[0].rate_bps, Some(10_000_000));
    let c = parse(&format!(
        "{PIPE}[[flowset]]\nname = \"f\"\npipe = \"wan\"\nrate = \"unlimited\"\n"
    ));
    assert_eq!(c.flowsets[0].rate_bps, None);
    for sched in ["fifo", "fq_codel"] {
        rejects(
            &format!("[[pipe]]\nname = \"wan\"\nsched = \"{sched}\"\n[[flowset]]\nname = \"f\"\npipe = \"wan\"\nrate = \"1Mbit/s\"\n"),
            &["flowset \"f\"", "rate", sched],
        );
    }
}
