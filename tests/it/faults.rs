//! The kill-anywhere suite: an ingest of a mixed folder, a compaction, a report, the scheduled
//! export and the server with its inbox job, each killed (SIGKILL) at a random moment, many
//! times over. After each kill, outside readers (delta-rs, and DuckDB over the files of the
//! table's version, as the README shows) count the store before anything repairs it; then the
//! store is opened as every command opens it and the work is run again to its end. It must then
//! equal an uninterrupted run of the same inputs: the same events (ids and content), none
//! doubled, the ledger and the quarantine consistent, no temporary, staging or half-built file
//! left, and no row counted by an outside reader that mirato does not keep.
//!
//! `MIRATO_FAULT_ITERATIONS` (default 30, what CI runs) and `MIRATO_FAULT_SEED` (default: from
//! the clock, printed) set the run; `benches/faults.sh` runs 500 and more. A failure prints the
//! seed and the iteration, so it can be replayed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::*;

/// The inputs, the key they are pseudonymised with, and what an uninterrupted run makes of them.
struct Fixture {
    root: tempfile::TempDir,
    inputs: PathBuf,
    key: PathBuf,
    /// A store made by one uninterrupted ingest of `inputs`.
    reference: Env,
    expected: Snapshot,
    /// How long that ingest took: kills fall within it.
    ingest_time: Duration,
}

/// What a store holds, in a form two stores of the same inputs share: rows as text without the
/// columns that name the run (batch, ingest instant, record keys of the store's own secret).
#[derive(PartialEq)]
struct Snapshot {
    events: Vec<String>,
    quarantine: Vec<String>,
    /// Per input file name: its first ledger entry's outcome.
    ledger: BTreeMap<String, String>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events, {} quarantined, ledger {:?}",
            self.events.len(),
            self.quarantine.len(),
            self.ledger
        )
    }
}

fn rows_text(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let keep: Vec<usize> = (0..b.num_columns())
            .filter(|&i| {
                let name = b.schema().field(i).name().clone();
                !(name == "batch_id" || name == "ingested_at" || name.ends_with("record_key"))
            })
            .collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = keep
                .iter()
                .map(|&i| {
                    let v = array_value_to_string(b.column(i), r).unwrap();
                    // Where the file was read from (the folder, or the inbox): its name only.
                    match b.schema().field(i).name().as_str() {
                        "source_file" => Path::new(&v)
                            .file_name()
                            .map_or(v.clone(), |n| n.to_string_lossy().into_owned()),
                        _ => v,
                    }
                })
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// The store's content, after checking that its ledger is consistent: each file's later
/// entries (a rerun of a file already committed) stored nothing, and the ledger's counts add
/// up to the rows kept.
fn snapshot(env: &Env) -> Snapshot {
    let mut entries = env.layout().read_ledger().unwrap();
    entries.sort_by(|a, b| (&a.finished_at, &a.batch_id).cmp(&(&b.finished_at, &b.batch_id)));
    let mut ledger = BTreeMap::new();
    let (mut stored, mut rejected) = (0, 0);
    for e in &entries {
        let name = Path::new(&e.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let outcome = format!(
            "{:?} read {} stored {} duplicates {} rejected {} repeat {} rules {:?}",
            e.status,
            e.read,
            e.stored,
            e.duplicates,
            e.rejected,
            e.repeat_of.is_some(),
            e.rejected_by_rule
        );
        stored += e.stored;
        if e.repeat_of.is_none() {
            rejected += e.rejected;
        }
        match ledger.entry(name) {
            std::collections::btree_map::Entry::Occupied(first) => assert_eq!(
                e.stored,
                0,
                "a rerun of {} stored rows again: {outcome}",
                first.key()
            ),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(outcome);
            }
        }
    }
    let snap = Snapshot {
        events: rows_text(&env.events()),
        quarantine: rows_text(&env.quarantine()),
        ledger,
    };
    assert_eq!(snap.events.len() as u64, stored, "the ledger's stored rows");
    assert_eq!(
        snap.quarantine.len() as u64,
        rejected,
        "the ledger's rejected rows"
    );
    let mut ids: Vec<&str> = snap
        .events
        .iter()
        .map(|r| r.split('|').next().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), snap.events.len(), "an event id stored twice");
    snap
}

/// Files and folders that only an interrupted run leaves: none may survive the next open.
fn leftovers(data: &Path) -> Vec<String> {
    let current = mirato::store::current_generation(&mirato::store::Layout::new(data)).unwrap();
    let mut out = Vec::new();
    let mut stack = vec![data.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let path = ent.path();
            let name = ent.file_name().to_string_lossy().into_owned();
            let rel = path
                .strip_prefix(data)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let generation = d.ends_with("generations") && name.starts_with('g');
            if name.ends_with(".tmp")
                || name.ends_with(".building")
                || name.ends_with(".part")
                || name == "events.next"
                || (rel.starts_with("staging/") && ent.file_type().is_ok_and(|t| t.is_file()))
                || (generation && name > current)
            {
                out.push(rel.clone());
            }
            if ent.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A mixed folder: CSV and gzipped JSON Lines from the generator with invalid and duplicate
/// rows, a copy of one file (a repeat) and a file rejected whole.
fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let inputs = root.path().join("in");
    let key = root.path().join("key");
    let data = root.path().join("gen-data");
    let generate = |args: &[&str]| {
        let out = Command::new(mirato_bin())
            .args(["generate", "--start", "2023-01-01", "--end", "2024-12-31"])
            .args(["--error-rate", "0.02", "--duplicate-rate", "0.02"])
            .args(args)
            .env("MIRATO_DATA_DIR", &data)
            .env("MIRATO_KEY_FILE", &key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    generate(&["--persons", "2000", "--out", inputs.to_str().unwrap()]);
    generate(&[
        "--persons",
        "300",
        "--seed",
        "7",
        "--format",
        "jsonl",
        "--gzip",
        "--out",
        inputs.to_str().unwrap(),
    ]);
    std::fs::copy(
        inputs.join("events-01-2023.csv"),
        inputs.join("zz-copy-of-01-2023.csv"),
    )
    .unwrap();
    std::fs::write(inputs.join("zz-not-events.csv"), "not,a,header\n1,2,3\n").unwrap();
    let reference = env_with_key(&root, "reference", &key);
    let started = Instant::now();
    let out = reference.cli().arg("ingest").arg(&inputs).output().unwrap();
    let ingest_time = started.elapsed();
    assert_ingested(&out, "the uninterrupted ingest");
    let expected = snapshot(&reference);
    assert!(expected.events.len() > 20_000, "{expected:?}");
    assert!(!expected.quarantine.is_empty());
    Fixture {
        root,
        inputs,
        key,
        reference,
        expected,
        ingest_time,
    }
}

/// An ingest ended: exit code 0, or 1 when a file was rejected whole (the folder has one);
/// errors end with 2 or 3.
fn assert_ingested(out: &std::process::Output, what: &str) {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh data folder under `root`, pseudonymising with the shared `key`.
fn env_with_key(root: &tempfile::TempDir, name: &str, key: &Path) -> Env {
    let dir = tempfile::tempdir_in(root.path()).unwrap();
    let data = dir.path().join(name);
    Env {
        dir,
        data,
        key: key.to_path_buf(),
    }
}

/// One Python process counting stores as outside readers do (`tests/interop/count_loop.py`).
struct Readers {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Readers {
    fn start() -> Readers {
        let mut child = Command::new("python3")
            .args(["-c", include_str!("../interop/count_loop.py")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (pip install deltalake duckdb)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Readers {
            child,
            stdin,
            stdout,
        }
    }

    /// Rows the table's current version lists, as delta-rs and DuckDB count them (and DuckDB's
    /// distinct event ids, which must equal its rows).
    fn count(&mut self, data: &Path) -> u64 {
        writeln!(self.stdin, "{}", data.display()).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the reader's answer {line:?}: {e}"));
        assert!(v.get("error").is_none(), "an outside reader failed: {v}");
        assert_eq!(v["deltalake_rows"], v["duckdb_rows"], "{v}");
        assert_eq!(v["duckdb_rows"], v["duckdb_ids"], "a row doubled: {v}");
        v["deltalake_rows"].as_u64().unwrap()
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, kills it (SIGKILL) after `after` unless it ended first; whether it was killed.
fn kill_after(mut cmd: Command, after: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// The store after a kill: outside readers count it first, then it is opened (recovery), and
/// mirato must keep exactly what they counted, with nothing left of the interrupted work.
fn recover(env: &Env, readers: &mut Readers, what: &str) -> u64 {
    let seen = if env.data.join("generations").exists() {
        readers.count(&env.data)
    } else {
        0
    };
    drop(mirato::store::Store::open(&env.data).unwrap());
    let kept = env.event_count() as u64;
    assert_eq!(
        seen, kept,
        "{what}: outside readers counted rows that mirato does not keep"
    );
    let left = leftovers(&env.data);
    assert!(
        left.is_empty(),
        "{what}: left behind after the open: {left:?}"
    );
    kept
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Ingest,
    Compaction,
    Report,
    Export,
    Server,
}

/// The kinds in turn, ingest twice as often: it has the most moments to kill.
const ROTATION: [Kind; 6] = [
    Kind::Ingest,
    Kind::Compaction,
    Kind::Ingest,
    Kind::Report,
    Kind::Server,
    Kind::Export,
];

/// Counts of what the run did, printed at its end (and read by `benches/faults.sh`).
#[derive(Debug, Default, serde::Serialize)]
struct Tally {
    iterations: usize,
    killed: usize,
    ended_before_the_kill: usize,
    by_kind: BTreeMap<String, usize>,
    seconds_by_kind: BTreeMap<String, f64>,
    rows_lost: u64,
    rows_doubled: u64,
    outputs_checked: usize,
}

#[test]
fn kill_anywhere() {
    let iterations: usize = std::env::var("MIRATO_FAULT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("MIRATO_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    eprintln!("kill suite: {iterations} iterations, MIRATO_FAULT_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let fx = fixture();
    let mut readers = Readers::start();
    // The outputs of uninterrupted runs, to compare the completed ones with.
    let report_ref = report_files(&fx, &fx.reference, "reference-report");
    let export_ref = export_files(&fx, &fx.reference, "reference-export");
    let mut tally = Tally::default();
    // `MIRATO_FAULT_KINDS=ingest,compaction` keeps only those kinds (a longer run of the store's).
    let kinds: Vec<Kind> = match std::env::var("MIRATO_FAULT_KINDS") {
        Ok(list) => ROTATION
            .iter()
            .copied()
            .filter(|k| {
                list.to_lowercase()
                    .contains(&format!("{k:?}").to_lowercase())
            })
            .collect(),
        Err(_) => ROTATION.to_vec(),
    };
    assert!(!kinds.is_empty(), "MIRATO_FAULT_KINDS names no kind");
    for i in 0..iterations {
        let kind = kinds[i % kinds.len()];
        let started = Instant::now();
        let what = format!("iteration {i} ({kind:?}, MIRATO_FAULT_SEED={seed})");
        *tally.by_kind.entry(format!("{kind:?}")).or_default() += 1;
        let killed = match kind {
            Kind::Ingest => {
                let env = env_with_key(&fx.root, "data", &fx.key);
                // Sometimes on a store that already holds a part of the folder.
                if rng.random_bool(0.3) {
                    let first = fx.inputs.join("events-01-2023.csv");
                    assert_ingested(&env.cli().arg("ingest").arg(first).output().unwrap(), &what);
                }
                let at = random_moment(&mut rng, fx.ingest_time);
                let mut cmd = env.cli();
                cmd.arg("ingest").arg(&fx.inputs);
                let killed = kill_after(cmd, at);
                recover(&env, &mut readers, &what);
                let out = env.cli().arg("ingest").arg(&fx.inputs).output().unwrap();
                assert_ingested(&out, &what);
                compare(&fx, &env, &what, &mut tally);
                killed
            }
            Kind::Compaction => {
                let env = env_with_key(&fx.root, "data", &fx.key);
                copy_dir(&fx.reference.data, &env.data);
                let at = random_moment(&mut rng, Duration::from_millis(1500));
                let mut cmd = env.cli();
                cmd.env("MIRATO_JOBS_COMPACT_MIN_FILES", "2")
                    .args(["jobs", "run", "compact"]);
                let killed = kill_after(cmd, at);
                let kept = recover(&env, &mut readers, &what);
                assert_eq!(kept as usize, fx.expected.events.len(), "{what}");
                let out = env
                    .cli()
                    .env("MIRATO_JOBS_COMPACT_MIN_FILES", "2")
                    .args(["jobs", "run", "compact"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(leftovers(&env.data).is_empty(), "{what}");
                compare(&fx, &env, &what, &mut tally);
                killed
            }
            Kind::Report => {
                let env = env_with_key(&fx.root, "data", &fx.key);
                copy_dir(&fx.reference.data, &env.data);
                let out = env.dir.path().join("out");
                let at = random_moment(&mut rng, Duration::from_millis(2500));
                let killed = kill_after(report_command(&env, &out), at);
                let files = report_files(&fx, &env, "out");
                assert_eq!(files, report_ref, "{what}: the completed report");
                tally.outputs_checked += 1;
                recover(&env, &mut readers, &what);
                killed
            }
            Kind::Export => {
                let env = env_with_key(&fx.root, "data", &fx.key);
                copy_dir(&fx.reference.data, &env.data);
                let at = random_moment(&mut rng, Duration::from_millis(2500));
                let killed = kill_after(export_command(&env), at);
                let files = export_files(&fx, &env, "reports");
                assert_eq!(files, export_ref, "{what}: the completed export");
                tally.outputs_checked += 1;
                recover(&env, &mut readers, &what);
                killed
            }
            Kind::Server => {
                let env = env_with_key(&fx.root, "data", &fx.key);
                let inbox = env.dir.path().join("inbox");
                copy_dir(&fx.inputs, &inbox);
                for f in std::fs::read_dir(&inbox).unwrap().flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    std::fs::write(inbox.join(format!("{name}.done")), "").unwrap();
                }
                let at = random_moment(&mut rng, Duration::from_millis(2000) + fx.ingest_time);
                let mut serve = inbox_command(&env, &inbox);
                serve.args(["serve", "--addr", "127.0.0.1:0"]);
                let killed = kill_after(serve, at);
                recover(&env, &mut readers, &what);
                // The inbox job, once, finishes what the server left.
                let mut cmd = inbox_command(&env, &inbox);
                let out = cmd.args(["jobs", "run", "ingest"]).output().unwrap();
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                compare(&fx, &env, &what, &mut tally);
                // No input lost: each is processed, or failed with its reason.
                let mut done: Vec<String> = ["processed", "failed"]
                    .iter()
                    .flat_map(|d| {
                        std::fs::read_dir(inbox.join(d))
                            .into_iter()
                            .flatten()
                            .flatten()
                    })
                    .map(|f| f.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.ends_with(".done") && !n.ends_with(".reason.txt"))
                    .collect();
                done.sort();
                let mut inputs: Vec<String> = std::fs::read_dir(&fx.inputs)
                    .unwrap()
                    .flatten()
                    .map(|f| f.file_name().to_string_lossy().into_owned())
                    .collect();
                inputs.sort();
                assert_eq!(done, inputs, "{what}: every inbox file processed once");
                killed
            }
        };
        tally.iterations += 1;
        *tally
            .seconds_by_kind
            .entry(format!("{kind:?}"))
            .or_default() += started.elapsed().as_secs_f64();
        if killed {
            tally.killed += 1;
        } else {
            tally.ended_before_the_kill += 1;
        }
        // A long run shows where it stands (benches/faults.sh reads the last line).
        if tally.iterations % 25 == 0 {
            println!("FAULT-TALLY {}", serde_json::to_string(&tally).unwrap());
        }
    }
    println!("FAULT-TALLY {}", serde_json::to_string(&tally).unwrap());
    assert_eq!((tally.rows_lost, tally.rows_doubled), (0, 0));
    assert!(
        tally.killed * 2 >= tally.iterations,
        "most runs must be killed, not end first: {tally:?}"
    );
}

/// A moment within `span` (and a little after, so a kill also falls during the last steps).
fn random_moment(rng: &mut StdRng, span: Duration) -> Duration {
    let ms = span.as_millis().max(50) as u64;
    Duration::from_millis(rng.random_range(5..ms + ms / 10))
}

/// The store must equal the uninterrupted one; lost and doubled rows are counted before the
/// comparison fails, for the tally.
fn compare(fx: &Fixture, env: &Env, what: &str, tally: &mut Tally) {
    let got = snapshot(env);
    let ids = |rows: &[String]| -> std::collections::BTreeSet<String> {
        rows.iter()
            .map(|r| r.split('|').next().unwrap().to_owned())
            .collect()
    };
    let (want_ids, got_ids) = (ids(&fx.expected.events), ids(&got.events));
    tally.rows_lost += want_ids.difference(&got_ids).count() as u64;
    tally.rows_doubled += (got.events.len() - got_ids.len()) as u64;
    if got != fx.expected {
        let mut ledger = Vec::new();
        for (name, want) in &fx.expected.ledger {
            let have = got.ledger.get(name);
            if have != Some(want) {
                ledger.push(format!("{name}: {have:?}, uninterrupted {want}"));
            }
        }
        panic!(
            "{what}: the store differs from an uninterrupted ingest: {} events ({} expected), {} quarantined ({} expected); ledger differences: {ledger:#?}",
            got.events.len(),
            fx.expected.events.len(),
            got.quarantine.len(),
            fx.expected.quarantine.len()
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn report_command(env: &Env, out: &Path) -> Command {
    let mut cmd = env.cli();
    cmd.args(["report", "anpal", "--year", "2024", "--out"])
        .arg(out.join("anpal-2024.xlsx"));
    cmd
}

/// Runs the report to its end in `env.dir/<sub>` and answers its CSVs by name, after checking
/// that no temporary file is left beside them.
fn report_files(_fx: &Fixture, env: &Env, sub: &str) -> BTreeMap<String, String> {
    let out = env.dir.path().join(sub);
    let status = report_command(env, &out).output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    texts_of(&out)
}

fn export_command(env: &Env) -> Command {
    let mut cmd = env.cli();
    cmd.env("MIRATO_JOBS_EXPORT_DIR", env.dir.path().join("reports"))
        .env("MIRATO_JOBS_EXPORT_ANPAL_QUARTERLY", "false")
        .args(["jobs", "run", "export"]);
    cmd
}

fn export_files(_fx: &Fixture, env: &Env, sub: &str) -> BTreeMap<String, String> {
    let mut cmd = export_command(env);
    cmd.env("MIRATO_JOBS_EXPORT_DIR", env.dir.path().join(sub));
    let status = cmd.output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    texts_of(&env.dir.path().join(sub))
}

/// Every CSV below `dir` by its path without the dated folder, with its lines that do not name
/// the moment of the run; fails on a temporary file left there.
fn texts_of(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).unwrap().flatten() {
            let path = ent.path();
            let name = ent.file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".tmp"),
                "a temporary file left: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".csv") {
                let text = std::fs::read_to_string(&path).unwrap();
                let stable: Vec<&str> = text
                    .lines()
                    .filter(|l| {
                        !l.contains("enerat") && !l.contains("Estratto") && !l.contains("as_of")
                    })
                    .collect();
                out.insert(name, stable.join("\n"));
            } else if name.ends_with(".xlsx") {
                // Whole: a zip ends with its central directory's end record.
                let bytes = std::fs::read(&path).unwrap();
                let whole =
                    bytes.len() > 22 && bytes[bytes.len() - 22..].starts_with(b"PK\x05\x06");
                out.insert(name, format!("workbook, whole: {whole}"));
            }
        }
    }
    out
}

/// mirato with the inbox job every second over `inbox`, and no other scheduled job but the
/// warm-up.
fn inbox_command(env: &Env, inbox: &Path) -> Command {
    let mut cmd = env.cli();
    cmd.env("MIRATO_JOBS_INGEST_INBOX", inbox)
        .env("MIRATO_JOBS_INGEST_SCHEDULE", "* * * * * *")
        .env("MIRATO_JOBS_INGEST_READY", "done_marker")
        .env("MIRATO_JOBS_COMPACT_SCHEDULE", "")
        .env("MIRATO_JOBS_EXPORT_SCHEDULE", "")
        .env("MIRATO_JOBS_EXPORT_DIR", env.dir.path().join("reports"))
        .current_dir(env.dir.path());
    cmd
}
