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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/read_store.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&env.data)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Python readers failed (install them with `python3 -m pip install pyarrow duckdb`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
