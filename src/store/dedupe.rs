//! The dedupe index: every event id already stored, with the hash of its content, so that a
//! resent event is counted as a duplicate and a changed one as a conflict.

use std::collections::HashMap;
use std::fs::File;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Store, StoreError, io};

/// Event ids already stored, with the keyed hash of their content.
#[derive(Default)]
pub struct DedupeIndex {
    /// Keys are already hashes (xxh3-128 of the id), so a cheap hasher suffices.
    map: HashMap<u128, i64, foldhash::fast::FixedState>,
}

/// What the index says about an event id.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    Duplicate,
    Conflict,
}

impl DedupeIndex {
    /// The index key of an event id: 128 bits of xxh3, so collisions are negligible.
    pub fn key(event_id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
    }

    /// Checks an id and records it when new, in one lookup.
    pub fn check_insert(&mut self, key: u128, content_hash: i64) -> Seen {
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(content_hash);
                Seen::New
            }
            std::collections::hash_map::Entry::Occupied(o) if *o.get() == content_hash => {
                Seen::Duplicate
            }
            std::collections::hash_map::Entry::Occupied(_) => Seen::Conflict,
        }
    }

    pub fn insert(&mut self, event_id: &str, content_hash: i64) {
        self.map.insert(Self::key(event_id), content_hash);
    }

    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    pub fn remove(&mut self, key: u128) {
        self.map.remove(&key);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Store {
    /// Reads every stored event id with its content hash.
    pub fn load_index(&self) -> Result<DedupeIndex, StoreError> {
        let mut index = DedupeIndex::default();
        for path in self.layout.committed_files(&self.layout.events())? {
            let file = File::open(&path).map_err(io("cannot open", &path))?;
            let perr = |source| StoreError::Parquet {
                path: path.clone(),
                source,
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
            let mask =
                ProjectionMask::columns(builder.parquet_schema(), ["event_id", "content_hash"]);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|source| StoreError::Parquet {
                    path: path.clone(),
                    source,
                })?;
            for batch in reader {
                let batch = batch?;
                let ids = batch
                    .column_by_name("event_id")
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>());
                let hashes = batch
                    .column_by_name("content_hash")
                    .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
                let (Some(ids), Some(hashes)) = (ids, hashes) else {
                    return Err(StoreError::Parquet {
                        path: path.clone(),
                        source: datafusion::parquet::errors::ParquetError::General(
                            "event_id or content_hash has an unexpected type".into(),
                        ),
                    });
                };
                index.map.reserve(ids.len());
                for (id, h) in ids.iter().zip(hashes.iter()) {
                    if let (Some(id), Some(h)) = (id, h) {
                        index.insert(id, h);
                    }
                }
            }
        }
        Ok(index)
    }
}
