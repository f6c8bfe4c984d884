//! Turns compact events into text rows, and writes rows as CSV or JSON Lines.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Europe::Rome;

use super::faults;
use super::model::*;
use super::sim::{RegionData, to_date};
use crate::reference::Province;

/// One row as text: a value per column of `COLUMNS`, present or absent. Reused across rows
/// so that writing millions of rows allocates almost nothing.
pub(super) struct Row {
    vals: Vec<String>,
    set: [bool; COLUMNS.len()],
}

impl Row {
    pub(super) fn new() -> Self {
        Self {
            vals: vec![String::new(); COLUMNS.len()],
            set: [false; COLUMNS.len()],
        }
    }

    fn clear(&mut self) {
        for (v, s) in self.vals.iter_mut().zip(self.set.iter_mut()) {
            v.clear();
            *s = false;
        }
    }

    /// The buffer of a column, emptied and marked present, to write the value into.
    pub(super) fn slot(&mut self, c: usize) -> &mut String {
        self.set[c] = true;
        let v = &mut self.vals[c];
        v.clear();
        v
    }

    pub(super) fn put(&mut self, c: usize, s: &str) {
        self.slot(c).push_str(s);
    }

    pub(super) fn unset(&mut self, c: usize) {
        self.set[c] = false;
        self.vals[c].clear();
    }

    pub(super) fn get(&self, c: usize) -> Option<&str> {
        self.set[c].then(|| self.vals[c].as_str())
    }
}

/// What rendering a region's events needs besides the events.
pub(super) struct Renderer<'a> {
    pub region_code: &'static str,
    pub data: &'a RegionData,
    pub provinces: &'static [Province],
    pub start: Day,
    pub end: Day,
    /// The Rome UTC offset (hours) of the last date looked up: rows come sorted by date.
    offset_cache: (Day, i32),
}

pub(super) fn write_ymd(out: &mut String, d: NaiveDate) {
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

impl<'a> Renderer<'a> {
    pub(super) fn new(
        region_code: &'static str,
        data: &'a RegionData,
        provinces: &'static [Province],
        start: Day,
        end: Day,
    ) -> Self {
        Self {
            region_code,
            data,
            provinces,
            start,
            end,
            offset_cache: (Day::MIN, 1),
        }
    }

    /// Rome's offset from UTC at midday of that date. Office hours never straddle a DST switch
    /// (it happens at night), so midday stands for the whole working day.
    fn rome_offset_hours(&mut self, day: Day) -> i32 {
        if self.offset_cache.0 == day {
            return self.offset_cache.1;
        }
        let ndt = to_date(day).and_hms_opt(12, 0, 0).unwrap_or_default();
        let hours = Rome
            .offset_from_local_datetime(&ndt)
            .earliest()
            .map_or(1, |o| o.fix().local_minus_utc() / 3600);
        self.offset_cache = (day, hours);
        hours
    }

    fn write_stamp(&mut self, out: &mut String, day: Day, stamp: u8, minute: u16) {
        match stamp {
            STAMP_DATE => write_ymd(out, to_date(day)),
            STAMP_LATE_UTC => {
                write_ymd(out, to_date(day - 1));
                let _ = write!(out, "T23:{:02}:00Z", minute % 60);
            }
            _ => {
                let off = self.rome_offset_hours(day);
                let (h, m) = (i32::from(minute / 60), minute % 60);
                write_ymd(out, to_date(day));
                if stamp == STAMP_LOCAL {
                    let _ = write!(out, "T{h:02}:{m:02}:00+{off:02}:00");
                } else {
                    let _ = write!(out, "T{:02}:{m:02}:00Z", h - off);
                }
            }
        }
    }

    fn operator(&self, out: &mut String, sigla: &str, n: u16) {
        let _ = write!(out, "op-{sigla}-{n:04}");
    }

    fn employer(&self, row: &mut Row, e: u32) {
        if let Some(code) = self.data.employers.get(e as usize) {
            row.put(col::EMPLOYER_ID, code.as_str());
        }
    }

    fn vacancy_id(&self, row: &mut Row, v: u32) {
        let _ = write!(row.slot(col::VACANCY_ID), "VAC-{}-{v:07}", self.region_code);
    }

    fn tri(row: &mut Row, c: usize, v: u8) {
        match v {
            1 => row.put(c, "false"),
            2 => row.put(c, "true"),
            _ => {}
        }
    }

    /// Renders an event as the regional system sends it, deliberate fault included.
    pub(super) fn render(&mut self, ev: &Ev, row: &mut Row) {
        row.clear();
        let rc = self.region_code;
        let prov = &self.provinces[ev.prov as usize];
        let sigla = prov.sigla;
        let _ = write!(
            row.slot(col::EVENT_ID),
            "R{rc}-{}-{:09}",
            to_date(ev.date).year(),
            ev.seq
        );
        row.put(col::EVENT_TYPE, ev.kind.as_str());
        // A conflicting copy reports the same event on another day (or, in a one-day
        // period, by another operator): same id, different content.
        let mut operator = ev.operator;
        let date = if ev.fault == FAULT_CONFLICT {
            if ev.date > self.start {
                ev.date - 1
            } else if ev.date < self.end {
                ev.date + 1
            } else {
                operator = if operator == 9999 { 9998 } else { 9999 };
                ev.date
            }
        } else {
            ev.date
        };
        let mut buf = std::mem::take(row.slot(col::OCCURRED_AT));
        self.write_stamp(&mut buf, date, ev.stamp, ev.minute);
        *row.slot(col::OCCURRED_AT) = buf;
        row.put(col::PROVINCE, sigla);
        let _ = write!(
            row.slot(col::CPI_CODE),
            "{sigla}-{:02}",
            u32::from(ev.cpi) + 1
        );
        let person = self.data.persons.get(ev.person as usize);
        if let Some(p) = person {
            let cf = p.cf.as_str();
            let out = row.slot(col::PERSON_CF);
            match ev.cf_style {
                1 => out.extend(cf.chars().map(|c| c.to_ascii_lowercase())),
                2 => {
                    out.push_str(cf);
                    out.push(' ');
                }
                3 => {
                    out.push(' ');
                    out.push_str(cf);
                }
                _ => out.push_str(cf),
            }
        }
        if operator != 0 {
            self.operator(row.slot(col::OPERATOR_ID), sigla, operator);
        }
        self.payload(ev, row, sigla);
        if ev.fault != 0 && ev.fault != FAULT_CONFLICT {
            faults::apply(ev, row, person.map(|p| p.cf.as_str()), sigla);
        }
    }

    fn payload(&self, ev: &Ev, row: &mut Row, sigla: &str) {
        let rc = self.region_code;
        match ev.payload {
            Payload::None => {}
            Payload::Application(app) => {
                let art18 = app.category == CAT_ART18;
                row.put(col::LIST_TYPE, LIST_TYPES[usize::from(art18)]);
                row.put(col::CATEGORY, CATEGORIES[app.category as usize]);
                if app.pct != NO8 {
                    let _ = write!(row.slot(col::DISABILITY_PCT), "{}", app.pct);
                }
                Self::tri(row, col::NASPI, app.naspi);
                if app.education != NO8 {
                    let _ = write!(row.slot(col::EDUCATION), "{}", app.education);
                }
                if let Some(p) = self.data.persons.get(ev.person as usize) {
                    if app.explicit & 1 != 0 {
                        row.put(col::GENDER, if p.female { "F" } else { "M" });
                    }
                    if app.explicit & 2 != 0 {
                        write_ymd(row.slot(col::BIRTH_DATE), to_date(p.birth));
                    }
                }
            }
            Payload::Agency(a) => row.put(col::AGENCY, AGENCIES[a as usize]),
            Payload::Reason(r) => {
                let table: &[&str] = if ev.kind == Kind::RegistrationCancelled {
                    &CANCEL_REASONS
                } else {
                    &DECISION_REASONS
                };
                row.put(col::REASON, table[r as usize]);
            }
            Payload::Profiling(v) => {
                if v != NO8 {
                    let _ = write!(row.slot(col::PROFILING_INDEX), "{}.{:02}", v / 100, v % 100);
                }
            }
            Payload::Pact(f) => {
                let _ = write!(row.slot(col::PACT_ID), "PAT-{rc}-{:07}", f.pact);
                if f.responsible != 0 {
                    self.operator(row.slot(col::RESPONSIBLE_OPERATOR), sigla, f.responsible);
                }
                if f.profile != NO8 {
                    row.put(col::EMPLOYABILITY_PROFILE, PROFILES[f.profile as usize]);
                }
                if f.search_acts != NO8 {
                    let _ = write!(row.slot(col::SEARCH_ACTS), "{}", f.search_acts);
                }
                if f.frequency != 0 {
                    let _ = write!(row.slot(col::CONTACT_FREQUENCY_DAYS), "{}", f.frequency);
                }
                if f.proof != NO8 {
                    row.put(col::SEARCH_PROOF_METHOD, PROOF_METHODS[f.proof as usize]);
                }
                for (i, &a) in f.avail.iter().enumerate() {
                    Self::tri(row, col::AVAIL_WORKSHOPS + i, a);
                }
            }
            Payload::Review { pact, outcome } => {
                let _ = write!(row.slot(col::PACT_ID), "PAT-{rc}-{pact:07}");
                row.put(col::REVIEW_OUTCOME, REVIEW_OUTCOMES[outcome as usize]);
            }
            Payload::Flag(v) => {
                let c = if ev.kind == Kind::SkillsAssessment {
                    col::SKILLS_GAP
                } else {
                    col::GROUP
                };
                Self::tri(row, c, v);
            }
            Payload::ToService(t) => row.put(col::TO_SERVICE, TO_SERVICES[t as usize]),
            Payload::Support(t) => row.put(col::SUPPORT_TYPE, SUPPORT_TYPES[t as usize]),
            Payload::Measure {
                measure,
                kind,
                employer,
            } => {
                let _ = write!(row.slot(col::MEASURE_ID), "MIS-{rc}-{measure:07}");
                row.put(col::MEASURE_TYPE, MEASURE_TYPES[kind as usize]);
                if employer != NO32 {
                    self.employer(row, employer);
                }
            }
            Payload::MeasureRef(m) => {
                let _ = write!(row.slot(col::MEASURE_ID), "MIS-{rc}-{m:07}");
            }
            Payload::MeasureEnd { measure, reason } => {
                let _ = write!(row.slot(col::MEASURE_ID), "MIS-{rc}-{measure:07}");
                row.put(col::END_REASON, MEASURE_END_REASONS[reason as usize]);
            }
            Payload::Vacancy(v) => {
                self.vacancy_id(row, v);
                if let Some(vac) = self.data.vacancies.get(v as usize) {
                    self.employer(row, vac.employer);
                    let _ = write!(row.slot(col::POSITIONS), "{}", vac.positions);
                    row.put(col::REQUEST_TYPE, REQUEST_TYPES[vac.request as usize]);
                    if vac.ateco != NO8 {
                        row.slot(col::ATECO_SECTION)
                            .push(char::from(ATECO_SECTIONS[vac.ateco as usize]));
                    }
                    if vac.levels > 0 {
                        let out = row.slot(col::PROFESSION_CODE);
                        for (i, d) in vac.profession.iter().take(vac.levels as usize).enumerate() {
                            if i > 0 {
                                out.push('.');
                            }
                            out.push(char::from(b'0' + d));
                        }
                    }
                }
            }
            Payload::Candidate { vacancy, channel } => {
                self.vacancy_id(row, vacancy);
                if channel != NO8 {
                    row.put(col::CHANNEL, CHANNELS[channel as usize]);
                }
            }
            Payload::VacancyClose { vacancy, reason } => {
                self.vacancy_id(row, vacancy);
                row.put(col::CLOSE_REASON, CLOSE_REASONS[reason as usize]);
            }
            Payload::Hired(h) => {
                self.employer(row, h.employer);
                row.put(col::CONTRACT_CODE, CONTRACTS[h.contract as usize]);
                if h.months != 0 {
                    let _ = write!(row.slot(col::CONTRACT_MONTHS), "{}", h.months);
                }
                Self::tri(row, col::PART_TIME, h.part_time);
                row.put(col::HIRING_MODE, HIRING_MODES[h.mode as usize]);
                if h.vacancy != NO32 {
                    self.vacancy_id(row, h.vacancy);
                }
                if h.agreement != NO32 {
                    self.agreement_id(row, h.agreement);
                }
                // Version 2's optional facts of the employer, which most systems send.
                if let Some(f) = self.data.employer_facts.get(h.employer as usize)
                    && !ev.seq.is_multiple_of(8)
                {
                    row.put(
                        col::EMPLOYER_OBLIGED,
                        if f.obliged { "true" } else { "false" },
                    );
                    row.put(col::SECTOR, SECTORS[usize::from(!f.public)]);
                }
            }
            Payload::Ended { employer, reason } => {
                self.employer(row, employer);
                if reason != NO8 {
                    row.put(col::END_REASON, EMPLOYMENT_END_REASONS[reason as usize]);
                }
            }
            Payload::Act(i) => {
                if let Some(act) = self.data.acts.get(i as usize) {
                    self.act(act, row);
                }
            }
        }
    }

    fn agreement_id(&self, row: &mut Row, a: u32) {
        let _ = write!(
            row.slot(col::AGREEMENT_ID),
            "CONV-{}-{a:07}",
            self.region_code
        );
    }

    fn number(row: &mut Row, c: usize, n: impl std::fmt::Display) {
        let _ = write!(row.slot(c), "{n}");
    }

    /// An act of the employers' side.
    fn act(&self, act: &Act, row: &mut Row) {
        match *act {
            Act::Statement {
                employer,
                year,
                public,
                base,
                reserved,
                covered,
                art18,
            } => {
                self.employer(row, employer);
                Self::number(row, col::REFERENCE_YEAR, year);
                row.put(col::SECTOR, SECTORS[usize::from(!public)]);
                let band = match base {
                    ..=35 => 0,
                    36..=50 => 1,
                    _ => 2,
                };
                row.put(col::SIZE_BAND, SIZE_BANDS[band]);
                Self::number(row, col::BASE_WORKFORCE, base);
                Self::number(row, col::RESERVED_ART1, reserved[0]);
                Self::number(row, col::COVERED_ART1, covered[0]);
                if art18 {
                    Self::number(row, col::RESERVED_ART18, reserved[1]);
                    Self::number(row, col::COVERED_ART18, covered[1]);
                }
            }
            Act::AgreementSigned {
                employer,
                agreement,
            } => {
                self.employer(row, employer);
                self.agreement_id(row, agreement);
                if let Some(a) = self.data.agreements.get(agreement as usize) {
                    row.put(col::AGREEMENT_TYPE, AGREEMENT_TYPES[a.kind as usize]);
                    Self::number(row, col::PLANNED_HIRES, a.planned);
                    Self::number(row, col::DURATION_MONTHS, a.months);
                }
            }
            Act::AgreementEnded {
                employer,
                agreement,
                outcome,
            } => {
                self.employer(row, employer);
                self.agreement_id(row, agreement);
                row.put(col::AGREEMENT_OUTCOME, AGREEMENT_OUTCOMES[outcome as usize]);
            }
            Act::Exemption {
                employer,
                pct,
                workers,
                from,
                to,
            } => {
                self.employer(row, employer);
                Self::number(row, col::EXEMPTION_PCT, pct);
                Self::number(row, col::EXEMPTED_WORKERS, workers);
                write_ymd(row.slot(col::PERIOD_START), to_date(from));
                write_ymd(row.slot(col::PERIOD_END), to_date(to));
            }
            Act::Suspension {
                employer,
                reason,
                from,
                to,
                positions,
            } => {
                self.employer(row, employer);
                row.put(col::SUSPENSION_REASON, SUSPENSION_REASONS[reason as usize]);
                write_ymd(row.slot(col::PERIOD_START), to_date(from));
                write_ymd(row.slot(col::PERIOD_END), to_date(to));
                if positions > 0 {
                    Self::number(row, col::POSITIONS, positions);
                }
            }
            Act::Compensation {
                employer,
                to,
                positions,
            } => {
                self.employer(row, employer);
                row.put(col::TO_PROVINCE, self.provinces[to as usize].sigla);
                Self::number(row, col::POSITIONS, positions);
            }
            Act::Request {
                employer,
                vacancy,
                positions,
            } => {
                self.employer(row, employer);
                self.vacancy_id(row, vacancy);
                Self::number(row, col::POSITIONS, positions);
            }
        }
    }
}

/// A batch file being written, in either format.
pub(super) enum Sink<W: Write> {
    // Boxed: the csv writer carries its own buffer state, far larger than the JSON variant.
    Csv(Box<csv::Writer<W>>),
    Jsonl(W, String),
}

fn csv_err(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl<W: Write> Sink<W> {
    /// A CSV sink starts with the header: every field name of the contract.
    pub(super) fn csv(w: W) -> io::Result<Self> {
        let mut wr = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(w);
        wr.write_record(COLUMNS).map_err(csv_err)?;
        Ok(Sink::Csv(Box::new(wr)))
    }

    pub(super) fn jsonl(w: W) -> Self {
        Sink::Jsonl(w, String::with_capacity(512))
    }

    pub(super) fn write(&mut self, row: &Row) -> io::Result<()> {
        match self {
            Sink::Csv(wr) => wr
                .write_record((0..COLUMNS.len()).map(|c| row.get(c).unwrap_or("").as_bytes()))
                .map_err(csv_err),
            Sink::Jsonl(w, line) => {
                line.clear();
                line.push('{');
                let mut first = true;
                for (c, name) in COLUMNS.iter().enumerate() {
                    let Some(v) = row.get(c) else { continue };
                    if !first {
                        line.push(',');
                    }
                    first = false;
                    line.push('"');
                    line.push_str(name);
                    line.push_str("\":");
                    let bare = if BOOL_COLUMNS.contains(&c) {
                        v == "true" || v == "false"
                    } else if NUMBER_COLUMNS.contains(&c) {
                        is_json_number(v)
                    } else {
                        false
                    };
                    if bare {
                        line.push_str(v);
                    } else {
                        push_json_string(line, v);
                    }
                }
                line.push_str("}\n");
                w.write_all(line.as_bytes())
            }
        }
    }

    /// Flushes everything and hands back the underlying writer.
    pub(super) fn finish(self) -> io::Result<W> {
        match self {
            Sink::Csv(wr) => wr.into_inner().map_err(|e| io::Error::other(e.to_string())),
            Sink::Jsonl(mut w, _) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

/// True for text that is a JSON number as written (`-`? digits, optional `.digits`).
fn is_json_number(v: &str) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(digits)
}

fn push_json_string(out: &mut String, v: &str) {
    out.push('"');
    for ch in v.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers() {
        for ok in ["0", "12", "0.5", "1.00", "-1", "120"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "01", "1.", ".5", "abc", "1e3", "--1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\u{1}");
        assert_eq!(s, r#""a\"b\\c\u0001""#);
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "a\"b\\c\u{1}");
    }
}
