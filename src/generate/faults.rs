//! Deliberately invalid rows: each breaks exactly one rule of EVENTS.md, so that an ingest can
//! be checked to reject every one of them (and nothing else).

use std::fmt::Write as _;

use rand::Rng;

use super::model::*;
use super::render::Row;

const UNKNOWN_TYPE: u8 = 1;
const OLD_DATE: u8 = 2;
const BAD_DATE: u8 = 3;
const FUTURE_DATE: u8 = 4;
const UNKNOWN_PROVINCE: u8 = 5;
const MISSING_PROVINCE: u8 = 6;
const MISSING_CPI: u8 = 7;
const LONG_CPI: u8 = 8;
const LONG_OPERATOR: u8 = 9;
const BAD_EVENT_ID: u8 = 10;
const MISSING_OCCURRED_AT: u8 = 11;
const BAD_CF: u8 = 12;
const MISSING_CF: u8 = 13;
const MISSING_REQUIRED: u8 = 14;
const BAD_ENUM: u8 = 15;
const PCT_BELOW: u8 = 16;
const ART18_MISMATCH: u8 = 17;
const MONTHS_MISSING: u8 = 18;
const BAD_EMPLOYER: u8 = 19;
const POSITIONS_ZERO: u8 = 20;
const OUT_OF_RANGE: u8 = 21;
const BAD_CONTRACT: u8 = 22;
const BAD_BOOL: u8 = 23;

const GENERIC: [u8; 11] = [
    UNKNOWN_TYPE,
    OLD_DATE,
    BAD_DATE,
    FUTURE_DATE,
    UNKNOWN_PROVINCE,
    MISSING_PROVINCE,
    MISSING_CPI,
    LONG_CPI,
    LONG_OPERATOR,
    BAD_EVENT_ID,
    MISSING_OCCURRED_AT,
];

/// Required fields of each type besides the common ones (EVENTS.md), as rendered.
fn required(kind: Kind, payload: &Payload) -> &'static [usize] {
    use Kind::*;
    match kind {
        ApplicationSubmitted => match payload {
            Payload::Application(a) if a.category <= CAT_SERVIZIO => {
                &[col::LIST_TYPE, col::CATEGORY, col::DISABILITY_PCT]
            }
            _ => &[col::LIST_TYPE, col::CATEGORY],
        },
        CertificationRequested => &[col::AGENCY],
        ApplicationPreRejected | ApplicationRejected | RegistrationCancelled => &[col::REASON],
        PactSigned | PactUpdated => &[col::PACT_ID],
        PactReview => &[col::PACT_ID, col::REVIEW_OUTCOME],
        Referral => &[col::TO_SERVICE],
        JobSearchSupport => &[col::SUPPORT_TYPE],
        MeasureStarted => &[col::MEASURE_ID, col::MEASURE_TYPE],
        TutoringMeeting => &[col::MEASURE_ID],
        MeasureEnded => &[col::MEASURE_ID, col::END_REASON],
        VacancyOpened => &[
            col::VACANCY_ID,
            col::EMPLOYER_ID,
            col::POSITIONS,
            col::REQUEST_TYPE,
        ],
        CandidateProposed => &[col::VACANCY_ID, col::CHANNEL],
        CandidatePreselected | CandidateSelected | CandidateNotSelected => &[col::VACANCY_ID],
        VacancyClosed => &[col::VACANCY_ID, col::CLOSE_REASON],
        Hired => &[col::EMPLOYER_ID, col::CONTRACT_CODE, col::HIRING_MODE],
        EmploymentEnded => &[col::EMPLOYER_ID],
        ObligationStatement => &[
            col::EMPLOYER_ID,
            col::REFERENCE_YEAR,
            col::SECTOR,
            col::SIZE_BAND,
            col::BASE_WORKFORCE,
            col::RESERVED_ART1,
            col::COVERED_ART1,
        ],
        AgreementSigned => &[
            col::EMPLOYER_ID,
            col::AGREEMENT_ID,
            col::AGREEMENT_TYPE,
            col::PLANNED_HIRES,
            col::DURATION_MONTHS,
        ],
        AgreementEnded => &[col::EMPLOYER_ID, col::AGREEMENT_ID, col::AGREEMENT_OUTCOME],
        ExemptionGranted => &[
            col::EMPLOYER_ID,
            col::EXEMPTION_PCT,
            col::EXEMPTED_WORKERS,
            col::PERIOD_START,
            col::PERIOD_END,
        ],
        ObligationSuspended => &[
            col::EMPLOYER_ID,
            col::SUSPENSION_REASON,
            col::PERIOD_START,
            col::PERIOD_END,
        ],
        TerritorialCompensation => &[col::EMPLOYER_ID, col::TO_PROVINCE, col::POSITIONS],
        NumericalRequest => &[col::EMPLOYER_ID, col::VACANCY_ID, col::POSITIONS],
        ApplicationAccepted
        | BasicOrientation
        | QualitativeProfiling
        | AdrInformation
        | SpecialistOrientation
        | SkillsAssessment => &[],
    }
}

/// A required enum column of the type and a value outside its list.
fn bad_enum(kind: Kind) -> Option<(usize, &'static str)> {
    use Kind::*;
    Some(match kind {
        ApplicationSubmitted => (col::CATEGORY, "invalido"),
        CertificationRequested => (col::AGENCY, "INPDAP"),
        ApplicationPreRejected | ApplicationRejected => (col::REASON, "missing_papers"),
        RegistrationCancelled => (col::REASON, "retired"),
        PactReview => (col::REVIEW_OUTCOME, "ok"),
        Referral => (col::TO_SERVICE, "school"),
        JobSearchSupport => (col::SUPPORT_TYPE, "mentoring"),
        MeasureStarted => (col::MEASURE_TYPE, "internship"),
        MeasureEnded => (col::END_REASON, "finished"),
        VacancyOpened => (col::REQUEST_TYPE, "urgente"),
        CandidateProposed => (col::CHANNEL, "phone"),
        VacancyClosed => (col::CLOSE_REASON, "cancelled"),
        Hired => (col::HIRING_MODE, "direct"),
        ObligationStatement => (col::SECTOR, "mixed"),
        AgreementSigned => (col::AGREEMENT_TYPE, "art13"),
        AgreementEnded => (col::AGREEMENT_OUTCOME, "done"),
        ObligationSuspended => (col::SUSPENSION_REASON, "strike"),
        _ => return None,
    })
}

/// Whether the event carries a bool that a fault can spoil.
fn has_bool(p: &Payload) -> bool {
    match p {
        Payload::Application(a) => a.naspi != 0,
        Payload::Flag(v) => *v != 0,
        Payload::Hired(h) => h.part_time != 0,
        Payload::Pact(f) => f.avail[0] != 0,
        _ => false,
    }
}

/// Picks a fault that this event can carry. Type-specific faults are listed twice so they are
/// as frequent as the generic ones overall.
pub(super) fn choose<R: Rng>(rng: &mut R, ev: &Ev) -> u8 {
    let mut opts: Vec<u8> = GENERIC.to_vec();
    let mut specific: Vec<u8> = Vec::new();
    if ev.kind.has_person() {
        specific.extend([BAD_CF, MISSING_CF]);
    }
    if !required(ev.kind, &ev.payload).is_empty() {
        specific.push(MISSING_REQUIRED);
    }
    if bad_enum(ev.kind).is_some() {
        specific.push(BAD_ENUM);
    }
    if has_bool(&ev.payload) {
        specific.push(BAD_BOOL);
    }
    match ev.kind {
        Kind::ApplicationSubmitted => specific.extend([PCT_BELOW, ART18_MISMATCH, OUT_OF_RANGE]),
        Kind::Hired => specific.extend([MONTHS_MISSING, BAD_EMPLOYER, OUT_OF_RANGE, BAD_CONTRACT]),
        Kind::EmploymentEnded => specific.push(BAD_EMPLOYER),
        Kind::VacancyOpened => specific.extend([BAD_EMPLOYER, POSITIONS_ZERO, OUT_OF_RANGE]),
        Kind::QualitativeProfiling => specific.push(OUT_OF_RANGE),
        Kind::PactSigned => specific.push(OUT_OF_RANGE),
        Kind::TerritorialCompensation | Kind::NumericalRequest => {
            specific.extend([BAD_EMPLOYER, POSITIONS_ZERO, OUT_OF_RANGE])
        }
        k if k.is_employers() => specific.extend([BAD_EMPLOYER, OUT_OF_RANGE]),
        _ => {}
    }
    opts.extend(specific.iter().copied());
    opts.extend(specific.iter().copied());
    opts[rng.random_range(0..opts.len())]
}

/// Spoils a rendered row. `seq` picks a variant so the spread of faults stays deterministic.
pub(super) fn apply(ev: &Ev, row: &mut Row, cf: Option<&str>, sigla: &str) {
    let v = ev.seq as usize;
    let year = row
        .get(col::EVENT_ID)
        .and_then(|id| id.get(4..8))
        .unwrap_or("2024")
        .to_string();
    match ev.fault {
        UNKNOWN_TYPE => {
            let t = [
                "application_sent",
                "orientation",
                "hire",
                "pact_signed_v2",
                "vacancy_filled",
            ];
            row.put(col::EVENT_TYPE, t[v % t.len()]);
        }
        OLD_DATE => {
            let t = ["1999-12-31", "1970-01-01", "1899-05-01T10:00:00Z"];
            row.put(col::OCCURRED_AT, t[v % t.len()]);
        }
        BAD_DATE => {
            let s = match v % 5 {
                0 => format!("{year}-02-30"),
                1 => format!("15/03/{year}"),
                2 => format!("{year}0315"),
                3 => format!("{year}-03-15T25:00:00Z"),
                _ => "yesterday".to_string(),
            };
            row.put(col::OCCURRED_AT, &s);
        }
        FUTURE_DATE => {
            let t = ["2099-01-01", "2087-06-15T10:00:00+02:00"];
            row.put(col::OCCURRED_AT, t[v % t.len()]);
        }
        UNKNOWN_PROVINCE => {
            let t = ["XX", "ZZ", "Milano", "M1"];
            row.put(col::PROVINCE, t[v % t.len()]);
        }
        MISSING_PROVINCE => row.unset(col::PROVINCE),
        MISSING_CPI => row.unset(col::CPI_CODE),
        LONG_CPI => {
            let _ = write!(row.slot(col::CPI_CODE), "{sigla}-CENTRO-IMPIEGO-01");
        }
        LONG_OPERATOR => {
            let _ = write!(
                row.slot(col::OPERATOR_ID),
                "operatore.{}.{v:06}@cpi-{}.example.it",
                sigla.to_ascii_lowercase(),
                sigla.to_ascii_lowercase()
            );
        }
        BAD_EVENT_ID => {
            let id = row.get(col::EVENT_ID).unwrap_or("R00-0000-0").to_string();
            let s = match v % 3 {
                0 => id.replace('-', " "),
                1 => id.replace('-', "/"),
                _ => format!("{id}-{}", "x".repeat(60)),
            };
            row.put(col::EVENT_ID, &s);
        }
        MISSING_OCCURRED_AT => row.unset(col::OCCURRED_AT),
        BAD_CF => {
            let mut b = cf.unwrap_or("RSSMRA85T10A562S").as_bytes().to_vec();
            if v % 3 == 2 {
                b.pop();
            } else if let Some(last) = b.last_mut() {
                *last = if last.is_ascii_digit() {
                    b'0' + (*last - b'0' + 1) % 10
                } else {
                    b'A' + (*last - b'A' + 1) % 26
                };
            }
            row.put(col::PERSON_CF, &String::from_utf8_lossy(&b));
        }
        MISSING_CF => row.unset(col::PERSON_CF),
        MISSING_REQUIRED => {
            let req = required(ev.kind, &ev.payload);
            if !req.is_empty() {
                row.unset(req[v % req.len()]);
            }
        }
        BAD_ENUM => {
            if let Some((c, bad)) = bad_enum(ev.kind) {
                row.put(c, bad);
            }
        }
        PCT_BELOW => {
            if v.is_multiple_of(2) {
                row.put(col::CATEGORY, CATEGORIES[CAT_CIVILE as usize]);
                row.put(col::DISABILITY_PCT, "40");
            } else {
                row.put(col::CATEGORY, CATEGORIES[CAT_LAVORO as usize]);
                row.put(col::DISABILITY_PCT, "30");
            }
            row.put(col::LIST_TYPE, LIST_TYPES[0]);
        }
        ART18_MISMATCH => {
            if v.is_multiple_of(2) {
                row.put(col::LIST_TYPE, "art18");
                row.put(col::CATEGORY, "sordo");
            } else {
                row.put(col::LIST_TYPE, "art1");
                row.put(col::CATEGORY, "art18");
                row.unset(col::DISABILITY_PCT);
            }
        }
        MONTHS_MISSING => {
            row.put(col::CONTRACT_CODE, "A.02.00");
            row.unset(col::CONTRACT_MONTHS);
        }
        BAD_EMPLOYER => {
            let e = row.get(col::EMPLOYER_ID).unwrap_or("").to_string();
            let s = if v % 3 == 2 || e.len() != 11 && e.len() != 16 {
                "1234567890".to_string()
            } else {
                let mut b = e.into_bytes();
                if let Some(last) = b.last_mut() {
                    *last = if last.is_ascii_digit() {
                        b'0' + (*last - b'0' + 1) % 10
                    } else {
                        b'A' + (*last - b'A' + 1) % 26
                    };
                }
                String::from_utf8_lossy(&b).into_owned()
            };
            row.put(col::EMPLOYER_ID, &s);
        }
        POSITIONS_ZERO => row.put(col::POSITIONS, "0"),
        OUT_OF_RANGE => out_of_range(ev, row, v),
        BAD_CONTRACT => {
            let t = ["A.2.00", "TD01", "A-01-00", "tempo determinato"];
            row.put(col::CONTRACT_CODE, t[v % t.len()]);
        }
        BAD_BOOL => {
            let bad = ["yes", "si", "Y"][v % 3];
            let c = match ev.payload {
                Payload::Application(_) => col::NASPI,
                Payload::Hired(_) => col::PART_TIME,
                Payload::Pact(_) => col::AVAIL_WORKSHOPS,
                _ if ev.kind == Kind::SkillsAssessment => col::SKILLS_GAP,
                _ => col::GROUP,
            };
            row.put(c, bad);
        }
        _ => {}
    }
}

fn out_of_range(ev: &Ev, row: &mut Row, v: usize) {
    match ev.kind {
        Kind::ApplicationSubmitted => {
            let invalido =
                matches!(ev.payload, Payload::Application(a) if a.category <= CAT_SERVIZIO);
            if invalido && v.is_multiple_of(2) {
                row.put(col::DISABILITY_PCT, "120");
            } else {
                row.put(col::EDUCATION, "9");
            }
        }
        Kind::QualitativeProfiling => row.put(col::PROFILING_INDEX, "1.25"),
        Kind::PactSigned => {
            if v.is_multiple_of(2) {
                row.put(col::CONTACT_FREQUENCY_DAYS, "0");
            } else {
                row.put(col::SEARCH_ACTS, "-1");
            }
        }
        Kind::Hired => {
            row.put(col::CONTRACT_CODE, "A.02.00");
            row.put(col::CONTRACT_MONTHS, "0");
        }
        Kind::VacancyOpened => {
            if v.is_multiple_of(2) {
                row.put(col::ATECO_SECTION, "Z");
            } else {
                row.put(col::PROFESSION_CODE, "3.4.5.2.0.1");
            }
        }
        Kind::ObligationStatement => {
            if v.is_multiple_of(2) {
                // Below 15 employees there is no obligation to state.
                row.put(col::BASE_WORKFORCE, "12");
            } else {
                // A band that does not fit the base.
                row.put(col::BASE_WORKFORCE, "80");
                row.put(col::SIZE_BAND, "15_35");
            }
        }
        Kind::AgreementSigned => {
            if v.is_multiple_of(2) {
                row.put(col::DURATION_MONTHS, "0");
            } else {
                row.put(col::PLANNED_HIRES, "0");
            }
        }
        Kind::AgreementEnded => row.put(col::AGREEMENT_OUTCOME, "COMPLETED"),
        Kind::ExemptionGranted if v.is_multiple_of(2) => row.put(col::EXEMPTION_PCT, "95"),
        Kind::ExemptionGranted | Kind::ObligationSuspended => {
            // The period ends before it starts.
            let start = row
                .get(col::PERIOD_START)
                .unwrap_or("2024-06-30")
                .to_string();
            row.put(col::PERIOD_END, &start);
            row.put(col::PERIOD_START, "2099-12-31");
        }
        Kind::TerritorialCompensation => {
            let own = row.get(col::PROVINCE).unwrap_or("XX").to_string();
            row.put(
                col::TO_PROVINCE,
                if v.is_multiple_of(2) { &own } else { "XX" },
            );
        }
        Kind::NumericalRequest => row.put(col::POSITIONS, "-2"),
        _ => {}
    }
}
