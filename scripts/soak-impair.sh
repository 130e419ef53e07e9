#!/usr/bin/env bash
# A long run of the impairments at a user's size, on the veth testbed with
# endpoints at kernel defaults, FLOWS greedy TCP cubic flows (iperf3 -P,
# default 16) each phase:
#  1. netem-like: 50 Mbit/s, delay 40 ms ± 5 ms (normal), reorder 5 %,
#     duplicate 1 %, corrupt 0.1 %, loss 0.5 % — for DURATION s (default 120);
#  2. examples/18-cellular-trace.toml (Mahimahi traces up and down, 20 ms
#     each way) with its uplink packet log — for DURATION / 2 s.
# Reports goodput, xdpsched's duplicates (and those without a frame),
# corruptions, drops, frames lost before RX, its peak RSS, the packet log's
# size and lines lost, and the frame balance at exit.
# Results: bench-results/soak-impair/<date>-<commit>/ (result.json, stats-*.json, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 iperf3
cargo build --release -q -p datapath
results_dir soak-impair
FLOWS=${FLOWS:-16}
DURATION=${DURATION:-120}
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, endpoints at kernel defaults"
    echo "load: $FLOWS TCP cubic flows (iperf3 -P $FLOWS): $DURATION s through the netem-like pipe, $((DURATION / 2)) s through example 18"
} > "$out/env.txt"
tmp=$(mktemp -d /tmp/xs-soak.XXXXXX)
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 1; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
scripts/testbed.sh up bridge >/dev/null
cat > "$tmp/netem.toml" <<'TOML'
[[pipe]]
name = "netem"
bandwidth = "50Mbit/s"
delay = "40ms"
jitter = "5ms"
distribution = "normal"
reorder = 0.05
duplicate = 0.01
corrupt = 0.001
plr = 0.005
queue = 1000

[[rule]]
pipe = "netem"
TOML
sed 's|^# trace_log = "up.log".*|trace_log = "'"$tmp"'/up.log"|; s|"traces/|"'"$PWD"'/examples/traces/|' \
    examples/18-cellular-trace.toml > "$tmp/cellular.toml"
phase() { # name config seconds
    local name=$1 cfg=$2 secs=$3
    ip netns exec xs-dut target/release/xdpsched --iface dutA --out dutB --config "$cfg" \
        --stats-json "$out/stats-$name.json" > "$tmp/xs-$name.log" 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    ip netns exec xs-sink timeout $((secs + 60)) iperf3 -s -1 -J > "$tmp/srv-$name.json" 2>/dev/null &
    local srv=$!
    sleep 0.5
    ip netns exec xs-gen timeout $((secs + 60)) iperf3 -c 10.211.0.2 -P "$FLOWS" -t "$secs" -C cubic -J \
        > "$tmp/cli-$name.json" 2>/dev/null || true
    wait "$srv" || true
    local pid
    pid=$(pgrep -f "xdpsched --iface dutA --out dutB --config $cfg" | head -1)
    grep VmHWM "/proc/$pid/status" | awk '{print $2}' > "$tmp/rss-$name.txt" || echo 0 > "$tmp/rss-$name.txt"
    ip netns pids xs-dut | xargs -r kill -INT
    for _ in $(seq 100); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
}
phase netem "$tmp/netem.toml" "$DURATION"
phase cellular "$tmp/cellular.toml" $((DURATION / 2))
python3 - "$tmp" "$out" <<'PY' | tee "$out/result.json"
import json, os, sys
tmp, out = sys.argv[1], sys.argv[2]
res = {}
for name in ("netem", "cellular"):
    srv = json.load(open(f"{tmp}/srv-{name}.json"))
    st = json.load(open(f"{out}/stats-{name}.json"))
    log = open(f"{tmp}/xs-{name}.log").read()
    pipes = {p["name"] + ":" + p["dir"]: p for p in st["pipes"]}
    r = {
        "goodput_mbit": round(srv["end"]["sum_received"]["bits_per_second"] / 1e6, 2),
        "dropped": st["dropped"], "drops": {k: v for k, v in st["drops"].items() if v},
        "lost_before_rx": st["lost_before_rx"], "seed": st["seed"],
        "duplicated": sum(p["duplicated"] for p in pipes.values()),
        "duplicate_no_frame": sum(p["duplicate_no_frame"] for p in pipes.values()),
        "corrupted": sum(p["corrupted"] for p in pipes.values()),
        "delivered": {k: p["delivered"] for k, p in pipes.items()},
        "peak_rss_kib": int(open(f"{tmp}/rss-{name}.txt").read().strip() or 0),
        "frames_balanced": st["frames_balanced"],
    }
    if name == "cellular":
        log_path = f"{tmp}/up.log"
        lines = open(log_path).read().splitlines() if os.path.exists(log_path) else []
        r["packet_log_lines"] = len(lines)
        r["packet_log_departures"] = sum(1 for l in lines if l.split(" ")[1:2] == ["-"])
        r["trace_log_lost"] = st["trace_log_lost"]
    res[name] = r
print(json.dumps(res, indent=1))
PY
