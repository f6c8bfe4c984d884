"""Counts a mirato store's events as outside readers do, once per data folder read from
standard input: one JSON line per folder. One process for many stores, so that a suite of
hundreds of kills pays Python's imports once.

For each folder: the rows delta-rs lists through the table's log, and what DuckDB counts over
the files of that version (rows, and distinct event ids: a doubled row shows as a difference).
"""
import json
import sys

import duckdb
from deltalake import DeltaTable

con = duckdb.connect()
for line in sys.stdin:
    data = line.strip()
    if not data:
        continue
    try:
        dt = DeltaTable(f"{data}/generations")
        files = dt.file_uris()
        rows = dt.to_pyarrow_table(columns=["event_id"]).num_rows
        if files:
            d_rows, d_ids = con.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?, union_by_name = true)",
                [files],
            ).fetchone()
        else:
            d_rows, d_ids = 0, 0
        out = {"deltalake_rows": rows, "duckdb_rows": d_rows, "duckdb_ids": d_ids, "version": dt.version()}
    except Exception as e:  # a store with no table yet, or a reader's failure: reported, not fatal
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)
