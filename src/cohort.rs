//! The evaluators' analysis file: the cohort of registration spells as one Parquet file that
//! pandas, polars, R's arrow and DuckDB read as it is (plain UTF-8 strings, 32-bit integers and
//! booleans; no dictionary or view types, no time zones).
//!
//! The file must not lead back to a person, in the store or elsewhere:
//! - persons appear under an export pseudonym: HMAC of the store's pseudonym under a key derived
//!   from the pseudonymisation key for this purpose only. It is stable across exports (an
//!   evaluator can follow a person from one file to the next) but cannot be joined with the
//!   store, the quarantine or the audit log;
//! - no CPI, no age (bands only), no calendar date finer than the entry month: the stages and
//!   outcomes are days from the spell start or the pact. The follow-up to the observation end
//!   (a date everyone knows) would give the exact pact date back, so it is counted from the end
//!   of the pact's month (never more than the real follow-up), with exact flags for the KPIs'
//!   90, 180 and 365 days;
//! - k-anonymity on the quasi-identifiers left ([`QUASI_IDENTIFIERS`]): every combination of
//!   their published values is shared by at least k rows, k being the suppression threshold.
//!   Rows of smaller groups are generalised step by step ([`STEPS`]); the steps each row took are
//!   in its `withheld` column, and the counts in the file's metadata and the command's output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;

use crate::auth::disclosure::{DEFAULT_THRESHOLD, MIN_THRESHOLD};
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
        "1 for the person's first registration spell in the store, 2 for the next, ...; null when withheld",
    ),
    (
        "entry_period",
        "month of the entry (the spell start, or the pact with --entry pact) as YYYY-MM; YYYY-Qn or YYYY when generalised, null when withheld",
    ),
    (
        "region",
        "region of the entry event (the spell's acceptance, or the pact)",
    ),
    ("province", "province (sigla) of the entry event"),
    (
        "gender",
        "M, F or unknown, from the latest application on or before the entry date, as the KPIs of the same cohort take it",
    ),
    (
        "age_band",
        "15-29, 30-54, 55+ or unknown: entry year - birth year",
    ),
    ("category", "category of that application, or unknown"),
    ("list_type", "art1, art18 or unknown"),
    ("disability_band", "<46, 46-66, 67-79, 80-100 or n/a"),
    (
        "naspi",
        "NASpI recipient at that application (null when not given or withheld)",
    ),
    (
        "withheld",
        "the quasi-identifiers generalised or withheld in this row for k-anonymity, in the order applied (empty: none)",
    ),
    (
        "days_to_basic_orientation",
        "days from the spell start to the first basic_orientation within the spell",
    ),
    (
        "days_to_pact",
        "days from the spell start to the spell's first pact_signed: the cohort event of the outcome KPIs",
    ),
    (
        "days_to_specialist_orientation",
        "days from the spell start to the first specialist_orientation within the spell",
    ),
    (
        "days_to_measure",
        "days from the spell start to the first measure_started within the spell",
    ),
    (
        "days_to_proposal",
        "days from the spell start to the first candidate_proposed within the spell",
    ),
    (
        "days_to_hire",
        "days from the spell start to the first hired within the spell",
    ),
    (
        "days_to_spell_end",
        "days from the spell start to the registration_cancelled that ends it",
    ),
    ("end_reason", "reason of that cancellation"),
    (
        "days_to_first_hire",
        "days from the pact to the first hired on or after it, any spell (placement_rate_N: <= N)",
    ),
    (
        "followup_days",
        "days from the end of the pact's month to the observation end: at most the real follow-up, without revealing the pact's day",
    ),
    (
        "followup_90",
        "the pact has 90 days of follow-up (placement_rate_90 counts the row)",
    ),
    ("followup_180", "the same for 180 days"),
    ("followup_365", "the same for 365 days"),
    (
        "days_to_placement",
        "time_to_placement's duration from the pact: to the placement, the cancellation, or (censored at the observation end) followup_days",
    ),
    (
        "censored",
        "true when days_to_placement ends without a placement (time_to_placement's event = 0)",
    ),
    ("censoring", "why: cancelled or observation_end"),
];

/// The columns that, together, could single a person out to someone who knows them from
/// elsewhere; the k-anonymity holds on these (with `withheld`).
pub const QUASI_IDENTIFIERS: &[&str] = &[
    "spell_no",
    "entry_period",
    "region",
    "province",
    "gender",
    "age_band",
    "category",
    "list_type",
    "disability_band",
    "naspi",
];

/// The generalisation steps, in order: least useful to evaluators first. A row in a group of
/// fewer than k rows takes the next step; `entry_month` shows the quarter instead of the month,
/// `entry_quarter` the year, `entry_year` nothing; every other step withholds that column.
pub const STEPS: &[&str] = &[
    "province",
    "entry_month",
    "naspi",
    "spell_no",
    "entry_quarter",
    "disability_band",
    "category",
    "region",
    "age_band",
    "gender",
    "list_type",
    "entry_year",
];

/// What the k-anonymity did to the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anonymity {
    /// Every group of quasi-identifier values has at least this many rows.
    pub k: u64,
    /// Spells in the cohort.
    pub cohort_rows: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows written with at least one quasi-identifier generalised or withheld.
    pub generalised: usize,
    /// Rows left out: only when the whole cohort has fewer than k rows.
    pub withheld: usize,
    /// Rows written that took each step of [`STEPS`], in order.
    pub by_step: Vec<(&'static str, usize)>,
}

impl Anonymity {
    /// How many rows took each step (those that some did).
    pub fn detail(&self) -> String {
        let steps: Vec<String> = self
            .by_step
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        format!("rows per generalisation step: {}", steps.join(", "))
    }

    /// One line for the command's output and the HTTP headers' readers.
    pub fn summary(&self) -> String {
        format!(
            "k-anonymity (k = {}): {} of {} rows generalised, {} withheld",
            self.k, self.generalised, self.cohort_rows, self.withheld
        )
    }
}

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

/// One spell as read from the query: exact dates (days since the epoch), store pseudonym.
#[derive(Debug, Clone, Default)]
struct Spell {
    person_id: String,
    spell_no: Option<i32>,
    region: Option<String>,
    province: Option<String>,
    entry: i32,
    gender: Option<String>,
    age_band: Option<String>,
    category: Option<String>,
    list_type: Option<String>,
    disability_band: Option<String>,
    naspi: Option<bool>,
    spell_start: Option<i32>,
    stages: [Option<i32>; 6],
    pact_date: Option<i32>,
    spell_end: Option<i32>,
    end_reason: Option<String>,
    days_to_first_hire: Option<i32>,
    followup_days: Option<i32>,
    days_to_placement: Option<i32>,
    censored: Option<bool>,
    censoring: Option<String>,
}

/// The stage date columns, in the order of [`Spell::stages`] and of their `days_to_` columns.
const STAGES: [(&str, &str); 6] = [
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

fn arrow_err(e: impl std::fmt::Display) -> CohortError {
    CohortError::Arrow(e.to_string())
}

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

fn spells(c: &Cohort) -> Result<Vec<Spell>, CohortError> {
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

fn date_of(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::TimeDelta::days(days.into())
}

/// The last day of the month of `days`, as days since the epoch.
fn month_end(days: i32) -> i32 {
    let d = date_of(days);
    let first_next = if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    }
    .expect("valid month");
    days + (first_next - d).num_days() as i32 - 1
}

/// The published quasi-identifiers of a spell that took the first `level` steps of [`STEPS`].
fn published(s: &Spell, level: usize) -> [Option<String>; 10] {
    let took = |step: &str| STEPS[..level].contains(&step);
    let keep = |step: &str, v: &Option<String>| if took(step) { None } else { v.clone() };
    let d = date_of(s.entry);
    let period = if took("entry_year") {
        None
    } else if took("entry_quarter") {
        Some(d.year().to_string())
    } else if took("entry_month") {
        Some(format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1))
    } else {
        Some(format!("{}-{:02}", d.year(), d.month()))
    };
    [
        if took("spell_no") {
            None
        } else {
            s.spell_no.map(|n| n.to_string())
        },
        period,
        keep("region", &s.region),
        keep("province", &s.province),
        keep("gender", &s.gender),
        keep("age_band", &s.age_band),
        keep("category", &s.category),
        keep("list_type", &s.list_type),
        keep("disability_band", &s.disability_band),
        if took("naspi") {
            None
        } else {
            s.naspi.map(|b| b.to_string())
        },
    ]
}

/// Generalisation levels (how many [`STEPS`] each spell took) such that every group of equal
/// published quasi-identifiers and level has at least `k` spells; `None` for a spell left out.
///
/// Local recoding: only the spells of groups smaller than k take the next step, so the others
/// keep every detail. Spells still in a small group after every step (all in one group, since
/// nothing is left to tell them apart) are joined by the smallest group that is large enough;
/// only a cohort of fewer than k spells is left out whole.
fn levels(spells: &[Spell], k: usize) -> Vec<Option<usize>> {
    let mut level = vec![0usize; spells.len()];
    let key = |i: usize, level: &[usize]| (level[i], published(&spells[i], level[i]));
    for step in 0..=STEPS.len() {
        let mut groups: HashMap<_, Vec<usize>> = HashMap::new();
        for i in 0..spells.len() {
            groups.entry(key(i, &level)).or_default().push(i);
        }
        let small: Vec<usize> = groups
            .values()
            .filter(|g| g.len() < k)
            .flatten()
            .copied()
            .collect();
        if small.is_empty() {
            break;
        }
        if step < STEPS.len() {
            for i in small {
                level[i] = step + 1;
            }
            continue;
        }
        // Every step taken and still fewer than k: add the large group that loses least, the
        // most generalised already, then the smallest (then the first in row order, so the same
        // cohort always gives the same file).
        let donor = groups
            .values()
            .filter(|g| g.len() >= k)
            .min_by_key(|g| (std::cmp::Reverse(level[g[0]]), g.len(), g[0]));
        return match donor {
            Some(g) => {
                for &i in g {
                    level[i] = STEPS.len();
                }
                level.into_iter().map(Some).collect()
            }
            None => vec![None; spells.len()],
        };
    }
    level.into_iter().map(Some).collect()
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
    let obs_end = c.obs_end.map(|d| (d - date_of(0)).num_days() as i32);
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

/// Entry from a CLI/URL value.
pub fn parse_entry(s: Option<&str>) -> Result<Entry, QueryError> {
    Entry::parse(s.unwrap_or("registration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> i32 {
        (NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap() - date_of(0)).num_days() as i32
    }

    fn spell(province: &str, entry: &str) -> Spell {
        Spell {
            spell_no: Some(1),
            region: Some("Lombardia".into()),
            province: Some(province.into()),
            entry: day(entry),
            gender: Some("F".into()),
            ..Spell::default()
        }
    }

    #[test]
    fn months_end_where_they_should() {
        assert_eq!(month_end(day("2024-02-10")), day("2024-02-29"));
        assert_eq!(month_end(day("2023-12-31")), day("2023-12-31"));
        assert_eq!(month_end(day("2025-01-01")), day("2025-01-31"));
    }

    #[test]
    fn small_groups_are_generalised_and_large_ones_kept() {
        // Five in Milan and five in Bergamo in March, one in Como: Como's province goes first,
        // then its month, and so on; alone to the end, it is joined by the first large group.
        let mut spells: Vec<Spell> = (0..5).map(|_| spell("MI", "2024-03-05")).collect();
        spells.extend((0..5).map(|_| spell("BG", "2024-03-20")));
        spells.push(spell("CO", "2024-03-09"));
        let l = levels(&spells, 5);
        assert_eq!(l[..5], [Some(STEPS.len()); 5]);
        assert_eq!(l[5..10], [Some(0); 5]);
        assert_eq!(l[10], Some(STEPS.len()));
        assert_eq!(
            published(&spells[10], STEPS.len()),
            std::array::from_fn(|_| None)
        );
        assert_eq!(
            published(&spells[5], 0)[..4],
            [
                Some("1".into()),
                Some("2024-03".into()),
                Some("Lombardia".into()),
                Some("BG".into())
            ]
        );
        // Two Como spells in the same quarter as three more: the month and province go.
        let mut spells: Vec<Spell> = (0..3).map(|_| spell("CO", "2024-02-01")).collect();
        spells.extend((0..2).map(|_| spell("CO", "2024-03-09")));
        spells.extend((0..5).map(|_| spell("MI", "2024-03-05")));
        let l = levels(&spells, 5);
        assert_eq!(l[..5], [Some(2); 5]);
        assert_eq!(published(&spells[0], 2)[1], Some("2024-Q1".into()));
        assert_eq!(l[5..], [Some(0); 5]);
        // A cohort smaller than k is withheld whole.
        assert_eq!(levels(&spells[..4], 5), [None; 4]);
    }
}
