#!/usr/bin/env bash
# Server benchmark (issue 4): dashboard pages on the ~20-million-event store of benches/kpi.sh.
#
#   benches/serve.sh                 # reuses /tmp/mirato-bench-kpi-800000 (built by kpi.sh)
#   PERSONS=100000 benches/serve.sh  # a smaller store
#   LOAD=0 benches/serve.sh          # the cold pages only, no wrk load
#
# 1. Cold: a fresh server, every page fetched once in turn (nothing cached): its time to ready
#    (building the shared views) and the time per page; then a restart, which reads the shared
#    views the first server stored.
# 2. Warm: wrk, 50 connections for 60 s over all pages with their default filters; p50/p95/p99
#    latency from wrk's own histogram, errors, and the server's peak RSS sampled every 0.2 s.
# Needs wrk (Debian package). Not a timed test: run it by hand on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

PERSONS=${PERSONS:-800000}
WORK=${WORK:-/tmp/mirato-bench-kpi-$PERSONS}
PORT=${PORT:-8181}
DURATION=${DURATION:-60s}
CONNECTIONS=${CONNECTIONS:-50}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

source benches/common.sh
export MIRATO_DATA_DIR="$WORK/data" MIRATO_KEY_FILE="$WORK/key"
if [ ! -f "$WORK/ingested" ]; then
  rm -rf "$WORK"; mkdir -p "$WORK"
  "$BIN" generate --persons "$PERSONS" --seed 1 --out "$WORK/in"
  "$BIN" ingest "$WORK/in" | tail -n 3
  touch "$WORK/ingested"
fi

# A user for the load: the pages are behind a login. Its token goes in every request.
export MIRATO_AUTH_USERS_FILE="$WORK/users.toml"
echo "bench-password-0123" | "$BIN" users add bench --role admin --password-stdin >/dev/null
TOKEN=$("$BIN" users token bench --label bench)
AUTH="Authorization: Bearer $TOKEN"

PAGES="panoramica iscrizione orientamento patto specialistico accompagnamento incontro esiti scadenze qualita"
start_server() {
  MIRATO_JOBS_WARMUP_AT_START=$1 "$BIN" serve --addr "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
  SERVER=$!
  local t0
  t0=$(date +%s.%N)
  # The server readies its data (shared views, Parquet footers) before it answers: curl waits
  # (minutes on a store of 100 million events).
  for _ in $(seq 6000); do
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then
      echo "ready $(python3 -c "import time; print(round(time.time() - $t0, 1))") s after start"
      return
    fi
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
trap 'kill $SERVER 2>/dev/null || true' EXIT

fetch_all() {
  for p in $PAGES; do
    curl -s -o /dev/null -H "$AUTH" -w "$p %{http_code} %{time_total}\n" "http://127.0.0.1:$PORT/p/$p${1:-}" \
      | awk '{printf "| %s | %s | %.0f |\n", $1, $2, $3 * 1000}'
  done
}

echo "== cold: a fresh server without start-up warm-up and no stored views (a first start on this data), each page once (ms)"
rm -rf "$WORK/data/views"
start_server false
fetch_all
echo "cold RSS after all pages: $(($(ps -o rss= -p $SERVER) / 1024)) MiB"
# The server stores its views in the background: give the last ones a moment before stopping.
sleep 5
kill $SERVER; wait $SERVER 2>/dev/null || true
echo "== a restart without start-up warm-up: the shared views read back from data/views, each page once (ms)"
start_server false
fetch_all
kill $SERVER; wait $SERVER 2>/dev/null || true

echo "== first visit after the warm-up job (a fresh server, as deployed): each page once (ms)"
START=$(date +%s.%N)
start_server true
( while kill -0 $SERVER 2>/dev/null; do ps -o rss= -p $SERVER; sleep 0.2; done ) > "$WORK/rss-cold.log" &
until curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/jobs" | python3 -c 'import json,sys; j=[x for x in json.load(sys.stdin)["jobs"] if x["name"]=="warmup"][0]; sys.exit(0 if j["runs_ok"]>=1 else 1)'; do sleep 0.5; done
echo "warm-up finished $(python3 -c "import time; print(round(time.time() - $START, 1))") s after start"
fetch_all

# What a user meets on a running server: filters nobody asked for yet, so every panel misses the
# result cache (the shared views of the current data are built, as after every ingest's warm-up).
echo "== cold result cache on a running server: each page with new filters (ms)"
echo "-- 2024, Lombardia"
fetch_all "?from=2024-01-01&to=2024-12-31&region=Lombardia"
echo "-- second quarter of 2025, province of Rome"
fetch_all "?from=2025-04-01&to=2025-06-30&province=RM"

# New data on a running server: a small batch ingested by the CLI; the pages keep showing the
# published version (their as_of says so) until the warm-up has computed the new one.
echo "== right after an ingest on the running server: each page once (ms), then once the new data is warm"
"$BIN" generate --persons 40 --seed "$(date +%s)" --out "$WORK/late" >/dev/null
# The generator numbers events per region and year; a prefix keeps these ids new.
sed -i "2,\$ s/^/L$(date +%s)-/" "$WORK"/late/*.csv
"$BIN" ingest "$WORK/late" | grep "^total"
rm -rf "$WORK/late"
T0=$(date +%s.%N)
fetch_all
NEW=$(python3 -c 'import json,pathlib,sys
b=[json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*.json")]
print(max(e["batch_id"] for e in b if e["status"]=="committed" and e["stored"]>0))' "$MIRATO_DATA_DIR/ledger")
until [ "$(curl -s -H "$AUTH" "http://127.0.0.1:$PORT/api/kpi/hires" | python3 -c 'import json,sys; print(json.load(sys.stdin)["params"]["data_version"])')" = "$NEW" ]; do
  sleep 0.5
done
echo "-- the new version shown $(python3 -c "import time; print(round(time.time() - $T0, 1))") s after the ingest ended"
fetch_all

# The batch left small files in many month partitions; merge them as the nightly job would, so
# that the next run measures the same compacted store (the few hundred events stay).
compact() { "$BIN" jobs run compact | sed 's/^/after the run: /'; }
if [ "${LOAD:-1}" = 0 ]; then kill $SERVER; wait $SERVER 2>/dev/null || true; compact; exit 0; fi
cat > "$WORK/pages.lua" <<LUA
local pages = {}
for p in string.gmatch("$PAGES", "%S+") do pages[#pages + 1] = "/p/" .. p end
local i = 0
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
  i = i + 1
  return wrk.format("GET", pages[(i % #pages) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("requests %d, errors: connect %d read %d write %d status %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  for _, p in ipairs({50, 90, 95, 99}) do
    io.write(string.format("p%d %.1f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max %.1f ms, %.0f requests/s\n", latency.max / 1000,
    summary.requests / (summary.duration / 1e6)))
end
LUA
( while kill -0 $SERVER 2>/dev/null; do ps -o rss= -p $SERVER; sleep 0.2; done ) > "$WORK/rss.log" &
SAMPLER=$!
echo "RSS before the load: $(($(ps -o rss= -p $SERVER) / 1024)) MiB (peak so far, warm-up and cold pages included: $(($(sort -n "$WORK/rss-cold.log" | tail -1) / 1024)) MiB)"
for run in 1:20s 10:20s "$CONNECTIONS:$DURATION"; do
  c=${run%%:*}; d=${run#*:}
  echo "== warm: wrk -c$c -d$d over every page"
  t=2; [ "$c" -lt 2 ] && t=1
  wrk -t"$t" -c"$c" -d"$d" --timeout 10s -s "$WORK/pages.lua" "http://127.0.0.1:$PORT" | sed -n '/^requests/,$p'
done
kill $SERVER; wait $SERVER 2>/dev/null || true
wait $SAMPLER 2>/dev/null || true
PEAK=$(sort -n "$WORK/rss.log" | tail -1)
echo "server peak RSS under the load: $((PEAK / 1024)) MiB"
compact
