//! Active measures (traineeships, training and the like): planned when the spell is planned,
//! since one that ends in a job sets the hire, and written once the spell's end is known.

use super::{Sim, Who};
use crate::generate::model::*;

pub(super) struct MeasurePlan {
    pub(super) id: u32,
    pub(super) kind: u8,
    pub(super) host: u32,
    pub(super) start: Day,
    pub(super) end: Day,
    pub(super) reason: u8,
}

impl Sim<'_> {
    pub(super) fn plan_measure(&mut self, start: Day) -> MeasurePlan {
        let kind = self.pick(&[45, 15, 15, 20, 5]) as u8;
        let duration = match kind {
            0 => self.between(60, 180),
            1 => self.between(60, 150),
            2 => self.between(90, 365),
            MEASURE_TRAINING => self.between(30, 120),
            _ => self.between(30, 180),
        };
        let host_p = match kind {
            MEASURE_TRAINING => 0.0,
            4 => 0.5,
            _ => 0.92,
        };
        let host = if self.chance(host_p) {
            self.employer()
        } else {
            NO32
        };
        let reason = self.pick(&[65, 14, 8, 13]) as u8;
        let end = if reason == 1 || reason == 2 {
            start + self.between(10, duration)
        } else {
            start + duration
        };
        let id = self.next_measure;
        self.next_measure += 1;
        MeasurePlan {
            id,
            kind,
            host,
            start,
            end,
            reason,
        }
    }

    pub(super) fn emit_measure(
        &mut self,
        who: &Who,
        m: MeasurePlan,
        search_end: Day,
        exit_day: Day,
        hired: Option<Day>,
    ) {
        if m.start >= search_end {
            return;
        }
        let (end_day, reason) = match hired {
            // The hire ends the measure, whether it came from the host or not.
            Some(h) if h <= m.end => (h, MEASURE_HIRED),
            _ if m.end < exit_day => {
                let r = if m.reason == MEASURE_HIRED {
                    0
                } else {
                    m.reason
                };
                (m.end, r)
            }
            _ => (exit_day - self.between(0, 5), MEASURE_INTERRUPTED_PERSON),
        };
        let end_day = end_day.max(m.start);
        // Begun before the first day, a measure is written only if still running on it.
        if m.start >= self.cfg.start || end_day >= self.cfg.start {
            self.push_p(
                m.start,
                Kind::MeasureStarted,
                who,
                Payload::Measure {
                    measure: m.id,
                    kind: m.kind,
                    employer: m.host,
                },
            );
        }
        let mut t = m.start + self.between(10, 35);
        while t < end_day && t <= self.cfg.end {
            self.push_p(t, Kind::TutoringMeeting, who, Payload::MeasureRef(m.id));
            t += self.between(10, 30);
        }
        self.push_p(
            end_day,
            Kind::MeasureEnded,
            who,
            Payload::MeasureEnd {
                measure: m.id,
                reason,
            },
        );
    }
}
