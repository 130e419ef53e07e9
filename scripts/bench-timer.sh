#!/usr/bin/env bash
# How late a sleep ends on this machine: a C loop of ppoll(NULL, 0, t) with
# 1 ns timer slack (what xdpsched's idle workers do), 5000 sleeps each of 20,
# 50 and 90 us; lateness percentiles, and the CPU time one sleep and wake-up
# costs the sleeper (beside a ppoll call that does not sleep). This bounds how
# precisely a worker that sleeps between departures can space them, how much
# it must spin, and what each wake-up costs.
# Results: bench-results/timer/<date>-<commit>/ (lateness.txt, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
apt_install gcc
results_dir timer
bench_env > "$out/env.txt"
bin=$(mktemp /tmp/sleep-lateness.XXXXXX)
trap 'rm -f "$bin"' EXIT
gcc -O2 -o "$bin" scripts/lib/sleep-lateness.c
for t in 20000 50000 90000; do "$bin" "$t" 5000; done | tee "$out/lateness.txt"
echo "results in $out"
