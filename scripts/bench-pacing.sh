#!/usr/bin/env bash
# Pacing accuracy of a per-flow rate (a flowset's `rate`) through xdpsched,
# measured by xdpgen on the veth testbed (endpoints at kernel defaults): one
# UDP flow of 1500-byte frames offered 1.2x the rate for 10 s, its frame rate
# at the sink over 2..10 s against the configured rate, at 10, 100 and 1000
# Mbit/s (RATES), ROUNDS rounds (default 3). Carousel's figure is 0.5 %.
# Each round also records where frames went missing, so a shortfall can be
# told apart from the testbed's own losses: xdpgen's offered rate and TX
# stalls, the frames the sink's kernel dropped before xdpgen read them
# (lost_at_receiver), xdpsched's frames lost before its RX ring
# (lost_before_rx: the flow was not backlogged at the pacer then) and its
# queue-limit drops.
# Results: bench-results/pacing/<date>-<commit>/ (results.jsonl, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3
cargo build --release -q -p datapath -p gen
XS=./target/release/xdpsched
results_dir pacing
tmp=$(mktemp -d /tmp/bench-pacing.XXXXXX)
RATES=${RATES:-"10 100 1000"}
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline; endpoints at kernel defaults"
    echo "load: xdpgen, 1 UDP flow offered 1.2x the rate, 1500-byte frames, 10 s; rate over 2..10 s; rates $RATES Mbit/s; ${ROUNDS:-3} rounds"
} > "$out/env.txt"
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
scripts/testbed.sh up bridge
sink_mac=$(ip -n xs-sink -br link show sink0 | awk '{print $3}')
: > "$out/results.jsonl"
for r in $(seq "${ROUNDS:-3}"); do
    for mbit in $RATES; do
        printf '[[pipe]]\nname = "p"\nsched = "drr"\n[[flowset]]\nname = "paced"\npipe = "p"\nmask = "5-tuple"\nrate = "%sMbit/s"\nqueue = 500\n[[rule]]\nflowset = "paced"\n' "$mbit" > "$tmp/pace.toml"
        rm -f "$tmp/xs.json" "$tmp/gen.json"
        ip netns exec xs-dut "$XS" --iface dutA --out dutB --config "$tmp/pace.toml" \
            --stats-json "$tmp/xs.json" >"$tmp/xs.log" 2>&1 &
        for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
        ./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink \
            --dst-mac "$sink_mac" --dst-ip 10.211.0.2 \
            --flow "name=paced,dport=10001,rate=$((mbit * 6 / 5))M,size=1500" \
            --duration 10s --drain 300ms -q --csv "$tmp/rates.csv" --json "$tmp/gen.json" >/dev/null 2>&1 || true
        ip netns pids xs-dut | xargs -r kill -INT
        for _ in $(seq 50); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
        for _ in $(seq 50); do [ -s "$tmp/xs.json" ] && break; sleep 0.1; done
        python3 - "$mbit" "$r" "$tmp/rates.csv" "$tmp/gen.json" "$tmp/xs.json" <<'PY' | tee -a "$out/results.jsonl"
import csv, json, sys
mbit, rnd, path = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return {}
gen, xs = load(sys.argv[4]), load(sys.argv[5])
flow = (gen.get("flows") or [{}])[0]
bits, secs = 0.0, 0.0
for row in list(csv.reader(open(path)))[1:]:
    t0, t1 = float(row[1]), float(row[2])
    if t0 < 2.0 - 1e-9 or t1 > 10.0 + 1e-9:
        continue
    bits += float(row[8]) * 8
    secs += t1 - t0
got = bits / secs / 1e6
print(json.dumps({"rate_mbit": mbit, "round": rnd, "got_mbit": round(got, 4),
    "error_pct": round(100 * (got - mbit) / mbit, 3),
    "offered_mbit": round(flow.get("tx", {}).get("rate_bps", 0) / 1e6, 3),
    "tx_stalls": gen.get("tx_stalls"), "lost_at_receiver": gen.get("lost_at_receiver"),
    "xs_lost_before_rx": xs.get("lost_before_rx"), "xs_dropped": xs.get("dropped"),
    "xs_frames_balanced": xs.get("frames_balanced")}))
PY
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
lines = ["| rate (Mbit/s) | at the sink: median | error: median | worst | offered (median) | lost before xdpsched's RX (max) | lost at xdpgen's receiver (max) |", "|---|---|---|---|---|---|---|"]
for m in sorted({r["rate_mbit"] for r in rows}):
    rs = [r for r in rows if r["rate_mbit"] == m]
    e = [r["error_pct"] for r in rs]
    off = statistics.median(r.get("offered_mbit") or 0 for r in rs)
    lb = max((r.get("xs_lost_before_rx") or 0) for r in rs)
    la = max((r.get("lost_at_receiver") or 0) for r in rs)
    lines.append(f"| {m:g} | {statistics.median(r['got_mbit'] for r in rs):.3f} | {statistics.median(e):+.3f} % | {max(e, key=abs):+.3f} % | {off:.1f} | {lb} | {la} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
