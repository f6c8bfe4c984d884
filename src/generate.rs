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
//! Files: `events-<region_code>-<year>.csv` (or `.jsonl`, plus `.gz`), one batch per regional
//! system and calendar year, rows sorted by their Rome date; rows re-sent from earlier batches
//! (duplicates and conflicts) close the file they are re-sent in. Files already in the output
//! folder are overwritten when their name comes up again and otherwise left alone.
//!
//! Output is deterministic: the same options give byte-identical files. Each region has its
//! own random streams, and regions are generated and written one at a time, which is what
//! keeps a national-scale run (800,000 persons, ~20 million rows) within a few hundred MB.

mod faults;
mod ids;
mod model;
mod population;
mod render;
mod sim;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use flate2::Compression;
use flate2::write::GzEncoder;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::reference;
use model::{Ev, FAULT_CONFLICT};
use render::{Renderer, Row, Sink};
use sim::{RegionData, SimConfig, Territory, from_date, to_date};

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
        };
        let data = sim::simulate_region(cfg, &territories, &mut taken, &progress);
        tracing::debug!(region = rc, events = data.events.len(), "region simulated");
        write_region(opts, ri, rc, data, &mut summary)?;
    }
    progress.finish_and_clear();
    Ok(summary)
}

/// Sorts a region's events, gives them ids, marks the deliberate faults, duplicates and
/// conflicts, and writes one file per calendar year.
fn write_region(
    opts: &GenerateOptions,
    region_index: usize,
    rc: &'static str,
    mut data: RegionData,
    summary: &mut GenerateSummary,
) -> Result<(), GenerateError> {
    let mut events = std::mem::take(&mut data.events);
    // Stable: events of the same date and time keep the simulation's (deterministic) order.
    events.sort_by_key(Ev::sort_key);
    let year_of = |e: &Ev| to_date(e.date).year();
    let mut year = i32::MIN;
    let mut n = 0u32;
    for ev in &mut events {
        let y = year_of(ev);
        if y != year {
            year = y;
            n = 0;
        }
        n += 1;
        ev.seq = n;
    }

    // A separate stream: faults and re-sends never change what the simulation produced.
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(1_000 + region_index as u64);
    let last_year = opts.end.year();
    let mut extras: Vec<(i32, Ev)> = Vec::new();
    for ev in &mut events {
        let u: f64 = rng.random();
        if u < opts.error_rate {
            summary.invalid_rows += 1;
            if rng.random_bool(CONFLICT_SHARE) {
                // The original stays valid; a later copy reuses its id with other content.
                let mut copy = *ev;
                copy.fault = FAULT_CONFLICT;
                extras.push((rng.random_range(year_of(ev)..=last_year), copy));
            } else {
                ev.fault = faults::choose(&mut rng, ev);
            }
        } else if u < opts.error_rate + opts.duplicate_rate {
            summary.duplicate_rows += 1;
            extras.push((rng.random_range(year_of(ev)..=last_year), *ev));
        }
    }
    // Re-sent rows close the file they are re-sent in, in the order they were picked.
    extras.sort_by_key(|(y, _)| *y);

    let start = from_date(opts.start);
    let end = from_date(opts.end);
    let mut renderer = Renderer::new(rc, &data, reference::provinces(), start, end);
    let mut row = Row::new();
    let (mut i, mut x) = (0usize, 0usize);
    for year in opts.start.year()..=last_year {
        let lo = i;
        while i < events.len() && year_of(&events[i]) == year {
            i += 1;
        }
        let xlo = x;
        while x < extras.len() && extras[x].0 == year {
            x += 1;
        }
        if lo == i && xlo == x {
            continue;
        }
        let mut name = format!("events-{rc}-{year}.{}", opts.format.extension());
        if opts.gzip {
            name.push_str(".gz");
        }
        let path = opts.out.join(name);
        let rows = events[lo..i]
            .iter()
            .chain(extras[xlo..x].iter().map(|(_, e)| e));
        write_file(&path, opts, rows, &mut renderer, &mut row)?;
        summary.events += (i - lo + x - xlo) as u64;
        summary.files.push(path);
    }
    Ok(())
}

fn write_rows<'e, W: Write>(
    mut sink: Sink<W>,
    rows: impl Iterator<Item = &'e Ev>,
    renderer: &mut Renderer<'_>,
    row: &mut Row,
) -> io::Result<W> {
    for ev in rows {
        renderer.render(ev, row);
        sink.write(row)?;
    }
    sink.finish()
}

fn open_sink<W: Write>(format: OutputFormat, w: W) -> io::Result<Sink<W>> {
    match format {
        OutputFormat::Csv => Sink::csv(w),
        OutputFormat::Jsonl => Ok(Sink::jsonl(w)),
    }
}

/// Writes one batch under a hidden temporary name and renames it into place, so that an
/// ingest watching the folder never picks up half a file.
fn write_file<'e>(
    path: &Path,
    opts: &GenerateOptions,
    rows: impl Iterator<Item = &'e Ev>,
    renderer: &mut Renderer<'_>,
    row: &mut Row,
) -> Result<(), GenerateError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.partial"));
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        const BUF: usize = 1 << 16;
        if opts.gzip {
            let gz = GzEncoder::new(BufWriter::with_capacity(BUF, file), Compression::default());
            let w = BufWriter::with_capacity(BUF, gz);
            let w = write_rows(open_sink(opts.format, w)?, rows, renderer, row)?;
            let gz = w.into_inner().map_err(|e| e.into_error())?;
            gz.finish()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
        } else {
            let w = BufWriter::with_capacity(BUF, file);
            let w = write_rows(open_sink(opts.format, w)?, rows, renderer, row)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        }
    })()
    .and_then(|()| fs::rename(&tmp, path));
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        GenerateError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::model::{COLUMNS, Kind};
    use super::*;
    use crate::codes;
    use chrono::DateTime;
    use chrono_tz::Europe::Rome;
    use std::collections::{BTreeMap, HashMap};
    use std::io::Read;

    fn options(out: &Path, persons: u64) -> GenerateOptions {
        GenerateOptions {
            persons,
            seed: 42,
            out: out.to_path_buf(),
            format: OutputFormat::Csv,
            gzip: false,
            start: NaiveDate::from_ymd_opt(2021, 1, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
            error_rate: 0.001,
            duplicate_rate: 0.001,
            progress: false,
        }
    }

    type Record = BTreeMap<String, String>;

    fn read_text(path: &Path) -> String {
        let bytes = fs::read(path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .unwrap();
            s
        } else {
            String::from_utf8(bytes).unwrap()
        }
    }

    /// Rows of a file as maps of their present fields (values as text).
    fn read_records(path: &Path) -> Vec<Record> {
        let text = read_text(path);
        let name = path.to_string_lossy();
        if name.contains(".csv") {
            let mut rd = csv::Reader::from_reader(text.as_bytes());
            let header = rd.headers().unwrap().clone();
            assert_eq!(
                header.iter().collect::<Vec<_>>(),
                COLUMNS.to_vec(),
                "{name}"
            );
            rd.records()
                .map(|r| {
                    let r = r.unwrap();
                    header
                        .iter()
                        .zip(r.iter())
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .collect()
        } else {
            text.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| {
                            let s = match v {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), s)
                        })
                        .collect()
                })
                .collect()
        }
    }

    fn rome_date(s: &str) -> Option<NaiveDate> {
        if s.len() == 10 {
            let b = s.as_bytes();
            if b[4] != b'-' || b[7] != b'-' {
                return None;
            }
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
        } else {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.with_timezone(&Rome).date_naive())
        }
    }

    /// The rules of EVENTS.md a row can break, as an independent check of the generator.
    fn violations(r: &Record) -> Vec<&'static str> {
        let g = |k: &str| r.get(k).map(String::as_str);
        let mut errs = Vec::new();
        let int = |k: &str, lo: i64, hi: i64| {
            g(k).is_none_or(|v| v.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n)))
        };
        let boolean = |k: &str| {
            g(k).is_none_or(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"))
        };
        let one_of = |k: &str, list: &[&str]| g(k).is_none_or(|v| list.contains(&v));
        let employer_ok = |k: &str| g(k).is_none_or(codes::is_valid_employer_id);
        let id_ok = g("event_id").is_some_and(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        });
        if !id_ok {
            errs.push("event_id");
        }
        let kind = Kind::ALL
            .iter()
            .copied()
            .find(|k| g("event_type") == Some(k.as_str()));
        let floor = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let today = chrono::Utc::now().date_naive();
        match g("occurred_at").and_then(rome_date) {
            Some(d) if d >= floor && d <= today + chrono::Days::new(1) => {}
            _ => errs.push("occurred_at"),
        }
        if g("province").and_then(reference::province).is_none() {
            errs.push("province");
        }
        if !g("cpi_code").is_some_and(|c| (1..=16).contains(&c.len())) {
            errs.push("cpi_code");
        }
        if g("operator_id").is_some_and(|o| o.len() > 32) {
            errs.push("operator_id");
        }
        let Some(kind) = kind else {
            errs.push("event_type");
            return errs;
        };
        if kind.has_person() {
            let ok = g("person_cf").is_some_and(|cf| {
                let cf = codes::normalise_cf(cf);
                codes::is_valid_cf16(&cf) || codes::is_valid_numeric11(&cf)
            });
            if !ok {
                errs.push("person_cf");
            }
        }
        let need = |k: &'static str, errs: &mut Vec<&'static str>| {
            if g(k).is_none() {
                errs.push(k);
            }
        };
        use Kind::*;
        match kind {
            ApplicationSubmitted => {
                need("list_type", &mut errs);
                need("category", &mut errs);
                if !one_of("list_type", &model::LIST_TYPES)
                    || !one_of("category", &model::CATEGORIES)
                {
                    errs.push("enum");
                }
                if !int("disability_pct", 0, 100) || !int("education", 0, 8) || !boolean("naspi") {
                    errs.push("range");
                }
                if !one_of("gender", &["M", "F"])
                    || !g("birth_date").is_none_or(|d| rome_date(d).is_some() && d.len() == 10)
                {
                    errs.push("person facts");
                }
                let pct = g("disability_pct").and_then(|v| v.parse::<i64>().ok());
                match g("category") {
                    Some("invalido_civile") if pct.is_none_or(|p| p <= 45) => {
                        errs.push("civile pct")
                    }
                    Some("invalido_lavoro") if pct.is_none_or(|p| p <= 33) => {
                        errs.push("lavoro pct")
                    }
                    Some("invalido_servizio") if pct.is_none() => errs.push("servizio pct"),
                    _ => {}
                }
                if (g("list_type") == Some("art18")) != (g("category") == Some("art18")) {
                    errs.push("art18");
                }
            }
            CertificationRequested => {
                need("agency", &mut errs);
                if !one_of("agency", &model::AGENCIES) {
                    errs.push("enum");
                }
            }
            ApplicationPreRejected | ApplicationRejected => {
                need("reason", &mut errs);
                if !one_of("reason", &model::DECISION_REASONS) {
                    errs.push("enum");
                }
            }
            RegistrationCancelled => {
                need("reason", &mut errs);
                if !one_of("reason", &model::CANCEL_REASONS) {
                    errs.push("enum");
                }
            }
            QualitativeProfiling
                if g("profiling_index")
                    .is_some_and(|v| !v.parse::<f64>().is_ok_and(|x| (0.0..=1.0).contains(&x))) =>
            {
                errs.push("range")
            }
            PactSigned | PactUpdated => {
                need("pact_id", &mut errs);
                if !one_of("employability_profile", &model::PROFILES)
                    || !one_of("search_proof_method", &model::PROOF_METHODS)
                {
                    errs.push("enum");
                }
                if !int("search_acts", 0, i64::MAX) || !int("contact_frequency_days", 1, i64::MAX) {
                    errs.push("range");
                }
                if !boolean("avail_workshops")
                    || !boolean("avail_training")
                    || !boolean("avail_offers")
                {
                    errs.push("bool");
                }
            }
            PactReview => {
                need("pact_id", &mut errs);
                need("review_outcome", &mut errs);
                if !one_of("review_outcome", &model::REVIEW_OUTCOMES) {
                    errs.push("enum");
                }
            }
            SpecialistOrientation if !boolean("group") => errs.push("bool"),
            SkillsAssessment if !boolean("skills_gap") => errs.push("bool"),
            Referral => {
                need("to_service", &mut errs);
                if !one_of("to_service", &model::TO_SERVICES) {
                    errs.push("enum");
                }
            }
            JobSearchSupport => {
                need("support_type", &mut errs);
                if !one_of("support_type", &model::SUPPORT_TYPES) {
                    errs.push("enum");
                }
            }
            MeasureStarted => {
                need("measure_id", &mut errs);
                need("measure_type", &mut errs);
                if !one_of("measure_type", &model::MEASURE_TYPES) || !employer_ok("employer_id") {
                    errs.push("enum");
                }
            }
            TutoringMeeting => need("measure_id", &mut errs),
            MeasureEnded => {
                need("measure_id", &mut errs);
                need("end_reason", &mut errs);
                if !one_of("end_reason", &model::MEASURE_END_REASONS) {
                    errs.push("enum");
                }
            }
            VacancyOpened => {
                for k in ["vacancy_id", "employer_id", "positions", "request_type"] {
                    need(k, &mut errs);
                }
                if !employer_ok("employer_id") || !one_of("request_type", &model::REQUEST_TYPES) {
                    errs.push("enum");
                }
                if !int("positions", 1, i64::MAX) {
                    errs.push("positions");
                }
                if !g("ateco_section").is_none_or(|a| a.len() == 1 && ("A"..="U").contains(&a)) {
                    errs.push("ateco");
                }
                let cp_ok = g("profession_code").is_none_or(|p| {
                    let levels: Vec<&str> = p.split('.').collect();
                    (1..=5).contains(&levels.len())
                        && levels
                            .iter()
                            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
                        && ("1"..="9").contains(&levels[0])
                });
                if !cp_ok {
                    errs.push("profession");
                }
            }
            CandidateProposed => {
                need("vacancy_id", &mut errs);
                need("channel", &mut errs);
                if !one_of("channel", &model::CHANNELS) {
                    errs.push("enum");
                }
            }
            CandidatePreselected | CandidateSelected | CandidateNotSelected => {
                need("vacancy_id", &mut errs)
            }
            VacancyClosed => {
                need("vacancy_id", &mut errs);
                need("close_reason", &mut errs);
                if !one_of("close_reason", &model::CLOSE_REASONS) {
                    errs.push("enum");
                }
            }
            Hired => {
                for k in ["employer_id", "contract_code", "hiring_mode"] {
                    need(k, &mut errs);
                }
                if !employer_ok("employer_id") || !one_of("hiring_mode", &model::HIRING_MODES) {
                    errs.push("enum");
                }
                if !g("contract_code").is_none_or(reference::is_well_formed_contract_code) {
                    errs.push("contract");
                }
                if g("contract_code").is_some_and(|c| c.starts_with("A.02"))
                    && g("contract_months").is_none()
                {
                    errs.push("months");
                }
                if !int("contract_months", 1, i64::MAX) || !boolean("part_time") {
                    errs.push("range");
                }
            }
            EmploymentEnded => {
                need("employer_id", &mut errs);
                if !employer_ok("employer_id")
                    || !one_of("end_reason", &model::EMPLOYMENT_END_REASONS)
                {
                    errs.push("enum");
                }
            }
            _ => {}
        }
        errs
    }

    struct Ingested {
        rows: u64,
        rejected: u64,
        duplicates: u64,
        stored: Vec<Record>,
        rejected_rules: BTreeMap<&'static str, u64>,
    }

    /// What a correct ingest of the files, in the summary's order, should conclude.
    fn ingest(summary: &GenerateSummary) -> Ingested {
        let mut seen: HashMap<String, Record> = HashMap::new();
        let mut out = Ingested {
            rows: 0,
            rejected: 0,
            duplicates: 0,
            stored: Vec::new(),
            rejected_rules: BTreeMap::new(),
        };
        for path in &summary.files {
            for r in read_records(path) {
                out.rows += 1;
                let errs = violations(&r);
                if !errs.is_empty() {
                    out.rejected += 1;
                    for e in errs {
                        *out.rejected_rules.entry(e).or_default() += 1;
                    }
                    continue;
                }
                let id = r["event_id"].clone();
                match seen.get(&id) {
                    Some(prev) if *prev == r => out.duplicates += 1,
                    Some(_) => {
                        out.rejected += 1;
                        *out.rejected_rules.entry("conflict").or_default() += 1;
                    }
                    None => {
                        seen.insert(id, r.clone());
                        out.stored.push(r);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_province_has_a_population() {
        for p in reference::provinces() {
            assert!(province_population(p.sigla) > 0, "{}", p.sigla);
        }
        assert_eq!(province_population("XX"), 0);
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        for (format, gzip) in [(OutputFormat::Csv, false), (OutputFormat::Jsonl, true)] {
            let a = tempfile::tempdir().unwrap();
            let b = tempfile::tempdir().unwrap();
            let mut oa = options(a.path(), 400);
            oa.format = format;
            oa.gzip = gzip;
            oa.error_rate = 0.01;
            oa.duplicate_rate = 0.01;
            let ob = GenerateOptions {
                out: b.path().to_path_buf(),
                ..oa.clone()
            };
            let sa = generate(&oa).unwrap();
            let sb = generate(&ob).unwrap();
            assert!(!sa.files.is_empty());
            assert_eq!(sa.files.len(), sb.files.len());
            assert_eq!((sa.events, sa.invalid_rows), (sb.events, sb.invalid_rows));
            for (fa, fb) in sa.files.iter().zip(&sb.files) {
                assert_eq!(fa.file_name(), fb.file_name());
                assert!(
                    fs::read(fa).unwrap() == fs::read(fb).unwrap(),
                    "{}",
                    fa.display()
                );
            }
            // No temporary file left behind.
            assert_eq!(fs::read_dir(a.path()).unwrap().count(), sa.files.len());
            // Another seed gives other data.
            let c = tempfile::tempdir().unwrap();
            let sc = generate(&GenerateOptions {
                out: c.path().to_path_buf(),
                seed: 43,
                ..oa.clone()
            })
            .unwrap();
            assert_ne!(
                fs::read(&sa.files[0]).unwrap(),
                fs::read(&sc.files[0]).unwrap()
            );
        }
    }

    #[test]
    fn clean_run_has_every_type_and_only_valid_codes() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path(), 2000);
        o.error_rate = 0.0;
        o.duplicate_rate = 0.0;
        let s = generate(&o).unwrap();
        assert_eq!((s.invalid_rows, s.duplicate_rows), (0, 0));
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut rows = 0;
        let mut styled = 0;
        let (first, last) = (o.start, o.end);
        for path in &s.files {
            assert!(
                read_text(path).starts_with(&COLUMNS.join(",")),
                "{}",
                path.display()
            );
            for r in read_records(path) {
                rows += 1;
                let t = r["event_type"].clone();
                let kind = Kind::ALL.iter().find(|k| k.as_str() == t).unwrap();
                if kind.has_person() {
                    let raw = &r["person_cf"];
                    let cf = codes::normalise_cf(raw);
                    assert!(
                        codes::is_valid_cf16(&cf) || codes::is_valid_numeric11(&cf),
                        "{raw:?}"
                    );
                    styled += u64::from(raw != &cf);
                } else {
                    assert!(!r.contains_key("person_cf"));
                }
                let d = rome_date(&r["occurred_at"]).unwrap();
                assert!(d >= first && d <= last, "{d}");
                let v = violations(&r);
                assert!(v.is_empty(), "{v:?} {r:?}");
                *counts.entry(t).or_default() += 1;
            }
        }
        assert_eq!(rows, s.events);
        assert!(styled > 0);
        for k in Kind::ALL {
            assert!(
                counts.get(k.as_str()).copied().unwrap_or(0) > 0,
                "no {}",
                k.as_str()
            );
        }
        // 20-30 events a person on average, as planned for the scale figures.
        let per_person = s.events as f64 / 2000.0;
        assert!((15.0..40.0).contains(&per_person), "{per_person}");
    }

    #[test]
    fn ingest_counts_match_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path(), 2000);
        o.error_rate = 0.02;
        o.duplicate_rate = 0.01;
        let s = generate(&o).unwrap();
        let got = ingest(&s);
        assert_eq!(got.rows, s.events);
        assert_eq!(got.rejected, s.invalid_rows, "{:?}", got.rejected_rules);
        assert_eq!(got.duplicates, s.duplicate_rows);
        assert!(got.rejected_rules.contains_key("conflict"));
        assert!(got.rejected_rules.len() > 12, "{:?}", got.rejected_rules);
        assert!(s.invalid_rows > 500 && s.duplicate_rows > 200);

        // The same data as JSON Lines is the same rows, field for field.
        let jdir = tempfile::tempdir().unwrap();
        let j = generate(&GenerateOptions {
            out: jdir.path().to_path_buf(),
            format: OutputFormat::Jsonl,
            ..o.clone()
        })
        .unwrap();
        assert_eq!((j.events, j.invalid_rows), (s.events, s.invalid_rows));
        for (fc, fj) in s.files.iter().zip(&j.files) {
            let (rc, rj) = (read_records(fc), read_records(fj));
            assert_eq!(rc.len(), rj.len());
            for (a, b) in rc.iter().zip(&rj) {
                assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
                for (k, va) in a {
                    let vb = &b[k];
                    let same = va == vb
                        || va
                            .parse::<f64>()
                            .ok()
                            .zip(vb.parse::<f64>().ok())
                            .is_some_and(|(x, y)| x == y);
                    assert!(same, "{k}: {va} vs {vb}");
                }
            }
        }
    }

    /// Manual run for sizing: `MIRATO_GEN_PERSONS=50000 MIRATO_GEN_OUT=/tmp/x cargo test --lib
    /// generate::tests::manual_run -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn manual_run() {
        let persons = std::env::var("MIRATO_GEN_PERSONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let out = std::env::var("MIRATO_GEN_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir().join("mirato-gen"));
        let mut o = options(&out, persons);
        o.gzip = std::env::var("MIRATO_GEN_GZIP").is_ok();
        if std::env::var("MIRATO_GEN_JSONL").is_ok() {
            o.format = OutputFormat::Jsonl;
        }
        let t = std::time::Instant::now();
        let s = generate(&o).unwrap();
        eprintln!(
            "persons={} events={} invalid={} duplicates={} files={} in {:.1?}",
            s.persons,
            s.events,
            s.invalid_rows,
            s.duplicate_rows,
            s.files.len(),
            t.elapsed()
        );
    }
}
