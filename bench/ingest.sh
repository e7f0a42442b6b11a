#!/usr/bin/env bash
# Webhook ingest benchmark: acknowledged messages/s and ack latency with wrk,
# against an ingest-only `frontdesk serve` (FRONTDESK_WORKERS=0) on SQLite
# (power-safe, the default, and process-crash) and, when BENCH_DATABASE_URL is
# set, on PostgreSQL. Loopback only.
#
# In the same run it measures the fsync rate of the filesystem under each
# store (write 4 KB + fsync in a loop for 2 s) and prints the ratio of
# acknowledged messages/s to it: the one-fsync-per-message limit a store
# without group commit cannot pass when every acknowledgement is power-safe.
# usage: bench/ingest.sh [seconds] [connections]; BENCH_BINARY=PATH measures another build
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
secret=bench-secret
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --quiet  # BENCH_SKIP_BUILD=1: measure the binary as built
python3 bench/make_ingest_script.py 120000 "$secret" > target/ingest.lua

# fsyncs per second in directory $1 (one 4 KB write + fsync each, for 2 s).
fsync_rate() {
  python3 - "$1" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block, count, start = b"x" * 4096, 0, time.monotonic()
while time.monotonic() - start < 2.0:
    os.pwrite(fd, block, (count % 256) * 4096)
    os.fsync(fd)
    count += 1
elapsed = time.monotonic() - start
os.close(fd)
os.unlink(path)
print(f"{count / elapsed:.0f}")
EOF
}

run() {
  local label=$1 url=$2 durability=$3 fsync_dir=${4:-}
  local data; data=$(mktemp -d)
  mkdir -p "$data/cache" && cp -r data/cache/. "$data/cache/" 2>/dev/null || true
  local fsyncs; fsyncs=$(fsync_rate "${fsync_dir:-$data}")
  DATABASE_URL=$url FRONTDESK_LISTEN=127.0.0.1:18080 FRONTDESK_DATA_DIR=$data \
    FRONTDESK_WHATSAPP_APP_SECRET=$secret FRONTDESK_WORKERS=0 FRONTDESK_LOG=warn \
    FRONTDESK_STORE_DURABILITY=$durability \
    "${BENCH_BINARY:-./target/release/frontdesk}" serve 2>"$data/serve.log" &
  local pid=$!
  for _ in $(seq 1 120); do grep -q "listening on" "$data/serve.log" && break; sleep 0.5; done
  echo "== $label ($durability): wrk -t2 -c$connections -d${seconds}s; fsync rate under the store: $fsyncs/s"
  local out; out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s target/ingest.lua http://127.0.0.1:18080/webhooks/whatsapp -- 2)
  echo "$out" | grep -E "Requests/sec|50%|90%|99%|Non-2xx|requests in" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$out" | grep '^RESULT' | python3 -c '
import sys
fields = dict(part.split("=") for part in sys.stdin.read().split()[1:])
rate = int(fields["acked"]) / float(fields["seconds"])
fsyncs = float(sys.argv[1])
p50, p99, refused = fields["p50_ms"], fields["p99_ms"], fields["refused"]
print(f"acked {rate:.0f} msg/s, p99 {p99} ms (p50 {p50}), refused {refused}; "
      f"fsync {fsyncs:.0f}/s; acked / one-fsync-per-message limit = {rate / fsyncs:.2f}x")
' "$fsyncs"
  # Requests past the 60,000 distinct bodies are duplicates (a cheaper path): report stored rows too.
  if [ -z "$url" ]; then
    python3 -c "import sqlite3,sys; print('stored messages:', sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$data/frontdesk.db"
  else
    psql "$url" -tAc "select 'stored messages: ' || count(*) from messages"
  fi
  rm -rf "$data"
}

run sqlite "" power-safe
run sqlite "" process-crash
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS frontdesk_bench" -c "CREATE DATABASE frontdesk_bench" >/dev/null
  # The fsync rate of the server's own data directory, when it is on this machine.
  pg_dir=$(psql "$BENCH_DATABASE_URL" -tAc "show data_directory" 2>/dev/null || true)
  [ -w "$pg_dir" ] || pg_dir=""
  run postgres "${BENCH_DATABASE_URL%/*}/frontdesk_bench" power-safe "$pg_dir"
fi
