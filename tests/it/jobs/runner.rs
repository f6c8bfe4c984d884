//! The runner in process: partial files are not taken, overlapping triggers make one run, failing
//! jobs are retried and reported, and compaction changes no figure, even for queries running
//! meanwhile.

use super::*;

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
