#!/usr/bin/env bash
# The whole test suite: what CI runs and what a developer runs.
#   ./scripts/test.sh
# Installs what it needs (a Python venv with the conformance tools), checks
# formatting and lints, runs the Rust tests on SQLite and on PostgreSQL when
# one is reachable, then the external conformance suite and schemathesis
# against a live server.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL"
export ROSTER_TEST_POSTGRES_URL="${ROSTER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "PostgreSQL reachable: store and server tests also run on it"
else
  echo "PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL tests will report that they skipped"
fi

step "Backstage test backend: npm install (real Backstage 1.45.3 for the end-to-end tests)"
bash scripts/backstage.sh install

step "cargo test (workspace)"
cargo test --workspace --locked

step "Python peers (scim2-tester, schemathesis)"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/peers/requirements.txt

step "live-server checks (conformance, OpenAPI, schemathesis, durability)"
bash scripts/live-checks.sh

step "Backstage test backend (real Backstage 1.45.3 on loopback: install, start, feed, catalog API, tokens)"
bash scripts/backstage.sh selftest

printf '\nall tests passed\n'
