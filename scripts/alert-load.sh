#!/usr/bin/env bash
# Batch ingest throughput with 1,000 alert rules active compared with none,
# in the same run (issue 9's target: ≥ 90 %). Two servers on loopback, one
# with 1,000 rules (12 loadgen services × 9 filters each, grouped by
# endpoint, ten metrics over 1 and 5 minutes, thresholds never crossed) and
# one without, are loaded in turn by `pulsestream loadgen` (rounds
# alternate, so both see the same machine load). Prints each round's
# events/s and the CPU the server's alerting thread used, then the medians
# and their ratio.
#
# With `restart` first: the server with the rules is given a day of data
# (loadgen --backfill 24h for the given seconds, then as long of live
# traffic), killed with SIGKILL and started again; prints the time until it answers
# /health and until the windows are rebuilt (beside serving; evaluation
# resumes with them), and the rebuild's own log line. The live traffic runs
# as fast as it can unless LIVE_RATE (events/s) is set: at full speed every
# live event is inside the windows' horizon, the rebuild's worst case; at a
# day's steady rate (10 M events a day is about 120/s) the horizon holds
# minutes of it.
# Usage: scripts/alert-load.sh [restart] [seconds per round] [rounds]   (defaults 10, 3)
# Needs a release build: cargo build --release --bin pulsestream
set -euo pipefail
cd "$(dirname "$0")/.."
mode=load
if [ "${1:-}" = restart ]; then
  mode=restart
  shift
fi
secs="${1:-10}"
rounds="${2:-3}"
bin="${CARGO_TARGET_DIR:-target}/release/pulsestream"
base="$(mktemp -d)"
port0=$((20000 + RANDOM % 30000))
pw="alert-load-owner-password"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$base"
}
trap cleanup EXIT

# serve NAME PORT: runs the server of NAME's data dir; sets PID_<NAME>.
serve() {
  local name=$1 port=$2
  "$bin" serve --data-dir "$base/$name" --listen "127.0.0.1:$port" >>"$base/$name.log" 2>&1 &
  pids+=($!)
  printf -v "PID_$name" '%s' "$!"
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
}

# start NAME PORT: a fresh data dir with one tenant; sets KEY_<NAME>.
start() {
  local name=$1 port=$2 dir="$base/$1"
  mkdir -p "$dir"
  local out
  out=$("$bin" tenant create --name "$name" --owner-email "$name@example.com" \
    --owner-password "$pw" --data-dir "$dir")
  printf -v "KEY_$name" '%s' "$(printf '%s\n' "$out" | sed -n 's/^api_key: \(psk_[A-Za-z0-9]*\).*/\1/p')"
  serve "$name" "$port"
}

[ "$mode" = load ] && start bare "$port0"
start rules "$((port0 + 1))"

url="http://127.0.0.1:$((port0 + 1))"
token=$(curl -sf "$url/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"rules@example.com\",\"password\":\"$pw\"}" |
  sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
services=(auth users orders payments catalog search checkout inventory shipping notifications billing analytics)
filters=('' ',"method":"GET"' ',"method":"POST"' ',"region":"us-east-1"' ',"region":"eu-west-1"'
  ',"region":"us-west-2"' ',"status_code":"5xx"' ',"status_code":"4xx"' ',"method":["PUT","PATCH","DELETE"]')
metrics=('count 5m' 'rate 1m' 'error_rate 5m' 'avg_latency 5m' 'p95_latency 5m' 'error_rate 1m'
  'count 1m' 'p95_latency 1m' 'error_count 5m' 'avg_latency 1m')
made=0
for i in $(seq 0 999); do
  svc=${services[$((i % 12))]}
  f=${filters[$(((i / 12) % 9))]}
  read -r metric window <<<"${metrics[$(((i / 108) % 10))]}"
  body="{\"name\":\"load $i\",\"group_by\":[\"endpoint\"],\"condition\":{\"metric\":\"$metric\",
    \"filter\":{\"service\":\"$svc\"$f},\"window\":\"$window\",\"op\":\">\",\"threshold\":1e12}}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/v1/alerting/rules" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$body")
  [ "$code" = 201 ] && made=$((made + 1))
done
echo "rules created: $made"

if [ "$mode" = restart ]; then
  "$bin" loadgen --url "$url" --api-key "$KEY_rules" --backfill 24h \
    --duration "$secs" --batch 1000 --concurrency 4 | grep 'events/s' || true
  "$bin" loadgen --url "$url" --api-key "$KEY_rules" --rate "${LIVE_RATE:-0}" \
    --duration "$secs" --batch 1000 --concurrency 4 | grep 'events/s' || true
  # As a crash leaves it: the WAL is replayed, then the windows rebuilt.
  kill -9 "$PID_rules"
  wait "$PID_rules" 2>/dev/null || true
  : >"$base/rules.log"
  t0=$(date +%s.%N)
  serve rules "$((port0 + 1))"
  t1=$(date +%s.%N)
  # The windows are rebuilt beside serving; evaluation starts after.
  until grep -q 'alerting windows rebuilt' "$base/rules.log"; do sleep 0.05; done
  t2=$(date +%s.%N)
  echo "restart with $made rules: healthy after $(echo "$t1 - $t0" | bc) s," \
    "windows rebuilt and evaluation running after $(echo "$t2 - $t0" | bc) s"
  grep 'alerting windows rebuilt' "$base/rules.log"
  exit 0
fi

# CPU seconds (user + system) of a process's thread named "alerting".
alert_cpu() {
  local pid=$1 t
  for t in /proc/"$pid"/task/*; do
    if [ "$(cat "$t/comm")" = alerting ]; then
      awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "$t/stat"
      return
    fi
  done
  echo 0
}

declare -a eps_bare eps_rules
for r in $(seq 1 "$rounds"); do
  for name in bare rules; do
    port=$port0
    [ "$name" = rules ] && port=$((port0 + 1))
    key_var="KEY_$name" pid_var="PID_$name"
    c0=$(alert_cpu "${!pid_var}")
    out=$("$bin" loadgen --url "http://127.0.0.1:$port" --api-key "${!key_var}" \
      --duration "$secs" --batch 1000 --concurrency 4)
    line=$(printf '%s\n' "$out" | grep -m1 'events/s')
    c1=$(alert_cpu "${!pid_var}")
    eps=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) events\/s.*/\1/p')
    cpu=$(echo "scale=1; 100 * ($c1 - $c0) / $secs" | bc)
    echo "round $r $name: $eps events/s; alerting thread $cpu % of a core"
    if [ "$name" = bare ]; then eps_bare+=("$eps"); else eps_rules+=("$eps"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

# The real-time endpoint over HTTP (one keep-alive connection, 200
# requests) while the rules server takes 50,000 events/s.
"$bin" loadgen --url "$url" --api-key "$KEY_rules" --rate 50000 --duration 15 \
  --batch 1000 --concurrency 2 >/dev/null &
lg=$!
sleep 3
rt="$url/api/v1/dashboard/metrics/real-time?window=5m&group_by=endpoint"
urls=()
for _ in $(seq 1 200); do urls+=(-o /dev/null "$rt"); done
curl -s -H "authorization: Bearer $token" -w '%{http_code} %{time_total}\n' "${urls[@]}" |
  awk '$1 == 200 {print $2 * 1000}' | sort -n |
  awk '{a[NR]=$1} END {printf "real-time endpoint (5m, by endpoint), %d answers: median %.2f ms, p99 %.2f ms (target p99 ≤ 5 ms)\n", NR, a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)]}'
wait "$lg" || true
mb=$(median "${eps_bare[@]}")
mr=$(median "${eps_rules[@]}")
echo "median: $mb events/s without rules, $mr events/s with $made rules: $(echo "scale=1; 100 * $mr / $mb" | bc) % (target ≥ 90 %)"
