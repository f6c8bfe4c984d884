//! The store on S3 in a build without the `s3` feature: local folders only, and a clear error
//! for an `s3://` address (see `remote.rs` for the real one).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Layout, StoreError};

pub use super::settings::S3Settings;

/// Never made: no bucket is ever mounted.
#[derive(Debug)]
pub enum Remote {}

/// `data_dir` itself, or an error for an `s3://` address.
pub fn resolve(data_dir: &Path, _settings: &S3Settings) -> Result<PathBuf, StoreError> {
    match data_dir.to_str() {
        Some(s) if s.starts_with("s3://") => Err(StoreError::NoS3(s.to_owned())),
        _ => Ok(data_dir.to_path_buf()),
    }
}

pub fn mounted(_root: &Path) -> Option<Arc<Remote>> {
    None
}

pub fn refresh(_root: &Path) -> Result<usize, StoreError> {
    Ok(0)
}

impl Remote {
    pub fn url(&self) -> &str {
        match *self {}
    }
    pub(super) fn commit(&self, _: &Layout, _: u64, _: &str) -> Result<(), StoreError> {
        match *self {}
    }
    pub(super) fn pull(&self, _: &Layout) -> Result<usize, StoreError> {
        match *self {}
    }
    pub(super) fn share_secret(&self, _: &Layout) -> Result<(), StoreError> {
        match *self {}
    }
    pub(super) fn vacuum(&self, _: &Layout) -> Result<usize, StoreError> {
        match *self {}
    }
}
