//! The scheduler demo (the README's main-job command until the datapath lands):
//! four backlogged flows with weights 1:2:3:4 on a simulated link, then the
//! same four flows going idle and returning, through every algorithm. Prints
//! each flow's share against its weight, its worst lag against the fluid GPS
//! reference, and Jain's index.

use sched::testkit::sim::{run, OnOff, Scenario, SizeDist};
use sched::{build, Kind, SchedConfig};

fn main() {
    let scenarios = [
        Scenario::backlogged(
            "4 backlogged flows, weights 1:2:3:4, 64..1500 B",
            vec![1, 2, 3, 4],
            SizeDist::Uniform(64, 1500),
            500_000,
        ),
        Scenario {
            on_off: Some(OnOff {
                mean_on: 2_000_000,
                mean_off: 1_000_000,
            }),
            depth: 4,
            ..Scenario::backlogged(
                "the same flows going idle and returning",
                vec![1, 2, 3, 4],
                SizeDist::Uniform(64, 1500),
                500_000,
            )
        },
    ];
    for sc in &scenarios {
        println!(
            "\n== {} ({} packets, link time in byte-times)",
            sc.name, sc.packets
        );
        println!(
            "{:<6} {:>5} {:>9} {:>9} {:>12} {:>12}   jain",
            "sched", "flow", "expected", "share", "behind GPS", "ahead of GPS"
        );
        let wsum: u32 = sc.weights.iter().sum();
        for kind in Kind::ALL {
            let mut s = build(kind, SchedConfig::default()).expect("valid configuration");
            let r = run(&mut s, sc);
            let total: u64 = r.flows.iter().map(|f| f.served).sum();
            for (i, f) in r.flows.iter().enumerate() {
                println!(
                    "{:<6} {:>5} {:>8.1}% {:>8.2}% {:>10.0} B {:>10.0} B   {}",
                    if i == 0 { r.sched } else { "" },
                    i,
                    100.0 * f.weight as f64 / wsum as f64,
                    100.0 * f.served as f64 / total.max(1) as f64,
                    f.max_behind,
                    f.max_ahead,
                    if i == 0 {
                        format!("{:.5}", r.jain)
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    println!(
        "\n(With idle periods the expected share does not apply: GPS redistributes idle capacity;\n the lag columns compare each flow with what GPS would have given it.)"
    );
}
