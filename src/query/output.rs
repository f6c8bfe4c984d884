//! Shaping and rendering KPI results: DataFusion's batches as rows, survival curves and funnels
//! from their rows, and the table and JSON renderings (CSV is `crate::csvfile`'s).

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, RecordBatch};

use serde_json::{Map, Value};

use super::KpiResult;
use super::catalog::FUNNEL_STAGES;
use super::survival::kaplan_meier;
use crate::vocabulary;

fn group_key(by: &[String], row: &Map<String, Value>) -> Vec<String> {
    by.iter()
        .map(|b| row.get(b).map(Value::to_string).unwrap_or_default())
        .collect()
}

fn f64_value(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A breakdown group: its keys as output, and its (days, placed) observations.
type Group = (Map<String, Value>, Vec<(i64, bool)>);

/// Kaplan–Meier curves per group from rows of `duration` and `event`. Returns the rows and,
/// without breakdown, the median.
pub fn survival_rows(
    by: &[String],
    rows: Vec<Map<String, Value>>,
) -> (Vec<Map<String, Value>>, Option<Value>) {
    let mut groups: BTreeMap<Vec<String>, Group> = BTreeMap::new();
    for r in rows {
        let key = group_key(by, &r);
        let dur = r.get("duration").and_then(Value::as_i64);
        let ev = match r.get("event") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        };
        let entry = groups.entry(key).or_insert_with(|| {
            let keys: Map<String, Value> = by
                .iter()
                .map(|b| (b.clone(), r.get(b).cloned().unwrap_or(Value::Null)))
                .collect();
            (keys, Vec::new())
        });
        if let Some(d) = dur {
            entry.1.push((d.max(0), ev));
        }
    }
    let mut out = Vec::new();
    let mut overall_median = None;
    for (_, (keys, obs)) in groups {
        let curve = kaplan_meier(&obs);
        let median = curve.median_days.map(f64_value).unwrap_or(Value::Null);
        if by.is_empty() {
            overall_median = Some(median.clone());
        }
        for r in curve.rows {
            let mut m = keys.clone();
            m.insert("day".into(), Value::from(r.day));
            m.insert("at_risk".into(), Value::from(r.at_risk));
            m.insert("events".into(), Value::from(r.events));
            m.insert("censored".into(), Value::from(r.censored));
            m.insert("survival".into(), f64_value(r.survival));
            m.insert(
                "lower".into(),
                r.lower.map(f64_value).unwrap_or(Value::Null),
            );
            m.insert(
                "upper".into(),
                r.upper.map(f64_value).unwrap_or(Value::Null),
            );
            m.insert("median_days".into(), median.clone());
            out.push(m);
        }
    }
    if by.is_empty() && overall_median.is_none() {
        overall_median = Some(Value::Null);
    }
    (out, overall_median)
}

/// Rate rows (`value`, `numerator`, `denominator` after the breakdowns) from per-group
/// `numerator` and `denominator`: the division is done here rather than in the SQL, whose
/// planning costs more than the arithmetic. A group without rows has a null rate.
pub fn rate_rows(rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    rows.into_iter()
        .map(|mut r| {
            let num = r.remove("numerator").and_then(|v| v.as_i64()).unwrap_or(0);
            let den = r
                .remove("denominator")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            let value = if den == 0 {
                Value::Null
            } else {
                f64_value(num as f64 / den as f64)
            };
            r.insert("value".into(), value);
            r.insert("numerator".into(), Value::from(num));
            r.insert("denominator".into(), Value::from(den));
            r
        })
        .collect()
}

/// Funnel rows (`stage`, `persons`, `share_of_accepted`) from per-group stage sums.
pub fn funnel_rows(by: &[String], rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for r in rows {
        let accepted = r.get("s_accepted").and_then(Value::as_i64).unwrap_or(0);
        for (stage, col) in FUNNEL_STAGES {
            let persons = r.get(col).and_then(Value::as_i64).unwrap_or(0);
            let mut m: Map<String, Value> = by
                .iter()
                .map(|b| (b.clone(), r.get(b).cloned().unwrap_or(Value::Null)))
                .collect();
            m.insert("stage".into(), Value::from(stage));
            m.insert("persons".into(), Value::from(persons));
            m.insert(
                "share_of_accepted".into(),
                if accepted == 0 {
                    Value::Null
                } else {
                    f64_value(persons as f64 / accepted as f64)
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
    v["rows"] = Value::from(rows.into_iter().map(Value::Object).collect::<Vec<_>>());
    v
}

/// The result's columns and rows with the Italian label beside each coded column.
pub fn labelled_rows(r: &KpiResult) -> (Vec<String>, Vec<Map<String, Value>>) {
    vocabulary::with_labels(&r.columns, &r.params.by, &r.rows)
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Italian number format: `1.234.567` and `0,9123`; what people in the offices read.
pub fn italian_number(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => group_thousands(&n.to_string()),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let s = if x.abs() < 10.0 {
                format!("{x:.4}")
            } else {
                format!("{x:.1}")
            };
            let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
            format!("{},{}", group_thousands(int), frac)
        }
        Value::Null => "–".into(),
        other => plain(other),
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

/// Record batches as JSON objects, numbers kept as numbers and NaN as null.
pub fn to_json_rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
        StringViewArray, UInt32Array, UInt64Array,
    };
    use datafusion::arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let mut row = Map::new();
            for (j, field) in schema.fields().iter().enumerate() {
                let c = b.column(j);
                let v = if c.is_null(i) {
                    Value::Null
                } else if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<Int32Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<UInt64Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<UInt32Array>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<Float64Array>() {
                    serde_json::Number::from_f64(a.value(i))
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                } else if let Some(a) = c.as_any().downcast_ref::<BooleanArray>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<StringViewArray>() {
                    Value::from(a.value(i))
                } else if let Some(a) = c.as_any().downcast_ref::<Date32Array>() {
                    a.value_as_date(i)
                        .map(|d| Value::from(d.to_string()))
                        .unwrap_or(Value::Null)
                } else {
                    Value::from(array_value_to_string(c, i).unwrap_or_default())
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
        assert_eq!(italian_number(&Value::from(1234567)), "1.234.567");
        assert_eq!(italian_number(&Value::from(-1234)), "-1.234");
        assert_eq!(italian_number(&Value::from(0.91234)), "0,9123");
        assert_eq!(italian_number(&Value::from(1234.56)), "1.234,6");
        assert_eq!(italian_number(&Value::Null), "–");
    }
}
