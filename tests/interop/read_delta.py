"""Reads a mirato store's events table through its Delta log, as the README shows, and prints
what each reader saw.

Usage: python3 read_delta.py DATA_DIR [AS_OF]
With AS_OF (RFC 3339), only rows ingested by then: what mirato's own `as_of` selects.
Prints one JSON object: rows per reader, event-type counts, the table's version and files.
"""
import json
import sys

import duckdb
import polars as pl
from deltalake import DeltaTable

data = sys.argv[1]
as_of = sys.argv[2] if len(sys.argv) > 2 else None
table = f"{data}/generations"

dt = DeltaTable(table)
arrow = dt.to_pyarrow_table(columns=["event_type", "ingested_at", "person_record_key"])
frame = pl.read_delta(table)
pandas_rows = len(dt.to_pandas(columns=["event_id"]))
con = duckdb.connect()
files = dt.file_uris()
if as_of is not None:
    frame = frame.filter(pl.col("ingested_at") <= pl.lit(as_of).str.to_datetime(time_zone="UTC"))
if files:
    where = "WHERE ingested_at <= CAST(? AS TIMESTAMPTZ)" if as_of else ""
    params = [files] + ([as_of] if as_of else [])
    types = dict(
        con.execute(
            f"SELECT event_type, count(*) FROM read_parquet(?, union_by_name = true) {where} GROUP BY 1",
            params,
        ).fetchall()
    )
else:
    types = {}
print(
    json.dumps(
        {
            "version": dt.version(),
            "files": sorted(files),
            "deltalake_rows": arrow.num_rows,
            "pandas_rows": pandas_rows,
            "polars_rows": frame.height,
            "duckdb_rows": sum(types.values()),
            "duckdb_types": types,
            "key_type": str(arrow.schema.field("person_record_key").type),
        }
    )
)
