//! What the engine answers besides KPIs: the facts a page's filters offer (from the ledger's
//! batch summaries, or a scan of the events), the ledger itself, and the rows rejected by ingest.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};

use super::output::to_rows;
use super::sql::bound;
use super::{Engine, KpiResult, QueryError, Resolved};
use crate::store::{Ledger, StoreError};

/// What the store offers the filters of a page.
#[derive(Debug, Clone, Default)]
pub struct StoreFacts {
    pub data_version: String,
    /// The date of the latest event.
    pub latest: Option<NaiveDate>,
    /// Every (province sigla, CPI code) pair seen.
    pub cpis: Vec<(String, String)>,
}

impl Engine {
    /// The ledger now (read again only when a batch has committed since): the ingest's own
    /// figures, such as the batches and the rejected rows by rule.
    pub fn ledger(&self) -> Result<Arc<Ledger>, QueryError> {
        Ok(self.ledger.get()?)
    }

    /// What the filters of a page offer: the latest event date and every (province, CPI) pair
    /// seen in the store, as of an instant (the last commit when `None`). Read from the batches'
    /// summaries in the ledger; a store with batches from before them is scanned instead.
    pub async fn facts_at(&self, as_of: Option<DateTime<Utc>>) -> Result<StoreFacts, QueryError> {
        let snap = self.snapshot(as_of)?;
        match self.summarised(snap.as_of_us, &snap.data_version)? {
            Some(facts) => Ok(facts),
            None => self.facts_by_scan(snap.as_of_us, snap.data_version).await,
        }
    }

    /// [`Engine::facts_at`] the slow way, over every event: for ledgers without summaries, and
    /// for the test that proves both agree.
    pub async fn facts_scanned(
        &self,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<StoreFacts, QueryError> {
        let snap = self.snapshot(as_of)?;
        self.facts_by_scan(snap.as_of_us, snap.data_version).await
    }

    async fn facts_by_scan(
        &self,
        as_of_us: i64,
        data_version: String,
    ) -> Result<StoreFacts, QueryError> {
        let ctx = self.session(as_of_us, &[]).await?;
        let batches = ctx
            .sql(
                "SELECT province, cpi_code, max(occurred_date) AS latest FROM ev \
                 GROUP BY province, cpi_code ORDER BY province, cpi_code",
            )
            .await?
            .collect()
            .await?;
        let mut cpis = Vec::new();
        let mut latest: Option<NaiveDate> = None;
        for r in to_rows(&batches) {
            let text = |k: &str| r.text(k).map(str::to_owned);
            if let (Some(p), Some(c)) = (text("province"), text("cpi_code")) {
                cpis.push((p, c));
            }
            if let Some(d) = text("latest").and_then(|d| d.parse::<NaiveDate>().ok()) {
                latest = latest.max(Some(d));
            }
        }
        Ok(StoreFacts {
            data_version,
            latest,
            cpis,
        })
    }

    /// The latest event date and the sorted (province, CPI) pairs of the batches committed by
    /// `as_of_us`, from their ledger summaries; `None` if any of them has none.
    fn summarised(
        &self,
        as_of_us: i64,
        data_version: &str,
    ) -> Result<Option<StoreFacts>, QueryError> {
        let mut latest = None;
        let mut cpis = std::collections::BTreeSet::new();
        let complete = self.ledger()?.each_summary(as_of_us, |s| {
            latest = latest.max(s.latest_event);
            cpis.extend(s.cpis.iter().cloned());
        });
        Ok(complete.then(|| StoreFacts {
            data_version: data_version.to_owned(),
            latest,
            cpis: cpis.into_iter().collect(),
        }))
    }

    /// Rows rejected by ingest, by CPI (as written in the row), optionally within provinces.
    pub async fn rejected_by_cpi(&self, provinces: &[String]) -> Result<KpiResult, QueryError> {
        let snap = self.snapshot(None)?;
        let ctx = self.session(snap.as_of_us, &[]).await?;
        let dir = self.layout.quarantine();
        let mut rows = Vec::new();
        if dir.exists() && !crate::store::parquet_files(&dir)?.is_empty() {
            let url = ListingTableUrl::parse(format!(
                "{}/",
                dir.canonicalize()
                    .map_err(|source| StoreError::Io {
                        action: "cannot open",
                        path: dir.clone(),
                        source
                    })?
                    .display()
            ))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .infer_schema(&ctx.state())
                .await?;
            ctx.register_table("quarantine", Arc::new(ListingTable::try_new(config)?))?;
            // One placeholder per province: the values never enter the SQL text.
            let mut values: HashMap<String, ScalarValue> = HashMap::new();
            let mut names = Vec::new();
            for (i, p) in provinces.iter().enumerate() {
                values.insert(format!("p_{i}"), ScalarValue::Utf8(Some(p.clone())));
                names.push(format!("$p_{i}"));
            }
            let filter = if names.is_empty() {
                String::new()
            } else {
                format!("WHERE province IN ({})", names.join(", "))
            };
            let sql = format!(
                "SELECT coalesce(cpi_code, '(non indicato)') AS cpi, \
                 coalesce(province, '') AS province, count(*) AS value FROM quarantine \
                 {filter} GROUP BY 1, 2 ORDER BY 3 DESC, 1"
            );
            let batches = bound(&ctx, &sql, values).await?.collect().await?;
            rows = to_rows(&batches);
        }
        Ok(KpiResult {
            kpi: "rejected_by_cpi".into(),
            params: Resolved {
                from: String::new(),
                to: String::new(),
                by: vec!["cpi".into()],
                region: Vec::new(),
                province: provinces.to_vec(),
                cpi: Vec::new(),
                as_of: snap.as_of_text(),
                data_version: snap.data_version,
                scope: None,
            },
            columns: ["cpi", "province", "value"].map(String::from).to_vec(),
            rows,
            median_days: None,
            keys: Vec::new(),
            life: Vec::new(),
            protection: None,
        })
    }
}
