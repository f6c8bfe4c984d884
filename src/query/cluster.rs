//! KPI queries on a Ballista cluster (feature `distributed`, `engine.ballista`): the same SQL,
//! planned by the cluster's scheduler and run by its executors (see `crate::cluster`).
//!
//! What travels to the cluster is a plan over Parquet files: the events (the current
//! generation's folder), the shared views' files and the reference tables written as Parquet.
//! Every process of the cluster must see those paths: one machine's disk, or a shared one.
//! The shared views are still built here, by a local session, once per `as_of`: the cluster
//! runs the queries over them. Caching, suppression, scope and output stay in the engine.

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use ballista_core::execution_plans::DistributedQueryExec;
use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion_proto::protobuf::LogicalPlanNode;

use super::session::Pins;
use super::{Engine, QueryError, cellkey, views};

/// The reference tables, written once as Parquet under `views/reference/` for the executors.
const REFERENCE: [&str; 2] = ["ref_provinces", "ref_contract_codes"];

impl Engine {
    /// A session on the cluster at `url` with the tables of a KPI query over the data of
    /// `as_of_us` and the shared views in `needed`, whose files `local` (a local session of
    /// the same data) has made sure of.
    pub(super) async fn cluster_session(
        &self,
        url: &str,
        local: &SessionContext,
        as_of_us: i64,
        needed: &[&str],
    ) -> Result<SessionContext, QueryError> {
        let mut config = super::session::parquet_reading(SessionConfig::new_with_ballista())
            .with_information_schema(false)
            .with_ballista_job_name("mirato")
            // Ballista 55's adaptive planner re-plans some of the catalogue's joins (a join
            // filter beside an outer join) without end; the static planner runs them all.
            .set_bool("ballista.planner.adaptive.enabled", false);
        // The local session's folders stay locked while this one lives (see `Pins`): the
        // executors read the same files.
        if let Some(pins) = Pins::of(local) {
            config = config.with_extension(pins);
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build();
        let ctx = SessionContext::remote_with_state(url, state).await?;
        // After the session is made: making it replaces the functions it was given.
        ctx.register_udf(cellkey::udf(self.cell_seed));
        ctx.register_table("events", local.table_provider("events").await?)?;
        super::session::register_ev(&ctx, as_of_us).await?;
        for name in REFERENCE {
            let dir = self.layout.views().join("reference").join(name);
            if !dir.join("part.parquet").exists() {
                // A temp folder of this process's own: another may be writing the same table.
                let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                local
                    .table(name)
                    .await?
                    .write_parquet(
                        &tmp.join("part.parquet").to_string_lossy(),
                        DataFrameWriteOptions::new().with_single_file_output(true),
                        None,
                    )
                    .await?;
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::rename(&tmp, &dir)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            }
            ctx.register_parquet(name, &dir.to_string_lossy(), ParquetReadOptions::default())
                .await?;
        }
        for name in needed {
            let provider: Arc<dyn TableProvider> = local.table_provider(*name).await?;
            let file = views::file_scan(&provider, &local.state()).await?;
            ctx.register_table(*name, file)?;
        }
        Ok(ctx)
    }
}

/// Runs `df` on the cluster of the scheduler at `url` (`df://host:port`), and answers its
/// rows only when the scheduler confirms that the job ran every stage once, each task once and
/// successfully. Ballista 55 recovers a lost executor by running stages again, and its static
/// planner keeps the outputs of the first run beside the new ones: a stage's rows can come
/// twice, also under an aggregation where no repeated row would show it. Such a result is
/// [`QueryError::ClusterUnsure`], and [`Engine::run`] computes it locally instead; so is one
/// the scheduler cannot vouch for (its REST API unreachable or disabled).
pub(super) async fn collect_verified(
    df: DataFrame,
    url: &str,
) -> Result<Vec<RecordBatch>, QueryError> {
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task).await?;
    let job = plan
        .downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()
        .and_then(|d| d.job_id());
    let Some(job) = job else {
        return Err(QueryError::ClusterUnsure(
            "the query did not run as a job of the cluster".into(),
        ));
    };
    match ran_once(url, job.as_str()).await {
        Ok(()) => Ok(batches),
        Err(why) => Err(QueryError::ClusterUnsure(format!("job {job}: {why}"))),
    }
}

/// Whether the scheduler's account of job `job` shows every stage run once (attempt 0) and
/// every task successful; `Err` says what it shows instead, or why it could not say.
async fn ran_once(url: &str, job: &str) -> Result<(), String> {
    let base = format!(
        "http://{}",
        url.trim_start_matches("df://").trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let get = |path: String| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let response = request
                .send()
                .await
                .map_err(|e| format!("the scheduler's REST API cannot be reached: {e}"))?;
            if !response.status().is_success() {
                return Err(format!(
                    "the scheduler's REST API answered {} (is it disabled?)",
                    response.status()
                ));
            }
            let text = response.text().await.map_err(|e| e.to_string())?;
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
        }
    };
    let graph = get(format!("/api/job/{job}")).await?;
    let attempts = stage_attempts(graph["stage_plan"].as_str().unwrap_or_default());
    if attempts.is_empty() {
        return Err("the scheduler described no stages".into());
    }
    if let Some((stage, attempt)) = attempts.into_iter().find(|(_, a)| *a > 0) {
        return Err(format!("stage {stage} ran {} times", attempt + 1));
    }
    let stages = get(format!("/api/job/{job}/stages")).await?;
    let Some(stages) = stages["stages"].as_array().filter(|s| !s.is_empty()) else {
        return Err("the scheduler listed no stages".into());
    };
    for stage in stages {
        let id = &stage["stage_id"];
        if stage["stage_status"] != "Successful" {
            return Err(format!("stage {id} is {}", stage["stage_status"]));
        }
        let tasks = stage["tasks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(task) = tasks.iter().find(|t| t["status"] != "Successful") {
            return Err(format!("stage {id} has a task {}", task["status"]));
        }
    }
    Ok(())
}

/// The `(stage, attempt)` pairs of a job graph's description, where each stage appears as
/// `…Stage[stage_id=3.1, …`: a stage run again has an attempt above 0.
fn stage_attempts(graph: &str) -> Vec<(u64, u64)> {
    graph
        .split("Stage[stage_id=")
        .skip(1)
        .filter_map(|rest| {
            let id = rest.split([',', ']']).next()?;
            let (stage, attempt) = id.split_once('.')?;
            Some((stage.trim().parse().ok()?, attempt.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::stage_attempts;

    #[test]
    fn stage_attempts_are_read_from_the_graph() {
        let graph = "ExecutionGraph[job_id=a]\n=========SuccessfulStage[stage_id=1.0, partitions=2]=========\nx\n=========SuccessfulStage[stage_id=2.1, partitions=2]=========";
        assert_eq!(stage_attempts(graph), vec![(1, 0), (2, 1)]);
        assert!(stage_attempts("no stages").is_empty());
    }
}
