//! Criterion: enqueue + dequeue cost per packet, per algorithm and flow count.
//!
//! Steady state: every flow holds two packets; each iteration dequeues the
//! next packet and enqueues it again on the same flow, so the backlog and the
//! active set stay constant. (sched-bench's fill/drain cycle, modelled on
//! dummynet's harness, is the other regime; bench-results/sched/ has both.)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sched::{build, FlowConfig, Kind, Lmax, SchedConfig, Scheduler};
use std::hint::black_box;
use std::time::Duration;

const FLOWS: [u32; 7] = [1, 16, 256, 1024, 8192, 65_536, 1_048_576];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("enqueue+dequeue");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for kind in Kind::ALL {
        for &n in &FLOWS {
            let cfg = SchedConfig {
                max_flows: n,
                limit_packets: 2 * n,
                ..SchedConfig::default()
            };
            let mut s = build::<u32>(kind, cfg).expect("build");
            let fc = FlowConfig {
                lmax: Lmax::new(1500).expect("lmax"),
                ..FlowConfig::default()
            };
            let ids: Vec<_> = (0..n).map(|_| s.add_flow(fc).expect("flow")).collect();
            for _ in 0..2 {
                for &f in &ids {
                    s.enqueue(0, f, 1280).expect("enqueue");
                }
            }
            g.bench_with_input(BenchmarkId::new(kind.name(), n), &n, |b, _| {
                b.iter(|| {
                    let (f, p) = s.dequeue(0).expect("backlogged");
                    s.enqueue(0, black_box(f), black_box(p)).expect("requeue");
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
