//! The KPI fixtures kept as data: every `tests/kpi/*.case` file is a small event set, the
//! parameters of some KPI calls and the rows worked out by hand, with the arithmetic in `#`
//! comments (the format is in `tests/kpi/README.md`). Each file runs through the real ingest into
//! a fresh store and the real engine; a failure names the file and line, and shows the expected
//! and the actual rows. Analysts add a case without writing Rust.

use crate::common;
use common::*;

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The parameters a KPI call takes, as `key=value` words after its id.
const PARAMS: [&str; 7] = ["from", "to", "by", "region", "province", "cpi", "as_of"];

/// One step of a case file, in file order.
enum Step {
    /// CSV rows in the input contract; consecutive blocks are ingested as one file.
    Events {
        line: usize,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A KPI call and the result expected.
    Query {
        line: usize,
        call: Call,
        /// `result path=value`: fields of the whole result (`params.to`, `median_days`).
        fields: Vec<(String, String)>,
        header: Vec<String>,
        /// Each expected row with its line number.
        rows: Vec<(usize, Vec<String>)>,
    },
    /// A KPI call that must fail on its parameters, with texts its message contains.
    Error {
        line: usize,
        call: Call,
        texts: Vec<String>,
    },
}

struct Call {
    kpi: String,
    params: Vec<(String, String)>,
}

impl Call {
    fn parse(words: &[&str], line: usize) -> Result<Call, String> {
        let (kpi, rest) = words
            .split_first()
            .ok_or(format!("line {line}: a KPI id is missing"))?;
        let mut params = Vec::new();
        for w in rest {
            let (k, v) = w
                .split_once('=')
                .ok_or(format!("line {line}: `{w}` is not key=value"))?;
            if !PARAMS.contains(&k) {
                return Err(format!(
                    "line {line}: unknown parameter `{k}` (one of {})",
                    PARAMS.join(", ")
                ));
            }
            params.push((k.to_owned(), v.to_owned()));
        }
        Ok(Call {
            kpi: (*kpi).to_owned(),
            params,
        })
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kpi)?;
        for (k, v) in &self.params {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// Cells of one CSV line, trimmed (columns may be aligned with spaces).
fn cells(text: &str, line: usize) -> Result<Vec<String>, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let rec = r
        .records()
        .next()
        .ok_or(format!("line {line}: empty row"))?
        .map_err(|e| format!("line {line}: {e}"))?;
    Ok(rec.iter().map(str::to_owned).collect())
}

/// Splits a case file into steps. Blocks end at a blank line; `#` lines are comments anywhere.
fn parse(text: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (line, head) = lines[i];
        i += 1;
        if head.is_empty() {
            continue;
        }
        // The block's body: the lines up to the next blank one.
        let start = i;
        while i < lines.len() && !lines[i].1.is_empty() {
            i += 1;
        }
        let body = &lines[start..i];
        let words: Vec<&str> = head.split_whitespace().collect();
        match words[0] {
            "events" => {
                let ((hl, h), rest) = body
                    .split_first()
                    .ok_or(format!("line {line}: events without a header row"))?;
                let header = cells(h, *hl)?;
                let mut rows = Vec::new();
                for (l, text) in rest {
                    let row = cells(text, *l)?;
                    if row.len() != header.len() {
                        return Err(format!(
                            "line {l}: {} cells, the header has {}",
                            row.len(),
                            header.len()
                        ));
                    }
                    rows.push(row);
                }
                steps.push(Step::Events { line, header, rows });
            }
            "query" => {
                let call = Call::parse(&words[1..], line)?;
                let mut fields = Vec::new();
                let mut body = body.iter().peekable();
                while let Some((l, text)) = body.next_if(|(_, t)| t.starts_with("result ")) {
                    for w in text["result ".len()..].split_whitespace() {
                        let (k, v) = w
                            .split_once('=')
                            .ok_or(format!("line {l}: `{w}` is not path=value"))?;
                        fields.push((k.to_owned(), v.to_owned()));
                    }
                }
                let (hl, h) = body
                    .next()
                    .ok_or(format!("line {line}: query without a header row"))?;
                let header = cells(h, *hl)?;
                let mut rows = Vec::new();
                for (l, text) in body {
                    let row = cells(text, *l)?;
                    if row.len() != header.len() {
                        return Err(format!(
                            "line {l}: {} cells, the header has {}",
                            row.len(),
                            header.len()
                        ));
                    }
                    rows.push((*l, row));
                }
                steps.push(Step::Query {
                    line,
                    call,
                    fields,
                    header,
                    rows,
                });
            }
            "error" => {
                let call = Call::parse(&words[1..], line)?;
                let texts: Vec<String> = body.iter().map(|(_, t)| t.trim().to_owned()).collect();
                if texts.is_empty() {
                    return Err(format!("line {line}: error without the text expected"));
                }
                steps.push(Step::Error { line, call, texts });
            }
            other => {
                return Err(format!(
                    "line {line}: `{other}` is not events, query or error"
                ));
            }
        }
    }
    Ok(steps)
}

/// Whether a result value matches a cell as written: `*` anything, `null`, an integer, a decimal
/// (`0.75`, within 1e-12), a fraction (`2/3`), `~0.1802` (within one unit of the last digit), or
/// text. A number written without a point or a slash must be an integer in the result, and one
/// with them a decimal: the type is part of the answer.
fn matches(cell: &str, got: &Value) -> bool {
    let close = |want: f64, tol: f64| {
        got.as_f64()
            .is_some_and(|g| got.is_f64() && (g - want).abs() <= tol)
    };
    let exact = |want: f64| close(want, 1e-12 * want.abs().max(1.0));
    if cell == "*" {
        return true;
    }
    if let Value::String(s) = got {
        return s == cell;
    }
    if cell == "null" {
        return got.is_null();
    }
    if let Some(approx) = cell.strip_prefix('~') {
        let decimals = approx.split_once('.').map_or(0, |(_, d)| d.len());
        return approx
            .parse::<f64>()
            .is_ok_and(|want| close(want, 10f64.powi(-(decimals as i32))));
    }
    if let Some((n, d)) = cell.split_once('/') {
        return match (n.parse::<f64>(), d.parse::<f64>()) {
            (Ok(n), Ok(d)) => exact(n / d),
            _ => false,
        };
    }
    if let Ok(i) = cell.parse::<i64>() {
        return got.as_i64() == Some(i) && !got.is_f64();
    }
    cell.parse::<f64>().is_ok_and(exact)
}

/// A result value as a cell, for the message when a row differs.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 {
                format!("{f:.1}")
            } else {
                f.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// The text of a panic, for the failures that the shared helpers report by panicking.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Writes the events gathered so far as one CSV file and ingests it; every row must be stored.
fn ingest(env: &Env, batch: &mut Vec<Vec<(String, String)>>, n: usize) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(batch);
    catch_unwind(AssertUnwindSafe(|| {
        env.load(&format!("batch{n}.csv"), &rows)
    }))
    .map_err(|p| format!("the events do not ingest cleanly: {}", panic_text(p)))
}

/// One event as (field, value) pairs: an empty cell is an absent field, and `p7` in `person_cf`
/// stands for the seventh test person's valid CF.
fn event_row(header: &[String], row: &[String]) -> Vec<(String, String)> {
    header
        .iter()
        .zip(row)
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let number = v.strip_prefix('p').and_then(|n| n.parse::<u32>().ok());
            match number {
                Some(n) if k == "person_cf" => (k.clone(), person(n)),
                _ => (k.clone(), v.clone()),
            }
        })
        .collect()
}

/// Runs one case file; returns its failures, each starting with `file:line`.
fn run_file(path: &Path) -> Vec<String> {
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    let steps = match parse(&text) {
        Ok(s) => s,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    let env = Env::new();
    let mut batch = Vec::new();
    let mut batches = 0;
    let mut failures = Vec::new();
    for step in &steps {
        let at = match step {
            Step::Events { line, .. } | Step::Query { line, .. } | Step::Error { line, .. } => {
                format!("{name}:{line}")
            }
        };
        if !matches!(step, Step::Events { .. }) && !batch.is_empty() {
            batches += 1;
            if let Err(e) = ingest(&env, &mut batch, batches) {
                failures.push(format!("{at}: {e}"));
                return failures;
            }
        }
        match step {
            Step::Events { header, rows, .. } => {
                batch.extend(rows.iter().map(|r| event_row(header, r)));
            }
            Step::Query {
                call,
                fields,
                header,
                rows,
                ..
            } => {
                let got = catch_unwind(AssertUnwindSafe(|| env.kpi(&call.kpi, &call.pairs())));
                match got {
                    Err(p) => failures.push(format!("{at}: {call}: {}", panic_text(p))),
                    Ok(result) => {
                        if let Some(f) = check_query(&result, fields, header, rows) {
                            failures.push(format!("{at}: {call}\n{f}"));
                        }
                    }
                }
            }
            Step::Error { call, texts, .. } => {
                let got =
                    catch_unwind(AssertUnwindSafe(|| env.kpi_error(&call.kpi, &call.pairs())));
                match got {
                    Err(p) => failures.push(format!("{at}: {call}: {}", panic_text(p))),
                    Ok(message) => {
                        for t in texts.iter().filter(|t| !message.contains(t.as_str())) {
                            failures.push(format!(
                                "{at}: {call}: the message does not contain `{t}`: {message}"
                            ));
                        }
                    }
                }
            }
        }
    }
    if !batch.is_empty() {
        failures.push(format!(
            "{name}: events after the last query are never used"
        ));
    }
    failures
}

/// Compares a KPI result with the expected fields and rows; `None` when they agree.
fn check_query(
    result: &Value,
    fields: &[(String, String)],
    header: &[String],
    rows: &[(usize, Vec<String>)],
) -> Option<String> {
    let mut out = String::new();
    for (path, want) in fields {
        let got = path.split('.').fold(result, |v, k| &v[k]);
        if !matches(want, got) {
            let _ = writeln!(out, "  result {path}: expected {want}, got {}", shown(got));
        }
    }
    let empty = Vec::new();
    let got_rows = result["rows"].as_array().unwrap_or(&empty);
    let mut differs = got_rows.len() != rows.len();
    for (i, row) in got_rows.iter().enumerate() {
        let keys: Vec<&String> = row
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        if keys.len() != header.len() || keys.iter().any(|k| !header.contains(k)) {
            let _ = writeln!(
                out,
                "  row {}: columns {keys:?}, the header names {header:?}",
                i + 1
            );
            differs = true;
        } else if let Some((line, want)) = rows.get(i) {
            for (col, cell) in header.iter().zip(want) {
                if !matches(cell, &row[col]) {
                    let _ = writeln!(
                        out,
                        "  line {line}, {col}: expected {cell}, got {}",
                        shown(&row[col])
                    );
                    differs = true;
                }
            }
        }
    }
    if differs {
        let _ = writeln!(out, "  expected:\n    {}", header.join(","));
        for (_, r) in rows {
            let _ = writeln!(out, "    {}", r.join(","));
        }
        let _ = writeln!(out, "  got:\n    {}", header.join(","));
        for r in got_rows {
            let cells: Vec<String> = header.iter().map(|c| shown(&r[c])).collect();
            let _ = writeln!(out, "    {}", cells.join(","));
        }
    }
    (!out.is_empty()).then_some(out)
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("kpi");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    files.sort();
    files
}

/// Every case file, a few at a time (each has its own store). `MIRATO_CASES=text` runs only the
/// files whose name contains the text.
#[test]
fn kpi_case_files() {
    let only = std::env::var("MIRATO_CASES").unwrap_or_default();
    let files: Vec<PathBuf> = case_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&only))
        .collect();
    assert!(!files.is_empty(), "no case file matches `{only}`");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break out };
                        out.extend(run_file(f));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case runner thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A fresh store holding every event of a case file, for the checks a case cannot say.
fn case_env(file: &str) -> Env {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kpi")
        .join(file);
    let steps = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for step in &steps {
        if let Step::Events {
            header, rows: r, ..
        } = step
        {
            rows.extend(r.iter().map(|r| event_row(header, r)));
        }
    }
    let env = Env::new();
    env.load("events.csv", &rows);
    env
}

/// Every band of the placement cohort's survival curve holds the curve within [0, 1]: every S
/// there is strictly between 0 and 1, so every row has a band (the case file checks one).
#[test]
fn survival_bands_enclose_the_curve() {
    let env = case_env("7_esiti_cohort.case");
    let rows = env.rows(
        "time_to_placement",
        &[("from", "2025-01-01"), ("to", "2025-12-31")],
    );
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 8, "{rows:?}");
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("a number, got {v}"));
    for row in rows {
        let (lo, s, hi) = (
            num(&row["lower"]),
            num(&row["survival"]),
            num(&row["upper"]),
        );
        assert!(0.0 <= lo && lo <= s && s <= hi && hi <= 1.0, "{row}");
    }
}

/// KPIS.md v2: one placement event and one censoring rule for the rate and the curve. On the
/// entries with N days of follow-up of the placement cohort (pacts up to obs_end - N), where
/// nobody is censored before day N, placement_rate_N = 1 - S(N) of time_to_placement computed
/// on those same entries.
#[test]
fn placement_rate_is_one_minus_the_curve() {
    let env = case_env("7_esiti_cohort.case");
    // obs_end is 2025-12-31: 2025-10-02 + 90 days and 2025-07-04 + 180 days reach it.
    for (n, last_pact) in [(90, "2025-10-02"), (180, "2025-07-04")] {
        let period = [("from", "2025-01-01"), ("to", last_pact)];
        let rate = env.rows(&format!("placement_rate_{n}"), &period);
        let rate = rate[0]["value"].as_f64().expect("a rate");
        let curve = env.rows("time_to_placement", &period);
        let curve = curve.as_array().expect("rows");
        let day = |r: &Value| r["day"].as_i64().expect("a day");
        assert!(
            curve
                .iter()
                .all(|r| day(r) >= n || r["censored"].as_i64() == Some(0)),
            "the fixture must have nobody censored before day {n}: {curve:?}"
        );
        let s = curve
            .iter()
            .rfind(|r| day(r) <= n)
            .map_or(1.0, |r| r["survival"].as_f64().expect("S"));
        assert!(
            (rate - (1.0 - s)).abs() < 1e-12,
            "N = {n}: placement_rate {rate}, 1 - S(N) = {}",
            1.0 - s
        );
    }
}

/// Every KPI of `queries/` has a hand-worked case.
#[test]
fn every_kpi_has_a_case() {
    let mut called = String::new();
    for f in case_files() {
        called.push_str(&std::fs::read_to_string(f).unwrap());
    }
    let words: std::collections::HashSet<&str> = called
        .lines()
        .filter_map(|l| l.strip_prefix("query "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut missing = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.extension().is_some_and(|x| x == "sql")
            && !stem.starts_with('_')
            && !words.contains(stem.as_str())
        {
            missing.push(stem);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "KPIs without a case in tests/kpi: {missing:?}"
    );
}
