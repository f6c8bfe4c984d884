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
