//! Golden fixtures for section 3 (Patto di servizio personalizzato) of KPIS.md. Each fixture is a
//! small event set whose answer was worked out by hand (the arithmetic is in the comments); it
//! runs through the real ingest and the real engine.

mod common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

/// A pact_signed with every mandatory content, contact every `freq` days; `changes` replaces a
/// field or, with `None`, removes it.
fn pact(
    id: &str,
    at: &str,
    who: u32,
    freq: &str,
    changes: &[(&str, Option<&str>)],
) -> Vec<(String, String)> {
    let row = ev(
        "pact_signed",
        id,
        at,
        Some(who),
        &[
            ("pact_id", id),
            ("responsible_operator", "op-MI-0002"),
            ("employability_profile", "medium"),
            ("search_acts", "2"),
            ("contact_frequency_days", freq),
            ("search_proof_method", "online"),
            ("avail_workshops", "true"),
            ("avail_training", "true"),
            ("avail_offers", "true"),
        ],
    );
    with(row, changes)
}

fn review(id: &str, at: &str, who: u32, pact_id: &str, outcome: &str) -> Vec<(String, String)> {
    ev(
        "pact_review",
        id,
        at,
        Some(who),
        &[("pact_id", pact_id), ("review_outcome", outcome)],
    )
}

/// Eight persons, Milano unless said otherwise (RM = Roma, RM-01). "C" = complete pact.
/// p1: accepted 2025-01-10; pact P1 2025-02-09 (C, every 30 days; 30 days into the spell);
///     reviewed 2025-03-10 (on_track); updated 2025-06-01 (search_acts only); reviewed
///     2025-11-15 (on_track).
/// p2: accepted 2025-01-15; pact P2 2025-01-25 in RM (search_acts 0: incomplete; every 30
///     days; 10 days); updated 2025-11-01 to every 60 days.
/// p3: accepted 2024-06-01; pact P3a 2024-07-01 (C, every 30; first of the spell); updated
///     2024-08-01; reviewed 2024-09-01 (on_track); pact P3b 2025-03-01 in RM (no
///     search_proof_method: incomplete; every 200 days); reviewed 2025-04-01 (corrective_action).
/// p4: accepted 2025-02-11; pact P4 2025-04-02 (no avail_offers: incomplete; every 30; 50 days);
///     cancelled 2025-10-01.
/// p5: accepted 2025-01-10; pact P5a 2025-01-20 (C, every 30; 10 days); cancelled 2025-05-01;
///     accepted 2025-06-01; pact P5b 2025-06-21 (no responsible_operator: incomplete; every 365;
///     20 days); reviewed 2025-07-01 (no_show).
/// p6: pact P6 2025-08-01 (avail_training false: incomplete), never accepted.
/// p7: accepted 2025-12-01, no pact.
/// p8: pact P8 2025-09-01 (C), never accepted.
fn patto() -> Env {
    let env = Env::new();
    let cancel = |id: &str, at: &str, who: u32| {
        ev(
            "registration_cancelled",
            id,
            at,
            Some(who),
            &[("reason", "own_request")],
        )
    };
    let acc = |id: &str, at: &str, who: u32| ev("application_accepted", id, at, Some(who), &[]);
    env.load(
        "patto.csv",
        &[
            application("a1", "2024-12-01", 1, &[]),
            acc("acc1", "2025-01-10", 1),
            pact("P1", "2025-02-09", 1, "30", &[]),
            review("r1a", "2025-03-10", 1, "P1", "on_track"),
            ev(
                "pact_updated",
                "u1",
                "2025-06-01",
                Some(1),
                &[("pact_id", "P1"), ("search_acts", "3")],
            ),
            review("r1b", "2025-11-15", 1, "P1", "on_track"),
            application("a2", "2025-01-05", 2, &[("gender", "M")]),
            acc("acc2", "2025-01-15", 2),
            pact(
                "P2",
                "2025-01-25",
                2,
                "30",
                &[
                    ("search_acts", Some("0")),
                    ("province", Some("RM")),
                    ("cpi_code", Some("RM-01")),
                ],
            ),
            ev(
                "pact_updated",
                "u2",
                "2025-11-01",
                Some(2),
                &[("pact_id", "P2"), ("contact_frequency_days", "60")],
            ),
            application("a3", "2024-05-01", 3, &[]),
            acc("acc3", "2024-06-01", 3),
            pact("P3a", "2024-07-01", 3, "30", &[]),
            ev(
                "pact_updated",
                "u3",
                "2024-08-01",
                Some(3),
                &[("pact_id", "P3a"), ("search_acts", "4")],
            ),
            review("r3a", "2024-09-01", 3, "P3a", "on_track"),
            pact(
                "P3b",
                "2025-03-01",
                3,
                "200",
                &[
                    ("search_proof_method", None),
                    ("province", Some("RM")),
                    ("cpi_code", Some("RM-01")),
                ],
            ),
            review("r3b", "2025-04-01", 3, "P3b", "corrective_action"),
            application("a4", "2025-02-01", 4, &[]),
            acc("acc4", "2025-02-11", 4),
            pact("P4", "2025-04-02", 4, "30", &[("avail_offers", None)]),
            cancel("c4", "2025-10-01", 4),
            application("a5", "2025-01-02", 5, &[]),
            acc("acc5a", "2025-01-10", 5),
            pact("P5a", "2025-01-20", 5, "30", &[]),
            cancel("c5", "2025-05-01", 5),
            acc("acc5b", "2025-06-01", 5),
            pact(
                "P5b",
                "2025-06-21",
                5,
                "365",
                &[("responsible_operator", None)],
            ),
            review("r5", "2025-07-01", 5, "P5b", "no_show"),
            application("a6", "2025-07-01", 6, &[]),
            pact(
                "P6",
                "2025-08-01",
                6,
                "30",
                &[("avail_training", Some("false"))],
            ),
            application("a7", "2025-11-20", 7, &[]),
            acc("acc7", "2025-12-01", 7),
            pact("P8", "2025-09-01", 8, "30", &[]),
        ],
    );
    env
}

#[test]
fn pacts_updates_and_reviews() {
    let env = patto();
    // 2025 pacts: P1, P2, P3b, P4, P5a, P5b, P6, P8 = 8 (P3a is 2024).
    assert_eq!(env.rows("pacts_signed", &Y), json!([{"value": 8}]));
    // RM: P2, P3b = 2; MI: the other 6.
    assert_eq!(
        env.rows("pacts_signed", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 6}, {"province": "RM", "value": 2}])
    );
    // 2025 updates: u1, u2 = 2 (u3 is 2024).
    assert_eq!(env.rows("pact_updates", &Y), json!([{"value": 2}]));
    // 2025 reviews: r1a, r1b on_track; r3b corrective_action; r5 no_show (r3a is 2024).
    assert_eq!(
        env.rows("pact_reviews", &[Y[0], Y[1], ("by", "review_outcome")]),
        json!([
            {"review_outcome": "corrective_action", "value": 1},
            {"review_outcome": "no_show", "value": 1},
            {"review_outcome": "on_track", "value": 2}
        ])
    );
    assert_eq!(env.rows("pact_reviews", &Y), json!([{"value": 4}]));
    // 2024: one review (r3a, on_track).
    assert_eq!(
        env.rows(
            "pact_reviews",
            &[
                ("from", "2024-01-01"),
                ("to", "2024-12-31"),
                ("by", "review_outcome")
            ]
        ),
        json!([{"review_outcome": "on_track", "value": 1}])
    );
}

#[test]
fn pact_completeness() {
    let env = patto();
    // Complete in 2025: P1, P5a, P8 = 3 of 8 (P2 search_acts 0, P3b no proof method, P4 no
    // offers declaration, P5b no responsible operator, P6 training false) -> 0.375.
    assert_eq!(
        env.rows("pact_completeness_rate", &Y),
        json!([{"value": 0.375, "numerator": 3, "denominator": 8}])
    );
    // MI: P1, P5a, P8 of P1, P4, P5a, P5b, P6, P8 -> 3/6; RM: P2, P3b -> 0/2.
    assert_eq!(
        env.rows("pact_completeness_rate", &[Y[0], Y[1], ("by", "province")]),
        json!([
            {"province": "MI", "value": 0.5, "numerator": 3, "denominator": 6},
            {"province": "RM", "value": 0.0, "numerator": 0, "denominator": 2}
        ])
    );
    // 2024: P3a, complete -> 1/1.
    assert_eq!(
        env.rows(
            "pact_completeness_rate",
            &[("from", "2024-01-01"), ("to", "2024-12-31")]
        ),
        json!([{"value": 1.0, "numerator": 1, "denominator": 1}])
    );
}

#[test]
fn days_to_first_pact_of_a_spell() {
    let env = patto();
    // First pacts of a spell in 2025: P1 30, P2 10, P4 50, P5a 10, P5b 20 (second spell of p5).
    // P3b is not p3's first (P3a, 2024); P6 and P8 have no spell.
    // Sorted 10, 10, 20, 30, 50 -> 20, n 5.
    assert_eq!(
        env.rows("days_to_pact_median", &Y),
        json!([{"value": 20.0, "n": 5}])
    );
    // MI: 30, 50, 10, 20 -> (20 + 30) / 2 = 25, n 4; RM: P2 10.
    assert_eq!(
        env.rows("days_to_pact_median", &[Y[0], Y[1], ("by", "province")]),
        json!([
            {"province": "MI", "value": 25.0, "n": 4},
            {"province": "RM", "value": 10.0, "n": 1}
        ])
    );
}

#[test]
fn overdue_reviews_at_the_end_of_the_period() {
    let env = patto();
    // At 2025-12-31, open spells: p1, p2, p3, p5 (second), p7 (p4 cancelled 10-01).
    // p1: last contact r1b 11-15, 46 days > 30 (u1 gave no frequency) -> overdue, MI.
    // p2: last contact u2 11-01, 60 days; frequency 60 from u2 (not 30 from P2): 60 > 60 is
    //     false -> not overdue.
    // p3: last contact r3b 04-01, 274 days > 200 (P3b's frequency, not P3a's 30) -> overdue;
    //     territory of the latest pact P3b: RM.
    // p5: last contact r5 07-01, 183 days <= 365 -> not overdue. p7: no pact.
    assert_eq!(env.rows("overdue_reviews", &Y), json!([{"value": 2}]));
    assert_eq!(
        env.rows("overdue_reviews", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 1}, {"province": "RM", "value": 1}])
    );
    // At 2025-09-30, open: p1, p2, p3, p4, p5.
    // p1: last u1 06-01, 121 > 30 -> overdue (MI). p2: last P2 01-25, 248 > 30 (u2 not yet)
    // -> overdue (RM). p3: last r3b 04-01, 182 <= 200 -> no. p4: last P4 04-02, 181 > 30 ->
    // overdue (MI). p5: last r5 07-01, 91 <= 365 -> no. -> MI 2, RM 1.
    assert_eq!(
        env.rows(
            "overdue_reviews",
            &[
                ("from", "2025-01-01"),
                ("to", "2025-09-30"),
                ("by", "province")
            ]
        ),
        json!([{"province": "MI", "value": 2}, {"province": "RM", "value": 1}])
    );
}
