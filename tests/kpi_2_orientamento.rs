//! Golden fixtures for section 2 (Orientamento di base) of KPIS.md. Each fixture is a small event
//! set whose answer was worked out by hand (the arithmetic is in the comments); it runs through
//! the real ingest and the real engine.

mod common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

/// Six persons, Milano unless said otherwise (RM = Roma, RM-01):
/// p1: applied 2024-12-01 (naspi), accepted 2025-01-10; oriented 2025-02-09 (30 days) and
///     2025-03-01; profiled 2025-02-09; told about the ADR 2025-12-20.
/// p2: applied 2025-01-05 (no naspi, M), accepted 2025-01-15; oriented 2025-01-25 in RM
///     (10 days); profiled 2025-01-25 in RM.
/// p3: applied 2024-05-01 (naspi), accepted 2024-06-01; oriented 2024-07-01 (the spell's first,
///     before the period) and 2025-04-01; profiled 2024-07-01; told about the ADR 2024-07-01.
/// p4: applied 2025-02-01 (naspi), accepted 2025-02-11; oriented 2025-04-02 in RM (50 days);
///     never told about the ADR.
/// p5: applied 2025-01-02 (no naspi), accepted 2025-01-10, oriented 2025-01-20 (10 days),
///     cancelled 2025-05-01; applied again 2025-05-20 (naspi), accepted 2025-06-01, oriented
///     2025-06-21 (20 days into the second spell).
/// p6: applied 2025-07-01 (naspi), never accepted; oriented 2025-08-01 in RM.
fn orientamento() -> Env {
    let env = Env::new();
    let rm = [("province", "RM"), ("cpi_code", "RM-01")];
    let yes = [("naspi", "true")];
    let no = [("naspi", "false")];
    env.load(
        "orientamento.csv",
        &[
            application("a1", "2024-12-01", 1, &yes),
            ev("application_accepted", "acc1", "2025-01-10", Some(1), &[]),
            ev("basic_orientation", "bo1a", "2025-02-09", Some(1), &[]),
            ev("basic_orientation", "bo1b", "2025-03-01", Some(1), &[]),
            ev(
                "qualitative_profiling",
                "qp1",
                "2025-02-09",
                Some(1),
                &[("profiling_index", "0.4")],
            ),
            ev("adr_information", "adr1", "2025-12-20", Some(1), &[]),
            application("a2", "2025-01-05", 2, &[no[0], ("gender", "M")]),
            ev("application_accepted", "acc2", "2025-01-15", Some(2), &[]),
            ev("basic_orientation", "bo2", "2025-01-25", Some(2), &rm),
            ev("qualitative_profiling", "qp2", "2025-01-25", Some(2), &rm),
            application("a3", "2024-05-01", 3, &yes),
            ev("application_accepted", "acc3", "2024-06-01", Some(3), &[]),
            ev("basic_orientation", "bo3a", "2024-07-01", Some(3), &[]),
            ev("basic_orientation", "bo3b", "2025-04-01", Some(3), &[]),
            ev("qualitative_profiling", "qp3", "2024-07-01", Some(3), &[]),
            ev("adr_information", "adr3", "2024-07-01", Some(3), &[]),
            application("a4", "2025-02-01", 4, &yes),
            ev("application_accepted", "acc4", "2025-02-11", Some(4), &[]),
            ev("basic_orientation", "bo4", "2025-04-02", Some(4), &rm),
            application("a5a", "2025-01-02", 5, &no),
            ev("application_accepted", "acc5a", "2025-01-10", Some(5), &[]),
            ev("basic_orientation", "bo5a", "2025-01-20", Some(5), &[]),
            ev(
                "registration_cancelled",
                "c5",
                "2025-05-01",
                Some(5),
                &[("reason", "own_request")],
            ),
            application("a5b", "2025-05-20", 5, &yes),
            ev("application_accepted", "acc5b", "2025-06-01", Some(5), &[]),
            ev("basic_orientation", "bo5b", "2025-06-21", Some(5), &[]),
            application("a6", "2025-07-01", 6, &yes),
            ev("basic_orientation", "bo6", "2025-08-01", Some(6), &rm),
        ],
    );
    env
}

#[test]
fn orientations_and_persons_oriented() {
    let env = orientamento();
    // 2025: bo1a, bo1b, bo2, bo3b, bo4, bo5a, bo5b, bo6 = 8 (bo3a is 2024).
    assert_eq!(env.rows("basic_orientations", &Y), json!([{"value": 8}]));
    // MI: bo1a, bo1b, bo3b, bo5a, bo5b = 5; RM: bo2, bo4, bo6 = 3.
    assert_eq!(
        env.rows("basic_orientations", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 5}, {"province": "RM", "value": 3}])
    );
    // Persons p1..p6 = 6 (p1 and p5 oriented twice, counted once).
    assert_eq!(env.rows("persons_oriented", &Y), json!([{"value": 6}]));
    // MI: p1, p3, p5 = 3; RM: p2, p4, p6 = 3.
    assert_eq!(
        env.rows("persons_oriented", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 3}, {"province": "RM", "value": 3}])
    );
    // Gender from the latest application: p2 is M, the others F.
    assert_eq!(
        env.rows("persons_oriented", &[Y[0], Y[1], ("by", "gender")]),
        json!([{"gender": "F", "value": 5}, {"gender": "M", "value": 1}])
    );
    // First half of 2025: p1 (bo1a, bo1b), p2, p3 (bo3b), p4, p5 (bo5a, bo5b) = 5 persons from
    // 7 orientations; bo6 (August) is out.
    let h1 = [("from", "2025-01-01"), ("to", "2025-06-30")];
    assert_eq!(env.rows("persons_oriented", &h1), json!([{"value": 5}]));
    assert_eq!(env.rows("basic_orientations", &h1), json!([{"value": 7}]));
}

#[test]
fn qualitative_profilings_count() {
    let env = orientamento();
    // 2025: qp1 (MI) and qp2 (RM) = 2; qp3 is 2024.
    assert_eq!(
        env.rows("qualitative_profilings", &Y),
        json!([{"value": 2}])
    );
    assert_eq!(
        env.rows("qualitative_profilings", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 1}, {"province": "RM", "value": 1}])
    );
    assert_eq!(
        env.rows(
            "qualitative_profilings",
            &[("from", "2024-01-01"), ("to", "2024-12-31")]
        ),
        json!([{"value": 1}])
    );
}

#[test]
fn days_to_first_orientation_of_a_spell() {
    let env = orientamento();
    // Spells whose first orientation is in 2025: p1 30 (01-10 -> 02-09), p2 10, p4 50
    // (02-11 -> 04-02), p5 first spell 10, p5 second spell 20 (06-01 -> 06-21). p3's spell had
    // its first orientation in 2024 (bo3b is not the first); p6 has no spell.
    // Sorted 10, 10, 20, 30, 50 -> median 20, n 5.
    assert_eq!(
        env.rows("days_to_orientation_median", &Y),
        json!([{"value": 20.0, "n": 5}])
    );
    // Territory of the orientation: MI p1 30, p5 10, p5 20 -> 20 (n 3); RM p2 10, p4 50 -> 30.
    assert_eq!(
        env.rows(
            "days_to_orientation_median",
            &[Y[0], Y[1], ("by", "province")]
        ),
        json!([
            {"province": "MI", "value": 20.0, "n": 3},
            {"province": "RM", "value": 30.0, "n": 2}
        ])
    );
    // 2024: p3's spell, 2024-06-01 -> 2024-07-01 = 30 days.
    assert_eq!(
        env.rows(
            "days_to_orientation_median",
            &[("from", "2024-01-01"), ("to", "2024-12-31")]
        ),
        json!([{"value": 30.0, "n": 1}])
    );
}

#[test]
fn adr_information_rate_of_naspi_recipients() {
    let env = orientamento();
    // Oriented in 2025 with naspi on the latest application before the first orientation of
    // the period: p1 (ADR 2025-12-20: yes), p3 (ADR 2024-07-01: yes), p4 (no), p6 (no).
    // p2 has no naspi; p5's first 2025 orientation (01-20) falls under a5a (no naspi), even
    // though a5b (naspi) precedes bo5b. -> 2 / 4.
    assert_eq!(
        env.rows("adr_information_rate", &Y),
        json!([{"value": 0.5, "numerator": 2, "denominator": 4}])
    );
    // Territory of the first orientation: MI p1, p3 -> 2/2; RM p4, p6 -> 0/2.
    assert_eq!(
        env.rows("adr_information_rate", &[Y[0], Y[1], ("by", "province")]),
        json!([
            {"province": "MI", "value": 1.0, "numerator": 2, "denominator": 2},
            {"province": "RM", "value": 0.0, "numerator": 0, "denominator": 2}
        ])
    );
    // To 2025-06-30: p1, p3, p4 (p6 oriented in August); p1's ADR (12-20) is after `to`:
    // only p3 -> 1 / 3. Checked as numerator and denominator.
    let r = env.rows(
        "adr_information_rate",
        &[("from", "2025-01-01"), ("to", "2025-06-30")],
    );
    assert_eq!(r[0]["numerator"], json!(1));
    assert_eq!(r[0]["denominator"], json!(3));
    // No orientation in a period: the rate is null.
    assert_eq!(
        env.rows(
            "adr_information_rate",
            &[("from", "2023-01-01"), ("to", "2023-12-31")]
        ),
        json!([{"value": null, "numerator": 0, "denominator": 0}])
    );
}
