//! The JSON/CSV API: `/api/kpi/{id}`, `/api/kpis`, `/api/openapi.json`, `/healthz`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::filters::{self, Filters};
use super::{AppError, AppState};
use crate::query::{self, catalog, output};

/// The query parameters of `/api/kpi/{id}`: KPIS.md's, plus the format.
pub const PARAMS: [&str; 8] = [
    "from", "to", "by", "region", "province", "cpi", "as_of", "format",
];

/// `GET /api/kpi/{id}`: JSON in the shape of KPIS.md, or CSV with `format=csv`. `as_of` and the
/// data version travel in the JSON `params` and, for CSV, in headers.
pub async fn kpi(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<crate::auth::Principal>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let def = query::find(&id).ok_or_else(|| {
        AppError::NotFound(format!("unknown KPI '{id}'; GET /api/kpis lists them all"))
    })?;
    let query = filters::parse_query(q.as_deref());
    filters::check_names(&query, &PARAMS)?;
    let csv = match query.get("format").map(String::as_str) {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(AppError::bad(
                "format",
                format!("unknown format '{other}'; use json or csv"),
                vec!["json".into(), "csv".into()],
            ));
        }
    };
    let f = Filters::from_query(&query);
    let by: Vec<String> = query
        .get("by")
        .map(|b| {
            b.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let (result, _, key) = state.kpi_for(&who, def, &f.raw(&by)).await?;
    let tag = super::etag(&[&key, if csv { "csv" } else { "json" }]);
    if let Some(r) = super::not_modified(&headers, &tag) {
        return Ok(r);
    }
    let common = [
        (header::ETAG, tag),
        (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        (
            header::HeaderName::from_static("x-mirato-as-of"),
            result.params.as_of.clone(),
        ),
        (
            header::HeaderName::from_static("x-mirato-data-version"),
            result.params.data_version.clone(),
        ),
    ];
    if csv {
        Ok((
            common,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            output::to_csv(&result),
        )
            .into_response())
    } else {
        Ok((common, axum::Json(&*result)).into_response())
    }
}

/// `GET /api/kpis`: the catalogue.
pub async fn kpis() -> impl IntoResponse {
    let list: Vec<Value> = catalog()
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "label": d.label,
                "kind": d.kind,
                "section": d.section,
                "breakdowns": d.allowed_dims(),
            })
        })
        .collect();
    axum::Json(json!({ "kpis": list }))
}

/// `GET /healthz`: 200 while the store's ledger reads, 503 otherwise.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.version().await {
        Ok(v) => axum::Json(json!({"status": "ok", "data_version": v})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /api/openapi.json`: OpenAPI 3.1, built from the catalogue so it never drifts from it.
pub async fn openapi() -> impl IntoResponse {
    axum::Json(openapi_doc())
}

pub fn openapi_doc() -> Value {
    let ids: Vec<&str> = catalog().iter().map(|d| d.id).collect();
    let mut dims: Vec<&str> = catalog().iter().flat_map(|d| d.allowed_dims()).collect();
    dims.sort_unstable();
    dims.dedup();
    let text = |name: &str, desc: &str| {
        json!({"name": name, "in": "query", "required": false, "description": desc,
               "schema": {"type": "string"}})
    };
    let error = json!({"description": "A parameter is wrong: the body names it and the allowed values",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mirato API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Outputs and outcomes of the collocamento mirato (L. 68/1999), as defined by the KPI catalogue. Every result states its parameters, its as_of and the data version."
        },
        "paths": {
            "/api/kpi/{id}": {"get": {
                "summary": "One KPI",
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "enum": ids}},
                    {"name": "from", "in": "query", "required": false, "description": "First day of the period (YYYY-MM-DD, Europe/Rome); default 1 January of the latest event's year", "schema": {"type": "string", "format": "date"}},
                    {"name": "to", "in": "query", "required": false, "description": "Last day of the period; default the latest event's date", "schema": {"type": "string", "format": "date"}},
                    {"name": "by", "in": "query", "required": false, "description": format!("One or two breakdowns, comma-separated, among: {} (each KPI takes a subset: see /api/kpis)", dims.join(", ")), "schema": {"type": "string"}},
                    text("region", "Region ISTAT code or name; several comma-separated"),
                    text("province", "Province sigla; several comma-separated"),
                    text("cpi", "CPI code; several comma-separated"),
                    {"name": "as_of", "in": "query", "required": false, "description": "Only events ingested at or before this instant (RFC 3339, or a date meaning the end of that day in Rome)", "schema": {"type": "string"}},
                    {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}
                ],
                "responses": {
                    "200": {"description": "The KPI's rows", "headers": {"ETag": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KpiResult"}},
                                    "text/csv": {"schema": {"type": "string"}}}},
                    "304": {"description": "Not modified since the ETag given in If-None-Match"},
                    "400": error,
                    "404": {"description": "Unknown KPI", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                }
            }},
            "/api/kpis": {"get": {"summary": "The KPI catalogue", "responses": {"200": {"description": "Every KPI with its label, kind and breakdowns"}}}},
            "/api/evaluation": {"get": {
                "summary": "Placement rates at 90/180/365 days by subgroup with Wilson 95% intervals, Kaplan-Meier summaries by subgroup, and a log-rank test between two subgroups",
                "parameters": [
                    text("from", "First pact date of the cohort (YYYY-MM-DD)"),
                    text("to", "Last pact date of the cohort"),
                    {"name": "by", "in": "query", "required": false, "schema": {"type": "string", "enum": super::evaluation::DIMS, "default": "gender"}},
                    text("a", "First subgroup of the log-rank test (a value of `by`); default the first"),
                    text("b", "Second subgroup of the log-rank test; default the second"),
                    text("region", "Region ISTAT code or name; several comma-separated"),
                    text("province", "Province sigla; several comma-separated"),
                    text("cpi", "CPI code; several comma-separated"),
                    text("as_of", "Only events ingested at or before this instant")
                ],
                "responses": {"200": {"description": "The figures of the evaluation page"}, "400": error}
            }},
            "/export/cohort.parquet": {"get": {
                "summary": "The cohort file: one row per person and registration spell (pseudonymised); evaluator and admin only",
                "parameters": [
                    {"name": "entry", "in": "query", "required": false, "schema": {"type": "string", "enum": ["registration", "pact"], "default": "registration"}},
                    text("from", "First entry date"), text("to", "Last entry date"),
                    text("region", "Region of the entry event"), text("province", "Province of the entry event"),
                    text("cpi", "CPI of the entry event"), text("as_of", "Only events ingested at or before this instant")
                ],
                "responses": {"200": {"description": "Parquet", "content": {"application/vnd.apache.parquet": {}}}, "400": error, "403": {"description": "Not an evaluator or admin"}}
            }},
            "/report/anpal": {"get": {
                "summary": "The ANPAL / Relazione al Parlamento workbook (XLSX), suppressed, within the caller's scope",
                "parameters": [
                    {"name": "year", "in": "query", "required": true, "schema": {"type": "integer"}},
                    {"name": "quarter", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 4}},
                    text("region", "Region name or ISTAT code; default Italy"),
                    text("as_of", "Regenerate a published report: only events ingested at or before this instant")
                ],
                "responses": {"200": {"description": "XLSX"}, "400": error}
            }},
            "/healthz": {"get": {"summary": "Liveness and the data version", "responses": {"200": {"description": "OK"}, "503": {"description": "The store cannot be read"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OpenMetrics text"}}}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"}, "param": {"type": "string"},
                "allowed": {"type": "array", "items": {"type": "string"}}}},
            "KpiResult": {"type": "object", "required": ["kpi", "params", "rows"], "properties": {
                "kpi": {"type": "string"},
                "params": {"type": "object", "properties": {
                    "from": {"type": "string"}, "to": {"type": "string"},
                    "by": {"type": "array", "items": {"type": "string"}},
                    "as_of": {"type": "string"}, "data_version": {"type": "string"}}},
                "rows": {"type": "array", "items": {"type": "object"}},
                "median_days": {"type": ["number", "null"]}}}
        }}
    })
}
