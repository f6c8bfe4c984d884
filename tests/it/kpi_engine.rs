//! What the KPI case files (`tests/kpi/*.case`) cannot say: a published figure asked again with
//! its `as_of` after a late batch, and the shared views a restarted server reads back. Both run
//! through the real ingest and the real engine.

use crate::common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

fn accepted(id: &str, at: &str, who: u32) -> Vec<(String, String)> {
    ev("application_accepted", id, at, Some(who), &[])
}

/// Batch 1 (two hires in March/April) is published; a late batch 2 adds a hire dated February.
/// The figure published after batch 1, asked again with that as_of, must not move.
#[test]
fn as_of_before_a_late_batch() {
    let env = Env::new();
    env.load(
        "batch1.csv",
        &[
            hire("h1", "2025-03-01", 1, &[]),
            hire("h2", "2025-04-01", 2, &[]),
        ],
    );
    let first = env.kpi("hires", &Y);
    assert_eq!(first["rows"], json!([{"value": 2}]));
    let t = first["params"]["as_of"].as_str().expect("as_of").to_owned();
    std::thread::sleep(std::time::Duration::from_millis(20));
    env.load("batch2.csv", &[hire("h3", "2025-02-15", 3, &[])]);
    // With as_of = T: batch 1 only -> 2, same rows as published.
    let again = env.kpi("hires", &[Y[0], Y[1], ("as_of", &t)]);
    assert_eq!(again["rows"], first["rows"]);
    assert_eq!(
        again["params"]["data_version"],
        first["params"]["data_version"]
    );
    // Without as_of: h1, h2, h3 -> 3; by month Feb 1, Mar 1, Apr 1.
    assert_eq!(env.rows("hires", &Y), json!([{"value": 3}]));
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "month"), ("as_of", &t)]),
        json!([{"month": "2025-03", "value": 1}, {"month": "2025-04", "value": 1}])
    );
}

/// Every process reads the shared views from their files in `views/`, which a later process
/// (a restarted server, the next command) finds instead of rebuilding them. Proof that it
/// reads: with the event files hidden, it still counts the registered persons. Views held in
/// memory without persistence (the comparison mode) compute; an unreadable copy is rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_views_are_read_back_after_a_restart() {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use mirato::query::{Engine, RawParams};

    // Persons 1-3 accepted in 2025 and never cancelled: 3 registered at 31/12/2025.
    let env = Env::new();
    let rows: Vec<_> = (1..=3u32)
        .map(|who| accepted(&format!("a{who}"), "2025-02-01", who))
        .collect();
    env.load("stock.csv", &rows);
    let raw = RawParams {
        from: Some("2025-01-01".into()),
        to: Some("2025-12-31".into()),
        ..RawParams::default()
    };
    // (in memory, persist): (false, _) on disk, as every process; (true, true) the server
    // with views in memory; (true, false) the command line with views in memory.
    let stock = |in_memory: bool, persist: bool| {
        let (data, raw) = (env.data.clone(), raw.clone());
        async move {
            let engine = Engine::open(&data).unwrap();
            engine.views_in_memory(in_memory);
            engine.persist_views(persist);
            let r = engine.run_raw("registered_stock", &raw).await.unwrap();
            r.rows[0]["value"].as_i64().unwrap()
        }
    };
    assert_eq!(stock(false, false).await, 3);

    // The file of `spells` is there once the view is built.
    let find = || -> Option<std::path::PathBuf> {
        let root = env.data.join("views");
        for d in std::fs::read_dir(root).ok()?.flatten() {
            for f in std::fs::read_dir(d.path()).ok()?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("spells-") && name.ends_with(".parquet") {
                    return Some(f.path());
                }
            }
        }
        None
    };
    let copy = find().expect("no stored spells view");
    // A restarted engine reads it, on disk or into memory: the same answer.
    assert_eq!(stock(false, false).await, 3);
    assert_eq!(stock(true, true).await, 3);

    // With the event files hidden, computing counts 0: a process that counts 3 read the copy.
    let layout = env.layout();
    let files = layout.committed_files(&layout.events()).unwrap();
    let hidden = |f: &std::path::PathBuf| f.with_extension("hidden");
    for f in &files {
        std::fs::rename(f, hidden(f)).unwrap();
    }
    assert_eq!(stock(false, false).await, 3, "the stored copy was not read");
    assert_eq!(stock(true, true).await, 3, "the stored copy was not read");
    // Held in memory without persistence: computed.
    assert_eq!(stock(true, false).await, 0);
    for f in &files {
        std::fs::rename(hidden(f), f).unwrap();
    }
    // Unreadable: rebuilt, on disk or in memory.
    std::fs::write(&copy, b"not parquet").unwrap();
    assert_eq!(stock(true, true).await, 3);
    assert_eq!(stock(false, false).await, 3);
    assert!(ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&copy).unwrap()).is_ok());
}
