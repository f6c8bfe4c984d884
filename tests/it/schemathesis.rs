//! The OpenAPI document against the real server: Schemathesis (PyPI) reads
//! `/api/openapi.json` from the real `mirato serve` over a small generated store, generates
//! requests from it (valid and invalid ones) with an admin's API token, and checks every answer
//! with `--checks all`: no 500, every status, content type, header and body as documented,
//! invalid input refused, valid input accepted, and no route answering without the token. Then
//! the data routes again with a viewer's token: suppressed and perturbed figures, and a 403.
//!
//! `.ci/run` installs Schemathesis; in CI (`CI=true`) or with `MIRATO_REQUIRE_SCHEMATHESIS=1` a
//! missing Schemathesis fails the test, elsewhere the test says what to install and passes.
//! `MIRATO_SCHEMATHESIS_EXAMPLES` (default 10) and `MIRATO_SCHEMATHESIS_SEED` tune the run.
//!
//! OpenAPI cannot say that `from` must not be after `to`, that each KPI takes its own subset of
//! the breakdowns, or that `a` and `b` must be subgroups present in the data: the document says
//! it in words (and `x-breakdowns`), and `tests/schemathesis_hooks.py` keeps valid-data cases
//! within those rules, so that a 400 for such a case is not counted as the API refusing valid
//! data.

use crate::common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Schemathesis as `.ci/run` installs it: in the Python of `python3` (its `st` command may be
/// another Python's).
fn schemathesis() -> Option<Command> {
    let module = || {
        let mut c = Command::new("python3");
        c.args(["-m", "schemathesis.cli"]);
        c
    };
    module()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        .then(module)
}

#[test]
fn schemathesis_reports_no_failure() {
    if schemathesis().is_none() {
        let msg = "the OpenAPI test needs Schemathesis: python3 -m pip install schemathesis";
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        if ci || std::env::var_os("MIRATO_REQUIRE_SCHEMATHESIS").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }

    // A small generated store: every event type, so every KPI kind has rows to show.
    let env = Env::new();
    let gen_dir = env.dir.path().join("generated");
    stdout_of(
        env.cli()
            .args(["generate", "--persons", "300", "--seed", "7"])
            .args(["--start", "2024-01-01", "--end", "2025-06-30", "--out"])
            .arg(&gen_dir),
    );
    let reports = env.ingest(&[gen_dir]);
    assert!(!reports.is_empty(), "the generated files were ingested");
    let tokens = env.access().tokens;
    let mut child = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_USERS_FILE", env.users_file())
        .env("MIRATO_JOBS_INGEST_SCHEDULE", "")
        .env("MIRATO_JOBS_COMPACT_SCHEDULE", "")
        .env("MIRATO_JOBS_WARMUP_SCHEDULE", "")
        .env("MIRATO_JOBS_WARMUP_AT_START", "false")
        .env("MIRATO_JOBS_EXPORT_SCHEDULE", "")
        .current_dir(env.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirato serve");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let server = Server(child);
    let url = served_url(stdout);
    // The server's log, kept for the failure message (a 500 is explained there).
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });

    let examples = std::env::var("MIRATO_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let seed = std::env::var("MIRATO_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261204".into());
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let run = |token: &str, only: &[&str]| {
        let mut st = schemathesis().expect("found above");
        st.arg("run")
            .arg(format!("{url}/api/openapi.json"))
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", &examples])
            .args(["--seed", &seed])
            .args(["--workers", "2"])
            .args(["--request-timeout", "120"])
            // A debug build computes the nine-sheet workbook in some 10 s on two busy cores;
            // the server itself answers within `server.max_wait_seconds` (50 s), then defers.
            .args(["--max-response-time", "60"])
            .args(["--generation-database", "none"])
            .args(["--output-truncate", "false"])
            .arg("--no-color")
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env("PYTHONPATH", &hooks)
            .current_dir(env.dir.path());
        for path in only {
            st.args(["--include-path", path]);
        }
        let started = Instant::now();
        let out = st.output().expect("run schemathesis");
        eprintln!(
            "{}\n{}\nschemathesis took {:.1?} (seed {seed}, {examples} examples per operation)",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            started.elapsed()
        );
        out.status.success()
    };
    // Every route as an admin; then the data routes as a viewer, who sees suppressed and
    // perturbed figures (strings such as "<5" among the numbers) and no cohort file (403).
    let admin = run(&tokens["admin"], &[]);
    let viewer = run(
        &tokens["viewer"],
        &["/api/kpi/{id}", "/api/evaluation", "/export/cohort.parquet"],
    );
    drop(server);
    if !(admin && viewer) {
        panic!(
            "schemathesis reports failures (see above: admin {}, viewer {}); the server's log:\n{}",
            if admin { "none" } else { "some" },
            if viewer { "none" } else { "some" },
            log.join().unwrap_or_default()
        );
    }
}
