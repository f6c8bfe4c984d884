//! The demand side of a region: its employers, the vacancies they open (with the sector, the
//! profession and the positions), finding an open vacancy for a proposal or a hire, and
//! closing every vacancy once the persons have been simulated.

use chrono::NaiveDate;
use rand::Rng;

use super::{Sim, Vacancy, from_date, to_date};
use crate::generate::model::*;

/// Vacancies opened a year, per person of the registered stock.
const VACANCY_RATE: f64 = 0.035;
/// Vacancies open from this many days before the first day (the longest a vacancy stays
/// open), so that on the first day as many are open as on any other.
const VACANCY_LEAD_DAYS: i32 = 150;

impl Sim<'_> {
    pub(super) fn make_employers(&mut self, persons: u64) {
        let n = (persons / 6).max(8);
        for _ in 0..n {
            let code = if self.chance(0.04) {
                let birth = to_date(from_date(NaiveDate::default()) + self.between(-9000, 9000));
                let female = self.chance(0.4);
                self.unique_cf16(female, birth)
            } else {
                let t = self.rng.random_range(0..self.provs.len());
                let office = self.provs[t].code;
                self.unique_numeric(Some(office))
            };
            self.data.employers.push(code);
        }
    }

    /// Vacancies at a steady rate in proportion to the province's registered stock (the
    /// stock stays about level, so the demand follows the pool), from a little before the
    /// first day so that the first weeks have open vacancies too. `stock_share` is the share
    /// of the persons registered on the first day.
    pub(super) fn make_vacancies(&mut self, stock_share: f64) {
        const ATECO_WEIGHTS: [u32; 21] = [
            20, 3, 250, 10, 20, 60, 150, 60, 70, 30, 30, 10, 40, 100, 30, 20, 80, 10, 30, 3, 1,
        ];
        for local in 0..self.provs.len() {
            let t = self.provs[local].clone();
            let first = self.cfg.start - VACANCY_LEAD_DAYS;
            let years = f64::from(self.cfg.end - first + 1) / 365.25;
            let n = (t.persons as f64 * stock_share * VACANCY_RATE * years).round() as u64;
            let mut list: Vec<Vacancy> = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let open = self.between(first, self.cfg.end);
                let planned_close = open + self.between(30, 150);
                let positions = match self.pick(&[70, 15, 10, 5]) {
                    0 => 1,
                    1 => 2,
                    2 => self.between(3, 5),
                    _ => self.between(6, 10),
                } as u16;
                let ateco = if self.chance(0.9) {
                    self.pick(&ATECO_WEIGHTS) as u8
                } else {
                    NO8
                };
                let levels = if self.chance(0.85) {
                    [1u8, 2, 3, 4, 5][self.pick(&[2, 3, 8, 12, 75])]
                } else {
                    0
                };
                let mut profession = [0u8; 5];
                profession[0] =
                    [1u8, 2, 3, 4, 5, 6, 7, 8, 9][self.pick(&[1, 3, 8, 25, 22, 8, 10, 22, 1])];
                for (i, d) in profession.iter_mut().enumerate().skip(1) {
                    *d = if i == 4 {
                        self.between(0, 9)
                    } else {
                        self.between(1, 9)
                    } as u8;
                }
                let employer = self.employer();
                list.push(Vacancy {
                    prov: t.global,
                    cpi: self.between(0, i32::from(t.cpis) - 1) as u8,
                    employer,
                    open,
                    planned_close,
                    positions,
                    hires: 0,
                    last_hire: open,
                    request: self.pick(&[20, 45, 32, 3]) as u8,
                    ateco,
                    profession,
                    levels,
                });
            }
            list.sort_by_key(|v| v.open);
            for v in list {
                let idx = self.data.vacancies.len() as u32;
                self.vac_by_prov[local].push(idx);
                let op = if self.chance(0.8) {
                    self.operator_of(v.cpi)
                } else {
                    0
                };
                // One opened and closed before the first day is not sent at all.
                if v.planned_close >= self.cfg.start {
                    self.push(
                        v.open,
                        Kind::VacancyOpened,
                        (v.prov, v.cpi, NO32, op),
                        Payload::Vacancy(idx),
                    );
                }
                self.data.vacancies.push(v);
            }
        }
        let vacs = &self.data.vacancies;
        self.vac_all = (0..vacs.len() as u32).collect();
        self.vac_all.sort_by_key(|&i| (vacs[i as usize].open, i));
    }

    /// A vacancy opened on or before `open_by` (not long before) that is still open at
    /// `until`: first in the person's province, else anywhere in the region.
    pub(super) fn find_vacancy(
        &mut self,
        local: usize,
        open_by: Day,
        until: Day,
        need_position: bool,
    ) -> Option<u32> {
        let mut found = [0u32; 8];
        let mut n = 0;
        let vacs = &self.data.vacancies;
        for list in [&self.vac_by_prov[local], &self.vac_all] {
            let hi = list.partition_point(|&v| vacs[v as usize].open <= open_by);
            for &v in list[..hi].iter().rev().take(80) {
                let vac = &vacs[v as usize];
                if vac.open < open_by - 160 {
                    break;
                }
                if vac.planned_close >= until && (!need_position || vac.hires < vac.positions) {
                    found[n] = v;
                    n += 1;
                    if n == found.len() {
                        break;
                    }
                }
            }
            if n > 0 {
                break;
            }
        }
        if n == 0 {
            None
        } else {
            Some(found[self.rng.random_range(0..n)])
        }
    }

    pub(super) fn close_vacancies(&mut self) {
        for i in 0..self.data.vacancies.len() {
            let v = self.data.vacancies[i];
            let (day, reason) = if v.hires >= v.positions {
                (v.last_hire + self.between(0, 10), 0)
            } else if v.hires > 0 {
                let r = if self.chance(0.85) { 1 } else { 0 };
                (v.planned_close.max(v.last_hire + 1), r)
            } else {
                let r = if self.chance(0.6) { 3 } else { 2 };
                (v.planned_close, r)
            };
            let op = if self.chance(0.8) {
                self.operator_of(v.cpi)
            } else {
                0
            };
            self.push(
                day,
                Kind::VacancyClosed,
                (v.prov, v.cpi, NO32, op),
                Payload::VacancyClose {
                    vacancy: i as u32,
                    reason,
                },
            );
        }
    }
}
