#!/usr/bin/env bash
# Instructions per packet of each of issue 17's impairments in the emulator
# (emu-bench --impair NAME: FIFO, 1024 flows, 64-byte frames, a 100 us
# delay line), under callgrind counting only the measured loop: each one's
# cost is its count minus `none`'s (`profile` against `rate`, the same
# 100 Gbit/s link; `trace` against `rate` too: both are links that keep
# time, packets wait for them; `prob` against `rules`, the same two rules
# (at 0.5 half the frames search the rules again, `prob-draw` is the coin);
# `duplicate` at 10 % includes the copies' own trips through the emulator
# and a second dequeue per frame, `duplicate-draw` is the decision alone). With BASE=<rev>, also `none` at that
# revision (built in a temporary worktree), so that what the impairments
# cost when they are off (their branches) shows: this `none` minus base's.
#   [BASE=<rev>] scripts/bench-impair.sh
# Results: bench-results/impair/<date>-<commit>/ (callgrind.tsv, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
apt_install valgrind bc python3
cargo build --release -q -p sched --bin emu-bench
base_dir=""
if [ -n "${BASE:-}" ]; then
    base_rev=$(git rev-parse --short "$BASE")
    wt=$(mktemp -d /tmp/xdpsched-base.XXXXXX)
    trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
    git worktree add -q --detach "$wt" "$base_rev"
    (cd "$wt" && CARGO_TARGET_DIR="$wt/target" cargo build --release -q -p sched --bin emu-bench)
    base_dir=$wt/target/release
fi
results_dir impair
{
    bench_env
    echo "base: ${base_rev:-none}"
    echo "rustc: $(rustc --version)"
    echo "valgrind: $(valgrind --version)"
    echo "bench: emu-bench --sched fifo --flows 1024 --delay-us 100 --frames 200000 --no-repeat [--impair NAME]"
} > "$out/env.txt"
n=200000
cg() { # dir args... -> instructions collected in emu_loop
    local dir=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
        --toggle-collect="*emu_loop*" "$dir/emu-bench" --sched fifo --flows 1024 \
        --delay-us 100 --frames $n --no-repeat "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf "impairment\tbuild\tinstr_per_packet\n" > "$out/callgrind.tsv"
if [ -n "$base_dir" ]; then
    printf "none\tbase\t%s\n" "$(echo "scale=1; $(cg "$base_dir") / $n" | bc)" | tee -a "$out/callgrind.tsv"
fi
for i in none rate rules jitter jitter-table reorder duplicate-draw duplicate corrupt loss4 slot profile trace schedule prob-draw prob; do
    printf "%s\tthis\t%s\n" "$i" "$(echo "scale=1; $(cg target/release --impair "$i") / $n" | bc)" |
        tee -a "$out/callgrind.tsv"
done
python3 - "$out" <<'PY'
import csv, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/callgrind.tsv"), delimiter="\t"))
this = {r["impairment"]: float(r["instr_per_packet"]) for r in rows if r["build"] == "this"}
base = [float(r["instr_per_packet"]) for r in rows if r["build"] == "base"]
none = this["none"]
# What each is measured against: the same pipe without it.
against = {"profile": "rate", "prob": "rules", "prob-draw": "rules", "trace": "rate"}
lines = ["| impairment | instructions/packet | against | cost |", "|---|---|---|---|"]
for k, v in this.items():
    ref = against.get(k, "none")
    lines.append(f"| {k} | {v:.1f} | {ref} | {v - this[ref]:+.1f} |")
if base:
    lines.append(f"| none at base | {base[0]:.1f} | none (this) | off costs {none - base[0]:+.1f} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
