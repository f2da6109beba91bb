#!/usr/bin/env bash
# Benchmarks Roster's Backstage permission endpoint over loopback against Backstage's own
# permission backend (allow-all policy) in the same run, and how soon a policy change shows.
#
#   scripts/bench-access.sh                        # everything, ~3-5 minutes on 2 cores
#   DURATION=3s scripts/bench-access.sh            # quick
#
# Steps: release build; the test Backstage (scripts/backstage.sh, BACKSTAGE_PERMISSION=allow-all,
# no feed) on a free port; `roster serve` on SQLite in a fresh temp dir with
# ROSTER_BACKSTAGE__URL pointing at it; `roster-bench seed-access` (ACCESS_USERS users and
# ACCESS_GROUPS groups in a 5-level tree over SCIM, then the generated policy: 200 roles x 10
# rules, a benchmarked user in 50 roles, through PUT /api/v1/access/policy); real ES256 user
# tokens for TOKENS users from Backstage's test auth module; then `roster-bench authorize`,
# CLIENTS clients, single items and batches of BATCH, against (a) Backstage's
# POST /api/permission/authorize and (b) Roster's POST /backstage/permission/authorize, with
# the same bodies: a mix of resource permissions (with RESOURCE_REF: Backstage refuses a user's
# resource permission without one) and basic ones; (c) Roster alone with the catalog's shape
# (no resourceRef: CONDITIONAL answers); a side-by-side table with the ratio;
# `roster-bench policy-change-latency`.
# Every response is verified; the script exits 1 if any Roster run failed.
#
# Knobs (environment):
#   DURATION=10s  WARMUP=2s  CLIENTS=8  BATCH=100  TOKENS=50  ITERATIONS=20
#   ACCESS_USERS=10000  ACCESS_GROUPS=1000  RESOURCE_REF=component:default/ledger-service (a fixture)
#   SKIP_BASELINE=1   only Roster        SKIP_ROSTER=1   only the baseline (no seeding)
#   SKIP_CHANGE=1     no policy-change latency
#   OUT=target/bench-results/access-<time>   where JSON results and logs go
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CLIENTS=${CLIENTS:-8}
BATCH=${BATCH:-100}
TOKENS=${TOKENS:-50}
ITERATIONS=${ITERATIONS:-20}
ACCESS_USERS=${ACCESS_USERS:-10000}
ACCESS_GROUPS=${ACCESS_GROUPS:-1000}
RESOURCE_REF=${RESOURCE_REF:-component:default/ledger-service}
export BACKSTAGE_STATIC_TOKEN=${BACKSTAGE_STATIC_TOKEN:-roster-bench-static-token}
OUT=${OUT:-$ROOT/target/bench-results/access-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

ROSTER=$ROOT/target/release/roster
BENCH=$ROOT/target/release/roster-bench

ROSTER_PID=
BACKSTAGE_PORT_=
TMP=$(mktemp -d)
FAILED=()

cleanup() {
  if [[ -n "$ROSTER_PID" ]]; then
    kill "$ROSTER_PID" 2>/dev/null || true
    wait "$ROSTER_PID" 2>/dev/null || true
  fi
  if [[ -n "$BACKSTAGE_PORT_" ]]; then
    BACKSTAGE_PORT=$BACKSTAGE_PORT_ scripts/backstage.sh stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

section() { printf '\n======== %s ========\n' "$*"; }

section "build"
cargo build --release -p roster -p roster-bench
scripts/backstage.sh install

section "machine"
echo "nproc: $(nproc)"
echo "cpu:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "ram:   $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "load:  $(cut -d" " -f1-3 /proc/loadavg) (1/5/15 min; other processes distort results)"
echo "results: $OUT"

# ---------------------------------------------------------------- Backstage (allow-all)
section "test Backstage, permission enabled, allow-all policy"
BACKSTAGE_PORT_=$(free_port)
BACKSTAGE=$(BACKSTAGE_PORT=$BACKSTAGE_PORT_ BACKSTAGE_PERMISSION=allow-all scripts/backstage.sh start)
BACKSTAGE_PID=$(cat "e2e/backstage/run/$BACKSTAGE_PORT_/backstage.pid")
echo "Backstage at $BACKSTAGE (pid $BACKSTAGE_PID)"

# ---------------------------------------------------------------- Roster
if [[ -z "${SKIP_ROSTER:-}" ]]; then
  section "roster serve (SQLite, fresh data dir), seeded"
  DATA=$TMP/data
  PORT=$(free_port)
  ROSTER_BACKSTAGE__URL=$BACKSTAGE ROSTER_BACKSTAGE__TOKEN=$BACKSTAGE_STATIC_TOKEN \
    ROSTER_MAX_BODY_BYTES=$((16 * 1024 * 1024)) \
    "$ROSTER" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/roster.log" 2>&1 &
  ROSTER_PID=$!
  for _ in $(seq 1 400); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break
    kill -0 "$ROSTER_PID" 2>/dev/null || { echo "roster exited:"; cat "$OUT/roster.log"; exit 1; }
    sleep 0.05
  done
  ROSTER_URL=http://127.0.0.1:$PORT
  SCIM_TOKEN=$("$ROSTER" token create --name bench-scim --scope scim --data-dir "$DATA")
  FEED_TOKEN=$("$ROSTER" token create --name bench-feed --scope catalog-feed --data-dir "$DATA")
  ADMIN_TOKEN=$("$ROSTER" token create --name bench-admin --scope admin --data-dir "$DATA")
  export ROSTER_BENCH_ADMIN_TOKEN=$ADMIN_TOKEN
  "$BENCH" seed-access --url "$ROSTER_URL/scim/v2" --token "$SCIM_TOKEN" \
    --users "$ACCESS_USERS" --groups "$ACCESS_GROUPS" --bench-users "$TOKENS" \
    --admin-url "$ROSTER_URL/api/v1" \
    --feed-url "$ROSTER_URL/backstage/entities.yaml?token=$FEED_TOKEN" \
    --policy-out "$OUT/policy.json" --users-out "$OUT/users.txt" --json-out "$OUT/seed.json"
  USERS_FILE=$OUT/users.txt
else
  USERS_FILE=$TMP/users.txt
  for i in $(seq 0 $((TOKENS - 1))); do printf 'user:default/bu%05d\n' "$i"; done >"$USERS_FILE"
fi

# ---------------------------------------------------------------- User tokens
section "user tokens (ES256, Backstage's auth plugin) for $(wc -l <"$USERS_FILE") users"
python3 - "$BACKSTAGE" "$USERS_FILE" "$TMP/tokens.txt" <<'PY'
import json, sys, urllib.request
base, users, out = sys.argv[1:4]
tokens = []
for ref in open(users).read().split():
    req = urllib.request.Request(base + "/api/roster-test-auth/token",
                                 data=json.dumps({"userEntityRef": ref}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        tokens.append(json.load(r)["token"])
open(out, "w").write("\n".join(tokens) + "\n")
print(f"{len(tokens)} tokens")
PY

bench() { # LABEL URL BATCH [extra...]
  local label=$1 url=$2 batch=$3; shift 3
  "$BENCH" authorize --url "$url" --tokens-file "$TMP/tokens.txt" --clients "$CLIENTS" \
    --duration "$DURATION" --warmup "$WARMUP" --batch "$batch" --label "$label" \
    --json-out "$OUT/$label.json" "$@"
}

# ---------------------------------------------------------------- Baseline
if [[ -z "${SKIP_BASELINE:-}" ]]; then
  section "baseline: Backstage's own permission backend (allow-all), $CLIENTS clients"
  for b in 1 "$BATCH"; do
    bench "backstage-$b" "$BACKSTAGE/api/permission/authorize" "$b" --resource-ref "$RESOURCE_REF" \
      --server-pid "$BACKSTAGE_PID" || FAILED+=("backstage-$b")
  done
fi

# ---------------------------------------------------------------- Roster
if [[ -z "${SKIP_ROSTER:-}" ]]; then
  section "Roster: /backstage/permission/authorize, $CLIENTS clients"
  for b in 1 "$BATCH"; do
    bench "roster-$b" "$ROSTER_URL/backstage/permission/authorize" "$b" --resource-ref "$RESOURCE_REF" \
      --server-pid "$ROSTER_PID" || FAILED+=("roster-$b")
  done
  section "Roster, the catalog's shape (no resourceRef), $CLIENTS clients"
  for b in 1 "$BATCH"; do
    bench "roster-noref-$b" "$ROSTER_URL/backstage/permission/authorize" "$b" \
      --server-pid "$ROSTER_PID" || FAILED+=("roster-noref-$b")
  done

  if [[ -z "${SKIP_CHANGE:-}" ]]; then
    section "policy change -> decision, $ITERATIONS iterations x 4 flips"
    "$BENCH" policy-change-latency --url "$ROSTER_URL/backstage/permission/authorize" \
      --tokens-file "$TMP/tokens.txt" --subject "$(head -n1 "$USERS_FILE")" \
      --admin-url "$ROSTER_URL/api/v1" --iterations "$ITERATIONS" \
      --json-out "$OUT/policy-change.json" || FAILED+=("policy-change")
  fi
fi

# ---------------------------------------------------------------- Table
section "summary"
python3 - "$OUT" "$BATCH" <<'PY'
import json, os, sys
out, batch = sys.argv[1], sys.argv[2]
def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def cell(r):
    if not r:
        return "-"
    return f"{r['decisions_per_sec']:,.0f} dec/s · {r['requests_per_sec']:,.0f} req/s · p50 {r['p50_ms']:.2f} · p99 {r['p99_ms']:.2f} ms"
print(f"| items/request | Backstage allow-all | Roster (same bodies) | Roster / Backstage (decisions/s) | Roster, catalog shape (no resourceRef) |")
print(f"|---|---|---|---|---|")
for b in ["1", batch]:
    bs, ro, nr = load(f"backstage-{b}"), load(f"roster-{b}"), load(f"roster-noref-{b}")
    ratio = f"{ro['decisions_per_sec'] / bs['decisions_per_sec']:.1f}x" if bs and ro and bs["decisions_per_sec"] else "-"
    print(f"| {b} | {cell(bs)} | {cell(ro)} | {ratio} | {cell(nr)} |")
for name in ["roster-1", f"roster-{batch}", "roster-noref-1", f"roster-noref-{batch}"]:
    ro = load(name)
    if ro:
        r = ro["results"]
        print(f"{name}: ALLOW {r['ALLOW']:,}  DENY {r['DENY']:,}  CONDITIONAL {r['CONDITIONAL']:,}; errors {ro['errors']}")
for name in ["roster-1", "roster-noref-1"]:
  ro = load(name)
  if ro:
    ok = ro["decisions_per_sec"] >= 10000 and ro["p99_ms"] < 2
    print(f"{name}: target single items >= 10,000 decisions/s with p99 < 2 ms: {'met' if ok else 'NOT met'}")
ch = load("policy-change")
if ch:
    a = ch["all"]
    print(f"policy change visible: p50 {a['from_request_ms']['p50']} ms, max {a['from_request_ms']['max']} ms "
          f"over {a['flips']} flips (target < 50 ms: {'met' if a['from_request_ms']['max'] < 50 else 'NOT met'})")
PY

section "done"
echo "results in $OUT"
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "FAILED: ${FAILED[*]}"
  exit 1
fi
