#!/usr/bin/env bash
# KPI benchmark (issue 3): about 20 million generated events, every KPI of the catalogue timed in
# mirato (DataFusion) and in DuckDB (from PyPI) running the same SQL on the same Parquet files in
# the same run. Prints a table of both times, their ratio, and peak memory.
#
#   benches/kpi.sh                       # 900,000 persons, about 20 million events
#   PERSONS=100000 benches/kpi.sh        # a quicker look
#
# Not a timed test: run it by hand on an idle machine. Each system runs the catalogue twice and
# the second (warm) pass is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

PERSONS=${PERSONS:-900000}
WORK=${WORK:-/tmp/mirato-bench-kpi-$PERSONS}
FROM=${FROM:-2025-01-01}
TO=${TO:-2025-12-31}
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb

source benches/common.sh
export MIRATO_DATA_DIR="$WORK/data" MIRATO_KEY_FILE="$WORK/key"

if [ ! -f "$WORK/ingested" ]; then
  rm -rf "$WORK"; mkdir -p "$WORK"
  "$BIN" generate --persons "$PERSONS" --seed 1 --out "$WORK/in"
  "$BIN" ingest "$WORK/in" | tail -n 3
  # As deployed: the nightly compaction merges each month's files into one.
  "$BIN" jobs run compact > /dev/null
  touch "$WORK/ingested"
fi
AS_OF=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# First pass in a fresh process (the shared views are computed on first use), then two passes in
# one process, the second reported (views warm, as in a running server).
"$BIN" kpi --all --from "$FROM" --to "$TO" --as-of "$AS_OF" --format json > "$WORK/mirato-cold.json"
/usr/bin/time -v "$BIN" kpi --all --passes 2 --from "$FROM" --to "$TO" --as-of "$AS_OF" --format json \
  > "$WORK/mirato.json" 2> "$WORK/mirato.time"
python3 benches/kpi_duckdb.py queries "$WORK/data" "$FROM" "$TO" "$AS_OF" 2 > "$WORK/duckdb.json"

python3 - "$WORK" <<'PY'
import json, re, sys
w = sys.argv[1]
m = json.load(open(f"{w}/mirato.json"))
c = {k["kpi"]: k for k in json.load(open(f"{w}/mirato-cold.json"))["kpis"]}
d = json.load(open(f"{w}/duckdb.json"))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{w}/mirato.time").read()).group(1)) / 1024
dk = {k["kpi"]: k for k in d["kpis"]}
print("| KPI | mirato ms (fresh process) | mirato ms (warm) | DuckDB ms | ratio (warm) |")
print("|---|---|---|---|---|")
worst = 0
for k in m["kpis"]:
    o = dk.get(k["kpi"])
    if o is None:
        print(f"| {k['kpi']} | {c[k['kpi']]['ms']:.0f} | {k['ms']:.0f} | – | – |")
        continue
    r = k["ms"] / max(o["ms"], 0.001)
    worst = max(worst, r)
    print(f"| {k['kpi']} | {c[k['kpi']]['ms']:.0f} | {k['ms']:.0f} | {o['ms']:.0f} | {r:.2f} |")
cold_total = sum(k["ms"] for k in c.values())
print(f"| **whole catalogue** | **{cold_total:.0f}** | **{m['total_ms']:.0f}** | **{d['total_ms']:.0f}** | **{m['total_ms']/d['total_ms']:.2f}** (fresh process: {cold_total/d['total_ms']:.2f}) |")
print(f"\nworst single ratio {worst:.2f}; peak RSS mirato {rss:.0f} MiB, DuckDB (Python process) {d['peak_rss_mib']:.0f} MiB")
PY
