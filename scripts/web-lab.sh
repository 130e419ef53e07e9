#!/usr/bin/env bash
# The classic scheduling lab, live: gen/examples/lab.toml (four UDP flows,
# 100/60/30/10 Mbit/s starting 10 s apart) from xdpgen through xdpsched
# (QFQ, 100 Mbit/s) on the netns testbed, with `xdpgen --web`; headless
# Chromium loads the page 50 s in and takes a screenshot (all four flows at
# their max-min fair shares, the earlier phases to the left). Keeps it, and
# what the page showed, in bench-results/web/<date>-<commit>/. ~2 min.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
as_root "$0" "$@"
ensure_rust
ensure_datapath_deps
results_dir web
{
    bench_env
    echo "what: gen/examples/lab.toml through xdpsched --sched qfq --rate 100mbit (bridge), xdpgen --link-rate 100M --interval 100ms --web 5006"
    echo "browser: $(chromium --version 2>/dev/null), headless, 1200x720, screenshot 50 s into the run"
} > "$out/env.txt"
LAB_OUT="$PWD/$out" cargo test -q --workspace --test e2e -- --ignored --exact the_lab_scenario_live
echo "screenshot: $out/lab.png"
