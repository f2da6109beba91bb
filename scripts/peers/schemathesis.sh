#!/usr/bin/env bash
# Property-based API testing of a running server against its own OpenAPI document.
#
#   scripts/peers/schemathesis.sh SCHEMA TOKEN [extra schemathesis args...]
#
# SCHEMA is the OpenAPI document: normally http://127.0.0.1:PORT/openapi.json (Roster serves it;
# the request fetching it carries the same Authorization header). It may also be a local file,
# then BASE_URL must name the API base (e.g. BASE_URL=http://127.0.0.1:PORT/scim/v2).
# TOKEN is a bearer token ("" for a server without auth).
#
# Environment knobs (defaults in brackets):
#   CHECKS         [not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance]
#                  ("all" also runs negative_data_rejection, use_after_free, ignored_auth, ...)
#   MAX_EXAMPLES   [25]    test cases per operation and phase
#   MAX_TIME       [180]   overall time budget in seconds (the run stops by itself)
#   PHASES         [examples,coverage,fuzzing,stateful]
#   WORKERS        [2]
#   SEED           [20240601]  for reproducible runs
#   BASE_URL       []      --url override (required for a local file SCHEMA)
#   REPORT_DIR     []      when set, writes JUnit XML + NDJSON reports there
#   ST             [.venv/bin/schemathesis, else schemathesis on PATH]
#
# Exit code: schemathesis's own: 0 when no check failed, 1 on failures, 2 on a usage or
# schema loading error.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,25p' "$0" >&2
  exit 2
fi
SCHEMA=$1
TOKEN=$2
shift 2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ST=${ST:-}
if [[ -z "$ST" ]]; then
  if [[ -x "$ROOT/.venv/bin/schemathesis" ]]; then ST="$ROOT/.venv/bin/schemathesis"; else ST=schemathesis; fi
fi

CHECKS=${CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance}
args=(run "$SCHEMA"
  --checks "$CHECKS"
  --max-examples "${MAX_EXAMPLES:-25}"
  --max-time "${MAX_TIME:-180}"
  --phases "${PHASES:-examples,coverage,fuzzing,stateful}"
  --workers "${WORKERS:-2}"
  --seed "${SEED:-20240601}"
  --request-timeout 10
  --generation-database none
  --suppress-health-check all
  --no-color
)
if [[ -n "$TOKEN" ]]; then
  args+=(-H "Authorization: Bearer $TOKEN")
fi
if [[ -n "${BASE_URL:-}" ]]; then
  args+=(--url "$BASE_URL")
fi
if [[ -n "${REPORT_DIR:-}" ]]; then
  mkdir -p "$REPORT_DIR"
  args+=(--report junit,ndjson --report-dir "$REPORT_DIR")
fi

echo "+ $ST ${args[*]/Bearer $TOKEN/Bearer ***} $*" >&2
exec "$ST" "${args[@]}" "$@"
