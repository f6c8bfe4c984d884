//! Access control and confidentiality through the real router: authentication on every route,
//! CSRF, the login rate limit, a role × route × territory matrix, small-cell protection
//! (the same in HTML, API and CSV), the audit, and hardening.
//!
//! Fixture (hand-built, through the real ingest), hires in 2025:
//!   Campania (NA) 7, Lazio (RM) 2, Lombardia (MI) 6; total 15.
//! Below admin every count is perturbed (cell-key noise within ±3, never shown between 1 and 4):
//! Lazio 2 shows as `<5`; Campania 7, Lombardia 6 and the total 15 show near their values, and
//! 15 − 7 − 6 gives Lazio only up to three noises (tests/attack.rs plays that attack at scale).
//! A Lombardia manager sees one perturbed 6 whatever territory they ask for.

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
    // Below admin every count is perturbed by at most 3 and never shown between 1 and 4.
    let near = |v: &Value, exact: i64| {
        let n = v.as_i64().unwrap_or_else(|| panic!("a number: {v}"));
        assert!(n >= 5 && (n - exact).abs() <= 3, "{n} is not near {exact}");
    };
    for role in ["evaluator", "viewer"] {
        near(&api(role, "").await["rows"][0]["value"], 15);
        let by = values_by_region(&api(role, "&by=region").await["rows"]);
        assert_eq!(by[0].0, "Campania");
        near(&by[0].1, 7);
        assert_eq!(by[1], ("Lazio".into(), json!("<5")));
        assert_eq!(by[2].0, "Lombardia");
        near(&by[2].1, 6);
    }
    // The manager of Lombardia: Lombardia only, whatever they ask, and always the same
    // perturbed value (the same records, the same noise).
    let mine = api("manager", "").await["rows"][0]["value"].clone();
    near(&mine, 6);
    for q in [
        "",
        "&region=Lazio",
        "&province=RM",
        "&region=Lombardia",
        "&cpi=RM-01",
    ] {
        let j = api("manager", q).await;
        assert_eq!(j["rows"][0]["value"], mine, "{q}: {j}");
        assert!(
            j["params"]["scope"]["provinces"]
                .as_array()
                .unwrap()
                .contains(&json!("MI"))
        );
    }
    assert_eq!(
        values_by_region(&api("manager", "&by=region").await["rows"]),
        [("Lombardia".into(), mine.clone())]
    );
    let j = api("manager", "&by=province").await;
    assert_eq!(j["rows"], json!([{"province": "MI", "value": mine}]));

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
    assert!(
        csv.ends_with(&format!("region,value\nLombardia,{mine}\n")),
        "{csv}"
    );
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
    assert!(tile.contains(&format!("<p class=\"value\">{mine}</p>")));

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
    .await;
    // Each output says what protects its cells.
    assert_eq!(
        api_csv.header("x-mirato-protection"),
        "cell_key_perturbation; threshold=5; noise_max=3; noise_variance=1.4"
    );
    assert_eq!(api["protection"]["method"], "cell_key_perturbation");
    let api_csv = api_csv.text();
    // Perturbed (see the role matrix); the JSON, the CSV, the exports and the page agree.
    let campania = api["rows"][0]["value"].as_i64().unwrap();
    let lombardia = api["rows"][2]["value"].as_i64().unwrap();
    assert_eq!(
        api_csv,
        format!("region,value\nCampania,{campania}\nLazio,<5\nLombardia,{lombardia}\n")
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
        ("Campania", campania.to_string()),
        ("Lazio", "&lt;5".to_owned()),
        ("Lombardia", lombardia.to_string()),
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
    // The total (the tile of the same page) is perturbed on its own: total minus the shown
    // cells is Lazio plus three noises, never Lazio for sure.
    let total = get_as(&s, &tok, &format!("/api/kpi/hires?{Y}"))
        .await
        .json()["rows"][0]["value"]
        .as_i64()
        .unwrap();
    let tile = &html[html.find("Inserimenti lavorativi").unwrap()..];
    assert!(tile.contains(&format!("<p class=\"value\">{total}</p>")));
    let hidden = api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["value"] == "<5")
        .count();
    assert_eq!(hidden, 1);
    assert!(html.contains("Valori perturbati"), "the page says so");
    // The admin sees every cell.
    let admin = get_as(
        &s,
        &a.tokens["admin"],
        &format!("/api/kpi/hires?{Y}&by=region&format=csv"),
    )
    .await;
    assert_eq!(admin.header("x-mirato-protection"), "exact");
    assert_eq!(
        admin.text(),
        "region,value\nCampania,7\nLazio,2\nLombardia,6\n"
    );
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
    // MI: 6 hires, numerica, open-ended contract class: shown (not below 5), perturbed by at
    // most 3 and never below 5.
    assert!(
        hires
            .iter()
            .any(|r| r[0] == "MI" && r[3].as_i64().is_some_and(|n| (5..=9).contains(&n))),
        "{hires:?}"
    );
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

#[tokio::test]
async fn changing_a_user_ends_their_sessions_and_tokens() {
    use mirato::auth::{Role, Scope, UserStore};
    let (env, a, s) = fixture();
    let store = UserStore::new(&a.users_file);
    let role_of = |r: Reply| r.text();

    // Removed, then added again with another role: the old cookie and token are worthless, and
    // the old cookie never gets the new role.
    let viewer = session_for(&s, "viewer", &a.passwords["viewer"]).await;
    assert!(alive(&s, &viewer).await);
    assert!(role_of(get_with_cookie(&s, &viewer, "/logout").await).contains("viewer"));
    assert!(store.remove("viewer").unwrap());
    assert!(!alive(&s, &viewer).await);
    store
        .add(
            "viewer",
            Role::Admin,
            &Scope::default(),
            Some("a-new-password-456"),
        )
        .unwrap();
    assert!(
        !alive(&s, &viewer).await,
        "the old cookie does not come back"
    );
    let r = get_with_cookie(&s, &viewer, "/admin/audit").await;
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(
        get_as(&s, &a.tokens["viewer"], "/api/kpis").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The new account logs in afresh.
    let new = session_for(&s, "viewer", "a-new-password-456").await;
    assert_eq!(
        get_with_cookie(&s, &new, "/admin/audit").await.status,
        StatusCode::OK
    );

    // A new password (the same role) ends the sessions and tokens too.
    let admin = session_for(&s, "admin", &a.passwords["admin"]).await;
    assert!(alive(&s, &admin).await);
    store
        .add(
            "admin",
            Role::Admin,
            &Scope::default(),
            Some("another-password-789"),
        )
        .unwrap();
    assert!(!alive(&s, &admin).await);
    assert_eq!(
        get_as(&s, &a.tokens["admin"], "/api/kpis").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A new role with the same password: the same.
    let manager = session_for(&s, "manager", &a.passwords["manager"]).await;
    store
        .add(
            "manager",
            Role::Viewer,
            &Scope::default(),
            Some(&a.passwords["manager"]),
        )
        .unwrap();
    assert!(!alive(&s, &manager).await);

    // Other users are untouched.
    assert_eq!(
        get_as(&s, &a.tokens["evaluator"], "/api/kpis").await.status,
        StatusCode::OK
    );
    drop(env);
}

#[tokio::test]
async fn one_token_is_revoked_by_its_label() {
    let (env, a, s) = fixture();
    let cli = |args: &[&str]| {
        env.cli()
            .arg("users")
            .args(args)
            .env("MIRATO_AUTH_USERS_FILE", &a.users_file)
            .output()
            .unwrap()
    };
    let out = cli(&["token", "evaluator", "--label", "script"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(script.starts_with("mrt_"));
    // A second token with the same label is refused: the label names one token.
    let out = cli(&["token", "evaluator", "--label", "script"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        get_as(&s, &script, "/api/kpis").await.status,
        StatusCode::OK
    );

    let out = cli(&["token", "revoke", "evaluator", "script"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get_as(&s, &script, "/api/kpis").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The user's other token still works; revoking an unknown label says so.
    assert_eq!(
        get_as(&s, &a.tokens["evaluator"], "/api/kpis").await.status,
        StatusCode::OK
    );
    let out = cli(&["token", "revoke", "evaluator", "script"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token labelled 'script'"));
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let (env, a, _s) = fixture();
    let mut setup = env.setup();
    setup.auth.session_max = std::time::Duration::from_millis(1500);
    let s = setup.state().unwrap();
    let r = log_in(&s, "viewer", &a.passwords["viewer"], "/").await;
    // The cookie says so too.
    let set = r.header("set-cookie");
    assert!(
        set.lines()
            .any(|c| c.starts_with("mirato_session=") && c.contains("Max-Age=1")),
        "{set}"
    );
    let cookie = session_of(&r);
    let started = std::time::Instant::now();
    // Active all along (the idle limit is an hour), yet over after 1.5 s.
    while started.elapsed() < std::time::Duration::from_millis(1200) {
        assert!(alive(&s, &cookie).await);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!alive(&s, &cookie).await);
}

#[tokio::test]
async fn authenticated_responses_are_no_store_and_tls_gets_hsts() {
    let (_env, a, s) = fixture();
    let session = session_for(&s, "viewer", &a.passwords["viewer"]).await;
    for uri in ["/p/panoramica", "/p/qualita", "/logout", "/api/kpis"] {
        let r = get_with_cookie(&s, &session, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("cache-control"), "no-store", "{uri}");
    }
    for uri in [
        "/api/kpi/hires",
        "/api/kpi/hires?format=csv",
        "/export/panoramica/11.csv",
        "/report/anpal?year=2025",
    ] {
        let r = get_as(&s, &a.tokens["viewer"], uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("cache-control"), "no-store", "{uri}");
    }
    // A revalidation (304) is no-store as well.
    let r = get_as(&s, &a.tokens["viewer"], "/api/kpi/hires").await;
    if !r.header("etag").is_empty() {
        let again = send(
            &s,
            Method::GET,
            "/api/kpi/hires",
            &[
                ("authorization", format!("Bearer {}", a.tokens["viewer"])),
                ("if-none-match", r.header("etag")),
            ],
            "",
        )
        .await;
        assert_eq!(again.header("cache-control"), "no-store");
    }

    // HSTS over TLS only (a proxy says so), on every response.
    let plain = send(&s, Method::GET, "/login", &[], "").await;
    assert!(plain.header("strict-transport-security").is_empty());
    for uri in ["/login", "/healthz", "/p/panoramica"] {
        let r = send(
            &s,
            Method::GET,
            uri,
            &[
                ("x-forwarded-proto", "https".into()),
                ("cookie", session.clone()),
            ],
            "",
        )
        .await;
        assert!(
            r.header("strict-transport-security")
                .starts_with("max-age="),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn a_bad_next_falls_back_to_the_home_page() {
    let (_env, a, s) = fixture();
    for bad in [
        "/\t/evil.example/x",
        "/\n/x",
        "/\r\n/x",
        "//evil",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil",
        "javascript:alert(1)",
        "/x\u{7f}",
        "/\u{0}x",
        "/é",
        "/a b",
        "",
    ] {
        // The form keeps only a safe value.
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("next", bad);
        let r = send(&s, Method::GET, &format!("/login?{}", q.finish()), &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}");
        assert!(r.text().contains("name=\"next\" value=\"/\""), "{bad:?}");
        // A login with it goes home, never a 500.
        let r = log_in(&s, "viewer", &a.passwords["viewer"], bad).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{bad:?}: {}", r.text());
        assert_eq!(r.header("location"), "/", "{bad:?}");
    }
    // A query string that does not decode is no error either.
    let r = send(&s, Method::GET, "/login?next=%ZZ&%%", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    // A same-site path with its filters is kept.
    let good = "/p/esiti?from=2025-01-01&region=Lazio";
    let r = log_in(&s, "viewer", &a.passwords["viewer"], good).await;
    assert_eq!(r.header("location"), good);
}

#[tokio::test]
async fn the_login_form_token_is_signed_by_this_server() {
    let (env, a, s) = fixture();
    let form = |csrf: &str| {
        let mut b = form_urlencoded::Serializer::new(String::new());
        b.append_pair("user", "viewer")
            .append_pair("password", &a.passwords["viewer"])
            .append_pair("csrf", csrf)
            .append_pair("next", "/");
        b.finish()
    };
    // A token the attacker made up (cookie and form agree: a plain double submit would pass).
    for forged in [
        "0123456789abcdef0123456789abcdef".to_owned(),
        format!(
            "{}.{}.{}",
            "ab".repeat(16),
            1_900_000_000u64,
            "cd".repeat(32)
        ),
        String::new(),
    ] {
        let r = send(
            &s,
            Method::POST,
            "/login",
            &[("cookie", format!("mirato_login_csrf={forged}"))],
            &form(&forged),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{forged}");
        assert!(!r.header("set-cookie").contains("mirato_session="));
    }
    // One another server signed is no good here either.
    let other = env.app_state();
    let (cookie, token) = login_form(&other).await;
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &form(&token),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // This server's own token, in cookie and form, opens the session.
    let (cookie, token) = login_form(&s).await;
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &form(&token),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Its token in the form but another in the cookie: refused.
    let (_, token) = login_form(&s).await;
    let (cookie, _) = login_form(&s).await;
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &form(&token),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
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

#[tokio::test]
async fn failed_logins_slow_down_one_user_at_one_address_only() {
    let (_env, a, s) = fixture();
    let office = [10, 0, 0, 1];
    for _ in 0..5 {
        assert_eq!(
            login_from(&s, office, "evaluator", "wrong-password!").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The evaluator, from the office, now waits even with the right password...
    assert_eq!(
        login_from(&s, office, "evaluator", &a.passwords["evaluator"]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but the colleagues behind the same address do not (the admin included)...
    for user in ["admin", "viewer"] {
        assert_eq!(
            login_from(&s, office, user, &a.passwords[user]).await,
            StatusCode::SEE_OTHER,
            "{user}"
        );
    }
    // ...nor an unknown name's failures there, nor the evaluator from elsewhere.
    assert_eq!(
        login_from(&s, office, "nobody", "wrong-password!").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&s, [10, 0, 0, 2], "evaluator", &a.passwords["evaluator"]).await,
        StatusCode::SEE_OTHER
    );
    // The wait is a backoff: after the first (about a second) one more try is allowed, and a
    // right password then clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        login_from(&s, office, "evaluator", &a.passwords["evaluator"]).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        login_from(&s, office, "evaluator", "wrong-password!").await,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn unknown_users_take_as_long_as_known_ones() {
    let (env, _a, _s) = fixture();
    let auth = mirato::auth::Auth::new(env.auth_settings());
    let time = |name: &str, i: usize| {
        let t = std::time::Instant::now();
        let r = auth.login(name, "wrong-password!", &format!("10.0.0.{i}"));
        assert_eq!(r, Err(mirato::auth::LoginError::Invalid));
        t.elapsed()
    };
    // Interleaved, and the fastest of each: the least disturbed by other work on the machine.
    let (mut known, mut unknown) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for i in 0..5 {
        known = known.min(time("admin", i));
        unknown = unknown.min(time("nobody-at-all", i));
    }
    // Without the dummy check an unknown name answered in microseconds. (One-sided: on a
    // loaded machine either side can come out slower, but not an unknown name ten thousand
    // times faster.)
    assert!(unknown * 2 > known, "known {known:?}, unknown {unknown:?}");
}

#[tokio::test]
async fn healthz_tells_anonymous_callers_only_ok() {
    let (_env, a, s) = fixture();
    let r = send(&s, Method::GET, "/healthz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok");
    // Nor more to a viewer, or with a bad token.
    assert_eq!(
        get_as(&s, &a.tokens["viewer"], "/healthz").await.text(),
        "ok"
    );
    assert_eq!(get_as(&s, "mrt_forged", "/healthz").await.text(), "ok");
    // An administrator gets the details.
    let j = get_as(&s, &a.tokens["admin"], "/healthz").await.json();
    assert_eq!(j["status"], "ok");
    assert!(j["data_version"].is_string(), "{j}");
}

#[tokio::test]
async fn rejected_rows_are_for_administrators_only() {
    let (env, a, s) = fixture();
    // A row refused by ingest, with its CPI.
    let bad = env.write(
        "bad.csv",
        csv_of(&[ev(
            "no_such_type",
            "x1",
            "2025-04-01",
            Some(99),
            &[("province", "RM"), ("cpi_code", "RM-01")],
        )]),
    );
    env.ingest_one(&bad);
    let panel = |html: &str, n: usize| {
        let p = &html[html.find(&format!("id=\"panel-{n}\"")).unwrap()..];
        p[..p.find("</article>").unwrap()].to_owned()
    };
    for role in ["viewer", "evaluator", "manager"] {
        let html = get_as(&s, &a.tokens[role], "/p/qualita").await.text();
        for n in 1..=3 {
            let p = panel(&html, n);
            assert!(
                p.contains("Riservato agli amministratori"),
                "{role} {n}: {p}"
            );
            assert!(!p.contains("RM-01"), "{role} {n}");
        }
        for n in 1..=3 {
            assert_eq!(
                get_as(&s, &a.tokens[role], &format!("/export/qualita/{n}.csv"))
                    .await
                    .status,
                StatusCode::FORBIDDEN,
                "{role} {n}"
            );
        }
    }
    let html = get_as(&s, &a.tokens["admin"], "/p/qualita").await.text();
    assert!(panel(&html, 3).contains("RM-01"), "{}", panel(&html, 3));
    assert_eq!(
        get_as(&s, &a.tokens["admin"], "/export/qualita/3.csv")
            .await
            .status,
        StatusCode::OK
    );
}
