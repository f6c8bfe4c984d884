//! The one CSV writer of the project: KPI results (`mirato kpi --format csv`, `/api/kpi`),
//! panel exports, scheduled exports and the report's sheets all go through [`write`].
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

use serde_json::Value;

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

/// A JSON value as a cell: null empty, text neutralised, numbers and booleans as written.
pub fn cell(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => neutralise(s),
        other => Cow::Owned(other.to_string()),
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
pub fn write<'r, K: Display, V: Display, R: IntoIterator<Item = &'r Value>>(
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

/// The rows of JSON objects as records of `columns` (a missing value is an empty cell).
pub fn from_objects<'a>(
    columns: &'a [String],
    rows: &'a [serde_json::Map<String, Value>],
) -> impl Iterator<Item = Vec<&'a Value>> + 'a {
    rows.iter().map(move |r| {
        columns
            .iter()
            .map(|c| r.get(c).unwrap_or(&Value::Null))
            .collect()
    })
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
        assert_eq!(cell(&json!(-3)), "-3");
        assert_eq!(cell(&json!(-0.5)), "-0.5");
        assert_eq!(cell(&json!("-3")), "'-3");
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(cell(&json!(true)), "true");
    }

    #[test]
    fn one_writer_for_header_lines_and_rows() {
        let columns = vec!["cpi".to_owned(), "value".to_owned()];
        let rows = [
            json!({"cpi": "=HYPERLINK(\"x\")", "value": -2}),
            json!({"cpi": "a;=1+2", "value": 0.5}),
            json!({"cpi": "#1", "value": null}),
        ];
        let rows: Vec<_> = rows
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect();
        let text = write(
            &[
                ("Pannello", "Tasso, =cmd|' /C calc'!A0"),
                ("by", "region,gender"),
            ],
            &columns,
            from_objects(&columns, &rows),
        );
        assert_eq!(
            text,
            "# Pannello: Tasso, '=cmd|' /C calc'!A0\n# by: region,gender\n\
             cpi,value\n\"'=HYPERLINK(\"\"x\"\")\",-2\n\"a;=1+2\",0.5\n\"#1\",\n"
        );
        let empty: [&[Value]; 1] = [&[Value::Null]];
        assert_eq!(
            write::<&str, &str, _>(&[], &["x".into()], empty),
            "x\n\"\"\n"
        );
    }
}
