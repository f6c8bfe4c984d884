//! The store: immutable Parquet files under `events/year=YYYY/month=MM/`, a quarantine of
//! rejected rows, and a ledger of ingested files.
//!
//! A batch (one input file) becomes visible by four steps: its files are written under
//! `staging/`, renamed into place, listed by a new version of the events table's Delta log
//! (`generations/_delta_log`, see [`delta`]), and recorded in the ledger. The table's version
//! is the commit point, for mirato and for every outside reader: on open, a committed batch
//! missing from the ledger is recorded, and files of batches without a commit are removed, so a
//! crash at any moment leaves all of a file's rows or none.
//!
//! This file holds the data directory's layout and the writer's handle ([`Store`]: lock and
//! recovery). The rest is one room each: `entry` (a ledger entry, written and read back),
//! [`ledger`] (the ledger read as a whole), `dedupe` (event ids already stored), `schema` (the
//! files' columns), `writer` (staging and committing a batch), [`delta`] (the table's log),
//! `generations` (the `events` link), `disk` (owner-only, durable file operations), [`remote`]
//! (a store in an S3 bucket, worked on through a local working copy of it).

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use fs2::FileExt;

use crate::recordkey;

pub mod check;
mod dedupe;
pub mod delta;
mod disk;
mod entry;
mod generations;
pub mod ledger;
#[cfg(feature = "s3")]
pub mod remote;
#[cfg(not(feature = "s3"))]
#[path = "remote_off.rs"]
pub mod remote;
mod schema;
mod settings;
mod writer;

pub use dedupe::{Dedupe, DedupeIndex, FileIds, RunBuffer, Seen};
pub use disk::{
    create_private_dir, create_private_file, disk_full_hint, disk_nearly_full, free_bytes,
    io_message, is_disk_full, remove_stale_temps, write_atomic,
};
pub use entry::{BatchStatus, BatchSummary, LedgerEntry, SummaryBuilder};
pub use generations::{
    GENERATION_GRACE, current_generation, pin_generation, remove_old_generations, switch_to,
};
pub use ledger::{Ledger, LedgerCache, Snapshot};
pub use schema::{
    PartitionBatch, QuarantineRow, V1_COLUMNS, events_schema, events_to_batch, partition_batches,
    quarantine_schema,
};
pub use writer::{BatchWriter, Packing, file_keyed, writer_props_with_row_groups};

use disk::{private_options, restrict_dir};
use entry::write_ledger_entry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}: {}", io_message(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Parquet error in {path}: {source}{}", disk_full_hint(&source.to_string()))]
    Parquet {
        path: PathBuf,
        source: datafusion::parquet::errors::ParquetError,
    },
    #[error("Arrow error: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("the ledger entry {path} is unreadable: {source}")]
    Ledger {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "another mirato process is writing to {0}; wait for it to finish, or remove a stale lock only if none is running"
    )]
    Locked(PathBuf),
    #[error("the dedupe index {path}: {source}")]
    Index { path: PathBuf, source: fjall::Error },
    #[error("{action} {key} in the bucket: {message}")]
    Remote {
        action: &'static str,
        key: String,
        message: String,
    },
    #[error(
        "another mirato committed version {version} of {url} while this one was writing; nothing of this run was stored: run it again"
    )]
    Conflict { url: String, version: u64 },
    #[error(
        "the working copy {copy} does not match the bucket {url} (a copy of another bucket, or a bucket emptied or rewritten since): move the copy away and it is made again from the bucket"
    )]
    Diverged { copy: PathBuf, url: String },
    #[error("'{0}' is not a store address such as s3://bucket/prefix")]
    BadUrl(String),
    #[error(
        "the store {0} is on S3, and this mirato was built without S3 support: build it with `cargo build --release --features s3`"
    )]
    NoS3(String),
}

/// Maps an I/O error to a [`StoreError::Io`] naming what was being done, and to what.
fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The folders of a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
    /// The query engine's shared views as Parquet files, by `as_of` (see `query::views`).
    pub fn views(&self) -> PathBuf {
        self.root.join("views")
    }
    /// Generations of the event files; `events` links to the current one (see `compact`).
    pub fn generations(&self) -> PathBuf {
        self.root.join("generations")
    }
    /// The dedupe index of stored event ids (see `dedupe`): derived from the committed batches.
    pub fn index(&self) -> PathBuf {
        self.root.join("index")
    }
    fn lock(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Removes the temporary files that killed processes left in the stored views' folders
    /// (copies being written; see `query::views`). Safe without the lock: a file of a running
    /// process is kept.
    pub fn clear_stale_views(&self) {
        let root = self.views();
        let mut removed = remove_stale_temps(&root, None);
        for e in fs::read_dir(&root).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                removed += remove_stale_temps(&e.path(), None);
            }
        }
        if removed > 0 {
            tracing::info!(files = removed, "removed unfinished copies of stored views");
        }
    }

    /// Parquet files of committed batches under `dir` (events or quarantine), sorted.
    pub fn committed_files(&self, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let committed: HashSet<String> = self
            .read_ledger()?
            .into_iter()
            .filter(|e| e.status == BatchStatus::Committed)
            .map(|e| e.batch_id)
            .collect();
        Ok(parquet_files(dir)?
            .into_iter()
            .filter(|p| batch_of(p).is_some_and(|b| committed.contains(b)))
            .collect())
    }

    /// The data version now: the id of the latest committed batch with events, or `empty`.
    pub fn data_version(&self) -> Result<String, StoreError> {
        Ok(Ledger::read(self)?.snapshot(None).data_version)
    }
}

/// All `*.parquet` files below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("cannot list", &d)(e)),
        };
        for ent in rd {
            let ent = ent.map_err(io("cannot list", &d))?;
            let path = ent.path();
            let ft = ent.file_type().map_err(io("cannot stat", &path))?;
            if ft.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The batch id of a store file, from its name `<batch_id>-pNNNN.parquet` or `<batch_id>.parquet`.
pub fn batch_of(path: &Path) -> Option<&str> {
    let stem = path.file_stem()?.to_str()?;
    Some(match stem.rsplit_once("-p") {
        Some((b, n)) if n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => stem,
    })
}

/// The store's exclusive write lock, held until dropped.
pub struct WriteLock(File);

/// Takes the store's write lock, or fails at once if another process holds it.
pub fn write_lock(layout: &Layout) -> Result<WriteLock, StoreError> {
    let lock_path = layout.lock();
    let lock = private_options()
        .truncate(false)
        .open(&lock_path)
        .map_err(io("cannot open", &lock_path))?;
    lock.try_lock_exclusive()
        .map_err(|_| StoreError::Locked(layout.root.clone()))?;
    Ok(WriteLock(lock))
}

/// A writer's handle on the store, holding the exclusive lock.
pub struct Store {
    /// Opened by the first ingest (see [`Store::dedupe_index`]); closed before the lock is
    /// released.
    index: std::sync::OnceLock<DedupeIndex>,
    layout: Layout,
    _lock: File,
    /// The secret of the record keys written beside each event (see [`recordkey`]).
    record_seed: u64,
}

impl Store {
    /// Opens (creating) a data directory for writing: takes the lock and removes what an
    /// interrupted batch left behind.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let layout = Layout::new(root);
        for d in [layout.root.clone(), layout.quarantine(), layout.ledger()] {
            create_private_dir(&d).map_err(io("cannot create", &d))?;
            restrict_dir(&d);
        }
        let WriteLock(lock) = write_lock(&layout)?;
        // A working copy of a bucket first takes in what other machines committed.
        if let Some(remote) = remote::mounted(&layout.root) {
            remote.share_secret(&layout)?;
            remote.pull(&layout)?;
        }
        let record_seed =
            recordkey::load_or_create(&layout.root).map_err(io("cannot read", &layout.root))?;
        // Under the lock: a new store gets its first generation, an old one its link back.
        generations::ensure_events_link(&layout)?;
        let store = Store {
            index: std::sync::OnceLock::new(),
            layout,
            _lock: lock,
            record_seed,
        };
        store.recover()?;
        Ok(store)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The secret of the record keys, for [`partition_batches`].
    pub fn record_seed(&self) -> u64 {
        self.record_seed
    }

    /// Rolls forward what the table committed but the ledger or the `events` link did not yet
    /// show, rolls back any batch that did not reach its commit, and gives a store without a
    /// table its first version.
    fn recover(&self) -> Result<(), StoreError> {
        let staging = self.layout.staging();
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io("cannot clear", &staging))?;
        }
        let ledger = self.layout.ledger();
        for ent in fs::read_dir(&ledger).map_err(io("cannot list", &ledger))? {
            let path = ent.map_err(io("cannot list", &ledger))?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
                fs::remove_file(&path).map_err(io("cannot remove", &path))?;
            }
        }
        delta::clear_interrupted(&self.layout)?;
        self.layout.clear_stale_views();
        self.roll_forward()?;
        if generations::remove_interrupted(&self.layout)? > 0 {
            tracing::warn!("removed the generation of an interrupted compaction");
        }
        let known: HashSet<String> = self
            .layout
            .read_ledger()?
            .into_iter()
            .map(|e| e.batch_id)
            .collect();
        let mut removed = 0;
        for dir in [self.layout.events(), self.layout.quarantine()] {
            for f in parquet_files(&dir)? {
                if !batch_of(&f).is_some_and(|b| known.contains(b)) {
                    fs::remove_file(&f).map_err(io("cannot remove", &f))?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::warn!(
                files = removed,
                "removed the files of an interrupted ingest; rerun it to store that file"
            );
        }
        if !delta::exists(&self.layout)? {
            let generation = current_generation(&self.layout)?;
            let files = self.layout.committed_files(&self.layout.events())?;
            let files = delta::data_files(&self.layout.events(), &generation, &files)?;
            delta::create(&self.layout, &generation, &files)?;
            tracing::info!(
                files = files.len(),
                "the events table has its first version"
            );
        } else if delta::evolve(&self.layout)? {
            tracing::info!("the events table takes the columns of the employers' side");
        }
        Ok(())
    }

    /// Completes the newest commit of the table: only it can lack its ledger entry or its
    /// generation switch, since each commit is completed before the next one starts.
    fn roll_forward(&self) -> Result<(), StoreError> {
        match delta::last_recorded(&self.layout)? {
            Some(delta::Recorded::Batch(entry)) => {
                let path = self
                    .layout
                    .ledger()
                    .join(format!("{}.json", entry.batch_id));
                if !path.exists() {
                    write_ledger_entry(&self.layout, &entry)?;
                    tracing::warn!(batch = %entry.batch_id, "completed the ledger entry of a committed batch");
                }
            }
            Some(delta::Recorded::Generation(g) | delta::Recorded::Created(g)) => {
                let dir = self.layout.generations().join(&g);
                if current_generation(&self.layout)? != g && dir.is_dir() {
                    switch_to(&self.layout, &dir)?;
                    tracing::warn!(generation = %g, "completed the switch to a committed generation");
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Records a file that was rejected whole: nothing is stored, but the table's log (a
    /// version without files) and the ledger remember it, on every machine of a bucket.
    pub fn record_rejected(&self, entry: &LedgerEntry) -> Result<(), StoreError> {
        delta::commit_batch(&self.layout, entry, &[])?;
        write_ledger_entry(&self.layout, entry)
    }

    /// Removes from the bucket behind a working copy the files no version lists any more
    /// (see [`remote::ORPHAN_AGE`]); nothing for a local store.
    pub fn vacuum_bucket(&self) -> Result<usize, StoreError> {
        match remote::mounted(&self.layout.root) {
            Some(remote) => remote.vacuum(&self.layout),
            None => Ok(0),
        }
    }
}
