//! Duplicates across files and formats: the same content in CSV and JSON Lines, and a file
//! ingested twice, store nothing new.

use super::*;

#[test]
fn csv_and_json_lines_with_the_same_content_are_duplicates() {
    let env = Env::new();
    let rows = vec![
        base_row("hired", "h1"),
        base_row("application_submitted", "a1"),
    ];
    let csv = env.write("a.csv", csv_of(&rows));
    // JSON with native numbers and booleans, keys in another order, and an unknown key.
    let mut json = String::new();
    for r in &rows {
        let mut obj = serde_json::Map::new();
        obj.insert("extra".into(), serde_json::json!(null));
        for (k, v) in r.iter().rev() {
            let val = match v.as_str() {
                "true" => serde_json::json!(true),
                "false" => serde_json::json!(false),
                s if s.bytes().all(|b| b.is_ascii_digit())
                    && !k.contains("cf")
                    && !k.contains("employer") =>
                {
                    serde_json::json!(s.parse::<u64>().unwrap())
                }
                s => serde_json::json!(s),
            };
            obj.insert(k.clone(), val);
        }
        json.push_str(&serde_json::Value::Object(obj).to_string());
        json.push('\n');
    }
    let jsonl = env.write("b.jsonl", json);
    let r = env.ingest(&[csv, jsonl]);
    assert_eq!(counts(&r[0]), (2, 2, 0, 0));
    assert_eq!(counts(&r[1]), (2, 0, 2, 0));
}

#[test]
fn reingesting_a_file_stores_nothing_new() {
    let env = Env::new();
    let rows = vec![
        base_row("basic_orientation", "e1"),
        with(
            base_row("basic_orientation", "e2"),
            &[("province", Some("XX"))],
        ),
    ];
    let p = env.write("a.csv.gz", {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(csv_of(&rows).as_bytes()).unwrap();
        gz.finish().unwrap()
    });
    assert_eq!(counts(&env.ingest_one(&p)), (2, 1, 0, 1));
    let files_before = env.all_parquet();
    assert_eq!(counts(&env.ingest_one(&p)), (2, 0, 1, 1));
    assert_eq!(env.event_count(), 1);
    assert_eq!(
        env.all_parquet(),
        files_before,
        "no new event or quarantine file"
    );
    let ledger = env.layout().read_ledger().unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        ledger[1].repeat_of.as_deref(),
        Some(ledger[0].batch_id.as_str())
    );
}
