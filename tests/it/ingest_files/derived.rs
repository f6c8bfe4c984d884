//! What the ingest derives and what it ignores: gender and birth year from the codice fiscale
//! (trimmed, any case, omocodic), derived columns, Rome-time date partitions, fields of other event
//! types and unknown columns, vacancy events without a person.

use super::*;

#[test]
fn gender_and_birth_year_come_from_the_cf() {
    let env = Env::new();
    // Woman born 01/01/1990 (day 41), man born 10/12/2005 (year 05: 2005 <= 2024 - 15),
    // man with year 12 applying in 2024 (2012 > 2009, so 1912).
    let woman = cf("BNCLRA90A41F205");
    let young = cf("VRDGNN05T10F205");
    let old = cf("BRNPLA12A01F205");
    let rows = vec![
        with(
            base_row("application_submitted", "a1"),
            &[("person_cf", Some(&woman))],
        ),
        with(
            base_row("application_submitted", "a2"),
            &[("person_cf", Some(&young))],
        ),
        with(
            base_row("application_submitted", "a3"),
            &[("person_cf", Some(&old))],
        ),
        // Explicit values win over the CF.
        with(
            base_row("application_submitted", "a4"),
            &[
                ("person_cf", Some(&woman)),
                ("gender", Some("M")),
                ("birth_date", Some("1970-06-30")),
            ],
        ),
        // A temporary code encodes nothing.
        with(
            base_row("application_submitted", "a5"),
            &[("person_cf", Some("00743110157"))],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (5, 5, 0, 0));
    let ev = env.events();
    let ids = column(&ev, "event_id");
    let g = column(&ev, "gender");
    let y = column(&ev, "birth_year");
    let get = |id: &str| {
        let i = ids.iter().position(|x| x.as_deref() == Some(id)).unwrap();
        (g[i].clone(), y[i].clone())
    };
    assert_eq!(get("a1"), (Some("F".into()), Some("1990".into())));
    assert_eq!(get("a2"), (Some("M".into()), Some("2005".into())));
    assert_eq!(get("a3"), (Some("M".into()), Some("1912".into())));
    assert_eq!(get("a4"), (Some("M".into()), Some("1970".into())));
    assert_eq!(get("a5"), (None, None));
}

#[test]
fn cf_is_compared_case_insensitively_after_trimming() {
    let env = Env::new();
    let c = cf("RSSMRA85T10F205");
    let lower = format!("  {}  ", c.to_lowercase());
    let rows = vec![
        with(
            base_row("basic_orientation", "e1"),
            &[("person_cf", Some(&c))],
        ),
        with(
            base_row("basic_orientation", "e2"),
            &[("person_cf", Some(&lower))],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (2, 2, 0, 0));
    let pids = column(&env.events(), "person_id");
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[0].as_ref().unwrap().len(), 32);
}

#[test]
fn omocodic_cf_is_valid() {
    let env = Env::new();
    // RSSMRA85T10F205 with the last comune digit 5 -> R (omocodia).
    let omo = cf("RSSMRA85T10F20R");
    let p = env.write(
        "a.csv",
        csv_of(&[with(
            base_row("application_submitted", "e1"),
            &[("person_cf", Some(&omo))],
        )]),
    );
    assert_eq!(counts(&env.ingest_one(&p)), (1, 1, 0, 0));
    assert_eq!(
        column(&env.events(), "birth_year")[0].as_deref(),
        Some("1985")
    );
}

#[test]
fn fields_of_other_types_and_unknown_columns_are_ignored() {
    let env = Env::new();
    let row = with(
        base_row("basic_orientation", "e1"),
        &[
            ("contract_code", Some("not a code")),
            ("notes", Some("anything")),
        ],
    );
    let p = env.write("a.csv", csv_of(&[row]));
    assert_eq!(counts(&env.ingest_one(&p)), (1, 1, 0, 0));
    assert_eq!(column(&env.events(), "contract_code"), vec![None]);
}

#[test]
fn vacancy_events_need_no_person() {
    let env = Env::new();
    let p = env.write(
        "a.csv",
        csv_of(&[
            base_row("vacancy_opened", "v1"),
            base_row("vacancy_closed", "v2"),
        ]),
    );
    assert_eq!(counts(&env.ingest_one(&p)), (2, 2, 0, 0));
    assert_eq!(column(&env.events(), "person_id"), vec![None, None]);
}

#[test]
fn derived_columns() {
    let env = Env::new();
    let rows = vec![
        base_row("pact_signed", "p1"),
        with(
            base_row("pact_signed", "p2"),
            &[("avail_offers", Some("FALSE"))],
        ),
        with(base_row("pact_signed", "p3"), &[("search_acts", Some("0"))]),
        base_row("hired", "h1"),
        with(base_row("hired", "h2"), &[("contract_months", Some("5"))]),
        with(
            base_row("hired", "h3"),
            &[
                ("contract_code", Some("A.03.09")),
                ("contract_months", None),
            ],
        ),
        with(
            base_row("hired", "h4"),
            &[
                ("contract_code", Some("Z.12.34")),
                ("contract_months", None),
            ],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (7, 7, 0, 0));
    let ev = env.events();
    let ids = column(&ev, "event_id");
    let complete = column(&ev, "pact_complete");
    let stable = column(&ev, "stable_hire");
    let class = column(&ev, "contract_class");
    let at = |id: &str| ids.iter().position(|x| x.as_deref() == Some(id)).unwrap();
    assert_eq!(complete[at("p1")].as_deref(), Some("true"));
    assert_eq!(complete[at("p2")].as_deref(), Some("false"));
    assert_eq!(complete[at("p3")].as_deref(), Some("false"));
    assert_eq!(stable[at("h1")].as_deref(), Some("true"));
    assert_eq!(stable[at("h2")].as_deref(), Some("false"));
    assert_eq!(stable[at("h3")].as_deref(), Some("true"));
    assert_eq!(class[at("h3")].as_deref(), Some("apprenticeship"));
    assert_eq!(class[at("h4")].as_deref(), Some("other"));
}

#[test]
fn rome_date_partitions() {
    let env = Env::new();
    let rows = vec![
        // 23:30 UTC on 31 January is 00:30 on 1 February in Rome.
        with(
            base_row("basic_orientation", "e1"),
            &[("occurred_at", Some("2024-01-31T23:30:00Z"))],
        ),
        with(
            base_row("basic_orientation", "e2"),
            &[("occurred_at", Some("2024-01-31T22:30:00Z"))],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (2, 2, 0, 0));
    // Through `events`, the link to the current generation.
    let files: Vec<String> = mirato::store::parquet_files(&env.layout().events())
        .unwrap()
        .iter()
        .map(|f| f.strip_prefix(&env.data).unwrap().display().to_string())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("events/year=2024/month=02/")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("events/year=2024/month=01/")),
        "{files:?}"
    );
    let ev = env.events();
    let ids = column(&ev, "event_id");
    let dates = column(&ev, "occurred_date");
    let at = |id: &str| ids.iter().position(|x| x.as_deref() == Some(id)).unwrap();
    assert_eq!(dates[at("e1")].as_deref(), Some("2024-02-01"));
    assert_eq!(dates[at("e2")].as_deref(), Some("2024-01-31"));
    assert!(column(&ev, "ingested_at").iter().all(Option::is_some));
}
