#!/usr/bin/env bash
# Many-tenant ingest under the default configuration, then kill -9 and
# restart: peak RSS while ingesting, WAL bytes on disk, time to healthy and
# peak RSS after the restart (replay).
# Usage: scripts/many-tenants.sh [seconds] [tenants]   (defaults 60, 50)
# Needs a release build: cargo build --release --bin pulsestream
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
tenants="${2:-50}"
bin="${CARGO_TARGET_DIR:-target}/release/pulsestream"
dir="$(mktemp -d)"
port=18087
export PULSESTREAM_ADMIN_PASSWORD="many-tenants-admin-password"
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$dir" "$dir.log" "$dir.walpeak"' EXIT

start() {
  "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
  pid=$!
  t0=$(date +%s.%N)
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
  t1=$(date +%s.%N)
  echo "healthy after $(echo "$t1 - $t0" | bc) s"
}

hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$pid/status"; }

start
# Sample WAL bytes every second while loadgen runs.
( peak=0; while kill -0 "$pid" 2>/dev/null; do
    w=$(du -sb "$dir/wal" 2>/dev/null | cut -f1 || true); w=${w:-0}
    if [ "$w" -gt "$peak" ]; then peak=$w; echo "$peak" >"$dir.walpeak"; fi
    sleep 1
  done ) &
sampler=$!
"$bin" loadgen --url "http://127.0.0.1:$port" --tenants "$tenants" \
  --admin-password "$PULSESTREAM_ADMIN_PASSWORD" --backfill 24h \
  --duration "$secs" --batch 1000 --concurrency 4
echo "peak RSS while ingesting: $(hwm)"
echo "peak WAL bytes: $(cat "$dir.walpeak" 2>/dev/null || echo 0)"
echo "WAL bytes at kill: $(du -sb "$dir/wal" | cut -f1)"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
kill "$sampler" 2>/dev/null || true
start
sleep 1
echo "peak RSS after restart (replay): $(hwm)"
kill "$pid"; wait "$pid" 2>/dev/null || true
