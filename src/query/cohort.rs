//! The evaluators' cohort: one row per person and registration spell (`queries/_cohort.sql`),
//! selected by entry date and territory. The rows still carry the store's pseudonym and exact
//! dates; whoever writes them out replaces the one and coarsens the other (see `crate::cohort`).

use std::collections::HashMap;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;

use super::session::first_date;
use super::sql::{bound, dim_expr, kpi_body, territory_filters};
use super::{Engine, Params, QueryError, Resolved, catalog};

/// Which date puts a spell in the cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// The spell starts (application_accepted) in the period: the service_funnel's cohort.
    Registration,
    /// The spell's first pact is in the period: the cohort of the outcome KPIs.
    Pact,
}

impl Entry {
    pub fn parse(s: &str) -> Result<Entry, QueryError> {
        match s {
            "registration" => Ok(Entry::Registration),
            "pact" => Ok(Entry::Pact),
            other => Err(QueryError::bad(
                "entry",
                format!("entry '{other}' is not one of: registration, pact"),
                &["registration", "pact"],
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Entry::Registration => "registration",
            Entry::Pact => "pact",
        }
    }

    /// The entry date column, and the entry event's territory (the filters apply to it).
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Entry::Registration => ("spell_start", "province", "cpi"),
            Entry::Pact => ("pact_date", "pact_province", "pact_cpi"),
        }
    }
}

/// The cohort's rows and what reproduces them.
#[derive(Debug, Clone)]
pub struct Cohort {
    pub entry: Entry,
    pub params: Resolved,
    /// The latest event date as of `as_of`: where follow-up ends.
    pub obs_end: Option<NaiveDate>,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Cohort {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl Engine {
    /// The cohort of spells entering in the period (by `entry`), within the territorial filters
    /// and the caller's scope, ordered by entry date, person and spell.
    pub async fn cohort(&self, p: &Params, entry: Entry) -> Result<Cohort, QueryError> {
        if !p.by.is_empty() {
            return Err(QueryError::bad(
                "by",
                "the cohort file has one row per spell: it takes no breakdown",
                &[],
            ));
        }
        if !p.cpi.is_empty() {
            // The file leaves the CPI out (it made rows unique); selecting by it would put it
            // back, for every row, through the file's parameters.
            return Err(QueryError::bad(
                "cpi",
                "the cohort file is not selected by CPI: filter by region or province",
                &[],
            ));
        }
        let _turn = self.turn().await;
        let snap = self.snapshot(p.as_of)?;
        let mut values: HashMap<String, ScalarValue> = HashMap::new();
        let (date, province, cpi) = entry.columns();
        let mut filters = vec!["k.d BETWEEN $from AND $to".to_owned()];
        filters.extend(territory_filters(
            p,
            &format!("k.{province}"),
            &format!("k.{cpi}"),
            "rpe",
            &mut values,
        ));
        // The attributes are taken at the entry date `d`, as the KPIs of the same cohort take
        // them (the breakdown expressions are theirs); names come from fixed lists only.
        // The attributes are taken at the entry date `d`, as the KPIs of the same cohort take
        // them (the breakdown expressions are theirs); names come from fixed lists only. The
        // territory is the entry event's. Exact dates stay here: `crate::cohort` turns them into
        // months and durations before anything is written.
        let sql = format!(
            "WITH k0 AS (\n{body}\n),\nk AS (SELECT k0.*, k0.{date} AS d FROM k0)\n\
             SELECT k.person_id, k.spell_no, rpe.region_name AS region,\n\
               k.{province} AS province, k.d AS entry_date,\n\
               {gender} AS gender,\n\
               {age_band} AS age_band,\n\
               {category} AS category,\n\
               {list_type} AS list_type,\n\
               {disability} AS disability_band,\n\
               a.naspi,\n\
               k.spell_start, k.basic_orientation_date, k.pact_date,\n\
               k.specialist_orientation_date, k.measure_start_date, k.proposal_date, k.hire_date,\n\
               k.spell_end, k.end_reason, k.days_to_first_hire, k.followup_days,\n\
               k.days_to_placement, k.censored, k.censoring\n\
             FROM k\n\
             LEFT JOIN apps a ON a.person_id = k.person_id AND a.app_date <= k.d\n\
               AND (a.next_app_date IS NULL OR a.next_app_date > k.d)\n\
             LEFT JOIN ref_provinces rpe ON rpe.sigla = k.{province}\n\
             WHERE {}\n\
             ORDER BY k.d, k.person_id, k.spell_no",
            filters.join(" AND "),
            body = kpi_body(catalog::cohort_sql()),
            gender = dim_expr("gender"),
            age_band = dim_expr("age_band"),
            category = dim_expr("category"),
            list_type = dim_expr("list_type"),
            disability = dim_expr("disability_band"),
        );
        let (ctx, from, to) = self
            .prepare(&sql, snap.as_of_us, p, &mut values, false)
            .await?;
        let df = bound(&ctx, &sql, values).await?;
        let schema: SchemaRef = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = super::memory::collect(df).await?;
        let obs_end = first_date(&ctx.sql("SELECT obs_end FROM obs").await?.collect().await?);
        Ok(Cohort {
            entry,
            params: Resolved {
                from: from.to_string(),
                to: to.to_string(),
                by: Vec::new(),
                region: p.region.clone(),
                province: p.province.clone(),
                cpi: p.cpi.clone(),
                as_of: snap.as_of_text(),
                data_version: snap.data_version,
                scope: p.scope.clone(),
            },
            obs_end,
            schema,
            batches,
        })
    }
}
