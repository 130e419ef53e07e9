#!/usr/bin/env bash
# Issue 16's scale benchmark: the emulator's cost per frame with N of one
# thing — static pipes, dynamic-pipe instances, HTB classes, per-flow
# shaped flows — for N = 10 .. 100 000 (emu-bench --scale WHAT --n N; see
# its docs for each configuration: every subscriber its own source address,
# frames from all N in turn, 10 Mpps offered in simulated time, 32 frames
# in then everything due out). Two figures per point:
#   - instructions per frame, callgrind on the measured loop alone (after a
#     warm-up that creates every flow, instance and class);
#   - ns per frame on this CPU, median of 5 runs of 1M frames.
# The bar (issue 16): flat within 1.5x from 10 to 100 000.
# Also: peak RSS (memory per pipe/instance/class) and build time.
#   [NS="10 100 1000 10000 100000"] [KINDS="pipes instances classes shaped"] scripts/bench-scale.sh
# Results: bench-results/scale/<date>-<commit>/ (scale.tsv, table.md,
# scale.svg, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
apt_install valgrind bc python3
cargo build --release -q -p sched --bin emu-bench
results_dir scale
NS=${NS:-10 100 1000 10000 100000}
KINDS=${KINDS:-pipes instances classes shaped}
CG_FRAMES=${CG_FRAMES:-200000}
{
    bench_env
    echo "rustc: $(rustc --version)"
    echo "valgrind: $(valgrind --version)"
    echo "bench: emu-bench --scale KIND --n N (ns: --frames 1000000, median of 5; instructions: --frames $CG_FRAMES --no-repeat under callgrind, --toggle-collect='*measured*')"
} > "$out/env.txt"
printf "kind\tn\tinstr_per_frame\tns_per_frame\tout\tnot_queued\tbuild_ms\trss_kb\n" > "$out/scale.tsv"
for kind in $KINDS; do
    for n in $NS; do
        js=$(target/release/emu-bench --scale "$kind" --n "$n" --frames 1000000 --json)
        instr=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
            --toggle-collect='*measured*' target/release/emu-bench --scale "$kind" --n "$n" \
            --frames "$CG_FRAMES" --no-repeat 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
        python3 - "$kind" "$n" "$instr" "$CG_FRAMES" "$js" <<'PY' | tee -a "$out/scale.tsv"
import json, sys
kind, n, instr, frames, js = sys.argv[1:]
j = json.loads(js)
print("\t".join(str(x) for x in [kind, n, f"{int(instr) / int(frames):.1f}", j["ns_per_frame"],
      j["out"], j["not_queued"], j["build_ms"], j["rss_kb"]]))
PY
    done
done
python3 scripts/plot-scale.py "$out/scale.tsv" "$out/scale.svg" > "$out/table.md"
cat "$out/table.md"
