//! The HTML of the pages, with maud (escaped by construction): the frame every page shares, the
//! filter form, and each panel as a tile, a table or a chart with its table. Words and dates come
//! from [`crate::vocabulary`], numbers from [`super::charts`].

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::AppState;
use super::chart_map::{Side, chart_svg, funnel_points};
use super::charts::{self, fmt_number};
use super::dashboards::{Chart, Page, Panel};
use super::filters::{self, Filters};
use super::panels::{PanelData, Table, table_of};
use crate::auth::Principal;
use crate::query::{KpiResult, StoreFacts};
use crate::reference;
use crate::row::{Cell, col};
use crate::vocabulary::{it_date, it_instant, label_column, labelled_header, value_label};

/// A cell as shown: Italian numbers, percentages for ratios.
pub(super) fn cell(column: &str, v: &Cell, percent: bool) -> String {
    let ratio = matches!(
        column,
        col::SURVIVAL | col::LOWER | col::UPPER | col::SHARE_OF_ACCEPTED
    ) || (percent && column == col::VALUE);
    match v {
        Cell::Int(_) | Cell::Float(_) => fmt_number(v.as_f64().unwrap_or(f64::NAN), ratio),
        Cell::Null => "–".into(),
        other => value_label(column, other),
    }
}

/// `current` of the evaluation page in [`layout`]'s navigation (after the dashboard pages).
pub(super) const EVALUATION_NAV: usize = usize::MAX;

/// What every page's `head` holds, the dashboards' and the login's alike.
pub(super) fn head_tags(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · mirato" }
        link rel="stylesheet" href="/static/style.css";
        link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
    }
}

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
                (head_tags(title))
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

pub(super) fn render_page(
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
                            @if panel.chart == Chart::FunnelPlot {
                                (funnel_notes(panel.by.first().map(String::as_str).unwrap_or_default(), &table.rows))
                            }
                        }
                        details { summary { "Tabella dei dati" } (table_html(&table)) }
                    }
                    @if result.median_days.is_some() && panel.by.is_empty() {
                        p.median { "Giorni mediani all'inserimento: " strong { (cell(col::MEDIAN_DAYS, result.median_days.as_ref().unwrap_or(&Cell::Null), false)) } }
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

/// Beside a funnel plot: the territories outside its 95% limits, named, and how many were
/// left out for having too few persons to show.
pub fn funnel_notes(by: &str, rows: &[crate::row::Row]) -> Markup {
    let points = funnel_points(by, rows);
    let left_out = rows.len() - points.len();
    let outside: Vec<_> = points.iter().filter(|(_, s)| *s != Side::Within).collect();
    html! {
        @if outside.is_empty() {
            p.funnel-none { "Nessun territorio fuori dai limiti al 95%: le differenze dall'atteso sono compatibili con il caso." }
        } @else {
            table.funnel-outliers {
                caption { "Territori fuori dai limiti al 95%" }
                thead { tr {
                    th scope="col" { (crate::vocabulary::column_label(by)) }
                    th scope="col" { "Osservati / attesi" }
                    th scope="col" { "Inserimenti attesi" }
                    th scope="col" { "Posizione" }
                } }
                tbody { @for (p, side) in &outside { tr {
                    td { (p.label) }
                    td.num { (charts::fmt_decimal(p.oe, 2)) }
                    td.num { (fmt_number(p.expected, false)) }
                    td { (if *side == Side::Above { "sopra l'atteso" } else { "sotto l'atteso" }) }
                } } }
            }
        }
        @if left_out > 0 {
            p.funnel-left-out {
                (left_out) @if left_out == 1 { " territorio non è rappresentato" } @else { " territori non sono rappresentati" }
                ": troppo poche persone in coorte per mostrarne il dato (dato riservato)."
            }
        }
    }
}

fn tile_html(r: &KpiResult, prev: Option<&KpiResult>, percent: bool) -> Markup {
    let first = |r: &KpiResult| {
        r.rows
            .first()
            .map(|m| m.cell(col::VALUE).clone())
            .unwrap_or_default()
    };
    let now = first(r);
    let change = prev
        .and_then(|p| crate::report::change(&now, &first(p), percent))
        .map(|c| {
            let sign = if c >= 0.0 { "+" } else { "" };
            if percent {
                format!("{sign}{} punti percentuali", charts::fmt_decimal(c, 1))
            } else {
                format!("{sign}{}", charts::fmt_number(c, true))
            }
        });
    let now = now.as_f64();
    let detail = r.rows.first().and_then(|m| {
        m.f64(col::DENOMINATOR)
            .map(|d| format!("su {}", fmt_number(d, false)))
            .or_else(|| {
                m.f64(col::N)
                    .map(|n| format!("{} casi", fmt_number(n, false)))
            })
    });
    // A rate over units that need N days of observation, with none in the period: the period
    // is too recent (KPIS.md v2), not empty. The days it needs, when so.
    let incomplete = crate::query::find(&r.kpi)
        .and_then(|d| d.follow_up)
        .filter(|_| {
            now.is_none() && r.rows.first().and_then(|m| m.i64(col::DENOMINATOR)) == Some(0)
        });
    let detail = match incomplete {
        Some(days) => Some(format!(
            "ogni ingresso richiede {days} giorni di osservazione dopo la sua data"
        )),
        None => detail,
    };
    let shown = match r.rows.first().map(|m| m.cell(col::VALUE)) {
        Some(c @ Cell::Below(_)) => c.plain(),
        _ if incomplete.is_some() => "osservazione incompleta".into(),
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

/// The columns a page shows: a coded column that has its Italian label beside it gives way to
/// the label, whose cell keeps the code as its title.
fn shown_columns(t: &Table) -> impl Iterator<Item = &str> {
    t.columns
        .iter()
        .map(String::as_str)
        .filter(|c| !t.columns.contains(&label_column(c)))
}

pub(super) fn table_html(t: &Table) -> Markup {
    html! {
        @if t.rows.is_empty() {
            p.empty { "Nessun dato per il periodo e il territorio scelti." }
        } @else {
            div.table-wrap {
                table.sortable {
                    thead { tr {
                        @for c in shown_columns(t) {
                            th scope="col" { button type="button" class="sort" { (labelled_header(&t.columns, c)) } }
                        }
                    } }
                    tbody {
                        @for r in &t.rows {
                            tr {
                                @for c in shown_columns(t) {
                                    @let v = r.cell(c);
                                    @let code = c.strip_suffix("_label").and_then(|base| r.text(base));
                                    @match v {
                                        Cell::Int(_) | Cell::Float(_) => td.num data-v=(v.plain()) { (cell(c, v, t.percent)) },
                                        _ => td data-v=(value_label(c, v)) title=[code] { (cell(c, v, t.percent)) },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// KPIS.md v2: a rate whose units need days of observation says so when the period is too
    /// recent to hold any, instead of a bare dash.
    #[test]
    fn a_follow_up_rate_without_units_says_the_observation_is_incomplete() {
        let row = crate::row::Row::from_json(&serde_json::json!(
            {"value": null, "numerator": 0, "denominator": 0}
        ));
        let r = KpiResult {
            kpi: "placement_rate_90".into(),
            rows: vec![row.clone()],
            ..Default::default()
        };
        let html = tile_html(&r, None, true).into_string();
        assert!(html.contains("osservazione incompleta"), "{html}");
        assert!(html.contains("90 giorni di osservazione"), "{html}");
        let r = KpiResult {
            kpi: "acceptance_rate".into(),
            rows: vec![row],
            ..Default::default()
        };
        let html = tile_html(&r, None, true).into_string();
        assert!(!html.contains("osservazione"), "{html}");
    }
}
