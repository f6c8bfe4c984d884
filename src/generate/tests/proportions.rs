//! The proportions of a generated population, measured from the written rows as KPIS.md
//! counts them, for the test that holds them to the published figures and for the table of
//! sample-data/README.md.
//!
//! - **Stock** of year Y: persons in an open registration spell at the end of 31 December
//!   of Y − 1 (`registered_stock` with `to` = that day): their latest `application_accepted`
//!   or `registration_cancelled` dated on or before it is an acceptance.
//! - **New registrations**: `application_accepted` events dated in Y (each opens a spell).
//! - **Hires**: employment hires (KPIS.md version 2): `hired` events dated in Y whose
//!   contract is neither a traineeship (C.01.00) nor a work grant (C.04.00).
//! - **Open-ended**: of those, contract `A.01.00`. **Outside the obligation**: of those,
//!   `hiring_mode` `other` (no quota of L. 68/1999 behind the hire).
//! - **Fill rate**: `vacancy_fill_rate`: of the vacancies closed in Y, the share with an
//!   employment hire naming them on or before the close.
//! - **Placement at N days** (`placement_rate_N`, KPIS.md version 2): of the registration
//!   spells whose first `pact_signed` falls in Y, with N days of observation after it (the
//!   observation end is the latest event date), and not cancelled as `deceased` or `moved`
//!   before day N with no employment hire before that: the share with an employment hire,
//!   in any spell, 0–N days after the pact.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};

use super::contract::{Record, rome_date};
use crate::codes;

/// One year's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Year {
    pub stock: u64,
    pub new: u64,
    pub hires: u64,
    pub open_ended: u64,
    pub outside: u64,
    pub closed: u64,
    pub filled: u64,
    /// Spells of the year's pacts counted by placement at 180 and at 365 days, and placed.
    pub pacts_180: u64,
    pub placed_180: u64,
    pub pacts_365: u64,
    pub placed_365: u64,
}

impl Year {
    pub(super) fn new_per_stock(&self) -> f64 {
        self.new as f64 / self.stock as f64
    }
    pub(super) fn hires_per_stock(&self) -> f64 {
        self.hires as f64 / self.stock as f64
    }
    pub(super) fn hires_per_new(&self) -> f64 {
        self.hires as f64 / self.new as f64
    }
    pub(super) fn open_ended_share(&self) -> f64 {
        self.open_ended as f64 / self.hires as f64
    }
    pub(super) fn outside_share(&self) -> f64 {
        self.outside as f64 / self.hires as f64
    }
    pub(super) fn fill_rate(&self) -> f64 {
        self.filled as f64 / self.closed as f64
    }
    pub(super) fn placement_180(&self) -> f64 {
        self.placed_180 as f64 / self.pacts_180 as f64
    }
    pub(super) fn placement_365(&self) -> f64 {
        self.placed_365 as f64 / self.pacts_365 as f64
    }

    fn add(&mut self, o: &Year) {
        self.stock += o.stock;
        self.new += o.new;
        self.hires += o.hires;
        self.open_ended += o.open_ended;
        self.outside += o.outside;
        self.closed += o.closed;
        self.filled += o.filled;
        self.pacts_180 += o.pacts_180;
        self.placed_180 += o.placed_180;
        self.pacts_365 += o.pacts_365;
        self.placed_365 += o.placed_365;
    }
}

/// The counts per year in `years`, and their sum (ratios of sums: the period's figure).
pub(super) fn measure(
    records: &[Record],
    years: std::ops::RangeInclusive<i32>,
) -> (BTreeMap<i32, Year>, Year) {
    let date = |r: &Record| rome_date(&r["occurred_at"]).expect("a valid date");
    let person = |r: &Record| codes::normalise_cf(&r["person_cf"]);
    // Registration events per person, in date order (acceptance before a same-day cancel).
    let mut trail: HashMap<String, Vec<(NaiveDate, bool)>> = HashMap::new();
    let mut hire_days: HashMap<&str, Vec<NaiveDate>> = HashMap::new();
    let mut out: BTreeMap<i32, Year> = years.clone().map(|y| (y, Year::default())).collect();
    for r in records {
        let d = date(r);
        let kind = r["event_type"].as_str();
        match kind {
            "application_accepted" | "registration_cancelled" => {
                let accepted = kind == "application_accepted";
                trail.entry(person(r)).or_default().push((d, accepted));
                if let (true, Some(y)) = (accepted, out.get_mut(&d.year())) {
                    y.new += 1;
                }
            }
            "hired" => {
                let code = r["contract_code"].as_str();
                if code == "C.01.00" || code == "C.04.00" {
                    continue;
                }
                if let Some(v) = r.get("vacancy_id") {
                    hire_days.entry(v).or_default().push(d);
                }
                if let Some(y) = out.get_mut(&d.year()) {
                    y.hires += 1;
                    y.open_ended += u64::from(code == "A.01.00");
                    y.outside += u64::from(r.get("hiring_mode").is_some_and(|m| m == "other"));
                }
            }
            _ => {}
        }
    }
    for r in records {
        if r["event_type"] == "vacancy_closed" {
            let d = date(r);
            if let Some(y) = out.get_mut(&d.year()) {
                y.closed += 1;
                let filled = hire_days
                    .get(r["vacancy_id"].as_str())
                    .is_some_and(|h| h.iter().any(|&h| h <= d));
                y.filled += u64::from(filled);
            }
        }
    }
    for t in trail.values_mut() {
        t.sort_by_key(|&(d, accepted)| (d, !accepted));
    }
    for (&y, counts) in &mut out {
        let eve = NaiveDate::from_ymd_opt(y - 1, 12, 31).expect("a date");
        counts.stock = trail
            .values()
            .filter(|t| {
                t.iter()
                    .rev()
                    .find(|(d, _)| *d <= eve)
                    .is_some_and(|&(_, accepted)| accepted)
            })
            .count() as u64;
    }
    for (&y, counts) in &mut out {
        (counts.pacts_180, counts.placed_180) = placement(records, y, 180);
        (counts.pacts_365, counts.placed_365) = placement(records, y, 365);
    }
    let mut total = Year::default();
    for y in out.values() {
        total.add(y);
    }
    (out, total)
}

/// Placement within `days` of the pact for the spells whose first pact is dated in `year`:
/// (spells counted, spells placed), as `placement_rate_N` counts them.
pub(super) fn placement(records: &[Record], year: i32, days: i64) -> (u64, u64) {
    #[derive(Default)]
    struct Trail {
        accepted: Vec<NaiveDate>,
        censored: Vec<NaiveDate>,
        pacts: Vec<NaiveDate>,
        hires: Vec<NaiveDate>,
    }
    let date = |r: &Record| rome_date(&r["occurred_at"]).expect("a valid date");
    let mut trails: HashMap<String, Trail> = HashMap::new();
    let mut obs_end = NaiveDate::MIN;
    for r in records {
        let d = date(r);
        obs_end = obs_end.max(d);
        let Some(cf) = r.get("person_cf").map(|c| codes::normalise_cf(c)) else {
            continue;
        };
        let t = trails.entry(cf).or_default();
        match r["event_type"].as_str() {
            "application_accepted" => t.accepted.push(d),
            "registration_cancelled" => {
                if matches!(
                    r.get("reason").map(String::as_str),
                    Some("deceased" | "moved")
                ) {
                    t.censored.push(d);
                }
            }
            "pact_signed" => t.pacts.push(d),
            "hired" if !matches!(r["contract_code"].as_str(), "C.01.00" | "C.04.00") => {
                t.hires.push(d)
            }
            _ => {}
        }
    }
    let (mut cohort, mut placed) = (0, 0);
    for t in trails.values_mut() {
        t.accepted.sort();
        t.pacts.sort();
        // The first pact of each spell: the spell is the latest acceptance on or before it.
        let mut firsts: BTreeMap<Option<NaiveDate>, NaiveDate> = BTreeMap::new();
        for &p in &t.pacts {
            let spell = t.accepted.iter().rev().find(|&&a| a <= p).copied();
            firsts.entry(spell).or_insert(p);
        }
        for &p in firsts.values() {
            if p.year() != year || p + chrono::Days::new(days as u64) > obs_end {
                continue;
            }
            let hire = t.hires.iter().filter(|&&h| h >= p).min().copied();
            let within = hire.is_some_and(|h| (h - p).num_days() <= days);
            let censored = t
                .censored
                .iter()
                .any(|&c| c >= p && (c - p).num_days() < days && hire.is_none_or(|h| c < h));
            if censored {
                continue;
            }
            cohort += 1;
            placed += u64::from(within);
        }
    }
    (cohort, placed)
}

/// Every person-event's age as KPIS.md counts it (the event's year minus the birth year),
/// the birth year read from the person's application (its `birth_date`, else the CF); the
/// smallest and the largest, and how many events had no birth year to go by.
pub(super) fn age_range(records: &[Record]) -> (i32, i32, usize) {
    let mut birth: HashMap<String, i32> = HashMap::new();
    for r in records {
        if r["event_type"] != "application_submitted" {
            continue;
        }
        let cf = codes::normalise_cf(&r["person_cf"]);
        let year = match r.get("birth_date") {
            Some(b) => rome_date(b).map(|d| d.year()),
            None => codes::cf_facts(&cf).map(|f| {
                let applied = rome_date(&r["occurred_at"]).map_or(2000, |d| d.year());
                codes::cf_birth_year(f.yy, applied)
            }),
        };
        if let Some(y) = year {
            birth.insert(cf, y);
        }
    }
    let (mut lo, mut hi, mut unknown) = (i32::MAX, i32::MIN, 0);
    let mut seen = HashSet::new();
    for r in records {
        let Some(cf) = r.get("person_cf").map(|c| codes::normalise_cf(c)) else {
            continue;
        };
        let Some(&b) = birth.get(&cf) else {
            unknown += usize::from(seen.insert(cf));
            continue;
        };
        let age = rome_date(&r["occurred_at"]).expect("a valid date").year() - b;
        lo = lo.min(age);
        hi = hi.max(age);
    }
    (lo, hi, unknown)
}

/// The table of sample-data/README.md: one line a year and one for the period.
pub(super) fn table(per_year: &BTreeMap<i32, Year>, total: &Year) -> String {
    let mut s = String::from(
        "| year | stock at 1 Jan | new registrations | hires | new ÷ stock | hires ÷ stock \
         | hires ÷ new | open-ended | outside the obligation | vacancy fill rate \
         | placed within 180 days | placed within 365 days |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    // A year whose pacts have no full follow-up has no placement figure.
    let rate = |placed: u64, of: u64| {
        if of == 0 {
            "–".to_string()
        } else {
            format!("{} ({placed} of {of})", pct(placed as f64 / of as f64))
        }
    };
    let line = |label: String, y: &Year| {
        format!(
            "| {label} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} |\n",
            y.stock,
            y.new,
            y.hires,
            pct(y.new_per_stock()),
            pct(y.hires_per_stock()),
            y.hires_per_new(),
            pct(y.open_ended_share()),
            pct(y.outside_share()),
            pct(y.fill_rate()),
            rate(y.placed_180, y.pacts_180),
            rate(y.placed_365, y.pacts_365),
        )
    };
    for (y, c) in per_year {
        s.push_str(&line(y.to_string(), c));
    }
    s.push_str(&line("all years".into(), total));
    s
}
