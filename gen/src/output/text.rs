//! xdpgen's text outputs: the iperf3-like interval lines, the summary
//! table and the CSV time series.

use crate::measure::series::Series;
use crate::measure::summary::Summary;
use crate::traffic::spec::Flow;
use std::io::Write;

/// An iperf3-like line for one interval.
pub fn interval_line(
    flows: &[Flow],
    index: usize,
    interval_ns: u64,
    bytes: &[u64],
    weighted: bool,
) -> String {
    let secs = interval_ns as f64 / 1e9;
    let rates: Vec<f64> = bytes.iter().map(|&b| b as f64 * 8.0 / secs).collect();
    let total: f64 = rates.iter().sum();
    let active: Vec<usize> = (0..rates.len()).filter(|&i| rates[i] > 0.0).collect();
    let norm: Vec<f64> = active
        .iter()
        .map(|&i| rates[i] / if weighted { flows[i].weight } else { 1.0 })
        .collect();
    let jain = sched::testkit::metrics::jain_index(&norm);
    let mut s = format!(
        "[{:7.2}-{:7.2} s]",
        index as f64 * secs,
        (index + 1) as f64 * secs
    );
    if flows.len() <= 8 {
        for (f, r) in flows.iter().zip(&rates) {
            s.push_str(&format!(" {} {:7.2}", f.name, r / 1e6));
        }
        s.push_str(" Mbit/s |");
    }
    s.push_str(&format!(
        " total {:8.2} Mbit/s | {} active | jain {:.4}",
        total / 1e6,
        active.len(),
        jain
    ));
    s
}

/// A human-readable table of the summary.
pub fn table(s: &Summary) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "{:<12} {:>10} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
        "flow",
        "req Mb/s",
        "tx Mb/s",
        "rx Mb/s",
        "loss %",
        "lat p50",
        "lat p99",
        "lat max",
        "idt sd",
        "reordered"
    ));
    let us = |ns: u64| format!("{:.1}µs", ns as f64 / 1e3);
    for f in &s.flows {
        t.push_str(&format!(
            "{:<12} {:>10} {:>10.3} {:>10.3} {:>8.3} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
            f.name.chars().take(12).collect::<String>(),
            f.requested_bps
                .map_or("max".into(), |r| format!("{:.3}", r as f64 / 1e6)),
            f.tx.rate_bps / 1e6,
            f.rx.rate_bps / 1e6,
            f.rx.loss_ratio * 100.0,
            us(f.latency_ns.p50),
            us(f.latency_ns.p99),
            us(f.latency_ns.max),
            us(f.tx.idt_ns.stddev as u64),
            f.rx.reordered
        ));
    }
    let fmt = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.4}"));
    t.push_str(&format!(
        "total rx {:.3} Mbit/s over the run, {} of {} packets; jain mean {} min {} over {} intervals",
        s.total_rx_bps / 1e6,
        s.total_rx_packets,
        s.total_tx_packets,
        fmt(s.fairness.jain_mean),
        fmt(s.fairness.jain_min),
        s.fairness.intervals
    ));
    if s.fairness.share_error_mean.is_some() {
        t.push_str(&format!(
            "; share error mean {} max {}",
            fmt(s.fairness.share_error_mean),
            fmt(s.fairness.share_error_max)
        ));
    }
    if s.fairness.fair_share_error_mean.is_some() {
        t.push_str(&format!(
            "; max-min fair-share error (of the link) mean {} max {}",
            fmt(s.fairness.fair_share_error_mean),
            fmt(s.fairness.fair_share_error_max)
        ));
    }
    t.push('\n');
    if s.lost_at_receiver > 0 {
        t.push_str(&format!(
            "warning: {} frames were dropped by the receiving port's kernel before xdpgen's RX ring: part of the loss above is the receiver's, not the path's\n",
            s.lost_at_receiver
        ));
    }
    t
}

/// Writes the time series as CSV (one row per interval and flow).
pub fn write_csv(
    w: &mut impl Write,
    flows: &[Flow],
    rx: &Series,
    tx: &Series,
    weighted: bool,
) -> std::io::Result<()> {
    writeln!(
        w,
        "interval,t_start_s,t_end_s,flow,name,tx_bytes,tx_bps,rx_packets,rx_bytes,rx_bps,jain"
    )?;
    let secs = rx.interval_ns as f64 / 1e9;
    let weights: Vec<f64> = flows.iter().map(|f| f.weight).collect();
    for i in 0..rx.len().max(tx.len()) {
        let jain = rx
            .report(i, weighted.then_some(weights.as_slice()))
            .map_or(f64::NAN, |r| r.jain);
        for (f, fl) in flows.iter().enumerate() {
            let rb = rx.bytes(i).map_or(0, |b| b[f]);
            let rp = rx.packets(i).map_or(0, |b| b[f]);
            let tb = tx.bytes(i).map_or(0, |b| b[f]);
            writeln!(
                w,
                "{i},{:.3},{:.3},{f},{},{tb},{:.0},{rp},{rb},{:.0},{:.6}",
                i as f64 * secs,
                (i + 1) as f64 * secs,
                fl.name.replace(',', ";"),
                tb as f64 * 8.0 / secs,
                rb as f64 * 8.0 / secs,
                jain
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::spec::parse_flow;

    #[test]
    fn csv_has_a_row_per_interval_and_flow() {
        let flows = vec![
            parse_flow("rate=1M,name=a", 0, 2048).expect("valid"),
            parse_flow("rate=1M,name=b,dport=5", 1, 2048).expect("valid"),
        ];
        let mut rx = Series::new(2, 100_000_000, 0);
        rx.record(0, 1250, 10);
        rx.record(1, 1250, 150_000_000);
        let tx = rx.clone();
        let mut out = Vec::new();
        write_csv(&mut out, &flows, &rx, &tx, false).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 2 * 2);
        assert!(
            lines[1].starts_with("0,0.000,0.100,0,a,1250,100000,1,1250,100000,"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn interval_lines_show_each_flow_and_jain() {
        let flows = vec![
            parse_flow("rate=1M,name=a", 0, 2048).expect("valid"),
            parse_flow("rate=1M,name=b,dport=5", 1, 2048).expect("valid"),
        ];
        let l = interval_line(&flows, 3, 100_000_000, &[1250, 1250], false);
        assert!(l.contains("0.30-"), "{l}");
        assert!(l.contains("a    0.10"), "{l}");
        assert!(l.contains("jain 1.0000"), "{l}");
    }
}
