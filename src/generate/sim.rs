//! The simulation of one region: its employers and vacancies, then each person's trail through
//! the six services, from the application to placement and cancellation.
//!
//! Everything draws from one ChaCha stream per region, in a fixed order (provinces in ISTAT
//! order, persons in sequence), so a region's events depend only on the seed and the region.
//! This file holds what the stages share (the region's tables, the simulation's state, the
//! person an event is about) and the order they run in; each stage has its own file below,
//! all of them methods of the one `Sim` so that they draw from the one stream.

mod draw;
mod emit;
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
