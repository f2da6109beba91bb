#!/usr/bin/env python3
"""Run the scim2-tester conformance suite against a live SCIM server.

Usage:
    scim_conformance.py --url http://127.0.0.1:8080/scim/v2 --token TOKEN [--verbose]
                        [--strict] [--include-tag TAG ...] [--exclude-tag TAG ...]
                        [--resource-type User ...] [--json-out FILE]

Every check result is printed as one line `STATUS  resource  title  reason`.
scim2-tester statuses are grouped as follows:

  pass     SUCCESS, COMPLIANT, ACCEPTABLE
  warn     DEVIATION           (departs from a SHOULD; fails the run only with --strict)
  fail     ERROR, CRITICAL     (violates a MUST, or a security problem)
  skip     SKIPPED             (filtered out, or the server announces it lacks the feature)

Exit code: 0 if no check failed, 1 if any check failed (or, with --strict, deviated),
2 if the suite could not run at all (e.g. the server is unreachable).

Note: scim2-tester's own CLI (`scim2 --url URL -h "Authorization: Bearer T" test`, from the
scim2-cli package) exits 1 on ANY status other than SUCCESS, SKIPPED included, which is why
this wrapper exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

try:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server, get_all_available_tags
except ImportError as exc:  # pragma: no cover - environment problem
    print(
        f"error: {exc}\n"
        "install the pinned tools first: pip install -r scripts/peers/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

PASS = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
WARN = {Status.DEVIATION}
FAIL = {Status.ERROR, Status.CRITICAL}
SKIP = {Status.SKIPPED}


def one_line(text: Any, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2")
    parser.add_argument("--token", default=None, help="bearer token (omit for a server without auth)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print debugging data of failures")
    parser.add_argument("--strict", action="store_true", help="treat DEVIATION as a failure")
    parser.add_argument("--include-tag", action="append", default=None, help="run only checks with this tag")
    parser.add_argument("--exclude-tag", action="append", default=None, help="skip checks with this tag")
    parser.add_argument("--resource-type", action="append", default=None, help="only these resource types")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    parser.add_argument("--json-out", default=None, help="write all results as JSON to this file")
    parser.add_argument("--list-tags", action="store_true", help="print the available tags and exit")
    args = parser.parse_args()

    if args.list_tags:
        print("\n".join(get_all_available_tags()))
        return 0

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    base = args.url.rstrip("/") + "/"
    http = Client(base_url=base, headers=headers, timeout=args.timeout)
    client = SyncSCIMClient(http)

    try:
        results = check_server(
            client,
            raise_exceptions=False,
            include_tags=set(args.include_tag) if args.include_tag else None,
            exclude_tags=set(args.exclude_tag) if args.exclude_tag else None,
            resource_types=args.resource_type,
        )
    except Exception as exc:  # the suite itself crashed (not a failed check)
        print(f"error: scim2-tester could not run against {args.url}: {exc!r}", file=sys.stderr)
        return 2
    finally:
        http.close()

    if not results:
        print("error: scim2-tester produced no result", file=sys.stderr)
        return 2

    failing = FAIL | (WARN if args.strict else set())
    counts: Counter[str] = Counter()
    print(f"scim2-tester against {args.url}")
    for r in results:
        status = r.status
        if status in PASS:
            group = "pass"
        elif status in WARN:
            group = "warn"
        elif status in FAIL:
            group = "fail"
        else:
            group = "skip"
        counts[group] += 1
        mark = "FAIL" if status in failing else group.upper()
        rtype = r.resource_type or "-"
        reason = one_line(r.reason) if r.reason else ""
        print(f"{mark:4} {status.name:10} {rtype:8} {r.title or '?':38} {reason}")
        if args.verbose and status in failing and r.data is not None:
            print(f"      data: {one_line(r.data, 2000)}")

    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(
                [
                    {
                        "status": r.status.name,
                        "title": r.title,
                        "resource_type": r.resource_type,
                        "tags": sorted(r.tags),
                        "reason": r.reason,
                    }
                    for r in results
                ],
                f,
                indent=2,
            )

    n_failed = sum(1 for r in results if r.status in failing)
    print()
    print(
        f"summary: {len(results)} results: {counts['pass']} passed, {counts['warn']} deviations, "
        f"{counts['fail']} failed, {counts['skip']} skipped"
    )
    # Plain closing line understood by the CI runner.
    print(f"conformance: {len(results) - n_failed - counts['skip']} passed, {n_failed} failed, {counts['skip']} skipped")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
