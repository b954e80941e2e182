"""Runs the README's agent snippets against a running server, and sends what
the log shippers' HTTP outputs configured there send.

usage: readme_snippets.py README URL INGEST_KEY READ_KEY

1. Every ```sh block of the README's "## Agents" section runs with bash,
   URL and KEY set; each `# {...}` comment in a block is the answer the
   command before it must print (`"..."` stands for any string).
2. Vector's `http` sink as configured there (json codec, newline-delimited
   framing, gzip) and Fluent Bit's `http` output (json_lines, iso8601
   `timestamp` with microseconds, gzip) are reproduced byte for byte in
   what matters: framing, headers, timestamp format, compression.
3. The shipped events are then read back through search.

Exit code 0 only when everything matched.
"""

import gzip
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone


def agents_section(readme):
    text = open(readme, encoding="utf-8").read()
    start = text.index("\n## Agents")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def sh_blocks(section):
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def matches(want, got):
    """`got` has `want`'s shape; the string "..." matches any string."""
    if want == "...":
        return isinstance(got, str)
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and matches(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        if want == ["..."]:
            return isinstance(got, list) and all(isinstance(x, str) for x in got)
        return isinstance(got, list) and len(got) == len(want) and all(
            matches(w, g) for w, g in zip(want, got))
    return want == got


def run_block(block, url, key):
    decoder = json.JSONDecoder()
    expected = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("# {"):
            obj, _ = decoder.raw_decode(line[2:])
            expected.append(obj)
    script = "\n".join(l for l in block.splitlines() if not l.startswith("URL="))
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                         env={**os.environ, "URL": url, "KEY": key}, timeout=60)
    if out.returncode != 0:
        return [f"exit {out.returncode}: {out.stderr.strip()}"]
    # curl -s prints answers back to back, without newlines.
    answers, rest = [], out.stdout.strip()
    while rest:
        obj, n = decoder.raw_decode(rest)
        answers.append(obj)
        rest = rest[n:].strip()
    if len(answers) != len(expected):
        return [f"{len(answers)} answers {answers}, expected {len(expected)} {expected}"]
    return [f"answer {g} does not match {w}" for w, g in zip(expected, answers) if not matches(w, g)]


def post(url, key, body, content_type):
    req = urllib.request.Request(
        f"{url}/api/v1/ingestion/events/batch", data=gzip.compress(body), method="POST",
        headers={"Content-Type": content_type, "Content-Encoding": "gzip", "X-API-Key": key})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def shippers(url, key):
    now = datetime.now(timezone.utc)
    records = [{"event_type": "api_call", "service": "shipper-vector", "endpoint": "/api/v1/pay",
                "method": "POST", "status_code": 200 + 300 * (i % 2), "latency_ms": 10 + i,
                "host": "web-1"}  # an unknown field, which is ignored
               for i in range(4)]
    # Vector: codec json + framing newline_delimited, one record per line.
    vector = "".join(json.dumps(r) + "\n" for r in records).encode()
    problems = []
    status, v = post(url, key, vector, "application/x-ndjson")
    if status != 200 or v.get("accepted") != 4:
        problems.append(f"vector-shaped batch: {status} {v}")
    # Fluent Bit: json_lines, json_date_key timestamp, iso8601 with microseconds.
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines = [{"timestamp": stamp, "event_type": "error", "service": "shipper-fluentbit",
              "message": f"worker {i} crashed"} for i in range(3)]
    status, v = post(url, key, "".join(json.dumps(r) + "\n" for r in lines).encode(),
                     "application/x-ndjson")
    if status != 200 or v.get("accepted") != 3:
        problems.append(f"fluent-bit-shaped batch: {status} {v}")
    return problems, stamp


def read_back(url, read_key, fluent_stamp):
    problems = []
    for service, n in [("shipper-vector", 4), ("shipper-fluentbit", 3)]:
        req = urllib.request.Request(
            f"{url}/api/v1/ingestion/events/search?service={service}&from=now-1h&limit=100",
            headers={"X-API-Key": read_key})
        with urllib.request.urlopen(req, timeout=30) as r:
            events = json.loads(r.read())["events"]
        if len(events) != n:
            problems.append(f"{service}: {len(events)} events readable, expected {n}")
        if service == "shipper-vector" and sum(e.get("status_code") == 500 for e in events) != 2:
            problems.append(f"{service}: statuses {[e.get('status_code') for e in events]}")
        if service == "shipper-fluentbit":
            want = fluent_stamp[:23]  # milliseconds are what the answer shows
            if any(not e.get("timestamp", "").startswith(want) for e in events):
                problems.append(f"{service}: timestamps {[e.get('timestamp') for e in events]}, want {want}")
    return problems


def main():
    readme, url, key, read_key = sys.argv[1:5]
    blocks = sh_blocks(agents_section(readme))
    problems = []
    if len(blocks) < 2:
        problems.append(f"expected the curl and OTLP curl blocks, found {len(blocks)} sh blocks")
    for i, block in enumerate(blocks):
        problems += [f"README sh block {i + 1}: {p}" for p in run_block(block, url, key)]
    shipped, stamp = shippers(url, key)
    problems += shipped
    time.sleep(0.2)
    problems += read_back(url, read_key, stamp)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    print(f"README snippets: {len(blocks)} sh blocks run; Vector- and Fluent Bit-shaped batches sent"
          f" and read back: {'ok' if not problems else f'{len(problems)} problems'}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
