#!/usr/bin/env bash
# Datapath benchmark, side by side in one run on the veth testbed:
#   kernel L2 bridge (br0 in the DUT namespace)  vs  xdpsched bridge (fifo, qfq; no rate limit)
# For each: iperf3 TCP gen -> sink (median of 3 x 5 s), and a 64-byte UDP
# flood (packets/s received by the sink, 5 s). Results and environment go to
# bench-results/datapath/<date>-<commit>/. Labelled "veth, copy mode, 2 vCPU":
# these are not NIC numbers. The UDP figures are bounded by iperf3's sender
# (one core, ~150-180 kpps here) until xdpgen exists; the ratio is what counts.
# Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install iperf3 python3
cargo build --release -q -p datapath
commit=$(git rev-parse --short HEAD)
out="bench-results/datapath/$(date -u +%Y-%m-%d)-$commit"
mkdir -p "$out"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet || echo ' (dirty)')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "kernel: $(uname -r)"
    echo "label: veth, copy mode, 2 vCPU"
    echo "traffic: iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
} > "$out/env.txt"
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; scripts/testbed.sh down' EXIT

tcp() { # -> bits/s (median of 3)
    for i in 1 2 3; do
        ip netns exec xs-sink iperf3 -s -1 -p 5401 -J >/tmp/bd-srv.json 2>/dev/null &
        sleep 0.3
        ip netns exec xs-gen iperf3 -c 10.211.0.2 -p 5401 -t 5 >/dev/null 2>&1 || true
        wait
        python3 -c 'import json;print(json.load(open("/tmp/bd-srv.json"))["end"]["sum_received"]["bits_per_second"])'
    done | sort -g | sed -n 2p
}
udp64() { # -> packets/s received
    ip netns exec xs-sink iperf3 -s -1 -p 5402 -J >/tmp/bd-udp.json 2>/dev/null &
    sleep 0.3
    ip netns exec xs-gen iperf3 -u -c 10.211.0.2 -p 5402 -b 0 -l 18 -t 5 >/dev/null 2>&1 || true
    wait
    python3 -c '
import json
s = json.load(open("/tmp/bd-udp.json"))["end"]["sum"]
print((s["packets"] - s["lost_packets"]) / s["seconds"])'
}
measure() { # name
    local t u
    t=$(tcp)
    u=$(udp64)
    printf '{"setup":"%s","tcp_bps":%s,"udp64_pps":%s}\n' "$1" "$t" "$u" | tee -a "$out/results.jsonl"
}

: > "$out/results.jsonl"
scripts/testbed.sh up bridge
# Kernel bridge.
ip -n xs-dut link add br0 type bridge
ip -n xs-dut link set dutA master br0
ip -n xs-dut link set dutB master br0
ip -n xs-dut link set br0 up
ip netns exec xs-gen ping -c 3 -W 1 10.211.0.2 >/dev/null
measure "kernel bridge"
ip -n xs-dut link del br0
for sched in fifo qfq; do
    ip netns exec xs-dut ./target/release/xdpsched --iface dutA --out dutB --sched $sched >/dev/null 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    measure "xdpsched $sched"
    ip netns pids xs-dut | xargs -r kill -INT
    sleep 1
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
k = rows[0]
lines = ["| setup | TCP Gbit/s | vs kernel | UDP 64 B kpps received | vs kernel |", "|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['setup']} | {r['tcp_bps']/1e9:.2f} | {r['tcp_bps']/k['tcp_bps']:.2f}x | {r['udp64_pps']/1e3:.0f} | {r['udp64_pps']/k['udp64_pps']:.2f}x |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
