#!/usr/bin/env bash
# The pull-sync benchmark (not a test): builds release binaries, then prints
# rows/s and peak RSS beside the databases' own JSON export in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
cargo build --release -p sluice-server --bin sluice
cargo build --release -p sluice-tests --bin pull-bench
SLUICE_BIN="$CARGO_TARGET_DIR/release/sluice" "$CARGO_TARGET_DIR/release/pull-bench"
