//! Golden fixtures for section 7 (Placement and outcomes) of KPIS.md. Each fixture is a small
//! event set whose answer was worked out by hand (the arithmetic is in the comments); it runs
//! through the real ingest and the real engine.

mod common;
use common::*;
use serde_json::{Value, json};

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];
const RM: [(&str, &str); 2] = [("province", "RM"), ("cpi_code", "RM-01")];

/// A second employer: a valid 16-character CF.
fn employer2() -> String {
    cf("BNCGNN60A01H501")
}

fn accepted(id: &str, at: &str, who: u32) -> Vec<(String, String)> {
    ev("application_accepted", id, at, Some(who), &[])
}

fn cancelled(id: &str, at: &str, who: u32, reason: &str) -> Vec<(String, String)> {
    ev(
        "registration_cancelled",
        id,
        at,
        Some(who),
        &[("reason", reason)],
    )
}

fn pact(id: &str, at: &str, who: u32, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f: Vec<(&str, &str)> = vec![("pact_id", id)];
    f.extend_from_slice(extra);
    ev("pact_signed", id, at, Some(who), &f)
}

fn ended(id: &str, at: &str, who: u32, employer: &str) -> Vec<(String, String)> {
    ev(
        "employment_ended",
        id,
        at,
        Some(who),
        &[("employer_id", employer), ("end_reason", "dismissal")],
    )
}

/// Hires, Milano unless said otherwise; the observation end is 2025-12-31 (o9).
/// h1: p1 2025-02-10, A.01.00 open_ended, numerica, PIVA (stable). Ended with PIVA 2025-08-09.
/// h2: p1 2025-09-01, A.02.00 3 months fixed_term, nominativa, employer 2 (not stable: < 6).
/// h3: p2 2025-03-15 Roma, A.03.08 apprenticeship, convenzione_art11, PIVA (stable). p2's
///     employment_ended on 2025-04-01 is with employer 2: another job.
/// h4: p3 2025-05-20, A.02.01 12 months fixed_term, numerica, PIVA (stable). Ended 2025-11-17.
/// h5: p4 2024-12-31, A.01.00 (outside 2025).
/// h6: p5 2025-06-01, A.05.02 intermittent, other, PIVA (not stable). Ended the same day.
/// Persons p1, p3, p5 are women, p2 is a man (applications in 2024).
fn hires_env() -> Env {
    let env = Env::new();
    let e2 = employer2();
    env.load(
        "hires.csv",
        &[
            application("a1", "2024-06-01", 1, &[]),
            application("a2", "2024-06-01", 2, &[("gender", "M")]),
            application("a3", "2024-06-01", 3, &[]),
            application("a5", "2024-06-01", 5, &[]),
            hire("h1", "2025-02-10", 1, &[]),
            ended("e1", "2025-08-09", 1, PIVA),
            hire(
                "h2",
                "2025-09-01",
                1,
                &[
                    ("contract_code", "A.02.00"),
                    ("contract_months", "3"),
                    ("hiring_mode", "nominativa"),
                    ("employer_id", &e2),
                ],
            ),
            hire(
                "h3",
                "2025-03-15",
                2,
                &[
                    ("contract_code", "A.03.08"),
                    ("hiring_mode", "convenzione_art11"),
                    RM[0],
                    RM[1],
                ],
            ),
            ended("e3", "2025-04-01", 2, &e2),
            hire(
                "h4",
                "2025-05-20",
                3,
                &[("contract_code", "A.02.01"), ("contract_months", "12")],
            ),
            ended("e4", "2025-11-17", 3, PIVA),
            hire("h5", "2024-12-31", 4, &[]),
            hire(
                "h6",
                "2025-06-01",
                5,
                &[("contract_code", "A.05.02"), ("hiring_mode", "other")],
            ),
            ended("e6", "2025-06-01", 5, PIVA),
            ev("basic_orientation", "o9", "2025-12-31", Some(9), &[]),
        ],
    );
    env
}

#[test]
fn hires_with_own_breakdowns() {
    let env = hires_env();
    // 2025 hires: h1, h2, h3, h4, h6 = 5 (h5 is 2024).
    assert_eq!(env.rows("hires", &Y), json!([{"value": 5}]));
    // Classes: h3 apprenticeship; h2, h4 fixed_term; h6 intermittent; h1 open_ended.
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "contract_class")]),
        json!([
            {"contract_class": "apprenticeship", "value": 1},
            {"contract_class": "fixed_term", "value": 2},
            {"contract_class": "intermittent", "value": 1},
            {"contract_class": "open_ended", "value": 1}
        ])
    );
    // Modes: h3 convenzione_art11; h2 nominativa; h1, h4 numerica; h6 other.
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "hiring_mode")]),
        json!([
            {"hiring_mode": "convenzione_art11", "value": 1},
            {"hiring_mode": "nominativa", "value": 1},
            {"hiring_mode": "numerica", "value": 2},
            {"hiring_mode": "other", "value": 1}
        ])
    );
    // Own breakdown with a common one: Lombardia has h1, h4 (numerica), h2 (nominativa), h6
    // (other); Lazio has h3.
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "region,hiring_mode")]),
        json!([
            {"region": "Lazio", "hiring_mode": "convenzione_art11", "value": 1},
            {"region": "Lombardia", "hiring_mode": "nominativa", "value": 1},
            {"region": "Lombardia", "hiring_mode": "numerica", "value": 2},
            {"region": "Lombardia", "hiring_mode": "other", "value": 1}
        ])
    );
}

#[test]
fn persons_hired_counts_each_person_once() {
    let env = hires_env();
    // 2025 hires by person: p1 (h1, h2), p2 (h3), p3 (h4), p5 (h6) = 4 persons (p4 is 2024).
    assert_eq!(env.rows("persons_hired", &Y), json!([{"value": 4}]));
    // By province: MI p1, p3, p5 = 3; RM p2 = 1.
    assert_eq!(
        env.rows("persons_hired", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 3}, {"province": "RM", "value": 1}])
    );
    // By gender: F p1, p3, p5 = 3; M p2 = 1.
    assert_eq!(
        env.rows("persons_hired", &[Y[0], Y[1], ("by", "gender")]),
        json!([{"gender": "F", "value": 3}, {"gender": "M", "value": 1}])
    );
}

#[test]
fn stable_hire_rate_follows_the_contract_rule() {
    let env = hires_env();
    // Stable: h1 (A.01.00), h3 (A.03), h4 (A.02 with 12 months); not: h2 (A.02, 3 months),
    // h6 (intermittent) -> 3 / 5 = 0.6.
    assert_eq!(
        env.rows("stable_hire_rate", &Y),
        json!([{"value": 0.6, "numerator": 3, "denominator": 5}])
    );
    // Lazio: h3 stable 1/1; Lombardia: h1, h4 of h1, h2, h4, h6 = 2/4.
    assert_eq!(
        env.rows("stable_hire_rate", &[Y[0], Y[1], ("by", "region")]),
        json!([
            {"region": "Lazio", "value": 1.0, "numerator": 1, "denominator": 1},
            {"region": "Lombardia", "value": 0.5, "numerator": 2, "denominator": 4}
        ])
    );
}

#[test]
fn retention_180_same_employer_within_180_days() {
    let env = hires_env();
    // obs_end = 2025-12-31. Hire + 180 days:
    // h1 2025-02-10 + 180 = 2025-08-09 (Feb 10->Mar 10 28, ->Jun 10 120, ->Aug 9 180) <= obs_end:
    //    in; ended with PIVA on 2025-08-09 = day 180 (inclusive) -> not retained (0).
    // h2 2025-09-01 + 180 = 2026-02-28 > obs_end: out.
    // h3 2025-03-15 + 180 = 2025-09-11: in; the ending is with another employer -> retained (1).
    // h4 2025-05-20 + 180 = 2025-11-16 (May 20->Nov 20 is 184 days): in; ended 2025-11-17 =
    //    day 181 -> retained (1).
    // h6 2025-06-01 + 180 = 2025-11-28: in; ended the same day (day 0) -> 0.
    // 2 / 4 = 0.5.
    assert_eq!(
        env.rows("retention_180", &Y),
        json!([{"value": 0.5, "numerator": 2, "denominator": 4}])
    );
    // By province: MI h1 (0), h4 (1), h6 (0) = 1/3; RM h3 (1) = 1/1.
    assert_eq!(
        env.rows("retention_180", &[Y[0], Y[1], ("by", "province")]),
        json!([
            {"province": "MI", "value": 1.0 / 3.0, "numerator": 1, "denominator": 3},
            {"province": "RM", "value": 1.0, "numerator": 1, "denominator": 1}
        ])
    );
}

/// The placement cohort. Milano unless said otherwise; observation end 2025-12-31 (o5).
/// | person | accepted   | first pact      | outcome                                 | days |
/// | p1     | 2025-01-02 | 2025-01-10      | hired 2025-03-01                        | 50 E |
/// | p2     | 2025-01-05 | 2025-02-01      | hired 2025-07-01                        | 150 E|
/// | p3     | 2025-01-05 | 2025-03-01      | cancelled own_request 2025-04-01        | 31 C |
/// | p4     | 2025-02-01 | 2025-04-01 (RM) | hired 2025-04-01, the same day          | 0 E  |
/// | p5     | 2025-06-01 | 2025-07-01      | nothing until obs_end 2025-12-31        | 183 C|
/// | p6     | 2025-09-01 | 2025-10-01      | hired 2025-11-15                        | 45 E |
/// | p7     | 2025-03-01 | 2025-03-10      | cancelled 'hired' 05-01, hired 05-04    | 55 E |
/// | p12    | 2025-04-01 | 2025-05-01      | cancelled missed_summons 2025-08-01     | 92 C |
/// p1 signs a second pact on 2025-02-01: not the spell's first, ignored.
/// p8 signs a pact on 2025-03-01 without any acceptance (no spell): not in the cohort.
/// 2024 cohort: p9 accepted 2024-10-01, pact 2024-11-01, hired 2025-01-15 (75 days);
/// p10 accepted 2024-01-10, pact 2024-02-01, hired 2025-02-05 (2024-02-01 -> 2025-02-01 is 366
/// days, 2024 being a leap year, + 4 = 370 days).
fn cohort_env() -> Env {
    let env = Env::new();
    env.load(
        "cohort.csv",
        &[
            accepted("c1", "2025-01-02", 1),
            pact("p1", "2025-01-10", 1, &[]),
            pact("p1b", "2025-02-01", 1, &[]),
            hire("h1", "2025-03-01", 1, &[]),
            accepted("c2", "2025-01-05", 2),
            pact("p2", "2025-02-01", 2, &[]),
            hire("h2", "2025-07-01", 2, &[]),
            accepted("c3", "2025-01-05", 3),
            pact("p3", "2025-03-01", 3, &[]),
            cancelled("x3", "2025-04-01", 3, "own_request"),
            accepted("c4", "2025-02-01", 4),
            pact("p4", "2025-04-01", 4, &RM),
            hire("h4", "2025-04-01", 4, &[]),
            accepted("c5", "2025-06-01", 5),
            pact("p5", "2025-07-01", 5, &[]),
            ev("basic_orientation", "o5", "2025-12-31", Some(5), &[]),
            accepted("c6", "2025-09-01", 6),
            pact("p6", "2025-10-01", 6, &[]),
            hire("h6", "2025-11-15", 6, &[]),
            accepted("c7", "2025-03-01", 7),
            pact("p7", "2025-03-10", 7, &[]),
            cancelled("x7", "2025-05-01", 7, "hired"),
            hire("h7", "2025-05-04", 7, &[]),
            accepted("c12", "2025-04-01", 12),
            pact("p12", "2025-05-01", 12, &[]),
            cancelled("x12", "2025-08-01", 12, "missed_summons"),
            pact("p8", "2025-03-01", 8, &[]),
            hire("h8", "2025-03-10", 8, &[]),
            accepted("c9", "2024-10-01", 9),
            pact("p9", "2024-11-01", 9, &[]),
            hire("h9", "2025-01-15", 9, &[]),
            accepted("c10", "2024-01-10", 10),
            pact("p10", "2024-02-01", 10, &[]),
            hire("h10", "2025-02-05", 10, &[]),
        ],
    );
    env
}

#[test]
fn placement_rates_with_full_follow_up() {
    let env = cohort_env();
    // 90 days: follow-up needs pact <= 2025-12-31 - 90 = 2025-10-02: all 8 are in (p6's pact
    // 2025-10-01 + 90 = 2025-12-30). Placed within 90: p1 (50), p4 (0), p6 (45), p7 (55) = 4;
    // not: p2 (150), p3, p5, p12. 4 / 8 = 0.5.
    assert_eq!(
        env.rows("placement_rate_90", &Y),
        json!([{"value": 0.5, "numerator": 4, "denominator": 8}])
    );
    // Territory = the pact: p4 accepted in MI but signed in RM -> Lazio 1/1; Lombardia 3/7.
    assert_eq!(
        env.rows("placement_rate_90", &[Y[0], Y[1], ("by", "region")]),
        json!([
            {"region": "Lazio", "value": 1.0, "numerator": 1, "denominator": 1},
            {"region": "Lombardia", "value": 3.0 / 7.0, "numerator": 3, "denominator": 7}
        ])
    );
    // 180 days: pact <= 2025-07-04 (Jul 4 -> Dec 31 = 27 + 153 = 180): p1, p2, p3, p4, p5
    // (Jul 1 + 180 = Dec 28), p7, p12 = 7; p6 out. Placed within 180: p1, p2 (150), p4, p7 = 4.
    assert_eq!(
        env.rows("placement_rate_180", &Y),
        json!([{"value": 4.0 / 7.0, "numerator": 4, "denominator": 7}])
    );
    // 365 days: pact <= 2024-12-31: nobody of the 2025 cohort -> null, 0 / 0.
    assert_eq!(
        env.rows("placement_rate_365", &Y),
        json!([{"value": null, "numerator": 0, "denominator": 0}])
    );
    // 2024 cohort: p9 (pact 2024-11-01 + 365 = 2025-11-01 <= obs_end; hired at 75 days: 1) and
    // p10 (pact 2024-02-01; hired at 370 days > 365: 0) -> 1 / 2.
    let y24 = [("from", "2024-01-01"), ("to", "2024-12-31")];
    assert_eq!(
        env.rows("placement_rate_365", &y24),
        json!([{"value": 0.5, "numerator": 1, "denominator": 2}])
    );
    // By quarter of the pact: p10 2024-Q1 (0 of 1), p9 2024-Q4 (1 of 1).
    assert_eq!(
        env.rows("placement_rate_365", &[y24[0], y24[1], ("by", "quarter")]),
        json!([
            {"quarter": "2024-Q1", "value": 0.0, "numerator": 0, "denominator": 1},
            {"quarter": "2024-Q4", "value": 1.0, "numerator": 1, "denominator": 1}
        ])
    );
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number, got {v}"))
}

#[test]
fn time_to_placement_kaplan_meier() {
    let env = cohort_env();
    let r = env.kpi("time_to_placement", &Y);
    // Durations (E = placed, C = censored), sorted: 0 E (p4), 31 C (p3), 45 E (p6), 50 E (p1),
    // 55 E (p7: its cancellation was for 'hired', so not censored), 92 C (p12), 150 E (p2),
    // 183 C (p5, at obs_end). n = 8.
    //   day   0: at risk 8, 1 placed  S = 7/8                 = 0.875
    //   day  31: at risk 7, 1 censored S = 0.875
    //   day  45: at risk 6, 1 placed  S = 7/8 * 5/6 = 35/48   = 0.7291667
    //   day  50: at risk 5, 1 placed  S = 35/48 * 4/5 = 7/12  = 0.5833333
    //   day  55: at risk 4, 1 placed  S = 7/12 * 3/4 = 7/16   = 0.4375
    //   day  92: at risk 3, 1 censored S = 7/16
    //   day 150: at risk 2, 1 placed  S = 7/16 * 1/2 = 7/32   = 0.21875
    //   day 183: at risk 1, 1 censored S = 7/32
    // Median: the first S <= 0.5 is day 55 (0.4375, not exactly 0.5) -> 55.
    let expected = [
        (0, 8, 1, 0, 7.0 / 8.0),
        (31, 7, 0, 1, 7.0 / 8.0),
        (45, 6, 1, 0, 35.0 / 48.0),
        (50, 5, 1, 0, 7.0 / 12.0),
        (55, 4, 1, 0, 7.0 / 16.0),
        (92, 3, 0, 1, 7.0 / 16.0),
        (150, 2, 1, 0, 7.0 / 32.0),
        (183, 1, 0, 1, 7.0 / 32.0),
    ];
    let rows = r["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    for (row, &(day, at_risk, events, censored, s)) in rows.iter().zip(expected.iter()) {
        assert_eq!(
            (
                &row["day"],
                &row["at_risk"],
                &row["events"],
                &row["censored"]
            ),
            (
                &json!(day),
                &json!(at_risk),
                &json!(events),
                &json!(censored)
            ),
            "{row}"
        );
        assert!((num(&row["survival"]) - s).abs() < 1e-12, "{row}");
        assert_eq!(row["median_days"], json!(55.0));
    }
    assert_eq!(r["median_days"], json!(55.0));
    // Log-log band at day 50: Greenwood sum = 1/(8*7) + 1/(6*5) + 1/(5*4)
    //   = 0.0178571 + 0.0333333 + 0.05 = 0.1011905; ln(7/12) = -0.5389965;
    //   se = sqrt(0.1011905) / 0.5389965 = 0.3181046 / 0.5389965 = 0.5901792;
    //   z*se = 1.959964 * 0.5901792 = 1.1567299; e^+ = 3.1795, e^- = 0.3145155;
    //   lower = (7/12)^3.1795 = 0.180189; upper = (7/12)^0.3145155 = 0.844069.
    let d50 = &rows[3];
    assert!((num(&d50["lower"]) - 0.180189).abs() < 1e-6, "{d50}");
    assert!((num(&d50["upper"]) - 0.844069).abs() < 1e-6, "{d50}");
    // Every S here is strictly between 0 and 1, so every row has a band around it.
    for row in rows {
        let (lo, s, hi) = (
            num(&row["lower"]),
            num(&row["survival"]),
            num(&row["upper"]),
        );
        assert!(0.0 <= lo && lo <= s && s <= hi && hi <= 1.0, "{row}");
    }

    // By region: Lazio is p4 alone, placed on day 0 -> S = 0, no band, median 0.
    let lazio: Vec<Value> = env
        .rows("time_to_placement", &[Y[0], Y[1], ("by", "region")])
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["region"] == "Lazio")
        .cloned()
        .collect();
    assert_eq!(
        lazio,
        vec![
            json!({"region": "Lazio", "day": 0, "at_risk": 1, "events": 1, "censored": 0,
                    "survival": 0.0, "lower": null, "upper": null, "median_days": 0.0})
        ]
    );
}

/// Spells starting in 2025 (Milano unless said otherwise), observation end 2025-12-31 (o9):
/// p1: accepted 01-10; basic_orientation 01-15; pact 01-20; measure_started 02-01; hired 03-01.
/// p2: accepted 02-01; basic_orientation 02-05; pact 02-10; candidate_proposed 02-20.
/// p3: accepted 03-01; basic_orientation 2025-02-20 (before the spell: not counted); pact 03-05;
///     cancelled 04-01; candidate_proposed 04-02 and hired 04-10 (after the spell: not counted).
/// p4: accepted 2024-12-01 (spell starts before the period: not in the funnel); orientation
///     2025-01-05.
/// p5: accepted 2025-05-01 in Roma; nothing else.
fn funnel_env() -> Env {
    let env = Env::new();
    env.load(
        "funnel.csv",
        &[
            accepted("c1", "2025-01-10", 1),
            ev("basic_orientation", "o1", "2025-01-15", Some(1), &[]),
            pact("p1", "2025-01-20", 1, &[]),
            ev(
                "measure_started",
                "m1",
                "2025-02-01",
                Some(1),
                &[("measure_id", "M1"), ("measure_type", "tirocinio")],
            ),
            hire("h1", "2025-03-01", 1, &[]),
            accepted("c2", "2025-02-01", 2),
            ev("basic_orientation", "o2", "2025-02-05", Some(2), &[]),
            pact("p2", "2025-02-10", 2, &[]),
            ev(
                "candidate_proposed",
                "v2",
                "2025-02-20",
                Some(2),
                &[("vacancy_id", "V1"), ("channel", "pes_proposal")],
            ),
            ev("basic_orientation", "o3", "2025-02-20", Some(3), &[]),
            accepted("c3", "2025-03-01", 3),
            pact("p3", "2025-03-05", 3, &[]),
            cancelled("x3", "2025-04-01", 3, "own_request"),
            ev(
                "candidate_proposed",
                "v3",
                "2025-04-02",
                Some(3),
                &[("vacancy_id", "V1"), ("channel", "self_application")],
            ),
            hire("h3", "2025-04-10", 3, &[]),
            accepted("c4", "2024-12-01", 4),
            ev("basic_orientation", "o4", "2025-01-05", Some(4), &[]),
            ev("application_accepted", "c5", "2025-05-01", Some(5), &RM),
            ev("basic_orientation", "o9", "2025-12-31", Some(9), &[]),
        ],
    );
    env
}

fn stage(name: &str, persons: i64, share: Value) -> Value {
    json!({"stage": name, "persons": persons, "share_of_accepted": share})
}

#[test]
fn service_funnel_stages_within_the_spell() {
    let env = funnel_env();
    // Spells in 2025: p1, p2, p3, p5 = 4 accepted.
    // basic_orientation: p1, p2 = 2 (p3's is before the spell) -> 0.5
    // pact_signed: p1, p2, p3 = 3 -> 0.75
    // measure_or_proposal: p1 (measure), p2 (proposal) = 2 (p3's is after the spell) -> 0.5
    // hired: p1 = 1 (p3's is after the spell) -> 0.25
    assert_eq!(
        env.rows("service_funnel", &Y),
        json!([
            stage("accepted", 4, json!(1.0)),
            stage("basic_orientation", 2, json!(0.5)),
            stage("pact_signed", 3, json!(0.75)),
            stage("measure_or_proposal", 2, json!(0.5)),
            stage("hired", 1, json!(0.25)),
        ])
    );
    // By region (territory = the acceptance): Lazio p5 only; Lombardia p1, p2, p3:
    // 3, 2 (2/3), 3 (1), 2 (2/3), 1 (1/3).
    let with_region = |region: &str, v: Value| {
        let mut v = v;
        v["region"] = json!(region);
        v
    };
    assert_eq!(
        env.rows("service_funnel", &[Y[0], Y[1], ("by", "region")]),
        json!([
            with_region("Lazio", stage("accepted", 1, json!(1.0))),
            with_region("Lazio", stage("basic_orientation", 0, json!(0.0))),
            with_region("Lazio", stage("pact_signed", 0, json!(0.0))),
            with_region("Lazio", stage("measure_or_proposal", 0, json!(0.0))),
            with_region("Lazio", stage("hired", 0, json!(0.0))),
            with_region("Lombardia", stage("accepted", 3, json!(1.0))),
            with_region("Lombardia", stage("basic_orientation", 2, json!(2.0 / 3.0))),
            with_region("Lombardia", stage("pact_signed", 3, json!(1.0))),
            with_region(
                "Lombardia",
                stage("measure_or_proposal", 2, json!(2.0 / 3.0))
            ),
            with_region("Lombardia", stage("hired", 1, json!(1.0 / 3.0))),
        ])
    );
}
