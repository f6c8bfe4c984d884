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
        let config = SessionConfig::new_with_ballista()
            .with_information_schema(false)
            .with_ballista_job_name("mirato")
            // Ballista 55's adaptive planner re-plans some of the catalogue's joins (a join
            // filter beside an outer join) without end; the static planner runs them all.
            .set_bool("ballista.planner.adaptive.enabled", false)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true);
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
