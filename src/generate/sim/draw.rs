//! The draws every stage makes: chances, ranges, waiting times, weighted picks, an employer,
//! an operator, and codes nobody else holds. Each one takes from the region's single stream,
//! so moving a call changes every later event.

use chrono::NaiveDate;
use rand::Rng;

use super::{Sim, Who};
use crate::generate::ids::{self, Code};

/// Operators per CPI: `op-MI-0042` is operator 42 of Milan, at CPI (42 - 1) / 8.
const OPERATORS_PER_CPI: u16 = 8;

impl Sim<'_> {
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Uniform integer in `[a, b]` (just `a` when the range is empty).
    pub(super) fn between(&mut self, a: i32, b: i32) -> i32 {
        if b <= a {
            a
        } else {
            self.rng.random_range(a..=b)
        }
    }

    /// Exponential waiting time in days: memoryless exits (hire, cancellation).
    pub(super) fn exp_days(&mut self, mean: f64) -> i32 {
        let u: f64 = self.rng.random();
        (-mean * (1.0 - u).ln()).min(100_000.0) as i32
    }

    pub(super) fn pick(&mut self, weights: &[u32]) -> usize {
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
    pub(super) fn employer(&mut self) -> u32 {
        let u: f64 = self.rng.random();
        let n = self.data.employers.len();
        ((u * u * n as f64) as usize).min(n.saturating_sub(1)) as u32
    }

    pub(super) fn operator_of(&mut self, cpi: u8) -> u16 {
        u16::from(cpi) * OPERATORS_PER_CPI + self.rng.random_range(1..=OPERATORS_PER_CPI)
    }

    /// The operator written on an event: often absent, mostly the case operator.
    pub(super) fn event_operator(&mut self, who: &Who) -> u16 {
        if !self.chance(0.8) {
            0
        } else if self.chance(0.7) {
            who.operator
        } else {
            self.operator_of(who.cpi)
        }
    }

    pub(super) fn unique_numeric(&mut self, office: Option<&str>) -> Code {
        loop {
            let n = ids::numeric11(&mut self.rng, office);
            let code = Code::new(&n);
            if self.taken.insert(code) {
                return code;
            }
        }
    }

    /// A CF nobody else holds: a clash is resolved by omocodia, as the Agenzia does.
    pub(super) fn unique_cf16(&mut self, female: bool, birth: NaiveDate) -> Code {
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
}
