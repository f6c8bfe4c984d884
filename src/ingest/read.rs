//! The reading stage of the ingest: each file is read once (hashed as it streams, gunzipped when
//! it starts like gzip), its rows validated and deduped, and valid events passed on in chunks.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::SyncSender;

use sha2::{Digest, Sha256};

use super::validate::{RawRow, Validator, Violation};
use super::{CHUNK_EVENTS, FileError, Format, Msg, ReadOutcome};
use crate::model::{Event, Field};
use crate::privacy::{MASK, mask_file_name, mask_identifiers};
use crate::store::{BatchSummary, Dedupe, DedupeIndex, QuarantineRow, Seen, StoreError};

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

/// The reading stage's state: it parses, validates and dedupes, and passes valid events on in
/// chunks to the writing stage.
pub(super) struct Reader<'a, 'i> {
    validator: &'a mut Validator,
    dedupe: &'a mut Dedupe<'i>,
    tx: SyncSender<Msg>,
    /// Emptied chunks coming back from the converter, so their memory is reused rather than
    /// faulted in afresh.
    recycled: std::sync::mpsc::Receiver<Vec<Event>>,
    chunk: Vec<Event>,
    quarantine: Vec<QuarantineRow>,
    pub(super) read: u64,
    stored: u64,
    duplicates: u64,
    by_rule: BTreeMap<String, u64>,
}

impl<'a, 'i> Reader<'a, 'i> {
    pub(super) fn new(
        validator: &'a mut Validator,
        dedupe: &'a mut Dedupe<'i>,
        tx: SyncSender<Msg>,
        recycled: std::sync::mpsc::Receiver<Vec<Event>>,
    ) -> Self {
        Reader {
            validator,
            dedupe,
            tx,
            recycled,
            chunk: Vec::with_capacity(CHUNK_EVENTS),
            quarantine: Vec::new(),
            read: 0,
            stored: 0,
            duplicates: 0,
            by_rule: BTreeMap::new(),
        }
    }

    /// Reads one file and sends its messages. `Err` only when the writer has stopped.
    pub(super) fn read_one(&mut self, path: &Path, now_us: i64, progress: bool) -> Result<(), ()> {
        let ts = chrono::DateTime::from_timestamp_micros(now_us).expect("valid now");
        // An unkeyed hash of the raw name would let a guessed identifier be confirmed.
        let shown = mask_file_name(&path.display().to_string());
        let tag = xxhash_rust::xxh3::xxh3_64(shown.as_bytes()) as u32;
        let batch_id = format!("{}-{tag:08x}", ts.format("%Y%m%dT%H%M%S%6fZ"));
        self.send(Msg::Begin { batch_id, now_us })?;
        self.validator.set_now(now_us);
        self.chunk.clear();
        self.quarantine = Vec::new();
        (self.read, self.stored, self.duplicates) = (0, 0, 0);
        self.by_rule = BTreeMap::new();
        let result = (|| {
            let format = Format::from_path(path).ok_or(Failure::File(FileError::UnknownFormat))?;
            let file = File::open(path).map_err(|e| Failure::File(FileError::Io(e)))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.dedupe.begin_file(expected_rows(path, size));
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
                    ids: self.dedupe.finish_file(),
                    summary: BatchSummary::default(),
                };
                self.send(Msg::End(Box::new(outcome)))
            }
            Err(Failure::File(fe)) => {
                self.dedupe.abandon_file();
                self.send(Msg::Failed(fe))
            }
            Err(Failure::Store(e)) => {
                self.dedupe.abandon_file();
                let _ = self.send(Msg::StoreFailed(e));
                Err(())
            }
            Err(Failure::WriterGone) => {
                self.dedupe.abandon_file();
                Err(())
            }
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
        // Ids the writer has put on disk meanwhile leave memory.
        self.dedupe.prune();
        // A closed channel means the writer failed; it reports why.
        self.tx
            .send(Msg::Events(chunk))
            .map_err(|_| Failure::WriterGone)
    }

    /// Validates, dedupes and passes on one row.
    pub(super) fn accept(
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
                let seen = self
                    .dedupe
                    .check_insert(key, ev.content_hash)
                    .map_err(Failure::Store)?;
                match seen {
                    Seen::New => {
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

    pub(super) fn quarantine(
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

pub(super) enum Failure {
    /// The file is refused whole.
    File(FileError),
    /// The writing stage stopped; its own error says why.
    WriterGone,
    /// The dedupe index could not be read: the run stops.
    Store(StoreError),
}

/// Rows a file of `size` bytes is expected to hold: about 140 bytes a CSV row, 5x less gzipped.
fn expected_rows(path: &Path, size: u64) -> usize {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let rows = if gz { size / 30 } else { size / 140 };
    rows.min(50_000_000) as usize
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
