//! Dashboard pages: HTML with maud (escaped by construction), charts from [`super::charts`].
//! Panels are computed concurrently through the result cache, then the page is rendered in a
//! blocking task because plotters is synchronous.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Rome;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Map, Value};

use super::charts::{self, SurvPoint, fmt_number};
use super::dashboards::{Chart, Figure, Order, Page, Panel, Source};
use super::filters::{self, Filters};
use super::{AppError, AppState};
use crate::auth::Principal;
use crate::query::{Kind, KpiResult, Params, StoreFacts, catalog};
use crate::reference;

const STYLE: &str = include_str!("static/style.css");
const SCRIPT: &str = include_str!("static/app.js");
const ICON: &str = include_str!("static/favicon.svg");

/// A panel's figures, ready to draw.
pub enum PanelData {
    Kpi {
        result: Arc<KpiResult>,
        /// The previous period of the same length, for tiles.
        previous: Option<Arc<KpiResult>>,
    },
    Error(String),
    /// The panel's figure is for administrators only.
    Restricted,
}

/// What a panel's table shows, after the panel's `keep`, `order` and `limit`: the same cells
/// the exports write.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    /// Whether `value` is a ratio (shown as a percentage).
    pub percent: bool,
}

pub fn table_of(panel: &Panel, result: &KpiResult) -> Table {
    let mut rows: Vec<Map<String, Value>> = result
        .rows
        .iter()
        .filter(|r| {
            panel
                .keep
                .iter()
                .all(|(k, v)| r.get(k).and_then(Value::as_str) == Some(v.as_str()))
        })
        .cloned()
        .collect();
    if panel.order == Order::ValueDesc {
        rows.sort_by(|a, b| {
            let v =
                |r: &Map<String, Value>| r.get("value").and_then(Value::as_f64).unwrap_or(f64::MIN);
            v(b).total_cmp(&v(a))
        });
    }
    if let Some(n) = panel.limit {
        rows.truncate(n);
    }
    let percent = matches!(&panel.figure, Figure::Kpi(d) if d.kind == Kind::Rate);
    Table {
        columns: result.columns.clone(),
        rows,
        percent,
    }
}

/// Italian column headers.
pub fn column_label(c: &str) -> &str {
    match c {
        "region" => "Regione",
        "province" => "Provincia",
        "cpi" => "CPI",
        "month" => "Mese",
        "quarter" => "Trimestre",
        "year" => "Anno",
        "gender" => "Genere",
        "age_band" => "Classe di età",
        "category" => "Categoria",
        "list_type" => "Lista",
        "disability_band" => "Percentuale di invalidità",
        "reason" => "Motivo",
        "overdue" => "Attesa",
        "channel" => "Canale",
        "contract_class" => "Contratto",
        "hiring_mode" => "Modalità di assunzione",
        "measure_type" => "Tipo di misura",
        "review_outcome" => "Esito della verifica",
        "to_service" => "Servizio di destinazione",
        "support_type" => "Tipo di intervento",
        "request_type" => "Tipo di richiesta",
        "value" => "Valore",
        "numerator" => "Numeratore",
        "denominator" => "Denominatore",
        "n" => "Casi",
        "day" => "Giorno",
        "at_risk" => "A rischio",
        "events" => "Assunzioni",
        "censored" => "Censurati",
        "survival" => "Non ancora assunti",
        "lower" => "Limite inferiore 95%",
        "upper" => "Limite superiore 95%",
        "median_days" => "Giorni mediani",
        "stage" => "Tappa",
        "persons" => "Persone",
        "share_of_accepted" => "Quota sugli accolti",
        "batch_id" => "Lotto",
        "file" => "File",
        "ingested_at" => "Acquisito il",
        "status" => "Esito",
        "read" => "Righe lette",
        "stored" => "Memorizzate",
        "duplicates" => "Duplicate",
        "rejected" => "Scartate",
        "rule" => "Regola",
        other => other,
    }
}

const MONTHS: [&str; 12] = [
    "gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic",
];

/// A breakdown value as people read it: months and dates in Italian, codes in words.
pub fn value_label(column: &str, v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Null => return "n.d.".into(),
        other => return other.to_string(),
    };
    match (column, s) {
        ("month", m) => m
            .split_once('-')
            .and_then(|(y, mm)| Some((y, mm.parse::<usize>().ok()?)))
            .and_then(|(y, mm)| Some(format!("{} {y}", MONTHS.get(mm.checked_sub(1)?)?)))
            .unwrap_or_else(|| m.to_owned()),
        ("stage", "accepted") => "Iscrizione accolta".into(),
        ("stage", "basic_orientation") => "Orientamento di base".into(),
        ("stage", "pact_signed") => "Patto sottoscritto".into(),
        ("stage", "measure_or_proposal") => "Misura o candidatura".into(),
        ("stage", "hired") => "Assunzione".into(),
        ("overdue", "yes") => "oltre 30 giorni".into(),
        ("overdue", "no") => "entro 30 giorni".into(),
        ("gender", "F") => "Donne".into(),
        ("gender", "M") => "Uomini".into(),
        ("province", p) => reference::province(p)
            .map(|x| format!("{} ({p})", x.name))
            .unwrap_or_else(|| p.to_owned()),
        ("ingested_at", t) => DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Rome).format("%d/%m/%Y %H:%M").to_string())
            .unwrap_or_else(|_| t.to_owned()),
        (_, "unknown") => "n.d.".into(),
        (_, s) => s.to_owned(),
    }
}

/// A cell as shown: Italian numbers, percentages for ratios.
fn cell(column: &str, v: &Value, percent: bool) -> String {
    let ratio = matches!(column, "survival" | "lower" | "upper" | "share_of_accepted")
        || (percent && column == "value");
    match v {
        Value::Number(n) => fmt_number(n.as_f64().unwrap_or(f64::NAN), ratio),
        Value::Null => "–".into(),
        other => value_label(column, other),
    }
}

/// An Italian date: 31/12/2025.
pub fn it_date(iso: &str) -> String {
    iso.parse::<NaiveDate>()
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| iso.to_owned())
}

pub(super) fn it_instant(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Rome).format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// A user's error in Italian, naming what to fix.
pub fn italian_error(e: &AppError) -> String {
    match e {
        AppError::BadParam { param, message, .. } => {
            let what = match param.as_str() {
                "from" if message.contains("after") => {
                    return "La data di inizio è successiva alla data di fine: il periodo deve andare avanti nel tempo.".into();
                }
                "from" => "La data di inizio non è valida: usare il formato AAAA-MM-GG.",
                "to" => "La data di fine non è valida: usare il formato AAAA-MM-GG.",
                "region" => "Regione sconosciuta: scegliere una regione dall'elenco.",
                "province" => "Provincia sconosciuta: usare la sigla, per esempio MI o RM.",
                "cpi" => "Codice CPI non valido.",
                "as_of" => {
                    "Istante di riferimento (as_of) non valido: usare una data AAAA-MM-GG o un istante RFC 3339."
                }
                "by" => "Disaggregazione non prevista per questo indicatore.",
                _ => "Parametro sconosciuto nell'indirizzo.",
            };
            format!("{what} ({message})")
        }
        AppError::NotFound(_) => "Pagina non trovata.".into(),
        AppError::Forbidden(_) => "Riservato agli amministratori.".into(),
        AppError::Unavailable(_) => {
            "Non ci sono ancora dati: acquisire prima gli eventi (mirato ingest).".into()
        }
        AppError::Internal(_) => {
            "Il calcolo non è riuscito; il registro del server riporta il dettaglio.".into()
        }
    }
}

/// Validates a page's filters once, before any panel runs.
pub fn check_filters(f: &Filters) -> Result<(), AppError> {
    let def = catalog().first().expect("the catalogue is not empty");
    let p = Params::parse(def, &f.raw(&[]))?;
    if let (Some(a), Some(b)) = (p.from, p.to)
        && a > b
    {
        return Err(AppError::bad(
            "from",
            format!("from ({a}) is after to ({b}): the period must run forward"),
            vec![],
        ));
    }
    Ok(())
}

/// How many panels of one page compute at once.
const PANELS_IN_FLIGHT: usize = 4;

/// Computes every panel of a page concurrently (each through the cache).
pub async fn compute(
    state: &AppState,
    page: &Page,
    f: &Filters,
    who: &Principal,
) -> Vec<PanelData> {
    // A few at a time: on two cores more parallel queries only add memory, not speed. A new
    // panel starts as soon as any one ends (a slow panel holds up none that could start).
    use futures::StreamExt;
    let panels: Vec<_> = page
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| Box::pin(async move { (i, panel_data(state, p, f, who).await) }))
        .collect();
    let mut done: Vec<(usize, PanelData)> = futures::stream::iter(panels)
        .buffer_unordered(PANELS_IN_FLIGHT)
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, d)| d).collect()
}

pub async fn panel_data(
    state: &AppState,
    panel: &Panel,
    f: &Filters,
    who: &Principal,
) -> PanelData {
    match panel_result(state, panel, f, who).await {
        Ok(d) => d,
        Err(e) => PanelData::Error(italian_error(&e)),
    }
}

async fn panel_result(
    state: &AppState,
    panel: &Panel,
    f: &Filters,
    who: &Principal,
) -> Result<PanelData, AppError> {
    match &panel.figure {
        Figure::Kpi(def) if panel.chart == Chart::Tile => {
            // The tile's two periods at once when the period is known before the query (it
            // usually is: the filters, or the defaults from the latest event date); the second
            // query is checked against the period the first resolved to.
            let guess = match expected_period(state, f).await {
                Some((a, b)) => previous_period(a, b),
                None => None,
            };
            let (result, early) = match guess {
                Some((a, b)) => {
                    let pf = f.with_period(a, b);
                    let (r, p) = futures::future::join(
                        state.kpi_for(who, def, &f.raw(&panel.by)),
                        state.kpi_for(who, def, &pf.raw(&[])),
                    )
                    .await;
                    (r?.0, Some((a, b, p?.0)))
                }
                None => (state.kpi_for(who, def, &f.raw(&panel.by)).await?.0, None),
            };
            let resolved = (
                result.params.from.parse().ok(),
                result.params.to.parse().ok(),
            );
            let wanted = match resolved {
                (Some(a), Some(b)) => previous_period(a, b),
                _ => None,
            };
            let previous = match (early, wanted) {
                (Some((a, b, p)), Some(w)) if (a, b) == w => Some(p),
                (_, Some((a, b))) => Some(
                    state
                        .kpi_for(who, def, &f.with_period(a, b).raw(&[]))
                        .await?
                        .0,
                ),
                (_, None) => None,
            };
            Ok(PanelData::Kpi { result, previous })
        }
        Figure::Kpi(def) => {
            let (result, _, _) = state.kpi_for(who, def, &f.raw(&panel.by)).await?;
            Ok(PanelData::Kpi {
                result,
                previous: None,
            })
        }
        // Ingest batches and rejected rows are about the files sent, not about the figures:
        // administrators only (the rows by CPI would also count people too few to show).
        Figure::Source(Source::Batches | Source::RejectedByRule | Source::RejectedByCpi)
            if !who.is_admin() =>
        {
            Ok(PanelData::Restricted)
        }
        Figure::Source(s) => Ok(PanelData::Kpi {
            result: Arc::new(source_result(state, *s, f, who).await?),
            previous: None,
        }),
    }
}

/// The period a tile compares with: within one calendar year, the same dates a year earlier
/// (so that seasons compare with themselves); otherwise the period of the same length just
/// before.
fn previous_period(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    use chrono::{Datelike, Months};
    if from.year() == to.year() {
        return Some((
            from.checked_sub_months(Months::new(12))?,
            to.checked_sub_months(Months::new(12))?,
        ));
    }
    let prev_to = from.pred_opt()?;
    Some((prev_to - (to - from), prev_to))
}

/// The period a KPI will resolve the filters to, when it can be told in advance: both dates
/// given, or (without `as_of`) the engine's defaults from the latest event date.
async fn expected_period(state: &AppState, f: &Filters) -> Option<(NaiveDate, NaiveDate)> {
    use chrono::Datelike;
    let day = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<NaiveDate>().ok());
    let (from, to) = (day(&f.from), day(&f.to));
    if let (Some(a), Some(b)) = (from, to) {
        return Some((a, b));
    }
    if f.as_of.is_some() || f.from.is_some() && from.is_none() || f.to.is_some() && to.is_none() {
        return None;
    }
    let to = match to {
        Some(t) => t,
        None => state.facts().await.ok()?.latest?,
    };
    let from = from.or_else(|| NaiveDate::from_ymd_opt(to.year(), 1, 1))?;
    (from <= to).then_some((from, to))
}

/// The ingest figures of the Qualità dati page, shaped like KPI results.
pub async fn source_result(
    state: &AppState,
    s: Source,
    f: &Filters,
    who: &Principal,
) -> Result<KpiResult, AppError> {
    let layout = state.engine().layout();
    let version = state.version().await?;
    let base = |kpi: &str, columns: &[&str], rows: Vec<Map<String, Value>>| KpiResult {
        kpi: kpi.to_owned(),
        params: crate::query::Resolved {
            from: String::new(),
            to: String::new(),
            by: vec![],
            region: vec![],
            province: vec![],
            cpi: vec![],
            as_of: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            data_version: version.clone(),
            scope: None,
        },
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
        median_days: None,
        keys: Vec::new(),
        life: Vec::new(),
        protection: None,
    };
    let ledger = layout
        .read_ledger()
        .map_err(|e| AppError::from(crate::query::QueryError::from(e)))?;
    match s {
        Source::Batches => {
            let rows = ledger
                .iter()
                .rev()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("ingested_at".into(), Value::from(e.ingested_at.clone()));
                    m.insert("file".into(), Value::from(e.file.clone()));
                    m.insert(
                        "status".into(),
                        Value::from(match e.status {
                            crate::store::BatchStatus::Committed => "acquisito",
                            _ => "rifiutato",
                        }),
                    );
                    m.insert("read".into(), Value::from(e.read));
                    m.insert("stored".into(), Value::from(e.stored));
                    m.insert("duplicates".into(), Value::from(e.duplicates));
                    m.insert("rejected".into(), Value::from(e.rejected));
                    m
                })
                .collect();
            Ok(base(
                "batches",
                &[
                    "ingested_at",
                    "file",
                    "status",
                    "read",
                    "stored",
                    "duplicates",
                    "rejected",
                ],
                rows,
            ))
        }
        Source::RejectedByRule => {
            let mut by_rule: std::collections::BTreeMap<String, u64> = Default::default();
            for e in &ledger {
                for (r, n) in &e.rejected_by_rule {
                    *by_rule.entry(r.clone()).or_default() += n;
                }
            }
            let mut rows: Vec<Map<String, Value>> = by_rule
                .into_iter()
                .map(|(r, n)| {
                    let mut m = Map::new();
                    m.insert("rule".into(), Value::from(r));
                    m.insert("value".into(), Value::from(n));
                    m
                })
                .collect();
            rows.sort_by_key(|m| std::cmp::Reverse(m["value"].as_u64().unwrap_or(0)));
            Ok(base("rejected_by_rule", &["rule", "value"], rows))
        }
        Source::RejectedByCpi => {
            let mut provinces: Vec<String> = f
                .province
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            // A manager sees the rows of their provinces only (a CPI-only scope: none).
            if let Some(t) = who.territory() {
                provinces.retain(|p| t.provinces.contains(p));
                if provinces.is_empty() {
                    provinces = t.provinces.clone();
                }
                if provinces.is_empty() {
                    provinces = vec!["--".to_owned()];
                }
            }
            Ok(state.engine().rejected_by_cpi(&provinces).await?)
        }
    }
}

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
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(idx) = state.pages().iter().position(|p| p.slug == slug) else {
        return error_page(&state, StatusCode::NOT_FOUND, "Pagina non trovata.", None);
    };
    let query = filters::parse_query(q.as_deref());
    let f = Filters::from_query(&query);
    if let Err(e) = filters::check_names(&query, &Filters::NAMES).and_then(|_| check_filters(&f)) {
        return error_page(&state, e.status(), &italian_error(&e), Some(idx));
    }
    let version = match state.version().await {
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
        .get_or_compute(&tag, || render_fresh(&state, idx, f, &who))
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
        .get_or_compute(&tag, || render_fresh(state, idx, f, who))
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

/// `current` of the evaluation page in [`layout`]'s navigation (after the dashboard pages).
pub(super) const EVALUATION_NAV: usize = usize::MAX;

/// The frame every page shares: head, navigation with the filters carried, footer.
pub(super) fn layout(
    state: &AppState,
    current: Option<usize>,
    f: &Filters,
    title: &str,
    main: Markup,
    admin: bool,
) -> Markup {
    let qs = f.query_string();
    html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mirato" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#contenuto" { "Vai al contenuto" }
                header.top {
                    a.brand href={ "/" (qs) } { "mirato" }
                    span.sub { "Collocamento mirato · L. 68/1999" }
                }
                nav aria-label="Pagine" {
                    ul {
                        @for (i, p) in state.pages().iter().enumerate() {
                            li {
                                @if Some(i) == current {
                                    a href={ "/p/" (p.slug) (qs) } aria-current="page" { (p.title) }
                                } @else {
                                    a href={ "/p/" (p.slug) (qs) } { (p.title) }
                                }
                            }
                        }
                        li {
                            a href={ "/valutazione" (qs) } aria-current=[(current == Some(EVALUATION_NAV)).then_some("page")] { "Valutazione" }
                        }
                    }
                }
                main id="contenuto" { (main) }
                footer {
                    "mirato · dati pseudonimizzati · " a href="/api/openapi.json" { "API" }
                    " · " a href="/logout" { "Il mio accesso" }
                    @if admin {
                        " · " a href="/jobs" { "Job" } " · " a href="/admin/audit" { "Registro accessi" }
                    }
                }
            }
        }
    }
}

fn render_page(
    state: &AppState,
    idx: usize,
    f: &Filters,
    facts: &StoreFacts,
    data: &[PanelData],
    who: &Principal,
) -> Markup {
    let page = &state.pages()[idx];
    let resolved = data.iter().find_map(|d| match d {
        PanelData::Kpi { result, .. } if !result.params.from.is_empty() => Some(&result.params),
        _ => None,
    });
    let (from, to) = resolved
        .map(|p| (p.from.clone(), p.to.clone()))
        .unwrap_or_else(|| {
            (
                f.from.clone().unwrap_or_default(),
                f.to.clone().unwrap_or_default(),
            )
        });
    let base = format!("/p/{}", page.slug);
    let tiles: Vec<(usize, &Panel)> = page
        .panels
        .iter()
        .enumerate()
        .filter(|(_, p)| p.chart == Chart::Tile)
        .collect();
    let others: Vec<(usize, &Panel)> = page
        .panels
        .iter()
        .enumerate()
        .filter(|(_, p)| p.chart != Chart::Tile)
        .collect();
    let main = html! {
        h1 { (page.title) }
        @if !page.description.is_empty() { p.lead { (page.description) } }
        (filter_form(&base, f, facts, &from, &to, who, &[]))
        @if let Some(t) = who.territory() {
            p.scope { "Dati limitati al territorio di competenza: " (who.scope.describe()) " (" (t.provinces.len()) " province, " (t.cpis.len()) " CPI)." }
        }
        @if who.suppressed() {
            p.meta.protection { (crate::auth::disclosure::describe(&crate::auth::disclosure::protection(state.auth().threshold()))) " Gli amministratori vedono i valori esatti." }
        } @else {
            p.meta.protection { "Valori esatti (amministratore): non pubblicarli senza la protezione delle celle." }
        }
        p.meta {
            @if !from.is_empty() { "Periodo: " strong { (it_date(&from)) " – " (it_date(&to)) } " · " }
            @if let Some(p) = resolved {
                "Dati aggiornati al " (it_instant(&p.as_of)) " · versione dei dati " code { (p.data_version) }
            }
        }
        @if !tiles.is_empty() {
            section.tiles aria-label="Indicatori principali" {
                @for (i, p) in &tiles { (panel_html(page, *i, p, &data[*i], f)) }
            }
        }
        section.panels {
            @for (i, p) in &others { (panel_html(page, *i, p, &data[*i], f)) }
        }
    };
    layout(state, Some(idx), f, &page.title, main, who.is_admin())
}

/// The period and territory form; `extra` are other parameters of the page that the form keeps.
pub(super) fn filter_form(
    base: &str,
    f: &Filters,
    facts: &StoreFacts,
    from: &str,
    to: &str,
    who: &Principal,
    extra: &[(&str, String)],
) -> Markup {
    // A manager is offered only their own territory.
    let scope = who.territory();
    let cpi_scope = scope.as_ref().is_some_and(|t| !t.cpis.is_empty());
    let in_scope = |sigla: &str, cpi: Option<&str>| {
        scope.as_ref().is_none_or(|t| {
            t.provinces.iter().any(|p| p == sigla)
                || cpi.is_some_and(|c| t.cpis.iter().any(|x| x == c))
        })
    };
    let extra_qs: String = extra
        .iter()
        .map(|(k, v)| {
            format!(
                "&{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair(k, v)
                    .finish()
            )
        })
        .collect();
    let region_sel = f.region.clone().unwrap_or_default();
    let province_sel = f.province.clone().unwrap_or_default();
    let cpi_sel = f.cpi.clone().unwrap_or_default();
    let selected_region = reference::provinces()
        .iter()
        .find(|p| p.region_name == region_sel || p.region_code == region_sel)
        .map(|p| p.region_name);
    let mut regions: Vec<(&str, &str)> = reference::provinces()
        .iter()
        .filter(|p| cpi_scope || in_scope(p.sigla, None))
        .map(|p| (p.region_code, p.region_name))
        .collect();
    regions.sort_by(|a, b| a.1.cmp(b.1));
    regions.dedup();
    let mut provinces: Vec<_> = reference::provinces()
        .iter()
        .filter(|p| cpi_scope || in_scope(p.sigla, None))
        .collect();
    let cpis: Vec<&(String, String)> = facts
        .cpis
        .iter()
        .filter(|(p, c)| in_scope(p, Some(c)))
        .collect();
    provinces.sort_by(|a, b| a.name.cmp(b.name));
    let region_of = |sigla: &str| {
        reference::province(sigla)
            .map(|p| p.region_name)
            .unwrap_or("")
    };
    html! {
        form.filters method="get" action=(base) {
            fieldset {
                legend { "Periodo" }
                label { "Dal " input type="date" name="from" value=(from); }
                label { "Al " input type="date" name="to" value=(to); }
            }
            fieldset {
                legend { "Territorio" }
                label { "Regione "
                    select name="region" id="f-region" {
                        option value="" { "Italia (tutte)" }
                        @for (_, name) in &regions {
                            option value=(name) selected[Some(*name) == selected_region] { (name) }
                        }
                    }
                }
                label { "Provincia "
                    select name="province" id="f-province" {
                        option value="" { "Tutte" }
                        @for p in &provinces {
                            option value=(p.sigla) data-region=(p.region_name)
                                selected[p.sigla == province_sel]
                                hidden[selected_region.is_some_and(|r| r != p.region_name)] { (p.name) " (" (p.sigla) ")" }
                        }
                    }
                }
                label { "CPI "
                    select name="cpi" id="f-cpi" {
                        option value="" { "Tutti" }
                        @for (prov, cpi) in cpis.iter().map(|x| (&x.0, &x.1)) {
                            option value=(cpi) data-province=(prov) data-region=(region_of(prov))
                                selected[*cpi == cpi_sel]
                                hidden[(!province_sel.is_empty() && *prov != province_sel) || selected_region.is_some_and(|r| r != region_of(prov))] { (cpi) " (" (prov) ")" }
                        }
                    }
                }
            }
            @if let Some(a) = &f.as_of { input type="hidden" name="as_of" value=(a); }
            @for (k, v) in extra { input type="hidden" name=(k) value=(v); }
            div.actions {
                button type="submit" { "Applica" }
                a href=(base) { "Azzera i filtri" }
            }
        }
        @if let Some(latest) = facts.latest {
            p.presets {
                "Periodi: "
                @for (label, a, b) in filters::presets(latest) {
                    a href={ (base) (f.with_period(a, b).query_string()) (extra_qs) } { (label) } " "
                }
            }
        }
    }
}

fn panel_html(page: &Page, idx: usize, panel: &Panel, data: &PanelData, f: &Filters) -> Markup {
    let id = format!("panel-{}", idx + 1);
    let qs = f.query_string();
    let export = |ext: &str| format!("/export/{}/{}.{ext}{qs}", page.slug, idx + 1);
    let class = if panel.chart == Chart::Tile {
        "panel tile"
    } else {
        "panel"
    };
    html! {
        article class=(class) id=(id) data-chart=(format!("{:?}", panel.chart).to_lowercase()) aria-labelledby={ (id) "-h" } {
            h2 id={ (id) "-h" } { (panel.title) }
            p.explain { (panel.explain) }
            @match data {
                PanelData::Error(msg) => { p.error role="alert" { (msg) } }
                PanelData::Restricted => { p.empty { "Riservato agli amministratori." } }
                PanelData::Kpi { result, previous } => {
                    @let table = table_of(panel, result);
                    @if panel.chart == Chart::Tile {
                        (tile_html(result, previous.as_deref(), table.percent))
                        details { summary { "Tabella" } (table_html(&table)) }
                    } @else if panel.chart == Chart::Table {
                        (table_html(&table))
                    } @else {
                        @if table.rows.is_empty() {
                            p.empty { "Nessun dato per il periodo e il territorio scelti." }
                        } @else {
                            (PreEscaped(chart_svg(&id, panel, &table)))
                        }
                        details { summary { "Tabella dei dati" } (table_html(&table)) }
                    }
                    @if result.median_days.is_some() && panel.by.is_empty() {
                        p.median { "Giorni mediani all'inserimento: " strong { (cell("median_days", result.median_days.as_ref().unwrap_or(&Value::Null), false)) } }
                    }
                }
            }
            p.exports {
                "Scarica: "
                a href=(export("csv")) download { "CSV" } " · "
                a href=(export("xlsx")) download { "XLSX" } " · "
                a href=(export("json")) download { "JSON" }
            }
        }
    }
}

fn tile_html(r: &KpiResult, prev: Option<&KpiResult>, percent: bool) -> Markup {
    let value = |r: &KpiResult| {
        r.rows
            .first()
            .and_then(|m| m.get("value"))
            .and_then(Value::as_f64)
    };
    let now = value(r);
    let before = prev.and_then(value);
    let change = match (now, before) {
        (Some(a), Some(b)) if percent => Some(format!(
            "{}{} punti percentuali",
            if a >= b { "+" } else { "" },
            charts::fmt_decimal((a - b) * 100.0, 1)
        )),
        (Some(a), Some(b)) if b != 0.0 => Some(format!(
            "{}{}",
            if a >= b { "+" } else { "" },
            charts::fmt_number((a - b) / b, true)
        )),
        _ => None,
    };
    let detail = r.rows.first().and_then(|m| {
        m.get("denominator")
            .and_then(Value::as_f64)
            .map(|d| format!("su {}", fmt_number(d, false)))
            .or_else(|| {
                m.get("n")
                    .and_then(Value::as_f64)
                    .map(|n| format!("{} casi", fmt_number(n, false)))
            })
    });
    let shown = match r.rows.first().and_then(|m| m.get("value")) {
        Some(Value::String(s)) => s.clone(),
        _ => now
            .map(|v| fmt_number(v, percent))
            .unwrap_or_else(|| "–".into()),
    };
    html! {
        p.value { (shown) }
        @if let Some(d) = detail { p.detail { (d) } }
        @if let (Some(c), Some(p)) = (change, prev) {
            p.change { (c) " rispetto al periodo " (it_date(&p.params.from)) " – " (it_date(&p.params.to)) }
        }
    }
}

pub(super) fn table_html(t: &Table) -> Markup {
    html! {
        @if t.rows.is_empty() {
            p.empty { "Nessun dato per il periodo e il territorio scelti." }
        } @else {
            div.table-wrap {
                table.sortable {
                    thead { tr {
                        @for c in &t.columns {
                            th scope="col" { button type="button" class="sort" { (column_label(c)) } }
                        }
                    } }
                    tbody {
                        @for r in &t.rows {
                            tr {
                                @for c in &t.columns {
                                    @let v = r.get(c).unwrap_or(&Value::Null);
                                    @match v {
                                        Value::Number(n) => td.num data-v=(n.to_string()) { (cell(c, v, t.percent)) },
                                        _ => td data-v=(value_label(c, v)) { (cell(c, v, t.percent)) },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn key_label(col: &str, r: &Map<String, Value>) -> String {
    value_label(col, r.get(col).unwrap_or(&Value::Null))
}

/// Distinct values in first-seen order.
fn distinct(labels: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

fn num(r: &Map<String, Value>, c: &str) -> f64 {
    r.get(c).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The panel's SVG, from the same rows as its table.
pub fn chart_svg(id: &str, panel: &Panel, t: &Table) -> String {
    let title = &panel.title;
    let desc = &panel.explain;
    let single = || vec!["Valore".to_owned()];
    match panel.chart {
        Chart::Bar => {
            let (cat_col, val_col) = match &panel.figure {
                Figure::Source(Source::RejectedByRule) => ("rule", "value"),
                Figure::Source(Source::RejectedByCpi) => ("cpi", "value"),
                Figure::Source(Source::Batches) => ("file", "stored"),
                Figure::Kpi(_) => (panel.by[0].as_str(), "value"),
            };
            let cats: Vec<String> = t.rows.iter().map(|r| key_label(cat_col, r)).collect();
            let vals: Vec<f64> = t.rows.iter().map(|r| num(r, val_col)).collect();
            let labels: Vec<String> = t
                .rows
                .iter()
                .map(|r| cell(val_col, r.get(val_col).unwrap_or(&Value::Null), t.percent))
                .collect();
            charts::bars(
                charts::Caption { id, title, desc },
                &cats,
                &single(),
                &[vals],
                t.percent,
                Some(&labels),
            )
        }
        Chart::StackedBar => {
            let (a, b) = (panel.by[0].as_str(), panel.by[1].as_str());
            let cats = distinct(t.rows.iter().map(|r| key_label(a, r)));
            let series = distinct(t.rows.iter().map(|r| key_label(b, r)));
            let mut values = vec![vec![0.0; cats.len()]; series.len()];
            for r in &t.rows {
                let c = cats.iter().position(|x| *x == key_label(a, r));
                let s = series.iter().position(|x| *x == key_label(b, r));
                if let (Some(c), Some(s)) = (c, s) {
                    values[s][c] += num(r, "value");
                }
            }
            charts::bars(
                charts::Caption { id, title, desc },
                &cats,
                &series,
                &values,
                t.percent,
                None,
            )
        }
        Chart::Line => {
            let months = distinct(t.rows.iter().map(|r| key_label("month", r)));
            let series_col = panel.by.get(1).map(String::as_str);
            let series = match series_col {
                Some(c) => distinct(t.rows.iter().map(|r| key_label(c, r))),
                None => vec![title.clone()],
            };
            let mut values = vec![vec![None; months.len()]; series.len()];
            for r in &t.rows {
                let m = months.iter().position(|x| *x == key_label("month", r));
                let s = match series_col {
                    Some(c) => series.iter().position(|x| *x == key_label(c, r)),
                    None => Some(0),
                };
                if let (Some(m), Some(s)) = (m, s) {
                    values[s][m] = r.get("value").and_then(Value::as_f64);
                }
            }
            let series: Vec<(String, Vec<Option<f64>>)> = series.into_iter().zip(values).collect();
            charts::lines(id, title, desc, &months, &series, t.percent)
        }
        Chart::Funnel => {
            let cats: Vec<String> = t.rows.iter().map(|r| key_label("stage", r)).collect();
            let vals: Vec<f64> = t.rows.iter().map(|r| num(r, "persons")).collect();
            let labels: Vec<String> = t
                .rows
                .iter()
                .map(|r| cell("persons", r.get("persons").unwrap_or(&Value::Null), false))
                .collect();
            charts::bars(
                charts::Caption { id, title, desc },
                &cats,
                &single(),
                &[vals],
                false,
                Some(&labels),
            )
        }
        Chart::Survival => {
            let group_col = panel.by.first().map(String::as_str);
            let groups = match group_col {
                Some(c) => distinct(t.rows.iter().map(|r| key_label(c, r))),
                None => vec!["Tutti".to_owned()],
            };
            let curves: Vec<(String, Vec<SurvPoint>)> = groups
                .into_iter()
                .map(|g| {
                    let pts = t
                        .rows
                        .iter()
                        .filter(|r| group_col.is_none_or(|c| key_label(c, r) == g))
                        // Suppressed rows (too few at risk) are not drawn.
                        .filter_map(|r| Some((r, r.get("survival").and_then(Value::as_f64)?)))
                        .map(|(r, survival)| SurvPoint {
                            day: num(r, "day"),
                            survival,
                            lower: r.get("lower").and_then(Value::as_f64),
                            upper: r.get("upper").and_then(Value::as_f64),
                        })
                        .collect();
                    (g, pts)
                })
                .collect();
            charts::survival(id, title, desc, &curves)
        }
        Chart::Tile | Chart::Table => String::new(),
    }
}

/// `GET /static/{file}`: the stylesheet and the script (no inline script: the CSP forbids it).
pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        _ => return AppError::NotFound(format!("no static file '{file}'")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `GET /favicon.ico`: browsers ask for it whatever the page says.
pub async fn favicon() -> Response {
    static_file(Path("favicon.svg".to_owned())).await
}

/// The KPI a panel-export URL names, for the export module.
pub fn panel_at(state: &AppState, slug: &str, n: usize) -> Option<(usize, Panel)> {
    let idx = state.pages().iter().position(|p| p.slug == slug)?;
    let panel = state.pages()[idx].panels.get(n.checked_sub(1)?)?.clone();
    Some((idx, panel))
}
