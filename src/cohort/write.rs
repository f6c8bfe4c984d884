//! The file itself: the spells as columns (days from the spell start or the pact, the
//! follow-up coarsened to the pact's month, the export pseudonym), in an order that gives no
//! exact date away, written as Parquet with its provenance in the metadata, atomically.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;

use super::kanon::{Anonymity, QUASI_IDENTIFIERS, STEPS, levels, published};
use super::spells::{STAGES, Spell, day_number, month_end, spells};
use super::{CohortError, DICTIONARY, arrow_err};
use crate::auth::disclosure::{DEFAULT_THRESHOLD, MIN_THRESHOLD};
use crate::privacy::{Key, Pseudonymiser};
use crate::query::Cohort;

/// What a written file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub rows: usize,
    pub anonymity: Anonymity,
}

/// What the file records about how it was made, so that one command regenerates it.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub command: String,
    pub generated_at: String,
    /// The k of the k-anonymity: the suppression threshold (`auth.suppression_threshold`).
    pub k: u64,
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
        for (flag, vals) in [("--region", &p.region), ("--province", &p.province)] {
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
            k: DEFAULT_THRESHOLD,
        }
    }

    /// The same, with the configured threshold as k (never below the legal minimum).
    pub fn with_k(mut self, threshold: u64) -> Provenance {
        self.k = threshold.max(MIN_THRESHOLD);
        self
    }
}

/// The pseudonymiser of exported files: keyed by HMAC(key, purpose), so its pseudonyms differ
/// from the store's.
fn export_pseudonymiser(key: &Key) -> Pseudonymiser {
    // The NUL byte keeps the purpose apart from any identifier the store pseudonymises.
    Pseudonymiser::new(&key.derive(b"\0mirato/export/cohort/v1"))
}

/// The file's schema.
pub fn file_schema() -> SchemaRef {
    use DataType::{Boolean, Int32, Utf8};
    let f = |name: &str, ty: DataType| Field::new(name, ty, true);
    let mut fields = vec![
        f("person_key", Utf8),
        f("spell_no", Int32),
        f("entry_period", Utf8),
    ];
    for name in [
        "region",
        "province",
        "gender",
        "age_band",
        "category",
        "list_type",
        "disability_band",
    ] {
        fields.push(f(name, Utf8));
    }
    fields.push(f("naspi", Boolean));
    fields.push(f("withheld", Utf8));
    for (_, name) in STAGES {
        fields.push(f(name, Int32));
    }
    fields.push(f("days_to_spell_end", Int32));
    fields.push(f("end_reason", Utf8));
    fields.push(f("days_to_first_hire", Int32));
    fields.push(f("followup_days", Int32));
    for name in ["followup_90", "followup_180", "followup_365"] {
        fields.push(f(name, Boolean));
    }
    fields.push(f("days_to_placement", Int32));
    fields.push(f("censored", Boolean));
    fields.push(f("censoring", Utf8));
    Arc::new(Schema::new(fields))
}

/// The file's rows, in order of entry period and export pseudonym (not of the exact date, which
/// the order would otherwise give away), with what the k-anonymity did.
pub fn file_batches(
    c: &Cohort,
    key: &Key,
    k: u64,
) -> Result<(SchemaRef, Vec<RecordBatch>, Anonymity), CohortError> {
    let spells = spells(c)?;
    let k = k.max(MIN_THRESHOLD);
    let levels = levels(&spells, k as usize);
    let obs_end = c.obs_end.map(day_number);
    let mut ps = export_pseudonymiser(key);
    struct Out<'a> {
        s: &'a Spell,
        person_key: String,
        level: usize,
        published: [Option<String>; 10],
    }
    let mut rows: Vec<Out> = spells
        .iter()
        .zip(&levels)
        .filter_map(|(s, l)| {
            l.map(|level| Out {
                s,
                person_key: ps.pseudonym(&s.person_id).to_string(),
                level,
                published: published(s, level),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.published[1], &a.person_key, a.s.spell_no).cmp(&(
            &b.published[1],
            &b.person_key,
            b.s.spell_no,
        ))
    });
    let anonymity = Anonymity {
        k,
        cohort_rows: spells.len(),
        rows: rows.len(),
        generalised: rows.iter().filter(|r| r.level > 0).count(),
        withheld: spells.len() - rows.len(),
        by_step: STEPS
            .iter()
            .enumerate()
            .map(|(i, step)| (*step, rows.iter().filter(|r| r.level > i).count()))
            .collect(),
    };
    let schema = file_schema();
    let text = |f: &dyn Fn(&Out) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let int = |f: &dyn Fn(&Out) -> Option<i32>| -> ArrayRef {
        Arc::new(Int32Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let boolean = |f: &dyn Fn(&Out) -> Option<bool>| -> ArrayRef {
        Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let since_start = |r: &Out, d: Option<i32>| Some(d? - r.s.spell_start?);
    // The follow-up as far as the file may show it: from the end of the pact's month.
    let coarse_followup = |r: &Out| -> Option<i32> {
        let pact = r.s.pact_date?;
        Some((obs_end? - month_end(pact)).max(0))
    };
    let mut cols: Vec<ArrayRef> = vec![
        text(&|r| Some(r.person_key.clone())),
        int(&|r| r.published[0].as_ref().and_then(|v| v.parse().ok())),
    ];
    for q in 1..=8 {
        cols.push(text(&|r| r.published[q].clone()));
    }
    cols.push(boolean(&|r| r.published[9].as_ref().map(|v| v == "true")));
    cols.push(text(&|r| Some(STEPS[..r.level].join(","))));
    for s in 0..STAGES.len() {
        cols.push(int(&|r| since_start(r, r.s.stages[s])));
    }
    cols.push(int(&|r| since_start(r, r.s.spell_end)));
    cols.push(text(&|r| r.s.end_reason.clone()));
    cols.push(int(&|r| r.s.days_to_first_hire));
    cols.push(int(&|r| coarse_followup(r)));
    for n in [90, 180, 365] {
        cols.push(boolean(&|r| r.s.followup_days.map(|f| f >= n)));
    }
    cols.push(int(&|r| match r.s.censoring.as_deref() {
        Some("observation_end") => coarse_followup(r),
        _ => r.s.days_to_placement,
    }));
    cols.push(boolean(&|r| r.s.censored));
    cols.push(text(&|r| r.s.censoring.clone()));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols).map_err(arrow_err)?;
    Ok((schema, vec![batch], anonymity))
}

/// Writes the cohort as Parquet to `w`, with its parameters and what the k-anonymity did in the
/// file's key-value metadata.
pub fn write_parquet<W: std::io::Write + Send>(
    c: &Cohort,
    key: &Key,
    prov: &Provenance,
    w: W,
) -> Result<Written, CohortError> {
    let (schema, batches, anonymity) = file_batches(c, key, prov.k)?;
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
        kv("k", anonymity.k.to_string()),
        kv("quasi_identifiers", QUASI_IDENTIFIERS.join(",")),
        kv("generalisation_steps", STEPS.join(",")),
        kv("cohort_rows", anonymity.cohort_rows.to_string()),
        kv("rows_generalised", anonymity.generalised.to_string()),
        kv("rows_withheld", anonymity.withheld.to_string()),
        kv(
            "rows_by_step",
            serde_json::Value::Object(
                anonymity
                    .by_step
                    .iter()
                    .map(|(s, n)| ((*s).to_owned(), serde_json::Value::from(*n)))
                    .collect(),
            )
            .to_string(),
        ),
        kv("anonymity", anonymity.summary()),
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
    let mut writer = ArrowWriter::try_new(w, schema, Some(props)).map_err(arrow_err)?;
    let mut rows = 0;
    for b in &batches {
        rows += b.num_rows();
        writer.write(b).map_err(arrow_err)?;
    }
    writer.close().map_err(arrow_err)?;
    Ok(Written { rows, anonymity })
}

/// Writes the file atomically (a temporary file renamed into place): a reader never sees half a
/// file, and a failed export leaves any earlier file as it was.
pub fn write_file(
    c: &Cohort,
    key: &Key,
    prov: &Provenance,
    out: &Path,
) -> Result<Written, CohortError> {
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
