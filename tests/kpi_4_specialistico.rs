//! Golden fixtures for section 4 (Orientamento specialistico) of KPIS.md. Each fixture is a small
//! event set whose answer was worked out by hand (the arithmetic is in the comments); it runs
//! through the real ingest and the real engine.

mod common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

/// Three persons, Milano unless said otherwise:
/// p1 (F, applied 2025-01-05): specialist s1 2025-02-01 (individual), s2 2025-03-01 (group);
///     assessment k1 2025-03-10 with gap; referral r1 2025-04-01 to training
/// p2 (M, applied 2025-01-05, Roma RM-01): specialist s3 2025-05-01; assessment k2 2025-05-10
///     without gap; referrals r2 2025-05-20 to social_services and r3 2025-06-01 to training
/// p3 (no application): specialist s4 2024-12-15 and assessment k4 2024-12-20 with gap (both
///     before the period); assessment k3 2025-06-10 with gap
fn specialistico() -> Env {
    let env = Env::new();
    let rm = [("province", "RM"), ("cpi_code", "RM-01")];
    let with_rm = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = extra.to_vec();
        v.extend_from_slice(&rm);
        v
    };
    env.load(
        "specialistico.csv",
        &[
            application("a1", "2025-01-05", 1, &[]),
            ev(
                "specialist_orientation",
                "s1",
                "2025-02-01",
                Some(1),
                &[("group", "false")],
            ),
            ev(
                "specialist_orientation",
                "s2",
                "2025-03-01",
                Some(1),
                &[("group", "true")],
            ),
            ev(
                "skills_assessment",
                "k1",
                "2025-03-10",
                Some(1),
                &[("skills_gap", "true")],
            ),
            ev(
                "referral",
                "r1",
                "2025-04-01",
                Some(1),
                &[("to_service", "training")],
            ),
            application("a2", "2025-01-05", 2, &with_rm(&[("gender", "M")])),
            ev(
                "specialist_orientation",
                "s3",
                "2025-05-01",
                Some(2),
                &with_rm(&[("group", "false")]),
            ),
            ev(
                "skills_assessment",
                "k2",
                "2025-05-10",
                Some(2),
                &with_rm(&[("skills_gap", "false")]),
            ),
            ev(
                "referral",
                "r2",
                "2025-05-20",
                Some(2),
                &with_rm(&[("to_service", "social_services")]),
            ),
            ev(
                "referral",
                "r3",
                "2025-06-01",
                Some(2),
                &with_rm(&[("to_service", "training")]),
            ),
            ev(
                "specialist_orientation",
                "s4",
                "2024-12-15",
                Some(3),
                &[("group", "false")],
            ),
            ev(
                "skills_assessment",
                "k4",
                "2024-12-20",
                Some(3),
                &[("skills_gap", "true")],
            ),
            ev(
                "skills_assessment",
                "k3",
                "2025-06-10",
                Some(3),
                &[("skills_gap", "true")],
            ),
        ],
    );
    env
}

#[test]
fn specialist_sessions_counts_every_session() {
    let env = specialistico();
    // 2025: s1, s2 (group sessions count too), s3 = 3; s4 is 2024.
    assert_eq!(env.rows("specialist_sessions", &Y), json!([{"value": 3}]));
    // By province: MI s1, s2 = 2; RM s3 = 1.
    assert_eq!(
        env.rows("specialist_sessions", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 2}, {"province": "RM", "value": 1}])
    );
    // By gender from the latest application: p1 F (s1, s2), p2 M (s3).
    assert_eq!(
        env.rows("specialist_sessions", &[Y[0], Y[1], ("by", "gender")]),
        json!([{"gender": "F", "value": 2}, {"gender": "M", "value": 1}])
    );
    // Whole of 2024: only s4.
    assert_eq!(
        env.rows(
            "specialist_sessions",
            &[("from", "2024-01-01"), ("to", "2024-12-31")]
        ),
        json!([{"value": 1}])
    );
}

#[test]
fn skills_assessments_and_gap_rate() {
    let env = specialistico();
    // 2025: k1, k2, k3 = 3 (k4 is 2024).
    assert_eq!(env.rows("skills_assessments", &Y), json!([{"value": 3}]));
    // With gap: k1, k3 of k1, k2, k3 -> 2 / 3.
    assert_eq!(
        env.rows("skills_gap_rate", &Y),
        json!([{"value": 2.0 / 3.0, "numerator": 2, "denominator": 3}])
    );
    // By region: Lazio k2 (no gap) 0 / 1; Lombardia k1, k3 2 / 2.
    assert_eq!(
        env.rows("skills_gap_rate", &[Y[0], Y[1], ("by", "region")]),
        json!([
            {"region": "Lazio", "value": 0.0, "numerator": 0, "denominator": 1},
            {"region": "Lombardia", "value": 1.0, "numerator": 2, "denominator": 2}
        ])
    );
    // A period with no assessment: the rate is null.
    assert_eq!(
        env.rows(
            "skills_gap_rate",
            &[("from", "2025-07-01"), ("to", "2025-12-31")]
        ),
        json!([{"value": null, "numerator": 0, "denominator": 0}])
    );
}

#[test]
fn referrals_by_service() {
    let env = specialistico();
    // 2025: r1, r2, r3 = 3.
    assert_eq!(env.rows("referrals", &Y), json!([{"value": 3}]));
    // By to_service: social_services r2 = 1; training r1, r3 = 2.
    assert_eq!(
        env.rows("referrals", &[Y[0], Y[1], ("by", "to_service")]),
        json!([
            {"to_service": "social_services", "value": 1},
            {"to_service": "training", "value": 2}
        ])
    );
    // Milano only: r1 (training).
    assert_eq!(
        env.rows(
            "referrals",
            &[Y[0], Y[1], ("by", "to_service"), ("province", "MI")]
        ),
        json!([{"to_service": "training", "value": 1}])
    );
}
