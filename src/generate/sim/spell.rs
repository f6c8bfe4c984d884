//! A person and their registrations: the application and its decision, then each
//! registration spell, whose exits (a hire, a cancellation, the end of working age) are
//! planned first and whose services (orientation, pact, measures, proposals) are written
//! inside the plan. The waiting times are memoryless within each stretch of a spell (the
//! hire's hazard changes only at fixed days after the pact), so a spell of the opening stock,
//! open on the first day, draws its exits from that day as a new one does from its start.

use super::matching::{HirePlan, Via};
use super::{Person, Sim, Who, from_date, to_date};
use crate::generate::model::*;

/// Mean wait, in days, for a cancellation other than for a hire (own request, missed
/// summons, moving, ...). Together with the cancellations for a hire and for age, the exits
/// balance the new registrations, so the stock stays about level.
const EXIT_MEAN_DAYS: f64 = 12000.0;
/// Mean waits, in days, for a hire in the first year after a pact, piece by piece: (the last
/// day after the pact a piece holds for, its mean wait). Most placements come soon after the
/// pact: about one spell in five has an employment hire within 365 days (20.5% for 2024 in
/// the published figures), one in eight within 180, so the hazard is highest then.
const FIRST_YEAR: [(i32, f64); 2] = [(180, 1000.0), (365, 2400.0)];
/// Mean wait, in days, for a hire later on (the long-term stock, and a hire after a job),
/// and for one without a pact: lower hazards, so that the hires of the whole stock stay at
/// about 5.5% of it a year.
const HIRE_MEAN_DAYS: f64 = 7000.0;
const HIRE_MEAN_DAYS_NO_PACT: f64 = 12000.0;
/// New applications start this many days before the first day (see `person`).
const PENDING_LEAD_DAYS: i32 = 45;

impl Sim<'_> {
    /// One person: of the opening stock (`stock`: registered before the first day, and still
    /// registered on it) or registering during the period. Ages are whole years as KPIS.md
    /// counts them (the event's year minus the birth year): 16–64 at a new application; the
    /// opening stock is older, 18–66 on the first day.
    pub(super) fn person(&mut self, local: usize, stock: bool) {
        use chrono::Datelike;
        let t = self.provs[local].clone();
        let (start, end) = (self.cfg.start, self.cfg.end);
        let female = self.chance(0.44);
        let (submit, birth_year) = if stock {
            let age = match self.pick(&[12, 55, 33]) {
                0 => self.between(18, 29),
                1 => self.between(30, 54),
                _ => self.between(55, 66),
            };
            let birth_year = to_date(start).year() - age;
            // Registered up to `HISTORY_YEARS` before (more of them in the later years), with
            // the decision before the first day and at 16 or older.
            let span = (start - 130 - self.cfg.history).max(0);
            let back = 130 + self.exp_days(2600.0) % (span + 1);
            let earliest = year_start(birth_year + 16).max(self.cfg.history);
            ((start - back).max(earliest), birth_year)
        } else {
            // From a few weeks before the first day, so that the first weeks have their
            // decisions too; those applications are pending on the first day.
            let submit = self.between(start - PENDING_LEAD_DAYS, end);
            let age = match self.pick(&[18, 52, 30]) {
                0 => self.between(16, 29),
                1 => self.between(30, 54),
                _ => self.between(55, 64),
            };
            (submit, to_date(submit).year() - age)
        };
        let birth = year_start(birth_year) + self.between(0, 364);
        let temporary = self.chance(0.01);
        let cf = if temporary {
            self.unique_numeric(None)
        } else {
            self.unique_cf16(female, to_date(birth))
        };
        let person = self.data.persons.len() as u32;
        self.data.persons.push(Person { cf, birth, female });
        let cpi = self.between(0, i32::from(t.cpis) - 1) as u8;
        let operator = self.operator_of(cpi);
        let mut who = Who {
            person,
            prov: t.global,
            local,
            cpi,
            operator,
            last_day: year_start(birth_year + 67) - 1,
        };
        self.stock = stock;
        self.pending = submit < start && !stock;
        let mut app = self.new_app(temporary);
        let mut s = submit;
        for round in 0..3 {
            match self.application(&who, app, s) {
                Some(next) if round < 2 && next <= end && next + 150 <= who.last_day => {
                    s = next;
                    app = self.renew_app(app);
                    if self.chance(0.2) {
                        who.cpi = self.between(0, i32::from(t.cpis) - 1) as u8;
                    }
                    who.operator = self.operator_of(who.cpi);
                }
                _ => break,
            }
            // Only the first application can be before the first day.
            self.stock = false;
            self.pending = false;
        }
        self.stock = false;
        self.pending = false;
    }

    fn new_app(&mut self, temporary: bool) -> App {
        let category = if self.chance(0.15) {
            CAT_ART18
        } else {
            self.pick(&[780, 90, 30, 40, 60]) as u8
        };
        let pct = match category {
            CAT_CIVILE => match self.pick(&[40, 25, 35]) {
                0 => self.between(46, 66),
                1 => self.between(67, 79),
                _ => self.between(80, 100),
            },
            CAT_LAVORO => self.between(34, 100),
            CAT_SERVIZIO => self.between(20, 100),
            CAT_ART18 => -1,
            _ => {
                if self.chance(0.3) {
                    self.between(50, 100)
                } else {
                    -1
                }
            }
        };
        let naspi = if self.chance(0.92) {
            tri(Some(self.chance(0.21)))
        } else {
            0
        };
        let education = if self.chance(0.85) {
            self.pick(&[2, 12, 38, 33, 4, 1, 7, 3, 1]) as u8
        } else {
            NO8
        };
        let (pg, pb) = if temporary { (0.75, 0.75) } else { (0.3, 0.2) };
        let explicit = u8::from(self.chance(pg)) | (u8::from(self.chance(pb)) << 1);
        App {
            category,
            pct: if pct < 0 { NO8 } else { pct as u8 },
            naspi,
            education,
            explicit,
        }
    }

    /// A later application of the same person: the same category, a fresh NASpI status, and
    /// sometimes a reassessed (higher) invalidity.
    fn renew_app(&mut self, mut app: App) -> App {
        if app.pct != NO8 && self.chance(0.3) {
            app.pct = (i32::from(app.pct) + self.between(1, 15)).min(100) as u8;
        }
        app.naspi = if self.chance(0.92) {
            tri(Some(self.chance(0.25)))
        } else {
            0
        };
        app
    }

    fn decision_delay(&mut self) -> i32 {
        if self.chance(0.88) {
            self.between(1, 30)
        } else {
            self.between(31, 120)
        }
    }

    fn decision_reason(&mut self, app: &App) -> u8 {
        if app.category == CAT_CIVILE && app.pct < 55 && self.chance(0.5) {
            return 3;
        }
        self.pick(&[25, 35, 15, 8, 4, 13]) as u8
    }

    /// One application: submission, the decision, and the registration spell if accepted.
    /// Returns the day of a later application, if the person applies again.
    fn application(&mut self, who: &Who, app: App, s: Day) -> Option<Day> {
        self.push_p(
            s,
            Kind::ApplicationSubmitted,
            who,
            Payload::Application(app),
        );
        if self.chance(0.28) {
            let inail = if app.category == CAT_LAVORO {
                0.7
            } else {
                0.08
            };
            let agency = u8::from(self.chance(inail));
            let d = s + self.between(0, 12);
            self.push_p(
                d,
                Kind::CertificationRequested,
                who,
                Payload::Agency(agency),
            );
        }
        let (accepted, d) = if self.stock {
            // The opening stock is who was accepted.
            (true, s + self.decision_delay())
        } else if self.chance(0.08) {
            let pre = s + self.between(8, 28);
            let reason = self.decision_reason(&app);
            self.push_p(
                pre,
                Kind::ApplicationPreRejected,
                who,
                Payload::Reason(reason),
            );
            let d = pre + self.between(10, 40);
            (!self.chance(0.58), d)
        } else {
            let rejected = self.chance(0.01);
            (!rejected, s + self.decision_delay())
        };
        // Pending on the first day, an application is decided in the first weeks.
        let d = if self.pending && d < self.cfg.start {
            self.cfg.start + self.between(0, 20)
        } else {
            d
        };
        if d > self.cfg.end {
            return None;
        }
        if accepted {
            self.spell(who, app, d)
        } else {
            let reason = self.decision_reason(&app);
            self.push_p(d, Kind::ApplicationRejected, who, Payload::Reason(reason));
            self.chance(0.12).then(|| d + self.between(60, 400))
        }
    }

    /// The day of the first hire of a search that starts on `search_from` (the pact, if
    /// any), drawn from `open_from` on. With a pact the hazard is piecewise constant: highest
    /// in the months after the pact, lower through the rest of its first year, lowest after
    /// it (`FIRST_YEAR`, then `HIRE_MEAN_DAYS`); a wait that runs past a piece is drawn again
    /// from its end at the next hazard, so a spell of the opening stock whose pact is months
    /// old gets what is left of its first year, then the long-term rate.
    fn first_hire(&mut self, search_from: Day, open_from: Day, pact: bool) -> Day {
        let mut from = (search_from + 15).max(open_from);
        if !pact {
            return from + self.exp_days(HIRE_MEAN_DAYS_NO_PACT);
        }
        for (days, mean) in FIRST_YEAR {
            let piece_end = search_from + days;
            if from < piece_end {
                let d = from + self.exp_days(mean);
                if d < piece_end {
                    return d;
                }
            }
            from = from.max(piece_end);
        }
        from + self.exp_days(HIRE_MEAN_DAYS)
    }

    fn other_cancel_reason(&mut self) -> u8 {
        self.pick(&[0, 26, 14, 8, 15, 5, 12, 20]) as u8
    }

    /// A registration spell from its acceptance on day `a`. Two exits compete, each drawn as
    /// an exponential waiting time: a hire (soonest in the year after a pact, or at the end of a
    /// measure that turned into a job) and a cancellation for another reason; missed summons
    /// may cut the spell shorter still, and the end of working age closes it. A hire that
    /// does not take the person off the list may be followed by another. The plan is settled
    /// first and the services are then written inside it, so nothing happens to a person
    /// after the spell has ended.
    /// Returns the day of a new application, for the few who register again.
    fn spell(&mut self, who: &Who, app: App, a: Day) -> Option<Day> {
        let end = self.cfg.end;
        // A spell of the opening stock is still open on the first day: its exits are drawn
        // from that day on (the waiting times are memoryless).
        let open_from = if self.stock { self.cfg.start } else { a + 20 };
        self.push_p(a, Kind::ApplicationAccepted, who, Payload::None);

        let mut exit_day = open_from + self.exp_days(EXIT_MEAN_DAYS);
        let mut exit_reason = self.other_cancel_reason();
        if exit_day > who.last_day {
            // Past working age: off the list at the end of the year the person turns 66.
            exit_day = who.last_day;
            exit_reason = CANCEL_LOST_REQUIREMENTS;
        }
        let orient = if self.chance(0.82) {
            let d = match self.pick(&[60, 30, 10]) {
                0 => self.between(2, 14),
                1 => self.between(15, 45),
                _ => self.between(46, 120),
            };
            Some(a + d)
        } else {
            None
        };
        let pact = match orient {
            Some(o) if self.chance(0.9) => {
                let d = match self.pick(&[50, 35, 15]) {
                    0 => self.between(0, 7),
                    1 => self.between(8, 45),
                    _ => self.between(46, 150),
                };
                Some(o + d)
            }
            Some(_) => None,
            None => self.chance(0.3).then(|| a + self.between(10, 120)),
        };
        let search_from = pact.unwrap_or(a + 30);
        let mean = if pact.is_some() {
            HIRE_MEAN_DAYS
        } else {
            HIRE_MEAN_DAYS_NO_PACT
        };
        let hire_day = self.first_hire(search_from, open_from, pact.is_some());
        let mut hire = HirePlan {
            day: hire_day,
            via: Via::Direct,
            employer: NO32,
            vacancy: NO32,
            proposal_day: hire_day,
            contract: 0,
            months: 0,
            cancel_day: None,
        };
        let measure = match pact {
            Some(p) if self.chance(0.42) => {
                let start = p + self.between(20, 300);
                Some(self.plan_measure(start))
            }
            _ => None,
        };
        if let Some(m) = &measure
            && m.reason == MEASURE_HIRED
            && m.end < hire.day
            && m.end >= open_from
        {
            hire.day = m.end;
            hire.via = Via::Measure;
            hire.employer = m.host;
        }
        // Kept on the list after a job, a person may be hired again, at the same rate.
        let mut later: Vec<HirePlan> = Vec::new();
        if hire.day <= end && hire.day < exit_day {
            self.complete_hire(who, a, &mut hire);
            let mut prev = hire;
            loop {
                if let Some(c) = prev.cancel_day {
                    if c < exit_day {
                        exit_day = c;
                        exit_reason = CANCEL_HIRED;
                    }
                    break;
                }
                let job = if prev.months > 0 {
                    i32::from(prev.months) * 30
                } else {
                    90
                };
                let day = prev.day + job + self.exp_days(mean);
                if day > end || day >= exit_day {
                    break;
                }
                let mut next = HirePlan {
                    day,
                    via: Via::Direct,
                    employer: NO32,
                    vacancy: NO32,
                    proposal_day: day,
                    contract: 0,
                    months: 0,
                    cancel_day: None,
                };
                self.complete_hire(who, a, &mut next);
                later.push(next);
                prev = next;
            }
        }

        match orient {
            Some(o) if o < exit_day => self.orientation(who, o, app.naspi == 2, exit_day),
            None if app.naspi == 2 && self.chance(0.3) => {
                let d = a + self.between(5, 60);
                if d < exit_day {
                    self.push_p(d, Kind::AdrInformation, who, Payload::None);
                }
            }
            _ => {}
        }
        if let Some(p) = pact
            && p < exit_day
        {
            self.pact(who, p, &mut exit_day, &mut exit_reason);
        }
        let hired = hire.day <= end && hire.day < exit_day;
        if !hired && exit_reason == CANCEL_HIRED {
            exit_reason = self.other_cancel_reason();
        }
        let search_end = if hired { hire.day } else { exit_day };

        if let Some(b) = pact.or(orient)
            && b < search_end
        {
            let p = if pact.is_some() { 0.5 } else { 0.15 };
            if self.chance(p) {
                self.specialist(who, b, search_end);
            }
        }
        if self.chance(0.2) {
            let d = a + self.between(20, 500);
            if d < search_end {
                let to = self.pick(&[45, 25, 20, 10]) as u8;
                self.push_p(d, Kind::Referral, who, Payload::ToService(to));
            }
        }
        if let Some(p) = pact
            && self.chance(0.7)
        {
            let mut t = p + self.between(7, 150);
            for _ in 0..self.between(1, 8) {
                if t >= search_end {
                    break;
                }
                let kind = self.pick(&[25, 25, 20, 10, 20]) as u8;
                self.push_p(t, Kind::JobSearchSupport, who, Payload::Support(kind));
                t += self.between(7, 60);
            }
        }
        if let Some(m) = measure {
            self.emit_measure(who, m, search_end, exit_day, hired.then_some(hire.day));
        }
        // Proposals while the search is active: it fades after a year or two.
        let gap = if pact.is_some() { 120.0 } else { 360.0 };
        let active_until = search_end.min(search_from + self.between(180, 900));
        self.proposals(who, search_from, active_until, gap);

        let mut employment_end = if hired {
            self.emit_hire(who, &hire)
        } else {
            None
        };
        for next in later {
            if next.day < exit_day {
                employment_end = self.emit_hire(who, &next);
            }
        }

        if exit_day <= end {
            self.push_p(
                exit_day,
                Kind::RegistrationCancelled,
                who,
                Payload::Reason(exit_reason),
            );
            let p = if exit_reason == CANCEL_DECEASED {
                0.0
            } else if exit_reason == CANCEL_HIRED && employment_end.is_some() {
                0.3
            } else {
                0.035
            };
            if self.chance(p) {
                let base = employment_end.unwrap_or(exit_day).max(exit_day);
                return Some(base + self.between(15, 500));
            }
        }
        None
    }
}

/// 1 January of `year`.
fn year_start(year: i32) -> Day {
    chrono::NaiveDate::from_ymd_opt(year, 1, 1).map_or(0, from_date)
}
