//! The classifier against its reference semantics: tuple-space search (with
//! and without the flow cache) must return what a linear scan of the rules
//! returns (first match by rule order), for random rule sets mixing every
//! field, prefix lengths, IPv4 and IPv6 and port ranges, and for the frames
//! of the fuzz corpus.

use proptest::prelude::*;
use sched::classify::{Classifier, FlowKey, Match, Prefix};
use sched::wire::parse;

/// A few values per field, so that random rules and keys collide often.
fn addr(i: u8) -> u128 {
    match i % 4 {
        0 => 0xffff_0a00_0000 | (u128::from(i) << 8), // 10.0.x.0
        1 => 0xffff_c0a8_0000 | u128::from(i),        // 192.168.0.x
        2 => (0x2001_0db8u128 << 96) | (u128::from(i) << 64), // 2001:db8:0:x::
        _ => (0x2001_0db8u128 << 96) | u128::from(i), // 2001:db8::x
    }
}

fn prefix() -> impl Strategy<Value = Option<Prefix>> {
    prop_oneof![
        Just(None),
        (
            0u8..16,
            prop::sample::select(vec![0u8, 8, 32, 64, 100, 104, 112, 120, 127, 128])
        )
            .prop_map(|(a, l)| Some(Prefix::new(addr(a), l))),
    ]
}

fn port() -> impl Strategy<Value = Option<(u16, u16)>> {
    prop_oneof![
        Just(None),
        (0u16..8).prop_map(|p| Some((p, p))),
        (0u16..8, 0u16..4).prop_map(|(lo, w)| Some((lo, lo + w))),
        Just(Some((0, u16::MAX))),
    ]
}

fn rule() -> impl Strategy<Value = Match> {
    (
        prefix(),
        prefix(),
        prop::option::of(prop::sample::select(vec![6u8, 17, 58])),
        port(),
        port(),
        prop::option::of(0u8..3),
        prop::option::of(0u16..3),
    )
        .prop_map(|(src, dst, proto, src_port, dst_port, dscp, vlan)| Match {
            src,
            dst,
            proto,
            src_port,
            dst_port,
            dscp,
            vlan,
        })
}

fn key() -> impl Strategy<Value = FlowKey> {
    (
        (0u8..16, 0u8..16, any::<u8>(), any::<u8>()),
        (0u16..10, 0u16..10),
        prop::sample::select(vec![0u8, 6, 17, 58]),
        0u8..3,
        prop::sample::select(vec![0u16, 1, 2, 0x1001]),
    )
        .prop_map(|((s, d, sx, dx), (sp, dp), proto, dscp, vlan)| FlowKey {
            // Low bits varied so that long prefixes match only sometimes.
            src: addr(s) ^ u128::from(sx & 3),
            dst: addr(d) ^ u128::from(dx & 1) << 70,
            src_port: sp,
            dst_port: dp,
            proto,
            dscp,
            vlan,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lookups_agree_with_a_linear_scan(
        rules in prop::collection::vec(rule(), 0..40),
        keys in prop::collection::vec(key(), 1..64),
        seed in any::<u64>(),
    ) {
        let rules: Vec<(Match, u32)> =
            rules.into_iter().enumerate().map(|(i, m)| (m, 1000 + i as u32)).collect();
        let mut cached = Classifier::new(&rules, 16, seed);
        let mut uncached = Classifier::new(&rules, 0, seed);
        for k in keys.iter().chain(keys.iter()) {
            let want = cached.table().lookup_linear(k);
            prop_assert_eq!(cached.table().lookup(k), want, "table, key {:?}", k);
            prop_assert_eq!(cached.lookup(k), want, "cached, key {:?}", k);
            prop_assert_eq!(uncached.lookup(k), want, "uncached, key {:?}", k);
        }
    }
}

#[test]
fn fuzz_corpus_frames_classify_like_a_linear_scan() {
    let v4 = |a: u8, b: u8, c: u8, d: u8| {
        0xffff_0000_0000 | u128::from(u32::from_be_bytes([a, b, c, d]))
    };
    // The fuzz target's rules (sched/fuzz/fuzz_targets/frame.rs).
    let rules = vec![
        (
            Match {
                proto: Some(17),
                dst_port: Some((53, 53)),
                ..Match::default()
            },
            0,
        ),
        (
            Match {
                src: Some(Prefix::new(v4(10, 0, 0, 0), 104)),
                ..Match::default()
            },
            1,
        ),
        (
            Match {
                proto: Some(6),
                dst_port: Some((1000, 2000)),
                ..Match::default()
            },
            2,
        ),
        (
            Match {
                dscp: Some(46),
                ..Match::default()
            },
            3,
        ),
        (
            Match {
                vlan: Some(100),
                ..Match::default()
            },
            4,
        ),
        (
            Match {
                dst: Some(Prefix::new(0x2001_0db8u128 << 96, 32)),
                proto: Some(58),
                ..Match::default()
            },
            5,
        ),
    ];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/frame");
    let mut parsed = 0;
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let frame = std::fs::read(entry.expect("entry").path()).expect("frame");
        if let Ok(h) = parse(&frame) {
            parsed += 1;
            let k = FlowKey::from_headers(&h);
            let mut c = Classifier::new(&rules, 64, 1);
            let want = c.table().lookup_linear(&k);
            assert_eq!(c.lookup(&k), want);
            assert_eq!(c.lookup(&k), want, "from the cache");
            assert_eq!(Classifier::new(&rules, 0, 1).lookup(&k), want);
        }
    }
    assert!(parsed > 0);
}
