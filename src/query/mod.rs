//! The KPI engine: DataFusion over the Parquet store, one SQL file per KPI.
//!
//! It knows nothing of HTTP or of the terminal: callers build [`RawParams`] from whatever they
//! read, [`Engine::run`] validates them and answers a [`KpiResult`] in the shape of KPIS.md.
//! This file is the front door: the engine, its errors and results, and a KPI's run from the
//! checked parameters to the result. The parts are in rooms of their own: the parameters
//! ([`params`]), the SQL text ([`sql`]), the session over the store, the shared views, the
//! answers other than KPIs ([`sources`]) and the shaping of rows ([`output`]).

pub mod casemix;
pub mod catalog;
pub mod cellkey;
pub mod cells;
#[cfg(feature = "distributed")]
mod cluster;
pub mod cohort;
mod memory;
pub mod output;
pub mod params;
mod session;
pub mod sources;
mod sql;
pub mod survival;
mod views;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Europe::Rome;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use serde::Serialize;

pub use crate::row::{Cell, Row, col};
use crate::store::{Layout, LedgerCache, Snapshot, StoreError};
pub use catalog::{Kind, KpiDef, catalog, find};
pub use cohort::{Cohort, Entry};
pub use memory::{DEFAULT_MEMORY_LIMIT, EngineSettings, default_max_queries};
pub use output::to_rows;
pub use params::{Dim, Params, RawParams, TerritoryScope, parse_as_of};
use session::first_date;
pub use sources::StoreFacts;
use sql::{bound, days, wrapper_sql};
use views::{mentions, view_names};

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
    /// A query that needs more memory than the pool allows even when its operators spill.
    #[error(
        "the query needs more memory than engine.memory_limit allows, even spilling to disk; raise engine.memory_limit (MIRATO_ENGINE_MEMORY_LIMIT) or ask for a shorter period or fewer breakdowns ({detail})"
    )]
    Memory { detail: String },
    #[error("query engine error: {0}{hint}", hint = crate::store::disk_full_hint(&.0.to_string()))]
    Engine(DataFusionError),
    /// `engine.ballista` set in a build without the cluster, or with views it cannot read.
    #[error("{0}")]
    Cluster(String),
    /// A cluster's result that cannot be trusted (see `Engine::run`): tasks or stages were
    /// run again, or a row came twice, or the scheduler could not say. Computed again locally.
    #[error("the cluster's result cannot be trusted: {0}")]
    ClusterUnsure(String),
    /// A query that failed reading the store, with the files `store::check` found damaged.
    #[error(
        "the store cannot be read: {}; run `mirato check` (the query failed with: {detail})",
        files.join("; ")
    )]
    Damaged { files: Vec<String>, detail: String },
    #[error("cannot read or create the cell-key secret in {path}: {source}")]
    CellKey {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        // DataFusion wraps an operator's error in its plan's context; the cause is at the root.
        match e.find_root() {
            DataFusionError::ResourcesExhausted(detail) => QueryError::Memory {
                detail: detail.clone(),
            },
            _ => QueryError::Engine(e),
        }
    }
}

/// Whether a query failed because a task it awaited (a file read on the blocking pool, a
/// partition's stream) was cancelled rather than failing: nothing is wrong with the data or the
/// query, and running it again answers. Seen a few times in a 45-minute soak, in several
/// queries at the same instant (benches/RESULTS.md).
fn cancelled(e: &DataFusionError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if err
            .downcast_ref::<tokio::task::JoinError>()
            .is_some_and(tokio::task::JoinError::is_cancelled)
        {
            return true;
        }
        cause = err.source();
    }
    // Some wrappers keep their cause only as text.
    let text = e.find_root().to_string();
    text.contains("Error joining spawned task") && text.contains("was cancelled")
}

/// Whether a query error comes from reading files (as opposed to planning or memory).
fn read_failure(e: &DataFusionError) -> bool {
    matches!(
        e.find_root(),
        DataFusionError::ParquetError(_)
            | DataFusionError::ArrowError(..)
            | DataFusionError::IoError(_)
            | DataFusionError::ObjectStore(_)
            | DataFusionError::External(_)
    )
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

/// The parameters a result was computed with, after defaults: enough to reproduce it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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

/// A KPI's answer, in the shape of KPIS.md.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct KpiResult {
    pub kpi: String,
    pub params: Resolved,
    /// Column order for tables and CSV.
    #[serde(skip)]
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// For a survival curve without breakdown: the median days to placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_days: Option<Cell>,
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
    views: std::sync::Mutex<Vec<views::Materialized>>,
    /// The newest committed batch when the store was last looked at.
    seen_batch: std::sync::Mutex<String>,
    /// The ledger, read again only when a batch commits.
    ledger: LedgerCache,
    /// Whether shared views are also written to `views/` and read back from there (the server:
    /// a restart then reads a view of unchanged data instead of rebuilding it).
    persist: std::sync::atomic::AtomicBool,
    /// Whether shared views are held whole in memory rather than read from their files (see
    /// [`Engine::views_in_memory`]).
    views_in_memory: std::sync::atomic::AtomicBool,
    /// The secret of the record keys (see [`cellkey`]).
    cell_seed: u64,
    /// Whether every event file of a generation and newest batch carries record keys of
    /// `cell_seed` (see [`Engine::stored_keys`]), as last checked.
    keyed: std::sync::Mutex<Option<(String, bool)>>,
    /// Off: keys are always computed from the units (for tests that compare the two ways).
    read_stored_keys: std::sync::atomic::AtomicBool,
    /// The KPI queries' sessions over the newest data (see [`Engine::kpi_session`]).
    sessions: std::sync::Mutex<session::SessionCache>,
    /// The damaged files found after a failed read, by the table's version (see `diagnose`).
    damaged: std::sync::Mutex<Option<(u64, Vec<String>)>>,
    /// The national case-mix fits of the O/E KPIs (see [`casemix`]).
    fits: casemix::Fits,
    /// The Ballista scheduler that runs the KPI queries (`df://host:port`), if any.
    ballista: Option<String>,
    /// KPI results of the cluster that were not trusted and computed locally instead.
    cluster_fallbacks: std::sync::atomic::AtomicU64,
    /// Spill files the queries have made since the engine opened.
    spill_files: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Turns for the KPI queries and cohorts ([`EngineSettings::max_queries`]), first come
    /// first served.
    turns: tokio::sync::Semaphore,
    /// How many turns there are.
    max_turns: u32,
}

impl Engine {
    /// The engine over `data_dir` with the default settings (a pool of
    /// [`DEFAULT_MEMORY_LIMIT`], spilling under `data_dir/spill`).
    pub fn open(data_dir: &Path) -> Result<Engine, QueryError> {
        Engine::open_with(data_dir, &EngineSettings::over(data_dir))
    }

    /// The engine over `data_dir`, its queries within `settings`' memory pool.
    pub fn open_with(data_dir: &Path, settings: &EngineSettings) -> Result<Engine, QueryError> {
        // A working copy of a bucket first takes in what other machines committed.
        crate::store::remote::refresh(data_dir)?;
        if let Some(url) = &settings.ballista {
            if cfg!(not(feature = "distributed")) {
                return Err(session::no_cluster());
            }
            if settings.views_in_memory {
                return Err(QueryError::Cluster(format!(
                    "engine.views_in_memory cannot go with engine.ballista ({url}): the cluster reads the views' files"
                )));
            }
        }
        let layout = Layout::new(data_dir);
        if !layout.ledger().exists() {
            return Err(QueryError::NoStore(data_dir.to_path_buf()));
        }
        layout.clear_stale_views();
        let (runtime, spill_files) = settings.runtime()?;
        let runtime = runtime
            .with_cache_manager(
                CacheManagerConfig::default().with_list_files_cache_ttl(Some(LIST_FILES_TTL)),
            )
            .build_arc()?;
        let cell_seed =
            cellkey::load_or_create(data_dir).map_err(|source| QueryError::CellKey {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let max_turns = settings.max_queries.clamp(1, u32::MAX as usize) as u32;
        Ok(Engine {
            ledger: LedgerCache::new(layout.clone()),
            layout,
            runtime,
            views: std::sync::Mutex::new(Vec::new()),
            seen_batch: std::sync::Mutex::new(String::new()),
            persist: std::sync::atomic::AtomicBool::new(false),
            views_in_memory: std::sync::atomic::AtomicBool::new(settings.views_in_memory),
            cell_seed,
            keyed: std::sync::Mutex::new(None),
            read_stored_keys: std::sync::atomic::AtomicBool::new(true),
            sessions: std::sync::Mutex::default(),
            damaged: std::sync::Mutex::default(),
            fits: casemix::Fits::default(),
            ballista: settings.ballista.clone(),
            cluster_fallbacks: std::sync::atomic::AtomicU64::new(0),
            spill_files,
            turns: tokio::sync::Semaphore::new(max_turns as usize),
            max_turns,
        })
    }

    /// How many KPI results of the cluster were not trusted (tasks run again after a lost
    /// executor, a row twice, a scheduler that could not say) and were computed locally.
    pub fn cluster_fallbacks(&self) -> u64 {
        self.cluster_fallbacks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many spill files the queries, view builds and cohorts have made since the engine
    /// opened: a count that grows under load says `engine.memory_limit` is small for it.
    pub fn spill_files(&self) -> u64 {
        self.spill_files.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// With views in memory ([`Engine::views_in_memory`]): also keeps a copy of every shared
    /// view in `views/` and reads it back when a view of the same data (the same `as_of`) and
    /// the same SQL is needed again, for instance after a restart. Views on disk (the default)
    /// are always stored and read back, whatever this says.
    pub fn persist_views(&self, on: bool) {
        self.persist.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether keyed figures may read the record keys stored beside the events instead of
    /// hashing the units: only when every file of the current generation carries keys of this
    /// engine's secret (a store written before keys were stored gets them at its next
    /// compaction). Checked once per generation and newest batch; any doubt computes the keys,
    /// which gives the same figures, only slower.
    fn stored_keys(&self, newest: &str) -> bool {
        if !self
            .read_stored_keys
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return false;
        }
        let Ok(generation) = self.layout.events().canonicalize() else {
            return false;
        };
        let id = format!("{}|{newest}", generation.display());
        let mut cached = self.keyed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, keyed)) = cached.as_ref()
            && *seen == id
        {
            return *keyed;
        }
        let keyed = self.layout.committed_files(&generation).is_ok_and(|files| {
            files
                .iter()
                .all(|f| crate::store::file_keyed(f, self.cell_seed).unwrap_or(false))
        });
        *cached = Some((id, keyed));
        keyed
    }

    /// Whether keyed figures of the newest data read the stored record keys (see
    /// [`Engine::read_stored_keys`]).
    pub fn keys_stored(&self) -> Result<bool, QueryError> {
        let snap = self.snapshot(None)?;
        Ok(self.stored_keys(&snap.newest))
    }

    /// Off: keyed figures compute every record key from its unit even where the store has it.
    /// The figures are the same either way: for tests that show it, and for benchmarks.
    pub fn read_stored_keys(&self, on: bool) {
        self.read_stored_keys
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Readies the newest data before a server takes requests: every shared view (read back
    /// from `views/` or built) and every Parquet footer (into DataFusion's metadata cache), so
    /// that no visitor's page pays for them.
    pub async fn ready(&self) -> Result<(), QueryError> {
        let as_of_us = self.snapshot(None)?.as_of_us;
        let names = view_names();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let ctx = self.session(as_of_us, &all).await?;
        ctx.sql("SELECT count(*) FROM ev").await?.collect().await?;
        Ok(())
    }

    /// What a query with `as_of` (default now) sees: the effective `as_of` and the data version
    /// (see [`crate::store::Ledger::snapshot`]).
    pub fn snapshot(&self, as_of: Option<DateTime<Utc>>) -> Result<Snapshot, QueryError> {
        let snap = self.ledger.get()?.snapshot(as_of);
        // A batch committed since the last look: forget the cached file listing now rather
        // than when its TTL runs out, or the new version's figures would miss the new files.
        let mut seen = self.seen_batch.lock().unwrap_or_else(|p| p.into_inner());
        if *seen != snap.newest {
            if let Some(c) = self.runtime.cache_manager.get_list_files_cache() {
                c.clear();
            }
            seen.clone_from(&snap.newest);
        }
        Ok(snap)
    }

    /// The data now: the effective `as_of` of a query without one, and its data version.
    pub fn latest(&self) -> Result<(DateTime<Utc>, String), QueryError> {
        let snap = self.snapshot(None)?;
        Ok((snap.as_of(), snap.data_version))
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
        let snap = self.snapshot(p.as_of)?;
        let as_of_us = snap.as_of_us;
        let stored = p.cell_keys && self.stored_keys(&snap.newest);
        let (sql, mut values) = wrapper_sql(&def, &p, stored);
        let (ctx, _, _) = self.prepare(&sql, as_of_us, &p, &mut values, false).await?;
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

    /// Runs one KPI. A failure to read the store's files names the damaged ones.
    pub async fn run(&self, def: &KpiDef, p: &Params) -> Result<KpiResult, QueryError> {
        let _turn = self.turn().await;
        if def.kind == Kind::Oe {
            return self.run_oe(def, p).await;
        }
        let mut result = self.run_once(def, p, false).await;
        if let Err(QueryError::ClusterUnsure(why)) = &result {
            // A cluster that lost an executor can hand back a stage's output twice (Ballista
            // 55 re-runs a stage and keeps its first outputs too): the figure is computed
            // again here, never shown wrong.
            tracing::error!(kpi = def.id, reason = %why, "a cluster result that cannot be trusted: computed locally instead");
            self.cluster_fallbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            result = self.run_once(def, p, true).await;
        }
        if let Err(QueryError::Engine(e)) = &result
            && cancelled(e)
        {
            tracing::warn!(kpi = def.id, error = %e, "a task of the query was cancelled: run again");
            result = self.run_once(def, p, false).await;
        }
        match result {
            Err(QueryError::Engine(e)) if read_failure(&e) && !cancelled(&e) => {
                Err(self.diagnose(e).await)
            }
            other => other,
        }
    }

    /// Waits for a turn to compute (see [`EngineSettings::max_queries`]); held until dropped.
    /// Takes every turn (once the queries running end) and holds them until the permit drops:
    /// queries asked meanwhile wait, whatever the machine's speed. For tests of what a request
    /// past the server's wait is told.
    #[doc(hidden)]
    pub async fn hold_turns(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.turns
            .acquire_many(self.max_turns)
            .await
            .expect("the engine never closes its turns")
    }

    /// How many KPI queries compute at once ([`EngineSettings::max_queries`]).
    pub fn max_turns(&self) -> usize {
        self.max_turns as usize
    }

    pub(crate) async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.turns
            .acquire()
            .await
            .expect("the engine never closes its turns")
    }

    /// After a query failed reading: which event files are damaged (a full read of each,
    /// so the result is kept for the table's version; a repaired store has a new one).
    async fn diagnose(&self, e: DataFusionError) -> QueryError {
        let layout = self.layout.clone();
        let version = crate::store::delta::latest_version(&layout).unwrap_or_default();
        let cached = {
            let d = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
            d.as_ref()
                .filter(|(v, _)| *v == version)
                .map(|(_, f)| f.clone())
        };
        let files = match cached {
            Some(f) => f,
            None => {
                let found = tokio::task::spawn_blocking(move || {
                    crate::store::check::damaged_event_files(&layout)
                })
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
                let f: Vec<String> = found
                    .iter()
                    .map(|f| format!("{}: {}", f.path, f.problem))
                    .collect();
                *self.damaged.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((version, f.clone()));
                f
            }
        };
        if files.is_empty() {
            return QueryError::Engine(e);
        }
        tracing::error!(files = ?files, "the store has damaged files");
        QueryError::Damaged {
            files,
            detail: e.find_root().to_string(),
        }
    }

    /// One computation of a KPI; `local` keeps it off the cluster.
    async fn run_once(
        &self,
        def: &KpiDef,
        p: &Params,
        local: bool,
    ) -> Result<KpiResult, QueryError> {
        let snap = self.snapshot(p.as_of)?;
        let stored = p.cell_keys && self.stored_keys(&snap.newest);
        let (sql, mut values) = wrapper_sql(def, p, stored);
        let (ctx, from, to) = self
            .prepare(&sql, snap.as_of_us, p, &mut values, local)
            .await?;
        let df = bound(&ctx, &sql, values).await?;
        let batches = match self.ballista.as_deref() {
            #[cfg(feature = "distributed")]
            Some(url) if !local => cluster::collect_verified(df, url).await?,
            _ => memory::collect(df).await?,
        };
        let mut rows = to_rows(&batches);
        // Every KPI's rows are one per group: the same row twice is a cluster's fault.
        if !local && self.ballista.is_some() && output::has_repeated_row(&rows) {
            return Err(QueryError::ClusterUnsure("a row came twice".into()));
        }
        let by: Vec<String> = p.by.iter().map(|d| d.name().to_owned()).collect();
        let mut median_days = None;
        let mut life = Vec::new();
        let mut keys = Vec::new();
        if def.kind != Kind::Survival {
            keys = cells::take_keys(&mut rows);
        }
        if def.kind == Kind::Rate {
            rows = output::rate_rows(rows);
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
                        col::DAY,
                        col::AT_RISK,
                        col::EVENTS,
                        col::CENSORED,
                        col::SURVIVAL,
                        col::LOWER,
                        col::UPPER,
                        col::MEDIAN_DAYS,
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
                                (col::PERSONS.to_owned(), k.get(*c).copied().unwrap_or(0)),
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
                c.extend([col::STAGE, col::PERSONS, col::SHARE_OF_ACCEPTED].map(String::from));
                c
            }
            _ => {
                let mut c = by.clone();
                c.push(col::VALUE.into());
                match def.kind {
                    Kind::Rate => {
                        c.extend([col::NUMERATOR, col::DENOMINATOR].map(String::from));
                        if def.not_stated {
                            c.push(col::NOT_STATED.into());
                        }
                    }
                    Kind::Median | Kind::Mean => c.push(col::N.into()),
                    _ => {}
                }
                c
            }
        };
        let as_of = snap.as_of_text();
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
                data_version: snap.data_version,
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
        local: bool,
    ) -> Result<(SessionContext, NaiveDate, NaiveDate), QueryError> {
        let names = view_names();
        let needed: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|v| mentions(sql, v))
            .collect();
        let ctx = if local {
            self.session(as_of_us, &needed).await?
        } else {
            self.kpi_session(as_of_us, &needed).await?
        };
        let (from, to) = self.resolve_period(as_of_us, p, Some(&ctx)).await?;
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

    /// The period a query with `p` runs over, as its result will state it: what a caller that
    /// needs it before the figures (a tile's comparison period) asks instead of guessing.
    pub async fn period(&self, p: &Params) -> Result<(NaiveDate, NaiveDate), QueryError> {
        let as_of_us = self.snapshot(p.as_of)?.as_of_us;
        self.resolve_period(as_of_us, p, None).await
    }

    /// Defaults: `from` = 1 January of the year of the latest event, `to` = its date. The
    /// latest event comes from the ledger's summaries, or from a scan in `ctx` (a session of
    /// its own when none is given) for ledgers without them.
    async fn resolve_period(
        &self,
        as_of_us: i64,
        p: &Params,
        ctx: Option<&SessionContext>,
    ) -> Result<(NaiveDate, NaiveDate), QueryError> {
        if let (Some(f), Some(t)) = (p.from, p.to) {
            return Ok((f, t));
        }
        let mut latest = None;
        let summarised = self
            .ledger
            .get()?
            .each_summary(as_of_us, |s| latest = latest.max(s.latest_event));
        if !summarised {
            let own;
            let ctx = match ctx {
                Some(c) => c,
                None => {
                    own = self.session(as_of_us, &[]).await?;
                    &own
                }
            };
            let batches = ctx
                .sql("SELECT max(occurred_date) AS latest FROM ev")
                .await?
                .collect()
                .await?;
            latest = first_date(&batches);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn cancelled_join() -> tokio::task::JoinError {
        let task = tokio::spawn(std::future::pending::<()>());
        task.abort();
        task.await.expect_err("aborted")
    }

    /// A read whose task was cancelled is run again, not diagnosed as a damaged file; a read
    /// that failed is not.
    #[tokio::test]
    async fn a_cancelled_task_is_told_from_a_failed_read() {
        let store = |source| object_store::Error::JoinError { source };
        let direct = DataFusionError::ObjectStore(Box::new(store(cancelled_join().await)));
        assert!(cancelled(&direct));
        let in_parquet = DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::External(Box::new(store(
                cancelled_join().await,
            ))),
        ));
        assert!(cancelled(&in_parquet));
        let damaged = DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::General("Data corruption detected".into()),
        ));
        assert!(!cancelled(&damaged));
        assert!(read_failure(&damaged));
    }
}
