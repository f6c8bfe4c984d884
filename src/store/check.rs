//! Verifying a data folder against its own records (`mirato check`): every file the events
//! table's current version lists is there, of the size the table recorded, readable to its last
//! row, of the events' schema, in the partition its path names; the ledger's entries are
//! readable, one per committed batch, and their stored rows add up to the rows in the files;
//! quarantine files and stored views are readable.
//!
//! Repair (`--repair`) rebuilds what is derived or recorded twice, and nothing else: a ledger
//! entry from the copy the table's log keeps of it, a stored view by removing it (the engine
//! builds it again). A damaged or missing event file is reported with the batch it belongs to;
//! it is never removed, since its rows exist nowhere else.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use datafusion::arrow::array::{Array, Date32Array};
use datafusion::arrow::datatypes::Schema;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::delta::{self, Recorded};
use super::entry::write_ledger_entry;
use super::{BatchStatus, Layout, LedgerEntry, StoreError, batch_of, events_schema, io};

/// One thing found wrong.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The file, relative to the data folder.
    pub path: String,
    pub problem: String,
    /// What `--repair` did about it, if anything.
    pub repaired: Option<String>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    pub event_files: usize,
    pub event_rows: u64,
    pub ledger_entries: usize,
    pub quarantine_files: usize,
    pub view_files: usize,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// What is still wrong after any repair.
    pub fn unrepaired(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.repaired.is_none())
            .count()
    }
}

/// What reading a Parquet file to its end found.
struct FileFacts {
    rows: u64,
    /// (year, month) of the earliest and latest `occurred_date`, for event files.
    months: Option<((i32, u32), (i32, u32))>,
}

/// Reads a Parquet file to its last row. With `schema`, its columns must be those (names and
/// types).
fn read_whole(path: &Path, schema: Option<&Schema>) -> Result<FileFacts, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("unreadable footer: {e}"))?;
    if let Some(want) = schema {
        let have = builder.schema();
        // A file written before the employers' side lacks its columns: they read as null.
        for f in want.fields().iter().take(
            if have
                .field_with_name(want.fields()[crate::store::V1_COLUMNS].name())
                .is_ok()
            {
                want.fields().len()
            } else {
                crate::store::V1_COLUMNS
            },
        ) {
            match have.field_with_name(f.name()) {
                Ok(h) if h.data_type() == f.data_type() => {}
                Ok(h) => {
                    return Err(format!(
                        "column {} is {}, the events' schema says {}",
                        f.name(),
                        h.data_type(),
                        f.data_type()
                    ));
                }
                Err(_) => return Err(format!("column {} is missing", f.name())),
            }
        }
    }
    let date_col = builder.schema().index_of("occurred_date").ok();
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| format!("unreadable: {e}"))?;
    let mut facts = FileFacts {
        rows: 0,
        months: None,
    };
    let (mut lo, mut hi) = (i32::MAX, i32::MIN);
    for batch in reader {
        let batch = batch.map_err(|e| format!("damaged data after {} rows: {e}", facts.rows))?;
        facts.rows += batch.num_rows() as u64;
        if let Some(d) =
            date_col.and_then(|i| batch.column(i).as_any().downcast_ref::<Date32Array>())
        {
            for v in d.iter().flatten() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if lo <= hi {
        facts.months = Some((year_month(lo), year_month(hi)));
    }
    Ok(facts)
}

fn year_month(days: i32) -> (i32, u32) {
    use chrono::Datelike;
    let d = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or_default();
    (d.year(), d.month())
}

/// The (year, month) a store path names (`…/year=2024/month=03/…`).
fn path_month(path: &str) -> Option<(i32, u32)> {
    let part = |key: &str| {
        path.split('/')
            .find_map(|c| c.strip_prefix(key))
            .and_then(|v| v.parse::<u32>().ok())
    };
    Some((part("year=")? as i32, part("month=")?))
}

/// What the table's log says: the files its current version lists (table path → recorded
/// size) and the ledger entries it keeps (by batch).
#[derive(Default)]
struct TableState {
    /// Each listed file: its size and, when committed with one, its XXH3-64.
    files: BTreeMap<String, (u64, Option<u64>)>,
    entries: HashMap<String, LedgerEntry>,
}

/// Reads the table's log; a version that cannot be read is a finding.
fn table_state(layout: &Layout, findings: &mut Vec<Finding>) -> Result<TableState, StoreError> {
    let TableState {
        mut files,
        mut entries,
    } = TableState::default();
    for v in delta::versions(layout)? {
        let rel = delta::version_path(v);
        let path = layout.root.join(&rel);
        let parsed = fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| delta::parse_version(&t, &path).map_err(|e| e.to_string()));
        match parsed {
            Ok(version) => {
                for (p, _) in version.removes {
                    files.remove(&p);
                }
                for (p, size) in version.adds {
                    let hash = version.hashes.get(&p).copied();
                    files.insert(p, (size, hash));
                }
                if let Some(Recorded::Batch(e)) = version.recorded {
                    entries.insert(e.batch_id.clone(), *e);
                }
            }
            Err(e) => findings.push(Finding {
                path: rel,
                problem: format!("a version of the events table's log is unreadable: {e}"),
                repaired: None,
            }),
        }
    }
    Ok(TableState { files, entries })
}

/// The event files the table lists that are missing, of another size, or unreadable: what a
/// query that failed to read the store reports (see `query`).
pub fn damaged_event_files(layout: &Layout) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    let files = table_state(layout, &mut findings)?.files;
    let schema = events_schema();
    for (table_path, listed) in &files {
        if let Err(problem) = check_event_file(layout, table_path, *listed, &schema) {
            findings.push(problem);
        }
    }
    Ok(findings)
}

fn check_event_file(
    layout: &Layout,
    table_path: &str,
    (size, hash): (u64, Option<u64>),
    schema: &Schema,
) -> Result<FileFacts, Finding> {
    let path = layout.table().join(table_path);
    let rel = format!("generations/{table_path}");
    let batch = batch_of(&path).unwrap_or_default().to_owned();
    let finding = |problem: String| Finding {
        path: rel.clone(),
        problem: format!("{problem} (rows of batch {batch}: restore the file from a backup)"),
        repaired: None,
    };
    let on_disk = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) => {
            return Err(finding(format!(
                "listed by the events table but missing: {e}"
            )));
        }
    };
    if on_disk != size {
        return Err(finding(format!(
            "{on_disk} bytes, the events table recorded {size}"
        )));
    }
    // Bit rot or an edit of the same length can still decode (a flipped value of a plain
    // page is another valid value): the checksum committed with the file tells.
    if let Some(want) = hash {
        match delta::file_hash(&path) {
            Ok(got) if got == want => {}
            Ok(got) => {
                return Err(finding(format!(
                    "its bytes changed since its commit (XXH3 {got:016x}, the events table recorded {want:016x})"
                )));
            }
            Err(e) => return Err(finding(format!("unreadable: {e}"))),
        }
    }
    let facts = read_whole(&path, Some(schema)).map_err(finding)?;
    if let (Some(want), Some((lo, hi))) = (path_month(table_path), facts.months)
        && (lo != want || hi != want)
    {
        return Err(finding(format!(
            "holds events of {}-{:02} to {}-{:02}, outside its partition {}-{:02}",
            lo.0, lo.1, hi.0, hi.1, want.0, want.1
        )));
    }
    Ok(facts)
}

/// Checks the whole data folder; with `repair`, rebuilds what can be rebuilt (the caller holds
/// the store's lock).
pub fn check(layout: &Layout, repair: bool) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    let mut findings = Vec::new();
    let TableState {
        files,
        entries: logged,
    } = table_state(layout, &mut findings)?;
    let schema = events_schema();
    for (table_path, listed) in &files {
        report.event_files += 1;
        match check_event_file(layout, table_path, *listed, &schema) {
            Ok(facts) => report.event_rows += facts.rows,
            Err(f) => findings.push(f),
        }
    }

    // The ledger: each entry readable, each committed batch of the log present.
    let dir = layout.ledger();
    let mut stored = 0;
    let mut present = std::collections::HashSet::new();
    let mut quarantine = Vec::new();
    for ent in fs::read_dir(&dir).map_err(io("cannot list", &dir))? {
        let path = ent.map_err(io("cannot list", &dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        report.ledger_entries += 1;
        let batch = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = format!("ledger/{batch}.json");
        let parsed = fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<LedgerEntry>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(e) => {
                if e.status == BatchStatus::Committed {
                    stored += e.stored;
                    quarantine.extend(e.quarantine_file.clone());
                }
                present.insert(batch);
            }
            Err(problem) => {
                // The log's copy of the entry stands in for it in the counts.
                let logged_entry = logged.get(&batch);
                if let Some(entry) = logged_entry.filter(|e| e.status == BatchStatus::Committed) {
                    stored += entry.stored;
                    quarantine.extend(entry.quarantine_file.clone());
                }
                present.insert(batch.clone());
                let repaired = match logged_entry {
                    Some(entry) if repair => {
                        write_ledger_entry(layout, entry)?;
                        Some("rewritten from the events table's log".to_owned())
                    }
                    _ => None,
                };
                findings.push(Finding {
                    path: rel,
                    problem: format!("unreadable ledger entry: {problem}"),
                    repaired,
                });
            }
        }
    }
    for (batch, entry) in &logged {
        if present.contains(batch) {
            continue;
        }
        let repaired = if repair {
            write_ledger_entry(layout, entry)?;
            if entry.status == BatchStatus::Committed {
                stored += entry.stored;
            }
            Some("rewritten from the events table's log".to_owned())
        } else {
            None
        };
        findings.push(Finding {
            path: format!("ledger/{batch}.json"),
            problem: "missing: the events table committed this batch".into(),
            repaired,
        });
    }
    let damaged_events = findings.iter().any(|f| f.path.starts_with("generations/"));
    if stored != report.event_rows && !damaged_events {
        findings.push(Finding {
            path: "ledger".into(),
            problem: format!(
                "the ledger counts {stored} stored rows, the event files hold {}",
                report.event_rows
            ),
            repaired: None,
        });
    }

    // Quarantine files of committed batches.
    for q in quarantine {
        report.quarantine_files += 1;
        let path = layout.root.join(&q);
        if let Err(problem) = read_whole(&path, None) {
            findings.push(Finding {
                path: q,
                problem: format!("quarantine file: {problem} (restore it from a backup)"),
                repaired: None,
            });
        }
    }

    // Stored views: derived, so a damaged one is removed and built again when next needed.
    for path in super::parquet_files(&layout.views())? {
        report.view_files += 1;
        if let Err(problem) = read_whole(&path, None) {
            let repaired = if repair {
                fs::remove_file(&path).map_err(io("cannot remove", &path))?;
                Some("removed: the engine builds it again".to_owned())
            } else {
                None
            };
            findings.push(Finding {
                path: relative(layout, &path),
                problem: format!("stored view: {problem}"),
                repaired,
            });
        }
    }
    report.findings = findings;
    Ok(report)
}

fn relative(layout: &Layout, path: &Path) -> String {
    path.strip_prefix(&layout.root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
