//! Ingest: read CSV / JSON Lines files (gzip or not), validate every row, pseudonymise, dedupe
//! against the store, and commit each file atomically with its quarantine and ledger entry.

pub mod validate;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Event, Field, REQUIRED_COLUMNS};
use crate::privacy::{Key, MASK, Pseudonymiser, mask_identifiers};
use crate::store::{
    BatchStatus, BatchWriter, DedupeIndex, LedgerEntry, QuarantineRow, Seen, Store, StoreError,
};
use validate::{RawRow, Validator, Violation};

/// Events buffered before they are handed to the Parquet writers.
const CHUNK_ROWS: usize = 64 * 1024;

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
    #[error("cannot read {path}: {source}")]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no CSV or JSONL files found in {0}")]
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

impl FileReport {
    pub fn file(&self) -> &str {
        match self {
            FileReport::Read { file, .. } | FileReport::Failed { file, .. } => file,
        }
    }
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
    key: Key,
    /// sha256 -> batch id of files already committed.
    seen_files: BTreeMap<String, String>,
    last_batch_us: i64,
    pub progress: bool,
}

/// Counters and rejected rows of the file being read.
struct FileState {
    validator: Validator,
    writer: BatchWriter,
    buffer: Vec<Event>,
    quarantine: Vec<QuarantineRow>,
    inserted: Vec<String>,
    read: u64,
    stored: u64,
    duplicates: u64,
    by_rule: BTreeMap<String, u64>,
    ingested_at_us: i64,
}

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
            key,
            seen_files,
            last_batch_us: 0,
            progress: false,
        })
    }

    fn next_batch(&mut self, path: &Path) -> (String, i64) {
        let now = Utc::now().timestamp_micros().max(self.last_batch_us + 1);
        self.last_batch_us = now;
        let ts = chrono::DateTime::from_timestamp_micros(now).expect("valid now");
        let tag = xxhash_rust::xxh3::xxh3_64(path.to_string_lossy().as_bytes()) as u32;
        (format!("{}-{tag:08x}", ts.format("%Y%m%dT%H%M%S%6fZ")), now)
    }

    /// Ingests one file. A file-level problem is reported, not raised; only store failures are
    /// errors.
    pub fn ingest_file(&mut self, path: &Path) -> Result<FileReport, IngestError> {
        let shown = path.display().to_string();
        let (batch_id, now_us) = self.next_batch(path);
        let mut writer = Some(self.store.begin(&batch_id)?);
        let result = self.read_into(path, &shown, &batch_id, now_us, &mut writer);
        match result {
            Ok(report) => Ok(report),
            Err(Failure::Store(e)) => {
                if let Some(w) = writer {
                    w.abort();
                }
                Err(e.into())
            }
            Err(Failure::File(fe, inserted)) => {
                if let Some(w) = writer {
                    w.abort();
                }
                for id in inserted {
                    self.index.remove(&id);
                }
                let (sha256, bytes) = hash_file(path).unwrap_or_default();
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
                let message = mask_identifiers(&fe.to_string());
                self.store.record_rejected(&LedgerEntry {
                    batch_id,
                    status: BatchStatus::Rejected,
                    file: shown.clone(),
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
                    finished_at: now,
                    error: Some(message.clone()),
                    repeat_of: None,
                    event_files: vec![],
                    quarantine_file: None,
                    rejected_by_rule: BTreeMap::new(),
                    mirato_version: env!("CARGO_PKG_VERSION").to_owned(),
                })?;
                tracing::warn!(file = %shown, error = %message, "file rejected whole");
                Ok(FileReport::Failed {
                    file: shown,
                    error: message,
                })
            }
        }
    }

    fn read_into(
        &mut self,
        path: &Path,
        shown: &str,
        batch_id: &str,
        now_us: i64,
        writer: &mut Option<BatchWriter>,
    ) -> Result<FileReport, Failure> {
        let format =
            Format::from_path(path).ok_or(Failure::File(FileError::UnknownFormat, vec![]))?;
        let file = File::open(path).map_err(|e| Failure::File(FileError::Io(e), vec![]))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let pb = progress_bar(self.progress, size, shown);
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
        let mut state = FileState {
            validator: Validator::new(Pseudonymiser::new(&self.key), now_us),
            writer: writer.take().expect("a writer per file"),
            buffer: Vec::with_capacity(CHUNK_ROWS),
            quarantine: Vec::new(),
            inserted: Vec::new(),
            read: 0,
            stored: 0,
            duplicates: 0,
            by_rule: BTreeMap::new(),
            ingested_at_us: now_us,
        };
        let outcome = {
            let reader: Box<dyn BufRead + '_> = if gz {
                Box::new(BufReader::with_capacity(
                    256 * 1024,
                    flate2::bufread::MultiGzDecoder::new(&mut raw),
                ))
            } else {
                Box::new(&mut raw)
            };
            match format {
                Format::Csv => self.read_csv(reader, &mut state, gz),
                Format::Jsonl => self.read_jsonl(reader, &mut state, gz),
            }
        };
        pb.finish_and_clear();
        if let Err(f) = outcome {
            *writer = Some(state.writer);
            return Err(match f {
                Failure::File(fe, _) => Failure::File(fe, state.inserted),
                other => other,
            });
        }
        // Drain what the parser left (e.g. trailing bytes) so the hash covers the whole file.
        let _ = std::io::copy(&mut raw, &mut std::io::sink());
        let hashing = raw.into_inner();
        let sha256 = hex::encode(hashing.hasher.finalize());
        let bytes = hashing.bytes;

        let mut st = state;
        let mut w = st.writer;
        let sw = |e: StoreError| Failure::Store(e);
        w.write_events(&mut st.buffer, now_us).map_err(sw)?;
        st.buffer.clear();
        w.finish_events().map_err(sw)?;
        let repeat_of = self.seen_files.get(&sha256).cloned();
        let quarantine_file = if repeat_of.is_none() {
            w.write_quarantine(&st.quarantine, shown, now_us)
                .map_err(sw)?
        } else {
            None
        };
        let rejected = st.quarantine.len() as u64;
        let entry = LedgerEntry {
            batch_id: batch_id.to_owned(),
            status: BatchStatus::Committed,
            file: shown.to_owned(),
            sha256: sha256.clone(),
            bytes,
            format: format.as_str().to_owned(),
            read: st.read,
            stored: st.stored,
            duplicates: st.duplicates,
            rejected,
            ingested_at: rfc3339(now_us),
            finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            error: None,
            repeat_of,
            event_files: w.event_files(),
            quarantine_file,
            rejected_by_rule: st.by_rule.clone(),
            mirato_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        debug_assert_eq!(st.read, st.stored + st.duplicates + rejected);
        w.commit(&entry).map_err(sw)?;
        self.seen_files.entry(sha256).or_insert(batch_id.to_owned());
        tracing::info!(
            file = %shown,
            read = st.read,
            stored = st.stored,
            duplicates = st.duplicates,
            rejected,
            "file ingested"
        );
        Ok(FileReport::Read {
            file: shown.to_owned(),
            read: st.read,
            stored: st.stored,
            duplicates: st.duplicates,
            rejected,
            rejected_by_rule: st.by_rule,
            batch_id: batch_id.to_owned(),
        })
    }

    fn read_csv(
        &mut self,
        reader: Box<dyn BufRead + '_>,
        st: &mut FileState,
        gz: bool,
    ) -> Result<(), Failure> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let mut rec = csv::ByteRecord::new();
        let csv_err = |e: csv::Error, gz: bool| -> Failure {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            match e.into_kind() {
                csv::ErrorKind::Io(io) if gz => Failure::File(FileError::Gzip(io), vec![]),
                csv::ErrorKind::Io(io) => Failure::File(FileError::Io(io), vec![]),
                other => Failure::File(
                    FileError::Csv {
                        line,
                        message: format!("{other:?}"),
                    },
                    vec![],
                ),
            }
        };
        if !rdr.read_byte_record(&mut rec).map_err(|e| csv_err(e, gz))? {
            return Err(Failure::File(
                FileError::NoHeader("the file is empty".into()),
                vec![],
            ));
        }
        let mut names: Vec<String> = Vec::with_capacity(rec.len());
        for (i, f) in rec.iter().enumerate() {
            let f = if i == 0 {
                f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f)
            } else {
                f
            };
            let s = std::str::from_utf8(f)
                .map_err(|_| Failure::File(FileError::NotUtf8 { line: 1 }, vec![]))?;
            names.push(s.trim().to_owned());
        }
        let map: Vec<Option<Field>> = names.iter().map(|n| Field::from_name(n)).collect();
        if map.iter().all(Option::is_none) {
            return Err(Failure::File(
                FileError::NoHeader(
                    "the first line names none of the contract's columns (event_id, event_type, ...)"
                        .into(),
                ),
                vec![],
            ));
        }
        let missing: Vec<&'static str> = REQUIRED_COLUMNS
            .iter()
            .filter(|f| !map.contains(&Some(**f)))
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            return Err(Failure::File(FileError::MissingColumns(missing), vec![]));
        }
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_err(e, gz)),
            }
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let mut row = RawRow::default();
            let mut texts: Vec<&str> = Vec::with_capacity(rec.len());
            for (i, f) in rec.iter().enumerate() {
                let s = std::str::from_utf8(f)
                    .map_err(|_| Failure::File(FileError::NotUtf8 { line }, vec![]))?;
                texts.push(s);
                if let Some(Some(field)) = map.get(i) {
                    row.set(*field, Cow::Borrowed(s));
                }
            }
            let shape_error = (texts.len() != names.len()).then(|| {
                Violation::new(
                    "csv.field_count",
                    format!(
                        "the row has {} fields but the header has {}",
                        texts.len(),
                        names.len()
                    ),
                )
            });
            let to_json = || {
                let mut obj = serde_json::Map::new();
                for (i, t) in texts.iter().enumerate() {
                    let name = names.get(i).cloned().unwrap_or_else(|| format!("_{i}"));
                    obj.insert(name, serde_json::Value::String((*t).to_owned()));
                }
                obj
            };
            self.accept(st, line, &row, shape_error, to_json)?;
        }
        Ok(())
    }

    fn read_jsonl(
        &mut self,
        mut reader: Box<dyn BufRead + '_>,
        st: &mut FileState,
        gz: bool,
    ) -> Result<(), Failure> {
        let mut buf = Vec::with_capacity(4096);
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| {
                if gz {
                    Failure::File(FileError::Gzip(e), vec![])
                } else {
                    Failure::File(FileError::Io(e), vec![])
                }
            })?;
            if n == 0 {
                break;
            }
            line += 1;
            let text = std::str::from_utf8(&buf)
                .map_err(|_| Failure::File(FileError::NotUtf8 { line }, vec![]))?;
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
                    st.read += 1;
                    self.quarantine(st, line, &RawRow::default(), vec![v], raw);
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
            self.accept(st, line, &row, first, || obj.clone())?;
        }
        Ok(())
    }

    /// Validates, dedupes and buffers one row.
    fn accept(
        &mut self,
        st: &mut FileState,
        line: u64,
        row: &RawRow<'_>,
        shape_error: Option<Violation>,
        to_json: impl FnOnce() -> serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Failure> {
        st.read += 1;
        let result = st.validator.validate(row);
        let violations = match (result, shape_error) {
            (Ok(_), Some(v)) => vec![v],
            (Err(mut vs), Some(v)) => {
                vs.insert(0, v);
                vs
            }
            (Err(vs), None) => vs,
            (Ok(ev), None) => match self.index.check(&ev.event_id, ev.content_hash) {
                Seen::Duplicate => {
                    st.duplicates += 1;
                    return Ok(());
                }
                Seen::Conflict => vec![Violation::new(
                    "event_id.conflict",
                    format!(
                        "event_id {} was already received with different content",
                        ev.event_id
                    ),
                )],
                Seen::New => {
                    self.index.insert(&ev.event_id, ev.content_hash);
                    st.inserted.push(ev.event_id.clone());
                    st.buffer.push(ev);
                    st.stored += 1;
                    if st.buffer.len() >= CHUNK_ROWS {
                        st.writer
                            .write_events(&mut st.buffer, st.ingested_at_us)
                            .map_err(Failure::Store)?;
                        st.buffer.clear();
                    }
                    return Ok(());
                }
            },
        };
        self.quarantine(st, line, row, violations, to_json());
        Ok(())
    }

    fn quarantine(
        &self,
        st: &mut FileState,
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
            *st.by_rule.entry(v.rule.to_owned()).or_default() += 1;
        }
        let safe = |f: Field| row.get(f).map(mask_identifiers);
        st.quarantine.push(QuarantineRow {
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
    /// The file is refused whole; carries the event ids it had added to the index.
    File(FileError, Vec<String>),
    Store(StoreError),
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
