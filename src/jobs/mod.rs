//! Scheduled jobs: inbox ingest, compaction, warm-up and scheduled export, fired by
//! tokio-cron-scheduler in Europe/Rome time and run by [`Jobs::run`], which enforces the rules
//! the scheduler does not: a job never overlaps itself (a trigger while it runs is counted and
//! skipped), a failing job is retried with doubling backoff, and every run leaves its numbers
//! for `/jobs` and `/metrics`.

pub mod tasks;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Retry};
use crate::server::AppState;

/// A job's work: returns the rows it handled, or why it failed.
pub type TaskFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

#[derive(Clone)]
enum Task {
    Ingest,
    Compact,
    Warmup,
    Export,
    Custom(TaskFn),
}

struct Entry {
    name: String,
    description: &'static str,
    schedule: String,
    retry: Retry,
    task: Task,
    running: tokio::sync::Mutex<()>,
    /// Whether a run holds `running`: read without touching the lock, which even a brief
    /// `try_lock` would make a run starting at that moment skip.
    busy: std::sync::atomic::AtomicBool,
    stats: Mutex<JobStats>,
}

/// What `/jobs` and `/metrics` show of a job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    pub last_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<u64>,
    /// `ok` or `failed`.
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub last_rows: u64,
    /// Attempts of the last run (1 when it did not need a retry).
    pub last_attempts: u32,
    pub runs_ok: u64,
    pub runs_failed: u64,
    /// Triggers that came while the job was running, and were skipped.
    pub skipped_overlaps: u64,
    pub running: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub name: String,
    pub description: String,
    pub schedule: String,
    pub next_run: Option<String>,
    pub retries: u32,
    pub backoff_seconds: u64,
    #[serde(flatten)]
    pub stats: JobStats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Ok {
        rows: u64,
        attempts: u32,
    },
    Failed {
        error: String,
        attempts: u32,
    },
    /// The job was already running: this trigger did nothing.
    Skipped,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown job '{0}'; `mirato jobs list` shows them")]
pub struct UnknownJob(pub String);

/// The jobs of one process; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    data_dir: PathBuf,
    key_file: PathBuf,
    entries: Vec<Entry>,
    /// The server, once attached: warm-up fills its caches, ingest triggers warm-up.
    app: OnceLock<AppState>,
    /// Inbox files seen by earlier scans (size, mtime, first seen), for `ready = "stable_size"`.
    inbox_seen: Mutex<HashMap<PathBuf, tasks::Seen>>,
}

impl Jobs {
    pub fn new(config: &Config, data_dir: PathBuf, key_file: PathBuf) -> Jobs {
        Jobs::with_custom(config, data_dir, key_file, Vec::new())
    }

    /// The standard jobs plus `custom` ones (name, schedule, retry, work): for tests.
    pub fn with_custom(
        config: &Config,
        data_dir: PathBuf,
        key_file: PathBuf,
        custom: Vec<(String, String, Retry, TaskFn)>,
    ) -> Jobs {
        let j = &config.jobs;
        let entry = |name: &str, description, schedule: &str, retry: &Retry, task| Entry {
            name: name.to_owned(),
            description,
            schedule: schedule.to_owned(),
            retry: retry.clone(),
            task,
            running: tokio::sync::Mutex::new(()),
            busy: std::sync::atomic::AtomicBool::new(false),
            stats: Mutex::new(JobStats::default()),
        };
        let mut entries = vec![
            entry(
                "ingest",
                "Acquisisce i nuovi file dalla cartella inbox",
                &j.ingest.schedule,
                &j.ingest.retry,
                Task::Ingest,
            ),
            entry(
                "compact",
                "Unisce i file Parquet piccoli di ogni mese",
                &j.compact.schedule,
                &j.compact.retry,
                Task::Compact,
            ),
            entry(
                "warmup",
                "Precalcola la vista iniziale di ogni pagina",
                &j.warmup.schedule,
                &j.warmup.retry,
                Task::Warmup,
            ),
            entry(
                "export",
                "Esporta in CSV gli indicatori configurati nella cartella reports",
                &j.export.schedule,
                &j.export.retry,
                Task::Export,
            ),
        ];
        for (name, schedule, retry, f) in custom {
            entries.push(entry(
                &name,
                "Job di prova",
                &schedule,
                &retry,
                Task::Custom(f),
            ));
        }
        Jobs {
            inner: Arc::new(Inner {
                config: config.clone(),
                data_dir,
                key_file,
                entries,
                app: OnceLock::new(),
                inbox_seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Gives the jobs the server whose caches warm-up fills.
    pub fn attach(&self, app: AppState) {
        let _ = self.inner.app.set(app);
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn names(&self) -> Vec<String> {
        self.inner.entries.iter().map(|e| e.name.clone()).collect()
    }

    pub fn list(&self) -> Vec<JobView> {
        let now = Utc::now();
        self.inner
            .entries
            .iter()
            .map(|e| {
                let mut stats = e.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
                stats.running = e.busy.load(std::sync::atomic::Ordering::Acquire);
                JobView {
                    name: e.name.clone(),
                    description: e.description.to_owned(),
                    schedule: e.schedule.clone(),
                    next_run: (!e.schedule.is_empty())
                        .then(|| crate::config::next_run(&e.schedule, now))
                        .flatten()
                        .map(|t| t.to_rfc3339()),
                    retries: e.retry.retries,
                    backoff_seconds: e.retry.backoff_seconds,
                    stats,
                }
            })
            .collect()
    }

    /// Whether a run of the job is under way.
    pub fn is_running(&self, name: &str) -> bool {
        self.entry(name)
            .is_ok_and(|e| e.busy.load(std::sync::atomic::Ordering::Acquire))
    }

    fn entry(&self, name: &str) -> Result<&Entry, UnknownJob> {
        self.inner
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| UnknownJob(name.to_owned()))
    }

    /// Runs a job now: skipped if it is running, retried with backoff if it fails. (Boxed: the
    /// ingest job starts the warm-up job, and a recursive `async fn` has no nameable type.)
    pub fn run<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome, UnknownJob>> + Send + 'a>> {
        Box::pin(self.run_now(name))
    }

    async fn run_now(&self, name: &str) -> Result<RunOutcome, UnknownJob> {
        let e = self.entry(name)?;
        let Ok(_running) = e.running.try_lock() else {
            e.stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .skipped_overlaps += 1;
            tracing::info!(job = name, "already running: trigger skipped");
            if let Some(app) = self.inner.app.get() {
                app.metrics()
                    .observe_job(name, &RunOutcome::Skipped, Duration::ZERO);
            }
            return Ok(RunOutcome::Skipped);
        };
        struct Busy<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Busy<'_> {
            fn drop(&mut self) {
                self.0.store(false, std::sync::atomic::Ordering::Release);
            }
        }
        e.busy.store(true, std::sync::atomic::Ordering::Release);
        let _busy = Busy(&e.busy);
        let started = Instant::now();
        let start = Utc::now();
        e.stats.lock().unwrap_or_else(|p| p.into_inner()).last_start = Some(start);
        tracing::info!(job = name, "job started");
        let mut backoff = e.retry.backoff();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match self.execute(&e.task).await {
                Ok(rows) => break RunOutcome::Ok { rows, attempts },
                Err(error) if attempts > e.retry.retries => {
                    tracing::error!(job = name, attempts, %error, "job failed");
                    break RunOutcome::Failed { error, attempts };
                }
                Err(error) => {
                    tracing::warn!(job = name, attempts, %error, retry_in = ?backoff, "job failed; retrying");
                    e.stats.lock().unwrap_or_else(|p| p.into_inner()).last_error = Some(error);
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        };
        let took = started.elapsed();
        {
            let mut s = e.stats.lock().unwrap_or_else(|p| p.into_inner());
            s.last_end = Some(Utc::now());
            s.last_duration_ms = Some(took.as_millis() as u64);
            s.last_attempts = attempts;
            match &outcome {
                RunOutcome::Ok { rows, .. } => {
                    s.last_outcome = Some("ok".into());
                    s.last_error = None;
                    s.last_rows = *rows;
                    s.runs_ok += 1;
                }
                RunOutcome::Failed { error, .. } => {
                    s.last_outcome = Some("failed".into());
                    s.last_error = Some(error.clone());
                    s.last_rows = 0;
                    s.runs_failed += 1;
                }
                RunOutcome::Skipped => {}
            }
        }
        if let Some(app) = self.inner.app.get() {
            app.metrics().observe_job(name, &outcome, took);
        }
        tracing::info!(job = name, ?outcome, ?took, "job ended");
        Ok(outcome)
    }

    async fn execute(&self, task: &Task) -> Result<u64, String> {
        match task {
            Task::Ingest => {
                let run = tasks::ingest_inbox(self).await?;
                if run.stored > 0
                    && let Some(_app) = self.inner.app.get()
                {
                    // New figures: warm the pages now, without holding up this job.
                    let jobs = self.clone();
                    tokio::spawn(async move {
                        let _ = jobs.run("warmup").await;
                    });
                }
                Ok(run.stored)
            }
            Task::Compact => tasks::compact(self).await,
            Task::Warmup => tasks::warmup(self).await,
            Task::Export => tasks::export(self).await,
            Task::Custom(f) => f().await,
        }
    }

    /// Starts the timers. Each fires [`Jobs::run`], so overlap and retries hold for timed runs.
    pub async fn start_scheduler(
        &self,
    ) -> Result<tokio_cron_scheduler::JobScheduler, tokio_cron_scheduler::JobSchedulerError> {
        let sched = tokio_cron_scheduler::JobScheduler::new().await?;
        for e in &self.inner.entries {
            if e.schedule.is_empty() {
                continue;
            }
            let jobs = self.clone();
            let name = e.name.clone();
            let job = tokio_cron_scheduler::Job::new_async_tz(
                e.schedule.as_str(),
                chrono_tz::Europe::Rome,
                move |_id, _lock| {
                    let jobs = jobs.clone();
                    let name = name.clone();
                    Box::pin(async move {
                        let _ = jobs.run(&name).await;
                    })
                },
            )?;
            sched.add(job).await?;
        }
        sched.start().await?;
        Ok(sched)
    }

    /// Waits until no job that writes (ingest, compaction) runs, at most `grace`. True when
    /// they are idle. Read-only jobs are simply abandoned: they leave nothing behind.
    pub async fn wait_idle(&self, grace: Duration) -> bool {
        let all = async {
            for e in &self.inner.entries {
                if matches!(e.task, Task::Ingest | Task::Compact | Task::Custom(_)) {
                    let _ = e.running.lock().await;
                }
            }
        };
        tokio::time::timeout(grace, all).await.is_ok()
    }

    fn data_dir(&self) -> &PathBuf {
        &self.inner.data_dir
    }

    fn app(&self) -> Option<&AppState> {
        self.inner.app.get()
    }
}
