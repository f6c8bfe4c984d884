//! Owner-only, durable file operations: the store holds person-level data, so its folders and
//! files are created for the owner alone, and a rename is made durable by syncing its folder.

use std::fs::{self, File};
use std::path::Path;

/// Creates a folder and its missing parents for the owner only (0700): the store holds
/// person-level data. `main` also sets the umask to 077; this covers the library used alone.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// Creates (or truncates) a file readable and writable by the owner only (0600).
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    private_options().truncate(true).open(path)
}

pub(super) fn private_options() -> fs::OpenOptions {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Restricts an existing folder to its owner (a store made before modes were enforced); best
/// effort, since the folder may belong to someone else.
pub(super) fn restrict_dir(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        }
    }
}

/// Syncs a folder after renames into it.
pub(super) fn sync_dir(dir: &Path) {
    // Best effort: makes the rename durable across power loss on filesystems that need it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into place: a reader
/// sees the old file or the new one, never half of one, and a failure (a full disk, a kill)
/// leaves the old one as it was. The temporary name starts with `.` and ends with `.tmp`, so
/// a folder's leftovers from a killed process are easy to tell and to clear.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.as_deref().unwrap_or_default(),
        std::process::id()
    ));
    remove_stale_temps(
        dir,
        Some(&format!(".{}.", name.as_deref().unwrap_or_default())),
    );
    let written = (|| {
        let mut f = create_private_file(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    sync_dir(dir);
    written
}

/// An I/O error as a person reads it: a full disk (or quota) says so and what to do, since the
/// system's own words ("No space left on device") do not say that nothing was stored.
pub fn io_message(e: &std::io::Error) -> String {
    if is_disk_full(e) {
        format!("{e}: the disk is full: free some space and run it again")
    } else {
        e.to_string()
    }
}

/// The advice for a full disk when an error's text shows one (errors that wrap an I/O error
/// in another library's type, such as Parquet's or DataFusion's), or nothing.
pub fn disk_full_hint(text: &str) -> &'static str {
    if text.contains("os error 28") || text.contains("os error 122") {
        " (the disk is full: free some space and run it again)"
    } else {
        ""
    }
}

/// Whether an I/O error means a full disk or an exhausted quota.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28 | 122))
}

/// Removes the temporary files (`….<pid>.tmp` or `….<pid>-<n>.tmp`) in `dir` whose names start
/// with `prefix` and whose writer is no longer running: what a killed process left. A file of
/// a live process, or of unknown origin, is left alone.
pub fn remove_stale_temps(dir: &Path, prefix: Option<&str>) -> usize {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if prefix.is_some_and(|p| !name.starts_with(p)) {
            continue;
        }
        let Some(pid) = name
            .strip_suffix(".tmp")
            .and_then(|s| s.rsplit('.').next())
            .and_then(|s| s.split('-').next())
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id()
            && !process_running(pid)
            && ent.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(ent.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether process `pid` is running (on systems without `/proc`, assumed so: nothing removed).
fn process_running(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Free bytes for this user, and the size, of the file system holding `path` (None where it
/// cannot be told).
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a writable statvfs for the call to fill.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    let unit = s.f_frsize as u64;
    (rc == 0).then(|| (s.f_bavail as u64 * unit, s.f_blocks as u64 * unit))
}

/// Free bytes for this user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    disk_space(path).map(|(free, _)| free)
}

/// Whether the disk holding `path` is nearly full: under 64 MiB free, or under 2% of a disk
/// smaller than 3.2 GiB. An ingest, a compaction or the stored views may then not fit.
pub fn disk_nearly_full(path: &Path) -> bool {
    const LOW: u64 = 64 * 1024 * 1024;
    disk_space(path).is_some_and(|(free, total)| free < LOW.min(total / 50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporary_files_of_ended_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        // A pid far above any this machine has given out: its writer has ended.
        let gone = 4_000_000_u32;
        let names = [
            format!(".anpal.xlsx.{gone}.tmp"),
            format!("spells-ab12.{gone}-3.tmp"),
            format!(".anpal.xlsx.{me}.tmp"),
            "notes.tmp".to_owned(),
            "spells-ab12.parquet".to_owned(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path(), Some(".anpal.xlsx.")), 1);
        assert_eq!(remove_stale_temps(dir.path(), None), 1);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [names[2].clone(), names[3].clone(), names[4].clone()]);
    }

    #[test]
    fn an_atomic_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
