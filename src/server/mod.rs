//! The web server: dashboard pages with server-rendered SVG charts, exports, and the JSON/CSV API
//! over the KPI engine. The engine knows nothing of HTTP; this module knows nothing of SQL.

pub mod access;
pub mod api;
pub mod assets;
pub mod cache;
pub mod chart_map;
pub mod charts;
pub mod choropleth;
pub mod dashboards;
pub mod downloads;
mod error;
pub mod evaluation;
pub mod export;
pub mod filters;
pub mod jobs_page;
pub mod layout;
pub mod metrics;
pub mod pages;
pub mod panels;
pub mod reports;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::query::{Engine, KpiDef, KpiResult, Params, QueryError, RawParams, StoreFacts};
use cache::{Lookup, ResultCache};
use dashboards::Page;
pub use downloads::Download;
pub use error::{AppError, italian_error};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    auth: Arc<crate::auth::Auth>,
    pages: Vec<Page>,
    cache: ResultCache,
    /// Rendered pages by page, filters and data version: a warm page is a lookup.
    pages_html: ResultCache<String>,
    /// Workbooks and cohort files by request, caller's scope and data version: a report asked
    /// by many at once is computed once.
    downloads: ResultCache<Download>,
    /// The downloads computing now, and their turns.
    running_downloads: Arc<downloads::Downloads>,
    metrics: metrics::Metrics,
    facts: ResultCache<StoreFacts>,
    /// The scheduled jobs, when this server runs them.
    jobs: std::sync::OnceLock<crate::jobs::Jobs>,
    /// The pseudonymisation key, for the export pseudonyms of cohort files (without it the
    /// server offers no cohort download).
    key: std::sync::OnceLock<crate::privacy::Key>,
    /// The data version (and its `as_of`) the last warm-up computed: see [`AppState::shown`].
    published: std::sync::Mutex<Option<(String, chrono::DateTime<chrono::Utc>)>>,
    /// A request has started a warm-up of newer data that has not ended yet.
    refreshing: std::sync::atomic::AtomicBool,
    /// Figures being computed for visitors right now: a warm-up waits for them to end.
    visitors: std::sync::atomic::AtomicUsize,
    /// How long a request that computes may wait for its answer (see [`AppState::set_max_wait`]).
    max_wait: std::sync::Mutex<Option<std::time::Duration>>,
    started: Instant,
}

/// How long a warm-up's figure waits for visitors' figures at most: steady traffic must not
/// hold newer data back for ever.
const MAX_YIELD: std::time::Duration = std::time::Duration::from_secs(3);

tokio::task_local! {
    /// Set while a warm-up computes: the version (and instant) it computes, not the published
    /// one, and the same one throughout even if a batch commits meanwhile.
    static WARMING: (String, chrono::DateTime<chrono::Utc>);
}

/// `fut` with the warm-up's version if the caller computes for a warm-up: for work moved to a
/// task of its own (see [`cache::ResultCache::get_or_compute`]), which task-locals do not follow.
pub(crate) fn carry_scope<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let warming = WARMING.try_with(Clone::clone).ok();
    async move {
        match warming {
            Some(w) => WARMING.scope(w, fut).await,
            None => fut.await,
        }
    }
}

impl AppState {
    pub fn new(engine: Engine, pages: Vec<Page>, auth: crate::auth::Auth) -> AppState {
        let downloads_at_once = downloads::default_at_once(engine.max_turns());
        AppState {
            inner: Arc::new(Inner {
                engine,
                auth: Arc::new(auth),
                pages,
                cache: ResultCache::new(4096),
                pages_html: ResultCache::new(512),
                downloads: ResultCache::new(16),
                running_downloads: downloads::Downloads::new(downloads_at_once),
                metrics: metrics::Metrics::new(),
                facts: ResultCache::new(2),
                jobs: std::sync::OnceLock::new(),
                key: std::sync::OnceLock::new(),
                published: std::sync::Mutex::new(None),
                refreshing: std::sync::atomic::AtomicBool::new(false),
                visitors: std::sync::atomic::AtomicUsize::new(0),
                max_wait: std::sync::Mutex::new(None),
                started: Instant::now(),
            }),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn auth(&self) -> &crate::auth::Auth {
        &self.inner.auth
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

    pub fn download_cache(&self) -> &ResultCache<Download> {
        &self.inner.downloads
    }

    /// Computations of every cache dropped since start because nobody waited for them.
    pub fn abandoned(&self) -> u64 {
        let i = &self.inner;
        i.cache.abandoned()
            + i.pages_html.abandoned()
            + i.downloads.abandoned()
            + i.facts.abandoned()
    }

    /// The downloads computing now: their instants and turns (see [`downloads`]).
    pub fn downloads(&self) -> &Arc<downloads::Downloads> {
        &self.inner.running_downloads
    }

    /// The instant requests without an `as_of` see, in RFC 3339 to the microsecond: what
    /// the pages show, so downloads share their stored views and agree with them.
    pub fn shown_as_of(&self) -> Result<String, QueryError> {
        Ok(self
            .shown()?
            .1
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }

    /// Bounds how long a page, an export, an API call or a report keeps its request open while
    /// its figures are computed. Past `wait` the request is answered 503 with `Retry-After`
    /// (see [`deadline`]) and the computation goes on: the retry finds it done or joins it.
    /// Under a load the machine cannot keep up with, every request still gets an answer in
    /// time, as a reverse proxy (whose own timeout is often 60 s) requires. None: no bound.
    pub fn set_max_wait(&self, wait: Option<std::time::Duration>) {
        *self
            .inner
            .max_wait
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = wait;
    }

    fn max_wait(&self) -> Option<std::time::Duration> {
        *self
            .inner
            .max_wait
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Shows `jobs` on `/jobs` and `/metrics` and lets requests start the warm-up. The jobs hold
    /// the server only weakly (see [`AppState::downgrade`]), so the two do not keep each other.
    pub fn attach_jobs(&self, jobs: crate::jobs::Jobs) {
        let _ = self.inner.jobs.set(jobs);
    }

    /// A handle that does not keep the server alive: for the jobs' tasks and outcome callback.
    pub fn downgrade(&self) -> WeakAppState {
        WeakAppState(Arc::downgrade(&self.inner))
    }

    /// The warm-up: computes the default view of every page, for the unsuppressed and the
    /// national suppressed view, into the caches, then publishes the data it computed (see
    /// [`AppState::warm_and_publish`]). Returns the panels computed.
    pub async fn warm_up(&self) -> Result<u64, String> {
        self.warm_and_publish(async {
            let mut panels = 0;
            for who in access::warmup_principals() {
                for idx in 0..self.pages().len() {
                    panels += pages::warm(self, idx, &who)
                        .await
                        .map_err(|e| format!("page {}: {}", self.pages()[idx].slug, e.message()))?;
                }
            }
            Ok(panels as u64)
        })
        .await
    }

    /// Lets the server write cohort files (their pseudonyms derive from this key).
    pub fn set_key(&self, key: crate::privacy::Key) {
        let _ = self.inner.key.set(key);
    }

    pub fn key(&self) -> Option<&crate::privacy::Key> {
        self.inner.key.get()
    }

    pub fn jobs(&self) -> Option<&crate::jobs::Jobs> {
        self.inner.jobs.get()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// The data version requests see (the engine keeps the ledger until its folder changes, so
    /// a new ingest shows without a restart and a warm request does not read the ledger).
    pub async fn version(&self) -> Result<String, QueryError> {
        Ok(self.shown()?.0)
    }

    /// The data version a request with this `as_of` sees: the version at that instant, or the
    /// shown one without it (or when it does not parse: the query then says why). Cache keys
    /// use it, so a request pinned to an instant keeps its entry while newer data arrives.
    pub async fn version_for(&self, as_of: Option<&str>) -> Result<String, QueryError> {
        self.version_at(as_of.and_then(|a| crate::query::parse_as_of(a).ok()))
            .await
    }

    /// [`AppState::version_for`] with the instant parsed.
    pub async fn version_at(
        &self,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<String, QueryError> {
        match as_of {
            Some(t) => Ok(self.engine().snapshot(Some(t))?.data_version),
            None => self.version().await,
        }
    }

    /// The data version requests see, and the instant their queries run at (read together, so
    /// that a batch committed meanwhile never lands under the older version's cache keys).
    /// Once a warm-up has published a version, a newer one is shown only when its own warm-up
    /// has computed the pages: until then requests get the published figures (labelled with
    /// their `as_of`) at once, instead of waiting for the new data's shared views. The first
    /// request that sees newer data starts that warm-up, unless one is running.
    fn shown(&self) -> Result<(String, chrono::DateTime<chrono::Utc>), QueryError> {
        if let Ok(pinned) = WARMING.try_with(Clone::clone) {
            return Ok(pinned);
        }
        let (as_of, latest) = self.engine().latest()?;
        let published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match published {
            Some((version, as_of)) if version != latest => {
                self.refresh();
                Ok((version, as_of))
            }
            _ => Ok((latest, as_of)),
        }
    }

    /// Starts a warm-up of the newest data, unless one runs or a request already started one.
    fn refresh(&self) {
        use std::sync::atomic::Ordering;
        let Some(jobs) = self.jobs() else { return };
        if jobs.is_running("warmup") || self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        /// Clears the flag however the run ends (a panic included), so a later request can try.
        struct Done(AppState);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.inner.refreshing.store(false, Ordering::Release);
            }
        }
        let (jobs, done) = (jobs.clone(), Done(self.clone()));
        tokio::spawn(async move {
            let _done = done;
            let _ = jobs.run("warmup").await;
        });
    }

    /// Runs `warm` (a warm-up) on the data now, then shows that data to requests, even if the
    /// warm-up failed or panicked (a page that failed computes on demand: newer figures are
    /// never held back for long). Returns what `warm` returned.
    pub async fn warm_and_publish<T>(&self, warm: impl Future<Output = T>) -> T {
        /// Publishes on drop, so a panic in the warm-up does not pin requests to old data.
        struct Publish(AppState, Option<(String, chrono::DateTime<chrono::Utc>)>);
        impl Drop for Publish {
            fn drop(&mut self) {
                if let Some((version, as_of)) = self.1.take() {
                    tracing::info!(%version, %as_of, "data version published");
                    *self
                        .0
                        .inner
                        .published
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some((version, as_of));
                }
            }
        }
        let Ok((as_of, version)) = self.engine().latest() else {
            return warm.await;
        };
        let _publish = Publish(self.clone(), Some((version.clone(), as_of)));
        WARMING.scope((version, as_of), warm).await
    }

    /// Marks a visitor's figure as being computed until the guard drops: warm-ups wait for it.
    pub fn visiting(&self) -> Visiting<'_> {
        Visiting::new(&self.inner.visitors)
    }

    /// Waits while visitors' figures are being computed, at most [`MAX_YIELD`].
    async fn yield_to_visitors(&self) {
        let start = Instant::now();
        while self
            .inner
            .visitors
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
            && start.elapsed() < MAX_YIELD
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// What the filters offer (latest date, CPIs), computed once per data version (the two
    /// newest: while newer data warms up, requests and the warm-up each need their own).
    /// Computed like a figure (see [`ResultCache::get_or_compute`]): a request past the
    /// server's wait leaves it to finish for the retry.
    pub async fn facts(&self) -> Result<Arc<StoreFacts>, QueryError> {
        let (version, as_of) = self.shown()?;
        let state = self.clone();
        let (f, _) = self
            .inner
            .facts
            .get_or_compute(&version, move || async move {
                state.engine().facts_at(Some(as_of)).await
            })
            .await?;
        Ok(f)
    }

    /// A KPI as `who` may see it, through the cache. A manager's request is clamped to their
    /// scope and the scope is enforced in the query itself; every role but admin gets the
    /// suppressed result. The cache holds the unsuppressed figures by checked parameters (scope
    /// included) and data version, so two spellings of one request share an entry and a new
    /// ingest never serves a stale figure.
    pub async fn kpi_for(
        &self,
        who: &crate::auth::Principal,
        def: &'static KpiDef,
        raw: &RawParams,
    ) -> Result<(Arc<KpiResult>, Lookup, String), QueryError> {
        let (r, how, key) = self.kpi_unsuppressed(who, def, raw).await?;
        if who.suppressed() {
            let t = self.auth().threshold();
            let shown = crate::auth::disclosure::protect(&r, def.kind, t);
            Ok((Arc::new(shown), how, format!("{key}|perturbed<{t}")))
        } else {
            Ok((r, how, key))
        }
    }

    /// A KPI within `who`'s scope but before suppression: only for statistics computed from it
    /// (such as a log-rank test) whose own output is then checked against the threshold. Never
    /// show it as it is to a role below admin.
    pub async fn kpi_unsuppressed(
        &self,
        who: &crate::auth::Principal,
        def: &'static KpiDef,
        raw: &RawParams,
    ) -> Result<(Arc<KpiResult>, Lookup, String), QueryError> {
        let raw = match who.territory() {
            Some(_) => filters::clamp(raw, who, &*self.facts().await?),
            None => raw.clone(),
        };
        let mut params = Params::parse(def, &raw)?;
        params.scope = who.territory();
        // Keyed for every role: one cached result serves admins and the perturbed views alike.
        params.cell_keys = true;
        // The key names the instant the query runs at and the data version there. Without an
        // `as_of` of its own a query runs at the shown version's instant, so it shares an entry
        // with a request that names that instant (as the retry of a deferred answer does).
        let version = match params.as_of {
            Some(t) => self.version_at(Some(t)).await?,
            None => {
                let (version, as_of) = self.shown()?;
                params.as_of = Some(as_of);
                version
            }
        };
        let key = format!("{}|{params:?}|{version}", def.id);
        let run = params.clone();
        let started = Instant::now();
        let state = self.clone();
        let (r, how) = self
            .cache()
            .get_or_compute(&key, move || async move {
                // On two cores a visitor's figure should not share them with figures nobody
                // has asked for yet: the warm-up's wait for visitors' to end (between figures,
                // never inside one, so a visitor waiting on a warm-up's figure cannot block it).
                let _visitor = if WARMING.try_with(|_| ()).is_ok() {
                    state.yield_to_visitors().await;
                    None
                } else {
                    Some(state.visiting())
                };
                state.engine().run(def, &run).await
            })
            .await?;
        self.metrics().observe_kpi(how, started.elapsed());
        if how == Lookup::Miss {
            tracing::debug!(
                kpi = def.id,
                ?params,
                ms = started.elapsed().as_millis() as u64,
                "kpi computed"
            );
        }
        Ok((r, how, key))
    }
}

/// A server state that may be gone: see [`AppState::downgrade`].
#[derive(Clone)]
pub struct WeakAppState(std::sync::Weak<Inner>);

impl WeakAppState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

/// Counts one visitor's figure in computation for as long as it lives (even if its request is
/// dropped midway).
pub struct Visiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Visiting<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Visiting(n)
    }
}

impl Drop for Visiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The router with every route; tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/p/{slug}", get(pages::page))
        .route("/export/{slug}/{file}", get(export::panel_export))
        .route("/static/{file}", get(assets::static_file))
        .route("/favicon.ico", get(assets::favicon))
        .route("/api/kpis", get(api::kpis))
        .route("/api/kpi/{id}", get(api::kpi))
        .route("/api/openapi.json", get(api::openapi))
        .route("/healthz", get(access::healthz))
        .route("/jobs", get(jobs_page::page))
        .route("/jobs/{name}/run", axum::routing::post(access::run_job))
        .route("/api/jobs", get(jobs_page::api))
        .route("/login", get(access::login_page).post(access::login))
        .route("/logout", get(access::logout_page).post(access::logout))
        .route("/admin/audit", get(access::audit_page))
        .route("/report/anpal", get(reports::anpal))
        .route("/valutazione", get(evaluation::page))
        .route("/api/evaluation", get(evaluation::api))
        .route("/export/cohort.parquet", get(evaluation::cohort_file))
        .route("/api/audit", get(access::audit_api))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), access::guard))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound("no such page or route".into())
}

/// Records each request in the metrics and sets the security headers every response carries
/// (HSTS too when the client came over TLS).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let tls = access::secure(&state, req.headers());
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
    if tls {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

/// The routes whose answers are computed from the figures, and so may take long.
const COMPUTING_ROUTES: [&str; 8] = [
    "/",
    "/p/{slug}",
    "/export/{slug}/{file}",
    "/api/kpi/{id}",
    "/report/anpal",
    "/valutazione",
    "/api/evaluation",
    "/export/cohort.parquet",
];

/// How long a client told to come back later waits before it does.
const RETRY_AFTER_SECONDS: u64 = 10;

/// Answers a computing request that outlasts the server's wait ([`AppState::set_max_wait`])
/// with 503 and `Retry-After`. Its figures go on being computed into the caches, so the retry
/// is answered from them. A browser gets a page in Italian that reloads itself; other clients
/// get JSON.
async fn deadline(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let computing = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_some_and(|m| COMPUTING_ROUTES.contains(&m.as_str()));
    let Some(wait) = state.max_wait().filter(|_| computing) else {
        return next.run(req).await;
    };
    let html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    // The retry names the instant this request computes at, so it finds this computation even
    // when newer data is published meanwhile (which would otherwise start another): the shown
    // one, unless the handler chose another.
    let shown = state.shown_as_of().ok();
    let at = ComputesAt::default();
    req.extensions_mut().insert(at.clone());
    let uri = req.uri().clone();
    match tokio::time::timeout(wait, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let retry = retry_url(&uri, at.get().or(shown).as_deref());
            let mut resp = if html {
                pages::still_computing(&state, RETRY_AFTER_SECONDS, &retry)
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({
                        "error": format!("still computing: ask again in {RETRY_AFTER_SECONDS} s at retry_url, when the answer will be ready or nearer"),
                        "retry_after": RETRY_AFTER_SECONDS,
                        "retry_url": retry,
                    })),
                )
                    .into_response()
            };
            let h = resp.headers_mut();
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
    }
}

/// The instant a computing request computes at, when its handler chose one other than the
/// shown one (a download joining one already running, see [`downloads`]): a deferred answer's
/// retry names it. Set by [`deadline`] on the computing routes it bounds.
#[derive(Clone, Default)]
pub struct ComputesAt(Arc<std::sync::Mutex<Option<String>>>);

impl ComputesAt {
    pub fn set(&self, at: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(at.to_owned());
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The request's path and query with `as_of` set to `shown` unless the request names one.
fn retry_url(uri: &axum::http::Uri, shown: Option<&str>) -> String {
    let query = uri.query().unwrap_or("");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let named = pairs
        .iter()
        .any(|(k, v)| k == "as_of" && !v.trim().is_empty());
    let Some(shown) = shown.filter(|_| !named) else {
        return uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    };
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "as_of") {
        s.append_pair(k, v);
    }
    s.append_pair("as_of", shown);
    format!("{}?{}", uri.path(), s.finish())
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
    crate::list::items(inm)
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

/// How to serve a built [`AppState`].
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Run the warm-up at start, so that the first visitor gets warm pages too.
    pub warm_at_start: bool,
    /// How long a stop waits for a job that writes.
    pub shutdown_grace: std::time::Duration,
}

/// Serves `state` with its scheduled jobs until Ctrl-C or SIGTERM; then stops taking requests
/// and jobs, waits for a running job (at most `shutdown_grace`) and returns.
pub async fn serve(state: AppState, o: ServeOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(o.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", o.addr))?;
    let local = listener.local_addr()?;
    // Bound but not yet serving: a request arriving now waits in the listen queue rather than
    // computing shared tables in its own time.
    let started = Instant::now();
    match state.engine().ready().await {
        Ok(()) => tracing::info!(ms = started.elapsed().as_millis() as u64, "data ready"),
        Err(e) => tracing::warn!(error = %e, "the data could not be readied: computed on demand"),
    }
    let jobs = state.jobs().cloned();
    let mut scheduler = match &jobs {
        Some(j) => Some(
            j.start_scheduler()
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the job scheduler: {e}"))?,
        ),
        None => None,
    };
    if o.warm_at_start
        && let Some(j) = &jobs
    {
        let warm = j.clone();
        tokio::spawn(async move {
            let _ = warm.run("warmup").await;
        });
    }
    tracing::info!(%local, "serving");
    println!("mirato: dashboards at http://{local}/  (Ctrl-C to stop)");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    if let Some(s) = &mut scheduler {
        let _ = s.shutdown().await;
    }
    if let Some(j) = &jobs {
        if j.wait_idle(o.shutdown_grace).await {
            tracing::info!("stopped cleanly");
        } else {
            tracing::warn!(
                grace = ?o.shutdown_grace,
                "a job was still running at the end of the grace period"
            );
        }
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
