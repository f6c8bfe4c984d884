//! Dashboard pages (`/`, `/p/{slug}`): checks the filters, computes the panels
//! ([`super::panels`]) and renders the page ([`super::layout`]) in a blocking task because
//! plotters is synchronous. A rendered page is kept by page, filters, data version and viewer
//! class, so a warm page is a lookup.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::filters::{Checked, Filters};
use super::layout::{layout, render_page};
use super::panels::{PanelData, compute};
use super::{AppError, AppState, italian_error};
use crate::auth::Principal;

/// `GET /`: the first page, with the filters carried.
pub async fn home(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let first = state
        .pages()
        .first()
        .map(|p| p.slug.clone())
        .unwrap_or_default();
    let qs = q.map(|q| format!("?{q}")).unwrap_or_default();
    Redirect::to(&format!("/p/{first}{qs}")).into_response()
}

/// `GET /p/{slug}`: a dashboard page.
pub async fn page(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(slug): Path<String>,
    q: Result<Checked, AppError>,
    headers: HeaderMap,
) -> Response {
    let Some(idx) = state.pages().iter().position(|p| p.slug == slug) else {
        return error_page(&state, StatusCode::NOT_FOUND, "Pagina non trovata.", None);
    };
    let f = match q {
        Ok(q) => q.filters,
        Err(e) => return error_page(&state, e.status(), &italian_error(&e), Some(idx)),
    };
    let version = match state.version_for(f.as_of.as_deref()).await {
        Ok(v) => v,
        Err(e) => {
            let e = AppError::from(e);
            return error_page(&state, e.status(), &italian_error(&e), Some(idx));
        }
    };
    let tag = page_tag(&state, &slug, &f, &version, &who);
    if let Some(r) = super::not_modified(&headers, &tag) {
        return r;
    }
    let rendered = state
        .page_cache()
        .get_or_compute(&tag, {
            let (state, who) = (state.clone(), who.clone());
            move || async move { render_fresh(&state, idx, f, &who).await }
        })
        .await;
    match rendered {
        Ok((html, _)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                (header::ETAG, tag),
                (header::CACHE_CONTROL, "private, no-cache".to_owned()),
            ],
            String::clone(&html),
        )
            .into_response(),
        // Some panel failed: show the page (each failed panel says so), uncached.
        Err(NotKept::Partial(html)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(NotKept::Failed(e)) => error_page(&state, e.status(), &italian_error(&e), Some(idx)),
    }
}

/// A page's content is fixed by the page, filters, data version and what the viewer may see.
fn page_tag(state: &AppState, slug: &str, f: &Filters, version: &str, who: &Principal) -> String {
    let class = who.view_class(state.auth().threshold());
    super::etag(&["page", slug, &f.query_string(), version, &class])
}

/// Puts a page's default view (no filters) in the cache, as its first visitor would. Returns the
/// panels computed.
pub async fn warm(state: &AppState, idx: usize, who: &Principal) -> Result<usize, AppError> {
    let f = Filters::default();
    let version = state.version().await?;
    let tag = page_tag(state, &state.pages()[idx].slug, &f, &version, who);
    match state
        .page_cache()
        .get_or_compute(&tag, {
            let (state, who) = (state.clone(), who.clone());
            move || async move { render_fresh(&state, idx, f, &who).await }
        })
        .await
    {
        Ok(_) => Ok(state.pages()[idx].panels.len()),
        Err(NotKept::Partial(_)) => Err(AppError::Internal("a panel failed to compute".into())),
        Err(NotKept::Failed(e)) => Err(e),
    }
}

/// Why a rendered page is not kept in the cache.
enum NotKept {
    Partial(String),
    Failed(AppError),
}

impl From<AppError> for NotKept {
    fn from(e: AppError) -> Self {
        NotKept::Failed(e)
    }
}

/// Computes a page's panels and renders it. A page whose panels failed is rendered (each failed
/// panel says so) but not kept, so that the next visit tries again.
async fn render_fresh(
    state: &AppState,
    idx: usize,
    f: Filters,
    who: &Principal,
) -> Result<String, NotKept> {
    // The filters' facts (from the ledger, or one scan of an older store) and the panels run
    // together.
    let (facts, data) = tokio::join!(state.facts(), compute(state, &state.pages()[idx], &f, who));
    let facts = facts.map_err(AppError::from)?;
    let failed = data.iter().any(|d| matches!(d, PanelData::Error(_)));
    let st = state.clone();
    let who = who.clone();
    let html = tokio::task::spawn_blocking(move || render_page(&st, idx, &f, &facts, &data, &who))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "page rendering failed");
            AppError::Internal("page rendering failed".into())
        })?
        .into_string();
    if failed {
        return Err(NotKept::Partial(html));
    }
    Ok(html)
}

/// The page a browser gets while its figures are still being computed past the server's wait:
/// it says so and reloads itself after `seconds` (the `Refresh` header; no script needed).
pub fn still_computing(state: &AppState, seconds: u64, retry: &str) -> Response {
    let mut resp = error_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "Il calcolo di questa pagina richiede più tempo del solito e prosegue sul server: la pagina si ricarica da sola tra {seconds} secondi, con i dati di questo momento."
        ),
        None,
    );
    if let Ok(v) = header::HeaderValue::from_str(&format!("{seconds}; url={retry}")) {
        resp.headers_mut()
            .insert(header::HeaderName::from_static("refresh"), v);
    }
    resp
}

fn error_page(state: &AppState, status: StatusCode, message: &str, idx: Option<usize>) -> Response {
    let body = layout(
        state,
        idx,
        &Filters::default(),
        "Errore",
        html! {
            h1 { "Errore" }
            p.error role="alert" { (message) }
            p { a href=(idx.map(|i| format!("/p/{}", state.pages()[i].slug)).unwrap_or_else(|| "/".into())) { "Torna alla pagina senza filtri" } }
        },
        false,
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response()
}
