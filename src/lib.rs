//! mirato: monitoring of the services and outcomes of Italy's collocamento mirato.
//!
//! One module per stage of the data flow; the binary in `main.rs` is a thin CLI over them.

// The cluster check's HTTP futures (reqwest over hyper and h2) are deeper than the default
// limit lets the compiler prove them `Send`.
#![recursion_limit = "256"]

pub mod app;
pub mod auth;
#[cfg(feature = "distributed")]
pub mod cluster;
pub mod codes;
pub mod cohort;
pub mod compact;
pub mod config;
pub mod csvfile;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod jobs;
pub mod list;
pub mod model;
pub mod privacy;
pub mod query;
pub mod recordkey;
pub mod reference;
pub mod report;
pub mod row;
pub mod server;
pub mod status;
pub mod store;
pub mod vocabulary;
