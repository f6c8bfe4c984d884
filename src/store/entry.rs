//! One ledger entry: what the ledger records of an ingested file, how the entry is written (temp
//! file, sync, rename; after the batch's table version, which commits it) and how the entries
//! are read back.

use std::collections::HashSet;
use std::fs;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::disk::{create_private_file, sync_dir};
use super::schema::date_from_days;
use super::{Layout, StoreError, io};
use crate::model::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// The file was read; its valid rows are in the store.
    Committed,
    /// The file could not be read at all; nothing of it was stored.
    Rejected,
}

/// One ingested file, as the ledger records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LedgerEntry {
    pub batch_id: String,
    pub status: BatchStatus,
    /// The path as given on the command line or found in a folder.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub format: String,
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Every row's `ingested_at` (RFC 3339, UTC).
    pub ingested_at: String,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when the same bytes were ingested before: quarantine is not written twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<String>,
    #[serde(default)]
    pub event_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_file: Option<String>,
    /// Rejected rows by rule code.
    #[serde(default)]
    pub rejected_by_rule: std::collections::BTreeMap<String, u64>,
    pub mirato_version: String,
    /// Where and up to when the stored events lie. Absent in ledgers written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<BatchSummary>,
}

/// What a batch added to the store that every page's filters need: recorded at ingest so that
/// a page never scans all events for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BatchSummary {
    /// The latest `occurred_date` stored.
    pub latest_event: Option<NaiveDate>,
    /// Every (province sigla, CPI code) pair stored, sorted.
    pub cpis: Vec<(String, String)>,
}

/// Builds a [`BatchSummary`] from the events as they pass to the writer.
#[derive(Default)]
pub struct SummaryBuilder {
    latest: Option<i32>,
    cpis: HashSet<(&'static str, Arc<str>)>,
}

impl SummaryBuilder {
    pub fn add(&mut self, events: &[Event]) {
        for e in events {
            self.latest = self.latest.max(Some(e.occurred_date));
            // Most events repeat a pair already seen: look up before cloning the key.
            if !self.cpis.contains(&(e.province, Arc::clone(&e.cpi_code))) {
                self.cpis.insert((e.province, Arc::clone(&e.cpi_code)));
            }
        }
    }

    pub fn finish(self) -> BatchSummary {
        let mut cpis: Vec<(String, String)> = self
            .cpis
            .into_iter()
            .map(|(p, c)| (p.to_owned(), c.to_string()))
            .collect();
        cpis.sort_unstable();
        BatchSummary {
            latest_event: self.latest.and_then(date_from_days),
            cpis,
        }
    }
}

impl Layout {
    /// Ledger entries, oldest first. Temp files of an interrupted commit are not entries.
    pub fn read_ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let dir = self.ledger();
        let mut out = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("cannot list", &dir)(e)),
        };
        for ent in rd {
            let path = ent.map_err(io("cannot list", &dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(io("cannot read", &path))?;
            let mut entry: LedgerEntry = match serde_json::from_str(&text) {
                Ok(e) => e,
                // A damaged entry (a hand edit, bit rot): the table's log keeps a copy of it.
                Err(source) => {
                    let batch = path.file_stem().unwrap_or_default().to_string_lossy();
                    match super::delta::logged_entry(self, &batch)? {
                        Some(e) => {
                            tracing::warn!(
                                entry = %path.display(),
                                error = %source,
                                "unreadable ledger entry: using the copy in the events table's log; `mirato check --repair` rewrites it"
                            );
                            e
                        }
                        None => return Err(StoreError::Ledger { path, source }),
                    }
                }
            };
            // Entries written before file names were masked at ingest are masked when read.
            entry.file = crate::privacy::mask_file_name(&entry.file);
            out.push(entry);
        }
        out.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
        Ok(out)
    }
}

/// Writes an entry durably. A batch, or a file rejected whole, is committed by its table
/// version (see `delta`), which holds this entry too, so an entry lost to a crash is written
/// again on open.
pub(super) fn write_ledger_entry(layout: &Layout, entry: &LedgerEntry) -> Result<(), StoreError> {
    let dir = layout.ledger();
    let tmp = dir.join(format!("{}.tmp", entry.batch_id));
    let dst = dir.join(format!("{}.json", entry.batch_id));
    let text = serde_json::to_string_pretty(entry).expect("ledger entries serialise");
    {
        use std::io::Write;
        let mut f = create_private_file(&tmp).map_err(io("cannot write", &tmp))?;
        f.write_all(text.as_bytes())
            .map_err(io("cannot write", &tmp))?;
        f.sync_all().map_err(io("cannot sync", &tmp))?;
    }
    fs::rename(&tmp, &dst).map_err(io("cannot commit", &dst))?;
    sync_dir(&dir);
    Ok(())
}
