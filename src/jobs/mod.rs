//! The job runner: named tasks fired by tokio-cron-scheduler in Europe/Rome time and run by
//! [`Jobs::run`], which enforces the rules the scheduler does not: a job never overlaps itself
//! (a trigger while it runs is counted and skipped), a failing job is retried with doubling
//! backoff, and every run leaves its numbers for `/jobs` and, through the outcome callback the
//! application installs, for `/metrics`. The runner knows nothing of what its tasks do: the
//! standard ones are in [`tasks`], and `app` wires them (and the server's warm-up) together.

pub mod tasks;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Retry;

/// A job's work: returns the rows it handled, or why it failed.
pub type TaskFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

/// A task from an async closure.
pub fn task<F, Fut>(f: F) -> TaskFn
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Told of every run's outcome (a skipped trigger included) and how long it took.
pub type OutcomeFn = Arc<dyn Fn(&str, &RunOutcome, Duration) + Send + Sync>;

/// A job to register: what it is called, when it runs and what it does.
pub struct JobSpec {
    pub name: String,
    /// For `/jobs` (Italian, as the UI).
    pub description: String,
    /// A six-field cron expression in Europe/Rome time; empty for a job only run on demand.
    pub schedule: String,
    pub retry: Retry,
    pub task: TaskFn,
    /// Whether it writes (a clean stop waits for it; a job that only reads is abandoned).
    pub writes: bool,
    /// A job started, without waiting for it, after a run that handled rows (the ingest starts
    /// the warm-up: new figures are computed before a visitor asks).
    pub then: Option<String>,
}

impl JobSpec {
    /// A job that writes and starts no other.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        schedule: impl Into<String>,
        retry: Retry,
        task: TaskFn,
    ) -> JobSpec {
        JobSpec {
            name: name.into(),
            description: description.into(),
            schedule: schedule.into(),
            retry,
            task,
            writes: true,
            then: None,
        }
    }
}

struct Entry {
    spec: JobSpec,
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
    entries: Vec<Entry>,
    /// Told of every outcome, once installed (the server's metrics).
    on_outcome: OnceLock<OutcomeFn>,
}

impl Jobs {
    pub fn new(specs: Vec<JobSpec>) -> Jobs {
        let entries = specs
            .into_iter()
            .map(|spec| Entry {
                spec,
                running: tokio::sync::Mutex::new(()),
                busy: std::sync::atomic::AtomicBool::new(false),
                stats: Mutex::new(JobStats::default()),
            })
            .collect();
        Jobs {
            inner: Arc::new(Inner {
                entries,
                on_outcome: OnceLock::new(),
            }),
        }
    }

    /// Installs the callback told of every outcome; only the first one installed counts.
    pub fn on_outcome(&self, f: OutcomeFn) {
        let _ = self.inner.on_outcome.set(f);
    }

    pub fn names(&self) -> Vec<String> {
        self.inner
            .entries
            .iter()
            .map(|e| e.spec.name.clone())
            .collect()
    }

    pub fn list(&self) -> Vec<JobView> {
        let now = Utc::now();
        self.inner
            .entries
            .iter()
            .map(|e| {
                let mut stats = e.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
                stats.running = e.busy.load(std::sync::atomic::Ordering::Acquire);
                let s = &e.spec;
                JobView {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    schedule: s.schedule.clone(),
                    next_run: (!s.schedule.is_empty())
                        .then(|| crate::config::next_run(&s.schedule, now))
                        .flatten()
                        .map(|t| t.to_rfc3339()),
                    retries: s.retry.retries,
                    backoff_seconds: s.retry.backoff_seconds,
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
            .find(|e| e.spec.name == name)
            .ok_or_else(|| UnknownJob(name.to_owned()))
    }

    fn report(&self, name: &str, outcome: &RunOutcome, took: Duration) {
        if let Some(f) = self.inner.on_outcome.get() {
            f(name, outcome, took);
        }
    }

    /// Runs a job now: skipped if it is running, retried with backoff if it fails. (Boxed: a
    /// job may start another through [`JobSpec::then`], and a recursive `async fn` has no
    /// nameable type.)
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
            self.report(name, &RunOutcome::Skipped, Duration::ZERO);
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
        let mut backoff = e.spec.retry.backoff();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match (e.spec.task)().await {
                Ok(rows) => {
                    if rows > 0
                        && let Some(next) = &e.spec.then
                    {
                        // Started now, without holding up this job.
                        let (jobs, next) = (self.clone(), next.clone());
                        tokio::spawn(async move {
                            let _ = jobs.run(&next).await;
                        });
                    }
                    break RunOutcome::Ok { rows, attempts };
                }
                Err(error) if attempts > e.spec.retry.retries => {
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
        self.report(name, &outcome, took);
        tracing::info!(job = name, ?outcome, ?took, "job ended");
        Ok(outcome)
    }

    /// Starts the timers. Each fires [`Jobs::run`], so overlap and retries hold for timed runs.
    pub async fn start_scheduler(
        &self,
    ) -> Result<tokio_cron_scheduler::JobScheduler, tokio_cron_scheduler::JobSchedulerError> {
        let sched = tokio_cron_scheduler::JobScheduler::new().await?;
        for e in &self.inner.entries {
            if e.spec.schedule.is_empty() {
                continue;
            }
            let jobs = self.clone();
            let name = e.spec.name.clone();
            let job = tokio_cron_scheduler::Job::new_async_tz(
                e.spec.schedule.as_str(),
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

    /// Waits until no job that writes runs, at most `grace`. True when they are idle. Jobs
    /// that only read are simply abandoned: they leave nothing behind.
    pub async fn wait_idle(&self, grace: Duration) -> bool {
        let all = async {
            for e in &self.inner.entries {
                if e.spec.writes {
                    let _ = e.running.lock().await;
                }
            }
        };
        tokio::time::timeout(grace, all).await.is_ok()
    }
}
