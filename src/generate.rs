//! Synthetic source files for collocamento mirato: realistic event trails of persons through
//! the six CPI services, employers' vacancies and placements, written as regional batches in
//! the record layout of EVENTS.md.
//!
//! The data exists to exercise the platform end to end: every event type and every KPI of
//! KPIS.md, with the messiness real sources have (mixed timestamp styles, CF spelling,
//! omocodia, temporary codes, re-sent rows, rows that break a rule). What is deliberately wrong
//! is counted in the summary, so that an ingest of the output can be checked exactly:
//! `read = events`, `rejected = invalid_rows`, `duplicates = duplicate_rows`.
//!
//! The population is in steady state, as a real list is: most persons are already registered
//! on the first day (the opening stock, registered up to five years before), and the rest
//! register during the period at about 9% of the stock a year, as many as leave it. Of the
//! years before, only what the period's events rest on is sent: the opening stock's
//! applications and acceptances, first orientations and pacts, the measures still running and
//! the vacancies still open on the first day.
//!
//! Files: `events-<region_code>-<year>.csv` (or `.jsonl`, plus `.gz`), one batch per regional
//! system and calendar year of the period, rows sorted by their Rome date; the first year's
//! batch also carries the events of the years before (as a system's first batch carries its
//! open cases). Rows re-sent from earlier batches (duplicates and conflicts) close the file
//! they are re-sent in. Files already in the output folder are overwritten when their name
//! comes up again and otherwise left alone.
//!
//! Output is deterministic: the same options give byte-identical files. Each region has its
//! own random streams, and regions are generated and written one at a time, which is what
//! keeps a national-scale run (800,000 persons, ~20 million rows) within a few hundred MB.
//!
//! This file holds the options, the summary and the driver, region by region. Below it: `sim`
//! simulates a region, `write` numbers, faults and writes its batches, `render` turns an event
//! into a row; `model`, `ids`, `population` and `faults` hold what they draw from.

mod faults;
mod ids;
mod model;
mod population;
mod render;
mod sim;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};

use crate::reference;
use sim::{SimConfig, Territory, from_date};
use write::write_region;

pub use population::province_population;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Jsonl,
}

impl OutputFormat {
    fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Jsonl => "jsonl",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub persons: u64,
    pub seed: u64,
    pub out: PathBuf,
    pub format: OutputFormat,
    /// Write `.csv.gz` / `.jsonl.gz`.
    pub gzip: bool,
    pub start: NaiveDate,
    /// No event (by its Europe/Rome date) falls after it.
    pub end: NaiveDate,
    /// Share of rows that deliberately break a rule of the contract.
    pub error_rate: f64,
    /// Share of rows sent again, identically, in a later (or the same) file.
    pub duplicate_rate: f64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GenerateSummary {
    /// Files written, in the order a batch ingest should read them (region, then year).
    pub files: Vec<PathBuf>,
    pub persons: u64,
    /// Rows written, of every kind.
    pub events: u64,
    /// Rows a correct ingest rejects: rule violations plus event_id conflicts.
    pub invalid_rows: u64,
    /// Rows a correct ingest skips as duplicates.
    pub duplicate_rows: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid generate options: {0}")]
    InvalidOptions(String),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Above this a region's person index (u32) could overflow; far beyond any real need.
const MAX_PERSONS: u64 = 100_000_000;
/// Of the deliberately bad rows, this share are event_id conflicts rather than rule breaks.
const CONFLICT_SHARE: f64 = 0.1;

fn check_options(opts: &GenerateOptions) -> Result<(), GenerateError> {
    let bad = |m: String| Err(GenerateError::InvalidOptions(m));
    let floor = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    if opts.start < floor {
        return bad(format!(
            "start {} is before 2000-01-01, which the event contract rejects; choose a later start",
            opts.start
        ));
    }
    if opts.end < opts.start {
        return bad(format!(
            "end {} is before start {}; choose an end on or after the start",
            opts.end, opts.start
        ));
    }
    for (name, r) in [
        ("error rate", opts.error_rate),
        ("duplicate rate", opts.duplicate_rate),
    ] {
        if !(0.0..=1.0).contains(&r) {
            return bad(format!("the {name} {r} must be between 0 and 1"));
        }
    }
    if opts.error_rate + opts.duplicate_rate > 1.0 {
        return bad("the error rate and the duplicate rate together must not exceed 1".into());
    }
    if opts.persons > MAX_PERSONS {
        return bad(format!(
            "{} persons is more than the {MAX_PERSONS} this generator supports",
            opts.persons
        ));
    }
    Ok(())
}

/// Generates the files; see the module documentation for what they contain.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    check_options(opts)?;
    fs::create_dir_all(&opts.out).map_err(|source| GenerateError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let provinces = reference::provinces();
    let pops: Vec<u64> = provinces
        .iter()
        .map(|p| u64::from(province_population(p.sigla)))
        .collect();
    let per_province = population::apportion(opts.persons, &pops);
    let cpis = population::cpis_per_province(&pops);

    let progress = if opts.progress {
        let style = ProgressStyle::with_template(
            "{spinner} {msg:<22} [{bar:40}] {human_pos}/{human_len} persons ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        ProgressBar::new(opts.persons).with_style(style)
    } else {
        ProgressBar::hidden()
    };

    let mut summary = GenerateSummary {
        persons: opts.persons,
        ..GenerateSummary::default()
    };
    let mut taken = HashSet::new();
    for (ri, (rc, name)) in reference::regions().into_iter().enumerate() {
        progress.set_message(name);
        let territories: Vec<Territory> = provinces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.region_code == rc)
            .map(|(i, p)| Territory {
                global: i as u8,
                code: p.code,
                cpis: cpis[i].min(u32::from(u8::MAX)) as u8,
                persons: per_province[i],
            })
            .collect();
        let cfg = SimConfig {
            seed: opts.seed,
            region_index: ri,
            start: from_date(opts.start),
            end: from_date(opts.end),
            history: from_date(sim::history_start(opts.start)),
        };
        let data = sim::simulate_region(cfg, &territories, &mut taken, &progress);
        tracing::debug!(region = rc, events = data.events.len(), "region simulated");
        write_region(opts, ri, rc, data, &mut summary)?;
    }
    progress.finish_and_clear();
    Ok(summary)
}
