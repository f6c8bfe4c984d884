//! The employers' side of a region (docs/EVENTS-employers.md): which employers are obliged and
//! with what quota, the statement each sends every January, the agreements that plan hires
//! (and the persons' hires made under them), exemptions, suspensions, territorial
//! compensations, and the numerical requests behind the `numerica` vacancies.
//!
//! It runs after every person has been simulated and draws after them from the region's
//! stream, so the persons' events are the same with or without it; it only marks some of
//! their hires as made under an agreement.

use chrono::Datelike;

use super::{Sim, to_date};
use crate::generate::model::*;
use crate::reference;

/// Of the region's employers, the share subject to the obligation (the rest have fewer than
/// 15 employees, or are outside it): with one employer for six persons, about 95,000 obliged
/// employers nationally for 900,000 persons, as published.
const OBLIGED_SHARE: f64 = 0.6;
const PUBLIC_SHARE: f64 = 0.12;
/// The chance that a reserved post is covered: about 70% overall (29% uncovered, as
/// published), less in the South and in the private sector.
const COVERED_BASE: f64 = 0.76;
const SOUTH_PENALTY: f64 = 0.12;
const PRIVATE_PENALTY: f64 = 0.06;
/// A year's chances, per obliged employer.
const AGREEMENT_RATE: f64 = 0.12;
const EXEMPTION_RATE: f64 = 0.05;
const SUSPENSION_RATE: f64 = 0.03;
const COMPENSATION_RATE: f64 = 0.04;
/// Of the statements, those sent again later with a corrected coverage.
const CORRECTION_RATE: f64 = 0.04;

/// ISTAT region codes of the South and the islands (Abruzzo to Sardegna).
fn southern(region_code: &str) -> bool {
    region_code
        .parse::<u32>()
        .is_ok_and(|c| (13..=20).contains(&c))
}

/// The reserved quota of art. 3 c. 1 for a *base di computo*: 1 post for 15–35 employees, 2 for
/// 36–50, 7% above 50 (a fraction above one half counts as a post).
pub(in crate::generate) fn quota_art1(base: u32) -> u16 {
    match base {
        0..=14 => 0,
        15..=35 => 1,
        36..=50 => 2,
        _ => {
            let hundredths = base * 7;
            (hundredths / 100 + u32::from(hundredths % 100 > 50)) as u16
        }
    }
}

/// The art. 18 c. 2 quota: 1 post for 51–150 employees, 1% above.
pub(in crate::generate) fn quota_art18(base: u32) -> u16 {
    match base {
        0..=50 => 0,
        51..=150 => 1,
        _ => (base / 100).max(1) as u16,
    }
}

impl Sim<'_> {
    pub(super) fn employers_side(&mut self) {
        let n = self.data.employers.len();
        if n == 0 || self.provs.is_empty() {
            return;
        }
        let weights: Vec<u32> = self
            .provs
            .iter()
            .map(|t| t.persons.min(u64::from(u32::MAX)) as u32)
            .collect();
        let first_year = to_date(self.cfg.start).year();
        let last_year = to_date(self.cfg.end).year();
        for e in 0..n as u32 {
            let local = self.pick(&weights);
            let obliged = self.chance(OBLIGED_SHARE);
            let public = self.chance(PUBLIC_SHARE);
            self.data
                .employer_facts
                .push(EmployerFacts { obliged, public });
            if !obliged {
                continue;
            }
            let t = self.provs[local].clone();
            let cpi = self.between(0, i32::from(t.cpis) - 1) as u8;
            // Employers that get much of the demand (`Sim::employer` favours low indices) are
            // the large ones.
            let rank = f64::from(e) / n as f64;
            let mut base = match self.pick(&[55, 20, 25]) {
                0 => self.between(15, 35),
                1 => self.between(36, 50),
                _ => 51 + self.exp_days(if rank < 0.05 { 900.0 } else { 120.0 }),
            } as u32;
            let south = southern(reference::provinces()[t.global as usize].region_code);
            let p_cover = COVERED_BASE - if south { SOUTH_PENALTY } else { 0.0 }
                + if public { 0.04 } else { -PRIVATE_PENALTY };
            for year in first_year..=last_year {
                // Each January: the statement of the year's obligation.
                let jan = super::from_date(
                    chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default(),
                );
                let day = jan + self.between(1, 30);
                if year > first_year {
                    // A workforce moves a little from year to year.
                    let moved = (i64::from(base) + i64::from(self.between(-3, 3))).max(15);
                    base = moved as u32;
                }
                let reserved = [quota_art1(base), quota_art18(base)];
                let mut covered = [0u16; 2];
                for (c, &r) in covered.iter_mut().zip(reserved.iter()) {
                    for _ in 0..r {
                        *c += u16::from(self.chance(p_cover));
                    }
                    // A few cover more than their quota.
                    if self.chance(0.03) {
                        *c += 1;
                    }
                }
                let art18 = base > 50 && self.chance(0.9);
                let statement = Act::Statement {
                    employer: e,
                    year: year as u16,
                    public,
                    base,
                    reserved,
                    covered,
                    art18,
                };
                self.act(day, Kind::ObligationStatement, t.global, cpi, statement);
                if self.chance(CORRECTION_RATE) {
                    let mut fixed = covered;
                    fixed[0] = if self.chance(0.5) {
                        fixed[0] + 1
                    } else {
                        fixed[0].saturating_sub(1)
                    };
                    let again = Act::Statement {
                        employer: e,
                        year: year as u16,
                        public,
                        base,
                        reserved,
                        covered: fixed,
                        art18,
                    };
                    let later = day + self.between(10, 60);
                    self.act(later, Kind::ObligationStatement, t.global, cpi, again);
                }
                let uncovered = reserved[0].saturating_sub(covered[0]);
                if uncovered > 0 && self.chance(AGREEMENT_RATE * if rank < 0.2 { 2.0 } else { 1.0 })
                {
                    let signed = day + self.between(20, 300);
                    self.agreement(e, t.global, cpi, signed, uncovered);
                }
                if !public && self.chance(EXEMPTION_RATE) {
                    let pct = if self.chance(0.3) {
                        60
                    } else {
                        self.between(5, 60)
                    } as u8;
                    let workers = ((u32::from(reserved[0]) * u32::from(pct)).div_ceil(100)).max(1);
                    let from = day + self.between(15, 120);
                    let exemption = Act::Exemption {
                        employer: e,
                        pct,
                        workers: workers as u16,
                        from,
                        to: from + 364,
                    };
                    let granted = from - self.between(5, 30);
                    self.act(granted, Kind::ExemptionGranted, t.global, cpi, exemption);
                }
                if self.chance(SUSPENSION_RATE) {
                    let from = day + self.between(30, 330);
                    let suspension = Act::Suspension {
                        employer: e,
                        reason: self.pick(&[50, 10, 15, 20, 5]) as u8,
                        from,
                        to: from + self.between(90, 365),
                        positions: if self.chance(0.8) {
                            reserved[0].max(1)
                        } else {
                            0
                        },
                    };
                    self.act(from, Kind::ObligationSuspended, t.global, cpi, suspension);
                }
                if base > 50 && self.chance(COMPENSATION_RATE) {
                    let all = reference::provinces().len();
                    let mut to = self.rng_index(all) as u8;
                    if to == t.global {
                        to = ((usize::from(to) + 1) % all) as u8;
                    }
                    let compensation = Act::Compensation {
                        employer: e,
                        to,
                        positions: self.between(1, 3) as u16,
                    };
                    let when = day + self.between(10, 200);
                    self.act(
                        when,
                        Kind::TerritorialCompensation,
                        t.global,
                        cpi,
                        compensation,
                    );
                }
            }
        }
        self.numerical_requests();
        self.hires_under_agreements();
    }

    fn rng_index(&mut self, n: usize) -> usize {
        self.between(0, n as i32 - 1) as usize
    }

    /// Records an act of an employer: an event without a person, by the office's operator
    /// or none.
    fn act(&mut self, day: Day, kind: Kind, prov: u8, cpi: u8, act: Act) {
        let idx = self.data.acts.len() as u32;
        self.data.acts.push(act);
        let op = if self.chance(0.7) {
            self.operator_of(cpi)
        } else {
            0
        };
        self.push(day, kind, (prov, cpi, NO32, op), Payload::Act(idx));
    }

    /// An agreement for some of the uncovered posts, and how it ends: most end partly done,
    /// since hires under agreements come late.
    fn agreement(&mut self, employer: u32, prov: u8, cpi: u8, signed: Day, uncovered: u16) {
        let kind = self.pick(&[70, 8, 4, 8, 10]) as u8;
        let months = [12u8, 24, 36][self.pick(&[40, 40, 20])];
        let planned = self.between(1, i32::from(uncovered).max(1)) as u16;
        let agreement = self.data.agreements.len() as u32;
        self.data.agreements.push(Agreement {
            employer,
            kind,
            planned,
            months,
            signed,
        });
        self.act(
            signed,
            Kind::AgreementSigned,
            prov,
            cpi,
            Act::AgreementSigned {
                employer,
                agreement,
            },
        );
        let end = signed + i32::from(months) * 365 / 12;
        let outcome = self.pick(&[30, 45, 5, 20]) as u8;
        self.act(
            end,
            Kind::AgreementEnded,
            prov,
            cpi,
            Act::AgreementEnded {
                employer,
                agreement,
                outcome,
            },
        );
    }

    /// A `numerica` vacancy is a numerical request: sent to the office the day it opens.
    fn numerical_requests(&mut self) {
        for v in 0..self.data.vacancies.len() {
            let vac = self.data.vacancies[v];
            if vac.request != 0 || vac.planned_close < self.cfg.start {
                continue;
            }
            let request = Act::Request {
                employer: vac.employer,
                vacancy: v as u32,
                positions: vac.positions,
            };
            self.act(vac.open, Kind::NumericalRequest, vac.prov, vac.cpi, request);
        }
    }

    /// Marks the persons' hires by an employer with a running agreement, in a convention's
    /// mode or named (`nominativa`), as made under it, up to its planned hires.
    fn hires_under_agreements(&mut self) {
        if self.data.agreements.is_empty() {
            return;
        }
        let mut by_employer: std::collections::HashMap<u32, Vec<u32>> =
            std::collections::HashMap::new();
        for (i, a) in self.data.agreements.iter().enumerate() {
            by_employer.entry(a.employer).or_default().push(i as u32);
        }
        let mut made = vec![0u16; self.data.agreements.len()];
        for i in 0..self.data.events.len() {
            let ev = self.data.events[i];
            let Payload::Hired(h) = ev.payload else {
                continue;
            };
            if h.mode != 1 && h.mode != 2 {
                continue;
            }
            let Some(list) = by_employer.get(&h.employer) else {
                continue;
            };
            let running = list.iter().copied().find(|&a| {
                let ag = &self.data.agreements[a as usize];
                let end = ag.signed + i32::from(ag.months) * 365 / 12;
                ev.date >= ag.signed && ev.date <= end && made[a as usize] < ag.planned
            });
            if let Some(a) = running {
                made[a as usize] += 1;
                let kind = self.data.agreements[a as usize].kind;
                self.data.events[i].payload = Payload::Hired(HireFields {
                    agreement: a,
                    mode: AGREEMENT_MODES[kind as usize],
                    ..h
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_follow_article_3() {
        // 15-35: 1; 36-50: 2; above 50: 7%, a fraction above one half counting as a post.
        assert_eq!(quota_art1(14), 0);
        assert_eq!(quota_art1(15), 1);
        assert_eq!(quota_art1(35), 1);
        assert_eq!(quota_art1(36), 2);
        assert_eq!(quota_art1(50), 2);
        // 51 × 7% = 3.57 → 4; 100 × 7% = 7; 107 × 7% = 7.49 → 7; 108 × 7% = 7.56 → 8.
        assert_eq!(quota_art1(51), 4);
        assert_eq!(quota_art1(100), 7);
        assert_eq!(quota_art1(107), 7);
        assert_eq!(quota_art1(108), 8);
        assert_eq!(quota_art18(50), 0);
        assert_eq!(quota_art18(150), 1);
        assert_eq!(quota_art18(420), 4);
    }
}
