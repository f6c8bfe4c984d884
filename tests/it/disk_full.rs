//! A full disk: the data folder on a small tmpfs (mounted by the test, which needs root; skipped
//! with a message otherwise), filled until what comes next cannot fit. Ingest, compaction, the
//! stored views and the report must each end with an error that says the disk is full, commit
//! nothing half-written and leave the store as it was; once space is freed, the same command
//! completes. The server keeps serving, and `/healthz` says it is degraded.

use crate::common::*;
use crate::crash::big_file;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tmpfs of `mib` MiB, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            // CI sets MIRATO_REQUIRE_TMPFS: there, not running is a failure.
            assert!(
                std::env::var_os("MIRATO_REQUIRE_TMPFS").is_none(),
                "cannot mount a tmpfs (needs root), and MIRATO_REQUIRE_TMPFS is set"
            );
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here (needs root): the disk-full tests did not run"
            );
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system until about `leave` bytes are free.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let free = mirato::store::free_bytes(self.path()).unwrap();
        let size = free.saturating_sub(leave);
        let f = std::fs::File::create(&filler).unwrap();
        // tmpfs allocates on write, not on set_len: write the bytes.
        let mut w = std::io::BufWriter::new(f);
        let chunk = vec![0u8; 1 << 16];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut w, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = std::io::Write::flush(&mut w);
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

/// An environment whose data folder is on `fs`.
fn env_on(fs: &Tmpfs) -> Env {
    let mut env = Env::new();
    env.data = fs.path().join("data");
    env
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What must not change when a command fails for lack of space.
fn state(env: &Env) -> (usize, usize, Vec<PathBuf>, String) {
    (
        env.event_count(),
        env.layout().read_ledger().unwrap().len(),
        env.all_parquet(),
        mirato::store::current_generation(&env.layout()).unwrap(),
    )
}

fn assert_full(out: &Output, what: &str) {
    let t = text(out);
    assert!(
        !out.status.success(),
        "{what} succeeded on a full disk: {t}"
    );
    assert!(
        t.contains("the disk is full"),
        "{what}: the error must say so: {t}"
    );
    assert!(!t.contains("panicked"), "{what}: {t}");
}

fn sound(env: &Env) {
    let out = env.cli().arg("check").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !env.data.join("staging").exists()
            || std::fs::read_dir(env.data.join("staging"))
                .unwrap()
                .next()
                .is_none(),
        "staging files left"
    );
}

#[test]
fn ingest_and_compaction_on_a_full_disk_change_nothing_and_complete_once_space_is_freed() {
    let Some(fs) = Tmpfs::mount(24) else { return };
    let env = env_on(&fs);
    let first = big_file(&env, 60_000);
    let out = env.cli().arg("ingest").arg(&first).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A second file of the same months: compaction has twelve partitions to merge.
    let second = env.write(
        "second.csv",
        std::fs::read_to_string(&first).unwrap().replace("e-", "f-"),
    );
    let big = env.write(
        "big3.csv",
        std::fs::read_to_string(big_file(&env, 120_000))
            .unwrap()
            .replace("e-", "g-"),
    );
    let out = env.cli().arg("ingest").arg(&second).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let before = state(&env);

    // Ingest: a file whose Parquet cannot fit.
    let filler = fs.fill(256 * 1024);
    let out = env.cli().arg("ingest").arg(&big).output().unwrap();
    assert_full(&out, "ingest");
    assert_eq!(state(&env), before, "the ingest changed the store");
    sound(&env);

    // Compaction: the merged generation cannot fit.
    let out = env
        .cli()
        .env("MIRATO_JOBS_COMPACT_MIN_FILES", "2")
        .env("MIRATO_JOBS_COMPACT_RETRIES", "0")
        .args(["jobs", "run", "compact"])
        .output()
        .unwrap();
    assert_full(&out, "compaction");
    assert_eq!(state(&env), before, "the compaction changed the store");
    let gens: Vec<String> = std::fs::read_dir(env.data.join("generations"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('g'))
        .collect();
    assert_eq!(gens.len(), 1, "a half-built generation was left: {gens:?}");
    sound(&env);

    // Space again: the same commands complete.
    std::fs::remove_file(filler).unwrap();
    let out = env.cli().arg("ingest").arg(&big).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(env.event_count(), before.0 + 120_000);
    let out = env
        .cli()
        .env("MIRATO_JOBS_COMPACT_MIN_FILES", "2")
        .env("MIRATO_JOBS_COMPACT_RETRIES", "0")
        .args(["jobs", "run", "compact"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    sound(&env);
}

#[test]
fn a_report_on_a_full_disk_leaves_no_partial_file_and_views_fail_cleanly() {
    let Some(fs) = Tmpfs::mount(48) else { return };
    // The store on the normal disk, the report's folder on the full one.
    let store = generated_store(200, 3, "2023-01-01", "2024-12-31");
    let out_dir = fs.path().join("reports");
    std::fs::create_dir_all(&out_dir).unwrap();
    let filler = fs.fill(4 * 1024);
    let out = store
        .cli()
        .args(["report", "anpal", "--year", "2024", "--out"])
        .arg(out_dir.join("anpal.xlsx"))
        .output()
        .unwrap();
    assert_full(&out, "report");
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "a partial report was left: {left:?}");
    std::fs::remove_file(filler).unwrap();
    let out = store
        .cli()
        .args(["report", "anpal", "--year", "2024", "--out"])
        .arg(out_dir.join("anpal.xlsx"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // The scheduled export: the same, through its job (no retry here).
    let exports = fs.path().join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let filler2 = fs.fill(2 * 1024);
    let out = store
        .cli()
        .env("MIRATO_JOBS_EXPORT_DIR", &exports)
        .env("MIRATO_JOBS_EXPORT_RETRIES", "0")
        .env("MIRATO_JOBS_EXPORT_ANPAL_QUARTERLY", "false")
        .args(["jobs", "run", "export"])
        .output()
        .unwrap();
    assert_full(&out, "the scheduled export");
    let partial: Vec<_> = walk(&exports)
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    assert!(partial.is_empty(), "a partial export was left: {partial:?}");
    std::fs::remove_file(filler2).unwrap();

    // The stored views: a store whose disk is full answers from views it cannot store, or
    // says the disk is full; it never leaves a half-written view behind.
    std::fs::remove_dir_all(&out_dir).unwrap();
    let copy = fs.path().join("data");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&store.data)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(cp.status.success());
    let _ = std::fs::remove_dir_all(copy.join("views"));
    let filler = fs.fill(8 * 1024);
    let mut on_full = store.cli();
    on_full.env("MIRATO_DATA_DIR", &copy);
    let args = [
        "kpi",
        "placement_rate_180",
        "--from",
        "2023-01-01",
        "--to",
        "2024-12-31",
    ];
    let full = on_full.args(args).output().unwrap();
    let reference = store.cli().args(args).output().unwrap();
    assert!(reference.status.success());
    if full.status.success() {
        assert_eq!(full.stdout, reference.stdout, "the same figure");
    } else {
        assert_full(&full, "a query storing its views");
    }
    let temps: Vec<_> = mirato::store::parquet_files(&copy.join("views"))
        .unwrap()
        .into_iter()
        .chain(
            walk(&copy.join("views"))
                .into_iter()
                .filter(|p| p.to_string_lossy().ends_with(".tmp")),
        )
        .filter(|p| {
            std::fs::File::open(p)
                .ok()
                .and_then(|f| datafusion::parquet::file::reader::SerializedFileReader::new(f).ok())
                .is_none()
        })
        .collect();
    assert!(temps.is_empty(), "half-written views left: {temps:?}");
    drop(filler);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn the_server_on_a_full_disk_keeps_serving_and_says_so() {
    let Some(fs) = Tmpfs::mount(64) else { return };
    let store = generated_store(200, 3, "2023-01-01", "2024-12-31");
    let mut env = env_on(&fs);
    env.key = store.key.clone();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&store.data)
        .arg(&env.data)
        .output()
        .unwrap();
    assert!(cp.status.success());
    let server = crate::jobs::start(&env, &[]);
    let (status, body) = crate::jobs::http_get(&server, "/healthz");
    assert_eq!(status, 200, "{body}");
    let before = crate::jobs::hires_via_api(&server);
    let filler = fs.fill(0);
    // Still serving; the audit (on the full disk) cannot be written once its last page is
    // used up, and healthz says so.
    for _ in 0..40 {
        assert_eq!(crate::jobs::hires_via_api(&server), before);
    }
    let (status, body) = crate::jobs::http_get(&server, "/healthz");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["disk"]["full"], true, "{v}");
    // The audit lives on the full disk: it says so, and keeps no half line.
    assert!(
        v["audit"].as_str().unwrap().contains("the disk is full"),
        "{v}"
    );
    std::fs::remove_file(filler).unwrap();
    assert_eq!(crate::jobs::hires_via_api(&server), before);
    let (_, body) = crate::jobs::http_get(&server, "/healthz");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["disk"]["full"], false, "{v}");
    assert_eq!(v["audit"], "ok", "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    let audit = std::fs::read_to_string(env.data.join("audit").join("audit.jsonl")).unwrap();
    for line in audit.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("whole audit lines only");
    }
}
