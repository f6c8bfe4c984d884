//! A shared view on disk as a table: a scan of its file that makes sure, before each scan,
//! that the file is there and whole, and writes it from the view's query when it is not.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;

use super::super::memory::{exhausted, second_failure, spilling};
use super::copy::{CopyError, open, write};
use crate::store::Layout;

/// A view on disk: a scan of its file that first checks the file is still the one it read
/// or wrote, and writes it again from the view's query when it is gone or damaged. A session
/// may live long (the engine keeps the sessions of the data now), and a file can go (removed
/// by hand) or be damaged under it; read as it is, a missing file would be an empty view.
pub(super) struct StoredView {
    name: String,
    path: PathBuf,
    fingerprint: String,
    layout: Layout,
    /// The generation of event files the view's query reads: once compaction has replaced
    /// it, the old one goes when no session pins it, and a scan of a missing folder is empty.
    generation: Option<PathBuf>,
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
    /// The view `name` of the query `df` (with its record keys), in the file `path`.
    pub(super) fn new(
        name: &str,
        path: &Path,
        fingerprint: String,
        layout: Layout,
        generation: Option<PathBuf>,
        df: &DataFrame,
    ) -> Result<StoredView, DataFusionError> {
        Ok(StoredView {
            name: name.to_owned(),
            path: path.to_path_buf(),
            fingerprint,
            layout,
            generation,
            table: scan_of(path, Arc::new(df.schema().as_arrow().clone()))?,
            plan: df.logical_plan().clone(),
            seen: std::sync::Mutex::new(None),
            repair: tokio::sync::Mutex::new(()),
        })
    }

    /// A plain scan of the view's file (for a cluster's executors, which know no views).
    #[cfg(feature = "distributed")]
    pub(in crate::query) fn file_scan(&self) -> Result<ListingTable, DataFusionError> {
        scan_of(&self.path, self.table.schema())
    }

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
    pub(super) async fn ensure(&self, state: &dyn Session) -> Result<(), DataFusionError> {
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
                // Names and types: what a scan needs (nullability is the plan's guess).
                let same = |f: &SchemaRef| -> Vec<(String, DataType)> {
                    let fields = f.fields().iter();
                    fields
                        .map(|f| (f.name().clone(), f.data_type().clone()))
                        .collect()
                };
                open(&path, &fingerprint).and_then(|b| match b {
                    Some(b) if same(b.schema()) == same(&schema) => Ok(true),
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
        // Written from the plan's generation of event files, held for the write: the same
        // rows as of the view's instant as any later generation (compaction only regroups
        // them). Never from a generation already gone, whose scan would be empty and would
        // store an empty view for every process.
        let _pin = match &self.generation {
            Some(g) => Some(crate::store::pin_generation(g).map_err(|_| {
                DataFusionError::Execution(format!(
                    "the stored view {} must be built again, and the events it was planned on \
                     were compacted and removed since: ask again",
                    self.name
                ))
            })?),
            None => None,
        };
        let rows = match self.write(state).await {
            // Hash joins that do not fit: sort-merge joins instead, which spill.
            Err(e) if exhausted(&e) => {
                let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
                    return Err(e);
                };
                tracing::info!(view = %self.name, error = %e, "the view's hash joins do not fit the memory pool: building it with sort-merge joins");
                self.write(&spilling(state))
                    .await
                    .map_err(|retry| second_failure(e, retry))?
            }
            other => other?,
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = self.stat();
        tracing::info!(view = %self.name, rows, ms = ms(), "view built on disk");
        Ok(())
    }
}

impl StoredView {
    /// Writes the file from the view's query planned in `state`; how many rows.
    async fn write(&self, state: &dyn Session) -> Result<usize, DataFusionError> {
        let plan = state.create_physical_plan(&self.plan).await?;
        let stream = execute_stream(plan, state.task_ctx())?;
        stream_to(stream, &self.layout, &self.path, &self.fingerprint).await
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
