//! End to end in a real browser: the real `mirato serve` on the sample data, every page loaded in
//! headless Chromium (Debian's `chromium`) by `tests/e2e/pages.mjs` through playwright-core.
//! No console errors, every panel's chart or table present, filters and sorting work, no
//! English code on any page, chart text of 12px or more and no legend over a bar or a line.
//! Screenshots are kept in `$CARGO_TARGET_TMPDIR/e2e-screenshots/`.
//!
//! `.ci/run` installs Chromium and the script's one npm package and sets
//! `MIRATO_REQUIRE_BROWSER=1`, so there a missing browser fails the test; on a developer's
//! machine without them the test says what to install and passes.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_page_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script = root.join("tests/e2e/pages.mjs");
    let modules = root.join("tests/e2e/node_modules/playwright-core");
    let missing: Vec<String> = [
        (!Path::new(&chromium).exists()).then(|| format!("{chromium} (apt-get install chromium)")),
        (!modules.exists()).then(|| "playwright-core (npm ci --prefix tests/e2e)".to_owned()),
        Command::new("node")
            .arg("--version")
            .output()
            .is_err()
            .then(|| "node".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let msg = format!("browser test needs: {}", missing.join(", "));
        if std::env::var_os("MIRATO_REQUIRE_BROWSER").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }

    let env = Env::new();
    let reports = env.ingest(&[root.join("sample-data")]);
    assert!(reports.len() >= 10, "the sample data is there");

    // A user to log in with, made the way an administrator would.
    let password = "e2e-password-0123";
    let mut add = env
        .cli()
        .args(["users", "add", "e2e", "--role", "admin", "--password-stdin"])
        .env("MIRATO_AUTH_USERS_FILE", env.users_file())
        .stdin(Stdio::piped())
        .spawn()
        .expect("mirato users add");
    {
        use std::io::Write;
        writeln!(add.stdin.take().unwrap(), "{password}").unwrap();
    }
    assert!(add.wait().unwrap().success());

    let mut child = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_USERS_FILE", env.users_file())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start mirato serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let url = served_url(stdout);

    let out: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-screenshots");
    let run = Command::new("node")
        .arg(&script)
        .arg(&url)
        .arg(&out)
        .env("CHROMIUM", &chromium)
        .env("E2E_USER", "e2e")
        .env("E2E_PASSWORD", password)
        .output()
        .expect("run node");
    drop(server);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!("{stdout}\n{stderr}\nscreenshots in {}", out.display());
    assert!(run.status.success(), "browser checks failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert!(report["pages"].as_array().unwrap().len() >= 10);
    assert!(out.join("panoramica.png").exists());
    for shot in [
        "esiti-funnelplot.png",
        "esiti-map.png",
        "valutazione-funnelplot.png",
    ] {
        assert!(out.join(shot).exists(), "no screenshot {shot}");
    }
}
