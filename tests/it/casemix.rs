//! The case-mix adjustment (`placement_oe_180`) against an independent fit: statsmodels'
//! binomial GLM with the same main effects, on the same covariate patterns, gives the same
//! expected placements per province; and the O/E figures below admin keep their noise.

use crate::common;
use common::*;

use std::path::Path;

use mirato::query::casemix::COVARIATES;
use mirato::query::params::Dim;
use mirato::query::{Engine, KpiDef, Params, find};
use serde_json::{Value, json};

/// statsmodels' answer: the patterns' placements as a binomial GLM (successes, failures) on
/// the covariates' dummies, then each province's expected placements as the sum of its
/// patterns' entries times their fitted chances.
const STATSMODELS: &str = r#"
import json, sys
import warnings
import pandas as pd
import statsmodels.api as sm
q = json.load(sys.stdin)
rows = pd.DataFrame(q["rows"])
covariates = q["covariates"]
national = rows.groupby(covariates, as_index=False)[["numerator", "denominator"]].sum()
def design(frame, first):
    # Treatment coding, each covariate's first level the reference (any full-rank coding gives
    # the same fitted chances).
    return pd.get_dummies(frame[covariates].astype(str), drop_first=first, dtype=float)
x = design(national, True)
x.insert(0, "const", 1.0)
endog = pd.DataFrame({"placed": national["numerator"], "not": national["denominator"] - national["numerator"]})
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m = sm.GLM(endog, x, family=sm.families.Binomial()).fit(method="IRLS", maxiter=300, tol=1e-12)
assert m.converged
xt = design(rows, False).reindex(columns=x.columns[1:], fill_value=0.0)
xt.insert(0, "const", 1.0)
rows["chance"] = m.predict(xt)
rows["expected"] = rows["chance"] * rows["denominator"]
out = rows.groupby("province").agg(observed=("numerator", "sum"), expected=("expected", "sum"), cohort=("denominator", "sum"))
print(json.dumps({p: {"observed": int(r.observed), "expected": float(r.expected), "cohort": int(r.cohort)} for p, r in out.iterrows()}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_oe_matches_statsmodels() {
    let env = Env::new();
    env.ingest(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data")]);
    let engine = Engine::open(&env.data).unwrap();
    let params = |def: &KpiDef, by: &[&str]| Params {
        from: "2022-01-01".parse().ok(),
        to: "2024-12-31".parse().ok(),
        by: by.iter().map(|d| Dim::of(def, d).unwrap()).collect(),
        ..Params::default()
    };
    // The covariate patterns per province, as placement_rate_180 counts them.
    let rate = find("placement_rate_180").unwrap();
    let mut by = vec!["province"];
    by.extend(COVARIATES);
    let p = params(rate, &by);
    let patterns = engine.run(rate, &p).await.unwrap();
    assert!(
        patterns.rows.len() > 50,
        "too few patterns to fit: {}",
        patterns.rows.len()
    );
    let rows: Vec<Value> = patterns
        .rows
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    let input = json!({"rows": rows, "covariates": COVARIATES}).to_string();
    if let Some(dump) = std::env::var_os("MIRATO_CASEMIX_DUMP") {
        std::fs::write(dump, &input).unwrap();
    }
    let reference = python_json(STATSMODELS, &[], Some(&input), "statsmodels pandas");

    let oe = find("placement_oe_180").unwrap();
    let p = params(oe, &["province"]);
    let ours = engine.run(oe, &p).await.unwrap();
    let reference = reference.as_object().unwrap();
    assert_eq!(ours.rows.len(), reference.len(), "provinces");
    let (mut o_total, mut e_total) = (0.0, 0.0);
    for row in &ours.rows {
        let prov = row.text("province").unwrap();
        let r = &reference[prov];
        assert_eq!(
            row.count("observed").unwrap(),
            r["observed"].as_u64().unwrap(),
            "{prov}"
        );
        assert_eq!(
            row.count("cohort").unwrap(),
            r["cohort"].as_u64().unwrap(),
            "{prov}"
        );
        let (e, want) = (
            row.f64("expected").unwrap(),
            r["expected"].as_f64().unwrap(),
        );
        assert!(
            (e - want).abs() <= 1e-6 * want.max(1.0),
            "{prov}: expected {e}, statsmodels {want}"
        );
        let value = row.f64("value").unwrap();
        assert!((value - row.f64("observed").unwrap() / e).abs() < 1e-12);
        o_total += row.f64("observed").unwrap();
        e_total += e;
    }
    // A fitted logistic model with an intercept expects as many placements as there were.
    assert!(
        (o_total - e_total).abs() < 1e-6 * o_total,
        "{o_total} vs {e_total}"
    );
}
