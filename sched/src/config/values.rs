//! The value parsers: each returns the whole message after the object's
//! name on error.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use toml::Value;

use super::model::*;
use crate::classify::{prefix_mask, FlowMask};
use crate::units::{self, UnitError};
use crate::wire::ip_protocol;
use crate::{Kind, SchedConfig};

/// A field's message, before the object is named.
pub(super) type Msg = String;

// ---------------------------------------------------------------------------
// Field parsers: each returns the whole message after the object's name.

/// `dir = "a-to-b" | "b-to-a" | "both"`.
pub(super) fn dir(v: &Value) -> Result<Dir, Msg> {
    match v {
        Value::String(s) => match s.as_str() {
            "a-to-b" => Ok(Dir::AToB),
            "b-to-a" => Ok(Dir::BToA),
            "both" => Ok(Dir::Both),
            _ => Err(format!(
                "dir = {s:?} is not a direction (allowed: \"a-to-b\", \"b-to-a\", \"both\")"
            )),
        },
        _ => Err(wrong_type("dir", "\"a-to-b\", \"b-to-a\" or \"both\"", v)),
    }
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

pub(super) fn wrong_type(key: &str, expected: &str, v: &Value) -> Msg {
    format!("{key}: expected {expected}, found {}", describe(v))
}

pub(super) fn out_of_range(key: &str, shown: impl fmt::Display, min: u64, max: u64) -> Msg {
    format!("{key} = {shown} is out of range (allowed {min}..={max})")
}

pub(super) fn unit_error(key: &str, e: UnitError) -> Msg {
    format!("{key}: {e}")
}

/// An integer in `min..=max`.
pub(super) fn int(key: &str, v: &Value, min: u64, max: u64) -> Result<u64, Msg> {
    match v {
        Value::Integer(i) => u64::try_from(*i)
            .ok()
            .filter(|x| (min..=max).contains(x))
            .ok_or_else(|| out_of_range(key, i, min, max)),
        _ => Err(wrong_type(key, "an integer", v)),
    }
}

/// A count `1..=max` that fits a `u32`.
pub(super) fn count(key: &str, v: &Value, max: u32) -> Result<u32, Msg> {
    let n = int(key, v, 1, u64::from(max))?;
    u32::try_from(n).map_err(|_| out_of_range(key, n, 1, u64::from(max)))
}

pub(super) fn name(v: &Value) -> Result<String, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type("name", "a string", v));
    };
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(s.clone())
    } else {
        Err(format!(
            "name: {s:?} is not a valid name (use 1..={MAX_NAME_LEN} letters, digits, '_', '-' or '.')"
        ))
    }
}

/// A name that must be in `names`.
pub(super) fn reference(
    key: &str,
    v: &Value,
    names: &HashMap<String, usize>,
) -> Result<usize, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type(key, "a name", v));
    };
    names
        .get(s)
        .copied()
        .ok_or_else(|| format!("{key} {s:?} is not defined"))
}

pub(super) fn bandwidth(key: &str, v: &Value) -> Result<Option<u64>, Msg> {
    match v {
        Value::String(s) if s.trim().eq_ignore_ascii_case("unlimited") => Ok(None),
        Value::String(s) => match units::parse_rate(s) {
            Ok(r) => Ok(Some(r)),
            Err(e @ UnitError::Zero { .. }) => Err(format!(
                "{}; write \"unlimited\" for no limit",
                unit_error(key, e)
            )),
            Err(e) => Err(unit_error(key, e)),
        },
        Value::Integer(_) => int(key, v, 1, i64::MAX as u64).map(Some),
        _ => Err(wrong_type(
            key,
            "a rate such as \"100Mbit/s\", or \"unlimited\"",
            v,
        )),
    }
}

/// A duration in ns, at most `max` ns: a string with a unit, or an integer of milliseconds.
pub(super) fn duration(key: &str, v: &Value, max: u64) -> Result<u64, Msg> {
    let ns = match v {
        Value::String(s) => units::parse_duration(s).map_err(|e| unit_error(key, e))?,
        Value::Integer(i) => {
            let ms = u64::try_from(*i)
                .map_err(|_| format!("{key} = {i} is out of range (durations are not negative)"))?;
            ms.checked_mul(1_000_000)
                .ok_or_else(|| format!("{key} = {i} (milliseconds) is too large"))?
        }
        _ => return Err(wrong_type(key, "a duration such as \"20ms\"", v)),
    };
    if ns > max {
        return Err(format!(
            "{key} = {} is out of range (allowed 0..={})",
            show(v),
            units::format_duration(max)
        ));
    }
    Ok(ns)
}

/// A value as written: strings quoted.
pub(super) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

pub(super) fn probability(key: &str, v: &Value) -> Result<f64, Msg> {
    let x = match v {
        Value::Float(f) => *f,
        Value::Integer(i) => *i as f64,
        _ => return Err(wrong_type(key, "a number 0..=1", v)),
    };
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!(
            "{key} = {} is out of range (allowed 0..=1)",
            show(v)
        ))
    }
}

/// Parses a queue limit as written on a command line: packets if all digits
/// ("100"), bytes with a unit ("64KB"); `what` names it in the error.
pub fn parse_queue(what: &str, s: &str) -> Result<QueueSpec, String> {
    queue(what, &Value::String(s.to_string()))
}

/// A queue limit: packets if an integer (or a string of digits), bytes if it has a unit.
pub(super) fn queue(key: &str, v: &Value) -> Result<QueueSpec, Msg> {
    let max_packets = u64::from(SchedConfig::MAX_PACKETS);
    let packets = |n: u64, shown: &dyn fmt::Display| -> Result<QueueSpec, Msg> {
        if (1..=max_packets).contains(&n) {
            Ok(QueueSpec::Packets(n as u32))
        } else {
            Err(format!(
                "{key} = {shown} is out of range (allowed 1..={max_packets} packets, or bytes with a unit such as \"64KB\")"
            ))
        }
    };
    match v {
        Value::Integer(i) => packets(u64::try_from(*i).unwrap_or(0), i),
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return packets(t.parse().unwrap_or(u64::MAX), &format!("{s:?}"));
            }
            let b = units::parse_size(s).map_err(|e| unit_error(key, e))?;
            if (MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES).contains(&b) {
                Ok(QueueSpec::Bytes(b))
            } else {
                Err(format!(
                    "{key} = {s:?} ({b} bytes) is out of range (allowed {MIN_QUEUE_BYTES}..={MAX_QUEUE_BYTES} bytes)"
                ))
            }
        }
        _ => Err(wrong_type(
            key,
            "a number of packets, or a size such as \"64KB\"",
            v,
        )),
    }
}

/// Bytes in `min..=max`: an integer, or a size with a unit.
pub(super) fn bytes(key: &str, v: &Value, min: u64, max: u64) -> Result<u64, Msg> {
    match v {
        Value::Integer(_) => int(key, v, min, max),
        Value::String(s) => {
            let b = units::parse_size(s).map_err(|e| unit_error(key, e))?;
            if (min..=max).contains(&b) {
                Ok(b)
            } else {
                Err(format!(
                    "{key} = {s:?} ({b} bytes) is out of range (allowed {min}..={max})"
                ))
            }
        }
        _ => Err(wrong_type(
            key,
            "a number of bytes, or a size such as \"1514B\"",
            v,
        )),
    }
}

pub(super) fn sched(v: &Value) -> Result<Kind, Msg> {
    match v {
        Value::String(s) => s.parse::<Kind>().map_err(|e| format!("sched: {e}")),
        _ => Err(wrong_type(
            "sched",
            "one of \"fifo\", \"prio\", \"drr\", \"wf2q\", \"qfq\", \"fq_codel\"",
            v,
        )),
    }
}

/// `aqm = "none" | "codel" | "red" | "gred" | "pie"`.
pub(super) fn aqm_kind(v: &Value) -> Result<&'static str, Msg> {
    const KINDS: &str = "\"none\", \"codel\", \"red\", \"gred\" or \"pie\"";
    match v {
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "none" => Ok("none"),
            "codel" => Ok("codel"),
            "red" => Ok("red"),
            "gred" => Ok("gred"),
            "pie" => Ok("pie"),
            other => Err(format!(
                "aqm: unknown queue management {other:?} (expected {KINDS})"
            )),
        },
        _ => Err(wrong_type("aqm", KINDS, v)),
    }
}

/// A real number (integers accepted).
pub(super) fn number(key: &str, v: &Value) -> Result<f64, Msg> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Integer(i) => Ok(*i as f64),
        _ => Err(wrong_type(key, "a number", v)),
    }
}

/// A RED threshold: packets (an integer or digits), or bytes with a unit
/// ("15KB"). Returns (value, in bytes).
pub(super) fn threshold(key: &str, v: &Value) -> Result<(u32, bool), Msg> {
    let (n, bytes) = match v {
        Value::Integer(_) => (int(key, v, 0, u64::from(u32::MAX))?, false),
        Value::String(s)
            if s.trim().chars().all(|c| c.is_ascii_digit()) && !s.trim().is_empty() =>
        {
            (
                parse_uint(s.trim()).ok_or_else(|| out_of_range(key, s, 0, u64::from(u32::MAX)))?,
                false,
            )
        }
        Value::String(s) => (units::parse_size(s).map_err(|e| unit_error(key, e))?, true),
        _ => {
            return Err(wrong_type(
                key,
                "packets (an integer) or bytes with a unit (\"15KB\")",
                v,
            ))
        }
    };
    let n = u32::try_from(n).map_err(|_| out_of_range(key, n, 0, u64::from(u32::MAX)))?;
    Ok((n, bytes))
}

/// A RED threshold: (value, in bytes).
pub(super) type Threshold = (u32, bool);

/// dummynet's `red|gred w_q/min_th/max_th/max_p`, e.g. "0.002/10/30/0.1"
/// (thresholds in packets, or bytes with a unit: "0.002/15KB/45KB/0.1").
pub(super) fn red_shorthand(key: &str, v: &Value) -> Result<(f64, Threshold, Threshold, f64), Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type(
            key,
            "\"w_q/min_th/max_th/max_p\" such as \"0.002/10/30/0.1\"",
            v,
        ));
    };
    let parts: Vec<&str> = s.split('/').map(str::trim).collect();
    let [w_q, min_th, max_th, max_p] = parts[..] else {
        return Err(format!(
            "{key} = {s:?}: expected four values w_q/min_th/max_th/max_p, such as \"0.002/10/30/0.1\""
        ));
    };
    let real = |name: &str, x: &str| {
        x.parse::<f64>()
            .map_err(|_| format!("{key} = {s:?}: {name} {x:?} is not a number"))
    };
    let th =
        |name: &str, x: &str| threshold(&format!("{key} {name}"), &Value::String(x.to_owned()));
    Ok((
        real("w_q", w_q)?,
        th("min_th", min_th)?,
        th("max_th", max_th)?,
        real("max_p", max_p)?,
    ))
}

/// `overflow = "tail" | "longest"`.
pub(super) fn overflow(v: &Value) -> Result<crate::OverflowPolicy, Msg> {
    match v {
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "tail" => Ok(crate::OverflowPolicy::TailDrop),
            "longest" => Ok(crate::OverflowPolicy::DropLongest),
            other => Err(format!(
                "overflow: unknown policy {other:?} (expected \"tail\" or \"longest\")"
            )),
        },
        _ => Err(wrong_type("overflow", "\"tail\" or \"longest\"", v)),
    }
}

/// `distribution = "uniform" | "normal" | "pareto" | "paretonormal" |
/// "experimental" | a path to a `.dist` file`.
pub(super) fn distribution(v: &Value) -> Result<Distribution, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type(
            "distribution",
            "\"uniform\", \"normal\", \"pareto\", \"paretonormal\" or a .dist file",
            v,
        ));
    };
    match s.as_str() {
        "uniform" => Ok(Distribution::Uniform),
        "normal" | "pareto" | "paretonormal" | "experimental" => Ok(Distribution::Table {
            name: s.clone(),
            table: None,
        }),
        f if f.ends_with(".dist") => Ok(Distribution::Table {
            name: s.clone(),
            table: None,
        }),
        other => Err(format!(
            "distribution = {other:?}: expected \"uniform\", \"normal\", \"pareto\", \"paretonormal\", \"experimental\" or a path ending in .dist"
        )),
    }
}

/// A boolean.
pub(super) fn boolean(key: &str, v: &Value) -> Result<bool, Msg> {
    match v {
        Value::Boolean(b) => Ok(*b),
        _ => Err(wrong_type(key, "true or false", v)),
    }
}

/// An IPv4 mask in the mapped space: the upper 96 bits are kept.
pub(super) fn v4_mask(m: u32) -> u128 {
    (u128::MAX << 32) | u128::from(m)
}

pub(super) fn mask(key: &str, v: &Value) -> Result<FlowMask, Msg> {
    match v {
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(FlowMask::NONE),
            "5-tuple" | "5tuple" | "five-tuple" => Ok(FlowMask::FIVE_TUPLE),
            "all" => Ok(FlowMask::ALL),
            "src-ip" | "src-host" => Ok(FlowMask {
                src: u128::MAX,
                ..FlowMask::NONE
            }),
            "dst-ip" | "dst-host" => Ok(FlowMask {
                dst: u128::MAX,
                ..FlowMask::NONE
            }),
            _ => Err(format!(
                "{key}: {s:?} is not a mask (expected \"none\", \"5-tuple\", \"src-ip\", \"dst-ip\", \"all\", or a table such as {{ src_ip = \"0.0.0.255\" }})"
            )),
        },
        Value::Table(t) => {
            let mut m = FlowMask::NONE;
            for (k, x) in t {
                let key = format!("{key}.{k}");
                match k.as_str() {
                    "src_ip" => m.src = ip_mask(&key, x)?,
                    "dst_ip" => m.dst = ip_mask(&key, x)?,
                    "src_port" => m.src_port = field_mask(&key, x, 0xffff)? as u16,
                    "dst_port" => m.dst_port = field_mask(&key, x, 0xffff)? as u16,
                    "proto" => m.proto = field_mask(&key, x, 0xff)? as u8,
                    "dscp" => m.dscp = field_mask(&key, x, 0x3f)? as u8,
                    "vlan" => m.vlan = field_mask(&key, x, 0x0fff)? as u16,
                    _ => {
                        return Err(format!(
                            "{key}: unknown mask field (allowed: src_ip, dst_ip, src_port, dst_port, proto, dscp, vlan)"
                        ))
                    }
                }
            }
            Ok(m)
        }
        _ => Err(wrong_type(key, "\"none\", \"5-tuple\" or a table of masks", v)),
    }
}

/// A mask of a field at most `max` (all ones): integer, "0x.." or decimal string, or a boolean.
pub(super) fn field_mask(key: &str, v: &Value, max: u64) -> Result<u64, Msg> {
    let range = || format!("allowed 0..={max} or {max:#x}, or true for all bits");
    let n = match v {
        Value::Boolean(true) => return Ok(max),
        Value::Boolean(false) => return Ok(0),
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::String(s) => parse_uint(s),
        _ => return Err(wrong_type(key, "an integer mask or true", v)),
    };
    match n {
        Some(n) if n <= max => Ok(n),
        Some(_) => Err(format!("{key} = {} is out of range ({})", show(v), range())),
        None => Err(format!("{key}: {} is not a mask ({})", show(v), range())),
    }
}

/// A decimal or `0x` hexadecimal unsigned integer.
pub(super) fn parse_uint(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()
        }
        Some(_) => None,
        None if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse().ok(),
        None => None,
    }
}

pub(super) fn ip_mask(key: &str, v: &Value) -> Result<u128, Msg> {
    let bad = || {
        format!(
            "{key}: {} is not an address mask (expected e.g. \"0.0.0.255\", \"0x000000ff\", \"/24\", \"ffff:ffff::\" or true)",
            show(v)
        )
    };
    match v {
        Value::Boolean(true) => Ok(u128::MAX),
        Value::Boolean(false) => Ok(0),
        Value::Integer(i) => u32::try_from(*i).map(v4_mask).map_err(|_| {
            format!(
                "{key} = {i} is out of range (an integer is an IPv4 mask, 0..=0xffffffff; write an IPv6 mask as a string)"
            )
        }),
        Value::String(s) => {
            let t = s.trim();
            if let Some(len) = t.strip_prefix('/') {
                return match len.parse::<u8>() {
                    Ok(n) if n <= 32 => Ok(v4_mask((prefix_mask(n + 96) & 0xffff_ffff) as u32)),
                    Ok(n) if n <= 128 => Ok(prefix_mask(n)),
                    _ => Err(format!(
                        "{key}: {s:?} is not a prefix length (allowed /0../32 for IPv4, /33../128 for IPv6)"
                    )),
                };
            }
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                if h.is_empty() || h.len() > 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                let n = u128::from_str_radix(h, 16).map_err(|_| bad())?;
                return Ok(if h.len() <= 8 {
                    v4_mask(n as u32)
                } else {
                    n
                });
            }
            match t.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => Ok(v4_mask(u32::from(a))),
                Ok(IpAddr::V6(a)) => Ok(u128::from(a)),
                Err(_) => Err(bad()),
            }
        }
        _ => Err(wrong_type(key, "an address mask", v)),
    }
}

pub(super) fn prefix(key: &str, v: &Value) -> Result<Option<Prefix>, Msg> {
    let Value::String(s) = v else {
        return Err(wrong_type(
            key,
            "an address or prefix such as \"10.0.0.0/8\"",
            v,
        ));
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "{key}: {s:?} is not an address or prefix (expected e.g. \"10.0.0.0/8\", \"192.168.1.1\" or \"2001:db8::/32\")"
        )
    };
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t, None),
    };
    let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
    let (full, offset) = match addr {
        IpAddr::V4(_) => (32u8, 96u8),
        IpAddr::V6(_) => (128, 0),
    };
    let len = match len {
        None => full,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(n) if n <= full => n,
            _ => {
                return Err(format!(
                    "{key}: {s:?} has prefix length {l:?} (allowed 0..={full} for {})",
                    if full == 32 { "IPv4" } else { "IPv6" }
                ))
            }
        },
    };
    let p = Prefix {
        addr: addr_u128(addr),
        len: len + offset,
    };
    let net = p.addr & p.mask();
    if net != p.addr {
        let shown = match addr {
            IpAddr::V4(_) => Ipv4Addr::from(net as u32).to_string(),
            IpAddr::V6(_) => Ipv6Addr::from(net).to_string(),
        };
        return Err(format!(
            "{key}: {s:?} has host bits set (did you mean \"{shown}/{len}\"?)"
        ));
    }
    Ok(Some(p))
}

/// Protocols whose headers carry ports.
pub(super) const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

pub(super) fn proto_name(p: u8) -> String {
    ip_protocol::name(p).map_or_else(|| p.to_string(), str::to_owned)
}

pub(super) fn proto(key: &str, v: &Value) -> Result<u8, Msg> {
    match v {
        Value::Integer(_) => int(key, v, 0, 255).map(|p| p as u8),
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            if let Some(n) = ip_protocol::by_name(&t) {
                return Ok(n);
            }
            match parse_uint(&t) {
                Some(n) if n <= 255 => Ok(n as u8),
                _ => Err(format!(
                    "{key}: {s:?} is not a protocol (expected tcp, udp, icmp, icmpv6, sctp, gre, esp, ah, dccp, udplite, or a number 0..=255)"
                )),
            }
        }
        _ => Err(wrong_type(key, "a protocol name or number", v)),
    }
}

pub(super) fn ports(key: &str, v: &Value) -> Result<(u16, u16), Msg> {
    let port = |t: &str| -> Option<u16> {
        let t = t.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    match v {
        Value::Integer(_) => int(key, v, 0, 65535).map(|p| (p as u16, p as u16)),
        Value::String(s) => {
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (port(a), port(b)),
                None => (port(s), port(s)),
            };
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
                (Some(lo), Some(hi)) => Err(format!(
                    "{key}: {s:?} is an empty range (low end {lo} > high end {hi})"
                )),
                _ => Err(format!(
                    "{key}: {s:?} is not a port or range (expected e.g. 443 or \"1024-65535\", ports 0..=65535)"
                )),
            }
        }
        _ => Err(wrong_type(
            key,
            "a port or a range such as \"1024-65535\"",
            v,
        )),
    }
}

pub(super) fn dscp(key: &str, v: &Value) -> Result<u8, Msg> {
    match v {
        Value::Integer(_) => int(key, v, 0, 63).map(|d| d as u8),
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            let named = match t.as_str() {
                "ef" => Some(46),
                "va" | "voice-admit" => Some(44),
                "be" | "df" | "default" => Some(0),
                "le" | "lowest-effort" => Some(1),
                _ => dscp_class(&t),
            };
            if let Some(d) = named {
                return Ok(d);
            }
            match parse_uint(&t) {
                Some(n) if n <= 63 => Ok(n as u8),
                Some(_) => Err(format!("{key} = {s:?} is out of range (allowed 0..=63)")),
                None => Err(format!(
                    "{key}: {s:?} is not a DSCP (expected ef, af11..af43, cs0..cs7, be, le, va, or a number 0..=63)"
                )),
            }
        }
        _ => Err(wrong_type(key, "a DSCP name or number", v)),
    }
}

/// `afXY` (X 1..=4, Y 1..=3) = 8X + 2Y; `csX` (X 0..=7) = 8X.
pub(super) fn dscp_class(t: &str) -> Option<u8> {
    let d = |c: u8| c.wrapping_sub(b'0');
    match t.as_bytes() {
        [b'a', b'f', x, y] if (1..=4).contains(&d(*x)) && (1..=3).contains(&d(*y)) => {
            Some(8 * d(*x) + 2 * d(*y))
        }
        [b'c', b's', x] if d(*x) <= 7 => Some(8 * d(*x)),
        _ => None,
    }
}
