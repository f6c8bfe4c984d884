//! The JSON/CSV API: `/api/kpi/{id}`, `/api/kpis`, `/api/openapi.json`, `/healthz`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use std::collections::BTreeMap;

use super::filters::{Checked, Extra};
use super::{AppError, AppState};
use crate::query::{self, catalog};

/// What `/api/kpi/{id}` takes besides the filters (KPIS.md's `by`) and the format.
pub struct KpiQuery {
    by: Vec<String>,
    csv: bool,
}

impl Extra for KpiQuery {
    const NAMES: &'static [&'static str] = &["by", "format"];

    fn read(q: &BTreeMap<String, String>) -> Result<Self, AppError> {
        let csv = match q.get("format").map(String::as_str) {
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
        Ok(KpiQuery {
            by: crate::list::parse(q.get("by").map(String::as_str)),
            csv,
        })
    }
}

/// `GET /api/kpi/{id}`: JSON in the shape of KPIS.md, or CSV with `format=csv`. `as_of` and the
/// data version travel in the JSON `params` and, for CSV, in headers.
pub async fn kpi(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<crate::auth::Principal>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Checked<KpiQuery>, AppError>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    // An id that does not decode (not UTF-8) names no KPI either: 404, in JSON like the rest.
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let def = query::find(&id).ok_or_else(|| {
        AppError::NotFound(format!("unknown KPI '{id}'; GET /api/kpis lists them all"))
    })?;
    let Checked {
        filters: f,
        extra: KpiQuery { by, csv },
    } = q?;
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
        // What protects the cells, for the CSV too (the JSON also says it in `protection`).
        (
            header::HeaderName::from_static("x-mirato-protection"),
            match &result.protection {
                Some(p) => format!(
                    "{}; threshold={}; noise_max={}; noise_variance={}",
                    p.method, p.threshold, p.noise_max, p.noise_variance
                ),
                None => "exact".to_owned(),
            },
        ),
    ];
    if csv {
        Ok((
            common,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::csvfile::result(&result),
        )
            .into_response())
    } else {
        Ok((common, axum::Json(query::output::labelled_json(&result))).into_response())
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
        Ok(v) => {
            let free = crate::store::free_bytes(&state.engine().layout().root);
            let audit = state.auth().audit.failing();
            let full = crate::store::disk_nearly_full(&state.engine().layout().root);
            let status = if full || audit.is_some() {
                "degraded"
            } else {
                "ok"
            };
            axum::Json(json!({
                "status": status,
                "data_version": v,
                "disk": {"free_bytes": free, "full": full},
                "audit": audit.unwrap_or_else(|| "ok".into()),
            }))
            .into_response()
        }
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

/// A JSON response with a schema from `components/schemas`.
fn json_response(description: &str, schema: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The reusable query parameters: the filters every data route takes, as
/// [`query::Params::parse`] checks them (after the query string is decoded, repeated names
/// joined with commas and each value trimmed; an empty value means the default).
fn filter_parameters() -> Value {
    let regions = crate::reference::regions();
    let mut region_values: Vec<&str> = regions.iter().map(|(code, _)| *code).collect();
    region_values.extend(regions.iter().map(|(_, name)| *name));
    let siglas: Vec<&str> = crate::reference::provinces()
        .iter()
        .map(|p| p.sigla)
        .collect();
    // A list travels comma-separated (`region=Lazio,Umbria`; `region=Lazio&region=Umbria` too).
    let list = |name: &str, desc: &str, items: Value| {
        json!({"name": name, "in": "query", "required": false, "description": desc,
               "style": "form", "explode": false,
               "schema": {"type": "array", "items": items}})
    };
    let date = |name: &str, desc: &str| {
        json!({"name": name, "in": "query", "required": false, "allowEmptyValue": true,
               "description": desc, "schema": {"type": "string", "format": "date"}})
    };
    json!({
        "from": date("from", "First day of the period (YYYY-MM-DD, a calendar date; Europe/Rome). Default: 1 January of the year of `to`. Not after `to`, given or default (else 400)."),
        "to": date("to", "Last day of the period (YYYY-MM-DD). Default: the latest event's date."),
        "region": list("region", "Regions: ISTAT code (01-20) or name, exactly as listed; several comma-separated.",
            json!({"type": "string", "enum": region_values})),
        "province": list("province", "Provinces: sigla in capitals (MI, RM, ...); several comma-separated.",
            json!({"type": "string", "enum": siglas})),
        "cpi": list("cpi", "CPI codes (1 to 16 characters each); several comma-separated.",
            json!({"type": "string", "minLength": 1, "maxLength": 16, "pattern": "^[^,]*$"})),
        "as_of": {"name": "as_of", "in": "query", "required": false, "allowEmptyValue": true,
            "description": "Only events ingested at or before this instant: RFC 3339 (2025-06-30T12:00:00Z), or a date meaning the end of that day in Rome. Default: now. The result states the effective value.",
            "schema": {"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}]}}
    })
}

pub fn openapi_doc() -> Value {
    let ids: Vec<&str> = catalog().iter().map(|d| d.id).collect();
    let mut dims: Vec<&str> = catalog().iter().flat_map(|d| d.allowed_dims()).collect();
    dims.sort_unstable();
    dims.dedup();
    let breakdowns: serde_json::Map<String, Value> = catalog()
        .iter()
        .map(|d| (d.id.to_owned(), json!(d.allowed_dims())))
        .collect();
    let filter = |name: &str| json!({"$ref": format!("#/components/parameters/{name}")});
    let filters = || -> Vec<Value> {
        ["from", "to", "region", "province", "cpi", "as_of"]
            .iter()
            .map(|n| filter(n))
            .collect()
    };
    let mut kpi_params = vec![json!({"name": "id", "in": "path", "required": true,
        "description": "The KPI (unknown: 404)", "schema": {"type": "string", "enum": ids}})];
    kpi_params.extend(filters());
    kpi_params.insert(3, json!({"name": "by", "in": "query", "required": false, "style": "form", "explode": false,
        "description": format!("At most two different breakdowns, comma-separated, among: {} (each KPI takes a subset: see `x-breakdowns` or /api/kpis)", dims.join(", ")),
        "schema": {"type": "array", "maxItems": 2, "uniqueItems": true, "items": {"type": "string", "enum": dims}}}));
    kpi_params.push(
        json!({"name": "format", "in": "query", "required": false, "allowEmptyValue": true,
        "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}),
    );
    let mut eval_params = filters();
    eval_params.extend([
        json!({"name": "by", "in": "query", "required": false, "allowEmptyValue": true,
            "schema": {"type": "string", "enum": super::evaluation::DIMS, "default": "gender"}}),
        json!({"name": "a", "in": "query", "required": false, "allowEmptyValue": true,
            "description": "First subgroup of the log-rank test: one of the `group` values of the answer (a subgroup of `by` with data in the period, else 400); default the first",
            "schema": {"type": "string"}}),
        json!({"name": "b", "in": "query", "required": false, "allowEmptyValue": true,
            "description": "Second subgroup of the log-rank test, as `a`; default the second",
            "schema": {"type": "string"}}),
    ]);
    let mut cohort_params = vec![json!({"name": "entry", "in": "query", "required": false,
        "schema": {"type": "string", "enum": ["registration", "pact"], "default": "registration"}})];
    // The file leaves the CPI out, so it is not selected by CPI either (`cpi` is a 400).
    cohort_params.extend(
        ["from", "to", "region", "province", "as_of"]
            .iter()
            .map(|n| filter(n)),
    );
    let region_values = filter_parameters()["region"]["schema"]["items"]["enum"].clone();
    let report_params = json!([
        {"name": "year", "in": "query", "required": true,
            "schema": {"type": "integer", "minimum": REPORT_YEARS.0, "maximum": REPORT_YEARS.1}},
        {"name": "quarter", "in": "query", "required": false, "allowEmptyValue": true,
            "schema": {"type": "integer", "minimum": 1, "maximum": 4}},
        {"name": "region", "in": "query", "required": false, "allowEmptyValue": true,
            "description": "One region: ISTAT code or name (any case); default Italy. Ignored for a caller with a territorial scope.",
            "schema": {"type": "string", "enum": region_values}},
        filter("as_of")
    ]);
    let bad = json_response(
        "A parameter is wrong: the body names it (`param`) and, where there is a list, the allowed values",
        "BadRequest",
    );
    let unauthorized = json_response(
        "No valid credentials: send `Authorization: Bearer TOKEN` (or log in)",
        "Error",
    );
    let forbidden = |why: &str| json_response(why, "Error");
    let unavailable = json_response(
        "The store cannot be read (nothing ingested yet, or a broken data folder)",
        "Error",
    );
    let kpi_headers = json!({
        "ETag": {"required": true, "description": "Changes with the parameters, the data version and the format", "schema": {"type": "string"}},
        "X-Mirato-As-Of": {"required": true, "description": "The effective as_of (RFC 3339)", "schema": {"type": "string"}},
        "X-Mirato-Data-Version": {"required": true, "description": "The latest committed batch", "schema": {"type": "string"}},
        "X-Mirato-Protection": {"required": true, "description": "What protects the cells: `exact` (admins), or `cell_key_perturbation; threshold=T; noise_max=M; noise_variance=V`", "schema": {"type": "string"}}
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mirato API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Outputs and outcomes of the collocamento mirato (L. 68/1999), as defined by the KPI catalogue. Every result states its parameters, its as_of and the data version.\n\nQuery strings: a parameter the route does not take is a 400; a name given twice has its values joined with commas (lists: `region=Lazio,Umbria`); values are trimmed; an empty value means the default where the parameter allows one (`allowEmptyValue`), and empty list items are ignored. Every 400 names the parameter (`param`) and, where there is a list, the allowed values (`allowed`).\n\nFor roles below admin, counts are perturbed and small cells suppressed: a count may then be a string such as `<5`."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/kpi/{id}": {"get": {
                "summary": "One KPI",
                "description": "The KPI's rows in the shape of KPIS.md (JSON), or CSV with `format=csv`. `x-breakdowns` lists the breakdowns each KPI takes (also in /api/kpis); another one is a 400.",
                "x-breakdowns": breakdowns,
                "parameters": kpi_params,
                "responses": {
                    "200": {"description": "The KPI's rows", "headers": kpi_headers,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KpiResult"}},
                                    "text/csv": {"schema": {"type": "string"}}}},
                    "304": {"description": "Not modified since the ETag given in If-None-Match"},
                    "400": bad,
                    "401": unauthorized,
                    "404": json_response("Unknown KPI", "Error"),
                    "503": unavailable
                }
            }},
            "/api/kpis": {"get": {
                "summary": "The KPI catalogue",
                "responses": {
                    "200": json_response("Every KPI with its label, kind, section and breakdowns", "Catalogue"),
                    "401": unauthorized
                }
            }},
            "/api/evaluation": {"get": {
                "summary": "Placement rates at 90/180/365 days by subgroup with Wilson 95% intervals, Kaplan-Meier summaries by subgroup, and a log-rank test between two subgroups",
                "description": "`from` and `to` bound the pact dates of the cohort.",
                "parameters": eval_params,
                "responses": {
                    "200": json_response("The figures of the evaluation page", "Evaluation"),
                    "400": bad,
                    "401": unauthorized,
                    "503": unavailable
                }
            }},
            "/export/cohort.parquet": {"get": {
                "summary": "The cohort file: one row per person and registration spell (pseudonymised); evaluator and admin only",
                "description": "`from`, `to` and the territory apply to the entry event. The file is not selected by CPI: a `cpi` value is a 400.",
                "parameters": cohort_params,
                "responses": {
                    "200": {"description": "Parquet", "content": {"application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden("Not an evaluator or admin"),
                    "503": json_response("The store cannot be read, or this server has no pseudonymisation key", "Error")
                }
            }},
            "/report/anpal": {"get": {
                "summary": "The ANPAL / Relazione al Parlamento workbook (XLSX), suppressed, within the caller's scope",
                "parameters": report_params,
                "responses": {
                    "200": {"description": "XLSX", "content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": bad,
                    "401": unauthorized,
                    "503": unavailable
                }
            }},
            "/api/jobs": {"get": {
                "summary": "The scheduled jobs and their last runs; admin only",
                "responses": {"200": json_response("The jobs", "Jobs"), "401": unauthorized, "403": forbidden("Not an admin")}
            }},
            "/api/audit": {"get": {
                "summary": "The latest 1000 lines of the audit; admin only",
                "responses": {"200": json_response("The audit lines, oldest first", "Audit"), "401": unauthorized, "403": forbidden("Not an admin")}
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": unauthorized}
            }},
            "/healthz": {"get": {
                "summary": "Liveness and the data version",
                "security": [],
                "responses": {
                    "200": json_response("OK", "Health"),
                    "503": json_response("The store cannot be read", "Health")
                }
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics; admin only",
                "responses": {
                    "200": {"description": "OpenMetrics text", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}},
                    "401": unauthorized,
                    "403": forbidden("Not an admin")
                }
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token: `mirato users token NAME`"}},
            "parameters": filter_parameters(),
            "schemas": schemas()
        }
    })
}

/// The years `/report/anpal` takes (the server answers 400 outside them).
const REPORT_YEARS: (i32, i32) = (1900, 2100);

fn schemas() -> Value {
    // A count, rate or measure: a number; null when there is nothing to measure; for roles
    // below admin a suppressed count is a string such as "<5".
    let figure = json!({"type": ["number", "string", "null"]});
    let params = json!({"type": "object", "required": ["from", "to", "by", "as_of", "data_version"], "properties": {
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "by": {"type": "array", "items": {"type": "string"}},
        "region": {"type": "array", "items": {"type": "string"}},
        "province": {"type": "array", "items": {"type": "string"}},
        "cpi": {"type": "array", "items": {"type": "string"}},
        "as_of": {"type": "string", "format": "date-time"}, "data_version": {"type": "string"},
        "scope": {"type": "object", "properties": {
            "provinces": {"type": "array", "items": {"type": "string"}},
            "cpis": {"type": "array", "items": {"type": "string"}}}}}});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "BadRequest": {"type": "object", "required": ["error", "param", "allowed"], "properties": {
            "error": {"type": "string"}, "param": {"type": "string"},
            "allowed": {"type": "array", "items": {"type": "string"}}}},
        "Params": params,
        "KpiResult": {"type": "object", "required": ["kpi", "params", "rows"], "properties": {
            "kpi": {"type": "string"},
            "params": {"$ref": "#/components/schemas/Params"},
            "rows": {"type": "array", "items": {"type": "object",
                "description": "One row per cell: the breakdowns' values, then the measures of the KPI's kind (KPIS.md)",
                "properties": {
                    "value": figure, "numerator": figure, "denominator": figure, "n": figure,
                    "persons": figure, "share_of_accepted": figure, "at_risk": figure, "events": figure,
                    "censored": figure, "survival": figure, "lower": figure, "upper": figure,
                    "median_days": figure, "not_stated": figure, "observed": figure,
                    "expected": figure, "cohort": figure, "lower_998": figure, "upper_998": figure},
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}},
            "median_days": figure}},
        "Catalogue": {"type": "object", "required": ["kpis"], "properties": {"kpis": {"type": "array", "items": {
            "type": "object", "required": ["id", "label", "kind", "section", "breakdowns"], "properties": {
                "id": {"type": "string"}, "label": {"type": "string"}, "kind": {"type": "string"},
                "section": {"type": "string"}, "breakdowns": {"type": "array", "items": {"type": "string"}}}}}}},
        "Evaluation": {"type": "object", "required": ["by", "params", "threshold", "groups", "log_rank"], "properties": {
            "by": {"type": "string"},
            "params": {"$ref": "#/components/schemas/Params"},
            "threshold": {"type": ["integer", "null"], "description": "The suppression threshold, for roles below admin"},
            "groups": {"type": "array", "items": {"type": "object", "required": ["group", "label", "persons", "placements", "median_days", "rates"], "properties": {
                "group": {"type": "string"}, "label": {"type": "string"},
                "persons": figure, "placements": figure, "median_days": figure,
                "rates": {"type": "array", "items": {"type": "object", "required": ["horizon", "numerator", "denominator", "value", "lower", "upper"], "properties": {
                    "horizon": {"type": "integer"}, "numerator": figure, "denominator": figure, "value": figure,
                    "lower": {"type": ["number", "null"]}, "upper": {"type": ["number", "null"]}}}}}}},
            "log_rank": {"type": "object", "required": ["a", "b", "test", "note"], "properties": {
                "a": {"type": "string"}, "b": {"type": "string"},
                "test": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["chi2", "df", "p_value", "n", "observed", "expected"], "properties": {
                    "chi2": {"type": ["number", "null"]}, "df": {"type": "integer"}, "p_value": {"type": ["number", "null"]},
                    "n": {"type": "array", "items": {"type": "integer"}}, "observed": {"type": "array", "items": {"type": "integer"}},
                    "expected": {"type": "array", "items": {"type": ["number", "null"]}}}}]},
                "note": {"type": ["string", "null"]}}}}},
        "Jobs": {"type": "object", "required": ["jobs"], "properties": {"jobs": {"type": "array", "items": {"type": "object"}}}},
        "Audit": {"type": "object", "required": ["entries"], "properties": {"entries": {"type": "array", "items": {"type": "object"}}}},
        "Health": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "data_version": {"type": "string"}, "error": {"type": "string"}}}
    })
}
