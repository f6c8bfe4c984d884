//! The ANPAL workbook through the real binary, read back by a real reader (Python's openpyxl):
//! its cells equal the KPI engine's results for the same parameters (suppressed at 5), every
//! sheet has its header block, and the same `--as-of` gives identical cells after a late batch.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};

use mirato::row::Cell;
use serde_json::Value;

/// Every sheet's cells as JSON, by openpyxl: {sheet name: [[cell, ...], ...]}.
fn read_xlsx(path: &Path) -> Value {
    let script = r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
print(json.dumps({ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}, default=str))
"#;
    python_json(script, &[path.as_os_str()], None, "openpyxl")
}

fn report(env: &Env, out: &Path, as_of: Option<&str>) {
    let mut c = env.cli();
    c.args(["report", "anpal", "--year", "2024", "--out"])
        .arg(out);
    if let Some(a) = as_of {
        c.args(["--as-of", a]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The table part of a sheet (after the header block and the blank line), as strings.
fn table(sheet: &Value) -> Vec<Vec<String>> {
    let rows = sheet.as_array().unwrap();
    let start = rows.iter().position(|r| r[0].is_null()).unwrap() + 1;
    rows[start..]
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Number(n) => {
                        let x = n.as_f64().unwrap();
                        if x.fract() == 0.0 {
                            format!("{}", x as i64)
                        } else {
                            format!("{x:.6}")
                        }
                    }
                    o => o.to_string(),
                })
                .collect()
        })
        .collect()
}

fn header(sheet: &Value, key: &str) -> String {
    sheet
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == key)
        .map(|r| r[1].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no header {key}"))
}

/// The engine's answer for a year, suppressed at 5, as the table's strings.
fn engine_year(env: &Env, id: &str, by: &str, as_of: &str, year: i32) -> Vec<Vec<String>> {
    // The report's breakdowns go beyond the API's two: parameters built directly, as it does.
    let def = mirato::query::find(id).unwrap();
    let p = mirato::query::Params {
        from: chrono::NaiveDate::from_ymd_opt(year, 1, 1),
        to: chrono::NaiveDate::from_ymd_opt(year, 12, 31),
        by: by
            .split(',')
            .map(|b| mirato::query::Dim::of(def, b).unwrap())
            .collect(),
        as_of: Some(mirato::query::parse_as_of(as_of).unwrap()),
        cell_keys: true,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(async { mirato::query::Engine::open(&env.data)?.run(def, &p).await })
        .unwrap();
    let s = mirato::auth::disclosure::protect(&r, def.kind, 5);
    // The sheet's columns: each coded breakdown's code, then its Italian label, then the value.
    let by: Vec<String> = by.split(',').map(String::from).collect();
    let cols: Vec<String> = by.iter().cloned().chain(["value".into()]).collect();
    let (cols, rows) = mirato::vocabulary::with_labels(&cols, &by, &s.rows);
    rows.iter()
        .map(|m| {
            cols.iter()
                .map(|c| match m.cell(c) {
                    v @ (Cell::Text(_) | Cell::Below(_)) => v.plain(),
                    v @ (Cell::Int(_) | Cell::Float(_)) => {
                        format!("{}", v.as_f64().unwrap() as i64)
                    }
                    _ => String::new(),
                })
                .collect()
        })
        .collect()
}

/// The engine's answer for 2024, the report's year.
fn engine_table(env: &Env, id: &str, by: &str, as_of: &str) -> Vec<Vec<String>> {
    engine_year(env, id, by, as_of, 2024)
}

/// A breakdown sheet against the engine: each group's 2024 figure, then the same group's 2023
/// figure and the relative change (empty where either year has none or withholds it). Returns
/// how many changes it checked.
fn check_sheet(env: &Env, sheet: &Value, id: &str, by: &str, as_of: &str) -> usize {
    let t = table(sheet);
    let now = engine_table(env, id, by, as_of);
    let before = engine_year(env, id, by, as_of, 2023);
    let n = t[0].len() - 2;
    assert_eq!(t[0][n..], ["Anno precedente", "Variazione %"], "{id}");
    let shown: Vec<Vec<String>> = t[1..].iter().map(|r| r[..n].to_vec()).collect();
    assert_eq!(shown, now, "{id}");
    let mut compared = 0;
    for r in &t[1..] {
        let prev = before
            .iter()
            .find(|b| b[..n - 1] == r[..n - 1])
            .map(|b| b[n - 1].clone())
            .unwrap_or_default();
        assert_eq!(r[n], prev, "{id} {r:?}");
        match (r[n - 1].parse::<f64>(), prev.parse::<f64>()) {
            (Ok(a), Ok(b)) if b != 0.0 => {
                let c: f64 = r[n + 1].parse().unwrap();
                assert!((c - (a - b) / b).abs() < 1e-5, "{id} {r:?}");
                compared += 1;
            }
            _ => assert_eq!(r[n + 1], "", "{id} {r:?}"),
        }
    }
    compared
}

/// A sheet of several KPIs with the same breakdowns (`by`): per group, each KPI's 2024 value
/// and its 2023 value beside it. Returns how many cells it compared.
fn check_figures(env: &Env, sheet: &Value, ids: &[&str], by: &str, as_of: &str) -> usize {
    let t = table(sheet);
    // Each breakdown's code and its label.
    let keys = 2 * by.split(',').count();
    assert_eq!(t[0].len(), keys + 2 * ids.len(), "{:?}", t[0]);
    let mut compared = 0;
    for (i, id) in ids.iter().enumerate() {
        let def = mirato::query::find(id).unwrap();
        assert_eq!(t[0][keys + 2 * i], def.label);
        let rate = def.kind == mirato::query::Kind::Rate;
        for (year, col) in [(2024, keys + 2 * i), (2023, keys + 2 * i + 1)] {
            let engine = engine_year(env, id, by, as_of, year);
            for r in &t[1..] {
                let cell = &r[col];
                if rate {
                    assert!(
                        cell.is_empty()
                            || cell.starts_with('<')
                            || cell.parse::<f64>().is_ok_and(|x| (0.0..=1.0).contains(&x)),
                        "{id} {r:?}"
                    );
                    continue;
                }
                let want = engine
                    .iter()
                    .find(|e| e[..keys] == r[..keys])
                    .map(|e| e[keys].clone())
                    .unwrap_or_default();
                assert_eq!(cell, &want, "{id} {year} {r:?}");
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn the_workbook_matches_the_engine_and_reproduces_with_as_of() {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.ingest(&[root.join("sample-data")]);
    let first: PathBuf = env.dir.path().join("out/anpal-2024.xlsx");
    report(&env, &first, None);
    let wb = read_xlsx(&first);
    let names: Vec<&str> = wb.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "1 Iscritti",
            "2 Nuove iscrizioni",
            "3 Cancellazioni",
            "4 Assunzioni",
            "5 Servizi",
            "6 Esiti",
            "7 Obblighi",
            "8 Convenzioni",
            "9 Esoneri e sospensioni"
        ]
    );
    for (name, sheet) in wb.as_object().unwrap() {
        assert_eq!(header(sheet, "Territorio"), "Italia", "{name}");
        assert_eq!(header(sheet, "Periodo"), "01/01/2024 – 31/12/2024");
        assert!(header(sheet, "Protezione delle celle").contains("<5"));
        assert!(header(sheet, "Versione dei dati").starts_with("20"));
        assert!(
            header(sheet, "Per rigenerarlo")
                .starts_with("mirato report anpal --year 2024 --as-of ")
        );
    }
    let as_of = header(&wb["1 Iscritti"], "Dati acquisiti fino a (as_of)");
    // Cells against the engine, same parameters, suppressed the same way, and beside each the
    // year before.
    let mut compared = 0;
    for (sheet, id, by) in [
        (
            "2 Nuove iscrizioni",
            "applications_accepted",
            "province,category",
        ),
        ("3 Cancellazioni", "cancellations", "reason"),
        (
            "4 Assunzioni",
            "hires",
            "province,hiring_mode,contract_class",
        ),
        (
            "1 Iscritti",
            "registered_stock",
            "province,gender,age_band,category",
        ),
    ] {
        compared += check_sheet(&env, &wb[sheet], id, by, &as_of);
    }
    // On the small sample most cells of the finer sheets are withheld; some compare.
    assert!(compared > 20, "{compared} changes checked");
    assert_eq!(
        table(&wb["2 Nuove iscrizioni"])[0],
        [
            "Provincia (codice)",
            "Provincia",
            "Categoria (codice)",
            "Categoria",
            "Valore",
            "Anno precedente",
            "Variazione %"
        ]
    );
    // No English code in what people read: outside the "(codice)" columns and the indicator
    // ids, no cell is a snake_case code, and every label differs from its code beside it.
    let snake = |c: &str| {
        c.contains('_')
            && c.chars()
                .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_')
    };
    for (name, sheet) in wb.as_object().unwrap() {
        let t = table(sheet);
        for (i, head) in t[0].iter().enumerate() {
            if head.ends_with("(codice)") || head == "Indicatore" {
                continue;
            }
            let code_beside = i > 0 && t[0][i - 1].ends_with("(codice)");
            for row in &t[1..] {
                assert!(!snake(&row[i]), "{name}, {head}: code {} shown", row[i]);
                if code_beside && !row[i - 1].is_empty() {
                    assert_ne!(
                        row[i],
                        row[i - 1],
                        "{name}, {head}: no label for {}",
                        row[i]
                    );
                }
            }
        }
    }
    // Sheet 5: one row per service output and rate; sheet 6: the outcome rates and the median
    // time to placement.
    let services = table(&wb["5 Servizi"]);
    assert!(
        services
            .iter()
            .any(|r| r[0] == "Incontro domanda/offerta" && r[1] == "hires_via_matching")
    );
    let received = engine_table(&env, "applications_received", "year", &as_of)[0][1].clone();
    let received_before =
        engine_year(&env, "applications_received", "year", &as_of, 2023)[0][1].clone();
    let row = services
        .iter()
        .find(|r| r[1] == "applications_received")
        .unwrap();
    assert_eq!((&row[3], &row[4]), (&received, &received_before));
    let (a, b): (f64, f64) = (received.parse().unwrap(), received_before.parse().unwrap());
    assert!((row[5].parse::<f64>().unwrap() - (a - b) / b).abs() < 1e-5);
    // A rate's change is in percentage points, in its own column.
    let rate = services.iter().find(|r| r[1] == "acceptance_rate").unwrap();
    let (a, b): (f64, f64) = (rate[3].parse().unwrap(), rate[4].parse().unwrap());
    assert_eq!(rate[5], "");
    assert!((rate[6].parse::<f64>().unwrap() - (a - b) * 100.0).abs() < 1e-4);
    let outcomes = table(&wb["6 Esiti"]);
    assert_eq!(
        outcomes[1..]
            .iter()
            .map(|r| r[0].as_str())
            .collect::<Vec<_>>(),
        [
            "placement_rate_90",
            "placement_rate_180",
            "placement_rate_365",
            "stable_hire_rate",
            "retention_180",
            "time_to_placement"
        ]
    );
    // The employers' side: each KPI's column of groups, and the year before beside it, equal the
    // engine's (the rates, which the engine's table here rounds, are in 0..1 or withheld).
    let mut checked = 0;
    for (sheet, ids, by) in [
        (
            "7 Obblighi",
            &[
                "obliged_employers",
                "reserved_posts",
                "covered_posts",
                "uncovered_posts",
                "quota_coverage_rate",
            ][..],
            "province,sector",
        ),
        (
            "8 Convenzioni",
            &[
                "agreements_signed",
                "planned_hires",
                "hires_under_agreements",
                "agreement_fulfilment_rate",
            ][..],
            "agreement_type",
        ),
    ] {
        checked += check_figures(&env, &wb[sheet], ids, by, &as_of);
    }
    assert!(
        checked > 20,
        "{checked} cells of the employers' side checked"
    );
    let acts = table(&wb["9 Esoneri e sospensioni"]);
    for id in [
        "exemptions_granted",
        "exempted_workers",
        "obligation_suspensions",
        "compensated_posts",
        "numerical_requests",
    ] {
        let row = acts.iter().find(|r| r[0] == id).unwrap();
        let now = engine_table(&env, id, "year", &as_of)
            .first()
            .map(|r| r[1].clone())
            .unwrap_or_default();
        let before = engine_year(&env, id, "year", &as_of, 2023)
            .first()
            .map(|r| r[1].clone())
            .unwrap_or_default();
        assert_eq!((&row[2], &row[3]), (&now, &before), "{id}");
    }
    // A CSV per sheet, with the same header block.
    let csv = std::fs::read_to_string(first.with_extension("2-nuove-iscrizioni.csv")).unwrap();
    assert!(csv.contains(&format!("# Dati acquisiti fino a (as_of): {as_of}\n")));
    assert!(csv.contains(
        "Provincia (codice),Provincia,Categoria (codice),Categoria,Valore,Anno precedente,Variazione %\n"
    ));

    // A late batch of 2024 events; the same --as-of gives the same cells.
    let mut rows = Vec::new();
    for i in 0..8 {
        rows.push(ev(
            "hired",
            &format!("late{i}"),
            "2024-06-15",
            Some(900 + i),
            &[
                ("employer_id", PIVA),
                ("contract_code", "A.01.00"),
                ("hiring_mode", "numerica"),
            ],
        ));
    }
    env.load("late.csv", &rows);
    let again = env.dir.path().join("out/anpal-2024-again.xlsx");
    report(&env, &again, Some(&as_of));
    let wb2 = read_xlsx(&again);
    for (name, sheet) in wb.as_object().unwrap() {
        let strip = |s: &Value| -> Vec<Value> {
            s.as_array()
                .unwrap()
                .iter()
                .filter(|r| r[0] != "Generato il")
                .cloned()
                .collect()
        };
        assert_eq!(strip(sheet), strip(&wb2[name]), "{name}");
    }
    // Without --as-of the report stands at the late batch (most cells of this small sample are
    // suppressed either way, so the header is what shows it).
    let latest = env.dir.path().join("out/anpal-2024-latest.xlsx");
    report(&env, &latest, None);
    let wb3 = read_xlsx(&latest);
    assert_ne!(
        header(&wb3["4 Assunzioni"], "Versione dei dati"),
        header(&wb["4 Assunzioni"], "Versione dei dati")
    );
    assert_ne!(
        header(&wb3["4 Assunzioni"], "Dati acquisiti fino a (as_of)"),
        as_of
    );
}
