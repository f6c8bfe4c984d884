#!/usr/bin/env bash
# The KPI catalogue on a Ballista cluster (issue 18): the same store as benches/kpi.sh (about 20
# million generated events), every KPI run by the local engine, then through a cluster of
# `mirato cluster` processes on this machine with one executor and with two, and by DuckDB on
# the same SQL and files, in the same run. Each runs the catalogue twice in one process and the
# second (warm) pass is reported; the overhead per query is the cluster's time minus the local.
#
#   benches/distributed.sh                    # 900,000 persons, about 20 million events
#   PERSONS=100000 benches/distributed.sh     # a quicker look
#
# Not a timed test: run it by hand on an idle machine. On one machine the executors share its
# cores with each other and with the client: the figures show the cluster's overhead, not its
# gain; docs/SCALE.md says how they extrapolate.
set -euo pipefail
cd "$(dirname "$0")/.."

PERSONS=${PERSONS:-900000}
WORK=${WORK:-/tmp/mirato-bench-kpi-$PERSONS}
FROM=${FROM:-2025-01-01}
TO=${TO:-2025-12-31}
PORT=${PORT:-50150}
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mirato-target}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --features distributed
  BIN="$CARGO_TARGET_DIR/release/mirato"
fi
export MIRATO_DATA_DIR="$WORK/data" MIRATO_KEY_FILE="$WORK/key"

if [ ! -f "$WORK/ingested" ]; then
  rm -rf "$WORK"; mkdir -p "$WORK"
  "$BIN" generate --persons "$PERSONS" --seed 1 --out "$WORK/in"
  "$BIN" ingest "$WORK/in" | tail -n 3
  "$BIN" jobs run compact > /dev/null
  touch "$WORK/ingested"
fi
AS_OF=$(date -u +%Y-%m-%dT%H:%M:%SZ)
catalogue=(kpi --all --passes 2 --from "$FROM" --to "$TO" --as-of "$AS_OF" --format json)

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); sleep 1; }
trap stop EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.2; done; echo "port $1 did not open"; exit 1; }
executor() { # executor N
  local flight=$((PORT + 10 * $1 + 1)) grpc=$((PORT + 10 * $1 + 2))
  "$BIN" cluster executor --port "$flight" --grpc-port "$grpc" --scheduler "127.0.0.1:$PORT" \
    --work-dir "$WORK/executor-$1" > "$WORK/executor-$1.log" 2>&1 &
  pids+=($!)
  wait_port "$flight"
}

echo "local engine"
"$BIN" "${catalogue[@]}" > "$WORK/local.json"
for n in 1 2; do
  echo "cluster with $n executor(s)"
  "$BIN" cluster scheduler --port "$PORT" > "$WORK/scheduler.log" 2>&1 &
  pids+=($!)
  wait_port "$PORT"
  for i in $(seq "$n"); do executor "$i"; done
  sleep 2
  MIRATO_ENGINE_BALLISTA="df://127.0.0.1:$PORT" "$BIN" "${catalogue[@]}" > "$WORK/cluster-$n.json"
  stop
done
echo "DuckDB"
python3 benches/kpi_duckdb.py queries "$WORK/data" "$FROM" "$TO" "$AS_OF" 2 > "$WORK/duckdb.json"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
load = lambda n: {k["kpi"]: k for k in json.load(open(f"{w}/{n}.json"))["kpis"]}
local, one, two, duck = load("local"), load("cluster-1"), load("cluster-2"), load("duckdb")
total = lambda d: sum(k["ms"] for k in d.values())
print("| KPI | local ms | 1 executor ms | 2 executors ms | DuckDB ms |")
print("|---|---|---|---|---|")
for kpi, k in local.items():
    d = duck.get(kpi, {}).get("ms")
    print(f"| {kpi} | {k['ms']:.0f} | {one[kpi]['ms']:.0f} | {two[kpi]['ms']:.0f} | {'–' if d is None else f'{d:.0f}'} |")
t = [total(x) for x in (local, one, two, duck)]
print(f"| **whole catalogue** | **{t[0]:.0f}** | **{t[1]:.0f}** | **{t[2]:.0f}** | **{t[3]:.0f}** |")
n = len(local)
print(f"\noverhead per query: 1 executor {(t[1] - t[0]) / n:.0f} ms, 2 executors {(t[2] - t[0]) / n:.0f} ms")
print(f"ratio to DuckDB: local {t[0] / t[3]:.2f}, 1 executor {t[1] / t[3]:.2f}, 2 executors {t[2] / t[3]:.2f}")
PY
