//! Bit rot and hand edits: a corrupted, a truncated and a deleted event file, a truncated and
//! a deleted ledger entry, a damaged stored view. Each is named by `mirato check` and by the
//! query that meets it; what can be rebuilt is rebuilt by `mirato check --repair`, and event
//! files are never removed. Figures that do not need a damaged file are still computed.

use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

fn run(env: &Env, args: &[&str]) -> Output {
    env.cli().args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The current generation's event files of one month.
fn month_files(env: &Env, year: i32, month: u32) -> Vec<PathBuf> {
    let dir = env
        .data
        .join("events")
        .join(format!("year={year}"))
        .join(format!("month={month:02}"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Flips 64 bytes in the middle of a file, keeping its size.
fn flip(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let mid = b.len() / 3;
    for x in &mut b[mid..mid + 64] {
        *x ^= 0x5a;
    }
    std::fs::write(p, b).unwrap();
}

fn store() -> Env {
    generated_store(300, 5, "2023-01-01", "2024-12-31")
}

#[test]
fn damaged_event_files_are_named_never_removed_and_other_figures_still_computed() {
    let env = store();
    let clean = run(&env, &["check"]);
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(
        text(&clean).contains("the store is sound"),
        "{}",
        text(&clean)
    );
    let hires_2023 = run(
        &env,
        &["kpi", "hires", "--from", "2023-01-01", "--to", "2023-12-31"],
    );
    assert!(hires_2023.status.success(), "{}", text(&hires_2023));

    let backup = env.dir.path().join("backup");
    let (flipped, truncated, deleted) = (
        month_files(&env, 2024, 3)[0].clone(),
        month_files(&env, 2024, 5)[0].clone(),
        month_files(&env, 2024, 7)[0].clone(),
    );
    std::fs::create_dir_all(&backup).unwrap();
    for f in [&flipped, &truncated, &deleted] {
        std::fs::copy(f, backup.join(name(f))).unwrap();
    }
    flip(&flipped);
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::remove_file(&deleted).unwrap();

    // `mirato check` names each file and what is wrong with it.
    let check = run(&env, &["check"]);
    let out = text(&check);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&name(&truncated)) && out.contains("the events table recorded"),
        "{out}"
    );
    assert!(
        out.contains(&name(&deleted)) && out.contains("missing"),
        "{out}"
    );
    assert!(
        out.contains(&name(&flipped)),
        "bit flips found by reading every row: {out}"
    );
    assert!(out.contains("restore the file from a backup"), "{out}");

    // A query that reads them names them too; one that does not still answers, unchanged.
    let q = run(
        &env,
        &["kpi", "hires", "--from", "2024-01-01", "--to", "2024-12-31"],
    );
    let err = text(&q);
    assert_eq!(q.status.code(), Some(3), "{err}");
    assert!(
        err.contains("mirato check") && err.contains(&name(&truncated)),
        "{err}"
    );
    let again = run(
        &env,
        &["kpi", "hires", "--from", "2023-01-01", "--to", "2023-12-31"],
    );
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&hires_2023.stdout)
    );

    // A repair never removes events: the damaged files stay, and so does the report.
    let repair = run(&env, &["check", "--repair"]);
    assert_eq!(repair.status.code(), Some(1), "{}", text(&repair));
    assert!(flipped.exists() && truncated.exists());

    // Restored from the backup, the store is sound again.
    for f in [&flipped, &truncated, &deleted] {
        std::fs::copy(backup.join(name(f)), f).unwrap();
    }
    let check = run(&env, &["check"]);
    assert!(check.status.success(), "{}", text(&check));
    let q = run(
        &env,
        &["kpi", "hires", "--from", "2024-01-01", "--to", "2024-12-31"],
    );
    assert!(q.status.success(), "{}", text(&q));
}

#[test]
fn a_truncated_or_deleted_ledger_entry_is_named_and_rewritten_from_the_log() {
    let env = store();
    let entry = std::fs::read_dir(env.data.join("ledger"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
    let status_before = run(&env, &["status"]);
    assert!(status_before.status.success());

    let text_of_entry = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(&entry, &text_of_entry[..text_of_entry.len() / 2]).unwrap();
    // Every command that reads the ledger goes on with the copy in the table's log, and
    // warns, naming the entry.
    let status = run(&env, &["status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert_eq!(status.stdout, status_before.stdout);
    assert!(text(&status).contains(&name(&entry)), "{}", text(&status));
    let check = run(&env, &["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(
        text(&check).contains("unreadable ledger entry"),
        "{}",
        text(&check)
    );
    let repair = run(&env, &["check", "--repair"]);
    assert!(repair.status.success(), "{}", text(&repair));
    assert!(text(&repair).contains("rewritten from the events table's log"));
    let rebuilt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
    assert_eq!(rebuilt, original);

    std::fs::remove_file(&entry).unwrap();
    let check = run(&env, &["check", "--format", "json"]);
    assert_eq!(check.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert!(
        report["findings"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{report}"
    );
    assert!(run(&env, &["check", "--repair"]).status.success());
    let rebuilt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
    assert_eq!(rebuilt, original);
    let status = run(&env, &["status"]);
    assert_eq!(status.stdout, status_before.stdout);
}

#[test]
fn a_damaged_stored_view_is_found_removed_and_built_again() {
    let env = store();
    let args = [
        "kpi",
        "placement_rate_180",
        "--from",
        "2023-01-01",
        "--to",
        "2024-12-31",
    ];
    let first = run(&env, &args);
    assert!(first.status.success(), "{}", text(&first));
    let views = mirato::store::parquet_files(&env.data.join("views")).unwrap();
    assert!(!views.is_empty(), "the query stored its views");
    let damaged = &views[0];
    let len = std::fs::metadata(damaged).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(damaged)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let check = run(&env, &["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("stored view"), "{}", text(&check));
    let repair = run(&env, &["check", "--repair"]);
    assert!(repair.status.success(), "{}", text(&repair));
    assert!(!damaged.exists());
    let again = run(&env, &args);
    assert_eq!(again.stdout, first.stdout, "built again, the same figure");
    assert!(run(&env, &["check"]).status.success());
}

#[test]
fn the_server_serves_the_figures_it_can_and_says_which_it_cannot() {
    let env = store();
    let path_2023 = "/api/kpi/hires?from=2023-01-01&to=2023-12-31";
    let before = {
        let server = crate::jobs::start(&env, &[]);
        let (status, body) = crate::jobs::http_get(&server, path_2023);
        assert_eq!(status, 200, "{body}");
        body
    };
    let damaged = month_files(&env, 2024, 5)[0].clone();
    let len = std::fs::metadata(&damaged).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&damaged)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let server = crate::jobs::start(&env, &[]);
    let (status, body) =
        crate::jobs::http_get(&server, "/api/kpi/hires?from=2024-01-01&to=2024-12-31");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("dato non disponibile") && body.contains("mirato check"),
        "{body}"
    );
    assert!(
        !body.contains(&name(&damaged)),
        "viewers are not shown the store's files"
    );
    let (status, after) = crate::jobs::http_get(&server, path_2023);
    assert_eq!(
        (status, after),
        (200, before),
        "the other figures are still served"
    );
    // A page says which of its panels it cannot show, and shows the others.
    let (status, page) = crate::jobs::http_get(&server, "/p/esiti?from=2024-01-01&to=2024-12-31");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Dato non disponibile") && page.contains("class=\"value\""),
        "the page shows its other panels and says which it cannot show"
    );
}
