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
//!
//! The file itself (its name, writing, checks and pruning) is in [`copy`]; the table over it,
//! which writes the file again when it is gone or damaged, in [`stored`].

mod copy;
mod stored;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionContext, cast, col, lit, when};

use super::session::Pins;
use super::{Engine, QueryError, catalog, cellkey};
use crate::recordkey::{self, KEYED_UNITS};
use copy::{lock_folder, path, read, write};
use stored::StoredView;

/// One shared view at one `as_of`, as a table once built: a scan of its file, or its rows in
/// memory.
pub(super) struct Materialized {
    as_of_us: i64,
    name: String,
    in_memory: bool,
    /// The generation of event files a view on disk is planned over (see [`StoredView`]).
    generation: Option<PathBuf>,
    table: Arc<tokio::sync::OnceCell<Arc<dyn TableProvider>>>,
    /// A shared lock on the view's `as_of` folder while the table reads from it: no process
    /// prunes a folder in use (see `copy::prune`). Sessions that registered the view hold it
    /// too (see [`Pins`]).
    folder: Option<Arc<std::fs::File>>,
}

/// A view's table once built, shared by the queries that wait for it.
type ViewCell = Arc<tokio::sync::OnceCell<Arc<dyn TableProvider>>>;

/// How many views are kept: the fourteen shared views for three `as_of` instants (the published
/// data, newer data warming up, and one more for a query with an older `as_of`).
const VIEW_CACHE_ENTRIES: usize = 42;

impl Engine {
    /// On: shared views are held whole in memory (and stored in `views/` only with
    /// [`Engine::persist_views`]). Off (the default): each view is a Parquet file in `views/`
    /// that queries scan, so its size costs disk, not memory. The figures are the same either
    /// way; the setting applies to views built after it.
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
        generation: &Path,
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
        // The session's generation, which its `events` reads and its pins hold.
        let generation = (!in_memory).then(|| generation.to_path_buf());
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
            let (cell, folder) = self
                .view_cell(as_of_us, &name, in_memory, &generation, &copy)
                .await?;
            if let (Some(folder), Some(pins)) = (folder, Pins::of(ctx)) {
                pins.hold(folder);
            }
            let table = cell
                .get_or_try_init(|| async {
                    if in_memory {
                        self.build_in_memory(ctx, as_of_us, &name, stmt, &copy)
                            .await
                    } else {
                        self.build_on_disk(ctx, &name, stmt, &copy, generation.clone())
                            .await
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
    /// other views nor queries that need none. A view on disk first takes its folder's lock,
    /// which the cache entry holds, and which is returned for the session to hold too: the
    /// entry may be evicted while the session's queries still read the folder.
    async fn view_cell(
        &self,
        as_of_us: i64,
        name: &str,
        in_memory: bool,
        generation: &Option<PathBuf>,
        copy: &Path,
    ) -> Result<(ViewCell, Option<Arc<std::fs::File>>), QueryError> {
        let find = |cache: &mut Vec<Materialized>| {
            let i = cache.iter().position(|m| {
                m.as_of_us == as_of_us
                    && m.name == name
                    && m.in_memory == in_memory
                    && m.generation == *generation
            })?;
            // Least recently used goes first: move a used view to the end.
            let m = cache.remove(i);
            let found = (Arc::clone(&m.table), m.folder.clone());
            cache.push(m);
            Some(found)
        };
        {
            let mut cache = self.views.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = find(&mut cache) {
                return Ok(found);
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
        if let Some(found) = find(&mut cache) {
            return Ok(found);
        }
        let cell = Arc::new(tokio::sync::OnceCell::new());
        cache.push(Materialized {
            as_of_us,
            name: name.to_owned(),
            in_memory,
            generation: generation.clone(),
            table: Arc::clone(&cell),
            folder: folder.clone(),
        });
        if cache.len() > VIEW_CACHE_ENTRIES {
            cache.remove(0);
        }
        Ok((cell, folder))
    }

    /// A view on disk: its stored copy when there is a usable one, else its query's output
    /// streamed into the file.
    async fn build_on_disk(
        &self,
        ctx: &SessionContext,
        name: &str,
        stmt: &str,
        copy: &Path,
        generation: Option<PathBuf>,
    ) -> Result<Arc<dyn TableProvider>, QueryError> {
        let df = view_frame(ctx, name, stmt, self.cell_seed).await?;
        let view = StoredView::new(
            name,
            copy,
            recordkey::fingerprint(self.cell_seed),
            self.layout.clone(),
            generation,
            &df,
        )?;
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
                Ok(Some((schema, batches))) => {
                    let parts = two_parts(batches);
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
        let batches = super::memory::collect(df).await?;
        let parts = two_parts(tight(&schema, batches).map_err(DataFusionError::from)?);
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

/// The rows of `batches` copied into buffers of their own size, in slices of 8,192 rows. A
/// query's output batches are often slices of larger buffers (a join's or an aggregation's):
/// kept as they are, a view would hold all of those for as long as it lives (the views of
/// the 20-million-event store held about twice their size).
fn tight(
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
fn two_parts(batches: Vec<RecordBatch>) -> Vec<Vec<RecordBatch>> {
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(), Vec::new()];
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % 2].push(b);
    }
    parts
}

/// A shared view's file as a plain Parquet scan, which a cluster's executors can read (see
/// `cluster`); made sure of first, as every scan of the view is.
#[cfg(feature = "distributed")]
pub(super) async fn file_scan(
    provider: &Arc<dyn TableProvider>,
    state: &dyn datafusion::catalog::Session,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let Some(view) = (provider.as_ref() as &dyn std::any::Any).downcast_ref::<StoredView>() else {
        return Err(QueryError::Cluster(
            "shared views held in memory cannot run on a cluster: set engine.views_in_memory = false"
                .into(),
        ));
    };
    view.ensure(state).await?;
    Ok(Arc::new(view.file_scan()?))
}
