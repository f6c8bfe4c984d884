//! Crash safety: an ingest or a compaction killed at any point leaves all of a file's rows or
//! none, for mirato and for outside readers of the events table, and a rerun completes it.

use crate::common;
use common::*;

use std::time::Duration;

/// A file whose rows span twelve month partitions, so a commit renames many files.
pub(crate) fn big_file(env: &Env, rows: usize) -> std::path::PathBuf {
    let mut text = String::new();
    let header = csv_of(&[base_row("basic_orientation", "x")]);
    let mut lines = header.lines();
    text.push_str(lines.next().unwrap());
    text.push('\n');
    let template = lines.next().unwrap().to_owned();
    for i in 0..rows {
        let month = i % 12 + 1;
        let line = template
            .replacen("x,", &format!("e-{i},"), 1)
            .replace("2024-03-05", &format!("2024-{month:02}-05"));
        text.push_str(&line);
        text.push('\n');
    }
    env.write("big.csv", text)
}

/// Opens the store as every command does (which rolls back an interrupted batch) and counts.
fn stored_after_recovery(env: &Env) -> usize {
    drop(mirato::store::Store::open(&env.data).unwrap());
    env.event_count()
}

#[test]
fn fault_injection_midway_through_the_commit() {
    for after in [0, 1, 5, 12] {
        let env = Env::new();
        let path = big_file(&env, 1200);
        let out = env
            .cli()
            .env("MIRATO_FAULT_AFTER_RENAMES", after.to_string())
            .arg("ingest")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "the process was aborted");
        // Before recovery, some files may be in place; no ledger entry commits them.
        assert_eq!(env.layout().read_ledger().unwrap().len(), 0);
        assert_eq!(
            env.event_count(),
            0,
            "uncommitted files are not part of the store"
        );
        // Outside readers go through the table: none of the renamed files are in it.
        assert_eq!(env.read_delta(None)["deltalake_rows"], 0, "after {after}");
        assert_eq!(stored_after_recovery(&env), 0);
        assert!(
            env.all_parquet().is_empty(),
            "recovery removed the partial batch"
        );
        let out = env.cli().arg("ingest").arg(&path).output().unwrap();
        assert!(out.status.success());
        assert_eq!(env.event_count(), 1200, "the rerun completes the file");
    }
}

#[test]
fn sigkill_at_random_moments() {
    let env = Env::new();
    let rows = 60_000;
    let path = big_file(&env, rows);
    for delay_ms in [30u64, 120, 300, 700, 1500] {
        let mut child = env.cli().arg("ingest").arg(&path).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();
        let seen = env.read_delta(None)["deltalake_rows"].as_u64().unwrap() as usize;
        let n = stored_after_recovery(&env);
        assert!(
            n == 0 || n == rows,
            "after a kill at {delay_ms} ms: {n} rows"
        );
        assert_eq!(
            seen, n,
            "outside readers saw, before recovery, what mirato keeps"
        );
        if n == rows {
            break;
        }
    }
    let out = env.cli().arg("ingest").arg(&path).output().unwrap();
    assert!(out.status.success());
    assert_eq!(env.event_count(), rows);
}

#[test]
fn a_crash_between_the_commit_and_the_ledger_entry_is_rolled_forward() {
    let env = Env::new();
    let path = big_file(&env, 1200);
    let out = env
        .cli()
        .env("MIRATO_FAULT_BEFORE_LEDGER", "1")
        .arg("ingest")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the process was aborted");
    assert_eq!(env.layout().read_ledger().unwrap().len(), 0);
    // Committed in the table: outside readers see every row already.
    assert_eq!(env.read_delta(None)["deltalake_rows"], 1200);
    // Opening the store records the batch, so mirato sees the same rows.
    assert_eq!(stored_after_recovery(&env), 1200);
    let ledger = env.layout().read_ledger().unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].stored, 1200);
    // The same file again is a repeat: nothing doubled, for mirato or for outside readers.
    let out = env.cli().arg("ingest").arg(&path).output().unwrap();
    assert!(out.status.success());
    assert_eq!(env.event_count(), 1200);
    assert_eq!(env.read_delta(None)["deltalake_rows"], 1200);
}

#[test]
fn a_compaction_killed_after_its_commit_is_completed_on_open() {
    let env = Env::new();
    // Two files over the same twelve months: every partition has two files to merge.
    let a = big_file(&env, 600);
    let text = std::fs::read_to_string(&a).unwrap().replace("e-", "f-");
    let b = env.write("big2.csv", text);
    env.ingest(&[a, b]);
    let before = env.read_delta(None);
    assert_eq!(before["deltalake_rows"], 1200);
    let old_generation = mirato::store::current_generation(&env.layout()).unwrap();
    let out = env
        .cli()
        .env("MIRATO_FAULT_BEFORE_SWITCH", "1")
        .env("MIRATO_JOBS_COMPACT_MIN_FILES", "2")
        .args(["jobs", "run", "compact"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the process was aborted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The table lists the merged files; mirato still reads the old generation: same rows.
    let after = env.read_delta(None);
    assert_eq!(after["deltalake_rows"], 1200);
    let files = after["files"].as_array().unwrap();
    assert_eq!(files.len(), 12, "one merged file per month: {after}");
    assert!(
        files
            .iter()
            .all(|f| !f.as_str().unwrap().contains(&old_generation))
    );
    assert_eq!(env.event_count(), 1200);
    // Opening the store completes the switch.
    drop(mirato::store::Store::open(&env.data).unwrap());
    let current = mirato::store::current_generation(&env.layout()).unwrap();
    assert_ne!(current, old_generation);
    assert!(files.iter().all(|f| f.as_str().unwrap().contains(&current)));
    assert_eq!(env.event_count(), 1200);
}
