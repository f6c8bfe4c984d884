//! Scheduled jobs: ingest while serving (real binary, real scheduler), partial files, compaction
//! that changes no figure (also for queries running during it), no overlap, retries and their
//! report on `/jobs`, and a clean stop on SIGTERM while a job runs.
//!
//! Fixture: three hires in 2025 (two in Milano, one in Roma), so `hires` for 2025 = 3; a file
//! dropped in the inbox adds a fourth (Milano): 4.

use crate::common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mirato::config::{Config, Retry};
use mirato::jobs::{JobSpec, Jobs, RunOutcome, TaskFn};

fn fixture() -> Env {
    let env = Env::new();
    env.load(
        "hires.csv",
        &[
            hire("h1", "2025-03-05", 1, &[]),
            hire(
                "h2",
                "2025-04-10",
                2,
                &[("province", "RM"), ("cpi_code", "RM-01")],
            ),
            hire("h3", "2025-04-20", 3, &[]),
        ],
    );
    env
}

/// Configuration with every timer off (tests trigger jobs themselves) and the inbox in `env`.
fn config(env: &Env, extra: &[(&str, &str)]) -> Config {
    let inbox = env.dir.path().join("inbox").display().to_string();
    let reports = env.dir.path().join("reports").display().to_string();
    let mut vars: Vec<(String, String)> = vec![
        ("MIRATO_JOBS_INGEST_SCHEDULE".into(), String::new()),
        ("MIRATO_JOBS_COMPACT_SCHEDULE".into(), String::new()),
        ("MIRATO_JOBS_WARMUP_SCHEDULE".into(), String::new()),
        ("MIRATO_JOBS_EXPORT_SCHEDULE".into(), String::new()),
        ("MIRATO_JOBS_INGEST_INBOX".into(), inbox),
        ("MIRATO_JOBS_EXPORT_DIR".into(), reports),
    ];
    for (k, v) in extra {
        vars.retain(|(n, _)| n != k);
        vars.push(((*k).into(), (*v).into()));
    }
    mirato::config::load_with(None, &vars).expect("config")
}

fn jobs(env: &Env, cfg: &Config) -> Jobs {
    env.setup_with(cfg).jobs(Vec::new())
}

/// A test job that runs only when triggered.
fn test_job(name: &str, schedule: &str, retry: Retry, task: TaskFn) -> JobSpec {
    JobSpec::new(name, "Job di prova", schedule, retry, task)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hires_2025(env: &Env) -> i64 {
    env.rows("hires", &[("from", "2025-01-01"), ("to", "2025-12-31")])[0]["value"]
        .as_i64()
        .unwrap()
}

fn drop_in_inbox(env: &Env, name: &str, rows: &[Vec<(String, String)>], marker: bool) -> PathBuf {
    let inbox = env.dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let p = inbox.join(name);
    std::fs::write(&p, csv_of(rows)).unwrap();
    if marker {
        std::fs::write(inbox.join(format!("{name}.done")), "").unwrap();
    }
    p
}

#[test]
fn partial_files_are_not_taken() {
    let env = fixture();
    let rt = rt();
    // done_marker: a file without its marker stays, whatever its size.
    let cfg = config(&env, &[]);
    let j = jobs(&env, &cfg);
    let late = drop_in_inbox(&env, "late.csv", &[hire("h4", "2025-05-01", 5, &[])], false);
    assert_eq!(
        rt.block_on(j.run("ingest")).unwrap(),
        RunOutcome::Ok {
            rows: 0,
            attempts: 1
        }
    );
    assert!(late.exists());
    assert_eq!(hires_2025(&env), 3);
    std::fs::write(env.dir.path().join("inbox/late.csv.done"), "").unwrap();
    assert!(matches!(
        rt.block_on(j.run("ingest")).unwrap(),
        RunOutcome::Ok { rows: 1, .. }
    ));
    assert!(!late.exists());
    assert!(env.dir.path().join("inbox/processed/late.csv").exists());
    assert!(!env.dir.path().join("inbox/late.csv.done").exists());
    assert_eq!(hires_2025(&env), 4);

    // A file rejected whole goes to failed/, with the reason beside it.
    drop_in_inbox(&env, "empty.csv", &[], true);
    std::fs::write(env.dir.path().join("inbox/empty.csv"), "").unwrap();
    rt.block_on(j.run("ingest")).unwrap();
    assert!(env.dir.path().join("inbox/failed/empty.csv").exists());
    let reason =
        std::fs::read_to_string(env.dir.path().join("inbox/failed/empty.csv.reason.txt")).unwrap();
    assert!(!reason.trim().is_empty());

    // stable_size: taken only when two scans saw the same size and mtime.
    let cfg = config(
        &env,
        &[
            ("MIRATO_JOBS_INGEST_READY", "stable_size"),
            ("MIRATO_JOBS_INGEST_STABLE_SECONDS", "0"),
        ],
    );
    let j = jobs(&env, &cfg);
    let growing = drop_in_inbox(
        &env,
        "growing.csv",
        &[hire("h6", "2025-06-01", 6, &[])],
        false,
    );
    let run = |j: &Jobs| rt.block_on(j.run("ingest")).unwrap();
    assert!(
        matches!(run(&j), RunOutcome::Ok { rows: 0, .. }),
        "first sight"
    );
    // Still being written: a second row arrives (and the mtime moves).
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &growing,
        csv_of(&[
            hire("h6", "2025-06-01", 6, &[]),
            hire("h7", "2025-06-02", 7, &[]),
        ]),
    )
    .unwrap();
    assert!(matches!(run(&j), RunOutcome::Ok { rows: 0, .. }), "it grew");
    assert!(
        matches!(run(&j), RunOutcome::Ok { rows: 2, .. }),
        "now stable"
    );
    assert_eq!(hires_2025(&env), 6);
}

#[test]
fn overlapping_triggers_make_one_run() {
    let env = fixture();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let slow: TaskFn = Arc::new(move || {
        let r = Arc::clone(&r);
        Box::pin(async move {
            r.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(7)
        })
    });
    let cfg = config(&env, &[]);
    let retry = Retry {
        retries: 0,
        backoff_seconds: 0,
    };
    let j = env
        .setup_with(&cfg)
        .jobs(vec![test_job("slow", "", retry, slow)]);
    let outcomes = rt().block_on(async {
        let (a, b, c) = tokio::join!(j.run("slow"), j.run("slow"), j.run("slow"));
        [a.unwrap(), b.unwrap(), c.unwrap()]
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, RunOutcome::Ok { rows: 7, .. }))
            .count(),
        1
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RunOutcome::Skipped)
            .count(),
        2
    );
    let view = j.list().into_iter().find(|v| v.name == "slow").unwrap();
    assert_eq!(view.stats.skipped_overlaps, 2);
    assert_eq!(view.stats.runs_ok, 1);
}

#[tokio::test]
async fn failing_jobs_are_retried_and_reported() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let env = fixture();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&attempts);
    // Fails twice, then succeeds: with 3 retries it ends ok after 3 attempts.
    let flaky: TaskFn = Arc::new(move || {
        let a = Arc::clone(&a);
        Box::pin(async move {
            if a.fetch_add(1, Ordering::SeqCst) < 2 {
                Err("the disk is not ready".to_owned())
            } else {
                Ok(3)
            }
        })
    });
    let broken: TaskFn =
        Arc::new(|| Box::pin(async { Err("il server SFTP non risponde".to_owned()) }));
    let cfg = config(&env, &[]);
    let retry = |n| Retry {
        retries: n,
        backoff_seconds: 0,
    };
    let admin = env.access().tokens["admin"].clone();
    let app = env
        .setup_with(&cfg)
        .app(vec![
            test_job("flaky", "", retry(3), flaky),
            test_job("broken", "0 0 3 * * *", retry(1), broken),
        ])
        .unwrap();
    let (j, state) = (app.jobs, app.state);
    assert_eq!(
        j.run("flaky").await.unwrap(),
        RunOutcome::Ok {
            rows: 3,
            attempts: 3
        }
    );
    assert_eq!(
        j.run("broken").await.unwrap(),
        RunOutcome::Failed {
            error: "il server SFTP non risponde".into(),
            attempts: 2
        }
    );
    assert!(j.run("nope").await.is_err());

    let get = |uri: &str| {
        let state = state.clone();
        let uri = uri.to_owned();
        let admin = admin.clone();
        async move {
            let resp = mirato::server::router(state)
                .oneshot(
                    Request::builder()
                        .uri(uri)
                        .header("authorization", format!("Bearer {admin}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, html) = get("/jobs").await;
    assert_eq!(status, 200);
    let row = &html[html.find("data-job=\"broken\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("fallito"), "{row}");
    assert!(row.contains("il server SFTP non risponde"), "{row}");
    assert!(row.contains("2 su 2"), "{row}");
    let row = &html[html.find("data-job=\"flaky\"").unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("riuscito"));

    let (_, json) = get("/api/jobs").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let broken = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "broken")
        .unwrap()
        .clone();
    assert_eq!(broken["last_outcome"], "failed");
    assert_eq!(broken["runs_failed"], 1);
    assert!(broken["next_run"].is_string());
    assert!(broken["last_start"].is_string() && broken["last_end"].is_string());

    let (_, metrics) = get("/metrics").await;
    assert!(
        metrics.contains("mirato_job_runs_total{job=\"broken\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("mirato_job_runs_total{job=\"flaky\",outcome=\"ok\"} 1"));
    assert!(metrics.contains("mirato_job_next_run_timestamp_seconds{job=\"broken\"}"));
}

/// Every KPI's rows at an `as_of`, by `by` (or without breakdown), through one engine (so the
/// shared views are computed once per `as_of`, as in the server).
fn catalogue(env: &Env, as_of: &str, by: &str) -> Vec<String> {
    let rt = rt();
    let engine = mirato::query::Engine::open(&env.data).unwrap();
    let mut out = Vec::new();
    for d in mirato::query::catalog() {
        let mut p = vec![
            ("from", "2021-01-01"),
            ("to", "2025-12-31"),
            ("as_of", as_of),
        ];
        if !by.is_empty() {
            p.push(("by", by));
        }
        let r = rt
            .block_on(engine.run_raw(d.id, &raw_params(&p)))
            .unwrap_or_else(|e| panic!("{}: {e}", d.id));
        out.push(format!(
            "{} by {by}: {}",
            d.id,
            serde_json::to_string(&r.rows).unwrap()
        ));
    }
    out
}

#[test]
fn compaction_changes_no_figure_even_for_queries_running_meanwhile() {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reports = env.ingest(&[root.join("sample-data")]);
    let ledger = env.layout().read_ledger().unwrap();
    let mid = ledger[ledger.len() / 2].ingested_at.clone();
    let last = ledger.last().unwrap().ingested_at.clone();
    assert!(reports.len() >= 10);
    let before_files = mirato::compact::file_count(&env.layout()).unwrap();
    let before_mid = catalogue(&env, &mid, "");
    let before_last = catalogue(&env, &last, "region");

    // Queries in a loop while compaction runs: each must succeed with the same answer.
    let probe = [
        ("registered_stock", "region"),
        ("hires", "month"),
        ("acceptance_rate", ""),
    ];
    let baseline: Vec<serde_json::Value> = probe
        .iter()
        .map(|(id, by)| env.rows(id, &[("as_of", last.as_str()), ("by", by)]))
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let data = env.data.clone();
    let s = Arc::clone(&stop);
    let last_q = last.clone();
    let prober = std::thread::spawn(move || {
        let rt = rt();
        let engine = mirato::query::Engine::open(&data).unwrap();
        let mut n = 0;
        while !s.load(Ordering::SeqCst) || n < 3 {
            for ((id, by), want) in probe.iter().zip(&baseline) {
                let raw = raw_params(&[("as_of", last_q.as_str()), ("by", by)]);
                let r = rt
                    .block_on(engine.run_raw(id, &raw))
                    .unwrap_or_else(|e| panic!("{id} during compaction: {e}"));
                assert_eq!(&serde_json::to_value(&r.rows).unwrap(), want, "{id}");
            }
            n += 1;
        }
        n
    });
    let store = mirato::store::Store::open(&env.data).unwrap();
    let report = mirato::compact::compact(&store, &mirato::compact::CompactOptions::default())
        .expect("compaction");
    drop(store);
    stop.store(true, Ordering::SeqCst);
    let probes = prober
        .join()
        .expect("queries never failed during compaction");
    assert!(probes >= 3);
    assert!(report.partitions_merged > 0, "{report:?}");
    let after_files = mirato::compact::file_count(&env.layout()).unwrap();
    assert!(
        after_files < before_files,
        "{before_files} -> {after_files}"
    );
    assert_eq!(report.files_after, after_files);

    assert_eq!(catalogue(&env, &mid, ""), before_mid);
    assert_eq!(catalogue(&env, &last, "region"), before_last);
    // Status and the dedupe still see every event once: re-ingesting stores nothing.
    let again = env.ingest(&[root.join("sample-data")]);
    assert!(again.iter().all(|r| counts(r).1 == 0), "{again:?}");
    // A second compaction with nothing to merge changes nothing.
    let store = mirato::store::Store::open(&env.data).unwrap();
    let r2 = mirato::compact::compact(&store, &mirato::compact::CompactOptions::default()).unwrap();
    assert_eq!(r2.partitions_merged, 0);
}

struct Server {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &Env, vars: &[(&str, &str)]) -> Server {
    let token = env.access().tokens["admin"].clone();
    let mut cmd = env.cli();
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_USERS_FILE", env.users_file())
        .env("MIRATO_JOBS_INGEST_INBOX", env.dir.path().join("inbox"))
        .env("MIRATO_JOBS_EXPORT_DIR", env.dir.path().join("reports"))
        .env("MIRATO_JOBS_COMPACT_SCHEDULE", "")
        .env("MIRATO_JOBS_WARMUP_SCHEDULE", "")
        .env("MIRATO_JOBS_EXPORT_SCHEDULE", "")
        .current_dir(env.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start mirato serve");
    let url = served_url(child.stdout.take().unwrap());
    Server { child, url, token }
}

/// A plain HTTP/1.1 GET with the server's admin token: status and body.
fn http_get(server: &Server, path: &str) -> (u16, String) {
    let host = server.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.token
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf[9..12].parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn hires_via_api(server: &Server) -> i64 {
    let (status, body) = http_get(server, "/api/kpi/hires?from=2025-01-01&to=2025-12-31");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["rows"][0]["value"].as_i64().unwrap()
}

#[test]
fn a_file_dropped_in_the_inbox_shows_in_the_api_without_restart() {
    let env = fixture();
    let server = start(&env, &[("MIRATO_JOBS_INGEST_SCHEDULE", "* * * * * *")]);
    assert_eq!(hires_via_api(&server), 3);
    drop_in_inbox(&env, "late.csv", &[hire("h4", "2025-05-01", 5, &[])], true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while hires_via_api(&server) != 4 {
        assert!(Instant::now() < deadline, "the dropped file never showed");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(env.dir.path().join("inbox/processed/late.csv").exists());
    let (_, jobs) = http_get(&server, "/api/jobs");
    let v: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    let ingest = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "ingest")
        .unwrap()
        .clone();
    assert!(ingest["runs_ok"].as_u64().unwrap() >= 1, "{ingest}");
}

fn warmups_ok(server: &Server) -> u64 {
    let (_, jobs) = http_get(server, "/api/jobs");
    let v: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "warmup")
        .unwrap()["runs_ok"]
        .as_u64()
        .unwrap()
}

/// Once a warm-up has published a data version, newer data is shown when its warm-up is done:
/// meanwhile requests get the published figures at once, labelled with their `as_of`.
#[test]
fn newer_data_is_shown_once_its_warm_up_is_done() {
    let env = fixture();
    let server = start(&env, &[("MIRATO_JOBS_INGEST_SCHEDULE", "")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while warmups_ok(&server) < 1 {
        assert!(Instant::now() < deadline, "no warm-up at start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let uri = "/api/kpi/hires?from=2025-01-01&to=2025-12-31";
    let json = |path: &str| -> serde_json::Value {
        let (status, body) = http_get(&server, path);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let before = json(uri);
    assert_eq!(before["rows"][0]["value"], 3);

    // A batch committed behind the server's back (no ingest job, so no warm-up yet).
    env.load("late.csv", &[hire("h4", "2025-05-01", 5, &[])]);
    // The first request after it, for a figure nobody asked for yet (so computed, not cached):
    // the published data, as of before the batch, at once; it starts the warm-up of the new
    // data. h1 (03-05), h2 (04-10), h3 (04-20) up to 30 June: 3; h4 (05-01) is not seen yet.
    let stale = json("/api/kpi/hires?from=2025-01-01&to=2025-06-30");
    assert_eq!(stale["rows"][0]["value"], 3, "{stale}");
    assert_eq!(stale["params"]["as_of"], before["params"]["as_of"]);
    assert_eq!(
        stale["params"]["data_version"],
        before["params"]["data_version"]
    );
    // Then the new figure, as of the new batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = json(uri);
        if now["rows"][0]["value"] == 4 {
            assert_ne!(
                now["params"]["data_version"],
                before["params"]["data_version"]
            );
            assert!(now["params"]["as_of"].as_str() > before["params"]["as_of"].as_str());
            break;
        }
        assert!(Instant::now() < deadline, "the new batch never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = json("/api/kpi/hires?from=2025-01-01&to=2025-06-30");
    assert_eq!(after["rows"][0]["value"], 4, "{after}");
}

#[test]
fn sigterm_while_a_job_runs_stops_cleanly() {
    let env = fixture();
    // Many files in the inbox: the ingest job runs for a while.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inbox = env.dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut dropped = 0;
    for f in std::fs::read_dir(root.join("sample-data")).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().ends_with(".csv.gz") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::copy(&p, inbox.join(&name)).unwrap();
            std::fs::write(inbox.join(format!("{name}.done")), "").unwrap();
            dropped += 1;
        }
    }
    let mut server = start(&env, &[("MIRATO_JOBS_INGEST_SCHEDULE", "* * * * * *")]);
    // Wait until the ingest job is running.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = http_get(&server, "/api/jobs");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let running = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "ingest" && j["running"] == true);
        if running {
            break;
        }
        assert!(Instant::now() < deadline, "the ingest job never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    // Nothing half-written: no staging left, every taken file committed, the rest untouched.
    assert!(
        !env.data.join("staging").exists()
            || std::fs::read_dir(env.data.join("staging"))
                .unwrap()
                .next()
                .is_none()
    );
    let store = mirato::store::Store::open(&env.data).expect("the store opens: no stale lock");
    drop(store);
    let processed = std::fs::read_dir(inbox.join("processed"))
        .map(|d| d.count())
        .unwrap_or(0);
    let left = std::fs::read_dir(&inbox)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".csv.gz")
        })
        .count();
    assert_eq!(processed + left, dropped);
    assert!(processed > 0);
    let committed = env.layout().read_ledger().unwrap().len();
    // The fixture's batch plus one entry per processed file.
    assert_eq!(committed, 1 + processed);
}

/// The export job writes the configured KPIs as CSV and, once per quarter, the ANPAL workbook
/// of the last completed quarter (nationally and for each configured region), published whole
/// and never rewritten.
#[test]
fn the_export_job_writes_the_quarterly_anpal_workbook_once() {
    use chrono::Datelike;
    let env = fixture();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Rome)
        .date_naive();
    let (year, quarter) = mirato::jobs::tasks::previous_quarter(today);
    let first_day =
        chrono::NaiveDate::from_ymd_opt(year, (quarter - 1) * 3 + 1, 1).expect("a date");
    assert!(first_day < today && first_day.year() >= today.year() - 1);
    // Two hires in that quarter, in Milano (Lombardia).
    env.load(
        "quarter.csv",
        &[
            hire("q1", &first_day.to_string(), 11, &[]),
            hire("q2", &first_day.to_string(), 12, &[]),
        ],
    );
    let reports = env.dir.path().join("reports");
    let run = || {
        let o = env
            .cli()
            .args(["jobs", "run", "export"])
            .env("MIRATO_JOBS_EXPORT_DIR", &reports)
            .env("MIRATO_JOBS_EXPORT_ANPAL_REGIONS", "Lombardia")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run();
    let national = reports
        .join("anpal")
        .join(format!("{year}-Q{quarter}"))
        .join(format!("mirato-anpal-{year}-q{quarter}.xlsx"));
    let regional = reports
        .join("anpal")
        .join(format!("{year}-Q{quarter}-lombardia"))
        .join(format!("mirato-anpal-{year}-q{quarter}-lombardia.xlsx"));
    assert!(national.exists(), "{}", national.display());
    assert!(regional.exists(), "{}", regional.display());
    assert!(
        national.with_extension("4-assunzioni.csv").exists(),
        "a CSV per sheet"
    );
    // The weekly CSVs too.
    assert!(
        std::fs::read_dir(&reports)
            .unwrap()
            .flatten()
            .any(|d| d.path().join("hires.csv").exists())
    );
    // The header pins as_of and the command that regenerates it; the hires sheet holds the two.
    let csv = std::fs::read_to_string(national.with_extension("4-assunzioni.csv")).unwrap();
    assert!(
        csv.contains(&format!(
            "# Per rigenerarlo: mirato report anpal --year {year} --quarter {quarter} --as-of "
        )),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("MI,") && l.ends_with(",<5")),
        "{csv}"
    );
    let regional_csv =
        std::fs::read_to_string(regional.with_extension("4-assunzioni.csv")).unwrap();
    assert!(
        regional_csv.contains("# Territorio: Lombardia"),
        "{regional_csv}"
    );
    // Run again: the published report is not rewritten; nothing half-written is left.
    let before = std::fs::metadata(&national).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    run();
    assert_eq!(
        std::fs::metadata(&national).unwrap().modified().unwrap(),
        before
    );
    let hidden: Vec<_> = std::fs::read_dir(reports.join("anpal"))
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// On two cores a visitor's figure must not share them with the warm-up's: the warm-up computes
/// nothing while a visitor's figure is being computed, and goes on as soon as it is done.
#[test]
fn the_warm_up_waits_for_visitors_figures() {
    let env = fixture();
    let cfg = config(&env, &[]);
    rt().block_on(async {
        let app = env.setup_with(&cfg).app(Vec::new()).unwrap();
        let (state, jobs) = (app.state, app.jobs);
        let visitor = state.visiting();
        let run = tokio::spawn({
            let jobs = jobs.clone();
            async move { jobs.run("warmup").await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            state.cache().len(),
            0,
            "the warm-up computed beside a visitor"
        );
        assert!(!run.is_finished());
        drop(visitor);
        // It goes on when the visitor is done, not when its longest wait (3 s) runs out.
        let started = Instant::now();
        while state.cache().is_empty() && started.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!state.cache().is_empty(), "the warm-up did not go on");
        let outcome = run.await.unwrap();
        assert!(matches!(outcome, Ok(RunOutcome::Ok { .. })), "{outcome:?}");
        assert!(state.cache().len() > 10, "the warm-up computed every page");
    });
}
