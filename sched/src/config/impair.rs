//! A pipe's impairment keys beyond loss, jitter and reordering: netem's
//! `duplicate`, `corrupt` and `slot`, dummynet's `profile`, a Mahimahi
//! `trace` (with `trace_log`), and `[[pipe.schedule]]` steps.

use std::sync::Arc;

use toml::{Spanned, Value};

use super::error::ConfigFileError;
use super::model::*;
use super::raw::*;
use super::validate::Cx;
use super::values::*;
use crate::emu::schedule::{ScheduleSpec, Step};

/// A file path (relative to the configuration's folder).
fn path(key: &str, v: &Value) -> Result<String, Msg> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(wrong_type(key, "a file path", v)),
    }
}

impl Cx<'_> {
    /// `P` and `P_correlation`: netem's `duplicate`/`corrupt P [CORR]`.
    fn chance(
        &self,
        o: &str,
        key: &str,
        p: &Field,
        corr: &Field,
    ) -> Result<Option<ChanceSpec>, ConfigFileError> {
        let probability_ = self.opt(o, p, |v| probability(key, v))?;
        let ckey = format!("{key}_correlation");
        let correlation = self.opt(o, corr, |v| probability(&ckey, v))?;
        match probability_.filter(|&x| x > 0.0) {
            Some(probability) => Ok(Some(ChanceSpec {
                probability,
                correlation: correlation.unwrap_or(0.0),
            })),
            None => match corr {
                Some(c) => Err(self.err(
                    o,
                    Some(c.span()),
                    format!("{ckey} shapes {key}: it needs {key} = P (above 0)"),
                )),
                None => Ok(None),
            },
        }
    }

    /// `[pipe.slot]`: `min` [`max`] or `distribution`, `delay`, `jitter`;
    /// `packets`, `bytes`.
    fn slot(&self, o: &str, s: &Spanned<RawSlot>) -> Result<SlotSpec, ConfigFileError> {
        let r = s.get_ref();
        let max_gap = crate::emu::jitter::MAX_JITTER_NS;
        let min = self.opt(o, &r.min, |v| duration("slot.min", v, max_gap))?;
        let max = self.opt(o, &r.max, |v| duration("slot.max", v, max_gap))?;
        let dist = self.opt(o, &r.distribution, distribution)?;
        let delay = self.opt(o, &r.delay, |v| duration("slot.delay", v, max_gap))?;
        let jitter = self.opt(o, &r.jitter, |v| duration("slot.jitter", v, max_gap))?;
        let packets = self.opt(o, &r.packets, |v| count("slot.packets", v, u32::MAX))?;
        let bytes = self.opt(o, &r.bytes, |v| {
            bytes("slot.bytes", v, 1, u64::from(u32::MAX))
        })?;
        let delay = match (min, dist) {
            (Some(min_ns), None) => {
                if let Some(f) = r.delay.as_ref().or(r.jitter.as_ref()) {
                    return Err(self.err(
                        o,
                        Some(f.span()),
                        "slot: delay and jitter go with a distribution; with min/max the gaps are uniform".to_owned(),
                    ));
                }
                let max_ns = max.unwrap_or(min_ns);
                if max_ns < min_ns {
                    return Err(self.err(
                        o,
                        r.max.as_ref().map(Spanned::span),
                        "slot: max is below min".to_owned(),
                    ));
                }
                if max_ns == 0 {
                    return Err(self.err(
                        o,
                        Some(s.span()),
                        "slot: gaps of 0 would be no slots at all (give min above 0)".to_owned(),
                    ));
                }
                SlotDelaySpec::Uniform { min_ns, max_ns }
            }
            (None, Some(distribution)) => {
                let Some(delay_ns) = delay else {
                    return Err(self.err(
                        o,
                        Some(s.span()),
                        "slot: a distribution needs delay (the mean gap) and jitter".to_owned(),
                    ));
                };
                if r.max.is_some() {
                    return Err(self.err(
                        o,
                        r.max.as_ref().map(Spanned::span),
                        "slot: max goes with min (uniform gaps), not with a distribution"
                            .to_owned(),
                    ));
                }
                let distribution = match distribution {
                    Distribution::Uniform => {
                        let j = jitter.unwrap_or(0);
                        return Ok(SlotSpec {
                            delay: SlotDelaySpec::Uniform {
                                min_ns: delay_ns.saturating_sub(j),
                                max_ns: delay_ns + j,
                            },
                            packets: packets.unwrap_or(0),
                            bytes: bytes.unwrap_or(0),
                        });
                    }
                    d => d,
                };
                SlotDelaySpec::Table {
                    delay_ns,
                    jitter_ns: jitter.unwrap_or(0),
                    distribution,
                }
            }
            (Some(_), Some(_)) => {
                return Err(self.err(
                    o,
                    r.distribution.as_ref().map(Spanned::span),
                    "slot: give min [max] (uniform gaps) or a distribution with delay and jitter, not both".to_owned(),
                ))
            }
            (None, None) => {
                return Err(self.err(
                    o,
                    Some(s.span()),
                    "slot: needs min [max] (netem's `slot MIN MAX`) or distribution, delay and jitter".to_owned(),
                ))
            }
        };
        Ok(SlotSpec {
            delay,
            packets: packets.unwrap_or(0),
            bytes: bytes.unwrap_or(0),
        })
    }

    /// `[[pipe.schedule]]` and `schedule_repeat`.
    fn schedule(
        &self,
        o: &str,
        p: &RawPipe,
        spec: &PipeSpec,
    ) -> Result<Option<Arc<ScheduleSpec>>, ConfigFileError> {
        let repeat = self.opt(o, &p.schedule_repeat, |v| {
            duration("schedule_repeat", v, MAX_DELAY_NS)
        })?;
        let Some(raw) = &p.schedule else {
            if let Some(r) = &p.schedule_repeat {
                return Err(self.err(
                    o,
                    Some(r.span()),
                    "schedule_repeat repeats a [[pipe.schedule]]: there is none".to_owned(),
                ));
            }
            return Ok(None);
        };
        let mut steps = Vec::with_capacity(raw.len());
        for (i, st) in raw.iter().enumerate() {
            let r = st.get_ref();
            let so = format!("{o}, schedule step {}", i + 1);
            let so = so.as_str();
            let at_ns = self
                .opt(so, &r.at, |v| duration("at", v, MAX_DELAY_NS))?
                .ok_or_else(|| {
                    self.err(
                        so,
                        Some(st.span()),
                        "at: missing (the instant from the pipe's start)".to_owned(),
                    )
                })?;
            if let Some(prev) = steps.last().map(|s: &Step| s.at_ns) {
                if at_ns <= prev {
                    return Err(self.err(
                        so,
                        r.at.as_ref().map(Spanned::span),
                        "at: the steps go in time order, each after the one before".to_owned(),
                    ));
                }
            }
            let bandwidth_bps = self
                .opt(so, &r.bandwidth, |v| bandwidth("bandwidth", v))?
                .map(|b| b.unwrap_or(0));
            let delay_ns = self.opt(so, &r.delay, |v| duration("delay", v, MAX_DELAY_NS))?;
            let plr = self.opt(so, &r.plr, |v| probability("plr", v))?;
            if bandwidth_bps.is_none() && delay_ns.is_none() && plr.is_none() {
                return Err(self.err(
                    so,
                    Some(st.span()),
                    "a step changes bandwidth, delay or plr: it names none".to_owned(),
                ));
            }
            let refuse = |f: &Field, why: &str| match f {
                Some(v) => Err(self.err(so, Some(v.span()), why.to_owned())),
                None => Ok(()),
            };
            if spec.trace.is_some() {
                refuse(&r.bandwidth, "bandwidth: this pipe's link is a trace")?;
            }
            if !matches!(spec.loss, LossModel::None | LossModel::Uniform { .. }) {
                refuse(
                    &r.plr,
                    "plr: this pipe's loss is a Markov model; a schedule changes uniform loss only",
                )?;
            }
            steps.push(Step {
                at_ns,
                bandwidth_bps,
                delay_ns,
                plr,
            });
        }
        if steps.is_empty() {
            return Ok(None);
        }
        if repeat.is_some_and(|r| r < 1_000_000) {
            return Err(self.err(
                o,
                p.schedule_repeat.as_ref().map(Spanned::span),
                "schedule_repeat: at least 1ms (a schedule is a change over time, not a modulation)".to_owned(),
            ));
        }
        if let (Some(r), Some(last)) = (repeat, steps.last()) {
            if r <= last.at_ns {
                return Err(self.err(
                    o,
                    p.schedule_repeat.as_ref().map(Spanned::span),
                    "schedule_repeat: the period must be longer than the last step's at".to_owned(),
                ));
            }
        }
        Ok(Some(Arc::new(ScheduleSpec {
            steps,
            repeat_ns: repeat,
        })))
    }

    /// The keys of this module on pipe `o`, into `spec` (after its rate,
    /// delay, loss and jitter).
    pub(super) fn impairments(
        &self,
        o: &str,
        p: &RawPipe,
        spec: &mut PipeSpec,
    ) -> Result<(), ConfigFileError> {
        spec.duplicate = self.chance(o, "duplicate", &p.duplicate, &p.duplicate_correlation)?;
        spec.corrupt = self.chance(o, "corrupt", &p.corrupt, &p.corrupt_correlation)?;
        spec.slot = p.slot.as_ref().map(|s| self.slot(o, s)).transpose()?;
        spec.profile = self
            .opt(o, &p.profile, |v| path("profile", v))?
            .map(|file| ProfileSpec {
                file,
                profile: None,
            });
        let trace = self.opt(o, &p.trace, |v| path("trace", v))?;
        let log = self.opt(o, &p.trace_log, |v| path("trace_log", v))?;
        spec.trace = match (trace, log) {
            (Some(file), log) => {
                for (k, f) in [("bandwidth", &p.bandwidth), ("profile", &p.profile)] {
                    if let Some(v) = f {
                        return Err(self.err(
                            o,
                            Some(v.span()),
                            format!("{k}: this pipe's link is a trace (its opportunities are the bandwidth)"),
                        ));
                    }
                }
                if log.is_some() && p.mask.is_some() {
                    return Err(self.err(
                        o,
                        p.trace_log.as_ref().map(Spanned::span),
                        "trace_log: one log per pipe; a dynamic pipe (mask) has an instance per key"
                            .to_owned(),
                    ));
                }
                Some(TraceSpec {
                    file,
                    trace: None,
                    log,
                })
            }
            (None, Some(_)) => {
                return Err(self.err(
                    o,
                    p.trace_log.as_ref().map(Spanned::span),
                    "trace_log is the packet log of a trace: it needs trace = \"FILE\"".to_owned(),
                ))
            }
            (None, None) => None,
        };
        spec.schedule = self.schedule(o, p, spec)?;
        Ok(())
    }
}
