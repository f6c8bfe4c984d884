//! A store in an S3 bucket (`data_dir = "s3://bucket/prefix"`, a build with `--features s3`):
//! the bucket holds the store, and each mirato process works on a local working copy of it
//! (`s3.cache_dir`), which it brings up to the bucket before it reads or writes.
//!
//! Why a working copy rather than every read from the bucket: the dedupe index, the shared
//! views and the queries' spill need a local disk anyway; the store's files are immutable, so a
//! copy never goes stale, only short; and every guarantee of the local store (one generation
//! per query, roll-forward after a crash, the tests that prove them) then holds unchanged.
//!
//! The commit point is the table's log in the bucket. A writer uploads the files a version
//! lists, then puts the version with `If-None-Match: *` (object_store's `PutMode::Create`),
//! then writes the same version into its working copy. Two writers cannot both commit version
//! N: the second is refused, none of its rows becomes visible to anyone (no version lists its
//! uploads), and it is told to run again. Conditional puts rather than a lock object with a
//! lease: no clocks to trust, no lease to renew through a long ingest, and a killed writer
//! blocks nobody. S3 (since 2024), MinIO and Ceph support them.
//!
//! Files that no version lists (a killed or refused writer's uploads, retired generations) are
//! removed from the bucket only when older than [`ORPHAN_AGE`], so that a writer still
//! uploading is never robbed; Delta's `vacuum` keeps the same rule, and outside readers' time
//! travel reaches back as far.
//!
//! Credentials come from `[s3]` or the AWS variables and are never logged; errors name objects,
//! never keys.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use fs2::FileExt;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

use super::delta::{self, Recorded};
use super::disk::{create_private_dir, private_options};
use super::entry::write_ledger_entry;
use super::generations::{GENERATION_GRACE, current_generation, remove_old_generations, switch_to};
use super::{Layout, StoreError, io};
use crate::recordkey;

/// Files no version lists are removed from the bucket once this old (a week, as Delta's
/// `vacuum`); `MIRATO_S3_ORPHAN_SECONDS` shortens it for the tests.
pub const ORPHAN_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Uploads and downloads in flight at once.
const PARALLEL: usize = 8;

/// Where the store's private files live in the bucket, apart from the table and quarantine, so
/// that a bucket policy can keep outside readers from them.
const PRIVATE: &str = "_mirato";

pub use super::settings::S3Settings;

/// A bucket and prefix holding a store.
pub struct Remote {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Working copies and their buckets, by the copy's canonical path: the store's code keeps
/// taking a local folder, and looks here for the bucket behind it.
static MOUNTS: LazyLock<Mutex<HashMap<PathBuf, Arc<Remote>>>> = LazyLock::new(Default::default);

/// The requests' own runtime: the store's callers are synchronous, some of them inside the
/// server's runtime, where blocking on that runtime would panic.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mirato-s3")
        .enable_all()
        .build()
        .expect("a runtime for S3 requests")
});

/// Runs a request on the requests' runtime and waits for it.
fn block<T: Send + 'static>(
    f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    futures::executor::block_on(RUNTIME.spawn(f)).map_err(|e| StoreError::Remote {
        action: "lost a request to",
        key: String::new(),
        message: e.to_string(),
    })?
}

fn remote_err(action: &'static str, key: &Key) -> impl FnOnce(object_store::Error) -> StoreError {
    let key = key.to_string();
    move |e| StoreError::Remote {
        action,
        key,
        message: e.to_string(),
    }
}

/// The data folder to work on for `data_dir`: itself when local; for `s3://bucket/prefix`,
/// the working copy, with the bucket mounted behind it.
pub fn resolve(data_dir: &Path, settings: &S3Settings) -> Result<PathBuf, StoreError> {
    match data_dir.to_str().and_then(|s| s.strip_prefix("s3://")) {
        Some(rest) => mount(rest, settings),
        None => Ok(data_dir.to_path_buf()),
    }
}

fn mount(bucket_and_prefix: &str, settings: &S3Settings) -> Result<PathBuf, StoreError> {
    let url = format!("s3://{bucket_and_prefix}");
    let (bucket, prefix) = bucket_and_prefix
        .split_once('/')
        .unwrap_or((bucket_and_prefix, ""));
    let prefix = prefix.trim_matches('/').to_owned();
    if bucket.is_empty() || prefix.split('/').any(|p| p == "..") {
        return Err(StoreError::BadUrl(url));
    }
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if !settings.endpoint.is_empty() {
        b = b.with_endpoint(&settings.endpoint);
    }
    if !settings.region.is_empty() {
        b = b.with_region(&settings.region);
    }
    if !settings.access_key_id.is_empty() {
        b = b.with_access_key_id(&settings.access_key_id);
    }
    if !settings.secret_access_key.is_empty() {
        b = b.with_secret_access_key(&settings.secret_access_key);
    }
    if settings.allow_http {
        b = b.with_allow_http(true);
    }
    let store = b.build().map_err(|e| StoreError::Remote {
        action: "cannot reach",
        key: url.clone(),
        message: e.to_string(),
    })?;
    let copy = if settings.cache_dir.is_empty() {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        let mut p = home.join(".cache/mirato/s3").join(bucket);
        if !prefix.is_empty() {
            p = p.join(&prefix);
        }
        p
    } else {
        PathBuf::from(&settings.cache_dir)
    };
    create_private_dir(&copy).map_err(io("cannot create", &copy))?;
    let copy = copy.canonicalize().map_err(io("cannot open", &copy))?;
    let remote = Arc::new(Remote {
        url,
        store: Arc::new(store),
        prefix,
    });
    MOUNTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(copy.clone(), remote);
    Ok(copy)
}

/// The bucket behind a working copy, if `root` is one.
pub fn mounted(root: &Path) -> Option<Arc<Remote>> {
    let mounts = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if mounts.is_empty() {
        return None;
    }
    let root = root.canonicalize().ok()?;
    mounts.get(&root).cloned()
}

/// Brings a working copy up to its bucket for reading, unless a writer in this machine holds
/// it (that writer brings it up itself). Returns how many versions came in.
pub fn refresh(root: &Path) -> Result<usize, StoreError> {
    let Some(remote) = mounted(root) else {
        return Ok(0);
    };
    let layout = Layout::new(root);
    let lock_path = layout.root.join(".lock");
    let lock = private_options()
        .truncate(false)
        .open(&lock_path)
        .map_err(io("cannot open", &lock_path))?;
    if lock.try_lock_exclusive().is_err() {
        return Ok(0);
    }
    remote.fetch_secret(&layout)?;
    remote.pull(&layout)
}

impl Remote {
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn get_text(&self, rel: &str) -> Result<Option<String>, StoreError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        block(async move {
            match store.get(&key).await {
                Ok(r) => {
                    let bytes = r.bytes().await.map_err(remote_err("cannot read", &key))?;
                    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(remote_err("cannot read", &key)(e)),
            }
        })
    }

    /// Puts `text` at `rel` unless an object is there; false when one was.
    fn put_new(&self, rel: &str, text: &str) -> Result<bool, StoreError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        let payload = PutPayload::from(text.as_bytes().to_vec());
        block(async move {
            let opts = PutOptions::from(PutMode::Create);
            match store.put_opts(&key, payload, opts).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(remote_err("cannot write", &key)(e)),
            }
        })
    }

    /// Every object under `rel`.
    fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        block(async move {
            store
                .list(Some(&key))
                .try_collect::<Vec<_>>()
                .await
                .map_err(remote_err("cannot list", &key))
        })
    }

    /// The versions of the table in the bucket, oldest first.
    fn versions(&self) -> Result<Vec<u64>, StoreError> {
        let mut out: Vec<u64> = self
            .list("generations/_delta_log")?
            .iter()
            .filter_map(|m| m.location.filename().and_then(delta::version_of))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Uploads local files (paths relative to the data folder), several at a time.
    fn upload(&self, root: &Path, rels: Vec<String>) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let jobs: Vec<(PathBuf, Key)> = rels.iter().map(|r| (root.join(r), self.key(r))).collect();
        block(async move {
            futures::stream::iter(jobs)
                .map(|(local, key)| {
                    let store = Arc::clone(&store);
                    async move {
                        let up = |e: std::io::Error| StoreError::Remote {
                            action: "cannot upload",
                            key: key.to_string(),
                            message: e.to_string(),
                        };
                        let mut file = tokio::fs::File::open(&local)
                            .await
                            .map_err(io("cannot read", &local))?;
                        let mut w = BufWriter::new(store, key.clone());
                        tokio::io::copy(&mut file, &mut w).await.map_err(up)?;
                        w.shutdown().await.map_err(up)
                    }
                })
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ())
        })
    }

    /// Downloads objects into the working copy (paths relative to the data folder): each to
    /// a temp name, synced, then renamed, so a file in the copy is always whole.
    fn download(&self, root: &Path, rels: Vec<String>) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let jobs: Vec<(PathBuf, Key)> = rels.iter().map(|r| (root.join(r), self.key(r))).collect();
        block(async move {
            futures::stream::iter(jobs)
                .map(|(local, key)| {
                    let store = Arc::clone(&store);
                    async move {
                        let dir = local.parent().expect("store files live in folders");
                        create_private_dir(dir).map_err(io("cannot create", dir))?;
                        let tmp = local.with_extension("part");
                        let file = private_options()
                            .truncate(true)
                            .open(&tmp)
                            .map_err(io("cannot create", &tmp))?;
                        let mut file = tokio::fs::File::from_std(file);
                        let mut body = store
                            .get(&key)
                            .await
                            .map_err(remote_err("cannot download", &key))?
                            .into_stream();
                        while let Some(chunk) = body.next().await {
                            let chunk = chunk.map_err(remote_err("cannot download", &key))?;
                            file.write_all(&chunk)
                                .await
                                .map_err(io("cannot write", &tmp))?;
                        }
                        file.sync_all().await.map_err(io("cannot sync", &tmp))?;
                        std::fs::rename(&tmp, &local).map_err(io("cannot move into place", &local))
                    }
                })
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ())
        })
    }

    /// Commits version `version` in the bucket: uploads what it lists (event files, and the
    /// quarantine file of a batch), then puts the version unless one is there already.
    pub(super) fn commit(
        &self,
        layout: &Layout,
        version: u64,
        text: &str,
    ) -> Result<(), StoreError> {
        let rel = delta::version_path(version);
        let v = delta::parse_version(text, Path::new(&rel))?;
        let mut files: Vec<String> = v
            .adds
            .iter()
            .map(|(p, _)| format!("generations/{p}"))
            .collect();
        if let Some(Recorded::Batch(e)) = &v.recorded
            && let Some(q) = &e.quarantine_file
            && layout.root.join(q).exists()
        {
            files.push(q.clone());
        }
        self.upload(&layout.root, files)?;
        if std::env::var_os("MIRATO_FAULT_BEFORE_REMOTE_COMMIT").is_some() {
            // For the crash tests: the files are in the bucket, no version lists them.
            tracing::error!("fault injection: aborting between the uploads and the commit");
            std::process::abort();
        }
        if !self.put_new(&rel, text)? {
            return Err(StoreError::Conflict {
                url: self.url.clone(),
                version,
            });
        }
        if std::env::var_os("MIRATO_FAULT_AFTER_REMOTE_COMMIT").is_some() {
            // For the crash tests: committed in the bucket, not yet in the working copy.
            tracing::error!("fault injection: aborting between the bucket and the working copy");
            std::process::abort();
        }
        Ok(())
    }

    /// Brings the working copy up to the bucket: for each version it lacks, in order, the
    /// files the version lists, then the version itself, then its ledger entry; finally the
    /// generation the newest compaction made current. Returns how many versions came in.
    pub(super) fn pull(&self, layout: &Layout) -> Result<usize, StoreError> {
        let theirs = self.versions()?;
        let ours = delta::versions(layout)?;
        let last_ours = ours.last().copied();
        if last_ours > theirs.last().copied() {
            return Err(self.diverged(layout));
        }
        if let Some(v) = last_ours {
            let rel = delta::version_path(v);
            let local = std::fs::read_to_string(layout.root.join(&rel))
                .map_err(io("cannot read", &layout.root.join(&rel)))?;
            if self.get_text(&rel)?.as_deref() != Some(local.as_str()) {
                return Err(self.diverged(layout));
            }
        }
        if theirs.last().copied() > last_ours {
            for d in [layout.quarantine(), layout.ledger()] {
                create_private_dir(&d).map_err(io("cannot create", &d))?;
            }
        }
        let mut pulled = 0;
        let mut generation = None;
        for v in theirs.into_iter().filter(|v| Some(*v) > last_ours) {
            let rel = delta::version_path(v);
            let Some(text) = self.get_text(&rel)? else {
                return Err(self.diverged(layout));
            };
            let parsed = delta::parse_version(&text, Path::new(&rel))?;
            let mut wanted: Vec<String> = parsed
                .adds
                .iter()
                .filter(|(p, size)| {
                    std::fs::metadata(layout.table().join(p))
                        .map(|m| m.len())
                        .ok()
                        != Some(*size)
                })
                .map(|(p, _)| format!("generations/{p}"))
                .collect();
            if let Some(Recorded::Batch(e)) = &parsed.recorded
                && let Some(q) = &e.quarantine_file
                && !layout.root.join(q).exists()
            {
                wanted.push(q.clone());
            }
            self.download(&layout.root, wanted)?;
            delta::link_version(layout, v, &text)?;
            match parsed.recorded {
                Some(Recorded::Batch(e))
                    if !layout
                        .ledger()
                        .join(format!("{}.json", e.batch_id))
                        .exists() =>
                {
                    write_ledger_entry(layout, &e)?;
                }
                Some(Recorded::Generation(g) | Recorded::Created(g)) => generation = Some(g),
                _ => {}
            }
            pulled += 1;
        }
        if let Some(g) = generation {
            let dir = layout.generations().join(&g);
            create_private_dir(&dir).map_err(io("cannot create", &dir))?;
            if current_generation(layout).ok().as_deref() != Some(g.as_str()) {
                // The retired generation's age counts from now (see compact).
                if let Ok(old) = layout.events().canonicalize()
                    && let Ok(d) = std::fs::File::open(old)
                {
                    let _ = d.set_modified(std::time::SystemTime::now());
                }
                switch_to(layout, &dir)?;
            }
        }
        if pulled > 0 {
            // A copy that never compacts drops the generations it retired, as compaction does.
            remove_old_generations(layout, GENERATION_GRACE)?;
            tracing::info!(versions = pulled, store = %self.url, "took in the bucket's new commits");
        }
        Ok(pulled)
    }

    fn diverged(&self, layout: &Layout) -> StoreError {
        StoreError::Diverged {
            copy: layout.root.clone(),
            url: self.url.clone(),
        }
    }

    /// Gives the working copy the secret of the record keys from the bucket, where it is
    /// kept so that every machine keys records alike.
    pub(super) fn fetch_secret(&self, layout: &Layout) -> Result<bool, StoreError> {
        let rel = format!("{PRIVATE}/{}", recordkey::FILE_NAME);
        let Some(theirs) = self.get_text(&rel)? else {
            return Ok(false);
        };
        let path = layout.root.join(recordkey::FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(ours) if ours.trim() == theirs.trim() => Ok(true),
            Ok(_) => Err(self.diverged(layout)),
            Err(_) => {
                use std::io::Write;
                let mut f = private_options()
                    .truncate(true)
                    .open(&path)
                    .map_err(io("cannot create", &path))?;
                f.write_all(theirs.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(io("cannot write", &path))?;
                Ok(true)
            }
        }
    }

    /// Makes sure the bucket and the working copy share one secret of the record keys: the
    /// bucket's, or the copy's (made now if need be) put there when the bucket has none.
    pub(super) fn share_secret(&self, layout: &Layout) -> Result<(), StoreError> {
        if self.fetch_secret(layout)? {
            return Ok(());
        }
        recordkey::load_or_create(&layout.root).map_err(io("cannot read", &layout.root))?;
        let path = layout.root.join(recordkey::FILE_NAME);
        let ours = std::fs::read_to_string(&path).map_err(io("cannot read", &path))?;
        let rel = format!("{PRIVATE}/{}", recordkey::FILE_NAME);
        if !self.put_new(&rel, &ours)? && !self.fetch_secret(layout)? {
            return Err(self.diverged(layout));
        }
        Ok(())
    }

    /// Removes from the bucket the files no version of the current table lists and no ledger
    /// entry names, once older than [`ORPHAN_AGE`]. Returns how many were removed.
    pub(super) fn vacuum(&self, layout: &Layout) -> Result<usize, StoreError> {
        let age = std::env::var("MIRATO_S3_ORPHAN_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(ORPHAN_AGE, Duration::from_secs);
        self.vacuum_older_than(layout, age)
    }

    fn vacuum_older_than(&self, layout: &Layout, age: Duration) -> Result<usize, StoreError> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(age).unwrap_or_else(|_| chrono::Duration::zero());
        // Files of the current version, and those removed too recently for old versions to
        // lose them.
        let mut live: HashSet<String> = HashSet::new();
        for v in delta::versions(layout)? {
            let rel = delta::version_path(v);
            let path = layout.root.join(&rel);
            let text = std::fs::read_to_string(&path).map_err(io("cannot read", &path))?;
            let parsed = delta::parse_version(&text, &path)?;
            for (r, at) in parsed.removes {
                if at < cutoff.timestamp_millis() {
                    live.remove(&format!("generations/{r}"));
                }
            }
            for (a, _) in parsed.adds {
                live.insert(format!("generations/{a}"));
            }
        }
        for e in layout.read_ledger()? {
            if let Some(q) = e.quarantine_file {
                live.insert(q);
            }
        }
        let prefix_len = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut doomed = Vec::new();
        for dir in ["generations", "quarantine"] {
            for m in self.list(dir)? {
                let full = m.location.to_string();
                let rel = full.get(prefix_len..).unwrap_or_default();
                if rel.ends_with(".parquet") && !live.contains(rel) && m.last_modified < cutoff {
                    doomed.push(m.location);
                }
            }
        }
        let n = doomed.len();
        let store = Arc::clone(&self.store);
        block(async move {
            for key in doomed {
                store
                    .delete(&key)
                    .await
                    .map_err(remote_err("cannot remove", &key))?;
            }
            Ok(())
        })?;
        if n > 0 {
            tracing::info!(files = n, store = %self.url, "removed files no version lists");
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use object_store::memory::InMemory;

    /// A working copy in a temp folder, mounted on `bucket` under the prefix `x`.
    fn copy_of(bucket: &Arc<dyn ObjectStore>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let remote = Remote {
            url: "s3://test/x".into(),
            store: Arc::clone(bucket),
            prefix: "x".into(),
        };
        MOUNTS
            .lock()
            .unwrap()
            .insert(root.clone(), Arc::new(remote));
        (dir, root)
    }

    #[test]
    fn a_second_copy_takes_in_the_commits_and_a_copy_of_another_bucket_is_refused() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (_a, root_a) = copy_of(&bucket);
        drop(Store::open(&root_a).unwrap());
        let (_b, root_b) = copy_of(&bucket);
        assert_eq!(refresh(&root_b).unwrap(), 1, "the first version came in");
        assert_eq!(refresh(&root_b).unwrap(), 0, "and only once");
        assert_eq!(delta::versions(&Layout::new(&root_b)).unwrap(), vec![0]);
        let read = |root: &Path| std::fs::read_to_string(root.join(recordkey::FILE_NAME)).unwrap();
        assert_eq!(read(&root_a), read(&root_b), "one secret for every copy");
        // A copy that made its own table in another bucket is not a copy of this one.
        let other: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (_c, root_c) = copy_of(&other);
        drop(Store::open(&root_c).unwrap());
        MOUNTS.lock().unwrap().insert(
            root_c.clone(),
            Arc::new(Remote {
                url: "s3://test/x".into(),
                store: Arc::clone(&bucket),
                prefix: "x".into(),
            }),
        );
        assert!(matches!(refresh(&root_c), Err(StoreError::Diverged { .. })));
    }

    #[test]
    fn only_old_files_that_no_version_lists_leave_the_bucket() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (_a, root) = copy_of(&bucket);
        drop(Store::open(&root).unwrap());
        let orphan = Key::from("x/generations/g1/year=2025/month=01/b-p0000.parquet");
        let put = {
            let (bucket, orphan) = (Arc::clone(&bucket), orphan.clone());
            block(async move {
                bucket
                    .put(&orphan, PutPayload::from_static(b"PAR1"))
                    .await
                    .map_err(remote_err("cannot write", &orphan))
            })
        };
        put.unwrap();
        let remote = mounted(&root).unwrap();
        let layout = Layout::new(&root);
        let hour = Duration::from_secs(3600);
        assert_eq!(remote.vacuum_older_than(&layout, hour).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            remote.vacuum_older_than(&layout, Duration::ZERO).unwrap(),
            1
        );
        let rel = orphan.to_string();
        assert!(
            remote
                .get_text(rel.trim_start_matches("x/"))
                .unwrap()
                .is_none()
        );
    }
}
