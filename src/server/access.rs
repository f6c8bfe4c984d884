//! Authentication, authorisation, CSRF and audit at the HTTP edge: the login page and session
//! cookie, API tokens, admin-only routes, and one audit line per data request. Who may see which
//! figures is decided below, in [`AppState::kpi_for`], not here.
//!
//! Every authenticated response is `Cache-Control: no-store` (figures and pages are per role and
//! scope: no browser or proxy keeps them); `/healthz` tells anonymous callers only `ok`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Form, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::{LoginError, Principal, Role, audit, constant_eq};

const SESSION: &str = "mirato_session";
const LOGIN_CSRF: &str = "mirato_login_csrf";

/// The CSRF token of the request's session, for forms that change state.
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_open(path: &str) -> bool {
    path == "/healthz" || path == "/login" || path == "/favicon.ico" || path.starts_with("/static/")
}

fn admin_only(path: &str) -> bool {
    path == "/jobs"
        || path.starts_with("/jobs/")
        || path == "/api/jobs"
        || path == "/metrics"
        || path.starts_with("/admin")
        || path == "/api/audit"
}

fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/metrics"
        || path.starts_with("/export/")
        || path.starts_with("/report/")
}

/// Whether the client reached us over TLS: configured so, or a proxy says so.
pub(crate) fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.auth().settings.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie text is ASCII")
}

fn client(req_ext: &axum::http::Extensions) -> String {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into())
}

fn denied(path: &str, status: StatusCode, message: &str) -> Response {
    if wants_json(path) {
        (status, axum::Json(json!({ "error": message }))).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            small_page(
                "Accesso negato",
                html! { p.error role="alert" { (message) } },
            ),
        )
            .into_response()
    }
}

/// Who the request comes from: `Some(Err(()))` for a bearer token that is not valid, `None`
/// for no token and no live session.
fn identify(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<Result<(Principal, Option<String>), ()>> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        return Some(state.auth().token(t.trim()).map(|p| (p, None)).ok_or(()));
    }
    cookie(headers, SESSION)
        .and_then(|sid| state.auth().session(sid))
        .map(|(p, c)| Ok((p, Some(c))))
}

/// Every request passes here. Open routes pass (`/healthz` learns who asks, if anyone); others
/// need a session or a token; admin routes need an admin; a state-changing request with a
/// session cookie needs its CSRF token. What passes is answered `no-store`.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        let mut req = req;
        if let Some(Ok((who, _))) = identify(&state, req.headers()) {
            req.extensions_mut().insert(who);
        }
        return no_store(next.run(req).await);
    }
    if is_open(&path) {
        return next.run(req).await;
    }
    no_store(guarded(state, path, req, next).await)
}

/// [`guard`] for the routes that need authentication.
async fn guarded(state: AppState, path: String, req: Request, next: Next) -> Response {
    let params = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let (who, csrf) = match identify(&state, &headers) {
        Some(Ok(found)) => found,
        Some(Err(())) => return denied(&path, StatusCode::UNAUTHORIZED, "invalid API token"),
        None => {
            let _ = state.auth().audit.record(&audit::Entry {
                at: now(),
                user: "-",
                role: "-",
                action: "denied",
                path: &path,
                params: &params,
                status: 401,
            });
            if wants_json(&path) {
                return denied(
                    &path,
                    StatusCode::UNAUTHORIZED,
                    "authentication required: log in, or send Authorization: Bearer TOKEN",
                );
            }
            let next_url = if params.is_empty() {
                path.clone()
            } else {
                format!("{path}?{params}")
            };
            let mut s = form_urlencoded::Serializer::new(String::new());
            s.append_pair("next", &next_url);
            return Redirect::to(&format!("/login?{}", s.finish())).into_response();
        }
    };
    let mut req = req;
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && let Some(expected) = &csrf
    {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let form_token = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        let ok = header_token
            .or(form_token)
            .is_some_and(|t| constant_eq(&t, expected));
        if !ok {
            let _ = record(&state, &who, "denied", &path, &params, 403);
            return denied(
                &path,
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    if admin_only(&path) && !who.is_admin() {
        let _ = record(&state, &who, "denied", &path, &params, 403);
        return denied(
            &path,
            StatusCode::FORBIDDEN,
            "riservato agli amministratori",
        );
    }
    req.extensions_mut().insert(who.clone());
    if let Some(c) = csrf {
        req.extensions_mut().insert(Csrf(c));
    }
    let resp = next.run(req).await;
    let action = if path.starts_with("/export/") || path.starts_with("/report/") {
        "export"
    } else if path.starts_with("/api/") {
        "api"
    } else if path.starts_with("/jobs/") {
        "job"
    } else {
        "view"
    };
    if let Err(e) = record(&state, &who, action, &path, &params, resp.status().as_u16()) {
        tracing::error!(error = %e, "cannot write the audit");
    }
    resp
}

/// Marks a response as kept by nobody: not the browser's cache, not a proxy's (whatever the
/// handler said, e.g. `private, no-cache` with an ETag).
fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /healthz`: `ok` (or `unavailable`, 503) and nothing more for anyone but an
/// administrator, who gets the details (the data version).
pub async fn healthz(
    State(state): State<AppState>,
    who: Option<axum::Extension<Principal>>,
) -> Response {
    if who.is_some_and(|w| w.is_admin()) {
        return super::api::healthz(State(state)).await;
    }
    // Still serving what it has, but writes may fail: a full disk, an audit it cannot write.
    let degraded = state.auth().audit.failing().is_some()
        || crate::store::disk_nearly_full(&state.engine().layout().root);
    let (status, body) = match state.version().await {
        Ok(_) if degraded => (StatusCode::OK, "degraded"),
        Ok(_) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn record(
    state: &AppState,
    who: &Principal,
    action: &str,
    path: &str,
    params: &str,
    status: u16,
) -> std::io::Result<()> {
    state.auth().audit.record(&audit::Entry {
        at: now(),
        user: &who.name,
        role: who.role.as_str(),
        action,
        path,
        params,
        status,
    })
}

/// A minimal page (login, logout, denial) in the dashboards' style.
pub fn small_page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="it" {
            head { (super::layout::head_tags(title)) }
            body {
                header.top { a.brand href="/" { "mirato" } span.sub { "Collocamento mirato · L. 68/1999" } }
                main.narrow { h1 { (title) } (body) }
            }
        }
    }
    .into_string()
}

/// Where to go after login: a path on this site, else `/`. Only printable ASCII without
/// spaces or backslashes, starting with one `/`: no `//host` or `/\\host` (browsers read a
/// backslash as a slash), no scheme, and no control characters (browsers drop tabs and newlines,
/// so `/\t/host` would become `//host`; nor could such a value be a header).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.len() <= 2048
                && n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/".into(),
    }
}

fn login_form(next: &str, token: &str, message: Option<&str>) -> String {
    small_page(
        "Accesso",
        html! {
            @if let Some(m) = message { p.error role="alert" { (m) } }
            form.login method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label { "Utente " input type="text" name="user" autocomplete="username" required autofocus; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Entra" }
            }
        },
    )
}

/// `GET /login`: the form, with a fresh CSRF token signed by this server, also in a cookie
/// (double submit). A `next` that does not parse or is not a same-site path becomes `/`.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let token = state.auth().login_token();
    let next = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    let next = safe_next(next.as_deref());
    (
        [
            (
                header::SET_COOKIE,
                set_cookie(
                    LOGIN_CSRF,
                    &token,
                    Some(crate::auth::LOGIN_FORM_TTL.as_secs()),
                    secure(&state, &headers),
                ),
            ),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        login_form(&next, &token, None),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`.
pub async fn login(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let client = client(req.extensions());
    let Ok(Form(f)) = Form::<LoginForm>::from_request(req, &state).await else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            login_form("/", "", Some("Richiesta non valida.")),
        )
            .into_response();
    };
    let next = safe_next(f.next.as_deref());
    let sec = secure(&state, &headers);
    let form_ok = state.auth().check_login_token(&f.csrf)
        && cookie(&headers, LOGIN_CSRF).is_some_and(|c| constant_eq(c, &f.csrf));
    if !form_ok {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            login_form(
                &next,
                "",
                Some("Il modulo è scaduto: ricaricare la pagina di accesso."),
            ),
        )
            .into_response();
    }
    let entry = |action: &'static str, status: u16| audit::Entry {
        at: now(),
        user: &f.user,
        role: "-",
        action,
        path: "/login",
        params: "",
        status,
    };
    // The password hash takes tens of milliseconds of CPU: off the request threads.
    let checked = {
        let (state, user, password) = (state.clone(), f.user.clone(), f.password.clone());
        tokio::task::spawn_blocking(move || state.auth().login(&user, &password, &client)).await
    };
    let Ok(checked) = checked else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            login_form(&next, "", Some("Errore interno: riprovare.")),
        )
            .into_response();
    };
    match checked {
        Ok((sid, _)) => {
            let _ = state.auth().audit.record(&entry("login", 303));
            // The cookie lasts as long as the session can (its absolute end).
            let ttl = state.auth().settings.session_max.as_secs();
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(SESSION, &sid, Some(ttl), sec),
            );
            r.headers_mut()
                .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF, "", Some(0), sec));
            r
        }
        Err(LoginError::RateLimited(wait)) => {
            let _ = state.auth().audit.record(&entry("login_limited", 429));
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (
                        header::RETRY_AFTER,
                        (wait.as_secs_f64().ceil().max(1.0) as u64).to_string(),
                    ),
                    (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                ],
                login_form(&next, &f.csrf, Some(&retry_message(wait))),
            )
                .into_response()
        }
        Err(LoginError::Invalid) => {
            let _ = state.auth().audit.record(&entry("login_failed", 401));
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                login_form(&next, &f.csrf, Some("Utente o password non validi.")),
            )
                .into_response()
        }
    }
}

use axum::extract::FromRequest;

fn retry_message(wait: std::time::Duration) -> String {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    if secs < 60 {
        format!("Troppi tentativi falliti: riprovare tra {secs} secondi.")
    } else {
        format!(
            "Troppi tentativi falliti: riprovare tra {} minuti.",
            secs.div_ceil(60)
        )
    }
}

/// `GET /logout`: who is logged in, and the button (a POST with the session's CSRF token).
pub async fn logout_page(
    axum::Extension(who): axum::Extension<Principal>,
    csrf: Option<axum::Extension<Csrf>>,
) -> Response {
    let scope = who.scope.describe();
    let body = small_page(
        "Il mio accesso",
        html! {
            p { "Utente " strong { (who.name) } ", ruolo " strong { (who.role.as_str()) } "." }
            @if !scope.is_empty() { p { "Dati limitati a: " (scope) "." } }
            @if let Some(axum::Extension(Csrf(t))) = csrf {
                form method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(t);
                    button type="submit" { "Esci" }
                }
            }
            p { a href="/" { "Torna alle pagine" } }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `POST /logout` (CSRF checked by [`guard`]).
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(sid) = cookie(&headers, SESSION) {
        state.auth().logout(sid);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION, "", Some(0), secure(&state, &headers)),
    );
    r
}

/// `GET /admin/audit`: the latest entries.
pub async fn audit_page(State(state): State<AppState>) -> Response {
    let entries = state.auth().audit.tail(500);
    let body = small_page(
        "Registro degli accessi",
        html! {
            p.lead { "Le ultime " (entries.len()) " voci, dalla più recente. Il registro completo è " code { (state.auth().audit.path().display()) } "." }
            div.table-wrap { table.sortable {
                thead { tr { @for h in ["Quando", "Utente", "Ruolo", "Azione", "Indirizzo", "Parametri", "Esito"] { th scope="col" { button type="button" class="sort" { (h) } } } } }
                tbody { @for e in &entries { tr {
                    @for k in ["at", "user", "role", "action", "path", "params", "status"] {
                        td { (e.get(k).map(|v| match v { serde_json::Value::String(s) => s.clone(), o => o.to_string() }).unwrap_or_default()) }
                    }
                } } }
            } }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

pub async fn audit_api(State(state): State<AppState>) -> Response {
    axum::Json(json!({ "entries": state.auth().audit.tail(1000) })).into_response()
}

/// `POST /jobs/{name}/run` (admin, CSRF): runs a job now, in the background.
pub async fn run_job(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let Some(jobs) = state.jobs() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "this server runs no jobs"})),
        )
            .into_response();
    };
    if !jobs.names().contains(&name) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("unknown job '{name}'")})),
        )
            .into_response();
    }
    let j = jobs.clone();
    tokio::spawn(async move {
        let _ = j.run(&name).await;
    });
    Redirect::to("/jobs").into_response()
}

/// The principals the warm-up renders for: the unsuppressed and the national suppressed view.
pub fn warmup_principals() -> [Principal; 2] {
    [
        Principal {
            name: "warmup".into(),
            role: Role::Admin,
            scope: Default::default(),
        },
        Principal {
            name: "warmup".into(),
            role: Role::Viewer,
            scope: Default::default(),
        },
    ]
}
