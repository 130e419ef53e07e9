#!/usr/bin/env bash
# Parse + classify benchmarks -> bench-results/classify/<date>-<commit>/
#   results.jsonl  classify-bench --json (median of 5), frame x rule set x rules x hit x flows
#   callgrind.tsv  instructions per frame (callgrind, --toggle-collect='*classify_loop*')
#   env.txt
# Usage: scripts/bench-classify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
apt_install valgrind bc
results_dir classify
cargo build --release -q -p sched --bin classify-bench
bin=target/release/classify-bench
{
    bench_env
    echo "rustc: $(rustc --version)"
    echo "note: shared 2-vCPU VM; timings are noisy, instruction counts are not"
} > "$out/env.txt"
: > "$out/results.jsonl"
printf "frame\trule_set\trules\thit\tflows\tinstr_per_frame\n" > "$out/callgrind.tsv"
for frame in v4udp v6tcp; do
    for set in acl shapes; do
        for rules in 1 20 1000; do
            for hit in last none; do
                for flows in 1 1000 100000; do
                    $bin --json --frame $frame --rule-set $set --rules $rules --hit $hit --flows $flows --frames 5000000 |
                        tee -a "$out/results.jsonl"
                done
                n=200000
                c=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
                    --toggle-collect='*classify_loop*' $bin --no-repeat --frame $frame --rule-set $set \
                    --rules $rules --hit $hit --flows 1000 --frames $n 2>&1 |
                    sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
                printf "%s\t%s\t%s\t%s\t%s\t%s\n" $frame $set $rules $hit 1000 "$(echo "scale=1; $c / $n" | bc)" |
                    tee -a "$out/callgrind.tsv"
            done
        done
    done
done
echo "results in $out"
