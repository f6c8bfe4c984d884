//! A DataFusion session over the store: `events`, `ev` (the events as of an instant), the
//! reference tables and the shared views a query needs. Sessions are cheap: the runtime and its
//! caches are the engine's.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};

use super::{Engine, QueryError, cellkey};
use crate::reference;
use crate::store::{StoreError, events_schema};

/// The sessions of KPI queries over the newest data, one per set of views: building a session
/// (DataFusion's function registry, the tables, the views) costs about a millisecond, as much
/// as a small KPI's whole query, and the same generation and `as_of` always mean the same data.
#[derive(Default)]
pub(super) struct SessionCache {
    /// The generation folder and `as_of` the sessions below read.
    data: String,
    by_views: HashMap<String, SessionContext>,
}

impl Engine {
    /// A session for a KPI query: the cached one for this data and these views, or a new one
    /// kept for the next query. Queries of another `as_of` or generation replace the cache;
    /// a query that adds tables of its own must take [`Engine::session`] instead.
    pub(super) async fn kpi_session(
        &self,
        as_of_us: i64,
        needed: &[&str],
    ) -> Result<SessionContext, QueryError> {
        let Ok(generation) = self.layout.events().canonicalize() else {
            return self.fresh_kpi_session(as_of_us, needed).await;
        };
        let data = format!("{}|{as_of_us}", generation.display());
        let views = needed.join(",");
        {
            let cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if cache.data == data
                && let Some(ctx) = cache.by_views.get(&views)
            {
                return Ok(ctx.clone());
            }
        }
        let ctx = self.fresh_kpi_session(as_of_us, needed).await?;
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if cache.data != data {
            cache.data = data;
            cache.by_views.clear();
        }
        cache.by_views.insert(views, ctx.clone());
        Ok(ctx)
    }

    /// A new session for a KPI query: a local one, or with `engine.ballista` one on the
    /// cluster over the same data (the local one makes sure of the views' files).
    async fn fresh_kpi_session(
        &self,
        as_of_us: i64,
        needed: &[&str],
    ) -> Result<SessionContext, QueryError> {
        let local = self.session(as_of_us, needed).await?;
        match self.ballista.as_deref() {
            None => Ok(local),
            #[cfg(feature = "distributed")]
            Some(url) => self.cluster_session(url, &local, as_of_us, needed).await,
            #[cfg(not(feature = "distributed"))]
            Some(_) => Err(no_cluster()),
        }
    }

    /// A fresh session per query (cheap: the runtime and its caches are shared), with `ev`
    /// registered as the events as of `as_of`, and the shared views.
    pub(super) async fn session(
        &self,
        as_of_us: i64,
        needed: &[&str],
    ) -> Result<SessionContext, QueryError> {
        let events_dir = self.layout.events();
        std::fs::create_dir_all(&events_dir).map_err(|source| StoreError::Io {
            action: "cannot create",
            path: events_dir.clone(),
            source,
        })?;
        let generation = events_dir.canonicalize().map_err(|source| StoreError::Io {
            action: "cannot open",
            path: events_dir.clone(),
            source,
        })?;
        let pins = Arc::new(Pins::default());
        pins.hold(
            crate::store::pin_generation(&generation).map_err(|source| StoreError::Io {
                action: "cannot open",
                path: generation.clone(),
                source,
            })?,
        );
        let config = super::memory::sort_reservation(
            parquet_reading(SessionConfig::new().with_information_schema(false)),
            self.runtime.memory_pool.memory_limit(),
        )
        .with_extension(pins);
        let ctx = SessionContext::new_with_config_rt(config, Arc::clone(&self.runtime));
        ctx.register_udf(cellkey::udf(self.cell_seed));
        let url = ListingTableUrl::parse(format!("{}/", generation.display()))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![
                ("year".to_owned(), DataType::Int32),
                ("month".to_owned(), DataType::Int32),
            ]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(nullable(&events_schema()));
        ctx.register_table("events", Arc::new(ListingTable::try_new(config)?))?;
        register_ev(&ctx, as_of_us).await?;
        register_reference(&ctx)?;
        self.register_views(&ctx, as_of_us, &generation, needed)
            .await?;
        Ok(ctx)
    }
}

/// How every session reads Parquet: whole column chunks of the row groups that their
/// statistics do not rule out, without filters evaluated inside the scan and without the page
/// index. With either, parquet 59.2.0 (the version DataFusion 55 uses) reads only some pages of
/// a column chunk, and under load can then ask for a page it never loaded and fail ("Invalid
/// offset in sparse column chunk data", apache/arrow-rs#9239, #10733; fixed in later
/// releases): seen several times an hour in `benches/soak.sh`, with the predicate cache off
/// too. The metadata cache loads the page index whatever the setting, so both must be off.
pub(super) fn parquet_reading(config: SessionConfig) -> SessionConfig {
    config
        .set_bool("datafusion.execution.parquet.pushdown_filters", false)
        .set_bool("datafusion.execution.parquet.enable_page_index", false)
}

/// The folders a session's queries read, locked for as long as the session or a query it
/// started lives: the generation of event files and the `as_of` folders of its stored views.
/// Compaction's clean-up and the views' pruning leave locked folders alone, so a query of any
/// length reads to its end what it planned on. Held in the session's configuration, which
/// every running plan's task context shares.
#[derive(Default)]
pub(super) struct Pins(std::sync::Mutex<Vec<Arc<std::fs::File>>>);

impl Pins {
    /// Keeps `lock` for as long as the session lives.
    pub(super) fn hold(&self, lock: impl Into<Arc<std::fs::File>>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(lock.into());
    }

    /// The pins of the session `ctx`, if it has any.
    pub(super) fn of(ctx: &SessionContext) -> Option<Arc<Pins>> {
        ctx.state().config().get_extension::<Pins>()
    }
}

/// Registers `ev`: the `events` table as of `as_of_us` (the rows ingested by then).
pub(super) async fn register_ev(ctx: &SessionContext, as_of_us: i64) -> Result<(), QueryError> {
    let ts = ScalarValue::TimestampMicrosecond(Some(as_of_us), Some("UTC".into()));
    let ev = ctx
        .table("events")
        .await?
        .filter(col("ingested_at").lt_eq(lit(ts)))?;
    ctx.register_table("ev", ev.into_view())?;
    Ok(())
}

/// The events' schema with every column nullable, as queries see it. The files keep their
/// non-null columns. But DataFusion 55's sort-merge join, the engine's fallback when hash joins
/// do not fit the pool, fills the columns its join filter reads with nulls for unmatched rows,
/// then refuses a batch whose schema says they cannot be null (apache/datafusion#21197).
/// Declared nullable, the same rows pass and give the same answer.
fn nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// The first row's first column as a date (a `SELECT max(date)` answer), if any.
pub(super) fn first_date(batches: &[RecordBatch]) -> Option<NaiveDate> {
    batches.first().and_then(|b| {
        b.column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Date32Array>()
            .and_then(|a| {
                (!a.is_empty() && !a.is_null(0))
                    .then(|| a.value_as_date(0))
                    .flatten()
            })
    })
}

/// Reference tables: provinces with their regions.
fn register_reference(ctx: &SessionContext) -> Result<(), QueryError> {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    let ps = reference::provinces();
    let schema = Arc::new(Schema::new(vec![
        Field::new("sigla", DataType::Utf8, false),
        Field::new("province_name", DataType::Utf8, false),
        Field::new("region_code", DataType::Utf8, false),
        Field::new("region_name", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(ps.iter().map(|p| p.sigla))),
            Arc::new(StringArray::from_iter_values(ps.iter().map(|p| p.name))),
            Arc::new(StringArray::from_iter_values(
                ps.iter().map(|p| p.region_code),
            )),
            Arc::new(StringArray::from_iter_values(
                ps.iter().map(|p| p.region_name),
            )),
        ],
    )
    .map_err(DataFusionError::from)?;
    ctx.register_table(
        "ref_provinces",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    // Contract codes of the Comunicazioni Obbligatorie with their class.
    let rows: Vec<Vec<&str>> = reference::CONTRACT_CODES_CSV
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("contract_class", DataType::Utf8, false),
        Field::new("stable", DataType::Utf8, false),
        Field::new("meaning", DataType::Utf8, false),
    ]));
    let cols = (0..4)
        .map(|i| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i])))
                as datafusion::arrow::array::ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(DataFusionError::from)?;
    ctx.register_table(
        "ref_contract_codes",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

/// The error of `engine.ballista` in a build without the cluster.
pub(super) fn no_cluster() -> QueryError {
    QueryError::Cluster(
        "engine.ballista is set, and this mirato was built without the cluster: build it with `cargo build --release --features distributed`".into(),
    )
}
