//! The syntax of single values: the instant of an event (dated in Rome), identifiers and codes,
//! and each kind of a type's own fields (text, list, number, date, contract and activity codes).

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Europe::Rome;

use super::Val;
use crate::codes;
use crate::model::{Field, Kind, parse_date};
use crate::privacy::contains_identifier;
use crate::reference;

/// Midnight of a date in Rome (µs since the epoch), cached: a file's events fall on few dates.
pub(super) fn rome_midnight_us(d: NaiveDate) -> i64 {
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

/// A date as Date32 stores it.
pub(super) fn days_since_epoch(d: NaiveDate) -> i32 {
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
pub(super) fn looks_like_identifier(s: &str) -> bool {
    contains_identifier(s)
}

pub(super) fn char_len(s: &str) -> usize {
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
pub(super) const CODE_FORMAT: &str =
    "{field} must be letters, digits, '_', '.' or '-', starting with a letter or a digit";

/// The type-specific fields held to [`is_code`].
pub(super) fn is_code_field(f: Field) -> bool {
    matches!(
        f,
        Field::PactId | Field::MeasureId | Field::VacancyId | Field::AgreementId
    )
}

pub(super) fn is_event_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Reads one field's text by its kind; the error completes "<field> ...".
pub(super) fn parse_kind(kind: Kind, s: &str) -> Result<Val, String> {
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
