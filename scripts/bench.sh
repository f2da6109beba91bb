#!/usr/bin/env bash
# Benchmarks Roster over loopback and compares it with the Python peer (scim2-server).
#
#   scripts/bench.sh            # everything, ~6-10 minutes on 2 cores
#   DURATION=3 LOAD_USERS=10000 scripts/bench.sh   # quick
#
# Steps: release build; roster on SQLite (fresh temp dir) + roster-bench; roster on PostgreSQL
# (fresh database) + roster-bench; scim2-server (peer) + roster-bench --peer; ratio tables;
# `load` of LOAD_USERS users into a fresh roster (SQLite); `startup` of roster (and the peer).
# Every response is verified; the script exits 1 if any Roster run failed verification.
#
# Knobs (environment):
#   DURATION=10          seconds per scenario        CONCURRENCY=16   concurrent clients
#   LOAD_USERS=100000    users for the load step     PEER_LOAD_USERS=20000 (0 skips the peer load)
#   STARTUP_RUNS=5       cold starts to measure
#   PG_URL=postgres://postgres@127.0.0.1:5432        server for the PostgreSQL run
#   SKIP_PG=1 SKIP_PEER=1 SKIP_LOAD=1 SKIP_STARTUP=1 skip a step
#   OUT=target/bench-results/<time>                  where JSON results and logs go
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
LOAD_USERS=${LOAD_USERS:-100000}
PEER_LOAD_USERS=${PEER_LOAD_USERS:-20000}
STARTUP_RUNS=${STARTUP_RUNS:-5}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
OUT=${OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

ROSTER=$ROOT/target/release/roster
BENCH=$ROOT/target/release/roster-bench
VENV=$ROOT/.venv

PIDS=()
TMPDIRS=()
PG_DBS=()
FAILED=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  for d in "${TMPDIRS[@]:-}"; do [[ -n "$d" ]] && rm -rf "$d"; done
  for db in "${PG_DBS[@]:-}"; do
    [[ -n "$db" ]] && psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() { # PID
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

section() { printf '\n======== %s ========\n' "$*"; }

# start_roster LABEL STORE_ARGS... -> sets PORT, PID, TOKEN
start_roster() {
  local label=$1; shift
  PORT=$(free_port)
  "$ROSTER" serve --listen "127.0.0.1:$PORT" "$@" >"$OUT/$label.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 400); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then break; fi
    if ! kill -0 "$PID" 2>/dev/null; then echo "roster ($label) exited:"; cat "$OUT/$label.log"; return 1; fi
    sleep 0.05
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" || { echo "roster ($label) not ready"; cat "$OUT/$label.log"; return 1; }
  TOKEN=$("$ROSTER" token create --name bench "$@")
}

section "build"
cargo build --release -p roster -p roster-bench

section "machine"
echo "nproc: $(nproc)"
echo "cpu:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "ram:   $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "load:  $(cut -d" " -f1-3 /proc/loadavg) (1/5/15 min; other processes distort results)"
echo "results: $OUT"

# ---------------------------------------------------------------- Roster on SQLite
section "roster on SQLite: $CONCURRENCY clients, ${DURATION}s per scenario"
D=$(mktemp -d); TMPDIRS+=("$D")
start_roster roster-sqlite --data-dir "$D"
"$BENCH" --url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" -c "$CONCURRENCY" \
  --duration-secs "$DURATION" --label roster-sqlite --json-out "$OUT/roster-sqlite.json" \
  --server-pid "$PID" || FAILED+=("roster-sqlite")
stop "$PID"

# ---------------------------------------------------------------- Roster on PostgreSQL
if [[ -z "${SKIP_PG:-}" ]]; then
  section "roster on PostgreSQL: $CONCURRENCY clients, ${DURATION}s per scenario"
  if psql "$PG_URL/postgres" -qc "select 1" >/dev/null 2>&1; then
    DB="roster_bench_$$_$(date +%s)"
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
    PG_DBS+=("$DB")
    start_roster roster-postgres --database-url "$PG_URL/$DB"
    "$BENCH" --url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" -c "$CONCURRENCY" \
      --duration-secs "$DURATION" --label roster-postgres --json-out "$OUT/roster-postgres.json" \
      --server-pid "$PID" || FAILED+=("roster-postgres")
    stop "$PID"
  else
    echo "PostgreSQL not reachable at $PG_URL: skipped"
  fi
fi

# ---------------------------------------------------------------- Peer: scim2-server
ensure_venv() {
  if [[ ! -x "$VENV/bin/scim2-server" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r scripts/peers/requirements.txt
  fi
}
if [[ -z "${SKIP_PEER:-}" ]]; then
  section "peer scim2-server (Python, in memory): $CONCURRENCY clients, ${DURATION}s per scenario"
  ensure_venv
  PPORT=$(free_port)
  PPID_=$(scripts/peers/start_scim2_server.sh "$PPORT" "" "$OUT/scim2-server.log")
  PIDS+=("$PPID_")
  # The peer's failures do not fail this script; unsupported operations are reported as such.
  "$BENCH" --url "http://127.0.0.1:$PPORT/v2" -c "$CONCURRENCY" --duration-secs "$DURATION" \
    --label scim2-server --peer --json-out "$OUT/scim2-server.json" --server-pid "$PPID_" \
    || echo "(peer run reported verification errors)"
  stop "$PPID_"

  for r in roster-sqlite roster-postgres; do
    if [[ -f "$OUT/$r.json" && -f "$OUT/scim2-server.json" ]]; then
      "$BENCH" compare "$OUT/$r.json" "$OUT/scim2-server.json"
    fi
  done
fi

# ---------------------------------------------------------------- Load
if [[ -z "${SKIP_LOAD:-}" ]]; then
  section "load: $LOAD_USERS users into a fresh roster (SQLite), $CONCURRENCY clients"
  D=$(mktemp -d); TMPDIRS+=("$D")
  start_roster roster-load --data-dir "$D"
  "$BENCH" load --url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" -c "$CONCURRENCY" \
    --users "$LOAD_USERS" --label roster-sqlite --json-out "$OUT/load-roster-sqlite.json" \
    --server-pid "$PID" || FAILED+=("load")
  du -sh "$D" | sed 's/^/data dir size: /'
  stop "$PID"

  if [[ -z "${SKIP_PEER:-}" && "$PEER_LOAD_USERS" != "0" ]]; then
    section "load: $PEER_LOAD_USERS users into scim2-server (peer)"
    PPORT=$(free_port)
    PPID_=$(scripts/peers/start_scim2_server.sh "$PPORT" "" "$OUT/scim2-server-load.log")
    PIDS+=("$PPID_")
    "$BENCH" load --url "http://127.0.0.1:$PPORT/v2" -c "$CONCURRENCY" --users "$PEER_LOAD_USERS" \
      --label scim2-server --json-out "$OUT/load-scim2-server.json" --server-pid "$PPID_" \
      || echo "(peer load reported errors)"
    stop "$PPID_"
  fi
fi

# ---------------------------------------------------------------- Start-up
if [[ -z "${SKIP_STARTUP:-}" ]]; then
  section "startup: roster serve on a fresh data dir until /readyz = 200, idle RSS"
  "$BENCH" startup --roster-bin "$ROSTER" --runs "$STARTUP_RUNS" --json-out "$OUT/startup-roster.json" \
    || FAILED+=("startup")
  if [[ -z "${SKIP_PEER:-}" ]]; then
    section "startup: scim2-server until /v2/ServiceProviderConfig = 200"
    "$BENCH" startup --exec --ready-path /v2/ServiceProviderConfig --runs "$STARTUP_RUNS" \
      --json-out "$OUT/startup-scim2-server.json" -- "$VENV/bin/scim2-server" --port '{port}' \
      || echo "(peer startup failed)"
  fi
fi

section "done"
echo "results in $OUT"
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "FAILED: ${FAILED[*]}"
  exit 1
fi
