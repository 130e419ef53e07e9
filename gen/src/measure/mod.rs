//! What the receiver makes of the packets: per-flow accounting ([`track`]:
//! loss, duplicates, reordering, latency), the per-interval [`series`] with
//! fairness, the run's [`summary`], and [`capacity`] estimates from packet
//! trains. Pure: fed by the engines, read by `crate::output`.

pub mod capacity;
pub mod series;
pub mod summary;
pub mod track;
