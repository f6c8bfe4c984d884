//! Plain-text summaries of the store and of an ingest run, for the CLI and the demo.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use datafusion::arrow::array::{Array, Date32Array, StringArray};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ingest::FileReport;
use crate::store::{BatchStatus, Layout, StoreError};

/// What the store holds: batches, events by type and year, persons, rejected rows by rule.
pub fn render(data_dir: &Path) -> Result<String, StoreError> {
    // A working copy of a bucket first takes in what other machines committed.
    crate::store::remote::refresh(data_dir)?;
    let layout = Layout::new(data_dir);
    let ledger = layout.read_ledger()?;
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_year: BTreeMap<i32, u64> = BTreeMap::new();
    let mut persons: HashSet<String> = HashSet::new();
    let (mut min_d, mut max_d) = (i32::MAX, i32::MIN);
    let mut total = 0u64;
    for path in layout.committed_files(&layout.events())? {
        let file = File::open(&path).map_err(|source| StoreError::Io {
            action: "cannot open",
            path: path.clone(),
            source,
        })?;
        let perr = |source| StoreError::Parquet {
            path: path.clone(),
            source,
        };
        let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
        let mask = ProjectionMask::columns(
            b.parquet_schema(),
            ["event_type", "occurred_date", "person_id"],
        );
        for batch in b.with_projection(mask).build().map_err(perr)? {
            let batch = batch?;
            let types = batch
                .column_by_name("event_type")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
            let dates = batch
                .column_by_name("occurred_date")
                .and_then(|c| c.as_any().downcast_ref::<Date32Array>().cloned());
            let pids = batch
                .column_by_name("person_id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
            let (Some(types), Some(dates), Some(pids)) = (types, dates, pids) else {
                continue;
            };
            for i in 0..batch.num_rows() {
                total += 1;
                *by_type.entry(types.value(i).to_owned()).or_default() += 1;
                let d = dates.value(i);
                min_d = min_d.min(d);
                max_d = max_d.max(d);
                let date = dates.value_as_date(i);
                if let Some(date) = date {
                    *by_year.entry(chrono::Datelike::year(&date)).or_default() += 1;
                }
                if !pids.is_null(i) && !persons.contains(pids.value(i)) {
                    persons.insert(pids.value(i).to_owned());
                }
            }
        }
    }
    let mut out = String::new();
    let committed = ledger
        .iter()
        .filter(|e| e.status == BatchStatus::Committed)
        .count();
    let rejected_files = ledger.len() - committed;
    match crate::store::remote::mounted(data_dir) {
        Some(remote) => {
            let _ = writeln!(
                out,
                "store: {} (working copy {})",
                remote.url(),
                data_dir.display()
            );
        }
        None => {
            let _ = writeln!(out, "store: {}", data_dir.display());
        }
    }
    let _ = writeln!(
        out,
        "  files ingested: {committed} ({rejected_files} rejected whole); data version {}",
        layout.data_version()?
    );
    let _ = writeln!(out, "  events stored: {total}; persons: {}", persons.len());
    if total > 0 {
        let fmt = |d: i32| {
            (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                + chrono::Duration::days(d as i64))
            .to_string()
        };
        let _ = writeln!(out, "  occurred: {} to {}", fmt(min_d), fmt(max_d));
        let _ = writeln!(out, "  by year:");
        for (y, n) in &by_year {
            let _ = writeln!(out, "    {y}  {n:>10}");
        }
        let _ = writeln!(out, "  by event type:");
        for (t, n) in &by_type {
            let _ = writeln!(out, "    {t:<26}{n:>10}");
        }
    }
    let mut rules: BTreeMap<&str, u64> = BTreeMap::new();
    let mut quarantined = 0;
    for e in ledger.iter().filter(|e| e.repeat_of.is_none()) {
        quarantined += e.rejected;
        for (r, n) in &e.rejected_by_rule {
            *rules.entry(r).or_default() += n;
        }
    }
    let _ = writeln!(out, "  quarantined rows: {quarantined}");
    for (r, n) in &rules {
        let _ = writeln!(out, "    {r:<32}{n:>8}");
    }
    Ok(out)
}

/// Totals of one ingest run.
pub fn ingest_summary(reports: &[FileReport], elapsed: Duration, data_dir: &Path) -> String {
    let (mut read, mut stored, mut dups, mut rejected, mut failed) = (0u64, 0u64, 0u64, 0u64, 0);
    let mut rules: BTreeMap<&str, u64> = BTreeMap::new();
    for r in reports {
        match r {
            FileReport::Read {
                read: a,
                stored: b,
                duplicates: c,
                rejected: d,
                rejected_by_rule,
                ..
            } => {
                read += a;
                stored += b;
                dups += c;
                rejected += d;
                for (k, v) in rejected_by_rule {
                    *rules.entry(k).or_default() += v;
                }
            }
            FileReport::Failed { .. } => failed += 1,
        }
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "total: {} files ({failed} rejected whole): read {read}, stored {stored}, duplicates {dups}, rejected {rejected} in {:.1} s ({:.0} events/s)",
        reports.len(),
        secs,
        read as f64 / secs
    );
    if !rules.is_empty() {
        let _ = writeln!(out, "rejected rows by rule (details in the quarantine):");
        for (k, v) in rules {
            let _ = writeln!(out, "  {k:<32}{v:>8}");
        }
    }
    let _ = writeln!(out, "store: {}", data_dir.display());
    out
}
