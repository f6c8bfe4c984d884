#!/usr/bin/env bash
# Scale benchmark (issue 17): a national decade of events on one machine. Generates about
# 100 million events (4.6 million persons, gzip), then measures in one run, each mirato process
# with its wall time and peak RSS (/usr/bin/time):
#   1. the full ingest (events/s) and the nightly compaction;
#   2. a 30,000-event file ingested into the big store, against the same file into an empty one;
#   3. the KPI catalogue: a fresh process (the shared views built from nothing) and a warm pass,
#      against DuckDB on the same Parquet files in the same run (benches/kpi_duckdb.py);
#   4. the ANPAL report and the cohort export;
#   5. the server: benches/serve.sh on the same store (time to ready, cold pages with new
#      filters, RSS, warm p95 under 50 clients).
#
#   benches/scale.sh                    # about 100 million events
#   PERSONS=920000 benches/scale.sh     # about 20 million, to see how each figure grows
#   SERVE=0 benches/scale.sh            # without the server part
#   REUSE=1 benches/scale.sh            # the store of an earlier run, without ingesting again
#
# Every step uses the default configuration (engine.memory_limit included). Not a timed test:
# run it by hand on an otherwise idle machine; it prints the tables for benches/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PERSONS=${PERSONS:-4600000}
WORK=${WORK:-/tmp/mirato-scale-$PERSONS}
FROM=${FROM:-2025-01-01}
TO=${TO:-2025-12-31}
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb

source benches/common.sh
export MIRATO_DATA_DIR="$WORK/data" MIRATO_KEY_FILE="$WORK/key"
STEPS="$WORK/steps.tsv"
mkdir -p "$WORK"

# measure NAME COMMAND...: runs it under /usr/bin/time, appends "NAME wall_s peak_MiB" to STEPS.
measure() {
  local name=$1; shift
  /usr/bin/time -v "$@" > "$WORK/$name.out" 2> "$WORK/$name.time" \
    || { tail -n 30 "$WORK/$name.time"; exit 1; }
  python3 - "$name" "$WORK/$name.time" >> "$STEPS" <<'PY'
import re, sys
t = open(sys.argv[2]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
print(f"{sys.argv[1]}\t{secs:.1f}\t{rss:.0f}")
PY
  tail -n 1 "$STEPS"
}

if [ ! -d "$WORK/in" ]; then
  "$BIN" generate --persons "$PERSONS" --seed 1 --gzip --out "$WORK/in"
fi
# The incremental file: about 30,000 events of other persons, as one CSV, their ids prefixed
# with the run's start so that they are new to the big store, also on a store kept by REUSE=1
# (the generator numbers events per region and year).
rm -rf "$WORK/inc-gen" "$WORK/inc"; mkdir -p "$WORK/inc"
"$BIN" generate --persons 1400 --seed 7 --out "$WORK/inc-gen" > /dev/null
prefix="INC$(date +%s)-"
first=1
for f in "$WORK"/inc-gen/*.csv; do
  if [ $first = 1 ]; then head -n 1 "$f"; first=0; fi
  tail -n +2 "$f" | sed "s/^/$prefix/"
done > "$WORK/inc/increment.csv"
rm -rf "$WORK/inc-gen"
echo "incremental file: $(($(wc -l < "$WORK/inc/increment.csv") - 1)) rows"

# REUSE=1 keeps a store whose full ingest this script measured before (and that figure), and
# measures the rest.
rm -rf "$WORK/empty"
if [ "${REUSE:-0}" = 1 ] && [ -f "$WORK/ingested" ]; then
  grep -P "^ingest_full\t" "$STEPS" > "$STEPS.keep"; mv "$STEPS.keep" "$STEPS"
else
  : > "$STEPS"
  rm -rf "$WORK/data" "$WORK/ingested"
  measure ingest_full "$BIN" ingest --format json "$WORK/in"
  touch "$WORK/ingested"
fi
measure compact "$BIN" jobs run compact
measure ingest_inc_empty "$BIN" --data-dir "$WORK/empty" ingest --format json "$WORK/inc/increment.csv"
measure ingest_inc_big "$BIN" ingest --format json "$WORK/inc/increment.csv"
# The increment's one file per month partition, merged as the nightly job would.
"$BIN" jobs run compact > /dev/null

AS_OF=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rm -rf "$WORK/data/views"
measure kpi_fresh "$BIN" kpi --all --from "$FROM" --to "$TO" --as-of "$AS_OF" --format json
measure kpi_warm "$BIN" kpi --all --passes 2 --from "$FROM" --to "$TO" --as-of "$AS_OF" --format json
measure duckdb python3 benches/kpi_duckdb.py queries "$WORK/data" "$FROM" "$TO" "$AS_OF" 2
measure report "$BIN" report anpal --year 2025 --quarter 4 --out "$WORK/report"
measure cohort "$BIN" export cohort --from 2024-01-01 --to 2024-12-31 --out "$WORK/cohort.parquet"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
steps = {l.split("\t")[0]: (float(l.split("\t")[1]), float(l.split("\t")[2]))
         for l in open(f"{w}/steps.tsv") if l.strip()}
rows = [json.loads(l) for l in open(f"{w}/ingest_full.out") if l.startswith("{")]
read = sum(r.get("read", 0) for r in rows)
stored = sum(r.get("stored", 0) for r in rows)
inc = [json.loads(l) for l in open(f"{w}/ingest_inc_big.out") if l.startswith("{")]
print(f"\nstore: {stored:,} events stored of {read:,} read, in {len(rows)} files\n")
print("| step | wall s | peak RSS MiB | note |")
print("|---|---|---|---|")
s = steps
print(f"| full ingest | {s['ingest_full'][0]:.0f} | {s['ingest_full'][1]:.0f} | {read / s['ingest_full'][0]:,.0f} events/s |")
print(f"| compaction | {s['compact'][0]:.0f} | {s['compact'][1]:.0f} | |")
e, b = s['ingest_inc_empty'], s['ingest_inc_big']
print(f"| 30k file into an empty store | {e[0]:.1f} | {e[1]:.0f} | |")
print(f"| 30k file into the big store | {b[0]:.1f} | {b[1]:.0f} | {b[0] / e[0]:.2f}x the time, {b[1] / e[1]:.2f}x the memory; stored {sum(r.get('stored', 0) for r in inc):,} |")
m = json.load(open(f"{w}/kpi_warm.out"))
c = json.load(open(f"{w}/kpi_fresh.out"))
d = json.load(open(f"{w}/duckdb.out"))
cold_total = sum(k["ms"] for k in c["kpis"])
failed = [k["kpi"] for k in c["kpis"] if k.get("error")]
print(f"| catalogue, fresh process | {s['kpi_fresh'][0]:.0f} | {s['kpi_fresh'][1]:.0f} | {cold_total:,.0f} ms of queries; {cold_total / d['total_ms']:.2f}x DuckDB; {len(c['kpis'])} KPIs, failed: {failed or 'none'} |")
print(f"| catalogue, two passes in one process | {s['kpi_warm'][0]:.0f} | {s['kpi_warm'][1]:.0f} | warm pass {m['total_ms']:,.0f} ms; {m['total_ms'] / d['total_ms']:.2f}x DuckDB |")
print(f"| DuckDB, two passes | {s['duckdb'][0]:.0f} | {s['duckdb'][1]:.0f} | warm pass {d['total_ms']:,.0f} ms |")
print(f"| ANPAL report | {s['report'][0]:.0f} | {s['report'][1]:.0f} | |")
print(f"| cohort export | {s['cohort'][0]:.0f} | {s['cohort'][1]:.0f} | |")
dk = {k["kpi"]: k for k in d["kpis"]}
ck = {k["kpi"]: k for k in c["kpis"]}
print("\n| KPI | mirato ms (fresh process) | mirato ms (warm) | DuckDB ms | ratio (warm) |")
print("|---|---|---|---|---|")
for k in m["kpis"]:
    o = dk.get(k["kpi"])
    f = ck.get(k["kpi"], {}).get("ms", 0)
    if o is None:
        print(f"| {k['kpi']} | {f:.0f} | {k['ms']:.0f} | – | – |")
    else:
        print(f"| {k['kpi']} | {f:.0f} | {k['ms']:.0f} | {o['ms']:.0f} | {k['ms'] / max(o['ms'], 0.001):.2f} |")
PY

if [ "${SERVE:-1}" = 1 ]; then
  echo
  echo "== the server on this store (benches/serve.sh)"
  WORK="$WORK" PERSONS="$PERSONS" BIN="$BIN" benches/serve.sh
fi
