#!/usr/bin/env bash
# Checks that need a live `roster serve`: the scim2-tester conformance
# suite, the committed OpenAPI document, and schemathesis. Run by
# scripts/test.sh after the release build and the Python venv exist.
set -euo pipefail
cd "$(dirname "$0")/.."

# The debug binary that `cargo test` built; ROSTER_BIN overrides.
BIN=${ROSTER_BIN:-target/debug/roster}
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG="$DATA/roster.log"
cleanup() {
  if [[ -n "${PID:-}" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT

# A Backstage URL where nothing listens: the permission endpoint then checks
# tokens (schemathesis's are not Backstage's, so they get 401) instead of
# answering that Backstage is not configured.
ROSTER_BACKSTAGE__URL=http://127.0.0.1:9 "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "roster did not become ready"; cat "$LOG"; exit 1; }
TOKEN=$("$BIN" token create --name conformance --data-dir "$DATA")
BASE="http://127.0.0.1:$PORT"

echo "--- OpenAPI document matches the committed docs/openapi.json"
curl -fsS "$BASE/openapi.json" | python3 -m json.tool --sort-keys > "$DATA/openapi.json"
python3 -m json.tool --sort-keys docs/openapi.json > "$DATA/openapi.committed.json"
if ! diff -u "$DATA/openapi.committed.json" "$DATA/openapi.json"; then
  echo "docs/openapi.json is stale: regenerate it with scripts/update-openapi.sh"
  exit 1
fi

echo "--- scim2-tester conformance suite"
.venv/bin/python scripts/peers/scim_conformance.py --url "$BASE/scim/v2" --token "$TOKEN"

echo "--- schemathesis against /openapi.json"
# The examples phase is left out: schemathesis 4.32 crashes internally completing
# the documented body examples (hypothesis FlakyFailure inside its own generator).
# One worker: with two, hypothesis parses lambda sources on two threads at once and
# Python 3.11's ast module trips over its own recursion counter (cpython gh-106905),
# a crash inside the test tool rather than a finding about Roster.
# A token opens one scope, so the SCIM API and the admin API are two runs, each
# with the token that opens it (the other operations would only ever see 401).
ADMIN_TOKEN=$("$BIN" token create --name schemathesis-admin --scope admin --data-dir "$DATA")
echo "--- schemathesis: everything but the admin API, with a SCIM token"
WORKERS=1 PHASES=coverage,fuzzing,stateful MAX_TIME=${SCHEMATHESIS_MAX_TIME:-150} \
  bash scripts/peers/schemathesis.sh "$BASE/openapi.json" "$TOKEN" --exclude-path-regex '^/api/v1/'
echo "--- schemathesis: the admin API, with an admin token"
# GET /api/v1/reconcile is left out: it reads a live Backstage catalog (here there is
# none, and the answer is a 502/503 by design); crates/roster/tests/backstage_e2e.rs
# drives it against a real one.
WORKERS=1 PHASES=coverage,fuzzing,stateful MAX_TIME=${SCHEMATHESIS_ADMIN_MAX_TIME:-90} \
  bash scripts/peers/schemathesis.sh "$BASE/openapi.json" "$ADMIN_TOKEN" --include-path-regex '^/api/v1/' \
  --exclude-path /api/v1/reconcile

echo "--- the server logged no errors and no panics"
if grep -E 'ERROR|panicked' "$LOG"; then
  echo "the server log above has errors"
  exit 1
fi
