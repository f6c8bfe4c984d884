//! The one CSV writer of the project: KPI results (`mirato kpi --format csv`, `/api/kpi`),
//! panel exports, scheduled exports and the report's sheets all go through [`write`], and every
//! exported file of KPI figures states where they come from with the same [`provenance`] lines.
//!
//! Every file may be opened in a spreadsheet, which runs a cell that starts with `=`, `+`, `-`
//! or `@` (or a tab or carriage return before one) as a formula: CSV injection. Following the
//! OWASP rule, a text cell that starts with one of those characters (after any spaces) is
//! prefixed with a single quote `'`, which spreadsheets show as text. Numbers are written as
//! numbers: a negative number that we computed (a JSON number, such as `-3`) is left alone,
//! since a numeric column must stay numeric for pandas and R, and it is a number, not a formula.
//! A string that merely looks like a number (`"-3"`) is text and is neutralised.
//!
//! Cells are quoted when they hold a comma, a semicolon (the separator of Italian spreadsheets,
//! which would otherwise split the cell and start a new one with a formula), a quote, a line
//! break, or when they start with `#` (so that no data row reads as a comment line). The `# name:
//! value` lines above the header (read with `pandas.read_csv(f, comment="#")`) are not quoted,
//! so their values are neutralised after every separator too.

use std::borrow::Cow;
use std::fmt::Display;

use crate::row::{Cell, Row};
use chrono::Utc;

use crate::auth::disclosure;
use crate::query::{self, KpiResult};
use crate::vocabulary::it_date;

/// The characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn starts_with_trigger(s: &str) -> bool {
    s.trim_start_matches(' ').starts_with(TRIGGERS)
}

/// A text cell made safe to open in a spreadsheet: prefixed with `'` when it starts with a
/// formula character.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if starts_with_trigger(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A result's cell as CSV text: null empty, text neutralised, numbers and booleans as JSON
/// writes them, a withheld count as `<5`.
pub fn cell(v: &Cell) -> Cow<'_, str> {
    match v {
        Cell::Null => Cow::Borrowed(""),
        Cell::Text(s) => neutralise(s),
        other => Cow::Owned(other.plain()),
    }
}

/// A `# name: value` line's value: on one line, and neutralised after every comma or semicolon,
/// since a spreadsheet splits the (unquoted) line there.
fn header_value(v: &str) -> String {
    let one_line = v.replace(['\n', '\r'], " ");
    let mut out = String::with_capacity(one_line.len());
    // The line itself starts with `#`: only what follows a separator starts a cell.
    for (i, piece) in one_line.split_inclusive([',', ';']).enumerate() {
        let text = piece.trim_start_matches(' ');
        out.push_str(&piece[..piece.len() - text.len()]);
        if i > 0 && starts_with_trigger(text) {
            out.push('\'');
        }
        out.push_str(text);
    }
    out
}

fn push_field(out: &mut String, s: &str) {
    if s.contains([',', ';', '"', '\n', '\r']) || s.starts_with('#') {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn push_record<'a>(out: &mut String, cells: impl IntoIterator<Item = Cow<'a, str>>) {
    let start = out.len();
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, &c);
    }
    if out.len() == start {
        // A record of one empty cell would read as a blank line.
        out.push_str("\"\"");
    }
    out.push('\n');
}

/// The CSV text: `# name: value` lines, the header row, then one row per record, each cell
/// from [`cell`].
pub fn write<'r, K: Display, V: Display, R: IntoIterator<Item = &'r Cell>>(
    header: &[(K, V)],
    columns: &[String],
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut out = String::new();
    for (k, v) in header {
        out.push_str(&format!(
            "# {}: {}\n",
            header_value(&k.to_string()),
            header_value(&v.to_string())
        ));
    }
    push_record(&mut out, columns.iter().map(|c| neutralise(c)));
    for r in rows {
        push_record(&mut out, r.into_iter().map(cell));
    }
    out
}

/// Rows (a KPI's rows, a panel's table) under `header`: the cells of `columns` in order, a
/// missing value an empty cell.
pub fn objects<K: Display, V: Display>(
    header: &[(K, V)],
    columns: &[String],
    rows: &[Row],
) -> String {
    write(
        header,
        columns,
        rows.iter()
            .map(|r| columns.iter().map(|c| r.cell(c)).collect::<Vec<_>>()),
    )
}

/// A KPI result as CSV: the same columns as its JSON, each coded one with its Italian label
/// beside it, no header lines (`/api/kpi` states the provenance in HTTP headers; `mirato kpi`
/// on the terminal).
pub fn result(r: &KpiResult) -> String {
    let (columns, rows) = query::output::labelled_rows(r);
    objects::<&str, &str>(&[], &columns, &rows)
}

/// What an exported file says about its figures, so that a published number can be
/// reproduced: the indicator, the period, breakdowns and territory as resolved, `as_of`, the
/// data version, how the cells are protected, when the file was made, and the API call that
/// gives the same figures again (for a KPI of the catalogue).
pub fn provenance(r: &KpiResult) -> Vec<(&'static str, String)> {
    let p = &r.params;
    let mut lines = vec![("Indicatore", r.kpi.clone())];
    if !p.from.is_empty() {
        lines.push((
            "Periodo",
            format!("{} – {}", it_date(&p.from), it_date(&p.to)),
        ));
        lines.push(("from", p.from.clone()));
        lines.push(("to", p.to.clone()));
    }
    lines.push(("by", p.by.join(",")));
    lines.push(("region", p.region.join(",")));
    lines.push(("province", p.province.join(",")));
    lines.push(("cpi", p.cpi.join(",")));
    lines.push(("as_of", p.as_of.clone()));
    lines.push(("Versione dei dati", p.data_version.clone()));
    lines.push((
        "Protezione",
        match &r.protection {
            Some(pr) => disclosure::describe(pr),
            None => "valori esatti".to_owned(),
        },
    ));
    lines.push((
        "Generato il",
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    if query::find(&r.kpi).is_some() {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("from", &p.from).append_pair("to", &p.to);
        for (k, v) in [
            ("by", &p.by),
            ("region", &p.region),
            ("province", &p.province),
            ("cpi", &p.cpi),
        ] {
            if !v.is_empty() {
                s.append_pair(k, &v.join(","));
            }
        }
        s.append_pair("as_of", &p.as_of);
        lines.push((
            "Per riprodurre",
            format!("GET /api/kpi/{}?{}", r.kpi, s.finish()),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in [
            "=1+2*3", "+39 02", "-cmd", "@SUM(A1)", "\t=x", "\r=x", "  =x",
        ] {
            assert_eq!(neutralise(bad), format!("'{bad}"), "{bad:?}");
        }
        for ok in ["MI-01", "2024-01-05", "<5", "55+", "a=b", ""] {
            assert_eq!(neutralise(ok), ok);
        }
        // Numbers we computed stay numbers; text that looks like one does not.
        assert_eq!(cell(&Cell::Int(-3)), "-3");
        assert_eq!(cell(&Cell::Float(-0.5)), "-0.5");
        assert_eq!(cell(&Cell::from("-3")), "'-3");
        assert_eq!(cell(&Cell::Null), "");
        assert_eq!(cell(&Cell::Bool(true)), "true");
        assert_eq!(cell(&Cell::Below(5)), "<5");
    }

    #[test]
    fn one_writer_for_header_lines_and_rows() {
        let columns = vec!["cpi".to_owned(), "value".to_owned()];
        let rows = [
            json!({"cpi": "=HYPERLINK(\"x\")", "value": -2}),
            json!({"cpi": "a;=1+2", "value": 0.5}),
            json!({"cpi": "#1", "value": null}),
        ];
        let rows: Vec<Row> = rows.iter().map(Row::from_json).collect();
        let text = objects(
            &[
                ("Pannello", "Tasso, =cmd|' /C calc'!A0"),
                ("by", "region,gender"),
            ],
            &columns,
            &rows,
        );
        assert_eq!(
            text,
            "# Pannello: Tasso, '=cmd|' /C calc'!A0\n# by: region,gender\n\
             cpi,value\n\"'=HYPERLINK(\"\"x\"\")\",-2\n\"a;=1+2\",0.5\n\"#1\",\n"
        );
        let empty: [&[Cell]; 1] = [&[Cell::Null]];
        assert_eq!(
            write::<&str, &str, _>(&[], &["x".into()], empty),
            "x\n\"\"\n"
        );
    }
}
