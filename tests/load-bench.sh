#!/usr/bin/env bash
# The HTTP load benchmark (not a test): builds release binaries, then drives a
# `sluice serve` on SQLite (fresh data dir) and on a fresh PostgreSQL database
# (127.0.0.1:5432, user postgres; created and dropped) with 50 concurrent clients
# and prints requests/s, latency percentiles, errors and peak RSS per backend.
# Arguments go to load-bench: e.g. `--rate 500 --duration 20`, `--backend sqlite`,
# `--clients 50` (see `load-bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
cargo build --release -p sluice-server --bin sluice
cargo build --release -p sluice-tests --bin load-bench
SLUICE_BIN="$CARGO_TARGET_DIR/release/sluice" "$CARGO_TARGET_DIR/release/load-bench" "$@"
