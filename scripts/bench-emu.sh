#!/usr/bin/env bash
# Emulator cost per frame (parse, classify, flowset, scheduler, pipe) ->
# bench-results/emu/<date>-<commit>/
#   callgrind.tsv  instructions per frame (callgrind, --toggle-collect='*emu_loop*');
#                  expire_every 1000: the idle-flow sweep xdpsched runs once a
#                  millisecond, at 1 Mpps
#   results.jsonl  emu-bench --json (median of 5 runs; shared VM: noisy)
#   env.txt
# Usage: scripts/bench-emu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
apt_install valgrind bc
results_dir emu
cargo build --release -q -p sched --bin emu-bench
bin=target/release/emu-bench
{
    bench_env
    echo "rustc: $(rustc --version)"
    echo "note: shared 2-vCPU VM; timings are noisy, instruction counts are not"
} > "$out/env.txt"
: > "$out/results.jsonl"
printf "sched\tflows\tdelay_us\texpire_every\tinstr_per_frame\n" > "$out/callgrind.tsv"
for sched in fifo qfq; do
    for flows in 1024 16384; do
        for delay in 0 100; do
            for expire in 0 1000; do
                args="--sched $sched --flows $flows --delay-us $delay --expire-every $expire"
                # shellcheck disable=SC2086
                $bin --json $args | tee -a "$out/results.jsonl"
                n=200000
                # shellcheck disable=SC2086
                c=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
                    --toggle-collect='*emu_loop*' $bin --no-repeat $args --frames $n 2>&1 |
                    sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
                printf "%s\t%s\t%s\t%s\t%s\n" $sched $flows $delay $expire "$(echo "scale=1; $c / $n" | bc)" |
                    tee -a "$out/callgrind.tsv"
            done
        done
    done
done
echo "results in $out"
