//! Files rejected whole, with the reason and nothing stored: bad gzip, not UTF-8, no header, a
//! data row where the header should be, a missing column, an unknown extension; the command's exit
//! codes and JSON report.

use super::*;

#[test]
fn bad_gzip_is_rejected_whole() {
    let env = Env::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv_of(&[base_row("basic_orientation", "e-1")]).as_bytes())
        .unwrap();
    let mut bytes = gz.finish().unwrap();
    bytes.truncate(bytes.len() / 2);
    bytes.extend_from_slice(b"garbage");
    let p = env.write("a.csv.gz", bytes);
    let r = env.ingest_one(&p);
    assert!(failed(&r).contains("gzip"), "{r:?}");
    assert_nothing_stored(&env);
    let ledger = env.layout().read_ledger().unwrap();
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].error.as_deref().unwrap().contains("gzip"));
}

#[test]
fn not_utf8_is_rejected_whole() {
    let env = Env::new();
    let mut bytes = csv_of(&[
        base_row("basic_orientation", "e-1"),
        base_row("basic_orientation", "e-2"),
    ])
    .into_bytes();
    // Latin-1 'è' in the last row's cpi_code: the first row is fine, yet nothing may be stored.
    let pos = bytes.len() - 3;
    bytes.insert(pos, 0xe8);
    let p = env.write("a.csv", bytes);
    let r = env.ingest_one(&p);
    assert!(failed(&r).contains("UTF-8"), "{r:?}");
    assert!(failed(&r).contains("line 3"), "{r:?}");
    assert_nothing_stored(&env);
}

#[test]
fn empty_file_has_no_header() {
    let env = Env::new();
    let p = env.write("a.csv", "");
    assert!(failed(&env.ingest_one(&p)).contains("no header"));
    assert_nothing_stored(&env);
}

#[test]
fn data_row_instead_of_header_is_rejected() {
    let env = Env::new();
    let text = csv_of(&[base_row("basic_orientation", "e-1")]);
    let without_header = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    let p = env.write("a.csv", without_header);
    assert!(failed(&env.ingest_one(&p)).contains("no header"));
    assert_nothing_stored(&env);
}

#[test]
fn missing_required_column_names_the_column() {
    let env = Env::new();
    let rows: Vec<_> = (0..3)
        .map(|i| {
            with(
                base_row("basic_orientation", &format!("e-{i}")),
                &[("cpi_code", None)],
            )
        })
        .collect();
    let p = env.write("a.csv", csv_of(&rows));
    let r = env.ingest_one(&p);
    assert!(failed(&r).contains("cpi_code"), "{r:?}");
    assert_nothing_stored(&env);
}

#[test]
fn unknown_extension_is_rejected() {
    let env = Env::new();
    let p = env.write("a.xlsx", "whatever");
    assert!(failed(&env.ingest_one(&p)).contains(".csv"));
}

#[test]
fn cli_exit_codes_and_json_report() {
    let env = Env::new();
    let good = env.write("good.csv", csv_of(&[base_row("basic_orientation", "e-1")]));
    let bad = env.write("bad.csv", "");
    let out = env
        .cli()
        .args(["ingest", "--format", "json"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"file": good.display().to_string(), "read": 1, "stored": 1, "duplicates": 0, "rejected": 0})
    );
    let out = env
        .cli()
        .args(["ingest", "--format", "json"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a file rejected whole fails the run"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["duplicates"], 1);
    assert!(lines[1]["error"].as_str().unwrap().contains("empty"));
    // A store that cannot be created is an error, with a non-zero exit.
    let blocker = env.dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let out = env
        .cli()
        .env("MIRATO_DATA_DIR", blocker.join("data"))
        .arg("ingest")
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unusable"));
}
