//! `/metrics` in the Prometheus text format, through the official client crate.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;
use super::cache::Lookup;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobRunLabels {
    job: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    kpi_lookups: Family<CacheLabels, Counter>,
    kpi_seconds: Histogram,
    cached_results: Gauge,
    abandoned: Gauge,
    downloads_running: Gauge,
    uptime: Gauge,
    spill_files: Gauge,
    job_runs: Family<JobRunLabels, Counter>,
    job_seconds: Family<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    job_rows: Family<JobLabels, Gauge>,
    job_last_end: Family<JobLabels, Gauge>,
    job_next_run: Family<JobLabels, Gauge>,
    job_running: Family<JobLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mirato");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let kpi_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "kpi_cache_lookups",
            "KPI results served from the cache (hit) or computed (miss)",
            kpi_lookups.clone(),
        );
        let kpi_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "kpi_duration_seconds",
            "Time to answer one KPI, cache included",
            kpi_seconds.clone(),
        );
        let cached_results = Gauge::default();
        registry.register(
            "kpi_cached_results",
            "KPI results held in the cache",
            cached_results.clone(),
        );
        let abandoned = Gauge::default();
        registry.register(
            "computations_abandoned",
            "Computations (figures, pages, downloads) dropped since start because nobody waited for them any more",
            abandoned.clone(),
        );
        let downloads_running = Gauge::default();
        registry.register(
            "downloads_running",
            "Workbooks and cohort files computing or waiting for their turn",
            downloads_running.clone(),
        );
        let spill_files = Gauge::default();
        registry.register(
            "engine_spill_files",
            "Spill files the query engine has written since start: growing under load, engine.memory_limit is small for it",
            spill_files.clone(),
        );
        let uptime = Gauge::default();
        registry.register("uptime_seconds", "Seconds since start", uptime.clone());
        let job_runs = Family::<JobRunLabels, Counter>::default();
        registry.register(
            "job_runs",
            "Job runs by outcome (ok, failed, skipped: a trigger while running)",
            job_runs.clone(),
        );
        let job_seconds = Family::<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "job_last_duration_seconds",
            "Duration of the job's last run",
            job_seconds.clone(),
        );
        let job_rows = Family::<JobLabels, Gauge>::default();
        registry.register(
            "job_last_rows",
            "Rows the job's last run handled",
            job_rows.clone(),
        );
        let job_last_end = Family::<JobLabels, Gauge>::default();
        registry.register(
            "job_last_end_timestamp_seconds",
            "When the job's last run ended (Unix time)",
            job_last_end.clone(),
        );
        let job_next_run = Family::<JobLabels, Gauge>::default();
        registry.register(
            "job_next_run_timestamp_seconds",
            "When the job runs next (Unix time)",
            job_next_run.clone(),
        );
        let job_running = Family::<JobLabels, Gauge>::default();
        registry.register("job_running", "1 while the job runs", job_running.clone());
        Metrics {
            registry,
            requests,
            latency,
            kpi_lookups,
            kpi_seconds,
            cached_results,
            abandoned,
            downloads_running,
            uptime,
            spill_files,
            job_runs,
            job_seconds,
            job_rows,
            job_last_end,
            job_next_run,
            job_running,
        }
    }

    pub fn observe_request(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn observe_kpi(&self, how: Lookup, took: Duration) {
        let result = match how {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
        };
        self.kpi_lookups
            .get_or_create(&CacheLabels { result })
            .inc();
        self.kpi_seconds.observe(took.as_secs_f64());
    }

    pub fn observe_job(&self, job: &str, outcome: &crate::jobs::RunOutcome, took: Duration) {
        use crate::jobs::RunOutcome;
        let outcome = match outcome {
            RunOutcome::Ok { .. } => "ok",
            RunOutcome::Failed { .. } => "failed",
            RunOutcome::Skipped => "skipped",
        };
        self.job_runs
            .get_or_create(&JobRunLabels {
                job: job.to_owned(),
                outcome,
            })
            .inc();
        if outcome != "skipped" {
            self.job_seconds
                .get_or_create(&JobLabels {
                    job: job.to_owned(),
                })
                .set(took.as_secs_f64());
        }
    }

    /// Sets the job gauges from the jobs' current state, just before encoding.
    fn refresh_jobs(&self, jobs: &crate::jobs::Jobs) {
        for j in jobs.list() {
            let l = JobLabels {
                job: j.name.clone(),
            };
            self.job_rows
                .get_or_create(&l)
                .set(j.stats.last_rows as i64);
            self.job_running
                .get_or_create(&l)
                .set(i64::from(j.stats.running));
            if let Some(t) = j.stats.last_end {
                self.job_last_end.get_or_create(&l).set(t.timestamp());
            }
            if let Some(t) = j
                .next_run
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            {
                self.job_next_run.get_or_create(&l).set(t.timestamp());
            }
            // Skipped triggers are counted by the runner; make the series exist from the start.
            for outcome in ["ok", "failed", "skipped"] {
                let _ = self.job_runs.get_or_create(&JobRunLabels {
                    job: j.name.clone(),
                    outcome,
                });
            }
        }
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.metrics();
    m.cached_results.set(state.cache().len() as i64);
    m.abandoned.set(state.abandoned() as i64);
    m.downloads_running.set(state.downloads().running() as i64);
    m.uptime.set(state.uptime().as_secs() as i64);
    m.spill_files.set(state.engine().spill_files() as i64);
    if let Some(jobs) = state.jobs() {
        m.refresh_jobs(jobs);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}
