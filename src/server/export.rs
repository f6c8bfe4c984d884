//! Exports of a panel as CSV, XLSX or JSON. Each states its parameters, `as_of` and data version,
//! and the API call that gives the same figures again, so a published number can be reproduced.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::{Value, json};

use super::dashboards::{Page, Panel};
use super::filters::Checked;
use super::panels::{self, PanelData, Table, table_of};
use super::{AppError, AppState};
use crate::csvfile;
use crate::query::KpiResult;
use crate::row::{Cell, col};
use crate::vocabulary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    Xlsx,
    Json,
}

/// `GET /export/{slug}/{n}.{csv|xlsx|json}` with the page's filters.
pub async fn panel_export(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<crate::auth::Principal>,
    Path((slug, file)): Path<(String, String)>,
    q: Result<Checked, AppError>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (n, ext) = file.rsplit_once('.').ok_or_else(|| {
        AppError::NotFound(format!("no export '{file}': use N.csv, N.xlsx or N.json"))
    })?;
    let format = match ext {
        "csv" => ExportFormat::Csv,
        "xlsx" => ExportFormat::Xlsx,
        "json" => ExportFormat::Json,
        _ => {
            return Err(AppError::bad(
                "format",
                format!("unknown export format '{ext}'"),
                vec!["csv".into(), "xlsx".into(), "json".into()],
            ));
        }
    };
    let n: usize = n
        .parse()
        .map_err(|_| AppError::NotFound(format!("no panel '{n}' on page '{slug}'")))?;
    let (idx, panel) = panels::panel_at(&state, &slug, n)
        .ok_or_else(|| AppError::NotFound(format!("no panel {n} on page '{slug}'")))?;
    let f = q?.filters;
    let version = state.version_for(f.as_of.as_deref()).await?;
    let class = who.view_class(state.auth().threshold());
    let tag = super::etag(&["export", &slug, &file, &f.query_string(), &version, &class]);
    if let Some(r) = super::not_modified(&headers, &tag) {
        return Ok(r);
    }
    let result = match panels::panel_data(&state, &panel, &f, &who).await {
        PanelData::Kpi { result, .. } => result,
        PanelData::Error(msg) => return Err(AppError::Internal(msg)),
        PanelData::Restricted => {
            return Err(AppError::Forbidden("riservato agli amministratori".into()));
        }
    };
    let page = &state.pages()[idx];
    let table = labelled(table_of(&panel, &result), &result.params.by);
    let meta = Meta::new(page, &panel, &result);
    let stem = format!(
        "mirato-{}-{}",
        panel.figure_id(),
        if result.params.from.is_empty() {
            result.params.data_version.clone()
        } else {
            format!("{}_{}", result.params.from, result.params.to)
        }
    );
    let (mime, body): (&str, Vec<u8>) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", csv_bytes(&meta, &table)),
        ExportFormat::Json => (
            "application/json",
            serde_json::to_vec_pretty(&json_value(&meta, &result, &table)).expect("JSON"),
        ),
        ExportFormat::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            xlsx_bytes(&meta, &table).map_err(|e| {
                tracing::error!(error = %e, "xlsx export failed");
                AppError::Internal("the workbook could not be written".into())
            })?,
        ),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{stem}.{ext}\""),
            ),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// The table with the Italian label beside each coded column (see [`vocabulary::with_labels`]).
fn labelled(t: Table, by: &[String]) -> Table {
    let (columns, rows) = vocabulary::with_labels(&t.columns, by, &t.rows);
    Table {
        columns,
        rows,
        percent: t.percent,
    }
}

/// What every export says about itself.
struct Meta {
    lines: Vec<(&'static str, String)>,
}

impl Meta {
    /// The page and panel, then the figures' [`csvfile::provenance`] with the panel's own
    /// choice of rows after the territory.
    fn new(page: &Page, panel: &Panel, r: &KpiResult) -> Meta {
        let mut lines = vec![
            ("Pagina", page.title.clone()),
            ("Pannello", panel.title.clone()),
        ];
        for line in csvfile::provenance(r) {
            let territory_done = line.0 == "cpi";
            lines.push(line);
            if !territory_done {
                continue;
            }
            if !panel.keep.is_empty() {
                lines.push((
                    "Righe tenute",
                    panel
                        .keep
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            if let Some(l) = panel.limit {
                lines.push(("Righe mostrate al massimo", l.to_string()));
            }
        }
        Meta { lines }
    }
}

/// `# name: value` lines, then the table with a header and plain numbers (pandas reads it with
/// `comment='#'`); text cells neutralised against formulas by the project's one CSV writer.
fn csv_bytes(meta: &Meta, t: &Table) -> Vec<u8> {
    csvfile::objects(&meta.lines, &t.columns, &t.rows).into_bytes()
}

fn json_value(meta: &Meta, r: &KpiResult, t: &Table) -> Value {
    let about: serde_json::Map<String, Value> = meta
        .lines
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
        .collect();
    let mut v = json!({
        "kpi": r.kpi,
        "params": r.params,
        "rows": t.rows,
        "export": about,
    });
    if let Some(m) = &r.median_days {
        v[col::MEDIAN_DAYS] = m.to_json();
    }
    v
}

/// One sheet: the header block (what, period, territory, `as_of`, data version), then the table
/// with Italian headers; ratios formatted as percentages but stored as numbers.
fn xlsx_bytes(meta: &Meta, t: &Table) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Dati")?;
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.0%");
    let int = Format::new().set_num_format("#,##0");
    let dec = Format::new().set_num_format("#,##0.00");
    let mut row = 0u32;
    for (k, v) in &meta.lines {
        ws.write_string_with_format(row, 0, *k, &bold)?;
        ws.write_string(row, 1, v)?;
        row += 1;
    }
    row += 1;
    for (c, name) in t.columns.iter().enumerate() {
        let header = vocabulary::labelled_header(&t.columns, name);
        ws.write_string_with_format(row, c as u16, &header, &bold)?;
        // Wide enough for the header and the longest cell; the header block's keys need 24.
        let longest = t
            .rows
            .iter()
            .filter_map(|r| r.get(name))
            .map(|v| v.plain().chars().count())
            .chain([header.chars().count()])
            .max()
            .unwrap_or(10);
        let min = if c == 0 { 24 } else { 10 };
        ws.set_column_width(c as u16, (longest + 2).clamp(min, 60) as f64)?;
    }
    for r in &t.rows {
        row += 1;
        for (c, name) in t.columns.iter().enumerate() {
            let col = c as u16;
            match r.cell(name) {
                v @ (Cell::Int(_) | Cell::Float(_)) => {
                    let Some(x) = v.as_f64() else { continue };
                    let ratio = matches!(
                        name.as_str(),
                        col::SURVIVAL | col::LOWER | col::UPPER | col::SHARE_OF_ACCEPTED
                    ) || (t.percent && name == col::VALUE);
                    let f = if ratio {
                        &pct
                    } else if matches!(v, Cell::Int(_)) {
                        &int
                    } else {
                        &dec
                    };
                    ws.write_number_with_format(row, col, x, f)?;
                }
                v @ (Cell::Text(_) | Cell::Below(_)) => {
                    ws.write_string(row, col, v.plain())?;
                }
                Cell::Bool(b) => {
                    ws.write_boolean(row, col, *b)?;
                }
                Cell::Null => {}
            }
        }
    }
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Row;

    #[test]
    fn csv_states_its_parameters() {
        let meta = Meta {
            lines: vec![
                ("as_of", "2025-12-31T23:00:00Z".into()),
                ("Versione dei dati", "b1".into()),
            ],
        };
        let mut row = Row::new();
        row.insert("region", "Lazio");
        row.insert(col::VALUE, 0.5);
        let t = Table {
            columns: vec!["region".into(), "value".into()],
            rows: vec![row],
            percent: true,
        };
        let s = String::from_utf8(csv_bytes(&meta, &t)).unwrap();
        assert_eq!(
            s,
            "# as_of: 2025-12-31T23:00:00Z\n# Versione dei dati: b1\nregion,value\nLazio,0.5\n"
        );
        let x = xlsx_bytes(&meta, &t).unwrap();
        assert_eq!(&x[..2], b"PK");
    }
}
