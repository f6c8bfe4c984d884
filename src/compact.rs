//! Compaction: merges the small Parquet files of each month partition into one file sorted by
//! event type and date, so that queries open few files and prune row groups by type.
//!
//! Atomicity: `data/events` is a symlink to a *generation* folder. A compaction builds the next
//! generation beside it (hard links for the partitions it leaves alone, new files for those it
//! merges), commits it in the events table (one version that removes the old generation's files
//! and adds the new one's, for outside readers; see `store::delta`), then swaps the symlink with
//! one `rename`. A query resolves the symlink once when it starts (the engine canonicalises the
//! path), so it reads one generation from start to end: never both the old and the merged
//! files, never neither. A crash between the commit and the swap is completed on open. Old
//! generations are removed after a grace period, long after any query that could use them.
//!
//! Rows keep their `ingested_at` and `batch_id`, so every KPI at every `as_of` is unchanged.
//! The merged file is named after the newest batch it holds, which keeps it a committed file
//! for the ledger-based readers and for crash recovery.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{
    SortColumn, cast, concat_batches, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::recordkey;
use crate::store::{
    GENERATION_GRACE, Layout, Store, StoreError, batch_of, create_private_dir, create_private_file,
    current_generation, delta, events_schema, parquet_files, remove_old_generations, switch_to,
};

/// Rows per row group of a merged file: small enough that row-group statistics on the sorted
/// `event_type` prune, large enough to compress well.
const ROW_GROUP_ROWS: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// A partition is merged when it has at least this many files.
    pub min_files: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions { min_files: 2 }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompactReport {
    pub partitions_merged: usize,
    pub files_before: usize,
    pub files_after: usize,
    pub rows_rewritten: u64,
    pub generations_removed: usize,
    /// Files removed from the bucket of a store on S3 (see `Store::vacuum_bucket`).
    pub bucket_files_removed: usize,
    /// The new generation, when one was made.
    pub generation: Option<String>,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Merges small partitions into a new generation and makes it current. Holds the store's write
/// lock (through `store`), so no ingest runs meanwhile.
pub fn compact(store: &Store, opts: &CompactOptions) -> Result<CompactReport, StoreError> {
    let layout = store.layout();
    let mut report = CompactReport {
        generations_removed: remove_old_generations(layout, GENERATION_GRACE)?,
        bucket_files_removed: store.vacuum_bucket()?,
        ..CompactReport::default()
    };
    let current = layout
        .events()
        .canonicalize()
        .map_err(io("cannot open", &layout.events()))?;
    let committed = layout.committed_files(&current)?;
    report.files_before = committed.len();
    // Files by partition folder (relative to the generation).
    let mut parts: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    for f in &committed {
        let rel = f
            .parent()
            .and_then(|p| p.strip_prefix(&current).ok())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        parts.entry(rel).or_default().push(f.clone());
    }
    // A partition with a file whose record keys are missing or of another secret is rewritten
    // even alone: the engine uses stored keys only when every file has current ones.
    let seed = store.record_seed();
    let mut to_merge: Vec<&PathBuf> = Vec::new();
    for (p, files) in &parts {
        if files.len() >= opts.min_files.max(2) || !all_keyed(files, seed)? {
            to_merge.push(p);
        }
    }
    if to_merge.is_empty() {
        report.files_after = report.files_before;
        return Ok(report);
    }
    let gens = layout.generations();
    create_private_dir(&gens).map_err(io("cannot create", &gens))?;
    let name = format!("g{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ"));
    let building = gens.join(format!("{name}.building"));
    if building.exists() {
        fs::remove_dir_all(&building).map_err(io("cannot clear", &building))?;
    }
    let done = gens.join(&name);
    let built = (|| {
        for (rel, files) in &parts {
            let dir = building.join(rel);
            create_private_dir(&dir).map_err(io("cannot create", &dir))?;
            if to_merge.contains(&rel) {
                let rows = merge(files, &dir, seed)?;
                report.partitions_merged += 1;
                report.rows_rewritten += rows;
                report.files_after += 1;
            } else {
                for f in files {
                    let to = dir.join(f.file_name().expect("a file"));
                    fs::hard_link(f, &to).map_err(io("cannot link", &to))?;
                    report.files_after += 1;
                }
            }
        }
        sync_dir(&building)?;
        fs::rename(&building, &done).map_err(io("cannot rename", &building))?;
        // The commit point: the table swaps the old generation's files for the new one's.
        let old_generation = current_generation(layout)?;
        let removed: Vec<String> = committed
            .iter()
            .map(|f| delta::table_path(&old_generation, f.strip_prefix(&current).unwrap_or(f)))
            .collect();
        let added = delta::data_files(&done, &name, &parquet_files(&done)?)?;
        delta::commit_generation(layout, &name, &removed, &added)
    })();
    if let Err(e) = built {
        // Not committed: the half-built generation goes now (a full disk gets its space back),
        // not a grace period later.
        let _ = fs::remove_dir_all(&building);
        if !delta::lists_generation(layout, &name)? {
            let _ = fs::remove_dir_all(&done);
        }
        return Err(e);
    }
    if std::env::var_os("MIRATO_FAULT_BEFORE_SWITCH").is_some() {
        // For the crash tests: committed in the table, `events` not yet switched.
        tracing::error!("fault injection: aborting between the commit and the switch");
        std::process::abort();
    }
    switch_to(layout, &done)?;
    // The old generation's age now counts from its retirement (see remove_old_generations).
    if let Ok(d) = File::open(&current) {
        let _ = d.set_modified(SystemTime::now());
    }
    report.generation = Some(name);
    tracing::info!(?report, "compaction done");
    Ok(report)
}

fn all_keyed(files: &[PathBuf], seed: u64) -> Result<bool, StoreError> {
    for f in files {
        if !crate::store::file_keyed(f, seed)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads every row of `files`, sorts them by event type, date and id, and writes one file, with
/// record keys made anew from the current secret.
fn merge(files: &[PathBuf], dir: &Path, seed: u64) -> Result<u64, StoreError> {
    let schema = events_schema();
    let mut batches: Vec<RecordBatch> = Vec::new();
    let newest = files
        .iter()
        .filter_map(|f| batch_of(f))
        .max()
        .expect("a partition has files")
        .to_owned();
    for f in files {
        let file = File::open(f).map_err(io("cannot open", f))?;
        let perr = |source| StoreError::Parquet {
            path: f.clone(),
            source,
        };
        for b in ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(perr)?
            .build()
            .map_err(perr)?
        {
            let b = b?;
            // Old files may lack a column added since: take the store's schema by name.
            let cols = schema
                .fields()
                .iter()
                .map(|field| {
                    let unit = match field.name().as_str() {
                        recordkey::PERSON_KEY => Some("person_id"),
                        recordkey::VACANCY_KEY => Some("vacancy_id"),
                        _ => None,
                    };
                    if let Some(unit) = unit {
                        return unit_keys(&b, unit, seed);
                    }
                    Ok(b.column_by_name(field.name()).cloned().unwrap_or_else(|| {
                        datafusion::arrow::array::new_null_array(field.data_type(), b.num_rows())
                    }))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            batches.push(RecordBatch::try_new(Arc::clone(&schema), cols)?);
        }
    }
    let all = concat_batches(&schema, &batches)?;
    drop(batches);
    let key = |name: &str| SortColumn {
        values: Arc::clone(all.column_by_name(name).expect("store column")),
        options: None,
    };
    let order = lexsort_to_indices(
        &[key("event_type"), key("occurred_date"), key("event_id")],
        None,
    )?;
    let sorted = take_record_batch(&all, &order)?;
    drop(all);
    let path = dir.join(format!("{newest}-p9000.parquet"));
    let file = create_private_file(&path).map_err(io("cannot create", &path))?;
    let props = crate::store::writer_props_with_row_groups(
        ROW_GROUP_ROWS,
        Some(seed),
        crate::store::Packing::Compacted,
    );
    let perr = |source| StoreError::Parquet {
        path: path.clone(),
        source,
    };
    let mut w = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(perr)?;
    w.write(&sorted).map_err(perr)?;
    let file = w.into_inner().map_err(perr)?;
    file.sync_all().map_err(io("cannot sync", &path))?;
    Ok(sorted.num_rows() as u64)
}

/// The record keys of a batch's `unit` column (all null when the column is absent).
fn unit_keys(b: &RecordBatch, unit: &str, seed: u64) -> Result<ArrayRef, StoreError> {
    let Some(column) = b.column_by_name(unit) else {
        return Ok(datafusion::arrow::array::new_null_array(
            &DataType::UInt32,
            b.num_rows(),
        ));
    };
    let text = cast(column, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8 gives strings");
    Ok(recordkey::key_column(seed, text))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", dir))
}

/// How many files the current generation holds (for reports and metrics).
pub fn file_count(layout: &Layout) -> Result<usize, StoreError> {
    Ok(parquet_files(&layout.events())?.len())
}
