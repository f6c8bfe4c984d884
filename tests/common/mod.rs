//! Shared helpers for the integration tests: a throw-away data folder and key, the real ingest,
//! and readers of the real Parquet files. One concern, what every test module needs, read top to
//! bottom: the environment, readers of outputs, builders of event rows, a generated store, the
//! served URL of a child server and Python's verdicts. Over 600 lines so that no test module
//! writes its own copy of any of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use mirato::ingest::{FileReport, Ingester};
use mirato::privacy::Key;
use mirato::store::{Layout, Store, parquet_files};

/// A valid 16-character CF from its first 15 characters.
pub fn cf(first15: &str) -> String {
    let c = mirato::codes::cf_check_char(first15.as_bytes()) as char;
    format!("{first15}{c}")
}

/// A valid partita IVA.
pub const PIVA: &str = "00743110157";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub key: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let key = dir.path().join("secrets").join("key");
        Env { dir, data, key }
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join("in").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The real ingest, in process.
    pub fn ingest(&self, paths: &[PathBuf]) -> Vec<FileReport> {
        let key = Key::load_or_create(&self.key, &self.data).expect("key");
        let store = Store::open(&self.data).expect("store");
        let mut ing = Ingester::new(&store, key).expect("ingester");
        let files = mirato::ingest::collect_inputs(paths).expect("inputs");
        ing.ingest_files(&files, |_| {}).expect("store usable")
    }

    pub fn ingest_one(&self, path: &Path) -> FileReport {
        self.ingest(&[path.to_path_buf()]).remove(0)
    }

    /// The binary, with this environment's data folder and key.
    pub fn cli(&self) -> std::process::Command {
        let mut c = std::process::Command::new(mirato_bin());
        c.env("MIRATO_DATA_DIR", &self.data)
            .env("MIRATO_KEY_FILE", &self.key)
            .env_remove("MIRATO_LOG");
        c
    }

    pub fn layout(&self) -> Layout {
        Layout::new(&self.data)
    }

    /// Every committed event row.
    pub fn events(&self) -> Vec<RecordBatch> {
        let l = self.layout();
        read_all(&l.committed_files(&l.events()).unwrap())
    }

    pub fn event_count(&self) -> usize {
        self.events().iter().map(|b| b.num_rows()).sum()
    }

    /// Every quarantine row.
    pub fn quarantine(&self) -> Vec<RecordBatch> {
        let l = self.layout();
        read_all(&l.committed_files(&l.quarantine()).unwrap())
    }

    /// Every Parquet file under the data folder, committed or not.
    pub fn all_parquet(&self) -> Vec<PathBuf> {
        parquet_files(&self.data).unwrap()
    }

    /// What outside readers (delta-rs, pandas, polars, and DuckDB over the table's files) see
    /// through the events table's Delta log, as the README shows them; with `as_of`, the rows
    /// ingested by then (`tests/interop/read_delta.py`).
    pub fn read_delta(&self, as_of: Option<&str>) -> serde_json::Value {
        let mut args = vec![self.data.as_os_str()];
        args.extend(as_of.map(std::ffi::OsStr::new));
        let v = python_json(
            include_str!("../interop/read_delta.py"),
            &args,
            None,
            "deltalake polars duckdb",
        );
        for k in ["pandas_rows", "polars_rows", "duckdb_rows"] {
            assert_eq!(v[k], v["deltalake_rows"], "every reader agrees: {v}");
        }
        v
    }
}

/// The binary the tests drive: this build's, or `MIRATO_TEST_BIN` (a copy that a long run,
/// such as `benches/faults.sh`, keeps while the target folder is rebuilt).
pub fn mirato_bin() -> std::path::PathBuf {
    std::env::var_os("MIRATO_TEST_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_mirato").into())
}

/// Runs a command that must succeed (its standard error is the failure message) and returns
/// its standard output.
pub fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

pub fn read_all(files: &[PathBuf]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(f).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in r {
            out.push(b.unwrap());
        }
    }
    out
}

/// The values of a column as text (`None` for null), over all batches.
pub fn column(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        for i in 0..col.len() {
            out.push(if col.is_null(i) {
                None
            } else {
                Some(array_value_to_string(col, i).unwrap())
            });
        }
    }
    out
}

/// Every value of every column, as text: for searching the store for a raw identifier.
pub fn all_text(batches: &[RecordBatch]) -> String {
    let mut s = String::new();
    for b in batches {
        for col in b.columns() {
            for i in 0..col.len() {
                if !col.is_null(i) {
                    s.push_str(&array_value_to_string(col, i).unwrap());
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// CSV text of rows given as (field, value) pairs; the header is the union of fields in order.
pub fn csv_of(rows: &[Vec<(String, String)>]) -> String {
    let mut header: Vec<String> = Vec::new();
    for r in rows {
        for (k, _) in r {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for r in rows {
        let rec: Vec<String> = header
            .iter()
            .map(|h| {
                r.iter()
                    .find(|(k, _)| k == h)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        w.write_record(&rec).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// JSON Lines text of rows given as (field, value) pairs, all values as strings.
pub fn jsonl_of(rows: &[Vec<(String, String)>]) -> String {
    let mut s = String::new();
    for r in rows {
        let obj: serde_json::Map<String, serde_json::Value> = r
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        s.push_str(&serde_json::Value::Object(obj).to_string());
        s.push('\n');
    }
    s
}

/// A valid row of an event type, with the common fields filled in.
pub fn base_row(event_type: &str, event_id: &str) -> Vec<(String, String)> {
    let person = cf("RSSMRA85T10F205");
    let mut r: Vec<(&str, String)> = vec![
        ("event_id", event_id.into()),
        ("event_type", event_type.into()),
        ("occurred_at", "2024-03-05".into()),
        ("province", "MI".into()),
        ("cpi_code", "MI-01".into()),
    ];
    let employers_side = matches!(
        event_type,
        "obligation_statement"
            | "agreement_signed"
            | "agreement_ended"
            | "exemption_granted"
            | "obligation_suspended"
            | "territorial_compensation"
            | "numerical_request"
    );
    if !matches!(event_type, "vacancy_opened" | "vacancy_closed") && !employers_side {
        r.push(("person_cf", person));
    }
    r.push(("operator_id", "op-MI-0001".into()));
    let own: &[(&str, &str)] = match event_type {
        "application_submitted" => &[
            ("list_type", "art1"),
            ("category", "invalido_civile"),
            ("disability_pct", "60"),
            ("naspi", "true"),
            ("education", "3"),
        ],
        "certification_requested" => &[("agency", "INPS")],
        "application_pre_rejected" | "application_rejected" => {
            &[("reason", "documents_incomplete")]
        }
        "registration_cancelled" => &[("reason", "own_request")],
        "qualitative_profiling" => &[("profiling_index", "0.5")],
        "pact_signed" | "pact_updated" => &[
            ("pact_id", "P1"),
            ("responsible_operator", "op-MI-0002"),
            ("employability_profile", "medium"),
            ("search_acts", "2"),
            ("contact_frequency_days", "30"),
            ("search_proof_method", "online"),
            ("avail_workshops", "true"),
            ("avail_training", "true"),
            ("avail_offers", "true"),
        ],
        "pact_review" => &[("pact_id", "P1"), ("review_outcome", "on_track")],
        "specialist_orientation" => &[("group", "false")],
        "skills_assessment" => &[("skills_gap", "true")],
        "referral" => &[("to_service", "training")],
        "job_search_support" => &[("support_type", "cv")],
        "measure_started" => &[
            ("measure_id", "M1"),
            ("measure_type", "tirocinio"),
            ("employer_id", PIVA),
        ],
        "tutoring_meeting" => &[("measure_id", "M1")],
        "measure_ended" => &[("measure_id", "M1"), ("end_reason", "completed")],
        "vacancy_opened" => &[
            ("vacancy_id", "V1"),
            ("employer_id", PIVA),
            ("positions", "2"),
            ("request_type", "numerica"),
            ("ateco_section", "C"),
            ("profession_code", "3.4.5.2.0"),
        ],
        "candidate_proposed" => &[("vacancy_id", "V1"), ("channel", "pes_proposal")],
        "candidate_preselected" | "candidate_selected" | "candidate_not_selected" => {
            &[("vacancy_id", "V1")]
        }
        "vacancy_closed" => &[("vacancy_id", "V1"), ("close_reason", "filled")],
        "hired" => &[
            ("employer_id", PIVA),
            ("contract_code", "A.02.00"),
            ("contract_months", "6"),
            ("part_time", "false"),
            ("hiring_mode", "numerica"),
        ],
        "employment_ended" => &[("employer_id", PIVA), ("end_reason", "dismissal")],
        // The employers' side (docs/EVENTS-employers.md).
        "obligation_statement" => &[
            ("employer_id", PIVA),
            ("reference_year", "2024"),
            ("sector", "private"),
            ("size_band", "over_50"),
            ("base_workforce", "120"),
            ("reserved_art1", "8"),
            ("covered_art1", "6"),
            ("reserved_art18", "1"),
            ("covered_art18", "1"),
        ],
        "agreement_signed" => &[
            ("employer_id", PIVA),
            ("agreement_id", "A1"),
            ("agreement_type", "art11_c1"),
            ("planned_hires", "3"),
            ("duration_months", "24"),
        ],
        "agreement_ended" => &[
            ("employer_id", PIVA),
            ("agreement_id", "A1"),
            ("agreement_outcome", "partial"),
        ],
        "exemption_granted" => &[
            ("employer_id", PIVA),
            ("exemption_pct", "60"),
            ("exempted_workers", "4"),
            ("period_start", "2024-04-01"),
            ("period_end", "2025-03-31"),
        ],
        "obligation_suspended" => &[
            ("employer_id", PIVA),
            ("suspension_reason", "cig"),
            ("period_start", "2024-04-01"),
            ("period_end", "2024-09-30"),
            ("positions", "3"),
        ],
        "territorial_compensation" => &[
            ("employer_id", PIVA),
            ("to_province", "RM"),
            ("positions", "2"),
        ],
        "numerical_request" => &[
            ("employer_id", PIVA),
            ("vacancy_id", "V9"),
            ("positions", "2"),
        ],
        _ => &[],
    };
    let mut out: Vec<(String, String)> = r.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    out.extend(own.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    out
}

/// Applies overrides: a value replaces the field, `None` removes it.
pub fn with(
    mut row: Vec<(String, String)>,
    changes: &[(&str, Option<&str>)],
) -> Vec<(String, String)> {
    for (k, v) in changes {
        row.retain(|(f, _)| f != k);
        if let Some(v) = v {
            row.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    row
}

pub fn counts(r: &FileReport) -> (u64, u64, u64, u64) {
    match r {
        FileReport::Read {
            read,
            stored,
            duplicates,
            rejected,
            ..
        } => (*read, *stored, *duplicates, *rejected),
        FileReport::Failed { file, error } => panic!("{file} rejected whole: {error}"),
    }
}

/// The n-th test person's CF (valid, distinct for n < 1000).
pub fn person(n: u32) -> String {
    cf(&format!("RSSMRA85T10F{n:03}"))
}

/// One event row: type, id, date or instant, person number (None for vacancy events), and the
/// type's own fields. Province MI and CPI MI-01 unless `extra` says otherwise.
pub fn ev(
    event_type: &str,
    id: &str,
    at: &str,
    who: Option<u32>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut r: Vec<(String, String)> = vec![
        ("event_id".into(), id.into()),
        ("event_type".into(), event_type.into()),
        ("occurred_at".into(), at.into()),
        ("province".into(), "MI".into()),
        ("cpi_code".into(), "MI-01".into()),
    ];
    if let Some(n) = who {
        r.push(("person_cf".into(), person(n)));
    }
    for (k, v) in extra {
        r.retain(|(f, _)| f != k);
        r.push(((*k).into(), (*v).into()));
    }
    r
}

/// A hire: contract A.01.00 (open-ended), numerica, employer PIVA, Milano, unless `extra` says
/// otherwise.
#[allow(dead_code)]
pub fn hire(id: &str, at: &str, who: u32, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f: Vec<(&str, &str)> = vec![
        ("employer_id", PIVA),
        ("contract_code", "A.01.00"),
        ("hiring_mode", "numerica"),
    ];
    f.extend_from_slice(extra);
    ev("hired", id, at, Some(who), &f)
}

/// An application with the attributes the breakdowns need.
pub fn application(id: &str, at: &str, who: u32, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("list_type", "art1"),
        ("category", "invalido_civile"),
        ("disability_pct", "70"),
        ("gender", "F"),
        ("birth_date", "1990-05-01"),
    ];
    for (k, v) in extra {
        fields.retain(|(f, _)| f != k);
        fields.push((k, v));
    }
    ev("application_submitted", id, at, Some(who), &fields)
}

impl Env {
    /// Ingests rows as one CSV batch through the real ingest; panics unless all are stored.
    pub fn load(&self, name: &str, rows: &[Vec<(String, String)>]) {
        let p = self.write(name, csv_of(rows));
        let r = self.ingest_one(&p);
        let (read, stored, _, _) = counts(&r);
        assert_eq!(read, stored, "every fixture row is valid: {r:?}");
    }

    /// Runs a KPI through the real engine; returns the whole JSON result.
    pub fn kpi(&self, id: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let raw = raw_params(params);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(async {
                let engine = mirato::query::Engine::open(&self.data)?;
                engine.run_raw(id, &raw).await
            })
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        serde_json::to_value(&r).unwrap()
    }

    /// The KPI's rows only.
    pub fn rows(&self, id: &str, params: &[(&str, &str)]) -> serde_json::Value {
        self.kpi(id, params)["rows"].clone()
    }

    /// A KPI call expected to fail on its parameters; returns the message.
    pub fn kpi_error(&self, id: &str, params: &[(&str, &str)]) -> String {
        let raw = raw_params(params);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        match rt.block_on(async {
            let engine = mirato::query::Engine::open(&self.data)?;
            engine.run_raw(id, &raw).await
        }) {
            Ok(r) => panic!("{id} should fail, got {:?}", r.rows),
            Err(e) => {
                assert!(e.is_user_error(), "{e}");
                e.to_string()
            }
        }
    }
}

pub fn raw_params(params: &[(&str, &str)]) -> mirato::query::RawParams {
    let get = |k: &str| {
        params
            .iter()
            .find(|(p, _)| *p == k)
            .map(|(_, v)| (*v).to_owned())
    };
    mirato::query::RawParams {
        from: get("from"),
        to: get("to"),
        by: mirato::list::parse(get("by").as_deref()),
        region: get("region"),
        province: get("province"),
        cpi: get("cpi"),
        as_of: get("as_of"),
    }
}

/// Generated events of `persons` persons from `start` to `end`, merged into one batch, so the
/// store has few files: the debug build pays for every file a query opens.
pub fn generated_store(persons: u32, seed: u32, start: &str, end: &str) -> Env {
    let env = Env::new();
    let gen_dir = env.dir.path().join("gen");
    stdout_of(
        env.cli()
            .args(["generate", "--persons", &persons.to_string()])
            .args([
                "--seed",
                &seed.to_string(),
                "--start",
                start,
                "--end",
                end,
                "--out",
            ])
            .arg(&gen_dir),
    );
    let mut files: Vec<_> = std::fs::read_dir(&gen_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut merged = String::new();
    for (i, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).unwrap();
        let mut lines = text.split_inclusive('\n');
        let header = lines.next().unwrap();
        if i == 0 {
            merged.push_str(header);
        }
        merged.extend(lines);
    }
    let path = env.write("all.csv", merged);
    env.ingest(&[path]);
    env
}

/// Users for the access tests: one per role, each with an API token, in the env's own users
/// file. The manager's scope is Lombardia.
pub struct Access {
    pub users_file: PathBuf,
    /// role name -> API token.
    pub tokens: std::collections::HashMap<&'static str, String>,
    /// role name -> password.
    pub passwords: std::collections::HashMap<&'static str, String>,
}

#[allow(dead_code)]
impl Env {
    pub fn users_file(&self) -> PathBuf {
        self.dir.path().join("users.toml")
    }

    pub fn access(&self) -> Access {
        use mirato::auth::{Role, Scope, UserStore};
        let store = UserStore::new(self.users_file());
        let mut tokens = std::collections::HashMap::new();
        let mut passwords = std::collections::HashMap::new();
        for (name, role, scope) in [
            ("admin", Role::Admin, Scope::default()),
            (
                "manager",
                Role::Manager,
                Scope {
                    regions: vec!["Lombardia".into()],
                    ..Scope::default()
                },
            ),
            ("evaluator", Role::Evaluator, Scope::default()),
            ("viewer", Role::Viewer, Scope::default()),
        ] {
            let pw = store
                .add(name, role, &scope, Some(&format!("{name}-password-123")))
                .unwrap();
            passwords.insert(name, pw);
            tokens.insert(name, store.add_token(name, "test").unwrap());
        }
        Access {
            users_file: self.users_file(),
            tokens,
            passwords,
        }
    }

    pub fn auth_settings(&self) -> mirato::auth::AuthSettings {
        mirato::auth::AuthSettings {
            users_file: self.users_file(),
            threshold: 5,
            secure_cookies: false,
            session_ttl: std::time::Duration::from_secs(3600),
            session_max: std::time::Duration::from_secs(12 * 3600),
            login_attempts: 5,
            login_window: std::time::Duration::from_secs(900),
            audit_file: self.data.join("audit").join("audit.jsonl"),
            audit_rotation: mirato::auth::audit::Rotation::default(),
        }
    }

    /// The application over this env's store, key and users, as `config` describes it.
    pub fn setup_with(&self, config: &mirato::config::Config) -> mirato::app::Setup {
        mirato::app::Setup {
            auth: self.auth_settings(),
            ..mirato::app::Setup::new(config, self.data.clone(), self.key.clone())
        }
    }

    /// The application over this env's store with the default configuration.
    pub fn setup(&self) -> mirato::app::Setup {
        self.setup_with(&mirato::config::load_with(None, &[]).expect("the defaults"))
    }

    /// The server's state over this env's store, with its users.
    pub fn app_state(&self) -> mirato::server::AppState {
        self.setup().state().expect("the server's state")
    }
}

/// A router's reply, read whole: for the tests that drive the server with `oneshot`.
pub struct Reply {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

#[allow(dead_code)]
impl Reply {
    pub async fn read(resp: axum::response::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    /// Every value of a header, one per line.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs a Python script (`python3 -c`) with `args` and, when given, `stdin`; returns what it
/// prints as JSON. `needs` names the packages, for the message when it fails.
#[allow(dead_code)]
pub fn python_json(
    script: &str,
    args: &[&std::ffi::OsStr],
    stdin: Option<&str>,
    needs: &str,
) -> serde_json::Value {
    python_json_env(script, args, &[], stdin, needs)
}

/// [`python_json`] with environment variables set for the script.
#[allow(dead_code)]
pub fn python_json_env(
    script: &str,
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
    stdin: Option<&str>,
    needs: &str,
) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed (pip install {needs}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// The URL a `mirato serve` child prints on its first line of output.
pub fn served_url(stdout: impl std::io::Read) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("serve prints its URL");
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_owned()
}

/// Every KPI of the catalogue for `from..to` with keyed cells, without a breakdown and by CPI
/// (where it takes one): the runs the keyed-figure comparisons go over.
pub fn keyed_runs(
    from: &str,
    to: &str,
) -> Vec<(
    &'static mirato::query::KpiDef,
    mirato::query::Params,
    Option<&'static str>,
)> {
    let mut runs = Vec::new();
    for def in mirato::query::catalog() {
        for by in [None, Some("cpi")] {
            let mut query = vec![("from", from), ("to", to)];
            query.extend(by.map(|b| ("by", b)));
            if let Ok(mut p) = mirato::query::Params::parse(def, &raw_params(&query)) {
                p.cell_keys = true;
                runs.push((def, p, by));
            }
        }
    }
    runs
}
