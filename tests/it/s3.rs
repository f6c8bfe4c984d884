//! The store in an S3 bucket, against a real S3 API server (moto's, a process per test):
//! ingest, compaction, the whole catalogue, the report and the server equal to the same data on
//! a local disk, on the writing machine and on a second one; a kill at every step of a commit
//! leaves all of a file or none, for mirato and for outside readers of the bucket; two machines
//! cannot both commit; files no version lists leave the bucket only once old.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirato::store::remote::{S3Settings, resolve};
use mirato::store::{Layout, Store};

const KEY_ID: &str = "mirato-test";
const SECRET: &str = "mirato-test-secret";

/// A moto S3 server on a free loopback port, stopped on drop.
struct S3 {
    child: Child,
    port: u16,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// Starts one; `None` (the test is skipped) where moto is not installed, unless
    /// `MIRATO_REQUIRE_S3` is set, as in CI.
    fn start() -> Option<S3> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("MIRATO_REQUIRE_S3").is_none(),
                    "moto_server is required (pip install 'moto[server]'): {e}"
                );
                eprintln!("skipped: no moto_server (pip install 'moto[server]')");
                return None;
            }
        };
        let s3 = S3 { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "moto starts");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(s3)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS variables every outside reader (and boto3) takes.
    fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn python(&self, script: &str, args: &[&str]) -> serde_json::Value {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        python_json_env(script, &args, &self.aws_env(), None, "moto[server] boto3")
    }

    fn create_bucket(&self, name: &str) {
        self.python(
            "import boto3, json, sys\n\
             boto3.client('s3').create_bucket(Bucket=sys.argv[1])\n\
             print(json.dumps(True))",
            &[name],
        );
    }

    fn put(&self, bucket: &str, key: &str, body: &str) {
        self.python(
            "import boto3, json, sys\n\
             boto3.client('s3').put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.argv[3].encode())\n\
             print(json.dumps(True))",
            &[bucket, key, body],
        );
    }

    /// Every object key in `bucket`.
    fn keys(&self, bucket: &str) -> Vec<String> {
        let v = self.python(
            "import boto3, json, sys\n\
             pages = boto3.client('s3').get_paginator('list_objects_v2').paginate(Bucket=sys.argv[1])\n\
             print(json.dumps([o['Key'] for p in pages for o in p.get('Contents', [])]))",
            &[bucket],
        );
        serde_json::from_value(v).unwrap()
    }

    /// The settings of a machine whose working copy is `copy`.
    fn settings(&self, copy: &Path) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint(),
            region: "us-east-1".into(),
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET.into(),
            allow_http: true,
            cache_dir: copy.to_string_lossy().into_owned(),
            refresh_seconds: 10,
        }
    }

    /// The binary on the store at `url`, as a machine whose working copy is `copy`: the
    /// endpoint from mirato's own settings, the credentials from the AWS variables.
    fn cli(&self, env: &Env, url: &str, copy: &Path) -> Command {
        let mut c = env.cli();
        c.env("MIRATO_DATA_DIR", url)
            .env("MIRATO_S3_ENDPOINT", self.endpoint())
            .env("MIRATO_S3_ALLOW_HTTP", "true")
            .env("MIRATO_S3_REGION", "us-east-1")
            .env("MIRATO_S3_CACHE_DIR", copy)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
        c
    }

    /// What delta-rs, pandas, polars and DuckDB read of the table in the bucket, each at the
    /// newest version when it starts.
    fn read_delta_raw(&self, url: &str) -> serde_json::Value {
        python_json_env(
            include_str!("../interop/read_delta.py"),
            &[std::ffi::OsStr::new(url)],
            &self.aws_env(),
            None,
            "deltalake polars duckdb",
        )
    }

    /// [`S3::read_delta_raw`] when no writer runs: every reader agrees.
    fn read_delta(&self, url: &str) -> serde_json::Value {
        let v = self.read_delta_raw(url);
        for k in ["pandas_rows", "polars_rows", "duckdb_rows"] {
            assert_eq!(v[k], v["deltalake_rows"], "every reader agrees: {v}");
        }
        v
    }

    fn rows_outside(&self, url: &str) -> u64 {
        self.read_delta(url)["deltalake_rows"].as_u64().unwrap()
    }
}

/// The working copy of `url` at `copy`, mounted in this process.
fn mount(s3: &S3, url: &str, copy: &Path) -> PathBuf {
    resolve(Path::new(url), &s3.settings(copy)).expect("mount")
}

/// The committed events a machine with a working copy at `copy` sees, after it opened the
/// store as every command does (taking in the bucket's commits, rolling back its own
/// interrupted batch).
fn rows_on(s3: &S3, url: &str, copy: &Path) -> usize {
    let root = mount(s3, url, copy);
    drop(Store::open(&root).expect("store"));
    let l = Layout::new(&root);
    read_all(&l.committed_files(&l.events()).unwrap())
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

/// Generated CSV files: several regions and years, so several batches.
fn generated(env: &Env, persons: u32, seed: u32, start: &str, end: &str) -> PathBuf {
    let out = env.dir.path().join(format!("gen-{seed}"));
    stdout_of(
        env.cli()
            .args(["generate", "--persons", &persons.to_string()])
            .args(["--seed", &seed.to_string(), "--start", start, "--end", end])
            .arg("--out")
            .arg(&out),
    );
    out
}

#[test]
fn a_store_on_s3_ingests_compacts_serves_and_answers_as_a_local_one() {
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("mirato");
    let url = "s3://mirato/regioni";
    let env = Env::new();
    let copy_a = env.dir.path().join("copy-a");
    // One perturbation secret for both stores, the bucket's taken from the local one, so that
    // their perturbed reports can be compared.
    std::fs::create_dir_all(&env.data).unwrap();
    mirato::recordkey::load_or_create(&env.data).unwrap();
    let secret = std::fs::read_to_string(env.data.join("cell_key.secret")).unwrap();
    s3.put("mirato", "regioni/_mirato/cell_key.secret", &secret);
    let first = generated(&env, 120, 7, "2024-01-01", "2025-06-30");
    let second = generated(&env, 60, 8, "2025-07-01", "2025-12-31");
    let copy_b = env.dir.path().join("copy-b");
    // The same commands, on a local store and on the bucket (machine A).
    let both = |args: &[&std::ffi::OsStr], extra: Option<(&str, &str)>| {
        let mut local = env.cli();
        let mut remote = s3.cli(&env, url, &copy_a);
        if let Some((k, v)) = extra {
            local.env(k, v);
            remote.env(k, v);
        }
        stdout_of(local.args(args));
        stdout_of(remote.args(args));
    };
    let os = std::ffi::OsStr::new;
    // The first files batch by batch, then a compaction: the table holds both kinds of commit.
    both(&[os("ingest"), first.as_os_str()], None);
    both(
        &[os("jobs"), os("run"), os("compact")],
        Some(("MIRATO_JOBS_COMPACT_MIN_FILES", "2")),
    );
    // A server on machine B takes in what machine A commits next, within seconds.
    let server = crate::jobs::start(
        &env,
        &[
            ("MIRATO_DATA_DIR", url),
            ("MIRATO_S3_ENDPOINT", &s3.endpoint()),
            ("MIRATO_S3_ALLOW_HTTP", "true"),
            ("MIRATO_S3_CACHE_DIR", copy_b.to_str().unwrap()),
            ("MIRATO_S3_REFRESH_SECONDS", "1"),
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    let hires = |env: &Env| {
        env.rows("hires", &[("from", "2025-01-01"), ("to", "2025-12-31")])[0]["value"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(crate::jobs::hires_via_api(&server), hires(&env));
    both(&[os("ingest"), second.as_os_str()], None);
    let want = hires(&env);
    let started = Instant::now();
    loop {
        let served = crate::jobs::hires_via_api(&server);
        if served == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server follows the bucket: {served}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(server);

    let rows = env.event_count();
    assert!(rows > 1000, "{rows} events");
    // The table in the bucket: one version per batch and the compaction, and every outside
    // reader of the bucket counts what mirato counts.
    let seen = s3.read_delta(url);
    assert_eq!(seen["deltalake_rows"], rows as u64, "{seen}");
    let local_versions = std::fs::read_dir(env.data.join("generations/_delta_log"))
        .unwrap()
        .count();
    assert_eq!(seen["version"], local_versions as u64 - 1);
    assert!(
        s3.keys("mirato")
            .iter()
            .any(|k| k == "regioni/_mirato/cell_key.secret"),
        "the record keys' secret is shared through the bucket"
    );

    // The whole catalogue, as machine A, as machine B and as a third machine with a fresh
    // copy see it, with and without a breakdown.
    let copy_c = env.dir.path().join("copy-c");
    let as_of = "2030-01-01T00:00:00Z";
    for by in ["", "region"] {
        let local = crate::jobs::catalogue_of(&env.data, as_of, by);
        for copy in [&copy_a, &copy_b, &copy_c] {
            assert_eq!(
                crate::jobs::catalogue_of(&mount(&s3, url, copy), as_of, by),
                local,
                "{}, by '{by}'",
                copy.display()
            );
        }
    }
    // A territorial filter through the CLI.
    let args = [
        "kpi",
        "hires",
        "--from",
        "2024-01-01",
        "--to",
        "2025-12-31",
        "--region",
        "Lombardia",
        "--by",
        "gender",
        "--format",
        "csv",
    ];
    assert_eq!(
        stdout_of(s3.cli(&env, url, &copy_c).args(args)),
        stdout_of(env.cli().args(args))
    );
    // The ANPAL report from the bucket: the tables of the local store's, line for line (the
    // lines naming the data's instant, its version and the time of writing aside).
    let report = |mut c: Command, name: &str| -> Vec<String> {
        let dir = env.dir.path().join("reports");
        std::fs::create_dir_all(&dir).unwrap();
        stdout_of(
            c.args([
                "report",
                "anpal",
                "--year",
                "2025",
                "--quarter",
                "2",
                "--out",
            ])
            .arg(dir.join(name)),
        );
        let mut csvs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with(&format!("{name}.")) && n.ends_with(".csv")
            })
            .collect();
        csvs.sort();
        assert!(csvs.len() >= 6, "{csvs:?}");
        csvs.iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .filter(|l| {
                        ![
                            "# Dati acquisiti",
                            "# Versione",
                            "# Generato",
                            "# Per rigenerarlo",
                        ]
                        .iter()
                        .any(|p| l.starts_with(p))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    };
    assert_eq!(
        report(s3.cli(&env, url, &copy_c), "s3"),
        report(env.cli(), "local")
    );
    // Credentials are never shown or logged, even at the most verbose level.
    let out = s3
        .cli(&env, url, &copy_c)
        .env("MIRATO_LOG", "trace")
        .arg("status")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains(url), "{stdout}");
    assert!(stderr.len() > 1000, "trace logs were written");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(SECRET) && !text.contains(KEY_ID));
    }
}

#[test]
fn a_kill_at_any_step_of_a_commit_on_s3_leaves_all_of_a_file_or_none() {
    let Some(s3) = S3::start() else { return };
    // (fault, whether the bucket has the batch when the process dies)
    let faults = [
        ("MIRATO_FAULT_AFTER_RENAMES", false),
        ("MIRATO_FAULT_BEFORE_REMOTE_COMMIT", false),
        ("MIRATO_FAULT_AFTER_REMOTE_COMMIT", true),
        ("MIRATO_FAULT_BEFORE_LEDGER", true),
    ];
    for (i, (fault, committed)) in faults.into_iter().enumerate() {
        let bucket = format!("kill{i}");
        s3.create_bucket(&bucket);
        let url = format!("s3://{bucket}/store");
        let env = Env::new();
        let path = crate::crash::big_file(&env, 1200);
        let copy_a = env.dir.path().join("copy-a");
        // A first file goes in whole, so the faults strike the big file's commit.
        let first = env.write("first.csv", csv_of(&[hire("k1", "2025-03-03", 1, &[])]));
        stdout_of(s3.cli(&env, &url, &copy_a).arg("ingest").arg(&first));
        let out = s3
            .cli(&env, &url, &copy_a)
            .env(fault, "1")
            .arg("ingest")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("fault injection"),
            "{fault}: the process was aborted: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = if committed { 1201 } else { 1 };
        // The bucket is the truth: outside readers and a second machine agree with it
        // before the killed machine recovers, and the killed machine after.
        assert_eq!(s3.rows_outside(&url), expected, "{fault}: outside readers");
        let copy_b = env.dir.path().join("copy-b");
        assert_eq!(
            rows_on(&s3, &url, &copy_b),
            expected as usize,
            "{fault}: a second machine"
        );
        assert_eq!(
            rows_on(&s3, &url, &copy_a),
            expected as usize,
            "{fault}: the killed machine"
        );
        if fault == "MIRATO_FAULT_BEFORE_REMOTE_COMMIT" {
            // The uploads no version lists stay in the bucket until they are old; the first
            // file's stays for ever.
            let parquet = |s3: &S3| {
                s3.keys(&bucket)
                    .into_iter()
                    .filter(|k| k.ends_with(".parquet"))
                    .count()
            };
            let listed = s3.read_delta(&url)["files"].as_array().unwrap().len();
            assert!(
                parquet(&s3) > listed,
                "the killed ingest had uploaded files"
            );
            stdout_of(s3.cli(&env, &url, &copy_a).args(["jobs", "run", "compact"]));
            assert!(parquet(&s3) > listed, "young files are kept");
            stdout_of(
                s3.cli(&env, &url, &copy_a)
                    .env("MIRATO_S3_ORPHAN_SECONDS", "0")
                    .args(["jobs", "run", "compact"]),
            );
            assert_eq!(
                parquet(&s3),
                listed,
                "old files no version lists are removed"
            );
            assert_eq!(s3.rows_outside(&url), 1, "and the table is whole");
        }
        // Running the file again completes it, once.
        stdout_of(s3.cli(&env, &url, &copy_a).arg("ingest").arg(&path));
        assert_eq!(s3.rows_outside(&url), 1201, "{fault}: after the rerun");
        assert_eq!(rows_on(&s3, &url, &copy_b), 1201, "{fault}: second machine");
    }
}

#[test]
fn sigkill_during_an_ingest_on_s3_never_shows_part_of_a_file() {
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("sigkill");
    let url = "s3://sigkill/store";
    let env = Env::new();
    let rows = 60_000;
    let path = crate::crash::big_file(&env, rows);
    let copy_a = env.dir.path().join("copy-a");
    for (i, delay_ms) in [50u64, 300, 800, 1600, 3000].into_iter().enumerate() {
        let mut child = s3
            .cli(&env, url, &copy_a)
            .arg("ingest")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Outside readers while the ingest runs, then it is killed.
        std::thread::sleep(Duration::from_millis(delay_ms / 2));
        // Each reader takes the newest version when it starts, so two may see two versions.
        let during = s3.read_delta_raw(url);
        for k in [
            "deltalake_rows",
            "pandas_rows",
            "polars_rows",
            "duckdb_rows",
        ] {
            let n = during[k].as_u64().unwrap();
            assert!(n == 0 || n == rows as u64, "during: {during}");
        }
        std::thread::sleep(Duration::from_millis(delay_ms / 2));
        let _ = child.kill();
        let _ = child.wait();
        let after = s3.rows_outside(url);
        assert!(after == 0 || after == rows as u64, "after: {after}");
        let copy = env.dir.path().join(format!("copy-{i}"));
        assert_eq!(rows_on(&s3, url, &copy) as u64, after, "a fresh machine");
        assert_eq!(rows_on(&s3, url, &copy_a) as u64, after, "the killed one");
    }
}

#[test]
fn two_machines_cannot_both_commit_the_same_version() {
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("race");
    let url = "s3://race/store";
    let env = Env::new();
    let key = mirato::privacy::Key::load_or_create(&env.key, &env.data).unwrap();
    let root_b = mount(&s3, url, &env.dir.path().join("copy-b"));
    // Machine B opens the store (and makes its first version); machine A then commits a file.
    let store_b = Store::open(&root_b).unwrap();
    let a_file = env.write("a.csv", csv_of(&[hire("race-a", "2025-03-03", 1, &[])]));
    stdout_of(
        s3.cli(&env, url, &env.dir.path().join("copy-a"))
            .arg("ingest")
            .arg(&a_file),
    );
    // B, behind the bucket, cannot commit its own file over A's version.
    let b_file = env.write("b.csv", csv_of(&[hire("race-b", "2025-03-04", 2, &[])]));
    let files = mirato::ingest::collect_inputs(std::slice::from_ref(&b_file)).unwrap();
    let mut ing = mirato::ingest::Ingester::new(&store_b, key.clone()).unwrap();
    let refused = ing.ingest_files(&files, |_| {});
    let message = match refused {
        Err(e) => e.to_string(),
        Ok(r) => format!("{r:?}"),
    };
    assert!(
        message.contains("another mirato committed version"),
        "{message}"
    );
    drop(ing);
    drop(store_b);
    assert_eq!(s3.rows_outside(url), 1, "only A's file is in the table");
    // Opened again, B takes in A's commit, and its file goes in after it.
    let store_b = Store::open(&root_b).unwrap();
    let mut ing = mirato::ingest::Ingester::new(&store_b, key).unwrap();
    ing.ingest_files(&files, |_| {}).unwrap();
    drop(ing);
    drop(store_b);
    assert_eq!(s3.rows_outside(url), 2);
    assert_eq!(rows_on(&s3, url, &env.dir.path().join("copy-c")), 2);
}

#[test]
fn quarantine_and_files_rejected_whole_reach_every_machine() {
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("ledger");
    let url = "s3://ledger/store";
    let env = Env::new();
    let copy_a = env.dir.path().join("copy-a");
    let rows = csv_of(&[
        hire("q1", "2025-03-03", 1, &[]),
        with(
            hire("q2", "2025-03-04", 2, &[]),
            &[("province", Some("ZZ"))],
        ),
    ]);
    // A file with a rejected row, a file rejected whole, and the first file's bytes again.
    for (name, text) in [
        ("mixed.csv", rows.as_str()),
        ("empty.csv", ""),
        ("again.csv", &rows),
    ] {
        let path = env.write(name, text);
        let _ = s3
            .cli(&env, url, &copy_a)
            .arg("ingest")
            .arg(&path)
            .output()
            .unwrap();
    }
    let machine = |copy: &Path| {
        let root = mount(&s3, url, copy);
        drop(Store::open(&root).unwrap());
        let l = Layout::new(&root);
        let ledger = l.read_ledger().unwrap();
        let quarantine = all_text(&read_all(&l.committed_files(&l.quarantine()).unwrap()));
        let status = stdout_of(s3.cli(&env, url, copy).arg("status"));
        let status = status.lines().skip(1).collect::<Vec<_>>().join("\n");
        (ledger, quarantine, status)
    };
    let a = machine(&copy_a);
    assert_eq!(a.0.len(), 3, "{:?}", a.0);
    assert!(
        a.0.iter()
            .any(|e| e.status == mirato::store::BatchStatus::Rejected)
    );
    assert!(a.0.iter().any(|e| e.repeat_of.is_some()), "{:?}", a.0);
    assert!(a.1.contains("ZZ"), "the quarantined row: {}", a.1);
    assert_eq!(machine(&env.dir.path().join("copy-b")), a, "as machine A");
}
