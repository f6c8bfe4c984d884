//! Privacy of what the ingest writes: no raw codice fiscale in the store, quarantine, ledger or
//! logs, not even from a file name; owner-only files whatever the umask.

use super::*;

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
