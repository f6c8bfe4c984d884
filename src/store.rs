//! The store: immutable Parquet files under `events/year=YYYY/month=MM/`, a quarantine of
//! rejected rows, and a ledger of ingested files.
//!
//! A batch (one input file) becomes visible by three steps: its files are written under
//! `staging/`, renamed into place, and then its ledger entry is written (temp file + rename).
//! The ledger entry is the commit point: on open, files of batches without one are removed, so a
//! crash at any moment leaves all of a file's rows or none.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder,
    StringArray, StringBuilder, TimestampMicrosecondArray, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::model::Event;
use crate::recordkey;

pub mod ledger;
pub use ledger::{Ledger, LedgerCache, Snapshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Parquet error in {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: datafusion::parquet::errors::ParquetError,
    },
    #[error("Arrow error: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("the ledger entry {path} is unreadable: {source}")]
    Ledger {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "another mirato process is writing to {0}; wait for it to finish, or remove a stale lock only if none is running"
    )]
    Locked(PathBuf),
}

/// Creates a folder and its missing parents for the owner only (0700): the store holds
/// person-level data. `main` also sets the umask to 077; this covers the library used alone.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// Creates (or truncates) a file readable and writable by the owner only (0600).
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    private_options().truncate(true).open(path)
}

fn private_options() -> fs::OpenOptions {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Restricts an existing folder to its owner (a store made before modes were enforced); best
/// effort, since the folder may belong to someone else.
fn restrict_dir(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        }
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The folders of a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
    /// Copies of the query engine's shared views, by `as_of` (see `query::Engine::persist_views`).
    pub fn views(&self) -> PathBuf {
        self.root.join("views")
    }
    /// Generations of the event files; `events` links to the current one (see `compact`).
    pub fn generations(&self) -> PathBuf {
        self.root.join("generations")
    }
    fn lock(&self) -> PathBuf {
        self.root.join(".lock")
    }

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
            let mut entry: LedgerEntry =
                serde_json::from_str(&text).map_err(|source| StoreError::Ledger {
                    path: path.clone(),
                    source,
                })?;
            // Entries written before file names were masked at ingest are masked when read.
            entry.file = crate::privacy::mask_file_name(&entry.file);
            out.push(entry);
        }
        out.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
        Ok(out)
    }

    /// Parquet files of committed batches under `dir` (events or quarantine), sorted.
    pub fn committed_files(&self, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let committed: HashSet<String> = self
            .read_ledger()?
            .into_iter()
            .filter(|e| e.status == BatchStatus::Committed)
            .map(|e| e.batch_id)
            .collect();
        Ok(parquet_files(dir)?
            .into_iter()
            .filter(|p| batch_of(p).is_some_and(|b| committed.contains(b)))
            .collect())
    }

    /// The data version now: the id of the latest committed batch with events, or `empty`.
    pub fn data_version(&self) -> Result<String, StoreError> {
        Ok(Ledger::read(self)?.snapshot(None).data_version)
    }
}

/// All `*.parquet` files below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("cannot list", &d)(e)),
        };
        for ent in rd {
            let ent = ent.map_err(io("cannot list", &d))?;
            let path = ent.path();
            let ft = ent.file_type().map_err(io("cannot stat", &path))?;
            if ft.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The batch id of a store file, from its name `<batch_id>-pNNNN.parquet` or `<batch_id>.parquet`.
pub fn batch_of(path: &Path) -> Option<&str> {
    let stem = path.file_stem()?.to_str()?;
    Some(match stem.rsplit_once("-p") {
        Some((b, n)) if n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => stem,
    })
}

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

/// A writer's handle on the store, holding the exclusive lock.
pub struct Store {
    layout: Layout,
    _lock: File,
    /// The secret of the record keys written beside each event (see [`recordkey`]).
    record_seed: u64,
}

/// Event ids already stored, with the keyed hash of their content.
#[derive(Default)]
pub struct DedupeIndex {
    /// Keys are already hashes (xxh3-128 of the id), so a cheap hasher suffices.
    map: HashMap<u128, i64, foldhash::fast::FixedState>,
}

/// What the index says about an event id.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    Duplicate,
    Conflict,
}

impl DedupeIndex {
    /// The index key of an event id: 128 bits of xxh3, so collisions are negligible.
    pub fn key(event_id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
    }

    /// Checks an id and records it when new, in one lookup.
    pub fn check_insert(&mut self, key: u128, content_hash: i64) -> Seen {
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(content_hash);
                Seen::New
            }
            std::collections::hash_map::Entry::Occupied(o) if *o.get() == content_hash => {
                Seen::Duplicate
            }
            std::collections::hash_map::Entry::Occupied(_) => Seen::Conflict,
        }
    }

    pub fn insert(&mut self, event_id: &str, content_hash: i64) {
        self.map.insert(Self::key(event_id), content_hash);
    }

    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    pub fn remove(&mut self, key: u128) {
        self.map.remove(&key);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Store {
    /// Opens (creating) a data directory for writing: takes the lock and removes what an
    /// interrupted batch left behind.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let layout = Layout::new(root);
        for d in [layout.root.clone(), layout.quarantine(), layout.ledger()] {
            create_private_dir(&d).map_err(io("cannot create", &d))?;
            restrict_dir(&d);
        }
        // A new store starts with its first generation, so that compaction can swap it.
        if fs::symlink_metadata(layout.events()).is_err() {
            let first = layout.generations().join("g00000000T000000000000Z");
            create_private_dir(&first).map_err(io("cannot create", &first))?;
            let next = layout.root.join("events.next");
            let _ = fs::remove_file(&next);
            std::os::unix::fs::symlink(
                Path::new("generations").join("g00000000T000000000000Z"),
                &next,
            )
            .map_err(io("cannot link", &next))?;
            fs::rename(&next, layout.events()).map_err(io("cannot create", &layout.events()))?;
        }
        let lock_path = layout.lock();
        let lock = private_options()
            .truncate(false)
            .open(&lock_path)
            .map_err(io("cannot open", &lock_path))?;
        lock.try_lock_exclusive()
            .map_err(|_| StoreError::Locked(layout.root.clone()))?;
        let record_seed =
            recordkey::load_or_create(&layout.root).map_err(io("cannot read", &layout.root))?;
        let store = Store {
            layout,
            _lock: lock,
            record_seed,
        };
        store.recover()?;
        Ok(store)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The secret of the record keys, for [`partition_batches`].
    pub fn record_seed(&self) -> u64 {
        self.record_seed
    }

    /// Rolls back any batch that did not reach its ledger entry.
    fn recover(&self) -> Result<(), StoreError> {
        let staging = self.layout.staging();
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io("cannot clear", &staging))?;
        }
        let ledger = self.layout.ledger();
        for ent in fs::read_dir(&ledger).map_err(io("cannot list", &ledger))? {
            let path = ent.map_err(io("cannot list", &ledger))?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
                fs::remove_file(&path).map_err(io("cannot remove", &path))?;
            }
        }
        let known: HashSet<String> = self
            .layout
            .read_ledger()?
            .into_iter()
            .map(|e| e.batch_id)
            .collect();
        let mut removed = 0;
        for dir in [self.layout.events(), self.layout.quarantine()] {
            for f in parquet_files(&dir)? {
                if !batch_of(&f).is_some_and(|b| known.contains(b)) {
                    fs::remove_file(&f).map_err(io("cannot remove", &f))?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::warn!(
                files = removed,
                "removed the files of an interrupted ingest; rerun it to store that file"
            );
        }
        Ok(())
    }

    /// Reads every stored event id with its content hash.
    pub fn load_index(&self) -> Result<DedupeIndex, StoreError> {
        let mut index = DedupeIndex::default();
        for path in self.layout.committed_files(&self.layout.events())? {
            let file = File::open(&path).map_err(io("cannot open", &path))?;
            let perr = |source| StoreError::Parquet {
                path: path.clone(),
                source,
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
            let mask =
                ProjectionMask::columns(builder.parquet_schema(), ["event_id", "content_hash"]);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|source| StoreError::Parquet {
                    path: path.clone(),
                    source,
                })?;
            for batch in reader {
                let batch = batch?;
                let ids = batch
                    .column_by_name("event_id")
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>());
                let hashes = batch
                    .column_by_name("content_hash")
                    .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
                let (Some(ids), Some(hashes)) = (ids, hashes) else {
                    return Err(StoreError::Parquet {
                        path: path.clone(),
                        source: datafusion::parquet::errors::ParquetError::General(
                            "event_id or content_hash has an unexpected type".into(),
                        ),
                    });
                };
                index.map.reserve(ids.len());
                for (id, h) in ids.iter().zip(hashes.iter()) {
                    if let (Some(id), Some(h)) = (id, h) {
                        index.insert(id, h);
                    }
                }
            }
        }
        Ok(index)
    }

    /// Starts writing a batch under `staging/`.
    pub fn begin(&self, batch_id: &str) -> Result<BatchWriter, StoreError> {
        let staging = self.layout.staging().join(batch_id);
        create_private_dir(&staging).map_err(io("cannot create", &staging))?;
        Ok(BatchWriter {
            record_seed: self.record_seed,
            layout: self.layout.clone(),
            batch_id: batch_id.to_owned(),
            staging,
            staged: Vec::new(),
            writers: HashMap::new(),
            parts: 0,
        })
    }

    /// Records a file that was rejected whole: nothing is stored, but the ledger remembers it.
    pub fn record_rejected(&self, entry: &LedgerEntry) -> Result<(), StoreError> {
        write_ledger_entry(&self.layout, entry)
    }
}

fn write_ledger_entry(layout: &Layout, entry: &LedgerEntry) -> Result<(), StoreError> {
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

fn sync_dir(dir: &Path) {
    // Best effort: makes the rename durable across power loss on filesystems that need it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// One rejected row, with its identifiers already masked.
#[derive(Debug, Clone)]
pub struct QuarantineRow {
    pub line: u64,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub province: Option<String>,
    pub cpi_code: Option<String>,
    pub rules: Vec<String>,
    pub reasons: Vec<String>,
    /// The row as read, as a JSON object, identifiers masked.
    pub row_json: String,
}

/// Files staged for one batch, made visible by [`BatchWriter::commit`].
pub struct BatchWriter {
    record_seed: u64,
    layout: Layout,
    batch_id: String,
    staging: PathBuf,
    /// (staged path, final path relative to the data dir)
    staged: Vec<(PathBuf, PathBuf)>,
    writers: HashMap<(i32, u32), OpenFile>,
    parts: usize,
}

struct OpenFile {
    writer: ArrowWriter<File>,
    staged: PathBuf,
    rel: PathBuf,
}

/// Rows per data page: small pages let a query that selects one event type (the files are
/// sorted by type) decode only the pages that hold it, in every column it reads.
const PAGE_ROWS: usize = 4096;

/// The store's writer settings with a given row-group size (compaction uses smaller groups).
/// With a record-key secret, the footer names it (see [`recordkey::FINGERPRINT_METADATA`]).
pub fn writer_props_with_row_groups(rows: usize, record_seed: Option<u64>) -> WriterProperties {
    use datafusion::parquet::file::metadata::KeyValue;
    use datafusion::parquet::schema::types::ColumnPath;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(rows))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_created_by(format!("mirato {}", env!("CARGO_PKG_VERSION")));
    // Unique or nearly so per row (a person has a few events a month): a dictionary never pays
    // off, and a plain page decodes without the whole dictionary of the file.
    for col in [
        "event_id",
        "content_hash",
        "occurred_at",
        "person_id",
        recordkey::PERSON_KEY,
        recordkey::VACANCY_KEY,
    ] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(col), false);
    }
    // No query prunes on them.
    for col in [
        "event_id",
        "content_hash",
        recordkey::PERSON_KEY,
        recordkey::VACANCY_KEY,
    ] {
        b = b.set_column_statistics_enabled(ColumnPath::from(col), EnabledStatistics::None);
    }
    // Random by design: compressing them only costs time.
    for col in [recordkey::PERSON_KEY, recordkey::VACANCY_KEY] {
        b = b.set_column_compression(ColumnPath::from(col), Compression::UNCOMPRESSED);
    }
    if let Some(seed) = record_seed {
        b = b.set_key_value_metadata(Some(vec![KeyValue::new(
            recordkey::FINGERPRINT_METADATA.to_owned(),
            recordkey::fingerprint(seed),
        )]));
    }
    b.build()
}

/// Whether an event file carries record keys made with the secret `seed` (its footer names it).
pub fn file_keyed(path: &Path, seed: u64) -> Result<bool, StoreError> {
    let file = File::open(path).map_err(io("cannot open", path))?;
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| StoreError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    let want = recordkey::fingerprint(seed);
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter().any(|e| {
                e.key == recordkey::FINGERPRINT_METADATA && e.value.as_deref() == Some(&want)
            })
        }))
}

/// Reads the fault-injection point used by the crash tests: abort after N renames.
fn fault_after_renames() -> Option<usize> {
    std::env::var("MIRATO_FAULT_AFTER_RENAMES")
        .ok()
        .and_then(|v| v.parse().ok())
}

impl BatchWriter {
    /// Appends record batches already split by month partition (see [`partition_batches`]).
    /// Writers stay open across calls, so a big file gives few files with full row groups.
    pub fn write_partitions(&mut self, parts: Vec<PartitionBatch>) -> Result<(), StoreError> {
        for (ym, batch) in parts {
            if !self.writers.contains_key(&ym) {
                let (y, m) = ym;
                let rel = PathBuf::from("events")
                    .join(format!("year={y:04}"))
                    .join(format!("month={m:02}"))
                    .join(format!("{}-p{:04}.parquet", self.batch_id, self.parts));
                self.parts += 1;
                let w = self.open_staged(rel, batch.schema())?;
                self.writers.insert(ym, w);
            }
            let w = self.writers.get_mut(&ym).expect("inserted above");
            w.writer
                .write(&batch)
                .map_err(|source| StoreError::Parquet {
                    path: w.staged.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Stages the quarantine rows of the batch.
    pub fn write_quarantine(
        &mut self,
        rows: &[QuarantineRow],
        source_file: &str,
        ingested_at_us: i64,
    ) -> Result<Option<String>, StoreError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let rel = PathBuf::from("quarantine").join(format!("{}.parquet", self.batch_id));
        let batch = quarantine_to_batch(rows, &self.batch_id, source_file, ingested_at_us)?;
        self.write_staged(rel.clone(), &batch)?;
        Ok(Some(rel.to_string_lossy().into_owned()))
    }

    fn open_staged(&mut self, rel: PathBuf, schema: SchemaRef) -> Result<OpenFile, StoreError> {
        let staged = self.staging.join(format!(
            "{}.parquet",
            self.staged.len() + self.writers.len()
        ));
        let file = create_private_file(&staged).map_err(io("cannot create", &staged))?;
        // Event files carry record keys, quarantine files do not.
        let seed = rel.starts_with("events").then_some(self.record_seed);
        let props = writer_props_with_row_groups(128 * 1024, seed);
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| {
            StoreError::Parquet {
                path: staged.clone(),
                source,
            }
        })?;
        Ok(OpenFile {
            writer,
            staged,
            rel,
        })
    }

    fn write_staged(&mut self, rel: PathBuf, batch: &RecordBatch) -> Result<(), StoreError> {
        let mut f = self.open_staged(rel, batch.schema())?;
        f.writer
            .write(batch)
            .map_err(|source| StoreError::Parquet {
                path: f.staged.clone(),
                source,
            })?;
        self.close(f)
    }

    fn close(&mut self, f: OpenFile) -> Result<(), StoreError> {
        let OpenFile {
            writer,
            staged,
            rel,
        } = f;
        let file = writer.into_inner().map_err(|source| StoreError::Parquet {
            path: staged.clone(),
            source,
        })?;
        file.sync_all().map_err(io("cannot sync", &staged))?;
        self.staged.push((staged, rel));
        Ok(())
    }

    /// Closes the open event files; after this, [`BatchWriter::event_files`] is complete.
    pub fn finish_events(&mut self) -> Result<(), StoreError> {
        let mut writers: Vec<_> = std::mem::take(&mut self.writers).into_iter().collect();
        writers.sort_by_key(|(ym, _)| *ym);
        for (_, w) in writers {
            self.close(w)?;
        }
        Ok(())
    }

    /// Relative paths of the event files this batch will add.
    pub fn event_files(&self) -> Vec<String> {
        self.staged
            .iter()
            .filter(|(_, rel)| rel.starts_with("events"))
            .map(|(_, rel)| rel.to_string_lossy().into_owned())
            .collect()
    }

    /// Moves the staged files into place, then writes the ledger entry: the commit point.
    pub fn commit(mut self, entry: &LedgerEntry) -> Result<(), StoreError> {
        self.finish_events()?;
        let fault = fault_after_renames();
        let mut dirs = HashSet::new();
        for (i, (staged, rel)) in self.staged.iter().enumerate() {
            if fault == Some(i) {
                tracing::error!("fault injection: aborting the ingest midway");
                std::process::abort();
            }
            let dst = self.layout.root.join(rel);
            let dir = dst.parent().expect("store files live in folders");
            if dirs.insert(dir.to_path_buf()) {
                create_private_dir(dir).map_err(io("cannot create", dir))?;
            }
            fs::rename(staged, &dst).map_err(io("cannot move into place", &dst))?;
        }
        for d in &dirs {
            sync_dir(d);
        }
        if fault == Some(self.staged.len()) {
            tracing::error!("fault injection: aborting before the ledger commit");
            std::process::abort();
        }
        write_ledger_entry(&self.layout, entry)?;
        let _ = fs::remove_dir_all(&self.staging);
        Ok(())
    }

    /// Drops what was staged; nothing becomes visible.
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

/// A record batch of one `(year, month)` partition.
pub type PartitionBatch = ((i32, u32), RecordBatch);

/// Splits events (any order) by month partition into record batches, each sorted by date and
/// type so that min/max statistics prune well. Pure: the ingest runs it on its reading thread.
pub fn partition_batches(
    events: &[Event],
    batch_id: &str,
    ingested_at_us: i64,
    record_seed: u64,
) -> Result<Vec<PartitionBatch>, StoreError> {
    // Sort references, not the (large) events themselves.
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_unstable_by(|a, b| {
        (a.occurred_date, a.event_type, a.occurred_at).cmp(&(
            b.occurred_date,
            b.event_type,
            b.occurred_at,
        ))
    });
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let ym = year_month(order[start].occurred_date);
        let mut end = start + 1;
        while end < order.len() && year_month(order[end].occurred_date) == ym {
            end += 1;
        }
        out.push((
            ym,
            events_to_batch(&order[start..end], batch_id, ingested_at_us, record_seed)?,
        ));
        start = end;
    }
    Ok(out)
}

fn year_month(days: i32) -> (i32, u32) {
    let d = date_from_days(days).expect("validated dates are in range");
    (d.year(), d.month())
}

/// A Date32 value as a date.
fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days as i64))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The schema of the event files. Typed columns, one per contract field, plus derived ones.
pub fn events_schema() -> SchemaRef {
    use DataType::*;
    let f = |name: &str, t: DataType, nullable: bool| ArrowField::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("event_id", Utf8, false),
        f("event_type", Utf8, false),
        f("occurred_at", ts_type(), false),
        f("occurred_date", Date32, false),
        f("province", Utf8, false),
        f("region_code", Utf8, false),
        f("cpi_code", Utf8, false),
        f("person_id", Utf8, true),
        f("operator_id", Utf8, true),
        f("list_type", Utf8, true),
        f("category", Utf8, true),
        f("disability_pct", Int32, true),
        f("naspi", Boolean, true),
        f("education", Int32, true),
        f("gender", Utf8, true),
        f("birth_year", Int32, true),
        f("agency", Utf8, true),
        f("reason", Utf8, true),
        f("profiling_index", Float64, true),
        f("pact_id", Utf8, true),
        f("responsible_operator", Utf8, true),
        f("employability_profile", Utf8, true),
        f("search_acts", Int32, true),
        f("contact_frequency_days", Int32, true),
        f("search_proof_method", Utf8, true),
        f("avail_workshops", Boolean, true),
        f("avail_training", Boolean, true),
        f("avail_offers", Boolean, true),
        f("pact_complete", Boolean, true),
        f("review_outcome", Utf8, true),
        f("group_session", Boolean, true),
        f("skills_gap", Boolean, true),
        f("to_service", Utf8, true),
        f("support_type", Utf8, true),
        f("measure_id", Utf8, true),
        f("measure_type", Utf8, true),
        f("employer_id", Utf8, true),
        f("end_reason", Utf8, true),
        f("vacancy_id", Utf8, true),
        f("positions", Int32, true),
        f("request_type", Utf8, true),
        f("ateco_section", Utf8, true),
        f("profession_code", Utf8, true),
        f("channel", Utf8, true),
        f("close_reason", Utf8, true),
        f("contract_code", Utf8, true),
        f("contract_class", Utf8, true),
        f("contract_months", Int32, true),
        f("part_time", Boolean, true),
        f("hiring_mode", Utf8, true),
        f("stable_hire", Boolean, true),
        f("content_hash", Int64, false),
        f("batch_id", Utf8, false),
        f("ingested_at", ts_type(), false),
        // The record keys of `person_id` and `vacancy_id` (see `recordkey`).
        f(recordkey::PERSON_KEY, UInt32, true),
        f(recordkey::VACANCY_KEY, UInt32, true),
    ]))
}

/// Builds one record batch from events; columns follow [`events_schema`].
pub fn events_to_batch(
    ev: &[&Event],
    batch_id: &str,
    ingested_at_us: i64,
    record_seed: u64,
) -> Result<RecordBatch, StoreError> {
    fn key<'a>(ev: &[&'a Event], seed: u64, g: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
        Arc::new(
            ev.iter()
                .map(|e| g(e).map(|u| recordkey::record_key(seed, u.as_bytes()) as u32))
                .collect::<UInt32Array>(),
        )
    }
    fn s<'a>(ev: &[&'a Event], g: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
        Arc::new(ev.iter().map(|e| g(e)).collect::<StringArray>())
    }
    fn i32c(ev: &[&Event], g: impl Fn(&Event) -> Option<i32>) -> ArrayRef {
        Arc::new(ev.iter().map(|e| g(e)).collect::<Int32Array>())
    }
    fn b(ev: &[&Event], g: impl Fn(&Event) -> Option<bool>) -> ArrayRef {
        Arc::new(ev.iter().map(|e| g(e)).collect::<BooleanArray>())
    }
    let n = ev.len();
    let cols: Vec<ArrayRef> = vec![
        s(ev, |e| Some(e.event_id.as_str())),
        s(ev, |e| Some(e.event_type)),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(ev.iter().map(|e| e.occurred_at))
                .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from_iter_values(
            ev.iter().map(|e| e.occurred_date),
        )),
        s(ev, |e| Some(e.province)),
        s(ev, |e| Some(e.region_code)),
        s(ev, |e| Some(&*e.cpi_code)),
        s(ev, |e| e.person_id.as_deref()),
        s(ev, |e| e.operator_id.as_deref()),
        s(ev, |e| e.list_type),
        s(ev, |e| e.category),
        i32c(ev, |e| e.disability_pct),
        b(ev, |e| e.naspi),
        i32c(ev, |e| e.education),
        s(ev, |e| e.gender),
        i32c(ev, |e| e.birth_year),
        s(ev, |e| e.agency),
        s(ev, |e| e.reason),
        Arc::new(
            ev.iter()
                .map(|e| e.profiling_index)
                .collect::<Float64Array>(),
        ),
        s(ev, |e| e.pact_id.as_deref()),
        s(ev, |e| e.responsible_operator.as_deref()),
        s(ev, |e| e.employability_profile),
        i32c(ev, |e| e.search_acts),
        i32c(ev, |e| e.contact_frequency_days),
        s(ev, |e| e.search_proof_method),
        b(ev, |e| e.avail_workshops),
        b(ev, |e| e.avail_training),
        b(ev, |e| e.avail_offers),
        b(ev, |e| e.pact_complete),
        s(ev, |e| e.review_outcome),
        b(ev, |e| e.group_session),
        b(ev, |e| e.skills_gap),
        s(ev, |e| e.to_service),
        s(ev, |e| e.support_type),
        s(ev, |e| e.measure_id.as_deref()),
        s(ev, |e| e.measure_type),
        s(ev, |e| e.employer_id.as_deref()),
        s(ev, |e| e.end_reason),
        s(ev, |e| e.vacancy_id.as_deref()),
        i32c(ev, |e| e.positions),
        s(ev, |e| e.request_type),
        s(ev, |e| e.ateco_section.as_deref()),
        s(ev, |e| e.profession_code.as_deref()),
        s(ev, |e| e.channel),
        s(ev, |e| e.close_reason),
        s(ev, |e| e.contract_code.as_deref()),
        s(ev, |e| e.contract_class),
        i32c(ev, |e| e.contract_months),
        b(ev, |e| e.part_time),
        s(ev, |e| e.hiring_mode),
        b(ev, |e| e.stable_hire),
        Arc::new(Int64Array::from_iter_values(
            ev.iter().map(|e| e.content_hash),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            batch_id, n,
        ))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(ingested_at_us, n))
                .with_timezone("UTC"),
        ),
        key(ev, record_seed, |e| e.person_id.as_deref()),
        key(ev, record_seed, |e| e.vacancy_id.as_deref()),
    ];
    Ok(RecordBatch::try_new(events_schema(), cols)?)
}

/// The schema of the quarantine files.
pub fn quarantine_schema() -> SchemaRef {
    use DataType::*;
    let list = || List(Arc::new(ArrowField::new("item", Utf8, true)));
    Arc::new(Schema::new(vec![
        ArrowField::new("batch_id", Utf8, false),
        ArrowField::new("source_file", Utf8, false),
        ArrowField::new("line", Int64, false),
        ArrowField::new("event_id", Utf8, true),
        ArrowField::new("event_type", Utf8, true),
        ArrowField::new("province", Utf8, true),
        ArrowField::new("cpi_code", Utf8, true),
        ArrowField::new("rules", list(), false),
        ArrowField::new("reasons", list(), false),
        ArrowField::new("row_json", Utf8, false),
        ArrowField::new("ingested_at", ts_type(), false),
    ]))
}

fn quarantine_to_batch(
    rows: &[QuarantineRow],
    batch_id: &str,
    source_file: &str,
    ingested_at_us: i64,
) -> Result<RecordBatch, StoreError> {
    let n = rows.len();
    let list = |get: &dyn Fn(&QuarantineRow) -> &Vec<String>| -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for r in rows {
            for v in get(r) {
                b.values().append_value(v);
            }
            b.append(true);
        }
        Arc::new(b.finish())
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            batch_id, n,
        ))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            source_file,
            n,
        ))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.line as i64),
        )),
        Arc::new(
            rows.iter()
                .map(|r| r.event_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.event_type.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.province.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.cpi_code.as_deref())
                .collect::<StringArray>(),
        ),
        list(&|r| &r.rules),
        list(&|r| &r.reasons),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.row_json.as_str()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(ingested_at_us, n))
                .with_timezone("UTC"),
        ),
    ];
    // The list fields must match the schema's nullability exactly.
    let schema = quarantine_schema();
    let cols = cols
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                datafusion::arrow::compute::cast(&c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, cols)?)
}
