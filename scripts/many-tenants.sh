#!/usr/bin/env bash
# Many-tenant ingest under the default configuration, then kill -9 and
# restart: peak RSS while ingesting, WAL bytes on disk, time to healthy and
# peak RSS after the restart (replay). Before it, the same ingest with one
# tenant on a fresh data directory gives the throughput reference, so the
# ratio of the two comes from one run on the same machine load.
# Usage: scripts/many-tenants.sh [seconds] [tenants]   (defaults 60, 50)
# ONE_TENANT=0 skips the one-tenant reference.
# Needs a release build: cargo build --release --bin pulsestream
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
tenants="${2:-50}"
bin="${CARGO_TARGET_DIR:-target}/release/pulsestream"
dir="$(mktemp -d)"
one="$(mktemp -d)"
port=18087
export PULSESTREAM_ADMIN_PASSWORD="many-tenants-admin-password"
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$dir" "$one" "$dir.log" "$dir.walpeak" "$dir.loadgen"' EXIT

start() {
  "$bin" serve --data-dir "$1" --listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
  pid=$!
  t0=$(date +%s.%N)
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
  t1=$(date +%s.%N)
  echo "healthy after $(echo "$t1 - $t0" | bc) s"
}

hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$pid/status"; }

# Full-speed day-long backfill from 4 senders for $secs; prints loadgen's
# report and leaves its events/s in $rate.
ingest() {
  "$bin" loadgen --url "http://127.0.0.1:$port" --tenants "$1" \
    --admin-password "$PULSESTREAM_ADMIN_PASSWORD" --backfill 24h \
    --duration "$secs" --batch 1000 --concurrency 4 | tee "$dir.loadgen"
  rate=$(sed -n 's/.* \([0-9]*\) events\/s.*/\1/p' "$dir.loadgen" | head -n1)
}

if [ "${ONE_TENANT:-1}" != 0 ]; then
  echo "== one tenant (reference)"
  start "$one"
  ingest 1
  one_rate=$rate
  echo "peak RSS while ingesting (one tenant): $(hwm)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$one"
fi

echo "== $tenants tenants"
start "$dir"
# Sample WAL bytes every second while loadgen runs.
( peak=0; while kill -0 "$pid" 2>/dev/null; do
    w=$(du -sb "$dir/wal" 2>/dev/null | cut -f1 || true); w=${w:-0}
    if [ "$w" -gt "$peak" ]; then peak=$w; echo "$peak" >"$dir.walpeak"; fi
    sleep 1
  done ) &
sampler=$!
ingest "$tenants"
echo "peak RSS while ingesting: $(hwm)"
echo "peak WAL bytes: $(cat "$dir.walpeak" 2>/dev/null || echo 0)"
echo "WAL bytes at kill: $(du -sb "$dir/wal" | cut -f1)"
if [ -n "${one_rate:-}" ]; then
  echo "throughput $tenants tenants / one tenant: $rate / $one_rate = $(echo "scale=1; 100 * $rate / $one_rate" | bc) %"
fi
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
kill "$sampler" 2>/dev/null || true
start "$dir"
sleep 1
echo "peak RSS after restart (replay): $(hwm)"
kill "$pid"; wait "$pid" 2>/dev/null || true
