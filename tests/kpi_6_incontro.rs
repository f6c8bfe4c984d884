//! Golden fixtures for section 6 (Incontro domanda/offerta) of KPIS.md. Each fixture is a small
//! event set whose answer was worked out by hand (the arithmetic is in the comments); it runs
//! through the real ingest and the real engine.

mod common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];
const RM: [(&str, &str); 2] = [("province", "RM"), ("cpi_code", "RM-01")];

fn opened(
    id: &str,
    at: &str,
    vacancy: &str,
    positions: &str,
    kind: &str,
    rm: bool,
) -> Vec<(String, String)> {
    let mut f = vec![
        ("vacancy_id", vacancy),
        ("employer_id", PIVA),
        ("positions", positions),
        ("request_type", kind),
    ];
    if rm {
        f.extend(RM);
    }
    ev("vacancy_opened", id, at, None, &f)
}

fn closed(id: &str, at: &str, vacancy: &str, reason: &str, rm: bool) -> Vec<(String, String)> {
    let mut f = vec![("vacancy_id", vacancy), ("close_reason", reason)];
    if rm {
        f.extend(RM);
    }
    ev("vacancy_closed", id, at, None, &f)
}

fn proposed(
    id: &str,
    at: &str,
    who: u32,
    vacancy: &str,
    channel: &str,
    rm: bool,
) -> Vec<(String, String)> {
    let mut f = vec![("vacancy_id", vacancy), ("channel", channel)];
    if rm {
        f.extend(RM);
    }
    ev("candidate_proposed", id, at, Some(who), &f)
}

fn step(event_type: &str, id: &str, at: &str, who: u32, vacancy: &str) -> Vec<(String, String)> {
    ev(event_type, id, at, Some(who), &[("vacancy_id", vacancy)])
}

fn hired(id: &str, at: &str, who: u32, vacancy: Option<&str>, rm: bool) -> Vec<(String, String)> {
    let mut f = vec![
        ("employer_id", PIVA),
        ("contract_code", "A.01.00"),
        ("hiring_mode", "numerica"),
    ];
    if let Some(v) = vacancy {
        f.push(("vacancy_id", v));
    }
    if rm {
        f.extend(RM);
    }
    ev("hired", id, at, Some(who), &f)
}

/// Milano unless said otherwise.
/// Vacancies: V0 opened 2024-12-01 (convenzione_art11, 5 positions), closed 2025-01-31
/// (partially_filled); V1 opened 2025-01-15 (numerica, 2), closed 2025-03-15 (filled);
/// V2 opened 2025-02-01 in Roma (nominativa, 1), closed 2025-04-30 in Roma (filled);
/// V3 opened 2025-03-01 (numerica, 3), still open.
/// p1: proposed V1 2025-01-20 (pes_proposal) and again 2025-01-25 in Roma (self_application),
///     preselected V1 2025-02-01, selected 2025-02-10, hired on V1 2025-03-01
/// p2: proposed V1 2025-01-22 (self_application), preselected 2025-02-02, not selected 2025-02-11
/// p3: proposed V2 2025-02-05 in Roma (pes_proposal), hired on V2 2025-04-30 in Roma
/// p4: proposed V3 2025-12-20 (pes_proposal), preselected 2026-01-05
/// p5: proposed V0 2024-12-10, preselected 2025-01-05, selected 2025-01-20, hired on V0
///     2025-02-01 (the day after V0 closed)
/// p6: hired 2025-04-01 with no vacancy
fn incontro() -> Env {
    let env = Env::new();
    env.load(
        "incontro.csv",
        &[
            opened("vo0", "2024-12-01", "V0", "5", "convenzione_art11", false),
            closed("vc0", "2025-01-31", "V0", "partially_filled", false),
            opened("vo1", "2025-01-15", "V1", "2", "numerica", false),
            closed("vc1", "2025-03-15", "V1", "filled", false),
            opened("vo2", "2025-02-01", "V2", "1", "nominativa", true),
            closed("vc2", "2025-04-30", "V2", "filled", true),
            opened("vo3", "2025-03-01", "V3", "3", "numerica", false),
            proposed("cp1", "2025-01-20", 1, "V1", "pes_proposal", false),
            proposed("cp2", "2025-01-25", 1, "V1", "self_application", true),
            step("candidate_preselected", "pre1", "2025-02-01", 1, "V1"),
            step("candidate_selected", "sel1", "2025-02-10", 1, "V1"),
            hired("h1", "2025-03-01", 1, Some("V1"), false),
            proposed("cp3", "2025-01-22", 2, "V1", "self_application", false),
            step("candidate_preselected", "pre2", "2025-02-02", 2, "V1"),
            step("candidate_not_selected", "ns2", "2025-02-11", 2, "V1"),
            proposed("cp4", "2025-02-05", 3, "V2", "pes_proposal", true),
            hired("h3", "2025-04-30", 3, Some("V2"), true),
            proposed("cp5", "2025-12-20", 4, "V3", "pes_proposal", false),
            step("candidate_preselected", "pre4", "2026-01-05", 4, "V3"),
            proposed("cp0", "2024-12-10", 5, "V0", "pes_proposal", false),
            step("candidate_preselected", "pre5", "2025-01-05", 5, "V0"),
            step("candidate_selected", "sel5", "2025-01-20", 5, "V0"),
            hired("h5", "2025-02-01", 5, Some("V0"), false),
            hired("h6", "2025-04-01", 6, None, false),
        ],
    );
    env
}

#[test]
fn vacancies_and_positions() {
    let env = incontro();
    // Opened in 2025: vo1, vo2, vo3 = 3 (vo0 is 2024).
    assert_eq!(env.rows("vacancies_opened", &Y), json!([{"value": 3}]));
    // nominativa vo2 = 1; numerica vo1, vo3 = 2.
    assert_eq!(
        env.rows("vacancies_opened", &[Y[0], Y[1], ("by", "request_type")]),
        json!([
            {"request_type": "nominativa", "value": 1},
            {"request_type": "numerica", "value": 2}
        ])
    );
    // Positions: 2 + 1 + 3 = 6; MI 2 + 3 = 5, RM 1.
    assert_eq!(env.rows("positions_offered", &Y), json!([{"value": 6}]));
    assert_eq!(
        env.rows("positions_offered", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 5}, {"province": "RM", "value": 1}])
    );
    // 2024: vo0 with 5 positions.
    assert_eq!(
        env.rows(
            "positions_offered",
            &[("from", "2024-01-01"), ("to", "2024-12-31")]
        ),
        json!([{"value": 5}])
    );
    // Vacancy KPIs have no person: person breakdowns are refused.
    let e = env.kpi_error("vacancies_opened", &[Y[0], Y[1], ("by", "gender")]);
    assert!(e.contains("allowed"), "{e}");
}

#[test]
fn candidates_proposed_by_channel() {
    let env = incontro();
    // 2025: cp1, cp2, cp3, cp4, cp5 = 5 (cp0 is 2024; both proposals of p1 count).
    assert_eq!(env.rows("candidates_proposed", &Y), json!([{"value": 5}]));
    // pes_proposal cp1, cp4, cp5 = 3; self_application cp2, cp3 = 2.
    assert_eq!(
        env.rows("candidates_proposed", &[Y[0], Y[1], ("by", "channel")]),
        json!([
            {"channel": "pes_proposal", "value": 3},
            {"channel": "self_application", "value": 2}
        ])
    );
}

#[test]
fn preselection_rate_over_distinct_pairs() {
    let env = incontro();
    // Pairs proposed in 2025: (V1,p1) (cp1 and cp2: one pair), (V1,p2), (V2,p3), (V3,p4) = 4.
    // Preselected by 31/12/2025: (V1,p1), (V1,p2); p4's is 2026 -> 2 / 4.
    assert_eq!(
        env.rows("preselection_rate", &Y),
        json!([{"value": 0.5, "numerator": 2, "denominator": 4}])
    );
    // Territory of the pair's first proposal in the period: (V1,p1) is MI (cp1).
    // MI: (V1,p1) 1, (V1,p2) 1, (V3,p4) 0 -> 2 / 3; RM: (V2,p3) 0 -> 0 / 1.
    assert_eq!(
        env.rows("preselection_rate", &[Y[0], Y[1], ("by", "province")]),
        json!([
            {"province": "MI", "value": 2.0 / 3.0, "numerator": 2, "denominator": 3},
            {"province": "RM", "value": 0.0, "numerator": 0, "denominator": 1}
        ])
    );
    // From 21/01: p1's first proposal in the period is cp2, in Roma.
    // MI: (V1,p2) 1, (V3,p4) 0 -> 1 / 2; RM: (V1,p1) 1, (V2,p3) 0 -> 1 / 2.
    assert_eq!(
        env.rows(
            "preselection_rate",
            &[
                ("from", "2025-01-21"),
                ("to", "2025-12-31"),
                ("by", "province")
            ]
        ),
        json!([
            {"province": "MI", "value": 0.5, "numerator": 1, "denominator": 2},
            {"province": "RM", "value": 0.5, "numerator": 1, "denominator": 2}
        ])
    );
    // Up to 31/01/2026 p4's preselection of 05/01/2026 counts: 3 / 4.
    assert_eq!(
        env.rows(
            "preselection_rate",
            &[("from", "2025-01-01"), ("to", "2026-01-31")]
        ),
        json!([{"value": 0.75, "numerator": 3, "denominator": 4}])
    );
}

#[test]
fn selection_rate_over_preselected_pairs() {
    let env = incontro();
    // Preselected in 2025: (V0,p5), (V1,p1), (V1,p2) = 3; selected: (V0,p5), (V1,p1) -> 2 / 3.
    assert_eq!(
        env.rows("selection_rate", &Y),
        json!([{"value": 2.0 / 3.0, "numerator": 2, "denominator": 3}])
    );
    // Up to 31/01/2026 (V3,p4) joins the denominator, not selected: 2 / 4.
    assert_eq!(
        env.rows(
            "selection_rate",
            &[("from", "2025-01-01"), ("to", "2026-01-31")]
        ),
        json!([{"value": 0.5, "numerator": 2, "denominator": 4}])
    );
    // Up to 31/01/2025: only (V0,p5), selected 20/01 -> 1 / 1.
    assert_eq!(
        env.rows(
            "selection_rate",
            &[("from", "2025-01-01"), ("to", "2025-01-31")]
        ),
        json!([{"value": 1.0, "numerator": 1, "denominator": 1}])
    );
}

#[test]
fn vacancy_fill_rate_counts_hires_up_to_the_close() {
    let env = incontro();
    // Closed in 2025: V0 (hire h5 on 01/02, after the close of 31/01: 0), V1 (h1 01/03 before
    // the close of 15/03: 1), V2 (h3 on the close day 30/04: 1) -> 2 / 3.
    assert_eq!(
        env.rows("vacancy_fill_rate", &Y),
        json!([{"value": 2.0 / 3.0, "numerator": 2, "denominator": 3}])
    );
    // Lazio V2 1 / 1; Lombardia V0 0, V1 1 -> 1 / 2.
    assert_eq!(
        env.rows("vacancy_fill_rate", &[Y[0], Y[1], ("by", "region")]),
        json!([
            {"region": "Lazio", "value": 1.0, "numerator": 1, "denominator": 1},
            {"region": "Lombardia", "value": 0.5, "numerator": 1, "denominator": 2}
        ])
    );
}

#[test]
fn hires_via_matching_need_a_vacancy() {
    let env = incontro();
    // Hires in 2025 naming a vacancy: h5 (Feb), h1 (Mar), h3 (Apr) = 3; h6 has none.
    assert_eq!(env.rows("hires_via_matching", &Y), json!([{"value": 3}]));
    assert_eq!(
        env.rows("hires_via_matching", &[Y[0], Y[1], ("by", "month")]),
        json!([
            {"month": "2025-02", "value": 1},
            {"month": "2025-03", "value": 1},
            {"month": "2025-04", "value": 1}
        ])
    );
}

/// Two proposals of one pair on the same day: the pair's first event in the period is the
/// earlier instant, even though both share the date; from the next day the pair is not in the
/// period at all. A third proposal after a gap is the pair's first in a period that starts after
/// the second.
#[test]
fn pair_first_event_on_a_day_with_two_proposals() {
    let env = Env::new();
    env.load(
        "pairs.csv",
        &[
            opened("vo", "2025-05-01", "V9", "1", "numerica", false),
            // p7 on V9: 10/06 at 09:00 in Roma, 10/06 at 15:00 in Milano, 20/06 in Roma.
            proposed(
                "a",
                "2025-06-10T09:00:00+02:00",
                7,
                "V9",
                "pes_proposal",
                true,
            ),
            proposed(
                "b",
                "2025-06-10T15:00:00+02:00",
                7,
                "V9",
                "pes_proposal",
                false,
            ),
            proposed("c", "2025-06-20", 7, "V9", "pes_proposal", true),
            step("candidate_preselected", "p", "2025-06-25", 7, "V9"),
        ],
    );
    let by_province = |from: &str, to: &str| {
        env.rows(
            "preselection_rate",
            &[("from", from), ("to", to), ("by", "province")],
        )
    };
    // From 10/06: one pair, territory of 'a' (09:00, Roma); preselected 25/06 <= 30/06 -> 1 / 1.
    assert_eq!(
        by_province("2025-06-10", "2025-06-30"),
        json!([{"province": "RM", "value": 1.0, "numerator": 1, "denominator": 1}])
    );
    // From 11/06 to 19/06: no proposal of the pair in the period -> no row.
    assert_eq!(by_province("2025-06-11", "2025-06-19"), json!([]));
    // From 11/06 to 24/06: 'c' (20/06, Roma) is the first; not yet preselected by 24/06 -> 0 / 1.
    assert_eq!(
        by_province("2025-06-11", "2025-06-24"),
        json!([{"province": "RM", "value": 0.0, "numerator": 0, "denominator": 1}])
    );
}
