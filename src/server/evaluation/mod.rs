//! The evaluators' page (`/valutazione`) and its JSON (`/api/evaluation`): placement rates by
//! subgroup with their n and Wilson 95% intervals, Kaplan–Meier curves by subgroup with their
//! bands, and a log-rank test between two subgroups; plus the cohort file download
//! (`/export/cohort.parquet`, evaluator and admin only).
//!
//! Every figure comes from the KPI engine (placement_rate_N and time_to_placement broken down by
//! the subgroup), so it equals what the dashboards and the API show. Below admin, every figure
//! is perturbed (see `auth::disclosure`): a subgroup's persons and placements, its curve (a
//! life table of 30-day intervals) and the log-rank test, which compares those perturbed curves;
//! a subgroup with fewer persons than the threshold is shown as "<T" and enters no test.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Serialize;

use super::charts;
use super::filters::{self, Checked, Extra, Filters};
use super::layout::{self, EVALUATION_NAV};
use super::{AppError, AppState, ComputesAt, Download};
use crate::auth::{Principal, Role, disclosure};
use crate::query::cells::LifeGroup;
use crate::query::survival::{KmRow, LogRank, log_rank, wilson_interval};
use crate::query::{Entry, KpiResult, Resolved, find};
use crate::row::{Cell, Row, col};
use crate::vocabulary;

mod page;
use page::{curve_points, render};

/// The subgroups an evaluator can compare.
pub const DIMS: [&str; 8] = [
    "gender",
    "age_band",
    "category",
    "list_type",
    "disability_band",
    "education",
    "region",
    "year",
];

const HORIZONS: [u32; 3] = [90, 180, 365];

/// The evaluation's parameters besides the filters: the subgroup and the two compared.
#[derive(Debug, Clone)]
pub struct Subgroups {
    by: String,
    a: Option<String>,
    b: Option<String>,
}

impl Extra for Subgroups {
    const NAMES: &'static [&'static str] = &["by", "a", "b"];

    fn read(q: &BTreeMap<String, String>) -> Result<Self, AppError> {
        let by = filters::value(q, "by").unwrap_or_else(|| "gender".into());
        if !DIMS.contains(&by.as_str()) {
            return Err(AppError::bad(
                "by",
                format!("by '{by}' is not a subgroup; allowed: {}", DIMS.join(", ")),
                DIMS.iter().map(|s| (*s).to_owned()).collect(),
            ));
        }
        Ok(Subgroups {
            by,
            a: filters::value(q, "a"),
            b: filters::value(q, "b"),
        })
    }
}

type Query = Checked<Subgroups>;

/// A placement rate at one horizon: counts as shown (numbers, or "<T" when suppressed) and the
/// Wilson interval when both counts are shown.
#[derive(Debug, Serialize)]
pub struct Rate {
    pub horizon: u32,
    pub numerator: Cell,
    pub denominator: Cell,
    pub value: Cell,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    /// The subgroup's value as the API takes it in `a` and `b`.
    pub group: String,
    pub label: String,
    /// Persons in the survival cohort (pacts in the period), or "<T".
    pub persons: Cell,
    pub placements: Cell,
    pub median_days: Cell,
    pub rates: Vec<Rate>,
    /// Whether the group is shown whole (not under the threshold).
    #[serde(skip)]
    shown: bool,
}

#[derive(Debug, Serialize)]
pub struct LogRankOut {
    pub a: String,
    pub b: String,
    pub test: Option<LogRank>,
    /// Why there is no test, in Italian.
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub by: String,
    pub params: Resolved,
    pub threshold: Option<u64>,
    pub groups: Vec<Group>,
    pub log_rank: LogRankOut,
    #[serde(skip)]
    curves: Arc<KpiResult>,
}

/// A subgroup's key: the breakdown's code as text (a year as `2024`), empty for none.
fn key_of(r: &Row, by: &str) -> String {
    r.cell(by).plain()
}

fn km_rows(rows: &[&Row]) -> Vec<KmRow> {
    let n = |r: &Row, c: &str| r.count(c).unwrap_or(0);
    rows.iter()
        .map(|r| KmRow {
            day: r.i64(col::DAY).unwrap_or(0),
            at_risk: n(r, col::AT_RISK),
            events: n(r, col::EVENTS),
            censored: n(r, col::CENSORED),
            survival: r.f64(col::SURVIVAL).unwrap_or(f64::NAN),
            lower: r.f64(col::LOWER),
            upper: r.f64(col::UPPER),
        })
        .collect()
}

async fn evaluate(state: &AppState, who: &Principal, q: &Query) -> Result<Evaluation, AppError> {
    let raw = q.filters.raw(std::slice::from_ref(&q.extra.by));
    let threshold = who.suppressed().then(|| state.auth().threshold());
    let def = find("time_to_placement").expect("in the catalogue");
    // Unsuppressed for the statistics; what is shown is checked against the threshold below.
    let (full, _, _) = state.kpi_unsuppressed(who, def, &raw).await?;
    let (curves, _, _) = state.kpi_for(who, def, &raw).await?;
    let mut by_group: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in &full.rows {
        by_group.entry(key_of(r, &q.extra.by)).or_default().push(r);
    }
    let mut rates: BTreeMap<String, Vec<Rate>> = BTreeMap::new();
    for h in HORIZONS {
        let def = find(&format!("placement_rate_{h}")).expect("in the catalogue");
        let (r, _, _) = state.kpi_for(who, def, &raw).await?;
        for row in &r.rows {
            let num = row.cell(col::NUMERATOR).clone();
            let den = row.cell(col::DENOMINATOR).clone();
            let ci = match (num.as_count(), den.as_count()) {
                (Some(k), Some(n)) => wilson_interval(k, n),
                _ => None,
            };
            rates
                .entry(key_of(row, &q.extra.by))
                .or_default()
                .push(Rate {
                    horizon: h,
                    numerator: num,
                    denominator: den,
                    value: row.cell(col::VALUE).clone(),
                    lower: ci.map(|c| c.0),
                    upper: ci.map(|c| c.1),
                });
        }
    }
    let mut keys: Vec<String> = by_group.keys().cloned().collect();
    for k in rates.keys() {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys.sort();
    let small = |x: u64| threshold.is_some_and(|t| x > 0 && x < t);
    // Below admin, each group's figures come from its perturbed life table.
    let life: BTreeMap<String, &LifeGroup> = full
        .life
        .iter()
        .map(|g| (key_of(&g.keys, &q.extra.by), g))
        .collect();
    let groups: Vec<Group> = keys
        .into_iter()
        .map(|k| {
            let rows = by_group.get(&k).map(Vec::as_slice).unwrap_or(&[]);
            let (persons, placements, shown) = match threshold {
                Some(t) => match life.get(&k) {
                    Some(g) if g.n >= t => {
                        let (p, placed) = disclosure::group_totals(g, t);
                        (p, placed, true)
                    }
                    Some(g) => (disclosure::shown(g.n, g.ck_n, t), Cell::Null, false),
                    None => (Cell::Int(0), Cell::Null, false),
                },
                None => {
                    // Exact: the curve's first at-risk count and its placements.
                    let n = rows
                        .first()
                        .and_then(|r| r.count(col::AT_RISK))
                        .unwrap_or(0);
                    let placed: u64 = rows.iter().filter_map(|r| r.count(col::EVENTS)).sum();
                    let placements = if n > 0 {
                        Cell::from(placed)
                    } else {
                        Cell::Null
                    };
                    (Cell::from(n), placements, n > 0)
                }
            };
            let median_days = if !shown {
                Cell::Null
            } else {
                let source = if threshold.is_some() {
                    curves
                        .rows
                        .iter()
                        .find(|r| key_of(r, &q.extra.by) == k)
                        .and_then(|r| r.get(col::MEDIAN_DAYS))
                } else {
                    rows.first().and_then(|r| r.get(col::MEDIAN_DAYS))
                };
                source.cloned().unwrap_or_default()
            };
            let label_value = if q.extra.by == "year" {
                k.clone()
            } else if k.is_empty() {
                "n.d.".into()
            } else {
                vocabulary::value_label(&q.extra.by, &Cell::Text(k.clone()))
            };
            let mut rs = rates.remove(&k).unwrap_or_default();
            rs.sort_by_key(|r| r.horizon);
            Group {
                persons,
                placements,
                median_days,
                group: k,
                label: label_value,
                rates: rs,
                shown,
            }
        })
        .collect();
    // The curves the test compares: exact for admins, the perturbed life tables below.
    let test_rows = |g: &str| -> Vec<KmRow> {
        match threshold {
            Some(t) => life
                .get(g)
                .and_then(|lg| disclosure::perturbed_curve(lg, t))
                .map(|c| c.rows)
                .unwrap_or_default(),
            None => km_rows(by_group.get(g).map(Vec::as_slice).unwrap_or(&[])),
        }
    };
    // The test: the two groups asked for, or the first two that can be shown.
    // Groups that can be shown first, so that the default pair is testable when possible.
    let mut order: Vec<&Group> = groups.iter().filter(|g| g.shown).collect();
    order.extend(groups.iter().filter(|g| !g.shown));
    let a = q
        .extra
        .a
        .clone()
        .or_else(|| order.first().map(|g| g.group.clone()));
    let b = q
        .extra
        .b
        .clone()
        .or_else(|| order.get(1).map(|g| g.group.clone()));
    let allowed: Vec<String> = groups.iter().map(|g| g.group.clone()).collect();
    for (param, v) in [("a", &q.extra.a), ("b", &q.extra.b)] {
        if let Some(v) = v
            && !allowed.contains(v)
        {
            return Err(AppError::bad(
                param,
                format!(
                    "{param} '{v}' is not a subgroup of {} in this period; allowed: {}",
                    q.extra.by,
                    allowed.join(", ")
                ),
                allowed.clone(),
            ));
        }
    }
    let log_rank_out = match (a, b) {
        (Some(a), Some(b)) => {
            let ga = groups.iter().find(|g| g.group == a);
            let gb = groups.iter().find(|g| g.group == b);
            let note = if a == b {
                Some("Scegliere due sottogruppi diversi.".to_owned())
            } else if !ga.is_some_and(|g| g.shown) || !gb.is_some_and(|g| g.shown) {
                Some(format!(
                    "Uno dei due sottogruppi ha meno di {} persone: il test non è mostrato.",
                    threshold.unwrap_or(1)
                ))
            } else {
                None
            };
            let test = if note.is_none() {
                log_rank(&test_rows(&a), &test_rows(&b))
            } else {
                None
            };
            // The test prints each group's placements: below the threshold they stay hidden.
            let (test, note) = match test {
                Some(t) if t.observed.iter().any(|&o| small(o)) => (
                    None,
                    Some(format!(
                        "Uno dei due sottogruppi ha meno di {} assunzioni: il test non è mostrato.",
                        threshold.unwrap_or(1)
                    )),
                ),
                other => (other, note),
            };
            let note = note.or_else(|| {
                test.is_none().then(|| {
                    "Nulla da confrontare: nessuna assunzione, o nessuno a rischio nei giorni delle assunzioni in uno dei due sottogruppi.".into()
                })
            });
            LogRankOut { a, b, test, note }
        }
        _ => LogRankOut {
            a: String::new(),
            b: String::new(),
            test: None,
            note: Some("Servono almeno due sottogruppi con dati.".into()),
        },
    };
    Ok(Evaluation {
        by: q.extra.by.clone(),
        params: full.params.clone(),
        threshold,
        groups,
        log_rank: log_rank_out,
        curves,
    })
}

/// `GET /api/evaluation`: the page's figures as JSON.
pub async fn api(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    q: Query,
) -> Result<Response, AppError> {
    let e = evaluate(&state, &who, &q).await?;
    Ok(axum::Json(e).into_response())
}

/// `GET /valutazione`.
pub async fn page(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    q: Result<Query, AppError>,
) -> Response {
    let result = async {
        let q = q?;
        let facts = state.facts().await?;
        let e = evaluate(&state, &who, &q).await?;
        Ok::<_, AppError>((q, facts, e))
    }
    .await;
    // The funnel plot is the page's alone (the JSON has `/api/kpi/placement_oe_180`); without
    // it the rest of the page stands.
    let fairness = match &result {
        Ok((q, _, _)) => {
            let oe = find("placement_oe_180").expect("in the catalogue");
            match state
                .kpi_for(&who, oe, &q.filters.raw(&["province".to_owned()]))
                .await
            {
                Ok((r, _, _)) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "the evaluation page's funnel plot could not be computed");
                    None
                }
            }
        }
        Err(_) => None,
    };
    let (q, facts, e) = match result {
        Ok(x) => x,
        Err(err) => {
            let body = layout::layout(
                &state,
                Some(EVALUATION_NAV),
                &Filters::default(),
                "Errore",
                html! {
                    h1 { "Errore" }
                    p.error role="alert" { (super::italian_error(&err)) }
                    p { a href="/valutazione" { "Torna alla pagina senza filtri" } }
                },
                who.is_admin(),
            );
            return (
                err.status(),
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body.into_string(),
            )
                .into_response();
        }
    };
    // The survival chart is drawn off the async threads (plotters is synchronous).
    let curves = curve_points(&e);
    let by_label = vocabulary::column_label(&e.by).to_owned();
    let points: Vec<charts::FunnelPoint> = fairness
        .as_deref()
        .map(|r| super::chart_map::funnel_points("province", &r.rows))
        .unwrap_or_default()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let (svg, funnel) = tokio::task::spawn_blocking(move || {
        let km = charts::survival(
            "km",
            &format!("Non ancora assunti per giorni dal patto, per {}", by_label.to_lowercase()),
            "Curve di Kaplan–Meier per sottogruppo con bande di confidenza al 95% (Greenwood, log-log).",
            &curves,
        );
        let funnel = charts::funnel_plot(
            "oe",
            "Inserimenti a 180 giorni osservati su attesi, per provincia",
            "Grafico a imbuto: ogni punto è una provincia, in verticale gli inserimenti osservati divisi per gli attesi dal profilo delle persone, in orizzontale gli attesi; le curve sono i limiti di controllo al 95% e al 99,8%.",
            &points,
            &|e, level| crate::query::casemix::control_limits(e, level),
        );
        (km, funnel)
    })
    .await
    .unwrap_or_default();
    let main = render(&who, &q, &facts, &e, &svg, fairness.as_deref(), &funnel);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        layout::layout(
            &state,
            Some(EVALUATION_NAV),
            &q.filters,
            "Valutazione",
            main,
            who.is_admin(),
        )
        .into_string(),
    )
        .into_response()
}

impl Extra for Entry {
    const NAMES: &'static [&'static str] = &["entry"];

    fn read(q: &BTreeMap<String, String>) -> Result<Self, AppError> {
        Ok(crate::cohort::parse_entry(
            q.get("entry").map(String::as_str),
        )?)
    }
}

/// `GET /export/cohort.parquet`: the cohort file, for evaluators and administrators only.
pub async fn cohort_file(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    computes_at: Option<axum::Extension<ComputesAt>>,
    q: Result<Checked<Entry>, AppError>,
) -> Result<Response, AppError> {
    if !matches!(who.role, Role::Evaluator | Role::Admin) {
        return Err(AppError::Forbidden(
            "the cohort file holds person-level records: only the evaluator and admin roles may download it".into(),
        ));
    }
    let Checked {
        filters: f,
        extra: entry,
    } = q?;
    let def = find("time_to_placement").expect("in the catalogue");
    let mut params = crate::query::Params::parse(def, &f.raw(&[]))?;
    params.scope = who.territory();
    let Some(key) = state.key().cloned() else {
        return Err(AppError::Unavailable(
            "this server has no pseudonymisation key: cohort files are not available".into(),
        ));
    };
    // Without `as_of`, the data the pages show (see `AppState::shown_as_of`), or the instant
    // of the same file computing now (see `super::downloads`).
    let asked = params
        .as_of
        .take()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    let request = format!(
        "cohort|{:?}|{}|{}|{:?}",
        who.role,
        who.scope.describe(),
        entry.as_str(),
        params,
    );
    let (at, running) = state
        .downloads()
        .instant(&request, asked, || state.shown_as_of())?;
    if let Some(axum::Extension(c)) = &computes_at {
        c.set(&at);
    }
    params.as_of = Some(crate::query::parse_as_of(&at)?);
    // The same file for the same request, scope and data is computed once.
    let cache_key = format!("{request}|{at}|{}", state.version_at(params.as_of).await?);
    let k = state.auth().threshold();
    let (file, _) = state
        .download_cache()
        .get_or_compute(&cache_key, {
            let state = state.clone();
            move || async move {
                let _running = running;
                let c = state.engine().cohort(&params, entry).await?;
                let name = format!(
                    "mirato-coorte-{}-{}-{}.parquet",
                    entry.as_str(),
                    c.params.from,
                    c.params.to
                );
                let (bytes, written) = tokio::task::spawn_blocking(move || {
                    let prov = crate::cohort::Provenance::for_cohort(&c).with_k(k);
                    let mut buf = Vec::new();
                    crate::cohort::write_parquet(&c, &key, &prov, &mut buf).map(|w| (buf, w))
                })
                .await
                .map_err(|e| {
                    AppError::Internal(format!("the cohort file could not be written: {e}"))
                })?
                .map_err(|e| {
                    tracing::error!(error = %e, "cohort file failed");
                    AppError::Internal("the cohort file could not be written".into())
                })?;
                Ok::<_, AppError>(Download {
                    name,
                    content_type: "application/vnd.apache.parquet",
                    bytes: bytes.into(),
                    anonymity: Some(written.anonymity.summary()),
                })
            }
        })
        .await?;
    Ok(file.response())
}
