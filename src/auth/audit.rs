//! The audit: one JSON line per view, export, API call, login and job run: who, when, what,
//! with which parameters and with what outcome. Append-only (the file is opened with
//! `O_APPEND`, mode 0600, never rewritten); admins read it at `/admin/audit`.
//!
//! Rotation: past a size, or at a new day, the file is renamed `audit.jsonl.<when>` and a new
//! one begun, under the same lock as the writes, so no entry is lost or split between files;
//! the newest `keep` finished files are kept.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    pub at: String,
    pub user: &'a str,
    pub role: &'a str,
    /// `view`, `export`, `api`, `login`, `login_failed`, `logout`, `job`, `denied`.
    pub action: &'a str,
    pub path: &'a str,
    /// The query string as sent (filters, period, `as_of`).
    pub params: &'a str,
    pub status: u16,
}

/// When the audit starts a new file, and how many finished ones it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// 0: never by size.
    pub max_bytes: u64,
    /// A new file at the first entry of each day (UTC).
    pub daily: bool,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 64 * 1024 * 1024,
            daily: true,
            keep: 90,
        }
    }
}

pub struct Audit {
    path: PathBuf,
    rotation: Rotation,
    file: Mutex<Option<File>>,
    /// The last write's error while writes fail (a full disk): `/healthz` reports it.
    failing: Mutex<Option<String>>,
}

impl Audit {
    pub fn new(path: PathBuf) -> Audit {
        Audit::with_rotation(path, Rotation::default())
    }

    pub fn with_rotation(path: PathBuf, rotation: Rotation) -> Audit {
        Audit {
            path,
            rotation,
            file: Mutex::new(None),
            failing: Mutex::new(None),
        }
    }

    /// Why the audit cannot be written now, if it cannot.
    pub fn failing(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Appends one entry. A failure is returned so that the caller can refuse to serve what it
    /// could not record.
    pub fn record(&self, e: &Entry<'_>) -> std::io::Result<()> {
        let written = self.append(e);
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = written
            .as_ref()
            .err()
            .map(|err| format!("{}: {}", self.path.display(), crate::store::io_message(err)));
        written
    }

    fn append(&self, e: &Entry<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).expect("entry serialises");
        line.push(b'\n');
        let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
        self.rotate_if_due(&mut g, line.len() as u64)?;
        if g.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *g = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.path)?,
            );
        }
        let f = g.as_mut().expect("opened above");
        let before = f.metadata()?.len();
        let written = f.write_all(&line).and_then(|()| f.flush());
        if written.is_err() {
            // Half a line (a full disk) would spoil the next entry too: take it back.
            let _ = f.set_len(before);
        }
        written
    }

    /// Starts a new file when the next line would pass the size, or when the current file was
    /// last written on another day. Called with the writers' lock held.
    fn rotate_if_due(&self, open: &mut Option<File>, next: u64) -> std::io::Result<()> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        if meta.len() == 0 {
            return Ok(());
        }
        let by_size = self.rotation.max_bytes > 0 && meta.len() + next > self.rotation.max_bytes;
        let by_day = self.rotation.daily
            && meta.modified().is_ok_and(|m| {
                chrono::DateTime::<chrono::Utc>::from(m).date_naive()
                    != chrono::Utc::now().date_naive()
            });
        if !(by_size || by_day) {
            return Ok(());
        }
        *open = None;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ");
        let done = self
            .path
            .with_file_name(format!("{}.{stamp}", self.file_name()));
        std::fs::rename(&self.path, &done)?;
        for old in self.finished().into_iter().skip(self.rotation.keep) {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The finished files, newest first.
    pub fn finished(&self) -> Vec<PathBuf> {
        let prefix = format!("{}.", self.file_name());
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) && !n.ends_with(".tmp")
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        files.reverse();
        files
    }

    /// The last `n` entries, newest first, from the current file and, if it holds fewer, the
    /// finished ones.
    pub fn tail(&self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        for path in std::iter::once(self.path.clone()).chain(self.finished()) {
            if out.len() >= n {
                break;
            }
            let Ok(f) = File::open(&path) else {
                continue;
            };
            let mut entries: Vec<Value> = BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str(&l).ok())
                .collect();
            entries.reverse();
            out.extend(entries.into_iter().take(n - out.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> String {
        format!("/p/{i}")
    }

    /// Records the view of page `i`.
    fn view(audit: &Audit, i: usize) {
        let path = entry(i);
        audit
            .record(&Entry {
                at: "2026-12-06T00:00:00Z".into(),
                user: "u",
                role: "admin",
                action: "view",
                path: &path,
                params: "",
                status: 200,
            })
            .unwrap();
    }

    #[test]
    fn rotation_by_size_loses_no_entry_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rotation = Rotation {
            max_bytes: 1000,
            daily: true,
            keep: 1000,
        };
        let audit = Audit::with_rotation(path.clone(), rotation);
        let n = 300;
        for i in 0..n {
            view(&audit, i);
        }
        let files: Vec<PathBuf> = std::iter::once(path.clone())
            .chain(audit.finished())
            .collect();
        assert!(files.len() > 10, "rotated by size: {files:?}");
        let mut paths = Vec::new();
        for f in &files {
            assert!(
                std::fs::metadata(f).unwrap().len() <= 1000,
                "{f:?} past the size"
            );
            for line in std::fs::read_to_string(f).unwrap().lines() {
                let v: Value = serde_json::from_str(line).expect("whole lines only");
                paths.push(v["path"].as_str().unwrap().to_owned());
            }
        }
        paths.sort();
        let mut want: Vec<String> = (0..n).map(entry).collect();
        want.sort();
        assert_eq!(paths, want, "every entry once");
        // The tail reads across files, newest first.
        let tail = audit.tail(50);
        assert_eq!(tail.len(), 50);
        assert_eq!(tail[0]["path"], entry(n - 1));
        assert_eq!(tail[49]["path"], entry(n - 50));

        // Fewer kept: the oldest finished files go at the next rotation.
        let audit = Audit::with_rotation(
            path,
            Rotation {
                keep: 3,
                ..rotation
            },
        );
        for i in 0..40 {
            view(&audit, i);
        }
        assert_eq!(audit.finished().len(), 3);
    }
}
