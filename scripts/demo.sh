#!/usr/bin/env bash
# The main job. Until the AF_XDP datapath lands this is the scheduler demo:
# weighted flows through every algorithm on a simulated link, per-flow shares
# and lag against the fluid GPS reference.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
ensure_rust
cargo run --release -q -p sched --example demo
