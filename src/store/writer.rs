//! Writing one batch: its Parquet files are staged under `staging/`, renamed into place,
//! committed by a version of the events table, and recorded in the ledger; the Parquet settings
//! of every store file live here too.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::disk::{create_private_dir, create_private_file, sync_dir};
use super::entry::write_ledger_entry;
use super::schema::{PartitionBatch, QuarantineRow, quarantine_to_batch};
use super::{Layout, LedgerEntry, Store, StoreError, io};
use crate::recordkey;

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

impl Store {
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
}

impl BatchWriter {
    /// Appends record batches already split by month partition (see
    /// [`partition_batches`](super::partition_batches)).
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
        let events = rel.starts_with("events");
        let seed = events.then_some(self.record_seed);
        // Event files of a batch are compacted later; quarantine files stay as written.
        let packing = if events {
            Packing::Batch
        } else {
            Packing::Compacted
        };
        let props = writer_props_with_row_groups(128 * 1024, seed, packing);
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

    /// Moves the staged files into place, commits them in the events table (the commit point,
    /// see [`delta`](super::delta)), then writes the ledger entry.
    pub fn commit(mut self, entry: &LedgerEntry) -> Result<(), StoreError> {
        self.finish_events()?;
        let mut placed = Vec::new();
        let committed = self.place_and_commit(entry, &mut placed);
        if committed.is_err() {
            // Before the commit point nothing is visible: take back what was moved, so a
            // failure (a full disk) leaves the store as it was, not only after the next open.
            for p in &placed {
                let _ = fs::remove_file(p);
            }
        }
        committed?;
        write_ledger_entry(&self.layout, entry)?;
        let _ = fs::remove_dir_all(&self.staging);
        Ok(())
    }

    /// Moves the staged files into place (noting each in `placed`) and commits the batch in
    /// the table. An error here means no commit.
    fn place_and_commit(
        &self,
        entry: &LedgerEntry,
        placed: &mut Vec<PathBuf>,
    ) -> Result<(), StoreError> {
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
            placed.push(dst);
        }
        for d in &dirs {
            sync_dir(d);
        }
        if fault == Some(self.staged.len()) {
            tracing::error!("fault injection: aborting before the commit");
            std::process::abort();
        }
        // The commit point: the table's new version lists the batch's event files.
        let generation = super::current_generation(&self.layout)?;
        let events: Vec<PathBuf> = self
            .staged
            .iter()
            .filter(|(_, rel)| rel.starts_with("events"))
            .map(|(_, rel)| self.layout.root.join(rel))
            .collect();
        let files = super::delta::data_files(&self.layout.events(), &generation, &events)?;
        super::delta::commit_batch(&self.layout, entry, &files)?;
        if std::env::var_os("MIRATO_FAULT_BEFORE_LEDGER").is_some() {
            // For the crash tests: committed in the table, not yet in the ledger.
            tracing::error!("fault injection: aborting between the commit and the ledger entry");
            std::process::abort();
        }
        Ok(())
    }

    /// Drops what was staged; nothing becomes visible.
    pub fn abort(self) {}
}

impl Drop for BatchWriter {
    /// A batch dropped before its commit (an error, a full disk) leaves no staged file.
    fn drop(&mut self) {
        self.writers.clear();
        let _ = fs::remove_dir_all(&self.staging);
    }
}

/// Reads the fault-injection point used by the crash tests: abort after N renames.
fn fault_after_renames() -> Option<usize> {
    std::env::var("MIRATO_FAULT_AFTER_RENAMES")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// Rows per data page: small pages let a query that selects one event type (the files are
/// sorted by type) decode only the pages that hold it, in every column it reads.
const PAGE_ROWS: usize = 4096;

/// How a store file is compressed, by how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// A batch's event files, which compaction rewrites: Snappy, for the ingest's speed, and
    /// read by every Parquet reader. A zstd writer makes a compression context for each of the
    /// 57 columns of every file, and a batch writes a file for each month it touches (some 25
    /// small files for a region's year): creating and filling those contexts took a tenth of
    /// an ingest's CPU time. The files are about 40% larger until compacted.
    Batch,
    /// Compacted and quarantine files, kept as written: zstd, for their size.
    Compacted,
}

impl Packing {
    fn compression(self) -> Compression {
        match self {
            Packing::Batch => Compression::SNAPPY,
            Packing::Compacted => Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")),
        }
    }
}

/// The store's writer settings with a given row-group size (compaction uses smaller groups).
/// With a record-key secret, the footer names it (see [`recordkey::FINGERPRINT_METADATA`]).
pub fn writer_props_with_row_groups(
    rows: usize,
    record_seed: Option<u64>,
    packing: Packing,
) -> WriterProperties {
    use datafusion::parquet::file::metadata::KeyValue;
    use datafusion::parquet::schema::types::ColumnPath;
    let mut b = WriterProperties::builder()
        .set_compression(packing.compression())
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
