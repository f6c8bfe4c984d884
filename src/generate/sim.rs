//! The simulation of one region: its employers and vacancies, then each person's trail through
//! the six services, from the application to placement and cancellation, then the employers'
//! side (obligations, agreements, exemptions). Persons of the
//! opening stock come first in each province, registered before the first day and still on
//! the list on it; the rest register during the period.
//!
//! Everything draws from one ChaCha stream per region, in a fixed order (provinces in ISTAT
//! order, persons in sequence), so a region's events depend only on the seed and the region.
//! This file holds what the stages share (the region's tables, the simulation's state, the
//! person an event is about) and the order they run in; each stage has its own file below,
//! all of them methods of the one `Sim` so that they draw from the one stream.

mod draw;
mod emit;
mod employers;
mod matching;
mod measures;
mod orientation;
mod spell;
mod vacancies;

use std::collections::HashSet;

use chrono::NaiveDate;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ids::Code;
use super::model::*;

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
    /// The employers' side: per employer, and the acts and agreements events index.
    pub employer_facts: Vec<EmployerFacts>,
    pub acts: Vec<Act>,
    pub agreements: Vec<Agreement>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SimConfig {
    pub seed: u64,
    pub region_index: usize,
    /// The first day of the generated period.
    pub start: Day,
    pub end: Day,
    /// The earliest day of the opening stock's trail (`history_start`).
    pub history: Day,
}

/// How far back the opening stock's registrations reach, in years before the first day.
pub(super) const HISTORY_YEARS: i32 = 5;

/// New registrations a year, as a share of the stock: the middle of the 6–12% of the
/// published figures. The opening stock is sized from it (`stock_share`).
pub(super) const INFLOW_RATE: f64 = 0.09;

/// The first day of the opening stock's trail: `HISTORY_YEARS` before the first day, and
/// never before 2000-01-01, which the event contract rejects.
pub(super) fn history_start(start: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    let floor = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    NaiveDate::from_ymd_opt(start.year() - HISTORY_YEARS, 1, 1)
        .unwrap_or(floor)
        .max(floor)
        .min(start)
}

/// Of the persons of a run, the share already registered on the first day. The rest register
/// during the period, `INFLOW_RATE` of the stock a year, so that `persons` = stock × (1 +
/// rate × years).
pub(super) fn stock_share(start: Day, end: Day) -> f64 {
    let years = f64::from(end - start + 1) / 365.25;
    1.0 / (1.0 + INFLOW_RATE * years)
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
    /// The last day an event may concern the person: 31 December of the year they turn 66,
    /// so that every event finds them of working age (15–66, as KPIS.md counts age: the
    /// event's year minus the birth year).
    last_day: Day,
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
    /// The person being simulated was registered before the first day: the events of the
    /// spell open on that day that later events rest on are written even when earlier.
    stock: bool,
    /// The person being simulated applied shortly before the first day and is still waiting
    /// for the decision on it: the application is written, and decided on or after that day.
    pending: bool,
}

pub(super) fn to_date(d: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(d).unwrap_or_default()
}

pub(super) fn from_date(d: NaiveDate) -> Day {
    use chrono::Datelike;
    d.num_days_from_ce()
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
        stock: false,
        pending: false,
    };
    if total == 0 {
        return sim.data;
    }
    let share = stock_share(cfg.start, cfg.end);
    sim.make_employers(total);
    sim.make_vacancies(share);
    for (local, t) in provs.iter().enumerate() {
        let stock = (t.persons as f64 * share).round() as u64;
        for i in 0..t.persons {
            sim.person(local, i < stock);
            progress.inc(1);
        }
    }
    sim.close_vacancies();
    sim.employers_side();
    sim.data
}
