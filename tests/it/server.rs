//! The HTTP server through its real router (`tower::ServiceExt::oneshot`) over a real store:
//! every route, every kind of bad parameter, caching with ETag and 304, exports, and a new
//! ingest showing without a restart.
//!
//! Fixture (hand-built, through the real ingest): three hires in 2025, two in Milano
//! (Lombardia), one in Roma (Lazio). So `hires` for 2025 = 3; by region: Lazio 1, Lombardia 2.
//! A late batch adds a fourth hire in Milano: Lombardia 3, total 4.

use crate::common;
use common::*;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mirato::server::{AppState, router};
use serde_json::Value;
use tower::ServiceExt;

const ROMA: [(&str, &str); 2] = [("province", "RM"), ("cpi_code", "RM-01")];

fn fixture() -> Env {
    let env = Env::new();
    env.load(
        "hires.csv",
        &[
            application("a1", "2025-01-10", 1, &[]),
            ev("application_accepted", "d1", "2025-02-01", Some(1), &[]),
            hire("h1", "2025-03-05", 1, &[]),
            hire("h2", "2025-04-10", 2, &ROMA),
            hire("h3", "2025-04-20", 3, &[]),
        ],
    );
    // One invalid row, for the quarantine panels: an unknown event type.
    let bad = env.write(
        "bad.csv",
        csv_of(&[ev("no_such_type", "x1", "2025-04-01", Some(4), &[])]),
    );
    env.ingest_one(&bad);
    env
}

/// The state, and the admin's token every request below sends (access rules have their own
/// tests in `access.rs`).
fn state(env: &Env) -> AppState {
    let access = env.access();
    ADMIN.with(|t| *t.borrow_mut() = access.tokens["admin"].clone());
    env.app_state()
}

thread_local! {
    static ADMIN: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

async fn get(state: &AppState, uri: &str) -> Reply {
    get_with(state, uri, &[]).await
}

async fn get_with(state: &AppState, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().uri(uri);
    let token = ADMIN.with(|t| t.borrow().clone());
    req = req.header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    Reply::read(resp).await
}

#[tokio::test]
async fn api_answers_in_the_shape_of_kpis_md() {
    let env = fixture();
    let s = state(&env);
    let r = get(&s, "/api/kpi/hires?from=2025-01-01&to=2025-12-31&by=region").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["kpi"], "hires");
    assert_eq!(j["params"]["from"], "2025-01-01");
    assert_eq!(j["params"]["by"], serde_json::json!(["region"]));
    assert!(j["params"]["as_of"].as_str().unwrap().starts_with("20"));
    assert!(!j["params"]["data_version"].as_str().unwrap().is_empty());
    assert_eq!(
        j["rows"],
        serde_json::json!([
            {"region": "Lazio", "value": 1},
            {"region": "Lombardia", "value": 2}
        ])
    );
    // CSV: the same columns, a header, and as_of / data version in headers.
    let r = get(
        &s,
        "/api/kpi/hires?from=2025-01-01&to=2025-12-31&by=region&format=csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "region,value\nLazio,1\nLombardia,2\n");
    assert!(r.header("content-type").starts_with("text/csv"));
    assert!(!r.header("x-mirato-as-of").is_empty());
    assert!(!r.header("x-mirato-data-version").is_empty());
    // A territorial filter with repeated names means several values.
    let r = get(
        &s,
        "/api/kpi/hires?from=2025-01-01&to=2025-12-31&province=RM&province=MI",
    )
    .await;
    assert_eq!(r.json()["rows"][0]["value"], 3);
}

#[tokio::test]
async fn every_kind_of_bad_parameter_is_a_400_naming_it() {
    let env = fixture();
    let s = state(&env);
    let cases: &[(&str, &str)] = &[
        ("/api/kpi/hires?colour=red", "colour"),
        ("/api/kpi/hires?from=2025-13-01", "from"),
        ("/api/kpi/hires?to=yesterday", "to"),
        ("/api/kpi/hires?from=2025-06-01&to=2025-01-01", "from"),
        ("/api/kpi/hires?by=colour", "by"),
        ("/api/kpi/hires?by=region,province,cpi", "by"),
        ("/api/kpi/hires?by=reason", "by"),
        ("/api/kpi/hires?region=Atlantide", "region"),
        ("/api/kpi/hires?province=ZZ", "province"),
        ("/api/kpi/hires?cpi=AAAAAAAAAAAAAAAAAAAAAAAAA", "cpi"),
        ("/api/kpi/hires?as_of=soon", "as_of"),
        ("/api/kpi/hires?format=xml", "format"),
        ("/api/kpi/hires?region=%FF%FE", "region"),
        ("/api/kpi/hires?from=%00", "from"),
    ];
    for (uri, param) in cases {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        let j = r.json();
        assert_eq!(j["param"], *param, "{uri}: {j}");
        assert!(!j["error"].as_str().unwrap().is_empty());
        assert!(j["allowed"].is_array());
    }
    // Allowed values are named where there is a list.
    let j = get(&s, "/api/kpi/hires?by=colour").await.json();
    assert!(
        j["allowed"]
            .as_array()
            .unwrap()
            .contains(&Value::from("hiring_mode"))
    );
    let j = get(&s, "/api/kpi/hires?format=xml").await.json();
    assert_eq!(j["allowed"], serde_json::json!(["json", "csv"]));
    // Unknown KPI and unknown route: 404 with a JSON error.
    let r = get(&s, "/api/kpi/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    let r = get(&s, "/api/nothing/here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn etag_304_and_a_new_ingest_without_restart() {
    let env = fixture();
    let s = state(&env);
    let uri = "/api/kpi/hires?from=2025-01-01&to=2025-12-31";
    let first = get(&s, uri).await;
    let tag = first.header("etag");
    assert!(tag.starts_with('"'), "{tag}");
    assert_eq!(first.json()["rows"][0]["value"], 3);
    let again = get_with(&s, uri, &[("if-none-match", &tag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    // Another spelling of the same request is the same cache entry and the same ETag.
    let same = get(&s, "/api/kpi/hires?to=2025-12-31&from=2025-01-01").await;
    assert_eq!(same.header("etag"), tag);

    // A late batch: the same running server (same state) shows it.
    env.load("late.csv", &[hire("h4", "2025-05-01", 5, &[])]);
    let after = get_with(&s, uri, &[("if-none-match", &tag)]).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(after.header("etag"), tag);
    assert_eq!(after.json()["rows"][0]["value"], 4);
    // ...while as_of before the late batch still gives the published figure.
    let as_of = first.json()["params"]["as_of"].as_str().unwrap().to_owned();
    let r = get(&s, &format!("{uri}&as_of={}", as_of.replace('+', "%2B"))).await;
    assert_eq!(r.json()["rows"][0]["value"], 3, "{}", r.text());
}

#[tokio::test]
async fn catalogue_openapi_health_metrics_static() {
    let env = fixture();
    let s = state(&env);
    let r = get(&s, "/api/kpis").await;
    let list = r.json()["kpis"].as_array().unwrap().clone();
    assert_eq!(list.len(), mirato::query::catalog().len());
    assert!(
        list.iter()
            .any(|k| k["id"] == "time_to_placement" && k["kind"] == "survival")
    );

    let doc = get(&s, "/api/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let ids = &doc["paths"]["/api/kpi/{id}"]["get"]["parameters"][0]["schema"]["enum"];
    assert_eq!(ids.as_array().unwrap().len(), list.len());
    for path in [
        "/api/evaluation",
        "/export/cohort.parquet",
        "/report/anpal",
        "/healthz",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is documented"
        );
    }

    let h = get(&s, "/healthz").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.json()["status"], "ok");

    get(&s, "/api/kpi/hires").await;
    get(&s, "/api/kpi/hires").await;
    let m = get(&s, "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    let t = m.text();
    assert!(
        t.contains("mirato_http_requests_total{route=\"/api/kpi/{id}\",status=\"200\"}"),
        "{t}"
    );
    assert!(
        t.contains("mirato_kpi_cache_lookups_total{result=\"hit\"}"),
        "{t}"
    );
    assert!(
        t.contains("mirato_http_request_duration_seconds_bucket"),
        "{t}"
    );

    let js = get(&s, "/static/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.header("content-type").starts_with("text/javascript"));
    for uri in [
        "/static/..%2F..%2FCargo.toml",
        "/static/secret.txt",
        "/static/../Cargo.toml",
    ] {
        assert_eq!(get(&s, uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // Security headers on every response.
    let csp = h.header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn every_page_renders_every_panel() {
    let env = fixture();
    let s = state(&env);
    let r = get(&s, "/?from=2025-01-01").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/p/panoramica?from=2025-01-01");
    for page in s.pages() {
        let uri = format!(
            "/p/{}?from=2025-01-01&to=2025-12-31&region=Lombardia",
            page.slug
        );
        let r = get(&s, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let html = r.text();
        assert!(html.contains("<html lang=\"it\""));
        assert!(
            !html.contains("role=\"alert\""),
            "{uri}: a panel failed:\n{html}"
        );
        for (i, p) in page.panels.iter().enumerate() {
            let id = format!("id=\"panel-{}\"", i + 1);
            let start = html.find(&id).unwrap_or_else(|| panic!("{uri}: no {id}"));
            let rest = &html[start..];
            let end = rest.find("</article>").unwrap();
            let panel = &rest[..end];
            assert!(
                panel.contains(&p.title.replace('\'', "&#39;")) || panel.contains(&p.title),
                "{uri} {id}"
            );
            assert!(
                panel.contains("<svg")
                    || panel.contains("<table")
                    || panel.contains("class=\"empty\""),
                "{uri} {id}: neither chart nor table"
            );
            // Exports carry the filters.
            assert!(
                panel.contains(&format!(
                    "/export/{}/{}.xlsx?from=2025-01-01",
                    page.slug,
                    i + 1
                )),
                "{uri} {id}: {panel}"
            );
        }
        // Navigation carries the filters across pages.
        assert!(
            html.contains(
                "href=\"/p/esiti?from=2025-01-01&amp;to=2025-12-31&amp;region=Lombardia\""
            )
        );
        // Italian dates.
        assert!(html.contains("01/01/2025"), "{uri}");
    }
    // The tile of hires: 3 in Italy; Lombardia only with the filter: 2.
    let html = get(&s, "/p/panoramica?from=2025-01-01&to=2025-12-31")
        .await
        .text();
    let tile = &html[html.find("Inserimenti lavorativi").unwrap()..];
    assert!(
        tile.contains("<p class=\"value\">3</p>"),
        "{}",
        &tile[..600]
    );
    let html = get(
        &s,
        "/p/panoramica?from=2025-01-01&to=2025-12-31&province=RM",
    )
    .await
    .text();
    let tile = &html[html.find("Inserimenti lavorativi").unwrap()..];
    assert!(tile.contains("<p class=\"value\">1</p>"));
    // Qualità dati shows the rejected row's rule.
    let html = get(&s, "/p/qualita").await.text();
    assert!(html.contains("bad.csv"));
}

#[tokio::test]
async fn pages_refuse_bad_filters_in_italian_and_cache_with_etag() {
    let env = fixture();
    let s = state(&env);
    for uri in [
        "/p/panoramica?from=2025-02-30",
        "/p/panoramica?from=2025-06-01&to=2025-01-01",
        "/p/panoramica?region=Atlantide",
        "/p/panoramica?colour=red",
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        let html = r.text();
        assert!(html.contains("role=\"alert\""), "{uri}");
        assert!(
            ["data", "Regione", "Parametro"]
                .iter()
                .any(|w| html.contains(w)),
            "{uri}: {html}"
        );
    }
    let r = get(&s, "/p/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("Pagina non trovata"));

    let r = get(&s, "/p/iscrizione").await;
    let tag = r.header("etag");
    let again = get_with(
        &s,
        "/p/iscrizione",
        &[(header::IF_NONE_MATCH.as_str(), &tag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn exports_state_parameters_as_of_and_data_version() {
    let env = fixture();
    let s = state(&env);
    // Panoramica's panel 11: hires by region.
    let q = "?from=2025-01-01&to=2025-12-31";
    let csv = get(&s, &format!("/export/panoramica/11.csv{q}")).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text());
    let text = csv.text();
    assert!(text.contains("# Indicatore: hires\n"), "{text}");
    assert!(text.contains("# from: 2025-01-01\n"));
    assert!(text.contains("# as_of: "));
    assert!(text.contains("# Versione dei dati: "));
    assert!(text.contains(
        "# Per riprodurre: GET /api/kpi/hires?from=2025-01-01&to=2025-12-31&by=region&as_of="
    ));
    assert!(
        text.ends_with("region,value\nLazio,1\nLombardia,2\n"),
        "{text}"
    );
    assert!(
        csv.header("content-disposition")
            .contains("mirato-hires-2025-01-01_2025-12-31.csv")
    );

    let json = get(&s, &format!("/export/panoramica/11.json{q}"))
        .await
        .json();
    assert_eq!(
        json["rows"][1],
        serde_json::json!({"region": "Lombardia", "value": 2})
    );
    assert!(json["params"]["as_of"].is_string());
    assert!(json["export"]["Versione dei dati"].is_string());

    let xlsx = get(&s, &format!("/export/panoramica/11.xlsx{q}")).await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert_eq!(&xlsx.body[..2], b"PK");

    // The reproduce line really reproduces the figure.
    let line = text
        .lines()
        .find(|l| l.starts_with("# Per riprodurre: GET "))
        .unwrap();
    let api = line.trim_start_matches("# Per riprodurre: GET ");
    let again = get(&s, api).await;
    assert_eq!(again.json()["rows"][1]["value"], 2, "{api}");

    for (uri, status) in [
        ("/export/panoramica/11.pdf", StatusCode::BAD_REQUEST),
        ("/export/panoramica/99.csv", StatusCode::NOT_FOUND),
        ("/export/panoramica/0.csv", StatusCode::NOT_FOUND),
        ("/export/nope/1.csv", StatusCode::NOT_FOUND),
        ("/export/panoramica/x.csv", StatusCode::NOT_FOUND),
        (
            "/export/panoramica/11.csv?from=bad",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(get(&s, uri).await.status, status, "{uri}");
    }
}

#[test]
fn serve_refuses_an_invalid_dashboard_with_file_and_reason() {
    let env = fixture();
    let dir = env.dir.path().join("dash");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        "title = \"X\"\norder = 1\n[[panel]]\nkpi = \"hires\"\nby = [\"colour\"]\nchart = \"bar\"\ntitle = \"T\"\nexplain = \"E\"\n",
    )
    .unwrap();
    let out = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0", "--dashboards"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml"), "{err}");
    assert!(err.contains("no breakdown 'colour'"), "{err}");
}

/// A request still computing past the server's wait is answered at once with 503 and
/// `Retry-After` (a browser gets a page in Italian that reloads itself, an API client JSON),
/// and its computation goes on: the figures land in the cache, and the retry is answered
/// from there with the same figures as an unhurried server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_wait_is_told_to_come_back_and_its_figures_go_on() {
    let env = fixture();
    let state = state(&env);
    // No figure is computed within a microsecond; and while the test holds every turn of the
    // engine, none is computed at all, however fast the machine.
    state.set_max_wait(Some(std::time::Duration::from_micros(1)));
    let before = state.cache().len();
    let held = state.engine().hold_turns().await;

    let page = "/p/esiti?from=2025-01-01&to=2025-06-30";
    let r = get_with(&state, page, &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers[header::RETRY_AFTER], "10");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert!(r.text().contains("si ricarica da sola"), "{}", r.text());
    // The reload names the instant the figures are computed at.
    let shown = state.shown_as_of().unwrap();
    let pinned = form_urlencoded::Serializer::new(String::new())
        .append_pair("as_of", &shown)
        .finish();
    assert_eq!(
        r.headers["refresh"],
        format!("10; url=/p/esiti?from=2025-01-01&to=2025-06-30&{pinned}")
    );

    let api = "/api/kpi/hires?from=2025-01-01&to=2025-12-31&by=region";
    let r = get(&state, api).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers[header::RETRY_AFTER], "10");
    assert_eq!(r.json()["retry_after"], 10);
    let retry = r.json()["retry_url"].as_str().unwrap().to_owned();
    assert_eq!(retry, format!("{api}&{pinned}"));
    // A request that names its instant keeps it.
    let named = format!("{api}&as_of=2025-12-31");
    let r = get(&state, &named).await;
    assert_eq!(r.json()["retry_url"], named);

    drop(held);

    // Routes that compute nothing are never deferred.
    assert_eq!(get(&state, "/healthz").await.status, StatusCode::OK);
    assert_eq!(get(&state, "/api/kpis").await.status, StatusCode::OK);

    // The abandoned computation finishes into the cache: under the same microsecond's wait,
    // only a cached figure can answer 200.
    let mut retried = get(&state, api).await;
    for _ in 0..600 {
        if retried.status == StatusCode::OK {
            break;
        }
        assert_eq!(retried.status, StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        retried = get(&state, api).await;
    }
    assert_eq!(
        retried.status,
        StatusCode::OK,
        "the deferred figure never reached the cache"
    );
    assert!(state.cache().len() > before);
    let fresh = get(&env.app_state(), api).await;
    assert_eq!(retried.json()["rows"], fresh.json()["rows"]);
    // Lombardia 2 and Lazio 1, as in the fixture.
    assert_eq!(retried.json()["rows"].as_array().unwrap().len(), 2);

    // The pinned retry is the same entry as the request it retries...
    let r = get(&state, &retry).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["rows"], fresh.json()["rows"]);
    // ...and stays so when newer data arrives: the retry still finds the deferred figure,
    // where a key naming the newest data would start the computation again (and, with data
    // arriving every minute, never answer).
    env.load("late.csv", &[hire("h4", "2025-05-01", 5, &[])]);
    let at_shown = mirato::query::parse_as_of(&shown).unwrap();
    assert_ne!(
        state.engine().latest().unwrap().1,
        state.version_at(Some(at_shown)).await.unwrap()
    );
    let r = get(&state, &retry).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["rows"], fresh.json()["rows"]);
    // (The same request without an instant now asks for the newer data: not computed yet.)
    let held = state.engine().hold_turns().await;
    assert_eq!(
        get(&state, api).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    drop(held);
}

/// A workbook takes minutes under load; with new data every minute, each ask without `as_of`
/// would start another of newer data, and they would pile up. Asked again while its
/// computation runs, the same report joins it, at its instant, whatever was published since.
#[tokio::test]
async fn a_report_asked_again_while_newer_data_arrives_joins_the_running_one() {
    let env = fixture();
    let state = state(&env);
    state.set_max_wait(Some(std::time::Duration::from_micros(1)));
    let held = state.engine().hold_turns().await;
    let report = "/report/anpal?year=2025";
    let first = get(&state, report).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry = first.json()["retry_url"].as_str().unwrap().to_owned();
    let shown = state.shown_as_of().unwrap();
    assert!(
        retry.ends_with(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("as_of", &shown)
                .finish()
        )
    );
    assert_eq!(state.downloads().running(), 1);

    env.load("late.csv", &[hire("h4", "2025-05-01", 5, &[])]);
    assert_ne!(state.shown_as_of().unwrap(), shown, "newer data is shown");
    let again = get(&state, report).await;
    assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        again.json()["retry_url"],
        retry,
        "the ask joined the running report"
    );
    // Another year is another report, of the newest data.
    let other = get(&state, "/report/anpal?year=2024").await;
    assert_ne!(other.json()["retry_url"], "/report/anpal?year=2024");
    assert!(
        !other.json()["retry_url"].as_str().unwrap().contains(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("as_of", &shown)
                .finish()
        )
    );
    assert_eq!(state.downloads().running(), 2);
    drop(held);

    // The retry gets the workbook its first try started; then nothing runs.
    let mut r = get(&state, &retry).await;
    for _ in 0..1200 {
        if r.status == StatusCode::OK {
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        r = get(&state, &retry).await;
    }
    assert_eq!(r.status, StatusCode::OK, "the report never finished");
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("mirato-anpal-2025.xlsx")
    );
    for _ in 0..1200 {
        if state.downloads().running() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state.downloads().running(), 0);
    // Asked now, the report is of the data shown now: a computation of its own.
    let held = state.engine().hold_turns().await;
    let fresh = get(&state, report).await;
    assert_eq!(fresh.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(fresh.json()["retry_url"], retry);
    drop(held);
}
