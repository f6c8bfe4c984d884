//! The columns of the store's files, and rows turned into record batches: events by month
//! partition (sorted so that min/max statistics prune well), rejected rows for the quarantine.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder,
    StringArray, StringBuilder, TimestampMicrosecondArray, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::StoreError;
use crate::model::Event;
use crate::recordkey;

/// A record batch of one `(year, month)` partition.
pub type PartitionBatch = ((i32, u32), RecordBatch);

/// Splits events (any order) by month partition into record batches, each sorted by date and
/// type so that min/max statistics prune well. Pure: the ingest runs it on its reading thread.
pub fn partition_batches(
    events: &[Event],
    batch_id: &str,
    ingested_at_us: i64,
    record_seed: u64,
) -> Result<Vec<PartitionBatch>, StoreError> {
    // Sort references, not the (large) events themselves.
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_unstable_by(|a, b| {
        (a.occurred_date, a.event_type, a.occurred_at).cmp(&(
            b.occurred_date,
            b.event_type,
            b.occurred_at,
        ))
    });
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let ym = year_month(order[start].occurred_date);
        let mut end = start + 1;
        while end < order.len() && year_month(order[end].occurred_date) == ym {
            end += 1;
        }
        out.push((
            ym,
            events_to_batch(&order[start..end], batch_id, ingested_at_us, record_seed)?,
        ));
        start = end;
    }
    Ok(out)
}

fn year_month(days: i32) -> (i32, u32) {
    let d = date_from_days(days).expect("validated dates are in range");
    (d.year(), d.month())
}

/// A Date32 value as a date.
pub(super) fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days as i64))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The schema of the event files. Typed columns, one per contract field, plus derived ones.
pub fn events_schema() -> SchemaRef {
    use DataType::*;
    let f = |name: &str, t: DataType, nullable: bool| ArrowField::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("event_id", Utf8, false),
        f("event_type", Utf8, false),
        f("occurred_at", ts_type(), false),
        f("occurred_date", Date32, false),
        f("province", Utf8, false),
        f("region_code", Utf8, false),
        f("cpi_code", Utf8, false),
        f("person_id", Utf8, true),
        f("operator_id", Utf8, true),
        f("list_type", Utf8, true),
        f("category", Utf8, true),
        f("disability_pct", Int32, true),
        f("naspi", Boolean, true),
        f("education", Int32, true),
        f("gender", Utf8, true),
        f("birth_year", Int32, true),
        f("agency", Utf8, true),
        f("reason", Utf8, true),
        f("profiling_index", Float64, true),
        f("pact_id", Utf8, true),
        f("responsible_operator", Utf8, true),
        f("employability_profile", Utf8, true),
        f("search_acts", Int32, true),
        f("contact_frequency_days", Int32, true),
        f("search_proof_method", Utf8, true),
        f("avail_workshops", Boolean, true),
        f("avail_training", Boolean, true),
        f("avail_offers", Boolean, true),
        f("pact_complete", Boolean, true),
        f("review_outcome", Utf8, true),
        f("group_session", Boolean, true),
        f("skills_gap", Boolean, true),
        f("to_service", Utf8, true),
        f("support_type", Utf8, true),
        f("measure_id", Utf8, true),
        f("measure_type", Utf8, true),
        f("employer_id", Utf8, true),
        f("end_reason", Utf8, true),
        f("vacancy_id", Utf8, true),
        f("positions", Int32, true),
        f("request_type", Utf8, true),
        f("ateco_section", Utf8, true),
        f("profession_code", Utf8, true),
        f("channel", Utf8, true),
        f("close_reason", Utf8, true),
        f("contract_code", Utf8, true),
        f("contract_class", Utf8, true),
        f("contract_months", Int32, true),
        f("part_time", Boolean, true),
        f("hiring_mode", Utf8, true),
        f("stable_hire", Boolean, true),
        f("content_hash", Int64, false),
        f("batch_id", Utf8, false),
        f("ingested_at", ts_type(), false),
        // The record keys of `person_id` and `vacancy_id` (see `recordkey`).
        f(recordkey::PERSON_KEY, UInt32, true),
        f(recordkey::VACANCY_KEY, UInt32, true),
        // Version 2, the employers' side (docs/EVENTS-employers.md): last, so that a store of
        // version 1 takes them as an added suffix (see `delta::evolve`).
        f("reference_year", Int32, true),
        f("sector", Utf8, true),
        f("size_band", Utf8, true),
        f("base_workforce", Int32, true),
        f("reserved_art1", Int32, true),
        f("covered_art1", Int32, true),
        f("reserved_art18", Int32, true),
        f("covered_art18", Int32, true),
        f("agreement_id", Utf8, true),
        f("agreement_type", Utf8, true),
        f("planned_hires", Int32, true),
        f("duration_months", Int32, true),
        f("agreement_outcome", Utf8, true),
        f("exemption_pct", Int32, true),
        f("exempted_workers", Int32, true),
        f("period_start", Date32, true),
        f("period_end", Date32, true),
        f("suspension_reason", Utf8, true),
        f("to_province", Utf8, true),
        f("employer_obliged", Boolean, true),
    ]))
}

/// The columns of the events schema before version 2 of the contract: what a store written
/// then has (see `delta::evolve`).
pub const V1_COLUMNS: usize = 56;

/// Builds one record batch from events; columns follow [`events_schema`].
pub fn events_to_batch(
    ev: &[&Event],
    batch_id: &str,
    ingested_at_us: i64,
    record_seed: u64,
) -> Result<RecordBatch, StoreError> {
    fn key<'a>(ev: &[&'a Event], seed: u64, g: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
        Arc::new(
            ev.iter()
                .map(|e| g(e).map(|u| recordkey::record_key(seed, u.as_bytes()) as u32))
                .collect::<UInt32Array>(),
        )
    }
    fn s<'a>(ev: &[&'a Event], g: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
        Arc::new(ev.iter().map(|e| g(e)).collect::<StringArray>())
    }
    fn i32c(ev: &[&Event], g: impl Fn(&Event) -> Option<i32>) -> ArrayRef {
        Arc::new(ev.iter().map(|e| g(e)).collect::<Int32Array>())
    }
    fn b(ev: &[&Event], g: impl Fn(&Event) -> Option<bool>) -> ArrayRef {
        Arc::new(ev.iter().map(|e| g(e)).collect::<BooleanArray>())
    }
    let n = ev.len();
    let cols: Vec<ArrayRef> = vec![
        s(ev, |e| Some(e.event_id.as_str())),
        s(ev, |e| Some(e.event_type)),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(ev.iter().map(|e| e.occurred_at))
                .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from_iter_values(
            ev.iter().map(|e| e.occurred_date),
        )),
        s(ev, |e| Some(e.province)),
        s(ev, |e| Some(e.region_code)),
        s(ev, |e| Some(&*e.cpi_code)),
        s(ev, |e| e.person_id.as_deref()),
        s(ev, |e| e.operator_id.as_deref()),
        s(ev, |e| e.list_type),
        s(ev, |e| e.category),
        i32c(ev, |e| e.disability_pct),
        b(ev, |e| e.naspi),
        i32c(ev, |e| e.education),
        s(ev, |e| e.gender),
        i32c(ev, |e| e.birth_year),
        s(ev, |e| e.agency),
        s(ev, |e| e.reason),
        Arc::new(
            ev.iter()
                .map(|e| e.profiling_index)
                .collect::<Float64Array>(),
        ),
        s(ev, |e| e.pact_id.as_deref()),
        s(ev, |e| e.responsible_operator.as_deref()),
        s(ev, |e| e.employability_profile),
        i32c(ev, |e| e.search_acts),
        i32c(ev, |e| e.contact_frequency_days),
        s(ev, |e| e.search_proof_method),
        b(ev, |e| e.avail_workshops),
        b(ev, |e| e.avail_training),
        b(ev, |e| e.avail_offers),
        b(ev, |e| e.pact_complete),
        s(ev, |e| e.review_outcome),
        b(ev, |e| e.group_session),
        b(ev, |e| e.skills_gap),
        s(ev, |e| e.to_service),
        s(ev, |e| e.support_type),
        s(ev, |e| e.measure_id.as_deref()),
        s(ev, |e| e.measure_type),
        s(ev, |e| e.employer_id.as_deref()),
        s(ev, |e| e.end_reason),
        s(ev, |e| e.vacancy_id.as_deref()),
        i32c(ev, |e| e.positions),
        s(ev, |e| e.request_type),
        s(ev, |e| e.ateco_section.as_deref()),
        s(ev, |e| e.profession_code.as_deref()),
        s(ev, |e| e.channel),
        s(ev, |e| e.close_reason),
        s(ev, |e| e.contract_code.as_deref()),
        s(ev, |e| e.contract_class),
        i32c(ev, |e| e.contract_months),
        b(ev, |e| e.part_time),
        s(ev, |e| e.hiring_mode),
        b(ev, |e| e.stable_hire),
        Arc::new(Int64Array::from_iter_values(
            ev.iter().map(|e| e.content_hash),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            batch_id, n,
        ))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(ingested_at_us, n))
                .with_timezone("UTC"),
        ),
        key(ev, record_seed, |e| e.person_id.as_deref()),
        key(ev, record_seed, |e| e.vacancy_id.as_deref()),
        i32c(ev, |e| e.reference_year),
        s(ev, |e| e.sector),
        s(ev, |e| e.size_band),
        i32c(ev, |e| e.base_workforce),
        i32c(ev, |e| e.reserved_art1),
        i32c(ev, |e| e.covered_art1),
        i32c(ev, |e| e.reserved_art18),
        i32c(ev, |e| e.covered_art18),
        s(ev, |e| e.agreement_id.as_deref()),
        s(ev, |e| e.agreement_type),
        i32c(ev, |e| e.planned_hires),
        i32c(ev, |e| e.duration_months),
        s(ev, |e| e.agreement_outcome),
        i32c(ev, |e| e.exemption_pct),
        i32c(ev, |e| e.exempted_workers),
        Arc::new(ev.iter().map(|e| e.period_start).collect::<Date32Array>()),
        Arc::new(ev.iter().map(|e| e.period_end).collect::<Date32Array>()),
        s(ev, |e| e.suspension_reason),
        s(ev, |e| e.to_province),
        b(ev, |e| e.employer_obliged),
    ];
    Ok(RecordBatch::try_new(events_schema(), cols)?)
}

/// One rejected row, with its identifiers already masked.
#[derive(Debug, Clone)]
pub struct QuarantineRow {
    pub line: u64,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub province: Option<String>,
    pub cpi_code: Option<String>,
    pub rules: Vec<String>,
    pub reasons: Vec<String>,
    /// The row as read, as a JSON object, identifiers masked.
    pub row_json: String,
}

/// The schema of the quarantine files.
pub fn quarantine_schema() -> SchemaRef {
    use DataType::*;
    let list = || List(Arc::new(ArrowField::new("item", Utf8, true)));
    Arc::new(Schema::new(vec![
        ArrowField::new("batch_id", Utf8, false),
        ArrowField::new("source_file", Utf8, false),
        ArrowField::new("line", Int64, false),
        ArrowField::new("event_id", Utf8, true),
        ArrowField::new("event_type", Utf8, true),
        ArrowField::new("province", Utf8, true),
        ArrowField::new("cpi_code", Utf8, true),
        ArrowField::new("rules", list(), false),
        ArrowField::new("reasons", list(), false),
        ArrowField::new("row_json", Utf8, false),
        ArrowField::new("ingested_at", ts_type(), false),
    ]))
}

pub(super) fn quarantine_to_batch(
    rows: &[QuarantineRow],
    batch_id: &str,
    source_file: &str,
    ingested_at_us: i64,
) -> Result<RecordBatch, StoreError> {
    let n = rows.len();
    let list = |get: &dyn Fn(&QuarantineRow) -> &Vec<String>| -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for r in rows {
            for v in get(r) {
                b.values().append_value(v);
            }
            b.append(true);
        }
        Arc::new(b.finish())
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            batch_id, n,
        ))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            source_file,
            n,
        ))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.line as i64),
        )),
        Arc::new(
            rows.iter()
                .map(|r| r.event_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.event_type.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.province.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.cpi_code.as_deref())
                .collect::<StringArray>(),
        ),
        list(&|r| &r.rules),
        list(&|r| &r.reasons),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.row_json.as_str()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(ingested_at_us, n))
                .with_timezone("UTC"),
        ),
    ];
    // The list fields must match the schema's nullability exactly.
    let schema = quarantine_schema();
    let cols = cols
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                datafusion::arrow::compute::cast(&c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, cols)?)
}
