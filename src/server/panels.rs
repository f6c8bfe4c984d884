//! A panel's figures: each panel of a page computed through the result cache (a few at a time),
//! tiles with the period they compare with, and the ingest figures of the Qualità dati page
//! shaped like KPI results. What the figures look like is [`super::layout`]'s business.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};

use super::dashboards::{Chart, Figure, Order, Page, Panel, Source};
use super::filters::Filters;
use super::{AppError, AppState, italian_error};
use crate::auth::Principal;
use crate::query::{Kind, KpiResult};
use crate::row::{Cell, Row, col};
use crate::vocabulary::rule_label;

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
    pub rows: Vec<Row>,
    /// Whether `value` is a ratio (shown as a percentage).
    pub percent: bool,
}

pub fn table_of(panel: &Panel, result: &KpiResult) -> Table {
    let mut rows: Vec<Row> = result
        .rows
        .iter()
        .filter(|r| {
            panel
                .keep
                .iter()
                .all(|(k, v)| r.text(k) == Some(v.as_str()))
        })
        .cloned()
        .collect();
    if panel.order == Order::ValueDesc {
        rows.sort_by(|a, b| {
            let v = |r: &Row| r.f64(col::VALUE).unwrap_or(f64::MIN);
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
            // The tile's two periods at once: the engine tells the period before the query. The
            // second query is checked against the period the first resolved to (they differ only
            // if newer data was published in between, or the parameters did not parse).
            let guess = match expected_period(state, def, f).await {
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

/// The period the engine will resolve the filters to, at the instant `kpi_for` runs them;
/// `None` when they do not parse (the query itself then says why).
async fn expected_period(
    state: &AppState,
    def: &crate::query::KpiDef,
    f: &Filters,
) -> Option<(NaiveDate, NaiveDate)> {
    let mut p = crate::query::Params::parse(def, &f.raw(&[])).ok()?;
    if p.as_of.is_none() {
        p.as_of = Some(state.shown().ok()?.1);
    }
    state.engine().period(&p).await.ok()
}

/// The ingest figures of the Qualità dati page, shaped like KPI results.
pub async fn source_result(
    state: &AppState,
    s: Source,
    f: &Filters,
    who: &Principal,
) -> Result<KpiResult, AppError> {
    let version = state.version().await?;
    let base = |kpi: &str, columns: &[&str], rows: Vec<Row>| KpiResult {
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
    let ledger = state.engine().ledger()?;
    match s {
        Source::Batches => {
            let rows = ledger
                .entries()
                .iter()
                .rev()
                .map(|e| {
                    let mut m = Row::new();
                    m.insert("ingested_at", e.ingested_at.clone());
                    m.insert("file", e.file.clone());
                    m.insert(
                        "status",
                        Cell::from(match e.status {
                            crate::store::BatchStatus::Committed => "acquisito",
                            _ => "rifiutato",
                        }),
                    );
                    m.insert("read", e.read);
                    m.insert("stored", e.stored);
                    m.insert("duplicates", e.duplicates);
                    m.insert("rejected", e.rejected);
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
            let mut rows: Vec<Row> = ledger
                .rejected_by_rule()
                .into_iter()
                .map(|(r, n)| {
                    let mut m = Row::new();
                    // The code beside its Italian words, as every coded column in exports.
                    m.insert("rule_label", rule_label(&r));
                    m.insert("rule", r);
                    m.insert(col::VALUE, n);
                    m
                })
                .collect();
            rows.sort_by_key(|m| std::cmp::Reverse(m.count(col::VALUE).unwrap_or(0)));
            Ok(base(
                "rejected_by_rule",
                &["rule", "rule_label", col::VALUE],
                rows,
            ))
        }
        Source::RejectedByCpi => {
            let mut provinces = crate::list::parse(f.province.as_deref());
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

/// The KPI a panel-export URL names, for the export module.
pub fn panel_at(state: &AppState, slug: &str, n: usize) -> Option<(usize, Panel)> {
    let idx = state.pages().iter().position(|p| p.slug == slug)?;
    let panel = state.pages()[idx].panels.get(n.checked_sub(1)?)?.clone();
    Some((idx, panel))
}
