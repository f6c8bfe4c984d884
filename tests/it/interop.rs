//! The store is plain Parquet: pyarrow and DuckDB (from PyPI; `.ci/run` installs them) read it
//! with the hive partitions, and agree with mirato's own counts.

use crate::common;
use common::*;

use std::collections::BTreeMap;

#[test]
fn pyarrow_and_duckdb_read_the_store() {
    let env = Env::new();
    let gen_dir = env.dir.path().join("gen");
    let out = env
        .cli()
        .args([
            "generate",
            "--persons",
            "150",
            "--seed",
            "3",
            "--error-rate",
            "0.02",
            "--out",
        ])
        .arg(&gen_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    env.ingest(&[gen_dir]);
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for t in column(&env.events(), "event_type").into_iter().flatten() {
        *ours.entry(t).or_default() += 1;
    }
    let v = python_json(
        include_str!("../interop/read_store.py"),
        &[env.data.as_os_str()],
        None,
        "pyarrow duckdb",
    );
    let theirs = |k: &str| -> BTreeMap<String, u64> {
        v[k].as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect()
    };
    assert_eq!(theirs("pyarrow_types"), ours);
    assert_eq!(theirs("duckdb_types"), ours);
    assert_eq!(
        v["pyarrow_rows"].as_u64().unwrap(),
        ours.values().sum::<u64>()
    );
    assert_eq!(
        v["partition_mismatches"], 0,
        "year=/month= match the Rome date"
    );
    assert!(v["quarantine_rows"].as_u64().unwrap() > 0);
    let schema: Vec<&str> = v["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for c in [
        "event_id",
        "occurred_at",
        "person_id",
        "ingested_at",
        "year",
        "month",
    ] {
        assert!(schema.contains(&c), "{c} in {schema:?}");
    }
    assert!(!schema.contains(&"person_cf"));
}

/// Through the events table's Delta log, delta-rs, pandas, polars and DuckDB (over the table's
/// files) see mirato's committed rows; filtering `ingested_at` by an `as_of` gives what mirato
/// shows at that `as_of`, before and after a compaction.
#[test]
fn delta_readers_see_the_committed_table_and_an_old_as_of() {
    let env = Env::new();
    let a = env.write(
        "a.csv",
        csv_of(&[
            base_row("basic_orientation", "e-1"),
            base_row("basic_orientation", "e-2"),
        ]),
    );
    env.ingest_one(&a);
    let first = env.layout().read_ledger().unwrap()[0].ingested_at.clone();
    let b = env.write("b.csv", csv_of(&[base_row("pact_signed", "e-3")]));
    env.ingest_one(&b);
    let now = env.read_delta(None);
    assert_eq!(now["deltalake_rows"], 3);
    assert_eq!(now["duckdb_types"]["basic_orientation"], 2);
    assert_eq!(now["duckdb_types"]["pact_signed"], 1);
    assert_eq!(now["key_type"], "int64", "record keys widened to long");
    // 0: the table; 1 and 2: the two files.
    assert_eq!(now["version"], 2);
    assert_eq!(env.read_delta(Some(&first))["deltalake_rows"], 2);
    let store = mirato::store::Store::open(&env.data).unwrap();
    let report = mirato::compact::compact(&store, &Default::default()).unwrap();
    drop(store);
    assert_eq!(report.partitions_merged, 1, "{report:?}");
    let compacted = env.read_delta(None);
    assert_eq!(compacted["version"], 3);
    assert_eq!(compacted["files"].as_array().unwrap().len(), 1);
    assert_eq!(compacted["deltalake_rows"], 3);
    assert_eq!(env.read_delta(Some(&first))["deltalake_rows"], 2);
}
