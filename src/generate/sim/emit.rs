//! Recording an event: inside the generated period (and, before it, only what the period
//! rests on), moved onto a working day of the CPI, stamped with a date or a time in the
//! region's style, and with the person's CF sometimes spelled as a clerk would.

use rand::Rng;

use super::{Sim, Who};
use crate::generate::model::*;

/// The pairs of weekdays (0 = Monday) that take two calendar days each in `working_day`: all
/// ten pairs in turn, so each weekday gets 1.4 days' worth of events on average.
const DOUBLED_WEEKDAYS: [(i32, i32); 10] = [
    (0, 1),
    (2, 3),
    (0, 4),
    (1, 2),
    (3, 4),
    (0, 2),
    (1, 3),
    (2, 4),
    (0, 3),
    (1, 4),
];

/// CPIs work Monday to Friday. Each week's seven days are mapped onto its five working
/// days by a non-decreasing map, so a person's events keep their order (and never move
/// later, so never past the end). Which two weekdays absorb the weekend rotates from
/// week to week, so no weekday piles up.
fn working_day(day: Day, start: Day) -> Day {
    // Day 1 (0001-01-01) was a Monday.
    let weekday = (day - 1).rem_euclid(7);
    let week = (day - 1).div_euclid(7);
    let (a, b) = DOUBLED_WEEKDAYS[week.rem_euclid(DOUBLED_WEEKDAYS.len() as i32) as usize];
    // Days 0..=weekday fill slots in order; slots a and b take two days each.
    let mut slot = 0;
    let mut used = 0;
    for _ in 0..weekday {
        used += 1;
        let width = if slot == a || slot == b { 2 } else { 1 };
        if used == width {
            slot += 1;
            used = 0;
        }
    }
    (day - weekday + slot).max(start)
}

impl Sim<'_> {
    fn stamp(&mut self) -> (u8, u16) {
        if !self.chance(self.datetime_share) {
            return (STAMP_DATE, 0);
        }
        let r: f64 = self.rng.random();
        if r < 0.02 {
            return (STAMP_LATE_UTC, self.between(5, 59) as u16);
        }
        let minute = if self.chance(0.6) {
            480 + 15 * self.between(0, 39)
        } else {
            self.between(480, 1079)
        } as u16;
        (if r < 0.5 { STAMP_LOCAL } else { STAMP_UTC }, minute)
    }

    /// Whether an event of this day and kind is written. Later than the period, it simply has
    /// not happened yet (a decision still pending, a measure still running). Earlier, only
    /// what the period's events rest on is written: of a person of the opening stock, the
    /// application and acceptance of the spell open on the first day, its first orientation
    /// and its pact; of an application pending on the first day, the application and what
    /// came of it so far (a measure still running and a vacancy still open are decided by
    /// their callers); the rest of the years before is not sent.
    fn written(&self, day: Day, kind: Kind) -> bool {
        if day > self.cfg.end || day < self.cfg.history {
            return false;
        }
        day >= self.cfg.start
            || match kind {
                Kind::VacancyOpened | Kind::MeasureStarted => true,
                Kind::ApplicationSubmitted
                | Kind::CertificationRequested
                | Kind::ApplicationPreRejected => self.stock || self.pending,
                Kind::ApplicationAccepted | Kind::BasicOrientation | Kind::PactSigned => self.stock,
                _ => false,
            }
    }

    /// Records an event if it is written (`written`), moved onto a working day.
    pub(super) fn push(&mut self, day: Day, kind: Kind, at: (u8, u8, u32, u16), payload: Payload) {
        if !self.written(day, kind) {
            return;
        }
        // Moved back to a working day, an event does not cross into the years before.
        let floor = if day >= self.cfg.start {
            self.cfg.start
        } else {
            self.cfg.history
        };
        let day = working_day(day, floor);
        let (stamp, minute) = self.stamp();
        let (prov, cpi, person, operator) = at;
        let cf_style = if person == NO32 {
            0
        } else {
            let r: f64 = self.rng.random();
            if r < 0.025 {
                1
            } else if r < 0.035 {
                2
            } else if r < 0.04 {
                3
            } else {
                0
            }
        };
        self.data.events.push(Ev {
            date: day,
            seq: 0,
            person,
            minute,
            operator,
            kind,
            prov,
            cpi,
            stamp,
            cf_style,
            fault: 0,
            payload,
        });
    }

    /// Records a person's event; none after the person's last working-age day.
    pub(super) fn push_p(&mut self, day: Day, kind: Kind, who: &Who, payload: Payload) {
        if day > who.last_day || !self.written(day, kind) {
            return;
        }
        let op = self.event_operator(who);
        self.push(day, kind, (who.prov, who.cpi, who.person, op), payload);
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::super::from_date;
    use super::*;

    #[test]
    fn working_days_keep_order_and_spread_evenly() {
        let start = from_date(NaiveDate::from_ymd_opt(2021, 1, 1).unwrap());
        let mut per_weekday = [0u32; 7];
        let mut prev = start;
        for d in start..start + 700 {
            let w = working_day(d, start);
            assert!(w >= prev && w <= d && w >= start, "{d} -> {w}");
            prev = w;
            if w > start {
                per_weekday[(w - 1).rem_euclid(7) as usize] += 1;
            }
        }
        assert_eq!(per_weekday[5] + per_weekday[6], 0, "{per_weekday:?}");
        for n in &per_weekday[..5] {
            assert!((130..=150).contains(n), "{per_weekday:?}");
        }
    }
}
