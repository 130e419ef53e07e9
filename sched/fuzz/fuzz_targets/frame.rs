//! Fuzz target: parse + classify on arbitrary frames, the per-packet path.
//! `sched::wire::parse` must never panic, must return exactly what the frozen
//! reference parser returns (`Ok` or `Err`), and must describe the frame
//! consistently; the classifier (tuple-space search behind a flow cache) must
//! agree with a linear scan of the same rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sched::classify::{Classifier, FlowKey, Match, Prefix};
use sched::wire::{parse, Family, Fragment};
use std::sync::OnceLock;

fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    0xffff_0000_0000 | (u32::from_be_bytes([a, b, c, d]) as u128)
}

/// A fixed rule set with several match shapes (so the flow cache is on).
fn rules() -> &'static Vec<(Match, u32)> {
    static RULES: OnceLock<Vec<(Match, u32)>> = OnceLock::new();
    RULES.get_or_init(|| {
        vec![
            (Match { proto: Some(17), dst_port: Some((53, 53)), ..Match::default() }, 0),
            (Match { src: Some(Prefix::new(v4(10, 0, 0, 0), 104)), ..Match::default() }, 1),
            (Match { proto: Some(6), dst_port: Some((1000, 2000)), ..Match::default() }, 2),
            (Match { dscp: Some(46), ..Match::default() }, 3),
            (Match { vlan: Some(100), ..Match::default() }, 4),
            (Match { dst: Some(Prefix::new(0x2001_0db8u128 << 96, 32)), proto: Some(58), ..Match::default() }, 5),
        ]
    })
}

fuzz_target!(|frame: &[u8]| {
    let got = parse(frame);
    assert_eq!(got, sched::testkit::reference::parse(frame), "differs from the reference parser");
    if let Ok(h) = got {
        let len = frame.len();
        assert!(usize::from(h.l3_offset) <= len);
        assert!(usize::from(h.l4_offset) <= len);
        assert!(h.vlan_count <= 2);
        if h.l4_offset != 0 {
            assert!(h.l4_offset > h.l3_offset);
            assert!(matches!(h.family, Family::V4 | Family::V6));
        }
        if h.fragment == Fragment::Later {
            assert_eq!((h.src_port, h.dst_port, h.l4_offset), (0, 0, 0));
        }
        let key = FlowKey::from_headers(&h);
        let mut c = Classifier::new(rules(), 64, 1);
        let want = c.table().lookup_linear(&key);
        assert_eq!(c.lookup(&key), want);
        assert_eq!(c.lookup(&key), want, "second lookup (from the cache)");
    }
});
