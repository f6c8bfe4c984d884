//! The work of the standard jobs that need no server: inbox ingest, compaction and scheduled
//! export (the warm-up is the server's). Store work is blocking and runs on the blocking pool.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;

use crate::compact::{self, CompactOptions};
use crate::config::{Config, Ready};
use crate::ingest::{self, FileReport, Ingester};
use crate::privacy::Key;
use crate::query::{Engine, RawParams};
use crate::store::Store;

/// An inbox file as an earlier scan saw it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    size: u64,
    mtime: SystemTime,
    since: Instant,
}

/// What the tasks work on: the configuration, the data folder and key, and what earlier inbox
/// scans saw. Cheap to clone; clones share the scans.
#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    /// Inbox files seen by earlier scans (size, mtime, first seen), for `ready = "stable_size"`.
    seen: Arc<Mutex<HashMap<PathBuf, Seen>>>,
}

impl Context {
    pub fn new(config: &Config, data_dir: PathBuf, key_file: PathBuf) -> Context {
        Context {
            config: config.clone(),
            data_dir,
            key_file,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

#[derive(Debug, Default)]
pub struct InboxRun {
    pub files: usize,
    pub stored: u64,
    pub failed: usize,
}

/// The inbox files ready to take, by the configured rule. A file still being written is never
/// taken: with `done_marker` it has no `FILE.done` yet; with `stable_size` its size or mtime
/// changed within `stable_seconds`, or this is the first scan that sees it.
pub fn ready_files(ctx: &Context) -> Result<Vec<PathBuf>, String> {
    let cfg = &ctx.config.jobs.ingest;
    let inbox = &cfg.inbox;
    let rd = match fs::read_dir(inbox) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", inbox.display())),
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| ingest::Format::from_path(p).is_some())
        .collect();
    files.sort();
    let mut seen = ctx.seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.retain(|p, _| files.contains(p));
    let now = Instant::now();
    let stable_for = Duration::from_secs(cfg.stable_seconds);
    Ok(files
        .into_iter()
        .filter(|p| match cfg.ready {
            Ready::DoneMarker => marker(p).exists(),
            Ready::StableSize => {
                let Ok(m) = fs::metadata(p) else {
                    return false;
                };
                let (size, mtime) = (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
                let age = SystemTime::now().duration_since(mtime).unwrap_or_default();
                match seen.get(p) {
                    Some(s) if s.size == size && s.mtime == mtime => {
                        now.duration_since(s.since) >= stable_for && age >= stable_for
                    }
                    _ => {
                        seen.insert(
                            p.clone(),
                            Seen {
                                size,
                                mtime,
                                since: now,
                            },
                        );
                        false
                    }
                }
            }
        })
        .collect())
}

fn marker(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".done");
    PathBuf::from(s)
}

/// Moves `file` into `dir`, keeping its name unless one is already there.
fn move_into(file: &Path, dir: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = file
        .file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    let mut to = dir.join(&name);
    if to.exists() {
        to = dir.join(format!("{}-{name}", Utc::now().format("%Y%m%dT%H%M%S%6f")));
    }
    fs::rename(file, &to).map_err(|e| {
        let name = crate::privacy::mask_file_name(&file.display().to_string());
        format!("cannot move {name}: {e}")
    })?;
    Ok(to)
}

/// The ingest job: ready inbox files through the real ingest; processed ones to
/// `inbox/processed/`, files rejected whole to `inbox/failed/` with `FILE.reason.txt`.
pub async fn ingest_inbox(ctx: &Context) -> Result<InboxRun, String> {
    let files = ready_files(ctx)?;
    if files.is_empty() {
        return Ok(InboxRun::default());
    }
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let inbox = ctx.config.jobs.ingest.inbox.clone();
        let store = Store::open(&ctx.data_dir).map_err(|e| e.to_string())?;
        let key = Key::load_or_create(&ctx.key_file, &ctx.data_dir).map_err(|e| e.to_string())?;
        let mut ing = Ingester::new(&store, key).map_err(|e| e.to_string())?;
        tracing::info!(files = files.len(), "inbox: ingesting");
        let reports = ing
            .ingest_files(&files, |_| {})
            .map_err(|e| e.to_string())?;
        let mut run = InboxRun {
            files: files.len(),
            ..InboxRun::default()
        };
        for (path, report) in files.iter().zip(&reports) {
            let _ = fs::remove_file(marker(path));
            match report {
                FileReport::Read { stored, .. } => {
                    run.stored += stored;
                    move_into(path, &inbox.join("processed"))?;
                }
                FileReport::Failed { error, .. } => {
                    run.failed += 1;
                    let to = move_into(path, &inbox.join("failed"))?;
                    let mut reason = to.as_os_str().to_owned();
                    reason.push(".reason.txt");
                    fs::write(PathBuf::from(reason), format!("{error}\n"))
                        .map_err(|e| format!("cannot write the reason: {e}"))?;
                    let file = crate::privacy::mask_file_name(&path.display().to_string());
                    tracing::warn!(%file, %error, "inbox: file rejected whole");
                }
            }
        }
        tracing::info!(?run, "inbox: done");
        Ok(run)
    })
    .await
    .map_err(|e| format!("ingest task failed: {e}"))?
}

pub async fn compact(ctx: &Context) -> Result<u64, String> {
    let data = ctx.data_dir.clone();
    let opts = CompactOptions {
        min_files: ctx.config.jobs.compact.min_files,
    };
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&data).map_err(|e| e.to_string())?;
        let r = compact::compact(&store, &opts).map_err(|e| e.to_string())?;
        Ok(r.rows_rewritten)
    })
    .await
    .map_err(|e| format!("compaction task failed: {e}"))?
}

/// Writes each configured KPI as CSV into `reports/<date>/<kpi>.csv`, each with its parameters,
/// `as_of` and data version in `#` lines. Returns the rows written.
pub async fn export(ctx: &Context, engine: &Engine) -> Result<u64, String> {
    let cfg = &ctx.config.jobs.export;
    let dir = cfg.dir.join(Utc::now().format("%Y-%m-%d").to_string());
    crate::store::create_private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut rows = 0;
    for id in &cfg.kpis {
        let raw = RawParams {
            by: crate::list::parse(Some(&cfg.by)),
            ..RawParams::default()
        };
        let def = crate::query::find(id).ok_or_else(|| format!("unknown KPI {id}"))?;
        let mut params =
            crate::query::Params::parse(def, &raw).map_err(|e| format!("{id}: {e}"))?;
        params.cell_keys = !cfg.admins_only;
        let r = engine
            .run(def, &params)
            .await
            .map_err(|e| format!("{id}: {e}"))?;
        // Perturbed like the web's, unless the folder is configured for admins only.
        let r = if cfg.admins_only {
            r
        } else {
            let t = ctx.config.auth.suppression_threshold;
            crate::auth::disclosure::protect(&r, def.kind, t)
        };
        // The same provenance lines as the dashboards' exports.
        let header = crate::csvfile::provenance(&r);
        let (columns, labelled) = crate::query::output::labelled_rows(&r);
        let text = crate::csvfile::objects(&header, &columns, &labelled);
        let path = dir.join(format!("{id}.csv"));
        crate::store::write_atomic(&path, text.as_bytes()).map_err(|e| {
            format!(
                "cannot write {}: {}",
                path.display(),
                crate::store::io_message(&e)
            )
        })?;
        rows += r.rows.len() as u64;
    }
    if cfg.anpal_quarterly {
        let today = Utc::now()
            .with_timezone(&chrono_tz::Europe::Rome)
            .date_naive();
        let (year, quarter) = previous_quarter(today);
        let mut regions: Vec<Option<String>> = vec![None];
        regions.extend(cfg.anpal_regions.iter().cloned().map(Some));
        for region in regions {
            rows += quarterly_report(ctx, engine, &cfg.dir, year, quarter, region).await?;
        }
    }
    Ok(rows)
}

/// The last quarter that has ended by `today`.
pub fn previous_quarter(today: chrono::NaiveDate) -> (i32, u32) {
    use chrono::Datelike;
    let q = (today.month() - 1) / 3 + 1;
    if q == 1 {
        (today.year() - 1, 4)
    } else {
        (today.year(), q - 1)
    }
}

/// Writes a quarter's ANPAL workbook (with its CSVs) unless it was written already: a published
/// report never changes. It is written into a hidden folder and renamed into place, so a reader
/// never finds half a report. Its header records the `as_of` that regenerates it.
async fn quarterly_report(
    ctx: &Context,
    engine: &Engine,
    dir: &Path,
    year: i32,
    quarter: u32,
    region: Option<String>,
) -> Result<u64, String> {
    let slug: String = region
        .as_deref()
        .map(|r| {
            format!(
                "-{}",
                r.to_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect::<String>()
            )
        })
        .unwrap_or_default();
    let parent = dir.join("anpal");
    let name = format!("{year}-Q{quarter}{slug}");
    let target = parent.join(&name);
    if target.exists() {
        tracing::debug!(report = %target.display(), "quarterly report already written");
        return Ok(0);
    }
    let opts = crate::report::AnpalOptions {
        year,
        quarter: Some(quarter),
        region,
        as_of: None,
        threshold: ctx.config.auth.suppression_threshold,
        scope: None,
    };
    let sheets = crate::report::anpal(engine, &opts)
        .await
        .map_err(|e| format!("ANPAL report {name}: {e}"))?;
    let tmp = parent.join(format!(".{name}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    let file = tmp.join(format!("mirato-anpal-{year}-q{quarter}{slug}.xlsx"));
    crate::report::write(&sheets, &file).map_err(|e| format!("ANPAL report {name}: {e}"))?;
    fs::rename(&tmp, &target).map_err(|e| format!("cannot publish {}: {e}", target.display()))?;
    tracing::info!(report = %target.display(), "quarterly ANPAL report written");
    Ok(sheets.iter().map(|s| s.rows.len() as u64).sum())
}

#[cfg(test)]
mod tests {
    use super::previous_quarter;
    use chrono::NaiveDate;

    #[test]
    fn the_last_completed_quarter() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(previous_quarter(d("2026-11-26")), (2026, 3));
        assert_eq!(previous_quarter(d("2026-01-01")), (2025, 4));
        assert_eq!(previous_quarter(d("2026-03-31")), (2025, 4));
        assert_eq!(previous_quarter(d("2026-04-01")), (2026, 1));
        assert_eq!(previous_quarter(d("2026-07-15")), (2026, 2));
    }
}
