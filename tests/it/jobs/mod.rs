//! Scheduled jobs: ingest while serving (real binary, real scheduler), partial files, compaction
//! that changes no figure (also for queries running during it), no overlap, retries and their
//! report on `/jobs`, and a clean stop on SIGTERM while a job runs.
//!
//! Fixture: three hires in 2025 (two in Milano, one in Roma), so `hires` for 2025 = 3; a file
//! dropped in the inbox adds a fourth (Milano): 4.
//!
//! The runner's own tests in `runner.rs`, those beside a real server in `serving.rs`; the fixture,
//! the server child and the requests they share here.

mod runner;
mod serving;

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

/// Every KPI's rows at an `as_of`, by `by` (or without breakdown), through one engine (so the
/// shared views are computed once per `as_of`, as in the server).
fn catalogue(env: &Env, as_of: &str, by: &str) -> Vec<String> {
    catalogue_of(&env.data, as_of, by)
}

/// [`catalogue`] over any data folder (a working copy of a bucket too).
pub(crate) fn catalogue_of(data: &std::path::Path, as_of: &str, by: &str) -> Vec<String> {
    let rt = rt();
    let engine = mirato::query::Engine::open(data).unwrap();
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

pub(crate) struct Server {
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

pub(crate) fn start(env: &Env, vars: &[(&str, &str)]) -> Server {
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
pub(crate) fn http_get(server: &Server, path: &str) -> (u16, String) {
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

pub(crate) fn hires_via_api(server: &Server) -> i64 {
    let (status, body) = http_get(server, "/api/kpi/hires?from=2025-01-01&to=2025-12-31");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["rows"][0]["value"].as_i64().unwrap()
}

fn runs_ok(server: &Server, job: &str) -> u64 {
    let (_, jobs) = http_get(server, "/api/jobs");
    let v: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .unwrap()["runs_ok"]
        .as_u64()
        .unwrap()
}
