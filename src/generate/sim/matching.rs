//! Matching and hires: the proposals to vacancies that do not end in this person's hire,
//! then how a planned hire comes about (a vacancy, a measure, or directly), its contract,
//! and how the job ends.

use rand::Rng;

use super::{Sim, Who};
use crate::generate::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Direct,
    Vacancy,
    Measure,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct HirePlan {
    pub(super) day: Day,
    pub(super) via: Via,
    pub(super) employer: u32,
    pub(super) vacancy: u32,
    pub(super) proposal_day: Day,
    pub(super) contract: u8,
    pub(super) months: u8,
    pub(super) cancel_day: Option<Day>,
}

impl Sim<'_> {
    /// Proposals that do not lead to this person's hire: most end in preselection or a
    /// "not selected"; a few are selected and still not hired.
    pub(super) fn proposals(&mut self, who: &Who, from: Day, until: Day, mean_gap: f64) {
        let mut t = from + self.exp_days(mean_gap);
        while t < until && t <= self.cfg.end {
            if let Some(v) = self.find_vacancy(who.local, t, t + 20, false) {
                let channel = u8::from(self.chance(0.25));
                self.push_p(
                    t,
                    Kind::CandidateProposed,
                    who,
                    Payload::Candidate {
                        vacancy: v,
                        channel,
                    },
                );
                let cand = Payload::Candidate {
                    vacancy: v,
                    channel: NO8,
                };
                if self.chance(0.45) {
                    let ps = t + self.between(3, 20);
                    if ps < until {
                        self.push_p(ps, Kind::CandidatePreselected, who, cand);
                        let d = ps + self.between(5, 30);
                        let kind = if self.chance(0.15) {
                            Kind::CandidateSelected
                        } else {
                            Kind::CandidateNotSelected
                        };
                        if d < until {
                            self.push_p(d, kind, who, cand);
                        }
                    }
                } else if self.chance(0.55) {
                    let d = t + self.between(10, 45);
                    if d < until {
                        self.push_p(d, Kind::CandidateNotSelected, who, cand);
                    }
                }
            }
            t += 30 + self.exp_days(mean_gap);
        }
    }

    /// Fills in how a planned hire happens: through a vacancy of the CPI, after a measure, or
    /// reported by the Comunicazioni Obbligatorie; the contract; and whether the person leaves
    /// the list because of it.
    pub(super) fn complete_hire(&mut self, who: &Who, spell_start: Day, hire: &mut HirePlan) {
        if hire.via == Via::Direct && hire.day >= self.cfg.start && self.chance(0.5) {
            let open_by = hire.day - 10;
            if let Some(v) = self.find_vacancy(who.local, open_by, hire.day, true) {
                let vac = self.data.vacancies[v as usize];
                let earliest = (spell_start + 1).max(vac.open).max(hire.day - 60);
                hire.via = Via::Vacancy;
                hire.vacancy = v;
                hire.proposal_day = (vac.open + self.between(2, 20))
                    .min(hire.day - 5)
                    .max(earliest);
                hire.employer = vac.employer;
            }
        }
        if hire.employer == NO32 {
            hire.employer = self.employer();
        }
        // Of employment hires (all but C.01.00 and C.04.00), about 3 in 10 are open-ended.
        const WEIGHTS: [u32; 14] = [26, 30, 5, 2, 3, 1, 3, 6, 2, 3, 9, 4, 1, 1];
        let mut w = WEIGHTS;
        if hire.via == Via::Measure {
            // A measure leads to a real contract, not to another traineeship.
            w[10] = 0;
            w[11] = 0;
        }
        hire.contract = self.pick(&w) as u8;
        let code = CONTRACTS[hire.contract as usize];
        hire.months = if code.starts_with("A.02") {
            [1u8, 2, 3, 3, 4, 6, 6, 6, 6, 9, 12, 12, 12, 18, 24][self.rng.random_range(0..15)]
        } else if code.starts_with("A.03") {
            if self.chance(0.3) {
                self.between(24, 36) as u8
            } else {
                0
            }
        } else if code.starts_with("C.") {
            if self.chance(0.6) {
                self.between(3, 12) as u8
            } else {
                0
            }
        } else if code == "A.01.00" {
            0
        } else if self.chance(0.4) {
            self.between(1, 12) as u8
        } else {
            0
        };
        let p_cancel = if code == "A.01.00" || code.starts_with("A.03") {
            0.85
        } else if code.starts_with("A.02") && hire.months >= 6 {
            0.6
        } else {
            0.3
        };
        if self.chance(p_cancel) {
            hire.cancel_day = Some(hire.day + self.between(1, 45));
        }
    }

    /// Writes the hire (and the matching steps before it) and any end of the job; returns
    /// the day the job ended, if it did within the period.
    pub(super) fn emit_hire(&mut self, who: &Who, hire: &HirePlan) -> Option<Day> {
        let mode = match hire.via {
            Via::Vacancy => {
                let v = hire.vacancy as usize;
                let vac = &mut self.data.vacancies[v];
                vac.hires += 1;
                vac.last_hire = vac.last_hire.max(hire.day);
                let request = vac.request;
                let channel = u8::from(self.chance(0.25));
                self.push_p(
                    hire.proposal_day,
                    Kind::CandidateProposed,
                    who,
                    Payload::Candidate {
                        vacancy: hire.vacancy,
                        channel,
                    },
                );
                let cand = Payload::Candidate {
                    vacancy: hire.vacancy,
                    channel: NO8,
                };
                let mut d = hire.proposal_day;
                if self.chance(0.9) {
                    d = (d + self.between(2, 10)).min(hire.day);
                    self.push_p(d, Kind::CandidatePreselected, who, cand);
                }
                let sel = (hire.day - self.between(0, 7)).max(d);
                self.push_p(sel, Kind::CandidateSelected, who, cand);
                // non_obbligata is outside the quota: the hire itself is "other".
                request
            }
            Via::Measure => {
                if self.chance(0.55) {
                    2
                } else {
                    1
                }
            }
            // `other`: an employer outside the obligation, about 4% of hires.
            Via::Direct => self.pick(&[9, 55, 31, 5]) as u8,
        };
        let part_time = if self.chance(0.93) {
            tri(Some(self.chance(0.35)))
        } else {
            0
        };
        self.push_p(
            hire.day,
            Kind::Hired,
            who,
            Payload::Hired(HireFields {
                employer: hire.employer,
                vacancy: if hire.via == Via::Vacancy {
                    hire.vacancy
                } else {
                    NO32
                },
                contract: hire.contract,
                months: hire.months,
                part_time,
                mode,
                agreement: NO32,
            }),
        );

        let code = CONTRACTS[hire.contract as usize];
        let months = i32::from(hire.months);
        let term = months * 30 + months / 2;
        let ending: Option<(Day, u8)> = if code.starts_with("A.02") {
            if self.chance(0.08) {
                let r = if self.chance(0.5) { 0 } else { 1 };
                Some((hire.day + self.between(10, (term - 1).max(11)), r))
            } else if self.chance(0.78) {
                Some((hire.day + term, 2))
            } else {
                None
            }
        } else if code.starts_with("C.") {
            let dur = if months > 0 {
                term
            } else {
                self.between(90, 365)
            };
            let r: f64 = self.rng.random();
            if r < 0.75 {
                Some((hire.day + dur, 2))
            } else if r < 0.9 {
                Some((hire.day + self.between(10, dur.max(11)), 3))
            } else {
                None
            }
        } else if code == "A.01.00" || code.starts_with("A.03") {
            if self.chance(0.11) {
                let r = self.pick(&[55, 35, 0, 10]) as u8;
                Some((hire.day + self.between(15, 180), r))
            } else if self.chance(0.07) {
                let r = self.pick(&[55, 35, 0, 10]) as u8;
                Some((hire.day + self.between(181, 1000), r))
            } else {
                None
            }
        } else if self.chance(0.45) {
            let r = self.pick(&[10, 10, 50, 30]) as u8;
            Some((hire.day + self.between(30, 400), r))
        } else {
            None
        };
        let (day, reason) = ending?;
        if day > self.cfg.end {
            return None;
        }
        let reason = if self.chance(0.95) { reason } else { NO8 };
        self.push_p(
            day,
            Kind::EmploymentEnded,
            who,
            Payload::Ended {
                employer: hire.employer,
                reason,
            },
        );
        Some(day)
    }
}
