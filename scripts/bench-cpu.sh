#!/usr/bin/env bash
# xdpsched's own CPU time per forwarded packet at a fixed offered load, side
# by side with an older build: the measure for a change that should cost
# nothing (a refactor, a moved hot path). At a fixed load both builds get the
# same packets, so their CPU per packet compares directly; the max-rate
# benchmark (bench-datapath.sh) mixes in how the CPUs are shared.
#   BASELINE=path/to/older/xdpsched scripts/bench-cpu.sh
# On the veth testbed (endpoints at kernel defaults, NAPI inline): xdpgen
# sends 1024 UDP flows of 64-byte frames at RATE per flow (default 75 kbit/s:
# ~160 kpps in all) for 5 s through xdpsched's bridge (FIFO, then QFQ), this
# build and the baseline alternating, ROUNDS rounds (default 5); the DUT's
# utime+stime over the packets received at the sink.
# Results: bench-results/datapath-cpu/<date>-<commit>/ (results.jsonl, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
ensure_datapath_deps
apt_install python3
[ -n "${BASELINE:-}" ] || { echo "BASELINE=path/to/older/xdpsched is needed" >&2; exit 2; }
cargo build --release -q -p datapath -p gen
results_dir datapath-cpu
{
    bench_env
    echo "label: veth, copy mode, 2 vCPU, NAPI inline"
    echo "baseline: $BASELINE ($("$BASELINE" --version 2>/dev/null), sha256 $(sha256sum "$BASELINE" | cut -c1-16))"
    echo "load: 1024 flows x ${RATE:-75k} bit/s of 64-byte frames, 5 s, ${ROUNDS:-5} rounds"
} > "$out/env.txt"
trap 'ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true; sleep 0.5; scripts/testbed.sh down' EXIT
scripts/testbed.sh up bridge
sink_mac=$(ip -n xs-sink -br link show sink0 | awk '{print $3}')
hz=$(getconf CLK_TCK)
: > "$out/results.jsonl"
run() { # build bin sched
    ip netns exec xs-dut "$2" --iface dutA --out dutB --sched "$3" >/dev/null 2>&1 &
    for _ in $(seq 50); do ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    local pid p0 p1
    pid=$(ip netns pids xs-dut | head -1)
    p0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    ./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink \
        --dst-mac "$sink_mac" --dst-ip 10.211.0.2 --flows 1024 --flow "rate=${RATE:-75k},size=60" \
        --duration 5s --drain 300ms -q --json /tmp/bc-xg.json >/dev/null 2>&1 || true
    p1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    python3 - "$1" "$3" "$p0" "$p1" "$hz" <<'PY' | tee -a "$out/results.jsonl"
import json, sys
build, sched = sys.argv[1:3]
p0, p1, hz = map(float, sys.argv[3:])
s = json.load(open("/tmp/bc-xg.json"))
rx = sum(f["rx"]["unique"] for f in s["flows"])
print(json.dumps({"build": build, "sched": sched, "pps": rx / s["duration_s"],
                  "dut_cpu_ns_per_pkt": (p1 - p0) / hz * 1e9 / max(rx, 1)}))
PY
    ip netns pids xs-dut | xargs -r kill -INT
    sleep 1
}
for _ in $(seq "${ROUNDS:-5}"); do
    for sched in fifo qfq; do
        run this ./target/release/xdpsched "$sched"
        run baseline "$BASELINE" "$sched"
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl")]
lines = ["| sched | build | kpps (median) | DUT CPU ns/pkt: median | min | max |", "|---|---|---|---|---|---|"]
for sched in ["fifo", "qfq"]:
    for build in ["this", "baseline"]:
        r = [x for x in rows if x["sched"] == sched and x["build"] == build]
        c = [x["dut_cpu_ns_per_pkt"] for x in r]
        lines.append(f"| {sched} | {build} | {statistics.median(x['pps'] for x in r)/1e3:.0f} | "
                     f"{statistics.median(c):.0f} | {min(c):.0f} | {max(c):.0f} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
