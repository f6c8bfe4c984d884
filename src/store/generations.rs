//! The `events` link and its generations: `events` is a symlink to the current generation
//! folder under `generations/`, swapped with one rename (see `compact`). Here: switching it, and
//! finding it again after a crash or in a store from before generations.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::disk::{create_private_dir, sync_dir};
use super::{Layout, StoreError, io};

/// How long an old generation is kept after it stopped being current, at least: queries that
/// started on it finish there. A generation a query has pinned (see [`pin_generation`]) is kept
/// until the query ends, however long; the grace covers readers without locks (other
/// programs, file systems without them).
pub const GENERATION_GRACE: Duration = Duration::from_secs(15 * 60);

/// A shared lock on the generation folder `dir`, held while a query reads it:
/// [`remove_old_generations`] leaves a pinned generation alone. Without locks (a file system
/// that has none) the folder is open only, and the grace alone protects the query.
pub fn pin_generation(dir: &Path) -> std::io::Result<fs::File> {
    let folder = fs::File::open(dir)?;
    match folder.try_lock_shared() {
        Ok(()) => {}
        // Held exclusively: the clean-up is removing it, long after it was retired.
        Err(fs::TryLockError::WouldBlock) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is being removed", dir.display()),
            ));
        }
        Err(fs::TryLockError::Error(e)) => {
            tracing::warn!(path = %dir.display(), error = %e, "cannot lock a generation of event files");
        }
    }
    Ok(folder)
}

/// The first generation of a new store.
const FIRST: &str = "g00000000T000000000000Z";

/// The current generation's folder name.
pub fn current_generation(layout: &Layout) -> Result<String, StoreError> {
    let events = layout.events();
    let dir = events.canonicalize().map_err(io("cannot open", &events))?;
    Ok(dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default())
}

/// Makes sure `events` links to a generation: a new store gets its first one; a store from
/// before generations has its `events` folder moved under `generations/`; a link lost between
/// those two steps points again at the newest finished generation.
pub(super) fn ensure_events_link(layout: &Layout) -> Result<(), StoreError> {
    let events = layout.events();
    let gens = layout.generations();
    match fs::symlink_metadata(&events) {
        Ok(m) if m.file_type().is_symlink() => return Ok(()),
        Ok(_) => {
            // A real folder: it becomes a generation (one rename), then the link is made.
            create_private_dir(&gens).map_err(io("cannot create", &gens))?;
            let legacy = gens.join(format!("{FIRST}-legacy"));
            fs::rename(&events, &legacy).map_err(io("cannot move", &events))?;
            sync_dir(&layout.root);
        }
        Err(_) => {}
    }
    let newest = finished_generations(layout)?.pop();
    let target = match newest {
        Some(g) => g,
        None => {
            let first = gens.join(FIRST);
            create_private_dir(&first).map_err(io("cannot create", &first))?;
            first
        }
    };
    switch_to(layout, &target)
}

/// Generation folders that were finished (not `*.building`), oldest first.
fn finished_generations(layout: &Layout) -> Result<Vec<PathBuf>, StoreError> {
    let gens = layout.generations();
    let Ok(rd) = fs::read_dir(&gens) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for ent in rd {
        let path = ent.map_err(io("cannot list", &gens))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if path.is_dir() && name.is_some_and(|n| n.starts_with('g') && !n.ends_with(".building")) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Points `events` at generation `generation` with one atomic rename of a fresh symlink over
/// it. A query resolves the link once when it starts, so it reads one generation throughout.
pub fn switch_to(layout: &Layout, generation: &Path) -> Result<(), StoreError> {
    let events = layout.events();
    let target = Path::new("generations").join(generation.file_name().expect("a generation"));
    let next = layout.root.join("events.next");
    let _ = fs::remove_file(&next);
    std::os::unix::fs::symlink(&target, &next).map_err(io("cannot link", &next))?;
    fs::rename(&next, &events).map_err(io("cannot switch", &events))?;
    sync_dir(&layout.root);
    Ok(())
}

/// Removes what a killed compaction left: generations still being built, and finished ones
/// newer than the current generation, which no commit made current (the newest commit was
/// completed first, see `Store::recover`). Called under the write lock, so none is in use.
pub(super) fn remove_interrupted(layout: &Layout) -> Result<usize, StoreError> {
    let current = current_generation(layout)?;
    let gens = layout.generations();
    let Ok(rd) = fs::read_dir(&gens) else {
        return Ok(0);
    };
    let mut removed = 0;
    for ent in rd {
        let path = ent.map_err(io("cannot list", &gens))?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let building = name.starts_with('g') && name.ends_with(".building");
        let uncommitted = name.starts_with('g') && *name > *current && path.is_dir();
        if building || uncommitted {
            fs::remove_dir_all(&path).map_err(io("cannot remove", &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes generations that stopped being current more than `grace` ago, and unfinished ones.
pub fn remove_old_generations(layout: &Layout, grace: Duration) -> Result<usize, StoreError> {
    let gens = layout.generations();
    let Ok(rd) = fs::read_dir(&gens) else {
        return Ok(0);
    };
    let current = layout.events().canonicalize().ok();
    let mut removed = 0;
    for ent in rd {
        let path = ent.map_err(io("cannot list", &gens))?.path();
        // Only generation folders: the table's log lives beside them.
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('g'))
        {
            continue;
        }
        if Some(&path) == current.as_ref()
            || current
                .as_ref()
                .is_some_and(|c| c.file_name() == path.file_name())
        {
            continue;
        }
        // A retired generation's mtime is set when it is retired.
        let age = fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        let unfinished = path.extension().is_some_and(|e| e == "building");
        if age < grace && !(unfinished && age >= Duration::from_secs(60)) {
            continue;
        }
        // A query of this process or another reads it (see `pin_generation`): kept, and
        // removed by a later compaction once the query has ended. The exclusive lock is held
        // while the folder goes, so no query pins it half-removed.
        let folder = fs::File::open(&path).map_err(io("cannot open", &path))?;
        if let Err(fs::TryLockError::WouldBlock) = folder.try_lock() {
            tracing::info!(path = %path.display(), "an old generation is still read: kept");
            continue;
        }
        fs::remove_dir_all(&path).map_err(io("cannot remove", &path))?;
        removed += 1;
    }
    Ok(removed)
}
