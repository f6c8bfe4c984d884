//! Access control and confidentiality through the real router: authentication on every route,
//! CSRF, the login rate limit, a role × route × territory matrix, small-cell protection
//! (the same in HTML, API and CSV), the audit, and hardening; one file per theme below, the
//! fixture and the requests they share here.
//!
//! Fixture (hand-built, through the real ingest), hires in 2025:
//!   Campania (NA) 7, Lazio (RM) 2, Lombardia (MI) 6; total 15.
//! Below admin every count is perturbed (cell-key noise within ±3, never shown between 1 and 4):
//! Lazio 2 shows as `<5`; Campania 7, Lombardia 6 and the total 15 show near their values, and
//! 15 − 7 − 6 gives Lazio only up to three noises (tests/it/attack.rs plays that attack at scale).
//! A Lombardia manager sees one perturbed 6 whatever territory they ask for.

mod hardening;
mod login;
mod scope;
mod sessions;

use crate::common;
use common::*;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mirato::server::{AppState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

fn hire_in(id: &str, at: &str, who: u32, prov: &str) -> Vec<(String, String)> {
    let cpi = format!("{prov}-01");
    hire(id, at, who, &[("province", prov), ("cpi_code", &cpi)])
}

fn fixture() -> (Env, Access, AppState) {
    let env = Env::new();
    let mut rows = Vec::new();
    let mut n = 0;
    for (prov, count) in [("NA", 7), ("RM", 2), ("MI", 6)] {
        for i in 0..count {
            n += 1;
            rows.push(hire_in(
                &format!("h{prov}{i}"),
                &format!("2025-03-{:02}", i + 1),
                n,
                prov,
            ));
        }
    }
    env.load("hires.csv", &rows);
    let access = env.access();
    let state = env.app_state();
    (env, access, state)
}

async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    Reply::read(resp).await
}

async fn get_as(state: &AppState, token: &str, uri: &str) -> Reply {
    send(
        state,
        Method::GET,
        uri,
        &[("authorization", format!("Bearer {token}"))],
        "",
    )
    .await
}

const Y: &str = "from=2025-01-01&to=2025-12-31";

/// The session cookie value from a login reply.
fn session_of(r: &Reply) -> String {
    r.header("set-cookie")
        .lines()
        .find(|c| c.starts_with("mirato_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

async fn login_form(s: &AppState) -> (String, String) {
    let r = send(s, Method::GET, "/login?next=/p/esiti", &[], "").await;
    let cookie = r.header("set-cookie");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("mirato_login_csrf=")
        .to_owned();
    assert!(r.text().contains(&format!("value=\"{token}\"")));
    (format!("mirato_login_csrf={token}"), token)
}

/// Logs `user` in through the form, asking to go to `next` afterwards; returns the reply.
async fn log_in(s: &AppState, user: &str, password: &str, next: &str) -> Reply {
    let (cookie, token) = login_form(s).await;
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("user", user)
        .append_pair("password", password)
        .append_pair("csrf", &token)
        .append_pair("next", next);
    send(
        s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &body.finish(),
    )
    .await
}

/// A session cookie for `user`.
async fn session_for(s: &AppState, user: &str, password: &str) -> String {
    let r = log_in(s, user, password, "/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{user}: {}", r.text());
    session_of(&r)
}

async fn get_with_cookie(s: &AppState, cookie: &str, uri: &str) -> Reply {
    send(s, Method::GET, uri, &[("cookie", cookie.to_owned())], "").await
}

/// Whether a session cookie still opens a page (a dead one is sent to the login page).
async fn alive(s: &AppState, cookie: &str) -> bool {
    let r = get_with_cookie(s, cookie, "/logout").await;
    match r.status {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED => false,
        other => panic!("unexpected {other}"),
    }
}

/// A login POST from the address `ip`.
async fn login_from(s: &AppState, ip: [u8; 4], user: &str, password: &str) -> StatusCode {
    use axum::extract::ConnectInfo;
    let (cookie, token) = login_form(s).await;
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("user", user)
        .append_pair("password", password)
        .append_pair("csrf", &token);
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.finish()))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((ip, 40000))));
    router(s.clone()).oneshot(req).await.unwrap().status()
}
