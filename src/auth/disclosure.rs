//! Small-cell suppression (KPIS.md, Confidentiality; Sistan rules): for every role but admin, a
//! count below the threshold, or a rate whose denominator is below it, shows as `<T`. Applied to
//! the result itself, so pages, charts, API and exports show exactly the same cells.
//!
//! - Primary: counts (and sums, stocks, distinct persons) in 1..T-1; rates with a denominator in
//!   1..T-1 (value, numerator and denominator); medians and means of fewer than T cases;
//!   survival rows with fewer than T at risk; funnel stages with fewer than T persons. A zero is
//!   shown: it discloses no one.
//! - Secondary: totals can always be had (the same KPI without breakdown, or a table's total
//!   row), so along every line of a table (the whole table for one breakdown; each row and each
//!   column for two) a lone suppressed cell is joined by the smallest other cell, until no line
//!   has exactly one. Then no suppressed cell equals a total minus visible cells.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::query::{Kind, KpiResult};

/// The default threshold, and the legal minimum (Sistan, art. 5).
pub const DEFAULT_THRESHOLD: u64 = 5;
pub const MIN_THRESHOLD: u64 = 3;

pub fn mark(threshold: u64) -> Value {
    Value::String(format!("<{threshold}"))
}

pub fn is_suppressed(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.starts_with('<'))
}

/// The columns a suppressed cell hides, and the one that decides it, per kind.
fn columns(kind: Kind) -> (&'static str, &'static [&'static str]) {
    match kind {
        Kind::Count | Kind::CountDistinct | Kind::Sum | Kind::Stock => ("value", &["value"]),
        Kind::Rate => ("denominator", &["value", "numerator", "denominator"]),
        Kind::Median | Kind::Mean => ("n", &["value", "n"]),
        Kind::Survival => (
            "at_risk",
            &[
                "at_risk", "events", "censored", "survival", "lower", "upper",
            ],
        ),
        Kind::Funnel => ("persons", &["persons", "share_of_accepted"]),
    }
}

fn additive(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Count | Kind::CountDistinct | Kind::Sum | Kind::Stock | Kind::Rate
    )
}

/// The result as a role below admin may see it.
pub fn suppress(r: &KpiResult, kind: Kind, threshold: u64) -> KpiResult {
    let threshold = threshold.max(MIN_THRESHOLD);
    let (decider, hidden) = columns(kind);
    let m = mark(threshold);
    let mut out = r.clone();
    let small = |v: Option<&Value>| {
        v.and_then(Value::as_f64)
            .is_some_and(|x| x > 0.0 && x < threshold as f64)
    };
    let hide = |row: &mut serde_json::Map<String, Value>| {
        for c in hidden {
            if row.contains_key(*c) {
                row.insert((*c).to_owned(), m.clone());
            }
        }
    };
    for row in &mut out.rows {
        if small(row.get(decider)) {
            hide(row);
        }
    }
    if additive(kind) && !out.params.by.is_empty() {
        let by = out.params.by.clone();
        loop {
            let mut changed = false;
            for d in 0..by.len() {
                // Lines along dimension d: rows sharing every other breakdown key.
                let mut lines: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
                for (i, row) in out.rows.iter().enumerate() {
                    let key: Vec<String> = by
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != d)
                        .map(|(_, b)| row.get(b).map(Value::to_string).unwrap_or_default())
                        .collect();
                    lines.entry(key).or_default().push(i);
                }
                for idx in lines.values() {
                    let hidden_n = idx
                        .iter()
                        .filter(|&&i| out.rows[i].get(decider).is_some_and(is_suppressed))
                        .count();
                    if hidden_n != 1 {
                        continue;
                    }
                    // The smallest other cell, preferring non-zero ones (a zero is a weak cover).
                    let pick = idx
                        .iter()
                        .copied()
                        .filter(|&i| !out.rows[i].get(decider).is_some_and(is_suppressed))
                        .filter_map(|i| {
                            out.rows[i]
                                .get(decider)
                                .and_then(Value::as_f64)
                                .map(|x| (i, x))
                        })
                        .min_by(|a, b| {
                            (a.1 == 0.0, a.1)
                                .partial_cmp(&(b.1 == 0.0, b.1))
                                .unwrap_or(std::cmp::Ordering::Equal)
                        });
                    if let Some((i, _)) = pick {
                        hide(&mut out.rows[i]);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(by: &[&str], rows: Value) -> KpiResult {
        KpiResult {
            kpi: "x".into(),
            params: crate::query::Resolved {
                from: String::new(),
                to: String::new(),
                by: by.iter().map(|s| (*s).to_owned()).collect(),
                region: vec![],
                province: vec![],
                cpi: vec![],
                as_of: String::new(),
                data_version: String::new(),
                scope: None,
            },
            columns: vec![],
            rows: serde_json::from_value(rows).unwrap(),
            median_days: None,
        }
    }

    #[test]
    fn primary_and_secondary_on_one_breakdown() {
        // 2 is below 5: suppressed. Alone, it would be total - 10 - 7 - 0: the smallest other
        // non-zero cell (7) is suppressed too. The zero stays.
        let r = result(
            &["region"],
            json!([{"region": "A", "value": 10}, {"region": "B", "value": 2},
                   {"region": "C", "value": 7}, {"region": "D", "value": 0}]),
        );
        let s = suppress(&r, Kind::Count, 5);
        let v: Vec<&Value> = s.rows.iter().map(|r| &r["value"]).collect();
        assert_eq!(v, [&json!(10), &json!("<5"), &json!("<5"), &json!(0)]);
    }

    #[test]
    fn rates_hide_all_three_and_threshold_has_a_floor() {
        let r = result(
            &[],
            json!([{"value": 0.5, "numerator": 1, "denominator": 2}]),
        );
        let s = suppress(&r, Kind::Rate, 1);
        // The threshold never goes below 3.
        assert_eq!(s.rows[0]["value"], json!("<3"));
        assert_eq!(s.rows[0]["numerator"], json!("<3"));
        assert_eq!(s.rows[0]["denominator"], json!("<3"));
    }

    #[test]
    fn two_breakdowns_protect_rows_and_columns() {
        //        x    y    z
        //  a    20    3   30     3 is primary; row a needs a second cell: 20;
        //  b    40   50   60     then column x has one (20): 40; column y has one (3): 50;
        //                        then row b has two (40, 50): done.
        let mut rows = vec![];
        for (a, vals) in [("a", [20, 3, 30]), ("b", [40, 50, 60])] {
            for (b, v) in ["x", "y", "z"].iter().zip(vals) {
                rows.push(json!({"p": a, "q": b, "value": v}));
            }
        }
        let s = suppress(&result(&["p", "q"], Value::Array(rows)), Kind::Count, 5);
        let hidden: Vec<(String, String)> = s
            .rows
            .iter()
            .filter(|r| is_suppressed(&r["value"]))
            .map(|r| {
                (
                    r["p"].as_str().unwrap().into(),
                    r["q"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(hidden.len(), 4, "{hidden:?}");
        // No line has exactly one suppressed cell.
        for d in ["p", "q"] {
            let other = if d == "p" { "q" } else { "p" };
            let mut per: BTreeMap<String, usize> = BTreeMap::new();
            for r in &s.rows {
                if is_suppressed(&r["value"]) {
                    *per.entry(r[other].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
            assert!(per.values().all(|&n| n != 1), "{d}: {per:?}");
        }
    }
}
