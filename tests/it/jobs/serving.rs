//! Jobs beside the real server (the binary, its scheduler): a file dropped in the inbox shows
//! without a restart, newer data shows once warmed up, the warm-up waits for visitors' figures, a
//! clean stop on SIGTERM mid-job, and the quarterly ANPAL export written once.

use super::*;

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
    // The ingest commits the batch first and moves the file after, so the move may trail the
    // figure by a moment.
    let processed = env.dir.path().join("inbox/processed/late.csv");
    while !processed.exists() {
        assert!(
            Instant::now() < deadline,
            "the file was never moved to processed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    while runs_ok(&server, "ingest") < 1 {
        assert!(Instant::now() < deadline, "no ingest run was recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Once a warm-up has published a data version, newer data is shown when its warm-up is done:
/// meanwhile requests get the published figures at once, labelled with their `as_of`.
#[test]
fn newer_data_is_shown_once_its_warm_up_is_done() {
    let env = fixture();
    let server = start(&env, &[("MIRATO_JOBS_INGEST_SCHEDULE", "")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs_ok(&server, "warmup") < 1 {
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
    // Milano's two hires, withheld, in the value column (the year before and the change follow).
    let table: Vec<Vec<&str>> = csv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').collect())
        .collect();
    let value = table[0].iter().position(|h| *h == "Valore").unwrap();
    assert!(
        table[1..].iter().any(|r| r[0] == "MI" && r[value] == "<5"),
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
