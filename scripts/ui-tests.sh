#!/usr/bin/env bash
# Browser tests of the built-in web dashboard, in headless Chromium.
#
# Installs Debian's `chromium` (apt-get) and npm's `playwright-core` (which
# downloads no browser), builds `pulsestream`, starts `pulsestream serve`
# on a free 127.0.0.1 port with a temporary data dir, and runs
# scripts/ui-tests/run.mjs against it. Screenshots of every page go to
# target/ui-screenshots/ (a test artifact). Then starts `pulsestream demo` and
# checks (scripts/ui-tests/demo.mjs) that it shows a firing alert within 60 s.
#
# Skips (exit 0, with a message) only when no Chromium can be installed.
# Usage: scripts/ui-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

# playwright-core release the tests are written against.
PLAYWRIGHT_VERSION="1.65.1"
CHROMIUM=/usr/bin/chromium
target="${CARGO_TARGET_DIR:-$root/target}"
pw_dir="$target/ui-tests"
shots="$target/ui-screenshots"

started=$(date +%s)
say() { printf '[ui-tests] %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi; }

if [ ! -x "$CHROMIUM" ]; then
  say "installing chromium (apt-get)"
  if ! { as_root apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
         { as_root apt-get update >/dev/null 2>&1 && as_root apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; }; then
    say "SKIPPED: Chromium is not installed and could not be installed with apt-get (needs root and a Debian package source)."
    exit 0
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "installing nodejs and npm (apt-get)"
  as_root apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1 || {
    say "FAILED: Chromium is present but Node.js/npm could not be installed to drive it."
    exit 1
  }
fi

if [ ! -f "$pw_dir/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$pw_dir/node_modules/playwright-core/package.json"; then
  say "installing playwright-core@$PLAYWRIGHT_VERSION (no browser download)"
  mkdir -p "$pw_dir"
  [ -f "$pw_dir/package.json" ] || echo '{"private": true}' > "$pw_dir/package.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$pw_dir" --no-audit --no-fund --silent \
    "playwright-core@$PLAYWRIGHT_VERSION"
fi

say "building pulsestream"
cargo build --bin pulsestream --quiet
bin="$target/debug/pulsestream"

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
data=$(mktemp -d)
log="$data.log"
admin_password="ui-tests-$(date +%s%N)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

say "starting pulsestream serve on 127.0.0.1:$port"
PULSESTREAM_ADMIN_PASSWORD="$admin_password" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if node -e "fetch('http://127.0.0.1:$port/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then say "the server exited:"; cat "$log"; exit 1; fi
  sleep 0.1
done

rm -rf "$shots"
mkdir -p "$shots"
status=0
BASE_URL="http://127.0.0.1:$port" ADMIN_PASSWORD="$admin_password" CHROMIUM="$CHROMIUM" \
  PW_DIR="$pw_dir" SCREENSHOT_DIR="$shots" node scripts/ui-tests/run.mjs || status=$?
if [ "$status" != 0 ]; then say "server log (last 40 lines):"; tail -40 "$log"; fi
kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""

# `pulsestream demo`: a firing alert on the Alerts page within 60 s of its start.
demo_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
say "starting pulsestream demo on 127.0.0.1:$demo_port"
demo_started=$(node -e "console.log(Date.now())")
"$bin" demo --listen "127.0.0.1:$demo_port" >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if grep -q "log in as" "$log" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then say "the demo exited:"; cat "$log"; exit 1; fi
  sleep 0.1
done
BASE_URL="http://127.0.0.1:$demo_port" DEMO_STARTED_MS="$demo_started" CHROMIUM="$CHROMIUM" \
  PW_DIR="$pw_dir" SCREENSHOT_DIR="$shots" node scripts/ui-tests/demo.mjs || { status=1; tail -40 "$log"; }
say "screenshots in $shots; took $(( $(date +%s) - started )) s"
exit "$status"
