#!/usr/bin/env bash
# The main job, on an embedded default: a veth testbed in network namespaces
# (gen ⇄ xdpsched ⇄ sink), xdpsched bridging with QFQ at 100 Mbit/s and
# per-5-tuple fairness, and xdpgen sending the classic lab scenario through it
# (four UDP flows offered at 100/60/30/10 Mbit/s, starting one after another;
# gen/examples/lab-short.toml, time-compressed to ~30 s; DEMO_FULL=1 runs the
# full 90 s gen/examples/lab.toml). xdpgen prints the rates every second, then
# a per-flow table (rates, loss, one-way latency) with Jain's index and the
# error against the max-min fair shares, and writes plots (rate over time,
# latency CDF), JSON and CSV to demo-out/. Then the scheduler simulation:
# weighted flows through every algorithm against the fluid GPS reference.
# Needs root for the testbed part.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
as_root "scripts/demo.sh" "$@"
ensure_rust
ensure_datapath_deps
apt_install python3

cargo build --release -q -p datapath -p gen
rate=${DEMO_RATE:-100mbit}
scenario=gen/examples/lab-short.toml
[ "${DEMO_FULL:-0}" = 1 ] && scenario=gen/examples/lab.toml
out=demo-out
mkdir -p "$out"
cleanup() {
    ip netns pids xs-dut 2>/dev/null | xargs -r kill -INT 2>/dev/null || true
    sleep 0.3
    scripts/testbed.sh down
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: the testbed part needs root (network namespaces, XDP); running the simulation only"
else
    scripts/testbed.sh up bridge
    ip netns exec xs-dut ./target/release/xdpsched --iface dutA --out dutB --sched qfq --rate "$rate" \
        --stats-json "$out/xdpsched-stats.json" >"$out/xdpsched.out" 2>&1 &
    # Wait for the bridge (sockets bind in well under a second).
    for _ in $(seq 50); do
        ip netns exec xs-gen ping -c 1 -W 1 10.211.0.2 >/dev/null 2>&1 && break
        sleep 0.2
    done
    echo "== xdpgen $scenario: gen -> xdpsched (QFQ, $rate, per-flow fairness) -> sink"
    ./target/release/xdpgen --iface gen0 --netns xs-gen --rx-iface sink0 --rx-netns xs-sink \
        --scenario "$scenario" --interval 1s --link-rate "$rate" \
        --json "$out/lab.json" --csv "$out/lab.csv" --hdr-log "$out/lab.hlog" --plot "$out/lab"
    ip netns pids xs-dut | xargs -r kill -INT 2>/dev/null || true
    sleep 0.5
    echo
    echo "xdpsched: $(tail -n 1 "$out/xdpsched.out")"
    echo "(max-min fair while all four send: 30/30/30/10 Mbit/s on the wire; the plot is $out/lab-rate.png)"
fi
echo
echo "== scheduler simulation against the fluid GPS reference"
cargo run --release -q -p sched --example demo
