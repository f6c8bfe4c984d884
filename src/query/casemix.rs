//! Case-mix adjustment of placement (`placement_oe_180`, kind `oe`): observed placements
//! against those expected from who each territory serves.
//!
//! A logistic regression of placement within the follow-up on the person's attributes at the
//! pact ([`COVARIATES`], main effects), fitted on the national cohort of the period, gives each
//! cohort entry an expected chance of placement. A territory's expected placements E are the
//! sum of its entries' chances; O/E above 1 means it places more than its case mix predicts.
//! The intervals are exact Poisson intervals for O (Garwood), divided by E.
//!
//! Why a logistic model rather than stratified indirect standardisation: the seven attributes
//! cross into thousands of strata, most with a handful of persons nationally, whose own rates
//! would be mostly noise; main effects borrow strength across strata (as the NHS's SHMI does
//! for hospital mortality). The fit runs on covariate patterns (one row per combination, with
//! its entries and placements), whose binomial likelihood is that of the entries themselves:
//! the same estimates from a few thousand rows instead of millions. The national fit is cached
//! per data version, instant and period, like the shared views.

use std::collections::BTreeMap;
use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::cells::RowKeys;
use super::{Dim, Engine, Kind, KpiDef, KpiResult, Params, QueryError};
use crate::row::{Cell, Row, col};

/// The person's attributes at the pact that the model adjusts for (breakdown names).
pub const COVARIATES: [&str; 7] = [
    "age_band",
    "gender",
    "category",
    "list_type",
    "disability_band",
    "naspi",
    "year",
];

/// The breakdowns an O/E KPI takes: territories, which it compares.
pub const TERRITORIES: [&str; 3] = ["region", "province", "cpi"];

/// The two levels of the intervals and of the funnel plots' control limits.
pub const LEVELS: [(f64, &str, &str); 2] = [
    (0.95, col::LOWER, col::UPPER),
    (0.998, col::LOWER_998, col::UPPER_998),
];

/// One covariate pattern: its levels (in [`COVARIATES`] order), entries and placements.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub levels: Vec<String>,
    pub entries: f64,
    pub placed: f64,
}

/// A fitted model: for each covariate its levels (the reference, the most frequent, first)
/// and the coefficients (the intercept, then one per non-reference level, in order).
#[derive(Debug, Clone)]
pub struct Fit {
    pub levels: Vec<Vec<String>>,
    pub coefficients: Vec<f64>,
    pub iterations: u32,
    pub converged: bool,
    /// Entries and placements the model was fitted on.
    pub entries: f64,
    pub placed: f64,
}

impl Fit {
    /// The expected chance of placement of an entry with these levels. A level the fit never
    /// saw (a territory's data cannot have one the nation lacks, but a caller might) counts as
    /// the reference.
    pub fn chance(&self, levels: &[String]) -> f64 {
        let mut eta = self.coefficients.first().copied().unwrap_or(0.0);
        let mut at = 1;
        for (c, ls) in self.levels.iter().enumerate() {
            for (j, l) in ls.iter().enumerate().skip(1) {
                if levels.get(c) == Some(l) {
                    eta += self.coefficients[at + j - 1];
                }
            }
            at += ls.len().saturating_sub(1);
        }
        logistic(eta)
    }
}

fn logistic(eta: f64) -> f64 {
    1.0 / (1.0 + (-eta).exp())
}

/// The maximum-likelihood logistic regression of placement on the patterns' levels, by
/// iteratively reweighted least squares (Newton's method) with step halving. Converged when
/// the deviance changes by less than 1e-10 of itself (statsmodels' rule for its GLMs); under
/// separation (a level where all or none are placed) the coefficients grow without end but
/// the chances converge, which is what the expected counts use.
pub fn fit(patterns: &[Pattern]) -> Fit {
    let k = COVARIATES.len();
    // Levels by frequency (entries), the most frequent first: the reference.
    let mut levels: Vec<Vec<String>> = Vec::with_capacity(k);
    for c in 0..k {
        let mut weight: BTreeMap<&str, f64> = BTreeMap::new();
        for p in patterns {
            *weight.entry(p.levels[c].as_str()).or_default() += p.entries;
        }
        let mut ls: Vec<(&str, f64)> = weight.into_iter().collect();
        ls.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        levels.push(ls.into_iter().map(|(l, _)| l.to_owned()).collect());
    }
    let width = 1 + levels
        .iter()
        .map(|l| l.len().saturating_sub(1))
        .sum::<usize>();
    let rows: Vec<&Pattern> = patterns.iter().filter(|p| p.entries > 0.0).collect();
    let x = DMatrix::from_fn(rows.len(), width, |i, j| {
        if j == 0 {
            return 1.0;
        }
        let mut at = 1;
        for (c, ls) in levels.iter().enumerate() {
            let span = ls.len().saturating_sub(1);
            if j < at + span {
                return f64::from(u8::from(rows[i].levels[c] == ls[j - at + 1]));
            }
            at += span;
        }
        0.0
    });
    let n = DVector::from_iterator(rows.len(), rows.iter().map(|p| p.entries));
    let y = DVector::from_iterator(rows.len(), rows.iter().map(|p| p.placed));
    let (entries, placed) = (n.sum(), y.sum());
    let mut beta = DVector::zeros(width);
    if entries > 0.0 {
        let p0 = (placed / entries).clamp(1e-9, 1.0 - 1e-9);
        beta[0] = (p0 / (1.0 - p0)).ln();
    }
    let deviance = |beta: &DVector<f64>| -> f64 {
        let eta = &x * beta;
        (0..rows.len())
            .map(|i| {
                let mu = logistic(eta[i]).clamp(1e-300, 1.0 - 1e-16);
                -2.0 * (y[i] * mu.ln() + (n[i] - y[i]) * (1.0 - mu).ln())
            })
            .sum()
    };
    let mut dev = deviance(&beta);
    let (mut iterations, mut converged) = (0, rows.is_empty());
    while !converged && iterations < 100 {
        iterations += 1;
        let eta = &x * &beta;
        let mu = eta.map(logistic);
        let w = DVector::from_fn(rows.len(), |i, _| n[i] * mu[i] * (1.0 - mu[i]));
        let score = x.tr_mul(&(&y - n.component_mul(&mu)));
        // Xᵀ W X with W diagonal: each row of X scaled by its weight, never an n × n matrix.
        let mut wx = x.clone();
        for (i, mut row) in wx.row_iter_mut().enumerate() {
            row *= w[i];
        }
        let mut info = x.tr_mul(&wx);
        // A whisker of ridge keeps the information invertible under separation.
        for j in 0..width {
            info[(j, j)] += 1e-10;
        }
        let Some(chol) = info.cholesky() else { break };
        let step = chol.solve(&score);
        let mut t = 1.0;
        let mut next = &beta + &step;
        let mut next_dev = deviance(&next);
        while next_dev > dev + 1e-12 && t > 1e-6 {
            t /= 2.0;
            next = &beta + &step * t;
            next_dev = deviance(&next);
        }
        converged = (dev - next_dev).abs() <= 1e-10 * (next_dev.abs() + 0.1);
        beta = next;
        dev = next_dev;
    }
    Fit {
        levels,
        coefficients: beta.iter().copied().collect(),
        iterations,
        converged,
        entries,
        placed,
    }
}

/// The exact (Garwood) interval of a Poisson count `o` at this level: the means under which
/// `o` or fewer, and `o` or more, are each at most (1 − level) / 2 likely.
pub fn poisson_interval(o: f64, level: f64) -> (f64, f64) {
    let a = (1.0 - level) / 2.0;
    let quantile = |df: f64, p: f64| {
        ChiSquared::new(df)
            .map(|d| d.inverse_cdf(p))
            .unwrap_or(f64::NAN)
    };
    let lower = if o <= 0.0 {
        0.0
    } else {
        quantile(2.0 * o, a) / 2.0
    };
    (lower, quantile(2.0 * (o + 1.0), 1.0 - a) / 2.0)
}

/// The funnel plot's control limits of O/E at this expected count and level: the O/E beyond
/// which a territory's exact (Garwood) interval at that level leaves out 1, as a smooth curve
/// of `expected`. A point is outside the curves exactly when its interval in the table leaves
/// out 1, so the plot, its table and the intervals never disagree. For a count O, the interval
/// lies above 1 when P(Gamma(O) ≤ E) < (1 − level) / 2, and below 1 when P(Gamma(O + 1) ≤ E) >
/// 1 − (1 − level) / 2; the curves solve both for a continuous O. Below some expected count no
/// count can lie below: the lower curve is then 0.
pub fn control_limits(expected: f64, level: f64) -> (f64, f64) {
    use statrs::function::gamma::gamma_lr;
    if !(expected > 0.0 && expected.is_finite()) {
        return (f64::NAN, f64::NAN);
    }
    let a = (1.0 - level) / 2.0;
    let hi = expected + 12.0 * expected.sqrt() + 40.0;
    // The O in (lo, hi) where `f` (decreasing in O) crosses `target`.
    let solve = |f: &dyn Fn(f64) -> f64, target: f64| {
        let (mut lo, mut hi) = (1e-9, hi);
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if f(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo + hi) / 2.0
    };
    let upper = solve(&|o| gamma_lr(o, expected), a);
    let lower = if gamma_lr(1.0, expected) <= 1.0 - a {
        0.0
    } else {
        solve(&|o| gamma_lr(o + 1.0, expected), 1.0 - a)
    };
    (lower / expected, upper / expected)
}

/// The KPI as a rate over the same rows: what the fit and the territories' counts read.
fn as_rate(def: &KpiDef) -> KpiDef {
    KpiDef {
        kind: Kind::Rate,
        ..def.clone()
    }
}

fn dims(def: &KpiDef, names: &[&str]) -> Result<Vec<Dim>, QueryError> {
    names
        .iter()
        .map(|n| {
            Dim::of(def, n).ok_or_else(|| {
                QueryError::bad("by", format!("{} has no breakdown '{n}'", def.id), &[])
            })
        })
        .collect()
}

/// The cache of national fits, by data version, instant and period.
#[derive(Default)]
pub(super) struct Fits(std::sync::Mutex<Vec<(String, Arc<Fit>)>>);

impl Fits {
    fn get(&self, key: &str) -> Option<Arc<Fit>> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.iter().find(|(k, _)| k == key).map(|(_, f)| Arc::clone(f))
    }

    fn put(&self, key: String, fit: Arc<Fit>) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|(k, _)| *k != key);
        g.push((key, fit));
        if g.len() > 16 {
            g.remove(0);
        }
    }
}

impl Engine {
    /// The national fit of an O/E KPI for the period and instant of `p`.
    pub(super) async fn casemix_fit(
        &self,
        def: &KpiDef,
        p: &Params,
    ) -> Result<Arc<Fit>, QueryError> {
        let rate = as_rate(def);
        let national = Params {
            from: p.from,
            to: p.to,
            by: dims(&rate, &COVARIATES)?,
            as_of: p.as_of,
            ..Params::default()
        };
        let snap = self.snapshot(p.as_of)?;
        let key = format!(
            "{}|{}|{}|{:?}|{:?}",
            def.id, snap.data_version, snap.as_of_us, p.from, p.to
        );
        if let Some(f) = self.fits.get(&key) {
            return Ok(f);
        }
        let r = self.run_once(&rate, &national, false).await?;
        let patterns: Vec<Pattern> = r.rows.iter().map(pattern).collect();
        // A few thousand patterns at most: milliseconds, not worth a blocking thread.
        let f = Arc::new(fit(&patterns));
        if !f.converged {
            tracing::warn!(
                kpi = def.id,
                iterations = f.iterations,
                "the case-mix fit did not converge"
            );
        }
        self.fits.put(key, Arc::clone(&f));
        Ok(f)
    }

    /// An O/E KPI: per territory of `p.by`, observed and expected placements, O/E and its
    /// exact intervals.
    pub(super) async fn run_oe(&self, def: &KpiDef, p: &Params) -> Result<KpiResult, QueryError> {
        let by: Vec<String> = p.by.iter().map(|d| d.name().to_owned()).collect();
        if let Some(d) = by.iter().find(|d| !TERRITORIES.contains(&d.as_str())) {
            return Err(QueryError::bad(
                "by",
                format!(
                    "{} compares territories: break it down by region, province or cpi, not {d}",
                    def.id
                ),
                &TERRITORIES,
            ));
        }
        let fit = self.casemix_fit(def, p).await?;
        let rate = as_rate(def);
        let mut q = p.clone();
        let mut names: Vec<&str> = by.iter().map(String::as_str).collect();
        names.extend(COVARIATES);
        q.by = dims(&rate, &names)?;
        let mut r = self.run_once(&rate, &q, false).await?;
        let mut cells: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
        for (i, row) in r.rows.iter().enumerate() {
            let (n, o) = (
                row.count(col::DENOMINATOR).unwrap_or(0) as f64,
                row.count(col::NUMERATOR).unwrap_or(0) as f64,
            );
            let c = cells.entry(row.key(&by)).or_insert_with(|| Tally {
                row: row.only(&by),
                ..Tally::default()
            });
            c.entries += n;
            c.observed += o;
            c.expected += n * fit.chance(&pattern(row).levels);
            let k = r.keys.get(i);
            let key = |name: &str| k.and_then(|k| k.get(name)).copied().unwrap_or(0);
            c.key_observed = c.key_observed.wrapping_add(key(col::NUMERATOR));
            c.key_cohort = c.key_cohort.wrapping_add(key(col::DENOMINATOR));
        }
        let mut rows = Vec::with_capacity(cells.len());
        let mut keys = Vec::with_capacity(cells.len());
        for (_, mut c) in cells {
            oe_cells(&mut c.row, c.observed, c.expected, c.entries as u64);
            rows.push(c.row);
            if p.cell_keys {
                keys.push(RowKeys::from([
                    (col::OBSERVED.to_owned(), c.key_observed),
                    (col::COHORT.to_owned(), c.key_cohort),
                ]));
            }
        }
        r.kpi = def.id.to_owned();
        r.columns = by.clone();
        r.columns.extend(OE_COLUMNS.map(String::from));
        r.params.by = by;
        r.rows = rows;
        r.keys = keys;
        Ok(r)
    }
}

/// A territory's entries, placements observed and expected, and the summed cell keys of its
/// placements and entries.
#[derive(Default)]
struct Tally {
    row: Row,
    entries: f64,
    observed: f64,
    expected: f64,
    key_observed: u32,
    key_cohort: u32,
}

/// The columns of an O/E result after its breakdowns.
pub const OE_COLUMNS: [&str; 8] = [
    col::VALUE,
    col::OBSERVED,
    col::EXPECTED,
    col::COHORT,
    col::LOWER,
    col::UPPER,
    col::LOWER_998,
    col::UPPER_998,
];

/// Sets a row's O/E figures from its observed and expected placements and its cohort.
pub fn oe_cells(row: &mut Row, o: f64, e: f64, cohort: u64) {
    row.insert(
        col::VALUE,
        if e > 0.0 {
            Cell::Float(o / e)
        } else {
            Cell::Null
        },
    );
    row.insert(col::OBSERVED, o as u64);
    row.insert(col::EXPECTED, Cell::Float(e));
    row.insert(col::COHORT, cohort);
    for (level, lo, hi) in LEVELS {
        let (l, h) = poisson_interval(o, level);
        let ratio = |x: f64| {
            if e > 0.0 {
                Cell::Float(x / e)
            } else {
                Cell::Null
            }
        };
        row.insert(lo, ratio(l));
        row.insert(hi, ratio(h));
    }
}

/// A rate row's covariate pattern.
fn pattern(row: &Row) -> Pattern {
    Pattern {
        levels: COVARIATES.iter().map(|c| row.cell(c).plain()).collect(),
        entries: row.count(col::DENOMINATOR).unwrap_or(0) as f64,
        placed: row.count(col::NUMERATOR).unwrap_or(0) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(levels: [&str; 7], entries: f64, placed: f64) -> Pattern {
        Pattern {
            levels: levels.iter().map(|s| s.to_string()).collect(),
            entries,
            placed,
        }
    }

    /// With one attribute varying, main effects are saturated: each level's chance is its own
    /// rate, and the expected placements of the whole cohort equal the observed.
    #[test]
    fn a_saturated_model_gives_each_level_its_rate() {
        let base = ["30-54", "F", "disabled", "disabled", "67-79", "no", "2025"];
        let mut male = base;
        male[1] = "M";
        let f = fit(&[pat(base, 10.0, 4.0), pat(male, 5.0, 1.0)]);
        assert!(f.converged);
        let levels = |l: [&str; 7]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!((f.chance(&levels(base)) - 0.4).abs() < 1e-9);
        assert!((f.chance(&levels(male)) - 0.2).abs() < 1e-9);
        assert_eq!(
            f.levels[1],
            ["F", "M"],
            "the most frequent level is the reference"
        );
    }

    /// A level where nobody is placed separates: the chance tends to 0 and the fit still ends.
    #[test]
    fn separation_ends_with_chances_at_the_rates() {
        let base = ["30-54", "F", "disabled", "disabled", "67-79", "no", "2025"];
        let mut male = base;
        male[1] = "M";
        let f = fit(&[pat(base, 10.0, 4.0), pat(male, 5.0, 0.0)]);
        let levels = |l: [&str; 7]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(f.chance(&levels(male)) < 1e-6);
        assert!((f.chance(&levels(base)) - 0.4).abs() < 1e-6);
        assert!(f.iterations <= 100);
    }

    /// Garwood intervals against published tables (e.g. Ulm 1990): O = 0: 0 – 3.689; O = 1:
    /// 0.0253 – 5.572; O = 10: 4.795 – 18.39 at 95%.
    #[test]
    fn exact_poisson_intervals() {
        let close = |a: f64, b: f64| (a - b).abs() < 5e-4;
        let (l, h) = poisson_interval(0.0, 0.95);
        assert!(l == 0.0 && close(h, 3.6889), "{h}");
        let (l, h) = poisson_interval(1.0, 0.95);
        assert!(close(l, 0.0253) && close(h, 5.5716), "{l} {h}");
        let (l, h) = poisson_interval(10.0, 0.95);
        assert!(close(l, 4.7954) && close(h, 18.3904), "{l} {h}");
    }

    /// A count lies outside the curves exactly when its exact interval leaves out 1.
    #[test]
    fn the_limits_agree_with_the_exact_intervals() {
        for e in [0.2, 1.0, 3.0, 7.5, 40.0, 333.0] {
            for o in 0..(3.0 * e + 12.0) as u32 {
                let o = f64::from(o);
                for level in [0.95, 0.998] {
                    let (l, h) = control_limits(e, level);
                    let (lo, hi) = poisson_interval(o, level);
                    assert_eq!(o / e > h, lo > e, "above: E {e}, O {o}, {level}");
                    assert_eq!(o / e < l, hi < e, "below: E {e}, O {o}, {level}");
                }
            }
        }
        // Below E = -ln(0.025) = 3.69 not even O = 0 lies below at 95%.
        assert_eq!(control_limits(3.6, 0.95).0, 0.0);
        assert!(control_limits(3.8, 0.95).0 > 0.0);
    }

    /// The limits hug 1 as the expected count grows, and the 99.8% ones lie outside the 95%.
    #[test]
    fn control_limits_narrow_with_the_expected_count() {
        let (l10, h10) = control_limits(10.0, 0.95);
        let (l1000, h1000) = control_limits(1000.0, 0.95);
        let (w10, v10) = control_limits(10.0, 0.998);
        assert!(l10 < l1000 && l1000 < 1.0 && 1.0 < h1000 && h1000 < h10);
        assert!(w10 < l10 && h10 < v10);
        // Near the normal approximation at a large count: 1 ± 1.96 / √1000.
        assert!((h1000 - (1.0 + 1.959964 / 1000f64.sqrt())).abs() < 0.005);
    }
}
