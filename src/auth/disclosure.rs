//! Disclosure control for every role but admin: cell-key perturbation with a threshold on top
//! (KPIS.md, version 2, "Confidentiality that holds"; the method of the ABS TableBuilder and
//! of the ONS census 2021 tables). Suppression alone cannot hold where anyone may choose any
//! period, territory and breakdown: a small cell comes back as a difference of two allowed
//! answers. Perturbation makes every published count carry noise, so differences carry noise.
//!
//! - Every counted record has a fixed random key (`query::cellkey`); a cell's key is the sum of
//!   its records' keys modulo 2³². The noise is a function of the cell key alone: the same
//!   records always give the same noise, so asking again, or under another name, averages
//!   nothing away.
//! - The noise `d` is drawn from [`NOISE`] (−3..=3, mean 0, variance [`NOISE_VARIANCE`]).
//! - A zero stays zero (it discloses no one). A true count between 1 and T−1 shows as `<T`. Any
//!   other count shows as `max(T, n + d)`: no value between 1 and T−1 is ever shown.
//! - A sum (of posts, of positions) has noise of its own, each step as wide as a tenth of its
//!   largest single amount (see [`SUM_NOISE_SHARE`]).
//! - On the employers' side a cell of fewer than T employers is withheld whole (the frequency
//!   rule of business statistics: one employer's posts can be many).
//! - Rates are the ratio of the perturbed numerator and denominator, withheld when the
//!   denominator is below T; medians and means are withheld when their n is below T; funnel
//!   shares come from perturbed stage counts; survival curves are rebuilt below admin as life
//!   tables of 30-day intervals from perturbed counts, and end where fewer than T remain at risk.
//! - Observed/expected (O/E) rows take their perturbed placements and cohort; their expected
//!   placements, a sum of fitted chances, get whole steps of noise of their own and are
//!   rounded; a territory of fewer than T entries shows nothing.
//!
//! Admins see exact figures. Totals need not equal the sum of the shown cells.

use crate::row::{Cell, Row, col};

use crate::query::cells::{LIFE_INTERVAL_DAYS, LifeGroup, Protection, RowKeys, TOP};
use crate::query::survival::{KmCurve, from_steps};
use crate::query::{Kind, KpiResult};

/// The default threshold, and the legal minimum (Sistan, art. 5).
pub const DEFAULT_THRESHOLD: u64 = 5;
pub const MIN_THRESHOLD: u64 = 3;

/// The noise and its probability: a discrete bell on −3..=3. Most cells move by at most one;
/// one in fifty moves by three, which keeps an attacker who reasons from the bounds of the
/// noise from pinning a cell except with that small probability.
pub const NOISE: [(i64, f64); 7] = [
    (-3, 0.02),
    (-2, 0.08),
    (-1, 0.20),
    (0, 0.40),
    (1, 0.20),
    (2, 0.08),
    (3, 0.02),
];

/// Σ p·d² over [`NOISE`]: the published variance of the noise.
pub const NOISE_VARIANCE: f64 = 1.4;

/// The protection of perturbed results at this threshold.
pub fn protection(threshold: u64) -> Protection {
    Protection {
        method: "cell_key_perturbation".into(),
        threshold: threshold.max(MIN_THRESHOLD),
        noise_max: NOISE[NOISE.len() - 1].0,
        noise_variance: NOISE_VARIANCE,
    }
}

/// The protection in Italian, for the pages and the report.
pub fn describe(p: &Protection) -> String {
    format!(
        "Valori perturbati (rumore casuale fisso tra −{m} e +{m}, varianza {v}); i conteggi \
         tra 1 e {t1} sono oscurati (<{t}); i totali possono non coincidere con la somma delle celle.",
        m = p.noise_max,
        v = crate::query::output::italian_number(&Cell::Float(p.noise_variance)),
        t1 = p.threshold - 1,
        t = p.threshold,
    )
}

/// A withheld count: shown as `<T`.
pub fn mark(threshold: u64) -> Cell {
    Cell::Below(threshold)
}

/// The noise of a cell with this key.
pub fn noise(key: u32) -> i64 {
    let u = key as f64 / 4_294_967_296.0;
    let mut acc = 0.0;
    for (d, p) in NOISE {
        acc += p;
        if u < acc {
            return d;
        }
    }
    NOISE[NOISE.len() - 1].0
}

/// The perturbed count, for what is derived from it: 0 stays 0; a small count stays at least 1
/// (it is never shown, only used in ratios); any other is at least the threshold.
pub fn perturbed(n: u64, key: u32, threshold: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let p = (n as i64 + noise(key)).max(1) as u64;
    if n >= threshold { p.max(threshold) } else { p }
}

/// Of a sum's largest single amount, the share one step of its noise takes: a sum of posts
/// moves by up to 3 × max(1, 10% of its largest employer's posts), so one employer's posts,
/// as the difference of two sums, come back only to within some 60% of themselves.
pub const SUM_NOISE_SHARE: f64 = 0.1;

/// One step of a sum's noise, from its largest single amount.
pub fn sum_scale(top: u32) -> u64 {
    ((f64::from(top) * SUM_NOISE_SHARE).round() as u64).max(1)
}

/// A sum as shown: as a count ([`shown`]), with each step of noise `scale` wide.
pub fn shown_scaled(n: u64, key: u32, threshold: u64, scale: u64) -> Cell {
    if n > 0 && n < threshold {
        return mark(threshold);
    }
    if n == 0 {
        return Cell::from(0u64);
    }
    let p = (n as i64 + noise(key) * scale as i64).max(1) as u64;
    Cell::from(p.max(threshold))
}

/// The count as shown: 0, `<T`, or its perturbed value (at least T).
pub fn shown(n: u64, key: u32, threshold: u64) -> Cell {
    if n > 0 && n < threshold {
        mark(threshold)
    } else {
        Cell::from(perturbed(n, key, threshold))
    }
}

fn key(keys: Option<&RowKeys>, col: &str) -> u32 {
    keys.and_then(|k| k.get(col)).copied().unwrap_or(0)
}

fn ratio(num: u64, den: u64) -> Cell {
    if den == 0 {
        return Cell::Null;
    }
    Cell::Float(num.min(den) as f64 / den as f64)
}

/// The result as a role below admin may see it.
pub fn protect(r: &KpiResult, kind: Kind, threshold: u64) -> KpiResult {
    let t = threshold.max(MIN_THRESHOLD);
    // A result computed without cell keys cannot be perturbed: then nothing small or large is
    // shown but zeros, rather than noise that would depend on the count alone.
    let keyed = r.rows.is_empty() || !r.life.is_empty() || r.keys.iter().any(|k| !k.is_empty());
    if !keyed {
        tracing::error!(kpi = %r.kpi, "a result without cell keys was asked for below admin");
        return withheld(r, t);
    }
    let mut out = r.clone();
    out.keys = Vec::new();
    out.life = Vec::new();
    out.protection = Some(protection(t));
    // The employers behind each cell only decide what is withheld (below).
    out.columns.retain(|c| c != col::UNITS);
    if kind == Kind::Survival {
        let (rows, median) = survival(&r.params.by, &r.life, t);
        out.rows = rows;
        out.median_days = r.median_days.as_ref().map(|_| median);
        return out;
    }
    // A funnel's accepted persons: its first stage, the row before the group's others.
    let mut accepted = 0;
    for (i, row) in out.rows.iter_mut().enumerate() {
        let k = r.keys.get(i);
        match kind {
            Kind::Count | Kind::CountDistinct | Kind::Stock => {
                if let Some(n) = row.count(col::VALUE) {
                    row.insert(col::VALUE, shown(n, key(k, col::VALUE), t));
                }
            }
            Kind::Sum => {
                if let Some(n) = row.count(col::VALUE) {
                    let scale = sum_scale(key(k, TOP));
                    row.insert(col::VALUE, shown_scaled(n, key(k, col::VALUE), t, scale));
                }
            }
            Kind::Rate => {
                let num = row.count(col::NUMERATOR).unwrap_or(0);
                let den = row.count(col::DENOMINATOR).unwrap_or(0);
                let (kn, kd) = (key(k, col::NUMERATOR), key(k, col::DENOMINATOR));
                let value = if den > 0 && den < t {
                    mark(t)
                } else {
                    ratio(perturbed(num, kn, t), perturbed(den, kd, t))
                };
                row.insert(col::VALUE, value);
                let shown_num = if den > 0 && den < t {
                    mark(t)
                } else {
                    shown(num, kn, t)
                };
                row.insert(col::NUMERATOR, shown_num);
                row.insert(col::DENOMINATOR, shown(den, kd, t));
                if let Some(n) = row.count(col::NOT_STATED) {
                    row.insert(col::NOT_STATED, shown(n, key(k, col::NOT_STATED), t));
                }
            }
            Kind::Median | Kind::Mean => {
                let n = row.count(col::N).unwrap_or(0);
                if n < t {
                    let v = if n == 0 { Cell::Null } else { mark(t) };
                    row.insert(col::VALUE, v);
                }
                row.insert(col::N, shown(n, key(k, col::N), t));
            }
            Kind::Funnel => {
                let persons = row.count(col::PERSONS).unwrap_or(0);
                let p = perturbed(persons, key(k, col::PERSONS), t);
                let accepted_key = key(k, "accepted");
                if row.text(col::STAGE) == Some("accepted") {
                    accepted = persons;
                }
                let pa = perturbed(accepted, accepted_key, t);
                let share = if accepted < t {
                    if accepted == 0 { Cell::Null } else { mark(t) }
                } else if persons > 0 && persons < t {
                    mark(t)
                } else {
                    ratio(p, pa)
                };
                row.insert(col::PERSONS, shown(persons, key(k, col::PERSONS), t));
                row.insert(col::SHARE_OF_ACCEPTED, share);
            }
            Kind::Oe => oe(row, k, t),
            Kind::Survival => {}
        }
        // The frequency rule of the employers' side: a cell of fewer than T employers shows
        // none of its figures, zeros included (a zero would tell what those employers have).
        if let Some(u) = row.count(col::UNITS) {
            row.remove(col::UNITS);
            if u > 0 && u < t {
                for c in [
                    col::VALUE,
                    col::NUMERATOR,
                    col::DENOMINATOR,
                    col::N,
                    col::NOT_STATED,
                ] {
                    if row.get(c).is_some() {
                        row.insert(c, mark(t));
                    }
                }
            }
        }
    }
    out
}

/// An O/E row below admin: a territory of fewer than T cohort entries shows nothing but `<T`;
/// any other shows O/E and its intervals from its perturbed placements and its perturbed
/// expected placements. Expected placements are a sum of chances, each below 1: exact, the
/// difference of two territories' sums would give one person's chance (hence attributes), so
/// they get noise of their own (whole steps, from a twist of the cohort's key) and are rounded.
fn oe(row: &mut Row, k: Option<&RowKeys>, t: u64) {
    let n = row.count(col::COHORT).unwrap_or(0);
    let o = row.count(col::OBSERVED).unwrap_or(0);
    let e = row.f64(col::EXPECTED).unwrap_or(0.0);
    let (ko, kn) = (key(k, col::OBSERVED), key(k, col::COHORT));
    if n > 0 && n < t {
        for c in crate::query::casemix::OE_COLUMNS {
            row.insert(c, Cell::Null);
        }
        for c in [col::OBSERVED, col::COHORT] {
            row.insert(c, mark(t));
        }
        return;
    }
    let e_shown = if e > 0.0 {
        (e + noise(kn.rotate_left(16) ^ 0x5bd1_e995) as f64)
            .round()
            .max(1.0)
    } else {
        0.0
    };
    crate::query::casemix::oe_cells(row, perturbed(o, ko, t) as f64, e_shown, n);
    row.insert(col::OBSERVED, shown(o, ko, t));
    row.insert(col::COHORT, shown(n, kn, t));
    row.insert(col::EXPECTED, Cell::from(e_shown as u64));
}

/// Every non-zero figure withheld: for a result that carries no cell keys.
fn withheld(r: &KpiResult, t: u64) -> KpiResult {
    let mut out = r.clone();
    out.keys = Vec::new();
    out.life = Vec::new();
    out.protection = Some(protection(t));
    out.median_days = out.median_days.map(|_| Cell::Null);
    for row in &mut out.rows {
        for (name, v) in row.iter_mut() {
            if r.params.by.contains(name) || name == col::STAGE {
                continue;
            }
            if v.as_f64().is_some_and(|x| x != 0.0) {
                *v = mark(t);
            }
        }
    }
    out
}

/// Survival rows below admin: per group, the curve of its life table with every count
/// perturbed, ending before the first interval with fewer than T at risk. A group of fewer than
/// T members shows one row with its size as `<T`. Returns the rows and, without breakdown, the
/// median (at interval resolution).
fn survival(by: &[String], life: &[LifeGroup], t: u64) -> (Vec<Row>, Cell) {
    let mut rows = Vec::new();
    let mut overall = Cell::Null;
    for g in life {
        let curve = perturbed_curve(g, t);
        let median = Cell::from(curve.as_ref().and_then(|c| c.median_days));
        if by.is_empty() {
            overall = median.clone();
        }
        let Some(curve) = curve else {
            let mut m = g.keys.clone();
            m.insert(col::DAY, 0i64);
            for c in [col::AT_RISK, col::EVENTS, col::CENSORED] {
                m.insert(c, mark(t));
            }
            for c in [col::SURVIVAL, col::LOWER, col::UPPER, col::MEDIAN_DAYS] {
                m.insert(c, Cell::Null);
            }
            rows.push(m);
            continue;
        };
        for r in curve.rows.iter().take_while(|r| r.at_risk >= t) {
            let mut m = g.keys.clone();
            let small = |x: u64| {
                if x > 0 && x < t {
                    mark(t)
                } else {
                    Cell::from(x)
                }
            };
            m.insert(col::DAY, r.day);
            m.insert(col::AT_RISK, r.at_risk);
            m.insert(col::EVENTS, small(r.events));
            m.insert(col::CENSORED, small(r.censored));
            m.insert(col::SURVIVAL, r.survival);
            m.insert(col::LOWER, r.lower);
            m.insert(col::UPPER, r.upper);
            m.insert(col::MEDIAN_DAYS, median.clone());
            rows.push(m);
        }
    }
    (rows, overall)
}

/// A group's curve from its perturbed life table; `None` for a group of fewer than T members.
/// Each interval's events and censorings happen at its end (day 30, 60, …).
pub fn perturbed_curve(g: &LifeGroup, t: u64) -> Option<KmCurve> {
    if g.n < t {
        return None;
    }
    let n = perturbed(g.n, g.ck_n, t);
    let steps: Vec<(i64, u64, u64)> = g
        .intervals
        .iter()
        .map(|i| {
            (
                i.start + LIFE_INTERVAL_DAYS,
                perturbed(i.events, i.ck_events, t),
                perturbed(i.censored, i.ck_censored, t),
            )
        })
        .collect();
    Some(from_steps(n, &steps))
}

/// A survival group's size and placements as shown below admin.
pub fn group_totals(g: &LifeGroup, t: u64) -> (Cell, Cell) {
    let placed: u64 = g.intervals.iter().map(|i| i.events).sum();
    let key = g
        .intervals
        .iter()
        .fold(0u32, |k, i| k.wrapping_add(i.ck_events));
    (shown(g.n, g.ck_n, t), shown(placed, key, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_sums_noise_grows_with_its_largest_amount() {
        // Up to 14 the step is 1 (as a count's); 15 rounds to 2; 70 to 7.
        assert_eq!(sum_scale(0), 1);
        assert_eq!(sum_scale(14), 1);
        assert_eq!(sum_scale(15), 2);
        assert_eq!(sum_scale(70), 7);
        // The key whose noise is -3 (the first 2% of keys) moves 100 posts by -3 steps.
        let minus3 = 0;
        assert_eq!(noise(minus3), -3);
        assert_eq!(shown_scaled(100, minus3, 5, 7), Cell::from(79u64));
        assert_eq!(shown_scaled(100, minus3, 5, 1), Cell::from(97u64));
        // Small and zero sums as counts: `<T` and 0; never below T otherwise.
        assert_eq!(shown_scaled(3, minus3, 5, 7), mark(5));
        assert_eq!(shown_scaled(0, minus3, 5, 7), Cell::from(0u64));
        assert_eq!(shown_scaled(6, minus3, 5, 7), Cell::from(5u64));
    }

    #[test]
    fn a_cell_of_few_employers_shows_nothing() {
        let keys = vec![RowKeys::from([("value".to_owned(), 1u32)]); 2];
        let mut r = result(
            &["province"],
            json!([
                {"province": "MI", "value": 70, "employers": 1},
                {"province": "RM", "value": 90, "employers": 6},
            ]),
            keys,
        );
        r.columns = ["province", "value", "employers"]
            .map(String::from)
            .to_vec();
        let p = protect(&r, Kind::Count, 5);
        assert_eq!(p.rows[0].cell(col::VALUE), &mark(5));
        assert!(
            p.rows[1]
                .cell(col::VALUE)
                .as_f64()
                .is_some_and(|v| v >= 5.0)
        );
        assert!(p.rows.iter().all(|r| r.get(col::UNITS).is_none()));
        assert!(!p.columns.iter().any(|c| c == col::UNITS));
    }

    fn result(by: &[&str], rows: Value, keys: Vec<RowKeys>) -> KpiResult {
        KpiResult {
            kpi: "x".into(),
            params: crate::query::Resolved {
                from: String::new(),
                to: String::new(),
                by: by.iter().map(|s| (*s).to_owned()).collect(),
                region: vec![],
                province: vec![],
                cpi: vec![],
                as_of: String::new(),
                data_version: String::new(),
                scope: None,
            },
            columns: vec![],
            rows: rows
                .as_array()
                .unwrap()
                .iter()
                .map(Row::from_json)
                .collect(),
            median_days: None,
            keys,
            life: vec![],
            protection: None,
        }
    }

    /// A cell key whose noise is `d`: the middle of `d`'s slice of [0, 2³²).
    fn key_for(d: i64) -> u32 {
        let mut lo = 0.0;
        for (x, p) in NOISE {
            if x == d {
                return ((lo + p / 2.0) * 4_294_967_296.0) as u32;
            }
            lo += p;
        }
        unreachable!()
    }

    #[test]
    fn the_noise_table_is_a_distribution_with_the_published_variance() {
        let total: f64 = NOISE.iter().map(|(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let mean: f64 = NOISE.iter().map(|(d, p)| *d as f64 * p).sum();
        assert!(mean.abs() < 1e-12);
        let var: f64 = NOISE.iter().map(|(d, p)| (*d * *d) as f64 * p).sum();
        assert!((var - NOISE_VARIANCE).abs() < 1e-12);
        for d in -3..=3 {
            assert_eq!(noise(key_for(d)), d);
        }
        assert_eq!(noise(0), -3);
        assert_eq!(noise(u32::MAX), 3);
    }

    #[test]
    fn zeros_stay_small_counts_hide_others_move_but_never_below_the_threshold() {
        // 0 → 0 whatever the key; 1..4 → "<5"; 5 with noise −3 → max(5, 2) = 5;
        // 10 with +2 → 12; 10 with −1 → 9.
        assert_eq!(shown(0, key_for(3), 5), json!(0));
        for n in 1..5 {
            assert_eq!(shown(n, key_for(3), 5), json!("<5"));
        }
        assert_eq!(shown(5, key_for(-3), 5), json!(5));
        assert_eq!(shown(10, key_for(2), 5), json!(12));
        assert_eq!(shown(10, key_for(-1), 5), json!(9));
    }

    #[test]
    fn rates_derive_from_perturbed_counts_and_hide_small_denominators() {
        // Row 1: 30 of 40, numerator noise +1, denominator −2 → 31 / 38.
        // Row 2: 1 of 3: denominator below 5, all three hidden.
        // Row 3: 2 of 20, numerator noise 0 → "<5" shown, value 2/20 (from perturbed counts).
        let keys = vec![
            RowKeys::from([
                ("numerator".into(), key_for(1)),
                ("denominator".into(), key_for(-2)),
            ]),
            RowKeys::new(),
            RowKeys::from([
                ("numerator".into(), key_for(0)),
                ("denominator".into(), key_for(0)),
            ]),
        ];
        let r = result(
            &["region"],
            json!([{"region": "A", "value": 0.75, "numerator": 30, "denominator": 40},
                   {"region": "B", "value": 0.3333, "numerator": 1, "denominator": 3},
                   {"region": "C", "value": 0.1, "numerator": 2, "denominator": 20}]),
            keys,
        );
        let s = protect(&r, Kind::Rate, 5);
        assert_eq!(s.rows[0]["numerator"], json!(31));
        assert_eq!(s.rows[0]["denominator"], json!(38));
        assert!((s.rows[0]["value"].as_f64().unwrap() - 31.0 / 38.0).abs() < 1e-12);
        for c in ["value", "numerator", "denominator"] {
            assert_eq!(s.rows[1][c], json!("<5"), "{c}");
        }
        assert_eq!(s.rows[2]["numerator"], json!("<5"));
        assert!((s.rows[2]["value"].as_f64().unwrap() - 0.1).abs() < 1e-12);
        // The threshold never goes below 3: a denominator of 3 then shows.
        let s = protect(&r, Kind::Rate, 1);
        assert_eq!(s.protection.as_ref().unwrap().threshold, 3);
        assert_eq!(s.rows[1]["denominator"], json!(3));
        assert_eq!(s.rows[1]["numerator"], json!("<3"));
    }

    #[test]
    fn a_result_without_keys_shows_only_zeros() {
        // Without cell keys there is no noise to add: every non-zero figure is withheld.
        let r = result(
            &["region"],
            json!([{"region": "A", "value": 40}, {"region": "B", "value": 0}]),
            vec![RowKeys::new(), RowKeys::new()],
        );
        let s = protect(&r, Kind::Count, 5);
        assert_eq!(s.rows[0]["value"], json!("<5"));
        assert_eq!(s.rows[1]["value"], json!(0));
        assert_eq!(s.rows[0]["region"], json!("A"));
    }

    #[test]
    fn medians_of_few_are_withheld() {
        let r = result(
            &[],
            json!([{"value": 12.0, "n": 4}]),
            vec![RowKeys::from([("n".into(), key_for(0))])],
        );
        let s = protect(&r, Kind::Median, 5);
        assert_eq!(s.rows[0]["value"], json!("<5"));
        assert_eq!(s.rows[0]["n"], json!("<5"));
    }

    #[test]
    fn survival_below_admin_is_a_perturbed_life_table_cut_at_the_threshold() {
        use crate::query::cells::LifeInterval;
        // 12 members, all keys with noise 0: intervals [0,30) 2 placed, [30,60) 3 placed and
        // 1 censored, [60,90) 1 placed. Curve: day 30, 12 at risk, S = 10/12; day 60, 10 at
        // risk, S = 10/12 · 7/10 = 7/12; day 90: 6 at risk, 1 event ("<5"), S = 7/12 · 5/6.
        let iv = |start, events, censored| LifeInterval {
            start,
            events,
            ck_events: key_for(0),
            censored,
            ck_censored: key_for(0),
        };
        let g = LifeGroup {
            keys: Row::new(),
            n: 12,
            ck_n: key_for(0),
            intervals: vec![iv(0, 2, 0), iv(30, 3, 1), iv(60, 1, 0)],
        };
        let mut r = result(&[], json!([]), vec![]);
        r.life = vec![g.clone()];
        r.median_days = Some(Cell::Null);
        let s = protect(&r, Kind::Survival, 5);
        let days: Vec<i64> = s.rows.iter().map(|r| r["day"].as_i64().unwrap()).collect();
        assert_eq!(days, [30, 60, 90]);
        assert!((s.rows[1]["survival"].as_f64().unwrap() - 7.0 / 12.0).abs() < 1e-12);
        assert_eq!(s.rows[2]["events"], json!("<5"));
        assert_eq!(s.rows[2]["at_risk"], json!(6));
        // A group of 4 shows only that it is small.
        let mut small = g.clone();
        small.n = 4;
        r.life = vec![small];
        let s = protect(&r, Kind::Survival, 5);
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0]["at_risk"], json!("<5"));
        assert_eq!(s.rows[0]["survival"], json!(null));
        assert_eq!(group_totals(&g, 5), (Cell::Int(12), Cell::Int(6)));
    }
}
