//! What a run measured, summed up: per flow (sent, received, loss,
//! reordering, latency percentiles, rates) and over the flows (fairness:
//! Jain's index, the error against the expected max-min fair shares).
//! The [`Summary`] is xdpgen's JSON; `crate::output` prints it.

use super::series::Series;
use super::track::FlowRx;
use crate::engine::{FlowTx, Outcome};
use crate::traffic::spec::Flow;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Weighted max-min fair shares ("water filling"): flow `i` offers
/// `offered[i]` (bit/s, `f64::INFINITY` for unpaced), has weight
/// `weights[i]`; the link carries `capacity`. Flows that offer less than
/// their weighted share get what they offer; the rest split what remains in
/// proportion to their weights.
pub fn max_min_shares(offered: &[f64], weights: &[f64], capacity: f64) -> Vec<f64> {
    let n = offered.len();
    let mut share = vec![0.0; n];
    let mut open: Vec<usize> = (0..n).filter(|&i| offered[i] > 0.0).collect();
    let mut left = capacity.max(0.0);
    while !open.is_empty() && left > 0.0 {
        let wsum: f64 = open
            .iter()
            .map(|&i| weights.get(i).copied().unwrap_or(1.0))
            .sum();
        let per_w = left / wsum;
        // Flows satisfied at this level leave with what they offer.
        let (sat, rest): (Vec<usize>, Vec<usize>) = open
            .iter()
            .partition(|&&i| offered[i] <= per_w * weights.get(i).copied().unwrap_or(1.0));
        if sat.is_empty() {
            for &i in &rest {
                share[i] = per_w * weights.get(i).copied().unwrap_or(1.0);
            }
            return share;
        }
        for &i in &sat {
            share[i] = offered[i];
            left -= offered[i];
        }
        open = rest;
    }
    share
}

/// Percentile summary of a histogram, ns.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// 1st percentile.
    pub p1: u64,
    /// 16th percentile (mean − σ for a normal distribution).
    pub p16: u64,
    /// Median.
    pub p50: u64,
    /// 84th percentile (mean + σ for a normal distribution).
    pub p84: u64,
    /// 90th.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// From a histogram (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stddev: h.stdev(),
            p1: h.value_at_quantile(0.01),
            p16: h.value_at_quantile(0.16),
            p50: h.value_at_quantile(0.5),
            p84: h.value_at_quantile(0.84),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One flow's sending figures.
#[derive(Debug, Clone, Serialize)]
pub struct TxSummary {
    /// Frames sent.
    pub packets: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Measured rate over the flow's sending time, bit/s.
    pub rate_bps: f64,
    /// (measured - requested) / requested.
    pub rate_error: Option<f64>,
    /// Worst |error| over whole 1-second windows of the flow's life.
    pub rate_error_1s_max: Option<f64>,
    /// Inter-departure times, ns.
    pub idt_ns: Percentiles,
    /// How late the frames left against their schedule, ns.
    pub late_ns: Percentiles,
}

/// One flow's receiving figures.
#[derive(Debug, Clone, Serialize)]
pub struct RxSummary {
    /// Frames received (with duplicates).
    pub packets: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Distinct sequence numbers.
    pub unique: u64,
    /// Sent and never received.
    pub lost: u64,
    /// lost / sent.
    pub loss_ratio: f64,
    /// Repeats.
    pub duplicates: u64,
    /// Out of order arrivals.
    pub reordered: u64,
    /// The DSCP values its frames arrived with (AF_XDP receiver; empty with
    /// sockets): a remarking on the way shows here.
    pub dscp_seen: Vec<u8>,
    /// Rate over the flow's receiving time, bit/s.
    pub rate_bps: f64,
    /// Highest sequence number received.
    pub highest_seq: Option<u64>,
    /// Mean rate over the intervals the flow sends for entirely, leaving out
    /// the first and the last (robust to a receiver that looks late at the
    /// end), bit/s; `None` when the flow spans fewer than three intervals.
    pub steady_rate_bps: Option<f64>,
}

/// One flow in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct FlowSummary {
    /// Flow id (stamp).
    pub id: usize,
    /// Name.
    pub name: String,
    /// UDP destination port.
    pub dport: u16,
    /// UDP source port.
    pub sport: u16,
    /// DSCP.
    pub dscp: u8,
    /// Frame size (without FCS).
    pub size: u32,
    /// Requested rate, bit/s (None: unpaced).
    pub requested_bps: Option<u64>,
    /// Weight.
    pub weight: f64,
    /// Start, s.
    pub start_s: f64,
    /// Duration, s (None: the whole run).
    pub duration_s: Option<f64>,
    /// Sending side.
    pub tx: TxSummary,
    /// Receiving side.
    pub rx: RxSummary,
    /// One-way latency, ns.
    pub latency_ns: Percentiles,
    /// Latencies outside 1 µs..10 s (clock steps).
    pub latency_out_of_range: u64,
}

/// Fairness over the intervals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Fairness {
    /// Intervals with at least two flows receiving and a steady set of
    /// senders (each sends for all of the interval or not at all).
    pub intervals: usize,
    /// Mean Jain index over them (weight-normalised when weights are given).
    pub jain_mean: Option<f64>,
    /// Smallest.
    pub jain_min: Option<f64>,
    /// Mean share-vs-weight error (weights given).
    pub share_error_mean: Option<f64>,
    /// Largest.
    pub share_error_max: Option<f64>,
    /// Mean of the largest |rate - max-min fair share| / link rate per interval
    /// (`--link-rate` given; intervals where the set of flows is steady).
    pub fair_share_error_mean: Option<f64>,
    /// Largest.
    pub fair_share_error_max: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Program and version.
    pub tool: String,
    /// xdp or socket.
    pub mode: String,
    /// Sending port.
    pub tx_port: String,
    /// Receiving port.
    pub rx_port: String,
    /// Run length, s.
    pub duration_s: f64,
    /// Interval, s.
    pub interval_s: f64,
    /// Per flow.
    pub flows: Vec<FlowSummary>,
    /// Fairness.
    pub fairness: Fairness,
    /// Frames received that were not ours.
    pub foreign: u64,
    /// Frames that reached the receiving port but were dropped by its
    /// kernel before xdpgen's RX ring (AF_XDP mode): part of the loss
    /// reported, caused by the receiver, not by the path under test.
    pub lost_at_receiver: u64,
    /// Times a due frame had to wait for a free frame or ring room.
    pub tx_stalls: u64,
    /// Every UMEM frame accounted for at the end (both sides).
    pub frames_balanced: bool,
    /// Frames counted as sent that never left: never completed by the kernel,
    /// or never given to it (the interface went away or stopped sending?).
    pub tx_uncompleted: u64,
    /// Totals.
    pub total_tx_packets: u64,
    /// Totals.
    pub total_rx_packets: u64,
    /// Bytes received (all flows) × 8 / run length, bit/s.
    pub total_rx_bps: f64,
}

fn span_rate(packets: u64, bytes: u64, first: Option<u64>, last: u64) -> f64 {
    match first {
        Some(f) if packets >= 2 && last > f => {
            // n packets span n-1 gaps: count the bytes of n-1 of them.
            let per = bytes as f64 / packets as f64;
            (packets - 1) as f64 * per * 8.0 * 1e9 / (last - f) as f64
        }
        _ => 0.0,
    }
}

/// Worst |error| of whole 1-second windows of a flow's sending.
fn worst_1s(series: &Series, flow: usize, f: &Flow, run_ns: u64) -> Option<f64> {
    let req = f.rate_bps? as f64;
    let iv = series.interval_ns;
    if iv == 0 || 1_000_000_000 % iv != 0 || f.start_ns % iv != 0 {
        return None;
    }
    let per = (1_000_000_000 / iv) as usize;
    let first = (f.start_ns / iv) as usize;
    let end = f.end_ns().unwrap_or(run_ns).min(run_ns);
    let whole = ((end - f.start_ns.min(end)) / 1_000_000_000) as usize;
    let mut worst: Option<f64> = None;
    for w in 0..whole {
        let bytes: u64 = (0..per)
            .filter_map(|k| series.bytes(first + w * per + k).map(|b| b[flow]))
            .sum();
        let e = ((bytes * 8) as f64 - req).abs() / req;
        worst = Some(worst.map_or(e, |x: f64| x.max(e)));
    }
    worst
}

fn tx_summary(t: &FlowTx, f: &Flow, series: &Series, flow: usize, run_ns: u64) -> TxSummary {
    let rate = span_rate(t.packets, t.bytes, t.first_ns, t.last_ns);
    TxSummary {
        packets: t.packets,
        bytes: t.bytes,
        rate_bps: rate,
        rate_error: f
            .rate_bps
            .filter(|_| t.packets >= 2)
            .map(|r| (rate - r as f64) / r as f64),
        rate_error_1s_max: worst_1s(series, flow, f, run_ns),
        idt_ns: Percentiles::of(&t.idt),
        late_ns: Percentiles::of(&t.lateness),
    }
}

fn rx_summary(r: &FlowRx, sent: u64, first: Option<u64>, last: u64) -> RxSummary {
    let lost = sent.saturating_sub(r.unique);
    RxSummary {
        packets: r.packets,
        bytes: r.bytes,
        unique: r.unique,
        lost,
        loss_ratio: if sent > 0 {
            lost as f64 / sent as f64
        } else {
            0.0
        },
        duplicates: r.duplicates,
        reordered: r.reordered,
        dscp_seen: (0..64u8).filter(|d| r.dscp_seen >> d & 1 == 1).collect(),
        rate_bps: span_rate(r.packets, r.bytes, first, last),
        highest_seq: r.highest,
        steady_rate_bps: None,
    }
}

/// Mean received rate of flow `flow` over the intervals it sends for
/// entirely, without the first and the last of them.
fn steady_rate(rx: &Series, flow: usize, f: &Flow, run_ns: u64) -> Option<f64> {
    let iv = rx.interval_ns;
    let full: Vec<usize> = (0..rx.len())
        .filter(|&i| active_all_interval(f, i, iv, run_ns))
        .collect();
    if full.len() < 3 {
        return None;
    }
    let inner = &full[1..full.len() - 1];
    let bytes: u64 = inner
        .iter()
        .filter_map(|&i| rx.bytes(i).map(|b| b[flow]))
        .sum();
    Some(bytes as f64 * 8.0 * 1e9 / (inner.len() as u64 * iv) as f64)
}

/// Whether flow `f` sends during the whole of interval `i`.
fn active_all_interval(f: &Flow, i: usize, iv: u64, run_ns: u64) -> bool {
    let (a, b) = (i as u64 * iv, (i as u64 + 1) * iv);
    f.start_ns <= a && f.end_ns().unwrap_or(run_ns).min(run_ns) >= b
}

/// Whether flow `f` sends at some time in interval `i`.
fn active_in_interval(f: &Flow, i: usize, iv: u64, run_ns: u64) -> bool {
    let (a, b) = (i as u64 * iv, (i as u64 + 1) * iv);
    f.start_ns < b && f.end_ns().unwrap_or(run_ns).min(run_ns) > a
}

/// Per-interval fair-share error against `link_bps`: the largest
/// |rate - share| / link rate over the flows, for intervals where every flow
/// is either active for the whole interval or not at all, and not within
/// `settle` intervals of a change. `None` for the others.
pub fn fair_share_errors(
    rx: &Series,
    flows: &[Flow],
    link_bps: f64,
    overhead: u32,
    run_ns: u64,
    settle: usize,
) -> Vec<Option<f64>> {
    let iv = rx.interval_ns;
    let weights: Vec<f64> = flows.iter().map(|f| f.weight).collect();
    let set = |i: usize| -> Vec<bool> {
        flows
            .iter()
            .map(|f| active_in_interval(f, i, iv, run_ns))
            .collect()
    };
    (0..rx.len())
        .map(|i| {
            let now = set(i);
            let steady = flows.iter().all(|f| {
                active_all_interval(f, i, iv, run_ns) || !active_in_interval(f, i, iv, run_ns)
            });
            let settled = (i.saturating_sub(settle)..=i).all(|j| set(j) == now) && i >= settle;
            if !steady || !settled || !now.iter().any(|&a| a) {
                return None;
            }
            let offered: Vec<f64> = flows
                .iter()
                .zip(&now)
                .map(|(f, &a)| {
                    if a {
                        f.rate_bps.map_or(f64::INFINITY, |r| r as f64)
                    } else {
                        0.0
                    }
                })
                .collect();
            // Offered and measured rates on the wire: frames + overhead.
            let offered: Vec<f64> = offered
                .iter()
                .zip(flows)
                .map(|(&o, f)| o * (f.size + overhead) as f64 / f.size as f64)
                .collect();
            let fair = max_min_shares(&offered, &weights, link_bps);
            let bytes = rx.bytes(i)?;
            let packets = rx.packets(i)?;
            let secs = iv as f64 / 1e9;
            Some(
                bytes
                    .iter()
                    .zip(packets)
                    .zip(&fair)
                    .map(|((&b, &p), &s)| {
                        ((b + p * overhead as u64) as f64 * 8.0 / secs - s).abs() / link_bps
                    })
                    .fold(0.0, f64::max),
            )
        })
        .collect()
}

/// Options for the summary.
#[derive(Debug, Clone)]
pub struct SummaryOptions {
    /// Mode name.
    pub mode: String,
    /// Ports as text.
    pub tx_port: String,
    /// Ports as text.
    pub rx_port: String,
    /// Run length, ns.
    pub run_ns: u64,
    /// Weights were given (judge shares against them).
    pub weighted: bool,
    /// The bottleneck's rate, for max-min fair shares.
    pub link_bps: Option<f64>,
    /// Bytes per frame the bottleneck counts beyond the frame.
    pub link_overhead: u32,
}

/// Builds the summary of a run.
pub fn summarize(flows: &[Flow], out: &Outcome, o: &SummaryOptions) -> Summary {
    let weights: Vec<f64> = flows.iter().map(|f| f.weight).collect();
    let fl: Vec<FlowSummary> = flows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let t = &out.tx.flows[i];
            let r = &out.rx.flows[i];
            FlowSummary {
                id: i,
                name: f.name.clone(),
                dport: f.dport,
                sport: f.sport,
                dscp: f.dscp,
                size: f.size,
                requested_bps: f.rate_bps,
                weight: f.weight,
                start_s: f.start_ns as f64 / 1e9,
                duration_s: f.duration_ns.map(|d| d as f64 / 1e9),
                tx: tx_summary(t, f, &out.tx.series, i, o.run_ns),
                rx: RxSummary {
                    steady_rate_bps: steady_rate(&out.rx.series, i, f, o.run_ns),
                    ..rx_summary(r, t.packets, out.rx.first_ns[i], out.rx.last_ns[i])
                },
                latency_ns: Percentiles::of(&r.latency),
                latency_out_of_range: r.latency_out_of_range,
            }
        })
        .collect();
    let mut fair = Fairness::default();
    let mut jains = Vec::new();
    let mut shares = Vec::new();
    let iv = out.rx.series.interval_ns;
    for i in 0..out.rx.series.len() {
        // Only intervals with a steady set of flows (each sends for all of it
        // or not at all): a flow starting mid-interval is not unfairness.
        let steady = flows.iter().all(|f| {
            active_all_interval(f, i, iv, o.run_ns) || !active_in_interval(f, i, iv, o.run_ns)
        });
        let sending = flows
            .iter()
            .filter(|f| active_all_interval(f, i, iv, o.run_ns))
            .count();
        if !steady || sending < 2 {
            continue;
        }
        let Some(rep) = out
            .rx
            .series
            .report(i, o.weighted.then_some(weights.as_slice()))
        else {
            continue;
        };
        let active = rep.rate_bps.iter().filter(|&&r| r > 0.0).count();
        if active >= 2 {
            jains.push(rep.jain);
            if let Some(e) = rep.share_error {
                shares.push(e);
            }
        }
    }
    fair.intervals = jains.len();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let min = |v: &[f64]| v.iter().copied().reduce(f64::min);
    let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
    fair.jain_mean = mean(&jains);
    fair.jain_min = min(&jains);
    fair.share_error_mean = mean(&shares);
    fair.share_error_max = max(&shares);
    if let Some(link) = o.link_bps {
        let errs: Vec<f64> =
            fair_share_errors(&out.rx.series, flows, link, o.link_overhead, o.run_ns, 2)
                .into_iter()
                .flatten()
                .collect();
        fair.fair_share_error_mean = mean(&errs);
        fair.fair_share_error_max = max(&errs);
    }
    Summary {
        tool: format!("xdpgen {}", env!("CARGO_PKG_VERSION")),
        mode: o.mode.clone(),
        tx_port: o.tx_port.clone(),
        rx_port: o.rx_port.clone(),
        duration_s: o.run_ns as f64 / 1e9,
        interval_s: out.rx.series.interval_ns as f64 / 1e9,
        total_tx_packets: fl.iter().map(|f| f.tx.packets).sum(),
        total_rx_packets: fl.iter().map(|f| f.rx.packets).sum(),
        total_rx_bps: fl.iter().map(|f| f.rx.bytes as f64 * 8.0).sum::<f64>() * 1e9
            / o.run_ns.max(1) as f64,
        flows: fl,
        fairness: fair,
        foreign: out.rx.foreign,
        lost_at_receiver: out.rx.lost_at_receiver,
        tx_stalls: out.tx.stalls,
        frames_balanced: out.tx.balanced && out.rx.balanced,
        tx_uncompleted: out.tx.uncompleted,
    }
}

/// Rates per interval, `[interval][flow]` in bit/s.
pub fn rates(series: &Series) -> Vec<Vec<f64>> {
    let secs = series.interval_ns as f64 / 1e9;
    (0..series.len())
        .map(|i| {
            series
                .bytes(i)
                .map(|b| b.iter().map(|&x| x as f64 * 8.0 / secs).collect())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::spec::parse_flow;

    #[test]
    fn max_min_water_filling() {
        let inf = f64::INFINITY;
        let s = max_min_shares(&[100.0, 60.0, 30.0, 10.0], &[1.0; 4], 100.0);
        assert_eq!(s, vec![30.0, 30.0, 30.0, 10.0]);
        let s = max_min_shares(&[100.0, 60.0, 30.0, 0.0], &[1.0; 4], 100.0);
        assert_eq!(s, vec![35.0, 35.0, 30.0, 0.0]);
        let s = max_min_shares(&[inf, inf], &[1.0, 3.0], 100.0);
        assert_eq!(s, vec![25.0, 75.0]);
        let s = max_min_shares(&[10.0, 20.0], &[1.0, 1.0], 100.0);
        assert_eq!(
            s,
            vec![10.0, 20.0],
            "under capacity: everyone gets what they offer"
        );
        assert_eq!(max_min_shares(&[], &[], 100.0), Vec::<f64>::new());
    }

    #[test]
    fn fair_share_errors_skip_changing_intervals() {
        let a = parse_flow("rate=100M", 0, 2048).expect("valid");
        let b = parse_flow("rate=100M,dport=2,start=1s", 1, 2048).expect("valid");
        let flows = vec![a, b];
        let mut rx = Series::new(2, 500_000_000, 0);
        // 0-1 s: a alone at 100M; 1-2 s: 50/50, but b gets 40 in the last interval.
        let bytes = |mbps: u64| mbps * 1_000_000 / 8 / 2;
        rx.record(0, bytes(100), 0);
        rx.record(0, bytes(100), 500_000_000);
        rx.record(0, bytes(50), 1_000_000_000);
        rx.record(1, bytes(50), 1_000_000_000);
        rx.record(0, bytes(60), 1_500_000_000);
        rx.record(1, bytes(40), 1_500_000_000);
        let e = fair_share_errors(&rx, &flows, 100e6, 0, 2_000_000_000, 0);
        assert_eq!(e.len(), 4);
        assert!(e[0].expect("steady") < 1e-9);
        assert!(e[2].expect("steady") < 1e-9);
        assert!((e[3].expect("steady") - 0.10).abs() < 1e-9, "{:?}", e[3]);
        let settled = fair_share_errors(&rx, &flows, 100e6, 0, 2_000_000_000, 1);
        assert_eq!(settled[2], None, "just after b started");
        assert!(settled[3].is_some());
    }

    #[test]
    fn percentiles_of_an_empty_histogram_are_zero() {
        let h = Histogram::<u64>::new_with_bounds(1, 1000, 3).expect("valid");
        assert_eq!(Percentiles::of(&h), Percentiles::default());
    }
}
