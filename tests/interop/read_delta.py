"""Reads a mirato store's events table through its Delta log, as the README shows, and prints
what each reader saw.

Usage: python3 read_delta.py DATA_DIR [AS_OF]
DATA_DIR is a folder or s3://bucket/prefix (credentials and endpoint from the AWS_* variables).
With AS_OF (RFC 3339), each reader keeps the rows ingested by then: what mirato's `as_of` sees.
Prints one JSON object: rows per reader, event-type counts, the table's version and files.
"""
import json
import os
import sys
from datetime import datetime

import duckdb
import polars as pl
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

data = sys.argv[1]
as_of = datetime.fromisoformat(sys.argv[2].replace("Z", "+00:00")) if len(sys.argv) > 2 else None
table = f"{data}/generations"

# On S3 every reader takes the bucket's address and credentials from the environment.
remote = data.startswith("s3://")
opts = {k: v for k, v in os.environ.items() if k.startswith("AWS_")} if remote else None

try:
    dt = DeltaTable(table, storage_options=opts)
except TableNotFoundError:
    # A store killed before its first commit has no table yet: outside readers see no rows.
    print(json.dumps({"version": None, "files": [], "deltalake_rows": 0, "pandas_rows": 0,
                      "polars_rows": 0, "duckdb_rows": 0, "duckdb_types": {}, "key_type": None}))
    sys.stdout.flush()
    os._exit(0)
arrow = dt.to_pyarrow_table(columns=["event_type", "ingested_at", "person_record_key"])
pandas = dt.to_pandas(columns=["event_id", "ingested_at"])
frame = pl.read_delta(table, storage_options=opts)
files = dt.file_uris()
con = duckdb.connect()
# DuckDB reads s3:// only through its httpfs extension, fetched from the network at first use:
# on S3 it scans the table's files through the Arrow dataset of the table's version instead.
dataset = dt.to_pyarrow_dataset() if remote else None
if as_of is not None:
    arrow = arrow.filter(pc.less_equal(arrow["ingested_at"], as_of))
    pandas = pandas[pandas["ingested_at"] <= as_of]
    frame = frame.filter(pl.col("ingested_at") <= as_of)
types = {}
if files:
    where = "WHERE ingested_at <= ?" if as_of else ""
    if remote:
        source, params = "dataset", [as_of] if as_of else []
    else:
        source, params = "read_parquet(?, union_by_name = true)", [files] + ([as_of] if as_of else [])
    types = dict(
        con.execute(f"SELECT event_type, count(*) FROM {source} {where} GROUP BY 1", params).fetchall()
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
# Leave without the libraries' teardown: under load a reader's background thread can still be
# running at exit, and the C++ runtime then aborts after the output is written.
sys.stdout.flush()
os._exit(0)
