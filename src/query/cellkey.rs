//! Record keys for cell-key perturbation (see `auth::disclosure`): every counted record gets a
//! fixed pseudo-random 32-bit key, and a cell's key is the sum of its records' keys modulo 2³².
//! The same records therefore always give the same cell key, and so the same noise: asking the
//! same cell again, under another name, averages nothing away.
//!
//! A record key is a keyed hash of the record's unit (the person's pseudonym, or the vacancy id
//! for the employers' KPIs) with a secret kept in the data folder. Whoever can read that folder
//! can compute exact figures anyway; whoever only sees published figures cannot tell the noise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray, StringViewArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The SQL name of the record-key function.
pub const UDF_NAME: &str = "cell_key";

/// The file (in the data folder) that holds the secret of the record keys.
pub const FILE_NAME: &str = "cell_key.secret";

/// A cell's key: the sum of its records' keys, modulo 2³².
pub fn reduce(sum: i64) -> u32 {
    sum.rem_euclid(1 << 32) as u32
}

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

/// `cell_key(unit)`: the record key of a unit (0 for a null unit).
pub fn udf(seed: u64) -> ScalarUDF {
    let fun = Arc::new(
        move |args: &[ColumnarValue]| -> Result<ColumnarValue, DataFusionError> {
            let arg = args
                .first()
                .ok_or_else(|| DataFusionError::Plan(format!("{UDF_NAME} takes one argument")))?;
            match arg {
                ColumnarValue::Scalar(s) => {
                    let key = match s {
                        ScalarValue::Utf8(Some(v))
                        | ScalarValue::LargeUtf8(Some(v))
                        | ScalarValue::Utf8View(Some(v)) => record_key(seed, v.as_bytes()),
                        _ => 0,
                    };
                    Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(key))))
                }
                ColumnarValue::Array(a) => {
                    // The store's strings arrive as views: hash them in place, without a copy.
                    let keys: Int64Array =
                        if let Some(v) = a.as_any().downcast_ref::<StringViewArray>() {
                            v.iter()
                                .map(|s| Some(s.map_or(0, |s| record_key(seed, s.as_bytes()))))
                                .collect()
                        } else {
                            let strings: ArrayRef = cast(a, &DataType::Utf8)?;
                            let s = strings.as_any().downcast_ref::<StringArray>().ok_or_else(
                                || DataFusionError::Plan(format!("{UDF_NAME}: not text")),
                            )?;
                            s.iter()
                                .map(|s| Some(s.map_or(0, |s| record_key(seed, s.as_bytes()))))
                                .collect()
                        };
                    Ok(ColumnarValue::Array(Arc::new(keys)))
                }
            }
        },
    );
    create_udf(
        UDF_NAME,
        vec![DataType::Utf8View],
        DataType::Int64,
        Volatility::Immutable,
        fun,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_secret_per_folder_and_keys_fixed_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(record_key(a, b"p1"), record_key(a, b"p1"));
        assert_ne!(record_key(a, b"p1"), record_key(a.wrapping_add(1), b"p1"));
        assert!((0..1i64 << 32).contains(&record_key(a, b"p2")));
        assert_eq!(reduce((1 << 32) + 7), 7);
        std::fs::write(dir.path().join(FILE_NAME), "junk").unwrap();
        assert!(load_or_create(dir.path()).is_err());
    }
}
