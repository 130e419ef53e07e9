#!/usr/bin/env bash
# Fuzz every cargo-fuzz target of sched (sched/fuzz/) for a bounded time:
#
#   scripts/fuzz.sh [seconds]     # seconds per target, default 30
#
# cargo-fuzz passes nightly-only flags (-Z sanitizer, sancov passes); on the
# stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. Targets run
# with AddressSanitizer, or without a sanitizer if that build fails. If
# fuzzing cannot run here at all, one line says so and why, and the exit
# status is 0. A crash makes the exit status 1 and leaves the input under
# sched/fuzz/artifacts/<target>/.
#
# The committed seed corpus (sched/fuzz/corpus/<target>/) is read, never
# written: new inputs go to a scratch directory that is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-30}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [seconds per target, default 30]" >&2
    exit 2
fi

. scripts/lib/setup.sh
ensure_rust

skip() {
    echo "fuzz: skipped: $*"
    exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io (a few minutes, once)"
    cargo install cargo-fuzz --locked >/dev/null 2>&1 ||
        skip "cargo-fuzz is missing and 'cargo install cargo-fuzz' failed"
fi

# Stable rustc refuses -Z flags unless told it is bootstrapping itself.
export RUSTC_BOOTSTRAP=1
cd sched

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Probe the toolchain by building every target: AddressSanitizer first,
# then no sanitizer (libFuzzer's coverage guidance still works without it).
sanitizer=""
san_name="address sanitizer"
if ! cargo fuzz build >"$scratch/build.log" 2>&1; then
    sanitizer="--sanitizer=none"
    san_name="no sanitizer"
    if ! cargo fuzz build $sanitizer >"$scratch/build.log" 2>&1; then
        why=$(grep -m1 -E '^error' "$scratch/build.log" || tail -n1 "$scratch/build.log")
        skip "cargo fuzz build fails with $(rustc --version) + RUSTC_BOOTSTRAP=1: $why"
    fi
fi

status=0
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/corpus-$target"
    seeds=()
    [ -d "fuzz/corpus/$target" ] && seeds=("fuzz/corpus/$target")
    log="$scratch/$target.log"
    # The first corpus directory receives new inputs: the scratch one.
    if cargo fuzz run $sanitizer "$target" "$scratch/corpus-$target" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
        runs=$(grep -m1 -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" || echo "done")
        echo "fuzz: $target: ${runs#Done }s, no crash (${san_name})"
    else
        status=1
        echo "fuzz: $target: CRASH (log tail below; input saved under sched/fuzz/artifacts/$target/)"
        tail -n 40 "$log"
    fi
done
exit "$status"
