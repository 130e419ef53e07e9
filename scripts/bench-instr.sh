#!/usr/bin/env bash
# Instructions per packet of the pure core, this commit against an older one
# (BASE, a git revision), side by side: the measure for a change that should
# cost the schedulers, the classifier and the emulator nothing (a move, a
# merge of types). Both revisions' sched-bench, classify-bench and emu-bench
# are built (BASE in a temporary worktree with its own target directory)
# and run under callgrind with the same arguments, counting only the
# measured loop (the method of bench-sched.sh, bench-classify.sh and
# bench-emu.sh). Counts are deterministic for a given binary.
#   BASE=<rev> scripts/bench-instr.sh
# Results: bench-results/instr/<date>-<commit>/ (callgrind.tsv, table.md, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
apt_install valgrind bc python3
[ -n "${BASE:-}" ] || { echo "BASE=<git revision> is needed" >&2; exit 2; }
base_rev=$(git rev-parse --short "$BASE")
wt=$(mktemp -d /tmp/xdpsched-base.XXXXXX)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$base_rev"
bins="--bin sched-bench --bin classify-bench --bin emu-bench"
# shellcheck disable=SC2086
cargo build --release -q -p sched $bins
# shellcheck disable=SC2086
(cd "$wt" && CARGO_TARGET_DIR="$wt/target" cargo build --release -q -p sched $bins)
results_dir instr
{
    bench_env
    echo "base: $base_rev"
    echo "rustc: $(rustc --version)"
    echo "valgrind: $(valgrind --version)"
} > "$out/env.txt"

cg() { # dir loop-symbol bench args... -> instructions collected
    local dir=$1 sym=$2 bench=$3
    shift 3
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
        --toggle-collect="*${sym}*" "$dir/$bench" "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf "bench\tcase\tbuild\tinstr_per_packet\n" > "$out/callgrind.tsv"
row() { # bench case build instructions packets [instructions of the harness alone]
    printf "%s\t%s\t%s\t%s\n" "$1" "$2" "$3" "$(echo "scale=1; ($4 - ${6:-0}) / $5" | bc)" |
        tee -a "$out/callgrind.tsv"
}
for build in base this; do
    dir=target/release
    [ $build = base ] && dir=$wt/target/release
    p=1000000
    null=$(cg "$dir" measure_loop sched-bench --no-baseline --sched null --flows 1024 --packets $p)
    for s in fifo prio drr wf2q qfq; do
        row sched "$s, 1024 flows (minus null)" $build \
            "$(cg "$dir" measure_loop sched-bench --no-baseline --sched $s --flows 1024 --packets $p)" $p "$null"
    done
    n=200000
    for c in "v4udp acl 20 last" "v6tcp acl 20 last" "v4udp shapes 1000 none"; do
        read -r frame set rules hit <<< "$c"
        row classify "$frame $set $rules rules, hit $hit, 1000 flows" $build \
            "$(cg "$dir" classify_loop classify-bench --no-repeat --frame "$frame" --rule-set "$set" \
                --rules "$rules" --hit "$hit" --flows 1000 --frames $n)" $n
    done
    for c in "fifo 0 0" "qfq 0 0" "qfq 100 1000"; do
        read -r sched delay expire <<< "$c"
        row emu "$sched, 1024 flows, delay ${delay} us, expiry every $expire" $build \
            "$(cg "$dir" emu_loop emu-bench --no-repeat --sched "$sched" --flows 1024 \
                --delay-us "$delay" --expire-every "$expire" --frames $n)" $n
    done
done
python3 - "$out" "$base_rev" <<'PY'
import csv, sys
out, base = sys.argv[1:]
rows = list(csv.DictReader(open(f"{out}/callgrind.tsv"), delimiter="\t"))
cases = list(dict.fromkeys((r["bench"], r["case"]) for r in rows))
get = {(r["bench"], r["case"], r["build"]): float(r["instr_per_packet"]) for r in rows}
lines = [f"| bench | case | base {base} | this | this / base |", "|---|---|---|---|---|"]
for b, c in cases:
    x, y = get[(b, c, "base")], get[(b, c, "this")]
    lines.append(f"| {b} | {c} | {x:.1f} | {y:.1f} | {y / x:.3f} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $out"
