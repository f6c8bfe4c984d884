//! The simulation of one region: its employers and vacancies, then each person's trail through
//! the six services, from the application to placement and cancellation.
//!
//! Everything draws from one ChaCha stream per region, in a fixed order (provinces in ISTAT
//! order, persons in sequence), so a region's events depend only on the seed and the region.

use std::collections::HashSet;

use chrono::NaiveDate;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ids::{self, Code};
use super::model::*;

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

/// Operators per CPI: `op-MI-0042` is operator 42 of Milan, at CPI (42 - 1) / 8.
const OPERATORS_PER_CPI: u16 = 8;

/// A province of the region being simulated.
#[derive(Debug, Clone)]
pub(super) struct Territory {
    /// Index into `reference::provinces()`.
    pub global: u8,
    /// ISTAT province code: the office digits of a partita IVA.
    pub code: &'static str,
    pub cpis: u8,
    pub persons: u64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Person {
    pub cf: Code,
    pub birth: Day,
    pub female: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Vacancy {
    pub prov: u8,
    pub cpi: u8,
    pub employer: u32,
    pub open: Day,
    pub planned_close: Day,
    pub positions: u16,
    pub hires: u16,
    pub last_hire: Day,
    pub request: u8,
    pub ateco: u8,
    /// CP2011 digits; `levels` of them are used (0 = no profession given).
    pub profession: [u8; 5],
    pub levels: u8,
}

/// What a region's simulation leaves for the writer: the events and the tables they index.
#[derive(Debug, Default)]
pub(super) struct RegionData {
    pub events: Vec<Ev>,
    pub persons: Vec<Person>,
    pub employers: Vec<Code>,
    pub vacancies: Vec<Vacancy>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SimConfig {
    pub seed: u64,
    pub region_index: usize,
    pub start: Day,
    pub end: Day,
}

/// Who a person-event is about and where it is delivered.
#[derive(Debug, Clone, Copy)]
struct Who {
    person: u32,
    prov: u8,
    local: usize,
    cpi: u8,
    /// The case operator of the current spell.
    operator: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Direct,
    Vacancy,
    Measure,
}

#[derive(Debug, Clone, Copy)]
struct HirePlan {
    day: Day,
    via: Via,
    employer: u32,
    vacancy: u32,
    proposal_day: Day,
    contract: u8,
    months: u8,
    cancel_day: Option<Day>,
}

#[derive(Debug, Clone, Copy)]
struct MeasurePlan {
    id: u32,
    kind: u8,
    host: u32,
    start: Day,
    end: Day,
    reason: u8,
}

struct Sim<'a> {
    rng: ChaCha8Rng,
    cfg: SimConfig,
    provs: &'a [Territory],
    taken: &'a mut HashSet<Code>,
    data: RegionData,
    /// Per province of the region, and for the whole region: vacancy indices by opening day.
    vac_by_prov: Vec<Vec<u32>>,
    vac_all: Vec<u32>,
    /// Share of rows this region's system stamps with a time (the rest carry a plain date).
    datetime_share: f64,
    next_pact: u32,
    next_measure: u32,
}

pub(super) fn to_date(d: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(d).unwrap_or_default()
}

pub(super) fn from_date(d: NaiveDate) -> Day {
    use chrono::Datelike;
    d.num_days_from_ce()
}

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

/// Simulates one region. `taken` holds every code handed out so far (all regions), so that two
/// persons never share a CF: a clash is resolved by omocodia, as the Agenzia does.
pub(super) fn simulate_region(
    cfg: SimConfig,
    provs: &[Territory],
    taken: &mut HashSet<Code>,
    progress: &ProgressBar,
) -> RegionData {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(cfg.region_index as u64 + 1);
    let datetime_share = rng.random_range(0.15..0.8);
    let total: u64 = provs.iter().map(|t| t.persons).sum();
    let mut sim = Sim {
        rng,
        cfg,
        provs,
        taken,
        data: RegionData {
            events: Vec::with_capacity((total as usize).saturating_mul(26)),
            persons: Vec::with_capacity(total as usize),
            ..RegionData::default()
        },
        vac_by_prov: vec![Vec::new(); provs.len()],
        vac_all: Vec::new(),
        datetime_share,
        next_pact: 1,
        next_measure: 1,
    };
    if total == 0 {
        return sim.data;
    }
    sim.make_employers(total);
    sim.make_vacancies();
    for (local, t) in provs.iter().enumerate() {
        for _ in 0..t.persons {
            sim.person(local);
            progress.inc(1);
        }
    }
    sim.close_vacancies();
    sim.data
}

impl Sim<'_> {
    // ----- random helpers -----

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Uniform integer in `[a, b]` (just `a` when the range is empty).
    fn between(&mut self, a: i32, b: i32) -> i32 {
        if b <= a {
            a
        } else {
            self.rng.random_range(a..=b)
        }
    }

    /// Exponential waiting time in days: memoryless exits (hire, cancellation).
    fn exp_days(&mut self, mean: f64) -> i32 {
        let u: f64 = self.rng.random();
        (-mean * (1.0 - u).ln()).min(100_000.0) as i32
    }

    fn pick(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut r = self.rng.random_range(0..total.max(1));
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }

    /// An employer of the region; a few large ones get much of the demand.
    fn employer(&mut self) -> u32 {
        let u: f64 = self.rng.random();
        let n = self.data.employers.len();
        ((u * u * n as f64) as usize).min(n.saturating_sub(1)) as u32
    }

    fn operator_of(&mut self, cpi: u8) -> u16 {
        u16::from(cpi) * OPERATORS_PER_CPI + self.rng.random_range(1..=OPERATORS_PER_CPI)
    }

    /// The operator written on an event: often absent, mostly the case operator.
    fn event_operator(&mut self, who: &Who) -> u16 {
        if !self.chance(0.8) {
            0
        } else if self.chance(0.7) {
            who.operator
        } else {
            self.operator_of(who.cpi)
        }
    }

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

    // ----- emitting -----

    /// Records an event if it falls in the generated period; later ones simply have not
    /// happened yet (a decision still pending, a measure still running).
    fn push(&mut self, day: Day, kind: Kind, at: (u8, u8, u32, u16), payload: Payload) {
        if day < self.cfg.start || day > self.cfg.end {
            return;
        }
        let day = working_day(day, self.cfg.start);
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

    fn push_p(&mut self, day: Day, kind: Kind, who: &Who, payload: Payload) {
        if day < self.cfg.start || day > self.cfg.end {
            return;
        }
        let op = self.event_operator(who);
        self.push(day, kind, (who.prov, who.cpi, who.person, op), payload);
    }

    // ----- employers and vacancies -----

    fn unique_numeric(&mut self, office: Option<&str>) -> Code {
        loop {
            let n = ids::numeric11(&mut self.rng, office);
            let code = Code::new(&n);
            if self.taken.insert(code) {
                return code;
            }
        }
    }

    /// A CF nobody else holds: a clash is resolved by omocodia, as the Agenzia does.
    fn unique_cf16(&mut self, female: bool, birth: NaiveDate) -> Code {
        loop {
            let mut cf = ids::cf16(&mut self.rng, female, birth);
            if self.chance(0.005) {
                for _ in 0..self.between(1, 3) {
                    ids::omocode_step(&mut cf);
                }
            }
            loop {
                let code = Code::new(&cf);
                if self.taken.insert(code) {
                    return code;
                }
                if !ids::omocode_step(&mut cf) {
                    break;
                }
            }
        }
    }

    fn make_employers(&mut self, persons: u64) {
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

    fn make_vacancies(&mut self) {
        const ATECO_WEIGHTS: [u32; 21] = [
            20, 3, 250, 10, 20, 60, 150, 60, 70, 30, 30, 10, 40, 100, 30, 20, 80, 10, 30, 3, 1,
        ];
        for local in 0..self.provs.len() {
            let t = self.provs[local].clone();
            let n = (t.persons * 14 + 50) / 100;
            let mut list: Vec<Vacancy> = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let open = self.between(self.cfg.start, self.cfg.end);
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
                    request: self.pick(&[20, 45, 25, 10]) as u8,
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
                self.push(
                    v.open,
                    Kind::VacancyOpened,
                    (v.prov, v.cpi, NO32, op),
                    Payload::Vacancy(idx),
                );
                self.data.vacancies.push(v);
            }
        }
        let vacs = &self.data.vacancies;
        self.vac_all = (0..vacs.len() as u32).collect();
        self.vac_all.sort_by_key(|&i| (vacs[i as usize].open, i));
    }

    /// A vacancy opened on or before `open_by` (not long before) that is still open at
    /// `until`: first in the person's province, else anywhere in the region.
    fn find_vacancy(
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

    fn close_vacancies(&mut self) {
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

    // ----- persons -----

    fn person(&mut self, local: usize) {
        let t = self.provs[local].clone();
        let submit = self.between(self.cfg.start, self.cfg.end);
        let female = self.chance(0.44);
        let age = match self.pick(&[18, 52, 30]) {
            0 => self.between(16, 29),
            1 => self.between(30, 54),
            _ => self.between(55, 66),
        };
        let birth = submit - (age * 365 + age / 4) - self.between(0, 364);
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
        };
        let mut app = self.new_app(temporary);
        let mut s = submit;
        for round in 0..3 {
            match self.application(&who, app, s) {
                Some(next) if round < 2 && next <= self.cfg.end => {
                    s = next;
                    app = self.renew_app(app);
                    if self.chance(0.2) {
                        who.cpi = self.between(0, i32::from(t.cpis) - 1) as u8;
                    }
                    who.operator = self.operator_of(who.cpi);
                }
                _ => break,
            }
        }
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
        let (accepted, d) = if self.chance(0.08) {
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

    fn other_cancel_reason(&mut self) -> u8 {
        self.pick(&[0, 26, 14, 8, 15, 5, 12, 20]) as u8
    }

    /// A registration spell from its acceptance on day `a`. Two exits compete, each drawn as
    /// an exponential waiting time: a hire (sooner once a pact is signed, or at the end of a
    /// measure that turned into a job) and a cancellation for another reason; missed summons
    /// may cut the spell shorter still. The plan is settled first and the services are then
    /// written inside it, so nothing happens to a person after the spell has ended.
    /// Returns the day of a new application, for the few who register again.
    fn spell(&mut self, who: &Who, app: App, a: Day) -> Option<Day> {
        let end = self.cfg.end;
        self.push_p(a, Kind::ApplicationAccepted, who, Payload::None);

        let mut exit_day = a + 20 + self.exp_days(3800.0);
        let mut exit_reason = self.other_cancel_reason();
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
        let mean = if pact.is_some() { 1400.0 } else { 3000.0 };
        let hire_day = search_from + 15 + self.exp_days(mean);
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
        {
            hire.day = m.end;
            hire.via = Via::Measure;
            hire.employer = m.host;
        }
        if hire.day <= end && hire.day < exit_day {
            self.complete_hire(who, a, &mut hire);
            if let Some(c) = hire.cancel_day
                && c < exit_day
            {
                exit_day = c;
                exit_reason = CANCEL_HIRED;
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
        let gap = if pact.is_some() { 120.0 } else { 360.0 };
        self.proposals(who, search_from, search_end, gap);

        let employment_end = if hired {
            self.emit_hire(who, &hire)
        } else {
            None
        };

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

    fn orientation(&mut self, who: &Who, o: Day, naspi: bool, exit_day: Day) {
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
    fn pact(&mut self, who: &Who, p: Day, exit_day: &mut Day, exit_reason: &mut u8) {
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
            if self.chance(0.008) {
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
                    if c < *exit_day {
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

    fn specialist(&mut self, who: &Who, from: Day, until: Day) {
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

    fn plan_measure(&mut self, start: Day) -> MeasurePlan {
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

    fn emit_measure(
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

    /// Proposals that do not lead to this person's hire: most end in preselection or a
    /// "not selected"; a few are selected and still not hired.
    fn proposals(&mut self, who: &Who, from: Day, until: Day, mean_gap: f64) {
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
    fn complete_hire(&mut self, who: &Who, spell_start: Day, hire: &mut HirePlan) {
        if hire.via == Via::Direct && self.chance(0.5) {
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
        const WEIGHTS: [u32; 14] = [22, 30, 5, 2, 3, 1, 3, 6, 2, 3, 9, 4, 1, 1];
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
    fn emit_hire(&mut self, who: &Who, hire: &HirePlan) -> Option<Day> {
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
            Via::Direct => self.pick(&[8, 45, 25, 22]) as u8,
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

#[cfg(test)]
mod tests {
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
