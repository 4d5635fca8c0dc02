#!/usr/bin/env bash
# The whole Sluice test suite, from a fresh clone on a fresh machine: installs or
# starts what the tests need, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

step() { printf '\n== %s\n' "$*"; }

step "browser: Chromium and ChromeDriver"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi
chromium --version

step "PostgreSQL on 127.0.0.1:5432"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

step "MariaDB on 127.0.0.1:3306"
if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb-admin -h 127.0.0.1 -u root ping

step "schemathesis (the API's property-based test)"
command -v schemathesis >/dev/null || python3 -m pip install --quiet 'schemathesis>=4,<5'
schemathesis --version

step "cargo-nextest"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "the sluice binary (the crash test runs and kills it)"
cargo build -p sluice-server --bin sluice

step "tests (SQLite, PostgreSQL, MariaDB, HTTP receiver, headless Chromium)"
cargo nextest run --workspace --no-fail-fast

step "the JSON API against its OpenAPI document (schemathesis, every check)"
bash .ci/api-schemathesis.sh "$CARGO_TARGET_DIR/debug/sluice"
