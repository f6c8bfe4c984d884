//! The cohort query's rows as spells: each column cast to the plain type the file uses, the
//! dates kept exact (days since the epoch) until the file decides how much of them to show.

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use super::{CohortError, arrow_err};
use crate::query::Cohort;

/// One spell as read from the query: exact dates (days since the epoch), store pseudonym.
#[derive(Debug, Clone, Default)]
pub(super) struct Spell {
    pub(super) person_id: String,
    pub(super) spell_no: Option<i32>,
    pub(super) region: Option<String>,
    pub(super) province: Option<String>,
    pub(super) entry: i32,
    pub(super) gender: Option<String>,
    pub(super) age_band: Option<String>,
    pub(super) category: Option<String>,
    pub(super) list_type: Option<String>,
    pub(super) disability_band: Option<String>,
    pub(super) naspi: Option<bool>,
    pub(super) spell_start: Option<i32>,
    pub(super) stages: [Option<i32>; 6],
    pub(super) pact_date: Option<i32>,
    pub(super) spell_end: Option<i32>,
    pub(super) end_reason: Option<String>,
    pub(super) days_to_first_hire: Option<i32>,
    pub(super) followup_days: Option<i32>,
    pub(super) days_to_placement: Option<i32>,
    pub(super) censored: Option<bool>,
    pub(super) censoring: Option<String>,
}

/// The stage date columns, in the order of [`Spell::stages`] and of their `days_to_` columns.
pub(super) const STAGES: [(&str, &str); 6] = [
    ("basic_orientation_date", "days_to_basic_orientation"),
    ("pact_date", "days_to_pact"),
    (
        "specialist_orientation_date",
        "days_to_specialist_orientation",
    ),
    ("measure_start_date", "days_to_measure"),
    ("proposal_date", "days_to_proposal"),
    ("hire_date", "days_to_hire"),
];

fn column<'b>(b: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, CohortError> {
    b.column_by_name(name)
        .ok_or_else(|| CohortError::Arrow(format!("the cohort query has no column {name}")))
}

/// A column cast to `to`, as the array type `A` of that type.
fn typed<A: Array + Clone + 'static>(
    b: &RecordBatch,
    name: &str,
    to: &DataType,
) -> Result<A, CohortError> {
    let a = cast(column(b, name)?, to).map_err(arrow_err)?;
    a.as_any()
        .downcast_ref::<A>()
        .cloned()
        .ok_or_else(|| arrow_err(format!("{name} is not {to}")))
}

fn strings(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>, CohortError> {
    let a: StringArray = typed(b, name, &DataType::Utf8)?;
    Ok(a.iter().map(|v| v.map(str::to_owned)).collect())
}

fn ints(b: &RecordBatch, name: &str) -> Result<Vec<Option<i32>>, CohortError> {
    Ok(typed::<Int32Array>(b, name, &DataType::Int32)?
        .iter()
        .collect())
}

fn dates(b: &RecordBatch, name: &str) -> Result<Vec<Option<i32>>, CohortError> {
    Ok(typed::<Date32Array>(b, name, &DataType::Date32)?
        .iter()
        .collect())
}

fn bools(b: &RecordBatch, name: &str) -> Result<Vec<Option<bool>>, CohortError> {
    Ok(typed::<BooleanArray>(b, name, &DataType::Boolean)?
        .iter()
        .collect())
}

pub(super) fn spells(c: &Cohort) -> Result<Vec<Spell>, CohortError> {
    let mut out = Vec::with_capacity(c.rows());
    for b in &c.batches {
        let n = b.num_rows();
        let text = |name| strings(b, name);
        let (person, region, province) = (text("person_id")?, text("region")?, text("province")?);
        let (gender, age, category) = (text("gender")?, text("age_band")?, text("category")?);
        let (list, disability) = (text("list_type")?, text("disability_band")?);
        let (end_reason, censoring) = (text("end_reason")?, text("censoring")?);
        let (spell_no, to_hire) = (ints(b, "spell_no")?, ints(b, "days_to_first_hire")?);
        let (followup, to_placement) = (ints(b, "followup_days")?, ints(b, "days_to_placement")?);
        let (entry, start, end) = (
            dates(b, "entry_date")?,
            dates(b, "spell_start")?,
            dates(b, "spell_end")?,
        );
        let stages: Vec<Vec<Option<i32>>> = STAGES
            .iter()
            .map(|(name, _)| dates(b, name))
            .collect::<Result<_, _>>()?;
        let (naspi, censored) = (bools(b, "naspi")?, bools(b, "censored")?);
        for i in 0..n {
            out.push(Spell {
                person_id: person[i].clone().unwrap_or_default(),
                spell_no: spell_no[i],
                region: region[i].clone(),
                province: province[i].clone(),
                entry: entry[i]
                    .ok_or_else(|| CohortError::Arrow("a spell without entry date".into()))?,
                gender: gender[i].clone(),
                age_band: age[i].clone(),
                category: category[i].clone(),
                list_type: list[i].clone(),
                disability_band: disability[i].clone(),
                naspi: naspi[i],
                spell_start: start[i],
                stages: std::array::from_fn(|s| stages[s][i]),
                pact_date: stages[1][i],
                spell_end: end[i],
                end_reason: end_reason[i].clone(),
                days_to_first_hire: to_hire[i],
                followup_days: followup[i],
                days_to_placement: to_placement[i],
                censored: censored[i],
                censoring: censoring[i].clone(),
            });
        }
    }
    Ok(out)
}

pub(super) fn date_of(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::TimeDelta::days(days.into())
}

/// The last day of the month of `days`, as days since the epoch.
pub(super) fn month_end(days: i32) -> i32 {
    let d = date_of(days);
    let first_next = if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    }
    .expect("valid month");
    days + (first_next - d).num_days() as i32 - 1
}

/// The inverse of [`date_of`]: a date as days since the epoch.
pub(super) fn day_number(d: NaiveDate) -> i32 {
    (d - date_of(0)).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_end_where_they_should() {
        let day = |s: &str| day_number(s.parse().unwrap());
        assert_eq!(month_end(day("2024-02-10")), day("2024-02-29"));
        assert_eq!(month_end(day("2023-12-31")), day("2023-12-31"));
        assert_eq!(month_end(day("2025-01-01")), day("2025-01-31"));
    }
}
