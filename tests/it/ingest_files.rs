//! Whole files: rejected files, derivations, duplicates across formats, privacy, crash safety,
//! and the accounting on generated data.

use crate::common;
use common::*;
use std::io::Write;

use mirato::ingest::FileReport;

fn failed(r: &FileReport) -> &str {
    match r {
        FileReport::Failed { error, .. } => error,
        other => panic!("expected a rejected file, got {other:?}"),
    }
}

/// The store after a rejected file: no events, no quarantine, only a ledger entry saying why.
fn assert_nothing_stored(env: &Env) {
    assert_eq!(env.event_count(), 0);
    assert!(env.all_parquet().is_empty(), "{:?}", env.all_parquet());
}

#[test]
fn bad_gzip_is_rejected_whole() {
    let env = Env::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv_of(&[base_row("basic_orientation", "e-1")]).as_bytes())
        .unwrap();
    let mut bytes = gz.finish().unwrap();
    bytes.truncate(bytes.len() / 2);
    bytes.extend_from_slice(b"garbage");
    let p = env.write("a.csv.gz", bytes);
    let r = env.ingest_one(&p);
    assert!(failed(&r).contains("gzip"), "{r:?}");
    assert_nothing_stored(&env);
    let ledger = env.layout().read_ledger().unwrap();
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].error.as_deref().unwrap().contains("gzip"));
}

#[test]
fn not_utf8_is_rejected_whole() {
    let env = Env::new();
    let mut bytes = csv_of(&[
        base_row("basic_orientation", "e-1"),
        base_row("basic_orientation", "e-2"),
    ])
    .into_bytes();
    // Latin-1 'è' in the last row's cpi_code: the first row is fine, yet nothing may be stored.
    let pos = bytes.len() - 3;
    bytes.insert(pos, 0xe8);
    let p = env.write("a.csv", bytes);
    let r = env.ingest_one(&p);
    assert!(failed(&r).contains("UTF-8"), "{r:?}");
    assert!(failed(&r).contains("line 3"), "{r:?}");
    assert_nothing_stored(&env);
}

#[test]
fn empty_file_has_no_header() {
    let env = Env::new();
    let p = env.write("a.csv", "");
    assert!(failed(&env.ingest_one(&p)).contains("no header"));
    assert_nothing_stored(&env);
}

#[test]
fn data_row_instead_of_header_is_rejected() {
    let env = Env::new();
    let text = csv_of(&[base_row("basic_orientation", "e-1")]);
    let without_header = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    let p = env.write("a.csv", without_header);
    assert!(failed(&env.ingest_one(&p)).contains("no header"));
    assert_nothing_stored(&env);
}

#[test]
fn missing_required_column_names_the_column() {
    let env = Env::new();
    let rows: Vec<_> = (0..3)
        .map(|i| {
            with(
                base_row("basic_orientation", &format!("e-{i}")),
                &[("cpi_code", None)],
            )
        })
        .collect();
    let p = env.write("a.csv", csv_of(&rows));
    let r = env.ingest_one(&p);
    assert!(failed(&r).contains("cpi_code"), "{r:?}");
    assert_nothing_stored(&env);
}

#[test]
fn unknown_extension_is_rejected() {
    let env = Env::new();
    let p = env.write("a.xlsx", "whatever");
    assert!(failed(&env.ingest_one(&p)).contains(".csv"));
}

#[test]
fn cli_exit_codes_and_json_report() {
    let env = Env::new();
    let good = env.write("good.csv", csv_of(&[base_row("basic_orientation", "e-1")]));
    let bad = env.write("bad.csv", "");
    let out = env
        .cli()
        .args(["ingest", "--format", "json"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"file": good.display().to_string(), "read": 1, "stored": 1, "duplicates": 0, "rejected": 0})
    );
    let out = env
        .cli()
        .args(["ingest", "--format", "json"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a file rejected whole fails the run"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["duplicates"], 1);
    assert!(lines[1]["error"].as_str().unwrap().contains("empty"));
    // A store that cannot be created is an error, with a non-zero exit.
    let blocker = env.dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let out = env
        .cli()
        .env("MIRATO_DATA_DIR", blocker.join("data"))
        .arg("ingest")
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unusable"));
}

#[test]
fn gender_and_birth_year_come_from_the_cf() {
    let env = Env::new();
    // Woman born 01/01/1990 (day 41), man born 10/12/2005 (year 05: 2005 <= 2024 - 15),
    // man with year 12 applying in 2024 (2012 > 2009, so 1912).
    let woman = cf("BNCLRA90A41F205");
    let young = cf("VRDGNN05T10F205");
    let old = cf("BRNPLA12A01F205");
    let rows = vec![
        with(
            base_row("application_submitted", "a1"),
            &[("person_cf", Some(&woman))],
        ),
        with(
            base_row("application_submitted", "a2"),
            &[("person_cf", Some(&young))],
        ),
        with(
            base_row("application_submitted", "a3"),
            &[("person_cf", Some(&old))],
        ),
        // Explicit values win over the CF.
        with(
            base_row("application_submitted", "a4"),
            &[
                ("person_cf", Some(&woman)),
                ("gender", Some("M")),
                ("birth_date", Some("1970-06-30")),
            ],
        ),
        // A temporary code encodes nothing.
        with(
            base_row("application_submitted", "a5"),
            &[("person_cf", Some("00743110157"))],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (5, 5, 0, 0));
    let ev = env.events();
    let ids = column(&ev, "event_id");
    let g = column(&ev, "gender");
    let y = column(&ev, "birth_year");
    let get = |id: &str| {
        let i = ids.iter().position(|x| x.as_deref() == Some(id)).unwrap();
        (g[i].clone(), y[i].clone())
    };
    assert_eq!(get("a1"), (Some("F".into()), Some("1990".into())));
    assert_eq!(get("a2"), (Some("M".into()), Some("2005".into())));
    assert_eq!(get("a3"), (Some("M".into()), Some("1912".into())));
    assert_eq!(get("a4"), (Some("M".into()), Some("1970".into())));
    assert_eq!(get("a5"), (None, None));
}

#[test]
fn cf_is_compared_case_insensitively_after_trimming() {
    let env = Env::new();
    let c = cf("RSSMRA85T10F205");
    let lower = format!("  {}  ", c.to_lowercase());
    let rows = vec![
        with(
            base_row("basic_orientation", "e1"),
            &[("person_cf", Some(&c))],
        ),
        with(
            base_row("basic_orientation", "e2"),
            &[("person_cf", Some(&lower))],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (2, 2, 0, 0));
    let pids = column(&env.events(), "person_id");
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[0].as_ref().unwrap().len(), 32);
}

#[test]
fn omocodic_cf_is_valid() {
    let env = Env::new();
    // RSSMRA85T10F205 with the last comune digit 5 -> R (omocodia).
    let omo = cf("RSSMRA85T10F20R");
    let p = env.write(
        "a.csv",
        csv_of(&[with(
            base_row("application_submitted", "e1"),
            &[("person_cf", Some(&omo))],
        )]),
    );
    assert_eq!(counts(&env.ingest_one(&p)), (1, 1, 0, 0));
    assert_eq!(
        column(&env.events(), "birth_year")[0].as_deref(),
        Some("1985")
    );
}

#[test]
fn fields_of_other_types_and_unknown_columns_are_ignored() {
    let env = Env::new();
    let row = with(
        base_row("basic_orientation", "e1"),
        &[
            ("contract_code", Some("not a code")),
            ("notes", Some("anything")),
        ],
    );
    let p = env.write("a.csv", csv_of(&[row]));
    assert_eq!(counts(&env.ingest_one(&p)), (1, 1, 0, 0));
    assert_eq!(column(&env.events(), "contract_code"), vec![None]);
}

#[test]
fn vacancy_events_need_no_person() {
    let env = Env::new();
    let p = env.write(
        "a.csv",
        csv_of(&[
            base_row("vacancy_opened", "v1"),
            base_row("vacancy_closed", "v2"),
        ]),
    );
    assert_eq!(counts(&env.ingest_one(&p)), (2, 2, 0, 0));
    assert_eq!(column(&env.events(), "person_id"), vec![None, None]);
}

#[test]
fn derived_columns() {
    let env = Env::new();
    let rows = vec![
        base_row("pact_signed", "p1"),
        with(
            base_row("pact_signed", "p2"),
            &[("avail_offers", Some("FALSE"))],
        ),
        with(base_row("pact_signed", "p3"), &[("search_acts", Some("0"))]),
        base_row("hired", "h1"),
        with(base_row("hired", "h2"), &[("contract_months", Some("5"))]),
        with(
            base_row("hired", "h3"),
            &[
                ("contract_code", Some("A.03.09")),
                ("contract_months", None),
            ],
        ),
        with(
            base_row("hired", "h4"),
            &[
                ("contract_code", Some("Z.12.34")),
                ("contract_months", None),
            ],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (7, 7, 0, 0));
    let ev = env.events();
    let ids = column(&ev, "event_id");
    let complete = column(&ev, "pact_complete");
    let stable = column(&ev, "stable_hire");
    let class = column(&ev, "contract_class");
    let at = |id: &str| ids.iter().position(|x| x.as_deref() == Some(id)).unwrap();
    assert_eq!(complete[at("p1")].as_deref(), Some("true"));
    assert_eq!(complete[at("p2")].as_deref(), Some("false"));
    assert_eq!(complete[at("p3")].as_deref(), Some("false"));
    assert_eq!(stable[at("h1")].as_deref(), Some("true"));
    assert_eq!(stable[at("h2")].as_deref(), Some("false"));
    assert_eq!(stable[at("h3")].as_deref(), Some("true"));
    assert_eq!(class[at("h3")].as_deref(), Some("apprenticeship"));
    assert_eq!(class[at("h4")].as_deref(), Some("other"));
}

#[test]
fn rome_date_partitions() {
    let env = Env::new();
    let rows = vec![
        // 23:30 UTC on 31 January is 00:30 on 1 February in Rome.
        with(
            base_row("basic_orientation", "e1"),
            &[("occurred_at", Some("2024-01-31T23:30:00Z"))],
        ),
        with(
            base_row("basic_orientation", "e2"),
            &[("occurred_at", Some("2024-01-31T22:30:00Z"))],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    assert_eq!(counts(&env.ingest_one(&p)), (2, 2, 0, 0));
    // Through `events`, the link to the current generation.
    let files: Vec<String> = mirato::store::parquet_files(&env.layout().events())
        .unwrap()
        .iter()
        .map(|f| f.strip_prefix(&env.data).unwrap().display().to_string())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("events/year=2024/month=02/")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("events/year=2024/month=01/")),
        "{files:?}"
    );
    let ev = env.events();
    let ids = column(&ev, "event_id");
    let dates = column(&ev, "occurred_date");
    let at = |id: &str| ids.iter().position(|x| x.as_deref() == Some(id)).unwrap();
    assert_eq!(dates[at("e1")].as_deref(), Some("2024-02-01"));
    assert_eq!(dates[at("e2")].as_deref(), Some("2024-01-31"));
    assert!(column(&ev, "ingested_at").iter().all(Option::is_some));
}

#[test]
fn csv_and_json_lines_with_the_same_content_are_duplicates() {
    let env = Env::new();
    let rows = vec![
        base_row("hired", "h1"),
        base_row("application_submitted", "a1"),
    ];
    let csv = env.write("a.csv", csv_of(&rows));
    // JSON with native numbers and booleans, keys in another order, and an unknown key.
    let mut json = String::new();
    for r in &rows {
        let mut obj = serde_json::Map::new();
        obj.insert("extra".into(), serde_json::json!(null));
        for (k, v) in r.iter().rev() {
            let val = match v.as_str() {
                "true" => serde_json::json!(true),
                "false" => serde_json::json!(false),
                s if s.bytes().all(|b| b.is_ascii_digit())
                    && !k.contains("cf")
                    && !k.contains("employer") =>
                {
                    serde_json::json!(s.parse::<u64>().unwrap())
                }
                s => serde_json::json!(s),
            };
            obj.insert(k.clone(), val);
        }
        json.push_str(&serde_json::Value::Object(obj).to_string());
        json.push('\n');
    }
    let jsonl = env.write("b.jsonl", json);
    let r = env.ingest(&[csv, jsonl]);
    assert_eq!(counts(&r[0]), (2, 2, 0, 0));
    assert_eq!(counts(&r[1]), (2, 0, 2, 0));
}

#[test]
fn reingesting_a_file_stores_nothing_new() {
    let env = Env::new();
    let rows = vec![
        base_row("basic_orientation", "e1"),
        with(
            base_row("basic_orientation", "e2"),
            &[("province", Some("XX"))],
        ),
    ];
    let p = env.write("a.csv.gz", {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(csv_of(&rows).as_bytes()).unwrap();
        gz.finish().unwrap()
    });
    assert_eq!(counts(&env.ingest_one(&p)), (2, 1, 0, 1));
    let files_before = env.all_parquet();
    assert_eq!(counts(&env.ingest_one(&p)), (2, 0, 1, 1));
    assert_eq!(env.event_count(), 1);
    assert_eq!(
        env.all_parquet(),
        files_before,
        "no new event or quarantine file"
    );
    let ledger = env.layout().read_ledger().unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        ledger[1].repeat_of.as_deref(),
        Some(ledger[0].batch_id.as_str())
    );
}

#[test]
fn no_raw_cf_in_store_quarantine_ledger_or_logs() {
    let env = Env::new();
    let person = cf("RSSMRA85T10F205");
    let employer = cf("VRDGNN70A01H501");
    let rows = vec![
        with(
            base_row("hired", "h1"),
            &[
                ("person_cf", Some(&person)),
                ("employer_id", Some(&employer)),
            ],
        ),
        // Rejected rows: the CF must be masked in quarantine too, wherever it sits.
        with(
            base_row("hired", "h2"),
            &[("person_cf", Some(&person)), ("hiring_mode", Some("x"))],
        ),
        with(
            base_row("hired", "h3"),
            &[
                ("person_cf", Some(&person.to_lowercase())),
                ("cpi_code", Some(&person)),
            ],
        ),
        with(
            base_row("hired", "h4"),
            &[
                ("person_cf", Some(&person)),
                ("notes", Some(&format!("cf {person}"))),
            ],
        ),
        with(
            base_row("pact_signed", "p1"),
            &[
                ("person_cf", Some(&person)),
                ("responsible_operator", Some("Mario Bianchi")),
            ],
        ),
    ];
    let p = env.write("a.csv", csv_of(&rows));
    let out = env
        .cli()
        .env("MIRATO_LOG", "trace")
        .args(["ingest"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let store_text = all_text(&env.events());
    let quarantine_text = all_text(&env.quarantine());
    // h1, h4 (an unknown column is ignored) and p1; h2 and h3 are quarantined.
    assert_eq!(env.event_count(), 3);
    let rules = column(&env.quarantine(), "rules");
    assert!(
        rules[1].as_deref().unwrap().contains("cpi_code.identifier"),
        "{rules:?}"
    );
    let mut ledger_text = String::new();
    for e in std::fs::read_dir(env.data.join("ledger")).unwrap() {
        ledger_text.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    // Raw bytes of every file too (uncompressed dictionary pages, footers).
    let mut raw = Vec::new();
    for f in env.all_parquet() {
        raw.extend(std::fs::read(f).unwrap());
    }
    let raw = String::from_utf8_lossy(&raw).to_uppercase();
    for secret in [
        person.as_str(),
        employer.as_str(),
        "Mario Bianchi",
        "op-MI-0001",
    ] {
        let up = secret.to_uppercase();
        for (name, text) in [
            ("store", &store_text),
            ("quarantine", &quarantine_text),
            ("ledger", &ledger_text),
            ("logs", &logs),
        ] {
            assert!(
                !text.to_uppercase().contains(&up),
                "{secret} found in {name}"
            );
        }
        assert!(!raw.contains(&up), "{secret} found in raw bytes");
    }
}

/// Every file and folder under `dir` (links are not followed: `events` links to its
/// generation, which is walked as itself), with its mode.
fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::symlink_metadata(&d).unwrap();
        out.push((d.clone(), meta.permissions().mode() & 0o777, meta.is_dir()));
        if meta.is_dir() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if !std::fs::symlink_metadata(&path).unwrap().is_symlink() {
                    stack.push(path);
                }
            }
        }
    }
    out
}

/// The real binary run through `sh` with umask 022 (the usual default, which would leave files
/// readable by every user), this environment's data folder and key.
fn cli_under_umask_022(env: &Env, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_mirato"))
        .args(args)
        .env("MIRATO_DATA_DIR", &env.data)
        .env("MIRATO_KEY_FILE", &env.key)
        .env("MIRATO_JOBS_COMPACT_MIN_FILES", "2")
        .env("MIRATO_JOBS_EXPORT_DIR", env.data.join("reports"))
        .env("MIRATO_JOBS_EXPORT_ANPAL_QUARTERLY", "false")
        .env_remove("MIRATO_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_store_is_private_whatever_the_umask() {
    let env = Env::new();
    let rows = vec![
        base_row("basic_orientation", "b1"),
        with(
            base_row("basic_orientation", "b2"),
            &[("cpi_code", Some("=1+2*3"))],
        ),
    ];
    let good = env.write("a.csv", csv_of(&rows));
    let bad = env.write("b.csv", b"not,a,contract\n1,2,3\n");
    let more = env.write("c.csv", csv_of(&[base_row("basic_orientation", "b3")]));
    let out = cli_under_umask_022(
        &env,
        &[
            "ingest".as_ref(),
            good.as_os_str(),
            bad.as_os_str(),
            more.as_os_str(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cohort = env.data.join("cohort.parquet");
    let out = cli_under_umask_022(
        &env,
        &[
            "export".as_ref(),
            "cohort".as_ref(),
            "--out".as_ref(),
            cohort.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The nightly compaction (a new generation) and the scheduled export (reports).
    for job in ["compact", "export"] {
        let out = cli_under_umask_022(&env, &["jobs".as_ref(), "run".as_ref(), job.as_ref()]);
        assert!(
            out.status.success(),
            "{job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(env.data.join("reports").exists());
    let all = walk(&env.data);
    // Events, quarantine, ledger (two committed files, a rejected one), lock, the cohort file,
    // the reports.
    assert!(
        all.iter().filter(|(_, _, dir)| !dir).count() >= 10,
        "{all:?}"
    );
    assert!(env.layout().quarantine().read_dir().unwrap().count() > 0);
    for (path, mode, dir) in all {
        let want = if dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

#[test]
fn a_codice_fiscale_in_a_file_name_is_masked_everywhere() {
    let env = Env::new();
    let person = cf("BNCLRA90A41H501");
    let other = cf("VRDGNN70A01H501");
    let rows = vec![
        base_row("basic_orientation", "b1"),
        with(
            base_row("basic_orientation", "b2"),
            &[("province", Some("XX"))],
        ),
    ];
    // Read with a rejected row (quarantine), and rejected whole (ledger only).
    let read = env.write(&format!("domanda_{person}.csv"), csv_of(&rows));
    let refused = env.write(&format!("{}-2024.csv", other.to_lowercase()), b"");
    let out = env
        .cli()
        .env("MIRATO_LOG", "debug")
        .args(["ingest"])
        .arg(&read)
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("domanda_[masked].csv"), "{shown}");
    assert!(shown.contains("[masked]-2024.csv"), "{shown}");
    // The quarantine's source file, decoded, and the raw bytes of every file under the data
    // folder (ledger, lock, Parquet footers), and every name.
    let q = env.quarantine();
    assert_eq!(
        column(&q, "source_file")[0].as_deref(),
        Some(read.to_str().unwrap().replace(&person, "[masked]").as_str())
    );
    let mut text = all_text(&q) + &all_text(&env.events()) + &shown;
    for (path, _, dir) in walk(&env.data) {
        text.push_str(&path.to_string_lossy());
        if !dir {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    let text = text.to_uppercase();
    for secret in [&person, &other] {
        assert!(!text.contains(secret.as_str()), "{secret} found");
    }
    let ledger = std::fs::read_dir(env.layout().ledger())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert_eq!(ledger.matches("[masked]").count(), 2, "{ledger}");
}

#[test]
fn accounting_holds_on_generated_data() {
    let env = Env::new();
    let out_dir = env.dir.path().join("gen");
    stdout_of(
        env.cli()
            .args([
                "generate",
                "--persons",
                "400",
                "--seed",
                "7",
                "--error-rate",
                "0.01",
                "--duplicate-rate",
                "0.01",
                "--out",
            ])
            .arg(&out_dir),
    );
    let summary = mirato::generate::generate(&mirato::generate::GenerateOptions {
        persons: 400,
        seed: 7,
        out: env.dir.path().join("gen2"),
        format: mirato::generate::OutputFormat::Jsonl,
        gzip: true,
        start: chrono::NaiveDate::from_ymd_opt(2021, 1, 1).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        error_rate: 0.01,
        duplicate_rate: 0.01,
        progress: false,
    })
    .unwrap();
    // CSV run through the CLI.
    let report = stdout_of(env.cli().args(["ingest", "--format", "json"]).arg(&out_dir));
    let (mut read, mut stored, mut dups, mut rej) = (0, 0, 0, 0);
    for line in report.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let n = |k: &str| v[k].as_u64().unwrap();
        assert_eq!(
            n("read"),
            n("stored") + n("duplicates") + n("rejected"),
            "{v}"
        );
        read += n("read");
        stored += n("stored");
        dups += n("duplicates");
        rej += n("rejected");
    }
    // The generator's counts are the same for CSV and JSONL: same seed, same events.
    assert_eq!(read, summary.events);
    assert_eq!(rej, summary.invalid_rows);
    assert_eq!(dups, summary.duplicate_rows);
    assert_eq!(stored as usize, env.event_count());
    // The same events as gzipped JSON Lines are all duplicates, but the bad rows stay bad.
    let again = env.ingest(&[env.dir.path().join("gen2")]);
    let total: (u64, u64, u64, u64) = again.iter().map(counts).fold((0, 0, 0, 0), |a, c| {
        (a.0 + c.0, a.1 + c.1, a.2 + c.2, a.3 + c.3)
    });
    assert_eq!(total, (read, 0, read - rej, rej));
    // Every event type of the contract is there.
    let types: std::collections::BTreeSet<String> = column(&env.events(), "event_type")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        types.len(),
        mirato::model::EventType::ALL.len(),
        "{types:?}"
    );
}

/// The pages' filters read the latest date and the CPIs from the batches' ledger summaries:
/// they must say exactly what a scan of the events says, at every instant, and a ledger
/// written before the summaries existed must still work (by the scan).
#[test]
fn batch_summaries_agree_with_a_scan_of_the_events() {
    let env = Env::new();
    let generated = env.dir.path().join("gen");
    mirato::generate::generate(&mirato::generate::GenerateOptions {
        persons: 300,
        seed: 11,
        out: generated.clone(),
        format: mirato::generate::OutputFormat::Csv,
        gzip: false,
        start: chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        error_rate: 0.02,
        duplicate_rate: 0.02,
        progress: false,
    })
    .unwrap();
    let files = mirato::ingest::collect_inputs(&[generated]).unwrap();
    assert!(files.len() >= 2, "several batches: {files:?}");
    let half = files.len() / 2;
    env.ingest(&files[..half]);
    // The instant between the two halves: a page pinned there sees the first half only.
    let between = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    env.ingest(&files[half..]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = mirato::query::Engine::open(&env.data).unwrap();
    let ledger = env.layout().read_ledger().unwrap();
    assert!(
        ledger
            .iter()
            .filter(|e| e.stored > 0)
            .all(|e| e.summary.as_ref().is_some_and(|s| !s.cpis.is_empty())),
        "every batch with events records a summary"
    );
    let mut seen = Vec::new();
    for at in [None, Some(between)] {
        let quick = rt.block_on(engine.facts_at(at)).unwrap();
        let slow = rt.block_on(engine.facts_scanned(at)).unwrap();
        assert_eq!(quick.latest, slow.latest, "at {at:?}");
        assert_eq!(quick.cpis, slow.cpis, "at {at:?}");
        assert_eq!(quick.data_version, slow.data_version);
        assert!(quick.latest.is_some() && !quick.cpis.is_empty());
        seen.push(quick);
    }
    assert!(seen[1].latest <= seen[0].latest && seen[1].cpis.len() <= seen[0].cpis.len());

    // A KPI without a period ends on the latest event date, summary or not.
    let to_of = |engine: &mirato::query::Engine| {
        let def = mirato::query::catalog::find("hires").unwrap();
        let r = rt
            .block_on(engine.run(
                def,
                &mirato::query::Params::parse(def, &raw_params(&[])).unwrap(),
            ))
            .unwrap();
        r.params.to.clone()
    };
    let expected = seen[0].latest.unwrap().to_string();
    assert_eq!(to_of(&engine), expected);

    // An old ledger: the summaries removed from every entry. Same facts, by the scan.
    for entry in std::fs::read_dir(env.layout().ledger()).unwrap() {
        let path = entry.unwrap().path();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("summary");
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }
    let old = mirato::query::Engine::open(&env.data).unwrap();
    assert!(
        old.layout()
            .read_ledger()
            .unwrap()
            .iter()
            .all(|e| e.summary.is_none())
    );
    let facts = rt.block_on(old.facts_at(None)).unwrap();
    assert_eq!((facts.latest, &facts.cpis), (seen[0].latest, &seen[0].cpis));
    assert_eq!(to_of(&old), expected);
}

/// `demo --no-serve` on the shipped sample: everything stored, the month partitions merged (the
/// sample's 100 files put a few events in every month each), and the headline figures shown. A
/// second run stores nothing new and leaves the figures as they were.
#[test]
fn demo_ingests_compacts_and_shows_the_figures() {
    let env = Env::new();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let run = || {
        stdout_of(
            env.cli()
                .args(["demo", "--no-serve", "--sample-dir"])
                .arg(&sample),
        )
    };
    let first = run();
    assert!(first.contains("compacted: "), "{first}");
    for id in [
        "registered_stock",
        "acceptance_rate",
        "hires",
        "placement_rate_180",
    ] {
        assert!(first.contains(id), "{id} missing:\n{first}");
    }
    // One file per month partition after the merge.
    let mut months = std::collections::BTreeMap::new();
    for f in mirato::store::parquet_files(&env.data.join("events")).unwrap() {
        *months.entry(f.parent().unwrap().to_path_buf()).or_insert(0) += 1;
    }
    assert!(!months.is_empty());
    assert!(months.values().all(|&n| n == 1), "{months:?}");
    let stored = env.event_count();
    let second = run();
    assert_eq!(env.event_count(), stored, "a second run stores nothing new");
    // The figures, without the lines naming the instant (the second run's empty batches move
    // the store's `as_of` on, not its data).
    let figures = |s: &str| {
        s[s.find("registered_stock").unwrap()..]
            .lines()
            .filter(|l| !l.contains("as of"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(figures(&first), figures(&second));
}
