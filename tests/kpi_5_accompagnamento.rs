//! Golden fixtures for section 5 (Accompagnamento al lavoro) of KPIS.md. Each fixture is a small
//! event set whose answer was worked out by hand (the arithmetic is in the comments); it runs
//! through the real ingest and the real engine.

mod common;
use common::*;
use serde_json::json;

const Y: [(&str, &str); 2] = [("from", "2025-01-01"), ("to", "2025-12-31")];

fn started(
    id: &str,
    at: &str,
    who: u32,
    measure: &str,
    kind: &str,
    rm: bool,
) -> Vec<(String, String)> {
    let mut f = vec![
        ("measure_id", measure),
        ("measure_type", kind),
        ("employer_id", PIVA),
    ];
    if rm {
        f.extend([("province", "RM"), ("cpi_code", "RM-01")]);
    }
    ev("measure_started", id, at, Some(who), &f)
}

fn ended(
    id: &str,
    at: &str,
    who: u32,
    measure: &str,
    reason: &str,
    rm: bool,
) -> Vec<(String, String)> {
    let mut f = vec![("measure_id", measure), ("end_reason", reason)];
    if rm {
        f.extend([("province", "RM"), ("cpi_code", "RM-01")]);
    }
    ev("measure_ended", id, at, Some(who), &f)
}

fn tutoring(id: &str, at: &str, who: u32, measure: &str) -> Vec<(String, String)> {
    ev(
        "tutoring_meeting",
        id,
        at,
        Some(who),
        &[("measure_id", measure)],
    )
}

fn support(id: &str, at: &str, who: u32, kind: &str, rm: bool) -> Vec<(String, String)> {
    let mut f = vec![("support_type", kind)];
    if rm {
        f.extend([("province", "RM"), ("cpi_code", "RM-01")]);
    }
    ev("job_search_support", id, at, Some(who), &f)
}

/// Milano unless said otherwise (measure ids are per person: p1 and p6 both have an "M1"):
/// p1: support cv 2025-02-10, coaching 2025-03-10; measure M1 tirocinio started 2025-01-10,
///     tutoring 2025-02-01 and 2025-03-01, ended 2025-04-10 completed
/// p2 (Roma): support cv 2025-04-10; M2 borsa_lavoro started 2025-02-01, tutoring 2025-03-15,
///     ended 2025-06-30 interrupted_person
/// p3: support cv 2024-12-01 (before the period); M3 tirocinio started 2024-11-01, no tutoring,
///     ended 2025-03-01 hired
/// p4: M4 training_course started 2025-05-01, tutoring 2025-06-01, never ended; M6 tirocinio
///     started 2025-07-01 in Roma, never ended
/// p5: M5 work_experience started 2025-09-01, ended 2025-12-31 interrupted_host
/// p6: "M1" other started 2025-08-01, tutoring 2025-09-01, never ended
fn accompagnamento() -> Env {
    let env = Env::new();
    env.load(
        "accompagnamento.csv",
        &[
            support("j1", "2025-02-10", 1, "cv", false),
            support("j2", "2025-03-10", 1, "coaching", false),
            support("j3", "2025-04-10", 2, "cv", true),
            support("j4", "2024-12-01", 3, "cv", false),
            started("ms1", "2025-01-10", 1, "M1", "tirocinio", false),
            tutoring("t1", "2025-02-01", 1, "M1"),
            tutoring("t2", "2025-03-01", 1, "M1"),
            ended("me1", "2025-04-10", 1, "M1", "completed", false),
            started("ms2", "2025-02-01", 2, "M2", "borsa_lavoro", true),
            tutoring("t3", "2025-03-15", 2, "M2"),
            ended("me2", "2025-06-30", 2, "M2", "interrupted_person", true),
            started("ms3", "2024-11-01", 3, "M3", "tirocinio", false),
            ended("me3", "2025-03-01", 3, "M3", "hired", false),
            started("ms4", "2025-05-01", 4, "M4", "training_course", false),
            tutoring("t4", "2025-06-01", 4, "M4"),
            started("ms6", "2025-07-01", 4, "M6", "tirocinio", true),
            started("ms5", "2025-09-01", 5, "M5", "work_experience", false),
            ended("me5", "2025-12-31", 5, "M5", "interrupted_host", false),
            started("ms7", "2025-08-01", 6, "M1", "other", false),
            tutoring("t5", "2025-09-01", 6, "M1"),
        ],
    );
    env
}

#[test]
fn support_sessions_by_type() {
    let env = accompagnamento();
    // 2025: j1, j2, j3 = 3 (j4 is 2024).
    assert_eq!(env.rows("support_sessions", &Y), json!([{"value": 3}]));
    // coaching j2 = 1; cv j1, j3 = 2.
    assert_eq!(
        env.rows("support_sessions", &[Y[0], Y[1], ("by", "support_type")]),
        json!([
            {"support_type": "coaching", "value": 1},
            {"support_type": "cv", "value": 2}
        ])
    );
    // By province and type: MI coaching j2, MI cv j1, RM cv j3.
    assert_eq!(
        env.rows(
            "support_sessions",
            &[Y[0], Y[1], ("by", "province,support_type")]
        ),
        json!([
            {"province": "MI", "support_type": "coaching", "value": 1},
            {"province": "MI", "support_type": "cv", "value": 1},
            {"province": "RM", "support_type": "cv", "value": 1}
        ])
    );
}

#[test]
fn measures_started_by_type() {
    let env = accompagnamento();
    // 2025: ms1, ms2, ms4, ms6, ms5, ms7 = 6 (ms3 is 2024).
    assert_eq!(env.rows("measures_started", &Y), json!([{"value": 6}]));
    // borsa_lavoro ms2; other ms7; tirocinio ms1, ms6; training_course ms4; work_experience ms5.
    assert_eq!(
        env.rows("measures_started", &[Y[0], Y[1], ("by", "measure_type")]),
        json!([
            {"measure_type": "borsa_lavoro", "value": 1},
            {"measure_type": "other", "value": 1},
            {"measure_type": "tirocinio", "value": 2},
            {"measure_type": "training_course", "value": 1},
            {"measure_type": "work_experience", "value": 1}
        ])
    );
}

#[test]
fn completion_rate_takes_the_type_from_the_start() {
    let env = accompagnamento();
    // Ended in 2025: me1 completed (1), me2 interrupted_person (0), me3 hired (1),
    // me5 interrupted_host (0) -> 2 / 4.
    assert_eq!(
        env.rows("measure_completion_rate", &Y),
        json!([{"value": 0.5, "numerator": 2, "denominator": 4}])
    );
    // Types from the starts of the same measure and person: me1 -> ms1 tirocinio (not p6's
    // "M1", other), me2 -> borsa_lavoro, me3 -> ms3 tirocinio (started 2024), me5 ->
    // work_experience. borsa_lavoro 0 / 1; tirocinio 2 / 2; work_experience 0 / 1.
    assert_eq!(
        env.rows(
            "measure_completion_rate",
            &[Y[0], Y[1], ("by", "measure_type")]
        ),
        json!([
            {"measure_type": "borsa_lavoro", "value": 0.0, "numerator": 0, "denominator": 1},
            {"measure_type": "tirocinio", "value": 1.0, "numerator": 2, "denominator": 2},
            {"measure_type": "work_experience", "value": 0.0, "numerator": 0, "denominator": 1}
        ])
    );
    // First half of 2025: me1 (1), me2 (0, ended 30 June), me3 (1) -> 2 / 3.
    assert_eq!(
        env.rows(
            "measure_completion_rate",
            &[("from", "2025-01-01"), ("to", "2025-06-30")]
        ),
        json!([{"value": 2.0 / 3.0, "numerator": 2, "denominator": 3}])
    );
}

#[test]
fn tutoring_meetings_per_ended_measure() {
    let env = accompagnamento();
    // Ended in 2025: me1 (p1 M1: t1, t2 = 2; p6's t5 on its own "M1" does not count),
    // me2 (t3 = 1), me3 (none = 0), me5 (none = 0) -> (2 + 1 + 0 + 0) / 4 = 0.75.
    assert_eq!(
        env.rows("tutoring_per_measure", &Y),
        json!([{"value": 0.75, "n": 4}])
    );
    // By province of the measure_ended: MI me1, me3, me5 -> 2 / 3; RM me2 -> 1.
    assert_eq!(
        env.rows("tutoring_per_measure", &[Y[0], Y[1], ("by", "province")]),
        json!([
            {"province": "MI", "value": 2.0 / 3.0, "n": 3},
            {"province": "RM", "value": 1.0, "n": 1}
        ])
    );
}

#[test]
fn persons_in_measure_at_the_end_of_the_period() {
    let env = accompagnamento();
    // At 31/12/2025: p4 (M4, M6 open: counted once, territory RM from M6, the latest start)
    // and p6 (its "M1" has no end of its own; p1's me1 is another person's). p5's M5 ended on
    // 31/12 itself: out. -> 2: MI p6, RM p4.
    assert_eq!(env.rows("persons_in_measure", &Y), json!([{"value": 2}]));
    assert_eq!(
        env.rows("persons_in_measure", &[Y[0], Y[1], ("by", "province")]),
        json!([{"province": "MI", "value": 1}, {"province": "RM", "value": 1}])
    );
    // At 30/12/2025 p5 is still in measure: 3.
    assert_eq!(
        env.rows(
            "persons_in_measure",
            &[("from", "2025-01-01"), ("to", "2025-12-30")]
        ),
        json!([{"value": 3}])
    );
    // At 31/03/2025: p1 (M1 ends 10/04) and p2 (M2); p3's M3 ended 01/03 -> 2.
    assert_eq!(
        env.rows(
            "persons_in_measure",
            &[("from", "2025-01-01"), ("to", "2025-03-31")]
        ),
        json!([{"value": 2}])
    );
    // At 15/06/2025, territory of p4 is MI (M6 not started yet): MI p4, RM p2 (M2 ends 30/06).
    assert_eq!(
        env.rows(
            "persons_in_measure",
            &[
                ("from", "2025-01-01"),
                ("to", "2025-06-15"),
                ("by", "province")
            ]
        ),
        json!([{"province": "MI", "value": 1}, {"province": "RM", "value": 1}])
    );
}
