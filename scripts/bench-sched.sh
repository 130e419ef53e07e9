#!/usr/bin/env bash
# Scheduler benchmarks -> bench-results/sched/<date>-<commit>/
#   timing.jsonl   sched-bench --json, median of 3 runs, every algorithm x flow count
#   callgrind.tsv  instructions per packet (sched - null), the method below
#   criterion.txt  criterion's per-packet times (steady backlog)
#   env.txt        machine, kernel, toolchain, commit
# Usage: scripts/bench-sched.sh [--quick]   (--quick: fewer flow counts, no criterion)
#
# Instruction counts: valgrind --tool=callgrind --collect-atstart=no
# --toggle-collect='*measure_loop*' on sched-bench --no-baseline, so only the
# measured loop is counted; instructions/packet of a scheduler minus those of
# `--sched null` (the harness's own ring) = the scheduler's cost per packet,
# enqueue + dequeue. Counts are deterministic for a given binary: machine load
# does not change them (timings, on this shared VM, it does).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
apt_install valgrind bc

quick=0
[ "${1:-}" = "--quick" ] && quick=1
results_dir sched
cargo build --release -q -p sched --bin sched-bench
bin=target/release/sched-bench

{
    bench_env
    echo "rustc: $(rustc --version)"
    echo "valgrind: $(valgrind --version)"
    echo "profile: release (lto=thin, codegen-units=1)"
    echo "note: shared 2-vCPU VM; timings are noisy, instruction counts are not"
} > "$out/env.txt"

scheds="null fifo prio drr wf2q qfq"
if [ $quick -eq 1 ]; then flows="16 1024 65536"; else flows="1 16 256 1024 8192 65536 1048576"; fi

echo "== timing (median of 3)"
: > "$out/timing.jsonl"
for s in $scheds; do
    for n in $flows; do
        p=$(( n * 20 > 2000000 ? n * 20 : 2000000 ))
        for _ in 1 2 3; do $bin --sched "$s" --flows "$n" --packets "$p" --json; done |
            python3 -c '
import json,sys
rows=[json.loads(l) for l in sys.stdin]
rows.sort(key=lambda r: r["ns_per_pkt"])
print(json.dumps(rows[1]))' >> "$out/timing.jsonl"
        tail -n1 "$out/timing.jsonl"
    done
done

echo "== callgrind (instructions per packet)"
cg() { # sched flows packets -> instructions per packet
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
        --toggle-collect='*measure_loop*' "$bin" --no-baseline --sched "$1" --flows "$2" --packets "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf "sched\tflows\tpackets\tinstr_per_pkt\tsched_minus_null\n" > "$out/callgrind.tsv"
if [ $quick -eq 1 ]; then cgflows="16 1024"; else cgflows="16 1024 65536 1048576"; fi
for n in $cgflows; do
    p=$(( n * 20 > 1000000 ? n * 20 : 1000000 ))
    null=$(cg null "$n" "$p")
    for s in $scheds; do
        # At 1M flows only the schedulers with a scaling bar (and the baseline).
        if [ "$n" -ge 1048576 ] && ! [[ "$s" =~ ^(null|drr|qfq)$ ]]; then continue; fi
        c=$(cg "$s" "$n" "$p")
        printf "%s\t%s\t%s\t%s\t%s\n" "$s" "$n" "$p" \
            "$(echo "scale=1; $c / $p" | bc)" "$(echo "scale=1; ($c - $null) / $p" | bc)" | tee -a "$out/callgrind.tsv"
    done
done

if [ $quick -eq 0 ]; then
    echo "== criterion"
    # Raw criterion output; scripts/bench-table.py extracts "name time: [lo median hi]".
    cargo bench -q -p sched --bench sched -- --noplot 2>/dev/null |
        grep -E 'enqueue\+dequeue/|time:' > "$out/criterion.txt" || true
    cat "$out/criterion.txt"
fi
echo "results in $out"
