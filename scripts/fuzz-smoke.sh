#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ briefly (cargo-fuzz on stable, no sanitizer):
# wal_record, segment_open, ingest_body, query_lang, otlp_traces (all that
# `cargo fuzz list` names, so a target added to fuzz/Cargo.toml runs here too).
# Usage: scripts/fuzz-smoke.sh [seconds-per-target]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=$(cargo fuzz list)
for t in $targets; do
  echo "--- fuzz target $t (${secs}s)"
  cargo fuzz run --sanitizer none "$t" -- -max_total_time="$secs" -rss_limit_mb=2048
done
