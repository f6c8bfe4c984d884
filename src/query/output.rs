//! Shaping and rendering KPI results: DataFusion's batches as rows, survival curves and funnels
//! from their rows, and the table and JSON renderings (CSV is `crate::csvfile`'s).

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, RecordBatch};

use serde_json::Value;

use super::KpiResult;
use super::catalog::FUNNEL_STAGES;
use super::survival::kaplan_meier;
use crate::row::{Cell, Row, col};
use crate::vocabulary;

/// A breakdown group: its keys as output, and its (days, placed) observations.
type Group = (Row, Vec<(i64, bool)>);

/// Kaplan–Meier curves per group from rows of `duration` and `event`. Returns the rows and,
/// without breakdown, the median.
pub fn survival_rows(by: &[String], rows: Vec<Row>) -> (Vec<Row>, Option<Cell>) {
    let mut groups: BTreeMap<Vec<String>, Group> = BTreeMap::new();
    for r in rows {
        let entry = groups
            .entry(r.key(by))
            .or_insert_with(|| (r.only(by), Vec::new()));
        if let Some(d) = r.i64(col::DURATION) {
            entry.1.push((d.max(0), r.cell(col::EVENT).is_true()));
        }
    }
    let mut out = Vec::new();
    let mut overall_median = None;
    for (_, (keys, obs)) in groups {
        let curve = kaplan_meier(&obs);
        let median = Cell::from(curve.median_days);
        if by.is_empty() {
            overall_median = Some(median.clone());
        }
        for r in curve.rows {
            let mut m = keys.clone();
            m.insert(col::DAY, r.day);
            m.insert(col::AT_RISK, r.at_risk);
            m.insert(col::EVENTS, r.events);
            m.insert(col::CENSORED, r.censored);
            m.insert(col::SURVIVAL, r.survival);
            m.insert(col::LOWER, r.lower);
            m.insert(col::UPPER, r.upper);
            m.insert(col::MEDIAN_DAYS, median.clone());
            out.push(m);
        }
    }
    if by.is_empty() && overall_median.is_none() {
        overall_median = Some(Cell::Null);
    }
    (out, overall_median)
}

/// Rate rows (`value`, `numerator`, `denominator` after the breakdowns) from per-group
/// `numerator` and `denominator`: the division is done here rather than in the SQL, whose
/// planning costs more than the arithmetic. A group without rows has a null rate.
pub fn rate_rows(rows: Vec<Row>) -> Vec<Row> {
    rows.into_iter()
        .map(|mut r| {
            let num = r
                .remove(col::NUMERATOR)
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            let den = r
                .remove(col::DENOMINATOR)
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            let value = if den == 0 {
                Cell::Null
            } else {
                Cell::Float(num as f64 / den as f64)
            };
            let not_stated = r.remove(col::NOT_STATED);
            r.insert(col::VALUE, value);
            r.insert(col::NUMERATOR, num);
            r.insert(col::DENOMINATOR, den);
            if let Some(n) = not_stated {
                r.insert(col::NOT_STATED, n.as_i64().unwrap_or(0));
            }
            r
        })
        .collect()
}

/// Funnel rows (`stage`, `persons`, `share_of_accepted`) from per-group stage sums.
pub fn funnel_rows(by: &[String], rows: Vec<Row>) -> Vec<Row> {
    let mut out = Vec::new();
    for r in rows {
        let accepted = r.i64("s_accepted").unwrap_or(0);
        for (stage, column) in FUNNEL_STAGES {
            let persons = r.i64(column).unwrap_or(0);
            let mut m = r.only(by);
            m.insert(col::STAGE, stage);
            m.insert(col::PERSONS, persons);
            m.insert(
                col::SHARE_OF_ACCEPTED,
                if accepted == 0 {
                    Cell::Null
                } else {
                    Cell::Float(persons as f64 / accepted as f64)
                },
            );
            out.push(m);
        }
    }
    out
}

/// The result as JSON, as KPIS.md shows it, each coded breakdown with its Italian label beside
/// it (`contract_class_label`, see [`vocabulary::with_labels`]).
pub fn to_json(r: &KpiResult) -> String {
    serde_json::to_string_pretty(&labelled_json(r)).expect("results serialise")
}

/// The result as a JSON value with the labels of its coded columns: what the API answers.
pub fn labelled_json(r: &KpiResult) -> Value {
    let mut v = serde_json::to_value(r).expect("results serialise");
    let (_, rows) = labelled_rows(r);
    v["rows"] = serde_json::to_value(rows).expect("rows serialise");
    v
}

/// The result's columns and rows with the Italian label beside each coded column.
pub fn labelled_rows(r: &KpiResult) -> (Vec<String>, Vec<Row>) {
    vocabulary::with_labels(&r.columns, &r.params.by, &r.rows)
}

/// Italian number format: `1.234.567` and `0,9123`; what people in the offices read. A
/// withheld count reads `<5`, a missing figure a dash.
pub fn italian_number(v: &Cell) -> String {
    match v {
        Cell::Int(i) => group_thousands(&i.to_string()),
        Cell::Float(x) if x.is_finite() => {
            let s = if x.abs() < 10.0 {
                format!("{x:.4}")
            } else {
                format!("{x:.1}")
            };
            let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
            format!("{},{}", group_thousands(int), frac)
        }
        Cell::Null | Cell::Float(_) => "–".into(),
        other => other.plain(),
    }
}

fn group_thousands(int: &str) -> String {
    let (sign, digits) = int.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", int));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// An aligned text table for the terminal, with Italian number formats.
pub fn to_table(r: &KpiResult) -> String {
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            r.columns
                .iter()
                .map(|c| row.get(c).map(italian_number).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = r
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |vals: &[String]| -> String {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    out.push_str(&line(&r.columns));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    let p = &r.params;
    out.push_str(&format!(
        "{}: {} .. {}, as of {}, data version {}\n",
        r.kpi, p.from, p.to, p.as_of, p.data_version
    ));
    if let Some(m) = &r.median_days {
        out.push_str(&format!("median_days: {}\n", italian_number(m)));
    }
    out
}

/// Record batches as rows, numbers kept as numbers, dates as `2025-01-31` and NaN as null.
/// Whether two rows are the same: never so in a KPI's rows (one per group).
pub(super) fn has_repeated_row(rows: &[Row]) -> bool {
    let mut seen = std::collections::HashSet::new();
    rows.iter().any(|r| !seen.insert(format!("{r:?}")))
}

pub fn to_rows(batches: &[RecordBatch]) -> Vec<Row> {
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
        StringViewArray, UInt32Array, UInt64Array,
    };
    use datafusion::arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let mut row = Row::new();
            for (j, field) in schema.fields().iter().enumerate() {
                let c = b.column(j);
                let any = c.as_any();
                let v = if c.is_null(i) {
                    Cell::Null
                } else if let Some(a) = any.downcast_ref::<Int64Array>() {
                    Cell::Int(a.value(i))
                } else if let Some(a) = any.downcast_ref::<Int32Array>() {
                    Cell::Int(a.value(i).into())
                } else if let Some(a) = any.downcast_ref::<UInt64Array>() {
                    Cell::from(a.value(i))
                } else if let Some(a) = any.downcast_ref::<UInt32Array>() {
                    Cell::Int(a.value(i).into())
                } else if let Some(a) = any.downcast_ref::<Float64Array>() {
                    let x = a.value(i);
                    if x.is_finite() {
                        Cell::Float(x)
                    } else {
                        Cell::Null
                    }
                } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
                    Cell::Bool(a.value(i))
                } else if let Some(a) = any.downcast_ref::<StringArray>() {
                    Cell::from(a.value(i))
                } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
                    Cell::from(a.value(i))
                } else if let Some(a) = any.downcast_ref::<Date32Array>() {
                    a.value_as_date(i)
                        .map(|d| Cell::Text(d.to_string()))
                        .unwrap_or(Cell::Null)
                } else {
                    Cell::Text(array_value_to_string(c, i).unwrap_or_default())
                };
                row.insert(field.name().clone(), v);
            }
            out.push(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_numbers() {
        assert_eq!(italian_number(&Cell::Int(1234567)), "1.234.567");
        assert_eq!(italian_number(&Cell::Int(-1234)), "-1.234");
        assert_eq!(italian_number(&Cell::Float(0.91234)), "0,9123");
        assert_eq!(italian_number(&Cell::Float(1234.56)), "1.234,6");
        assert_eq!(italian_number(&Cell::Null), "–");
        assert_eq!(italian_number(&Cell::Below(5)), "<5");
    }
}

#[cfg(test)]
mod repeated_rows {
    use super::*;

    #[test]
    fn a_row_twice_is_found() {
        let row = |p: &str, v: i64| {
            let mut r = Row::new();
            r.insert("province", Cell::Text(p.into()));
            r.insert("value", Cell::Int(v));
            r
        };
        assert!(!has_repeated_row(&[
            row("MI", 1),
            row("RM", 2),
            row("MI", 2)
        ]));
        assert!(has_repeated_row(&[
            row("MI", 1),
            row("RM", 2),
            row("MI", 1)
        ]));
        assert!(!has_repeated_row(&[]));
    }
}
