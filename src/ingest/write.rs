//! The writing stage of the ingest: each file's partitions are staged as Parquet, then the file
//! is committed with its quarantine and ledger entry, or rolled back and recorded as rejected.
//! A committed file's ids then go to the dedupe index, after the ledger entry that commits
//! them (gathered over a few files into one run), so the index never covers a batch that is
//! not committed.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::{FileError, FileReport, Format, IngestError, Msg, ReadOutcome};
use crate::privacy::{mask_file_name, mask_identifiers};
use crate::store::{BatchStatus, BatchWriter, DedupeIndex, LedgerEntry, RunBuffer, Store};

/// The writing stage: stages each file's events as Parquet, then commits or rolls it back.
pub(super) fn write_stage(
    store: &Store,
    index: &DedupeIndex,
    seen_files: &mut BTreeMap<String, String>,
    paths: &[PathBuf],
    rx: std::sync::mpsc::Receiver<Msg>,
    on_report: &mut impl FnMut(&FileReport),
) -> Result<Vec<FileReport>, IngestError> {
    let mut reports = Vec::with_capacity(paths.len());
    let mut runs = RunBuffer::new(index);
    let mut current: Option<(BatchWriter, String, i64)> = None;
    for msg in rx.iter() {
        let path = &paths[reports.len()];
        // The name is stored (ledger, quarantine) and shown (reports, pages, logs): masked.
        let shown = mask_file_name(&path.display().to_string());
        let report = match msg {
            Msg::Begin { batch_id, now_us } => {
                current = Some((store.begin(&batch_id)?, batch_id, now_us));
                continue;
            }
            Msg::Events(_) => unreachable!("the converter turns events into partitions"),
            Msg::Partitions(parts) => {
                let (w, _, _) = current.as_mut().expect("Begin comes first");
                if let Err(e) = w.write_partitions(parts) {
                    if let Some((w, _, _)) = current.take() {
                        w.abort();
                    }
                    return Err(e.into());
                }
                continue;
            }
            Msg::End(outcome) => {
                let (w, batch_id, now_us) = current.take().expect("Begin comes first");
                commit_file(
                    &mut runs, seen_files, path, &shown, &batch_id, now_us, w, *outcome,
                )?
            }
            Msg::Failed(fe) => {
                let (w, batch_id, now_us) = current.take().expect("Begin comes first");
                w.abort();
                record_rejected(store, path, &shown, batch_id, now_us, fe)?
            }
            Msg::StoreFailed(e) => {
                if let Some((w, _, _)) = current.take() {
                    w.abort();
                }
                return Err(e.into());
            }
        };
        on_report(&report);
        reports.push(report);
        if reports.len() == paths.len() {
            break;
        }
    }
    if reports.len() < paths.len() {
        // The reader stopped early without a message: it cannot happen unless it panicked.
        return Err(IngestError::WriterStopped);
    }
    runs.write()?;
    Ok(reports)
}

fn record_rejected(
    store: &Store,
    path: &Path,
    shown: &str,
    batch_id: String,
    now_us: i64,
    fe: FileError,
) -> Result<FileReport, IngestError> {
    let (sha256, bytes) = hash_file(path).unwrap_or_default();
    let message = mask_identifiers(&fe.to_string());
    store.record_rejected(&LedgerEntry {
        batch_id,
        status: BatchStatus::Rejected,
        file: shown.to_owned(),
        sha256,
        bytes,
        format: Format::from_path(path)
            .map(|f| f.as_str().to_owned())
            .unwrap_or_default(),
        read: 0,
        stored: 0,
        duplicates: 0,
        rejected: 0,
        ingested_at: rfc3339(now_us),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        error: Some(message.clone()),
        repeat_of: None,
        event_files: vec![],
        quarantine_file: None,
        rejected_by_rule: BTreeMap::new(),
        mirato_version: env!("CARGO_PKG_VERSION").to_owned(),
        summary: None,
    })?;
    tracing::warn!(file = %shown, error = %message, "file rejected whole");
    Ok(FileReport::Failed {
        file: shown.to_owned(),
        error: message,
    })
}

#[allow(clippy::too_many_arguments)]
fn commit_file(
    runs: &mut RunBuffer<'_>,
    seen_files: &mut BTreeMap<String, String>,
    path: &Path,
    shown: &str,
    batch_id: &str,
    now_us: i64,
    mut w: BatchWriter,
    o: ReadOutcome,
) -> Result<FileReport, IngestError> {
    let format = Format::from_path(path).expect("checked before reading");
    w.finish_events()?;
    let repeat_of = seen_files.get(&o.sha256).cloned();
    let quarantine_file = if repeat_of.is_none() {
        w.write_quarantine(&o.quarantine, shown, now_us)?
    } else {
        None
    };
    let rejected = o.quarantine.len() as u64;
    let entry = LedgerEntry {
        batch_id: batch_id.to_owned(),
        status: BatchStatus::Committed,
        file: shown.to_owned(),
        sha256: o.sha256.clone(),
        bytes: o.bytes,
        format: format.as_str().to_owned(),
        read: o.read,
        stored: o.stored,
        duplicates: o.duplicates,
        rejected,
        ingested_at: rfc3339(now_us),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        error: None,
        repeat_of,
        event_files: w.event_files(),
        quarantine_file,
        rejected_by_rule: o.by_rule.clone(),
        mirato_version: env!("CARGO_PKG_VERSION").to_owned(),
        summary: Some(o.summary),
    };
    debug_assert_eq!(o.read, o.stored + o.duplicates + rejected);
    w.commit(&entry)?;
    if std::env::var_os("MIRATO_FAULT_BEFORE_INDEX").is_some() {
        // For the crash tests: the batch is committed, its ids not yet in the index.
        tracing::error!("fault injection: aborting between the ledger commit and the index");
        std::process::abort();
    }
    // Committed: its ids go on disk (with a few more files'), then leave the reading stage's
    // memory.
    runs.add(batch_id, o.ids)?;
    seen_files
        .entry(o.sha256)
        .or_insert_with(|| batch_id.to_owned());
    tracing::info!(
        file = %shown,
        read = o.read,
        stored = o.stored,
        duplicates = o.duplicates,
        rejected,
        "file ingested"
    );
    Ok(FileReport::Read {
        file: shown.to_owned(),
        read: o.read,
        stored: o.stored,
        duplicates: o.duplicates,
        rejected,
        rejected_by_rule: o.by_rule,
        batch_id: batch_id.to_owned(),
    })
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("valid instant")
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((hex::encode(h.finalize()), n))
}
