//! Crash safety: an ingest killed at any point leaves all of a file's rows or none, and a rerun
//! completes it.

use crate::common;
use common::*;

use std::time::Duration;

/// A file whose rows span twelve month partitions, so a commit renames many files.
fn big_file(env: &Env, rows: usize) -> std::path::PathBuf {
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
        let n = stored_after_recovery(&env);
        assert!(
            n == 0 || n == rows,
            "after a kill at {delay_ms} ms: {n} rows"
        );
        if n == rows {
            break;
        }
    }
    let out = env.cli().arg("ingest").arg(&path).output().unwrap();
    assert!(out.status.success());
    assert_eq!(env.event_count(), rows);
}
