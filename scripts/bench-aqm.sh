#!/usr/bin/env bash
# Queue management under greedy TCP, side by side in one run: 4 TCP cubic
# flows (iperf3, kernel-default endpoints) for 10 s through a 100 Mbit/s
# bottleneck on the veth testbed, a ping probe every 100 ms across it from
# 2 s on, for each of:
#   fifo-1000    xdpsched, one FIFO of 1000 packets (a bloated router)
#   drr          xdpsched, per-flow DRR queues of 100 packets, no AQM
#   codel        xdpsched, one FIFO of 1000 packets under CoDel
#   pie          xdpsched, one FIFO of 1000 packets under PIE (RFC defaults)
#   red          xdpsched, one FIFO of 1000 packets under RED 0.002/100/300/0.1
#   fq_codel     xdpsched --sched fq_codel
#   fq_codel+ecn the same with net.ipv4.tcp_ecn=1 in both endpoints
#   kernel-htb   the in-kernel peer: a Linux bridge in the DUT namespace, HTB
#                100 Mbit/s with a pfifo of 1000 packets on its egress (this
#                kernel has no fq_codel, codel or pie qdisc)
# Per scenario: goodput over 2..10 s and its share of the link, Jain's
# index over the 4 flows, the senders' retransmissions, the probe's RTT
# (p50, p99), and from xdpsched's --stats-json the pipe's sojourn time
# (p50, p99) and its AQM drops, limit drops and ECN marks. ROUNDS=n repeats
# the whole set (default 1), alternating scenarios within each round.
# Results: bench-results/aqm/<date>-<commit>/ (results.jsonl, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 iperf3
cargo build --release -q -p datapath
results_dir aqm
XS=target/release/xdpsched
ROUNDS=${ROUNDS:-1}
SCENARIOS=${SCENARIOS:-"fifo-1000 drr codel pie red fq_codel fq_codel+ecn kernel-htb"}
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline, endpoints at kernel defaults (GRO off, TX checksum offload on)"
    echo "load: 4 TCP cubic flows (iperf3 -P 1 each, ports 5201-5204) for 10 s through 100 Mbit/s; ping -i 0.1 from 2 s; goodput over 2..10 s"
    echo "rounds: $ROUNDS"
} > "$out/env.txt"
tmp=$(mktemp -d /tmp/xs-aqm.XXXXXX)
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down; rm -rf "$tmp"' EXIT
: > "$out/results.jsonl"

cfg_fifo() { # aqm lines
    printf '[[pipe]]\nname = "bottleneck"\nbandwidth = "100Mbit/s"\nsched = "fifo"\nqueue = 1000\n%s\n[[rule]]\npipe = "bottleneck"\n' "$1" > "$tmp/cfg.toml"
}

start_xs() { # args...
    ip netns exec xs-dut "$XS" --iface dutA --out dutB --stats-json "$tmp/stats.json" "$@" >"$tmp/xs.log" 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && return; sleep 0.2; done
    echo "xdpsched did not start: $(cat "$tmp/xs.log")" >&2
    exit 1
}

stop_xs() {
    ip netns pids xs-dut | xargs -r kill -INT
    for _ in $(seq 50); do [ -z "$(ip netns pids xs-dut)" ] && break; sleep 0.1; done
}

start_kernel() {
    ip netns exec xs-dut ip link add br0 type bridge
    ip netns exec xs-dut ip link set dutA master br0
    ip netns exec xs-dut ip link set dutB master br0
    ip netns exec xs-dut ip link set br0 up
    ip netns exec xs-dut tc qdisc add dev dutB root handle 1: htb default 1
    ip netns exec xs-dut tc class add dev dutB parent 1: classid 1:1 htb rate 100mbit ceil 100mbit
    ip netns exec xs-dut tc qdisc add dev dutB parent 1:1 pfifo limit 1000
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && return; sleep 0.2; done
}

flows() { # 4 TCP flows + the probe; JSON into $tmp
    local pids=()
    for p in 5201 5202 5203 5204; do
        ip netns exec xs-sink timeout 60 iperf3 -s -1 -J -p $p > "$tmp/srv-$p.json" 2>/dev/null &
        pids+=($!)
    done
    sleep 0.5
    (sleep 2; ip netns exec xs-gen ping -c 70 -i 0.1 -W 2 10.211.0.2 > "$tmp/ping.txt" 2>&1 || true) &
    pids+=($!)
    for p in 5201 5202 5203 5204; do
        ip netns exec xs-gen timeout 60 iperf3 -c 10.211.0.2 -p $p -t 10 -i 1 -C cubic -J > "$tmp/cli-$p.json" 2>/dev/null &
        pids+=($!)
    done
    # Not a bare `wait`: xdpsched runs in the background too.
    wait "${pids[@]}" || true
}

row() { # scenario round
    python3 - "$1" "$2" "$tmp" <<'PY' | tee -a "$out/results.jsonl"
import json, os, re, sys
name, rnd, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ports = [5201, 5202, 5203, 5204]
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return {}
per = []
for p in ports:
    j = load(f"{tmp}/srv-{p}.json")
    b = sum(i["sum"]["bytes"] for i in j.get("intervals", []) if 2.0 <= i["sum"]["start"] < 10.0)
    per.append(b * 8 / 8.0 / 1e6)
retrans = sum(load(f"{tmp}/cli-{p}.json").get("end", {}).get("sum_sent", {}).get("retransmits", 0) for p in ports)
good = sum(per)
jain = good * good / (len(per) * sum(x * x for x in per)) if good > 0 else 0.0
rtts = sorted(float(m) for m in re.findall(r"time=([0-9.]+)", open(f"{tmp}/ping.txt").read())) if os.path.exists(f"{tmp}/ping.txt") else []
q = lambda v, f: v[min(len(v) - 1, int(f * len(v)))] if v else None
row = {"scenario": name, "round": rnd, "goodput_mbit": round(good, 2),
       # Frames of 1448 payload bytes are 1514 on the wire plus 24 of overhead.
       "link_util": round(good * 1538 / 1448 / 100, 4),
       "jain": round(jain, 4), "retransmits": retrans,
       "probe_rtt_p50_ms": q(rtts, 0.5), "probe_rtt_p99_ms": q(rtts, 0.99), "probe_replies": len(rtts)}
st = load(f"{tmp}/stats.json") if name != "kernel-htb" else {}
pipe = next((p for p in st.get("pipes", []) if p.get("dir") == "a-to-b"), None)
if pipe:
    so = pipe["sojourn"]
    d = pipe["drops"]
    row.update({"sojourn_p50_ms": so["p50_ns"] / 1e6, "sojourn_p99_ms": so["p99_ns"] / 1e6,
                "aqm_drops": d.get("aqm", 0),
                "limit_drops": d.get("flow_limit", 0) + d.get("global_limit", 0) + d.get("pushed_out", 0),
                "ecn_marks": pipe["ecn_marked"], "frames_balanced": "frames balanced" in open(f"{tmp}/xs.log").read()})
print(json.dumps(row))
PY
}

for r in $(seq "$ROUNDS"); do
    for s in $SCENARIOS; do
        scripts/testbed.sh up bridge >/dev/null
        rm -f "$tmp"/*.json "$tmp/ping.txt"
        case $s in
        fifo-1000) cfg_fifo ""; start_xs --config "$tmp/cfg.toml" ;;
        drr) start_xs --sched drr --rate 100mbit --flow-queue 100 ;;
        codel) cfg_fifo 'aqm = "codel"'; start_xs --config "$tmp/cfg.toml" ;;
        pie) cfg_fifo 'aqm = "pie"'; start_xs --config "$tmp/cfg.toml" ;;
        red) cfg_fifo 'red = "0.002/100/300/0.1"'; start_xs --config "$tmp/cfg.toml" ;;
        fq_codel) start_xs --sched fq_codel --rate 100mbit ;;
        fq_codel+ecn)
            for n in xs-gen xs-sink; do ip netns exec $n sysctl -qw net.ipv4.tcp_ecn=1; done
            start_xs --sched fq_codel --rate 100mbit ;;
        kernel-htb) start_kernel ;;
        *) echo "unknown scenario $s" >&2; exit 1 ;;
        esac
        flows
        [ "$s" = kernel-htb ] || stop_xs
        row "$s" "$r"
    done
done

python3 - "$out/results.jsonl" > "$out/table.md" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
order = []
for r in rows:
    if r["scenario"] not in order:
        order.append(r["scenario"])
print("| scenario | goodput Mbit/s | link % | Jain | retransmits | probe RTT p50 / p99 ms | sojourn p50 / p99 ms | AQM drops | limit drops | ECN marks |")
print("|---|---|---|---|---|---|---|---|---|---|")
def m(rs, k, fmt="{:.2f}"):
    v = [r[k] for r in rs if r.get(k) is not None]
    return fmt.format(median(v)) if v else "–"
for s in order:
    rs = [r for r in rows if r["scenario"] == s]
    print(f"| {s} | {m(rs,'goodput_mbit','{:.1f}')} | {m(rs,'link_util','{:.1%}').rstrip('%')} | {m(rs,'jain','{:.3f}')} | {m(rs,'retransmits','{:.0f}')} "
          f"| {m(rs,'probe_rtt_p50_ms')} / {m(rs,'probe_rtt_p99_ms')} | {m(rs,'sojourn_p50_ms')} / {m(rs,'sojourn_p99_ms')} "
          f"| {m(rs,'aqm_drops','{:.0f}')} | {m(rs,'limit_drops','{:.0f}')} | {m(rs,'ecn_marks','{:.0f}')} |")
print()
print(f"Medians over {max(r['round'] for r in rows)} round(s). kernel-htb: a Linux bridge with HTB 100 Mbit/s + pfifo 1000 (no AQM qdisc in this kernel); its queue is not measured (–).")
PY
cat "$out/table.md"
