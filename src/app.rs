//! The composition root: the one place that builds the application from its configuration:
//! the engine, the dashboards, access control, the server's state and the jobs, wired together.
//! `serve`, `jobs run`, `demo` and the tests all build through [`Setup`], so the modules below
//! need not know of each other: the jobs run tasks without knowing the server, and the server
//! shows jobs without building them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::auth::{Auth, AuthSettings};
use crate::config::Config;
use crate::jobs::{JobSpec, Jobs, task, tasks};
use crate::query::{Engine, QueryError};
use crate::server::{AppState, WeakAppState, dashboards};

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Dashboards(#[from] dashboards::DashboardError),
    #[error(transparent)]
    Key(#[from] crate::privacy::PrivacyError),
    /// The pseudonymisation key is missing or readable by others.
    #[error("{0}")]
    KeyFile(String),
}

/// What the application is built from. Cheap enough to clone; the batch jobs keep one.
#[derive(Clone)]
pub struct Setup {
    pub config: Config,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    /// A folder of dashboard pages; `None` for the built-in ones.
    pub dashboards: Option<PathBuf>,
    pub auth: AuthSettings,
}

/// A server's state and the jobs it runs.
pub struct App {
    pub state: AppState,
    pub jobs: Jobs,
}

impl Setup {
    /// The setup the configuration describes over `data_dir`, with the key in `key_file`.
    pub fn new(config: &Config, data_dir: PathBuf, key_file: PathBuf) -> Setup {
        Setup {
            auth: config.auth_settings(&data_dir),
            dashboards: config.dashboards(),
            config: config.clone(),
            data_dir,
            key_file,
        }
    }

    /// The query engine over the data folder, within the configured memory.
    pub fn engine(&self) -> Result<Engine, QueryError> {
        Engine::open_with(&self.data_dir, &self.config.engine_settings(&self.data_dir))
    }

    /// The server's state over the data folder: the engine, the pages and access control.
    pub fn state(&self) -> Result<AppState, BuildError> {
        let pages = dashboards::load(self.dashboards.as_deref())?;
        let engine = self.engine()?;
        Ok(AppState::new(engine, pages, Auth::new(self.auth.clone())))
    }

    /// The standard jobs (and `extra` ones) without a server: each warm-up computes every page
    /// once in a state of its own (which checks that every page computes), each export opens
    /// its own engine. For `mirato jobs`.
    pub fn jobs(&self, extra: Vec<JobSpec>) -> Jobs {
        Jobs::new(self.job_specs(None, extra))
    }

    /// A server's state with its jobs (and `extra` ones): the warm-up fills the server's caches,
    /// an ingest that stored rows starts the warm-up, and every outcome reaches `/metrics`.
    pub fn app(&self, extra: Vec<JobSpec>) -> Result<App, BuildError> {
        let state = self.state()?;
        let weak = state.downgrade();
        let jobs = Jobs::new(self.job_specs(Some(weak.clone()), extra));
        jobs.on_outcome(Arc::new(move |name, outcome, took| {
            if let Some(state) = weak.upgrade() {
                state.metrics().observe_job(name, outcome, took);
            }
        }));
        state.attach_jobs(jobs.clone());
        Ok(App { state, jobs })
    }

    /// What `mirato serve` runs: [`Setup::app`] that also writes cohort files (with the
    /// pseudonymisation key, which must exist: the server never creates one) and keeps its
    /// shared views across restarts.
    pub fn server(&self) -> Result<App, BuildError> {
        crate::auth::check_key_file(&self.key_file).map_err(BuildError::KeyFile)?;
        let app = self.app(Vec::new())?;
        // A restart reads the shared views of unchanged data back instead of rebuilding them.
        app.state.engine().persist_views(true);
        let wait = self.config.server.max_wait_seconds;
        app.state
            .set_max_wait((wait > 0).then(|| std::time::Duration::from_secs(wait)));
        if self.config.server.max_reports > 0 {
            app.state
                .downloads()
                .set_at_once(self.config.server.max_reports);
        }
        if app.state.auth().users().is_empty() {
            tracing::warn!(
                users = %self.auth.users_file.display(),
                "no users yet: nobody can log in; add one with `mirato users add NAME --role admin`"
            );
        }
        app.state.set_key(crate::privacy::Key::load_or_create(
            &self.key_file,
            &self.data_dir,
        )?);
        Ok(app)
    }

    /// Builds the server ([`Setup::server`]) and serves it on `addr` until it is stopped.
    pub async fn serve(&self, addr: SocketAddr) -> anyhow::Result<()> {
        let app = self.server()?;
        if crate::store::remote::mounted(&self.data_dir).is_some() {
            self.follow_bucket();
        }
        let j = &self.config.jobs;
        crate::server::serve(
            app.state,
            crate::server::ServeOptions {
                addr,
                warm_at_start: j.warmup.at_start,
                shutdown_grace: std::time::Duration::from_secs(j.shutdown_grace_seconds),
            },
        )
        .await
    }

    /// Takes in, every `s3.refresh_seconds`, what other machines committed to the bucket
    /// behind the working copy; on failure the server goes on with the copy as it is.
    fn follow_bucket(&self) {
        let root = self.data_dir.clone();
        let every = std::time::Duration::from_secs(self.config.s3.refresh_seconds.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let root = root.clone();
                let pulled =
                    tokio::task::spawn_blocking(move || crate::store::remote::refresh(&root)).await;
                if let Ok(Err(e)) = pulled {
                    tracing::warn!(error = %e, "cannot take in the bucket's new commits; serving the working copy as it is");
                }
            }
        });
    }

    /// The four standard jobs, then `extra`. With a server the warm-up and the export use its
    /// state (held weakly: the server holds the jobs); without one they build their own.
    fn job_specs(&self, server: Option<WeakAppState>, extra: Vec<JobSpec>) -> Vec<JobSpec> {
        let ctx = tasks::Context::new(&self.config, self.data_dir.clone(), self.key_file.clone());
        let j = &self.config.jobs;
        let ingest = {
            let ctx = ctx.clone();
            task(move || {
                let ctx = ctx.clone();
                async move { Ok(tasks::ingest_inbox(&ctx).await?.stored) }
            })
        };
        let compact = {
            let ctx = ctx.clone();
            task(move || {
                let ctx = ctx.clone();
                async move { tasks::compact(&ctx).await }
            })
        };
        // With a server, the warm-up fills its caches and the export reads through its engine
        // (and its shared views). Without one, the warm-up computes every page once in a state
        // of its own (which checks that each computes) and the export opens an engine of its
        // own, as it also does once the server has stopped.
        let warmup = {
            let (setup, server) = (self.clone(), server.clone());
            task(move || {
                let (setup, state) = (setup.clone(), server.as_ref().map(WeakAppState::upgrade));
                async move {
                    match state {
                        Some(Some(state)) => state.warm_up().await,
                        // The server has stopped: nothing left to warm.
                        Some(None) => Ok(0),
                        None => setup.state().map_err(|e| e.to_string())?.warm_up().await,
                    }
                }
            })
        };
        let export = {
            let (ctx, server) = (ctx.clone(), server.clone());
            task(move || {
                let (ctx, state) = (ctx.clone(), server.as_ref().and_then(WeakAppState::upgrade));
                async move {
                    match state {
                        Some(state) => tasks::export(&ctx, state.engine()).await,
                        None => {
                            let settings = ctx.config.engine_settings(&ctx.data_dir);
                            let engine = Engine::open_with(&ctx.data_dir, &settings)
                                .map_err(|e| e.to_string())?;
                            tasks::export(&ctx, &engine).await
                        }
                    }
                }
            })
        };
        let mut specs = vec![
            JobSpec {
                // New figures: warm the pages now (only a server has pages to warm).
                then: server.is_some().then(|| "warmup".to_owned()),
                ..JobSpec::new(
                    "ingest",
                    "Acquisisce i nuovi file dalla cartella inbox",
                    &j.ingest.schedule,
                    j.ingest.retry.clone(),
                    ingest,
                )
            },
            JobSpec::new(
                "compact",
                "Unisce i file Parquet piccoli di ogni mese",
                &j.compact.schedule,
                j.compact.retry.clone(),
                compact,
            ),
            JobSpec {
                writes: false,
                ..JobSpec::new(
                    "warmup",
                    "Precalcola la vista iniziale di ogni pagina",
                    &j.warmup.schedule,
                    j.warmup.retry.clone(),
                    warmup,
                )
            },
            JobSpec {
                writes: false,
                ..JobSpec::new(
                    "export",
                    "Esporta in CSV gli indicatori configurati nella cartella reports",
                    &j.export.schedule,
                    j.export.retry.clone(),
                    export,
                )
            },
        ];
        specs.extend(extra);
        specs
    }
}
