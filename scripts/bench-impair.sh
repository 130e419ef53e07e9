#!/usr/bin/env bash
# Instructions per packet of each of issue 17's impairments in the emulator
# (emu-bench --impair NAME --batch 32: FIFO, 1024 flows, 64-byte frames, a
# 100 us delay line, 32 frames in then everything due out, as xdpsched's
# worker does), under callgrind counting only the measured loop: each one's
# cost is its count minus `none`'s (`profile` against `rate`, the same
# 100 Gbit/s link; `trace` against `rate` too: both are links that keep
# time, packets wait for them; `prob` against `rules`, the same two rules
# (at 0.5 half the frames search the rules again, `prob-draw` is the coin);
# `duplicate` at 10 % includes the copies' own trips through the emulator
# and their dequeues, `duplicate-draw` is the decision alone). With BASE=<rev>, also `none` at that
# revision (built in a temporary worktree) and here, both in the loop every
# revision's emu-bench has (one frame in, one dequeue), so that what the
# impairments cost when they are off (their branches) shows: this `none`
# minus base's.
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
    echo "bench: emu-bench --sched fifo --flows 1024 --delay-us 100 --frames 200000 --no-repeat --batch 32 --impair NAME; base comparison without --batch"
} > "$out/env.txt"
n=200000
cg() { # dir args... -> instructions collected in emu_loop (CG_OUT: keep the profile there)
    local dir=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="${CG_OUT:-/dev/null}" --collect-atstart=no \
        --toggle-collect="*emu_loop*" "$dir/emu-bench" --sched fifo --flows 1024 \
        --delay-us 100 --frames $n --no-repeat "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf "impairment\tbuild\tinstr_per_packet\n" > "$out/callgrind.tsv"
if [ -n "$base_dir" ]; then
    printf "none\tbase\t%s\n" "$(echo "scale=1; $(CG_OUT=$out/cg.base cg "$base_dir") / $n" | bc)" | tee -a "$out/callgrind.tsv"
    printf "none\tthis-unbatched\t%s\n" "$(echo "scale=1; $(CG_OUT=$out/cg.this cg target/release) / $n" | bc)" | tee -a "$out/callgrind.tsv"
    # Where the difference lies: instructions per packet by source file
    # (inlined code is attributed to the file it was written in).
    for b in base this; do
        callgrind_annotate --show-percs=no --threshold=100 "$out/cg.$b" 2>/dev/null |
            sed -n '/file:function/,$p' | grep -E '^ *[0-9,]+ +[a-z/.]' | sed 's/ \[.*\]$//' |
            awk -v n=$n '{gsub(",","",$1); split($2,a,":"); f=a[1]; if (f !~ /\.rs$/) next;
                 sub(".*/(src|library)/","",f); s[f]+=$1} END {for (k in s) printf "%s\t%.1f\n", k, s[k]/n}' |
            sort > "$out/by-file.$b.tsv"
    done
    rm -f "$out/cg.base" "$out/cg.this"
    join -t $'\t' -a1 -a2 -e 0 -o 0,1.2,2.2 "$out/by-file.base.tsv" "$out/by-file.this.tsv" |
        awk -F'\t' 'BEGIN {print "file\tbase\tthis\tdiff"} {d=$3-$2; if (d*d >= 1) printf "%s\t%s\t%s\t%+.1f\n", $1, $2, $3, d}' \
        > "$out/off-cost-by-file.tsv"
    rm -f "$out/by-file.base.tsv" "$out/by-file.this.tsv"
    cat "$out/off-cost-by-file.tsv"
fi
for i in none rate rules jitter jitter-table reorder duplicate-draw duplicate corrupt loss4 slot profile trace schedule prob-draw prob; do
    printf "%s\tthis\t%s\n" "$i" "$(echo "scale=1; $(cg target/release --batch 32 --impair "$i") / $n" | bc)" |
        tee -a "$out/callgrind.tsv"
done
python3 - "$out" <<'PY'
import csv, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/callgrind.tsv"), delimiter="\t"))
this = {r["impairment"]: float(r["instr_per_packet"]) for r in rows if r["build"] == "this"}
base = [float(r["instr_per_packet"]) for r in rows if r["build"] == "base"]
unbatched = [float(r["instr_per_packet"]) for r in rows if r["build"] == "this-unbatched"]
none = this["none"]
# What each is measured against: the same pipe without it.
against = {"profile": "rate", "prob": "rules", "prob-draw": "rules", "trace": "rate"}
lines = ["| impairment | instructions/packet | against | cost |", "|---|---|---|---|"]
for k, v in this.items():
    ref = against.get(k, "none")
    lines.append(f"| {k} | {v:.1f} | {ref} | {v - this[ref]:+.1f} |")
if base and unbatched:
    lines.append("")
    lines.append("| one frame in, one dequeue (every revision's loop) | instructions/packet |")
    lines.append("|---|---|")
    lines.append(f"| none at base | {base[0]:.1f} |")
    lines.append(f"| none here | {unbatched[0]:.1f} (all impairments off: {unbatched[0] - base[0]:+.1f}) |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
