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
//!
//! The files below: `spells` reads the cohort query's rows, `kanon` generalises them, `write`
//! builds the columns and writes the Parquet file. This one holds what they share: the error,
//! the columns' meaning, and the entry parsed from a CLI or URL value.

mod kanon;
mod spells;
mod write;

use std::path::PathBuf;

use crate::query::{Entry, QueryError};

pub use kanon::{Anonymity, QUASI_IDENTIFIERS, STEPS};
pub use write::{Provenance, Written, file_batches, file_schema, write_file, write_parquet};

#[derive(Debug, thiserror::Error)]
pub enum CohortError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("cannot build the cohort file: {0}")]
    Arrow(String),
}

fn arrow_err(e: impl std::fmt::Display) -> CohortError {
    CohortError::Arrow(e.to_string())
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
        "days from the spell start to the first employment hire (not a traineeship nor a work grant) within the spell",
    ),
    (
        "days_to_spell_end",
        "days from the spell start to the registration_cancelled that ends it",
    ),
    ("end_reason", "reason of that cancellation"),
    (
        "days_to_first_hire",
        "days from the pact to the first employment hire (not a traineeship nor a work grant) on or after it, any spell (placement_rate_N: <= N)",
    ),
    (
        "followup_days",
        "days from the end of the pact's month to the observation end: at most the real follow-up, without revealing the pact's day",
    ),
    (
        "followup_90",
        "the pact has 90 days of follow-up (placement_rate_90 counts the row unless it is censored before day 90)",
    ),
    ("followup_180", "the same for 180 days"),
    ("followup_365", "the same for 365 days"),
    (
        "days_to_placement",
        "time_to_placement's duration from the pact: to the placement, to a cancellation for deceased or moved before it, or (censored at the observation end) followup_days",
    ),
    (
        "censored",
        "true when days_to_placement ends without a placement (time_to_placement's event = 0)",
    ),
    (
        "censoring",
        "why: cancelled (for deceased or moved, before any employment hire) or observation_end",
    ),
];

/// Entry from a CLI/URL value.
pub fn parse_entry(s: Option<&str>) -> Result<Entry, QueryError> {
    Entry::parse(s.unwrap_or("registration"))
}
