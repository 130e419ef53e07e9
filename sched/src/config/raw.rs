//! The file as written: serde's view of the TOML, every field kept as a
//! spanned value so that errors can point at it.

use serde::Deserialize;
use toml::{Spanned, Value};

// ---------------------------------------------------------------------------
// The file as written.

pub(super) type Field = Option<Spanned<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) pipe: Vec<Spanned<RawPipe>>,
    #[serde(default)]
    pub(super) flowset: Vec<Spanned<RawFlowset>>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub(super) class: Vec<Spanned<RawClass>>,
    pub(super) default: Option<Spanned<RawDefault>>,
    pub(super) seed: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipe {
    pub(super) name: Field,
    pub(super) bandwidth: Field,
    pub(super) delay: Field,
    pub(super) plr: Field,
    pub(super) gilbert_elliott: Option<Spanned<RawGilbertElliott>>,
    pub(super) loss_4state: Option<Spanned<RawFourState>>,
    pub(super) queue: Field,
    pub(super) overhead: Field,
    pub(super) sched: Field,
    pub(super) mask: Field,
    pub(super) max_instances: Field,
    pub(super) idle_timeout: Field,
    pub(super) next: Field,
    pub(super) aqm: Field,
    pub(super) target: Field,
    pub(super) interval: Field,
    pub(super) ecn: Field,
    pub(super) ce_threshold: Field,
    pub(super) red: Field,
    pub(super) gred: Field,
    pub(super) w_q: Field,
    pub(super) min_th: Field,
    pub(super) max_th: Field,
    pub(super) max_p: Field,
    pub(super) tupdate: Field,
    pub(super) max_burst: Field,
    pub(super) alpha: Field,
    pub(super) beta: Field,
    pub(super) dq_rate_estimator: Field,
    pub(super) limit: Field,
    pub(super) overflow: Field,
    pub(super) jitter: Field,
    pub(super) jitter_correlation: Field,
    pub(super) distribution: Field,
    pub(super) reorder_by_jitter: Field,
    pub(super) reorder: Field,
    pub(super) reorder_correlation: Field,
    pub(super) reorder_gap: Field,
    pub(super) duplicate: Field,
    pub(super) duplicate_correlation: Field,
    pub(super) corrupt: Field,
    pub(super) corrupt_correlation: Field,
    pub(super) slot: Option<Spanned<RawSlot>>,
    pub(super) profile: Field,
    pub(super) trace: Field,
    pub(super) trace_log: Field,
    pub(super) schedule: Option<Vec<Spanned<RawStep>>>,
    pub(super) schedule_repeat: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlot {
    pub(super) min: Field,
    pub(super) max: Field,
    pub(super) distribution: Field,
    pub(super) delay: Field,
    pub(super) jitter: Field,
    pub(super) packets: Field,
    pub(super) bytes: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) at: Field,
    pub(super) bandwidth: Field,
    pub(super) delay: Field,
    pub(super) plr: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGilbertElliott {
    pub(super) p: Field,
    pub(super) r: Field,
    pub(super) k: Field,
    pub(super) h: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFourState {
    pub(super) p13: Field,
    pub(super) p31: Field,
    pub(super) p32: Field,
    pub(super) p23: Field,
    pub(super) p14: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlowset {
    pub(super) name: Field,
    pub(super) pipe: Field,
    pub(super) class: Field,
    pub(super) rate: Field,
    pub(super) mask: Field,
    pub(super) weight: Field,
    pub(super) priority: Field,
    pub(super) quantum: Field,
    pub(super) lmax: Field,
    pub(super) queue: Field,
    pub(super) max_flows: Field,
    pub(super) idle_timeout: Field,
    pub(super) aqm: Field,
    pub(super) target: Field,
    pub(super) interval: Field,
    pub(super) ecn: Field,
    pub(super) ce_threshold: Field,
    pub(super) red: Field,
    pub(super) gred: Field,
    pub(super) w_q: Field,
    pub(super) min_th: Field,
    pub(super) max_th: Field,
    pub(super) max_p: Field,
    pub(super) tupdate: Field,
    pub(super) max_burst: Field,
    pub(super) alpha: Field,
    pub(super) beta: Field,
    pub(super) dq_rate_estimator: Field,
}

/// `[[class]]`: an HTB class of a pipe's link.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClass {
    pub(super) name: Field,
    pub(super) pipe: Field,
    pub(super) parent: Field,
    pub(super) rate: Field,
    pub(super) ceil: Field,
    pub(super) burst: Field,
    pub(super) cburst: Field,
    pub(super) prio: Field,
    pub(super) quantum: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) flowset: Field,
    pub(super) pipe: Field,
    #[serde(rename = "match")]
    pub(super) matcher: Option<Spanned<RawMatch>>,
    pub(super) dir: Field,
    pub(super) prob: Field,
    pub(super) set_dscp: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    pub(super) src: Field,
    pub(super) dst: Field,
    pub(super) proto: Field,
    pub(super) src_port: Field,
    pub(super) dst_port: Field,
    pub(super) dscp: Field,
    pub(super) vlan: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefault {
    pub(super) action: Field,
    pub(super) flowset: Field,
    pub(super) pipe: Field,
    pub(super) dir: Field,
}
