//! The integration tests, one binary with a module per theme: the crate and DataFusion are
//! linked once, not once per file. `cargo test --test it server::` runs one module; the shared
//! helpers are in `tests/common/mod.rs`.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod attack;
mod browser;
mod casemix;
#[cfg(feature = "distributed")]
mod cluster;
mod cohort;
mod corruption;
mod crash;
mod disk_full;
mod evaluation;
mod faults;
mod fuzz;
mod ingest_files;
mod ingest_rules;
mod interop;
mod jobs;
mod kpi_cases;
mod kpi_catalogue;
mod kpi_engine;
mod memory;
mod report;
#[cfg(feature = "s3")]
mod s3;
mod schemathesis;
mod server;
mod views_on_disk;
