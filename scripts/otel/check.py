"""Sets up a tenant on a running PulseStream and checks what the OTel clients
exported, through the search and statistics APIs. Standard library only.

Usage:
  check.py setup URL ADMIN_PASSWORD    -> prints "INGEST_KEY READ_KEY"
  check.py verify URL READ_KEY SERVICE -> exit 0 when exactly the expected
                                          events of spans.json arrived
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(url, method="GET", body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def setup(url, admin_password):
    s, v = call(f"{url}/api/v1/auth/login", "POST",
                {"email": "admin@localhost", "password": admin_password})
    assert s == 200, f"admin login: {s} {v}"
    admin = v["access_token"]
    s, v = call(f"{url}/api/v1/auth/register/tenant", "POST",
                {"tenant_name": "otel-clients", "owner_email": "owner@otel.test",
                 "owner_password": "otel-clients-pass-1"},
                {"Authorization": f"Bearer {admin}"})
    assert s == 201, f"register tenant: {s} {v}"
    ingest_key, owner = v["api_key"], v["access_token"]
    s, k = call(f"{url}/api/v1/auth/api-keys", "POST",
                {"name": "reader", "scopes": ["read"]},
                {"Authorization": f"Bearer {owner}"})
    assert s == 201, f"read key: {s} {k}"
    print(ingest_key, k["key"])


def expected():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "spans.json")) as f:
        return [s["expect"] for s in json.load(f)["spans"] if "expect" in s]


def verify(url, read_key, service):
    want = expected()
    hdr = {"X-API-Key": read_key}
    events = []
    # Acknowledged events are searchable within a second; allow a little more.
    for _ in range(20):
        s, v = call(f"{url}/api/v1/ingestion/events/search?service={service}&from=now-1h&limit=100",
                    headers=hdr)
        assert s == 200, f"search: {s} {v}"
        events = v["events"]
        if len(events) >= len(want):
            break
        time.sleep(0.25)
    problems = []
    if len(events) != len(want):
        problems.append(f"{len(events)} events arrived, {len(want)} expected")
    unmatched = list(events)
    for w in want:
        match = None
        for e in unmatched:
            if (e.get("endpoint") == w["endpoint"]
                    and e.get("event_type") == w["event_type"]
                    and e.get("method") == w["method"]
                    and e.get("status_code") == w["status_code"]
                    and abs(float(e.get("latency_ms", -1)) - w["latency_ms"]) < 0.001
                    and e.get("user_id") == w.get("user_id")
                    and e.get("service") == service
                    and len(e.get("trace_id") or "") == 32):
                match = e
                break
        if match is None:
            problems.append(f"no event matches {w}")
        else:
            unmatched.remove(match)
    for e in unmatched:
        problems.append(f"unexpected event {e}")

    s, st = call(f"{url}/api/v1/ingestion/events/statistics?service={service}&from=now-1h",
                 headers=hdr)
    assert s == 200, f"statistics: {s} {st}"
    errors = sum(1 for w in want if w["error"])
    if st["total"] != len(want):
        problems.append(f"statistics total {st['total']}, expected {len(want)}")
    if abs(st["error_rate"] - errors / len(want)) > 1e-9:
        problems.append(f"statistics error_rate {st['error_rate']}, expected {errors}/{len(want)}")
    lat = sorted(w["latency_ms"] for w in want)
    avg = sum(lat) / len(lat)
    if st["latency_ms"]["avg"] is None or abs(st["latency_ms"]["avg"] - avg) > 0.01:
        problems.append(f"statistics avg latency {st['latency_ms']['avg']}, expected {avg}")
    if problems:
        print(f"{service}: FAILED", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"{service}: {len(events)} events with the expected fields; "
          f"error_rate {st['error_rate']:.3f}, avg latency {st['latency_ms']['avg']:.1f} ms")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
