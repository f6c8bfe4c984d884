//! The hostile viewer: every way a security review recovered suppressed cells, played against
//! the real router on generated data, as a viewer and (to prove each attack works) as an admin.
//!
//! Each attack derives, from answers it is allowed to get, the values of cells whose true count
//! is between 1 and the threshold (5). Against exact answers (admin) it recovers every target;
//! below admin every answer carries cell-key noise, so a derived value is right only when the
//! noises happen to cancel. The assertion: below admin the attack is right for at most half
//! of its targets (for one difference of two independent noises the chance is Σp² ≈ 25%), so no
//! derived value can be trusted; and no count between 1 and 4 is ever shown.

use crate::common;
use common::*;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mirato::server::{AppState, router};
use serde_json::Value;
use tower::ServiceExt;

const T: u64 = 5;
const FROM: &str = "2024-01-01";
const TO: &str = "2025-12-31";

struct World {
    _env: Env,
    state: AppState,
    admin: String,
    viewer: String,
    evaluator: String,
}

/// A store of generated persons, 2024–2025, in one batch, with one user per role.
fn world() -> World {
    let env = generated_store(6000, 14, FROM, TO);
    let access = env.access();
    let state = env.app_state();
    World {
        admin: access.tokens["admin"].clone(),
        viewer: access.tokens["viewer"].clone(),
        evaluator: access.tokens["evaluator"].clone(),
        state,
        _env: env,
    }
}

async fn get(state: &AppState, token: &str, uri: &str) -> Value {
    let req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = Reply::read(router(state.clone()).oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
    r.json()
}

/// A KPI's rows.
async fn rows(state: &AppState, token: &str, kpi: &str, query: &str) -> Vec<Value> {
    let v = get(state, token, &format!("/api/kpi/{kpi}?{query}")).await;
    v["rows"].as_array().cloned().unwrap_or_default()
}

fn num(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|x| x.round() as i64))
}

fn small(n: i64) -> bool {
    n > 0 && n < T as i64
}

/// The score of an attack: targets (true small cells it derived a value for) and hits.
#[derive(Default, Debug)]
struct Score {
    targets: usize,
    hits: usize,
}

impl Score {
    fn add(&mut self, derived: i64, truth: i64) {
        self.targets += 1;
        if derived == truth {
            self.hits += 1;
        }
    }
    /// Against admin the attack must work; below admin it must not be trusted.
    fn check(admin: &Score, viewer: &Score, what: &str) {
        assert!(
            admin.targets >= 8,
            "{what}: too few targets to judge: {admin:?}"
        );
        assert_eq!(
            admin.hits, admin.targets,
            "{what}: the attack must work on exact data"
        );
        assert!(
            viewer.targets >= 8,
            "{what}: the viewer's attack found too few targets: {viewer:?}"
        );
        assert!(
            viewer.hits * 2 <= viewer.targets,
            "{what}: a viewer recovered {} of {} small cells",
            viewer.hits,
            viewer.targets
        );
        eprintln!("{what}: admin {admin:?}, viewer {viewer:?}");
    }
}

fn by_key(rows: &[Value], key: &str) -> BTreeMap<String, Value> {
    rows.iter()
        .map(|r| (r[key].as_str().unwrap_or("").to_owned(), r.clone()))
        .collect()
}

/// Periods attacked one by one: more small cells to recover.
const PERIODS: [&str; 8] = [
    "from=2024-01-01&to=2024-03-31",
    "from=2024-04-01&to=2024-06-30",
    "from=2024-07-01&to=2024-09-30",
    "from=2024-10-01&to=2024-12-31",
    "from=2025-01-01&to=2025-03-31",
    "from=2025-04-01&to=2025-06-30",
    "from=2025-07-01&to=2025-09-30",
    "from=2025-10-01&to=2025-12-31",
];

/// Longer periods, whose regional totals are rarely small.
const LONG: [&str; 5] = [
    "from=2024-01-01&to=2024-06-30",
    "from=2024-07-01&to=2024-12-31",
    "from=2025-01-01&to=2025-06-30",
    "from=2025-07-01&to=2025-12-31",
    "from=2024-01-01&to=2025-12-31",
];

/// The true values (admin) of a count KPI, keyed by the values of `keys` joined with `/`.
async fn truth(w: &World, kpi: &str, query: &str, keys: &[&str]) -> BTreeMap<String, i64> {
    rows(&w.state, &w.admin, kpi, query)
        .await
        .iter()
        .filter_map(|r| {
            let k: Vec<&str> = keys.iter().map(|k| r[*k].as_str().unwrap_or("")).collect();
            num(&r["value"]).map(|v| (k.join("/"), v))
        })
        .collect()
}

/// Attack 1, complements across KPIs: rejected = decisions − accepted, from the acceptance rate.
async fn complement(w: &World, token: &str) -> Score {
    let mut s = Score::default();
    for period in PERIODS {
        let q = format!("{period}&by=region");
        let rejected = truth(w, "applications_rejected", &q, &["region"]).await;
        for (region, r) in by_key(
            &rows(&w.state, token, "acceptance_rate", &q).await,
            "region",
        ) {
            let (Some(den), Some(n)) = (num(&r["denominator"]), num(&r["numerator"])) else {
                continue;
            };
            let t = rejected.get(&region).copied().unwrap_or(0);
            if small(t) {
                s.add(den - n, t);
            }
        }
    }
    s
}

/// Attacks 2 and 3, totals that force hidden cells: a region's total (asked alone) minus its
/// provinces' shown cells gives the sum of the hidden ones: one hidden cell exactly, or, when
/// the sum equals their number, each of them as 1 (the review's "11 hidden CPIs and a total of
/// 11"). Exact answers hide nothing: there the attack takes the region's smallest small cell as
/// the one to derive.
async fn forced_by_totals(w: &World, token: &str) -> Score {
    let mut s = Score::default();
    for kpi in [
        "hires",
        "applications_received",
        "pacts_signed",
        "basic_orientations",
    ] {
        forced_in(w, token, kpi, &mut s).await;
    }
    s
}

async fn forced_in(w: &World, token: &str, kpi: &str, s: &mut Score) {
    for period in LONG.iter().chain(&PERIODS) {
        let q = format!("{period}&by=region,province");
        let truth = truth(w, kpi, &q, &["region", "province"]).await;
        let mut regions: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
        for r in rows(&w.state, token, kpi, &q).await {
            let region = r["region"].as_str().unwrap_or("").to_owned();
            let key = format!("{region}/{}", r["province"].as_str().unwrap_or(""));
            regions
                .entry(region)
                .or_default()
                .push((key, r["value"].clone()));
        }
        for (region, cells) in regions {
            let mut hidden: Vec<String> = cells
                .iter()
                .filter(|(_, v)| num(v).is_none())
                .map(|(c, _)| c.clone())
                .collect();
            if hidden.is_empty() {
                match cells
                    .iter()
                    .filter(|(c, _)| small(truth.get(c).copied().unwrap_or(0)))
                    .min_by_key(|(c, _)| truth[c])
                {
                    Some((c, _)) => hidden.push(c.clone()),
                    None => continue,
                }
            }
            let name: String = form_urlencoded::byte_serialize(region.as_bytes()).collect();
            let total = rows(&w.state, token, kpi, &format!("{period}&region={name}")).await;
            let Some(total) = total.first().and_then(|r| num(&r["value"])) else {
                continue;
            };
            let shown: i64 = cells
                .iter()
                .filter(|(c, _)| !hidden.contains(c))
                .filter_map(|(_, v)| num(v))
                .sum();
            // The sum gives cells away when it is one cell, or when it equals their number
            // (each is then 1); otherwise knowing it exactly would still reveal no cell.
            let t: i64 = hidden
                .iter()
                .map(|c| truth.get(c).copied().unwrap_or(0))
                .sum();
            if hidden.len() == 1 || t == hidden.len() as i64 {
                s.add(total - shown, t);
            }
        }
    }
}

/// How many days the differencing attack tries.
const DAYS: u64 = 120;

/// Attack 4, differencing periods: the period to day D minus the period to day D − 1 is day D.
async fn differencing(w: &World, token: &str) -> Vec<(String, i64)> {
    let days: Vec<chrono::NaiveDate> = (0..DAYS)
        .map(|i| chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() + chrono::Days::new(i))
        .collect();
    let mut counts = Vec::new();
    for d in &days {
        let r = rows(&w.state, token, "hires", &format!("from=2025-01-01&to={d}")).await;
        counts.push(r.first().and_then(|r| num(&r["value"])));
    }
    let mut derived = Vec::new();
    for i in 1..days.len() {
        if let (Some(a), Some(b)) = (counts[i], counts[i - 1]) {
            derived.push((days[i].to_string(), a - b));
        }
    }
    derived
}

#[tokio::test]
async fn a_hostile_viewer_recovers_no_small_cell() {
    let w = world();
    Score::check(
        &complement(&w, &w.admin).await,
        &complement(&w, &w.viewer).await,
        "1. complement across KPIs",
    );
    Score::check(
        &forced_by_totals(&w, &w.admin).await,
        &forced_by_totals(&w, &w.viewer).await,
        "2-3. totals and the secondary cell alone",
    );

    // 4. The exact count of each day, asked as admin.
    let mut per_day: BTreeMap<String, i64> = BTreeMap::new();
    for d in 0..DAYS {
        let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() + chrono::Days::new(d);
        let one = rows(&w.state, &w.admin, "hires", &format!("from={day}&to={day}")).await;
        let n = one.first().and_then(|r| num(&r["value"])).unwrap_or(0);
        per_day.insert(day.to_string(), n);
    }
    let mut scores = Vec::new();
    for token in [&w.admin, &w.viewer] {
        let mut s = Score::default();
        for (day, v) in differencing(&w, token).await {
            let t = per_day[&day];
            if small(t) {
                s.add(v, t);
            }
        }
        scores.push(s);
    }
    Score::check(&scores[0], &scores[1], "4. differencing periods");
}

/// Every count a viewer or an evaluator can get, in every kind of KPI, is 0, `<5` or 5 and
/// more; survival rows show only 30-day steps with at least 5 at risk; medians of fewer than 5
/// cases and rates of fewer than 5 are withheld.
#[tokio::test]
async fn no_count_between_one_and_the_threshold_is_ever_shown() {
    let w = world();
    let count_cols = [
        "value",
        "numerator",
        "denominator",
        "n",
        "persons",
        "at_risk",
        "events",
        "censored",
        "observed",
        "cohort",
    ];
    let mut checked = 0;
    for def in mirato::query::catalog() {
        let dims = def.allowed_dims();
        for by in ["", "&by=cpi", "&by=province,gender", "&by=month"] {
            let asked = by.trim_start_matches("&by=").split(',');
            if !by.is_empty() && asked.into_iter().any(|d| !dims.contains(&d)) {
                continue;
            }
            let q = format!("from={FROM}&to={TO}{by}");
            for token in [&w.viewer, &w.evaluator] {
                let v = get(&w.state, token, &format!("/api/kpi/{}?{q}", def.id)).await;
                assert_eq!(
                    v["protection"]["method"], "cell_key_perturbation",
                    "{}: {v}",
                    def.id
                );
                for r in v["rows"].as_array().unwrap() {
                    for c in count_cols {
                        // A rate's value and a median's value are not counts.
                        let is_count = c != "value"
                            || matches!(
                                def.kind,
                                mirato::query::Kind::Count
                                    | mirato::query::Kind::CountDistinct
                                    | mirato::query::Kind::Sum
                                    | mirato::query::Kind::Stock
                            );
                        if !is_count {
                            continue;
                        }
                        if let Some(n) = r.get(c).and_then(num) {
                            assert!(!small(n), "{} {q}: {c} = {n} in {r}", def.id);
                            checked += 1;
                        }
                    }
                    if def.kind == mirato::query::Kind::Survival
                        && let Some(day) = r["day"].as_i64()
                    {
                        assert_eq!(day % 30, 0, "5. a survival row on a person's day: {r}");
                        if let Some(n) = r["at_risk"].as_i64() {
                            assert!(n >= T as i64, "{r}");
                        }
                    }
                    if matches!(
                        def.kind,
                        mirato::query::Kind::Median | mirato::query::Kind::Mean
                    ) && r["n"].is_string()
                    {
                        assert!(!r["value"].is_number(), "6. a median of few: {r}");
                    }
                }
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// Attack 5, survival: one person's days to placement, and censoring days, came back from
/// `time_to_placement` by subgroup. Below admin no row falls on a day that is not a multiple
/// of 30, and no median on a person's day; the admin still sees the exact curve. Attack 7: the
/// log-rank test's observed placements are perturbed, never 1..4.
#[tokio::test]
async fn survival_and_the_log_rank_test_show_no_persons_day() {
    let w = world();
    let q = format!("from={FROM}&to={TO}&by=gender");
    let admin = rows(&w.state, &w.admin, "time_to_placement", &q).await;
    assert!(
        admin.iter().any(|r| r["day"].as_i64().unwrap() % 30 != 0),
        "the exact curve has daily steps"
    );
    for token in [&w.viewer, &w.evaluator] {
        for r in rows(&w.state, token, "time_to_placement", &q).await {
            assert_eq!(r["day"].as_i64().unwrap() % 30, 0, "{r}");
            if let Some(m) = r["median_days"].as_f64() {
                assert_eq!(m % 15.0, 0.0, "{r}");
            }
        }
    }
    // The evaluation page's groups and test, by age band, as evaluator and admin.
    let uri = format!("/api/evaluation?from={FROM}&to={TO}&by=age_band");
    let exact = get(&w.state, &w.admin, &uri).await;
    let shown = get(&w.state, &w.evaluator, &uri).await;
    let exact_groups = by_key(exact["groups"].as_array().unwrap(), "group");
    let mut compared = 0;
    for g in shown["groups"].as_array().unwrap() {
        let truth = &exact_groups[g["group"].as_str().unwrap()];
        for c in ["persons", "placements"] {
            if let Some(n) = num(&g[c]) {
                assert!(!small(n), "{c} {g}");
                compared += 1;
            }
            if num(&truth[c]).is_some_and(small) {
                assert!(!g[c].is_number(), "a small {c} shown: {g}");
            }
        }
    }
    assert!(compared > 0);
    if let Some(test) = shown["log_rank"]["test"].as_object() {
        let observed: Vec<i64> = test["observed"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(num)
            .collect();
        assert!(observed.iter().all(|&o| !small(o)), "{test:?}");
    }
}

/// Asking the same cell again, alone or within a breakdown, gives the same perturbed value:
/// repetition averages nothing away.
#[tokio::test]
async fn the_same_cell_always_gets_the_same_noise() {
    let w = world();
    let by_province = rows(
        &w.state,
        &w.viewer,
        "hires",
        &format!("from={FROM}&to={TO}&by=province"),
    )
    .await;
    let mut compared = 0;
    for r in by_province.iter().take(8) {
        let p = r["province"].as_str().unwrap();
        let alone = rows(
            &w.state,
            &w.viewer,
            "hires",
            &format!("from={FROM}&to={TO}&province={p}"),
        )
        .await;
        assert_eq!(alone[0]["value"], r["value"], "{p}");
        // The same records under another period that adds no event: the same noise.
        let again = rows(
            &w.state,
            &w.viewer,
            "hires",
            &format!("from=2023-06-01&to={TO}&province={p}"),
        )
        .await;
        assert_eq!(again[0]["value"], r["value"], "{p}");
        compared += 1;
    }
    assert!(compared > 0);
}
/// The server reads the record keys the store writes beside each event; computing them from
/// the units gives the same cell keys, so the noise of a figure does not depend on the way.
/// Keys of another secret are never read: such a store is keyed the slow way until compaction
/// writes its files anew.
#[tokio::test(flavor = "multi_thread")]
async fn stored_record_keys_are_the_computed_ones() {
    use mirato::query::Engine;
    let env = generated_store(300, 5, FROM, TO);
    let engine = Engine::open(&env.data).unwrap();
    assert!(engine.keys_stored().unwrap());
    let mut compared = 0;
    for (def, p, by) in keyed_runs(FROM, TO) {
        engine.read_stored_keys(true);
        let stored = engine.run(def, &p).await.unwrap();
        engine.read_stored_keys(false);
        let computed = engine.run(def, &p).await.unwrap();
        assert_eq!(stored.keys, computed.keys, "{} by {by:?}", def.id);
        assert_eq!(stored.life, computed.life, "{} by {by:?}", def.id);
        assert_eq!(stored.rows, computed.rows, "{} by {by:?}", def.id);
        compared += 1;
    }
    assert!(compared > 60, "{compared} results compared");
    drop(engine);

    std::fs::write(
        env.data.join(mirato::recordkey::FILE_NAME),
        "0123456789abcdef\n",
    )
    .unwrap();
    assert!(!Engine::open(&env.data).unwrap().keys_stored().unwrap());
    let store = mirato::store::Store::open(&env.data).unwrap();
    let report = mirato::compact::compact(&store, &Default::default()).unwrap();
    assert!(report.partitions_merged > 0, "{report:?}");
    drop(store);
    assert!(Engine::open(&env.data).unwrap().keys_stored().unwrap());
}

/// The employers' sums. Reserved, covered and uncovered posts are sums over the same rows with
/// covered + uncovered = reserved: with one noise for all three, a viewer would subtract it
/// away and read every exact figure. Each sum has its own noise, as wide as a tenth of its
/// largest employer's posts; and no cell of fewer than T employers shows a figure.
#[tokio::test]
async fn the_employers_sums_keep_their_noise() {
    let w = world();
    let q = "from=2025-01-01&to=2025-12-31&by=province";
    let exact = |kpi: &'static str| {
        let w = &w;
        async move { by_key(&rows(&w.state, &w.admin, kpi, q).await, "province") }
    };
    let shown = |kpi: &'static str| {
        let w = &w;
        async move { by_key(&rows(&w.state, &w.viewer, kpi, q).await, "province") }
    };
    let (er, ec, eu) = (
        exact("reserved_posts").await,
        exact("covered_posts").await,
        exact("uncovered_posts").await,
    );
    let (sr, sc, su) = (
        shown("reserved_posts").await,
        shown("covered_posts").await,
        shown("uncovered_posts").await,
    );
    let (mut cells, mut recovered, mut withheld) = (0, 0, 0);
    for (p, r) in &er {
        // Exact figures add up, and the admin sees how many employers each cell holds.
        let (r, c, u) = (
            num(&r["value"]).unwrap(),
            num(&ec[p]["value"]).unwrap(),
            num(&eu[p]["value"]).unwrap(),
        );
        assert_eq!(r, c + u, "{p}");
        let employers = num(&er[p]["employers"]).unwrap();
        let viewer = &sr[p];
        assert!(viewer.get("employers").is_none(), "{viewer}");
        if employers < T as i64 {
            assert_eq!(
                viewer["value"],
                format!("<{T}"),
                "{p}: {employers} employers"
            );
            withheld += 1;
            continue;
        }
        let (Some(vr), Some(vc), Some(vu)) = (
            num(&viewer["value"]),
            num(&sc[p]["value"]),
            num(&su[p]["value"]),
        ) else {
            continue;
        };
        cells += 1;
        // The attack: with one noise d for the three, vc + vu - vr = d, so 2 vr - vc - vu is
        // the exact reserved figure; with a noise of its own each, it is right by chance only.
        recovered += i64::from(2 * vr - vc - vu == r);
    }
    assert!(cells > 20, "{cells} cells compared");
    assert!(withheld > 0, "no cell of few employers in {cells}");
    assert!(
        recovered * 2 <= cells,
        "exact reserved posts recovered in {recovered} of {cells} cells"
    );
}

/// Observed/expected by region below admin: the expected placements, a sum of fitted chances,
/// would give one person's chance (hence their attributes) as the difference of two periods or
/// territories. Shown, they are whole numbers within the noise of the exact sums; O/E carries
/// no more than the shown figures; a CPI of fewer than T entries shows nothing.
#[tokio::test]
async fn the_expected_placements_keep_their_noise() {
    let w = world();
    let q = "from=2024-01-01&to=2025-03-31&by=region";
    let exact = by_key(
        &rows(&w.state, &w.admin, "placement_oe_180", q).await,
        "region",
    );
    let shown = by_key(
        &rows(&w.state, &w.viewer, "placement_oe_180", q).await,
        "region",
    );
    assert!(exact.len() >= 10, "{} regions", exact.len());
    let (mut cells, mut moved, mut withheld) = (0, 0, 0);
    for (region, e) in &exact {
        let v = &shown[region];
        let cohort = num(&e["cohort"]).unwrap();
        if cohort < T as i64 {
            assert_eq!(v["cohort"], format!("<{T}"), "{region}: {v}");
            for c in ["value", "expected", "lower", "upper"] {
                assert!(
                    v[c].is_null(),
                    "{region}: {c} shown for {cohort} entries: {v}"
                );
            }
            withheld += 1;
            continue;
        }
        cells += 1;
        let (e_exact, e_shown) = (e["expected"].as_f64().unwrap(), &v["expected"]);
        assert!(
            e_shown.is_u64(),
            "{region}: expected placements shown exactly: {v}"
        );
        let e_shown = e_shown.as_f64().unwrap();
        assert!(
            (e_shown - e_exact).abs() <= 3.5,
            "{region}: {e_shown} vs {e_exact}"
        );
        if (e_shown - e_exact).abs() > 0.5 {
            moved += 1;
        }
        // O/E is a perturbed count over the shown expected placements: nothing finer.
        let o = v["value"].as_f64().unwrap() * e_shown;
        assert!((o - o.round()).abs() < 1e-6, "{region}: O/E x E = {o}");
    }
    assert!(
        cells >= 5 && moved >= 1,
        "{cells} cells, {moved} moved, {withheld} withheld"
    );
}
