//! A shared view's file: where it lives, how it is written (a temporary name, then linked in
//! place; its footer names the secret of its keys and checks its bytes), when a stored copy
//! is usable, and which `as_of` folders are kept.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use crate::recordkey::{FINGERPRINT_METADATA, KEYED_UNITS};
use crate::store::Layout;

/// How many `as_of` folders are kept: the newest and the one before (a server still showing
/// the published version while the next warms up reads both), and any a process reads.
const KEEP: usize = 2;

/// Rows per row group of a view's file: a file of several groups is scanned by every core,
/// and the writer holds one group at a time.
const ROW_GROUP_ROWS: usize = 1 << 16;

/// Where the view `name` at `as_of_us`, built by `stmt` with keys of the secret named by
/// `fingerprint`, lives.
pub(super) fn path(
    layout: &Layout,
    as_of_us: i64,
    name: &str,
    stmt: &str,
    fingerprint: &str,
) -> PathBuf {
    let hash = xxhash_rust::xxh3::xxh3_64(stmt.as_bytes());
    layout
        .views()
        .join(as_of_us.to_string())
        .join(format!("{name}-{hash:016x}-{fingerprint}.parquet"))
}

/// Why a stored copy is not used.
#[derive(Debug, thiserror::Error)]
pub(super) enum CopyError {
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
pub(super) fn open(
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
    // Read in large pieces: the rows of a national store's view are hundreds of megabytes.
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = std::io::Read::read(&mut file, &mut buf[..want])?;
        if n == 0 {
            return Err(CopyError::Damaged);
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    if format!("{:016x}", hasher.digest()) != hash {
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

/// The stored copy, read whole (its schema and rows), or `None` when there is none.
pub(super) fn read(
    path: &Path,
    fingerprint: &str,
) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>, CopyError> {
    let Some(builder) = open(path, fingerprint)? else {
        return Ok(None);
    };
    let reader = builder.build()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(ParquetError::from)?;
    Ok(Some((schema, batches)))
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
/// the same view at the same time wrote the same view). Then drops older folders (see
/// [`prune`]). Answers the rows written.
pub(super) fn write(
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
/// alone for as long as the lock is held. Without locks (a file system that has none) the
/// folder is open only; a view pruned under a query is written again by its next scan.
pub(super) fn lock_folder(dir: &Path) -> std::io::Result<fs::File> {
    loop {
        crate::store::create_private_dir(dir)?;
        let folder = fs::File::open(dir)?;
        if let Err(e) = folder.lock_shared() {
            tracing::warn!(path = %dir.display(), error = %e, "cannot lock a folder of stored views");
            return Ok(folder);
        }
        // Pruned between the open and the lock: lock the folder made anew.
        if same_folder(&folder, dir) {
            return Ok(folder);
        }
    }
}

/// Whether the open folder is the one at `dir` now.
fn same_folder(folder: &fs::File, dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (folder.metadata(), fs::metadata(dir)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = folder;
        dir.exists()
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
        // Locked: a process reads it. Without locks, pruned as the newest instants allow.
        if let Err(fs::TryLockError::WouldBlock) = folder.try_lock() {
            continue;
        }
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!(path = %old.display(), error = %e, "cannot remove old stored views");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_instants_and_those_in_use() {
        let root = tempfile::tempdir().unwrap();
        for n in [10, 20, 30, 40] {
            fs::create_dir_all(root.path().join(n.to_string())).unwrap();
        }
        let reading = lock_folder(&root.path().join("10")).unwrap();
        prune(root.path());
        let left = |n: i64| root.path().join(n.to_string()).exists();
        assert!(left(10), "a folder in use was removed");
        assert!(!left(20));
        assert!(left(30) && left(40));
        drop(reading);
        prune(root.path());
        assert!(!left(10));
    }
}
