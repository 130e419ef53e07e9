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
# Beside each rate, rattan (cargo install rattan, unless RATTAN=0) emulating
# the same link on its own namespaces (see rattan_shaped).
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
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; pkill -f "tcpdump -i sink0" 2>/dev/null || true; pkill -x rattan 2>/dev/null || true; sleep 0.5; ip netns pids xs-rattan 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del xs-rattan 2>/dev/null || true; scripts/testbed.sh down; rm -f "$pcap" "$pcap.log" "$stats"' EXIT
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

analyse() { # build rate_bps cpu0 cpu1 stats_json: one row from the capture
    python3 - "$1" "$2" "$3" "$4" "$hz" "$pcap" "$5" <<'PY' | tee -a "$out/results.jsonl"
import json, os, struct, sys
build, bps = sys.argv[1], int(sys.argv[2])
c0, c1, hz = map(float, sys.argv[3:6])
# Frames the capture itself lost (tcpdump's "dropped by kernel"): a lost
# frame doubles a gap, so the gap figures are only as good as this is small.
import re
log = open(sys.argv[6] + ".log").read() if os.path.exists(sys.argv[6] + ".log") else ""
m = re.search(r"(\d+) packets? dropped by kernel", log)
capture_drops = int(m.group(1)) if m else None
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
print(json.dumps({"build": build, "rate_bps": bps, "frames": len(pkts), "capture_drops": capture_drops,
                  "dut_cpu_us_per_frame": (c1 - c0) / hz * 1e6 / max(len(pkts), 1),
                  "kick_us_per_frame": kick_us, "sleeps_per_frame": sleeps,
                  "rate_error": rate / bps - 1 if rate else None,
                  "gaps_within_5pct": sum(e <= 0.05 for e in errs) / len(errs) if errs else None,
                  "gap_error_p50": q(0.5), "gap_error_p90": q(0.9), "gap_error_p99": q(0.99)}))
PY
}

shaped() { # build bin rate_bps
    local build=$1 bin=$2 bps=$3 pid c0 c1
    rm -f "$stats"
    pid=$(start_dut "$bin" --rate "$bps" --flow-queue 200 --stats-json "$stats")
    ip netns exec xs-sink tcpdump -i sink0 -w "$pcap" --time-stamp-precision=nano -s 64 -B 65536 udp >/dev/null 2>"$pcap.log" &
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
    analyse "$build" "$bps" "$c0" "$c1" "$stats"
}

# rattan (crates.io; AF_PACKET based) emulating the same link: a Bw cell of
# R counted at the link layer (IP + 38 bytes: the frame + 24, as here), a
# DropTail queue of 200 packets, no delay, in its compatible mode (its left
# namespace, where iperf3 sends from, and the namespace it runs in, here one
# this script creates: xs-rattan, where the capture and the iperf3 server
# are). rattan's own thread pinned to CPU 1, its left command to CPU 0 (it
# wants lists of cores). Its CPU time per frame like xdpsched's.
RATTAN_BIN=
rattan_install() {
    RATTAN_BIN=$(command -v rattan || true)
    [ -z "$RATTAN_BIN" ] && [ -x "$HOME/.cargo/bin/rattan" ] && RATTAN_BIN=$HOME/.cargo/bin/rattan
    if [ -z "$RATTAN_BIN" ]; then
        echo "installing rattan (cargo install rattan --locked; a few minutes)" >&2
        if cargo install rattan --locked >"$out/rattan-install.log" 2>&1; then
            RATTAN_BIN=$HOME/.cargo/bin/rattan
        else
            echo "rattan: did not install (rattan-install.log)" >> "$out/env.txt"
            return 0
        fi
    fi
    echo "rattan: $("$RATTAN_BIN" --version | head -1)" >> "$out/env.txt"
}

rattan_shaped() { # rate_bps
    local bps=$1 pid c0 c1 dev tpid conf=/tmp/xs-rattan.toml left=/tmp/xs-rattan-left.sh
    ip netns add xs-rattan
    ip -n xs-rattan link set lo up
    cat > "$conf" <<RATTAN_TOML
[env]
mode = "Compatible"
left_veth_count = 1
right_veth_count = 1
client_cores = [0]
server_cores = [0]

[cells.up]
type = "Bw"
bw_type = "LinkLayer"
queue = "DropTail"
bandwidth = "$((bps / 1000000))Mbps"

[cells.up.queue_config]
packet_limit = 200

[links]
left = "up"
up = "right"
right = "left"

[resource]
cpu = [1]

[general]

[commands]
shell = "Default"
RATTAN_TOML
    # The left command waits for a go, so that the CPU is read around the load.
    rm -f /tmp/xs-rattan-go /tmp/xs-rattan-done
    cat > "$left" <<RATTAN_LEFT
#!/bin/sh
for i in \$(seq 200); do [ -e /tmp/xs-rattan-go ] && break; sleep 0.05; done
iperf3 -c "\$RATTAN_BASE" -p 5299 -u -b $((bps * 12 / 10)) -l 1458 -t 6 >/dev/null 2>&1
touch /tmp/xs-rattan-done
RATTAN_LEFT
    chmod +x "$left"
    ip netns exec xs-rattan iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
    ip netns exec xs-rattan "$RATTAN_BIN" run -c "$conf" --left "$left" >/dev/null 2>&1 &
    for _ in $(seq 100); do
        dev=$(ip -n xs-rattan -br link | awk '$1 != "lo" {sub(/@.*/, "", $1); print $1; exit}')
        [ -n "$dev" ] && break
        sleep 0.05
    done
    pid=$(pgrep -n -x rattan || true)
    if [ -z "$dev" ] || [ -z "$pid" ]; then
        echo "rattan: did not start at $bps bit/s" >> "$out/env.txt"
        ip netns pids xs-rattan 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del xs-rattan 2>/dev/null || true
        return 0
    fi
    ip netns exec xs-rattan tcpdump -i "$dev" -w "$pcap" --time-stamp-precision=nano -s 64 -B 65536 udp >/dev/null 2>"$pcap.log" &
    tpid=$!
    sleep 1
    c0=$(cpu_of "$pid")
    touch /tmp/xs-rattan-go
    for _ in $(seq 200); do [ -e /tmp/xs-rattan-done ] && break; sleep 0.05; done
    c1=$(cpu_of "$pid")
    sleep 0.5
    kill -INT "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -INT "$pid" 2>/dev/null || true
    sleep 0.5
    ip netns pids xs-rattan 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del xs-rattan 2>/dev/null || true
    rm -f /tmp/xs-rattan-go /tmp/xs-rattan-done "$conf" "$left"
    analyse rattan "$bps" "$c0" "$c1" /nonexistent
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

[ "${RATTAN:-1}" = 1 ] && rattan_install
for bps in ${RATES:-10000000 100000000 1000000000}; do
    shaped this ./target/release/xdpsched "$bps"
    [ -n "${BASELINE:-}" ] && shaped baseline "$BASELINE" "$bps"
    [ -n "$RATTAN_BIN" ] && rattan_shaped "$bps"
done
idle this ./target/release/xdpsched
[ -n "${BASELINE:-}" ] && idle baseline "$BASELINE"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
f = lambda x, p="{:.3f}": "-" if x is None else p.format(x)
lines = ["| build | rate | frames (lost by the capture) | DUT CPU µs/frame | of which in TX kicks | sleeps/frame | rate error | gaps within 5 % | gap error p50 / p90 / p99 |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    if "rate_bps" in r:
        lines.append(f"| {r['build']} | {r['rate_bps'] / 1e6:g} Mbit/s | {r['frames']} ({r.get('capture_drops', '-')}) | {r['dut_cpu_us_per_frame']:.1f} | "
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
