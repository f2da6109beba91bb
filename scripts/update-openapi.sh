#!/usr/bin/env bash
# Regenerates docs/openapi.json from the handlers' annotations.
set -euo pipefail
cd "$(dirname "$0")/.."
ROSTER_UPDATE_OPENAPI=1 cargo test -q -p roster-server --lib openapi_document_matches_committed_copy
echo "wrote docs/openapi.json"
