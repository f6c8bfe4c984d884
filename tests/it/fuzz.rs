//! Fuzzing the input side with property tests (proptest): event files of mutated and of random
//! content through the real ingest, the codes' checks, every route's URL parameters and the
//! dashboard files. Nothing may panic or answer 500; every row read is stored, a duplicate or
//! rejected (`read = stored + duplicates + rejected`), or the file is rejected whole with a
//! reason.
//!
//! CI runs proptest's default number of cases (fewer for the routes, which compute figures);
//! `PROPTEST_CASES` raises them and `benches/fuzz.sh` runs them for ten minutes. Each test
//! prints the cases it ran (`FUZZ-CASES name n`).

use crate::common::*;

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::Request;
use mirato::ingest::FileReport;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::ServiceExt;

const EVENT_TYPES: [&str; 12] = [
    "registration",
    "basic_orientation",
    "pact_signed",
    "pact_updated",
    "specialist_orientation",
    "measure_started",
    "measure_ended",
    "vacancy_opened",
    "application_submitted",
    "candidate_proposed",
    "hired",
    "employment_ended",
];

/// Values that break naive parsers, beside arbitrary text.
fn nasty_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".into()),
        Just("NULL".into()),
        Just("-0".into()),
        Just("1e309".into()),
        Just("NaN".into()),
        Just("99999999999999999999999".into()),
        Just("2024-02-30".into()),
        Just("0000-01-01".into()),
        Just("9999-12-31T25:61:61Z".into()),
        Just("2024-03-05T10:00:00+99:00".into()),
        Just("\"".into()),
        Just(",\n,".into()),
        Just("\r\n".into()),
        Just("\u{0}".into()),
        Just("=HYPERLINK(\"http://x\")".into()),
        Just("🙂ÀÉ\u{202e}".into()),
        Just("x".repeat(10_000)),
        "[0-9]{1,12}",
        "[A-Z0-9]{16}",
        ".{0,40}",
        any::<String>(),
    ]
}

/// Rows that start valid and have some of their fields replaced, removed, or added.
fn mutated_rows() -> impl Strategy<Value = Vec<Vec<(String, String)>>> {
    let row = (
        0..EVENT_TYPES.len(),
        0u32..50,
        prop::collection::vec((0usize..40, nasty_value()), 0..4),
        prop::option::of(0usize..40),
        prop::option::of(("[a-z_]{1,12}", nasty_value())),
    )
        .prop_map(|(t, id, edits, removed, added)| {
            let mut r = base_row(EVENT_TYPES[t], &format!("fz-{id}"));
            for (i, v) in edits {
                let n = r.len();
                r[i % n].1 = v;
            }
            if let Some(i) = removed {
                let n = r.len();
                r.remove(i % n);
            }
            if let Some((k, v)) = added {
                r.push((k, v));
            }
            r
        });
    prop::collection::vec(row, 1..8)
}

/// The ingest's promise for one file: nothing panics, and every row is accounted for.
fn accounted(report: &FileReport, rows: Option<usize>) -> Result<(), TestCaseError> {
    match report {
        FileReport::Read {
            read,
            stored,
            duplicates,
            rejected,
            ..
        } => {
            prop_assert_eq!(*read, stored + duplicates + rejected);
            if let Some(n) = rows {
                prop_assert_eq!(*read, n as u64, "every row read");
            }
        }
        FileReport::Failed { error, .. } => prop_assert!(!error.is_empty()),
    }
    Ok(())
}

fn cases(default: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        failure_persistence: None,
        ..Config::default()
    }
}

fn report_cases(name: &str, n: &AtomicUsize) {
    println!("FUZZ-CASES {name} {}", n.load(Ordering::Relaxed));
}

#[test]
fn mutated_event_files_never_panic_and_every_row_is_accounted_for() {
    let env = Env::new();
    let ran = AtomicUsize::new(0);
    let mut runner = TestRunner::new(cases(256));
    runner
        .run(&(mutated_rows(), any::<bool>()), |(rows, jsonl)| {
            let n = ran.fetch_add(1, Ordering::Relaxed);
            let (name, text) = if jsonl {
                (format!("f{n}.jsonl"), jsonl_of(&rows))
            } else {
                (format!("f{n}.csv"), csv_of(&rows))
            };
            let report = env.ingest_one(&env.write(&name, text));
            // A file whose header lost a needed column is rejected whole; otherwise every
            // row is read.
            accounted(&report, Some(rows.len()))
        })
        .unwrap();
    report_cases("mutated_event_files", &ran);
    // The store is sound after all of it.
    let out = env.cli().arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn random_bytes_as_event_files_never_panic() {
    let env = Env::new();
    let ran = AtomicUsize::new(0);
    let mut runner = TestRunner::new(cases(256));
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        // A valid header, then noise: the rows' path, not the header's.
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(|noise| {
            let mut b = csv_of(&[base_row("hired", "x")])
                .lines()
                .next()
                .unwrap()
                .as_bytes()
                .to_vec();
            b.push(b'\n');
            b.extend(noise);
            b
        }),
    ];
    runner
        .run(&(bytes, 0..4usize), |(content, ext)| {
            let n = ran.fetch_add(1, Ordering::Relaxed);
            let ext = ["csv", "jsonl", "csv.gz", "jsonl.gz"][ext];
            let report = env.ingest_one(&env.write(&format!("r{n}.{ext}"), content));
            accounted(&report, None)
        })
        .unwrap();
    report_cases("random_bytes", &ran);
}

#[test]
fn the_codes_checks_take_any_text() {
    let ran = AtomicUsize::new(0);
    let mut runner = TestRunner::new(cases(2048));
    runner
        .run(&prop_oneof![any::<String>(), "[A-Za-z0-9 ]{0,20}"], |s| {
            ran.fetch_add(1, Ordering::Relaxed);
            let norm = mirato::codes::normalise_cf(&s);
            let valid = mirato::codes::is_valid_cf16(&norm);
            if valid {
                prop_assert!(mirato::codes::cf_facts(&norm).is_some() || norm.len() == 16);
            }
            let _ = mirato::codes::is_valid_numeric11(&s);
            let _ = mirato::codes::is_valid_employer_id(&s);
            // The check functions take any bytes (callers check the shape first).
            prop_assert!(mirato::codes::cf_check_char(s.as_bytes()).is_ascii_uppercase());
            prop_assert!(mirato::codes::numeric_check_digit(s.as_bytes()).is_ascii_digit());
            Ok(())
        })
        .unwrap();
    report_cases("codes", &ran);
}

/// Query-string keys every route may see: the filters, and some that no route knows.
const KEYS: [&str; 16] = [
    "from",
    "to",
    "as_of",
    "by",
    "region",
    "province",
    "cpi",
    "gender",
    "age_band",
    "category",
    "list_type",
    "year",
    "quarter",
    "format",
    "page",
    "zzz",
];

#[test]
fn every_route_takes_any_url_parameters_without_a_500() {
    let env = generated_store(60, 9, "2024-01-01", "2024-12-31");
    let token = env.access().tokens["admin"].clone();
    let state = env.app_state();
    let slugs: Vec<String> = state.pages().iter().map(|p| p.slug.clone()).collect();
    let mut paths: Vec<String> = vec![
        "/".into(),
        "/api/kpis".into(),
        "/api/kpi/hires".into(),
        "/api/kpi/placement_rate_180".into(),
        "/api/kpi/nope".into(),
        "/valutazione".into(),
        "/api/evaluation".into(),
        "/report/anpal".into(),
        "/healthz".into(),
        "/jobs".into(),
        "/api/jobs".into(),
        "/admin/audit".into(),
        "/api/audit".into(),
        "/metrics".into(),
    ];
    for s in &slugs {
        paths.push(format!("/p/{s}"));
        paths.push(format!("/export/{s}/panel-1.csv"));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ran = AtomicUsize::new(0);
    let mut runner = TestRunner::new(cases(128));
    let query = prop::collection::vec((0..KEYS.len(), nasty_value()), 0..5);
    runner
        .run(&(0..paths.len(), query), |(p, params)| {
            ran.fetch_add(1, Ordering::Relaxed);
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                q.append_pair(KEYS[*k], v);
            }
            let uri = format!("{}?{}", paths[p], q.finish());
            let req = Request::builder()
                .uri(&uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let resp = rt
                .block_on(mirato::server::router(state.clone()).oneshot(req))
                .unwrap();
            prop_assert!(
                resp.status().as_u16() < 500 || resp.status().as_u16() == 503,
                "{uri}: {}",
                resp.status()
            );
            Ok(())
        })
        .unwrap();
    report_cases("routes", &ran);
}

#[test]
fn dashboard_files_of_any_shape_are_refused_with_a_reason_not_a_panic() {
    let originals: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
    let ran = AtomicUsize::new(0);
    let mut runner = TestRunner::new(cases(512));
    let edit = prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, ".{0,12}"), 1..6);
    runner
        .run(&(0..originals.len(), edit), |(f, edits)| {
            ran.fetch_add(1, Ordering::Relaxed);
            let mut text: Vec<char> = originals[f].chars().collect();
            for (at, op, s) in edits {
                let i = at.index(text.len().max(1)).min(text.len());
                match op {
                    // Delete a stretch, insert text, or cut the file there.
                    0 => {
                        let end = (i + s.len()).min(text.len());
                        text.drain(i..end);
                    }
                    1 => {
                        for (k, c) in s.chars().enumerate() {
                            text.insert(i + k, c);
                        }
                    }
                    _ => text.truncate(i),
                }
            }
            let text: String = text.into_iter().collect();
            if let Err(e) = mirato::server::dashboards::parse_page("fuzz.toml", &text) {
                prop_assert!(!e.to_string().is_empty());
            }
            Ok(())
        })
        .unwrap();
    report_cases("dashboard_files", &ran);
}
