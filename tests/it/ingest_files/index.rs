//! The on-disk dedupe index: duplicates and conflicts are found against files of earlier runs
//! (before and after compaction), and the index survives its loss, a crash before its write,
//! and a ledger older than itself; a file that fails leaves no ids behind.

use super::*;

use mirato::store::{DedupeIndex, Store};

/// A file of one duplicate of `e-1`, one conflicting copy of `e-2` and one new event `new`.
fn resend(env: &Env, name: &str, new: &str) -> std::path::PathBuf {
    let changed = with(
        base_row("basic_orientation", "e-2"),
        &[("cpi_code", Some("MI-02"))],
    );
    env.write(
        name,
        csv_of(&[
            base_row("basic_orientation", "e-1"),
            changed,
            base_row("basic_orientation", new),
        ]),
    )
}

fn first_file(env: &Env) -> std::path::PathBuf {
    env.write(
        "a.csv",
        csv_of(&[
            base_row("basic_orientation", "e-1"),
            base_row("basic_orientation", "e-2"),
        ]),
    )
}

fn conflicts(env: &Env) -> usize {
    column(&env.quarantine(), "rules")
        .iter()
        .filter(|r| {
            r.as_deref()
                .is_some_and(|r| r.contains("event_id.conflict"))
        })
        .count()
}

/// The index folder's database, opened directly (the store must not be open).
fn open_index(env: &Env) -> (fjall::Database, fjall::Keyspace, fjall::Keyspace) {
    let db = fjall::Database::builder(env.layout().index())
        .open()
        .unwrap();
    let ids = db
        .keyspace("ids", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    let batches = db
        .keyspace("batches", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    (db, ids, batches)
}

fn committed_batches(env: &Env) -> Vec<String> {
    env.layout()
        .read_ledger()
        .unwrap()
        .into_iter()
        .filter(|e| e.stored > 0)
        .map(|e| e.batch_id)
        .collect()
}

/// The stored content hash of an event id, through the store's own index.
fn indexed(env: &Env, event_id: &str) -> Option<i64> {
    let store = Store::open(&env.data).unwrap();
    let index = store.dedupe_index().unwrap();
    index.get(DedupeIndex::key(event_id)).unwrap()
}

/// The codec of each committed event file's `event_type` column, sorted.
fn event_codecs(env: &Env) -> Vec<String> {
    let l = env.layout();
    let mut out: Vec<String> = l
        .committed_files(&l.events())
        .unwrap()
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p).unwrap();
            let r = datafusion::parquet::file::reader::SerializedFileReader::new(f).unwrap();
            use datafusion::parquet::file::reader::FileReader;
            let rg = r.metadata().row_group(0);
            let col = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == "event_type")
                .unwrap();
            // The level is not stored in the file.
            let codec = format!("{:?}", col.compression());
            codec.split('(').next().unwrap().to_owned()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn duplicates_and_conflicts_against_an_earlier_run_and_after_compaction() {
    let env = Env::new();
    assert_eq!(counts(&env.ingest_one(&first_file(&env))), (2, 2, 0, 0));
    assert!(
        env.layout().index().is_dir(),
        "the first ingest made the index"
    );
    assert!(indexed(&env, "e-1").is_some());
    // A later run: the earlier ids are only on disk.
    let b = resend(&env, "b.csv", "e-3");
    assert_eq!(counts(&env.ingest_one(&b)), (3, 1, 1, 1));
    assert_eq!(conflicts(&env), 1);
    // A batch's files are written for speed, the compacted one for size.
    assert_eq!(event_codecs(&env), ["SNAPPY", "SNAPPY"]);
    // Compaction merges both files of the month into one; ids and batches are unchanged.
    {
        let store = Store::open(&env.data).unwrap();
        let report = mirato::compact::compact(&store, &Default::default()).unwrap();
        assert_eq!(report.partitions_merged, 1, "{report:?}");
    }
    assert_eq!(event_codecs(&env), ["ZSTD"]);
    let c = resend(&env, "c.csv", "e-4");
    assert_eq!(counts(&env.ingest_one(&c)), (3, 1, 1, 1));
    assert_eq!(conflicts(&env), 2);
    assert_eq!(env.event_count(), 4);
}

#[test]
fn a_deleted_index_is_rebuilt_from_the_store() {
    let env = Env::new();
    env.ingest_one(&first_file(&env));
    std::fs::remove_dir_all(env.layout().index()).unwrap();
    let b = resend(&env, "b.csv", "e-3");
    assert_eq!(counts(&env.ingest_one(&b)), (3, 1, 1, 1));
    assert_eq!(conflicts(&env), 1);
    // The rebuilt index covers every committed batch, the new one too.
    let (_db, _ids, batches) = open_index(&env);
    for b in committed_batches(&env) {
        assert!(batches.get(&b).unwrap().is_some(), "{b}");
    }
}

#[test]
fn an_unreadable_index_is_rebuilt() {
    let env = Env::new();
    env.ingest_one(&first_file(&env));
    // Garbage where the database's files are.
    let index = env.layout().index();
    std::fs::remove_dir_all(&index).unwrap();
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join("version"), b"not a version").unwrap();
    let b = resend(&env, "b.csv", "e-3");
    assert_eq!(counts(&env.ingest_one(&b)), (3, 1, 1, 1));
}

#[test]
fn a_crash_between_the_ledger_commit_and_the_index_write_is_caught_up() {
    let env = Env::new();
    env.ingest_one(&first_file(&env));
    let second = env.write("b.csv", csv_of(&[base_row("referral", "e-5")]));
    env.ingest_one(&second);
    let batches_before = committed_batches(&env);
    assert_eq!(batches_before.len(), 2);
    // The second batch committed, but neither its ids nor its record reached the index.
    {
        let (_db, ids, batches) = open_index(&env);
        ids.remove(DedupeIndex::key("e-5").to_be_bytes()).unwrap();
        batches.remove(batches_before[1].as_str()).unwrap();
    }
    let changed = with(base_row("referral", "e-5"), &[("cpi_code", Some("MI-02"))]);
    let c = env.write(
        "c.csv",
        csv_of(&[
            base_row("referral", "e-5"),
            changed,
            base_row("referral", "e-6"),
        ]),
    );
    // `e-5` again is a duplicate (the first row), and changed a conflict.
    assert_eq!(counts(&env.ingest_one(&c)), (3, 1, 1, 1));
    let (_db, _ids, batches) = open_index(&env);
    for b in committed_batches(&env) {
        assert!(batches.get(&b).unwrap().is_some(), "{b}");
    }
}

#[test]
fn an_ingest_aborted_between_the_ledger_commit_and_the_index_write_is_caught_up() {
    let env = Env::new();
    let out = env
        .cli()
        .env("MIRATO_FAULT_BEFORE_INDEX", "1")
        .arg("ingest")
        .arg(first_file(&env))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the process was aborted");
    // Committed, yet not in the index.
    let committed = committed_batches(&env);
    assert_eq!(committed.len(), 1);
    {
        let (_db, ids, batches) = open_index(&env);
        assert!(batches.get(&committed[0]).unwrap().is_none());
        assert!(
            ids.get(DedupeIndex::key("e-1").to_be_bytes())
                .unwrap()
                .is_none()
        );
    }
    let b = resend(&env, "b.csv", "e-3");
    let out = env.cli().arg("ingest").arg(&b).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("caught up the dedupe index"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(conflicts(&env), 1);
    assert_eq!(env.event_count(), 3, "e-1 and e-2 once, and e-3");
}

#[test]
fn a_lost_batch_record_is_caught_up_after_compaction() {
    let env = Env::new();
    env.ingest_one(&first_file(&env));
    let second = env.write("b.csv", csv_of(&[base_row("referral", "e-5")]));
    env.ingest_one(&second);
    {
        let store = Store::open(&env.data).unwrap();
        let report = mirato::compact::compact(&store, &Default::default()).unwrap();
        assert_eq!(report.files_after, 1, "{report:?}");
    }
    // Both batches' ids gone, and their records: only the merged file holds them now.
    {
        let (_db, ids, batches) = open_index(&env);
        for id in ["e-1", "e-2", "e-5"] {
            ids.remove(DedupeIndex::key(id).to_be_bytes()).unwrap();
        }
        for b in committed_batches(&env) {
            batches.remove(b.as_str()).unwrap();
        }
    }
    let c = resend(&env, "c.csv", "e-5");
    // e-1 a duplicate; e-2 and e-5 (stored as a referral) conflicts.
    assert_eq!(counts(&env.ingest_one(&c)), (3, 0, 1, 2));
}

#[test]
fn an_index_ahead_of_the_ledger_is_rebuilt() {
    let env = Env::new();
    env.ingest_one(&first_file(&env));
    // The ledger entry, the table's version and the files of the batch are gone (a data folder
    // restored from copies of different moments): the index must not keep its ids.
    let entry = std::fs::read_dir(env.layout().ledger())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(entry).unwrap();
    let version = env
        .layout()
        .table()
        .join("_delta_log/00000000000000000001.json");
    std::fs::remove_file(version).unwrap();
    let b = resend(&env, "b.csv", "e-3");
    assert_eq!(counts(&env.ingest_one(&b)), (3, 3, 0, 0));
}

#[test]
fn a_failed_file_leaves_no_ids_behind() {
    let env = Env::new();
    let mut bytes = csv_of(&[
        base_row("basic_orientation", "e-1"),
        base_row("basic_orientation", "e-7"),
        base_row("basic_orientation", "e-2"),
    ])
    .into_bytes();
    // Not UTF-8 in the last row: the file fails after its first rows were deduped.
    let pos = bytes.len() - 3;
    bytes.insert(pos, 0xe8);
    let bad = env.write("bad.csv", bytes);
    // In one run, the failed file's ids were only in memory: the next file stores them.
    let r = env.ingest(&[bad.clone(), first_file(&env)]);
    assert!(matches!(r[0], FileReport::Failed { .. }), "{r:?}");
    assert_eq!(counts(&r[1]), (2, 2, 0, 0));
    // In a later run, nothing of it reaches the disk index either.
    let r = env.ingest_one(&bad);
    assert!(matches!(r, FileReport::Failed { .. }), "{r:?}");
    assert_eq!(indexed(&env, "e-7"), None);
    let again = env.write("c.csv", csv_of(&[base_row("basic_orientation", "e-7")]));
    assert_eq!(counts(&env.ingest_one(&again)), (1, 1, 0, 0));
}

#[test]
fn many_files_in_one_run_dedupe_against_each_other() {
    let env = Env::new();
    // Each file repeats the previous file's last event and adds one: the previous file's ids
    // are in memory or already on disk, depending on how far its commit has gone.
    let paths: Vec<_> = (0..12)
        .map(|i| {
            let rows = vec![
                base_row("basic_orientation", &format!("e-{i}")),
                base_row("basic_orientation", &format!("e-{}", i + 1)),
            ];
            env.write(&format!("f{i:02}.csv"), csv_of(&rows))
        })
        .collect();
    let r = env.ingest(&paths);
    assert_eq!(counts(&r[0]), (2, 2, 0, 0));
    for report in &r[1..] {
        assert_eq!(counts(report), (2, 1, 1, 0));
    }
    assert_eq!(env.event_count(), 13);
}
