#!/usr/bin/env bash
# Start the Python in-memory SCIM server (PyPI scim2-server) as a peer and wait until it answers.
#
#   scripts/peers/start_scim2_server.sh PORT [TOKEN] [LOGFILE]
#
# Prints the server's PID on stdout (one line) once GET /v2/ServiceProviderConfig answers 200;
# the SCIM base URL is then http://127.0.0.1:PORT/v2. Stop it with `kill PID`.
# Without TOKEN the server accepts every request (no auth); with TOKEN it requires
# `Authorization: Bearer TOKEN` on everything but /ServiceProviderConfig.
# The server is wsgiref's threaded HTTP/1.0 server (one connection per request, no keep-alive),
# storage is in memory and lost when it stops.
set -euo pipefail
PORT=${1:?usage: start_scim2_server.sh PORT [TOKEN] [LOGFILE]}
TOKEN=${2:-}
LOG=${3:-/dev/null}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${SCIM2_SERVER:-$ROOT/.venv/bin/scim2-server}
if [[ ! -x "$BIN" ]]; then
  BIN=$(command -v scim2-server || true)
fi
if [[ -z "$BIN" ]]; then
  echo "scim2-server not found: python3 -m venv .venv && .venv/bin/pip install -r scripts/peers/requirements.txt" >&2
  exit 1
fi
args=(--hostname 127.0.0.1 --port "$PORT")
if [[ -n "$TOKEN" ]]; then args+=(--bearer-token "$TOKEN"); fi

"$BIN" "${args[@]}" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "scim2-server exited early (see $LOG)" >&2
    exit 1
  fi
  if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/ServiceProviderConfig" 2>/dev/null; then
    echo "$PID"
    exit 0
  fi
  sleep 0.05
done
echo "scim2-server did not become ready on port $PORT within 10 s" >&2
kill "$PID" 2>/dev/null || true
exit 1
