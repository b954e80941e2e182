#!/usr/bin/env bash
# Real OpenTelemetry clients against a real `pulsestream serve` (issue 11):
# the Python SDK with the OTLP/HTTP protobuf exporter and the Node SDK with
# the OTLP/HTTP JSON exporter export the spans of scripts/otel/spans.json;
# scripts/otel/check.py then checks through the search and statistics APIs
# that exactly the expected events arrived, with their fields, errors and
# latencies. scripts/otel/readme_snippets.py runs the README's agent
# snippets and sends Vector- and Fluent Bit-shaped batches. Exit code 0
# only when all of it passes.
#
# Installs what it needs (a Python venv under target/otel-clients, npm
# packages in scripts/otel/node_modules), builds the debug binary, starts it
# on a free 127.0.0.1 port with a temporary data dir, and stops it at exit.
# Usage: scripts/otel-clients.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/otel-clients"
mkdir -p "$work"

# Pinned client versions: the Python pair from one release; the Node set is
# the last whose exporter and sdk-trace-node share @opentelemetry/sdk-trace 2.x.
py_pkgs=(opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2)

# The README's snippets (scripts/otel/readme_snippets.py) run curl and gzip.
if ! command -v curl >/dev/null 2>&1 || ! command -v gzip >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq curl gzip >/dev/null
fi

echo "--- Python client (venv in $work/venv)"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "${py_pkgs[@]}"

echo "--- Node client (scripts/otel/node_modules)"
(cd scripts/otel && npm install --no-audit --no-fund --no-package-lock --loglevel=error)

echo "--- building pulsestream"
cargo build --quiet --bin pulsestream
bin="$target/debug/pulsestream"

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
password="otel-clients-admin-$$"
log="$work/server.log"
PULSESTREAM_ADMIN_PASSWORD="$password" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

healthy() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url/health" 2>/dev/null
}
for _ in $(seq 1 100); do
  if healthy; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "server exited; log:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
healthy || { echo "server not healthy; log:" >&2; cat "$log" >&2; exit 1; }

read -r ingest_key read_key < <(python3 scripts/otel/check.py setup "$url" "$password")

echo "--- exporting"
timeout 60 "$work/venv/bin/python" scripts/otel/export_python.py "$url" "$ingest_key" py-shop
timeout 60 node scripts/otel/export_node.mjs "$url" "$ingest_key" node-shop

echo "--- checking"
status=0
python3 scripts/otel/check.py verify "$url" "$read_key" py-shop || status=1
python3 scripts/otel/check.py verify "$url" "$read_key" node-shop || status=1
python3 scripts/otel/readme_snippets.py README.md "$url" "$ingest_key" "$read_key" || status=1
if [ "$status" -ne 0 ]; then
  echo "server log:" >&2; tail -50 "$log" >&2
fi
exit "$status"
