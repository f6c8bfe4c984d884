#!/usr/bin/env bash
# The store on S3 (issue 18): the same generated files ingested into a local data folder and
# into a bucket of moto's S3 server on loopback (release binary built with --features s3), then
# compacted on both; then a second machine's first command on the bucket (a fresh working copy
# takes in every version) and the whole catalogue on it, against the local store. The peer, in
# the same run: DuckDB's plain conversion of the same files to Parquet (as benches/ingest.sh).
#
#   benches/s3.sh                  # 50,000 persons, about 1.1 million events
#   PERSONS=200000 benches/s3.sh
#
# moto keeps objects in the memory of one Python process: the figures bound what the protocol
# costs (uploads, conditional puts, listings), not what a real bucket's bandwidth allows.
# Not a timed test: run it by hand on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import duckdb, boto3' 2>/dev/null || python3 -m pip install --quiet duckdb "moto[server]"
command -v moto_server >/dev/null || python3 -m pip install --quiet "moto[server]"

PERSONS=${PERSONS:-50000}
WORK=${WORK:-/tmp/mirato-bench-s3}
PORT=${PORT:-5599}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mirato-target}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --features s3
  BIN="$CARGO_TARGET_DIR/release/mirato"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
moto_server -H 127.0.0.1 -p "$PORT" > "$WORK/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export MIRATO_S3_ENDPOINT="http://127.0.0.1:$PORT" MIRATO_S3_ALLOW_HTTP=true
export MIRATO_KEY_FILE="$WORK/key"
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null && break
  sleep 0.2
done
AWS_ENDPOINT_URL="$MIRATO_S3_ENDPOINT" python3 -c "import boto3; boto3.client('s3').create_bucket(Bucket='bench')"

echo "generating $PERSONS persons into $WORK/in"
"$BIN" generate --persons "$PERSONS" --seed 1 --out "$WORK/in" > /dev/null
du -sh "$WORK/in"

secs() { # seconds a command takes
  local t0 t1
  t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
local_ingest=$(secs "$BIN" --data-dir "$WORK/data" ingest "$WORK/in")
s3_ingest=$(MIRATO_S3_CACHE_DIR="$WORK/copy-a" secs "$BIN" --data-dir s3://bench/store ingest "$WORK/in")
local_compact=$(secs "$BIN" --data-dir "$WORK/data" jobs run compact)
s3_compact=$(MIRATO_S3_CACHE_DIR="$WORK/copy-a" secs "$BIN" --data-dir s3://bench/store jobs run compact)
pull=$(MIRATO_S3_CACHE_DIR="$WORK/copy-b" secs "$BIN" --data-dir s3://bench/store status)
catalogue=(kpi --all --from 2020-01-01 --to 2025-12-31)
local_kpi=$(secs "$BIN" --data-dir "$WORK/data" "${catalogue[@]}")
s3_kpi=$(MIRATO_S3_CACHE_DIR="$WORK/copy-b" secs "$BIN" --data-dir s3://bench/store "${catalogue[@]}")
events=$("$BIN" --data-dir "$WORK/data" status | sed -n 's/.*events stored: \([0-9]*\).*/\1/p')
objects=$(AWS_ENDPOINT_URL="$MIRATO_S3_ENDPOINT" python3 -c "
import boto3
pages = boto3.client('s3').get_paginator('list_objects_v2').paginate(Bucket='bench')
print(sum(len(p.get('Contents', [])) for p in pages))")

duck=$(secs python3 - "$WORK" <<'PY'
import duckdb, pathlib, sys
work = pathlib.Path(sys.argv[1]); (work / "duckdb").mkdir()
con = duckdb.connect()
for i, f in enumerate(sorted((work / "in").iterdir())):
    con.execute(f"COPY (FROM read_csv('{f}', all_varchar = true)) TO '{work}/duckdb/{i:04}.parquet' (FORMAT parquet)")
PY
)

python3 - "$events" "$objects" "$local_ingest" "$s3_ingest" "$local_compact" "$s3_compact" "$pull" "$local_kpi" "$s3_kpi" "$duck" <<'PY'
import sys
ev, objects, li, si, lc, sc, pull, lk, sk, duck = sys.argv[1:]
ev = int(ev); li, si, lc, sc, pull, lk, sk, duck = map(float, (li, si, lc, sc, pull, lk, sk, duck))
print(f"{ev:,} events; {objects} objects in the bucket after compaction")
print("| step | local s | S3 (moto) s | S3 / local |")
print("|---|---|---|---|")
print(f"| ingest | {li:.1f} | {si:.1f} | {si/li:.2f} |")
print(f"| compaction | {lc:.1f} | {sc:.1f} | {sc/lc:.2f} |")
print(f"| whole catalogue, second machine | {lk:.1f} | {sk:.1f} | {sk/lk:.2f} |")
print(f"\nsecond machine's first command (takes in every version): {pull:.1f} s")
print(f"ingest events/s: local {ev/li:,.0f}, S3 {ev/si:,.0f}; DuckDB plain conversion {duck:.1f} s;"
      f" ratio to DuckDB: local {duck/li:.2f}, S3 {duck/si:.2f}")
PY
