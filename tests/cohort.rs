//! The evaluators' cohort file, through the real binary and read back by real readers (pyarrow,
//! pandas, polars, DuckDB): its schema, a hand-worked fixture row by row, its row counts against
//! the KPIs on the sample data, and its pseudonyms.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The file as every reader sees it: {schema: [[name, type]], rows: [...], metadata: {...},
/// pandas: rows, polars: rows, duckdb: rows}.
fn read(path: &Path) -> Value {
    let script = r#"
import json, sys
import pyarrow.parquet as pq, duckdb, pandas, polars
path = sys.argv[1]
t = pq.read_table(path)
md = {k.decode(): v.decode() for k, v in (pq.read_metadata(path).metadata or {}).items()
      if k.startswith(b"mirato.")}
print(json.dumps({
    "schema": [[f.name, str(f.type)] for f in t.schema],
    "rows": t.to_pylist(),
    "metadata": md,
    "pandas": len(pandas.read_parquet(path)),
    "polars": polars.read_parquet(path).height,
    "duckdb": duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0],
}, default=str))
"#;
    let v = python_json(
        script,
        &[path.as_os_str()],
        None,
        "pyarrow pandas polars duckdb",
    );
    let n = v["rows"].as_array().unwrap().len();
    for reader in ["pandas", "polars", "duckdb"] {
        assert_eq!(v[reader], json!(n), "{reader} reads every row");
    }
    v
}

fn export(env: &Env, out: &Path, args: &[&str]) {
    let o = env
        .cli()
        .args(["export", "cohort", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

const SCHEMA: [(&str, &str); 30] = [
    ("person_key", "string"),
    ("spell_no", "int32"),
    ("region", "string"),
    ("province", "string"),
    ("cpi", "string"),
    ("gender", "string"),
    ("age_at_entry", "int32"),
    ("age_band", "string"),
    ("category", "string"),
    ("list_type", "string"),
    ("disability_band", "string"),
    ("naspi", "bool"),
    ("application_date", "date32[day]"),
    ("spell_start", "date32[day]"),
    ("basic_orientation_date", "date32[day]"),
    ("pact_date", "date32[day]"),
    ("pact_region", "string"),
    ("pact_province", "string"),
    ("pact_cpi", "string"),
    ("specialist_orientation_date", "date32[day]"),
    ("measure_start_date", "date32[day]"),
    ("proposal_date", "date32[day]"),
    ("hire_date", "date32[day]"),
    ("spell_end", "date32[day]"),
    ("end_reason", "string"),
    ("days_to_first_hire", "int32"),
    ("followup_days", "int32"),
    ("days_to_placement", "int32"),
    ("censored", "bool"),
    ("censoring", "string"),
];

fn without_key(row: &Value) -> Value {
    let mut m = row.as_object().unwrap().clone();
    m.remove("person_key");
    Value::Object(m)
}

/// Three persons, worked by hand. The observation end is 2024-05-10 (h2, the latest event).
/// - p1 (F, born 1990, invalido_civile 70%): applies 2024-01-10, accepted 2024-01-15 in MI,
///   basic orientation 2024-01-20, pact 2024-02-01, hired 2024-03-02. Days to the first hire:
///   Feb 1 → Mar 2 2024 = 29 + 1 = 30 (a leap year); follow-up Feb 1 → May 10 = 29 + 31 + 30 +
///   9 = 99; placed at 30, not censored. Age 2024 − 1990 = 34 (30-54), band 67-79.
/// - p2 (M, born 1960, art18): applies 2024-01-12, accepted 2024-01-15 in RM, pact 2024-02-10,
///   cancelled 2024-04-10 (moved), hired 2024-05-10 after the spell. First hire: Feb 10 → May 10 =
///   19 + 31 + 30 + 10 = 90 days (placement_rate_90 counts it: 90 ≤ 90 and follow-up 90 ≥ 90);
///   but the cancellation (Feb 10 → Apr 10 = 19 + 31 + 10 = 60 days) comes first: censored at 60,
///   'cancelled'. hire_date (within the spell) is null. Age 64 (55+), band n/a.
/// - p3 (F): applies 2023-12-01, accepted 2024-01-05, cancelled 2024-01-31 (own_request);
///   accepted again 2024-03-01 (spell 2, same application), proposed to a vacancy 2024-03-05. No
///   pact: the outcome columns are null.
fn fixture() -> Env {
    let env = Env::new();
    let rm: [(&str, &str); 2] = [("province", "RM"), ("cpi_code", "RM-01")];
    env.load(
        "cohort.csv",
        &[
            application("a1", "2024-01-10", 1, &[("naspi", "true")]),
            ev("application_accepted", "c1", "2024-01-15", Some(1), &[]),
            ev("basic_orientation", "b1", "2024-01-20", Some(1), &[]),
            ev(
                "pact_signed",
                "p1",
                "2024-02-01",
                Some(1),
                &[("pact_id", "P1")],
            ),
            hire("h1", "2024-03-02", 1, &[]),
            application(
                "a2",
                "2024-01-12",
                2,
                &[
                    ("gender", "M"),
                    ("birth_date", "1960-03-01"),
                    ("list_type", "art18"),
                    ("category", "art18"),
                    ("disability_pct", ""),
                    ("province", "RM"),
                    ("cpi_code", "RM-01"),
                ],
            ),
            ev("application_accepted", "c2", "2024-01-15", Some(2), &rm),
            ev(
                "pact_signed",
                "p2",
                "2024-02-10",
                Some(2),
                &[("pact_id", "P2"), ("province", "RM"), ("cpi_code", "RM-01")],
            ),
            ev(
                "registration_cancelled",
                "x2",
                "2024-04-10",
                Some(2),
                &[
                    ("reason", "moved"),
                    ("province", "RM"),
                    ("cpi_code", "RM-01"),
                ],
            ),
            hire("h2", "2024-05-10", 2, &[]),
            application("a3", "2023-12-01", 3, &[]),
            ev("application_accepted", "c3", "2024-01-05", Some(3), &[]),
            ev(
                "registration_cancelled",
                "x3",
                "2024-01-31",
                Some(3),
                &[("reason", "own_request")],
            ),
            ev("application_accepted", "c4", "2024-03-01", Some(3), &[]),
            ev(
                "candidate_proposed",
                "q1",
                "2024-03-05",
                Some(3),
                &[("vacancy_id", "V1"), ("channel", "pes_proposal")],
            ),
        ],
    );
    env
}

#[test]
fn the_hand_worked_fixture_row_by_row() {
    let env = fixture();
    let out = env.dir.path().join("cohort.parquet");
    export(&env, &out, &["--from", "2024-01-01", "--to", "2024-12-31"]);
    let f = read(&out);
    let schema: Vec<(String, String)> = f["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        schema,
        SCHEMA
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    );
    let rows: Vec<Value> = f["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(without_key)
        .collect();
    let p3_common = json!({
        "region": "Lombardia", "province": "MI", "cpi": "MI-01", "gender": "F",
        "age_at_entry": 34, "age_band": "30-54", "category": "invalido_civile",
        "list_type": "art1", "disability_band": "67-79", "naspi": null,
        "application_date": "2023-12-01", "basic_orientation_date": null, "pact_date": null,
        "pact_region": null, "pact_province": null, "pact_cpi": null, "specialist_orientation_date": null,
        "measure_start_date": null, "hire_date": null, "days_to_first_hire": null,
        "followup_days": null, "days_to_placement": null, "censored": null, "censoring": null,
    });
    let mut p3_1 = p3_common.clone();
    p3_1.as_object_mut().unwrap().extend(
        json!({"spell_no": 1, "spell_start": "2024-01-05", "proposal_date": null,
               "spell_end": "2024-01-31", "end_reason": "own_request"})
        .as_object()
        .unwrap()
        .clone(),
    );
    let mut p3_2 = p3_common;
    p3_2.as_object_mut().unwrap().extend(
        json!({"spell_no": 2, "spell_start": "2024-03-01", "proposal_date": "2024-03-05",
               "spell_end": null, "end_reason": null})
        .as_object()
        .unwrap()
        .clone(),
    );
    let p1 = json!({
        "spell_no": 1, "region": "Lombardia", "province": "MI", "cpi": "MI-01", "gender": "F",
        "age_at_entry": 34, "age_band": "30-54", "category": "invalido_civile",
        "list_type": "art1", "disability_band": "67-79", "naspi": true,
        "application_date": "2024-01-10", "spell_start": "2024-01-15",
        "basic_orientation_date": "2024-01-20", "pact_date": "2024-02-01",
        "pact_region": "Lombardia", "pact_province": "MI", "pact_cpi": "MI-01", "specialist_orientation_date": null,
        "measure_start_date": null, "proposal_date": null, "hire_date": "2024-03-02",
        "spell_end": null, "end_reason": null, "days_to_first_hire": 30, "followup_days": 99,
        "days_to_placement": 30, "censored": false, "censoring": null,
    });
    let p2 = json!({
        "spell_no": 1, "region": "Lazio", "province": "RM", "cpi": "RM-01", "gender": "M",
        "age_at_entry": 64, "age_band": "55+", "category": "art18", "list_type": "art18",
        "disability_band": "n/a", "naspi": null, "application_date": "2024-01-12",
        "spell_start": "2024-01-15", "basic_orientation_date": null, "pact_date": "2024-02-10",
        "pact_region": "Lazio", "pact_province": "RM", "pact_cpi": "RM-01", "specialist_orientation_date": null,
        "measure_start_date": null, "proposal_date": null, "hire_date": null,
        "spell_end": "2024-04-10", "end_reason": "moved", "days_to_first_hire": 90,
        "followup_days": 90, "days_to_placement": 60, "censored": true, "censoring": "cancelled",
    });
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(rows[0], p3_1);
    // p1 and p2 share the start date: their order follows the pseudonym.
    let mid: Vec<&Value> = rows[1..3].iter().collect();
    assert!(mid.contains(&&p1), "{mid:#?}");
    assert!(mid.contains(&&p2), "{mid:#?}");
    assert_eq!(rows[3], p3_2);
    // p3's two spells carry one person_key.
    let keys: Vec<&str> = f["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["person_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys[0], keys[3]);
    assert_ne!(keys[1], keys[2]);

    // Metadata: the parameters and the command that regenerates the file.
    let md = &f["metadata"];
    assert_eq!(md["mirato.entry"], "registration");
    assert_eq!(md["mirato.from"], "2024-01-01");
    assert_eq!(md["mirato.obs_end"], "2024-05-10");
    assert!(
        md["mirato.data_version"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    let cmd = md["mirato.command"].as_str().unwrap();
    assert!(
        cmd.starts_with(
            "mirato export cohort --entry registration --from 2024-01-01 --to 2024-12-31 --as-of "
        ),
        "{cmd}"
    );
    let dict: Value = serde_json::from_str(md["mirato.dictionary"].as_str().unwrap()).unwrap();
    for (name, _) in SCHEMA {
        assert!(dict[name].is_string(), "{name} is described");
    }

    // Entry by pact, with a territorial filter on the pact: p2 only.
    let out2 = env.dir.path().join("pact.parquet");
    export(
        &env,
        &out2,
        &[
            "--entry",
            "pact",
            "--from",
            "2024-02-01",
            "--to",
            "2024-02-29",
            "--region",
            "Lazio",
        ],
    );
    let rows2: Vec<Value> = read(&out2)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(without_key)
        .collect();
    assert_eq!(rows2, [p2]);

    // The same cohort through the KPIs: placement_rate_90 of February = 2 / 2 (p1 at 30 days,
    // p2 at 90; both with 90+ days of follow-up); time_to_placement: one placement, one
    // censoring.
    let r = env.rows(
        "placement_rate_90",
        &[("from", "2024-02-01"), ("to", "2024-02-29")],
    );
    assert_eq!(
        (r[0]["numerator"].clone(), r[0]["denominator"].clone()),
        (json!(2), json!(2))
    );
}

#[test]
fn bad_parameters_exit_2_with_one_sentence() {
    let env = fixture();
    let out = env.dir.path().join("x.parquet");
    for (args, needle) in [
        (
            &["--entry", "spell"][..],
            "entry 'spell' is not one of: registration, pact",
        ),
        (&["--from", "2024-13-01"][..], "is not a date"),
        (&["--from", "2024-05-01", "--to", "2024-01-01"][..], "after"),
        (&["--region", "Atlantide"][..], "unknown region"),
    ] {
        let o = env
            .cli()
            .args(["export", "cohort", "--out"])
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!out.exists(), "no file on error");
    }
}

fn count(rows: &[Value], pred: impl Fn(&Value) -> bool) -> u64 {
    rows.iter().filter(|r| pred(r)).count() as u64
}

fn funnel(env: &Env, params: &[(&str, &str)]) -> Vec<u64> {
    env.rows("service_funnel", params)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["persons"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_sample_data_cohort_matches_the_kpis() {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.ingest(&[root.join("sample-data")]);
    let year = [("from", "2024-01-01"), ("to", "2024-12-31")];

    // Entry by registration = the service funnel's cohort, stage by stage.
    let reg: PathBuf = env.dir.path().join("reg.parquet");
    export(&env, &reg, &["--from", "2024-01-01", "--to", "2024-12-31"]);
    let f = read(&reg);
    let rows = f["rows"].as_array().unwrap().clone();
    assert!(rows.len() > 100, "the sample data has a real cohort");
    let nn = |c: &'static str| move |r: &Value| !r[c].is_null();
    assert_eq!(
        vec![
            rows.len() as u64,
            count(&rows, nn("basic_orientation_date")),
            count(&rows, nn("pact_date")),
            count(&rows, |r| !r["measure_start_date"].is_null()
                || !r["proposal_date"].is_null()),
            count(&rows, nn("hire_date")),
        ],
        funnel(&env, &year)
    );
    // With a territorial filter.
    let lomb = env.dir.path().join("lomb.parquet");
    export(
        &env,
        &lomb,
        &[
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--region",
            "Lombardia",
        ],
    );
    let lrows = read(&lomb)["rows"].as_array().unwrap().clone();
    assert_eq!(
        lrows.len() as u64,
        funnel(&env, &[year[0], year[1], ("region", "Lombardia")])[0]
    );
    assert!(lrows.iter().all(|r| r["region"] == "Lombardia"));

    // Entry by pact = the cohort of the outcome KPIs.
    let pact = env.dir.path().join("pact.parquet");
    export(
        &env,
        &pact,
        &[
            "--entry",
            "pact",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
        ],
    );
    let prows = read(&pact)["rows"].as_array().unwrap().clone();
    for n in [90i64, 180, 365] {
        let r = &env.rows(&format!("placement_rate_{n}"), &year)[0];
        let den = count(&prows, |r| r["followup_days"].as_i64().unwrap() >= n);
        let num = count(&prows, |r| {
            r["followup_days"].as_i64().unwrap() >= n
                && r["days_to_first_hire"].as_i64().is_some_and(|d| d <= n)
        });
        assert_eq!(
            (num, den),
            (
                r["numerator"].as_u64().unwrap(),
                r["denominator"].as_u64().unwrap()
            ),
            "N = {n}"
        );
    }
    // Regrouped by gender, the pact-entry file gives the KPIs' subgroups (attributes at the
    // pact, as the KPIs take them): what the evaluator page shows.
    let by_gender = env.rows("placement_rate_180", &[year[0], year[1], ("by", "gender")]);
    for row in by_gender.as_array().unwrap() {
        let g = row["gender"].as_str().unwrap();
        let mine: Vec<&Value> = prows.iter().filter(|r| r["gender"] == g).collect();
        let den = mine
            .iter()
            .filter(|r| r["followup_days"].as_i64().unwrap() >= 180)
            .count();
        let num = mine
            .iter()
            .filter(|r| {
                r["followup_days"].as_i64().unwrap() >= 180
                    && r["days_to_first_hire"].as_i64().is_some_and(|d| d <= 180)
            })
            .count();
        assert_eq!(
            (num as u64, den as u64),
            (
                row["numerator"].as_u64().unwrap(),
                row["denominator"].as_u64().unwrap()
            ),
            "{g}"
        );
    }
    let curve = env.rows("time_to_placement", &year);
    let curve = curve.as_array().unwrap();
    let sum = |c: &str| curve.iter().map(|r| r[c].as_u64().unwrap()).sum::<u64>();
    assert_eq!(curve[0]["at_risk"].as_u64().unwrap(), prows.len() as u64);
    assert_eq!(sum("events"), count(&prows, |r| r["censored"] == false));
    assert_eq!(sum("censored"), count(&prows, |r| r["censored"] == true));
    // The survival durations themselves: the curve's events per day.
    let mut by_day = std::collections::BTreeMap::<i64, u64>::new();
    for r in prows.iter().filter(|r| r["censored"] == false) {
        *by_day
            .entry(r["days_to_placement"].as_i64().unwrap())
            .or_default() += 1;
    }
    for row in curve.iter().filter(|r| r["events"].as_u64().unwrap() > 0) {
        assert_eq!(
            by_day.get(&row["day"].as_i64().unwrap()).copied(),
            row["events"].as_u64(),
            "day {}",
            row["day"]
        );
    }

    // Pseudonyms: stable across exports, never the store's.
    let keys = |rows: &[Value]| -> std::collections::BTreeSet<String> {
        rows.iter()
            .map(|r| r["person_key"].as_str().unwrap().to_owned())
            .collect()
    };
    let (k_reg, k_lomb) = (keys(&rows), keys(&lrows));
    assert!(k_lomb.is_subset(&k_reg));
    let stored: std::collections::BTreeSet<String> = column(&env.events(), "person_id")
        .into_iter()
        .flatten()
        .collect();
    assert!(
        k_reg.is_disjoint(&stored),
        "export pseudonyms differ from the store's"
    );
    assert!(k_reg.iter().all(|k| k.len() == 32));
}
