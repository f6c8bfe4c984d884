//! Whole files: rejected files, derivations, duplicates across formats, privacy, crash safety,
//! and the accounting on generated data.
//!
//! One file per theme below; the checks they share here.

mod accounting;
mod dedupe;
mod derived;
mod index;
mod privacy;
mod rejected;

use crate::common;
use common::*;
use std::io::Write;

use mirato::ingest::FileReport;

fn failed(r: &FileReport) -> &str {
    match r {
        FileReport::Failed { error, .. } => error,
        other => panic!("expected a rejected file, got {other:?}"),
    }
}

/// The store after a rejected file: no events, no quarantine, only a ledger entry saying why.
fn assert_nothing_stored(env: &Env) {
    assert_eq!(env.event_count(), 0);
    assert!(env.all_parquet().is_empty(), "{:?}", env.all_parquet());
}

/// Every file and folder under `dir` (links are not followed: `events` links to its
/// generation, which is walked as itself), with its mode.
fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::symlink_metadata(&d).unwrap();
        out.push((d.clone(), meta.permissions().mode() & 0o777, meta.is_dir()));
        if meta.is_dir() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if !std::fs::symlink_metadata(&path).unwrap().is_symlink() {
                    stack.push(path);
                }
            }
        }
    }
    out
}
