//! The shared views as files in `views/`: what a file carries (the record keys of its units,
//! the secret they come from), that a copy of another secret or a damaged one is never used,
//! and that views on disk and views in memory give the same figures.

use crate::common;
use common::*;

use datafusion::arrow::array::{Array, RecordBatch, StringViewArray, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use mirato::query::{Engine, RawParams};
use mirato::recordkey;
use std::path::{Path, PathBuf};

const FROM: &str = "2024-01-01";
const TO: &str = "2025-12-31";

/// The stored files of the view `name` (any `as_of`, any secret).
fn copies(data: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in std::fs::read_dir(data.join("views"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let file = f.file_name().to_string_lossy().into_owned();
            if file.starts_with(&format!("{name}-")) && file.ends_with(".parquet") {
                found.push(f.path());
            }
        }
    }
    found.sort();
    found
}

fn read(path: &Path) -> (Vec<RecordBatch>, Option<String>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .expect("a valid Parquet file");
    let fingerprint = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| {
            kv.iter()
                .find(|e| e.key == recordkey::FINGERPRINT_METADATA)
                .and_then(|e| e.value.clone())
        });
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, fingerprint)
}

/// A copy with the schema of `path`, no rows and `fingerprint` in its footer, written over
/// `target`: a copy that, if used, makes every stock 0.
fn write_empty(path: &Path, target: &Path, fingerprint: &str) {
    let schema = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .schema()
        .clone();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            recordkey::FINGERPRINT_METADATA.to_owned(),
            fingerprint.to_owned(),
        )]))
        .build();
    let w =
        ArrowWriter::try_new(std::fs::File::create(target).unwrap(), schema, Some(props)).unwrap();
    w.close().unwrap();
}

/// Persons 1-3 accepted in 2025 and never cancelled: 3 registered at 31/12/2025.
fn three_registered() -> Env {
    let env = Env::new();
    let rows: Vec<_> = (1..=3u32)
        .map(|who| {
            ev(
                "application_accepted",
                &format!("a{who}"),
                "2025-02-01",
                Some(who),
                &[],
            )
        })
        .collect();
    env.load("stock.csv", &rows);
    env
}

async fn stock(data: &Path) -> i64 {
    let raw = RawParams {
        from: Some("2025-01-01".into()),
        to: Some("2025-12-31".into()),
        ..RawParams::default()
    };
    let engine = Engine::open(data).unwrap();
    let r = engine.run_raw("registered_stock", &raw).await.unwrap();
    r.rows[0]["value"].as_i64().unwrap()
}

/// Each unit's key in a view's file is its record key under the data folder's secret (the
/// engine's `cell_key` function computes it), null for no unit; the footer names the secret,
/// and the file is the owner's only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_view_carries_the_record_keys_of_its_units() {
    let env = generated_store(120, 3, FROM, TO);
    let seed = recordkey::load_or_create(&env.data).unwrap();
    let engine = Engine::open(&env.data).unwrap();
    // Spells (persons) and the pairs of vacancies and candidates (both units).
    for id in ["registered_stock", "preselection_rate"] {
        engine
            .run_raw(id, &raw_params(&[("from", FROM), ("to", TO)]))
            .await
            .unwrap();
    }
    let mut checked = 0;
    for (view, units) in [
        ("spells", &[recordkey::KEYED_UNITS[0]][..]),
        ("pair_steps", &recordkey::KEYED_UNITS[..]),
    ] {
        let files = copies(&env.data, view);
        assert_eq!(files.len(), 1, "{view}: {files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with(&format!("-{}.parquet", recordkey::fingerprint(seed))),
            "{name}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{name} is readable by others: {mode:o}");
        }
        let (batches, fingerprint) = read(&files[0]);
        assert_eq!(fingerprint, Some(recordkey::fingerprint(seed)));
        for (unit, key) in units {
            for b in &batches {
                let unit = cast(b.column_by_name(unit).unwrap(), &DataType::Utf8View).unwrap();
                let unit = unit.as_any().downcast_ref::<StringViewArray>().unwrap();
                let keys = b.column_by_name(key).expect("a key column");
                let keys = keys.as_any().downcast_ref::<UInt32Array>().expect("UInt32");
                for i in 0..b.num_rows() {
                    if unit.is_null(i) {
                        assert!(keys.is_null(i), "{view}.{key}: a key without a unit");
                    } else {
                        assert_eq!(
                            keys.value(i) as i64,
                            recordkey::record_key(seed, unit.value(i).as_bytes()),
                            "{view}.{key}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 100, "{checked} keys checked");
}

/// A copy whose footer names another secret is never used, even under this secret's name; a
/// data folder with a new secret builds views of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_another_secret_is_not_used() {
    let env = three_registered();
    assert_eq!(stock(&env.data).await, 3);
    let ours = copies(&env.data, "spells");
    assert_eq!(ours.len(), 1);
    let foreign = recordkey::fingerprint(0x0123_4567_89ab_cdef);
    let scratch = env.data.join("scratch.parquet");
    write_empty(&ours[0], &scratch, &foreign);
    std::fs::rename(&scratch, &ours[0]).unwrap();
    assert_eq!(
        stock(&env.data).await,
        3,
        "a copy of another secret was read"
    );
    let (_, fingerprint) = read(&ours[0]);
    let seed = recordkey::load_or_create(&env.data).unwrap();
    assert_eq!(
        fingerprint,
        Some(recordkey::fingerprint(seed)),
        "not rebuilt"
    );

    // Another secret: the old secret's copy is not even opened (doctored to be empty and to name
    // the new secret, it would give 0), and the new secret's copy carries the new keys.
    write_empty(&ours[0], &ours[0], &foreign);
    std::fs::write(env.data.join(recordkey::FILE_NAME), "0123456789abcdef\n").unwrap();
    assert_eq!(stock(&env.data).await, 3);
    let now = copies(&env.data, "spells");
    assert_eq!(now.len(), 2, "{now:?}");
    let theirs = now.iter().find(|p| **p != ours[0]).unwrap();
    let (_, fingerprint) = read(theirs);
    assert_eq!(
        fingerprint,
        Some(recordkey::fingerprint(0x0123_4567_89ab_cdef))
    );
}

/// A damaged copy (cut short, a page changed, or gone while the engine holds its table) is
/// rebuilt with a warning, and the answer is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_is_rebuilt() {
    let env = three_registered();
    assert_eq!(stock(&env.data).await, 3);
    let copy = copies(&env.data, "spells").remove(0);
    let bytes = std::fs::read(&copy).unwrap();
    std::fs::write(&copy, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(stock(&env.data).await, 3);
    let (batches, _) = read(&copy);
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    // One byte of the rows changed: the footer still reads, the checksum does not match.
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[8] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    assert_eq!(stock(&env.data).await, 3);
    assert_eq!(
        std::fs::read(&copy).unwrap()[8],
        bytes[8] ^ 0xff,
        "not rebuilt"
    );

    // Removed under an engine that has read it: the next query builds it again.
    let engine = Engine::open(&env.data).unwrap();
    let raw = raw_params(&[("from", "2025-01-01"), ("to", "2025-12-31")]);
    let first = engine.run_raw("registered_stock", &raw).await.unwrap();
    std::fs::remove_file(&copy).unwrap();
    let again = engine.run_raw("registered_stock", &raw).await.unwrap();
    assert_eq!(again.rows, first.rows);
    assert!(copy.exists());
}

/// Views read from their files and views held in memory give the same figures and the same
/// cell keys, for every KPI of the catalogue, with and without a breakdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_on_disk_and_in_memory_give_the_same_figures() {
    let env = generated_store(300, 5, FROM, TO);
    let disk = Engine::open(&env.data).unwrap();
    let memory = Engine::open(&env.data).unwrap();
    memory.views_in_memory(true);
    let mut compared = 0;
    for (def, p, by) in keyed_runs(FROM, TO) {
        let on_disk = disk.run(def, &p).await.unwrap();
        let in_memory = memory.run(def, &p).await.unwrap();
        assert_eq!(on_disk.rows, in_memory.rows, "{} by {by:?}", def.id);
        assert_eq!(on_disk.keys, in_memory.keys, "{} by {by:?}", def.id);
        assert_eq!(on_disk.life, in_memory.life, "{} by {by:?}", def.id);
        compared += 1;
    }
    assert!(compared > 60, "{compared} results compared");
    assert!(!copies(&env.data, "spells").is_empty());
}

/// A fresh process reads every view another one stored, rebuilding none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_view_is_read_back() {
    let env = generated_store(120, 4, FROM, TO);
    Engine::open(&env.data).unwrap().ready().await.unwrap();
    let files = |data: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut all = Vec::new();
        for d in std::fs::read_dir(data.join("views")).unwrap().flatten() {
            for f in std::fs::read_dir(d.path()).unwrap().flatten() {
                all.push((f.path(), f.metadata().unwrap().modified().unwrap()));
            }
        }
        all.sort();
        all
    };
    let before = files(&env.data);
    assert_eq!(before.len(), mirato_views(), "{before:?}");
    Engine::open(&env.data).unwrap().ready().await.unwrap();
    assert_eq!(files(&env.data), before);
}

/// How many shared views `queries/_views.sql` defines.
fn mirato_views() -> usize {
    let sql = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/_views.sql"))
        .unwrap();
    sql.matches("CREATE VIEW").count()
}

/// After a compaction an engine plans its views over the new generation of event files: a
/// view removed then is built again from the events, not from the folder compaction retired.
/// And the retired folder stays while a session of the engine still reads it (it is pinned),
/// whatever the grace, then goes at the next clean-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_gone_after_a_compaction_is_built_from_the_new_generation() {
    let env = generated_store(60, 6, FROM, TO);
    // A second file in a month's partition, for compaction to merge.
    env.load("late.csv", &[hire("late", "2025-03-03", 1, &[])]);
    let engine = Engine::open(&env.data).unwrap();
    let raw = raw_params(&[("from", FROM), ("to", TO)]);
    let first = engine.run_raw("registered_stock", &raw).await.unwrap();
    let retired = env.data.join("events").canonicalize().unwrap();
    let store = mirato::store::Store::open(&env.data).unwrap();
    let report = mirato::compact::compact(&store, &Default::default()).unwrap();
    assert!(report.generation.is_some(), "{report:?}");
    drop(store);
    // The engine's session of the last query still reads the retired generation: kept, even
    // with no grace at all.
    let clean_up =
        || mirato::store::remove_old_generations(&env.layout(), std::time::Duration::ZERO).unwrap();
    assert_eq!(clean_up(), 0);
    assert!(retired.is_dir());
    for f in copies(&env.data, "spells") {
        std::fs::remove_file(f).unwrap();
    }
    let again = engine.run_raw("registered_stock", &raw).await.unwrap();
    assert_eq!(again.rows, first.rows);
    assert_eq!(copies(&env.data, "spells").len(), 1);
    // The engine now reads the new generation only: the retired one goes.
    assert_eq!(clean_up(), 1);
    assert!(!retired.exists());
    let third = engine.run_raw("registered_stock", &raw).await.unwrap();
    assert_eq!(third.rows, first.rows);
}
