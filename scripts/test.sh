#!/usr/bin/env bash
# The test command (README, .ci/run): installs what a fresh Debian machine
# lacks, then runs the format check, clippy and rustdoc with warnings as
# errors, and every test in the workspace (release mode: the fairness
# simulations are long; the sched library once more in debug mode, where
# integer overflow panics).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
as_root "scripts/test.sh" "$@"
ensure_rust
ensure_datapath_deps

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo doc (warnings are errors: the crate docs describe the layout)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== cargo test -p sched (debug: overflow checks catch arithmetic that a release build wraps through)"
cargo test -p sched
echo "== cargo test --release (includes the AF_XDP end-to-end tests on a netns testbed: needs root)"
cargo test --workspace --release
echo "== systemd-analyze verify scripts/xdpsched.service (any complaint fails)"
if command -v systemd-analyze >/dev/null 2>&1; then
    unit_dir=$(mktemp -d)
    # The unit as installed, pointing at the binary just built.
    sed "s#/usr/local/bin/xdpsched#$PWD/target/release/xdpsched#" scripts/xdpsched.service > "$unit_dir/xdpsched.service"
    verify=$(systemd-analyze verify "$unit_dir/xdpsched.service" 2>&1) || { echo "$verify"; exit 1; }
    rm -rf "$unit_dir"
    [ -z "$verify" ] || { echo "$verify"; exit 1; }
    echo "ok"
else
    echo "skipped: systemd-analyze is not installed here (Debian: apt install systemd)"
fi
echo "== fuzz (30 s per target; skipped with a reason if the fuzz toolchain cannot run here)"
bash scripts/fuzz.sh 30
