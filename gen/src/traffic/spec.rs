//! What to send: flow specifications from the command line
//! (`dport=10001,rate=100M,size=1500,dscp=46,start=10s,duration=60s`) or from
//! a TOML scenario, validated once into [`Flow`]s.
//!
//! Sizes are Ethernet frame lengths **without** the 4-byte FCS, i.e. the
//! bytes the port carries (`ip -s link` counts the same), from 60 (a
//! minimum-size frame; "64-byte frames" in RFC 2544 terms) to the UMEM frame
//! size. Rates count those bytes: `rate=100M,size=1500` sends 8333.3 frames/s.

use sched::units::{parse_duration, parse_rate, parse_size, UnitError};
use serde::Deserialize;

/// Smallest frame: 14 Ethernet + 20 IPv4 + 8 UDP + 18 stamp bytes.
pub const MIN_SIZE: u32 = 60;
/// Flow ids are 16 bits in the stamp.
pub const MAX_FLOWS: usize = 65536;
/// Default UDP destination port of the first flow (then +1 per flow).
pub const BASE_DPORT: u16 = 10001;
/// Default UDP source port.
pub const SPORT: u16 = 9;

/// One validated flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Shown in reports ("f0", or the name given).
    pub name: String,
    /// UDP destination port.
    pub dport: u16,
    /// UDP source port.
    pub sport: u16,
    /// Frame bit rate (frame bytes × 8 per second); `None`: as fast as the port takes.
    pub rate_bps: Option<u64>,
    /// Frame length without FCS.
    pub size: u32,
    /// DSCP (0..=63), written into the IPv4 TOS byte.
    pub dscp: u8,
    /// Start, ns after the run starts.
    pub start_ns: u64,
    /// How long it sends; `None`: until the run ends.
    pub duration_ns: Option<u64>,
    /// Weight for the share-vs-weight error (default 1).
    pub weight: f64,
    /// Frames to send at most (`None`: no limit).
    pub count: Option<u64>,
}

impl Flow {
    /// A flow with the defaults: 1500-byte frames at 10 Mbit/s from the run's start.
    pub fn new(index: usize) -> Flow {
        Flow {
            name: format!("f{index}"),
            dport: BASE_DPORT.wrapping_add(index as u16),
            sport: SPORT,
            rate_bps: Some(10_000_000),
            size: 1500,
            dscp: 0,
            start_ns: 0,
            duration_ns: None,
            weight: 1.0,
            count: None,
        }
    }

    /// Nanoseconds between two frames, as an exact fraction `(num, den)`:
    /// frame k leaves at `start + k * num / den`. `None` when unpaced.
    pub fn gap(&self) -> Option<(u128, u128)> {
        self.rate_bps
            .map(|r| (self.size as u128 * 8 * 1_000_000_000, r as u128))
    }

    /// When the flow stops, ns after the run starts (`None`: with the run).
    pub fn end_ns(&self) -> Option<u64> {
        self.duration_ns.map(|d| self.start_ns.saturating_add(d))
    }
}

/// A bad flow specification or scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// `key=value` expected.
    #[error("flow {flow}: {item:?} is not key=value (keys: name, dport, sport, rate, size, dscp, start, duration, count, weight)")]
    NotKeyValue {
        /// Flow index.
        flow: usize,
        /// The item.
        item: String,
    },
    /// Unknown key.
    #[error("flow {flow}: unknown key {key:?} (keys: name, dport, sport, rate, size, dscp, start, duration, count, weight)")]
    UnknownKey {
        /// Flow index.
        flow: usize,
        /// The key.
        key: String,
    },
    /// A value out of range or unparsable.
    #[error("flow {flow}: {key} = {value:?}: {why}")]
    Value {
        /// Flow index.
        flow: usize,
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        why: String,
    },
    /// A unit error.
    #[error("flow {flow}: {key}: {source}")]
    Unit {
        /// Flow index.
        flow: usize,
        /// The key.
        key: &'static str,
        /// The parser's error.
        source: UnitError,
    },
    /// Too many or no flows.
    #[error("{0}")]
    Flows(String),
    /// The scenario file.
    #[error("scenario: {0}")]
    Toml(String),
}

fn value_err(flow: usize, key: &'static str, value: &str, why: impl Into<String>) -> SpecError {
    SpecError::Value {
        flow,
        key,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Applies one `key=value` to `f` (shared by the command line and TOML).
fn set(f: &mut Flow, index: usize, key: &str, value: &str, max_size: u32) -> Result<(), SpecError> {
    let unit = |key: &'static str| {
        move |source| SpecError::Unit {
            flow: index,
            key,
            source,
        }
    };
    match key {
        "name" => {
            if value.is_empty() || value.len() > 64 {
                return Err(value_err(index, "name", value, "1 to 64 characters"));
            }
            f.name = value.to_string();
        }
        "dport" | "sport" => {
            let k: &'static str = if key == "dport" { "dport" } else { "sport" };
            let p: u16 = value
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| value_err(index, k, value, "a UDP port, 1..=65535"))?;
            if k == "dport" {
                f.dport = p;
            } else {
                f.sport = p;
            }
        }
        "rate" => {
            f.rate_bps = if value == "max" || value == "unlimited" {
                None
            } else {
                Some(parse_rate(value).map_err(unit("rate"))?)
            };
        }
        "size" => {
            let s = parse_size(value).map_err(unit("size"))?;
            if s < MIN_SIZE as u64 || s > max_size as u64 {
                return Err(value_err(
                    index,
                    "size",
                    value,
                    format!("frame bytes without FCS, {MIN_SIZE}..={max_size} (the frame size)"),
                ));
            }
            f.size = s as u32;
        }
        "dscp" => {
            f.dscp = value
                .parse()
                .ok()
                .filter(|&d: &u8| d < 64)
                .ok_or_else(|| value_err(index, "dscp", value, "0..=63 (EF is 46)"))?;
        }
        "start" => f.start_ns = parse_duration(value).map_err(unit("start"))?,
        "duration" => {
            let d = parse_duration(value).map_err(unit("duration"))?;
            if d == 0 {
                return Err(value_err(index, "duration", value, "more than 0"));
            }
            f.duration_ns = Some(d);
        }
        "count" => {
            f.count =
                Some(
                    value.parse().ok().filter(|&c: &u64| c > 0).ok_or_else(|| {
                        value_err(index, "count", value, "a number of frames > 0")
                    })?,
                );
        }
        "weight" => {
            f.weight = value
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w > 0.0)
                .ok_or_else(|| value_err(index, "weight", value, "a number > 0"))?;
        }
        other => {
            return Err(SpecError::UnknownKey {
                flow: index,
                key: other.to_string(),
            })
        }
    }
    Ok(())
}

/// Parses one `--flow` specification (flow number `index`).
pub fn parse_flow(spec: &str, index: usize, max_size: u32) -> Result<Flow, SpecError> {
    let mut f = Flow::new(index);
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| SpecError::NotKeyValue {
            flow: index,
            item: item.to_string(),
        })?;
        set(&mut f, index, k.trim(), v.trim(), max_size)?;
    }
    Ok(f)
}

/// `n` identical flows from one specification (dports counting up from its dport).
pub fn replicate(spec: &str, n: usize, max_size: u32) -> Result<Vec<Flow>, SpecError> {
    if n == 0 || n > MAX_FLOWS {
        return Err(SpecError::Flows(format!(
            "--flows {n}: between 1 and {MAX_FLOWS}"
        )));
    }
    let first = parse_flow(spec, 0, max_size)?;
    Ok((0..n)
        .map(|i| Flow {
            name: if n == 1 {
                first.name.clone()
            } else {
                format!("{}.{i}", first.name)
            },
            dport: first.dport.wrapping_add(i as u16).max(1),
            ..first.clone()
        })
        .collect())
}

/// A TOML scenario: `duration`, `interval` and `[[flow]]` tables with the
/// same keys as `--flow` (values as strings or numbers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Whole run (default: until the last flow ends).
    pub duration: Option<String>,
    /// Report interval (default 100ms).
    pub interval: Option<String>,
    /// Free text shown in reports.
    pub description: Option<String>,
    /// The flows.
    #[serde(default)]
    pub flow: Vec<toml::Table>,
}

/// A scenario turned into flows.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The flows.
    pub flows: Vec<Flow>,
    /// Run duration, if given.
    pub duration_ns: Option<u64>,
    /// Interval, if given.
    pub interval_ns: Option<u64>,
    /// Description, if given.
    pub description: Option<String>,
}

/// Parses a scenario file's text.
pub fn parse_scenario(text: &str, max_size: u32) -> Result<Parsed, SpecError> {
    let sc: Scenario = toml::from_str(text).map_err(|e| SpecError::Toml(e.to_string()))?;
    let mut flows = Vec::with_capacity(sc.flow.len());
    for (i, t) in sc.flow.iter().enumerate() {
        let mut f = Flow::new(i);
        for (k, v) in t {
            let s = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                other => {
                    return Err(value_err(
                        i,
                        "value",
                        &other.to_string(),
                        format!("{k}: a string or a number"),
                    ))
                }
            };
            set(&mut f, i, k, &s, max_size)?;
        }
        flows.push(f);
    }
    check(&flows)?;
    let dur = |what: &'static str, s: &Option<String>| -> Result<Option<u64>, SpecError> {
        s.as_deref()
            .map(|v| parse_duration(v).map_err(|e| SpecError::Toml(format!("{what}: {e}"))))
            .transpose()
    };
    Ok(Parsed {
        flows,
        duration_ns: dur("duration", &sc.duration)?,
        interval_ns: dur("interval", &sc.interval)?,
        description: sc.description,
    })
}

/// Whole-set checks: count, distinct names and ports.
pub fn check(flows: &[Flow]) -> Result<(), SpecError> {
    if flows.is_empty() {
        return Err(SpecError::Flows(
            "no flows: give --flow SPEC (repeatable), --flows N or --scenario FILE".into(),
        ));
    }
    if flows.len() > MAX_FLOWS {
        return Err(SpecError::Flows(format!(
            "{} flows: at most {MAX_FLOWS}",
            flows.len()
        )));
    }
    let mut seen = std::collections::HashMap::new();
    for (i, f) in flows.iter().enumerate() {
        if let Some(j) = seen.insert((f.sport, f.dport, f.dscp), i) {
            return Err(SpecError::Flows(format!(
                "flows {j} and {i} have the same ports and DSCP (sport {}, dport {}): a scheduler could not tell them apart",
                f.sport, f.dport
            )));
        }
    }
    Ok(())
}

/// The run's length: `given`, else until the last flow ends. `None` when a
/// flow has no end and no run duration was given.
pub fn run_length(flows: &[Flow], given: Option<u64>) -> Option<u64> {
    given.or_else(|| {
        flows
            .iter()
            .map(Flow::end_ns)
            .try_fold(0u64, |m, e| e.map(|e| m.max(e)))
    })
}

/// The classic lab scenario (four flows at 100/60/30/10 Mbit/s starting at
/// 0/10/20/30 s for 60 s each), as shipped in `gen/examples/lab.toml`.
pub const LAB_SCENARIO: &str = include_str!("../../examples/lab.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_flow_spec() {
        let f = parse_flow(
            "dport=10001,rate=100M,size=1500,dscp=46,start=10s,duration=60s,name=voice,weight=2.5",
            0,
            2048,
        )
        .expect("valid");
        assert_eq!(f.dport, 10001);
        assert_eq!(f.rate_bps, Some(100_000_000));
        assert_eq!((f.size, f.dscp, f.weight), (1500, 46, 2.5));
        assert_eq!(f.start_ns, 10_000_000_000);
        assert_eq!(f.end_ns(), Some(70_000_000_000));
        assert_eq!(f.name, "voice");
        // 1500 B at 100 Mbit/s = 120 µs apart, exactly.
        let (n, d) = f.gap().expect("paced");
        assert_eq!(n / d, 120_000);
        assert_eq!(n % d, 0);
    }

    #[test]
    fn bad_specs_name_the_key_and_the_range() {
        let err = |s: &str| parse_flow(s, 3, 2048).expect_err(s).to_string();
        assert!(err("size=59").contains("size"), "{}", err("size=59"));
        assert!(err("size=59").contains("60..=2048"));
        assert!(err("size=4000").contains("60..=2048"));
        assert!(err("dscp=64").contains("0..=63"));
        assert!(err("dport=0").contains("1..=65535"));
        assert!(err("rate=fast").contains("rate"));
        assert!(err("color=red").contains("unknown key \"color\""));
        assert!(err("rate").contains("not key=value"));
        assert!(err("weight=-1").contains("> 0"));
        assert!(err("duration=0s").contains("more than 0"));
        assert!(err("size=59").starts_with("flow 3"));
    }

    #[test]
    fn unpaced_flows() {
        let f = parse_flow("rate=max,size=60", 0, 2048).expect("valid");
        assert_eq!(f.rate_bps, None);
        assert_eq!(f.gap(), None);
    }

    #[test]
    fn replicated_flows_count_their_ports_up() {
        let v = replicate("dport=20000,rate=1M", 4, 2048).expect("valid");
        assert_eq!(
            v.iter().map(|f| f.dport).collect::<Vec<_>>(),
            vec![20000, 20001, 20002, 20003]
        );
        assert!(replicate("", 0, 2048).is_err());
        assert!(replicate("", MAX_FLOWS + 1, 2048).is_err());
        check(&v).expect("distinct");
    }

    #[test]
    fn clashing_flows_are_refused() {
        let a = parse_flow("dport=5000", 0, 2048).expect("valid");
        let b = parse_flow("dport=5000,rate=1M", 1, 2048).expect("valid");
        let e = check(&[a, b]).expect_err("same ports").to_string();
        assert!(e.contains("flows 0 and 1"), "{e}");
    }

    #[test]
    fn the_lab_scenario_parses() {
        let p = parse_scenario(LAB_SCENARIO, 2048).expect("valid");
        let rates: Vec<_> = p.flows.iter().map(|f| f.rate_bps).collect();
        assert_eq!(
            rates,
            [100, 60, 30, 10].map(|m| Some(m * 1_000_000)).to_vec()
        );
        let starts: Vec<_> = p.flows.iter().map(|f| f.start_ns / 1_000_000_000).collect();
        assert_eq!(starts, vec![0, 10, 20, 30]);
        assert_eq!(run_length(&p.flows, p.duration_ns), Some(90_000_000_000));
    }

    #[test]
    fn scenario_errors() {
        assert!(parse_scenario("[[flow]]\nsize = 10\n", 2048)
            .expect_err("small")
            .to_string()
            .contains("size"));
        assert!(parse_scenario("bogus = 1\n", 2048).is_err());
        assert!(parse_scenario("", 2048)
            .expect_err("empty")
            .to_string()
            .contains("no flows"));
    }

    #[test]
    fn open_ended_flows_need_a_run_length() {
        let f = vec![Flow::new(0)];
        assert_eq!(run_length(&f, None), None);
        assert_eq!(run_length(&f, Some(5)), Some(5));
    }
}
