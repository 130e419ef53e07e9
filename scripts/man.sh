#!/usr/bin/env bash
# Builds the man pages of xdpsched and xdpgen (one per command and
# subcommand, generated from their clap definitions) into DIR (default
# target/man). Read one with `man -l target/man/xdpsched.1`; install with
# `install -m 644 target/man/*.1 /usr/local/share/man/man1/`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/man}
mkdir -p "$dir"
cargo build -q --release --bin xdpsched --bin xdpgen
target/release/xdpsched man "$dir"
target/release/xdpgen man "$dir"
