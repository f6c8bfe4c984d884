"""Reads a mirato store as plain Parquet with pyarrow and DuckDB, and prints what each saw.

Usage: python3 read_store.py DATA_DIR
Prints one JSON object: row counts, event-type counts and the partition columns each reader found.
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds

data = sys.argv[1]

dataset = ds.dataset(f"{data}/events", format="parquet", partitioning="hive")
table = dataset.to_table(columns=["event_type", "person_id", "occurred_date", "year", "month"])
pa_types = {}
for t in table.column("event_type").to_pylist():
    pa_types[t] = pa_types.get(t, 0) + 1

con = duckdb.connect()
rows = con.execute(
    "SELECT event_type, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY 1",
    [f"{data}/events/**/*.parquet"],
).fetchall()
dd_types = {t: n for t, n in rows}
(bad_months,) = con.execute(
    "SELECT count(*) FROM read_parquet(?, hive_partitioning = true) "
    "WHERE year <> year(occurred_date) OR month <> month(occurred_date)",
    [f"{data}/events/**/*.parquet"],
).fetchone()
(q_rows,) = con.execute(
    "SELECT count(*) FROM read_parquet(?)", [f"{data}/quarantine/*.parquet"]
).fetchone()

print(
    json.dumps(
        {
            "pyarrow_rows": table.num_rows,
            "pyarrow_types": pa_types,
            "duckdb_types": dd_types,
            "partition_mismatches": bad_months,
            "quarantine_rows": q_rows,
            "schema": [f.name for f in dataset.schema],
        }
    )
)
