//! The evaluation page's HTML: the rates by subgroup with their intervals, the curves, the
//! log-rank test and the forms that choose them; numbers in Italian notation.

use maud::{Markup, PreEscaped, html};

use super::super::charts::{SurvPoint, fmt_decimal, fmt_number};
use super::super::filters::Filters;
use super::super::layout;
use super::{DIMS, Evaluation, Group, HORIZONS, Query, key_of};
use crate::auth::{Principal, Role};
use crate::row::{Cell, col};
use crate::vocabulary;

pub(super) fn curve_points(e: &Evaluation) -> Vec<(String, Vec<SurvPoint>)> {
    e.groups
        .iter()
        .filter(|g| g.shown)
        .map(|g| {
            let mut pts = vec![SurvPoint {
                day: 0.0,
                survival: 1.0,
                lower: None,
                upper: None,
            }];
            pts.extend(
                e.curves
                    .rows
                    .iter()
                    .filter(|r| key_of(r, &e.by) == g.group)
                    .filter_map(|r| {
                        Some(SurvPoint {
                            day: r.f64(col::DAY)?,
                            survival: r.f64(col::SURVIVAL)?,
                            lower: r.f64(col::LOWER),
                            upper: r.f64(col::UPPER),
                        })
                    }),
            );
            (g.label.clone(), pts)
        })
        .collect()
}

fn count(v: &Cell) -> String {
    match v {
        Cell::Int(_) | Cell::Float(_) => fmt_number(v.as_f64().unwrap_or(f64::NAN), false),
        Cell::Text(_) | Cell::Below(_) => v.plain(),
        _ => "–".into(),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|x| fmt_number(x, true)).unwrap_or_else(|| "–".into())
}

pub(super) fn render(
    who: &Principal,
    q: &Query,
    facts: &crate::query::StoreFacts,
    e: &Evaluation,
    svg: &str,
    fairness: Option<&crate::query::KpiResult>,
    funnel: &str,
) -> Markup {
    let extra = {
        let mut v = vec![("by", q.extra.by.clone())];
        if let Some(a) = &q.extra.a {
            v.push(("a", a.clone()));
        }
        if let Some(b) = &q.extra.b {
            v.push(("b", b.clone()));
        }
        v
    };
    let qs = q.filters.query_string();
    let join = |more: &str| {
        if qs.is_empty() {
            format!("?{more}")
        } else {
            format!("{qs}&{more}")
        }
    };
    // The cohort file takes no CPI (it would put the CPI back on every row): its links drop it.
    let cohort_qs = Filters {
        cpi: None,
        ..q.filters.clone()
    }
    .query_string();
    let cohort_link = |entry: &str| {
        if cohort_qs.is_empty() {
            format!("/export/cohort.parquet?entry={entry}")
        } else {
            format!("/export/cohort.parquet{cohort_qs}&entry={entry}")
        }
    };
    let by_label = vocabulary::column_label(&e.by);
    let shown: Vec<&Group> = e.groups.iter().filter(|g| g.shown).collect();
    let may_download = matches!(who.role, Role::Evaluator | Role::Admin);
    html! {
        h1 { "Valutazione: esiti per sottogruppo" }
        p.lead {
            "Coorte: le persone il cui primo patto di servizio di un periodo di iscrizione cade nel periodo scelto. "
            "Il tasso di inserimento a N giorni conta chi ha un'assunzione entro N giorni dal patto, tra chi è osservabile per almeno N giorni; "
            "l'intervallo di confidenza al 95% è quello di Wilson. Le curve di Kaplan–Meier tengono conto di chi è ancora in attesa (censura)."
        }
        (layout::filter_form("/valutazione", &q.filters, facts, &e.params.from, &e.params.to, who, &extra))
        form.filters method="get" action="/valutazione" {
            @for (k, v) in filter_pairs(&q.filters) { input type="hidden" name=(k) value=(v); }
            fieldset {
                legend { "Sottogruppi" }
                label { "Confronta per "
                    select name="by" id="f-by" {
                        @for d in DIMS {
                            option value=(d) selected[d == e.by] { (vocabulary::column_label(d)) }
                        }
                    }
                }
            }
            div.actions { button type="submit" { "Mostra" } }
        }
        @if let Some(t) = who.territory() {
            p.scope { "Dati limitati al territorio di competenza: " (who.scope.describe()) " (" (t.provinces.len()) " province, " (t.cpis.len()) " CPI)." }
        }
        @if let Some(t) = e.threshold {
            p.meta.protection { (crate::auth::disclosure::describe(&crate::auth::disclosure::protection(t))) " Le curve sono tavole di sopravvivenza a intervalli di 30 giorni, calcolate sui conteggi perturbati; il test log-rank le confronta. I sottogruppi con meno di " (t) " persone non entrano in curve e test." }
        }
        p.meta {
            "Periodo dei patti: " strong { (vocabulary::it_date(&e.params.from)) " – " (vocabulary::it_date(&e.params.to)) }
            " · Dati aggiornati al " (vocabulary::it_instant(&e.params.as_of)) " · versione dei dati " code { (e.params.data_version) }
        }
        section.panels {
            article.panel.wide id="eval-rates" data-chart="table" aria-labelledby="eval-rates-h" {
                h2 id="eval-rates-h" { "Tassi di inserimento per " (by_label.to_lowercase()) }
                p.explain { "Per ogni sottogruppo e orizzonte: persone con osservazione completa (n), inserite entro il termine, tasso e intervallo di Wilson al 95%." }
                @if e.groups.is_empty() {
                    p.empty { "Nessun dato per il periodo e il territorio scelti." }
                } @else {
                    div.scroll {
                        table.sortable {
                            thead {
                                tr {
                                    th scope="col" { button type="button" class="sort" { (by_label) } }
                                    @for h in HORIZONS {
                                        th scope="col" { button type="button" class="sort" { "n (" (h) " gg)" } }
                                        th scope="col" { button type="button" class="sort" { "Inseriti (" (h) " gg)" } }
                                        th scope="col" { button type="button" class="sort" { "Tasso (" (h) " gg)" } }
                                        th scope="col" { "IC 95% (" (h) " gg)" }
                                    }
                                }
                            }
                            tbody {
                                @for g in &e.groups {
                                    tr {
                                        th scope="row" { (g.label) }
                                        @for h in HORIZONS {
                                            @let r = g.rates.iter().find(|r| r.horizon == h);
                                            td.num { (r.map(|r| count(&r.denominator)).unwrap_or_else(|| "0".into())) }
                                            td.num { (r.map(|r| count(&r.numerator)).unwrap_or_else(|| "0".into())) }
                                            td.num { (pct(r.and_then(|r| r.value.as_f64()))) }
                                            td.num {
                                                @if let Some((lo, hi)) = r.and_then(|r| Some((r.lower?, r.upper?))) {
                                                    (pct(Some(lo))) " – " (pct(Some(hi)))
                                                } @else { "–" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            article.panel id="eval-km" data-chart="survival" aria-labelledby="eval-km-h" {
                h2 id="eval-km-h" { "Tempo all'inserimento per " (by_label.to_lowercase()) }
                p.explain { "Quota di persone non ancora assunte a ogni giorno dal patto, con la banda di confidenza al 95%." }
                @if shown.is_empty() {
                    p.empty { "Nessun dato per il periodo e il territorio scelti." }
                } @else {
                    (PreEscaped(svg))
                }
                div.scroll {
                    table.sortable {
                        thead { tr {
                            th scope="col" { button type="button" class="sort" { (by_label) } }
                            th scope="col" { button type="button" class="sort" { "Persone" } }
                            th scope="col" { button type="button" class="sort" { "Assunzioni" } }
                            th scope="col" { button type="button" class="sort" { "Giorni mediani" } }
                        } }
                        tbody {
                            @for g in &e.groups {
                                tr {
                                    th scope="row" { (g.label) }
                                    td.num { (count(&g.persons)) }
                                    td.num { (count(&g.placements)) }
                                    td.num { @if let Some(m) = g.median_days.as_f64() { (fmt_number(m, false)) } @else { "–" } }
                                }
                            }
                        }
                    }
                }
            }
            article.panel.wide id="eval-oe" data-chart="funnelplot" aria-labelledby="eval-oe-h" {
                h2 id="eval-oe-h" { "Province a confronto, a parità di profilo delle persone" }
                p.explain {
                    "Inserimenti entro 180 giorni dal patto osservati, divisi per quelli attesi dal profilo delle persone di ogni provincia "
                    "(età, genere, categoria, lista, invalidità, NASpI, anno; regressione logistica sull'intera coorte nazionale). "
                    "Le curve sono i limiti entro cui una provincia che inserisce come atteso cade 95 e 998 volte su 1000."
                }
                @match fairness {
                    None => { p.error role="alert" { "Il confronto non è disponibile in questo momento." } }
                    Some(r) if r.rows.is_empty() => { p.empty { "Nessuna persona con 180 giorni di osservazione dopo il patto nel periodo scelto." } }
                    Some(r) => {
                        (PreEscaped(funnel))
                        (layout::funnel_notes("province", &r.rows))
                        details { summary { "Tabella dei dati" } (layout::table_html(&crate::server::panels::Table {
                            columns: r.columns.clone(),
                            rows: r.rows.clone(),
                            percent: false,
                        })) }
                    }
                }
            }
            article.panel id="eval-logrank" data-chart="table" aria-labelledby="eval-logrank-h" {
                h2 id="eval-logrank-h" { "Test log-rank tra due sottogruppi" }
                p.explain { "Verifica se le curve di due sottogruppi differiscono più di quanto il caso spiegherebbe (χ² con 1 grado di libertà)." }
                form.filters method="get" action="/valutazione" {
                    @for (k, v) in filter_pairs(&q.filters) { input type="hidden" name=(k) value=(v); }
                    input type="hidden" name="by" value=(e.by);
                    label { "Gruppo A "
                        select name="a" id="f-a" {
                            @for g in &shown { option value=(g.group) selected[g.group == e.log_rank.a] { (g.label) } }
                        }
                    }
                    label { "Gruppo B "
                        select name="b" id="f-b" {
                            @for g in &shown { option value=(g.group) selected[g.group == e.log_rank.b] { (g.label) } }
                        }
                    }
                    div.actions { button type="submit" { "Confronta" } }
                }
                @if let Some(note) = &e.log_rank.note {
                    p.empty { (note) }
                }
                @if let Some(t) = &e.log_rank.test {
                    @let label = |k: &str| e.groups.iter().find(|g| g.group == k).map(|g| g.label.clone()).unwrap_or_default();
                    table {
                        thead { tr {
                            th scope="col" { "Gruppo" }
                            th scope="col" { "Persone" }
                            th scope="col" { "Assunzioni osservate" }
                            th scope="col" { "Assunzioni attese" }
                        } }
                        tbody {
                            @for (i, k) in [&e.log_rank.a, &e.log_rank.b].into_iter().enumerate() {
                                tr {
                                    th scope="row" { (label(k)) }
                                    td.num { (fmt_number(t.n[i] as f64, false)) }
                                    td.num { (fmt_number(t.observed[i] as f64, false)) }
                                    td.num { (fmt_decimal(t.expected[i], 1)) }
                                }
                            }
                        }
                    }
                    p.result {
                        "χ² = " strong { (fmt_decimal(t.chi2, 3)) } ", gradi di libertà 1, p = " strong { (p_value(t.p_value)) } ". "
                        @if t.p_value < 0.05 {
                            "La differenza tra le due curve è statisticamente significativa al livello del 5%."
                        } @else {
                            "La differenza tra le due curve non è statisticamente significativa al livello del 5%."
                        }
                    }
                }
            }
        }
        p.exports {
            "Scarica: "
            a href={ "/api/evaluation" (join(&format!("by={}", e.by))) } { "JSON" }
            @if may_download {
                " · " a href=(cohort_link("pact")) download { "file di coorte per patto (Parquet)" }
                " · " a href=(cohort_link("registration")) download { "file di coorte per iscrizione (Parquet)" }
            }
        }
        @if !may_download {
            p.meta { "Il file di coorte (dati individuali pseudonimizzati) è riservato ai ruoli evaluator e admin." }
        }
    }
}

fn filter_pairs(f: &Filters) -> Vec<(String, String)> {
    let qs = f.query_string();
    form_urlencoded::parse(qs.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// p-values in Italian notation, small ones as "< 0,001".
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "< 0,001".into()
    } else {
        fmt_decimal(p, 3)
    }
}
