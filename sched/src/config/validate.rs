//! From the raw file to the model: every object validated at once, errors
//! naming the object, the field and the value, with line and column.

use std::collections::HashMap;
use std::ops::Range;

use toml::{Spanned, Value};

use super::error::{ConfigFileError, Location};
use super::model::*;
use super::raw::*;
use super::values::*;
use crate::algo::aqm::{Aqm, CodelParams, PieParams, RedParams};
use crate::{Kind, Lmax, OverflowPolicy, Priority, Quantum, SchedConfig, Weight};

/// The queue management keys of a pipe or flowset, as written.
struct AqmKeys<'a> {
    aqm: &'a Field,
    target: &'a Field,
    interval: &'a Field,
    ecn: &'a Field,
    ce_threshold: &'a Field,
    red: &'a Field,
    gred: &'a Field,
    w_q: &'a Field,
    min_th: &'a Field,
    max_th: &'a Field,
    max_p: &'a Field,
    tupdate: &'a Field,
    max_burst: &'a Field,
    alpha: &'a Field,
    beta: &'a Field,
    dq_rate_estimator: &'a Field,
}

macro_rules! aqm_keys {
    ($r:expr) => {
        AqmKeys {
            aqm: &$r.aqm,
            target: &$r.target,
            interval: &$r.interval,
            ecn: &$r.ecn,
            ce_threshold: &$r.ce_threshold,
            red: &$r.red,
            gred: &$r.gred,
            w_q: &$r.w_q,
            min_th: &$r.min_th,
            max_th: &$r.max_th,
            max_p: &$r.max_p,
            tupdate: &$r.tupdate,
            max_burst: &$r.max_burst,
            alpha: &$r.alpha,
            beta: &$r.beta,
            dq_rate_estimator: &$r.dq_rate_estimator,
        }
    };
}

impl AqmKeys<'_> {
    /// (key, field) of every parameter key.
    fn params(&self) -> [(&'static str, &Field); 15] {
        [
            ("target", self.target),
            ("interval", self.interval),
            ("ecn", self.ecn),
            ("ce_threshold", self.ce_threshold),
            ("red", self.red),
            ("gred", self.gred),
            ("w_q", self.w_q),
            ("min_th", self.min_th),
            ("max_th", self.max_th),
            ("max_p", self.max_p),
            ("tupdate", self.tupdate),
            ("max_burst", self.max_burst),
            ("alpha", self.alpha),
            ("beta", self.beta),
            ("dq_rate_estimator", self.dq_rate_estimator),
        ]
    }
}

/// The keys each queue management takes.
fn aqm_allows(kind: &str) -> &'static [&'static str] {
    match kind {
        "codel" => &["target", "interval", "ecn", "ce_threshold"],
        "red" | "gred" => &["red", "gred", "w_q", "min_th", "max_th", "max_p", "ecn"],
        "pie" => &[
            "target",
            "tupdate",
            "max_burst",
            "alpha",
            "beta",
            "ecn",
            "dq_rate_estimator",
        ],
        _ => &[],
    }
}

// ---------------------------------------------------------------------------
// Validation.

/// `text.parse::<Config>()` is [`from_toml`].
impl std::str::FromStr for Config {
    type Err = ConfigFileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        from_toml(s)
    }
}

/// Reads and validates a configuration. See the [module documentation](crate::config)
/// for the format.
pub fn from_toml(text: &str) -> Result<Config, ConfigFileError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let mut message = e.message().trim_end().to_owned();
        if message.ends_with("expected a sequence") {
            message.push_str(
                " (pipes, flowsets and rules are lists: write [[pipe]], [[flowset]], [[rule]])",
            );
        }
        ConfigFileError::Toml {
            at: e.span().map(|s| locate(text, s.start)),
            message,
        }
    })?;
    Cx { text }.config(raw)
}

/// The 1-based line and character column of byte `offset` in `text`.
fn locate(text: &str, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

pub(super) struct Cx<'a> {
    text: &'a str,
}

impl Cx<'_> {
    pub(super) fn err(
        &self,
        object: &str,
        span: Option<Range<usize>>,
        message: Msg,
    ) -> ConfigFileError {
        ConfigFileError::Invalid {
            at: span.map(|s| locate(self.text, s.start)),
            object: object.to_owned(),
            message,
        }
    }

    /// Parses an optional field with `f`, naming `object` on error.
    pub(super) fn opt<T>(
        &self,
        object: &str,
        field: &Field,
        f: impl FnOnce(&Value) -> Result<T, Msg>,
    ) -> Result<Option<T>, ConfigFileError> {
        match field {
            None => Ok(None),
            Some(v) => f(v.get_ref())
                .map(Some)
                .map_err(|m| self.err(object, Some(v.span()), m)),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigFileError> {
        if raw.pipe.is_empty() {
            return Err(self.err(
                "config",
                None,
                "no [[pipe]] is defined (at least one is needed)".to_owned(),
            ));
        }
        let mut pipes: Vec<PipeSpec> = Vec::with_capacity(raw.pipe.len());
        let mut pipe_names: HashMap<String, usize> = HashMap::new();
        for (i, p) in raw.pipe.iter().enumerate() {
            let spec = self.pipe(i, p)?;
            if let Some(&first) = pipe_names.get(&spec.name) {
                return Err(self.err(
                    &format!("pipe {:?}", spec.name),
                    p.get_ref().name.as_ref().map(Spanned::span),
                    format!(
                        "name: {:?} is already the name of pipe {} (pipe names must be unique)",
                        spec.name,
                        first + 1
                    ),
                ));
            }
            pipe_names.insert(spec.name.clone(), i);
            pipes.push(spec);
        }

        let (classes, class_names) = self.classes(&raw.class, &pipe_names)?;
        let mut flowsets: Vec<FlowsetSpec> = Vec::with_capacity(raw.flowset.len());
        let mut flowset_names: HashMap<String, usize> = HashMap::new();
        for (i, f) in raw.flowset.iter().enumerate() {
            let spec = self.flowset(i, f, &pipe_names, &classes, &class_names)?;
            if let Some(&first) = flowset_names.get(&spec.name) {
                return Err(self.err(
                    &format!("flowset {:?}", spec.name),
                    f.get_ref().name.as_ref().map(Spanned::span),
                    format!(
                        "name: {:?} is already the name of flowset {} (flowset names must be unique)",
                        spec.name,
                        first + 1
                    ),
                ));
            }
            flowset_names.insert(spec.name.clone(), i);
            flowsets.push(spec);
        }

        let mut targets = Targets {
            pipe_names: &pipe_names,
            flowset_names: &flowset_names,
            pipes: &pipes,
            implicit: HashMap::new(),
            flowsets,
        };
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, r) in raw.rule.iter().enumerate() {
            let object = format!("rule {}", i + 1);
            let rr = r.get_ref();
            let flowset = self.target(&object, r.span(), &rr.flowset, &rr.pipe, &mut targets)?;
            let matcher = match &rr.matcher {
                None => Match::ANY,
                Some(m) => self.matcher(&object, m)?,
            };
            let dir = self.opt(&object, &rr.dir, dir)?.unwrap_or_default();
            let prob = self.opt(&object, &rr.prob, |v| probability("prob", v))?;
            if prob == Some(0.0) {
                return Err(self.err(
                    &object,
                    rr.prob.as_ref().map(Spanned::span),
                    "prob = 0: the rule would never match (give 0 < prob <= 1, or remove the rule)"
                        .to_owned(),
                ));
            }
            let set_dscp = self.opt(&object, &rr.set_dscp, |v| dscp("set_dscp", v))?;
            rules.push(RuleSpec {
                matcher,
                flowset,
                dir,
                prob: prob.filter(|&p| p < 1.0),
                set_dscp,
            });
        }
        let (default, default_dir) = match &raw.default {
            None => (DefaultAction::Pass, Dir::default()),
            Some(d) => (
                self.default(d, &mut targets)?,
                self.opt("default", &d.get_ref().dir, dir)?
                    .unwrap_or_default(),
            ),
        };
        // Chains: resolved once every flowset is known (a `next` pipe's
        // implicit flowset may be created here), then checked for loops.
        let mut nexts = vec![None; pipes.len()];
        for (i, p) in raw.pipe.iter().enumerate() {
            if let Some(n) = &p.get_ref().next {
                let o = format!("pipe {:?}", pipes[i].name);
                nexts[i] = Some(self.next(&o, n, &mut targets)?);
            }
        }
        let flowsets = targets.flowsets;
        for (p, n) in pipes.iter_mut().zip(nexts) {
            p.next = n;
        }
        for (i, p) in raw.pipe.iter().enumerate() {
            let mut path = vec![i];
            let mut at = i;
            while let Some(f) = pipes[at].next {
                at = flowsets[f].pipe;
                path.push(at);
                if at == i {
                    let names: Vec<&str> = path.iter().map(|&k| pipes[k].name.as_str()).collect();
                    return Err(self.err(
                        &format!("pipe {:?}", pipes[i].name),
                        p.get_ref().next.as_ref().map(Spanned::span),
                        format!(
                            "next: the chain {} leads back to {:?} (chained pipes may not form a cycle)",
                            names.join(" -> "),
                            pipes[i].name
                        ),
                    ));
                }
                if path.len() > pipes.len() {
                    // A loop that does not pass through pipe i: reported from its own pipe.
                    break;
                }
            }
        }
        self.check_classes(&raw, &mut pipes, &flowsets, &classes)?;
        for (fi, f) in flowsets.iter().enumerate() {
            if f.rate_bps.is_some() && matches!(pipes[f.pipe].sched, Kind::Fifo | Kind::FqCodel) {
                return Err(self.err(
                    &format!("flowset {:?}", f.name),
                    raw.flowset
                        .get(fi)
                        .and_then(|r| r.get_ref().rate.as_ref().map(Spanned::span)),
                    format!(
                        "rate: per-flow rates need a scheduler that can hold a backlogged flow back; pipe {:?} has {} (use drr, qfq, wf2q or prio)",
                        pipes[f.pipe].name,
                        pipes[f.pipe].sched.name()
                    ),
                ));
            }
        }
        let seed = self.opt("the configuration", &raw.seed, |v| {
            int("seed", v, 0, i64::MAX as u64)
        })?;
        Ok(Config {
            pipes,
            flowsets,
            rules,
            default,
            default_dir,
            seed,
            classes,
        })
    }

    /// A pipe's `next`: a pipe name (its implicit flowset) or `{ flowset = "name" }`.
    fn next(
        &self,
        o: &str,
        v: &Spanned<Value>,
        t: &mut Targets<'_>,
    ) -> Result<usize, ConfigFileError> {
        let err = |m: Msg| self.err(o, Some(v.span()), m);
        match v.get_ref() {
            Value::String(_) => {
                let p = reference("next", v.get_ref(), t.pipe_names).map_err(err)?;
                Ok(t.implicit(p))
            }
            Value::Table(tab) => {
                let unknown: Vec<&String> = tab.keys().filter(|k| *k != "flowset").collect();
                if let Some(k) = unknown.first() {
                    return Err(err(format!(
                        "next.{k}: unknown key (write next = \"pipe\" or next = {{ flowset = \"name\" }})"
                    )));
                }
                match tab.get("flowset") {
                    Some(f) => reference("next.flowset", f, t.flowset_names).map_err(err),
                    None => Err(err("next: a table needs flowset = \"name\"".to_owned())),
                }
            }
            other => Err(err(wrong_type(
                "next",
                "a pipe name or { flowset = \"name\" }",
                other,
            ))),
        }
    }

    pub(super) fn name(
        &self,
        kind: &str,
        i: usize,
        field: &Field,
        span: Range<usize>,
    ) -> Result<String, ConfigFileError> {
        let object = format!("{kind} {}", i + 1);
        match self.opt(&object, field, name)? {
            Some(n) => Ok(n),
            None => Err(self.err(
                &object,
                Some(span),
                format!("name: missing (every {kind} needs a name)"),
            )),
        }
    }

    fn pipe(&self, i: usize, raw: &Spanned<RawPipe>) -> Result<PipeSpec, ConfigFileError> {
        let p = raw.get_ref();
        let name = self.name("pipe", i, &p.name, raw.span())?;
        let o = format!("pipe {name:?}");
        let o = o.as_str();
        let mut spec = PipeSpec::new(name);
        if let Some(bw) = self.opt(o, &p.bandwidth, |v| bandwidth("bandwidth", v))? {
            spec.bandwidth_bps = bw;
        }
        if let Some(d) = self.opt(o, &p.delay, |v| duration("delay", v, MAX_DELAY_NS))? {
            spec.delay_ns = d;
        }
        let plr = self.opt(o, &p.plr, |v| probability("plr", v))?;
        if let Some(fs) = &p.loss_4state {
            if p.plr.is_some() || p.gilbert_elliott.is_some() {
                return Err(self.err(
                    o,
                    Some(fs.span()),
                    "loss_4state, plr and gilbert_elliott are three loss models: give one of them"
                        .to_owned(),
                ));
            }
        }
        spec.loss = match (plr, &p.gilbert_elliott) {
            (None, None) if p.loss_4state.is_some() => {
                self.four_state(o, p.loss_4state.as_ref())?
            }
            (Some(_), Some(ge)) => {
                return Err(self.err(
                    o,
                    Some(ge.span()),
                    "plr and gilbert_elliott are two loss models: give one of them".to_owned(),
                ))
            }
            (None, None) => LossModel::None,
            (Some(plr), None) => {
                if plr == 0.0 {
                    LossModel::None
                } else {
                    LossModel::Uniform { plr }
                }
            }
            (None, Some(ge)) => self.gilbert_elliott(o, ge)?,
        };
        if let Some(q) = self.opt(o, &p.queue, |v| queue("queue", v))? {
            spec.queue = q;
        }
        if let Some(b) = self.opt(o, &p.overhead, |v| {
            bytes("overhead", v, 0, u64::from(MAX_OVERHEAD_BYTES))
        })? {
            // In range by the check above.
            spec.overhead_bytes = u32::try_from(b).unwrap_or(MAX_OVERHEAD_BYTES);
        }
        if let Some(k) = self.opt(o, &p.sched, sched)? {
            spec.sched = k;
        }
        if spec.sched == Kind::FqCodel {
            let d = PipeSpec::fq_codel("");
            (spec.aqm, spec.limit, spec.overflow) = (d.aqm, d.limit, d.overflow);
            if p.queue.is_none() {
                spec.queue = d.queue;
            }
        }
        if let Some(a) = self.aqm(o, &aqm_keys!(p), raw.span())? {
            spec.aqm = a;
        }
        if let Some(n) = self.opt(o, &p.limit, |v| {
            count("limit", v, crate::emu::MAX_PIPE_PACKETS)
        })? {
            spec.limit = Some(n);
        }
        if let Some(ov) = self.opt(o, &p.overflow, overflow)? {
            spec.overflow = ov;
        }
        spec.jitter = self.jitter(o, p, raw.span())?;
        let reorder = self.opt(o, &p.reorder, |v| probability("reorder", v))?;
        let rcorr = self.opt(o, &p.reorder_correlation, |v| {
            probability("reorder_correlation", v)
        })?;
        let gap = self.opt(o, &p.reorder_gap, |v| count("reorder_gap", v, u32::MAX))?;
        spec.reorder = match reorder.filter(|&r| r > 0.0) {
            Some(probability) => {
                if spec.delay_ns == 0 {
                    return Err(self.err(
                        o,
                        p.reorder.as_ref().map(|v| v.span()),
                        "reorder sends some packets ahead of the delayed ones: it needs a delay"
                            .to_owned(),
                    ));
                }
                Some(ReorderSpec {
                    probability,
                    correlation: rcorr.unwrap_or(0.0),
                    gap: gap.unwrap_or(1),
                })
            }
            None => {
                if let Some((k, at)) = [
                    ("reorder_correlation", &p.reorder_correlation),
                    ("reorder_gap", &p.reorder_gap),
                ]
                .into_iter()
                .find_map(|(k, f)| f.as_ref().map(|v| (k, v.span())))
                {
                    return Err(self.err(
                        o,
                        Some(at),
                        format!("{k} shapes reordering: it needs reorder = P (above 0)"),
                    ));
                }
                None
            }
        };
        self.impairments(o, p, &mut spec)?;
        if spec.overflow == OverflowPolicy::DropLongest && spec.sched == Kind::Fifo {
            return Err(self.err(
                o,
                p.overflow.as_ref().map(|v| v.span()),
                "overflow = \"longest\" needs per-flow queues; fifo has one queue (use \"tail\" or another sched)".to_owned(),
            ));
        }
        if let Some(m) = self.opt(o, &p.mask, |v| mask("mask", v))? {
            spec.mask = if m.is_none() { None } else { Some(m) };
        }
        if let Some(n) = self.opt(o, &p.max_instances, |v| {
            count("max_instances", v, SchedConfig::MAX_FLOWS)
        })? {
            spec.max_instances = n;
        }
        if let Some(t) = self.opt(o, &p.idle_timeout, |v| {
            duration("idle_timeout", v, u64::MAX)
        })? {
            spec.idle_timeout_ns = t;
        }
        Ok(spec)
    }

    /// `[pipe.loss_4state]`: netem's `loss state p13 [p31 [p32 [p23 p14]]]`
    /// with tc's defaults (p31 = 1 − p13, p32 = 0, p23 = 1, p14 = 0).
    fn four_state(
        &self,
        o: &str,
        fs: Option<&Spanned<RawFourState>>,
    ) -> Result<LossModel, ConfigFileError> {
        let Some(fs) = fs else {
            return Ok(LossModel::None);
        };
        let g = fs.get_ref();
        let get = |f: &Field, key: &str| {
            self.opt(o, f, |v| probability(&format!("loss_4state.{key}"), v))
        };
        let p13 = get(&g.p13, "p13")?.ok_or_else(|| {
            self.err(
                o,
                Some(fs.span()),
                "loss_4state.p13: missing (the others have tc's defaults)".to_owned(),
            )
        })?;
        let p31 = get(&g.p31, "p31")?.unwrap_or(1.0 - p13);
        let p32 = get(&g.p32, "p32")?.unwrap_or(0.0);
        let p23 = get(&g.p23, "p23")?.unwrap_or(1.0);
        let p14 = get(&g.p14, "p14")?.unwrap_or(0.0);
        for (a, b, what) in [(p13, p14, "p13 + p14"), (p31, p32, "p31 + p32")] {
            if a + b > 1.0 {
                return Err(self.err(
                    o,
                    Some(fs.span()),
                    format!(
                        "loss_4state: {what} = {} is above 1 (they leave one state)",
                        a + b
                    ),
                ));
            }
        }
        Ok(LossModel::FourState {
            p13,
            p31,
            p32,
            p23,
            p14,
        })
    }

    fn gilbert_elliott(
        &self,
        o: &str,
        ge: &Spanned<RawGilbertElliott>,
    ) -> Result<LossModel, ConfigFileError> {
        let g = ge.get_ref();
        let need = |field: &Field, key: &str| -> Result<f64, ConfigFileError> {
            self.opt(o, field, |v| {
                probability(&format!("gilbert_elliott.{key}"), v)
            })?
            .ok_or_else(|| {
                self.err(
                    o,
                    Some(ge.span()),
                    format!("gilbert_elliott.{key}: missing (p and r are required)"),
                )
            })
        };
        let p = need(&g.p, "p")?;
        let r = need(&g.r, "r")?;
        let k = self
            .opt(o, &g.k, |v| probability("gilbert_elliott.k", v))?
            .unwrap_or(1.0);
        let h = self
            .opt(o, &g.h, |v| probability("gilbert_elliott.h", v))?
            .unwrap_or(0.0);
        Ok(LossModel::GilbertElliott { p, r, k, h })
    }

    fn flowset(
        &self,
        i: usize,
        raw: &Spanned<RawFlowset>,
        pipe_names: &HashMap<String, usize>,
        classes: &[ClassSpec],
        class_names: &HashMap<String, usize>,
    ) -> Result<FlowsetSpec, ConfigFileError> {
        let f = raw.get_ref();
        let name = self.name("flowset", i, &f.name, raw.span())?;
        if name.starts_with("pipe:") {
            // Unreachable: ':' is not allowed in names. Kept for clarity.
            return Err(self.err(
                &format!("flowset {name:?}"),
                None,
                "name: \"pipe:\" names are reserved for implicit flowsets".to_owned(),
            ));
        }
        let o = format!("flowset {name:?}");
        let o = o.as_str();
        let class = self.opt(o, &f.class, |v| reference("class", v, class_names))?;
        let pipe = match (
            self.opt(o, &f.pipe, |v| reference("pipe", v, pipe_names))?,
            class,
        ) {
            (Some(p), None) => p,
            (None, Some(c)) => classes[c].pipe,
            (Some(_), Some(_)) => return Err(self.err(
                o,
                f.pipe.as_ref().map(Spanned::span),
                "pipe: a flowset of a class feeds its class's pipe (give class or pipe, not both)"
                    .to_owned(),
            )),
            (None, None) => {
                return Err(self.err(
                    o,
                    Some(raw.span()),
                    "pipe: missing (every flowset feeds a pipe, or a class of one)".to_owned(),
                ))
            }
        };
        let mut spec = FlowsetSpec::new(name, pipe);
        spec.class = class;
        // Each flow's own rate limit (a finite rate; "unlimited" is none).
        spec.rate_bps = self.opt(o, &f.rate, |v| bandwidth("rate", v))?.flatten();
        if let Some(m) = self.opt(o, &f.mask, |v| mask("mask", v))? {
            spec.mask = m;
        }
        if let Some(w) = self.opt(o, &f.weight, |v| {
            let w = int("weight", v, u64::from(Weight::MIN), u64::from(Weight::MAX))?;
            Weight::new(w).map_err(|e| e.to_string())
        })? {
            spec.weight = w;
        }
        if let Some(p) = self.opt(o, &f.priority, |v| {
            let p = int(
                "priority",
                v,
                u64::from(Priority::MIN),
                u64::from(Priority::MAX),
            )?;
            Priority::new(p).map_err(|e| e.to_string())
        })? {
            spec.priority = p;
        }
        spec.quantum = self.opt(o, &f.quantum, |v| {
            let q = bytes(
                "quantum",
                v,
                u64::from(Quantum::MIN),
                u64::from(Quantum::MAX),
            )?;
            Quantum::new(q).map_err(|e| e.to_string())
        })?;
        if let Some(l) = self.opt(o, &f.lmax, |v| {
            let l = bytes("lmax", v, u64::from(Lmax::MIN), u64::from(Lmax::MAX))?;
            Lmax::new(l).map_err(|e| e.to_string())
        })? {
            spec.lmax = l;
        }
        if let Some(q) = self.opt(o, &f.queue, |v| queue("queue", v))? {
            spec.queue = q;
        }
        if let Some(n) = self.opt(o, &f.max_flows, |v| {
            count("max_flows", v, SchedConfig::MAX_FLOWS)
        })? {
            spec.max_flows = n;
        }
        if let Some(t) = self.opt(o, &f.idle_timeout, |v| {
            duration("idle_timeout", v, u64::MAX)
        })? {
            spec.idle_timeout_ns = t;
        }
        spec.aqm = self.aqm(o, &aqm_keys!(f), raw.span())?;
        Ok(spec)
    }

    /// A pipe's jitter keys: `jitter`, and with it `jitter_correlation`,
    /// `distribution`, `reorder_by_jitter`.
    fn jitter(
        &self,
        o: &str,
        p: &RawPipe,
        span: Range<usize>,
    ) -> Result<Option<JitterSpec>, ConfigFileError> {
        let jitter = self.opt(o, &p.jitter, |v| {
            duration("jitter", v, crate::emu::jitter::MAX_JITTER_NS)
        })?;
        let corr = self.opt(o, &p.jitter_correlation, |v| {
            probability("jitter_correlation", v)
        })?;
        let dist = self.opt(o, &p.distribution, distribution)?;
        let reorder = self.opt(o, &p.reorder_by_jitter, |v| boolean("reorder_by_jitter", v))?;
        let Some(jitter_ns) = jitter.filter(|&j| j > 0) else {
            let other = [
                ("jitter_correlation", &p.jitter_correlation),
                ("distribution", &p.distribution),
                ("reorder_by_jitter", &p.reorder_by_jitter),
            ]
            .into_iter()
            .find_map(|(k, f)| f.as_ref().map(|v| (k, v.span())));
            return match other {
                Some((k, at)) => Err(self.err(
                    o,
                    Some(at),
                    format!("{k} shapes the jitter: it needs jitter = \"...\" (above 0)"),
                )),
                None => Ok(None),
            };
        };
        let _ = span;
        Ok(Some(JitterSpec {
            jitter_ns,
            correlation: corr.unwrap_or(0.0),
            distribution: dist.unwrap_or(Distribution::Uniform),
            reorder: reorder.unwrap_or(false),
        }))
    }

    /// The queue management keys: `aqm = "none" | "codel" | "red" | "gred"
    /// | "pie"` and each one's parameters (see the module docs); CoDel's
    /// `target`, `interval`, `ce_threshold` alone imply `aqm = "codel"`,
    /// dummynet's `red = "w_q/min_th/max_th/max_p"` (or `gred = ...`)
    /// implies RED. `None`: no key given.
    fn aqm(
        &self,
        o: &str,
        k: &AqmKeys<'_>,
        span: Range<usize>,
    ) -> Result<Option<Aqm>, ConfigFileError> {
        let named = self.opt(o, k.aqm, aqm_kind)?;
        let shorthand = match (k.red, k.gred) {
            (Some(_), Some(g)) => {
                return Err(self.err(
                    o,
                    Some(g.span()),
                    "red and gred: give one of them".to_owned(),
                ))
            }
            (Some(_), None) => Some("red"),
            (None, Some(_)) => Some("gred"),
            (None, None) => None,
        };
        let given: Vec<(&str, Range<usize>)> = k
            .params()
            .iter()
            .filter_map(|(key, f)| f.as_ref().map(|v| (*key, v.span())))
            .collect();
        let kind = match (named, shorthand) {
            (Some(n), Some(sh)) if n != sh => {
                let at = k.red.as_ref().or(k.gred.as_ref()).map(|v| v.span());
                return Err(self.err(
                    o,
                    at,
                    format!("{sh} = \"...\" is RED's; it needs aqm = \"{sh}\" (or no aqm key), not \"{n}\""),
                ));
            }
            (Some(n), _) => n,
            (None, Some(sh)) => sh,
            (None, None) if given.is_empty() => return Ok(None),
            (None, None) => {
                if given
                    .iter()
                    .all(|(key, _)| aqm_allows("codel").contains(key))
                {
                    "codel"
                } else {
                    let (key, at) = &given[0];
                    return Err(self.err(
                        o,
                        Some(at.clone()),
                        format!("{key}: say which queue management it is for (aqm = \"red\", \"gred\", \"pie\" or \"codel\")"),
                    ));
                }
            }
        };
        let allowed = aqm_allows(kind);
        if let Some((key, at)) = given.iter().find(|(key, _)| !allowed.contains(key)) {
            let msg = if allowed.is_empty() {
                format!("{key} is a queue management parameter, and aqm = \"none\" has none")
            } else {
                format!(
                    "{key} is not a parameter of aqm = \"{kind}\" (its keys: {})",
                    allowed.join(", ")
                )
            };
            return Err(self.err(o, Some(at.clone()), msg));
        }
        let at = given
            .first()
            .map_or_else(|| span.clone(), |(_, s)| s.clone());
        let bad = |e: crate::ConfigError| self.err(o, Some(at.clone()), e.to_string());
        let max = CodelParams::MAX_INTERVAL_NS;
        let ecn = self.opt(o, k.ecn, |v| boolean("ecn", v))?;
        match kind {
            "none" => Ok(Some(Aqm::None)),
            "codel" => {
                let d = CodelParams::default();
                let target = self.opt(o, k.target, |v| duration("target", v, max))?;
                let interval = self.opt(o, k.interval, |v| duration("interval", v, max))?;
                let ce = self.opt(o, k.ce_threshold, |v| duration("ce_threshold", v, max))?;
                CodelParams::new(
                    target.unwrap_or(d.target_ns()),
                    interval.unwrap_or(d.interval_ns()),
                    ecn.unwrap_or(d.ecn()),
                    ce,
                )
                .map(|p| Some(Aqm::Codel(p)))
                .map_err(bad)
            }
            "pie" => {
                let d = PieParams::default();
                let target = self.opt(o, k.target, |v| duration("target", v, max))?;
                let tupdate = self.opt(o, k.tupdate, |v| duration("tupdate", v, max))?;
                let burst = self.opt(o, k.max_burst, |v| duration("max_burst", v, max))?;
                let alpha = self.opt(o, k.alpha, |v| number("alpha", v))?;
                let beta = self.opt(o, k.beta, |v| number("beta", v))?;
                let dq = self.opt(o, k.dq_rate_estimator, |v| boolean("dq_rate_estimator", v))?;
                PieParams::new(
                    target.unwrap_or(d.target_ns()),
                    tupdate.unwrap_or(d.tupdate_ns()),
                    burst.unwrap_or(d.max_burst_ns()),
                    alpha.unwrap_or(d.alpha()),
                    beta.unwrap_or(d.beta()),
                    ecn.unwrap_or(d.ecn()),
                    dq.unwrap_or(d.dq_rate_estimator()),
                )
                .map(|p| Some(Aqm::Pie(p)))
                .map_err(bad)
            }
            _ => {
                // RED / GRED: the shorthand, or the four keys.
                let gentle = kind == "gred";
                let (w_q, min_th, max_th, max_p) = match k.red.as_ref().or(k.gred.as_ref()) {
                    Some(v) => {
                        let key = shorthand.unwrap_or("red");
                        if let Some((other, at)) = given
                            .iter()
                            .find(|(x, _)| ["w_q", "min_th", "max_th", "max_p"].contains(x))
                        {
                            return Err(self.err(
                                o,
                                Some(at.clone()),
                                format!(
                                    "{other}: {key} = \"w_q/min_th/max_th/max_p\" already gives it"
                                ),
                            ));
                        }
                        red_shorthand(key, v.get_ref())
                            .map_err(|m| self.err(o, Some(v.span()), m))?
                    }
                    None => {
                        let w_q = self.opt(o, k.w_q, |v| number("w_q", v))?.unwrap_or(0.002);
                        let max_p = self.opt(o, k.max_p, |v| number("max_p", v))?.unwrap_or(0.1);
                        let th = |f: &Field, key: &str| {
                            self.opt(o, f, |v| threshold(key, v))?.ok_or_else(|| {
                                self.err(
                                    o,
                                    Some(span.clone()),
                                    format!("{key}: missing (RED needs min_th and max_th, in packets or bytes)"),
                                )
                            })
                        };
                        (w_q, th(k.min_th, "min_th")?, th(k.max_th, "max_th")?, max_p)
                    }
                };
                if min_th.1 != max_th.1 {
                    return Err(self.err(
                        o,
                        Some(at),
                        "min_th and max_th: one is in packets, the other in bytes; give both in the same".to_owned(),
                    ));
                }
                RedParams::new(
                    w_q,
                    min_th.0,
                    max_th.0,
                    max_p,
                    gentle,
                    min_th.1,
                    ecn.unwrap_or(true),
                )
                .map(|p| Some(Aqm::Red(p)))
                .map_err(bad)
            }
        }
    }

    /// Resolves `flowset = ` / `pipe = ` of a rule or `[default]`.
    fn target(
        &self,
        o: &str,
        span: Range<usize>,
        flowset: &Field,
        pipe: &Field,
        t: &mut Targets<'_>,
    ) -> Result<usize, ConfigFileError> {
        match (flowset, pipe) {
            (Some(_), Some(p)) => Err(self.err(
                o,
                Some(p.span()),
                "give either flowset or pipe, not both".to_owned(),
            )),
            (None, None) => Err(self.err(
                o,
                Some(span),
                "flowset: missing (say where matching packets go: flowset = \"name\" or pipe = \"name\")"
                    .to_owned(),
            )),
            (Some(_), None) => self
                .opt(o, flowset, |v| reference("flowset", v, t.flowset_names))
                .map(|f| f.unwrap_or_default()),
            (None, Some(_)) => {
                let p = self
                    .opt(o, pipe, |v| reference("pipe", v, t.pipe_names))?
                    .unwrap_or_default();
                Ok(t.implicit(p))
            }
        }
    }

    fn matcher(&self, o: &str, m: &Spanned<RawMatch>) -> Result<Match, ConfigFileError> {
        let r = m.get_ref();
        let spec = Match {
            src: self.opt(o, &r.src, |v| prefix("match.src", v))?.flatten(),
            dst: self.opt(o, &r.dst, |v| prefix("match.dst", v))?.flatten(),
            proto: self.opt(o, &r.proto, |v| proto("match.proto", v))?,
            src_port: self.opt(o, &r.src_port, |v| ports("match.src_port", v))?,
            dst_port: self.opt(o, &r.dst_port, |v| ports("match.dst_port", v))?,
            dscp: self.opt(o, &r.dscp, |v| dscp("match.dscp", v))?,
            vlan: self.opt(o, &r.vlan, |v| {
                int("match.vlan", v, 0, 4095).map(|x| x as u16)
            })?,
        };
        if let Some(p) = spec.proto {
            if !PORT_PROTOCOLS.contains(&p) {
                let field = if spec.src_port.is_some() {
                    &r.src_port
                } else {
                    &r.dst_port
                };
                if let Some(f) = field {
                    let key = if spec.src_port.is_some() {
                        "match.src_port"
                    } else {
                        "match.dst_port"
                    };
                    return Err(self.err(
                        o,
                        Some(f.span()),
                        format!(
                            "{key}: proto {} has no ports (ports need proto tcp, udp, sctp, dccp or udplite)",
                            proto_name(p)
                        ),
                    ));
                }
            }
        }
        Ok(spec)
    }

    fn default(
        &self,
        d: &Spanned<RawDefault>,
        t: &mut Targets<'_>,
    ) -> Result<DefaultAction, ConfigFileError> {
        let o = "default";
        let r = d.get_ref();
        match &r.action {
            None if r.flowset.is_none() && r.pipe.is_none() => Ok(DefaultAction::Pass),
            None => self
                .target(o, d.span(), &r.flowset, &r.pipe, t)
                .map(DefaultAction::Flowset),
            Some(a) => {
                self.opt(o, &r.action, |v| match v {
                    Value::String(s) if s == "pass" => Ok(()),
                    Value::String(s) => Err(format!(
                        "action = {s:?} is not an action (allowed: \"pass\"; or flowset = \"name\" or pipe = \"name\" instead of action)"
                    )),
                    _ => Err(wrong_type("action", "\"pass\"", v)),
                })?;
                if r.flowset.is_some() || r.pipe.is_some() {
                    return Err(self.err(
                        o,
                        Some(a.span()),
                        "give either action = \"pass\" or a flowset/pipe, not both".to_owned(),
                    ));
                }
                Ok(DefaultAction::Pass)
            }
        }
    }
}

/// Name lookups for rules and `[default]`, and the implicit flowsets they create.
struct Targets<'a> {
    pipe_names: &'a HashMap<String, usize>,
    flowset_names: &'a HashMap<String, usize>,
    pipes: &'a [PipeSpec],
    implicit: HashMap<usize, usize>,
    flowsets: Vec<FlowsetSpec>,
}

impl Targets<'_> {
    /// The implicit flowset of pipe `p`, created on first use.
    fn implicit(&mut self, p: usize) -> usize {
        if let Some(&f) = self.implicit.get(&p) {
            return f;
        }
        let pipe = &self.pipes[p];
        let mut spec = FlowsetSpec::new(format!("pipe:{}", pipe.name), p);
        spec.queue = pipe.queue;
        spec.max_flows = 1;
        if pipe.sched == Kind::FqCodel {
            // fq_codel is flow queueing: a queue per 5-tuple, as Linux's
            // hash of the same fields (exact here, no collisions).
            spec.mask = crate::classify::FlowMask::FIVE_TUPLE;
            spec.max_flows = DEFAULT_MAX_FLOWS;
        }
        let f = self.flowsets.len();
        self.flowsets.push(spec);
        self.implicit.insert(p, f);
        f
    }
}
