//! `[[class]]`: HTB classes shaping a pipe's link (see
//! [`crate::algo::htb`]), and the checks that tie flowsets, rules and
//! pipes to them.
//!
//! ```toml
//! [[class]]
//! name = "uplink"        # a root: names its pipe
//! pipe = "wan"
//! rate = "100mbit"       # ceil defaults to the rate
//!
//! [[class]]
//! name = "sub1"
//! parent = "uplink"      # listed after its parent
//! rate = "20mbit"
//! ceil = "100mbit"
//! prio = 0               # 0 first; burst, cburst, quantum: tc's defaults
//!
//! [[flowset]]
//! name = "sub1-flows"
//! class = "sub1"         # a leaf class, instead of pipe =
//! mask = { src_ip = "255.255.255.255" }
//! ```

use std::collections::HashMap;

use toml::{Spanned, Value};

use super::error::ConfigFileError;
use super::model::*;
use super::raw::*;
use super::validate::Cx;
use super::values::*;
use crate::algo::htb::{default_burst, default_quantum, PRIOS};
use crate::Kind;

/// A class's rate: a rate string or bit/s, never "unlimited".
fn class_rate(key: &str, v: &Value) -> Result<u64, Msg> {
    bandwidth(key, v)?.ok_or_else(|| {
        format!("{key}: a class needs a finite rate (its parent, or the pipe, may be unlimited)")
    })
}

impl Cx<'_> {
    /// The `[[class]]` tables: each names its pipe (a root) or a parent
    /// listed before it.
    pub(super) fn classes(
        &self,
        raw: &[Spanned<RawClass>],
        pipe_names: &HashMap<String, usize>,
    ) -> Result<(Vec<ClassSpec>, HashMap<String, usize>), ConfigFileError> {
        let mut out: Vec<ClassSpec> = Vec::with_capacity(raw.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            let c = r.get_ref();
            let name = self.name("class", i, &c.name, r.span())?;
            let o = format!("class {name:?}");
            let o = o.as_str();
            if let Some(&first) = names.get(&name) {
                return Err(self.err(
                    o,
                    c.name.as_ref().map(Spanned::span),
                    format!(
                        "name: {name:?} is already the name of class {} (class names must be unique)",
                        first + 1
                    ),
                ));
            }
            let parent = self.opt(o, &c.parent, |v| {
                reference("parent", v, &names).map_err(|m| {
                    format!("{m} before this class (list a parent before its children)")
                })
            })?;
            let pipe = self.opt(o, &c.pipe, |v| reference("pipe", v, pipe_names))?;
            let pipe = match (parent, pipe) {
                (Some(p), None) => out[p].pipe,
                (None, Some(pipe)) => pipe,
                (Some(_), Some(_)) => {
                    return Err(self.err(
                        o,
                        c.pipe.as_ref().map(Spanned::span),
                        "pipe: a class with a parent shapes its parent's pipe (give parent or pipe, not both)"
                            .to_owned(),
                    ))
                }
                (None, None) => {
                    return Err(self.err(
                        o,
                        Some(r.span()),
                        "parent or pipe: missing (a root class names the pipe whose link it shapes)"
                            .to_owned(),
                    ))
                }
            };
            let Some(rate_bps) = self.opt(o, &c.rate, |v| class_rate("rate", v))? else {
                return Err(self.err(
                    o,
                    Some(r.span()),
                    "rate: missing (every class has a guaranteed rate)".to_owned(),
                ));
            };
            let ceil_bps = self
                .opt(o, &c.ceil, |v| class_rate("ceil", v))?
                .unwrap_or(rate_bps);
            if ceil_bps < rate_bps {
                return Err(self.err(
                    o,
                    c.ceil.as_ref().map(Spanned::span),
                    format!(
                        "ceil: {} is below the rate, {} (a class borrows up to its ceil)",
                        crate::units::format_rate(ceil_bps),
                        crate::units::format_rate(rate_bps)
                    ),
                ));
            }
            let burst_bytes = self
                .opt(o, &c.burst, |v| bytes("burst", v, 1, u64::from(u32::MAX)))?
                .map_or(default_burst(rate_bps), |b| b as u32);
            let cburst_bytes = self
                .opt(o, &c.cburst, |v| bytes("cburst", v, 1, u64::from(u32::MAX)))?
                .map_or(default_burst(ceil_bps), |b| b as u32);
            let prio = self
                .opt(o, &c.prio, |v| int("prio", v, 0, PRIOS as u64 - 1))?
                .unwrap_or(0) as u8;
            let quantum = self
                .opt(o, &c.quantum, |v| {
                    bytes("quantum", v, 1, u64::from(u32::MAX))
                })?
                .map_or(default_quantum(rate_bps), |q| q as u32);
            if let Some(p) = parent {
                // Depth: a parent at depth d; at most 7 levels above a leaf.
                let mut d = 0;
                let mut at = Some(p);
                while let Some(a) = at {
                    d += 1;
                    at = out[a].parent;
                }
                if d >= crate::algo::htb::LEVELS {
                    return Err(self.err(
                        o,
                        c.parent.as_ref().map(Spanned::span),
                        format!(
                            "parent: this class would be {} levels deep; a tree has at most {} (as tc's HTB)",
                            d + 1,
                            crate::algo::htb::LEVELS
                        ),
                    ));
                }
            }
            names.insert(name.clone(), i);
            out.push(ClassSpec {
                name,
                pipe,
                parent,
                rate_bps,
                ceil_bps,
                burst_bytes,
                cburst_bytes,
                prio,
                quantum,
            });
        }
        Ok((out, names))
    }

    /// After flowsets, rules and chains are known: flowsets go to leaf
    /// classes, and a pipe with classes takes packets only through them,
    /// with a scheduler and options a tree supports.
    pub(super) fn check_classes(
        &self,
        raw: &RawConfig,
        pipes: &mut [PipeSpec],
        flowsets: &[FlowsetSpec],
        classes: &[ClassSpec],
    ) -> Result<(), ConfigFileError> {
        let is_parent: Vec<bool> = (0..classes.len())
            .map(|i| classes.iter().any(|c| c.parent == Some(i)))
            .collect();
        for (fi, f) in flowsets.iter().enumerate() {
            let o = format!("flowset {:?}", f.name);
            let span = raw
                .flowset
                .get(fi)
                .and_then(|r| r.get_ref().class.as_ref().map(Spanned::span));
            match f.class {
                Some(c) if is_parent[c] => {
                    return Err(self.err(
                        &o,
                        span,
                        format!(
                            "class: {:?} has children; flowsets feed leaf classes (as tc's HTB: packets go to leaves)",
                            classes[c].name
                        ),
                    ))
                }
                None if classes.iter().any(|c| c.pipe == f.pipe) => {
                    let what = if f.name.starts_with("pipe:") {
                        format!(
                            "a rule, [default] or a next names pipe {:?}, whose link is shaped by classes: name a flowset of one of its leaf classes instead",
                            pipes[f.pipe].name
                        )
                    } else {
                        format!(
                            "pipe {:?} is shaped by classes: a flowset on it names its leaf class (class = \"...\") instead of the pipe",
                            pipes[f.pipe].name
                        )
                    };
                    return Err(self.err(&o, None, what));
                }
                _ => {}
            }
        }
        for (pi, p) in pipes.iter_mut().enumerate() {
            if !classes.iter().any(|c| c.pipe == pi) {
                continue;
            }
            let o = format!("pipe {:?}", p.name);
            let rp = raw.pipe.get(pi).map(Spanned::get_ref);
            if rp.is_some_and(|r| r.sched.is_none()) {
                // The scheduler inside each leaf class: DRR by default.
                p.sched = Kind::Drr;
            }
            if !matches!(p.sched, Kind::Drr | Kind::Qfq | Kind::FqCodel | Kind::Prio) {
                return Err(self.err(
                    &o,
                    rp.and_then(|r| r.sched.as_ref().map(Spanned::span)),
                    format!(
                        "sched: with classes, the scheduler inside each leaf is drr (the default), qfq, fq_codel or prio, not {} (a flowset without a mask is one FIFO queue under any of them)",
                        p.sched.name()
                    ),
                ));
            }
            if p.mask.is_some() {
                return Err(self.err(
                    &o,
                    rp.and_then(|r| r.mask.as_ref().map(Spanned::span)),
                    "mask: a pipe shaped by classes cannot have per-flow instances yet (give each subscriber a class, or a flowset mask)"
                        .to_owned(),
                ));
            }
            if p.overflow == crate::OverflowPolicy::DropLongest {
                return Err(self.err(
                    &o,
                    rp.and_then(|r| r.overflow.as_ref().map(Spanned::span)),
                    "overflow: a pipe shaped by classes drops at the tail".to_owned(),
                ));
            }
        }
        Ok(())
    }
}
