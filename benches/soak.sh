#!/usr/bin/env bash
# A day of mixed load, compressed (issue 19): the server on the ~20-million-event store of
# benches/kpi.sh for MINUTES minutes (default 30) under CLIENTS clients (default 50) mixing warm
# pages, new filter combinations, API calls, exports, the ANPAL report and the cohort file
# (benches/soak.py), while the inbox job ingests a new file every minute and a compaction runs
# every ten. Reports errors (0 expected), p50/p95/p99 per kind, RSS and open descriptors over
# time, and the growth of the audit and the stored views. Not a timed test: run it by hand.
#
#   MIRATO_ENGINE_MEMORY_LIMIT="4 GiB" benches/soak.sh
#   MINUTES=60 CLIENTS=50 benches/soak.sh
#
# With the default pool (768 MiB), 50 clients asking for cold figures at once exhaust it and
# some queries are refused (503, "try again later"): size engine.memory_limit for the load.
set -euo pipefail
cd "$(dirname "$0")/.."
PERSONS=${PERSONS:-900000}
WORK=${WORK:-/tmp/mirato-bench-kpi-$PERSONS}
PORT=${PORT:-8191}
MINUTES=${MINUTES:-30}
CLIENTS=${CLIENTS:-50}
source benches/common.sh
export MIRATO_DATA_DIR="$WORK/data" MIRATO_KEY_FILE="$WORK/key"
if [ ! -f "$WORK/ingested" ]; then
  rm -rf "$WORK"; mkdir -p "$WORK"
  "$BIN" generate --persons "$PERSONS" --seed 1 --out "$WORK/in"
  "$BIN" ingest "$WORK/in" | tail -n 3
  touch "$WORK/ingested"
fi
export MIRATO_AUTH_USERS_FILE="$WORK/users.toml"
echo "bench-password-0123" | "$BIN" users add soak --role admin --password-stdin >/dev/null 2>&1 || true
TOKEN=$("$BIN" users token soak --label soak)
INBOX="$WORK/soak-inbox"
rm -rf "$INBOX"; mkdir -p "$INBOX"
# The inbox every minute; compaction every ten (any partition of 2 files or more).
MIRATO_JOBS_INGEST_INBOX="$INBOX" MIRATO_JOBS_INGEST_READY=done_marker \
MIRATO_JOBS_INGEST_SCHEDULE="30 * * * * *" MIRATO_JOBS_COMPACT_SCHEDULE="0 */10 * * * *" \
MIRATO_JOBS_COMPACT_MIN_FILES=2 MIRATO_JOBS_EXPORT_SCHEDULE="" \
  "$BIN" serve --addr "127.0.0.1:$PORT" >"$WORK/soak-serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 6000); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
echo "server ready; load for $MINUTES minutes with $CLIENTS clients"
# A day's file of the region with the most events: its rows under new ids each minute.
SOURCE=$(ls -S "$WORK"/in/*2025*.csv | head -1)
python3 benches/soak.py "http://127.0.0.1:$PORT" "$TOKEN" "$SERVER" "$MIRATO_DATA_DIR" "$INBOX" \
  "$SOURCE" "$MINUTES" "$CLIENTS" | tee "$WORK/soak.json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
r.pop("samples")
print(json.dumps(r, indent=1))'
# (A folder the job never made holds no file.)
PROCESSED=$(find "$INBOX/processed" -name '*.csv' 2>/dev/null | wc -l || true)
FAILED=$(find "$INBOX/failed" -name '*.csv' 2>/dev/null | wc -l || true)
echo "inbox: $PROCESSED processed, $FAILED failed"
