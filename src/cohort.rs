//! The evaluators' analysis file: the cohort of registration spells as one Parquet file that
//! pandas, polars, R's arrow and DuckDB read as it is (plain UTF-8 strings, dates, 32-bit
//! integers and booleans; no dictionary or view types, no time zones).
//!
//! Persons appear under an export pseudonym: HMAC of the store's pseudonym under a key derived
//! from the pseudonymisation key for this purpose only. It is stable across exports (an evaluator
//! can follow a person from one file to the next) but cannot be joined with the store, the
//! quarantine or the audit log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;

use crate::privacy::{Key, Pseudonymiser};
use crate::query::{Cohort, Entry, QueryError};

#[derive(Debug, thiserror::Error)]
pub enum CohortError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("cannot build the cohort file: {0}")]
    Arrow(String),
}

/// What each column means, stored in the file (`mirato.dictionary`) and printed in the README.
pub const DICTIONARY: &[(&str, &str)] = &[
    (
        "person_key",
        "export pseudonym of the person (stable across exports, not joinable with the store)",
    ),
    (
        "spell_no",
        "1 for the person's first registration spell in the store, 2 for the next, ...",
    ),
    ("region", "region of the spell's acceptance"),
    ("province", "province (sigla) of the spell's acceptance"),
    ("cpi", "CPI code of the spell's acceptance"),
    (
        "gender",
        "M, F or unknown, from the latest application on or before the entry date (the spell start, or the pact with --entry pact), as the KPIs of the same cohort take it",
    ),
    ("age_at_entry", "entry year - birth year"),
    (
        "age_band",
        "15-29, 30-54, 55+ or unknown, from age_at_entry",
    ),
    ("category", "category of that application, or unknown"),
    ("list_type", "art1, art18 or unknown"),
    ("disability_band", "<46, 46-66, 67-79, 80-100 or n/a"),
    ("naspi", "NASpI recipient at that application"),
    (
        "application_date",
        "date of the latest application on or before the entry date",
    ),
    (
        "spell_start",
        "date of the application_accepted that starts the spell",
    ),
    (
        "basic_orientation_date",
        "first basic_orientation within the spell",
    ),
    (
        "pact_date",
        "first pact_signed within the spell: the cohort event of the outcome KPIs",
    ),
    (
        "pact_region",
        "region of that pact (the territory of the outcome KPIs)",
    ),
    ("pact_province", "province of that pact"),
    ("pact_cpi", "CPI of that pact"),
    (
        "specialist_orientation_date",
        "first specialist_orientation within the spell",
    ),
    (
        "measure_start_date",
        "first measure_started within the spell",
    ),
    ("proposal_date", "first candidate_proposed within the spell"),
    ("hire_date", "first hired within the spell"),
    (
        "spell_end",
        "date of the registration_cancelled that ends the spell",
    ),
    ("end_reason", "reason of that cancellation"),
    (
        "days_to_first_hire",
        "days from the pact to the first hired on or after it, any spell (placement_rate_N: <= N)",
    ),
    (
        "followup_days",
        "days from the pact to the observation end (placement_rate_N counts the row when >= N)",
    ),
    (
        "days_to_placement",
        "time_to_placement's duration: days from the pact to the placement or the censoring",
    ),
    (
        "censored",
        "true when days_to_placement ends without a placement (time_to_placement's event = 0)",
    ),
    ("censoring", "why: cancelled or observation_end"),
];

/// What the file records about how it was made, so that one command regenerates it.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub command: String,
    pub generated_at: String,
}

impl Provenance {
    pub fn for_cohort(c: &Cohort) -> Provenance {
        let p = &c.params;
        let mut cmd = format!(
            "mirato export cohort --entry {} --from {} --to {} --as-of {}",
            c.entry.as_str(),
            p.from,
            p.to,
            p.as_of
        );
        for (flag, vals) in [
            ("--region", &p.region),
            ("--province", &p.province),
            ("--cpi", &p.cpi),
        ] {
            if !vals.is_empty() {
                // Shell-quoted: region names hold apostrophes (Valle d'Aosta).
                let v = vals.join(",").replace('\'', "'\\''");
                cmd.push_str(&format!(" {flag} '{v}'"));
            }
        }
        cmd.push_str(" --out FILE.parquet");
        Provenance {
            command: cmd,
            generated_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// The pseudonymiser of exported files: keyed by HMAC(key, purpose), so its pseudonyms differ
/// from the store's.
fn export_pseudonymiser(key: &Key) -> Pseudonymiser {
    // The NUL byte keeps the purpose apart from any identifier the store pseudonymises.
    Pseudonymiser::new(&key.derive(b"\0mirato/export/cohort/v1"))
}

/// The file's schema and batches: `person_id` replaced by `person_key`, other columns in the
/// plain types every reader knows.
pub fn file_batches(c: &Cohort, key: &Key) -> Result<(SchemaRef, Vec<RecordBatch>), CohortError> {
    let mut fields: Vec<Field> = Vec::new();
    for f in c.schema.fields() {
        let (name, ty) = if f.name() == "person_id" {
            ("person_key".to_owned(), DataType::Utf8)
        } else {
            let ty = match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => {
                    DataType::Utf8
                }
                DataType::Int64 | DataType::Int16 | DataType::Int8 => DataType::Int32,
                other => other.clone(),
            };
            (f.name().clone(), ty)
        };
        fields.push(Field::new(name, ty, true));
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut ps = export_pseudonymiser(key);
    let mut out = Vec::with_capacity(c.batches.len());
    for b in &c.batches {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
        for (i, f) in c.schema.fields().iter().enumerate() {
            let col = b.column(i);
            if f.name() == "person_id" {
                let ids =
                    cast(col, &DataType::Utf8).map_err(|e| CohortError::Arrow(e.to_string()))?;
                let ids = ids
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8 gives a StringArray");
                let mut keys = StringBuilder::with_capacity(ids.len(), ids.len() * 32);
                for id in ids.iter() {
                    keys.append_option(id.map(|v| ps.pseudonym(v)));
                }
                cols.push(Arc::new(keys.finish()));
            } else {
                cols.push(
                    cast(col, schema.field(i).data_type())
                        .map_err(|e| CohortError::Arrow(e.to_string()))?,
                );
            }
        }
        out.push(
            RecordBatch::try_new(Arc::clone(&schema), cols)
                .map_err(|e| CohortError::Arrow(e.to_string()))?,
        );
    }
    Ok((schema, out))
}

/// Writes the cohort as Parquet to `w`, with its parameters in the file's key-value metadata.
pub fn write_parquet<W: std::io::Write + Send>(
    c: &Cohort,
    key: &Key,
    prov: &Provenance,
    w: W,
) -> Result<usize, CohortError> {
    let (schema, batches) = file_batches(c, key)?;
    let p = &c.params;
    let dictionary: serde_json::Map<String, serde_json::Value> = DICTIONARY
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let kv = |k: &str, v: String| KeyValue::new(format!("mirato.{k}"), v);
    let meta = vec![
        kv("entry", c.entry.as_str().to_owned()),
        kv("from", p.from.clone()),
        kv("to", p.to.clone()),
        kv("region", p.region.join(",")),
        kv("province", p.province.join(",")),
        kv("cpi", p.cpi.join(",")),
        kv(
            "scope",
            p.scope
                .as_ref()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .unwrap_or_default(),
        ),
        kv("as_of", p.as_of.clone()),
        kv("data_version", p.data_version.clone()),
        kv(
            "obs_end",
            c.obs_end.map(|d| d.to_string()).unwrap_or_default(),
        ),
        kv("generated_at", prov.generated_at.clone()),
        kv("command", prov.command.clone()),
        kv(
            "dictionary",
            serde_json::Value::Object(dictionary).to_string(),
        ),
    ];
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_key_value_metadata(Some(meta))
        .build();
    let mut writer = ArrowWriter::try_new(w, schema, Some(props))
        .map_err(|e| CohortError::Arrow(e.to_string()))?;
    let mut rows = 0;
    for b in &batches {
        rows += b.num_rows();
        writer
            .write(b)
            .map_err(|e| CohortError::Arrow(e.to_string()))?;
    }
    writer
        .close()
        .map_err(|e| CohortError::Arrow(e.to_string()))?;
    Ok(rows)
}

/// Writes the file atomically (a temporary file renamed into place): a reader never sees half a
/// file, and a failed export leaves any earlier file as it was.
pub fn write_file(
    c: &Cohort,
    key: &Key,
    prov: &Provenance,
    out: &Path,
) -> Result<usize, CohortError> {
    let err = |e: std::io::Error| CohortError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    let rows = write_parquet(c, key, prov, std::io::BufWriter::new(tmp.as_file()))?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(out).map_err(|e| err(e.error))?;
    Ok(rows)
}

/// Entry from a CLI/URL value.
pub fn parse_entry(s: Option<&str>) -> Result<Entry, QueryError> {
    Entry::parse(s.unwrap_or("registration"))
}
