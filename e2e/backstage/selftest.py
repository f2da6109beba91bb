#!/usr/bin/env python3
"""End-to-end check of the test Backstage backend (stdlib only).

Serves a small directory feed (multi-document YAML, ETag aware, token in the
query string) on a loopback port, starts Backstage through
scripts/backstage.sh with ROSTER_FEED_URL pointing at it, and checks through
the REST API what Roster's integration tests will rely on. Prints timings and
the request headers Backstage's URL reader sent, then a closing
"N passed, M failed" line. Exit status 0 only when everything passed.

    scripts/backstage.sh selftest      (installs first)
    python3 e2e/backstage/selftest.py  (when already installed)
"""

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "scripts", "backstage.sh")
FEED_TOKEN = "x"
STATIC_TOKEN = "selftest-static-token-123"

USER_JANE = """\
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jane.doe
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
spec:
  profile:
    displayName: Jane Doe
    email: jane.doe@northwind.example
  memberOf:
    - group:default/payments-core
"""
USER_AMARA = """\
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: amara.nwosu
  namespace: default
  annotations:
    roster.dev/scim-id: 0b8f6d7e-3c1a-4f52-8e90-5d2c1a7b9e44
spec:
  profile:
    displayName: Amara Nwosu
  memberOf:
    - group:default/payments-core
"""
GROUPS = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-core
  namespace: default
spec:
  type: team
  profile:
    displayName: Payments Core
  parent: group:default/payments
  children: []
  members:
    - user:default/jane.doe
    - user:default/amara.nwosu
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments
  namespace: default
spec:
  type: business-unit
  children:
    - group:default/payments-core
"""


class Feed:
    """The directory feed Backstage reads; its content can be swapped."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (time, method, path, headers dict, status)
        self.set(USER_JANE + "---\n" + USER_AMARA + "---\n" + GROUPS, "v1")

    def set(self, body, version):
        with self.lock:
            self.body = body.encode()
            self.etag = '"%s"' % version

    def handler(feed):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                with feed.lock:
                    body, etag = feed.body, feed.etag
                if u.path != "/backstage/entities.yaml":
                    status = 404
                elif q.get("token") != [FEED_TOKEN]:
                    status = 401
                elif self.headers.get("If-None-Match") == etag:
                    status = 304
                else:
                    status = 200
                with feed.lock:
                    feed.requests.append(
                        (time.time(), "GET", self.path, dict(self.headers.items()), status)
                    )
                self.send_response(status)
                if status in (200, 304):
                    self.send_header("ETag", etag)
                if status == 200:
                    self.send_header("Content-Type", "application/yaml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args):
                pass

        return H


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None, token=None, auth=True):
        headers = {"Accept": "application/json"}
        tok = token if token is not None else self.token
        if auth and tok:
            headers["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def get(self, path, **kw):
        return self.call("GET", path, **kw)


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def wait_for(what, fn, timeout=90.0, interval=0.25):
    t0 = time.time()
    while True:
        v = fn()
        if v:
            return v, time.time() - t0
        if time.time() - t0 > timeout:
            return None, time.time() - t0
        time.sleep(interval)


def rels(entity):
    return {(r["type"], r["targetRef"]) for r in entity.get("relations", [])}


def main():
    passed, failed = [], []

    def check(name, cond, detail=""):
        (passed if cond else failed).append(name)
        print(("  ok   " if cond else "  FAIL ") + name + (("  -- " + detail) if detail else ""))
        sys.stdout.flush()
        return cond

    feed = Feed()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), feed.handler())
    feed_port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    feed_url = "http://127.0.0.1:%d/backstage/entities.yaml?token=%s" % (feed_port, FEED_TOKEN)

    port = free_port()
    env = dict(os.environ)
    env.update(
        BACKSTAGE_PORT=str(port),
        BACKSTAGE_STATIC_TOKEN=STATIC_TOKEN,
        ROSTER_FEED_URL=feed_url,
        ROSTER_PORT=str(feed_port),
    )
    env.pop("NODE_ENV", None)
    # The checks below expect the permission framework disabled.
    env.pop("ROSTER_PERMISSION_URL", None)
    env.pop("BACKSTAGE_PERMISSION", None)
    print("feed %s; backstage port %d" % (feed_url, port))
    t0 = time.time()
    start = subprocess.run(["bash", SCRIPT, "start"], env=env, stdout=subprocess.PIPE, text=True)
    ready_s = time.time() - t0
    base = start.stdout.strip()
    if not check("start: ready (catalog answers 200 to the static token)", start.returncode == 0,
                 "%.1f s, base %s" % (ready_s, base)):
        print("%d passed, %d failed" % (len(passed), len(failed)))
        return 1
    pid = int(open(os.path.join(HERE, "run", str(port), "backstage.pid")).read())
    api = Api(base, STATIC_TOKEN)
    try:
        run_checks(api, feed, check, pid, t0)
    finally:
        stop = subprocess.run(["bash", SCRIPT, "stop"], env=env)
        gone, _ = wait_for("exit", lambda: not os.path.exists("/proc/%d" % pid), timeout=15)
        check("stop: process gone", stop.returncode == 0 and gone)
        srv.shutdown()
    print("\n%d passed, %d failed" % (len(passed), len(failed)))
    return 0 if not failed else 1


def run_checks(api, feed, check, pid, t_start):
    def users():
        s, b = api.get("/api/catalog/entities/by-query?filter=kind=user&orderField=metadata.name,asc")
        return b if s == 200 else None

    # --- access control of the catalog API
    s, _ = api.get("/api/catalog/entities?limit=1", auth=False)
    check("catalog without a token is rejected", s == 401, "status %s" % s)
    s, _ = api.get("/api/catalog/entities?limit=1", token="wrong-token-123")
    check("catalog with a wrong token is rejected", s == 401, "status %s" % s)

    # --- the feed's users and groups appear, with relations
    def both_users_with_relations():
        b = users()
        if not b or b.get("totalItems") != 2:
            return None
        jane = [e for e in b["items"] if e["metadata"]["name"] == "jane.doe"]
        if jane and ("memberOf", "group:default/payments-core") in rels(jane[0]):
            return b
        return None

    b, dt = wait_for("users", both_users_with_relations)
    check("feed users appear via by-query filter=kind=user", b is not None,
          "%.1f s after ready, %.1f s after start" % (dt, time.time() - t_start))
    if b:
        names = [e["metadata"]["name"] for e in b["items"]]
        print("       users: %s, totalItems %s, pageInfo %s" % (names, b["totalItems"], b.get("pageInfo")))
        jane = [e for e in b["items"] if e["metadata"]["name"] == "jane.doe"][0]
        ann = jane["metadata"]["annotations"]
        print("       jane.doe annotations: %s" % json.dumps(ann, sort_keys=True))
        print("       jane.doe relations: %s" % sorted(rels(jane)))
        check("user annotation kept (roster.dev/scim-id)",
              ann.get("roster.dev/scim-id") == "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa")
        check("managed-by-location is the feed URL",
              ann.get("backstage.io/managed-by-location", "").startswith("url:http://127.0.0.1:"),
              ann.get("backstage.io/managed-by-location"))

    def group_ok():
        s, g = api.get("/api/catalog/entities/by-name/group/default/payments-core")
        if s != 200:
            return None
        r = rels(g)
        want = {("hasMember", "user:default/jane.doe"), ("hasMember", "user:default/amara.nwosu"),
                ("childOf", "group:default/payments"), ("ownerOf", "component:default/ledger-service")}
        return g if want <= r else None

    g, dt = wait_for("group relations", group_ok)
    check("group relations hasMember, childOf, ownerOf", g is not None, "%.1f s" % dt)
    if g:
        print("       payments-core relations: %s" % sorted(rels(g)))

    s, b = api.get("/api/catalog/entities/by-query?filter=kind=user,relations.memberof=group:default/payments-core")
    check("filter by relation (members of payments-core)", s == 200 and b["totalItems"] == 2,
          "totalItems %s" % (b.get("totalItems") if isinstance(b, dict) else b))

    # --- fixture components with ownedBy
    def comps():
        s, b = api.get("/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc")
        if s != 200 or b["totalItems"] != 2:
            return None
        by = {e["metadata"]["name"]: rels(e) for e in b["items"]}
        if ("ownedBy", "group:default/payments-core") in by.get("ledger-service", set()) and \
                ("ownedBy", "user:default/jane.doe") in by.get("refund-worker", set()):
            return by
        return None

    by, dt = wait_for("components", comps)
    check("fixture components with ownedBy relations", by is not None, "%.1f s" % dt)
    if by:
        for n, r in sorted(by.items()):
            print("       %s relations: %s" % (n, sorted(r)))
    s, b = api.get("/api/catalog/entity-facets?facet=kind")
    if s == 200:
        print("       kinds: %s" % {f["value"]: f["count"] for f in b["facets"]["kind"]})

    # --- delete by uid with the static token (comes back: the feed still emits it)
    s, jane = api.get("/api/catalog/entities/by-name/user/default/jane.doe")
    uid = jane["metadata"]["uid"] if s == 200 else None
    s, _ = api.call("DELETE", "/api/catalog/entities/by-uid/%s" % uid)
    check("DELETE /entities/by-uid with the static token", s == 204, "status %s" % s)
    s2, _ = api.get("/api/catalog/entities/by-uid/%s" % uid)
    check("deleted entity is gone by uid", s2 == 404, "status %s" % s2)
    s3, _ = api.call("DELETE", "/api/catalog/entities/by-uid/%s" % uid)
    check("second DELETE of the same uid also 204", s3 == 204, "status %s" % s3)

    def back():
        s, e = api.get("/api/catalog/entities/by-name/user/default/jane.doe")
        return e if s == 200 and e["metadata"]["uid"] != uid else None

    e, dt = wait_for("re-created", back)
    check("deleted user comes back from the feed with a new uid", e is not None, "%.1f s" % dt)

    # --- ETag / If-None-Match on the feed
    def fetched_twice():
        with feed.lock:
            return len(feed.requests) >= 3
    wait_for("feed fetches", fetched_twice, timeout=30)
    with feed.lock:
        reqs = list(feed.requests)
    inm = [r for r in reqs if "If-None-Match" in r[3]]
    statuses = [r[4] for r in reqs]
    print("       feed requests so far: %d, statuses %s" % (len(reqs), statuses))
    print("       first request headers: %s" % json.dumps(reqs[0][3], sort_keys=True))
    if len(reqs) > 1:
        print("       later request headers: %s" % json.dumps(reqs[-1][3], sort_keys=True))
        gaps = [round(b[0] - a[0], 1) for a, b in zip(reqs, reqs[1:])]
        print("       seconds between fetches: %s" % gaps)
    check("URL reader sends If-None-Match with the last ETag", bool(inm) and 304 in statuses,
          "%d of %d requests" % (len(inm), len(reqs)))
    check("no Authorization header sent to the feed", all("Authorization" not in r[3] for r in reqs))

    # --- removal from the feed: orphan (orphanStrategy keep)
    feed.set(USER_JANE + "---\n" + GROUPS.replace("    - user:default/amara.nwosu\n", ""), "v2")

    def orphaned():
        s, e = api.get("/api/catalog/entities/by-name/user/default/amara.nwosu")
        if s == 200 and e["metadata"].get("annotations", {}).get("backstage.io/orphan") == "true":
            return e
        return None

    e, dt = wait_for("orphan", orphaned)
    check("user dropped from the feed stays, annotated backstage.io/orphan=true", e is not None,
          "%.1f s" % dt)
    s, b = api.get("/api/catalog/entities/by-query?filter=metadata.annotations.backstage.io/orphan=true")
    if s == 200:
        print("       orphans: %s" % [x["metadata"]["name"] for x in b["items"]])

    # --- a user added to the feed: how long until the catalog shows it
    feed.set(USER_JANE + "---\n" + USER_AMARA.replace("amara.nwosu", "kofi.mensah") + "---\n" + GROUPS, "v3")

    def added():
        s, _ = api.get("/api/catalog/entities/by-name/user/default/kofi.mensah")
        return s == 200

    ok, dt = wait_for("added", added)
    check("user added to the feed appears", bool(ok), "%.1f s after the feed changed" % dt)
    s, locs = api.get("/api/catalog/locations")
    if s == 200:
        print("       locations: %s" % [(x["data"]["type"], x["data"]["target"]) for x in locs])

    # --- auth: JWKS and test user tokens
    s, j = api.get("/api/auth/.well-known/jwks.json", auth=False)
    check("GET /api/auth/.well-known/jwks.json (no token) answers", s == 200 and "keys" in j,
          "status %s, %d keys before any sign-in" % (s, len(j.get("keys", [])) if isinstance(j, dict) else -1))

    s, t = api.call("POST", "/api/roster-test-auth/token", {"userEntityRef": "user:default/alice"}, auth=False)
    ok = check("POST /api/roster-test-auth/token issues a token", s == 200 and "token" in t,
               "status %s, body %s" % (s, t if s != 200 else {k: v for k, v in t.items() if k != "token"}))
    if ok:
        h, p, _ = t["token"].split(".")
        hdr, payload = b64json(h), b64json(p)
        print("       JOSE header %s" % hdr)
        print("       payload %s" % payload)
        check("user token header: typ vnd.backstage.user, alg ES256",
              hdr.get("typ") == "vnd.backstage.user" and hdr.get("alg") == "ES256")
        check("user token sub and ent", payload.get("sub") == "user:default/alice" and
              payload.get("ent") == ["user:default/alice"] and payload.get("aud") == "backstage")
        s, j = api.get("/api/auth/.well-known/jwks.json", auth=False)
        kids = [k.get("kid") for k in j.get("keys", [])]
        check("token kid is in the JWKS", hdr.get("kid") in kids, "%d keys, kty/crv %s" % (
            len(kids), [(k.get("kty"), k.get("crv"), k.get("alg")) for k in j.get("keys", [])]))
        s, _ = api.get("/api/catalog/entities?limit=1", token=t["token"])
        check("catalog accepts the user token", s == 200, "status %s" % s)
        verify = subprocess.run(
            ["node", "-e", VERIFY_JS, api.base + "/api/auth/.well-known/jwks.json", t["token"]],
            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check("signature verifies against the JWKS (jose.jwtVerify)", verify.returncode == 0,
              verify.stdout.strip())

    s, r = api.call("POST", "/api/auth/roster-test/refresh",
                    {"userEntityRef": "jane.doe", "catalog": True}, auth=False)
    ident = r.get("backstageIdentity", {}).get("identity", {}) if isinstance(r, dict) else {}
    check("catalog sign-in (catalog: true) resolves ownership from the catalog",
          s == 200 and "group:default/payments-core" in ident.get("ownershipEntityRefs", []),
          "status %s, identity %s" % (s, ident))
    s, r = api.call("POST", "/api/auth/roster-test/refresh",
                    {"userEntityRef": "user:default/nobody", "catalog": True}, auth=False)
    check("catalog sign-in of an unknown user is refused", s == 404,
          "status %s, %s" % (s, (r.get("error") if isinstance(r, dict) else r)))
    s, r = api.call("POST", "/api/roster-test-auth/token",
                    {"userEntityRef": "user:default/bob", "ownershipEntityRefs": ["payments-core"]}, auth=False)
    check("explicit ownershipEntityRefs become the ent claim",
          s == 200 and r.get("ownershipEntityRefs") == ["group:default/payments-core"],
          "status %s, ownership %s" % (s, r.get("ownershipEntityRefs") if isinstance(r, dict) else r))
    s, r = api.call("POST", "/api/roster-test-auth/token", {"userEntityRef": "group:default/x"}, auth=False)
    check("non-user ref is a 400", s == 400, "status %s" % s)

    # --- permission backend is installed (framework disabled in config)
    item = {"items": [{"id": "1", "permission": {"type": "basic", "name": "catalog.location.create",
                                                 "attributes": {"action": "create"}}}]}
    s, r = api.call("POST", "/api/permission/authorize", item)
    check("permission authorize refuses the static (service) token", s == 403,
          "status %s, %s" % (s, r.get("error") if isinstance(r, dict) else r))
    if ok:
        s, r = api.call("POST", "/api/permission/authorize", item, token=t["token"])
        check("permission authorize answers a user token (allow-all policy)",
              s == 200 and r["items"][0]["result"] == "ALLOW", "status %s, %s" % (s, r))

    # --- resources
    with open("/proc/%d/status" % pid) as f:
        rss = [line.split()[1] for line in f if line.startswith("VmRSS")][0]
    print("       RSS of the backend: %.0f MiB" % (int(rss) / 1024))


VERIFY_JS = r"""
const { createRemoteJWKSet, jwtVerify } = require('jose');
(async () => {
  const jwks = createRemoteJWKSet(new URL(process.argv[1]));
  const { payload, protectedHeader } = await jwtVerify(process.argv[2], jwks,
    { typ: 'vnd.backstage.user', audience: 'backstage' });
  console.log('verified', protectedHeader.alg, 'iss', payload.iss);
})().catch(e => { console.log(String(e)); process.exit(1); });
"""

if __name__ == "__main__":
    sys.exit(main())
