//! Row validation: every rule of EVENTS.md, each reported with a stable rule code so that
//! quarantine can be counted by rule.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::Europe::Rome;

use crate::codes;
use crate::model::{Event, EventType, Field, Kind, Need, parse_date};
use crate::privacy::{Pseudonymiser, contains_identifier, mask_identifiers};
use crate::reference;

/// One broken rule: a stable code (`field.problem`) and a plain sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

impl Violation {
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        // Messages may quote input; never let an identifier through.
        Violation {
            rule,
            message: mask_identifiers(&message.into()),
        }
    }
}

/// A row as read, before any checking: the known fields' trimmed text, absent when empty.
#[derive(Debug, Clone)]
pub struct RawRow<'a> {
    pub vals: [Option<Cow<'a, str>>; Field::COUNT],
}

impl<'a> Default for RawRow<'a> {
    fn default() -> Self {
        RawRow {
            vals: std::array::from_fn(|_| None),
        }
    }
}

impl<'a> RawRow<'a> {
    pub fn get(&self, f: Field) -> Option<&str> {
        self.vals[f as usize].as_deref()
    }

    /// Sets a field from input text; blank text counts as absent.
    pub fn set(&mut self, f: Field, v: Cow<'a, str>) {
        let trimmed_empty = v.trim().is_empty();
        self.vals[f as usize] = if trimmed_empty {
            None
        } else {
            Some(match v {
                Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                Cow::Owned(s) => {
                    let t = s.trim();
                    if t.len() == s.len() {
                        Cow::Owned(s)
                    } else {
                        Cow::Owned(t.to_owned())
                    }
                }
            })
        };
    }
}

/// A parsed field value, before assembly into an [`Event`].
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Absent,
    Code(&'static str),
    Text(String),
    Int(i64),
    Dec(f64),
    Bool(bool),
    Date(NaiveDate),
}

/// Validates rows against the contract and turns them into stored events.
pub struct Validator {
    pseudo: Pseudonymiser,
    /// Latest allowed instant (µs): the moment of ingest plus one day.
    max_us: i64,
    /// Earliest allowed instant (µs): 2000-01-01 in Rome.
    min_us: i64,
    hash_buf: Vec<u8>,
    cpis: std::collections::HashMap<Box<str>, std::sync::Arc<str>, foldhash::fast::RandomState>,
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn rome_midnight_us(d: NaiveDate) -> i64 {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<NaiveDate, i64>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if let Some(us) = CACHE.with(|c| c.borrow().get(&d).copied()) {
        return us;
    }
    let us = rome_midnight_us_uncached(d);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 100_000 {
            c.clear();
        }
        c.insert(d, us);
    });
    us
}

fn rome_midnight_us_uncached(d: NaiveDate) -> i64 {
    let local = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    Rome.from_local_datetime(&local)
        .earliest()
        .expect("midnight exists in Rome")
        .timestamp_micros()
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// Reads `occurred_at`: a date (midnight in Rome) or an RFC 3339 instant. Returns
/// (µs since epoch, Rome date, whether a time was given).
pub fn parse_occurred_at(s: &str) -> Option<(i64, NaiveDate, bool)> {
    if s.len() == 10 {
        let d = parse_date(s)?;
        return Some((rome_midnight_us(d), d, false));
    }
    let dt = DateTime::parse_from_rfc3339(s).ok()?;
    let rome = dt.with_timezone(&Rome);
    Some((dt.timestamp_micros(), rome.date_naive(), true))
}

/// Free-text fields are stored as given, so a codice fiscale pasted into one would be stored
/// raw: such a row is refused instead.
fn looks_like_identifier(s: &str) -> bool {
    contains_identifier(s)
}

fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

fn is_plain_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_plain_decimal(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => is_plain_digits(a) && is_plain_digits(b),
        None => is_plain_digits(s),
    }
}

fn is_profession_code(s: &str) -> bool {
    let levels: Vec<&str> = s.split('.').collect();
    if levels.is_empty() || levels.len() > 5 {
        return false;
    }
    let first = levels[0].as_bytes();
    if first.len() != 1 || !(b'1'..=b'9').contains(&first[0]) {
        return false;
    }
    levels[1..]
        .iter()
        .all(|l| (1..=2).contains(&l.len()) && is_plain_digits(l))
}

/// Codes (`cpi_code`, `pact_id`, `measure_id`, `vacancy_id`) are shown in pages and exported to
/// CSV and spreadsheets: they are kept to letters, digits, `_`, `.` and `-`, starting with a
/// letter or digit, so that no code can carry markup or a spreadsheet formula (`=1+2`, `-cmd`).
/// Every code the regional systems (and the generator) send fits.
pub fn is_code(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The rule's sentence; `{field}` is the field's name.
const CODE_FORMAT: &str =
    "{field} must be letters, digits, '_', '.' or '-', starting with a letter or a digit";

/// The type-specific fields held to [`is_code`].
fn is_code_field(f: Field) -> bool {
    matches!(f, Field::PactId | Field::MeasureId | Field::VacancyId)
}

fn is_event_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl Validator {
    /// `now_us` is the moment of ingest, which bounds `occurred_at`.
    pub fn new(pseudo: Pseudonymiser, now_us: i64) -> Self {
        Validator {
            pseudo,
            max_us: now_us + MICROS_PER_DAY,
            min_us: rome_midnight_us(NaiveDate::from_ymd_opt(2000, 1, 1).expect("date")),
            hash_buf: Vec::with_capacity(512),
            cpis: Default::default(),
        }
    }

    /// Sets the moment of ingest, which bounds `occurred_at`.
    pub fn set_now(&mut self, now_us: i64) {
        self.max_us = now_us + MICROS_PER_DAY;
    }

    /// Checks one row against every rule. On failure, returns every rule it broke.
    /// On success the event is pushed onto `out` (built in place: events are large).
    pub fn validate_into(
        &mut self,
        row: &RawRow<'_>,
        out: &mut Vec<Event>,
    ) -> Result<(), Vec<Violation>> {
        let mut errs: Vec<Violation> = Vec::new();
        self.hash_buf.clear();

        // event_id
        let event_id = match row.get(Field::EventId) {
            None => {
                errs.push(Violation::new("event_id.missing", "event_id is required"));
                None
            }
            Some(s) if !is_event_id(s) => {
                errs.push(Violation::new(
                    "event_id.format",
                    "event_id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
                ));
                None
            }
            Some(s) if looks_like_identifier(s) => {
                errs.push(Violation::new(
                    "event_id.identifier",
                    "event_id looks like a codice fiscale; an event id must not identify a person",
                ));
                None
            }
            Some(s) => Some(s.to_owned()),
        };

        // event_type
        let event_type = match row.get(Field::EventType) {
            None => {
                errs.push(Violation::new(
                    "event_type.missing",
                    "event_type is required",
                ));
                None
            }
            Some(s) => match EventType::parse(s) {
                Some(t) => Some(t),
                None => {
                    errs.push(Violation::new(
                        "event_type.unknown",
                        format!("event_type '{s}' is not a type of the contract"),
                    ));
                    None
                }
            },
        };

        // occurred_at
        let occurred = match row.get(Field::OccurredAt) {
            None => {
                errs.push(Violation::new(
                    "occurred_at.missing",
                    "occurred_at is required",
                ));
                None
            }
            Some(s) => match parse_occurred_at(s) {
                None => {
                    errs.push(Violation::new(
                        "occurred_at.format",
                        format!("occurred_at '{s}' is neither YYYY-MM-DD nor an RFC 3339 datetime"),
                    ));
                    None
                }
                Some((us, _, _)) if us < self.min_us => {
                    errs.push(Violation::new(
                        "occurred_at.range",
                        format!("occurred_at '{s}' is before 2000-01-01"),
                    ));
                    None
                }
                Some((us, _, _)) if us > self.max_us => {
                    errs.push(Violation::new(
                        "occurred_at.range",
                        format!("occurred_at '{s}' is more than one day after the ingest"),
                    ));
                    None
                }
                Some(v) => Some(v),
            },
        };

        // province
        let province = match row.get(Field::Province) {
            None => {
                errs.push(Violation::new("province.missing", "province is required"));
                None
            }
            Some(s) => match reference::province(s) {
                Some(p) => Some(p),
                None => {
                    errs.push(Violation::new(
                        "province.unknown",
                        format!("province '{s}' is not a province sigla of territories.csv"),
                    ));
                    None
                }
            },
        };

        // cpi_code
        let cpi = match row.get(Field::CpiCode) {
            None => {
                errs.push(Violation::new("cpi_code.missing", "cpi_code is required"));
                None
            }
            Some(s) if char_len(s) > 16 => {
                errs.push(Violation::new(
                    "cpi_code.length",
                    "cpi_code must be 1-16 characters",
                ));
                None
            }
            Some(s) if looks_like_identifier(s) => {
                errs.push(Violation::new(
                    "cpi_code.identifier",
                    "cpi_code holds what looks like a codice fiscale; identifiers belong only in person_cf and employer_id",
                ));
                None
            }
            Some(s) if !is_code(s) => {
                errs.push(Violation::new(
                    "cpi_code.format",
                    CODE_FORMAT.replace("{field}", "cpi_code"),
                ));
                None
            }
            Some(s) => Some(match self.cpis.get(s) {
                Some(c) => std::sync::Arc::clone(c),
                None => {
                    let c: std::sync::Arc<str> = s.into();
                    self.cpis.insert(s.into(), std::sync::Arc::clone(&c));
                    c
                }
            }),
        };

        // person_cf: required for every type but the vacancy's own.
        let needs_person = event_type.is_none_or(|t| t.has_person());
        let person_cf = match row.get(Field::PersonCf) {
            None if needs_person && event_type.is_some() => {
                errs.push(Violation::new(
                    "person_cf.missing",
                    format!(
                        "person_cf is required for {}",
                        event_type.map(|t| t.as_str()).unwrap_or("this event")
                    ),
                ));
                None
            }
            None => None,
            Some(_) if !needs_person => None,
            Some(s) => {
                let cf = codes::normalise_cf(s);
                if codes::is_valid_cf16(&cf) || codes::is_valid_numeric11(&cf) {
                    Some(cf)
                } else {
                    errs.push(Violation::new(
                        "person_cf.invalid",
                        "person_cf is not a valid codice fiscale (16 characters with a valid check character, or 11 digits with a valid check digit)",
                    ));
                    None
                }
            }
        };

        // operator_id: optional, 0-32.
        let operator = match row.get(Field::OperatorId) {
            Some(s) if char_len(s) > 32 => {
                errs.push(Violation::new(
                    "operator_id.length",
                    "operator_id must be at most 32 characters",
                ));
                None
            }
            other => other.map(str::to_owned),
        };

        // The type's own fields.
        let mut vals: [Val; Field::COUNT] = std::array::from_fn(|_| Val::Absent);
        if let Some(t) = event_type {
            for &(field, need) in t.own_fields() {
                let raw = row.get(field);
                match raw {
                    None => {
                        if need == Need::Required {
                            errs.push(Violation::new(
                                rule_code(field, "missing"),
                                format!("{} is required for {}", field.name(), t.as_str()),
                            ));
                        }
                    }
                    Some(s)
                        if matches!(t.kind_of(field), Kind::Text { .. })
                            && !field.is_identifying()
                            && looks_like_identifier(s) =>
                    {
                        errs.push(Violation::new(
                            rule_code(field, "identifier"),
                            format!(
                                "{} holds what looks like a codice fiscale; identifiers belong only in person_cf and employer_id",
                                field.name()
                            ),
                        ))
                    }
                    Some(s) if is_code_field(field) && !is_code(s) => errs.push(Violation::new(
                        rule_code(field, "format"),
                        CODE_FORMAT.replace("{field}", field.name()),
                    )),
                    Some(s) => match parse_kind(t.kind_of(field), s) {
                        Ok(v) => vals[field as usize] = v,
                        Err(why) => errs.push(Violation::new(
                            rule_code(field, "invalid"),
                            format!("{} {why}", field.name()),
                        )),
                    },
                }
            }
            self.cross_field_rules(t, row, &vals, &mut errs);
        }

        if !errs.is_empty() {
            return Err(errs);
        }
        let (Some(event_id), Some(t), Some((us, date, timed)), Some(p), Some(cpi)) =
            (event_id, event_type, occurred, province, cpi)
        else {
            unreachable!("every absent common field pushed a violation");
        };

        // Canonical content, from parsed values, for duplicate/conflict detection. Identifiers
        // and the birth date enter only as keyed pseudonyms, so everything hashed is either
        // stored anyway or keyed: a fast unkeyed hash then reveals nothing the store does not.
        let person_id = person_cf.as_deref().map(|cf| self.pseudo.pseudonym(cf));
        let operator_id = operator.as_deref().map(|o| self.pseudo.pseudonym(o));
        let mut keyed: [Option<std::sync::Arc<str>>; 3] = [None, None, None];
        for (slot, f) in [
            Field::EmployerId,
            Field::ResponsibleOperator,
            Field::BirthDate,
        ]
        .into_iter()
        .enumerate()
        {
            keyed[slot] = match &vals[f as usize] {
                Val::Text(s) => Some(self.pseudo.pseudonym(s)),
                Val::Date(d) => Some(self.pseudo.pseudonym(&format!("birth_date:{d}"))),
                _ => None,
            };
        }
        let h = &mut self.hash_buf;
        push_text(h, Field::EventId, &event_id);
        push_text(h, Field::EventType, t.as_str());
        h.push(Field::OccurredAt as u8);
        h.push(timed as u8);
        h.extend_from_slice(&us.to_le_bytes());
        push_text(h, Field::Province, p.sigla);
        push_text(h, Field::CpiCode, &cpi);
        if let Some(pid) = &person_id {
            push_text(h, Field::PersonCf, pid);
        }
        if let Some(op) = &operator_id {
            push_text(h, Field::OperatorId, op);
        }
        for (i, v) in vals.iter().enumerate() {
            let slot = match i {
                i if i == Field::EmployerId as usize => Some(0),
                i if i == Field::ResponsibleOperator as usize => Some(1),
                i if i == Field::BirthDate as usize => Some(2),
                _ => None,
            };
            match slot.and_then(|s| keyed[s].as_deref()) {
                Some(p) => {
                    h.push(i as u8);
                    h.extend_from_slice(p.as_bytes());
                    h.push(0xff);
                }
                None => hash_val(h, i as u8, v),
            }
        }
        let content_hash = xxhash_rust::xxh3::xxh3_64(&self.hash_buf) as i64;

        out.push(Event {
            event_id,
            event_type: t.as_str(),
            occurred_at: us,
            occurred_date: days_since_epoch(date),
            province: p.sigla,
            region_code: p.region_code,
            cpi_code: cpi,
            person_id,
            operator_id,
            content_hash,
            ..Event::default()
        });
        let e = out.last_mut().expect("just pushed");
        self.assemble(t, date, person_cf.as_deref(), &mut vals, e);
        Ok(())
    }

    fn cross_field_rules(
        &self,
        t: EventType,
        row: &RawRow<'_>,
        vals: &[Val; Field::COUNT],
        errs: &mut Vec<Violation>,
    ) {
        let code = |f: Field| match &vals[f as usize] {
            Val::Code(c) => Some(*c),
            _ => None,
        };
        match t {
            EventType::ApplicationSubmitted => {
                let category = code(Field::Category);
                let list_type = code(Field::ListType);
                let pct = match vals[Field::DisabilityPct as usize] {
                    Val::Int(v) => Some(v),
                    _ => None,
                };
                let pct_given = row.get(Field::DisabilityPct).is_some();
                if let Some(c) = category {
                    let needs_pct = matches!(
                        c,
                        "invalido_civile" | "invalido_lavoro" | "invalido_servizio"
                    );
                    if needs_pct && !pct_given {
                        errs.push(Violation::new(
                            "disability_pct.missing",
                            format!("disability_pct is required for category {c}"),
                        ));
                    }
                    if let Some(v) = pct {
                        if c == "invalido_civile" && v <= 45 {
                            errs.push(Violation::new(
                                "eligibility.invalido_civile",
                                format!(
                                    "category invalido_civile requires disability_pct above 45, got {v}"
                                ),
                            ));
                        }
                        if c == "invalido_lavoro" && v <= 33 {
                            errs.push(Violation::new(
                                "eligibility.invalido_lavoro",
                                format!(
                                    "category invalido_lavoro requires disability_pct above 33, got {v}"
                                ),
                            ));
                        }
                    }
                }
                if let (Some(l), Some(c)) = (list_type, category)
                    && ((l == "art18") != (c == "art18"))
                {
                    errs.push(Violation::new(
                        "eligibility.list_type_category",
                        format!(
                            "list_type {l} and category {c} do not match: art18 goes with art18 only"
                        ),
                    ));
                }
            }
            EventType::Hired => {
                if let Val::Text(c) = &vals[Field::ContractCode as usize]
                    && c.starts_with("A.02")
                    && row.get(Field::ContractMonths).is_none()
                {
                    errs.push(Violation::new(
                        "contract_months.missing",
                        format!("contract_months is required for the fixed-term code {c}"),
                    ));
                }
            }
            _ => {}
        }
    }

    fn assemble(
        &mut self,
        t: EventType,
        date: NaiveDate,
        person_cf: Option<&str>,
        vals: &mut [Val; Field::COUNT],
        e: &mut Event,
    ) {
        let mut take = |f: Field| std::mem::replace(&mut vals[f as usize], Val::Absent);
        fn code(v: Val) -> Option<&'static str> {
            match v {
                Val::Code(c) => Some(c),
                _ => None,
            }
        }
        fn text(v: Val) -> Option<String> {
            match v {
                Val::Text(s) => Some(s),
                _ => None,
            }
        }
        fn int(v: Val) -> Option<i32> {
            match v {
                Val::Int(i) => i32::try_from(i).ok(),
                _ => None,
            }
        }
        fn boolean(v: Val) -> Option<bool> {
            match v {
                Val::Bool(b) => Some(b),
                _ => None,
            }
        }
        e.list_type = code(take(Field::ListType));
        e.category = code(take(Field::Category));
        e.disability_pct = int(take(Field::DisabilityPct));
        e.naspi = boolean(take(Field::Naspi));
        e.education = int(take(Field::Education));
        e.gender = code(take(Field::Gender));
        e.birth_year = match take(Field::BirthDate) {
            Val::Date(d) => Some(d.year()),
            _ => None,
        };
        if t == EventType::ApplicationSubmitted
            && let Some(facts) = person_cf.and_then(codes::cf_facts)
        {
            e.gender = e.gender.or(Some(if facts.female { "F" } else { "M" }));
            e.birth_year = e
                .birth_year
                .or(Some(codes::cf_birth_year(facts.yy, date.year())));
        }
        e.agency = code(take(Field::Agency));
        e.reason = code(take(Field::Reason));
        e.profiling_index = match take(Field::ProfilingIndex) {
            Val::Dec(d) => Some(d),
            _ => None,
        };
        e.pact_id = text(take(Field::PactId));
        e.responsible_operator =
            text(take(Field::ResponsibleOperator)).map(|o| self.pseudo.pseudonym(&o));
        e.employability_profile = code(take(Field::EmployabilityProfile));
        e.search_acts = int(take(Field::SearchActs));
        e.contact_frequency_days = int(take(Field::ContactFrequencyDays));
        e.search_proof_method = code(take(Field::SearchProofMethod));
        e.avail_workshops = boolean(take(Field::AvailWorkshops));
        e.avail_training = boolean(take(Field::AvailTraining));
        e.avail_offers = boolean(take(Field::AvailOffers));
        if t == EventType::PactSigned {
            e.pact_complete = Some(
                e.responsible_operator.is_some()
                    && e.employability_profile.is_some()
                    && e.search_acts.is_some_and(|a| a >= 1)
                    && e.contact_frequency_days.is_some()
                    && e.search_proof_method.is_some()
                    && e.avail_workshops == Some(true)
                    && e.avail_training == Some(true)
                    && e.avail_offers == Some(true),
            );
        }
        e.review_outcome = code(take(Field::ReviewOutcome));
        e.group_session = boolean(take(Field::Group));
        e.skills_gap = boolean(take(Field::SkillsGap));
        e.to_service = code(take(Field::ToService));
        e.support_type = code(take(Field::SupportType));
        e.measure_id = text(take(Field::MeasureId));
        e.measure_type = code(take(Field::MeasureType));
        e.employer_id = text(take(Field::EmployerId)).map(|id| self.pseudo.pseudonym(&id));
        e.end_reason = code(take(Field::EndReason));
        e.vacancy_id = text(take(Field::VacancyId));
        e.positions = int(take(Field::Positions));
        e.request_type = code(take(Field::RequestType));
        e.ateco_section = text(take(Field::AtecoSection));
        e.profession_code = text(take(Field::ProfessionCode));
        e.channel = code(take(Field::Channel));
        e.close_reason = code(take(Field::CloseReason));
        e.contract_months = int(take(Field::ContractMonths));
        e.part_time = boolean(take(Field::PartTime));
        e.hiring_mode = code(take(Field::HiringMode));
        if let Some(c) = text(take(Field::ContractCode)) {
            let class = reference::contract_class(&c).expect("validated contract code");
            e.contract_class = Some(class.as_str());
            e.stable_hire = Some(reference::is_stable_hire(
                class,
                e.contract_months.map(i64::from),
            ));
            e.contract_code = Some(c);
        }
    }
}

/// Rule codes are `field.problem`; leaked as `&'static str` once per (field, problem) pair.
fn rule_code(field: Field, problem: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CODES: OnceLock<Mutex<HashMap<(Field, &'static str), &'static str>>> = OnceLock::new();
    let mut map = CODES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry((field, problem))
        .or_insert_with(|| Box::leak(format!("{}.{problem}", field.name()).into_boxed_str()))
}

fn push_text(h: &mut Vec<u8>, f: Field, s: &str) {
    h.push(f as u8);
    h.extend_from_slice(s.as_bytes());
    h.push(0xff);
}

fn hash_val(h: &mut Vec<u8>, tag: u8, v: &Val) {
    match v {
        Val::Absent => {}
        Val::Code(c) => {
            h.push(tag);
            h.extend_from_slice(c.as_bytes());
            h.push(0xff);
        }
        Val::Text(s) => {
            h.push(tag);
            h.extend_from_slice(s.as_bytes());
            h.push(0xff);
        }
        Val::Int(i) => {
            h.push(tag);
            h.extend_from_slice(&i.to_le_bytes());
        }
        Val::Dec(d) => {
            h.push(tag);
            h.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Val::Bool(b) => {
            h.push(tag);
            h.push(*b as u8);
        }
        Val::Date(d) => {
            h.push(tag);
            h.extend_from_slice(&days_since_epoch(*d).to_le_bytes());
        }
    }
}

/// Reads one field's text by its kind; the error completes "<field> ...".
fn parse_kind(kind: Kind, s: &str) -> Result<Val, String> {
    match kind {
        Kind::Text { min, max } => {
            let n = char_len(s);
            if n < min || n > max {
                Err(format!("must be {min}-{max} characters"))
            } else {
                Ok(Val::Text(s.to_owned()))
            }
        }
        Kind::Enum(list) => list
            .iter()
            .find(|&&c| c == s)
            .map(|&c| Val::Code(c))
            .ok_or_else(|| format!("'{s}' is not one of: {}", list.join(", "))),
        Kind::Int { min, max } => {
            if !is_plain_digits(s) {
                return Err(format!("'{s}' is not a whole number (plain digits)"));
            }
            match s.parse::<i64>() {
                Ok(v) if v >= min && v <= max => Ok(Val::Int(v)),
                _ if max == i32::MAX as i64 => Err(format!("'{s}' must be at least {min}")),
                _ => Err(format!("'{s}' must be between {min} and {max}")),
            }
        }
        Kind::Decimal { min, max } => {
            if !is_plain_decimal(s) {
                return Err(format!("'{s}' is not a decimal number (digits with a '.')"));
            }
            match s.parse::<f64>() {
                Ok(v) if v >= min && v <= max => Ok(Val::Dec(v)),
                _ => Err(format!("'{s}' must be between {min} and {max}")),
            }
        }
        Kind::Bool => {
            if s.eq_ignore_ascii_case("true") {
                Ok(Val::Bool(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Val::Bool(false))
            } else {
                Err(format!("'{s}' is not true or false"))
            }
        }
        Kind::Date => parse_date(s)
            .map(Val::Date)
            .ok_or_else(|| format!("'{s}' is not a date YYYY-MM-DD")),
        Kind::PersonCf => unreachable!("person_cf is a common field"),
        Kind::EmployerId => {
            let id = codes::normalise_cf(s);
            if codes::is_valid_employer_id(&id) {
                Ok(Val::Text(id))
            } else {
                Err("is neither a partita IVA with a valid check digit nor a valid 16-character codice fiscale".to_owned())
            }
        }
        Kind::ContractCode => {
            if reference::is_well_formed_contract_code(s) {
                Ok(Val::Text(s.to_owned()))
            } else {
                Err(format!(
                    "'{s}' is not a CO contract code (a capital letter, then .NN.NN)"
                ))
            }
        }
        Kind::AtecoSection => {
            let b = s.as_bytes();
            if b.len() == 1 && (b'A'..=b'U').contains(&b[0]) {
                Ok(Val::Text(s.to_owned()))
            } else {
                Err(format!("'{s}' is not an ATECO section A-U"))
            }
        }
        Kind::ProfessionCode => {
            if is_profession_code(s) {
                Ok(Val::Text(s.to_owned()))
            } else {
                Err(format!(
                    "'{s}' is not a CP2011 code (1-5 dot-separated levels, e.g. 3.4.5.2.0)"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurred_at_uses_the_rome_date() {
        // 23:30 UTC on 31 Dec is 00:30 on 1 Jan in Rome (UTC+1 in winter).
        let (_, d, timed) = parse_occurred_at("2024-12-31T23:30:00Z").unwrap();
        assert_eq!(d, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        assert!(timed);
        // 22:30 UTC on 30 Jun is 00:30 on 1 Jul in Rome (UTC+2 in summer).
        let (_, d, _) = parse_occurred_at("2024-06-30T22:30:00Z").unwrap();
        assert_eq!(d, NaiveDate::from_ymd_opt(2024, 7, 1).unwrap());
        let (us, d, timed) = parse_occurred_at("2024-03-05").unwrap();
        assert_eq!(d, NaiveDate::from_ymd_opt(2024, 3, 5).unwrap());
        assert!(!timed);
        assert_eq!(
            us,
            parse_occurred_at("2024-03-05T00:00:00+01:00").unwrap().0
        );
        assert!(parse_occurred_at("2024-3-5").is_none());
        assert!(parse_occurred_at("2024-03-05T10:00:00").is_none());
    }

    #[test]
    fn codes_keep_to_a_safe_set() {
        for ok in ["MI-01", "RM_03", "cpi.2", "P1", "VAC-03-0000001"] {
            assert!(is_code(ok), "{ok}");
        }
        for bad in [
            "=1+2*3", "-MI", "+39", "@x", "MI 01", "MI;01", "", "MI/01", "è1",
        ] {
            assert!(!is_code(bad), "{bad}");
        }
    }

    #[test]
    fn profession_codes() {
        assert!(is_profession_code("3"));
        assert!(is_profession_code("3.4.5.2.0"));
        assert!(is_profession_code("2.1.1.4.13"));
        assert!(!is_profession_code("0.1"));
        assert!(!is_profession_code("3.4.5.2.0.1"));
        assert!(!is_profession_code("3..4"));
    }
}
