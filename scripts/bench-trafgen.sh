#!/usr/bin/env bash
# Datapath benchmark with an independent generator: trafgen (netsniff-ng,
# AF_PACKET TX ring, one process) floods 1024 UDP flows (source ports
# 1024-2047) of 64-byte (60 B + FCS) and 1500-byte frames into gen0 for 4 s;
# the kernel counts what leaves gen0 (offered) and what arrives at sink0
# (forwarded). The frames are addressed to a MAC nobody has (02:00:00:00:00:99):
# sink0 counts them and drops them at once (other host), so the sink's stack
# costs nothing — on veth it would run inside the forwarder's transmit (for
# xdpsched, in its TX kicks: a UDP lookup and an ICMP unreachable per frame). Side by side in one run, ROUNDS (default 3) rounds alternating
# the setups: kernel IPv4 forwarding, the Linux bridge, xdpsched FIFO and QFQ
# (bridge, defaults). For xdpsched also the frames lost before its RX rings
# (the kernel's socket counters, --stats-json lost_before_rx) and its own CPU
# time per forwarded frame; for every setup all CPUs' busy time per forwarded
# frame (generator included). Veth, copy mode, NAPI inline, endpoints at the
# kernel's defaults. TG_CPUS=2: two trafgen processes (one per CPU);
# DUT_PREFIX="chrt -f 10": xdpsched started under that command.
# DUT_VARIANTS="--ring-size 512|--batch 32": each also measured with these
# flags (a row per variant); SIZES="60", SCHEDS="fifo" narrow the run. A
# variant with "--metrics 9108" has /metrics scraped every second during the
# flood, one with "--web 5007" a page's event stream held open.
# trafgen sends through the qdisc layer (--qdisc-path; veth's default qdisc
# is noqueue, so frames go straight to the device; earlier runs spelled it
# -q, which is the same flag, not "quiet").
# Not here: one CPU each for generator and DUT. On veth that needs the DUT's
# receive work off the sender's CPU: RPS on dutA forwarded ~49 kpps, and
# dutA's NAPI set threaded (GRO on to give it NAPI) never ran here — its
# thread stayed idle and trafgen's sends failed with EAGAIN at once.
# Results: bench-results/datapath-trafgen/<date>-<commit>/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 netsniff-ng
cargo build --release -q -p datapath
results_dir datapath-trafgen
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline, endpoints at kernel defaults"
    echo "generator: $(trafgen --version 2>&1 | head -1), ${TG_CPUS:-1} process(es), 1024 UDP flows, 4 s per row, ${ROUNDS:-3} rounds"
    echo "xdpsched started under: ${DUT_PREFIX:-(nothing)}"
    echo "variants: ${DUT_VARIANTS:-(none)}; sizes: ${SIZES:-60 1500}; schedulers: ${SCHEDS:-fifo qfq}"
} > "$out/env.txt"
conf=$(mktemp /tmp/xs-trafgen.XXXXXX)
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down; rm -f "$conf"' EXIT
scripts/testbed.sh up bridge
mac_of() { ip -n "$1" -br link show "$2" | awk '{print $3}'; }
count() { # netns dev rx|tx -> packets
    ip -n "$1" -s -j link show "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['$3']['packets'])"
}
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
hz=$(getconf CLK_TCK)
gen_mac=$(mac_of xs-gen gen0)
# Nobody's MAC: the sink counts the frames and drops them before its IP stack.
sink_mac=02:00:00:00:00:99
: > "$out/results.jsonl"

flood() { # setup size dst_mac dst_ip [dut_pid stats_json]
    local setup=$1 size=$2 mac=$3 ip=$4 pid=${5:-} stats=${6:-} o0 o1 r0 r1 b0 b1 p0=0 p1=0
    cat > "$conf" <<EOF
{
  eth(da=$mac, sa=$gen_mac, type=0x0800),
  ipv4(saddr=10.211.0.1, daddr=$ip, ttl=64),
  udp(sport=dinc(1024, 2047), dport=9, csum=0),
  fill(0, $((size - 42)))
}
EOF
    o0=$(count xs-gen gen0 tx); r0=$(count xs-sink sink0 rx); b0=$(busy)
    [ -n "$pid" ] && p0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    ip netns exec xs-gen timeout -s INT 4 trafgen -o gen0 -c "$conf" --cpus "${TG_CPUS:-1}" --qdisc-path >/dev/null 2>&1 || true
    sleep 0.2
    o1=$(count xs-gen gen0 tx); r1=$(count xs-sink sink0 rx); b1=$(busy)
    [ -n "$pid" ] && p1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    echo "$setup $size $o0 $o1 $r0 $r1 $b0 $b1 $p0 $p1 $pid $stats"
}

xdpsched_run() { # sched size [xdpsched flags...] -> line (started and stopped around the flood)
    local sched=$1 size=$2 s=/tmp/xs-trafgen-stats.json pid line name
    shift 2
    name="xdpsched-$sched"
    # Flags in the setup's name, without spaces: "--ring-size 512" -> [ring-size=512].
    [ $# -gt 0 ] && name="$name[$(echo "$*" | sed 's/^--//; s/ --/,/g; s/ /=/g')]"
    rm -f "$s"
    # shellcheck disable=SC2086 # DUT_PREFIX's words are a command (e.g. "chrt -f 10")
    ip netns exec xs-dut ${DUT_PREFIX:-} ./target/release/xdpsched --iface dutA --out dutB --sched "$sched" --stats-json "$s" "$@" >/dev/null 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    pid=$(ip netns pids xs-dut | head -1)
    # With --metrics / --web among the flags: scraped every second, and a
    # page's event stream held open, during the flood (what a monitored
    # instance does); the readers are stopped after it.
    local readers=()
    case " $* " in *" --metrics "*)
        ip netns exec xs-dut bash -c 'while :; do exec 3<>/dev/tcp/127.0.0.1/9108 || exit; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3 >/dev/null; exec 3>&-; sleep 1; done' &
        readers+=($!) ;;
    esac
    case " $* " in *" --web "*)
        ip netns exec xs-dut bash -c 'exec 4<>/dev/tcp/127.0.0.1/5007 && printf "GET /events HTTP/1.0\r\n\r\n" >&4 && cat <&4 >/dev/null' &
        readers+=($!) ;;
    esac
    line=$(flood "$name" "$size" "$sink_mac" 10.211.0.2 "$pid" "$s")
    for r in "${readers[@]}"; do kill "$r" 2>/dev/null || true; done
    ip netns pids xs-dut | xargs -r kill -INT
    sleep 1
    # lost before RX, and (with --capture) frames written to the capture and not recorded.
    echo "$line $(python3 -c "import json; j = json.load(open('$s')); c = j.get('capture') or {}; print(j['lost_before_rx'], c.get('written', -1), c.get('lost', -1))")"
}

record() { # the line of flood (+ lost) -> JSON row
    python3 - "$hz" "$@" <<'PY' | tee -a "$out/results.jsonl"
import json, sys
hz = float(sys.argv[1])
a = sys.argv[2:]
setup = a[0]
size, o0, o1, r0, r1, b0, b1, p0, p1 = map(int, a[1:10])
lost = int(a[12]) if len(a) > 12 else None
cap_w = int(a[13]) if len(a) > 13 and int(a[13]) >= 0 else None
cap_l = int(a[14]) if len(a) > 14 and int(a[14]) >= 0 else None
fwd, off = r1 - r0, o1 - o0
print(json.dumps({"setup": setup, "size": size, "offered_pps": off / 4, "pps": fwd / 4,
                  "all_cpu_ns_per_pkt": (b1 - b0) / hz * 1e9 / max(fwd, 1),
                  "dut_cpu_ns_per_pkt": (p1 - p0) / hz * 1e9 / max(fwd, 1) if p1 else None,
                  "lost_before_rx": lost, "lost_before_rx_share": lost / off if lost is not None and off else None,
                  "capture_written": cap_w, "capture_lost": cap_l}))
PY
}

variants=()
[ -n "${DUT_VARIANTS:-}" ] && IFS='|' read -ra variants <<< "$DUT_VARIANTS"
for _ in $(seq "${ROUNDS:-3}"); do
    for size in ${SIZES:-60 1500}; do
        # Kernel IPv4 forwarding: 10.211.0.0/24 (gen) <-> 10.211.9.0/24 (sink).
        ip -n xs-dut addr add 10.211.0.254/24 dev dutA
        ip -n xs-dut addr add 10.211.9.254/24 dev dutB
        ip netns exec xs-dut sysctl -qw net.ipv4.ip_forward=1
        ip -n xs-dut neigh replace 10.211.9.2 lladdr "$sink_mac" dev dutB
        # shellcheck disable=SC2046
        record $(flood kernel-ipv4-forwarding "$size" "$(mac_of xs-dut dutA)" 10.211.9.2)
        ip -n xs-dut addr flush dev dutA
        ip -n xs-dut addr flush dev dutB
        ip netns exec xs-dut sysctl -qw net.ipv4.ip_forward=0
        # The Linux bridge.
        ip -n xs-dut link add br0 type bridge
        ip -n xs-dut link set dutA master br0
        ip -n xs-dut link set dutB master br0
        ip -n xs-dut link set br0 up
        ip netns exec xs-gen ping -c 2 -W 1 10.211.0.2 >/dev/null || true
        # shellcheck disable=SC2046
        record $(flood linux-bridge "$size" "$sink_mac" 10.211.0.2)
        ip -n xs-dut link del br0
        for sched in ${SCHEDS:-fifo qfq}; do
            # shellcheck disable=SC2046
            record $(xdpsched_run "$sched" "$size")
            for v in "${variants[@]}"; do
                # shellcheck disable=SC2046,SC2086 # a variant's words are flags
                record $(xdpsched_run "$sched" "$size" $v)
            done
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
med = lambda xs: statistics.median(xs) if xs else None
lines = ["| setup | size | offered kpps | forwarded kpps (median) | vs kernel fwd | lost before RX (of offered) | DUT CPU ns/frame | all CPUs ns/frame | capture: not recorded |",
         "|---|---|---|---|---|---|---|---|---|"]
setups = list(dict.fromkeys(r["setup"] for r in rows))
for size in sorted({r["size"] for r in rows}):
    k = med([r["pps"] for r in rows if r["size"] == size and r["setup"] == "kernel-ipv4-forwarding"])
    for s in setups:
        rs = [r for r in rows if r["size"] == size and r["setup"] == s]
        if not rs:
            continue
        pps = med([r["pps"] for r in rs])
        lost = [r["lost_before_rx_share"] for r in rs if r["lost_before_rx_share"] is not None]
        dut = [r["dut_cpu_ns_per_pkt"] for r in rs if r["dut_cpu_ns_per_pkt"] is not None]
        lost_s = f"{med(lost):.2%} ({min(lost):.2%}-{max(lost):.2%})" if lost else "–"
        dut_s = f"{med(dut):.0f}" if dut else "–"
        cap = [r["capture_lost"] / max(r["capture_lost"] + r["capture_written"], 1) for r in rs
               if r.get("capture_written") is not None]
        cap_s = f"{med(cap):.1%} ({min(cap):.1%}-{max(cap):.1%})" if cap else "–"
        lines.append(f"| {s} | {size} B | {med([r['offered_pps'] for r in rs]) / 1e3:.0f} | {pps / 1e3:.0f} | "
                     f"{pps / k:.2f}x | {lost_s} | {dut_s} | {med([r['all_cpu_ns_per_pkt'] for r in rs]):.0f} | {cap_s} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
