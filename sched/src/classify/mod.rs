//! Classification: flow keys and masks (dummynet semantics), a seeded
//! open-addressing hash table keyed by flow, and the ordered rule table.
//!
//! A [`FlowKey`] is what a frame is classified on: addresses (IPv6, or IPv4 in
//! the low 32 bits of the IPv4-mapped form `::ffff:a.b.c.d`), protocol, ports,
//! DSCP and the outer VLAN id. A [`FlowMask`] keeps some bits of each field —
//! a flowset's mask splits its traffic into per-flow queues (dummynet's
//! `mask src-ip 0x000000ff`), and rules match on prefixes, exact values and
//! port ranges.
//!
//! Rules are first-match in table order. Lookup is tuple-space search (as in
//! Open vSwitch): rules are grouped by the *shape* of their match (which bits
//! they look at); each group is one hash table from masked key to the group's
//! rules with that key, so a lookup costs one probe per group, not one test per
//! rule. Groups are visited in order of their first rule and the search stops
//! as soon as no later group can hold an earlier rule. Port ranges that are not
//! a single value are checked after the probe.
//!
//! The parts: [`key`] (keys, masks, their hash), [`keytable`] (the generic
//! table of flows that flowsets and dynamic pipes use), [`rules`] (the rule
//! table, tuple-space search) and [`cache`] (the exact-match flow cache in
//! front of it, as [`Classifier`]).

pub mod cache;
pub mod key;
pub mod keytable;
pub mod rules;

pub use cache::{Classifier, CACHE_MIN_SHAPES};
pub use key::{hash_key, prefix_mask, FlowKey, FlowMask, Prefix};
pub use keytable::KeyTable;
pub use rules::{Match, RuleTable};
