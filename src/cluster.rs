//! The processes of a Ballista cluster (feature `distributed`): `mirato cluster scheduler` and
//! `mirato cluster executor`, which run the KPI queries that an engine with `engine.ballista`
//! sends them (see `query::cluster`).
//!
//! Why processes of mirato's own rather than Ballista's binaries: plans carry a scalar function
//! by its name only, and the scheduler and every executor must know mirato's `cell_key` (the
//! record keys of cell-key perturbation), made with the store's secret; Ballista's binaries do
//! not. Everything else is Ballista's: the scheduler's planning and task retries, the
//! executors' shuffles over Arrow Flight.

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionConfig;

use crate::query::cellkey::udf as cell_key_udf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the Ballista {role}: {message}")]
    Ballista { role: &'static str, message: String },
    #[error("'{0}' is not a host:port address")]
    Address(String),
}

fn ballista(role: &'static str) -> impl Fn(ballista_core::error::BallistaError) -> ClusterError {
    move |e| ClusterError::Ballista {
        role,
        message: e.to_string(),
    }
}

/// Where a scheduler listens, and how soon it gives up on a silent executor.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: String,
    pub port: u16,
    /// An executor that has not sent a heartbeat for this long is taken as lost, and its
    /// tasks run again elsewhere (Ballista's default: 180 s).
    pub executor_timeout_seconds: u64,
}

/// Runs a scheduler until the process ends. `cell_seed` is the store's record-key secret.
pub async fn scheduler(opts: SchedulerOptions, cell_seed: u64) -> Result<(), ClusterError> {
    let config = SchedulerConfig {
        bind_host: opts.bind.clone(),
        bind_port: opts.port,
        external_host: opts.bind.clone(),
        executor_timeout_seconds: opts.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: opts.executor_timeout_seconds.clamp(1, 15),
        override_session_builder: Some(Arc::new(move |config: SessionConfig| {
            let mut state = default_session_builder(config)?;
            state.register_udf(Arc::new(cell_key_udf(cell_seed)))?;
            Ok(state)
        })),
        ..SchedulerConfig::default()
    };
    let address = format!("{}:{}", opts.bind, opts.port);
    let address = address
        .parse()
        .map_err(|_| ClusterError::Address(address.clone()))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista("scheduler"))?;
    start_server(cluster, address, Arc::new(config))
        .await
        .map_err(ballista("scheduler"))
}

/// Where an executor listens, which scheduler it serves, and where it keeps its shuffles.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub bind: String,
    /// Arrow Flight, for the shuffles and the results.
    pub port: u16,
    pub grpc_port: u16,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    pub work_dir: PathBuf,
    /// Tasks at once; 0: the machine's cores.
    pub vcores: usize,
    pub heartbeat_seconds: u64,
}

/// Runs an executor until the process ends.
pub async fn executor(opts: ExecutorOptions, cell_seed: u64) -> Result<(), ClusterError> {
    let state =
        default_session_builder(SessionConfig::default()).map_err(|e| ClusterError::Ballista {
            role: "executor",
            message: e.to_string(),
        })?;
    let mut functions = BallistaFunctionRegistry::from(&state);
    let udf = Arc::new(cell_key_udf(cell_seed));
    functions
        .scalar_functions
        .insert(udf.name().to_owned(), udf);
    let vcores = if opts.vcores == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        opts.vcores
    };
    let config = ExecutorProcessConfig {
        bind_host: opts.bind.clone(),
        external_host: Some(opts.bind.clone()),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host,
        scheduler_port: opts.scheduler_port,
        work_dir: Some(opts.work_dir.to_string_lossy().into_owned()),
        vcores,
        executor_heartbeat_interval_seconds: opts.heartbeat_seconds,
        override_function_registry: Some(Arc::new(functions)),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista("executor"))
}
