//! An independent reading of EVENTS.md for the generator's tests: the rows of a written
//! file, the rules a row can break, and what a correct ingest of the files concludes. It is
//! written apart from the ingest on purpose, so that the generator is not checked against
//! the code it exists to exercise.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Europe::Rome;

use crate::generate::GenerateSummary;
use crate::generate::model::{self, COLUMNS, Kind};
use crate::{codes, reference};

pub(super) type Record = BTreeMap<String, String>;

pub(super) fn read_text(path: &Path) -> String {
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
pub(super) fn read_records(path: &Path) -> Vec<Record> {
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

pub(super) fn rome_date(s: &str) -> Option<NaiveDate> {
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
pub(super) fn violations(r: &Record) -> Vec<&'static str> {
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
            if !one_of("list_type", &model::LIST_TYPES) || !one_of("category", &model::CATEGORIES) {
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
                Some("invalido_civile") if pct.is_none_or(|p| p <= 45) => errs.push("civile pct"),
                Some("invalido_lavoro") if pct.is_none_or(|p| p <= 33) => errs.push("lavoro pct"),
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
            if !boolean("avail_workshops") || !boolean("avail_training") || !boolean("avail_offers")
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
            if !employer_ok("employer_id") || !one_of("end_reason", &model::EMPLOYMENT_END_REASONS)
            {
                errs.push("enum");
            }
        }
        _ => {}
    }
    if kind == Hired
        && (!boolean("employer_obliged")
            || !one_of("sector", &model::SECTORS)
            || !g("agreement_id").is_none_or(|a| (1..=64).contains(&a.len())))
    {
        errs.push("hire facts");
    }
    if kind.is_employers() {
        employers_side(kind, r, &mut errs);
    }
    errs
}

/// The rules of docs/EVENTS-employers.md, read apart from the ingest as the rest.
fn employers_side(kind: Kind, r: &Record, errs: &mut Vec<&'static str>) {
    let g = |k: &str| r.get(k).map(String::as_str);
    let num = |k: &str| g(k).and_then(|v| v.parse::<i64>().ok());
    let int = |k: &str, lo: i64, hi: i64| {
        g(k).is_none_or(|_| num(k).is_some_and(|n| (lo..=hi).contains(&n)))
    };
    let one_of = |k: &str, list: &[&str]| g(k).is_none_or(|v| list.contains(&v));
    let date = |k: &str| g(k).filter(|d| d.len() == 10).and_then(rome_date);
    let mut need = |keys: &[&'static str]| {
        for k in keys {
            if g(k).is_none() {
                errs.push(k);
            }
        }
    };
    use Kind::*;
    let mut bad = Vec::new();
    need(&["employer_id"]);
    if !g("employer_id").is_none_or(codes::is_valid_employer_id) {
        bad.push("employer_id");
    }
    match kind {
        ObligationStatement => {
            need(&[
                "reference_year",
                "sector",
                "size_band",
                "base_workforce",
                "reserved_art1",
                "covered_art1",
            ]);
            if !int("reference_year", 2000, 2100)
                || !one_of("sector", &model::SECTORS)
                || !one_of("size_band", &model::SIZE_BANDS)
                || !int("base_workforce", 15, crate::model::MAX_WORKFORCE)
            {
                bad.push("statement");
            }
            let base = num("base_workforce").unwrap_or(i64::MAX);
            for k in [
                "reserved_art1",
                "covered_art1",
                "reserved_art18",
                "covered_art18",
            ] {
                if !int(k, 0, base) {
                    bad.push("posts");
                }
            }
            let band = num("base_workforce").map(|b| match b {
                ..15 => "",
                15..=35 => "15_35",
                36..=50 => "36_50",
                _ => "over_50",
            });
            if let (Some(b), Some(s)) = (band, g("size_band"))
                && !b.is_empty()
                && b != s
            {
                bad.push("size_band");
            }
            if g("reserved_art18").is_some() != g("covered_art18").is_some() {
                bad.push("art18 pair");
            }
        }
        AgreementSigned => {
            need(&[
                "agreement_id",
                "agreement_type",
                "planned_hires",
                "duration_months",
            ]);
            if !one_of("agreement_type", &model::AGREEMENT_TYPES)
                || !int("planned_hires", 1, crate::model::MAX_WORKFORCE)
                || !int("duration_months", 1, 120)
            {
                bad.push("agreement");
            }
        }
        AgreementEnded => {
            need(&["agreement_id", "agreement_outcome"]);
            if !one_of("agreement_outcome", &model::AGREEMENT_OUTCOMES) {
                bad.push("outcome");
            }
        }
        ExemptionGranted | ObligationSuspended => {
            if kind == ExemptionGranted {
                need(&["exemption_pct", "exempted_workers"]);
                if !int("exemption_pct", 1, 80)
                    || !int("exempted_workers", 1, crate::model::MAX_WORKFORCE)
                {
                    bad.push("exemption");
                }
            } else {
                need(&["suspension_reason"]);
                if !one_of("suspension_reason", &model::SUSPENSION_REASONS)
                    || !int("positions", 1, i64::from(i32::MAX))
                {
                    bad.push("suspension");
                }
            }
            need(&["period_start", "period_end"]);
            match (date("period_start"), date("period_end")) {
                (Some(a), Some(b)) if b < a => bad.push("period"),
                (None, _) | (_, None)
                    if g("period_start").is_some() && g("period_end").is_some() =>
                {
                    bad.push("period")
                }
                _ => {}
            }
        }
        TerritorialCompensation => {
            need(&["to_province", "positions"]);
            match g("to_province") {
                Some(p) if reference::province(p).is_none() || Some(p) == g("province") => {
                    bad.push("to_province")
                }
                _ => {}
            }
            if !int("positions", 1, i64::from(i32::MAX)) {
                bad.push("positions");
            }
        }
        NumericalRequest => {
            need(&["vacancy_id", "positions"]);
            if !int("positions", 1, i64::from(i32::MAX)) {
                bad.push("positions");
            }
        }
        _ => {}
    }
    errs.extend(bad);
}

pub(super) struct Ingested {
    pub(super) rows: u64,
    pub(super) rejected: u64,
    pub(super) duplicates: u64,
    pub(super) stored: Vec<Record>,
    pub(super) rejected_rules: BTreeMap<&'static str, u64>,
}

/// What a correct ingest of the files, in the summary's order, should conclude.
pub(super) fn ingest(summary: &GenerateSummary) -> Ingested {
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
