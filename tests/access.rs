//! Access control and confidentiality through the real router: authentication on every route,
//! CSRF, the login rate limit, a role × route × territory matrix, small-cell suppression
//! (primary and secondary, the same in HTML, API and CSV), the audit, and hardening.
//!
//! Fixture (hand-built, through the real ingest), hires in 2025:
//!   Campania (NA) 7, Lazio (RM) 2, Lombardia (MI) 6; total 15.
//! Suppression at 5 for every role but admin, by region: Lazio 2 < 5 is suppressed (primary);
//! alone it would be 15 − 7 − 6, so the smallest other cell, Lombardia 6, is suppressed too
//! (secondary): 15 − 7 = 8 = Lazio + Lombardia cannot be split. Campania 7 and the total 15 show.
//! A Lombardia manager sees 6 (nothing below 5 in their scope) whatever territory they ask for.

mod common;
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

#[tokio::test]
async fn only_healthz_and_login_are_open() {
    let (_env, _access, s) = fixture();
    for uri in [
        "/",
        "/p/panoramica",
        "/p/qualita",
        "/export/panoramica/1.csv",
        "/export/panoramica/11.xlsx",
        "/api/kpi/hires",
        "/api/kpis",
        "/api/openapi.json",
        "/metrics",
        "/jobs",
        "/api/jobs",
        "/admin/audit",
        "/api/audit",
        "/logout",
        "/nope",
    ] {
        let r = send(&s, Method::GET, uri, &[], "").await;
        assert!(
            r.status == StatusCode::UNAUTHORIZED
                || (r.status == StatusCode::SEE_OTHER
                    && r.header("location").starts_with("/login?next=")),
            "{uri}: {}",
            r.status
        );
        // A wrong token is no better.
        let r = get_as(&s, "mrt_forged", uri).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    for (m, uri) in [
        (Method::POST, "/logout"),
        (Method::POST, "/jobs/ingest/run"),
    ] {
        let r = send(&s, m, uri, &[], "csrf=x").await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER),
            "{uri}"
        );
    }
    assert_eq!(
        send(&s, Method::GET, "/healthz", &[], "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, Method::GET, "/login", &[], "").await.status,
        StatusCode::OK
    );
}

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

#[tokio::test]
async fn login_csrf_sessions_logout_and_rate_limit() {
    let (_env, access, s) = fixture();
    let (cookie, token) = login_form(&s).await;
    let form = |user: &str, pw: &str, csrf: &str| {
        format!("user={user}&password={pw}&csrf={csrf}&next=%2Fp%2Fesiti")
    };
    // Without the form's CSRF token: refused.
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie.clone())],
        &form("admin", &access.passwords["admin"], "forged"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Right token and password: a session cookie, HttpOnly and SameSite=Strict, and the page.
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie.clone())],
        &form("admin", &access.passwords["admin"], &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), "/p/esiti");
    let set = r.header("set-cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP here");
    let session = session_of(&r);
    let page = send(
        &s,
        Method::GET,
        "/p/esiti",
        &[("cookie", session.clone())],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    // Behind TLS (a proxy says so) the cookie is Secure.
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[
            ("cookie", cookie.clone()),
            ("x-forwarded-proto", "https".into()),
        ],
        &form("viewer", &access.passwords["viewer"], &token),
    )
    .await;
    assert!(r.header("set-cookie").contains("; Secure"));

    // A state change with the session but without its CSRF token: refused.
    let r = send(
        &s,
        Method::POST,
        "/logout",
        &[("cookie", session.clone())],
        "csrf=nope",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &s,
        Method::POST,
        "/jobs/ingest/run",
        &[("cookie", session.clone())],
        "x=1",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // With it (from the account page): logged out, and the session is dead.
    let html = send(
        &s,
        Method::GET,
        "/logout",
        &[("cookie", session.clone())],
        "",
    )
    .await
    .text();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // The token is accepted in the form or in a header (this state runs no jobs: 404, not 403).
    let r = send(
        &s,
        Method::POST,
        "/jobs/ingest/run",
        &[("cookie", session.clone())],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &s,
        Method::POST,
        "/jobs/ingest/run",
        &[("cookie", session.clone()), ("x-csrf-token", csrf.clone())],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &s,
        Method::POST,
        "/logout",
        &[("cookie", session.clone())],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(
        &s,
        Method::GET,
        "/p/esiti",
        &[("cookie", session.clone())],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // An open redirect is not possible.
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie.clone())],
        &format!(
            "user=manager&password={}&csrf={token}&next=%2F%2Fevil.example",
            access.passwords["manager"]
        ),
    )
    .await;
    assert_eq!(r.header("location"), "/");

    // Five wrong passwords, then even the right one waits (429 with Retry-After).
    for _ in 0..5 {
        let r = send(
            &s,
            Method::POST,
            "/login",
            &[("cookie", cookie.clone())],
            &form("evaluator", "wrong-password!", &token),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie.clone())],
        &form("evaluator", &access.passwords["evaluator"], &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").parse::<u64>().unwrap() > 0);
}

fn values_by_region(rows: &Value) -> Vec<(String, Value)> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["region"].as_str().unwrap().to_owned(), r["value"].clone()))
        .collect()
}

#[tokio::test]
async fn role_route_territory_matrix() {
    let (_env, a, s) = fixture();
    let t = |role: &str| a.tokens[role].clone();
    // API, national and by region, for each role.
    let api = |role: &'static str, q: &'static str| {
        let s = s.clone();
        let tok = t(role);
        async move {
            get_as(&s, &tok, &format!("/api/kpi/hires?{Y}{q}"))
                .await
                .json()
        }
    };
    assert_eq!(api("admin", "").await["rows"][0]["value"], 15);
    assert_eq!(api("admin", "&region=Lazio").await["rows"][0]["value"], 2);
    for role in ["evaluator", "viewer"] {
        assert_eq!(api(role, "").await["rows"][0]["value"], 15);
        assert_eq!(
            values_by_region(&api(role, "&by=region").await["rows"]),
            [
                ("Campania".into(), json!(7)),
                ("Lazio".into(), json!("<5")),
                ("Lombardia".into(), json!("<5"))
            ]
        );
    }
    // The manager of Lombardia: Lombardia only, whatever they ask.
    for q in [
        "",
        "&region=Lazio",
        "&province=RM",
        "&region=Lombardia",
        "&cpi=RM-01",
    ] {
        let j = api("manager", q).await;
        assert_eq!(j["rows"][0]["value"], 6, "{q}: {j}");
        assert!(
            j["params"]["scope"]["provinces"]
                .as_array()
                .unwrap()
                .contains(&json!("MI"))
        );
    }
    assert_eq!(
        values_by_region(&api("manager", "&by=region").await["rows"]),
        [("Lombardia".into(), json!(6))]
    );
    let j = api("manager", "&by=province").await;
    assert_eq!(j["rows"], json!([{"province": "MI", "value": 6}]));

    // Pages and every export: no figure of another territory reaches the manager.
    for uri in [
        format!("/p/panoramica?{Y}"),
        format!("/p/panoramica?{Y}&region=Lazio"),
        format!("/export/panoramica/11.csv?{Y}&region=Lazio"),
        format!("/export/panoramica/11.json?{Y}"),
        format!("/export/panoramica/7.csv?{Y}&province=RM"),
        format!("/p/qualita?{Y}"),
    ] {
        let r = get_as(&s, &t("manager"), &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let body = r.text();
        for other in ["Lazio,", "Campania", "\"Lazio\"", "RM-01", ">15<", ">2<"] {
            assert!(!body.contains(other), "{uri} leaks {other}");
        }
    }
    let csv = get_as(
        &s,
        &t("manager"),
        &format!("/export/panoramica/11.csv?{Y}&region=Lazio"),
    )
    .await
    .text();
    assert!(csv.ends_with("region,value\nLombardia,6\n"), "{csv}");
    let xlsx = get_as(
        &s,
        &t("manager"),
        &format!("/export/panoramica/11.xlsx?{Y}"),
    )
    .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert_eq!(&xlsx.body[..2], b"PK");
    let tile = get_as(
        &s,
        &t("manager"),
        &format!("/p/panoramica?{Y}&region=Lazio"),
    )
    .await
    .text();
    let tile = &tile[tile.find("Inserimenti lavorativi").unwrap()..];
    assert!(tile.contains("<p class=\"value\">6</p>"));

    // Admin-only routes.
    for uri in [
        "/jobs",
        "/api/jobs",
        "/metrics",
        "/admin/audit",
        "/api/audit",
    ] {
        for role in ["manager", "evaluator", "viewer"] {
            assert_eq!(
                get_as(&s, &t(role), uri).await.status,
                StatusCode::FORBIDDEN,
                "{role} {uri}"
            );
        }
        assert_eq!(
            get_as(&s, &t("admin"), uri).await.status,
            StatusCode::OK,
            "admin {uri}"
        );
    }
    // Ingest batches are administrators' only.
    let q = get_as(&s, &t("viewer"), "/p/qualita").await.text();
    assert!(q.contains("Riservato agli amministratori"));
    assert!(!q.contains("hires.csv"));
    assert!(
        get_as(&s, &t("admin"), "/p/qualita")
            .await
            .text()
            .contains("hires.csv")
    );
    assert_eq!(
        get_as(&s, &t("viewer"), "/export/qualita/1.csv")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn suppression_is_identical_in_html_api_and_csv() {
    let (_env, a, s) = fixture();
    let tok = a.tokens["viewer"].clone();
    let api = get_as(&s, &tok, &format!("/api/kpi/hires?{Y}&by=region"))
        .await
        .json();
    let api_csv = get_as(
        &s,
        &tok,
        &format!("/api/kpi/hires?{Y}&by=region&format=csv"),
    )
    .await
    .text();
    assert_eq!(
        api_csv,
        "region,value\nCampania,7\nLazio,<5\nLombardia,<5\n"
    );
    let export = get_as(&s, &tok, &format!("/export/panoramica/11.csv?{Y}"))
        .await
        .text();
    assert!(export.ends_with(&api_csv), "{export}");
    let xjson = get_as(&s, &tok, &format!("/export/panoramica/11.json?{Y}"))
        .await
        .json();
    assert_eq!(xjson["rows"], api["rows"]);
    // The HTML table of the same panel (Assunzioni per regione), cell by cell.
    let html = get_as(&s, &tok, &format!("/p/panoramica?{Y}")).await.text();
    let panel = &html[html.find("id=\"panel-11\"").unwrap()..];
    let panel = &panel[..panel.find("</article>").unwrap()];
    for (region, value) in [
        ("Campania", "7"),
        ("Lazio", "&lt;5"),
        ("Lombardia", "&lt;5"),
    ] {
        assert!(
            panel.contains(&format!(">{region}</td><td class=\"num\""))
                || panel.contains(&format!(">{region}</td>")),
            "{region}"
        );
        let row = &panel[panel.find(&format!(">{region}</td>")).unwrap()..];
        let cell = &row[..row.find("</tr>").unwrap()];
        assert!(cell.contains(&format!(">{value}</td>")), "{region}: {cell}");
    }
    // The chart labels say the same.
    assert!(panel.contains("&lt;5"), "{panel}");
    // The total (the tile of the same page) shows 15; 15 − 7 leaves two cells hidden together.
    let tile = &html[html.find("Inserimenti lavorativi").unwrap()..];
    assert!(tile.contains("<p class=\"value\">15</p>"));
    let hidden = api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["value"] == "<5")
        .count();
    assert_eq!(hidden, 2);
    // The admin sees every cell.
    let admin = get_as(
        &s,
        &a.tokens["admin"],
        &format!("/api/kpi/hires?{Y}&by=region&format=csv"),
    )
    .await
    .text();
    assert_eq!(admin, "region,value\nCampania,7\nLazio,2\nLombardia,6\n");
    // A rate with a small denominator hides value, numerator and denominator.
    let r = get_as(
        &s,
        &tok,
        &format!("/api/kpi/stable_hire_rate?{Y}&province=RM"),
    )
    .await
    .json();
    assert_eq!(
        r["rows"][0],
        json!({"value": "<5", "numerator": "<5", "denominator": "<5"})
    );
}

#[tokio::test]
async fn views_and_exports_are_audited() {
    let (env, a, s) = fixture();
    get_as(
        &s,
        &a.tokens["manager"],
        &format!("/p/esiti?{Y}&region=Lazio"),
    )
    .await;
    get_as(
        &s,
        &a.tokens["viewer"],
        &format!("/export/panoramica/11.xlsx?{Y}"),
    )
    .await;
    get_as(
        &s,
        &a.tokens["evaluator"],
        &format!("/api/kpi/hires?{Y}&by=region"),
    )
    .await;
    get_as(&s, &a.tokens["viewer"], "/admin/audit").await;
    let text = std::fs::read_to_string(env.data.join("audit/audit.jsonl")).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |user: &str, action: &str, path: &str, params: &str| {
        entries.iter().any(|e| {
            e["user"] == user
                && e["action"] == action
                && e["path"] == path
                && e["params"].as_str().unwrap().contains(params)
        })
    };
    assert!(has("manager", "view", "/p/esiti", "region=Lazio"), "{text}");
    assert!(has(
        "viewer",
        "export",
        "/export/panoramica/11.xlsx",
        "from=2025-01-01"
    ));
    assert!(has("evaluator", "api", "/api/kpi/hires", "by=region"));
    assert!(
        entries
            .iter()
            .any(|e| e["user"] == "viewer" && e["action"] == "denied" && e["status"] == 403)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.data.join("audit/audit.jsonl"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Admins read it.
    let j = get_as(&s, &a.tokens["admin"], "/api/audit").await.json();
    assert!(
        j["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "manager")
    );
    let html = get_as(&s, &a.tokens["admin"], "/admin/audit").await.text();
    assert!(html.contains("/export/panoramica/11.xlsx"));
}

#[tokio::test]
async fn no_traversal_and_no_500_from_user_input() {
    let (_env, a, s) = fixture();
    let tok = a.tokens["admin"].clone();
    for uri in [
        "/static/..%2F..%2FCargo.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/p/..%2F..%2Fetc%2Fpasswd",
        "/export/..%2F..%2Fetc/1.csv",
        "/export/panoramica/..%2F1.csv",
        "/api/kpi/..%2F..%2Fetc%2Fpasswd",
        "/p/panoramica?from=..%2F..%2F",
        "/api/kpi/hires?by=..%2Fregion",
        "/api/kpi/hires?cpi=%27%3B%20DROP%20TABLE%20ev%3B--",
    ] {
        let r = get_as(&s, &tok, uri).await;
        assert!(
            matches!(
                r.status,
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::OK
            ),
            "{uri}: {}",
            r.status
        );
        assert!(!r.text().contains("root:"), "{uri}");
    }
    // The CPI filter is a placeholder value, not SQL: it simply matches nothing.
    for cpi in ["%27%20OR%201%3D1--", "%27OR%271%27"] {
        let r = get_as(&s, &tok, &format!("/api/kpi/hires?cpi={cpi}"))
            .await
            .json();
        assert_eq!(r["rows"][0]["value"], 0, "{cpi}");
    }
    // Security headers everywhere, the login page included.
    let r = send(&s, Method::GET, "/login", &[], "").await;
    let csp = r.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
}

#[test]
fn serve_refuses_a_key_readable_by_others_and_a_low_threshold() {
    use std::os::unix::fs::PermissionsExt;
    let (env, _a, _s) = fixture();
    std::fs::set_permissions(&env.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_USERS_FILE", env.users_file())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("readable by others") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&env.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_SUPPRESSION_THRESHOLD", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("legal minimum is 3"));
}

#[tokio::test]
async fn the_anpal_report_downloads_within_scope() {
    let (env, a, s) = fixture();
    // Every role may download it; a bad year is a 400 naming it.
    for role in ["admin", "evaluator", "viewer", "manager"] {
        let r = get_as(&s, &a.tokens[role], "/report/anpal?year=2025").await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.text());
        assert_eq!(&r.body[..2], b"PK");
        assert!(
            r.header("content-disposition")
                .contains("mirato-anpal-2025.xlsx")
        );
    }
    let r = get_as(&s, &a.tokens["viewer"], "/report/anpal?year=soon").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["param"], "year");
    let r = get_as(&s, &a.tokens["viewer"], "/report/anpal").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The manager's workbook covers Lombardia only, whatever region was asked: read it back.
    let r = get_as(
        &s,
        &a.tokens["manager"],
        "/report/anpal?year=2025&region=Lazio",
    )
    .await;
    let path = env.dir.path().join("manager.xlsx");
    std::fs::write(&path, &r.body).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,openpyxl; wb=openpyxl.load_workbook(sys.argv[1], read_only=True); \
             print(json.dumps({ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}, default=str))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wb: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hires = wb["4 Assunzioni"].as_array().unwrap();
    assert!(
        hires
            .iter()
            .any(|r| r[0] == "Territorio" && r[1] == "Lombardia"),
        "{hires:?}"
    );
    let text = serde_json::to_string(&wb).unwrap();
    assert!(
        !text.contains("\"RM\"") && !text.contains("\"NA\""),
        "no other province"
    );
    // MI: 6 hires, numerica, open-ended contract class: shown (not below 5).
    assert!(hires.iter().any(|r| r[0] == "MI" && r[3] == 6), "{hires:?}");
}
