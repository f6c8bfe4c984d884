//! Edge cases of the KPI engine, one fixture each, with answers worked out by hand (arithmetic in
//! the comments): Rome dates of UTC instants, same-day events, re-registration, follow-up windows,
//! censoring, empty periods, `as_of`, two breakdowns and multi-valued territorial filters.

mod common;
use common::*;
use serde_json::{Value, json};

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

fn accepted(id: &str, at: &str, who: u32, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    ev("application_accepted", id, at, Some(who), extra)
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

fn pact(id: &str, at: &str, who: u32) -> Vec<(String, String)> {
    ev("pact_signed", id, at, Some(who), &[("pact_id", id)])
}

/// Accepted 2025-01-02, pact `P{who}` signed 2025-01-10 with contact frequency `f`, one review.
fn reviewed_pact(who: u32, f: &str, review: &str) -> Vec<Vec<(String, String)>> {
    let pact = format!("P{who}");
    vec![
        accepted(&format!("a{who}"), "2025-01-02", who, &[]),
        ev(
            "pact_signed",
            &format!("p{who}"),
            "2025-01-10",
            Some(who),
            &[("pact_id", &pact), ("contact_frequency_days", f)],
        ),
        ev(
            "pact_review",
            &format!("r{who}"),
            review,
            Some(who),
            &[("pact_id", &pact), ("review_outcome", "on_track")],
        ),
    ]
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number, got {v}"))
}

fn stage(name: &str, persons: i64, share: Value) -> Value {
    json!({"stage": name, "persons": persons, "share_of_accepted": share})
}

/// Rome is UTC+2 from 2025-03-30 (summer time): 2025-03-31T21:59Z is 23:59 on 31 March in Rome,
/// 2025-03-31T22:30Z is 00:30 on 1 April.
#[test]
fn utc_instant_counts_on_the_rome_date() {
    let env = Env::new();
    env.load(
        "utc.csv",
        &[
            hire("h1", "2025-03-31T21:59:00Z", 1, &[]),
            hire("h2", "2025-03-31T22:30:00Z", 2, &[]),
        ],
    );
    let spring = [("from", "2025-03-01"), ("to", "2025-04-30")];
    assert_eq!(
        env.rows("hires", &[spring[0], spring[1], ("by", "month")]),
        json!([{"month": "2025-03", "value": 1}, {"month": "2025-04", "value": 1}])
    );
    // Up to 31 March only h1 counts; h2 belongs to 1 April.
    assert_eq!(
        env.rows("hires", &[("from", "2025-03-01"), ("to", "2025-03-31")]),
        json!([{"value": 1}])
    );
    assert_eq!(
        env.rows("hires", &[("from", "2025-04-01"), ("to", "2025-04-01")]),
        json!([{"value": 1}])
    );
}

/// p1 applies and is accepted on 2025-01-10: a decision after 0 days.
/// p2 is accepted on 2025-01-10 (MI), cancelled on 2025-03-01 and accepted again the same day in
/// Roma. With plain dates both are midnight, and a spell ends at the first cancellation strictly
/// after its acceptance (the spells view): the cancellation closes the January spell, the new
/// acceptance opens a second spell that stays open.
#[test]
fn same_day_events() {
    let env = Env::new();
    let rm = [("province", "RM"), ("cpi_code", "RM-01")];
    env.load(
        "same_day.csv",
        &[
            application("a1", "2025-01-10", 1, &[]),
            accepted("d1", "2025-01-10", 1, &[]),
            accepted("d2", "2025-01-10", 2, &[]),
            cancelled("x2", "2025-03-01", 2, "own_request"),
            accepted("d2b", "2025-03-01", 2, &rm),
        ],
    );
    // Decisions in 2025 with an application before them: d1 only, 10 Jan - 10 Jan = 0 days.
    assert_eq!(
        env.rows("decision_days_median", &Y),
        json!([{"value": 0.0, "n": 1}])
    );
    assert_eq!(
        env.rows("decisions_within_30d_rate", &Y),
        json!([{"value": 1.0, "numerator": 1, "denominator": 1}])
    );
    // On 2025-03-01 p1 is registered (MI) and p2 is in the new spell, from the Roma acceptance.
    let mar1 = [
        ("from", "2025-01-01"),
        ("to", "2025-03-01"),
        ("by", "province"),
    ];
    assert_eq!(
        env.rows("registered_stock", &mar1),
        json!([{"province": "MI", "value": 1}, {"province": "RM", "value": 1}])
    );
    // The day before, p2 was in the January spell (MI): MI 2.
    assert_eq!(
        env.rows(
            "registered_stock",
            &[
                ("from", "2025-01-01"),
                ("to", "2025-02-28"),
                ("by", "province")
            ]
        ),
        json!([{"province": "MI", "value": 2}])
    );
    // Spells starting in 2025: p1, p2 (January), p2 (March) = 3 accepted, no other stage.
    assert_eq!(
        env.rows("service_funnel", &Y),
        json!([
            stage("accepted", 3, json!(1.0)),
            stage("basic_orientation", 0, json!(0.0)),
            stage("pact_signed", 0, json!(0.0)),
            stage("measure_or_proposal", 0, json!(0.0)),
            stage("hired", 0, json!(0.0)),
        ])
    );
}

/// p1: accepted 2025-01-10, basic_orientation 01-20, cancelled 03-01 (own_request); registers
/// again: accepted 2025-06-01, pact 06-10, hired 07-01. Two spells: [01-10, 03-01] and
/// [06-01, open).
#[test]
fn registration_again_after_a_cancellation() {
    let env = Env::new();
    env.load(
        "again.csv",
        &[
            accepted("d1", "2025-01-10", 1, &[]),
            ev("basic_orientation", "o1", "2025-01-20", Some(1), &[]),
            cancelled("x1", "2025-03-01", 1, "own_request"),
            accepted("d1b", "2025-06-01", 1, &[]),
            pact("p1", "2025-06-10", 1),
            hire("h1", "2025-07-01", 1, &[]),
        ],
    );
    let at = |to: &'static str| [("from", "2025-01-01"), ("to", to)];
    // 1 Feb: first spell open -> 1. 1 Apr: between spells -> 0. 1 Jun: second spell -> 1.
    assert_eq!(
        env.rows("registered_stock", &at("2025-02-01")),
        json!([{"value": 1}])
    );
    assert_eq!(
        env.rows("registered_stock", &at("2025-04-01")),
        json!([{"value": 0}])
    );
    assert_eq!(
        env.rows("registered_stock", &at("2025-06-01")),
        json!([{"value": 1}])
    );
    // Funnel, one row per spell: accepted 2; basic_orientation 1 (first spell) = 1/2; pact 1
    // (second spell) = 1/2; measure/proposal 0; hired 1 (second spell) = 1/2.
    assert_eq!(
        env.rows("service_funnel", &Y),
        json!([
            stage("accepted", 2, json!(1.0)),
            stage("basic_orientation", 1, json!(0.5)),
            stage("pact_signed", 1, json!(0.5)),
            stage("measure_or_proposal", 0, json!(0.0)),
            stage("hired", 1, json!(0.5)),
        ])
    );
}

/// Everyone accepted 2024-12-01.
/// p1: pact 2025-01-01, hired 2025-04-01: Jan 1 -> Feb 1 31, -> Mar 1 59, -> Apr 1 90 days.
/// p2: pact 2025-01-01, hired 2025-04-02: 91 days, one day outside the 90-day window.
/// p3: pact 2025-01-02, no hire: 2025-01-02 + 90 = 2025-04-02 = obs_end -> full follow-up.
/// p4: pact 2025-01-03, no hire: + 90 = 2025-04-03 > obs_end -> not yet in the denominator.
/// obs_end = 2025-04-02 (p2's hire, the latest event).
#[test]
fn hire_just_outside_the_follow_up_window() {
    let env = Env::new();
    env.load(
        "window.csv",
        &[
            accepted("d1", "2024-12-01", 1, &[]),
            accepted("d2", "2024-12-01", 2, &[]),
            accepted("d3", "2024-12-01", 3, &[]),
            accepted("d4", "2024-12-01", 4, &[]),
            pact("p1", "2025-01-01", 1),
            pact("p2", "2025-01-01", 2),
            pact("p3", "2025-01-02", 3),
            pact("p4", "2025-01-03", 4),
            hire("h1", "2025-04-01", 1, &[]),
            hire("h2", "2025-04-02", 2, &[]),
        ],
    );
    // Denominator p1, p2, p3; numerator p1 (day 90) -> 1/3.
    assert_eq!(
        env.rows("placement_rate_90", &Y),
        json!([{"value": 1.0 / 3.0, "numerator": 1, "denominator": 3}])
    );
    // Pacts of 1 January only: p1 (day 90: placed), p2 (day 91: not) -> 1/2.
    assert_eq!(
        env.rows(
            "placement_rate_90",
            &[("from", "2025-01-01"), ("to", "2025-01-01")]
        ),
        json!([{"value": 0.5, "numerator": 1, "denominator": 2}])
    );
}

/// Six persons, accepted 2024-12-01, pact 2025-01-01; obs_end 2025-02-10 (p5's orientation).
/// p1: hired 01-11                                        -> 10 days, placed
/// p2: cancelled own_request 01-11                         -> 10 days, censored
/// p6: cancelled own_request 01-16 and hired the same day  -> 15 days, placed (the hire is seen
///     within the spell)
/// p4: cancelled 'moved' 01-21, hired 01-25 after it       -> 20 days, censored at the cancellation
/// p3: cancelled 'hired' 01-21, hired 01-31                -> 30 days, placed (a cancellation for
///     'hired' does not censor)
/// p5: nothing                                             -> 40 days, censored at obs_end
#[test]
fn censoring_in_the_survival_curve() {
    let env = Env::new();
    let mut rows = Vec::new();
    for p in 1..=6 {
        rows.push(accepted(&format!("d{p}"), "2024-12-01", p, &[]));
        rows.push(pact(&format!("p{p}"), "2025-01-01", p));
    }
    rows.extend([
        hire("h1", "2025-01-11", 1, &[]),
        cancelled("x2", "2025-01-11", 2, "own_request"),
        cancelled("x6", "2025-01-16", 6, "own_request"),
        hire("h6", "2025-01-16", 6, &[]),
        cancelled("x4", "2025-01-21", 4, "moved"),
        hire("h4", "2025-01-25", 4, &[]),
        cancelled("x3", "2025-01-21", 3, "hired"),
        hire("h3", "2025-01-31", 3, &[]),
        ev("basic_orientation", "o5", "2025-02-10", Some(5), &[]),
    ]);
    env.load("censoring.csv", &rows);
    let r = env.kpi("time_to_placement", &Y);
    // Kaplan-Meier, n = 6:
    //   day 10: at risk 6 (p2, censored that day, still counts), 1 placed, 1 censored
    //           S = 1 - 1/6 = 5/6 = 0.833333
    //   day 15: at risk 6 - 2 = 4, 1 placed: S = 5/6 * 3/4 = 5/8 = 0.625
    //   day 20: at risk 3, 1 censored: S = 0.625
    //   day 30: at risk 2, 1 placed: S = 0.625 * 1/2 = 0.3125
    //   day 40: at risk 1, 1 censored: S = 0.3125
    // Median: first S <= 0.5 is day 30 (0.3125) -> 30.
    let expected = [
        (10, 6, 1, 1, 5.0 / 6.0),
        (15, 4, 1, 0, 0.625),
        (20, 3, 0, 1, 0.625),
        (30, 2, 1, 0, 0.3125),
        (40, 1, 0, 1, 0.3125),
    ];
    let got = r["rows"].as_array().expect("rows");
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (row, &(day, at_risk, events, censored, s)) in got.iter().zip(expected.iter()) {
        assert_eq!(
            [
                &row["day"],
                &row["at_risk"],
                &row["events"],
                &row["censored"]
            ],
            [
                &json!(day),
                &json!(at_risk),
                &json!(events),
                &json!(censored)
            ],
            "{row}"
        );
        assert!((num(&row["survival"]) - s).abs() < 1e-12, "{row}");
    }
    assert_eq!(r["median_days"], json!(30.0));
    // Band at day 15: Greenwood sum = 1/(6*5) + 1/(4*3) = 0.0333333 + 0.0833333 = 0.1166667;
    //   ln(5/8) = -0.4700036; se = sqrt(0.1166667) / 0.4700036 = 0.3415650 / 0.4700036
    //   = 0.7267285; z*se = 1.959964 * 0.7267285 = 1.4243617; e^+ = 4.15557, e^- = 0.240641;
    //   lower = 0.625^4.15557 = 0.141853; upper = 0.625^0.240641 = 0.893051.
    assert!(
        (num(&got[1]["lower"]) - 0.141853).abs() < 1e-6,
        "{}",
        got[1]
    );
    assert!(
        (num(&got[1]["upper"]) - 0.893051).abs() < 1e-6,
        "{}",
        got[1]
    );
}

/// Data only in 2025; the period 2023 is empty.
#[test]
fn an_empty_period_gives_zero_and_null_not_nan() {
    let env = Env::new();
    env.load(
        "some.csv",
        &[
            accepted("d1", "2025-01-10", 1, &[]),
            pact("p1", "2025-01-20", 1),
            hire("h1", "2025-03-01", 1, &[]),
        ],
    );
    let y23 = [("from", "2023-01-01"), ("to", "2023-12-31")];
    assert_eq!(env.rows("hires", &y23), json!([{"value": 0}]));
    assert_eq!(env.rows("persons_hired", &y23), json!([{"value": 0}]));
    for rate in [
        "stable_hire_rate",
        "placement_rate_90",
        "placement_rate_180",
        "placement_rate_365",
        "retention_180",
    ] {
        assert_eq!(
            env.rows(rate, &y23),
            json!([{"value": null, "numerator": 0, "denominator": 0}]),
            "{rate}"
        );
    }
    // With a breakdown there is no group at all.
    assert_eq!(
        env.rows("hires", &[y23[0], y23[1], ("by", "region")]),
        json!([])
    );
    // The survival curve is empty and its median null.
    let r = env.kpi("time_to_placement", &y23);
    assert_eq!(r["rows"], json!([]));
    assert_eq!(r["median_days"], Value::Null);
    // The funnel: every stage 0 persons, shares null (0 accepted).
    assert_eq!(
        env.rows("service_funnel", &y23),
        json!([
            stage("accepted", 0, Value::Null),
            stage("basic_orientation", 0, Value::Null),
            stage("pact_signed", 0, Value::Null),
            stage("measure_or_proposal", 0, Value::Null),
            stage("hired", 0, Value::Null),
        ])
    );
    let text = env.kpi("service_funnel", &y23).to_string();
    assert!(!text.contains("NaN"), "{text}");
}

/// Batch 1 (two hires in March/April) is published; a late batch 2 adds a hire dated February.
/// The figure published after batch 1, asked again with that as_of, must not move.
#[test]
fn as_of_before_a_late_batch() {
    let env = Env::new();
    env.load(
        "batch1.csv",
        &[
            hire("h1", "2025-03-01", 1, &[]),
            hire("h2", "2025-04-01", 2, &[]),
        ],
    );
    let first = env.kpi("hires", &Y);
    assert_eq!(first["rows"], json!([{"value": 2}]));
    let t = first["params"]["as_of"].as_str().expect("as_of").to_owned();
    std::thread::sleep(std::time::Duration::from_millis(20));
    env.load("batch2.csv", &[hire("h3", "2025-02-15", 3, &[])]);
    // With as_of = T: batch 1 only -> 2, same rows as published.
    let again = env.kpi("hires", &[Y[0], Y[1], ("as_of", &t)]);
    assert_eq!(again["rows"], first["rows"]);
    assert_eq!(
        again["params"]["data_version"],
        first["params"]["data_version"]
    );
    // Without as_of: h1, h2, h3 -> 3; by month Feb 1, Mar 1, Apr 1.
    assert_eq!(env.rows("hires", &Y), json!([{"value": 3}]));
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "month"), ("as_of", &t)]),
        json!([{"month": "2025-03", "value": 1}, {"month": "2025-04", "value": 1}])
    );
}

/// Hires in 2025 (Milano): p1 (F) 01-15 open_ended, p2 (M) 01-20 fixed_term 12 months,
/// p3 (F) 02-10 fixed_term 6 months, p1 again 02-20 open_ended. Applications in 2024.
#[test]
fn two_breakdowns() {
    let env = Env::new();
    let ft = |m: &'static str| [("contract_code", "A.02.00"), ("contract_months", m)];
    env.load(
        "two.csv",
        &[
            application("a1", "2024-06-01", 1, &[]),
            application("a2", "2024-06-01", 2, &[("gender", "M")]),
            application("a3", "2024-06-01", 3, &[]),
            hire("h1", "2025-01-15", 1, &[]),
            hire("h2", "2025-01-20", 2, &ft("12")),
            hire("h3", "2025-02-10", 3, &ft("6")),
            hire("h4", "2025-02-20", 1, &[]),
        ],
    );
    // month x contract_class: 2025-01 fixed_term (h2), open_ended (h1); 2025-02 fixed_term (h3),
    // open_ended (h4).
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "month,contract_class")]),
        json!([
            {"month": "2025-01", "contract_class": "fixed_term", "value": 1},
            {"month": "2025-01", "contract_class": "open_ended", "value": 1},
            {"month": "2025-02", "contract_class": "fixed_term", "value": 1},
            {"month": "2025-02", "contract_class": "open_ended", "value": 1}
        ])
    );
    // gender x contract_class: F fixed_term h3, F open_ended h1 + h4 = 2, M fixed_term h2.
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("by", "gender,contract_class")]),
        json!([
            {"gender": "F", "contract_class": "fixed_term", "value": 1},
            {"gender": "F", "contract_class": "open_ended", "value": 2},
            {"gender": "M", "contract_class": "fixed_term", "value": 1}
        ])
    );
    // persons_hired, quarter x gender: 2025-Q1 F p1, p3 = 2; M p2 = 1.
    assert_eq!(
        env.rows("persons_hired", &[Y[0], Y[1], ("by", "quarter,gender")]),
        json!([
            {"quarter": "2025-Q1", "gender": "F", "value": 2},
            {"quarter": "2025-Q1", "gender": "M", "value": 1}
        ])
    );
    // All four stable (A.01.00, or A.02 with 12 and 6 >= 6 months): by month x gender
    // 2025-01 F 1/1, 2025-01 M 1/1, 2025-02 F 2/2.
    assert_eq!(
        env.rows("stable_hire_rate", &[Y[0], Y[1], ("by", "month,gender")]),
        json!([
            {"month": "2025-01", "gender": "F", "value": 1.0, "numerator": 1, "denominator": 1},
            {"month": "2025-01", "gender": "M", "value": 1.0, "numerator": 1, "denominator": 1},
            {"month": "2025-02", "gender": "F", "value": 1.0, "numerator": 2, "denominator": 2}
        ])
    );
}

/// One hire in each of MI (Lombardia), BG (Lombardia), RM (Lazio, ISTAT 12), NA (Campania),
/// TO (Piemonte).
#[test]
fn territorial_filters_with_several_values() {
    let env = Env::new();
    let mut rows = Vec::new();
    for (i, p) in ["MI", "BG", "RM", "NA", "TO"].iter().enumerate() {
        let cpi = format!("{p}-01");
        rows.push(hire(
            &format!("h{i}"),
            "2025-05-01",
            i as u32 + 1,
            &[("province", p), ("cpi_code", &cpi)],
        ));
    }
    env.load("territories.csv", &rows);
    // province=MI,RM -> h(MI), h(RM) = 2.
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("province", "MI,RM")]),
        json!([{"value": 2}])
    );
    // region=Lombardia,12 (by name and by ISTAT code) -> MI, BG, RM = 3.
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("region", "Lombardia,12")]),
        json!([{"value": 3}])
    );
    assert_eq!(
        env.rows(
            "hires",
            &[Y[0], Y[1], ("region", "Lombardia,12"), ("by", "province")]
        ),
        json!([
            {"province": "BG", "value": 1},
            {"province": "MI", "value": 1},
            {"province": "RM", "value": 1}
        ])
    );
    // Both filters together: provinces MI, RM within Lombardia/Lazio -> 2; a CPI list too.
    assert_eq!(
        env.rows(
            "persons_hired",
            &[
                Y[0],
                Y[1],
                ("region", "Lombardia,12"),
                ("province", "MI,RM")
            ]
        ),
        json!([{"value": 2}])
    );
    assert_eq!(
        env.rows("hires", &[Y[0], Y[1], ("cpi", "NA-01,TO-01")]),
        json!([{"value": 2}])
    );
}

/// overdue_reviews only reads the spell open at `to`: contacts, pacts and frequencies of an
/// earlier spell of the same person never count. Every person has a first spell from
/// 2024-01-10 (pact 2024-02-01 with a frequency of 30 days, review 2024-06-15) cancelled on
/// 2024-07-01, and a second spell from 2025-03-01, still open at 2025-12-31:
/// - q1: no pact in the second spell -> not counted (the old pact would be overdue);
/// - q2: pact 2025-03-10 with no frequency -> not counted (the old 30 days would make it
///   overdue: 296 days);
/// - q3: pact 2025-03-10 with 400 days: 296 <= 400 -> not overdue (the old 30 would);
/// - q4: pact 2025-03-10 with 30 days, review 2025-12-01: 30 > 30 is false -> not overdue;
/// - q5: pact 2025-03-10 with 30 days, review 2025-11-01: 60 > 30 -> overdue.
///
/// So 1 at 2025-12-31. At 2024-06-30 (first spells open, last contact the 2024-06-15 review,
/// 15 days <= 30) none is overdue; at 2024-06-20 neither (5 days); at 2024-06-14 all five are
/// (last contact the pact of 2024-02-01: 134 days > 30).
#[test]
fn overdue_reviews_ignore_earlier_spells() {
    let env = Env::new();
    let mut rows = Vec::new();
    for who in 1..=5u32 {
        let n = |s: &str| format!("{s}{who}");
        rows.push(accepted(&n("a"), "2024-01-10", who, &[]));
        rows.push(ev(
            "pact_signed",
            &n("p"),
            "2024-02-01",
            Some(who),
            &[("pact_id", &n("P")), ("contact_frequency_days", "30")],
        ));
        rows.push(ev(
            "pact_review",
            &n("r"),
            "2024-06-15",
            Some(who),
            &[("pact_id", &n("P")), ("review_outcome", "on_track")],
        ));
        rows.push(cancelled(&n("c"), "2024-07-01", who, "own_request"));
        rows.push(accepted(&n("b"), "2025-03-01", who, &[]));
        let freq = match who {
            2 => None,
            3 => Some("400"),
            4 | 5 => Some("30"),
            _ => continue,
        };
        let mut f: Vec<(&str, &str)> = vec![("pact_id", "Q")];
        if let Some(x) = freq {
            f.push(("contact_frequency_days", x));
        }
        let q = n("Q");
        f[0] = ("pact_id", &q);
        rows.push(ev("pact_signed", &n("s"), "2025-03-10", Some(who), &f));
        let review = match who {
            4 => Some("2025-12-01"),
            5 => Some("2025-11-01"),
            _ => None,
        };
        if let Some(day) = review {
            rows.push(ev(
                "pact_review",
                &n("v"),
                day,
                Some(who),
                &[("pact_id", &q), ("review_outcome", "on_track")],
            ));
        }
    }
    env.load("overdue.csv", &rows);
    assert_eq!(env.rows("overdue_reviews", &Y), json!([{"value": 1}]));
    for to in ["2024-06-30", "2024-06-20"] {
        assert_eq!(
            env.rows("overdue_reviews", &[("from", "2024-01-01"), ("to", to)]),
            json!([{"value": 0}]),
            "{to}"
        );
    }
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[("from", "2024-01-01"), ("to", "2024-06-14")]
        ),
        json!([{"value": 5}])
    );
}

/// overdue_reviews reads only the reviews of the last F_max days before `to` (F_max: the longest
/// frequency given on any pact). Every answer must be what a scan of all reviews gives, at the
/// window's edge too, and when a later pact widens the window.
#[test]
fn overdue_reviews_read_only_recent_reviews() {
    // to = 2025-12-31. Everyone: accepted 2025-01-02, pact signed 2025-01-10 (355 days before
    // `to`, older than any frequency here), one review on the day below.
    //   person  F   review      days before to   overdue (days > F)
    //   1       30  2025-11-20  41               yes
    //   2       90  2025-10-15  77               no
    //   3       90  2025-09-01  121              yes (the review is outside the window: the pact,
    //                                                 355 days, is the last contact seen; same answer)
    //   4       90  2025-10-02  90 (= F_max)     no  (the window's first day must be read)
    //   5       90  2025-10-01  91               yes
    // F_max = 90: the window is 2025-10-02 .. 2025-12-31. Overdue: 1, 3, 5 -> 3.
    let people = [
        (1, "30", "2025-11-20"),
        (2, "90", "2025-10-15"),
        (3, "90", "2025-09-01"),
        (4, "90", "2025-10-02"),
        (5, "90", "2025-10-01"),
    ];
    let mut rows: Vec<_> = people
        .into_iter()
        .flat_map(|(who, f, review)| reviewed_pact(who, f, review))
        .collect();
    let env = Env::new();
    env.load("recent.csv", &rows);
    assert_eq!(env.rows("overdue_reviews", &Y), json!([{"value": 3}]));
    // Person 6: F 30, review 2025-12-10 (21 days: not overdue), and a pact update dated after
    // `to` with F 365. F_max becomes 365 (the window opens 2024-12-31), the answer stays 3:
    // the update is after `to`, so person 6's F at `to` is still 30.
    rows.extend(reviewed_pact(6, "30", "2025-12-10"));
    rows.push(ev(
        "pact_updated",
        "u6",
        "2026-02-01",
        Some(6),
        &[("pact_id", "P6"), ("contact_frequency_days", "365")],
    ));
    let env = Env::new();
    env.load("recent.csv", &rows);
    assert_eq!(env.rows("overdue_reviews", &Y), json!([{"value": 3}]));
    // Across a new year. At 2026-01-31 (F_max 365, window from 2025-01-31): person 1's review
    // 2025-11-20 is 72 days old (> 30: yes), 2's 10-15 108 (> 90: yes), 3's 09-01 152 (yes),
    // 4's 10-02 121 (yes), 5's 10-01 122 (yes), 6's 12-10 52 (> 30: yes) -> 6.
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[("from", "2026-01-01"), ("to", "2026-01-31")]
        ),
        json!([{"value": 6}])
    );
    // At 2025-11-30 (F_max 365): person 1's review 11-20 is 10 days old (no), person 2's 46
    // (no), 3's 90 (no), 4's 59 (no), 5's 60 (no); person 6's pact 324 days > 30 (yes) -> 1.
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[("from", "2025-01-01"), ("to", "2025-11-30")]
        ),
        json!([{"value": 1}])
    );
}

/// A server keeps each shared view in `views/` and a restarted one reads it back instead of
/// rebuilding it. Proof that it reads: a copy doctored to hold no spell gives a registered stock
/// of 0, which the events cannot give. An unreadable copy is rebuilt; without persistence (the
/// command line) copies are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_views_are_read_back_after_a_restart() {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use mirato::query::{Engine, RawParams};

    // Persons 1-3 accepted in 2025 and never cancelled: 3 registered at 31/12/2025.
    let env = Env::new();
    let rows: Vec<_> = (1..=3u32)
        .map(|who| accepted(&format!("a{who}"), "2025-02-01", who, &[]))
        .collect();
    env.load("stock.csv", &rows);
    let raw = RawParams {
        from: Some("2025-01-01".into()),
        to: Some("2025-12-31".into()),
        ..RawParams::default()
    };
    let stock = |persist: bool| {
        let (data, raw) = (env.data.clone(), raw.clone());
        async move {
            let engine = Engine::open(&data).unwrap();
            engine.persist_views(persist);
            let r = engine.run_raw("registered_stock", &raw).await.unwrap();
            r.rows[0]["value"].as_i64().unwrap()
        }
    };
    assert_eq!(stock(true).await, 3);

    // The copy of `spells` appears (written off the query's path).
    let find = || -> Option<std::path::PathBuf> {
        let root = env.data.join("views");
        for d in std::fs::read_dir(root).ok()?.flatten() {
            for f in std::fs::read_dir(d.path()).ok()?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("spells-") && name.ends_with(".parquet") {
                    return Some(f.path());
                }
            }
        }
        None
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let copy = loop {
        if let Some(p) = find() {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stored spells view"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // A restarted engine reads it: the same answer.
    assert_eq!(stock(true).await, 3);

    // Doctored: the same schema, no rows.
    let schema = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&copy).unwrap())
        .unwrap()
        .schema()
        .clone();
    let w = ArrowWriter::try_new(std::fs::File::create(&copy).unwrap(), schema, None).unwrap();
    w.close().unwrap();
    assert_eq!(stock(true).await, 0, "the stored copy was not read");
    // The command line computes.
    assert_eq!(stock(false).await, 3);
    // Unreadable: rebuilt.
    std::fs::write(&copy, b"not parquet").unwrap();
    assert_eq!(stock(true).await, 3);
}

/// The review window across a new year: a December review seen from January. F_max 60, `to`
/// 2026-01-31: the window starts 2025-12-02, so the months read are 2025-12 and 2026-01.
#[test]
fn overdue_reviews_window_across_a_new_year() {
    // Person 1: F 60, review 2025-12-20, 42 days before `to` (<= 60: not overdue; only the
    //   December partition, in the previous year, holds that review).
    // Person 2: F 60, review 2025-11-15, 77 days (> 60: overdue; outside the window, and the
    //   pact of 2025-01-10 is older still).
    // -> 1.
    let mut rows = reviewed_pact(1, "60", "2025-12-20");
    rows.extend(reviewed_pact(2, "60", "2025-11-15"));
    let env = Env::new();
    env.load("newyear.csv", &rows);
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[("from", "2026-01-01"), ("to", "2026-01-31")]
        ),
        json!([{"value": 1}])
    );
}

/// Pact events of one person on the same day at different instants: the latest frequency and
/// the latest pact are those of the later instant, and an update without a frequency is still a
/// contact.
#[test]
fn overdue_reviews_same_day_pact_events() {
    // to = 2025-12-31. Person 1: accepted 2025-01-02; pact signed 2025-06-01 in Milano with F 30;
    // updated 2025-06-01 at 18:00 with F 365 (the later instant: F = 365); no review.
    //   last contact 2025-06-01, 213 days before `to`: 213 > 365? no -> not overdue.
    // Person 2: the same two events in the other order of instants (F 365 at 09:00, F 30 at
    // 18:00): F = 30, 213 > 30 -> overdue.
    // Person 3: pact signed 2025-06-01 with F 30 at 09:00; an update without a frequency on
    // 2025-12-20 at 10:00 (a contact: 11 days before `to`) -> not overdue, F stays 30.
    let day = |h: &str| format!("2025-06-01T{h}:00:00+02:00");
    let pact = |who: u32, id: &str, at: &str, kind: &str, f: Option<&str>| {
        let mut extra = vec![("pact_id", "P")];
        if let Some(f) = f {
            extra.push(("contact_frequency_days", f));
        }
        ev(kind, id, at, Some(who), &extra)
    };
    let env = Env::new();
    env.load(
        "same_day.csv",
        &[
            accepted("a1", "2025-01-02", 1, &[]),
            pact(1, "s1", &day("09"), "pact_signed", Some("30")),
            pact(1, "u1", &day("18"), "pact_updated", Some("365")),
            accepted("a2", "2025-01-02", 2, &[]),
            pact(2, "s2", &day("09"), "pact_signed", Some("365")),
            pact(2, "u2", &day("18"), "pact_updated", Some("30")),
            accepted("a3", "2025-01-02", 3, &[]),
            pact(3, "s3", &day("09"), "pact_signed", Some("30")),
            pact(3, "u3", "2025-12-20T10:00:00+01:00", "pact_updated", None),
        ],
    );
    assert_eq!(env.rows("overdue_reviews", &Y), json!([{"value": 1}]));
    // On 2025-06-01 itself nobody is overdue (0 days since the pact).
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[("from", "2025-06-01"), ("to", "2025-06-01")]
        ),
        json!([{"value": 0}])
    );
    // On 2025-08-01 (61 days): person 2 (F 30) and person 3 (F 30, no contact since) -> 2.
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[("from", "2025-08-01"), ("to", "2025-08-01")]
        ),
        json!([{"value": 2}])
    );
}
