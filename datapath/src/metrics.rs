//! `/metrics`: a running instance's figures in the OpenMetrics text format
//! (Prometheus scrapes it), encoded by the official client library. Names
//! follow node_exporter's qdisc metrics (`..._packets_total`,
//! `..._bytes_total`, `..._drops_total`), labelled by port, direction,
//! pipe and flowset; per-flow series only for the top flows of each
//! flowset (64), so the cardinality stays bounded.

use crate::stats::Show;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    port: String,
    side: String,
    way: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortInfo {
    port: String,
    side: String,
    xdp_mode: String,
    bind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrameLabels {
    worker: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipeLabels {
    direction: String,
    pipe: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    direction: String,
    pipe: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    direction: String,
    pipe: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    direction: String,
    pipe: String,
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowsetLabels {
    direction: String,
    flowset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowsetDropLabels {
    direction: String,
    flowset: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowsetQuantileLabels {
    direction: String,
    flowset: String,
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    direction: String,
    flowset: String,
    flow: String,
}

type Count = Counter<u64, AtomicU64>;

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Count::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn family<L>(reg: &mut Registry, name: &str, help: &str) -> Family<L, Count>
where
    L: Clone + std::hash::Hash + Eq + std::fmt::Debug + EncodeLabelSet + Send + Sync + 'static,
{
    let f = Family::<L, Count>::default();
    reg.register(name, help, f.clone());
    f
}

/// The exposition of `s`.
pub(crate) fn render(s: &Show) -> String {
    let mut reg = Registry::default();
    let ports = family::<PortLabels>(
        &mut reg,
        "xdpsched_port_frames",
        "Frames received (way=rx) and sent (way=tx) per port",
    );
    for p in &s.ports {
        for (way, n) in [("rx", p.rx), ("tx", p.tx)] {
            ports
                .get_or_create(&PortLabels {
                    port: p.iface.clone(),
                    side: p.side.into(),
                    way: way.into(),
                })
                .inc_by(n);
        }
    }
    let info = Family::<PortInfo, Gauge>::default();
    reg.register(
        "xdpsched_port_info",
        "A port: its XDP attach mode (native, skb) and its AF_XDP sockets' mode (copy, zerocopy)",
        info.clone(),
    );
    for p in &s.ports {
        info.get_or_create(&PortInfo {
            port: p.iface.clone(),
            side: p.side.into(),
            xdp_mode: p.xdp_mode.into(),
            bind: p.bind.into(),
        })
        .set(1);
    }
    let cpu = Family::<WorkerLabels, Counter<f64, AtomicU64>>::default();
    reg.register(
        "xdpsched_worker_cpu_seconds",
        "CPU time a worker thread used (its busy fraction is the rate)",
        cpu.clone(),
    );
    let sleeps = family::<WorkerLabels>(
        &mut reg,
        "xdpsched_worker_wakeups",
        "Times a worker slept and woke",
    );
    let csums = family::<WorkerLabels>(
        &mut reg,
        "xdpsched_checksums_completed",
        "Partial TCP/UDP checksums a worker completed (--checksum)",
    );
    let kicks = family::<WorkerLabels>(
        &mut reg,
        "xdpsched_tx_kicks",
        "TX kicks (sendto) a worker made",
    );
    let frames = Family::<FrameLabels, Gauge>::default();
    reg.register(
        "xdpsched_frames",
        "UMEM frames of a worker's share by where they are: free, fill (the kernel's, for receiving), tx (in TX rings or awaiting completion), queued (in the emulators)",
        frames.clone(),
    );
    for w in &s.workers {
        let l = WorkerLabels {
            worker: w.worker.to_string(),
        };
        cpu.get_or_create(&l).inc_by(w.cpu_s);
        sleeps.get_or_create(&l).inc_by(w.sleeps);
        kicks.get_or_create(&l).inc_by(w.tx_kicks);
        csums.get_or_create(&l).inc_by(w.checksums_completed);
        for (state, n) in [
            ("free", w.frames_free),
            ("fill", w.frames_in_fill),
            ("tx", w.frames_in_tx),
            ("queued", w.frames_queued),
        ] {
            frames
                .get_or_create(&FrameLabels {
                    worker: l.worker.clone(),
                    state: state.into(),
                })
                .set(n as i64);
        }
    }
    counter(
        &mut reg,
        "xdpsched_reloads",
        "Configuration reloads applied",
        s.reloads,
    );
    let packets = family::<PipeLabels>(&mut reg, "xdpsched_packets", "Packets delivered by a pipe");
    let backlog = Family::<PipeLabels, Gauge>::default();
    reg.register(
        "xdpsched_backlog_packets",
        "Packets a pipe holds now: queued, on the link, propagating",
        backlog.clone(),
    );
    let backlog_b = Family::<PipeLabels, Gauge>::default();
    reg.register(
        "xdpsched_backlog_bytes",
        "Bytes a pipe holds now",
        backlog_b.clone(),
    );
    let bytes = family::<PipeLabels>(
        &mut reg,
        "xdpsched_bytes",
        "Bytes (frames) delivered by a pipe",
    );
    let drops = family::<DropLabels>(
        &mut reg,
        "xdpsched_drops",
        "Packets a pipe dropped, by reason (loss: its loss model)",
    );
    let marks = family::<PipeLabels>(
        &mut reg,
        "xdpsched_ecn_marks",
        "ECN-capable packets a pipe's queue management marked CE instead of dropping",
    );
    let sojourn = Family::<QuantileLabels, Gauge<f64, AtomicU64>>::default();
    reg.register(
        "xdpsched_sojourn_seconds",
        "Time the packets a pipe sent spent in its scheduler, since start: quantiles 0.5, 0.99 and 1 (the maximum)",
        sojourn.clone(),
    );
    let sojourned = family::<PipeLabels>(
        &mut reg,
        "xdpsched_sojourn_packets",
        "Packets in xdpsched_sojourn_seconds",
    );
    let duplicated = family::<PipeLabels>(
        &mut reg,
        "xdpsched_duplicated",
        "Duplicates a pipe made (netem duplicate), each a frame from the free list",
    );
    let dup_no_frame = family::<PipeLabels>(
        &mut reg,
        "xdpsched_duplicate_no_frame",
        "Duplicates a pipe decided and could not make: no free frame",
    );
    let corrupted = family::<PipeLabels>(
        &mut reg,
        "xdpsched_corrupted",
        "Packets a pipe flipped a bit of (netem corrupt)",
    );
    let dropping = Family::<PipeLabels, Gauge>::default();
    reg.register(
        "xdpsched_codel_dropping_flows",
        "Flows of a pipe in CoDel's dropping state now",
        dropping.clone(),
    );
    let class_bytes = family::<ClassLabels>(
        &mut reg,
        "xdpsched_class_bytes",
        "Bytes an HTB class sent (its own and its descendants')",
    );
    let class_packets = family::<ClassLabels>(
        &mut reg,
        "xdpsched_class_packets",
        "Packets an HTB class sent (its own and its descendants')",
    );
    let class_lends = family::<ClassLabels>(
        &mut reg,
        "xdpsched_class_lends",
        "Packets an HTB class sent with its own tokens at its level (tc's lended)",
    );
    let class_borrows = family::<ClassLabels>(
        &mut reg,
        "xdpsched_class_borrows",
        "Packets an HTB class sent borrowing from an ancestor (tc's borrowed)",
    );
    for p in &s.pipes {
        let l = PipeLabels {
            direction: p.report.dir.into(),
            pipe: p.report.name.clone(),
        };
        for c in &p.report.classes {
            let cl = ClassLabels {
                direction: l.direction.clone(),
                pipe: l.pipe.clone(),
                class: c.name.clone(),
            };
            class_bytes.get_or_create(&cl).inc_by(c.bytes);
            class_packets.get_or_create(&cl).inc_by(c.packets);
            class_lends.get_or_create(&cl).inc_by(c.lends);
            class_borrows.get_or_create(&cl).inc_by(c.borrows);
        }
        marks.get_or_create(&l).inc_by(p.report.ecn_marked);
        duplicated.get_or_create(&l).inc_by(p.report.duplicated);
        dup_no_frame
            .get_or_create(&l)
            .inc_by(p.report.duplicate_no_frame);
        corrupted.get_or_create(&l).inc_by(p.report.corrupted);
        let so = &p.report.sojourn;
        for (q, ns) in [("0.5", so.p50_ns), ("0.99", so.p99_ns), ("1", so.max_ns)] {
            sojourn
                .get_or_create(&QuantileLabels {
                    direction: l.direction.clone(),
                    pipe: l.pipe.clone(),
                    quantile: q.into(),
                })
                .set(ns as f64 * 1e-9);
        }
        sojourned.get_or_create(&l).inc_by(so.count);
        dropping
            .get_or_create(&l)
            .set(i64::from(p.report.codel_dropping));
        packets.get_or_create(&l).inc_by(p.report.delivered);
        backlog
            .get_or_create(&l)
            .set(p.report.backlog_packets as i64);
        backlog_b
            .get_or_create(&l)
            .set(p.report.backlog_bytes as i64);
        bytes.get_or_create(&l).inc_by(p.report.delivered_bytes);
        let reasons = p
            .report
            .drops
            .iter()
            .map(|(r, n)| (*r, *n))
            .chain([("loss", p.report.lost)]);
        for (reason, n) in reasons {
            drops
                .get_or_create(&DropLabels {
                    direction: l.direction.clone(),
                    pipe: l.pipe.clone(),
                    reason: reason.into(),
                })
                .inc_by(n);
        }
    }
    let flows = Family::<FlowsetLabels, Gauge>::default();
    reg.register(
        "xdpsched_flows",
        "Per-flow queues a flowset holds now",
        flows.clone(),
    );
    let created = family::<FlowsetLabels>(
        &mut reg,
        "xdpsched_flows_created",
        "Per-flow queues a flowset created",
    );
    let expired = family::<FlowsetLabels>(
        &mut reg,
        "xdpsched_flows_expired",
        "Idle per-flow queues a flowset expired",
    );
    let fs_drops = family::<FlowsetDropLabels>(
        &mut reg,
        "xdpsched_flowset_drops",
        "Packets a flowset's queues dropped, by cause (aqm: queue management; limit: queue limits)",
    );
    let fs_marks = family::<FlowsetLabels>(
        &mut reg,
        "xdpsched_flowset_ecn_marks",
        "ECN-capable packets a flowset's queue management marked CE",
    );
    let fs_sojourn = Family::<FlowsetQuantileLabels, Gauge<f64, AtomicU64>>::default();
    reg.register(
        "xdpsched_flowset_sojourn_seconds",
        "Time the packets a flowset sent spent queued, since start: quantiles 0.5, 0.99 and 1",
        fs_sojourn.clone(),
    );
    for f in &s.flowsets {
        let l = FlowsetLabels {
            direction: f.dir.into(),
            flowset: f.name.clone(),
        };
        for (cause, n) in [("aqm", f.aqm_drops), ("limit", f.limit_drops)] {
            fs_drops
                .get_or_create(&FlowsetDropLabels {
                    direction: l.direction.clone(),
                    flowset: l.flowset.clone(),
                    cause: cause.into(),
                })
                .inc_by(n);
        }
        fs_marks.get_or_create(&l).inc_by(f.ecn_marked);
        let so = &f.sojourn;
        for (q, ns) in [("0.5", so.p50_ns), ("0.99", so.p99_ns), ("1", so.max_ns)] {
            fs_sojourn
                .get_or_create(&FlowsetQuantileLabels {
                    direction: l.direction.clone(),
                    flowset: l.flowset.clone(),
                    quantile: q.into(),
                })
                .set(ns as f64 * 1e-9);
        }
        flows.get_or_create(&l).set(f.flows as i64);
        created.get_or_create(&l).inc_by(f.created);
        expired.get_or_create(&l).inc_by(f.expired);
    }
    let fbytes = family::<FlowLabels>(
        &mut reg,
        "xdpsched_flow_bytes",
        "Bytes a flow offered (the top flows of each flowset)",
    );
    let fback = Family::<FlowLabels, Gauge>::default();
    reg.register(
        "xdpsched_flow_backlog_packets",
        "Packets a flow has queued now (the top flows of each flowset)",
        fback.clone(),
    );
    for f in &s.flows {
        let l = FlowLabels {
            direction: f.report.dir.into(),
            flowset: f.report.flowset.clone(),
            flow: f.report.key.clone(),
        };
        fbytes.get_or_create(&l).inc_by(f.report.bytes);
        fback
            .get_or_create(&l)
            .set(i64::from(f.report.backlog_packets));
    }
    counter(
        &mut reg,
        "xdpsched_dropped",
        "Frames dropped, all causes",
        s.dropped,
    );
    counter(&mut reg, "xdpsched_lost_before_rx", "Frames that reached the ports and never the RX rings (the kernel's rx_dropped + rx_ring_full)", s.lost_before_rx);
    counter(
        &mut reg,
        "xdpsched_xdp_to_socket",
        "Frames the XDP programs steered to the sockets",
        s.xdp_to_socket,
    );
    counter(
        &mut reg,
        "xdpsched_xdp_failed_open",
        "Frames the XDP programs sent past the sockets (fail-open)",
        s.xdp_failed_open,
    );
    let up = Gauge::<i64>::default();
    up.set(s.uptime_s as i64);
    reg.register(
        "xdpsched_uptime_seconds",
        "Seconds since the instance started",
        up,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}
