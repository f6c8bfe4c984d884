//! The audit: one JSON line per view, export, API call, login and job run: who, when, what,
//! with which parameters and with what outcome. Append-only (the file is opened with
//! `O_APPEND`, mode 0600, never rewritten); admins read it at `/admin/audit`.

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

pub struct Audit {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// The last write's error while writes fail (a full disk): `/healthz` reports it.
    failing: Mutex<Option<String>>,
}

impl Audit {
    pub fn new(path: PathBuf) -> Audit {
        Audit {
            path,
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

    /// The last `n` entries, newest first.
    pub fn tail(&self, n: usize) -> Vec<Value> {
        let Ok(f) = File::open(&self.path) else {
            return Vec::new();
        };
        let mut all: Vec<Value> = BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        let start = all.len().saturating_sub(n);
        let mut out = all.split_off(start);
        out.reverse();
        out
    }
}
