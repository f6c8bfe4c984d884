//! The steps of `mirato demo` that are not the command line's own: the sample data, its
//! compaction, the headline figures and the first user. The command prints what they return.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::auth::{Role, UserStore};
use crate::compact::{CompactOptions, CompactReport};
use crate::generate::{GenerateOptions, OutputFormat};
use crate::query::{Engine, KpiResult, QueryError, RawParams};
use crate::store::{Store, StoreError};

/// The figures the demo shows first, at their defaults (the latest event's year): the persons'
/// side, then the employers'.
pub const HEADLINE: [&str; 6] = [
    "registered_stock",
    "acceptance_rate",
    "hires",
    "placement_rate_180",
    "obliged_employers",
    "quota_coverage_rate",
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Users(#[from] crate::auth::users::UserError),
}

/// Whether `dir` holds no file ingest would read (it may not exist).
pub fn sample_missing(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| {
            !d.any(|e| {
                e.ok()
                    .and_then(|e| crate::ingest::Format::from_path(&e.path()))
                    .is_some()
            })
        })
        .unwrap_or(true)
}

/// Writes the sample: 7,000 persons from 2021 to 2025, seed 42, gzipped CSV (the same files as
/// the shipped `sample-data/`).
pub fn generate_sample(dir: &Path, progress: bool) -> Result<(), DemoError> {
    crate::generate::generate(&GenerateOptions {
        persons: 7_000,
        seed: 42,
        out: dir.to_path_buf(),
        format: OutputFormat::Csv,
        gzip: true,
        start: NaiveDate::from_ymd_opt(2021, 1, 1).expect("a date"),
        end: NaiveDate::from_ymd_opt(2025, 12, 31).expect("a date"),
        error_rate: 0.001,
        duplicate_rate: 0.001,
        progress,
    })?;
    Ok(())
}

/// Merges the month partitions as the nightly compaction would. The sample comes as 100 files
/// with a few events in every month each (the opening stock's back to 2016): merged, the figures
/// and the server's shared views read some 120 files instead of 2,400.
pub fn compact(data_dir: &Path, min_files: usize) -> Result<CompactReport, DemoError> {
    let store = Store::open(data_dir)?;
    Ok(crate::compact::compact(
        &store,
        &CompactOptions { min_files },
    )?)
}

/// The [`HEADLINE`] figures, in order.
pub async fn headline(data_dir: &Path) -> Result<Vec<KpiResult>, DemoError> {
    let engine = Engine::open(data_dir)?;
    let mut out = Vec::with_capacity(HEADLINE.len());
    for id in HEADLINE {
        out.push(engine.run_raw(id, &RawParams::default()).await?);
    }
    Ok(out)
}

/// On a first start (no users yet), creates the user `admin`; returns its generated password
/// and the users file.
pub fn first_admin(users_file: PathBuf) -> Result<Option<(String, PathBuf)>, DemoError> {
    let store = UserStore::new(users_file);
    if !store.load()?.is_empty() {
        return Ok(None);
    }
    let pw = store.add("admin", Role::Admin, &Default::default(), None)?;
    Ok(Some((pw, store.path.clone())))
}
