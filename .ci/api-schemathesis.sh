#!/usr/bin/env bash
# Property-based test of the JSON API against its own OpenAPI document: starts a
# fresh `sluice serve` (embedded SQLite, its own data directory, a free port),
# provisions a tenant, an API key and a SQLite connection, inbox and command for
# the operations that need ids, then lets schemathesis generate requests from
# /api/v1/openapi.json and check every answer (no 5xx, documented status codes,
# content types and schemas, invalid input refused, …).
#
# `positive_data_acceptance` is left out: most request fields refer to other
# objects (connection_id, inbox_id) or carry languages the schema cannot express
# (SQL, cron, connection strings, URLs), so a schema-valid value is often, and
# rightly, refused with a 400.
#
# Usage: .ci/api-schemathesis.sh [path/to/sluice]   (default: $CARGO_TARGET_DIR/debug/sluice)
# KEEP_WORK=1 keeps the server's log and data for a look at a failure.
# Needs python3 and schemathesis 4 (`pip install 'schemathesis>=4,<5'`). Deterministic
# generation: the same binary gives the same run (about 15 s).
set -euo pipefail
cd "$(dirname "$0")/.."

SLUICE="${1:-${CARGO_TARGET_DIR:-target}/debug/sluice}"
[ -x "$SLUICE" ] || { echo "no sluice binary at $SLUICE (cargo build -p sluice-server --bin sluice)" >&2; exit 2; }
command -v schemathesis >/dev/null || { echo "schemathesis is not installed: pip install 'schemathesis>=4,<5'" >&2; exit 2; }

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK (server.log, schemathesis.toml)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export SLUICE_DATA_DIR="$WORK/data" SLUICE_ALLOW_PRIVATE_TARGETS=true
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"

"$SLUICE" migrate >/dev/null
TENANT="$("$SLUICE" admin tenant-create --name fuzz --email fuzz@example.test --password 'correct horse battery' | tail -n1)"
KEY="$("$SLUICE" admin apikey-create --tenant fuzz | tail -n1)"

SLUICE_BIND="127.0.0.1:$PORT" "$SLUICE" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$BASE/healthz" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }

mkdir -p "$SLUICE_DATA_DIR/sqlite/$TENANT"
python3 - "$SLUICE_DATA_DIR/sqlite/$TENANT/items.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT);"
                 "INSERT INTO items VALUES (1, 'lamp'), (2, 'desk');")
db.commit()
EOF
post() {
  curl -fsS -X POST "$BASE$1" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$2" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
CONNECTION="$(post /api/v1/connections '{"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}')"
INBOX="$(post /api/v1/inboxes '{"name": "sink"}')"
COMMAND="$(post /api/v1/commands "{\"connection_id\": \"$CONNECTION\", \"sql\": \"SELECT id, label FROM items\", \"callback\": {\"inbox_id\": \"$INBOX\"}}")"

# The fixtures' ids go to the operations that no create links to (exploring a
# connection, running a command, reading messages). Reading, changing and
# deleting the objects themselves is left to the stateful phase, which follows
# its own creates: a fixed id there would outlive a DELETE it just made.
cat >"$WORK/schemathesis.toml" <<EOF
base-url = "$BASE"
headers = { Authorization = "Bearer $KEY" }

[[operations]]
include-operation-id-regex = "^(testConnection|listTables|listColumns|previewTable)$"
parameters = { "path.id" = "$CONNECTION", "path.name" = "items" }

[[operations]]
include-operation-id-regex = "^(runCommand|pauseCommand|resumeCommand|listRuns)$"
parameters = { "path.id" = "$COMMAND" }

[[operations]]
include-operation-id-regex = "^listMessages$"
parameters = { "path.id" = "$INBOX" }
EOF

# From the work directory, so schemathesis's example cache (.schemathesis/) goes with it.
cd "$WORK"
schemathesis --config-file "$WORK/schemathesis.toml" run "$BASE/api/v1/openapi.json" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples 25 --generation-deterministic --request-timeout 10
