#!/usr/bin/env bash
# Batch ingest throughput of two builds in the same run: alternates a fresh
# `serve` of binary A and of binary B, each loaded by B's `pulsestream
# loadgen` (1,000-event batches, 8 connections, the given tenants in the
# skewed mix, timestamps spread over the last `backfill` when given), and
# prints each run's events/s. Use it to compare a change with the main it
# started from.
# Usage: scripts/ab-ingest.sh BIN_A BIN_B [runs (5)] [tenants (1)] [format (ndjson)] [backfill, e.g. 24h]
set -euo pipefail
a=$1 b=$2 runs=${3:-5} tenants=${4:-1} format=${5:-ndjson} backfill=${6:-}
extra=()
[ -n "$backfill" ] && extra=(--backfill "$backfill")
pw="ab-ingest-admin-password"
one() {
  local bin=$1 dir port pid rate
  dir=$(mktemp -d)
  port=$((30000 + RANDOM % 20000))
  PULSESTREAM_ADMIN_PASSWORD=$pw "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
  rate=$("$b" loadgen --url "http://127.0.0.1:$port" --tenants "$tenants" --admin-password "$pw" \
    --batch 1000 --concurrency 8 --duration 10 --format "$format" "${extra[@]}" 2>&1 | grep -oE '[0-9]+ events/s' | head -1)
  echo "$bin: $rate (load average $(cut -d' ' -f1 /proc/loadavg))"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
for _ in $(seq 1 "$runs"); do one "$a"; one "$b"; done
