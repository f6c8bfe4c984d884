//! The shared views of `queries/_views.sql`, which several KPIs build on: which of them a
//! query needs, each computed once per `as_of` and kept in memory (most recently used last),
//! and their stored copies under `views/<as_of>/<view>-<sql hash>.parquet`.
//!
//! A view is a function of the data as of an instant (which commits never change) and of its
//! SQL, so a copy under both keys is the view itself. The server reads one back after a restart
//! instead of rebuilding it; a missing or unreadable copy only means a rebuild.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;

use super::{Engine, QueryError, catalog};
use crate::recordkey::with_unit_keys;
use crate::store::Layout;

/// One shared view at one `as_of`, as an in-memory table once built.
pub(super) struct Materialized {
    as_of_us: i64,
    name: String,
    table: Arc<tokio::sync::OnceCell<Arc<MemTable>>>,
}

/// How many materialised views are kept: the fourteen shared views for three `as_of` instants (the
/// published data, newer data warming up, and one more for a query with an older `as_of`).
const VIEW_CACHE_ENTRIES: usize = 42;

impl Engine {
    /// Registers the shared views a query needs (and those they build on) as in-memory tables,
    /// computing each on first use. The store only grows by committed batches and `as_of`
    /// never exceeds the last commit, so the same `as_of` always means the same data: the cache
    /// never goes stale.
    pub(super) async fn register_views(
        &self,
        ctx: &SessionContext,
        as_of_us: i64,
        needed: &[&str],
    ) -> Result<(), QueryError> {
        let statements = catalog::view_statements();
        // A view needs the views its statement names; follow the chain.
        let mut wanted: Vec<String> = needed.iter().map(|s| (*s).to_owned()).collect();
        let mut i = 0;
        while i < wanted.len() {
            if let Some(stmt) = statements
                .iter()
                .find(|st| view_name(st).as_deref() == Some(wanted[i].as_str()))
            {
                for st in &statements {
                    if let Some(n) = view_name(st)
                        && n != wanted[i]
                        && mentions(body_of(stmt), &n)
                        && !wanted.contains(&n)
                    {
                        wanted.push(n);
                    }
                }
            }
            i += 1;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        // The file lists a view after the views it names, so each finds them registered.
        for stmt in statements {
            let Some(name) = view_name(stmt) else {
                return Err(DataFusionError::Plan(format!(
                    "queries/_views.sql: not a CREATE VIEW: {stmt}"
                ))
                .into());
            };
            if !wanted.contains(&name) {
                continue;
            }
            // One cell per view and `as_of`, taken under a short lock: concurrent queries
            // wait for a view being built instead of building it twice, and a view's build
            // holds up neither other views nor queries that need none.
            let cell = {
                let mut cache = self.views.lock().unwrap_or_else(|p| p.into_inner());
                match cache
                    .iter()
                    .position(|m| m.as_of_us == as_of_us && m.name == name)
                {
                    // Least recently used goes first: move a used view to the end.
                    Some(i) => {
                        let m = cache.remove(i);
                        let cell = Arc::clone(&m.table);
                        cache.push(m);
                        cell
                    }
                    None => {
                        let cell = Arc::new(tokio::sync::OnceCell::new());
                        cache.push(Materialized {
                            as_of_us,
                            name: name.clone(),
                            table: Arc::clone(&cell),
                        });
                        if cache.len() > VIEW_CACHE_ENTRIES {
                            cache.remove(0);
                        }
                        cell
                    }
                }
            };
            let copy = self
                .persist
                .load(std::sync::atomic::Ordering::Relaxed)
                .then(|| path(&self.layout, as_of_us, &name, stmt));
            // Only the data now is worth a copy: an older `as_of` is asked for now and then.
            let store_copy =
                copy.is_some() && self.snapshot(None).is_ok_and(|s| s.as_of_us == as_of_us);
            let table = cell
                .get_or_try_init(|| async {
                    let started = std::time::Instant::now();
                    if let Some(path) = copy.clone() {
                        let read = tokio::task::spawn_blocking(move || read(&path))
                            .await
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                        match read {
                            Ok(Some((schema, parts))) => {
                                let rows: usize =
                                    parts.iter().flatten().map(RecordBatch::num_rows).sum();
                                tracing::info!(view = %name, rows, ms = started.elapsed().as_millis() as u64, "view read from disk");
                                let (schema, parts) = with_unit_keys(self.cell_seed, &schema, parts).map_err(DataFusionError::from)?;
                                return Ok(Arc::new(MemTable::try_new(
                                    schema, parts,
                                )?));
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(view = %name, error = %e, "stored view unreadable: building it")
                            }
                        }
                    }
                    ctx.sql(stmt).await?;
                    let df = ctx.table(name.as_str()).await?;
                    let schema: datafusion::arrow::datatypes::SchemaRef =
                        Arc::new(df.schema().as_arrow().clone());
                    let parts = two_parts(
                        tight(&schema, df.collect().await?).map_err(DataFusionError::from)?,
                    );
                    let rows: usize = parts.iter().flatten().map(RecordBatch::num_rows).sum();
                    tracing::info!(view = %name, rows, ms = started.elapsed().as_millis() as u64, "view built");
                    if let Some(path) = copy.clone().filter(|_| store_copy) {
                        // Written off the query's path; a failed copy only costs a rebuild.
                        let (schema, parts, layout) =
                            (Arc::clone(&schema), parts.clone(), self.layout.clone());
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = write(&layout, &path, &schema, &parts) {
                                tracing::warn!(path = %path.display(), error = %e, "cannot store a view");
                            }
                        });
                    }
                    // Keys are added to the view in memory only: its stored copy stays a function of
                    // the data and the SQL, whatever the secret.
                    let (schema, parts) = with_unit_keys(self.cell_seed, &schema, parts).map_err(DataFusionError::from)?;
                    Ok::<_, QueryError>(Arc::new(MemTable::try_new(
                        schema, parts,
                    )?))
                })
                .await?;
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(name.as_str(), Arc::clone(table) as _)?;
        }
        Ok(())
    }
}

/// The names of the shared views of `queries/_views.sql`.
pub(super) fn view_names() -> Vec<String> {
    catalog::view_statements()
        .iter()
        .filter_map(|st| view_name(st))
        .collect()
}

/// Whether SQL text names a relation (as a whole word).
pub(super) fn mentions(sql: &str, name: &str) -> bool {
    sql.match_indices(name).any(|(i, _)| {
        let before = sql[..i].chars().next_back();
        let after = sql[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

/// A view statement without its `CREATE VIEW name AS` line.
fn body_of(stmt: &str) -> &str {
    stmt.split_once(" AS\n").map(|(_, b)| b).unwrap_or(stmt)
}

/// The name in `CREATE VIEW name AS ...`.
fn view_name(stmt: &str) -> Option<String> {
    let body: String = stmt
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut words = body.split_whitespace();
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("VIEW") {
            return words.next().map(str::to_owned);
        }
    }
    None
}

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
