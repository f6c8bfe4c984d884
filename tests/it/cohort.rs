//! The evaluators' cohort file, through the real binary and read back by real readers (pyarrow,
//! pandas, polars, DuckDB): its schema, a hand-worked fixture row by row, its row counts against
//! the KPIs on the sample data, its pseudonyms, and that it cannot be linked back: no CPI, no
//! date finer than a month, and every combination of quasi-identifiers shared by k rows.
//! One concern, the cohort file, read top to bottom: over 600 lines because its two fixtures
//! (hand-worked and the sample data) are checked column by column.

use crate::common;
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

fn export(env: &Env, out: &Path, args: &[&str]) -> String {
    export_k(env, out, args, None)
}

/// Exports with the suppression threshold (the k of the k-anonymity) set, or the default;
/// returns what the command says on standard error.
fn export_k(env: &Env, out: &Path, args: &[&str], k: Option<u64>) -> String {
    let mut cmd = env.cli();
    if let Some(k) = k {
        cmd.env("MIRATO_AUTH_SUPPRESSION_THRESHOLD", k.to_string());
    }
    let o = cmd
        .args(["export", "cohort", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

const SCHEMA: [(&str, &str); 28] = [
    ("person_key", "string"),
    ("spell_no", "int32"),
    ("entry_period", "string"),
    ("region", "string"),
    ("province", "string"),
    ("gender", "string"),
    ("age_band", "string"),
    ("category", "string"),
    ("list_type", "string"),
    ("disability_band", "string"),
    ("naspi", "bool"),
    ("withheld", "string"),
    ("days_to_basic_orientation", "int32"),
    ("days_to_pact", "int32"),
    ("days_to_specialist_orientation", "int32"),
    ("days_to_measure", "int32"),
    ("days_to_proposal", "int32"),
    ("days_to_hire", "int32"),
    ("days_to_spell_end", "int32"),
    ("end_reason", "string"),
    ("days_to_first_hire", "int32"),
    ("followup_days", "int32"),
    ("followup_90", "bool"),
    ("followup_180", "bool"),
    ("followup_365", "bool"),
    ("days_to_placement", "int32"),
    ("censored", "bool"),
    ("censoring", "string"),
];

/// The quasi-identifiers: what someone who knows a person from elsewhere could match on.
const QUASI: [&str; 10] = [
    "spell_no",
    "entry_period",
    "region",
    "province",
    "gender",
    "age_band",
    "category",
    "list_type",
    "disability_band",
    "naspi",
];

/// The rows sharing each row's combination of quasi-identifiers (with the `withheld` list, which
/// tells a withheld value from an absent one), smallest first.
fn group_sizes(rows: &[Value]) -> Vec<usize> {
    let mut groups: std::collections::HashMap<String, usize> = Default::default();
    for r in rows {
        let key: Vec<&Value> = QUASI
            .iter()
            .chain(["withheld"].iter())
            .map(|c| &r[*c])
            .collect();
        *groups
            .entry(serde_json::to_string(&key).unwrap())
            .or_default() += 1;
    }
    let mut sizes: Vec<usize> = groups.into_values().collect();
    sizes.sort();
    sizes
}

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
///   19 + 31 + 30 + 10 = 90 days; but the cancellation for moved (Feb 10 → Apr 10 = 19 + 31 + 10
///   = 60 days) comes first: censored at 60, 'cancelled', and so out of placement_rate_90. hire_date (within the spell) is null. Age 64 (55+), band n/a.
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

/// The generalisation steps, in the order the file applies them.
const STEPS: &str = "province,entry_month,naspi,spell_no,entry_quarter,disability_band,category,region,age_band,gender,list_type,entry_year";

#[test]
fn the_hand_worked_fixture_row_by_row() {
    let env = fixture();
    let out = env.dir.path().join("cohort.parquet");
    // Four spells, k = 3 (the legal minimum): no two spells share their attributes, so every
    // quasi-identifier of every row is withheld; the durations stay.
    let said = export_k(
        &env,
        &out,
        &["--from", "2024-01-01", "--to", "2024-12-31"],
        Some(3),
    );
    assert!(
        said.contains("k-anonymity (k = 3): 4 of 4 rows generalised, 0 withheld"),
        "{said}"
    );
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
    assert_eq!(group_sizes(&f["rows"].as_array().unwrap()[..]), [4]);
    let withheld = json!({
        "spell_no": null, "entry_period": null, "region": null, "province": null,
        "gender": null, "age_band": null, "category": null, "list_type": null,
        "disability_band": null, "naspi": null, "withheld": STEPS,
    });
    let row = |v: Value| {
        let mut m = withheld.as_object().unwrap().clone();
        m.extend(v.as_object().unwrap().clone());
        Value::Object(m)
    };
    let no_outcome = json!({
        "days_to_first_hire": null, "followup_days": null, "followup_90": null,
        "followup_180": null, "followup_365": null, "days_to_placement": null,
        "censored": null, "censoring": null,
    });
    let without_outcome = |v: Value| {
        let mut m = v.as_object().unwrap().clone();
        m.extend(no_outcome.as_object().unwrap().clone());
        row(Value::Object(m))
    };
    // p3: spell 1 from 2024-01-05 to 2024-01-31 (26 days); spell 2 from 2024-03-01, proposed
    // on the 5th.
    let p3_1 = without_outcome(json!({
        "days_to_basic_orientation": null, "days_to_pact": null,
        "days_to_specialist_orientation": null, "days_to_measure": null,
        "days_to_proposal": null, "days_to_hire": null, "days_to_spell_end": 26,
        "end_reason": "own_request",
    }));
    let p3_2 = without_outcome(json!({
        "days_to_basic_orientation": null, "days_to_pact": null,
        "days_to_specialist_orientation": null, "days_to_measure": null,
        "days_to_proposal": 4, "days_to_hire": null, "days_to_spell_end": null,
        "end_reason": null,
    }));
    // p1: from 2024-01-15, orientation +5, pact +17 (Feb 1), hired Mar 2 = 16 + 29 + 2 = +47.
    // The follow-up is counted from the end of the pact's month: Feb 29 -> May 10 = 31 + 30 +
    // 10 = 71 days (99 from the pact itself: 90 days of follow-up, not 180).
    let p1 = row(json!({
        "days_to_basic_orientation": 5, "days_to_pact": 17,
        "days_to_specialist_orientation": null, "days_to_measure": null,
        "days_to_proposal": null, "days_to_hire": 47, "days_to_spell_end": null,
        "end_reason": null, "days_to_first_hire": 30, "followup_days": 71,
        "followup_90": true, "followup_180": false, "followup_365": false,
        "days_to_placement": 30, "censored": false, "censoring": null,
    }));
    // p2: from 2024-01-15, pact +26 (Feb 10), cancelled Apr 10 = 16 + 29 + 31 + 10 = +86;
    // hired 90 days after the pact, with exactly 90 days of follow-up; censored at 60.
    let p2 = row(json!({
        "days_to_basic_orientation": null, "days_to_pact": 26,
        "days_to_specialist_orientation": null, "days_to_measure": null,
        "days_to_proposal": null, "days_to_hire": null, "days_to_spell_end": 86,
        "end_reason": "moved", "days_to_first_hire": 90, "followup_days": 71,
        "followup_90": true, "followup_180": false, "followup_365": false,
        "days_to_placement": 60, "censored": true, "censoring": "cancelled",
    }));
    assert_eq!(rows.len(), 4, "{rows:#?}");
    // Rows are in the order of their (here withheld) entry period and pseudonym: not by date.
    for r in [&p1, &p2, &p3_1, &p3_2] {
        assert!(rows.contains(r), "{r:#?} in {rows:#?}");
    }
    // p3's two spells carry one person_key.
    let key_of = |r: &Value| {
        f["rows"].as_array().unwrap()[rows.iter().position(|x| x == r).unwrap()]["person_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(key_of(&p3_1), key_of(&p3_2));
    assert_ne!(key_of(&p1), key_of(&p2));

    // Metadata: the parameters, the anonymity and the command that regenerates the file.
    let md = &f["metadata"];
    assert_eq!(md["mirato.entry"], "registration");
    assert_eq!(md["mirato.from"], "2024-01-01");
    assert_eq!(md["mirato.obs_end"], "2024-05-10");
    assert_eq!(md["mirato.k"], "3");
    assert_eq!(md["mirato.cohort_rows"], "4");
    assert_eq!(md["mirato.rows_generalised"], "4");
    assert_eq!(md["mirato.rows_withheld"], "0");
    assert_eq!(md["mirato.quasi_identifiers"], QUASI.join(","));
    assert_eq!(md["mirato.generalisation_steps"], STEPS);
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

    // Entry by pact, with a territorial filter on the pact: p2 alone, fewer than k: withheld,
    // and said so.
    let out2 = env.dir.path().join("pact.parquet");
    let said = export_k(
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
        Some(3),
    );
    assert!(
        said.contains("0 of 1 rows generalised, 1 withheld"),
        "{said}"
    );
    let f2 = read(&out2);
    assert_eq!(f2["rows"], json!([]));
    assert_eq!(f2["metadata"]["mirato.rows_withheld"], "1");

    // The same cohort through the KPIs: placement_rate_90 of February = 1 / 1. p1 is placed at
    // 30 days; p2 moved on day 60, before any employment hire, so it is censored before day 90
    // and out of both sides (KPIS.md v2: one censoring rule for the rate and the curve), as the
    // file's `censored`/`days_to_placement` give it; time_to_placement: one placement, one
    // censoring.
    let r = env.rows(
        "placement_rate_90",
        &[("from", "2024-02-01"), ("to", "2024-02-29")],
    );
    assert_eq!(
        (r[0]["numerator"].clone(), r[0]["denominator"].clone()),
        (json!(1), json!(1))
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
        (
            &["--cpi", "MI-01"][..],
            "the cohort file is not selected by CPI",
        ),
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
    let said = export(&env, &reg, &["--from", "2024-01-01", "--to", "2024-12-31"]);
    let f = read(&reg);
    let rows = f["rows"].as_array().unwrap().clone();
    assert!(rows.len() > 100, "the sample data has a real cohort");
    cannot_be_linked_back(&f, 5, &said);
    let nn = |c: &'static str| move |r: &Value| !r[c].is_null();
    assert_eq!(
        vec![
            rows.len() as u64,
            count(&rows, nn("days_to_basic_orientation")),
            count(&rows, nn("days_to_pact")),
            count(&rows, |r| !r["days_to_measure"].is_null()
                || !r["days_to_proposal"].is_null()),
            count(&rows, nn("days_to_hire")),
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
    assert!(
        lrows
            .iter()
            .all(|r| r["region"] == "Lombardia" || r["region"].is_null())
    );

    // Entry by pact = the cohort of the outcome KPIs.
    let pact = env.dir.path().join("pact.parquet");
    let said = export(
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
    let fp = read(&pact);
    cannot_be_linked_back(&fp, 5, &said);
    let prows = fp["rows"].as_array().unwrap().clone();
    for n in [90i64, 180, 365] {
        let r = &env.rows(&format!("placement_rate_{n}"), &year)[0];
        let flag = format!("followup_{n}");
        // KPIS.md v2: a row censored before day N (a cancellation for deceased or moved before
        // any employment hire) is out of both sides, as the curve censors it.
        let counted = |r: &Value| {
            r[&flag] == true
                && !(r["censoring"] == "cancelled"
                    && r["days_to_placement"].as_i64().is_some_and(|d| d < n))
        };
        let den = count(&prows, counted);
        let num = count(&prows, |r| {
            counted(r) && r["days_to_first_hire"].as_i64().is_some_and(|d| d <= n)
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
    // pact, as the KPIs take them): what the evaluator page shows. Gender is among the last
    // values the k-anonymity withholds: the few rows that lost it are what each subgroup misses.
    let by_gender = env.rows("placement_rate_180", &[year[0], year[1], ("by", "gender")]);
    // Counted as the KPI counts (KPIS.md v2): 180 days of follow-up and not censored before.
    let counted_180 = |r: &Value| {
        r["followup_180"] == true
            && !(r["censoring"] == "cancelled"
                && r["days_to_placement"].as_i64().is_some_and(|d| d < 180))
    };
    let placed_180 =
        |r: &Value| counted_180(r) && r["days_to_first_hire"].as_i64().is_some_and(|d| d <= 180);
    let (mut missing_num, mut missing_den) = (0, 0);
    for row in by_gender.as_array().unwrap() {
        let g = row["gender"].as_str().unwrap();
        let mine: Vec<&Value> = prows.iter().filter(|r| r["gender"] == g).collect();
        let den = mine.iter().filter(|r| counted_180(r)).count() as u64;
        let num = mine.iter().filter(|r| placed_180(r)).count() as u64;
        let (kpi_num, kpi_den) = (
            row["numerator"].as_u64().unwrap(),
            row["denominator"].as_u64().unwrap(),
        );
        assert!(num <= kpi_num && den <= kpi_den, "{g}");
        missing_num += kpi_num - num;
        missing_den += kpi_den - den;
    }
    let hidden: Vec<&Value> = prows.iter().filter(|r| r["gender"].is_null()).collect();
    assert!(
        hidden.len() * 20 < prows.len(),
        "{} rows without gender",
        hidden.len()
    );
    assert_eq!(
        (missing_num, missing_den),
        (
            hidden.iter().filter(|r| placed_180(r)).count() as u64,
            hidden.iter().filter(|r| counted_180(r)).count() as u64
        )
    );
    // Censored at the observation end: the follow-up as the file shows it.
    for r in prows.iter().filter(|r| r["censoring"] == "observation_end") {
        assert_eq!(r["days_to_placement"], r["followup_days"]);
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

/// The file cannot be linked back: no CPI and no date finer than a month, and every combination
/// of quasi-identifiers is shared by at least k rows; the file and the command say how many rows
/// it changed.
fn cannot_be_linked_back(f: &Value, k: usize, said: &str) {
    for (name, ty) in f["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (&p[0], &p[1]))
    {
        let name = name.as_str().unwrap();
        assert!(!name.contains("cpi"), "{name}");
        assert!(!ty.as_str().unwrap().starts_with("date"), "{name}: {ty}");
    }
    let rows = f["rows"].as_array().unwrap();
    for r in rows {
        if let Some(p) = r["entry_period"].as_str() {
            assert!(p.len() <= 7, "no finer than a month: {p}");
        }
    }
    let sizes = group_sizes(rows);
    let unique = sizes.iter().filter(|&&n| n == 1).count();
    assert_eq!(unique, 0, "rows unique on their quasi-identifiers");
    assert!(sizes[0] >= k, "smallest group {} < k = {k}", sizes[0]);
    assert_eq!(sizes.iter().sum::<usize>(), rows.len());
    let md = &f["metadata"];
    let generalised = rows.iter().filter(|r| r["withheld"] != "").count();
    assert_eq!(md["mirato.k"], k.to_string());
    assert_eq!(md["mirato.rows_generalised"], generalised.to_string());
    assert_eq!(md["mirato.rows_withheld"], "0");
    assert_eq!(md["mirato.cohort_rows"], rows.len().to_string());
    let line = format!(
        "k-anonymity (k = {k}): {generalised} of {} rows generalised, 0 withheld",
        rows.len()
    );
    assert!(said.contains(&line), "{said}");
    eprintln!(
        "{line}; {} groups, the smallest of {}",
        sizes.len(),
        sizes[0]
    );
}
