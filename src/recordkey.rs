//! The record keys of cell-key perturbation (see `auth::disclosure`), below the store: every
//! counted record gets a fixed pseudo-random 32-bit key, a keyed hash of its unit (the person's
//! pseudonym, or the vacancy id for the employers' KPIs) with a secret kept in the data folder.
//!
//! The store writes each event's keys beside it (`person_record_key`, `vacancy_record_key`), so
//! that the server's keyed figures read four bytes a row instead of reading and hashing the
//! pseudonym; the query engine's `cell_key()` function computes the same keys for rows that
//! carry none. Each file records which secret its keys come from ([`FINGERPRINT_METADATA`]):
//! keys of another secret are never used.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, UInt32Array};

/// The stored key of an event's person, and of its vacancy.
pub const PERSON_KEY: &str = "person_record_key";
pub const VACANCY_KEY: &str = "vacancy_record_key";

/// The Parquet footer entry naming the secret a file's keys come from.
pub const FINGERPRINT_METADATA: &str = "mirato.record_key";

/// The file (in the data folder) that holds the secret of the record keys.
pub const FILE_NAME: &str = "cell_key.secret";

/// The secret of the record keys, created on first use. Created with `O_EXCL` so that two
/// processes starting together agree on one secret (the loser reads the winner's).
pub fn load_or_create(data_dir: &Path) -> std::io::Result<u64> {
    let path = data_dir.join(FILE_NAME);
    for _ in 0..50 {
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() == 16 => {
                return u64::from_str_radix(s.trim(), 16).map_err(|_| malformed(&path));
            }
            Ok(s) if !s.is_empty() => return Err(malformed(&path)),
            // Empty: another process is writing it right now.
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed: u64 = rand::random();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(&path) {
                    Ok(mut f) => {
                        f.write_all(format!("{seed:016x}\n").as_bytes())?;
                        f.sync_all()?;
                        return Ok(seed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(malformed(&path))
}

fn malformed(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{} holds no valid secret (16 hex digits); delete it to make a new one",
            PathBuf::from(path).display()
        ),
    )
}

/// One record's key, in 0..2³².
pub fn record_key(seed: u64, unit: &[u8]) -> i64 {
    (xxhash_rust::xxh3::xxh3_64_with_seed(unit, seed) & 0xFFFF_FFFF) as i64
}

/// A name for the secret that does not reveal it: what a file's footer records.
pub fn fingerprint(seed: u64) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64_with_seed(b"mirato record key fingerprint", seed)
    )
}

/// The keys of a column of units (null for a null unit), as stored.
pub fn key_column(seed: u64, units: &StringArray) -> ArrayRef {
    let keys: UInt32Array = units
        .iter()
        .map(|u| u.map(|u| record_key(seed, u.as_bytes()) as u32))
        .collect();
    Arc::new(keys)
}

/// The units that have a stored key, and the key's column: the event files carry both keys,
/// and a shared view gets the key of each unit it passes on (see `query::views`).
pub const KEYED_UNITS: [(&str, &str); 2] = [("person_id", PERSON_KEY), ("vacancy_id", VACANCY_KEY)];

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    #[test]
    fn one_secret_per_folder_and_keys_fixed_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(record_key(a, b"p1"), record_key(a, b"p1"));
        assert_ne!(record_key(a, b"p1"), record_key(a.wrapping_add(1), b"p1"));
        assert!((0..1i64 << 32).contains(&record_key(a, b"p2")));
        assert_ne!(fingerprint(a), fingerprint(a.wrapping_add(1)));
        std::fs::write(dir.path().join(FILE_NAME), "junk").unwrap();
        assert!(load_or_create(dir.path()).is_err());
    }

    #[test]
    fn stored_keys_are_the_computed_ones() {
        let units = StringArray::from(vec![Some("p1"), None, Some("p2")]);
        let keys = key_column(7, &units);
        let keys = keys.as_any().downcast_ref::<UInt32Array>().unwrap();
        assert_eq!(keys.value(0) as i64, record_key(7, b"p1"));
        assert!(keys.is_null(1));
        assert_eq!(keys.value(2) as i64, record_key(7, b"p2"));
    }
}
