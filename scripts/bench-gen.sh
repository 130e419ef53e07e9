#!/usr/bin/env bash
# xdpgen benchmark, side by side in one run on the direct veth testbed
# ([xs-gen] gen0 ── sink0 [xs-sink], no DUT):
#   - 64-byte frames as fast as possible: iperf3 UDP (-l 18: 60-byte frames +
#     FCS) vs xdpgen --mode socket vs xdpgen (AF_XDP); packets/s sent and
#     received, median of 3 x 5 s each;
#   - 1 Gbit/s of 1500-byte frames: xdpgen's rate error (whole run and worst
#     1-second window) and inter-departure spread;
#   - xdpgen's own measurement overhead: one-way latency of the direct veth
#     loop at 10 Mbit/s (what every latency it reports includes).
# Results and environment go to bench-results/gen/<date>-<commit>/.
# Labelled "veth, copy mode, 2 vCPU". Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install iperf3 python3
cargo build --release -q -p gen
results_dir gen
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU"
    echo "iperf3: $(iperf3 --version | head -1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/env.txt"
trap 'scripts/testbed.sh down' EXIT
scripts/testbed.sh up direct
XG=(./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink)
: > "$out/results.jsonl"

iperf64() { # -> {"tx_pps","rx_pps"} of one 5 s run
    ip netns exec xs-sink iperf3 -s -1 -p 5402 -J >/tmp/bg-srv.json 2>/dev/null &
    sleep 0.3
    ip netns exec xs-gen iperf3 -u -c 10.211.0.2 -p 5402 -b 0 -l 18 -t 5 -J >/tmp/bg-cli.json 2>/dev/null || true
    wait
    python3 - <<'PY'
import json
c = json.load(open("/tmp/bg-cli.json"))["end"]["sum"]
s = json.load(open("/tmp/bg-srv.json"))["end"]["sum"]
print(json.dumps({"tx_pps": c["packets"] / c["seconds"],
                  "rx_pps": (s["packets"] - s["lost_packets"]) / s["seconds"]}))
PY
}
xdpgen_max() { # mode -> {"tx_pps","rx_pps"} of one 5 s run
    "${XG[@]}" --mode "$1" --flow rate=max,size=60 --duration 5s --batch 256 --in-flight 512 -q --json /tmp/bg-xg.json >/dev/null 2>&1 || true
    python3 - <<'PY'
import json
s = json.load(open("/tmp/bg-xg.json"))
f = s["flows"][0]
print(json.dumps({"tx_pps": f["tx"]["packets"] / s["duration_s"],
                  "rx_pps": f["rx"]["unique"] / s["duration_s"]}))
PY
}
median3() { # cmd... -> the run whose rx_pps is the median of 3
    for _ in 1 2 3; do "$@"; done | python3 -c '
import json, sys
rows = sorted((json.loads(l) for l in sys.stdin), key=lambda r: r["rx_pps"])
print(json.dumps(rows[1]))'
}

# The sink's veth processes what arrives in NAPI context; by default that runs
# on the sending CPU (inside the sender's syscall), so on 2 vCPUs receive work
# is charged to the sender. Threaded NAPI moves it to a kernel thread the
# scheduler can put on the other CPU, as a real NIC's IRQ affinity would.
for napi in inline threaded; do
    ip netns exec xs-sink sh -c "echo $([ $napi = threaded ] && echo 1 || echo 0) > /sys/class/net/sink0/threaded"
    r=$(median3 iperf64);            echo "{\"setup\":\"iperf3 UDP\",\"napi\":\"$napi\",$(echo "$r" | cut -c2-)" | tee -a "$out/results.jsonl"
    r=$(median3 xdpgen_max socket);  echo "{\"setup\":\"xdpgen --mode socket\",\"napi\":\"$napi\",$(echo "$r" | cut -c2-)" | tee -a "$out/results.jsonl"
    r=$(median3 xdpgen_max xdp);     echo "{\"setup\":\"xdpgen (AF_XDP)\",\"napi\":\"$napi\",$(echo "$r" | cut -c2-)" | tee -a "$out/results.jsonl"
done
ip netns exec xs-sink sh -c "echo 0 > /sys/class/net/sink0/threaded"

# 1 Gbit/s of 1500-byte frames, 5 s.
"${XG[@]}" --flow rate=1G,size=1500 --duration 5s -q --json "$out/gen-1g-1500.json" >/dev/null
# Measurement overhead: the direct loop's latency at 10 Mbit/s, 5 s.
"${XG[@]}" --flow rate=10M,size=1500 --duration 5s -q --json "$out/loop-latency.json" >/dev/null

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
base = {r["napi"]: r for r in rows if r["setup"] == "iperf3 UDP"}
g = json.load(open(f"{out}/gen-1g-1500.json"))["flows"][0]
l = json.load(open(f"{out}/loop-latency.json"))["flows"][0]
lines = [
    "64-byte frames (60 B + FCS), as fast as each sender goes, median of 3 x 5 s:",
    "",
    "| sender | sink veth NAPI | sent kpps | received kpps | sent vs iperf3 | received vs iperf3 |",
    "|---|---|---|---|---|---|",
]
for r in rows:
    b = base[r["napi"]]
    lines.append(f"| {r['setup']} | {r['napi']} | {r['tx_pps']/1e3:.0f} | {r['rx_pps']/1e3:.0f} "
                 f"| {r['tx_pps']/b['tx_pps']:.2f}x | {r['rx_pps']/b['rx_pps']:.2f}x |")
t = g["tx"]
lines += [
    "",
    "1 Gbit/s of 1500-byte frames, 5 s:",
    "",
    "| requested | sent | rate error | worst 1 s window | received | loss | inter-departure p50 / p99 / stddev |",
    "|---|---|---|---|---|---|---|",
    f"| 1000 Mbit/s | {t['rate_bps']/1e6:.1f} Mbit/s | {t['rate_error']*100:+.3f} % | {t['rate_error_1s_max']*100:.3f} % "
    f"| {g['rx']['rate_bps']/1e6:.1f} Mbit/s | {g['rx']['loss_ratio']*100:.3f} % "
    f"| {t['idt_ns']['p50']/1e3:.1f} / {t['idt_ns']['p99']/1e3:.1f} / {t['idt_ns']['stddev']/1e3:.1f} µs |",
    "",
    "Measurement overhead (one-way latency of the direct veth loop, 10 Mbit/s, 1500 B, 5 s):",
    "",
    "| min | p50 | p99 | p99.9 | max |",
    "|---|---|---|---|---|",
    "| " + " | ".join(f"{l['latency_ns'][k]/1e3:.1f} µs" for k in ["min", "p50", "p99", "p999", "max"]) + " |",
]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/env.txt"
echo "results in $out"
