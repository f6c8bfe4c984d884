//! The accounting on generated data: read = stored + duplicates + rejected for every file, batch
//! summaries that agree with a scan of the events, and the demo's ingest, compaction and figures.

use super::*;

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
