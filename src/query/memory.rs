//! The query engine's memory: one pool per process that every query, view build and report
//! draws from, and the disk its operators spill to when the pool is full.
//!
//! Without a pool DataFusion bounds nothing: a large enough history ends in the kernel's
//! out-of-memory kill instead of a slower answer. A fair spill pool shares the limit among the
//! spilling operators running at once (sorts, aggregations); an operator that cannot spill (a
//! hash join's build side) may take what the others leave. A query whose hash joins do not fit
//! is planned again with sort-merge joins, which spill ([`collect`]); past that it fails with
//! [`super::QueryError::Memory`], which names the setting to raise.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SpillFile, TempFileFactory};

use super::QueryError;
use crate::store::StoreError;

/// The pool's size when the configuration says nothing: see `engine.memory_limit` in
/// `config::DEFAULTS` for why 768 MiB of the 2 GiB a process is meant to stay within.
pub const DEFAULT_MEMORY_LIMIT: usize = 768 << 20;

/// How much memory the engine's queries may hold at once, and where they spill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Bytes; 0 for no limit.
    pub memory_limit: usize,
    /// A folder for spill files: each process makes its own (owner-only) folder inside and
    /// removes it when it ends. Spilled rows hold pseudonyms, so they stay beside the store
    /// by default rather than in a shared temporary folder.
    pub spill_dir: PathBuf,
    /// Shared views held whole in memory instead of read from their files in `views/` (see
    /// [`super::Engine::views_in_memory`]): faster scans for a store whose views fit.
    pub views_in_memory: bool,
    /// A Ballista scheduler (`df://host:port`) to run the KPI queries on, instead of here
    /// (a build with `--features distributed`).
    pub ballista: Option<String>,
    /// How many KPI queries run at once; the next wait in line (see [`default_max_queries`]).
    pub max_queries: usize,
}

/// Twice the cores: enough to keep them busy while some queries wait on the disk. More at once
/// only share the cores and the pool thinner, so that every query is slow and holds its
/// memory (much of it outside the pool: decoders, batches in flight) for longer.
pub fn default_max_queries() -> usize {
    2 * std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

impl EngineSettings {
    /// The defaults over a data folder: [`DEFAULT_MEMORY_LIMIT`], spilling to `data_dir/spill`.
    pub fn over(data_dir: &Path) -> EngineSettings {
        EngineSettings {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            spill_dir: data_dir.join("spill"),
            views_in_memory: false,
            ballista: None,
            max_queries: default_max_queries(),
        }
    }

    /// A runtime builder with this pool and this spill folder, and the count of the spill
    /// files its queries create.
    pub(super) fn runtime(&self) -> Result<(RuntimeEnvBuilder, Arc<AtomicU64>), QueryError> {
        crate::store::create_private_dir(&self.spill_dir).map_err(|source| StoreError::Io {
            action: "cannot create the spill folder",
            path: self.spill_dir.clone(),
            source,
        })?;
        let folder = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![self.spill_dir.clone()]))
            .build()?;
        let counting = Arc::new(CountingSpills {
            folder: Arc::new(folder),
            files: Arc::new(AtomicU64::new(0)),
        });
        let files = Arc::clone(&counting.files);
        let disk = DiskManagerBuilder::default().with_mode(DiskManagerMode::Custom(counting));
        let mut builder = RuntimeEnvBuilder::new().with_disk_manager_builder(disk);
        if self.memory_limit > 0 {
            // The five largest consumers are named in the error of a query that does not fit.
            let top = NonZeroUsize::new(5).expect("five is not zero");
            builder = builder.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(self.memory_limit),
                top,
            )));
        }
        Ok((builder, files))
    }
}

/// The spill folder's files, counted as they are made: how often queries spill, for
/// `/metrics` (a pool too small for the load) and for the tests that make them spill.
struct CountingSpills {
    folder: Arc<DiskManager>,
    files: Arc<AtomicU64>,
}

impl TempFileFactory for CountingSpills {
    fn create_temp_file(&self, description: &str) -> datafusion::error::Result<Arc<dyn SpillFile>> {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.folder.create_tmp_file(description)
    }
}

/// A sort's reservation for merging its spilled runs, taken before it reads a row: DataFusion's
/// 10 MiB, or a 64th of a smaller pool. With the fixed 10 MiB per sort and partition, a pool
/// under some 30 MiB refuses a query with two sorts outright, before it could spill; and under
/// load, sorts that have not spilled hold the pool's memory idle.
pub(super) fn sort_reservation(
    config: datafusion::prelude::SessionConfig,
    pool: datafusion::execution::memory_pool::MemoryLimit,
) -> datafusion::prelude::SessionConfig {
    use datafusion::execution::memory_pool::MemoryLimit;
    const DATAFUSION_DEFAULT: usize = 10 << 20;
    match pool {
        MemoryLimit::Finite(bytes) => {
            let mut config = config;
            config.options_mut().execution.sort_spill_reservation_bytes =
                DATAFUSION_DEFAULT.min(bytes / 64);
            config
        }
        MemoryLimit::Infinite | MemoryLimit::Unknown => config,
    }
}

/// Whether an error is, at its root, the pool refusing an allocation.
pub(super) fn exhausted(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// The same session, planning sort-merge joins instead of hash joins. A hash join holds its
/// whole build side in memory and cannot spill; a sort-merge join sorts both sides, which
/// spills. Slower when memory is plenty, so it is the second attempt, not the plan.
pub(super) fn spilling(state: &SessionState) -> SessionState {
    let mut config = state.config().clone();
    config.options_mut().optimizer.prefer_hash_join = false;
    // Or the new state makes a new, empty default catalog in place of the session's tables.
    config
        .options_mut()
        .catalog
        .create_default_catalog_and_schema = false;
    SessionStateBuilder::new_from_existing(state.clone())
        .with_config(config)
        .build()
}

/// A query's rows; when its hash joins do not fit the pool, the query planned again with
/// sort-merge joins (see [`spilling`]), so that it spills instead of failing.
pub(super) async fn collect(df: DataFrame) -> Result<Vec<RecordBatch>, DataFusionError> {
    let again = df.clone();
    match df.collect().await {
        Err(e) if exhausted(&e) => {
            tracing::info!(error = %e, "a query's hash joins do not fit the memory pool: planning it again with sort-merge joins");
            let (state, plan) = again.into_parts();
            DataFrame::new(spilling(&state), plan)
                .collect()
                .await
                .map_err(|retry| second_failure(e, retry))
        }
        other => other,
    }
}

/// What a query that failed for memory, and then again with sort-merge joins, answers: the
/// first memory error, which names the setting to raise. A retry that fails for another reason
/// is a bug of the engine's (as DataFusion's sort-merge join refusing nulls in a column declared
/// non-nullable was, see `session::nullable`): logged, and in debug builds (the tests) a panic,
/// so that the memory tests cannot pass over it.
pub(super) fn second_failure(first: DataFusionError, retry: DataFusionError) -> DataFusionError {
    if !exhausted(&retry) {
        tracing::warn!(error = %retry, "the sort-merge plan failed too");
        debug_assert!(
            false,
            "the sort-merge plan failed for another reason: {retry}"
        );
    }
    first
}
