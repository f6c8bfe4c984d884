//! The SQL text of a query: a KPI's row query wrapped with its breakdowns, territorial filters
//! and the aggregation of its kind (with the cell keys when asked for). Only names from fixed
//! lists enter the text; user values go through placeholders, bound by [`bound`].

use std::collections::HashMap;

use chrono::NaiveDate;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::prelude::SessionContext;

use super::{Kind, KpiDef, Params, QueryError, catalog, cellkey, cells};
use crate::row::col;

/// `sql` with its placeholders bound to `values` (user input never enters the text).
pub(super) async fn bound(
    ctx: &SessionContext,
    sql: &str,
    values: HashMap<String, ScalarValue>,
) -> Result<datafusion::dataframe::DataFrame, QueryError> {
    Ok(ctx.sql(sql).await?.with_param_values(ParamValues::Map(
        values.into_iter().map(|(k, v)| (k, v.into())).collect(),
    ))?)
}

/// Days since 1970-01-01: a date as a `Date32` placeholder value.
pub(super) fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The SQL expression of a breakdown over the KPI's rows `k`, applications `a` and provinces `rp`.
pub(super) fn dim_expr(dim: &str) -> String {
    match dim {
        "region" => "rp.region_name".into(),
        "province" => "k.province".into(),
        "cpi" => "k.cpi".into(),
        "month" => "to_char(k.d, '%Y-%m')".into(),
        "quarter" => "concat(CAST(CAST(date_part('year', k.d) AS INT) AS VARCHAR), '-Q', CAST(CAST(date_part('quarter', k.d) AS INT) AS VARCHAR))".into(),
        "year" => "CAST(date_part('year', k.d) AS INT)".into(),
        "gender" => "coalesce(a.gender, 'unknown')".into(),
        "category" => "coalesce(a.category, 'unknown')".into(),
        "list_type" => "coalesce(a.list_type, 'unknown')".into(),
        "age_band" => "CASE WHEN a.birth_year IS NULL THEN 'unknown' \
             WHEN CAST(date_part('year', k.d) AS INT) - a.birth_year < 15 THEN 'unknown' \
             WHEN CAST(date_part('year', k.d) AS INT) - a.birth_year <= 29 THEN '15-29' \
             WHEN CAST(date_part('year', k.d) AS INT) - a.birth_year <= 54 THEN '30-54' \
             ELSE '55+' END"
            .into(),
        "disability_band" => "CASE WHEN a.disability_pct IS NULL THEN 'n/a' \
             WHEN a.disability_pct < 46 THEN '<46' \
             WHEN a.disability_pct <= 66 THEN '46-66' \
             WHEN a.disability_pct <= 79 THEN '67-79' \
             ELSE '80-100' END"
            .into(),
        // ISCED levels in the three groups of the official statistics: up to lower secondary
        // (licenza media), upper and post-secondary, tertiary.
        "naspi" => "CASE WHEN a.naspi IS NULL THEN 'unknown' WHEN a.naspi THEN 'yes' ELSE 'no' END"
            .into(),
        "education" => "CASE WHEN a.education IS NULL THEN 'unknown' \
             WHEN a.education <= 2 THEN '0-2' \
             WHEN a.education <= 4 THEN '3-4' \
             ELSE '5-8' END"
            .into(),
        own => format!("k.{own}"),
    }
}

/// Wraps a KPI's row query with breakdowns, territorial filters and the aggregation of its kind.
/// Only names from fixed lists enter the text; user values go through placeholders.
/// With `stored_keys`, a row query that passes the stored record key of its unit on (see
/// [`stored_key_column`]) has its cells keyed from it.
pub(super) fn wrapper_sql(
    def: &KpiDef,
    p: &Params,
    stored_keys: bool,
) -> (String, HashMap<String, ScalarValue>) {
    let mut values = HashMap::new();
    let dims: Vec<(&str, String)> =
        p.by.iter()
            .map(|d| (d.name(), dim_expr(d.name())))
            .collect();
    let needs_person =
        p.by.iter()
            .any(|d| catalog::PERSON_DIMS.contains(&d.name()));
    let filters = territory_filters(p, "k.province", "k.cpi", "rp", &mut values);
    // The record key of each row's unit, for perturbation (see `cellkey`): summed per cell.
    let unit = format!("k.{}", def.unit);
    let unit = unit.as_str();
    // With cell keys, distinct persons are counted over one row per (cell, person), so that
    // the key sums each person once.
    let distinct = p.cell_keys && def.kind == Kind::CountDistinct;
    let mut aggs: Vec<String> = match def.kind {
        Kind::Count | Kind::Stock => vec!["count(*) AS value".into()],
        Kind::CountDistinct if distinct => vec!["count(*) AS value".into()],
        Kind::CountDistinct => vec![format!("count(DISTINCT {unit}) AS value")],
        Kind::Sum => vec!["coalesce(sum(k.x), 0) AS value".into()],
        // The rate itself is divided in `output::rate_rows`.
        Kind::Rate if def.not_stated => vec![
            "sum(k.num) AS numerator".into(),
            "sum(k.stated) AS denominator".into(),
            format!("count(*) - sum(k.stated) AS {}", col::NOT_STATED),
        ],
        Kind::Rate | Kind::Oe => vec![
            "sum(k.num) AS numerator".into(),
            "count(*) AS denominator".into(),
        ],
        Kind::Median => vec![
            "median(CAST(k.x AS DOUBLE)) AS value".into(),
            "count(k.x) AS n".into(),
        ],
        Kind::Mean => vec![
            "avg(CAST(k.x AS DOUBLE)) AS value".into(),
            "count(k.x) AS n".into(),
        ],
        Kind::Survival => vec!["k.duration AS duration".into(), "k.event AS event".into()],
        Kind::Funnel => catalog::FUNNEL_STAGES
            .iter()
            .map(|(_, c)| format!("sum(k.{c}) AS {c}"))
            .collect(),
    };
    // The employers behind each cell, for the frequency rule (see `KpiDef::counts_employers`).
    if def.counts_employers()
        && matches!(
            def.kind,
            Kind::Count
                | Kind::Sum
                | Kind::Rate
                | Kind::Oe
                | Kind::Stock
                | Kind::Median
                | Kind::Mean
        )
    {
        aggs.push(format!("count(DISTINCT {unit}) AS {}", col::UNITS));
    }
    if p.cell_keys {
        // The stored key is a UInt32, summed as it is (DataFusion sums it into a UInt64): no
        // cast a row.
        let key = match stored_key_column(def) {
            // A sum's noise must be its own: KPIs that sum other amounts over the same rows
            // (reserved, covered and uncovered posts; vacancies and their positions) would
            // otherwise share it, and their shown figures would give it away by an identity
            // (covered + uncovered = reserved). The KPI's id (a file name) keys its records.
            _ if def.kind == Kind::Sum => {
                format!("{}(concat('{}|', {unit}))", cellkey::UDF_NAME, def.id)
            }
            Some(column) if stored_keys => format!("k.{column}"),
            _ => format!("{}({unit})", cellkey::UDF_NAME),
        };
        aggs.extend(key_aggregates(def, &key));
    }
    let dim_cols: Vec<String> = dims
        .iter()
        .map(|(name, e)| format!("{e} AS \"{name}\""))
        .collect();
    // For distinct persons: one row per (cell, person) first, then counted per cell.
    let select: Vec<String> = if distinct {
        dims.iter()
            .map(|(name, _)| format!("\"{name}\""))
            .chain(aggs)
            .collect()
    } else {
        dim_cols.iter().cloned().chain(aggs).collect()
    };
    let mut sql = format!("WITH k AS (\n{}\n)\n", kpi_body(def.sql));
    let mut from = String::from("FROM k\n");
    // The regions come from the provinces table: joined only when a region is asked for, since
    // DataFusion keeps even an unused left join, a hash probe per row.
    if !p.region.is_empty() || p.by.iter().any(|d| d.name() == "region") {
        from.push_str("LEFT JOIN ref_provinces rp ON rp.sigla = k.province\n");
    }
    if needs_person {
        from.push_str(
            "LEFT JOIN apps a ON a.person_id = k.person_id AND a.app_date <= k.d \
             AND (a.next_app_date IS NULL OR a.next_app_date > k.d)\n",
        );
    }
    let mut filters = filters;
    if distinct {
        filters.push(format!("{unit} IS NOT NULL"));
    }
    if !filters.is_empty() {
        from.push_str(&format!("WHERE {}\n", filters.join(" AND ")));
    }
    if distinct {
        let g: Vec<&str> = dims.iter().map(|(_, e)| e.as_str()).chain([unit]).collect();
        sql.push_str(&format!(
            ", u AS (\nSELECT {}\n{from}GROUP BY {}\n)\nSELECT {}\nFROM u\n",
            dim_cols
                .iter()
                .cloned()
                .chain([format!("{}({unit}) AS unit_key", cellkey::UDF_NAME)])
                .collect::<Vec<_>>()
                .join(", "),
            g.join(", "),
            select.join(",\n       ")
        ));
        if !dims.is_empty() {
            let g: Vec<String> = dims.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            sql.push_str(&format!("GROUP BY {}\n", g.join(", ")));
        }
    } else {
        sql.push_str(&format!("SELECT {}\n{from}", select.join(",\n       ")));
        let grouped = def.kind != Kind::Survival;
        if grouped && !dims.is_empty() {
            let g: Vec<&str> = dims.iter().map(|(_, e)| e.as_str()).collect();
            sql.push_str(&format!("GROUP BY {}\n", g.join(", ")));
        }
    }
    if !dims.is_empty() {
        let o: Vec<String> = dims
            .iter()
            .map(|(n, _)| format!("\"{n}\" NULLS LAST"))
            .collect();
        sql.push_str(&format!("ORDER BY {}\n", o.join(", ")));
    }
    (sql, values)
}

/// The key sum of each count a cell publishes, as `_ck_<column>` (see [`cells`]): what
/// perturbation needs beside the exact figures; `key` is each row's record key.
/// A rate's `num` is 0 or 1 (the catalogue checks it when it loads), and so is each funnel
/// stage (a maximum of 0/1 in the view `spell_stages`): a product keys the rows they count,
/// and a multiplication a row is cheaper than a CASE.
fn key_aggregates(def: &KpiDef, key: &str) -> Vec<String> {
    // Plain sums: a sum over no rows is null, which `cells::take_keys` reads as 0, and a sum of
    // the stored UInt32 keys is a UInt64 it reads as is. Every wrapper around them would cost
    // planning time in every query.
    match def.kind {
        Kind::Count | Kind::Stock => vec![format!("sum({key}) AS _ck_value")],
        // A sum's noise is scaled by its largest amount (see `disclosure`), never shown.
        Kind::Sum => vec![
            format!("sum({key}) AS _ck_value"),
            format!("max(abs(k.x)) AS _ck_{}", cells::TOP),
        ],
        Kind::CountDistinct => vec!["sum(unit_key) AS _ck_value".into()],
        Kind::Rate if def.not_stated => vec![
            format!("sum(k.num * {key}) AS _ck_numerator"),
            format!("sum(k.stated * {key}) AS _ck_denominator"),
            format!("sum((1 - k.stated) * {key}) AS _ck_{}", col::NOT_STATED),
        ],
        Kind::Rate | Kind::Oe => vec![
            format!("sum(k.num * {key}) AS _ck_numerator"),
            format!("sum({key}) AS _ck_denominator"),
        ],
        Kind::Median | Kind::Mean => {
            vec![format!(
                "sum({key}) FILTER (WHERE k.x IS NOT NULL) AS _ck_n"
            )]
        }
        Kind::Survival => vec![format!("{key} AS _ck")],
        Kind::Funnel => catalog::FUNNEL_STAGES
            .iter()
            .map(|(_, c)| format!("sum(k.{c} * {key}) AS _ck_{c}"))
            .collect(),
    }
}

/// The stored record key a KPI's row query passes on beside its unit (`person_record_key` or
/// `vacancy_record_key`, read from `ev`), if it does: reading it costs four bytes a row,
/// hashing the unit costs reading the unit.
fn stored_key_column(def: &KpiDef) -> Option<&'static str> {
    let column = match def.unit {
        "person_id" => crate::recordkey::PERSON_KEY,
        "vacancy_id" => crate::recordkey::VACANCY_KEY,
        _ => return None,
    };
    def.sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == column)
        .then_some(column)
}

/// The territorial filters (asked for, and the caller's scope) over a province column, a CPI
/// column and a joined `ref_provinces` alias. Values go through placeholders added to `values`.
pub(super) fn territory_filters(
    p: &Params,
    province: &str,
    cpi: &str,
    rp: &str,
    values: &mut HashMap<String, ScalarValue>,
) -> Vec<String> {
    let mut filters: Vec<String> = Vec::new();
    let mut placeholders = |prefix: &str, vals: &[String]| -> String {
        let names: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let name = format!("{prefix}_{i}");
                values.insert(name.clone(), ScalarValue::Utf8(Some(v.clone())));
                format!("${name}")
            })
            .collect();
        names.join(", ")
    };
    if !p.region.is_empty() {
        let list = placeholders("region", &p.region);
        filters.push(format!(
            "({rp}.region_code IN ({list}) OR {rp}.region_name IN ({list}))"
        ));
    }
    if !p.province.is_empty() {
        filters.push(format!(
            "{province} IN ({})",
            placeholders("province", &p.province)
        ));
    }
    if !p.cpi.is_empty() {
        filters.push(format!("{cpi} IN ({})", placeholders("cpi", &p.cpi)));
    }
    // The caller's territorial restriction (a manager's scope), on top of what was asked.
    if let Some(scope) = &p.scope {
        let mut any: Vec<String> = Vec::new();
        if !scope.provinces.is_empty() {
            any.push(format!(
                "{province} IN ({})",
                placeholders("scope_province", &scope.provinces)
            ));
        }
        if !scope.cpis.is_empty() {
            any.push(format!(
                "{cpi} IN ({})",
                placeholders("scope_cpi", &scope.cpis)
            ));
        }
        filters.push(if any.is_empty() {
            "FALSE".into()
        } else {
            format!("({})", any.join(" OR "))
        });
    }
    filters
}

/// A KPI file's query, ready to nest as a CTE: no trailing semicolon (the header comments stay,
/// harmless inside the CTE).
pub(super) fn kpi_body(sql: &str) -> &str {
    sql.trim().trim_end_matches(';')
}
