//! The dedupe index: every event id ever stored, with the hash of its content, so that a resent
//! event is counted as a duplicate and a changed one as a conflict, across all history.
//!
//! It lives on disk under `data/index` (an LSM tree, `fjall`), so that an ingest costs in
//! proportion to its files, not to the store: a look-up of a new id is mostly answered by the
//! bloom filters of its tables, without reading them. Two keyspaces: `ids` (16 bytes of the id's
//! xxh3-128, big-endian → 8 bytes of content hash) and `batches` (batch id → how many ids it
//! added), the record of which committed batches the index covers.
//!
//! The index is derived data; the ledger (completed from the table's versions on open) says what
//! is committed. A batch's ids are written only after its ledger entry is in place, and its `batches` record last, so the index never covers
//! a batch that is not committed. Ids go in as sorted runs of tables (fjall's ingestion), not
//! through the journal: a journal holding every id since its last rotation (up to 64 MB) would
//! be replayed on every open, a fixed cost an ingest of a small file would pay each time.
//!
//! What a crash (or a lost index) leaves behind is made good when the index is opened:
//! committed batches it does not cover are read back from the event files (rows keep their
//! `batch_id` through compaction), and an index that is unreadable, or covers a batch the
//! ledger does not know (a data folder restored from copies of different moments), is rebuilt
//! from every committed file.
//!
//! During an ingest, [`Dedupe`] holds in memory only the ids of files not yet on disk: the file
//! being read, the one being committed meanwhile, and committed files whose ids wait to be
//! written together as one run ([`RunBuffer`]: up to 8 files or 1 Mi ids). While an ingest
//! fills an index that was empty, a filter of its ids spares most look-ups.
//!
//! Over 600 lines with its tests, as one concern read top to bottom: the index on disk, how it
//! is kept up to the ledger, and the ingest's view of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use super::disk::{create_private_dir, restrict_dir};
use super::{BatchStatus, Layout, Store, StoreError, batch_of, io};

/// The block cache of the index: enough for the filters and index blocks a batch's look-ups
/// touch, small beside the ingest's own buffers.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// The largest memtable of a keyspace before it is flushed to a table: ids are written as runs
/// of tables and never fill one, but the bound holds all the same.
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;
/// The journal's disk space before the oldest memtables are flushed: the small `batches`
/// keyspace would otherwise hold old journals up to fjall's default of 512 MiB.
const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;
/// Ids per sorted run written to disk (32 bytes each while sorted): a big file is written in
/// several runs, which bounds the memory of the sort; small files are gathered into one run
/// (see [`RunBuffer`]), since every run is one more table each look-up probes until the
/// tables are compacted.
const RUN_IDS: usize = 1024 * 1024;
/// Committed files whose ids may wait in memory for a run: the reading stage looks each id up in
/// every one of them.
const RUN_FILES: usize = 8;

/// A map whose keys are already hashes (xxh3-128 of the id), so a cheap hasher suffices. The
/// key is held as two halves: 24 bytes an entry rather than the 32 of a 16-aligned `u128`.
type IdMap = HashMap<(u64, u64), i64, foldhash::fast::FixedState>;

fn halves(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}

fn whole((hi, lo): (u64, u64)) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
}

/// What the index says about an event id.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    Duplicate,
    Conflict,
}

/// The on-disk index of stored event ids (see the module doc).
pub struct DedupeIndex {
    path: PathBuf,
    ids: Keyspace,
    batches: Keyspace,
    // Dropped last: closing the database persists its journal.
    db: Database,
}

impl DedupeIndex {
    /// The index key of an event id: 128 bits of xxh3, so collisions are negligible.
    pub fn key(event_id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
    }

    /// Opens (creating) the database in `path`. A damaged database can make its recovery
    /// panic rather than fail: that too counts as unreadable.
    fn open_dir(path: &Path) -> Result<DedupeIndex, fjall::Error> {
        std::panic::catch_unwind(|| Self::try_open_dir(path))
            .unwrap_or(Err(fjall::Error::Unrecoverable))
    }

    fn try_open_dir(path: &Path) -> Result<DedupeIndex, fjall::Error> {
        let db = Database::builder(path)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .open()?;
        // Every table's whole bloom filter and block index stay in memory (about 10 bits and a
        // few bytes an id: some 150 MB at 100 million ids). With fjall's defaults only the top
        // levels' are pinned and the rest go through the block cache, which random ids thrash:
        // at 7 million stored ids each look-up re-read filter blocks from disk and the ingest
        // spent most of its time in the kernel.
        let ids = db.keyspace("ids", || {
            use fjall::config::{PartitioningPolicy, PinningPolicy};
            KeyspaceCreateOptions::default()
                .max_memtable_size(MEMTABLE_BYTES)
                .filter_block_pinning_policy(PinningPolicy::all(true))
                .index_block_pinning_policy(PinningPolicy::all(true))
                .filter_block_partitioning_policy(PartitioningPolicy::all(false))
                .index_block_partitioning_policy(PartitioningPolicy::all(false))
        })?;
        let batches = db.keyspace("batches", || {
            KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
        })?;
        Ok(DedupeIndex {
            path: path.to_path_buf(),
            ids,
            batches,
            db,
        })
    }

    fn err(&self) -> impl FnOnce(fjall::Error) -> StoreError + '_ {
        move |source| StoreError::Index {
            path: self.path.clone(),
            source,
        }
    }

    /// The content hash stored for an id, if it is stored.
    pub fn get(&self, key: u128) -> Result<Option<i64>, StoreError> {
        let Some(v) = self.ids.get(key.to_be_bytes()).map_err(self.err())? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| StoreError::Index {
            path: self.path.clone(),
            source: fjall::Error::InvalidTrailer,
        })?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    /// Records the ids a committed batch added. Call only once its ledger entry is in place.
    /// The ids go first, in sorted runs of up to [`RUN_IDS`], then the `batches` record, so a
    /// crash midway leaves the batch uncovered, to be caught up (its ids written again, to the
    /// same values) on the next open.
    pub fn add_batch(
        &self,
        batch_id: &str,
        ids: impl IntoIterator<Item = (u128, i64)>,
    ) -> Result<(), StoreError> {
        self.add_batch_in_runs(batch_id, ids, RUN_IDS)
    }

    fn add_batch_in_runs(
        &self,
        batch_id: &str,
        ids: impl IntoIterator<Item = (u128, i64)>,
        run_ids: usize,
    ) -> Result<(), StoreError> {
        let mut runs = Runs::new(self, run_ids);
        for (key, hash) in ids {
            runs.push(key, hash)?;
        }
        let added = runs.finish()?;
        self.batches
            .insert(batch_id, added.to_be_bytes())
            .map_err(self.err())
    }

    /// The batches the index covers.
    fn covered(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut out = BTreeSet::new();
        for kv in self.batches.iter() {
            let key = kv.key().map_err(self.err())?;
            out.insert(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(out)
    }

    /// About how many ids the index holds (no scan of the ids).
    pub fn approximate_len(&self) -> usize {
        self.ids.approximate_len()
    }

    /// Opens the index of a data folder and brings it up to the ledger: catches up committed
    /// batches it does not cover, and rebuilds it when it is unreadable or covers a batch the
    /// ledger does not know. The caller holds the store's write lock.
    fn open_synced(layout: &Layout) -> Result<DedupeIndex, StoreError> {
        let path = layout.index();
        let committed = committed_batches(layout)?;
        // A folder with something in it held an index; otherwise one is built anew.
        let existed = fs::read_dir(&path).is_ok_and(|mut d| d.next().is_some());
        let opened = create_private_dir(&path)
            .map_err(io("cannot create", &path))
            .and_then(|()| {
                restrict_dir(&path);
                Self::open_dir(&path).map_err(|source| StoreError::Index {
                    path: path.clone(),
                    source,
                })
            })
            .and_then(|index| Ok((index.covered()?, index)));
        let (covered, index, whole) = match opened {
            Ok((covered, index)) if covered.is_subset(&committed) => (covered, index, !existed),
            Ok((covered, index)) => {
                let unknown = covered.difference(&committed).count();
                tracing::warn!(
                    batches = unknown,
                    "the dedupe index covers batches the ledger does not know; rebuilding it"
                );
                drop(index);
                (BTreeSet::new(), Self::recreate(&path)?, true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the dedupe index is unreadable; rebuilding it");
                (BTreeSet::new(), Self::recreate(&path)?, true)
            }
        };
        index.catch_up(layout, &committed, &covered, whole)?;
        Ok(index)
    }

    /// Adds the ids of the committed batches the index does not cover yet; `whole` when the
    /// index was built anew (for the log).
    fn catch_up(
        &self,
        layout: &Layout,
        committed: &BTreeSet<String>,
        covered: &BTreeSet<String>,
        whole: bool,
    ) -> Result<(), StoreError> {
        let missing: BTreeSet<&str> = committed
            .iter()
            .filter(|b| !covered.contains(*b))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let added = self.add_from_files(layout, &missing)?;
        let ms = started.elapsed().as_millis() as u64;
        if whole {
            tracing::warn!(
                batches = missing.len(),
                ids = added,
                ms,
                "built the dedupe index from every committed file"
            );
        } else {
            tracing::warn!(
                batches = missing.len(),
                ids = added,
                ms,
                "caught up the dedupe index with batches committed after its last write"
            );
        }
        Ok(())
    }

    /// Removes an index folder and opens an empty one in its place.
    fn recreate(path: &Path) -> Result<DedupeIndex, StoreError> {
        match fs::remove_dir_all(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot remove", path)(e)),
        }
        create_private_dir(path).map_err(io("cannot create", path))?;
        Self::open_dir(path).map_err(|source| StoreError::Index {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Adds the ids of the committed batches `missing`, read from the event files that can hold
    /// them: a file is named after the newest batch among its rows (compaction names a merged
    /// file so), so only files named at or after the first missing batch are read. Returns how
    /// many ids were added.
    fn add_from_files(&self, layout: &Layout, missing: &BTreeSet<&str>) -> Result<u64, StoreError> {
        let Some(first) = missing.first().copied() else {
            return Ok(0);
        };
        let mut added: BTreeMap<&str, u64> = missing.iter().map(|b| (*b, 0)).collect();
        let mut runs = Runs::new(self, RUN_IDS);
        for path in layout.committed_files(&layout.events())? {
            let named = batch_of(&path).unwrap_or_default().to_owned();
            if named.as_str() < first {
                continue;
            }
            each_id(&path, &named, |batch_id, key, hash| {
                if let Some(n) = added.get_mut(batch_id) {
                    *n += 1;
                    runs.push(key, hash)?;
                }
                Ok(())
            })?;
        }
        runs.finish()?;
        let mut batch = self.db.batch();
        for (b, n) in &added {
            batch.insert(&self.batches, *b, n.to_be_bytes());
        }
        batch.commit().map_err(self.err())?;
        Ok(added.values().sum())
    }
}

/// Ids on their way to the disk index, written as sorted runs of tables.
struct Runs<'a> {
    index: &'a DedupeIndex,
    buf: Vec<(u128, i64)>,
    run_ids: usize,
    written: u64,
}

impl<'a> Runs<'a> {
    fn new(index: &'a DedupeIndex, run_ids: usize) -> Self {
        Runs {
            index,
            buf: Vec::new(),
            run_ids,
            written: 0,
        }
    }

    fn push(&mut self, key: u128, hash: i64) -> Result<(), StoreError> {
        self.buf.push((key, hash));
        if self.buf.len() >= self.run_ids {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // A run must be strictly ascending.
        self.buf.sort_unstable_by_key(|(k, _)| *k);
        self.buf.dedup_by_key(|(k, _)| *k);
        let mut run = self.index.ids.start_ingestion().map_err(self.index.err())?;
        for (key, hash) in self.buf.drain(..) {
            run.write(key.to_be_bytes(), hash.to_be_bytes())
                .map_err(self.index.err())?;
            self.written += 1;
        }
        run.finish().map_err(self.index.err())
    }

    /// Writes what is left; returns how many ids were written.
    fn finish(mut self) -> Result<u64, StoreError> {
        self.write()?;
        Ok(self.written)
    }
}

/// The batches the ledger says are committed.
fn committed_batches(layout: &Layout) -> Result<BTreeSet<String>, StoreError> {
    Ok(layout
        .read_ledger()?
        .into_iter()
        .filter(|e| e.status == BatchStatus::Committed)
        .map(|e| e.batch_id)
        .collect())
}

/// Calls `f(batch_id, key, content_hash)` on every row of an event file. Files without a
/// `batch_id` column hold the batch they are named after.
fn each_id(
    path: &Path,
    named: &str,
    mut f: impl FnMut(&str, u128, i64) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let perr = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io("cannot open", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
    let mask = ProjectionMask::columns(
        builder.parquet_schema(),
        ["event_id", "content_hash", "batch_id"],
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(perr)?;
    for batch in reader {
        let batch = batch?;
        let ids = batch
            .column_by_name("event_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let hashes = batch
            .column_by_name("content_hash")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
        let batch_ids = batch
            .column_by_name("batch_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let (Some(ids), Some(hashes)) = (ids, hashes) else {
            return Err(perr(datafusion::parquet::errors::ParquetError::General(
                "event_id or content_hash has an unexpected type".into(),
            )));
        };
        for i in 0..ids.len() {
            if ids.is_null(i) || hashes.is_null(i) {
                continue;
            }
            let b = match batch_ids {
                Some(b) if !b.is_null(i) => b.value(i),
                _ => named,
            };
            f(b, DedupeIndex::key(ids.value(i)), hashes.value(i))?;
        }
    }
    Ok(())
}

impl Store {
    /// The dedupe index, opened (and brought up to the ledger) on first use: only an ingest
    /// needs it, so commands that do not ingest never open it.
    pub fn dedupe_index(&self) -> Result<&DedupeIndex, StoreError> {
        self.dedupe_index_opened().map(|(index, _)| index)
    }

    /// The dedupe index, and whether this call opened it (and so brought it up to the ledger).
    pub fn dedupe_index_opened(&self) -> Result<(&DedupeIndex, bool), StoreError> {
        if let Some(index) = self.index.get() {
            return Ok((index, false));
        }
        let index = DedupeIndex::open_synced(&self.layout)?;
        Ok((self.index.get_or_init(|| index), true))
    }

    /// Brings an open dedupe index up to the ledger again, as on open: after an ingest that
    /// stopped on an error, a committed batch may have missed its index write.
    pub fn resync_dedupe_index(&self) -> Result<(), StoreError> {
        let Some(index) = self.index.get() else {
            return Ok(());
        };
        index.catch_up(
            &self.layout,
            &committed_batches(&self.layout)?,
            &index.covered()?,
            false,
        )
    }
}

/// Committed batches whose ids wait in memory to be written together as one run.
pub struct RunBuffer<'i> {
    index: &'i DedupeIndex,
    files: Vec<(String, Arc<FileIds>)>,
    ids: usize,
}

impl<'i> RunBuffer<'i> {
    pub fn new(index: &'i DedupeIndex) -> Self {
        RunBuffer {
            index,
            files: Vec::new(),
            ids: 0,
        }
    }

    /// Adds a batch whose ledger entry is in place; writes the buffer once it is full.
    pub fn add(&mut self, batch_id: &str, ids: Arc<FileIds>) -> Result<(), StoreError> {
        self.ids += ids.len();
        self.files.push((batch_id.to_owned(), ids));
        if self.ids >= RUN_IDS || self.files.len() >= RUN_FILES {
            self.write()?;
        }
        Ok(())
    }

    /// Writes the buffered batches: their ids as sorted runs, then their `batches` records in
    /// one write batch; then their ids may leave memory. Nothing is marked written on an error:
    /// the batches stay uncovered, to be caught up.
    pub fn write(&mut self) -> Result<(), StoreError> {
        if self.files.is_empty() {
            return Ok(());
        }
        let mut runs = Runs::new(self.index, RUN_IDS);
        for (_, ids) in &self.files {
            for (key, hash) in ids.iter() {
                runs.push(key, hash)?;
            }
        }
        runs.finish()?;
        let mut batch = self.index.db.batch();
        for (b, ids) in &self.files {
            batch.insert(
                &self.index.batches,
                b.as_str(),
                (ids.len() as u64).to_be_bytes(),
            );
        }
        batch.commit().map_err(self.index.err())?;
        for (_, ids) in self.files.drain(..) {
            ids.mark_on_disk();
        }
        self.ids = 0;
        Ok(())
    }
}

/// The ids a file added, kept in memory from the end of its reading until they are on disk.
#[derive(Default)]
pub struct FileIds {
    map: IdMap,
    on_disk: AtomicBool,
}

impl FileIds {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u128, i64)> + '_ {
        self.map.iter().map(|(k, h)| (whole(*k), *h))
    }

    /// Says the ids are in the disk index, so readers may drop them from memory.
    pub fn mark_on_disk(&self) {
        self.on_disk.store(true, Ordering::Release);
    }

    fn on_disk(&self) -> bool {
        self.on_disk.load(Ordering::Acquire)
    }
}

/// The dedupe view of an ingest's reading stage: the ids of the file being read, those of files
/// read but not yet on disk, then the disk index, in that order.
pub struct Dedupe<'i> {
    disk: &'i DedupeIndex,
    current: IdMap,
    pending: Vec<Arc<FileIds>>,
    /// Set while the ingest fills an index that was empty when it began: a bloom filter of
    /// every id the ingest has read. An id it does not hold (almost every new one) is new
    /// without asking the files waiting in memory or the disk index, whose every look-up
    /// probes the filter of each of its tables (a tenth of a first load's time).
    written: Option<Written>,
}

/// Most ids [`Written`] follows (12 bits an id: 48 MB). Past it, look-ups go to the
/// disk index as usual.
const WRITTEN_IDS: usize = 32 * 1024 * 1024;

/// The ids an ingest has read into an index that was empty when it began: a bloom filter,
/// made on the first id.
#[derive(Default)]
struct Written {
    filter: Option<fastbloom::BloomFilter>,
    ids: usize,
}

impl Written {
    /// Adds a file's ids; false once there are too many to follow.
    fn add(&mut self, map: &IdMap) -> bool {
        self.ids += map.len();
        if self.ids > WRITTEN_IDS {
            return false;
        }
        let filter = self.filter.get_or_insert_with(|| {
            // Four probes at 12 bits an id: under 1% false positives when full.
            fastbloom::BloomFilter::with_num_bits(WRITTEN_IDS * 12).hashes(4)
        });
        for (hi, lo) in map.keys() {
            filter.insert_hash(hi ^ lo);
        }
        true
    }

    /// Whether the disk index may hold `key`.
    fn may_hold(&self, (hi, lo): (u64, u64)) -> bool {
        self.filter
            .as_ref()
            .is_some_and(|f| f.contains_hash(hi ^ lo))
    }
}

impl<'i> Dedupe<'i> {
    pub fn new(disk: &'i DedupeIndex) -> Self {
        Dedupe {
            disk,
            current: IdMap::default(),
            pending: Vec::new(),
            written: (disk.approximate_len() == 0).then(Written::default),
        }
    }

    pub fn disk(&self) -> &'i DedupeIndex {
        self.disk
    }

    /// Stops following the ingest's ids: look-ups ask the files in memory and the disk again.
    fn end_first_load(&mut self) {
        self.written = None;
    }

    /// Starts a file expected to hold about `rows` rows: reserving up front spares the
    /// rehashing of a growing table.
    pub fn begin_file(&mut self, rows: usize) {
        self.prune();
        self.current = IdMap::default();
        self.current.reserve(rows);
    }

    /// Checks an id and records it when new.
    pub fn check_insert(&mut self, key: u128, content_hash: i64) -> Result<Seen, StoreError> {
        let half = halves(key);
        let known = match self.current.get(&half) {
            Some(h) => Some(*h),
            None if self.written.as_ref().is_some_and(|w| !w.may_hold(half)) => None,
            None => match self.pending.iter().find_map(|f| f.map.get(&half)) {
                Some(h) => Some(*h),
                None => self.disk.get(key)?,
            },
        };
        Ok(match known {
            None => {
                self.current.insert(half, content_hash);
                Seen::New
            }
            Some(h) if h == content_hash => Seen::Duplicate,
            Some(_) => Seen::Conflict,
        })
    }

    /// Ends a file read whole: its ids stay known until the writer has put them on disk.
    pub fn finish_file(&mut self) -> Arc<FileIds> {
        if let Some(w) = &mut self.written
            && !w.add(&self.current)
        {
            self.end_first_load();
        }
        let ids = Arc::new(FileIds {
            map: std::mem::take(&mut self.current),
            on_disk: AtomicBool::new(false),
        });
        self.pending.push(Arc::clone(&ids));
        ids
    }

    /// Forgets the ids of a file that failed: nothing of it is stored.
    pub fn abandon_file(&mut self) {
        self.current = IdMap::default();
    }

    /// Drops from memory the files whose ids are on disk.
    pub fn prune(&mut self) {
        self.pending.retain(|f| !f.on_disk());
    }

    /// Forgets everything in memory (after a run that stopped on an error, before the disk
    /// index is brought up to the ledger again).
    pub fn reset(&mut self) {
        self.current = IdMap::default();
        self.pending.clear();
        // Catching up adds ids this ingest did not see.
        self.end_first_load();
    }

    /// Ids held in memory now.
    pub fn in_memory(&self) -> usize {
        self.current.len() + self.pending.iter().map(|f| f.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        (dir, store)
    }

    #[test]
    fn ids_are_new_then_duplicate_or_conflict_in_memory_and_on_disk() {
        let (_dir, store) = store();
        let index = store.dedupe_index().unwrap();
        let mut d = Dedupe::new(index);
        d.begin_file(4);
        let (a, b) = (DedupeIndex::key("a"), DedupeIndex::key("b"));
        assert_eq!(d.check_insert(a, 1).unwrap(), Seen::New);
        assert_eq!(d.check_insert(a, 1).unwrap(), Seen::Duplicate);
        assert_eq!(d.check_insert(a, 2).unwrap(), Seen::Conflict);
        let first = d.finish_file();
        // The next file sees the first one's ids while they are only in memory...
        d.begin_file(4);
        assert_eq!(d.check_insert(a, 1).unwrap(), Seen::Duplicate);
        assert_eq!(d.check_insert(b, 5).unwrap(), Seen::New);
        // ...and once they are on disk and dropped from memory.
        index.add_batch("b1", first.iter()).unwrap();
        first.mark_on_disk();
        drop(first);
        d.prune();
        assert_eq!(d.in_memory(), 1);
        assert_eq!(d.check_insert(a, 2).unwrap(), Seen::Conflict);
        assert_eq!(index.get(a).unwrap(), Some(1));
        assert_eq!(index.get(b).unwrap(), None);
    }

    #[test]
    fn a_first_load_finds_its_own_earlier_runs_through_the_filter() {
        let (_dir, store) = store();
        let index = store.dedupe_index().unwrap();
        let mut d = Dedupe::new(index);
        assert!(d.written.is_some(), "the index was empty");
        let mut runs = RunBuffer::new(index);
        let keys: Vec<u128> = (0..RUN_FILES * 3)
            .map(|f| DedupeIndex::key(&format!("e-{f}")))
            .collect();
        for (f, key) in keys.iter().enumerate() {
            d.begin_file(1);
            assert_eq!(d.check_insert(*key, 1).unwrap(), Seen::New);
            runs.add(&format!("b{f}"), d.finish_file()).unwrap();
        }
        d.prune();
        // Three runs went to disk and left memory: each id is known through the filter.
        assert!(d.in_memory() < RUN_FILES);
        assert!(d.written.as_ref().unwrap().ids >= 2 * RUN_FILES);
        d.begin_file(keys.len());
        for key in &keys {
            assert_ne!(d.check_insert(*key, 2).unwrap(), Seen::New);
        }
        // Ids this ingest did not write are not in the filter: a catch-up turns it off.
        d.reset();
        assert!(d.written.is_none());
        // An index that held ids when the ingest began is always asked.
        assert!(Dedupe::new(index).written.is_none());
    }

    #[test]
    fn the_filter_gives_way_past_its_bound() {
        let mut w = Written::default();
        let mut one = IdMap::default();
        one.insert((1, 2), 3);
        assert!(w.add(&one));
        assert!(w.may_hold((1, 2)));
        w.ids = WRITTEN_IDS;
        assert!(!w.add(&one), "one id too many");
    }

    #[test]
    fn a_key_survives_its_halves() {
        for k in [
            0,
            1,
            u128::MAX,
            DedupeIndex::key("e-1"),
            1 << 64,
            (1 << 64) - 1,
        ] {
            assert_eq!(whole(halves(k)), k);
        }
        assert_eq!(std::mem::size_of::<((u64, u64), i64)>(), 24);
    }

    #[test]
    fn committed_files_wait_for_their_run_in_memory() {
        let (_dir, store) = store();
        let index = store.dedupe_index().unwrap();
        let mut d = Dedupe::new(index);
        let mut runs = RunBuffer::new(index);
        for f in 0..RUN_FILES + 1 {
            d.begin_file(1);
            let key = DedupeIndex::key(&format!("e-{f}"));
            assert_eq!(d.check_insert(key, 1).unwrap(), Seen::New);
            runs.add(&format!("b{f}"), d.finish_file()).unwrap();
            // Not on disk until the run is written, yet known to the next file.
            if f + 1 < RUN_FILES {
                assert_eq!(index.get(key).unwrap(), None);
                assert_eq!(d.check_insert(key, 2).unwrap(), Seen::Conflict);
            }
        }
        // The eighth file filled the buffer: those eight are on disk and leave memory.
        d.prune();
        assert_eq!(d.in_memory(), 1);
        assert_eq!(index.covered().unwrap().len(), RUN_FILES);
        runs.write().unwrap();
        d.prune();
        assert_eq!(d.in_memory(), 0);
        assert_eq!(index.covered().unwrap().len(), RUN_FILES + 1);
        let last = DedupeIndex::key(&format!("e-{RUN_FILES}"));
        assert_eq!(index.get(last).unwrap(), Some(1));
    }

    #[test]
    fn a_failed_file_leaves_no_ids() {
        let (_dir, store) = store();
        let mut d = Dedupe::new(store.dedupe_index().unwrap());
        d.begin_file(0);
        let a = DedupeIndex::key("a");
        assert_eq!(d.check_insert(a, 1).unwrap(), Seen::New);
        d.abandon_file();
        d.begin_file(0);
        assert_eq!(d.check_insert(a, 2).unwrap(), Seen::New);
    }

    #[test]
    fn a_big_batch_is_written_in_runs() {
        let (_dir, store) = store();
        let index = store.dedupe_index().unwrap();
        let n = 2007;
        index
            .add_batch_in_runs("b1", (0..n).map(|k| (k, k as i64)), 1000)
            .unwrap();
        assert_eq!(index.get(n - 1).unwrap(), Some(n as i64 - 1));
        assert_eq!(index.get(n).unwrap(), None);
        let count = index.batches.get("b1").unwrap().unwrap();
        assert_eq!(
            u64::from_be_bytes(count.as_ref().try_into().unwrap()),
            n as u64
        );
    }

    /// Throughput and memory of the index alone over many files of fresh ids, as a bulk ingest
    /// into an empty store sees it: `MIRATO_INDEX_BENCH_IDS=20000000 cargo test --release --lib
    /// -- --ignored index_bulk --nocapture`.
    #[test]
    #[ignore]
    fn index_bulk_throughput() {
        let total: u64 = std::env::var("MIRATO_INDEX_BENCH_IDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000_000);
        let per_file = 30_000;
        let (dir, store) = store();
        let index = store.dedupe_index().unwrap();
        let mut d = Dedupe::new(index);
        let mut runs = RunBuffer::new(index);
        let started = Instant::now();
        let mut n = 0u64;
        let mut file = 0;
        while n < total {
            d.begin_file(per_file);
            for _ in 0..per_file {
                let key = DedupeIndex::key(&format!("ev-{n}"));
                assert_eq!(d.check_insert(key, n as i64).unwrap(), Seen::New);
                n += 1;
            }
            let ids = d.finish_file();
            runs.add(&format!("b{file:08}"), ids).unwrap();
            file += 1;
        }
        runs.write().unwrap();
        let secs = started.elapsed().as_secs_f64();
        // A second pass of look-ups only: every id now a duplicate, found on disk.
        let started = Instant::now();
        d.begin_file(0);
        for i in (0..total).step_by(97) {
            let key = DedupeIndex::key(&format!("ev-{i}"));
            assert_eq!(d.check_insert(key, i as i64).unwrap(), Seen::Duplicate);
        }
        let hits = started.elapsed().as_secs_f64();
        let hwm = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or_default()
            .to_owned();
        let disk = std::process::Command::new("du")
            .args(["-sh"])
            .arg(dir.path())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        println!(
            "{total} ids in {file} files: {secs:.1} s, {:.0} ids/s; {} hits on disk: {:.0}/s; \
             {hwm}; disk {disk}",
            total as f64 / secs,
            total / 97,
            (total / 97) as f64 / hits,
        );
    }
}
