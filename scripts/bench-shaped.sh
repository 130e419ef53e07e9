#!/usr/bin/env bash
# What an emulated link costs and how precisely it spaces departures: xdpsched
# bridging the veth testbed with a shaped pipe (the simple form, --rate R,
# FIFO), iperf3 offering one UDP flow of 1500-byte frames at 1.2 R for 6 s (so the
# pipe is always backlogged and the link, not the generator, spaces the
# frames), a nanosecond tcpdump capture at the sink. Per rate (10M, 100M, 1G
# by default; RATES="..."): the DUT's CPU time per forwarded frame (utime +
# stime of the process), the delivered rate against R, and the inter-departure
# gaps against the ideal (frame + 24 bytes of overhead) * 8 / R over the
# middle 4 s; from its --stats-json, the time in TX kicks per frame (on veth
# the receiver's stack runs inside them) and sleeps per frame. Then the CPU an
# idle xdpsched uses over 10 s. With BASELINE=an older xdpsched binary (or a
# wrapper adding flags), each row is measured for both builds, alternating.
# Results: bench-results/shaped/<date>-<commit>/ (results.jsonl, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3 tcpdump iperf3
cargo build --release -q -p datapath -p gen
results_dir shaped
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline, endpoints at kernel defaults"
    echo "load: one UDP flow of 1500-byte frames at 1.2 x the pipe's rate, 6 s; gaps over the middle 4 s"
    [ -n "${BASELINE:-}" ] && echo "baseline: $BASELINE ($("$BASELINE" --version 2>/dev/null), sha256 $(sha256sum "$BASELINE" | cut -c1-16))"
} > "$out/env.txt"
pcap=$(mktemp /tmp/xs-shaped.XXXXXX.pcap)
stats=$(mktemp /tmp/xs-shaped.XXXXXX.json)
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; pkill -f "tcpdump -i sink0" 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down; rm -f "$pcap" "$stats"' EXIT
scripts/testbed.sh up bridge
hz=$(getconf CLK_TCK)
: > "$out/results.jsonl"

cpu_of() { awk '{print $14+$15}' "/proc/$1/stat"; }

start_dut() { # bin args...
    local bin=$1
    shift
    ip netns exec xs-dut "$bin" --iface dutA --out dutB "$@" >/dev/null 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    ip netns pids xs-dut | head -1
}

stop_dut() {
    ip netns pids xs-dut | xargs -r kill -INT
    sleep 1
}

shaped() { # build bin rate_bps
    local build=$1 bin=$2 bps=$3 pid c0 c1
    rm -f "$stats"
    pid=$(start_dut "$bin" --rate "$bps" --flow-queue 200 --stats-json "$stats")
    ip netns exec xs-sink tcpdump -i sink0 -w "$pcap" --time-stamp-precision=nano -s 64 -B 65536 udp >/dev/null 2>&1 &
    local tpid=$!
    sleep 1
    c0=$(cpu_of "$pid")
    # iperf3, not xdpgen: an AF_XDP receiver at the sink would take the
    # frames before tcpdump sees them. 1458-byte datagrams: 1500-byte frames.
    ip netns exec xs-sink iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
    sleep 0.3
    ip netns exec xs-gen iperf3 -c 10.211.0.2 -p 5299 -u -b "$((bps * 12 / 10))" -l 1458 -t 6 >/dev/null 2>&1 || true
    c1=$(cpu_of "$pid")
    sleep 0.5
    kill -INT "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    stop_dut
    python3 - "$build" "$bps" "$c0" "$c1" "$hz" "$pcap" "$stats" <<'PY' | tee -a "$out/results.jsonl"
import json, os, struct, sys
build, bps = sys.argv[1], int(sys.argv[2])
c0, c1, hz = map(float, sys.argv[3:6])
# Whole-run ratios from xdpsched's own counters (older builds lack them).
st = json.load(open(sys.argv[7])) if os.path.exists(sys.argv[7]) else {}
sent = max(sum(st.get("tx", [0])), 1)
kick_us = st["tx_kick_ns"] / 1e3 / sent if "tx_kick_ns" in st else None
sleeps = st["sleeps"] / sent if "sleeps" in st else None
data = open(sys.argv[6], "rb").read()
magic = struct.unpack("<I", data[:4])[0]
scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
pkts, off = [], 24
while off + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack("<IIII", data[off:off + 16])
    pkts.append((sec + frac * scale, orig))
    off += 16 + incl
t0 = pkts[0][0] if pkts else 0
mid = [(t, l) for t, l in pkts if t0 + 1.0 <= t <= t0 + 5.0]
gaps, errs = [], []
for (ta, _), (tb, lb) in zip(mid, mid[1:]):
    ideal = (lb + 24) * 8 / bps
    gaps.append(tb - ta)
    errs.append(abs((tb - ta) - ideal) / ideal)
span = mid[-1][0] - mid[0][0] if len(mid) > 1 else 0
rate = sum((l + 24) * 8 for _, l in mid[1:]) / span if span else 0
errs.sort()
q = lambda p: errs[min(len(errs) - 1, int(p * len(errs)))] if errs else None
print(json.dumps({"build": build, "rate_bps": bps, "frames": len(pkts),
                  "dut_cpu_us_per_frame": (c1 - c0) / hz * 1e6 / max(len(pkts), 1),
                  "kick_us_per_frame": kick_us, "sleeps_per_frame": sleeps,
                  "rate_error": rate / bps - 1 if rate else None,
                  "gaps_within_5pct": sum(e <= 0.05 for e in errs) / len(errs) if errs else None,
                  "gap_error_p50": q(0.5), "gap_error_p90": q(0.9), "gap_error_p99": q(0.99)}))
PY
}

idle() { # build bin
    local build=$1 bin=$2 pid c0 c1
    pid=$(start_dut "$bin")
    sleep 1
    c0=$(cpu_of "$pid")
    sleep 10
    c1=$(cpu_of "$pid")
    stop_dut
    python3 -c "import json,sys; print(json.dumps({'build': '$build', 'idle_cpu_fraction_10s': ($c1 - $c0) / $hz / 10}))" |
        tee -a "$out/results.jsonl"
}

for bps in ${RATES:-10000000 100000000 1000000000}; do
    shaped this ./target/release/xdpsched "$bps"
    [ -n "${BASELINE:-}" ] && shaped baseline "$BASELINE" "$bps"
done
idle this ./target/release/xdpsched
[ -n "${BASELINE:-}" ] && idle baseline "$BASELINE"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
f = lambda x, p="{:.3f}": "-" if x is None else p.format(x)
lines = ["| build | rate | frames | DUT CPU µs/frame | of which in TX kicks | sleeps/frame | rate error | gaps within 5 % | gap error p50 / p90 / p99 |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    if "rate_bps" in r:
        lines.append(f"| {r['build']} | {r['rate_bps'] / 1e6:g} Mbit/s | {r['frames']} | {r['dut_cpu_us_per_frame']:.1f} | "
                     f"{f(r.get('kick_us_per_frame'), '{:.1f}')} | {f(r.get('sleeps_per_frame'), '{:.2f}')} | "
                     f"{f(r['rate_error'], '{:+.4%}')} | {f(r['gaps_within_5pct'], '{:.1%}')} | "
                     f"{f(r['gap_error_p50'], '{:.1%}')} / {f(r['gap_error_p90'], '{:.1%}')} / {f(r['gap_error_p99'], '{:.1%}')} |")
for r in rows:
    if "idle_cpu_fraction_10s" in r:
        lines.append(f"\nidle ({r['build']}): {r['idle_cpu_fraction_10s']:.2%} of a core over 10 s")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
