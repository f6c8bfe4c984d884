//! The services of a spell before placement: basic orientation and profiling, the pact with
//! its reviews and updates, and specialist orientation with the skills assessment.

use rand::Rng;

use super::{Sim, Who};
use crate::generate::model::*;

/// The chance, at each review, that the person drops out of the review cycle.
const REVIEW_DROPOUT: f64 = 0.01;

impl Sim<'_> {
    pub(super) fn orientation(&mut self, who: &Who, o: Day, naspi: bool, exit_day: Day) {
        self.push_p(o, Kind::BasicOrientation, who, Payload::None);
        if self.chance(0.85) {
            let v = if self.chance(0.97) {
                let a = self.between(3, 97);
                let b = self.between(3, 97);
                ((a + b) / 2) as u8
            } else {
                NO8
            };
            let d = o + self.between(0, 3);
            if d < exit_day {
                self.push_p(d, Kind::QualitativeProfiling, who, Payload::Profiling(v));
            }
        }
        if naspi && self.chance(0.8) {
            let d = o + self.between(0, 10);
            if d < exit_day {
                self.push_p(d, Kind::AdrInformation, who, Payload::None);
            }
        }
        if self.chance(0.1) {
            let d = o + self.between(30, 200);
            if d < exit_day {
                self.push_p(d, Kind::BasicOrientation, who, Payload::None);
            }
        }
    }

    fn pact_fields(&mut self, who: &Who, pact: u32) -> PactFields {
        let responsible = if self.chance(0.97) {
            if self.chance(0.8) {
                who.operator
            } else {
                self.operator_of(who.cpi)
            }
        } else {
            0
        };
        let profile = if self.chance(0.98) {
            self.pick(&[20, 40, 28, 12]) as u8
        } else {
            NO8
        };
        let search_acts = if self.chance(0.97) {
            if self.chance(0.04) {
                0
            } else {
                self.between(1, 6) as u8
            }
        } else {
            NO8
        };
        let frequency = if self.chance(0.98) {
            [30u8, 60, 90][self.pick(&[50, 40, 10])]
        } else {
            0
        };
        let proof = if self.chance(0.98) {
            self.pick(&[45, 30, 15, 10]) as u8
        } else {
            NO8
        };
        let mut avail = [0u8; 3];
        for a in &mut avail {
            *a = if self.chance(0.99) {
                tri(Some(self.chance(0.975)))
            } else {
                0
            };
        }
        PactFields {
            pact,
            responsible,
            profile,
            search_acts,
            frequency,
            proof,
            avail,
        }
    }

    /// The pact, its periodic reviews and updates. Repeated no-shows may end the spell early
    /// (cancellation for missed summons); some persons drop out of the review cycle, which is
    /// what makes reviews overdue.
    pub(super) fn pact(&mut self, who: &Who, p: Day, exit_day: &mut Day, exit_reason: &mut u8) {
        let id = self.next_pact;
        self.next_pact += 1;
        let f = self.pact_fields(who, id);
        self.push_p(p, Kind::PactSigned, who, Payload::Pact(f));
        let mut freq = if f.frequency == 0 {
            60
        } else {
            i32::from(f.frequency)
        };
        let mut last = p;
        let mut no_shows = 0;
        loop {
            // Most drop out of the review cycle within a year or two.
            if self.chance(REVIEW_DROPOUT) {
                break;
            }
            let mut next = last + freq + self.between(-7, 4);
            if self.chance(0.07) {
                next += self.between(15, 120);
            }
            if next >= *exit_day || next > self.cfg.end {
                break;
            }
            if self.chance(0.07) {
                let upd = self.pact_update(who, id, &mut freq);
                self.push_p(next, Kind::PactUpdated, who, Payload::Pact(upd));
                last = next;
                continue;
            }
            let outcome = self.pick(&[68, 20, 12]) as u8;
            self.push_p(
                next,
                Kind::PactReview,
                who,
                Payload::Review { pact: id, outcome },
            );
            if outcome == OUTCOME_NO_SHOW {
                no_shows += 1;
                if no_shows >= 2 && self.chance(0.25) {
                    let c = next + self.between(10, 40);
                    // A spell of the opening stock does not end before the first day.
                    if c < *exit_day && c >= self.cfg.start {
                        *exit_day = c;
                        *exit_reason = CANCEL_MISSED_SUMMONS;
                    }
                    break;
                }
            } else {
                no_shows = 0;
            }
            last = next;
        }
    }

    /// A `pact_updated` carries only what changed.
    fn pact_update(&mut self, who: &Who, pact: u32, freq: &mut i32) -> PactFields {
        let mut f = PactFields {
            pact,
            responsible: 0,
            profile: NO8,
            search_acts: NO8,
            frequency: 0,
            proof: NO8,
            avail: [0; 3],
        };
        match self.pick(&[40, 30, 20, 10]) {
            0 => {
                let options: Vec<u8> = [30u8, 60, 90]
                    .into_iter()
                    .filter(|&d| i32::from(d) != *freq)
                    .collect();
                let d = options[self.rng.random_range(0..options.len())];
                f.frequency = d;
                *freq = i32::from(d);
            }
            1 => f.profile = self.pick(&[20, 40, 28, 12]) as u8,
            2 => f.search_acts = self.between(1, 8) as u8,
            _ => {
                f.responsible = self.operator_of(who.cpi);
                f.avail = [2, 2, 2];
            }
        }
        f
    }

    pub(super) fn specialist(&mut self, who: &Who, from: Day, until: Day) {
        let n = self.pick(&[40, 30, 20, 10]) + 1;
        let group = self.chance(0.3);
        let mut t = from + self.between(15, 200);
        for i in 0..n {
            if t >= until {
                break;
            }
            let g = if self.chance(0.92) {
                tri(Some(group))
            } else {
                0
            };
            self.push_p(t, Kind::SpecialistOrientation, who, Payload::Flag(g));
            if i == 0 && self.chance(0.5) {
                let d = t + self.between(7, 40);
                if d < until {
                    let gap = if self.chance(0.95) {
                        tri(Some(self.chance(0.62)))
                    } else {
                        0
                    };
                    self.push_p(d, Kind::SkillsAssessment, who, Payload::Flag(gap));
                }
            }
            t += self.between(14, 60);
        }
    }
}
