//! Golden fixtures for section 1 (Iscrizione) of KPIS.md. Each fixture is a small event set whose
//! answer was worked out by hand (the arithmetic is in the comments); it runs through the real
//! ingest and the real engine.

mod common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

/// Five persons in 2025, Milano unless said otherwise:
/// p1: applied 2025-01-10, accepted 2025-01-20 (10 days)
/// p2: applied 2025-02-01, pre-rejected 2025-02-15 (documents_incomplete), accepted 2025-03-15
///     (42 days), cancelled 2025-11-30 (own_request)
/// p3: applied 2025-03-01 in Roma (RM-01), rejected 2025-03-31 (30 days, requirements_missing)
/// p4: applied 2025-12-01, no decision yet (pending 30 days at 31/12: not overdue)
/// p5: applied 2024-11-01, no decision (pending 60 days at 31/12: overdue)
/// p6: applied 2024-12-20, accepted 2025-01-05 (16 days; the decision is in 2025)
fn iscrizione() -> Env {
    let env = Env::new();
    let rm = [("province", "RM"), ("cpi_code", "RM-01")];
    env.load(
        "iscrizione.csv",
        &[
            application("a1", "2025-01-10", 1, &[]),
            ev("application_accepted", "d1", "2025-01-20", Some(1), &[]),
            application("a2", "2025-02-01", 2, &[("gender", "M")]),
            ev(
                "application_pre_rejected",
                "pr2",
                "2025-02-15",
                Some(2),
                &[("reason", "documents_incomplete")],
            ),
            ev("application_accepted", "d2", "2025-03-15", Some(2), &[]),
            ev(
                "registration_cancelled",
                "c2",
                "2025-11-30",
                Some(2),
                &[("reason", "own_request")],
            ),
            application("a3", "2025-03-01", 3, &rm),
            ev(
                "application_rejected",
                "d3",
                "2025-03-31",
                Some(3),
                &[("reason", "requirements_missing"), rm[0], rm[1]],
            ),
            application("a4", "2025-12-01", 4, &[]),
            application("a5", "2024-11-01", 5, &[]),
            application("a6", "2024-12-20", 6, &[]),
            ev("application_accepted", "d6", "2025-01-05", Some(6), &[]),
        ],
    );
    env
}

#[test]
fn counts_of_section_1() {
    let env = iscrizione();
    // 2025 applications: a1, a2, a3, a4 = 4 (a5, a6 are 2024).
    assert_eq!(env.rows("applications_received", &Y), json!([{"value": 4}]));
    // Accepted in 2025: d1, d2, d6 = 3.
    assert_eq!(env.rows("applications_accepted", &Y), json!([{"value": 3}]));
    assert_eq!(
        env.rows("applications_pre_rejected", &[Y[0], Y[1], ("by", "reason")]),
        json!([{"reason": "documents_incomplete", "value": 1}])
    );
    assert_eq!(
        env.rows("applications_rejected", &[Y[0], Y[1], ("by", "reason")]),
        json!([{"reason": "requirements_missing", "value": 1}])
    );
    assert_eq!(
        env.rows("cancellations", &[Y[0], Y[1], ("by", "reason")]),
        json!([{"reason": "own_request", "value": 1}])
    );
}

#[test]
fn acceptance_rate_and_decision_times() {
    let env = iscrizione();
    // Decisions in 2025: d1 (acc), d2 (acc), d3 (rej), d6 (acc): 3 / 4 = 0.75.
    assert_eq!(
        env.rows("acceptance_rate", &Y),
        json!([{"value": 0.75, "numerator": 3, "denominator": 4}])
    );
    // Days: d1 10, d2 42, d3 30, d6 16 -> sorted 10, 16, 30, 42 -> median (16 + 30) / 2 = 23.
    assert_eq!(
        env.rows("decision_days_median", &Y),
        json!([{"value": 23.0, "n": 4}])
    );
    // Within 30 days: 10, 16, 30 (30 counts) -> 3 of 4.
    assert_eq!(
        env.rows("decisions_within_30d_rate", &Y),
        json!([{"value": 0.75, "numerator": 3, "denominator": 4}])
    );
    // By region: Lombardia has d1, d2, d6 (all accepted); Lazio has d3 (rejected).
    assert_eq!(
        env.rows("acceptance_rate", &[Y[0], Y[1], ("by", "region")]),
        json!([
            {"region": "Lazio", "value": 0.0, "numerator": 0, "denominator": 1},
            {"region": "Lombardia", "value": 1.0, "numerator": 3, "denominator": 3}
        ])
    );
}

#[test]
fn stocks_at_the_end_of_the_period() {
    let env = iscrizione();
    // Pending at 31/12/2025: p4 (applied 01/12, 30 days: not overdue) and p5 (applied
    // 01/11/2024, 425 days: overdue). p1, p2, p3, p6 have decisions.
    assert_eq!(
        env.rows("pending_applications", &[Y[0], Y[1], ("by", "overdue")]),
        json!([{"overdue": "no", "value": 1}, {"overdue": "yes", "value": 1}])
    );
    // At 30/11/2025 p4 had not applied yet: only p5 is pending.
    assert_eq!(
        env.rows(
            "pending_applications",
            &[("from", "2025-01-01"), ("to", "2025-11-30")]
        ),
        json!([{"value": 1}])
    );
    // Registered at 31/12/2025: p1 and p6 (p2 was cancelled on 30/11).
    assert_eq!(env.rows("registered_stock", &Y), json!([{"value": 2}]));
    // At 29/11/2025 p2 was still registered: 3.
    assert_eq!(
        env.rows(
            "registered_stock",
            &[("from", "2025-01-01"), ("to", "2025-11-29")]
        ),
        json!([{"value": 3}])
    );
    // On the day of the cancellation itself the spell has ended: 2.
    assert_eq!(
        env.rows(
            "registered_stock",
            &[("from", "2025-01-01"), ("to", "2025-11-30")]
        ),
        json!([{"value": 2}])
    );
}

#[test]
fn person_breakdowns_use_the_latest_application() {
    let env = iscrizione();
    // Applications in 2025 by gender: a2 is M; a1, a3, a4 are F.
    assert_eq!(
        env.rows("applications_received", &[Y[0], Y[1], ("by", "gender")]),
        json!([{"gender": "F", "value": 3}, {"gender": "M", "value": 1}])
    );
    // Age on the counted date: born 1990, events in 2025 -> 35 -> 30-54. disability 70 -> 67-79.
    assert_eq!(
        env.rows(
            "applications_received",
            &[Y[0], Y[1], ("by", "age_band,disability_band")]
        ),
        json!([{"age_band": "30-54", "disability_band": "67-79", "value": 4}])
    );
}

#[test]
fn defaults_and_parameter_errors() {
    let env = iscrizione();
    // Defaults: to = latest event (2025-12-01, a4), from = 1 January of that year.
    let r = env.kpi("applications_received", &[]);
    assert_eq!(r["params"]["from"], "2025-01-01");
    assert_eq!(r["params"]["to"], "2025-12-01");
    assert_eq!(r["rows"], json!([{"value": 4}]));
    assert!(env.kpi_error("no_such_kpi", &[]).contains("unknown KPI"));
    assert!(
        env.kpi_error("applications_received", &[("from", "2025-13-01")])
            .contains("YYYY-MM-DD")
    );
    assert!(
        env.kpi_error(
            "applications_received",
            &[("from", "2025-06-01"), ("to", "2025-01-01")]
        )
        .contains("after")
    );
    let e = env.kpi_error("applications_received", &[("by", "reason")]);
    assert!(e.contains("allowed") && e.contains("province"), "{e}");
    assert!(
        env.kpi_error("applications_received", &[("by", "region,province,cpi")])
            .contains("at most two")
    );
    assert!(
        env.kpi_error("applications_received", &[("region", "Atlantide")])
            .contains("unknown region")
    );
    assert!(
        env.kpi_error("applications_received", &[("province", "XX")])
            .contains("unknown province")
    );
    assert!(
        env.kpi_error("applications_received", &[("as_of", "yesterday")])
            .contains("RFC 3339")
    );
}
