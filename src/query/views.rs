//! Stored copies of the shared views: `views/<as_of>/<view>-<sql hash>.parquet`. A view is a
//! function of the data as of an instant (which commits never change) and of its SQL, so a copy
//! under both keys is the view itself. The server reads one back after a restart instead of
//! rebuilding it; a missing or unreadable copy only means a rebuild.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;

use crate::store::Layout;

/// How many `as_of` folders are kept: the newest and the one before (a server still showing
/// the published version while the next warms up reads both).
const KEEP: usize = 2;

/// Where the copy of `name` at `as_of_us` built by `stmt` lives.
pub fn path(layout: &Layout, as_of_us: i64, name: &str, stmt: &str) -> PathBuf {
    let hash = xxhash_rust::xxh3::xxh3_64(stmt.as_bytes());
    layout
        .views()
        .join(as_of_us.to_string())
        .join(format!("{name}-{hash:016x}.parquet"))
}

/// A view's schema and its rows in two partitions (see [`two_parts`]).
pub type Parts = (SchemaRef, Vec<Vec<RecordBatch>>);

/// The stored copy, or `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Parts>, ParquetError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ParquetError::External(Box::new(e))),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(Some((schema, two_parts(batches))))
}

/// The rows of `batches` copied into buffers of their own size, in slices of 8,192 rows. A
/// query's output batches are often slices of larger buffers (a join's or an aggregation's):
/// kept as they are, a view would hold all of those for as long as it lives (the views of
/// the 20-million-event store held about twice their size).
pub fn tight(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
    const ROWS: usize = 8192;
    let all = datafusion::arrow::compute::concat_batches(schema, &batches)?;
    drop(batches);
    Ok((0..all.num_rows())
        .step_by(ROWS)
        .map(|at| all.slice(at, ROWS.min(all.num_rows() - at)))
        .collect())
}

/// Batches dealt into two partitions, so that scans of an in-memory view use both cores.
pub fn two_parts(batches: Vec<RecordBatch>) -> Vec<Vec<RecordBatch>> {
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(), Vec::new()];
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % 2].push(b);
    }
    parts
}

/// Writes a copy (to a temporary name, then renamed, so a reader never sees half a file) and
/// drops the folders of older instants beyond the newest [`KEEP`].
pub fn write(
    layout: &Layout,
    path: &Path,
    schema: &SchemaRef,
    parts: &[Vec<RecordBatch>],
) -> Result<(), ParquetError> {
    let io = |e: std::io::Error| ParquetError::External(Box::new(e));
    let dir = path.parent().expect("a view's folder");
    crate::store::create_private_dir(dir).map_err(io)?;
    let tmp = path.with_extension("parquet.tmp");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build();
    let mut w = ArrowWriter::try_new(
        crate::store::create_private_file(&tmp).map_err(io)?,
        Arc::clone(schema),
        Some(props),
    )?;
    for b in parts.iter().flatten() {
        w.write(b)?;
    }
    w.close()?;
    fs::rename(&tmp, path).map_err(io)?;
    prune(&layout.views());
    Ok(())
}

/// Removes `as_of` folders older than the newest [`KEEP`].
fn prune(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut instants: Vec<(i64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<i64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    instants.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n));
    for (_, old) in instants.into_iter().skip(KEEP) {
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!(path = %old.display(), error = %e, "cannot remove old stored views");
        }
    }
}
