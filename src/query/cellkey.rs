//! Record keys for cell-key perturbation (see `auth::disclosure`): every counted record gets a
//! fixed pseudo-random 32-bit key, and a cell's key is the sum of its records' keys modulo 2³².
//! The same records therefore always give the same cell key, and so the same noise: asking the
//! same cell again, under another name, averages nothing away.
//!
//! A record key is a keyed hash of the record's unit (the person's pseudonym, or the vacancy id
//! for the employers' KPIs) with a secret kept in the data folder. Whoever can read that folder
//! can compute exact figures anyway; whoever only sees published figures cannot tell the noise.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray, StringViewArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The SQL name of the record-key function.
pub const UDF_NAME: &str = "cell_key";

pub use crate::recordkey::{FILE_NAME, load_or_create, record_key};

/// A cell's key: the sum of its records' keys, modulo 2³².
pub fn reduce(sum: i64) -> u32 {
    sum.rem_euclid(1 << 32) as u32
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
    fn cell_keys_wrap_at_two_to_the_32() {
        assert_eq!(reduce((1 << 32) + 7), 7);
        assert_eq!(reduce(-1), u32::MAX);
    }
}
