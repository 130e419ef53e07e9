#!/usr/bin/env bash
# A long run of queue management at a user's size: xdpsched --sched fq_codel
# --rate 100mbit on the veth testbed, FLOWS greedy TCP cubic flows (iperf3
# -P, default 32; kernel-default endpoints) for DURATION seconds (default
# 120), a ping every 200 ms across the loaded link. Reports the goodput, the
# probe's RTT, the pipe's sojourn times, AQM and limit drops, the flows the
# flowset created and xdpsched's frame balance at exit.
# Results: bench-results/soak-aqm/<date>-<commit>/ (result.json, stats.json, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 iperf3
cargo build --release -q -p datapath
results_dir soak-aqm
FLOWS=${FLOWS:-32}
DURATION=${DURATION:-120}
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, endpoints at kernel defaults"
    echo "load: $FLOWS TCP cubic flows (iperf3 -P $FLOWS) for $DURATION s through --sched fq_codel --rate 100mbit; ping -i 0.2"
} > "$out/env.txt"
tmp=$(mktemp -d /tmp/xs-soak.XXXXXX)
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 1; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
scripts/testbed.sh up bridge >/dev/null
ip netns exec xs-dut target/release/xdpsched --iface dutA --out dutB --sched fq_codel --rate 100mbit \
    --stats-json "$out/stats.json" > "$tmp/xs.log" 2>&1 &
for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
ip netns exec xs-sink timeout $((DURATION + 60)) iperf3 -s -1 -J > "$tmp/srv.json" 2>/dev/null &
srv=$!
sleep 0.5
(sleep 5; ip netns exec xs-gen ping -c $(((DURATION - 10) * 5)) -i 0.2 -W 2 10.211.0.2 > "$tmp/ping.txt" 2>&1 || true) &
png=$!
ip netns exec xs-gen timeout $((DURATION + 60)) iperf3 -c 10.211.0.2 -P "$FLOWS" -t "$DURATION" -C cubic -J > "$tmp/cli.json" 2>/dev/null || true
wait "$srv" "$png" || true
ip netns pids xs-dut | xargs -r kill -INT
for _ in $(seq 100); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
python3 - "$tmp" "$out" "$DURATION" <<'PY' | tee "$out/result.json"
import json, re, sys
tmp, out, dur = sys.argv[1], sys.argv[2], float(sys.argv[3])
srv = json.load(open(f"{tmp}/srv.json"))
cli = json.load(open(f"{tmp}/cli.json"))
st = json.load(open(f"{out}/stats.json"))
log = open(f"{tmp}/xs.log").read()
rtts = sorted(float(m) for m in re.findall(r"time=([0-9.]+)", open(f"{tmp}/ping.txt").read()))
q = lambda v, f: v[min(len(v) - 1, int(f * len(v)))] if v else None
pipe = next(p for p in st["pipes"] if p["dir"] == "a-to-b")
fs = next(f for f in st["flowsets"] if f["dir"] == "a-to-b")
d = pipe["drops"]
print(json.dumps({
    "flows": len(cli.get("start", {}).get("connected", [])),
    "goodput_mbit": round(srv["end"]["sum_received"]["bits_per_second"] / 1e6, 2),
    "retransmits": cli["end"]["sum_sent"].get("retransmits"),
    "probe_rtt_p50_ms": q(rtts, 0.5), "probe_rtt_p99_ms": q(rtts, 0.99), "probe_replies": len(rtts),
    "sojourn_p50_ms": pipe["sojourn"]["p50_ns"] / 1e6, "sojourn_p99_ms": pipe["sojourn"]["p99_ns"] / 1e6,
    "sojourn_max_ms": pipe["sojourn"]["max_ns"] / 1e6,
    "aqm_drops": d.get("aqm", 0), "limit_drops": d.get("flow_limit", 0) + d.get("global_limit", 0) + d.get("pushed_out", 0),
    "flows_created": fs["created"], "dropped_total": st["dropped"], "lost_before_rx": st["lost_before_rx"],
    "frames_balanced": "frames balanced" in log,
}))
PY
