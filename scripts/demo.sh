#!/usr/bin/env bash
# The main job, on an embedded default: a veth testbed in network namespaces
# (gen ⇄ xdpsched ⇄ sink), xdpsched bridging with QFQ at 100 Mbit/s and
# per-5-tuple fairness, four concurrent TCP flows through it (iperf3 until
# xdpgen lands); prints each flow's throughput, its share and Jain's index.
# Then the scheduler simulation: weighted flows through every algorithm
# against the fluid GPS reference. Needs root for the testbed part.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install iperf3 python3

cargo build --release -q -p datapath
secs=${DEMO_SECONDS:-6}
rate=${DEMO_RATE:-100mbit}
work=$(mktemp -d)
cleanup() {
    ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true
    sleep 0.3
    scripts/testbed.sh down
    rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: the testbed part needs root (network namespaces, XDP); running the simulation only"
else
    scripts/testbed.sh up bridge
    ip netns exec xs-dut ./target/release/xdpsched --iface dutA --out dutB --sched qfq --rate "$rate" \
        >"$work/xdpsched.out" 2>"$work/xdpsched.err" &
    # Wait for the bridge (sockets bind in well under a second).
    for _ in $(seq 50); do
        ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break
        sleep 0.2
    done
    for p in 5201 5202 5203 5204; do
        ip netns exec xs-sink iperf3 -s -1 -p $p >/dev/null 2>&1 &
    done
    sleep 0.5
    echo "== 4 TCP flows, gen -> xdpsched (QFQ, $rate, per-flow fairness) -> sink, ${secs}s"
    for p in 5201 5202 5203 5204; do
        ip netns exec xs-gen iperf3 -c 10.211.0.2 -p $p -t "$secs" -J >"$work/flow-$p.json" 2>/dev/null &
    done
    wait $(jobs -p | tail -n 4) 2>/dev/null || true
    python3 - "$work" "$rate" <<'PY'
import json, sys, glob
work, rate = sys.argv[1], sys.argv[2]
rows = []
for f in sorted(glob.glob(f"{work}/flow-*.json")):
    try:
        d = json.load(open(f))
        bps = d["end"]["sum_received"]["bits_per_second"]
    except Exception as e:
        bps = 0.0
    rows.append((f.split("-")[-1][:-5], bps))
total = sum(b for _, b in rows) or 1.0
print(f"{'flow (port)':<12} {'Mbit/s':>8} {'share':>7}")
for port, b in rows:
    print(f"{port:<12} {b / 1e6:8.2f} {100 * b / total:6.1f}%")
xs = [b for _, b in rows]
jain = (sum(xs) ** 2) / (len(xs) * sum(x * x for x in xs)) if any(xs) else 0.0
print(f"{'total':<12} {total / 1e6:8.2f}   Jain's index {jain:.4f} (1 = perfectly equal)")
PY
    ip netns pids xs-dut | xargs -r kill -INT 2>/dev/null || true
    sleep 0.5
    cat "$work/xdpsched.out"
fi
echo
echo "== scheduler simulation against the fluid GPS reference"
cargo run --release -q -p sched --example demo
