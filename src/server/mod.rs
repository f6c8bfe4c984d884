//! The web server: dashboard pages with server-rendered SVG charts, exports, and the JSON/CSV API
//! over the KPI engine. The engine knows nothing of HTTP; this module knows nothing of SQL.

pub mod api;
pub mod cache;
pub mod charts;
pub mod dashboards;
pub mod export;
pub mod filters;
pub mod jobs_page;
pub mod metrics;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::query::{Engine, KpiDef, KpiResult, Params, QueryError, RawParams, StoreFacts};
use cache::{Lookup, ResultCache};
use dashboards::Page;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pages: Vec<Page>,
    cache: ResultCache,
    /// Rendered pages by page, filters and data version: a warm page is a lookup.
    pages_html: ResultCache<String>,
    metrics: metrics::Metrics,
    /// The data version, with the ledger folder's mtime it was read at.
    version: tokio::sync::Mutex<Option<(SystemTime, String)>>,
    facts: tokio::sync::Mutex<Option<Arc<StoreFacts>>>,
    /// The scheduled jobs, when this server runs them.
    jobs: std::sync::OnceLock<crate::jobs::Jobs>,
    started: Instant,
}

impl AppState {
    pub fn new(engine: Engine, pages: Vec<Page>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                engine,
                pages,
                cache: ResultCache::new(4096),
                pages_html: ResultCache::new(512),
                metrics: metrics::Metrics::new(),
                version: tokio::sync::Mutex::new(None),
                facts: tokio::sync::Mutex::new(None),
                jobs: std::sync::OnceLock::new(),
                started: Instant::now(),
            }),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn pages(&self) -> &[Page] {
        &self.inner.pages
    }

    pub fn cache(&self) -> &ResultCache {
        &self.inner.cache
    }

    pub fn page_cache(&self) -> &ResultCache<String> {
        &self.inner.pages_html
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Runs `jobs` with this server: warm-up fills its caches, `/jobs` and `/metrics` show them.
    pub fn attach_jobs(&self, jobs: crate::jobs::Jobs) {
        jobs.attach(self.clone());
        let _ = self.inner.jobs.set(jobs);
    }

    pub fn jobs(&self) -> Option<&crate::jobs::Jobs> {
        self.inner.jobs.get()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// The data version now. A stat of the ledger folder tells whether a batch was committed
    /// since the last look; only then is the ledger read again, so a new ingest shows without a
    /// restart and a warm request does not read the ledger.
    pub async fn version(&self) -> Result<String, QueryError> {
        let ledger = self.engine().layout().ledger();
        let mtime = std::fs::metadata(&ledger)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut guard = self.inner.version.lock().await;
        if let Some((t, v)) = guard.as_ref()
            && *t == mtime
        {
            return Ok(v.clone());
        }
        let v = self.engine().data_version()?;
        *guard = Some((mtime, v.clone()));
        Ok(v)
    }

    /// What the filters offer (latest date, CPIs), computed once per data version.
    pub async fn facts(&self) -> Result<Arc<StoreFacts>, QueryError> {
        let version = self.version().await?;
        let mut guard = self.inner.facts.lock().await;
        if let Some(f) = guard.as_ref()
            && f.data_version == version
        {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(self.engine().facts().await?);
        *guard = Some(Arc::clone(&f));
        Ok(f)
    }

    /// A KPI through the cache. The key is the checked parameters and the data version, so two
    /// spellings of one request share an entry and a new ingest never serves a stale figure.
    pub async fn kpi(
        &self,
        def: &'static KpiDef,
        raw: &RawParams,
    ) -> Result<(Arc<KpiResult>, Lookup, String), QueryError> {
        let params = Params::parse(def, raw)?;
        let version = self.version().await?;
        let key = format!("{}|{params:?}|{version}", def.id);
        let started = Instant::now();
        let (r, how) = self
            .cache()
            .get_or_compute(&key, || self.engine().run(def, &params))
            .await?;
        self.metrics().observe_kpi(how, started.elapsed());
        Ok((r, how, key))
    }
}

/// An error a handler returns: a status and a JSON body that names the parameter at fault.
/// Store and engine failures are logged and answered with a short 500 or 503; user input
/// never gets there (see [`QueryError::is_user_error`]).
#[derive(Debug)]
pub enum AppError {
    BadParam {
        param: String,
        message: String,
        allowed: Vec<String>,
    },
    NotFound(String),
    Unavailable(String),
    Internal(String),
}

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::UnknownKpi { .. } => AppError::NotFound(e.to_string()),
            QueryError::BadParam {
                param,
                message,
                allowed,
            } => AppError::BadParam {
                param: param.to_owned(),
                message,
                allowed,
            },
            QueryError::NoStore(_) => AppError::Unavailable(e.to_string()),
            other => {
                tracing::error!(error = %other, "query failed");
                AppError::Internal("the query could not be computed; see the server log".into())
            }
        }
    }
}

impl AppError {
    pub fn bad(param: &str, message: impl Into<String>, allowed: Vec<String>) -> Self {
        AppError::BadParam {
            param: param.to_owned(),
            message: message.into(),
            allowed,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadParam { .. } => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            AppError::BadParam { message, .. }
            | AppError::NotFound(message)
            | AppError::Unavailable(message)
            | AppError::Internal(message) => message,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::BadParam {
                param,
                message,
                allowed,
            } => json!({"error": message, "param": param, "allowed": allowed}),
            other => json!({"error": other.message()}),
        };
        (status, axum::Json(body)).into_response()
    }
}

/// The router with every route; tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/p/{slug}", get(pages::page))
        .route("/export/{slug}/{file}", get(export::panel_export))
        .route("/static/{file}", get(pages::static_file))
        .route("/favicon.ico", get(pages::favicon))
        .route("/api/kpis", get(api::kpis))
        .route("/api/kpi/{id}", get(api::kpi))
        .route("/api/openapi.json", get(api::openapi))
        .route("/healthz", get(api::healthz))
        .route("/jobs", get(jobs_page::page))
        .route("/api/jobs", get(jobs_page::api))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound("no such page or route".into())
}

/// Records each request in the metrics and sets the security headers every response carries.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    state
        .metrics()
        .observe_request(&route, resp.status().as_u16(), started.elapsed());
    set_security_headers(resp.headers_mut());
    resp
}

fn set_security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Answers 304 when the client already holds this version (`If-None-Match`).
pub fn not_modified(req_headers: &HeaderMap, etag: &str) -> Option<Response> {
    let inm = req_headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    inm.split(',')
        .map(str::trim)
        .any(|t| t == etag || t == "*")
        .then(|| {
            (
                StatusCode::NOT_MODIFIED,
                [
                    (header::ETAG, etag.to_owned()),
                    (header::CACHE_CONTROL, "private, no-cache".to_owned()),
                ],
            )
                .into_response()
        })
}

/// A strong ETag from the parts that fix a response's content.
pub fn etag(parts: &[&str]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    format!("\"{:032x}\"", h.digest128())
}

/// What `serve` needs.
pub struct ServeOptions {
    pub data_dir: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    pub dashboards: Option<std::path::PathBuf>,
    pub addr: SocketAddr,
    pub config: crate::config::Config,
}

/// Serves with the scheduled jobs until Ctrl-C or SIGTERM; then stops taking requests and jobs,
/// waits for a running job (at most `jobs.shutdown_grace_seconds`) and returns.
pub async fn serve(o: ServeOptions) -> anyhow::Result<()> {
    let pages = dashboards::load(o.dashboards.as_deref())?;
    let engine = Engine::open(&o.data_dir)?;
    let state = AppState::new(engine, pages);
    let jobs = crate::jobs::Jobs::new(&o.config, o.data_dir.clone(), o.key_file.clone());
    state.attach_jobs(jobs.clone());
    let listener = tokio::net::TcpListener::bind(o.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", o.addr))?;
    let local = listener.local_addr()?;
    let mut scheduler = jobs
        .start_scheduler()
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the job scheduler: {e}"))?;
    // The first visitor after a start gets warm pages too.
    let warm = jobs.clone();
    tokio::spawn(async move {
        let _ = warm.run("warmup").await;
    });
    tracing::info!(%local, "serving");
    println!("mirato: dashboards at http://{local}/  (Ctrl-C to stop)");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = scheduler.shutdown().await;
    let grace = std::time::Duration::from_secs(o.config.jobs.shutdown_grace_seconds);
    if jobs.wait_idle(grace).await {
        tracing::info!("stopped cleanly");
    } else {
        tracing::warn!(
            ?grace,
            "a job was still running at the end of the grace period"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
