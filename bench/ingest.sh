#!/usr/bin/env bash
# Webhook ingest benchmark: acknowledged messages/s and ack latency with wrk,
# against an ingest-only `frontdesk serve` (FRONTDESK_WORKERS=0) on SQLite and,
# when BENCH_DATABASE_URL is set, on PostgreSQL. Loopback only.
# usage: bench/ingest.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
secret=bench-secret
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
python3 bench/make_ingest_script.py 60000 "$secret" > target/ingest.lua

run() {
  local label=$1 url=${2:-}
  local data; data=$(mktemp -d)
  mkdir -p "$data/cache" && cp -r data/cache/. "$data/cache/" 2>/dev/null || true
  DATABASE_URL=$url FRONTDESK_LISTEN=127.0.0.1:18080 FRONTDESK_DATA_DIR=$data \
    FRONTDESK_WHATSAPP_APP_SECRET=$secret FRONTDESK_WORKERS=0 FRONTDESK_LOG=warn \
    ./target/release/frontdesk serve 2>"$data/serve.log" &
  local pid=$!
  for _ in $(seq 1 120); do grep -q "listening on" "$data/serve.log" && break; sleep 0.5; done
  echo "== $label: wrk -t2 -c$connections -d${seconds}s"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s target/ingest.lua http://127.0.0.1:18080/webhooks/whatsapp -- 2 | grep -E "Requests/sec|50%|90%|99%|Non-2xx|requests in"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # Requests past the 60,000 distinct bodies are duplicates (a cheaper path): report stored rows too.
  if [ -z "$url" ]; then
    python3 -c "import sqlite3,sys; print('stored messages:', sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$data/frontdesk.db"
  else
    psql "$url" -tAc "select 'stored messages: ' || count(*) from messages"
  fi
  rm -rf "$data"
}

run sqlite
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS frontdesk_bench" -c "CREATE DATABASE frontdesk_bench" >/dev/null
  run postgres "${BENCH_DATABASE_URL%/*}/frontdesk_bench"
fi
