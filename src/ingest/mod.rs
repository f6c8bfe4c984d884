//! Ingest: read CSV / JSON Lines files (gzip or not), validate every row, pseudonymise, dedupe
//! against the store, and commit each file atomically with its quarantine and ledger entry.
//!
//! This file holds what callers see (the errors, the input formats, the reports, the
//! [`Ingester`]) and the pipeline that joins three stages on three threads: `read` (parse,
//! validate, dedupe; the formats themselves in `formats`), the converter below (rows to Arrow
//! columns), and `write` (stage, commit or roll back each file).

mod formats;
mod read;
pub mod validate;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

use chrono::Utc;
use serde::Serialize;

use crate::model::Event;
use crate::privacy::{Key, Pseudonymiser, mask_file_name};
use crate::store::{
    BatchStatus, BatchSummary, Dedupe, FileIds, PartitionBatch, QuarantineRow, Store, StoreError,
    SummaryBuilder, partition_batches,
};
use read::Reader;
use validate::Validator;
use write::write_stage;

/// Why a whole file was refused. Nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the file: {0}")]
    Io(std::io::Error),
    #[error("not a valid gzip file: {0}")]
    Gzip(std::io::Error),
    #[error("the file is not UTF-8 text (first invalid byte on line {line})")]
    NotUtf8 { line: u64 },
    #[error("no header row: {0}")]
    NoHeader(String),
    /// The header names the contract's columns, but with another separator: what Excel writes
    /// as "CSV" in an Italian locale (`;`, since `,` is the decimal mark there).
    #[error(
        "the header is separated by '{}', the contract expects ',': save the file with commas (in Excel, \"CSV UTF-8\" with ',' as the list separator)",
        .0.escape_default()
    )]
    Separator(char),
    #[error("missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    #[error("unknown file type: expected a name ending in .csv or .jsonl (optionally .gz)")]
    UnknownFormat,
    #[error("malformed CSV on line {line}: {message}")]
    Csv { line: u64, message: String },
}

/// Errors that stop the whole ingest: the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {}: {source}", mask_file_name(&.path.display().to_string()))]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the Parquet writer stopped without an error; nothing of the file was stored")]
    WriterStopped,
    #[error("no CSV or JSONL files found in {}", mask_file_name(&.0.display().to_string()))]
    NoFiles(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// From the file name: `.csv`, `.jsonl` / `.ndjson`, each optionally `.gz`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            Some(Format::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(Format::Jsonl)
        } else {
            None
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// The outcome for one file, in the shape `--format json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum FileReport {
    Read {
        file: String,
        read: u64,
        stored: u64,
        duplicates: u64,
        rejected: u64,
        #[serde(skip)]
        rejected_by_rule: BTreeMap<String, u64>,
        #[serde(skip)]
        batch_id: String,
    },
    Failed {
        file: String,
        error: String,
    },
}

/// Expands the command line: files as given, folders walked for `.csv`/`.jsonl` files (sorted,
/// so a folder ingests in a stable order).
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, IngestError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| IngestError::Input {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let rd = std::fs::read_dir(&d).map_err(|source| IngestError::Input {
                    path: d.clone(),
                    source,
                })?;
                for ent in rd {
                    let path = ent
                        .map_err(|source| IngestError::Input {
                            path: d.clone(),
                            source,
                        })?
                        .path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if Format::from_path(&path).is_some() {
                        found.push(path);
                    }
                }
            }
            if found.is_empty() {
                return Err(IngestError::NoFiles(p.clone()));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Ingests files into one store, deduping against the store's on-disk index and the files of
/// the run not yet in it.
pub struct Ingester<'s> {
    store: &'s Store,
    dedupe: Dedupe<'s>,
    /// Set when a run stopped on an error: what memory holds may then differ from what was
    /// committed, so the next run starts from the disk index brought up to the ledger.
    resync: bool,
    validator: Validator,
    /// sha256 -> batch id of files already committed.
    seen_files: BTreeMap<String, String>,
    last_batch_us: i64,
    pub progress: bool,
}

/// What the reading stage hands back when a file has been read to the end.
struct ReadOutcome {
    quarantine: Vec<QuarantineRow>,
    read: u64,
    stored: u64,
    duplicates: u64,
    by_rule: BTreeMap<String, u64>,
    sha256: String,
    bytes: u64,
    /// The ids the file stores, for the disk index once the file is committed.
    ids: Arc<FileIds>,
    /// Filled by the converting stage, which sees every stored event.
    summary: BatchSummary,
}

/// Messages from the reading stage to the writing stage, file after file in order.
enum Msg {
    Begin {
        batch_id: String,
        now_us: i64,
    },
    Events(Vec<Event>),
    Partitions(Vec<PartitionBatch>),
    End(Box<ReadOutcome>),
    Failed(FileError),
    /// The dedupe index could not be read: the run stops, nothing of the file is stored.
    StoreFailed(StoreError),
}

/// Events per chunk handed from the reading to the writing stage.
const CHUNK_EVENTS: usize = 8 * 1024;
/// Messages in flight between the stages: bounds memory whatever the file size.
const CHUNKS_IN_FLIGHT: usize = 24;

impl<'s> Ingester<'s> {
    pub fn new(store: &'s Store, key: Key) -> Result<Self, IngestError> {
        // An index opened by an earlier ingester on this store may lack what that one failed
        // to write: bring it up to the ledger again.
        let (index, opened) = store.dedupe_index_opened()?;
        let ledger = store.layout().read_ledger()?;
        // A batch's `ingested_at` is never before the last committed one, whatever the clocks
        // of the machines that write to one bucket say: `as_of` stays a cut in commit order.
        let last_batch_us = ledger
            .iter()
            .filter_map(|e| chrono::DateTime::parse_from_rfc3339(&e.ingested_at).ok())
            .map(|t| t.timestamp_micros())
            .max()
            .unwrap_or(0);
        let seen_files = ledger
            .into_iter()
            .filter(|e| e.status == BatchStatus::Committed)
            .map(|e| (e.sha256, e.batch_id))
            .collect();
        tracing::debug!(events = index.approximate_len(), "opened the dedupe index");
        Ok(Ingester {
            store,
            dedupe: Dedupe::new(index),
            resync: !opened,
            validator: Validator::new(Pseudonymiser::new(&key), Utc::now().timestamp_micros()),
            seen_files,
            last_batch_us,
            progress: false,
        })
    }

    /// Ingests one file. A file-level problem is reported, not raised; only store failures are
    /// errors.
    pub fn ingest_file(&mut self, path: &Path) -> Result<FileReport, IngestError> {
        let mut reports = self.ingest_files(std::slice::from_ref(&path.to_path_buf()), |_| {})?;
        Ok(reports.remove(0))
    }

    /// Ingests files in order, each atomically. Two stages overlap: a scoped thread reads,
    /// validates and dedupes file after file, while this thread writes and commits them, so
    /// the next file is being read while the previous one is committed. `on_report` sees each
    /// file's report as soon as it is committed.
    pub fn ingest_files(
        &mut self,
        paths: &[PathBuf],
        mut on_report: impl FnMut(&FileReport),
    ) -> Result<Vec<FileReport>, IngestError> {
        if self.resync {
            self.dedupe.reset();
            self.store.resync_dedupe_index()?;
            self.resync = false;
        }
        let (tx, rx) = sync_channel::<Msg>(CHUNKS_IN_FLIGHT);
        let (recycle_tx, recycled) = std::sync::mpsc::channel::<Vec<Event>>();
        let progress = self.progress;
        let mut last_batch_us = self.last_batch_us;
        let disk = self.dedupe.disk();
        let mut reader = Reader::new(&mut self.validator, &mut self.dedupe, tx, recycled);
        let store = self.store;
        let seen_files = &mut self.seen_files;
        let result = std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("mirato-read".into())
                .spawn_scoped(scope, move || {
                    for path in paths {
                        let now = Utc::now().timestamp_micros().max(last_batch_us + 1);
                        last_batch_us = now;
                        if reader.read_one(path, now, progress).is_err() {
                            break; // the writer stopped; it reports why
                        }
                    }
                    last_batch_us
                });
            let handle = match spawned {
                Ok(h) => h,
                Err(e) => {
                    return Err(IngestError::Input {
                        path: PathBuf::from("<reader thread>"),
                        source: e,
                    });
                }
            };
            let (parts_tx, parts_rx) = sync_channel::<Msg>(CHUNKS_IN_FLIGHT);
            let converter = std::thread::Builder::new()
                .name("mirato-convert".into())
                .spawn_scoped(scope, move || {
                    convert_stage(rx, parts_tx, recycle_tx, store.record_seed())
                });
            let written = match converter {
                Ok(_) => write_stage(store, disk, seen_files, paths, parts_rx, &mut on_report),
                Err(e) => Err(IngestError::Input {
                    path: PathBuf::from("<converter thread>"),
                    source: e,
                }),
            };
            let last = handle.join().expect("the reading stage does not panic");
            written.map(|r| (r, last))
        });
        self.dedupe.prune();
        let (reports, last) = result.inspect_err(|_| self.resync = true)?;
        self.last_batch_us = last;
        Ok(reports)
    }
}

/// The middle stage: sorts each chunk and turns rows into Arrow columns by month partition, so
/// that the reading and writing threads each keep to their own work. Other messages pass as they
/// are.
fn convert_stage(
    rx: std::sync::mpsc::Receiver<Msg>,
    tx: SyncSender<Msg>,
    recycle: std::sync::mpsc::Sender<Vec<Event>>,
    record_seed: u64,
) {
    let mut current: Option<(String, i64)> = None;
    let mut summary = SummaryBuilder::default();
    for msg in rx.iter() {
        let out = match msg {
            Msg::Begin { batch_id, now_us } => {
                current = Some((batch_id.clone(), now_us));
                summary = SummaryBuilder::default();
                Msg::Begin { batch_id, now_us }
            }
            Msg::End(mut outcome) => {
                outcome.summary = std::mem::take(&mut summary).finish();
                Msg::End(outcome)
            }
            Msg::Events(mut events) => {
                summary.add(&events);
                let (batch_id, now_us) = current.as_ref().expect("Begin comes first");
                // Validated events always fit the schema: an error here is a bug.
                let parts = partition_batches(&events, batch_id, *now_us, record_seed)
                    .expect("validated events convert to the events schema");
                events.clear();
                let _ = recycle.send(events);
                Msg::Partitions(parts)
            }
            other => other,
        };
        if tx.send(out).is_err() {
            return; // the writer stopped; it reports why
        }
    }
}
