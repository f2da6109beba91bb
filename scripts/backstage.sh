#!/usr/bin/env bash
# A real, test-only Backstage backend (release 1.45.3) on loopback, for
# Roster's integration tests. Lives in e2e/backstage/ (see its README.md).
#
#   scripts/backstage.sh install    npm ci in e2e/backstage (skipped when up to date)
#   scripts/backstage.sh start      start in the background, wait until ready,
#                                   print the base URL on stdout
#   scripts/backstage.sh stop       stop the instance on $BACKSTAGE_PORT
#   scripts/backstage.sh stop-all   stop every instance started from this tree
#   scripts/backstage.sh status     exit 0 when the instance on $BACKSTAGE_PORT runs
#   scripts/backstage.sh selftest   install, then check a real instance end to end
#
# Environment for start (and stop/status: BACKSTAGE_PORT):
#   BACKSTAGE_PORT          listen port on 127.0.0.1             (default 7007)
#   BACKSTAGE_STATIC_TOKEN  static service token, subject roster (default roster-e2e-static-token)
#   ROSTER_FEED_URL         URL location the catalog reads, e.g.
#                           http://127.0.0.1:8080/backstage/entities.yaml?token=x
#                           (unset: only the fixture components are loaded)
#   ROSTER_PORT             port allowed for URL reading on 127.0.0.1
#                           (default: the port of ROSTER_FEED_URL)
#   ROSTER_PERMISSION_URL   Roster's permission API, e.g.
#                           http://127.0.0.1:8080/backstage/permission: adds
#                           app-config.permission.yaml (permission.enabled, and
#                           discovery sends plugin id `permission` there)
#   BACKSTAGE_PERMISSION    allow-all: adds app-config.allow-all.yaml (permission
#                           enabled, Backstage's own allow-all policy decides;
#                           a baseline); unset or off: permission disabled
#   BACKSTAGE_START_TIMEOUT seconds to wait for readiness         (default 180)
# Each instance keeps its pid and log under e2e/backstage/run/<port>/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/e2e/backstage"
STAMP="$DIR/node_modules/.roster-install-stamp"

log() { printf 'backstage.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The Node.js prefix whose include/node/node.h exists: node-gyp cannot
# download headers here, so better-sqlite3's build must use the local ones.
node_prefix() {
  local node cand
  node="$(command -v node)" || die "node not found (Node.js 20 is needed)"
  node="$(readlink -f "$node")"
  for cand in "$(dirname "$(dirname "$node")")" \
    "$(node -p 'process.config.variables.node_prefix' 2>/dev/null || true)" /usr /usr/local; do
    if [ -n "$cand" ] && [ -f "$cand/include/node/node.h" ]; then
      printf '%s\n' "$cand"
      return 0
    fi
  done
  return 1
}

install_stamp() {
  {
    node --version
    sha256sum "$DIR/package.json" "$DIR/package-lock.json"
  } | sha256sum | cut -d' ' -f1
}

cmd_install() {
  command -v npm >/dev/null || die "npm not found"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js $(node --version) is too old: Backstage 1.45 needs 20 (or 22)"
  local want
  want="$(install_stamp)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
    (cd "$DIR" && node -e 'new (require("better-sqlite3"))(":memory:").close()') 2>/dev/null; then
    log "node_modules up to date"
    return 0
  fi
  local prefix
  if prefix="$(node_prefix)"; then
    export npm_config_nodedir="$prefix"
    log "npm ci (npm_config_nodedir=$prefix; better-sqlite3 compiles from source, a few minutes)"
  else
    log "no local Node headers found (include/node/node.h): better-sqlite3 may fail to build"
  fi
  local t0=$SECONDS
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
  (cd "$DIR" && node -e 'new (require("better-sqlite3"))(":memory:").close()') ||
    die "better-sqlite3 does not load after npm ci"
  printf '%s\n' "$want" >"$STAMP"
  log "installed in $((SECONDS - t0)) s"
}

run_dir() { printf '%s/run/%s\n' "$DIR" "${BACKSTAGE_PORT:-7007}"; }

running_pid() {
  local pidfile pid
  pidfile="$(run_dir)/backstage.pid"
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

cmd_start() {
  export BACKSTAGE_PORT="${BACKSTAGE_PORT:-7007}"
  export BACKSTAGE_STATIC_TOKEN="${BACKSTAGE_STATIC_TOKEN:-roster-e2e-static-token}"
  export BACKSTAGE_FIXTURES_DIR="$DIR/fixtures"
  local configs=(--config "$DIR/app-config.yaml")
  if [ -n "${ROSTER_FEED_URL:-}" ]; then
    if [ -z "${ROSTER_PORT:-}" ]; then
      ROSTER_PORT="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or "")' "$ROSTER_FEED_URL")"
      [ -n "$ROSTER_PORT" ] || die "ROSTER_FEED_URL has no port; set ROSTER_PORT"
    fi
  else
    configs+=(--config "$DIR/app-config.no-feed.yaml")
    log "ROSTER_FEED_URL unset: loading the fixture components only"
  fi
  case "${BACKSTAGE_PERMISSION:-off}" in
    off) ;;
    allow-all)
      [ -z "${ROSTER_PERMISSION_URL:-}" ] ||
        die "set ROSTER_PERMISSION_URL or BACKSTAGE_PERMISSION=allow-all, not both"
      configs+=(--config "$DIR/app-config.allow-all.yaml")
      log "permission enabled: Backstage's own allow-all policy decides"
      ;;
    *) die "BACKSTAGE_PERMISSION must be allow-all or off, not '$BACKSTAGE_PERMISSION'" ;;
  esac
  if [ -n "${ROSTER_PERMISSION_URL:-}" ]; then
    configs+=(--config "$DIR/app-config.permission.yaml")
    log "permission enabled: decisions from $ROSTER_PERMISSION_URL"
  fi
  # Config substitution drops a key whose variable is unset, so always set it.
  export ROSTER_PORT="${ROSTER_PORT:-0}"
  [ -d "$DIR/node_modules" ] || die "not installed: run scripts/backstage.sh install"
  if pid="$(running_pid)"; then
    die "already running on port $BACKSTAGE_PORT (pid $pid); stop it first"
  fi
  local rd base logf pid
  rd="$(run_dir)"
  mkdir -p "$rd"
  logf="$rd/backstage.log"
  base="http://127.0.0.1:$BACKSTAGE_PORT"
  if curl -s -o /dev/null --max-time 2 "$base/" 2>/dev/null; then
    die "port $BACKSTAGE_PORT is already in use"
  fi
  local t0=$SECONDS
  # setsid: own process group, so stop can end node and anything it spawned.
  (cd "$DIR" && NODE_ENV="${NODE_ENV:-production}" exec setsid node backend.js "${configs[@]}" \
    >"$logf" 2>&1 </dev/null) &
  pid=$!
  printf '%s\n' "$pid" >"$rd/backstage.pid"
  local timeout="${BACKSTAGE_START_TIMEOUT:-180}" code
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$logf" >&2 || true
      rm -f "$rd/backstage.pid"
      die "backend exited during start-up (log: $logf)"
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
      -H "Authorization: Bearer $BACKSTAGE_STATIC_TOKEN" \
      "$base/api/catalog/entities?limit=1" 2>/dev/null || true)"
    [ "$code" = "200" ] && break
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      tail -n 40 "$logf" >&2 || true
      cmd_stop
      die "not ready after ${timeout} s (last status ${code:-none}; log: $logf)"
    fi
    sleep 0.5
  done
  log "ready on $base after $((SECONDS - t0)) s (pid $pid, log $logf)"
  printf '%s\n' "$base"
}

cmd_stop() {
  local rd pid i
  rd="$(run_dir)"
  if ! pid="$(running_pid)"; then
    rm -f "$rd/backstage.pid"
    log "not running on port ${BACKSTAGE_PORT:-7007}"
    return 0
  fi
  # The pid is the process-group leader (setsid); signal the whole group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 10 s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$rd/backstage.pid"
  log "stopped (pid $pid)"
}

cmd_stop_all() {
  local d
  for d in "$DIR"/run/*/; do
    [ -d "$d" ] || continue
    BACKSTAGE_PORT="$(basename "$d")" cmd_stop
  done
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    log "running on port ${BACKSTAGE_PORT:-7007} (pid $pid)"
  else
    log "not running on port ${BACKSTAGE_PORT:-7007}"
    return 1
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  stop-all) cmd_stop_all ;;
  status) cmd_status ;;
  selftest)
    cmd_install
    exec python3 "$DIR/selftest.py"
    ;;
  *)
    sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
