//! One test per rule of EVENTS.md: a file holds a valid row, a row that breaks the rule, and
//! another valid row. The bad row lands in quarantine with a reason naming the rule; the two
//! others are stored.

use crate::common;
use common::*;

/// Ingests [good, bad, good] and checks the accounting and the quarantine record.
fn check_rule(rule: &str, event_type: &str, changes: &[(&str, Option<&str>)]) {
    let env = Env::new();
    let bad = with(base_row(event_type, "bad-1"), changes);
    let rows = vec![
        base_row(event_type, "good-1"),
        bad,
        base_row(event_type, "good-2"),
    ];
    let path = env.write("batch.csv", csv_of(&rows));
    let report = env.ingest_one(&path);
    assert_eq!(counts(&report), (3, 2, 0, 1), "rule {rule}: {report:?}");
    let ids = column(&env.events(), "event_id");
    assert_eq!(
        ids.iter().flatten().cloned().collect::<Vec<_>>().len(),
        2,
        "two good rows stored"
    );
    let q = env.quarantine();
    let rules = column(&q, "rules");
    assert_eq!(rules.len(), 1);
    let rules = rules[0].clone().unwrap();
    assert!(rules.contains(rule), "expected rule {rule}, got {rules}");
    let reasons = column(&q, "reasons")[0].clone().unwrap();
    assert!(
        reasons.contains(rule),
        "the reason names the rule: {reasons}"
    );
    assert_eq!(
        column(&q, "line")[0].as_deref(),
        Some("3"),
        "header is line 1"
    );
    assert_eq!(
        column(&q, "source_file")[0].as_deref(),
        Some(path.to_str().unwrap())
    );
}

macro_rules! rules {
    ($($name:ident: $rule:literal, $ty:literal, [$(($k:literal, $v:expr)),* $(,)?];)*) => {
        $(
            #[test]
            fn $name() {
                check_rule($rule, $ty, &[$(($k, $v)),*]);
            }
        )*
    };
}

const LONG_33: &str = "abcdefghijklmnopqrstuvwxyz0123456";

rules! {
    // Fields every event carries.
    event_id_missing: "event_id.missing", "basic_orientation", [("event_id", None)];
    event_id_bad_characters: "event_id.format", "basic_orientation", [("event_id", Some("bad id!"))];
    event_id_too_long: "event_id.format", "basic_orientation", [("event_id", Some(&"x".repeat(65)))];
    event_type_missing: "event_type.missing", "basic_orientation", [("event_type", None)];
    event_type_unknown: "event_type.unknown", "basic_orientation", [("event_type", Some("coffee_break"))];
    occurred_at_missing: "occurred_at.missing", "basic_orientation", [("occurred_at", None)];
    occurred_at_bad_format: "occurred_at.format", "basic_orientation", [("occurred_at", Some("05/03/2024"))];
    occurred_at_no_offset: "occurred_at.format", "basic_orientation", [("occurred_at", Some("2024-03-05T10:00:00"))];
    occurred_at_before_2000: "occurred_at.range", "basic_orientation", [("occurred_at", Some("1999-12-31"))];
    occurred_at_in_the_future: "occurred_at.range", "basic_orientation", [("occurred_at", Some("2099-01-01"))];
    province_missing: "province.missing", "basic_orientation", [("province", None)];
    province_unknown: "province.unknown", "basic_orientation", [("province", Some("XX"))];
    cpi_code_missing: "cpi_code.missing", "basic_orientation", [("cpi_code", None)];
    cpi_code_holding_a_cf: "cpi_code.identifier", "basic_orientation", [("cpi_code", Some("RSSMRA85T10F205Y"))];
    event_id_holding_a_cf: "event_id.identifier", "basic_orientation", [("event_id", Some("RSSMRA85T10F205Y"))];
    pact_id_holding_a_cf: "pact_id.identifier", "pact_signed", [("pact_id", Some("rssmra85t10f205y"))];
    cpi_code_too_long: "cpi_code.length", "basic_orientation", [("cpi_code", Some("CPI-MILANO-CENTRO"))];
    // Codes are letters, digits, '_', '.' and '-', starting with a letter or digit: no formula
    // reaches a spreadsheet, no markup a page.
    cpi_code_formula: "cpi_code.format", "basic_orientation", [("cpi_code", Some("=1+2*3"))];
    cpi_code_leading_dash: "cpi_code.format", "basic_orientation", [("cpi_code", Some("-MI01"))];
    cpi_code_markup: "cpi_code.format", "basic_orientation", [("cpi_code", Some("<b>MI</b>"))];
    pact_id_formula: "pact_id.format", "pact_signed", [("pact_id", Some("@SUM(A1)"))];
    measure_id_space: "measure_id.format", "measure_started", [("measure_id", Some("M 1"))];
    vacancy_id_formula: "vacancy_id.format", "candidate_proposed", [("vacancy_id", Some("+V1"))];
    person_cf_missing: "person_cf.missing", "basic_orientation", [("person_cf", None)];
    person_cf_bad_check_char: "person_cf.invalid", "basic_orientation", [("person_cf", Some("RSSMRA85T10F205A"))];
    person_cf_bad_shape: "person_cf.invalid", "basic_orientation", [("person_cf", Some("RSSMRA85T10F20"))];
    person_cf_bad_temporary_code: "person_cf.invalid", "basic_orientation", [("person_cf", Some("00743110158"))];
    operator_id_too_long: "operator_id.length", "basic_orientation", [("operator_id", Some(LONG_33))];

    // 1. Iscrizione.
    list_type_missing: "list_type.missing", "application_submitted", [("list_type", None)];
    list_type_invalid: "list_type.invalid", "application_submitted", [("list_type", Some("art2"))];
    category_missing: "category.missing", "application_submitted", [("category", None)];
    category_invalid: "category.invalid", "application_submitted", [("category", Some("altro"))];
    disability_pct_required: "disability_pct.missing", "application_submitted", [("disability_pct", None)];
    disability_pct_required_lavoro: "disability_pct.missing", "application_submitted", [("category", Some("invalido_lavoro")), ("disability_pct", None)];
    disability_pct_required_servizio: "disability_pct.missing", "application_submitted", [("category", Some("invalido_servizio")), ("disability_pct", None)];
    disability_pct_over_100: "disability_pct.invalid", "application_submitted", [("disability_pct", Some("101"))];
    disability_pct_not_a_number: "disability_pct.invalid", "application_submitted", [("disability_pct", Some("60%"))];
    invalido_civile_needs_over_45: "eligibility.invalido_civile", "application_submitted", [("disability_pct", Some("45"))];
    invalido_lavoro_needs_over_33: "eligibility.invalido_lavoro", "application_submitted", [("category", Some("invalido_lavoro")), ("disability_pct", Some("33"))];
    art18_list_needs_art18_category: "eligibility.list_type_category", "application_submitted", [("list_type", Some("art18")), ("category", Some("sordo")), ("disability_pct", None)];
    art18_category_needs_art18_list: "eligibility.list_type_category", "application_submitted", [("list_type", Some("art1")), ("category", Some("art18")), ("disability_pct", None)];
    naspi_not_bool: "naspi.invalid", "application_submitted", [("naspi", Some("yes"))];
    education_out_of_range: "education.invalid", "application_submitted", [("education", Some("9"))];
    gender_invalid: "gender.invalid", "application_submitted", [("gender", Some("X"))];
    birth_date_invalid: "birth_date.invalid", "application_submitted", [("birth_date", Some("1990-13-01"))];
    agency_missing: "agency.missing", "certification_requested", [("agency", None)];
    agency_invalid: "agency.invalid", "certification_requested", [("agency", Some("ASL"))];
    pre_rejection_reason_missing: "reason.missing", "application_pre_rejected", [("reason", None)];
    rejection_reason_invalid: "reason.invalid", "application_rejected", [("reason", Some("hired"))];
    cancellation_reason_missing: "reason.missing", "registration_cancelled", [("reason", None)];
    cancellation_reason_invalid: "reason.invalid", "registration_cancelled", [("reason", Some("documents_incomplete"))];

    // 2. Orientamento di base.
    profiling_index_over_1: "profiling_index.invalid", "qualitative_profiling", [("profiling_index", Some("1.5"))];
    profiling_index_comma: "profiling_index.invalid", "qualitative_profiling", [("profiling_index", Some("0,5"))];

    // 3. Patto di servizio.
    pact_id_missing: "pact_id.missing", "pact_signed", [("pact_id", None)];
    pact_update_id_missing: "pact_id.missing", "pact_updated", [("pact_id", None)];
    employability_profile_invalid: "employability_profile.invalid", "pact_signed", [("employability_profile", Some("extreme"))];
    search_acts_negative: "search_acts.invalid", "pact_signed", [("search_acts", Some("-1"))];
    contact_frequency_zero: "contact_frequency_days.invalid", "pact_signed", [("contact_frequency_days", Some("0"))];
    search_proof_method_invalid: "search_proof_method.invalid", "pact_signed", [("search_proof_method", Some("pigeon"))];
    avail_workshops_invalid: "avail_workshops.invalid", "pact_signed", [("avail_workshops", Some("si"))];
    avail_training_invalid: "avail_training.invalid", "pact_signed", [("avail_training", Some("1"))];
    avail_offers_invalid: "avail_offers.invalid", "pact_signed", [("avail_offers", Some("no"))];
    review_pact_id_missing: "pact_id.missing", "pact_review", [("pact_id", None)];
    review_outcome_missing: "review_outcome.missing", "pact_review", [("review_outcome", None)];
    review_outcome_invalid: "review_outcome.invalid", "pact_review", [("review_outcome", Some("late"))];

    // 4. Orientamento specialistico.
    group_invalid: "group.invalid", "specialist_orientation", [("group", Some("maybe"))];
    skills_gap_invalid: "skills_gap.invalid", "skills_assessment", [("skills_gap", Some("2"))];
    to_service_missing: "to_service.missing", "referral", [("to_service", None)];
    to_service_invalid: "to_service.invalid", "referral", [("to_service", Some("police"))];

    // 5. Accompagnamento al lavoro.
    support_type_missing: "support_type.missing", "job_search_support", [("support_type", None)];
    support_type_invalid: "support_type.invalid", "job_search_support", [("support_type", Some("yoga"))];
    measure_id_missing: "measure_id.missing", "measure_started", [("measure_id", None)];
    measure_type_missing: "measure_type.missing", "measure_started", [("measure_type", None)];
    measure_type_invalid: "measure_type.invalid", "measure_started", [("measure_type", Some("stage"))];
    measure_host_invalid: "employer_id.invalid", "measure_started", [("employer_id", Some("12345678901"))];
    tutoring_measure_id_missing: "measure_id.missing", "tutoring_meeting", [("measure_id", None)];
    measure_end_id_missing: "measure_id.missing", "measure_ended", [("measure_id", None)];
    measure_end_reason_missing: "end_reason.missing", "measure_ended", [("end_reason", None)];
    measure_end_reason_invalid: "end_reason.invalid", "measure_ended", [("end_reason", Some("dismissal"))];

    // 6. Incontro domanda/offerta.
    vacancy_id_missing: "vacancy_id.missing", "vacancy_opened", [("vacancy_id", None)];
    vacancy_employer_missing: "employer_id.missing", "vacancy_opened", [("employer_id", None)];
    vacancy_employer_invalid: "employer_id.invalid", "vacancy_opened", [("employer_id", Some("00743110158"))];
    positions_missing: "positions.missing", "vacancy_opened", [("positions", None)];
    positions_zero: "positions.invalid", "vacancy_opened", [("positions", Some("0"))];
    request_type_missing: "request_type.missing", "vacancy_opened", [("request_type", None)];
    request_type_invalid: "request_type.invalid", "vacancy_opened", [("request_type", Some("urgente"))];
    ateco_section_invalid: "ateco_section.invalid", "vacancy_opened", [("ateco_section", Some("Z"))];
    profession_code_invalid: "profession_code.invalid", "vacancy_opened", [("profession_code", Some("3.4.5.2.0.1"))];
    proposal_vacancy_missing: "vacancy_id.missing", "candidate_proposed", [("vacancy_id", None)];
    channel_missing: "channel.missing", "candidate_proposed", [("channel", None)];
    channel_invalid: "channel.invalid", "candidate_proposed", [("channel", Some("linkedin"))];
    preselection_vacancy_missing: "vacancy_id.missing", "candidate_preselected", [("vacancy_id", None)];
    selection_vacancy_missing: "vacancy_id.missing", "candidate_selected", [("vacancy_id", None)];
    non_selection_vacancy_missing: "vacancy_id.missing", "candidate_not_selected", [("vacancy_id", None)];
    close_vacancy_missing: "vacancy_id.missing", "vacancy_closed", [("vacancy_id", None)];
    close_reason_missing: "close_reason.missing", "vacancy_closed", [("close_reason", None)];
    close_reason_invalid: "close_reason.invalid", "vacancy_closed", [("close_reason", Some("done"))];

    // Placement.
    hire_employer_missing: "employer_id.missing", "hired", [("employer_id", None)];
    hire_employer_invalid: "employer_id.invalid", "hired", [("employer_id", Some("RSSMRA85T10F205A"))];
    contract_code_missing: "contract_code.missing", "hired", [("contract_code", None)];
    contract_code_malformed: "contract_code.invalid", "hired", [("contract_code", Some("A.1.00"))];
    contract_months_required_for_fixed_term: "contract_months.missing", "hired", [("contract_months", None)];
    contract_months_zero: "contract_months.invalid", "hired", [("contract_months", Some("0"))];
    part_time_invalid: "part_time.invalid", "hired", [("part_time", Some("half"))];
    hiring_mode_missing: "hiring_mode.missing", "hired", [("hiring_mode", None)];
    hiring_mode_invalid: "hiring_mode.invalid", "hired", [("hiring_mode", Some("luck"))];
    employment_end_employer_missing: "employer_id.missing", "employment_ended", [("employer_id", None)];
    employment_end_reason_invalid: "end_reason.invalid", "employment_ended", [("end_reason", Some("completed"))];
    // Version 2 on a hire.
    hire_employer_obliged_invalid: "employer_obliged.invalid", "hired", [("employer_obliged", Some("si"))];
    hire_sector_invalid: "sector.invalid", "hired", [("sector", Some("mixed"))];
    hire_agreement_id_formula: "agreement_id.format", "hired", [("agreement_id", Some("=A1"))];

    // The employers' side (docs/EVENTS-employers.md).
    statement_employer_missing: "employer_id.missing", "obligation_statement", [("employer_id", None)];
    statement_employer_invalid: "employer_id.invalid", "obligation_statement", [("employer_id", Some("00743110158"))];
    statement_year_missing: "reference_year.missing", "obligation_statement", [("reference_year", None)];
    statement_year_out_of_range: "reference_year.invalid", "obligation_statement", [("reference_year", Some("1999"))];
    statement_sector_invalid: "sector.invalid", "obligation_statement", [("sector", Some("mixed"))];
    statement_size_band_missing: "size_band.missing", "obligation_statement", [("size_band", None)];
    statement_base_below_15: "base_workforce.invalid", "obligation_statement", [("base_workforce", Some("12"))];
    statement_band_and_base_disagree: "size_band.base_workforce", "obligation_statement", [("size_band", Some("15_35"))];
    statement_reserved_missing: "reserved_art1.missing", "obligation_statement", [("reserved_art1", None)];
    statement_covered_negative: "covered_art1.invalid", "obligation_statement", [("covered_art1", Some("-1"))];
    statement_art18_without_covered: "reserved_art18.pair", "obligation_statement", [("covered_art18", None)];
    statement_reserved_above_base: "posts.base_workforce", "obligation_statement", [("reserved_art1", Some("121"))];
    statement_base_above_a_million: "base_workforce.invalid", "obligation_statement", [("base_workforce", Some("1000001"))];
    planned_hires_above_a_million: "planned_hires.invalid", "agreement_signed", [("planned_hires", Some("2000000000"))];
    agreement_id_missing: "agreement_id.missing", "agreement_signed", [("agreement_id", None)];
    agreement_type_invalid: "agreement_type.invalid", "agreement_signed", [("agreement_type", Some("art13"))];
    planned_hires_zero: "planned_hires.invalid", "agreement_signed", [("planned_hires", Some("0"))];
    duration_months_too_long: "duration_months.invalid", "agreement_signed", [("duration_months", Some("121"))];
    agreement_outcome_missing: "agreement_outcome.missing", "agreement_ended", [("agreement_outcome", None)];
    agreement_outcome_invalid: "agreement_outcome.invalid", "agreement_ended", [("agreement_outcome", Some("done"))];
    exemption_pct_over_80: "exemption_pct.invalid", "exemption_granted", [("exemption_pct", Some("81"))];
    exempted_workers_missing: "exempted_workers.missing", "exemption_granted", [("exempted_workers", None)];
    exemption_period_reversed: "period_end.before_start", "exemption_granted", [("period_end", Some("2024-03-31"))];
    suspension_reason_invalid: "suspension_reason.invalid", "obligation_suspended", [("suspension_reason", Some("strike"))];
    suspension_period_start_invalid: "period_start.invalid", "obligation_suspended", [("period_start", Some("2024-02-30"))];
    suspension_period_reversed: "period_end.before_start", "obligation_suspended", [("period_end", Some("2024-01-01"))];
    compensation_to_unknown_province: "to_province.unknown", "territorial_compensation", [("to_province", Some("XX"))];
    compensation_to_same_province: "to_province.same", "territorial_compensation", [("to_province", Some("MI"))];
    compensation_positions_missing: "positions.missing", "territorial_compensation", [("positions", None)];
    numerical_request_vacancy_missing: "vacancy_id.missing", "numerical_request", [("vacancy_id", None)];
    numerical_request_positions_zero: "positions.invalid", "numerical_request", [("positions", Some("0"))];
}

/// Persons' and employers' events in one file: every row is stored, a duplicate or rejected,
/// and `read = stored + duplicates + rejected`; no employer row carries a person, and no raw
/// partita IVA reaches the store or the quarantine.
#[test]
fn a_file_of_both_sides_keeps_its_accounting() {
    let env = Env::new();
    let kinds = [
        "application_submitted",
        "hired",
        "obligation_statement",
        "agreement_signed",
        "agreement_ended",
        "exemption_granted",
        "obligation_suspended",
        "territorial_compensation",
        "numerical_request",
    ];
    let mut rows: Vec<Vec<(String, String)>> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| base_row(k, &format!("e{i}")))
        .collect();
    // A resent statement (a duplicate) and a statement whose band disagrees with its base.
    rows.push(base_row("obligation_statement", "e2"));
    rows.push(with(
        base_row("obligation_statement", "bad-1"),
        &[("base_workforce", Some("20"))],
    ));
    let path = env.write("both.csv", csv_of(&rows));
    let report = env.ingest_one(&path);
    // read 11 = stored 9 + duplicates 1 + rejected 1.
    assert_eq!(counts(&report), (11, 9, 1, 1), "{report:?}");
    let events = env.events();
    let types = column(&events, "event_type");
    let persons = column(&events, "person_id");
    for (t, p) in types.iter().zip(&persons) {
        let t = t.as_deref().unwrap_or_default();
        assert_eq!(
            p.is_some(),
            ["application_submitted", "hired"].contains(&t),
            "{t}"
        );
    }
    let employers = column(&events, "employer_id");
    assert!(
        employers
            .iter()
            .flatten()
            .all(|e| e.len() == 32 && e != PIVA)
    );
    let q = env.quarantine();
    let row_json = column(&q, "row_json")[0].clone().unwrap();
    assert!(!row_json.contains(PIVA), "{row_json}");
    assert_eq!(
        column(&events, "to_province")
            .iter()
            .flatten()
            .collect::<Vec<_>>(),
        vec!["RM"]
    );
}

#[test]
fn every_broken_rule_is_reported_not_just_the_first() {
    let env = Env::new();
    let bad = with(
        base_row("application_submitted", "bad-1"),
        &[
            ("province", Some("XX")),
            ("disability_pct", Some("40")),
            ("gender", Some("X")),
        ],
    );
    let path = env.write("b.csv", csv_of(&[bad]));
    assert_eq!(counts(&env.ingest_one(&path)), (1, 0, 0, 1));
    let rules = column(&env.quarantine(), "rules")[0].clone().unwrap();
    for r in [
        "province.unknown",
        "eligibility.invalido_civile",
        "gender.invalid",
    ] {
        assert!(rules.contains(r), "{r} in {rules}");
    }
}

#[test]
fn conflict_same_id_different_content_is_rejected() {
    let env = Env::new();
    let a = env.write("a.csv", csv_of(&[base_row("basic_orientation", "e-1")]));
    let changed = with(
        base_row("basic_orientation", "e-1"),
        &[("cpi_code", Some("MI-02"))],
    );
    let b = env.write("b.csv", csv_of(&[changed, base_row("referral", "e-2")]));
    let r = env.ingest(&[a, b]);
    assert_eq!(counts(&r[0]), (1, 1, 0, 0));
    assert_eq!(counts(&r[1]), (2, 1, 0, 1));
    let rules = column(&env.quarantine(), "rules")[0].clone().unwrap();
    assert!(rules.contains("event_id.conflict"));
    // The stored event is the first version.
    assert_eq!(
        column(&env.events(), "cpi_code"),
        vec![Some("MI-01".into()), Some("MI-01".into())]
    );
}

#[test]
fn conflict_within_one_file() {
    let env = Env::new();
    let changed = with(
        base_row("basic_orientation", "e-1"),
        &[("occurred_at", Some("2024-03-06"))],
    );
    let p = env.write(
        "a.csv",
        csv_of(&[base_row("basic_orientation", "e-1"), changed]),
    );
    assert_eq!(counts(&env.ingest_one(&p)), (2, 1, 0, 1));
}

#[test]
fn ragged_csv_row_is_quarantined() {
    let env = Env::new();
    let mut text = csv_of(&[base_row("basic_orientation", "e-1")]);
    text.push_str("e-2,basic_orientation,2024-03-05\n");
    let p = env.write("a.csv", text);
    assert_eq!(counts(&env.ingest_one(&p)), (2, 1, 0, 1));
    let rules = column(&env.quarantine(), "rules")[0].clone().unwrap();
    assert!(rules.contains("csv.field_count"), "{rules}");
}

#[test]
fn bad_json_line_is_quarantined_and_the_rest_stored() {
    let env = Env::new();
    let mut text = jsonl_of(&[base_row("basic_orientation", "e-1")]);
    text.push_str("{\"event_id\": \"e-2\", \"person_cf\": \"RSSMRA85T10F205\n");
    text.push_str(&jsonl_of(&[base_row("basic_orientation", "e-3")]));
    text.push_str("{\"event_id\": \"e-4\", \"event_type\": [\"basic_orientation\"]}\n");
    let p = env.write("a.jsonl", text);
    assert_eq!(counts(&env.ingest_one(&p)), (4, 2, 0, 2));
    let rules = column(&env.quarantine(), "rules");
    let all: String = rules.iter().flatten().cloned().collect();
    assert!(all.contains("json.syntax"), "{all}");
    assert!(all.contains("json.value_type"), "{all}");
    // The broken line's partial CF is masked in quarantine.
    let q = all_text(&env.quarantine());
    assert!(!q.contains("RSSMRA85T10F205"), "{q}");
}
