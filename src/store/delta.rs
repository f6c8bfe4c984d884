//! The event files as a Delta Lake table whose root is `generations/`: the commit point that
//! every reader shares, mirato and outside readers (delta-rs, polars, pandas, Spark, DuckDB).
//!
//! Why a transaction log: a batch's files are renamed into place one by one, and a glob over
//! `events/**` counts them as soon as they land, committed or not. A Delta reader sees only
//! the files the log lists, and a log version appears with one atomic step: a hard link of a
//! finished temp file to `_delta_log/<version>.json`, which fails rather than overwrite.
//!
//! What mirato writes (protocol 1/2, the oldest every reader knows): one commit per ingested
//! file (`add` actions; the ledger entry in `commitInfo`), and one per compaction (`remove` of
//! the old generation's files, `add` of the new one's, `dataChange: false`; the generation's
//! name in `commitInfo`). The ledger under `ledger/` stays the index that mirato reads; a crash
//! between a commit and its ledger entry or its generation switch is rolled forward on open
//! from the last commit ([`Store::open`](super::Store::open)).
//!
//! Written by hand rather than with the `deltalake` crate: it would rebuild the whole DataFusion
//! stack with other features and add two HTTP clients to every build; what is needed here is a
//! few JSON lines per commit, checked by the real readers in the tests.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Schema};
use serde_json::{Value, json};

use super::disk::{create_private_dir, create_private_file, sync_dir};
use super::{Layout, LedgerEntry, StoreError, io};

/// The log folder inside the table root.
const LOG: &str = "_delta_log";

/// What mirato records in a commit's `commitInfo`, to roll a crash forward.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorded {
    /// An ingested file: its ledger entry.
    Batch(Box<LedgerEntry>),
    /// A compaction: the generation it made current.
    Generation(String),
    /// The table made from a store that had none: the generation it lists.
    Created(String),
}

/// A data file for an `add` action: its path relative to the table root, its size, and the
/// XXH3-64 of its bytes (in the action's `tags`, which every Delta reader ignores), by which
/// `mirato check` tells bit rot or a hand edit from the file that was committed.
pub struct DataFile {
    pub path: String,
    pub size: u64,
    pub xxh3: Option<u64>,
}

/// The tag of an `add` action that holds its file's XXH3-64, in hex.
const HASH_TAG: &str = "mirato.xxh3";

/// The XXH3-64 of a file's bytes, read in 1 MiB blocks.
pub fn file_hash(path: &Path) -> Result<u64, StoreError> {
    use std::io::Read;
    let mut f = fs::File::open(path).map_err(io("cannot open", path))?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io("cannot read", path))?;
        if n == 0 {
            return Ok(h.digest());
        }
        h.update(&buf[..n]);
    }
}

impl Layout {
    /// The Delta table's root: `generations/` (see [`delta`](self)).
    pub fn table(&self) -> PathBuf {
        self.generations()
    }
}

fn log_dir(layout: &Layout) -> PathBuf {
    layout.table().join(LOG)
}

/// The versions in the log, newest last.
pub(super) fn versions(layout: &Layout) -> Result<Vec<u64>, StoreError> {
    let dir = log_dir(layout);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("cannot list", &dir)(e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let name = ent.map_err(io("cannot list", &dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(v) = version_of(&name) {
            out.push(v);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The version a log file's name (`<20 digits>.json`) holds, if it is one.
pub(super) fn version_of(name: &str) -> Option<u64> {
    name.strip_suffix(".json")
        .filter(|s| s.len() == 20 && s.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
}

/// The newest version of the table (0 when it has none).
pub fn latest_version(layout: &Layout) -> Result<u64, StoreError> {
    Ok(versions(layout)?.last().copied().unwrap_or(0))
}

/// Whether the store has its table yet (stores made before it get one on open).
pub fn exists(layout: &Layout) -> Result<bool, StoreError> {
    Ok(!versions(layout)?.is_empty())
}

/// What mirato recorded in the newest commit, if the table has one.
pub fn last_recorded(layout: &Layout) -> Result<Option<Recorded>, StoreError> {
    let Some(v) = versions(layout)?.last().copied() else {
        return Ok(None);
    };
    let path = layout.root.join(version_path(v));
    let text = fs::read_to_string(&path).map_err(io("cannot read", &path))?;
    Ok(parse_version(&text, &path)?.recorded)
}

/// The copy of batch `batch_id`'s ledger entry that its table version keeps, if any: what
/// stands in for an unreadable entry (see `Layout::read_ledger`).
pub fn logged_entry(layout: &Layout, batch_id: &str) -> Result<Option<LedgerEntry>, StoreError> {
    for v in versions(layout)?.into_iter().rev() {
        let path = layout.root.join(version_path(v));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        // Cheap test first: most versions are of other batches.
        if !text.contains(batch_id) {
            continue;
        }
        if let Ok(Version {
            recorded: Some(Recorded::Batch(e)),
            ..
        }) = parse_version(&text, &path)
            && e.batch_id == batch_id
        {
            return Ok(Some(*e));
        }
    }
    Ok(None)
}

/// Whether the newest commit made generation `name` current: a compaction that failed after
/// its commit must keep the generation it committed.
pub fn lists_generation(layout: &Layout, name: &str) -> Result<bool, StoreError> {
    Ok(matches!(last_recorded(layout)?, Some(Recorded::Generation(g)) if g == name))
}

/// Creates the table (version 0) listing `files`, from `layout`'s current generation.
pub fn create(layout: &Layout, generation: &str, files: &[DataFile]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut lines = vec![
        commit_info(
            now,
            "CREATE TABLE",
            &Recorded::Created(generation.to_owned()),
        ),
        json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
        json!({"metaData": {
            "id": uuid_v4(),
            "name": "events",
            "description": "mirato: pseudonymised events of the collocamento mirato",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string(&super::events_schema()),
            "partitionColumns": [],
            "configuration": {},
            "createdTime": now,
        }}),
    ];
    lines.extend(files.iter().map(|f| add(f, now, true)));
    write_version(layout, 0, &lines)
}

/// Commits an ingested file: `add` actions for its event files, its ledger entry beside them.
pub fn commit_batch(
    layout: &Layout,
    entry: &LedgerEntry,
    files: &[DataFile],
) -> Result<(), StoreError> {
    let now = now_ms();
    let mut lines = vec![commit_info(
        now,
        "WRITE",
        &Recorded::Batch(Box::new(entry.clone())),
    )];
    lines.extend(files.iter().map(|f| add(f, now, true)));
    append(layout, &lines)
}

/// Commits a compaction: the old generation's files removed, the new one's added.
pub fn commit_generation(
    layout: &Layout,
    generation: &str,
    removed: &[String],
    added: &[DataFile],
) -> Result<(), StoreError> {
    let now = now_ms();
    let mut lines = vec![commit_info(
        now,
        "OPTIMIZE",
        &Recorded::Generation(generation.to_owned()),
    )];
    lines.extend(
        removed
            .iter()
            .map(|p| json!({"remove": {"path": p, "deletionTimestamp": now, "dataChange": false}})),
    );
    lines.extend(added.iter().map(|f| add(f, now, false)));
    append(layout, &lines)
}

/// Brings the table's schema up to the events schema of this build: a table created before
/// columns were added (version 1 of the contract, before the employers' side) gets a commit
/// with the wider schema, as Delta Lake's schema evolution does. Its older files read the new
/// columns as null, in mirato and in every Delta reader. Returns whether it committed.
pub fn evolve(layout: &Layout) -> Result<bool, StoreError> {
    let want = super::events_schema();
    // The newest `metaData` action: in version 0, or in the last evolution.
    for v in versions(layout)?.into_iter().rev() {
        let path = layout.root.join(version_path(v));
        let text = fs::read_to_string(&path).map_err(io("cannot read", &path))?;
        if !text.contains("\"metaData\"") {
            continue;
        }
        for line in text.lines() {
            let action: Value =
                serde_json::from_str(line).map_err(|source| StoreError::Ledger {
                    path: path.clone(),
                    source,
                })?;
            let Some(meta) = action.get("metaData") else {
                continue;
            };
            let have: Value = meta["schemaString"]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            let known = have["fields"].as_array().map_or(0, Vec::len);
            if known >= want.fields().len() {
                return Ok(false);
            }
            let mut meta = meta.clone();
            meta["schemaString"] = Value::String(schema_string(&want));
            let now = now_ms();
            append(
                layout,
                &[
                    json!({"commitInfo": {
                        "timestamp": now,
                        "operation": "ADD COLUMNS",
                        "operationParameters": {},
                        "engineInfo": concat!("mirato/", env!("CARGO_PKG_VERSION")),
                    }}),
                    json!({ "metaData": meta }),
                ],
            )?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn append(layout: &Layout, lines: &[Value]) -> Result<(), StoreError> {
    let next = versions(layout)?.last().map_or(0, |v| v + 1);
    write_version(layout, next, lines)
}

/// Writes a version. In a store on S3 the bucket's copy of the version is the commit point
/// (see [`remote`](super::remote)): it is put first, and the working copy follows.
fn write_version(layout: &Layout, version: u64, lines: &[Value]) -> Result<(), StoreError> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let Some(remote) = super::remote::mounted(&layout.root) {
        remote.commit(layout, version, &text)?;
    }
    link_version(layout, version, &text)
}

/// Writes a version's text locally: a temp file, synced, then hard-linked to its final name,
/// which fails if the version exists (so a commit never replaces another), then the temp name
/// removed.
pub(super) fn link_version(layout: &Layout, version: u64, text: &str) -> Result<(), StoreError> {
    let dir = log_dir(layout);
    create_private_dir(&dir).map_err(io("cannot create", &dir))?;
    let tmp = dir.join(format!(".{version:020}.json.tmp"));
    let dst = dir.join(format!("{version:020}.json"));
    let mut f = create_private_file(&tmp).map_err(io("cannot create", &tmp))?;
    f.write_all(text.as_bytes())
        .map_err(io("cannot write", &tmp))?;
    f.sync_all().map_err(io("cannot sync", &tmp))?;
    drop(f);
    fs::hard_link(&tmp, &dst).map_err(io("cannot commit", &dst))?;
    let _ = fs::remove_file(&tmp);
    sync_dir(&dir);
    Ok(())
}

/// The path of version `version` relative to the data folder, as the bucket names it too.
pub(super) fn version_path(version: u64) -> String {
    format!("generations/{LOG}/{version:020}.json")
}

/// What a version says: what mirato recorded, the files it adds (table path, size) and the
/// ones it removes.
#[derive(Debug, Default)]
pub(super) struct Version {
    pub recorded: Option<Recorded>,
    pub adds: Vec<(String, u64)>,
    /// The XXH3-64 of the added files that have one (written since file hashes exist).
    pub hashes: std::collections::HashMap<String, u64>,
    /// Removed files with the time of their removal (ms since the epoch).
    pub removes: Vec<(String, i64)>,
}

/// Reads a version's text (`origin` names it in errors).
pub(super) fn parse_version(text: &str, origin: &Path) -> Result<Version, StoreError> {
    let bad = |source| StoreError::Ledger {
        path: origin.to_path_buf(),
        source,
    };
    let mut out = Version::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let action: Value = serde_json::from_str(line).map_err(bad)?;
        if let Some(m) = action.pointer("/commitInfo/mirato") {
            out.recorded = Some(serde_json::from_value(m.clone()).map_err(bad)?);
        } else if let Some(a) = action.get("add") {
            let path = a["path"].as_str().unwrap_or_default().to_owned();
            if let Some(h) = a["tags"][HASH_TAG]
                .as_str()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                out.hashes.insert(path.clone(), h);
            }
            out.adds.push((path, a["size"].as_u64().unwrap_or(0)));
        } else if let Some(r) = action.get("remove") {
            out.removes.push((
                r["path"].as_str().unwrap_or_default().to_owned(),
                r["deletionTimestamp"].as_i64().unwrap_or(0),
            ));
        }
    }
    Ok(out)
}

/// Removes temp files of commits that were interrupted (they never became a version).
pub fn clear_interrupted(layout: &Layout) -> Result<(), StoreError> {
    let dir = log_dir(layout);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for ent in rd {
        let path = ent.map_err(io("cannot list", &dir))?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path).map_err(io("cannot remove", &path))?;
        }
    }
    Ok(())
}

/// The table path of a file under the current generation `generation`, from its path relative
/// to `events/` (`year=…/month=…/name.parquet`).
pub fn table_path(generation: &str, under_events: &Path) -> String {
    let mut p = String::from(generation);
    for c in under_events.components() {
        p.push('/');
        p.push_str(&c.as_os_str().to_string_lossy());
    }
    p
}

/// The data files of `files` (paths under `events_dir`, the current generation `generation`):
/// their table paths and sizes.
pub fn data_files(
    events_dir: &Path,
    generation: &str,
    files: &[PathBuf],
) -> Result<Vec<DataFile>, StoreError> {
    files
        .iter()
        .map(|f| {
            let size = fs::metadata(f).map_err(io("cannot stat", f))?.len();
            let rel = f.strip_prefix(events_dir).unwrap_or(f);
            Ok(DataFile {
                path: table_path(generation, rel),
                size,
                xxh3: Some(file_hash(f)?),
            })
        })
        .collect()
}

fn add(f: &DataFile, now: i64, data_change: bool) -> Value {
    let mut a = json!({"add": {
        "path": f.path,
        "partitionValues": {},
        "size": f.size,
        "modificationTime": now,
        "dataChange": data_change,
    }});
    if let Some(h) = f.xxh3 {
        a["add"]["tags"] = json!({ HASH_TAG: format!("{h:016x}") });
    }
    a
}

fn commit_info(now: i64, operation: &str, recorded: &Recorded) -> Value {
    json!({"commitInfo": {
        "timestamp": now,
        "operation": operation,
        "operationParameters": {},
        "engineInfo": concat!("mirato/", env!("CARGO_PKG_VERSION")),
        "mirato": recorded,
    }})
}

/// The table schema in Delta's JSON form. Delta has no unsigned integers: the record keys
/// (`UInt32` in the files) are declared `long`, which every reader widens them to.
fn schema_string(schema: &Schema) -> String {
    let fields: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Utf8 => "string",
                DataType::Int32 => "integer",
                DataType::Int64 | DataType::UInt32 => "long",
                DataType::Float64 => "double",
                DataType::Boolean => "boolean",
                DataType::Date32 => "date",
                DataType::Timestamp(_, Some(_)) => "timestamp",
                other => unreachable!("no Delta type for {other} in the events schema"),
            };
            json!({"name": f.name(), "type": t, "nullable": f.is_nullable(), "metadata": {}})
        })
        .collect();
    json!({"type": "struct", "fields": fields}).to_string()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A random table id in the UUID form Delta expects.
fn uuid_v4() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        (b[8] & 0x3) | 0x8,
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_written_once_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert!(!exists(&layout).unwrap());
        assert!(last_recorded(&layout).unwrap().is_none());
        let f = |p: &str| DataFile {
            path: p.into(),
            size: 10,
            xxh3: Some(7),
        };
        create(&layout, "g0", &[f("g0/a.parquet")]).unwrap();
        commit_generation(
            &layout,
            "g1",
            &["g0/a.parquet".into()],
            &[f("g1/a.parquet")],
        )
        .unwrap();
        assert_eq!(versions(&layout).unwrap(), vec![0, 1]);
        assert!(matches!(
            last_recorded(&layout).unwrap(),
            Some(Recorded::Generation(g)) if g == "g1"
        ));
        // A version is never replaced.
        assert!(write_version(&layout, 1, &[json!({})]).is_err());
        clear_interrupted(&layout).unwrap();
        let left: Vec<_> = fs::read_dir(log_dir(&layout)).unwrap().collect();
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn the_schema_has_a_delta_type_for_every_column() {
        let s: Value =
            serde_json::from_str(&schema_string(&super::super::events_schema())).unwrap();
        let fields = s["fields"].as_array().unwrap();
        assert_eq!(fields.len(), super::super::events_schema().fields().len());
        let person_key = fields
            .iter()
            .find(|f| f["name"] == crate::recordkey::PERSON_KEY)
            .unwrap();
        assert_eq!(person_key["type"], "long");
        let uuid = uuid_v4();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }

    #[test]
    fn a_table_of_version_1_takes_the_new_columns_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        create(&layout, "g0", &[]).unwrap();
        // A table created before the employers' side: its schema has the first columns only.
        let path = layout.root.join(version_path(0));
        let text = fs::read_to_string(&path).unwrap();
        let all = super::super::events_schema();
        let v1 = Schema::new(all.fields()[..super::super::V1_COLUMNS].to_vec());
        let old: String = text
            .lines()
            .map(|l| {
                let mut a: Value = serde_json::from_str(l).unwrap();
                if let Some(m) = a.get_mut("metaData") {
                    m["schemaString"] = Value::String(schema_string(&v1));
                }
                format!("{a}\n")
            })
            .collect();
        fs::write(&path, old).unwrap();

        assert!(evolve(&layout).unwrap());
        assert_eq!(versions(&layout).unwrap(), vec![0, 1]);
        let v1_text = fs::read_to_string(layout.root.join(version_path(1))).unwrap();
        let meta: Value = v1_text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find_map(|a| a.get("metaData").cloned())
            .unwrap();
        let fields: Value = serde_json::from_str(meta["schemaString"].as_str().unwrap()).unwrap();
        assert_eq!(
            fields["fields"].as_array().unwrap().len(),
            all.fields().len()
        );
        // The same table, the same id; nothing recorded for a roll-forward.
        let first: Value =
            serde_json::from_str(text.lines().find(|l| l.contains("metaData")).unwrap()).unwrap();
        assert_eq!(meta["id"], first["metaData"]["id"]);
        assert!(last_recorded(&layout).unwrap().is_none());
        // Once evolved, never again.
        assert!(!evolve(&layout).unwrap());
        assert_eq!(versions(&layout).unwrap(), vec![0, 1]);
    }

    #[test]
    fn table_paths_join_the_generation_and_the_partition() {
        assert_eq!(
            table_path("g1", Path::new("year=2025/month=03/b-p0000.parquet")),
            "g1/year=2025/month=03/b-p0000.parquet"
        );
    }
}
