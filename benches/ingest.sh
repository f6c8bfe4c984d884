#!/usr/bin/env bash
# Ingest benchmark (issues 2 and 17): generate about 5 million events, ingest them into a fresh
# store with the release binary, and report events per second and peak memory (max RSS from
# /usr/bin/time). The peer, in the same run: DuckDB's plain conversion of the same files to one
# Parquet file each (`COPY (FROM read_csv(...)) TO ... (FORMAT parquet)`), with none of mirato's
# validation, pseudonymisation or dedupe; the ratio is mirato's events/s over DuckDB's rows/s.
#
#   benches/ingest.sh                 # 200,000 persons, about 5 million events, CSV
#   PERSONS=50000 FORMAT=jsonl GZIP=1 benches/ingest.sh
#
# Not a timed test: run it by hand on an otherwise idle machine and copy the table into the README.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb

PERSONS=${PERSONS:-200000}
FORMAT=${FORMAT:-csv}
GZIP=${GZIP:-0}
WORK=${WORK:-/tmp/mirato-bench-ingest}

source benches/common.sh

rm -rf "$WORK"
mkdir -p "$WORK"
gz=()
[ "$GZIP" = 1 ] && gz=(--gzip)
echo "generating $PERSONS persons ($FORMAT${gz:+, gzip}) into $WORK/in"
"$BIN" generate --persons "$PERSONS" --seed 1 --format "$FORMAT" "${gz[@]}" --out "$WORK/in"
du -sh "$WORK/in"

echo "ingesting"
/usr/bin/time -v "$BIN" --data-dir "$WORK/data" --key-file "$WORK/key" ingest --format json "$WORK/in" \
  > "$WORK/report.jsonl" 2> "$WORK/time.txt" || { cat "$WORK/time.txt"; exit 1; }

echo "DuckDB's plain conversion of the same files"
rm -rf "$WORK/duckdb"; mkdir -p "$WORK/duckdb"
/usr/bin/time -v python3 - "$WORK" "$FORMAT" > "$WORK/duckdb.txt" 2> "$WORK/duckdb.time" <<'PY' || { cat "$WORK/duckdb.time"; exit 1; }
import duckdb, pathlib, sys
work, fmt = pathlib.Path(sys.argv[1]), sys.argv[2]
con = duckdb.connect()
rows = 0
for i, f in enumerate(sorted((work / "in").iterdir())):
    # Every column as text: the files hold bad rows on purpose, which a typed read refuses.
    reader = f"read_csv('{f}', all_varchar = true)" if fmt == "csv" else f"read_json('{f}')"
    out = work / "duckdb" / f"{i:04}.parquet"
    rows += con.execute(f"COPY (FROM {reader}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)").fetchone()[0]
print(rows)
PY

python3 - "$WORK" <<'PY'
import json, re, sys
work = sys.argv[1]
rows = [json.loads(l) for l in open(f"{work}/report.jsonl")]
read = sum(r.get("read", 0) for r in rows)
stored = sum(r.get("stored", 0) for r in rows)
t = open(f"{work}/time.txt").read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
user = float(re.search(r"User time \(seconds\): (\S+)", t).group(1))
sys_ = float(re.search(r"System time \(seconds\): (\S+)", t).group(1))
print(f"| files | events read | stored | wall s | events/s | user s | sys s | peak RSS MiB |")
print(f"|---|---|---|---|---|---|---|---|")
print(f"| {len(rows)} | {read:,} | {stored:,} | {secs:.1f} | {read/secs:,.0f} | {user:.1f} | {sys_:.1f} | {rss_kib/1024:.0f} |")
d = open(f"{work}/duckdb.time").read()
dwall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", d).group(1)
dsecs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(dwall.split(":"))))
drows = int(open(f"{work}/duckdb.txt").read().split()[0])
drss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", d).group(1)) / 1024
print(f"\nDuckDB plain conversion: {drows:,} rows in {dsecs:.1f} s = {drows/dsecs:,.0f} rows/s, peak RSS {drss:.0f} MiB")
print(f"ratio mirato / DuckDB: {(read/secs) / (drows/dsecs):.2f}")
PY
du -shL "$WORK/data/events"
