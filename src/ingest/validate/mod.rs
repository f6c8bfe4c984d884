//! Row validation: every rule of EVENTS.md, each reported with a stable rule code so that
//! quarantine can be counted by rule.
//!
//! This file checks a row's common fields and hands each type's own fields to the syntax of
//! their kind (`values`), the rules across fields to `cross`, and the checked values to
//! `assemble`, which builds the stored event.

mod assemble;
mod cross;
mod values;

use std::borrow::Cow;

use chrono::NaiveDate;

use crate::codes;
use crate::model::{Event, EventType, Field, Kind, Need};
use crate::privacy::{Pseudonymiser, mask_identifiers};
use crate::reference;
use assemble::{hash_val, push_text};
use values::{
    CODE_FORMAT, char_len, days_since_epoch, is_code_field, is_event_id, looks_like_identifier,
    parse_kind, rome_midnight_us,
};
pub use values::{is_code, parse_occurred_at};

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
