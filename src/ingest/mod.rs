//! Ingest: read CSV / JSON Lines files (gzip or not), validate every row, pseudonymise, dedupe
//! against the store, and commit each file atomically with its quarantine and ledger entry.

pub mod validate;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Event, Field, REQUIRED_COLUMNS};
use crate::privacy::{Key, MASK, Pseudonymiser, mask_file_name, mask_identifiers};
use crate::store::{
    BatchStatus, BatchSummary, BatchWriter, DedupeIndex, LedgerEntry, PartitionBatch,
    QuarantineRow, Seen, Store, StoreError, SummaryBuilder, partition_batches,
};
use validate::{RawRow, Validator, Violation};

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

/// Reads raw bytes while hashing them, so the file is read once.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Ingests files into one store, keeping the dedupe index across files.
pub struct Ingester<'s> {
    store: &'s Store,
    index: DedupeIndex,
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
    /// Filled by the converting stage, which sees every stored event.
    summary: BatchSummary,
}

/// Messages from the reading stage to the writing stage, file after file in order.
enum Msg {
    Begin { batch_id: String, now_us: i64 },
    Events(Vec<Event>),
    Partitions(Vec<PartitionBatch>),
    End(Box<ReadOutcome>),
    Failed(FileError),
}

/// The reading stage's state: it parses, validates and dedupes, and passes valid events on in
/// chunks to the writing stage.
struct Reader<'a> {
    validator: &'a mut Validator,
    index: &'a mut DedupeIndex,
    tx: SyncSender<Msg>,
    /// Emptied chunks coming back from the converter, so their memory is reused rather than
    /// faulted in afresh.
    recycled: std::sync::mpsc::Receiver<Vec<Event>>,
    chunk: Vec<Event>,
    quarantine: Vec<QuarantineRow>,
    /// Index keys added by the current file, removed again if the file fails.
    inserted: Vec<u128>,
    read: u64,
    stored: u64,
    duplicates: u64,
    by_rule: BTreeMap<String, u64>,
}

/// Events per chunk handed from the reading to the writing stage.
const CHUNK_EVENTS: usize = 8 * 1024;
/// Messages in flight between the stages: bounds memory whatever the file size.
const CHUNKS_IN_FLIGHT: usize = 24;

impl<'s> Ingester<'s> {
    pub fn new(store: &'s Store, key: Key) -> Result<Self, IngestError> {
        let index = store.load_index()?;
        let seen_files = store
            .layout()
            .read_ledger()?
            .into_iter()
            .filter(|e| e.status == BatchStatus::Committed)
            .map(|e| (e.sha256, e.batch_id))
            .collect();
        tracing::debug!(events = index.len(), "loaded the dedupe index");
        Ok(Ingester {
            store,
            index,
            validator: Validator::new(Pseudonymiser::new(&key), Utc::now().timestamp_micros()),
            seen_files,
            last_batch_us: 0,
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
        let (tx, rx) = sync_channel::<Msg>(CHUNKS_IN_FLIGHT);
        let (recycle_tx, recycled) = std::sync::mpsc::channel::<Vec<Event>>();
        // Growing a large hash table rehashes it and touches fresh pages each time: reserve
        // for the expected rows up front (about 140 bytes a CSV row, 5x less gzipped).
        let expected: u64 = paths
            .iter()
            .filter_map(|p| {
                let len = std::fs::metadata(p).ok()?.len();
                let gz = p.extension().is_some_and(|e| e == "gz");
                Some(if gz { len / 30 } else { len / 140 })
            })
            .sum();
        self.index.reserve(expected.min(50_000_000) as usize);
        let progress = self.progress;
        let mut last_batch_us = self.last_batch_us;
        let mut reader = Reader {
            validator: &mut self.validator,
            index: &mut self.index,
            tx,
            recycled,
            chunk: Vec::with_capacity(CHUNK_EVENTS),
            quarantine: Vec::new(),
            inserted: Vec::new(),
            read: 0,
            stored: 0,
            duplicates: 0,
            by_rule: BTreeMap::new(),
        };
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
                Ok(_) => write_stage(store, seen_files, paths, parts_rx, &mut on_report),
                Err(e) => Err(IngestError::Input {
                    path: PathBuf::from("<converter thread>"),
                    source: e,
                }),
            };
            let last = handle.join().expect("the reading stage does not panic");
            written.map(|r| (r, last))
        });
        let (reports, last) = result?;
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

/// The writing stage: stages each file's events as Parquet, then commits or rolls it back.
fn write_stage(
    store: &Store,
    seen_files: &mut BTreeMap<String, String>,
    paths: &[PathBuf],
    rx: std::sync::mpsc::Receiver<Msg>,
    on_report: &mut impl FnMut(&FileReport),
) -> Result<Vec<FileReport>, IngestError> {
    let mut reports = Vec::with_capacity(paths.len());
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
                commit_file(seen_files, path, &shown, &batch_id, now_us, w, *outcome)?
            }
            Msg::Failed(fe) => {
                let (w, batch_id, now_us) = current.take().expect("Begin comes first");
                w.abort();
                record_rejected(store, path, &shown, batch_id, now_us, fe)?
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

fn commit_file(
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

impl Reader<'_> {
    /// Reads one file and sends its messages. `Err` only when the writer has stopped.
    fn read_one(&mut self, path: &Path, now_us: i64, progress: bool) -> Result<(), ()> {
        let ts = chrono::DateTime::from_timestamp_micros(now_us).expect("valid now");
        // An unkeyed hash of the raw name would let a guessed identifier be confirmed.
        let shown = mask_file_name(&path.display().to_string());
        let tag = xxhash_rust::xxh3::xxh3_64(shown.as_bytes()) as u32;
        let batch_id = format!("{}-{tag:08x}", ts.format("%Y%m%dT%H%M%S%6fZ"));
        self.send(Msg::Begin { batch_id, now_us })?;
        self.validator.set_now(now_us);
        self.chunk.clear();
        self.quarantine = Vec::new();
        self.inserted.clear();
        (self.read, self.stored, self.duplicates) = (0, 0, 0);
        self.by_rule = BTreeMap::new();
        let result = (|| {
            let format = Format::from_path(path).ok_or(Failure::File(FileError::UnknownFormat))?;
            let file = File::open(path).map_err(|e| Failure::File(FileError::Io(e)))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let pb = progress_bar(progress, size, &shown);
            let r = self.read_file(file, format, &pb);
            pb.finish_and_clear();
            r
        })();
        match result {
            Ok((sha256, bytes)) => {
                let outcome = ReadOutcome {
                    quarantine: std::mem::take(&mut self.quarantine),
                    read: self.read,
                    stored: self.stored,
                    duplicates: self.duplicates,
                    by_rule: std::mem::take(&mut self.by_rule),
                    sha256,
                    bytes,
                    summary: BatchSummary::default(),
                };
                self.send(Msg::End(Box::new(outcome)))
            }
            Err(Failure::File(fe)) => {
                for &key in &self.inserted {
                    self.index.remove(key);
                }
                self.send(Msg::Failed(fe))
            }
            Err(Failure::WriterGone) => Err(()),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), ()> {
        self.tx.send(msg).map_err(|_| ())
    }

    /// Reads the whole file; returns its sha256 and size.
    fn read_file(
        &mut self,
        file: File,
        format: Format,
        pb: &indicatif::ProgressBar,
    ) -> Result<(String, u64), Failure> {
        let mut raw = BufReader::with_capacity(
            256 * 1024,
            HashingReader {
                inner: pb.wrap_read(file),
                hasher: Sha256::new(),
                bytes: 0,
            },
        );
        let gz = raw
            .fill_buf()
            .map(|b| b.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false);
        {
            let reader: Box<dyn BufRead + '_> = if gz {
                Box::new(BufReader::with_capacity(
                    256 * 1024,
                    flate2::bufread::MultiGzDecoder::new(&mut raw),
                ))
            } else {
                Box::new(&mut raw)
            };
            match format {
                Format::Csv => self.read_csv(reader, gz)?,
                Format::Jsonl => self.read_jsonl(reader, gz)?,
            }
        }
        self.flush()?;
        // Drain what the parser left (e.g. trailing bytes) so the hash covers the whole file.
        let _ = std::io::copy(&mut raw, &mut std::io::sink());
        let hashing = raw.into_inner();
        Ok((hex::encode(hashing.hasher.finalize()), hashing.bytes))
    }

    fn flush(&mut self) -> Result<(), Failure> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let fresh = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_EVENTS));
        let chunk = std::mem::replace(&mut self.chunk, fresh);
        // A closed channel means the writer failed; it reports why.
        self.tx
            .send(Msg::Events(chunk))
            .map_err(|_| Failure::WriterGone)
    }

    fn read_csv(&mut self, reader: Box<dyn BufRead + '_>, gz: bool) -> Result<(), Failure> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let mut rec = csv::ByteRecord::new();
        let csv_err = |e: csv::Error, gz: bool| -> Failure {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            match e.into_kind() {
                csv::ErrorKind::Io(io) if gz => Failure::File(FileError::Gzip(io)),
                csv::ErrorKind::Io(io) => Failure::File(FileError::Io(io)),
                other => Failure::File(FileError::Csv {
                    line,
                    message: format!("{other:?}"),
                }),
            }
        };
        if !rdr.read_byte_record(&mut rec).map_err(|e| csv_err(e, gz))? {
            return Err(Failure::File(FileError::NoHeader(
                "the file is empty".into(),
            )));
        }
        let mut names: Vec<String> = Vec::with_capacity(rec.len());
        for (i, f) in rec.iter().enumerate() {
            let f = if i == 0 {
                f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f)
            } else {
                f
            };
            let s = std::str::from_utf8(f)
                .map_err(|_| Failure::File(FileError::NotUtf8 { line: 1 }))?;
            names.push(s.trim().to_owned());
        }
        let map: Vec<Option<Field>> = names.iter().map(|n| Field::from_name(n)).collect();
        if map.iter().all(Option::is_none) {
            if let Some(sep) = other_separator(&names) {
                return Err(Failure::File(FileError::Separator(sep)));
            }
            return Err(Failure::File(FileError::NoHeader(
                "the first line names none of the contract's columns (event_id, event_type, ...)"
                    .into(),
            )));
        }
        let missing: Vec<&'static str> = REQUIRED_COLUMNS
            .iter()
            .filter(|f| !map.contains(&Some(**f)))
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            return Err(Failure::File(FileError::MissingColumns(missing)));
        }
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_err(e, gz)),
            }
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let mut row = RawRow::default();
            for (i, f) in rec.iter().enumerate() {
                let s = std::str::from_utf8(f)
                    .map_err(|_| Failure::File(FileError::NotUtf8 { line }))?;
                if let Some(Some(field)) = map.get(i) {
                    row.set(*field, Cow::Borrowed(s));
                }
            }
            let shape_error = (rec.len() != names.len()).then(|| {
                Violation::new(
                    "csv.field_count",
                    format!(
                        "the row has {} fields but the header has {}",
                        rec.len(),
                        names.len()
                    ),
                )
            });
            let to_json = || {
                let mut obj = serde_json::Map::new();
                for (i, f) in rec.iter().enumerate() {
                    let name = names.get(i).cloned().unwrap_or_else(|| format!("_{i}"));
                    let text = String::from_utf8_lossy(f).into_owned();
                    obj.insert(name, serde_json::Value::String(text));
                }
                obj
            };
            self.accept(line, &row, shape_error, to_json)?;
        }
        Ok(())
    }

    fn read_jsonl(&mut self, mut reader: Box<dyn BufRead + '_>, gz: bool) -> Result<(), Failure> {
        let mut buf = Vec::with_capacity(4096);
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| {
                if gz {
                    Failure::File(FileError::Gzip(e))
                } else {
                    Failure::File(FileError::Io(e))
                }
            })?;
            if n == 0 {
                break;
            }
            line += 1;
            let text = std::str::from_utf8(&buf)
                .map_err(|_| Failure::File(FileError::NotUtf8 { line }))?;
            let text = if line == 1 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            if text.trim().is_empty() {
                continue;
            }
            let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                serde_json::from_str(text);
            let obj = match parsed {
                Ok(o) => o,
                Err(e) => {
                    let v = Violation::new(
                        "json.syntax",
                        format!("the line is not a JSON object: {e}"),
                    );
                    let mut raw = serde_json::Map::new();
                    raw.insert(
                        "_line".into(),
                        serde_json::Value::String(text.trim_end().to_owned()),
                    );
                    self.read += 1;
                    self.quarantine(line, &RawRow::default(), vec![v], raw);
                    continue;
                }
            };
            let mut row = RawRow::default();
            let mut shape: Vec<Violation> = Vec::new();
            for (k, v) in &obj {
                let Some(field) = Field::from_name(k) else {
                    continue;
                };
                let text = match v {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                    serde_json::Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
                    serde_json::Value::Number(n) => Cow::Owned(n.to_string()),
                    _ => {
                        shape.push(Violation::new(
                            "json.value_type",
                            format!("{k} must be a string, a number or a boolean"),
                        ));
                        continue;
                    }
                };
                row.set(field, text);
            }
            let first = shape.into_iter().next();
            self.accept(line, &row, first, || obj.clone())?;
        }
        Ok(())
    }

    /// Validates, dedupes and passes on one row.
    fn accept(
        &mut self,
        line: u64,
        row: &RawRow<'_>,
        shape_error: Option<Violation>,
        to_json: impl FnOnce() -> serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Failure> {
        self.read += 1;
        let result = self.validator.validate_into(row, &mut self.chunk);
        let violations = match (result, shape_error) {
            (Ok(()), Some(v)) => {
                self.chunk.pop();
                vec![v]
            }
            (Err(mut vs), Some(v)) => {
                vs.insert(0, v);
                vs
            }
            (Err(vs), None) => vs,
            (Ok(()), None) => {
                let ev = self.chunk.last().expect("just validated");
                let key = DedupeIndex::key(&ev.event_id);
                match self.index.check_insert(key, ev.content_hash) {
                    Seen::New => {
                        self.inserted.push(key);
                        self.stored += 1;
                        if self.chunk.len() >= CHUNK_EVENTS {
                            self.flush()?;
                        }
                        return Ok(());
                    }
                    Seen::Duplicate => {
                        self.chunk.pop();
                        self.duplicates += 1;
                        return Ok(());
                    }
                    Seen::Conflict => {
                        let ev = self.chunk.pop().expect("just validated");
                        vec![Violation::new(
                            "event_id.conflict",
                            format!(
                                "event_id {} was already received with different content",
                                ev.event_id
                            ),
                        )]
                    }
                }
            }
        };
        self.quarantine(line, row, violations, to_json());
        Ok(())
    }

    fn quarantine(
        &mut self,
        line: u64,
        row: &RawRow<'_>,
        violations: Vec<Violation>,
        raw: serde_json::Map<String, serde_json::Value>,
    ) {
        let masked: serde_json::Map<String, serde_json::Value> = raw
            .into_iter()
            .map(|(k, v)| {
                let identifying = Field::from_name(&k).is_some_and(Field::is_identifying);
                let v = match v {
                    serde_json::Value::Null => serde_json::Value::Null,
                    _ if identifying => serde_json::Value::String(MASK.to_owned()),
                    serde_json::Value::String(s) => serde_json::Value::String(mask_identifiers(&s)),
                    other => serde_json::Value::String(mask_identifiers(&other.to_string())),
                };
                (k, v)
            })
            .collect();
        for v in &violations {
            *self.by_rule.entry(v.rule.to_owned()).or_default() += 1;
        }
        let safe = |f: Field| row.get(f).map(mask_identifiers);
        self.quarantine.push(QuarantineRow {
            line,
            event_id: safe(Field::EventId),
            event_type: safe(Field::EventType),
            province: safe(Field::Province),
            cpi_code: safe(Field::CpiCode),
            rules: violations.iter().map(|v| v.rule.to_owned()).collect(),
            reasons: violations
                .iter()
                .map(|v| format!("{} [{}]", v.message, v.rule))
                .collect(),
            row_json: serde_json::Value::Object(masked).to_string(),
        });
    }
}

enum Failure {
    /// The file is refused whole.
    File(FileError),
    /// The writing stage stopped; its own error says why.
    WriterGone,
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("valid instant")
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The separator a header that names none of the contract's columns with ',' uses instead, if
/// splitting it by `;`, a tab or `|` names at least two of them.
fn other_separator(names: &[String]) -> Option<char> {
    let line = names.join(",");
    [';', '\t', '|'].into_iter().find(|&sep| {
        line.split(sep)
            .filter(|n| Field::from_name(n.trim()).is_some())
            .count()
            >= 2
    })
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((hex::encode(h.finalize()), n))
}

fn progress_bar(enabled: bool, size: u64, name: &str) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let short = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    pb.set_message(short);
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as Excel writes "CSV" in an Italian locale: the whole file is rejected, and the
    /// reason names the separator found and the one the contract expects.
    #[test]
    fn a_semicolon_header_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let mut ing = Ingester::new(&store, Key::from_bytes([7; 32])).unwrap();
        let file = dir.path().join("excel.csv");
        std::fs::write(
            &file,
            "event_id;event_type;occurred_at;person_cf\ne-1;hire;2025-03-05T10:00:00Z;X\n",
        )
        .unwrap();
        match ing.ingest_file(&file).unwrap() {
            FileReport::Failed { error, .. } => {
                assert!(
                    error.contains("separated by ';', the contract expects ','"),
                    "{error}"
                );
                assert!(!error.contains("no header"), "{error}");
            }
            other => panic!("a ';' file must be rejected whole: {other:?}"),
        }
        assert_eq!(other_separator(&["a\tb".into()]), None);
        assert_eq!(other_separator(&["event_id|event_type".into()]), Some('|'));
    }
}
