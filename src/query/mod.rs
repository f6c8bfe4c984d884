//! The KPI engine: DataFusion over the Parquet store, one SQL file per KPI.
//!
//! It knows nothing of HTTP or of the terminal: callers build [`RawParams`] from whatever they
//! read, [`Engine::run`] validates them and answers a [`KpiResult`] in the shape of KPIS.md.

pub mod catalog;
pub mod cellkey;
pub mod cells;
pub mod cohort;
pub mod output;
pub mod survival;
mod views;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Europe::Rome;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::reference;
use crate::store::{BatchStatus, Layout, StoreError, events_schema};
pub use catalog::{Kind, KpiDef, catalog, find};
pub use cohort::{Cohort, Entry};

/// How long a listing of the store's files is trusted. Short, so that a running server sees a
/// new ingest within seconds; DataFusion would otherwise cache it forever.
pub const LIST_FILES_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("unknown KPI '{id}'; `mirato kpi --list` shows them all")]
    UnknownKpi { id: String },
    #[error("{message}")]
    BadParam {
        param: &'static str,
        message: String,
        allowed: Vec<String>,
    },
    #[error("no store in {0}: ingest some events first (`mirato ingest FILES`)")]
    NoStore(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query engine error: {0}")]
    Engine(#[from] DataFusionError),
    #[error("cannot read or create the cell-key secret in {path}: {source}")]
    CellKey {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl QueryError {
    fn bad(param: &'static str, message: impl Into<String>, allowed: &[&str]) -> Self {
        QueryError::BadParam {
            param,
            message: message.into(),
            allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether the caller's input caused it (as opposed to the store or the engine).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            QueryError::UnknownKpi { .. } | QueryError::BadParam { .. }
        )
    }
}

/// Parameters as a user typed them (CLI flags or URL query), not yet checked.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawParams {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Comma-separated, one or two breakdowns.
    pub by: Option<String>,
    pub region: Option<String>,
    pub province: Option<String>,
    pub cpi: Option<String>,
    pub as_of: Option<String>,
}

/// Checked parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub by: Vec<String>,
    pub region: Vec<String>,
    pub province: Vec<String>,
    pub cpi: Vec<String>,
    pub as_of: Option<DateTime<Utc>>,
    /// Rows outside this territory never count, whatever was asked: set by the caller from
    /// who is asking, never from user input.
    pub scope: Option<TerritoryScope>,
    /// Whether to compute the cell keys that perturbation needs (see [`cells`]): for results
    /// that may be shown below admin. Exact-only callers (the command line) skip their cost.
    pub cell_keys: bool,
}

/// A territorial restriction: rows of these provinces, or of these CPIs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TerritoryScope {
    pub provinces: Vec<String>,
    pub cpis: Vec<String>,
}

fn split_list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_day(param: &'static str, s: &str) -> Result<NaiveDate, QueryError> {
    crate::ingest::validate::parse_date(s.trim()).ok_or_else(|| {
        QueryError::bad(
            param,
            format!("{param} '{s}' is not a date: use YYYY-MM-DD, e.g. 2025-12-31"),
            &[],
        )
    })
}

/// `as_of`: an RFC 3339 instant, or a date meaning the end of that day in Rome.
pub fn parse_as_of(s: &str) -> Result<DateTime<Utc>, QueryError> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Some(d) = crate::ingest::validate::parse_date(s) {
        use chrono::TimeZone;
        // The first instant of the next day in Rome. In the years when Italy moved its clocks at
        // midnight (1966–1979 and some 1940s), that midnight did not exist: the day then began
        // at 01:00.
        let start_of_next = d.succ_opt().and_then(|next| {
            let local = next.and_hms_opt(0, 0, 0)?;
            Rome.from_local_datetime(&local).earliest().or_else(|| {
                Rome.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            })
        });
        if let Some(start) = start_of_next {
            return Ok(start.with_timezone(&Utc) - chrono::Duration::microseconds(1));
        }
    }
    Err(QueryError::bad(
        "as_of",
        format!(
            "as_of '{s}' is not an instant: use RFC 3339 (2025-06-30T12:00:00Z) or a date (2025-06-30, meaning the end of that day in Rome)"
        ),
        &[],
    ))
}

impl Params {
    /// Checks raw parameters against a KPI: dates, breakdowns, territories.
    pub fn parse(def: &KpiDef, raw: &RawParams) -> Result<Params, QueryError> {
        let from = raw
            .from
            .as_deref()
            .map(|s| parse_day("from", s))
            .transpose()?;
        let to = raw.to.as_deref().map(|s| parse_day("to", s)).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(QueryError::bad(
                "from",
                format!("from ({f}) is after to ({t}): the period must run forward"),
                &[],
            ));
        }
        let allowed = def.allowed_dims();
        let by = split_list(&raw.by);
        for b in &by {
            if !allowed.contains(&b.as_str()) {
                return Err(QueryError::bad(
                    "by",
                    format!(
                        "{} cannot be broken down by '{b}'; allowed: {}",
                        def.id,
                        allowed.join(", ")
                    ),
                    &allowed,
                ));
            }
        }
        if by.len() > 2 {
            return Err(QueryError::bad(
                "by",
                format!("at most two breakdowns, got {}", by.len()),
                &allowed,
            ));
        }
        if by.len() == 2 && by[0] == by[1] {
            return Err(QueryError::bad(
                "by",
                "the two breakdowns must differ",
                &allowed,
            ));
        }
        let region = split_list(&raw.region);
        let regions = reference::regions();
        for r in &region {
            if !regions.iter().any(|(code, name)| code == r || name == r) {
                let names: Vec<&str> = regions.iter().map(|(_, n)| *n).collect();
                return Err(QueryError::bad(
                    "region",
                    format!(
                        "unknown region '{r}'; use an ISTAT code (01-20) or a name: {}",
                        names.join(", ")
                    ),
                    &names,
                ));
            }
        }
        let province = split_list(&raw.province);
        for p in &province {
            if reference::province(p).is_none() {
                let siglas: Vec<&str> = reference::provinces().iter().map(|p| p.sigla).collect();
                return Err(QueryError::bad(
                    "province",
                    format!("unknown province '{p}'; use a sigla such as MI, RM, NA"),
                    &siglas,
                ));
            }
        }
        let cpi = split_list(&raw.cpi);
        for c in &cpi {
            if c.chars().count() > 16 {
                return Err(QueryError::bad(
                    "cpi",
                    format!("'{c}' is not a CPI code (1-16 characters)"),
                    &[],
                ));
            }
        }
        let as_of = raw.as_of.as_deref().map(parse_as_of).transpose()?;
        Ok(Params {
            from,
            to,
            by,
            region,
            province,
            cpi,
            as_of,
            scope: None,
            cell_keys: false,
        })
    }
}

/// The parameters a result was computed with, after defaults: enough to reproduce it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resolved {
    pub from: String,
    pub to: String,
    pub by: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub region: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub province: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpi: Vec<String>,
    /// The instant the figures stand at: the requested `as_of` (default now), but never later
    /// than the last committed ingest, so that the same `as_of` later gives the same figures.
    pub as_of: String,
    /// The latest committed batch: identifies the store's content.
    pub data_version: String,
    /// The territory the figures were restricted to, when the caller has a scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<TerritoryScope>,
}

/// What the store offers the filters of a page.
#[derive(Debug, Clone, Default)]
pub struct StoreFacts {
    pub data_version: String,
    /// The date of the latest event.
    pub latest: Option<NaiveDate>,
    /// Every (province sigla, CPI code) pair seen.
    pub cpis: Vec<(String, String)>,
}

/// A KPI's answer, in the shape of KPIS.md.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KpiResult {
    pub kpi: String,
    pub params: Resolved,
    /// Column order for tables and CSV.
    #[serde(skip)]
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    /// For a survival curve without breakdown: the median days to placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_days: Option<Value>,
    /// The cell keys of the rows' counts, for perturbation; never shown (see [`cells`]).
    #[serde(skip)]
    pub keys: Vec<cells::RowKeys>,
    /// For a survival curve: its life tables with cell keys, for perturbation; never shown.
    #[serde(skip)]
    pub life: Vec<cells::LifeGroup>,
    /// How the cells are protected, when they are not exact (see `auth::disclosure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protection: Option<cells::Protection>,
}

/// The engine: a shared DataFusion runtime (its caches) over one data folder.
pub struct Engine {
    layout: Layout,
    runtime: Arc<RuntimeEnv>,
    /// Shared views computed once per effective `as_of` (which fixes the data) and view, most
    /// recently used last: the spell-based KPIs reuse them instead of recomputing the spells.
    views: std::sync::Mutex<Vec<Materialized>>,
    /// The newest committed batch when the store was last looked at.
    seen_batch: std::sync::Mutex<String>,
    /// The ledger as last read, with the ledger folder's mtime then: every query needs it, and
    /// it only changes when a batch commits (which changes the folder).
    ledger: std::sync::Mutex<Option<LedgerSnapshot>>,
    /// Whether shared views are also written to `views/` and read back from there (the server:
    /// a restart then reads a view of unchanged data instead of rebuilding it).
    persist: std::sync::atomic::AtomicBool,
    /// The secret of the record keys (see [`cellkey`]).
    cell_seed: u64,
}

/// One shared view at one `as_of`, as an in-memory table once built.
struct Materialized {
    as_of_us: i64,
    name: String,
    table: Arc<tokio::sync::OnceCell<Arc<datafusion::datasource::MemTable>>>,
}

/// The ledger as read, with the folder's mtime then.
type LedgerSnapshot = (std::time::SystemTime, Arc<Vec<crate::store::LedgerEntry>>);

/// How many materialised views are kept: the fourteen shared views for three `as_of` instants (the
/// published data, newer data warming up, and one more for a query with an older `as_of`).
const VIEW_CACHE_ENTRIES: usize = 42;

impl Engine {
    pub fn open(data_dir: &Path) -> Result<Engine, QueryError> {
        let layout = Layout::new(data_dir);
        if !layout.ledger().exists() {
            return Err(QueryError::NoStore(data_dir.to_path_buf()));
        }
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(
                CacheManagerConfig::default().with_list_files_cache_ttl(Some(LIST_FILES_TTL)),
            )
            .build_arc()?;
        let cell_seed =
            cellkey::load_or_create(data_dir).map_err(|source| QueryError::CellKey {
                path: data_dir.to_path_buf(),
                source,
            })?;
        Ok(Engine {
            layout,
            runtime,
            views: std::sync::Mutex::new(Vec::new()),
            seen_batch: std::sync::Mutex::new(String::new()),
            ledger: std::sync::Mutex::new(None),
            persist: std::sync::atomic::AtomicBool::new(false),
            cell_seed,
        })
    }

    /// Keeps a copy of every shared view in `views/` and reads it back when a view of the same
    /// data (the same `as_of`) and the same SQL is needed again, for instance after a restart.
    /// Off by default, so the command line and the benchmarks always compute.
    pub fn persist_views(&self, on: bool) {
        self.persist.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Readies the newest data before a server takes requests: every shared view (read back
    /// from `views/` or built) and every Parquet footer (into DataFusion's metadata cache), so
    /// that no visitor's page pays for them.
    pub async fn ready(&self) -> Result<(), QueryError> {
        let (as_of_us, _) = self.as_of(None)?;
        let names = view_names();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let ctx = self.session(as_of_us, &all).await?;
        ctx.sql("SELECT count(*) FROM ev").await?.collect().await?;
        Ok(())
    }

    /// A fresh session per query (cheap: the runtime and its caches are shared), with `ev`
    /// registered as the events as of `as_of`, and the shared views.
    async fn session(&self, as_of_us: i64, needed: &[&str]) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true);
        let ctx = SessionContext::new_with_config_rt(config, Arc::clone(&self.runtime));
        ctx.register_udf(cellkey::udf(self.cell_seed));
        let events_dir = self.layout.events();
        std::fs::create_dir_all(&events_dir).map_err(|source| StoreError::Io {
            action: "cannot create",
            path: events_dir.clone(),
            source,
        })?;
        let url = ListingTableUrl::parse(format!(
            "{}/",
            events_dir
                .canonicalize()
                .map_err(|source| StoreError::Io {
                    action: "cannot open",
                    path: events_dir.clone(),
                    source
                })?
                .display()
        ))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![
                ("year".to_owned(), DataType::Int32),
                ("month".to_owned(), DataType::Int32),
            ]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(events_schema());
        ctx.register_table("events", Arc::new(ListingTable::try_new(config)?))?;
        let ts = ScalarValue::TimestampMicrosecond(Some(as_of_us), Some("UTC".into()));
        let ev = ctx
            .table("events")
            .await?
            .filter(col("ingested_at").lt_eq(lit(ts)))?;
        ctx.register_table("ev", ev.into_view())?;
        register_reference(&ctx)?;
        self.register_views(&ctx, as_of_us, needed).await?;
        Ok(ctx)
    }

    /// Registers the shared views a query needs (and those they build on) as in-memory tables,
    /// computing each on first use. The store only grows by committed batches and `as_of`
    /// never exceeds the last commit, so the same `as_of` always means the same data: the cache
    /// never goes stale.
    async fn register_views(
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
                .then(|| views::path(&self.layout, as_of_us, &name, stmt));
            // Only the data now is worth a copy: an older `as_of` is asked for now and then.
            let store_copy = copy.is_some() && self.as_of(None).is_ok_and(|(l, _)| l == as_of_us);
            let table = cell
                .get_or_try_init(|| async {
                    let started = std::time::Instant::now();
                    if let Some(path) = copy.clone() {
                        let read = tokio::task::spawn_blocking(move || views::read(&path))
                            .await
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                        match read {
                            Ok(Some((schema, parts))) => {
                                let rows: usize =
                                    parts.iter().flatten().map(RecordBatch::num_rows).sum();
                                tracing::info!(view = %name, rows, ms = started.elapsed().as_millis() as u64, "view read from disk");
                                return Ok(Arc::new(datafusion::datasource::MemTable::try_new(
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
                    let parts = views::two_parts(
                        views::tight(&schema, df.collect().await?).map_err(DataFusionError::from)?,
                    );
                    let rows: usize = parts.iter().flatten().map(RecordBatch::num_rows).sum();
                    tracing::info!(view = %name, rows, ms = started.elapsed().as_millis() as u64, "view built");
                    if let Some(path) = copy.clone().filter(|_| store_copy) {
                        // Written off the query's path; a failed copy only costs a rebuild.
                        let (schema, parts, layout) =
                            (Arc::clone(&schema), parts.clone(), self.layout.clone());
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = views::write(&layout, &path, &schema, &parts) {
                                tracing::warn!(path = %path.display(), error = %e, "cannot store a view");
                            }
                        });
                    }
                    Ok::<_, QueryError>(Arc::new(datafusion::datasource::MemTable::try_new(
                        schema, parts,
                    )?))
                })
                .await?;
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(name.as_str(), Arc::clone(table) as _)?;
        }
        Ok(())
    }

    /// The ledger, read again only when its folder changed.
    /// Keyed by the folder's mtime, which a commit changes. An mtime within the last two
    /// seconds is not trusted (two commits within one tick of the file-system clock can share
    /// it; git's "racy" rule): then the ledger is read again.
    fn ledger(&self) -> Result<Arc<Vec<crate::store::LedgerEntry>>, QueryError> {
        let mtime = std::fs::metadata(self.layout.ledger())
            .and_then(|m| m.modified())
            .ok();
        let settled = mtime.filter(|t| {
            std::time::SystemTime::now()
                .duration_since(*t)
                .is_ok_and(|age| age >= Duration::from_secs(2))
        });
        let mut g = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(t), Some((seen, entries))) = (settled, g.as_ref())
            && t == *seen
        {
            return Ok(Arc::clone(entries));
        }
        let entries = Arc::new(self.layout.read_ledger()?);
        *g = settled.map(|t| (t, Arc::clone(&entries)));
        Ok(entries)
    }

    /// The effective `as_of` (µs) and the data version.
    fn as_of(&self, requested: Option<DateTime<Utc>>) -> Result<(i64, String), QueryError> {
        let requested = requested.unwrap_or_else(Utc::now).timestamp_micros();
        let ledger = self.ledger()?;
        let committed: Vec<_> = ledger
            .iter()
            .filter(|e| e.status == BatchStatus::Committed)
            .collect();
        let last = committed
            .iter()
            .filter_map(|e| DateTime::parse_from_rfc3339(&e.ingested_at).ok())
            .map(|t| t.timestamp_micros())
            .max();
        let effective = match last {
            Some(l) => requested.min(l),
            None => requested,
        };
        // A batch committed since the last look: forget the cached file listing now rather
        // than when its TTL runs out, or the new version's figures would miss the new files.
        let newest = committed
            .iter()
            .map(|e| e.batch_id.as_str())
            .max()
            .unwrap_or("");
        {
            let mut seen = self.seen_batch.lock().unwrap_or_else(|p| p.into_inner());
            if *seen != newest {
                if let Some(c) = self.runtime.cache_manager.get_list_files_cache() {
                    c.clear();
                }
                *seen = newest.to_owned();
            }
        }
        let version = committed
            .iter()
            .filter(|e| {
                DateTime::parse_from_rfc3339(&e.ingested_at)
                    .is_ok_and(|t| t.timestamp_micros() <= effective)
            })
            .filter(|e| e.stored > 0)
            .map(|e| e.batch_id.clone())
            .max()
            .unwrap_or_else(|| "empty".to_owned());
        Ok((effective, version))
    }

    /// The data now: the effective `as_of` of a query without one, and its data version.
    pub fn latest(&self) -> Result<(DateTime<Utc>, String), QueryError> {
        let (us, version) = self.as_of(None)?;
        Ok((
            DateTime::from_timestamp_micros(us).expect("valid instant"),
            version,
        ))
    }

    /// What the filters of a page offer: the latest event date and every (province, CPI) pair
    /// seen in the store, as of an instant (the last commit when `None`). Read from the batches'
    /// summaries in the ledger; a store with batches from before them is scanned instead.
    pub async fn facts_at(&self, as_of: Option<DateTime<Utc>>) -> Result<StoreFacts, QueryError> {
        let (as_of_us, data_version) = self.as_of(as_of)?;
        match self.summarised(as_of_us, &data_version)? {
            Some(facts) => Ok(facts),
            None => self.facts_by_scan(as_of_us, data_version).await,
        }
    }

    /// [`Engine::facts_at`] the slow way, over every event: for ledgers without summaries, and
    /// for the test that proves both agree.
    pub async fn facts_scanned(
        &self,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<StoreFacts, QueryError> {
        let (as_of_us, data_version) = self.as_of(as_of)?;
        self.facts_by_scan(as_of_us, data_version).await
    }

    async fn facts_by_scan(
        &self,
        as_of_us: i64,
        data_version: String,
    ) -> Result<StoreFacts, QueryError> {
        let ctx = self.session(as_of_us, &[]).await?;
        let batches = ctx
            .sql(
                "SELECT province, cpi_code, max(occurred_date) AS latest FROM ev \
                 GROUP BY province, cpi_code ORDER BY province, cpi_code",
            )
            .await?
            .collect()
            .await?;
        let mut cpis = Vec::new();
        let mut latest: Option<NaiveDate> = None;
        for r in to_json_rows(&batches) {
            let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
            if let (Some(p), Some(c)) = (text("province"), text("cpi_code")) {
                cpis.push((p, c));
            }
            if let Some(d) = text("latest").and_then(|d| d.parse::<NaiveDate>().ok()) {
                latest = latest.max(Some(d));
            }
        }
        Ok(StoreFacts {
            data_version,
            latest,
            cpis,
        })
    }

    /// The latest event date and the sorted (province, CPI) pairs of the batches committed by
    /// `as_of_us`, from their ledger summaries; `None` if any of them has none.
    fn summarised(
        &self,
        as_of_us: i64,
        data_version: &str,
    ) -> Result<Option<StoreFacts>, QueryError> {
        let mut latest = None;
        let mut cpis = std::collections::BTreeSet::new();
        let complete = self.each_summary(as_of_us, |s| {
            latest = latest.max(s.latest_event);
            cpis.extend(s.cpis.iter().cloned());
        })?;
        Ok(complete.then(|| StoreFacts {
            data_version: data_version.to_owned(),
            latest,
            cpis: cpis.into_iter().collect(),
        }))
    }

    /// The latest event date by `as_of_us` from the ledger summaries, if all batches have one.
    fn summarised_latest(&self, as_of_us: i64) -> Result<Option<Option<NaiveDate>>, QueryError> {
        let mut latest = None;
        let complete = self.each_summary(as_of_us, |s| latest = latest.max(s.latest_event))?;
        Ok(complete.then_some(latest))
    }

    /// Calls `f` on the summary of every batch with events committed by `as_of_us`; `false`
    /// (and stops) at a batch without one.
    fn each_summary(
        &self,
        as_of_us: i64,
        mut f: impl FnMut(&crate::store::BatchSummary),
    ) -> Result<bool, QueryError> {
        let ledger = self.ledger()?;
        for e in ledger
            .iter()
            .filter(|e| e.status == BatchStatus::Committed && e.stored > 0)
        {
            let Ok(t) = DateTime::parse_from_rfc3339(&e.ingested_at) else {
                return Ok(false);
            };
            if t.timestamp_micros() > as_of_us {
                continue;
            }
            let Some(s) = &e.summary else {
                return Ok(false);
            };
            f(s);
        }
        Ok(true)
    }

    /// Rows rejected by ingest, by CPI (as written in the row), optionally within provinces.
    pub async fn rejected_by_cpi(&self, provinces: &[String]) -> Result<KpiResult, QueryError> {
        let (as_of_us, data_version) = self.as_of(None)?;
        let ctx = self.session(as_of_us, &[]).await?;
        let dir = self.layout.quarantine();
        let mut rows = Vec::new();
        if dir.exists() && !crate::store::parquet_files(&dir)?.is_empty() {
            let url = ListingTableUrl::parse(format!(
                "{}/",
                dir.canonicalize()
                    .map_err(|source| StoreError::Io {
                        action: "cannot open",
                        path: dir.clone(),
                        source
                    })?
                    .display()
            ))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .infer_schema(&ctx.state())
                .await?;
            ctx.register_table("quarantine", Arc::new(ListingTable::try_new(config)?))?;
            // One placeholder per province: the values never enter the SQL text.
            let mut values: HashMap<String, ScalarValue> = HashMap::new();
            let mut names = Vec::new();
            for (i, p) in provinces.iter().enumerate() {
                values.insert(format!("p_{i}"), ScalarValue::Utf8(Some(p.clone())));
                names.push(format!("$p_{i}"));
            }
            let filter = if names.is_empty() {
                String::new()
            } else {
                format!("WHERE province IN ({})", names.join(", "))
            };
            let sql = format!(
                "SELECT coalesce(cpi_code, '(non indicato)') AS cpi, \
                 coalesce(province, '') AS province, count(*) AS value FROM quarantine \
                 {filter} GROUP BY 1, 2 ORDER BY 3 DESC, 1"
            );
            let batches = bound(&ctx, &sql, values).await?.collect().await?;
            rows = to_json_rows(&batches);
        }
        Ok(KpiResult {
            kpi: "rejected_by_cpi".into(),
            params: Resolved {
                from: String::new(),
                to: String::new(),
                by: vec!["cpi".into()],
                region: Vec::new(),
                province: provinces.to_vec(),
                cpi: Vec::new(),
                as_of: DateTime::from_timestamp_micros(as_of_us)
                    .expect("valid instant")
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                data_version,
                scope: None,
            },
            columns: ["cpi", "province", "value"].map(String::from).to_vec(),
            rows,
            median_days: None,
            keys: Vec::new(),
            life: Vec::new(),
            protection: None,
        })
    }

    /// Runs one KPI with raw (unchecked) parameters.
    pub async fn run_raw(&self, id: &str, raw: &RawParams) -> Result<KpiResult, QueryError> {
        let def = find(id).ok_or_else(|| QueryError::UnknownKpi { id: id.to_owned() })?;
        let params = Params::parse(def, raw)?;
        self.run(def, &params).await
    }

    /// For tuning: one KPI's result, the time of a run with the shared views already built (as
    /// in a running server) and that run's measured plan (EXPLAIN ANALYZE). `sql` replaces the
    /// KPI's row query, to try a rewrite without rebuilding.
    pub async fn explain_raw(
        &self,
        id: &str,
        raw: &RawParams,
        sql: Option<String>,
        cell_keys: bool,
    ) -> Result<String, QueryError> {
        let mut def = find(id)
            .ok_or_else(|| QueryError::UnknownKpi { id: id.to_owned() })?
            .clone();
        if let Some(sql) = sql {
            // A command-line run: the one string lives until the process ends.
            def.sql = Box::leak(sql.into_boxed_str());
        }
        let mut p = Params::parse(&def, raw)?;
        p.cell_keys = cell_keys;
        let result = self.run(&def, &p).await?;
        // Timings here are noisy: the best and the median of five runs.
        let mut ms = Vec::new();
        for _ in 0..5 {
            let started = std::time::Instant::now();
            self.run(&def, &p).await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(f64::total_cmp);
        let (as_of_us, _) = self.as_of(p.as_of)?;
        let (sql, mut values) = wrapper_sql(&def, &p);
        let (ctx, _, _) = self.prepare(&sql, as_of_us, &p, &mut values).await?;
        let batches = bound(&ctx, &format!("EXPLAIN ANALYZE {sql}"), values)
            .await?
            .collect()
            .await?;
        let plan = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .map_err(DataFusionError::from)?;
        Ok(format!(
            "{}\nwarm runs: best {:.1} ms, median {:.1} ms\n{plan}\n",
            output::to_table(&result),
            ms[0],
            ms[2]
        ))
    }

    /// Runs one KPI.
    pub async fn run(&self, def: &KpiDef, p: &Params) -> Result<KpiResult, QueryError> {
        let (as_of_us, data_version) = self.as_of(p.as_of)?;
        let (sql, mut values) = wrapper_sql(def, p);
        let (ctx, from, to) = self.prepare(&sql, as_of_us, p, &mut values).await?;
        let batches = bound(&ctx, &sql, values).await?.collect().await?;
        let mut rows = to_json_rows(&batches);
        let by = p.by.clone();
        let mut median_days = None;
        let mut life = Vec::new();
        let mut keys = Vec::new();
        if def.kind != Kind::Survival {
            keys = cells::take_keys(&mut rows);
        }
        let columns = match def.kind {
            Kind::Survival => {
                if p.cell_keys {
                    life = cells::life_tables(&by, &rows);
                }
                let (r, m) = output::survival_rows(&by, rows);
                rows = r;
                median_days = m;
                let mut c = by.clone();
                c.extend(
                    [
                        "day",
                        "at_risk",
                        "events",
                        "censored",
                        "survival",
                        "lower",
                        "upper",
                        "median_days",
                    ]
                    .map(String::from),
                );
                c
            }
            Kind::Funnel => {
                // Each group's row becomes one row per stage, in the same order.
                keys = keys
                    .iter()
                    .flat_map(|k| {
                        catalog::FUNNEL_STAGES.iter().map(move |(_, c)| {
                            cells::RowKeys::from([
                                ("persons".to_owned(), k.get(*c).copied().unwrap_or(0)),
                                (
                                    "accepted".to_owned(),
                                    k.get("s_accepted").copied().unwrap_or(0),
                                ),
                            ])
                        })
                    })
                    .collect();
                rows = output::funnel_rows(&by, rows);
                let mut c = by.clone();
                c.extend(["stage", "persons", "share_of_accepted"].map(String::from));
                c
            }
            _ => {
                let mut c = by.clone();
                c.push("value".into());
                match def.kind {
                    Kind::Rate => c.extend(["numerator", "denominator"].map(String::from)),
                    Kind::Median | Kind::Mean => c.push("n".into()),
                    _ => {}
                }
                c
            }
        };
        let as_of = DateTime::from_timestamp_micros(as_of_us)
            .expect("valid instant")
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Ok(KpiResult {
            kpi: def.id.to_owned(),
            params: Resolved {
                from: from.to_string(),
                to: to.to_string(),
                by,
                region: p.region.clone(),
                province: p.province.clone(),
                cpi: p.cpi.clone(),
                as_of,
                data_version,
                scope: p.scope.clone(),
            },
            columns,
            rows,
            median_days,
            keys,
            life,
            protection: None,
        })
    }

    /// A session for `sql` (with the shared views it names) and the resolved period, which
    /// also goes into `values` as `$from` and `$to`.
    async fn prepare(
        &self,
        sql: &str,
        as_of_us: i64,
        p: &Params,
        values: &mut HashMap<String, ScalarValue>,
    ) -> Result<(SessionContext, NaiveDate, NaiveDate), QueryError> {
        let names = view_names();
        let needed: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|v| mentions(sql, v))
            .collect();
        let ctx = self.session(as_of_us, &needed).await?;
        let (from, to) = self.period(&ctx, as_of_us, p).await?;
        values.insert("from".into(), ScalarValue::Date32(Some(days(from))));
        values.insert("to".into(), ScalarValue::Date32(Some(days(to))));
        // A `param_` view is one value, bound as the placeholder of its name: a literal the
        // planner can prune files and row groups by, which a subquery is not.
        for name in needed.iter().filter(|n| n.starts_with("param_")) {
            let batches = ctx.table(*name).await?.collect().await?;
            let value = match batches.iter().find(|b| b.num_rows() > 0) {
                Some(b) => ScalarValue::try_from_array(b.column(0), 0)?,
                None => {
                    return Err(DataFusionError::Plan(format!("view {name} has no row")).into());
                }
            };
            values.insert((*name).to_owned(), value);
        }
        Ok((ctx, from, to))
    }

    /// Defaults: `from` = 1 January of the year of the latest event, `to` = its date.
    async fn period(
        &self,
        ctx: &SessionContext,
        as_of_us: i64,
        p: &Params,
    ) -> Result<(NaiveDate, NaiveDate), QueryError> {
        if let (Some(f), Some(t)) = (p.from, p.to) {
            return Ok((f, t));
        }
        let latest = match self.summarised_latest(as_of_us)? {
            Some(latest) => latest,
            None => {
                let batches = ctx
                    .sql("SELECT max(occurred_date) AS latest FROM ev")
                    .await?
                    .collect()
                    .await?;
                first_date(&batches)
            }
        };
        let latest = latest.unwrap_or_else(|| Utc::now().with_timezone(&Rome).date_naive());
        let to = p.to.unwrap_or(latest);
        let from = p
            .from
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(to.year(), 1, 1).expect("1 January"));
        if from > to {
            return Err(QueryError::bad(
                "from",
                format!("from ({from}) is after to ({to}): the period must run forward"),
                &[],
            ));
        }
        Ok((from, to))
    }
}

/// `sql` with its placeholders bound to `values` (user input never enters the text).
async fn bound(
    ctx: &SessionContext,
    sql: &str,
    values: HashMap<String, ScalarValue>,
) -> Result<datafusion::dataframe::DataFrame, QueryError> {
    Ok(ctx.sql(sql).await?.with_param_values(ParamValues::Map(
        values.into_iter().map(|(k, v)| (k, v.into())).collect(),
    ))?)
}

/// The first row's first column as a date (a `SELECT max(date)` answer), if any.
fn first_date(batches: &[RecordBatch]) -> Option<NaiveDate> {
    batches.first().and_then(|b| {
        b.column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Date32Array>()
            .and_then(|a| {
                (!a.is_empty() && !a.is_null(0))
                    .then(|| a.value_as_date(0))
                    .flatten()
            })
    })
}

/// The names of the shared views of `queries/_views.sql`.
fn view_names() -> Vec<String> {
    catalog::view_statements()
        .iter()
        .filter_map(|st| view_name(st))
        .collect()
}

/// Whether SQL text names a relation (as a whole word).
fn mentions(sql: &str, name: &str) -> bool {
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

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// Reference tables: provinces with their regions.
fn register_reference(ctx: &SessionContext) -> Result<(), QueryError> {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    let ps = reference::provinces();
    let schema = Arc::new(Schema::new(vec![
        Field::new("sigla", DataType::Utf8, false),
        Field::new("province_name", DataType::Utf8, false),
        Field::new("region_code", DataType::Utf8, false),
        Field::new("region_name", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(ps.iter().map(|p| p.sigla))),
            Arc::new(StringArray::from_iter_values(ps.iter().map(|p| p.name))),
            Arc::new(StringArray::from_iter_values(
                ps.iter().map(|p| p.region_code),
            )),
            Arc::new(StringArray::from_iter_values(
                ps.iter().map(|p| p.region_name),
            )),
        ],
    )
    .map_err(DataFusionError::from)?;
    ctx.register_table(
        "ref_provinces",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    // Contract codes of the Comunicazioni Obbligatorie with their class.
    let rows: Vec<Vec<&str>> = reference::CONTRACT_CODES_CSV
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("contract_class", DataType::Utf8, false),
        Field::new("stable", DataType::Utf8, false),
        Field::new("meaning", DataType::Utf8, false),
    ]));
    let cols = (0..4)
        .map(|i| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i])))
                as datafusion::arrow::array::ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(DataFusionError::from)?;
    ctx.register_table(
        "ref_contract_codes",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

/// The SQL expression of a breakdown over the KPI's rows `k`, applications `a` and provinces `rp`.
fn dim_expr(dim: &str) -> String {
    match dim {
        "region" => "rp.region_name".into(),
        "province" => "k.province".into(),
        "cpi" => "k.cpi".into(),
        "month" => "to_char(k.d, '%Y-%m')".into(),
        "quarter" => "concat(CAST(CAST(date_part('year', k.d) AS INT) AS VARCHAR), '-Q', CAST(CAST(date_part('quarter', k.d) AS INT) AS VARCHAR))".into(),
        "year" => "CAST(date_part('year', k.d) AS INT)".into(),
        "gender" => "coalesce(a.gender, 'unknown')".into(),
        "category" => "coalesce(a.category, 'unknown')".into(),
        "list_type" => "coalesce(a.list_type, 'unknown')".into(),
        "age_band" => "CASE WHEN a.birth_year IS NULL THEN 'unknown' \
             WHEN CAST(date_part('year', k.d) AS INT) - a.birth_year < 15 THEN 'unknown' \
             WHEN CAST(date_part('year', k.d) AS INT) - a.birth_year <= 29 THEN '15-29' \
             WHEN CAST(date_part('year', k.d) AS INT) - a.birth_year <= 54 THEN '30-54' \
             ELSE '55+' END"
            .into(),
        "disability_band" => "CASE WHEN a.disability_pct IS NULL THEN 'n/a' \
             WHEN a.disability_pct < 46 THEN '<46' \
             WHEN a.disability_pct <= 66 THEN '46-66' \
             WHEN a.disability_pct <= 79 THEN '67-79' \
             ELSE '80-100' END"
            .into(),
        own => format!("k.{own}"),
    }
}

/// Wraps a KPI's row query with breakdowns, territorial filters and the aggregation of its kind.
/// Only names from fixed lists enter the text; user values go through placeholders.
fn wrapper_sql(def: &KpiDef, p: &Params) -> (String, HashMap<String, ScalarValue>) {
    let mut values = HashMap::new();
    let dims: Vec<(String, String)> = p.by.iter().map(|d| (d.clone(), dim_expr(d))).collect();
    let needs_person =
        p.by.iter()
            .any(|d| catalog::PERSON_DIMS.contains(&d.as_str()));
    let filters = territory_filters(p, "k.province", "k.cpi", "rp", &mut values);
    // The record key of each row's unit, for perturbation (see `cellkey`): summed per cell.
    let unit = if def.person {
        "k.person_id"
    } else {
        "k.vacancy_id"
    };
    // With cell keys, distinct persons are counted over one row per (cell, person), so that
    // the key sums each person once.
    let distinct = p.cell_keys && def.kind == Kind::CountDistinct;
    let mut aggs: Vec<String> = match def.kind {
        Kind::Count | Kind::Stock => vec!["count(*) AS value".into()],
        Kind::CountDistinct if distinct => vec!["count(*) AS value".into()],
        Kind::CountDistinct => vec!["count(DISTINCT k.person_id) AS value".into()],
        Kind::Sum => vec!["coalesce(sum(k.x), 0) AS value".into()],
        Kind::Rate => vec![
            "CASE WHEN count(*) = 0 THEN CAST(NULL AS DOUBLE) \
             ELSE CAST(coalesce(sum(k.num), 0) AS DOUBLE) / CAST(count(*) AS DOUBLE) END AS value"
                .into(),
            "coalesce(sum(k.num), 0) AS numerator".into(),
            "count(*) AS denominator".into(),
        ],
        Kind::Median => vec![
            "median(CAST(k.x AS DOUBLE)) AS value".into(),
            "count(k.x) AS n".into(),
        ],
        Kind::Mean => vec![
            "avg(CAST(k.x AS DOUBLE)) AS value".into(),
            "count(k.x) AS n".into(),
        ],
        Kind::Survival => vec!["k.duration AS duration".into(), "k.event AS event".into()],
        Kind::Funnel => catalog::FUNNEL_STAGES
            .iter()
            .map(|(_, c)| format!("coalesce(sum(k.{c}), 0) AS {c}"))
            .collect(),
    };
    if p.cell_keys {
        aggs.extend(key_aggregates(def, unit));
    }
    let dim_cols: Vec<String> = dims
        .iter()
        .map(|(name, e)| format!("{e} AS \"{name}\""))
        .collect();
    // For distinct persons: one row per (cell, person) first, then counted per cell.
    let select: Vec<String> = if distinct {
        dims.iter()
            .map(|(name, _)| format!("\"{name}\""))
            .chain(aggs)
            .collect()
    } else {
        dim_cols.iter().cloned().chain(aggs).collect()
    };
    let mut sql = format!("WITH k AS (\n{}\n)\n", kpi_body(def.sql));
    let mut from = String::from("FROM k\n");
    // The regions come from the provinces table: joined only when a region is asked for, since
    // DataFusion keeps even an unused left join, a hash probe per row.
    if !p.region.is_empty() || p.by.iter().any(|d| d == "region") {
        from.push_str("LEFT JOIN ref_provinces rp ON rp.sigla = k.province\n");
    }
    if needs_person {
        from.push_str(
            "LEFT JOIN apps a ON a.person_id = k.person_id AND a.app_date <= k.d \
             AND (a.next_app_date IS NULL OR a.next_app_date > k.d)\n",
        );
    }
    let mut filters = filters;
    if distinct {
        filters.push(format!("{unit} IS NOT NULL"));
    }
    if !filters.is_empty() {
        from.push_str(&format!("WHERE {}\n", filters.join(" AND ")));
    }
    if distinct {
        let g: Vec<&str> = dims.iter().map(|(_, e)| e.as_str()).chain([unit]).collect();
        sql.push_str(&format!(
            ", u AS (\nSELECT {}\n{from}GROUP BY {}\n)\nSELECT {}\nFROM u\n",
            dim_cols
                .iter()
                .cloned()
                .chain([format!("{}({unit}) AS unit_key", cellkey::UDF_NAME)])
                .collect::<Vec<_>>()
                .join(", "),
            g.join(", "),
            select.join(",\n       ")
        ));
        if !dims.is_empty() {
            let g: Vec<String> = dims.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            sql.push_str(&format!("GROUP BY {}\n", g.join(", ")));
        }
    } else {
        sql.push_str(&format!("SELECT {}\n{from}", select.join(",\n       ")));
        let grouped = def.kind != Kind::Survival;
        if grouped && !dims.is_empty() {
            let g: Vec<&str> = dims.iter().map(|(_, e)| e.as_str()).collect();
            sql.push_str(&format!("GROUP BY {}\n", g.join(", ")));
        }
    }
    if !dims.is_empty() {
        let o: Vec<String> = dims
            .iter()
            .map(|(n, _)| format!("\"{n}\" NULLS LAST"))
            .collect();
        sql.push_str(&format!("ORDER BY {}\n", o.join(", ")));
    }
    (sql, values)
}

/// The key sum of each count a cell publishes, as `_ck_<column>` (see [`cells`]): what
/// perturbation needs beside the exact figures.
fn key_aggregates(def: &KpiDef, unit: &str) -> Vec<String> {
    let key = format!("{}({unit})", cellkey::UDF_NAME);
    let keyed = |cond: &str| format!("coalesce(sum(CASE WHEN {cond} THEN {key} ELSE 0 END), 0)");
    let all = format!("coalesce(sum({key}), 0)");
    match def.kind {
        Kind::Count | Kind::Stock | Kind::Sum => vec![format!("{all} AS _ck_value")],
        Kind::CountDistinct => vec!["coalesce(sum(unit_key), 0) AS _ck_value".into()],
        Kind::Rate => vec![
            format!("{} AS _ck_numerator", keyed("k.num > 0")),
            format!("{all} AS _ck_denominator"),
        ],
        Kind::Median | Kind::Mean => vec![format!("{} AS _ck_n", keyed("k.x IS NOT NULL"))],
        Kind::Survival => vec![format!("{key} AS _ck")],
        Kind::Funnel => catalog::FUNNEL_STAGES
            .iter()
            .map(|(_, c)| format!("{} AS _ck_{c}", keyed(&format!("k.{c} > 0"))))
            .collect(),
    }
}

/// The territorial filters (asked for, and the caller's scope) over a province column, a CPI
/// column and a joined `ref_provinces` alias. Values go through placeholders added to `values`.
fn territory_filters(
    p: &Params,
    province: &str,
    cpi: &str,
    rp: &str,
    values: &mut HashMap<String, ScalarValue>,
) -> Vec<String> {
    let mut filters: Vec<String> = Vec::new();
    let mut placeholders = |prefix: &str, vals: &[String]| -> String {
        let names: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let name = format!("{prefix}_{i}");
                values.insert(name.clone(), ScalarValue::Utf8(Some(v.clone())));
                format!("${name}")
            })
            .collect();
        names.join(", ")
    };
    if !p.region.is_empty() {
        let list = placeholders("region", &p.region);
        filters.push(format!(
            "({rp}.region_code IN ({list}) OR {rp}.region_name IN ({list}))"
        ));
    }
    if !p.province.is_empty() {
        filters.push(format!(
            "{province} IN ({})",
            placeholders("province", &p.province)
        ));
    }
    if !p.cpi.is_empty() {
        filters.push(format!("{cpi} IN ({})", placeholders("cpi", &p.cpi)));
    }
    // The caller's territorial restriction (a manager's scope), on top of what was asked.
    if let Some(scope) = &p.scope {
        let mut any: Vec<String> = Vec::new();
        if !scope.provinces.is_empty() {
            any.push(format!(
                "{province} IN ({})",
                placeholders("scope_province", &scope.provinces)
            ));
        }
        if !scope.cpis.is_empty() {
            any.push(format!(
                "{cpi} IN ({})",
                placeholders("scope_cpi", &scope.cpis)
            ));
        }
        filters.push(if any.is_empty() {
            "FALSE".into()
        } else {
            format!("({})", any.join(" OR "))
        });
    }
    filters
}

/// A KPI file's query, ready to nest as a CTE: no trailing semicolon (the header comments stay,
/// harmless inside the CTE).
fn kpi_body(sql: &str) -> &str {
    sql.trim().trim_end_matches(';')
}

/// Record batches as JSON objects, numbers kept as numbers and NaN as null.
pub fn to_json_rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
        StringViewArray, UInt64Array,
    };
    use datafusion::arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let mut row = Map::new();
            for (j, field) in schema.fields().iter().enumerate() {
                let c = b.column(j);
                let v = if c.is_null(i) {
                    Value::Null
                } else if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<Int32Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<UInt64Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<Float64Array>() {
                    serde_json::Number::from_f64(a.value(i))
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                } else if let Some(a) = c.as_any().downcast_ref::<BooleanArray>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<StringViewArray>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<Date32Array>() {
                    a.value_as_date(i)
                        .map(|d| Value::from(d.to_string()))
                        .unwrap_or(Value::Null)
                } else {
                    Value::from(array_value_to_string(c, i).unwrap_or_default())
                };
                row.insert(field.name().clone(), v);
            }
            out.push(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_dates_whose_next_midnight_did_not_exist_in_rome() {
        // 1966-05-22 began at 01:00 CEST (clocks moved at midnight), which is 23:00 UTC of the
        // 21st: 1966-05-21 ends a microsecond before.
        let end = parse_as_of("1966-05-21").unwrap();
        assert_eq!(
            end.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "1966-05-21T22:59:59.999999Z"
        );
        for d in ["1967-05-27", "1979-05-26", "1940-06-14", "2025-06-30"] {
            assert!(parse_as_of(d).is_ok(), "{d}");
        }
    }
}
