#!/usr/bin/env bash
# examples/14-htb-tree.toml's class tree side by side with the kernel's HTB
# built from the tc commands beside it, on the veth testbed (endpoints at
# kernel defaults): xdpgen saturates sub2, voice and bulk with a UDP flow of
# 80 Mbit/s each (1500-byte frames, 10 s; sub1 idle), classes told apart by
# destination port (10001..10004: xdpgen sends from one address, where the
# example matches source subnets). Each class's rate at the sink over
# 2..10 s against the model (sub2 30 + 20*200/325, voice 10 + 20*125/325,
# bulk 40 Mbit/s of frames), ROUNDS rounds (default 3), alternating:
#   xdpsched   xdpsched --config <the example, dport rules> (DRR in each leaf)
#   kernel     a Linux bridge in the DUT namespace, HTB on its egress with
#              the example's classes, u32 filters on the ports, pfifo leaves
# Results: bench-results/htb/<date>-<commit>/ (results.jsonl, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 iproute2
cargo build --release -q -p datapath -p gen
XS=./target/release/xdpsched
results_dir htb
tmp=$(mktemp -d /tmp/bench-htb.XXXXXX)
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline; endpoints at kernel defaults"
    echo "load: xdpgen, 3 UDP flows x 80 Mbit/s, 1500-byte frames, 10 s; rates over 2..10 s; ${ROUNDS:-3} rounds"
    echo "tc: $(tc -V 2>&1 | head -1)"
} > "$out/env.txt"
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
scripts/testbed.sh up bridge
sink_mac=$(ip -n xs-sink -br link show sink0 | awk '{print $3}')
: > "$out/results.jsonl"

# The example's classes and flowsets, then rules by destination port.
sed '/^\[\[rule\]\]/,$d' examples/14-htb-tree.toml > "$tmp/htb.toml"
cat >> "$tmp/htb.toml" <<'EOF'
[[rule]]
flowset = "sub1"
match = { dst_port = 10001 }
[[rule]]
flowset = "sub2"
match = { dst_port = 10002 }
[[rule]]
flowset = "sub3-voice"
match = { dst_port = 10003 }
[[rule]]
flowset = "sub3-bulk"
match = { proto = "udp" }
EOF

wait_path() {
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && return; sleep 0.2; done
    echo "no path through the DUT" >&2
    exit 1
}

start_xs() {
    ip netns exec xs-dut "$XS" --iface dutA --out dutB --config "$tmp/htb.toml" >"$tmp/xs.log" 2>&1 &
    wait_path
}

stop_xs() {
    ip netns pids xs-dut | xargs -r kill -INT
    for _ in $(seq 50); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
}

start_kernel() { # the tc commands of examples/14-htb-tree.toml, ports for subnets
    local d="ip netns exec xs-dut"
    $d ip link add br0 type bridge
    $d ip link set dutA master br0
    $d ip link set dutB master br0
    $d ip link set br0 up
    $d tc qdisc add dev dutB root handle 1: htb default 32
    $d tc class add dev dutB parent 1:   classid 1:1  htb rate 100mbit ceil 100mbit
    $d tc class add dev dutB parent 1:1  classid 1:10 htb rate 20mbit ceil 100mbit
    $d tc class add dev dutB parent 1:1  classid 1:20 htb rate 30mbit ceil 60mbit
    $d tc class add dev dutB parent 1:1  classid 1:30 htb rate 50mbit ceil 100mbit
    $d tc class add dev dutB parent 1:30 classid 1:31 htb rate 10mbit ceil 100mbit prio 0
    $d tc class add dev dutB parent 1:30 classid 1:32 htb rate 40mbit ceil 100mbit prio 1
    $d tc filter add dev dutB parent 1: protocol ip prio 1 u32 match ip dport 10001 0xffff flowid 1:10
    $d tc filter add dev dutB parent 1: protocol ip prio 1 u32 match ip dport 10002 0xffff flowid 1:20
    $d tc filter add dev dutB parent 1: protocol ip prio 1 u32 match ip dport 10003 0xffff flowid 1:31
    $d tc filter add dev dutB parent 1: protocol ip prio 2 u32 match ip protocol 17 0xff flowid 1:32
    wait_path
}

stop_kernel() {
    local d="ip netns exec xs-dut"
    $d tc -s class show dev dutB > "$tmp/tc-classes.txt" 2>&1 || true
    $d tc qdisc del dev dutB root 2>/dev/null || true
    $d ip link set dutA nomaster 2>/dev/null || true
    $d ip link set dutB nomaster 2>/dev/null || true
    $d ip link del br0 2>/dev/null || true
}

load() { # label round
    ./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink \
        --dst-mac "$sink_mac" --dst-ip 10.211.0.2 \
        --flow "name=sub2,dport=10002,rate=80M,size=1500" \
        --flow "name=voice,dport=10003,rate=80M,size=1500" \
        --flow "name=bulk,dport=10004,rate=80M,size=1500" \
        --duration 10s --drain 300ms -q --csv "$tmp/rates.csv" >/dev/null 2>&1 || true
    python3 - "$1" "$2" "$tmp/rates.csv" <<'PY' | tee -a "$out/results.jsonl"
import csv, json, sys
label, rnd, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bits, secs = [0.0, 0.0, 0.0], 0.0
for row in list(csv.reader(open(path)))[1:]:
    t0, t1, flow = float(row[1]), float(row[2]), int(row[3])
    if t0 < 2.0 - 1e-9 or t1 > 10.0 + 1e-9:
        continue
    bits[flow] += float(row[8]) * 8
    if flow == 0:
        secs += t1 - t0
rates = [round(b / secs / 1e6, 3) for b in bits]
print(json.dumps({"dut": label, "round": rnd, "sub2": rates[0], "voice": rates[1], "bulk": rates[2]}))
PY
}

for r in $(seq "${ROUNDS:-3}"); do
    start_xs; load xdpsched "$r"; stop_xs
    start_kernel; load kernel "$r"; stop_kernel
done
cp "$tmp/tc-classes.txt" "$out/kernel-tc-classes.txt" 2>/dev/null || true
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
b = 20 * 200 / 325
model = {"sub2": 30 + b, "voice": 30 - b, "bulk": 40.0}
lines = ["| class | model (Mbit/s) | xdpsched: median | off the model | kernel HTB: median | off the model |",
         "|---|---|---|---|---|---|"]
for k, m in model.items():
    x = statistics.median(r[k] for r in rows if r["dut"] == "xdpsched")
    kern = statistics.median(r[k] for r in rows if r["dut"] == "kernel")
    lines.append(f"| {k} | {m:.2f} | {x:.2f} | {100 * (x - m) / m:+.2f} % | {kern:.2f} | {100 * (kern - m) / m:+.2f} % |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
