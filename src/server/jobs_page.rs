//! `/jobs` (an admin page in Italian) and `/api/jobs` (JSON): each job's schedule, last start,
//! end, duration, outcome, rows, retries and next run.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use chrono_tz::Europe::Rome;
use maud::{DOCTYPE, html};

use super::AppState;
use super::charts::fmt_number;

fn when(t: &Option<String>) -> String {
    t.as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            t.with_timezone(&Rome)
                .format("%d/%m/%Y %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "–".into())
}

pub async fn api(State(state): State<AppState>) -> Response {
    let jobs = state.jobs().map(|j| j.list()).unwrap_or_default();
    axum::Json(serde_json::json!({ "jobs": jobs })).into_response()
}

pub async fn page(
    State(state): State<AppState>,
    csrf: Option<axum::Extension<super::access::Csrf>>,
) -> Response {
    let jobs = state.jobs().map(|j| j.list()).unwrap_or_default();
    // A session (not an API token) gets buttons; their form carries its CSRF token.
    let token = csrf.map(|axum::Extension(super::access::Csrf(t))| t);
    let body = html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Job pianificati · mirato" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                script src="/static/app.js" defer {}
            }
            body {
                header.top { a.brand href="/" { "mirato" } span.sub { "Job pianificati" } }
                main {
                    h1 { "Job pianificati" }
                    p.lead { "Orari in ora di Roma. Un job non si sovrappone a sé stesso; se fallisce viene ritentato con attesa crescente." }
                    @if jobs.is_empty() {
                        p.empty { "Questo processo non esegue job." }
                    } @else {
                        div.table-wrap {
                            table.sortable id="jobs" {
                                thead { tr {
                                    @for h in ["Job", "Descrizione", "Pianificazione", "Ultimo avvio", "Ultima fine", "Durata (ms)", "Esito", "Righe", "Tentativi", "Errore", "Eseguiti / falliti / saltati", "Prossima esecuzione", "Azione"] {
                                        th scope="col" { button type="button" class="sort" { (h) } }
                                    }
                                } }
                                tbody {
                                    @for j in &jobs {
                                        tr data-job=(j.name) {
                                            td { code { (j.name) } }
                                            td { (j.description) }
                                            td { code { (if j.schedule.is_empty() { "–" } else { &j.schedule }) } }
                                            td { (when(&j.stats.last_start.map(|t| t.to_rfc3339()))) }
                                            td { (when(&j.stats.last_end.map(|t| t.to_rfc3339()))) }
                                            td.num data-v=(j.stats.last_duration_ms.unwrap_or(0)) { (j.stats.last_duration_ms.map(|d| fmt_number(d as f64, false)).unwrap_or_else(|| "–".into())) }
                                            td.outcome {
                                                @if j.stats.running { "in corso" }
                                                @else { @match j.stats.last_outcome.as_deref() {
                                                    Some("ok") => "riuscito",
                                                    Some("failed") => "fallito",
                                                    _ => "–",
                                                } }
                                            }
                                            td.num data-v=(j.stats.last_rows) { (fmt_number(j.stats.last_rows as f64, false)) }
                                            td.num data-v=(j.stats.last_attempts) { (j.stats.last_attempts) " su " (j.retries + 1) }
                                            td.error-text { (j.stats.last_error.clone().unwrap_or_default()) }
                                            td { (j.stats.runs_ok) " / " (j.stats.runs_failed) " / " (j.stats.skipped_overlaps) }
                                            td { (when(&j.next_run)) }
                                            td {
                                                @if let Some(t) = &token {
                                                    form method="post" action={ "/jobs/" (j.name) "/run" } {
                                                        input type="hidden" name="csrf" value=(t);
                                                        button type="submit" disabled[j.stats.running] { "Esegui ora" }
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
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into_string(),
    )
        .into_response()
}
