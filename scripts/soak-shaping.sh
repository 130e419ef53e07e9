#!/usr/bin/env bash
# A long run of issue 16's shaping at a user's size, on the veth testbed
# with endpoints at kernel defaults, through xdpsched's bridge:
#   - a class tree on a 100 Mbit/s root with a 20 ms link delay (rate x
#     delay, 170 full frames, above a flow's queue of 50);
#   - class "paced": a flowset of per-flow rates (500 kbit/s each) with a
#     table of 64 flows, fed 128 UDP streams (iperf3 -P 128, 1 Mbit/s each:
#     64 flows get a queue of their own, the other 64 share the overflow
#     queue, paced as one flow);
#   - class "bulk": FLOWS greedy TCP cubic flows (default 16);
#   - a reload half way that swaps the classes' rates and halves the
#     per-flow rate (250 kbit/s).
# DURATION s in all (default 120). Reports the paced flows' rates before
# and after the reload, TCP goodput, drops by reason, frames lost before
# RX, the reload's figures, xdpsched's peak RSS and the frame balance.
# Results: bench-results/soak-shaping/<date>-<commit>/ (result.json, stats.json, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 iperf3
cargo build --release -q -p datapath
results_dir soak-shaping
FLOWS=${FLOWS:-16}
DURATION=${DURATION:-120}
half=$((DURATION / 2))
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, endpoints at kernel defaults"
    echo "load: 128 UDP streams x 1 Mbit/s into the paced class, $FLOWS TCP cubic flows into bulk, $DURATION s, a reload at $half s"
} > "$out/env.txt"
tmp=$(mktemp -d /tmp/xs-soak-shaping.XXXXXX)
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; ip netns pids xs-sink 2>/dev/null | xargs -r kill 2>/dev/null || true; sleep 1; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
scripts/testbed.sh up bridge >/dev/null
tree() { # per-flow rate, paced class rate, bulk class rate
    cat <<TOML
[[pipe]]
name = "uplink"
bandwidth = "unlimited"
delay = "20ms"

[[class]]
name = "root"
pipe = "uplink"
rate = "100Mbit/s"

[[class]]
name = "paced"
parent = "root"
rate = "$2"
ceil = "100Mbit/s"

[[class]]
name = "bulk"
parent = "root"
rate = "$3"
ceil = "100Mbit/s"

[[flowset]]
name = "paced"
class = "paced"
mask = "5-tuple"
max_flows = 64
rate = "$1"
queue = 50

[[flowset]]
name = "bulk"
class = "bulk"
mask = "5-tuple"
queue = 200

[[rule]]
flowset = "paced"
match = { proto = "udp", dst_port = 5201 }

[[rule]]
flowset = "bulk"
match = { proto = "tcp" }
TOML
}
tree 500kbit/s 40Mbit/s 60Mbit/s > "$tmp/before.toml"
tree 250kbit/s 60Mbit/s 40Mbit/s > "$tmp/after.toml"
ip netns exec xs-dut target/release/xdpsched --iface dutA --out dutB --config "$tmp/before.toml" \
    --stats-json "$out/stats.json" > "$tmp/xs.log" 2>&1 &
for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
ip netns exec xs-sink timeout $((DURATION + 60)) iperf3 -s -p 5201 -1 -J > "$tmp/udp-srv.json" 2>/dev/null &
ip netns exec xs-sink timeout $((DURATION + 60)) iperf3 -s -p 5202 -1 -J > "$tmp/tcp-srv.json" 2>/dev/null &
sleep 0.5
ip netns exec xs-gen timeout $((DURATION + 60)) iperf3 -c 10.211.0.2 -p 5201 -u -b 1M -l 1200 -P 128 \
    -t "$DURATION" -i 1 -J > "$tmp/udp-cli.json" 2>/dev/null &
ip netns exec xs-gen timeout $((DURATION + 60)) iperf3 -c 10.211.0.2 -p 5202 -P "$FLOWS" -C cubic \
    -t "$DURATION" -i 1 -J > "$tmp/tcp-cli.json" 2>/dev/null &
sleep "$half"
ip netns exec xs-dut target/release/xdpsched reload --iface dutA "$tmp/after.toml" --json > "$out/reload.json" || true
wait $(jobs -p | tail -4) 2>/dev/null || true
pid=$(ip netns pids xs-dut | head -1)
rss=$(grep VmHWM "/proc/$pid/status" | awk '{print $2}')
ip netns pids xs-dut | xargs -r kill -INT
for _ in $(seq 100); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
python3 - "$tmp" "$out" "$half" "$DURATION" "$rss" <<'PY' | tee "$out/result.json"
import json, statistics, sys
tmp, out, half, dur, rss = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5] or 0)
udp = json.load(open(f"{tmp}/udp-srv.json"))
tcp = json.load(open(f"{tmp}/tcp-srv.json"))
st = json.load(open(f"{out}/stats.json"))
def stream_rates(j, a, b):
    # Mbit/s of payload per stream over the intervals starting in [a, b).
    per = {}
    for iv in j.get("intervals", []):
        for s in iv["streams"]:
            if a <= s["start"] < b:
                p = per.setdefault(s["socket"], [0.0, 0.0])
                p[0] += s["bytes"] * 8
                p[1] += s["seconds"]
    return sorted(v[0] / v[1] / 1e6 for v in per.values() if v[1] > 0)
res = {}
for name, a, b in (("before", 5, half - 2), ("after", half + 5, dur - 2)):
    r = stream_rates(udp, a, b)
    res[name] = {"paced_streams": len(r), "paced_total_mbit": round(sum(r), 2),
                 "paced_median_mbit": round(statistics.median(r), 4) if r else None,
                 "paced_top64_min_mbit": round(min(r[-64:]), 4) if len(r) >= 64 else None,
                 "paced_top64_max_mbit": round(max(r[-64:]), 4) if len(r) >= 64 else None}
tcp_bits = sum(iv["sum"]["bytes"] * 8 for iv in tcp.get("intervals", []))
res["tcp_goodput_mbit"] = round(tcp_bits / max(1, dur) / 1e6, 2)
res["reload"] = json.load(open(f"{out}/reload.json")) if open(f"{out}/reload.json").read().strip() else None
res["dropped"] = st["dropped"]
res["drops"] = {k: v for k, v in st["drops"].items() if v}
res["lost_before_rx"] = st["lost_before_rx"]
res["frames_balanced"] = st["frames_balanced"]
res["peak_rss_kib"] = rss
res["flowsets"] = [{k: f[k] for k in ("name", "flows", "created", "overflowed", "limit_drops")} for f in st["flowsets"]]
print(json.dumps(res, indent=1))
PY
