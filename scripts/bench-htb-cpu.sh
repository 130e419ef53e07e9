#!/usr/bin/env bash
# CPU per forwarded packet with an HTB tree of CLASSES leaf classes (default
# 1000), xdpsched side by side with the kernel's HTB, on the veth testbed
# (endpoints at kernel defaults): xdpgen sends CLASSES UDP flows of 64-byte
# frames (one per class, destination ports 10001..) at RATE each (default
# 72 kbit/s of frames: ~150 kpps in all) for 8 s; every class has rate
# 1 Mbit/s (above its load) and ceil 1 Gbit/s under a 1 Gbit/s root, so the
# classes shape nothing and what is measured is classification plus the
# tree's work per packet. Three DUTs, alternating, ROUNDS rounds (default 3):
#   xdpsched   --config: the tree as [[class]]es, a flowset and a rule
#              (dst_port) per class, DRR in each leaf
#   kernel     a Linux bridge, HTB on its egress with the same classes,
#              u32 filters hashed on the destination port's low byte
#              (256 buckets, ~4 filters each: one lookup, not 1000), pfifo
#   bridge     the same bridge without a qdisc (the kernel's forwarding alone)
# The figure: the machine's CPU time (all CPUs, /proc/stat, generator and
# sink included — the same in every run) per packet received at the sink;
# each DUT's cost is its figure minus the plain bridge's. xdpsched's own
# process time per packet is given too.
# Results: bench-results/htb-cpu/<date>-<commit>/ (results.jsonl, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 iproute2
cargo build --release -q -p datapath -p gen
XS=./target/release/xdpsched
CLASSES=${CLASSES:-1000}
RATE=${RATE:-72k}
results_dir htb-cpu
tmp=$(mktemp -d /tmp/bench-htb-cpu.XXXXXX)
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline; endpoints at kernel defaults"
    echo "load: xdpgen, $CLASSES UDP flows x $RATE bit/s, 64-byte frames, 8 s; ${ROUNDS:-3} rounds"
    echo "tc: $(tc -V 2>&1 | head -1)"
} > "$out/env.txt"
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
scripts/testbed.sh up bridge
sink_mac=$(ip -n xs-sink -br link show sink0 | awk '{print $3}')
hz=$(getconf CLK_TCK)
: > "$out/results.jsonl"

python3 - "$CLASSES" "$tmp" <<'PY'
import sys
n, tmp = int(sys.argv[1]), sys.argv[2]
# xdpsched's configuration.
c = ['[[pipe]]', 'name = "uplink"', 'bandwidth = "unlimited"', 'sched = "drr"',
     '[[class]]', 'name = "root"', 'pipe = "uplink"', 'rate = "1Gbit/s"']
for i in range(n):
    c += ['[[class]]', f'name = "c{i}"', 'parent = "root"', 'rate = "1Mbit/s"', 'ceil = "1Gbit/s"',
          '[[flowset]]', f'name = "f{i}"', f'class = "c{i}"']
for i in range(n):
    c += ['[[rule]]', f'flowset = "f{i}"', f'match = {{ proto = "udp", dst_port = {10001 + i} }}']
open(f"{tmp}/htb.toml", "w").write("\n".join(c) + "\n")
# The kernel's: tc -batch lines.
t = ['qdisc add dev dutB root handle 1: htb',
     'class add dev dutB parent 1: classid 1:1 htb rate 1gbit ceil 1gbit']
for i in range(n):
    t.append(f'class add dev dutB parent 1:1 classid 1:{i + 16:x} htb rate 1mbit ceil 1gbit')
t.append('filter add dev dutB parent 1: prio 1 handle 2: protocol ip u32 divisor 256')
t.append('filter add dev dutB parent 1: prio 1 protocol ip u32 ht 800:: match ip protocol 17 0xff '
         'hashkey mask 0x000000ff at 20 link 2:')
for i in range(n):
    p = 10001 + i
    t.append(f'filter add dev dutB parent 1: prio 1 protocol ip u32 ht 2:{p & 0xff:x}: '
             f'match ip dport {p} 0xffff flowid 1:{i + 16:x}')
open(f"{tmp}/tc.batch", "w").write("\n".join(t) + "\n")
PY

wait_path() {
    for _ in $(seq 100); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && return; sleep 0.2; done
    echo "no path through the DUT" >&2
    exit 1
}
start_xs() {
    rm -f "$tmp/xs.json"
    ip netns exec xs-dut "$XS" --iface dutA --out dutB --config "$tmp/htb.toml" \
        --stats-json "$tmp/xs.json" >"$tmp/xs.log" 2>&1 &
    wait_path
}
stop_xs() {
    ip netns pids xs-dut | xargs -r kill -INT
    for _ in $(seq 50); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
}
start_bridge() { # with_htb
    local d="ip netns exec xs-dut"
    $d ip link add br0 type bridge
    $d ip link set dutA master br0
    $d ip link set dutB master br0
    $d ip link set br0 up
    if [ "$1" = 1 ]; then $d tc -batch "$tmp/tc.batch"; fi
    wait_path
}
stop_bridge() {
    local d="ip netns exec xs-dut"
    $d tc -s qdisc show dev dutB > "$tmp/tc-qdisc.txt" 2>&1 || true
    $d tc qdisc del dev dutB root 2>/dev/null || true
    $d ip link set dutA nomaster 2>/dev/null || true
    $d ip link set dutB nomaster 2>/dev/null || true
    $d ip link del br0 2>/dev/null || true
}
cpu() { # all CPUs' jiffies: user nice system idle iowait irq softirq steal
    awk '/^cpu /{print $2","$3","$4","$5","$6","$7","$8","$9}' /proc/stat
}
load() { # dut round [pid]
    local c0 c1 p0=0 p1=0
    c0=$(cpu)
    [ -n "${3:-}" ] && p0=$(awk '{print $14+$15}' "/proc/$3/stat")
    ./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink \
        --dst-mac "$sink_mac" --dst-ip 10.211.0.2 --flows "$CLASSES" --flow "rate=$RATE,size=60" \
        --duration 8s --drain 300ms -q --json "$tmp/gen.json" >/dev/null 2>&1 || true
    c1=$(cpu)
    [ -n "${3:-}" ] && p1=$(awk '{print $14+$15}' "/proc/$3/stat")
    python3 - "$1" "$2" "$c0" "$c1" "$p0" "$p1" "$hz" "$tmp/gen.json" <<'PY' | tee -a "$out/results.jsonl"
import json, sys
dut, rnd = sys.argv[1], int(sys.argv[2])
c0, c1 = ([float(x) for x in a.split(",")] for a in sys.argv[3:5])
p0, p1, hz = map(float, sys.argv[5:8])
d = [b - a for a, b in zip(c0, c1)]
names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
s = json.load(open(sys.argv[8]))
rx = sum(f["rx"]["unique"] for f in s["flows"])
tx = sum(f["tx"]["packets"] for f in s["flows"])
r = {"dut": dut, "round": rnd, "tx": tx, "rx": rx, "pps": round(rx / s["duration_s"]),
     "cpu_ns_per_pkt": round((sum(d) - d[3]) / hz * 1e9 / max(rx, 1), 1),
     "by_kind_ns_per_pkt": {k: round(v / hz * 1e9 / max(rx, 1), 1) for k, v in zip(names, d)},
     "lost_at_receiver": s.get("lost_at_receiver")}
if p1 > 0:
    r["xdpsched_ns_per_pkt"] = round((p1 - p0) / hz * 1e9 / max(rx, 1), 1)
print(json.dumps(r))
PY
}

for r in $(seq "${ROUNDS:-3}"); do
    start_xs
    load xdpsched "$r" "$(ip netns pids xs-dut | head -1)"
    stop_xs
    for _ in $(seq 50); do [ -s "$tmp/xs.json" ] && break; sleep 0.1; done
    # Where xdpsched's missing frames went (its --stats-json).
    python3 - "$tmp/xs.json" "$r" <<'PY' | tee -a "$out/xdpsched-stats.jsonl"
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    v = {}
print(json.dumps({"round": int(sys.argv[2]), "lost_before_rx": v.get("lost_before_rx"),
                  "dropped": v.get("dropped"), "drops": {k: n for k, n in (v.get("drops") or {}).items() if n},
                  "frames_balanced": v.get("frames_balanced")}))
PY
    start_bridge 1; load kernel-htb "$r"; stop_bridge
    start_bridge 0; load bridge "$r"; stop_bridge
done
python3 - "$out" "$CLASSES" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
med = lambda dut, k: statistics.median(r[k] for r in rows if r["dut"] == dut and k in r)
base = med("bridge", "cpu_ns_per_pkt")
lines = [f"| DUT ({n} classes) | received (kpps) | loss | machine CPU per packet (ns) | minus the plain bridge's |",
         "|---|---|---|---|---|"]
for dut in ["xdpsched", "kernel-htb", "bridge"]:
    rs = [r for r in rows if r["dut"] == dut]
    loss = statistics.median(1 - r["rx"] / max(r["tx"], 1) for r in rs)
    c = med(dut, "cpu_ns_per_pkt")
    lines.append(f"| {dut} | {med(dut, 'pps') / 1e3:.0f} | {100 * loss:.2f} % | {c:.0f} | {c - base:+.0f} |")
lines.append("")
lines.append(f"xdpsched's own process time per packet: {med('xdpsched', 'xdpsched_ns_per_pkt'):.0f} ns (median)")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
