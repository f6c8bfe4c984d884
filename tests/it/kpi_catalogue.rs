//! The whole catalogue through the CLI on generated data: every KPI answers, with every
//! breakdown it takes, in every format; bad parameters give one sentence and exit code 2.

use crate::common;
use common::*;

/// 300 generated persons, 2024-2025, in one batch.
fn generated_store() -> Env {
    common::generated_store(300, 11, "2024-01-01", "2025-12-31")
}

fn run(env: &Env, args: &[&str]) -> std::process::Output {
    env.cli().arg("kpi").args(args).output().unwrap()
}

#[test]
fn every_kpi_answers_with_every_breakdown() {
    let env = generated_store();
    let out = run(
        &env,
        &[
            "--all",
            "--from",
            "2024-01-01",
            "--to",
            "2025-12-31",
            "--format",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kpi"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), mirato::query::catalog().len());
    for def in mirato::query::catalog() {
        // Its own breakdowns, and two common ones together.
        let mut bys: Vec<String> = def.own.iter().map(|s| s.to_string()).collect();
        if def.kind == mirato::query::Kind::Oe {
            // Observed/expected compares territories, one kind at a time.
            bys.extend(mirato::query::casemix::TERRITORIES.map(String::from));
        } else {
            bys.push("region,year".into());
        }
        if def.person && def.kind != mirato::query::Kind::Oe {
            bys.push("gender,age_band".into());
        }
        for by in bys {
            let out = run(
                &env,
                &[
                    def.id,
                    "--from",
                    "2024-01-01",
                    "--to",
                    "2025-12-31",
                    "--by",
                    &by,
                    "--format",
                    "json",
                ],
            );
            assert!(
                out.status.success(),
                "{} by {by}: {}",
                def.id,
                String::from_utf8_lossy(&out.stderr)
            );
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(r["kpi"], def.id);
            for row in r["rows"].as_array().unwrap() {
                for key in by.split(',') {
                    assert!(
                        row.get(key).is_some(),
                        "{} by {by}: row without {key}: {row}",
                        def.id
                    );
                }
                // No NaN or infinity ever reaches the output.
                for (_, val) in row.as_object().unwrap() {
                    if let Some(f) = val.as_f64() {
                        assert!(f.is_finite());
                    }
                }
            }
        }
    }
}

#[test]
fn formats_and_errors() {
    let env = generated_store();
    let out = run(
        &env,
        &["acceptance_rate", "--by", "region", "--format", "csv"],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().next(),
        Some("region,value,numerator,denominator")
    );
    let out = run(&env, &["acceptance_rate", "--format", "table"]);
    assert!(out.status.success());
    let out = run(&env, &["--list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for def in mirato::query::catalog() {
        assert!(text.contains(def.id), "{} listed", def.id);
    }
    for (args, needle) in [
        (vec!["nope"], "unknown KPI"),
        (vec!["hires", "--from", "2025-02-30"], "YYYY-MM-DD"),
        (
            vec!["hires", "--from", "2025-06-01", "--to", "2025-01-01"],
            "after",
        ),
        (vec!["hires", "--by", "reason"], "contract_class"),
        (vec!["vacancies_opened", "--by", "gender"], "allowed"),
        (vec!["hires", "--region", "Narnia"], "Lombardia"),
    ] {
        let out = run(&env, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
        assert!(!err.contains("panicked"));
    }
}
