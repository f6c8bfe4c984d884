"""Reads a mirato store's events table through its Delta log, as the README shows, and prints
what each reader saw.

Usage: python3 read_delta.py DATA_DIR [AS_OF]
With AS_OF (RFC 3339), each reader keeps the rows ingested by then: what mirato's `as_of` sees.
Prints one JSON object: rows per reader, event-type counts, the table's version and files.
"""
import json
import sys
from datetime import datetime

import duckdb
import polars as pl
import pyarrow.compute as pc
from deltalake import DeltaTable

data = sys.argv[1]
as_of = datetime.fromisoformat(sys.argv[2].replace("Z", "+00:00")) if len(sys.argv) > 2 else None
table = f"{data}/generations"

dt = DeltaTable(table)
arrow = dt.to_pyarrow_table(columns=["event_type", "ingested_at", "person_record_key"])
pandas = dt.to_pandas(columns=["event_id", "ingested_at"])
frame = pl.read_delta(table)
files = dt.file_uris()
con = duckdb.connect()
if as_of is not None:
    arrow = arrow.filter(pc.less_equal(arrow["ingested_at"], as_of))
    pandas = pandas[pandas["ingested_at"] <= as_of]
    frame = frame.filter(pl.col("ingested_at") <= as_of)
types = {}
if files:
    where = "WHERE ingested_at <= ?" if as_of else ""
    params = [files] + ([as_of] if as_of else [])
    types = dict(
        con.execute(
            f"SELECT event_type, count(*) FROM read_parquet(?, union_by_name = true) {where} GROUP BY 1",
            params,
        ).fetchall()
    )
print(
    json.dumps(
        {
            "version": dt.version(),
            "files": sorted(files),
            "deltalake_rows": arrow.num_rows,
            "pandas_rows": len(pandas),
            "polars_rows": frame.height,
            "duckdb_rows": sum(types.values()),
            "duckdb_types": types,
            "key_type": str(arrow.schema.field("person_record_key").type),
        }
    )
)
