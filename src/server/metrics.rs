//! `/metrics` in the Prometheus text format, through the official client crate.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;
use super::cache::Lookup;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    kpi_lookups: Family<CacheLabels, Counter>,
    kpi_seconds: Histogram,
    cached_results: Gauge,
    uptime: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mirato");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let kpi_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "kpi_cache_lookups",
            "KPI results served from the cache (hit) or computed (miss)",
            kpi_lookups.clone(),
        );
        let kpi_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "kpi_duration_seconds",
            "Time to answer one KPI, cache included",
            kpi_seconds.clone(),
        );
        let cached_results = Gauge::default();
        registry.register(
            "kpi_cached_results",
            "KPI results held in the cache",
            cached_results.clone(),
        );
        let uptime = Gauge::default();
        registry.register("uptime_seconds", "Seconds since start", uptime.clone());
        Metrics {
            registry,
            requests,
            latency,
            kpi_lookups,
            kpi_seconds,
            cached_results,
            uptime,
        }
    }

    pub fn observe_request(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn observe_kpi(&self, how: Lookup, took: Duration) {
        let result = match how {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
        };
        self.kpi_lookups
            .get_or_create(&CacheLabels { result })
            .inc();
        self.kpi_seconds.observe(took.as_secs_f64());
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.metrics();
    m.cached_results.set(state.cache().len() as i64);
    m.uptime.set(state.uptime().as_secs() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}
