//! The ledger read as a whole: which batches are committed, and when. It fixes what a query at
//! an `as_of` sees ([`Ledger::snapshot`]) and the data version, so that every reader (the query
//! engine, the status report, the pages) means the same by both.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::{BatchStatus, BatchSummary, Layout, LedgerEntry, StoreError};

/// The ledger's entries as read at one moment, oldest batch first.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    entries: Vec<LedgerEntry>,
}

/// The store at one instant: what a query with that `as_of` sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The effective `as_of` (µs since the epoch): the instant asked for (default now), but
    /// never later than the last commit, so that the same `as_of` later gives the same figures.
    pub as_of_us: i64,
    /// The latest committed batch with events by then, or `empty`: identifies the content.
    pub data_version: String,
    /// The newest committed batch, whatever the `as_of`: it changes whenever a batch commits.
    pub newest: String,
}

impl Snapshot {
    /// The effective `as_of` as an instant.
    pub fn as_of(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.as_of_us).unwrap_or_default()
    }

    /// The effective `as_of` as results state it (RFC 3339, microseconds, `Z`).
    pub fn as_of_text(&self) -> String {
        self.as_of()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

/// An entry's `ingested_at` in µs, if it parses.
fn ingested_us(e: &LedgerEntry) -> Option<i64> {
    DateTime::parse_from_rfc3339(&e.ingested_at)
        .ok()
        .map(|t| t.timestamp_micros())
}

impl Ledger {
    pub fn read(layout: &Layout) -> Result<Ledger, StoreError> {
        Ok(Ledger {
            entries: layout.read_ledger()?,
        })
    }

    /// Every entry, committed or rejected, oldest first.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    fn committed(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries
            .iter()
            .filter(|e| e.status == BatchStatus::Committed)
    }

    /// What a query with `as_of` (default now) sees.
    pub fn snapshot(&self, as_of: Option<DateTime<Utc>>) -> Snapshot {
        let requested = as_of.unwrap_or_else(Utc::now).timestamp_micros();
        let as_of_us = match self.committed().filter_map(ingested_us).max() {
            Some(last) => requested.min(last),
            None => requested,
        };
        let newest = self
            .committed()
            .map(|e| e.batch_id.as_str())
            .max()
            .unwrap_or("")
            .to_owned();
        let data_version = self
            .committed()
            .filter(|e| ingested_us(e).is_some_and(|t| t <= as_of_us))
            .filter(|e| e.stored > 0)
            .map(|e| e.batch_id.clone())
            .max()
            .unwrap_or_else(|| "empty".to_owned());
        Snapshot {
            as_of_us,
            data_version,
            newest,
        }
    }

    /// Calls `f` on the summary of every batch with events committed by `as_of_us`; `false`
    /// (and stops) at a batch without one, as in ledgers written before summaries existed.
    pub fn each_summary(&self, as_of_us: i64, mut f: impl FnMut(&BatchSummary)) -> bool {
        for e in self.committed().filter(|e| e.stored > 0) {
            let Some(t) = ingested_us(e) else {
                return false;
            };
            if t > as_of_us {
                continue;
            }
            let Some(s) = &e.summary else {
                return false;
            };
            f(s);
        }
        true
    }

    /// Rejected rows by rule code, over every batch.
    pub fn rejected_by_rule(&self) -> BTreeMap<String, u64> {
        let mut by_rule = BTreeMap::new();
        for e in &self.entries {
            for (r, n) in &e.rejected_by_rule {
                *by_rule.entry(r.clone()).or_default() += n;
            }
        }
        by_rule
    }
}

/// The ledger, read again only when its folder changed: every query needs it, and it only
/// changes when a batch commits (which changes the folder).
#[derive(Debug)]
pub struct LedgerCache {
    layout: Layout,
    /// The ledger as last read, with the ledger folder's mtime then.
    seen: Mutex<Option<(SystemTime, Arc<Ledger>)>>,
}

impl LedgerCache {
    pub fn new(layout: Layout) -> LedgerCache {
        LedgerCache {
            layout,
            seen: Mutex::new(None),
        }
    }

    /// The ledger now. Keyed by the folder's mtime, which a commit changes. An mtime within
    /// the last two seconds is not trusted (two commits within one tick of the file-system
    /// clock can share it; git's "racy" rule): then the ledger is read again.
    pub fn get(&self) -> Result<Arc<Ledger>, StoreError> {
        let mtime = std::fs::metadata(self.layout.ledger())
            .and_then(|m| m.modified())
            .ok();
        let settled = mtime.filter(|t| {
            SystemTime::now()
                .duration_since(*t)
                .is_ok_and(|age| age >= Duration::from_secs(2))
        });
        let mut g = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(t), Some((seen, ledger))) = (settled, g.as_ref())
            && t == *seen
        {
            return Ok(Arc::clone(ledger));
        }
        let ledger = Arc::new(Ledger::read(&self.layout)?);
        *g = settled.map(|t| (t, Arc::clone(&ledger)));
        Ok(ledger)
    }
}
