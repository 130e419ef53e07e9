#!/usr/bin/env bash
# Datapath benchmark, side by side in one run on the veth testbed
# ([xs-gen] gen0 ── dutA [xs-dut] dutB ── sink0 [xs-sink]):
#   kernel IPv4 forwarding (router in the DUT namespace), kernel L2 bridge,
#   xdpsched bridge with FIFO and with QFQ (no rate limit; one worker per RX
#   socket, and QFQ on one worker for comparison); each with the veths'
#   NAPI inline (default: receive work runs on the sending CPU) and threaded
#   (kernel threads; needs GRO on, so the DUT ports get GRO too; ratios are
#   against kernel forwarding in the same mode).
# For each:
#   - packets/s forwarded with 64-byte (60 B + FCS) and 1500-byte frames:
#     xdpgen sends 1024 unpaced UDP flows as fast as it can (gen0) and counts
#     what arrives (sink0); median of 3 x 4 s;
#   - CPU per forwarded packet: all CPUs' busy time during the run (from
#     /proc/stat; includes the generator's, which is the same in every setup)
#     and, for xdpsched, its own process CPU time;
#   - iperf3 TCP gen -> sink (median of 3 x 5 s; bridges only: the router
#     setup puts the sink in another subnet).
# Results and environment go to bench-results/datapath/<date>-<commit>/.
# Labelled "veth, copy mode, 2 vCPU": these are not NIC numbers. Needs root.
# BASELINE=path/to/an/older/xdpsched: its FIFO and QFQ rows are measured
# too, each right after the same row of this build ("(baseline)"), so a
# change is compared side by side in one run. MODES="inline" runs one mode.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install iperf3 python3
cargo build --release -q -p datapath -p gen
results_dir datapath
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU"
    echo "generator: xdpgen (AF_XDP), 1024 unpaced UDP flows; TCP: iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -n "${BASELINE:-}" ] && echo "baseline: $BASELINE ($("$BASELINE" --version 2>/dev/null), sha256 $(sha256sum "$BASELINE" | cut -c1-16))"
    echo "endpoints: kernel defaults but TX checksum offload off (GRO off; threaded mode turns GRO on)"
} > "$out/env.txt"
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down' EXIT

busy() { # total busy jiffies (all CPUs) since boot
    awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat
}
proc_cpu() { # pid -> utime+stime jiffies
    awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
tcp() { # -> bits/s (median of 3)
    for _ in 1 2 3; do
        ip netns exec xs-sink iperf3 -s -1 -p 5401 -J >/tmp/bd-srv.json 2>/dev/null &
        sleep 0.3
        ip netns exec xs-gen iperf3 -c 10.211.0.2 -p 5401 -t 5 >/dev/null 2>&1 || true
        wait
        python3 -c 'import json;print(json.load(open("/tmp/bd-srv.json"))["end"]["sum_received"]["bits_per_second"])'
    done | sort -g | sed -n 2p
}
pps() { # size dst_mac dst_ip [dut_pid] -> JSON {pps, cpu_ns_per_pkt, dut_cpu_ns_per_pkt}
    local size=$1 mac=$2 ip=$3 pid=${4:-} hz
    hz=$(getconf CLK_TCK)
    for _ in 1 2 3; do
        local b0 p0 b1 p1
        b0=$(busy); p0=0; [ -n "$pid" ] && p0=$(proc_cpu "$pid")
        ./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink \
            --dst-mac "$mac" --dst-ip "$ip" --flows 1024 --flow "rate=max,size=$size" \
            --duration 4s --drain 300ms --batch 256 --in-flight 512 -q --json /tmp/bd-xg.json >/dev/null 2>&1 || true
        b1=$(busy); p1=0; [ -n "$pid" ] && p1=$(proc_cpu "$pid")
        python3 - "$b0" "$b1" "$p0" "$p1" "$hz" <<'PY'
import json, sys
b0, b1, p0, p1, hz = map(float, sys.argv[1:])
s = json.load(open("/tmp/bd-xg.json"))
rx = sum(f["rx"]["unique"] for f in s["flows"])
tx = sum(f["tx"]["packets"] for f in s["flows"])
print(json.dumps({"pps": rx / s["duration_s"], "offered_pps": tx / s["duration_s"],
                  "cpu_ns_per_pkt": (b1 - b0) / hz * 1e9 / max(rx, 1),
                  "dut_cpu_ns_per_pkt": (p1 - p0) / hz * 1e9 / max(rx, 1) if p1 > 0 else None}))
PY
    done | python3 -c '
import json, sys
rows = sorted((json.loads(l) for l in sys.stdin), key=lambda r: r["pps"])
print(json.dumps(rows[1]))'
}
measure() { # name dst_mac dst_ip with_tcp [dut_pid]
    local t=null p64 p1500
    p64=$(pps 60 "$2" "$3" "${5:-}")
    p1500=$(pps 1500 "$2" "$3" "${5:-}")
    [ "$4" = 1 ] && t=$(tcp)
    printf '{"setup":"%s","tcp_bps":%s,"pps64":%s,"pps1500":%s}\n' "$1" "$t" "$p64" "$p1500" | tee -a "$out/results.jsonl"
}
mac_of() { ip -n "$1" -br link show "$2" | awk '{print $3}'; }

napi() { # inline|threaded: where the veths' receive work runs. Inline (the default),
    # it runs in the sending CPU's softirq, so on 2 vCPUs kernel forwarding is charged to
    # the generator's CPU; threaded, in kernel threads the scheduler can place anywhere.
    local v=0
    [ "$1" = threaded ] && v=1
    for l in xs-gen:gen0 xs-dut:dutA xs-dut:dutB xs-sink:sink0; do
        # A veth has NAPI (which threaded needs) with XDP attached or GRO on.
        [ $v = 1 ] && ip netns exec "${l%%:*}" ethtool -K "${l#*:}" gro on >/dev/null
        # (Without NAPI there is nothing to un-thread: inline already.)
        ip netns exec "${l%%:*}" sh -c "echo $v > /sys/class/net/${l#*:}/threaded" 2>/dev/null || [ $v = 0 ]
    done
}

: > "$out/results.jsonl"
scripts/testbed.sh up bridge
sink_mac=$(mac_of xs-sink sink0)
for mode in ${MODES:-inline threaded}; do
napi $mode

# Kernel IPv4 forwarding: the DUT routes 10.211.0.0/24 (gen) <-> 10.211.9.0/24 (sink).
ip -n xs-dut addr add 10.211.0.254/24 dev dutA
ip -n xs-dut addr add 10.211.9.254/24 dev dutB
ip netns exec xs-dut sysctl -qw net.ipv4.ip_forward=1
ip -n xs-sink addr add 10.211.9.2/24 dev sink0
# xdpgen owns sink0 while it measures (nobody answers ARP there): a static entry.
ip -n xs-dut neigh replace 10.211.9.2 lladdr "$sink_mac" dev dutB
measure "kernel IPv4 forwarding, NAPI $mode" "$(mac_of xs-dut dutA)" 10.211.9.2 0
ip -n xs-dut addr flush dev dutA
ip -n xs-dut addr flush dev dutB
ip -n xs-sink addr del 10.211.9.2/24 dev sink0

# Kernel bridge.
ip -n xs-dut link add br0 type bridge
ip -n xs-dut link set dutA master br0
ip -n xs-dut link set dutB master br0
ip -n xs-dut link set br0 up
ip netns exec xs-gen ping -c 3 -W 1 10.211.0.2 >/dev/null
measure "kernel bridge, NAPI $mode" "$sink_mac" 10.211.0.2 1
ip -n xs-dut link del br0

# Default: one worker per RX socket (the bridge's two directions on two
# threads); "1 worker": everything on one thread pinned to core 1.
runs=("./target/release/xdpsched|fifo" "${BASELINE:-}|fifo" "./target/release/xdpsched|qfq"
    "${BASELINE:-}|qfq" "./target/release/xdpsched|qfq --cores 1")
for run in "${runs[@]}"; do
    bin=${run%%|*} variant=${run#*|}
    [ -z "$bin" ] && continue
    name="xdpsched ${variant%% *}"
    [ "$variant" != "${variant%% *}" ] && name="$name 1 worker"
    [ "$bin" != ./target/release/xdpsched ] && name="$name (baseline)"
    # shellcheck disable=SC2086 # the variant's words are arguments
    ip netns exec xs-dut "$bin" --iface dutA --out dutB --sched $variant >/dev/null 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    pid=$(ip netns pids xs-dut | head -1)
    measure "$name, NAPI $mode" "$sink_mac" 10.211.0.2 1 "$pid"
    ip netns pids xs-dut | xargs -r kill -INT
    sleep 1
done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/env.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
kernel = {r["setup"].split("NAPI ")[-1]: r for r in rows if r["setup"].startswith("kernel IPv4")}
def us(x): return "–" if x is None else f"{x:.0f}"
lines = [
    "| setup | 64 B kpps | vs kernel fwd | 1500 B kpps | vs kernel fwd | CPU ns/pkt (all, 64 B) | DUT process CPU ns/pkt (64 B) | TCP Gbit/s |",
    "|---|---|---|---|---|---|---|---|",
]
for r in rows:
    k = kernel[r["setup"].split("NAPI ")[-1]]
    a, b = r["pps64"], r["pps1500"]
    tcp = "–" if r["tcp_bps"] is None else f"{r['tcp_bps']/1e9:.2f}"
    lines.append(
        f"| {r['setup']} | {a['pps']/1e3:.0f} | {a['pps']/k['pps64']['pps']:.2f}x | {b['pps']/1e3:.0f} | "
        f"{b['pps']/k['pps1500']['pps']:.2f}x | {a['cpu_ns_per_pkt']:.0f} | {us(a['dut_cpu_ns_per_pkt'])} | {tcp} |")
lines.append("")
lines.append(f"Offered by xdpgen (64 B, kpps): " + ", ".join(f"{r['setup']} {r['pps64']['offered_pps']/1e3:.0f}" for r in rows))
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
