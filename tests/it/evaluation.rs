//! The evaluator page, its JSON and the cohort download, through the real router: Wilson
//! intervals and the log-rank test against scipy (a reference implementation), who may download
//! the person-level file, and small subgroups hidden below admin.

use crate::common;
use common::*;

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mirato::server::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn get_as(state: &AppState, token: &str, uri: &str) -> Reply {
    let req = Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    Reply::read(
        mirato::server::router(state.clone())
            .oneshot(req)
            .await
            .unwrap(),
    )
    .await
}

/// scipy's answers for the same data: the log-rank test of two groups whose observations are
/// rebuilt from the Kaplan–Meier rows (each row's `events` placements and `censored` censorings
/// on its day), and the Wilson interval of every (numerator, denominator).
const SCIPY: &str = r#"
import json, sys
from scipy import stats
q = json.load(sys.stdin)
def data(rows):
    placed, censored = [], []
    for r in rows:
        placed += [r["day"]] * r["events"]
        censored += [r["day"]] * r["censored"]
    return stats.CensoredData(uncensored=placed, right=censored)
lr = stats.logrank(data(q["a"]), data(q["b"]))
cis = []
for k, n in q["rates"]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    cis.append([ci.low, ci.high])
print(json.dumps({"chi2": float(lr.statistic) ** 2, "p": float(lr.pvalue), "cis": cis}))
"#;

fn close(a: &Value, b: f64, what: &str) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{what}: {a}"));
    assert!((a - b).abs() < 1e-9, "{what}: {a} vs scipy {b}");
}

fn sample() -> (Env, Access, AppState) {
    let env = Env::new();
    env.ingest(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data")]);
    let access = env.access();
    let state = env.app_state();
    state.set_key(mirato::privacy::Key::load_or_create(&env.key, &env.data).unwrap());
    (env, access, state)
}

#[tokio::test]
async fn wilson_and_log_rank_agree_with_scipy() {
    let (_env, a, s) = sample();
    let admin = &a.tokens["admin"];
    let q = "from=2023-01-01&to=2024-12-31&by=gender";
    let e = get_as(&s, admin, &format!("/api/evaluation?{q}")).await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text());
    let e = e.json();
    assert_eq!(e["by"], "gender");
    let groups = e["groups"].as_array().unwrap();
    let keys: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(keys[..2], ["F", "M"], "{keys:?}");
    assert_eq!(
        (e["log_rank"]["a"].clone(), e["log_rank"]["b"].clone()),
        (json!("F"), json!("M"))
    );

    // The curves the page draws are time_to_placement's, by the same subgroup.
    let km = get_as(&s, admin, &format!("/api/kpi/time_to_placement?{q}"))
        .await
        .json();
    let rows = km["rows"].as_array().unwrap();
    let of =
        |g: &str| -> Vec<Value> { rows.iter().filter(|r| r["gender"] == g).cloned().collect() };
    let mut rates = Vec::new();
    for g in groups {
        assert_eq!(g["persons"], of(g["group"].as_str().unwrap())[0]["at_risk"]);
        for r in g["rates"].as_array().unwrap() {
            rates.push(json!([r["numerator"], r["denominator"]]));
        }
    }
    // The rates are placement_rate_N's.
    let p180 = get_as(&s, admin, &format!("/api/kpi/placement_rate_180?{q}"))
        .await
        .json();
    for (g, row) in groups.iter().zip(p180["rows"].as_array().unwrap()) {
        let r = &g["rates"][1];
        assert_eq!(r["horizon"], 180);
        assert_eq!(
            (r["numerator"].clone(), r["denominator"].clone()),
            (row["numerator"].clone(), row["denominator"].clone())
        );
        assert_eq!(r["value"], row["value"]);
    }
    let ref_ = python_json(
        SCIPY,
        &[],
        Some(&json!({"a": of("F"), "b": of("M"), "rates": rates}).to_string()),
        "scipy",
    );
    let t = &e["log_rank"]["test"];
    close(&t["chi2"], ref_["chi2"].as_f64().unwrap(), "chi2");
    close(&t["p_value"], ref_["p"].as_f64().unwrap(), "p");
    assert_eq!(t["df"], 1);
    let total_events: u64 = rows
        .iter()
        .filter(|r| r["gender"] == "F" || r["gender"] == "M")
        .map(|r| r["events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        t["observed"][0].as_u64().unwrap() + t["observed"][1].as_u64().unwrap(),
        total_events
    );
    let mut i = 0;
    for g in groups {
        for r in g["rates"].as_array().unwrap() {
            close(
                &r["lower"],
                ref_["cis"][i][0].as_f64().unwrap(),
                "wilson lower",
            );
            close(
                &r["upper"],
                ref_["cis"][i][1].as_f64().unwrap(),
                "wilson upper",
            );
            i += 1;
        }
    }

    // Choosing the groups: the same pair the other way round gives the same statistic.
    let swapped = get_as(&s, admin, &format!("/api/evaluation?{q}&a=M&b=F"))
        .await
        .json();
    close(
        &swapped["log_rank"]["test"]["chi2"],
        t["chi2"].as_f64().unwrap(),
        "swapped",
    );
    let same = get_as(&s, admin, &format!("/api/evaluation?{q}&a=M&b=M"))
        .await
        .json();
    assert!(same["log_rank"]["test"].is_null());
    assert!(
        same["log_rank"]["note"]
            .as_str()
            .unwrap()
            .contains("diversi")
    );

    // Mistakes are 400s that name the parameter.
    for (uri, param) in [
        ("/api/evaluation?by=cpi", "by"),
        ("/api/evaluation?by=gender&a=X", "a"),
        ("/api/evaluation?from=2024-02-30", "from"),
        ("/api/evaluation?colour=red", "colour"),
    ] {
        let r = get_as(&s, admin, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(r.json()["param"], param, "{uri}");
    }

    // The page: rates with their intervals, the curves with title and table, the test.
    let page = get_as(&s, admin, &format!("/valutazione?{q}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    for needle in [
        "Tassi di inserimento per genere",
        "IC 95% (180 gg)",
        "svg",
        "<title id=\"km-t\">",
        "Test log-rank",
        "gradi di libertà 1",
        "aria-current=\"page\"",
        "/export/cohort.parquet?",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let bad = get_as(&s, admin, "/valutazione?by=colour").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("role=\"alert\""));
}

#[tokio::test]
async fn only_evaluators_and_admins_download_the_cohort_file() {
    let (env, a, s) = sample();
    for role in ["viewer", "manager"] {
        let r = get_as(&s, &a.tokens[role], "/export/cohort.parquet?entry=pact").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
        // Their page says so and offers no link.
        let page = get_as(&s, &a.tokens[role], "/valutazione").await;
        assert_eq!(page.status, StatusCode::OK, "{role}");
        assert!(!page.text().contains("/export/cohort.parquet"), "{role}");
        assert!(page.text().contains("riservato ai ruoli evaluator e admin"));
    }
    let q = "from=2024-01-01&to=2024-12-31";
    let r = get_as(
        &s,
        &a.tokens["evaluator"],
        &format!("/export/cohort.parquet?entry=pact&{q}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&r.body[..4], b"PAR1");
    assert!(
        r.header("content-disposition")
            .contains("mirato-coorte-pact-2024-01-01-2024-12-31.parquet")
    );
    let path = env.dir.path().join("web.parquet");
    std::fs::write(&path, &r.body).unwrap();
    // The same file as the CLI's (same rows), and as many rows as time_to_placement's cohort.
    let cli = env.dir.path().join("cli.parquet");
    let o = env
        .cli()
        .args([
            "export",
            "cohort",
            "--entry",
            "pact",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--out",
        ])
        .arg(&cli)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |p: &Path| {
        python_json(
            "import sys, json, pyarrow.parquet as pq; print(json.dumps(pq.read_table(sys.argv[1]).to_pylist(), default=str))",
            &[p.as_os_str()],
            None,
            "pyarrow",
        )
    };
    let (web, cli) = (read(&path), read(&cli));
    assert_eq!(web, cli);
    let km = get_as(
        &s,
        &a.tokens["admin"],
        &format!("/api/kpi/time_to_placement?{q}"),
    )
    .await
    .json();
    assert_eq!(
        web.as_array().unwrap().len() as u64,
        km["rows"][0]["at_risk"].as_u64().unwrap()
    );
    // Admin too; bad parameters are 400s.
    let r = get_as(&s, &a.tokens["admin"], "/export/cohort.parquet").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get_as(&s, &a.tokens["admin"], "/export/cohort.parquet?entry=spell").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["param"], "entry");
    let r = get_as(
        &s,
        &a.tokens["evaluator"],
        "/export/cohort.parquet?by=gender",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// Nineteen persons with a pact on 2025-03-01 (the observation end is 2025-12-31):
/// - 1–8 born 2000 (15-29), women; 1–6 hired (on days 10, 11, …, 15);
/// - 9–14 born 1990 (30-54), women; 9–11 hired (days 18, 19, 20);
/// - 15–19 born 1960 (55+); 15 and 16 men, the others women; 15 hired (day 25).
///
/// By age band, below admin: persons 8, 6, 5 are all shown, perturbed; placements 6, 3, 1: the
/// two small ones are hidden. The default test, 15-29 against 30-54, compares the perturbed
/// curves. By gender: men 2 persons, hidden; women 17, shown perturbed.
#[tokio::test]
async fn small_subgroups_are_hidden_below_admin() {
    let env = Env::new();
    let mut rows = Vec::new();
    for n in 1..=19u32 {
        let born = match n {
            1..=8 => "2000-05-01",
            9..=14 => "1990-05-01",
            _ => "1960-05-01",
        };
        let gender = if n == 15 || n == 16 { "M" } else { "F" };
        rows.push(application(
            &format!("a{n}"),
            "2025-01-10",
            n,
            &[("gender", gender), ("birth_date", born)],
        ));
        rows.push(ev(
            "application_accepted",
            &format!("c{n}"),
            "2025-02-01",
            Some(n),
            &[],
        ));
        rows.push(ev(
            "pact_signed",
            &format!("p{n}"),
            "2025-03-01",
            Some(n),
            &[("pact_id", &format!("P{n}"))],
        ));
        let day = match n {
            1..=6 => Some(10 + n - 1),
            9..=11 => Some(18 + n - 9),
            15 => Some(25),
            _ => None,
        };
        if let Some(d) = day {
            rows.push(hire(
                &format!("h{n}"),
                &format!("2025-03-{:02}", 1 + d),
                n,
                &[],
            ));
        }
    }
    rows.push(ev("basic_orientation", "last", "2025-12-31", Some(19), &[]));
    env.load("small.csv", &rows);
    let a = env.access();
    let s = env.app_state();
    let q = "/api/evaluation?from=2025-01-01&to=2025-12-31&by=age_band";
    let admin = get_as(&s, &a.tokens["admin"], q).await.json();
    let persons: Vec<&Value> = admin["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["persons"])
        .collect();
    assert_eq!(persons, [&json!(8), &json!(6), &json!(5)]);
    assert_eq!(admin["log_rank"]["a"], "15-29");
    assert_eq!(admin["log_rank"]["b"], "30-54");
    assert_eq!(admin["log_rank"]["test"]["observed"], json!([6, 3]));
    assert!(admin["log_rank"]["test"]["chi2"].is_number());

    let viewer = get_as(&s, &a.tokens["viewer"], q).await.json();
    assert_eq!(viewer["threshold"], 5);
    let shown: Vec<(Value, Value)> = viewer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["persons"].clone(), g["placements"].clone()))
        .collect();
    // Perturbed within ±3 and never below 5; the small placements hidden.
    let near = |v: &Value, exact: i64| {
        let n = v.as_i64().unwrap_or_else(|| panic!("a number: {v}"));
        assert!(n >= 5 && (n - exact).abs() <= 3, "{n} is not near {exact}");
    };
    near(&shown[0].0, 8);
    near(&shown[0].1, 6);
    near(&shown[1].0, 6);
    assert_eq!(shown[1].1, json!("<5"));
    near(&shown[2].0, 5);
    assert_eq!(shown[2].1, json!("<5"));
    // The test compares the perturbed curves: shown only if neither side's (perturbed)
    // placements fall between 1 and 4.
    match viewer["log_rank"]["test"]["observed"].as_array() {
        Some(obs) => assert!(obs.iter().all(|o| o.as_i64().unwrap() >= 5), "{viewer}"),
        None => assert!(
            viewer["log_rank"]["note"]
                .as_str()
                .unwrap()
                .contains("meno di 5 assunzioni")
        ),
    }

    let by_gender = get_as(
        &s,
        &a.tokens["viewer"],
        "/api/evaluation?from=2025-01-01&to=2025-12-31&by=gender",
    )
    .await
    .json();
    let groups = by_gender["groups"].as_array().unwrap();
    // Women 17, shown perturbed; men 2, hidden. No secondary cell: the total minus the women
    // gives the men only up to two noises.
    near(&groups[0]["persons"], 17);
    assert_eq!(groups[1]["persons"], "<5", "{}", groups[1]);
    assert!(groups[1]["median_days"].is_null());
    assert!(by_gender["log_rank"]["test"].is_null());
    assert!(
        by_gender["log_rank"]["note"]
            .as_str()
            .unwrap()
            .contains("meno di 5 persone")
    );
    // Rates of the small group are suppressed by the KPI layer: no interval either.
    for r in by_gender["groups"][1]["rates"].as_array().unwrap() {
        assert!(r["lower"].is_null(), "{r}");
    }
    let page = get_as(
        &s,
        &a.tokens["viewer"],
        "/valutazione?from=2025-01-01&to=2025-12-31&by=gender",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("meno di 5 persone"));
    // Period backwards: a 400 for the cohort file too.
    let r = get_as(
        &s,
        &a.tokens["admin"],
        "/export/cohort.parquet?from=2025-05-01&to=2025-01-01",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
