//! The query engine's memory: one pool per process that every query, view build and report
//! draws from, and the disk its operators spill to when the pool is full.
//!
//! Without a pool DataFusion bounds nothing: a large enough history ends in the kernel's
//! out-of-memory kill instead of a slower answer. A fair spill pool shares the limit among the
//! spilling operators running at once (sorts, aggregations); an operator that cannot spill (a
//! hash join's build side) may take what the others leave, and past that the query fails with
//! [`super::QueryError::Memory`], which names the setting to raise.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

use super::QueryError;
use crate::store::StoreError;

/// The pool's size when the configuration says nothing: see `engine.memory_limit` in
/// `config::DEFAULTS` for why half of the 2 GiB a process is meant to stay within.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

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
}

impl EngineSettings {
    /// The defaults over a data folder: [`DEFAULT_MEMORY_LIMIT`], spilling to `data_dir/spill`.
    pub fn over(data_dir: &Path) -> EngineSettings {
        EngineSettings {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            spill_dir: data_dir.join("spill"),
            views_in_memory: false,
        }
    }

    /// A runtime builder with this pool and this spill folder.
    pub(super) fn runtime(&self) -> Result<RuntimeEnvBuilder, QueryError> {
        crate::store::create_private_dir(&self.spill_dir).map_err(|source| StoreError::Io {
            action: "cannot create the spill folder",
            path: self.spill_dir.clone(),
            source,
        })?;
        let disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![self.spill_dir.clone()]));
        let mut builder = RuntimeEnvBuilder::new().with_disk_manager_builder(disk);
        if self.memory_limit > 0 {
            // The five largest consumers are named in the error of a query that does not fit.
            let top = NonZeroUsize::new(5).expect("five is not zero");
            builder = builder.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(self.memory_limit),
                top,
            )));
        }
        Ok(builder)
    }
}
