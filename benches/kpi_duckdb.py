"""Runs the KPI catalogue's SQL in DuckDB on mirato's Parquet store, for benches/kpi.sh.

The same SQL files as mirato (queries/*.sql and the shared views), with the few differences of
dialect rewritten, wrapped with the same aggregation as mirato's engine does without breakdown.
Prints JSON: {"total_ms": ..., "kpis": [{"kpi", "ms", "rows"}], "peak_rss_mib": ...}.

Usage: python3 kpi_duckdb.py QUERIES_DIR DATA_DIR FROM TO AS_OF [PASSES]
"""
import datetime
import json
import re
import resource
import sys
import time
from pathlib import Path

import duckdb

queries, data, d_from, d_to, as_of = sys.argv[1:6]
passes = int(sys.argv[6]) if len(sys.argv) > 6 else 2


def dialect(sql: str) -> str:
    """DataFusion -> DuckDB: a DATE cast to BIGINT becomes its day number, and IGNORE NULLS moves
    inside the window function's parentheses."""
    sql = re.sub(r"first_value\((.*?)\) IGNORE NULLS OVER", r"first_value(\1 IGNORE NULLS) OVER", sql)
    # An ordered aggregate: DataFusion's first_value(x ORDER BY y) is DuckDB's first(x ORDER BY y).
    sql = re.sub(r"first_value\(([^()]*?) ORDER BY", r"first(\1 ORDER BY", sql)
    sql = re.sub(r"CAST\(CAST\(\$to AS DATE\) AS BIGINT\)", "(CAST($to AS DATE) - DATE '1970-01-01')", sql)
    # A day count before `to`: DuckDB subtracts days from a date directly.
    sql = re.sub(r"CAST\(CAST\(CAST\(\$to AS DATE\) AS INT\) - (\$\w+) AS DATE\)", r"(CAST($to AS DATE) - \1)", sql)
    # DuckDB reads the hive partition `month` as text.
    sql = sql.replace("year * 100 + month", "year * 100 + CAST(month AS INT)")
    # The record keys of perturbation: mirato adds them to its shared views in memory, and
    # DuckDB computes exact figures only.
    sql = re.sub(r",\s*(\w+\.)?(person|vacancy)_record_key\b", "", sql)
    sql = re.sub(r"CAST\((?!positions\b)([\w.]+) AS BIGINT\)", r"(\1 - DATE '1970-01-01')", sql)
    return sql


def header(sql: str) -> dict:
    h = {}
    for line in sql.splitlines():
        if not line.startswith("-- "):
            if line.strip():
                break
            continue
        k, _, v = line[3:].partition(":")
        h[k.strip()] = v.strip()
    return h


AGG = {
    "count": "count(*) AS value",
    "stock": "count(*) AS value",
    "count_distinct": "count(DISTINCT k.person_id) AS value",
    "sum": "coalesce(sum(k.x), 0) AS value",
    "rate": "CASE WHEN count(*) = 0 THEN NULL ELSE CAST(coalesce(sum(k.num), 0) AS DOUBLE) / count(*) END AS value, coalesce(sum(k.num), 0) AS numerator, count(*) AS denominator",
    "median": "median(CAST(k.x AS DOUBLE)) AS value, count(k.x) AS n",
    "mean": "avg(CAST(k.x AS DOUBLE)) AS value, count(k.x) AS n",
    "survival": "k.duration, k.event",
    "funnel": ", ".join(
        f"coalesce(sum(k.{c}), 0) AS {c}"
        for c in ["s_accepted", "s_basic_orientation", "s_pact_signed", "s_measure_or_proposal", "s_hired"]
    ),
}

con = duckdb.connect()
con.execute("SET threads = 2")
con.execute(
    f"CREATE VIEW ev AS SELECT * FROM read_parquet('{data}/events/**/*.parquet', hive_partitioning = true) "
    f"WHERE ingested_at <= TIMESTAMPTZ '{as_of}'"
)
territories = Path(queries).parent / "src" / "reference" / "territories.csv"
con.execute(
    "CREATE TABLE ref_provinces AS SELECT province_sigla AS sigla, province_name, region_code, region_name "
    f"FROM read_csv('{territories}', all_varchar = true)"
)
views = (Path(queries) / "_views.sql").read_text()
for stmt in views.split(";\n"):
    if any(l.strip() and not l.strip().startswith("--") for l in stmt.splitlines()):
        con.execute(dialect(stmt))

files = sorted(p for p in Path(queries).glob("*.sql") if not p.name.startswith("_"))
params = {"from": datetime.date.fromisoformat(d_from), "to": datetime.date.fromisoformat(d_to)}
# A `param_` view is one value that mirato binds as the placeholder of its name.
for name in re.findall(r"CREATE VIEW (param_\w+)", views):
    params[name] = con.execute(f"SELECT * FROM {name}").fetchall()[0][0]
results = {}
total = 0.0
for p in range(passes):
    total = 0.0
    for f in files:
        sql = f.read_text()
        h = header(sql)
        if h["kind"] not in AGG:
            # Observed/expected fits a model in mirato: DuckDB has no peer for it.
            continue
        body = dialect(sql).strip().rstrip(";")
        agg = AGG[h["kind"]]
        if h.get("not_stated") == "yes":
            # A rate whose rows that state nothing are out of both sides, counted apart.
            agg = ("CASE WHEN sum(k.stated) = 0 THEN NULL ELSE CAST(sum(k.num) AS DOUBLE) / sum(k.stated) END AS value, "
                   "sum(k.num) AS numerator, sum(k.stated) AS denominator, count(*) - sum(k.stated) AS not_stated")
        q = f"WITH k AS (\n{body}\n)\nSELECT {agg}\nFROM k LEFT JOIN ref_provinces rp ON rp.sigla = k.province"
        used = {k: v for k, v in params.items() if f"${k}" in q}
        t = time.perf_counter()
        rows = con.execute(q, used).fetchall()
        ms = (time.perf_counter() - t) * 1000
        total += ms
        results[h["id"]] = {"kpi": h["id"], "ms": ms, "rows": len(rows)}

peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"total_ms": total, "kpis": list(results.values()), "peak_rss_mib": peak}))
