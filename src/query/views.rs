//! The shared views of `queries/_views.sql`, which several KPIs build on: which of them a
//! query needs, and each one's table per `as_of`, built once and kept (most recently used last).
//!
//! A view lives in a Parquet file, `views/<as_of>/<view>-<sql hash>-<key fingerprint>.parquet`:
//! its query's output streams into the file and queries scan the file, so a view of any size
//! holds a few batches in memory. A view is a function of the data as of an instant (which
//! commits never change), of its SQL and, through the record keys it carries, of the secret: a
//! file under all three names is the view itself, for every process of the data folder. A
//! missing, unreadable or foreign copy only means a rebuild.
//!
//! With [`Engine::views_in_memory`] views are held whole in memory instead, for comparison;
//! the server then also stores copies in the same files and reads them back after a restart.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::Statistics;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionContext, cast, col, lit, when};
use futures::StreamExt;

use super::{Engine, QueryError, catalog, cellkey};
use crate::recordkey::{self, FINGERPRINT_METADATA, KEYED_UNITS};
use crate::store::Layout;

/// One shared view at one `as_of`, as a table once built: a scan of its file, or its rows in
/// memory.
pub(super) struct Materialized {
    as_of_us: i64,
    name: String,
    in_memory: bool,
    table: Arc<tokio::sync::OnceCell<Arc<dyn TableProvider>>>,
    /// A shared lock on the view's `as_of` folder while the table reads from it: no process
    /// prunes a folder in use (see [`prune`]).
    _folder: Option<Arc<fs::File>>,
}

/// How many views are kept: the fourteen shared views for three `as_of` instants (the published
/// data, newer data warming up, and one more for a query with an older `as_of`).
const VIEW_CACHE_ENTRIES: usize = 42;

impl Engine {
    /// On: shared views are held whole in memory (and stored in `views/` only with
    /// [`Engine::persist_views`]), as before they lived on disk. Off (the default): each view
    /// is a Parquet file in `views/` that queries scan, so its size costs disk, not memory.
    /// The figures are the same either way.
    pub fn views_in_memory(&self, on: bool) {
        self.views_in_memory.store(on, Ordering::Relaxed);
    }

    /// Registers the shared views a query needs (and those they build on) as tables, building
    /// each on first use. The store only grows by committed batches and `as_of` never exceeds
    /// the last commit, so the same `as_of` always means the same data: a view never goes
    /// stale.
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
        let in_memory = self.views_in_memory.load(Ordering::Relaxed);
        let fingerprint = recordkey::fingerprint(self.cell_seed);
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
            let copy = path(&self.layout, as_of_us, &name, stmt, &fingerprint);
            let cell = self.view_cell(as_of_us, &name, in_memory, &copy).await?;
            let table = cell
                .get_or_try_init(|| async {
                    if in_memory {
                        self.build_in_memory(ctx, as_of_us, &name, stmt, &copy)
                            .await
                    } else {
                        self.build_on_disk(ctx, &name, stmt, &copy).await
                    }
                })
                .await?;
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(name.as_str(), Arc::clone(table))?;
        }
        Ok(())
    }

    /// The view's cell in the cache, taken under a short lock: concurrent queries wait for a
    /// view being built instead of building it twice, and a view's build holds up neither
    /// other views nor queries that need none. A view on disk first takes its folder's lock.
    async fn view_cell(
        &self,
        as_of_us: i64,
        name: &str,
        in_memory: bool,
        copy: &Path,
    ) -> Result<Arc<tokio::sync::OnceCell<Arc<dyn TableProvider>>>, QueryError> {
        let find = |cache: &mut Vec<Materialized>| {
            let i = cache.iter().position(|m| {
                m.as_of_us == as_of_us && m.name == name && m.in_memory == in_memory
            })?;
            // Least recently used goes first: move a used view to the end.
            let m = cache.remove(i);
            let cell = Arc::clone(&m.table);
            cache.push(m);
            Some(cell)
        };
        {
            let mut cache = self.views.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cell) = find(&mut cache) {
                return Ok(cell);
            }
        }
        let folder = if in_memory {
            None
        } else {
            let dir = copy.parent().expect("a view's folder").to_path_buf();
            let lock = tokio::task::spawn_blocking(move || lock_folder(&dir))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Some(Arc::new(lock))
        };
        let mut cache = self.views.lock().unwrap_or_else(|p| p.into_inner());
        // Another query may have made the cell while the folder was being locked.
        if let Some(cell) = find(&mut cache) {
            return Ok(cell);
        }
        let cell = Arc::new(tokio::sync::OnceCell::new());
        cache.push(Materialized {
            as_of_us,
            name: name.to_owned(),
            in_memory,
            table: Arc::clone(&cell),
            _folder: folder,
        });
        if cache.len() > VIEW_CACHE_ENTRIES {
            cache.remove(0);
        }
        Ok(cell)
    }

    /// A view on disk: its stored copy when there is a usable one, else its query's output
    /// streamed into the file.
    async fn build_on_disk(
        &self,
        ctx: &SessionContext,
        name: &str,
        stmt: &str,
        copy: &Path,
    ) -> Result<Arc<dyn TableProvider>, QueryError> {
        let df = view_frame(ctx, name, stmt, self.cell_seed).await?;
        let view = StoredView {
            name: name.to_owned(),
            path: copy.to_path_buf(),
            fingerprint: recordkey::fingerprint(self.cell_seed),
            layout: self.layout.clone(),
            table: scan_of(copy, Arc::new(df.schema().as_arrow().clone()))?,
            plan: df.logical_plan().clone(),
            seen: std::sync::Mutex::new(None),
            repair: tokio::sync::Mutex::new(()),
        };
        view.ensure(&ctx.state()).await?;
        Ok(Arc::new(view))
    }

    /// A view held in memory: read from its stored copy (with [`Engine::persist_views`]) or
    /// computed, and then stored when it is a view of the data now.
    async fn build_in_memory(
        &self,
        ctx: &SessionContext,
        as_of_us: i64,
        name: &str,
        stmt: &str,
        copy: &Path,
    ) -> Result<Arc<dyn TableProvider>, QueryError> {
        let started = std::time::Instant::now();
        let fingerprint = recordkey::fingerprint(self.cell_seed);
        let persist = self.persist.load(Ordering::Relaxed);
        if persist {
            let (path, fp) = (copy.to_path_buf(), fingerprint.clone());
            let read = tokio::task::spawn_blocking(move || read(&path, &fp))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            match read {
                Ok(Some((schema, parts))) => {
                    let rows: usize = parts.iter().flatten().map(RecordBatch::num_rows).sum();
                    tracing::info!(view = %name, rows, ms = started.elapsed().as_millis() as u64, "view read from disk");
                    return Ok(Arc::new(MemTable::try_new(schema, parts)?));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(view = %name, error = %e, "stored view unusable: building it")
                }
            }
        }
        let df = view_frame(ctx, name, stmt, self.cell_seed).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let parts = two_parts(tight(&schema, df.collect().await?).map_err(DataFusionError::from)?);
        let rows: usize = parts.iter().flatten().map(RecordBatch::num_rows).sum();
        tracing::info!(view = %name, rows, ms = started.elapsed().as_millis() as u64, "view built");
        // Only the data now is worth a copy: an older `as_of` is asked for now and then.
        if persist && self.snapshot(None).is_ok_and(|s| s.as_of_us == as_of_us) {
            // Written off the query's path; a failed copy only costs a rebuild.
            let (schema, parts, layout) = (Arc::clone(&schema), parts.clone(), self.layout.clone());
            let path = copy.to_path_buf();
            tokio::task::spawn_blocking(move || {
                let batches = parts.into_iter().flatten().map(Some).chain([None]);
                if let Err(e) = write(&layout, &path, &schema, &fingerprint, batches) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot store a view");
                }
            });
        }
        Ok(Arc::new(MemTable::try_new(schema, parts)?))
    }
}

/// The view's rows with the record keys of their units (see [`recordkey`]) added by the
/// engine's `cell_key` function, as a UInt32 (null for a null unit): the keyed figures built
/// on a view then read four bytes a row instead of hashing the unit each time.
async fn view_frame(
    ctx: &SessionContext,
    name: &str,
    stmt: &str,
    seed: u64,
) -> Result<DataFrame, QueryError> {
    ctx.sql(stmt).await?;
    let mut df = ctx.table(name).await?;
    let key_of = cellkey::udf(seed);
    for (unit, key) in KEYED_UNITS {
        let fields = df.schema().fields();
        let has = |c: &str| fields.iter().any(|f| f.name() == c);
        if has(key) || !has(unit) {
            continue;
        }
        let expr = when(col(unit).is_null(), lit(ScalarValue::UInt32(None)))
            .otherwise(cast(key_of.call(vec![col(unit)]), DataType::UInt32))?;
        df = df.with_column(key, expr)?;
    }
    Ok(df)
}

/// A view on disk: a scan of its file that first checks the file is still the one it read
/// or wrote, and writes it again from the view's query when it is gone or damaged. A session
/// may live long (the engine keeps the sessions of the data now), and a file can go (removed
/// by hand) or be damaged under it; read as it is, a missing file would be an empty view.
struct StoredView {
    name: String,
    path: PathBuf,
    fingerprint: String,
    layout: Layout,
    table: ListingTable,
    /// The view's query with its record keys.
    plan: LogicalPlan,
    /// The file's size and modification time as last read or written.
    seen: std::sync::Mutex<Option<(u64, std::time::SystemTime)>>,
    /// Held while the file is checked or written: concurrent scans wait for one check.
    repair: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for StoredView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredView")
            .field("path", &self.path)
            .finish()
    }
}

impl StoredView {
    /// The file's size and modification time now, if it is there.
    fn stat(&self) -> Option<(u64, std::time::SystemTime)> {
        let m = fs::metadata(&self.path).ok()?;
        Some((m.len(), m.modified().ok()?))
    }

    fn unchanged(&self) -> bool {
        let now = self.stat();
        now.is_some() && *self.seen.lock().unwrap_or_else(|p| p.into_inner()) == now
    }

    /// Makes sure the file holds the view: as last seen, or a usable stored copy, or else
    /// written from the view's query.
    async fn ensure(&self, state: &dyn Session) -> Result<(), DataFusionError> {
        if self.unchanged() {
            return Ok(());
        }
        let _one = self.repair.lock().await;
        if self.unchanged() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let stored = {
            let (path, fingerprint) = (self.path.clone(), self.fingerprint.clone());
            let schema = self.table.schema();
            tokio::task::spawn_blocking(move || {
                open(&path, &fingerprint).and_then(|b| match b {
                    Some(b) if b.schema().fields() == schema.fields() => Ok(true),
                    Some(_) => Err(CopyError::OtherSchema),
                    None => Ok(false),
                })
            })
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        let ms = || started.elapsed().as_millis() as u64;
        match stored {
            Ok(true) => {
                *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = self.stat();
                tracing::info!(view = %self.name, ms = ms(), "view read from disk");
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(view = %self.name, path = %self.path.display(), error = %e, "stored view unusable: building it again");
                let _ = fs::remove_file(&self.path);
            }
        }
        let plan = state.create_physical_plan(&self.plan).await?;
        let stream = execute_stream(plan, state.task_ctx())?;
        let rows = stream_to(stream, &self.layout, &self.path, &self.fingerprint).await?;
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = self.stat();
        tracing::info!(view = %self.name, rows, ms = ms(), "view built on disk");
        Ok(())
    }
}

/// What [`TableProvider::scan`] returns.
type ScanFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn ExecutionPlan>, DataFusionError>> + Send + 'a>>;

// Written out as `async_trait` would expand it, which the crate does not depend on.
impl TableProvider for StoredView {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn scan<'a, 'b, 'c, 'd, 'e>(
        &'a self,
        state: &'b dyn Session,
        projection: Option<&'c Vec<usize>>,
        filters: &'d [Expr],
        limit: Option<usize>,
    ) -> ScanFuture<'e>
    where
        'a: 'e,
        'b: 'e,
        'c: 'e,
        'd: 'e,
        Self: 'e,
    {
        Box::pin(async move {
            self.ensure(state).await?;
            self.table.scan(state, projection, filters, limit).await
        })
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        self.table.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.table.statistics()
    }
}

/// Streams a view's rows into its file (see [`write`]), encoded on a blocking thread while
/// the next ones are computed; answers the rows written.
async fn stream_to(
    mut stream: SendableRecordBatchStream,
    layout: &Layout,
    path: &Path,
    fingerprint: &str,
) -> Result<usize, DataFusionError> {
    let schema = stream.schema();
    // Two batches in flight at most: the query waits for the writer, not the other way round.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<RecordBatch>>(2);
    let writer = {
        let (layout, path, fingerprint) =
            (layout.clone(), path.to_path_buf(), fingerprint.to_owned());
        tokio::task::spawn_blocking(move || {
            let batches = std::iter::from_fn(|| rx.blocking_recv());
            write(&layout, &path, &schema, &fingerprint, batches)
        })
    };
    let mut failed = None;
    while let Some(batch) = stream.next().await {
        match batch {
            // The writer has stopped: its error follows.
            Ok(b) => {
                if tx.send(Some(b)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_none() {
        // The end: without it the writer abandons the file.
        let _ = tx.send(None).await;
    }
    drop(tx);
    drop(stream);
    let written = writer
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    if let Some(e) = failed {
        return Err(e);
    }
    written.map_err(|e| DataFusionError::External(Box::new(e)))
}

/// A scan of the view's file, with the schema of the view's query.
fn scan_of(path: &Path, schema: SchemaRef) -> Result<ListingTable, DataFusionError> {
    let dir = path.parent().expect("a view's folder");
    let dir = dir
        .canonicalize()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let file = dir.join(path.file_name().expect("a view's file name"));
    let url = ListingTableUrl::parse(file.to_string_lossy())?;
    // As the event files are read (see `session`): a file of more than one row group is
    // split among the session's partitions, so a scan uses every core.
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    ListingTable::try_new(config)
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
/// the published version while the next warms up reads both), and any a process reads.
const KEEP: usize = 2;

/// Rows per row group of a view's file: a file of several groups is scanned by every core,
/// and the writer holds one group at a time.
const ROW_GROUP_ROWS: usize = 1 << 16;

/// Where the view `name` at `as_of_us`, built by `stmt` with keys of the secret named by
/// `fingerprint`, lives.
pub fn path(layout: &Layout, as_of_us: i64, name: &str, stmt: &str, fingerprint: &str) -> PathBuf {
    let hash = xxhash_rust::xxh3::xxh3_64(stmt.as_bytes());
    layout
        .views()
        .join(as_of_us.to_string())
        .join(format!("{name}-{hash:016x}-{fingerprint}.parquet"))
}

/// Why a stored copy is not used.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error("its record keys are not of this data folder's secret")]
    OtherSecret,
    #[error("its columns are not the view's")]
    OtherSchema,
    #[error("its rows are damaged (their checksum differs)")]
    Damaged,
    #[error("the view's query stopped before its end")]
    Abandoned,
}

/// The footer entry that checks a view's file: `<length>:<xxh3>` of its bytes up to the
/// footer, so that a damaged page is found before a query reads it, not by the query.
const CHECK_METADATA: &str = "mirato.view_check";

/// The stored copy, opened (its footer read, its secret and its checksum checked), or `None`
/// when there is none.
fn open(
    path: &Path,
    fingerprint: &str,
) -> Result<Option<ParquetRecordBatchReaderBuilder<fs::File>>, CopyError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let same_secret = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter()
                .any(|e| e.key == FINGERPRINT_METADATA && e.value.as_deref() == Some(fingerprint))
        });
    if !same_secret {
        return Err(CopyError::OtherSecret);
    }
    let check = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == CHECK_METADATA))
        .and_then(|e| e.value.as_deref()?.split_once(':'))
        .and_then(|(len, hash)| Some((len.parse::<u64>().ok()?, hash.to_owned())));
    let Some((len, hash)) = check else {
        return Err(CopyError::Damaged);
    };
    let mut rows = std::io::Read::take(fs::File::open(path)?, len);
    let mut hasher = Hashing {
        inner: std::io::sink(),
        hash: xxhash_rust::xxh3::Xxh3Default::new(),
        len: 0,
    };
    std::io::copy(&mut rows, &mut hasher)?;
    if hasher.len != len || format!("{:016x}", hasher.hash.digest()) != hash {
        return Err(CopyError::Damaged);
    }
    Ok(Some(builder))
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: xxhash_rust::xxh3::Xxh3Default,
    len: u64,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A view's schema and its rows in two partitions (see [`two_parts`]).
pub type Parts = (SchemaRef, Vec<Vec<RecordBatch>>);

/// The stored copy, read whole, or `None` when there is none.
pub fn read(path: &Path, fingerprint: &str) -> Result<Option<Parts>, CopyError> {
    let Some(builder) = open(path, fingerprint)? else {
        return Ok(None);
    };
    let reader = builder.build()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(ParquetError::from)?;
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

/// The writer's settings: the footer names the secret of the keys (as the event files do).
fn writer_props(fingerprint: &str) -> Result<WriterProperties, ParquetError> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("mirato {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            FINGERPRINT_METADATA.to_owned(),
            fingerprint.to_owned(),
        )]))
        // Nearly one value per row: a dictionary never pays off.
        .set_column_dictionary_enabled(ColumnPath::from("person_id"), false);
    // Random by design: neither a dictionary, nor statistics, nor compression helps them.
    for (_, key) in KEYED_UNITS {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(key), false)
            .set_column_statistics_enabled(ColumnPath::from(key), EnabledStatistics::None)
            .set_column_compression(ColumnPath::from(key), Compression::UNCOMPRESSED);
    }
    Ok(b.build())
}

/// Writes a copy from `batches` (each `Some`, then `None` at the end; a stream that stops
/// without it leaves no copy): to a name of this writer's own, then linked in place only if
/// no usable copy is there yet, so a file never changes under a reader (a process that built
/// the same view at the same time wrote the same rows). Then drops older folders (see
/// [`prune`]). Answers the rows written.
pub fn write(
    layout: &Layout,
    path: &Path,
    schema: &SchemaRef,
    fingerprint: &str,
    batches: impl Iterator<Item = Option<RecordBatch>>,
) -> Result<usize, CopyError> {
    static WRITERS: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("a view's folder");
    crate::store::create_private_dir(dir)?;
    let tmp = path.with_extension(format!(
        "{}-{}.tmp",
        std::process::id(),
        WRITERS.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let file = crate::store::create_private_file(&tmp)?;
        let hashing = Hashing {
            inner: file,
            hash: xxhash_rust::xxh3::Xxh3Default::new(),
            len: 0,
        };
        // The writer buffers what it passes on.
        let mut w = ArrowWriter::try_new(
            hashing,
            Arc::clone(schema),
            Some(writer_props(fingerprint)?),
        )?;
        let mut rows = 0;
        let mut ended = false;
        for b in batches {
            match b {
                Some(b) => {
                    rows += b.num_rows();
                    w.write(&b)?;
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if !ended {
            return Err(CopyError::Abandoned);
        }
        // Everything up to the footer, then the footer with its checksum.
        w.flush()?;
        w.sync()?;
        let h = w.inner();
        let check = format!("{}:{:016x}", h.len, h.hash.digest());
        w.append_key_value_metadata(KeyValue::new(CHECK_METADATA.to_owned(), check));
        w.close()?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !matches!(open(path, fingerprint), Ok(Some(_))) {
                    fs::rename(&tmp, path)?;
                }
            }
            // A file system without hard links: the copy replaces any other.
            Err(_) => fs::rename(&tmp, path)?,
        }
        Ok(rows)
    })();
    let _ = fs::remove_file(&tmp);
    let rows = written?;
    prune(&layout.views());
    Ok(rows)
}

/// The `as_of` folder `dir`, created if missing, open with a shared lock: [`prune`] leaves it
/// alone for as long as the lock is held.
fn lock_folder(dir: &Path) -> std::io::Result<fs::File> {
    loop {
        crate::store::create_private_dir(dir)?;
        let folder = fs::File::open(dir)?;
        folder.lock_shared()?;
        // Pruned between the open and the lock: lock the folder made anew.
        if dir.exists() {
            return Ok(folder);
        }
    }
}

/// Removes `as_of` folders older than the newest [`KEEP`], except those a process reads (this
/// one or another: they are locked, see [`lock_folder`]).
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
        let Ok(folder) = fs::File::open(&old) else {
            continue;
        };
        if folder.try_lock().is_err() {
            continue;
        }
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!(path = %old.display(), error = %e, "cannot remove old stored views");
        }
    }
}
