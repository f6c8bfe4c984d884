//! `GET /report/anpal`: the ANPAL workbook as a download, for every role, within the caller's
//! scope and always suppressed, exactly as `mirato report anpal` writes it.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::filters;
use super::{AppError, AppState};
use crate::auth::Principal;
use crate::report::{self, AnpalOptions, ReportError};

pub async fn anpal(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Response, AppError> {
    let query = filters::parse_query(q.as_deref());
    filters::check_names(&query, &["year", "quarter", "region", "as_of"])?;
    let get = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    let year: i32 = get("year")
        .ok_or_else(|| AppError::bad("year", "year is required, e.g. year=2025", vec![]))?
        .parse()
        .ok()
        .filter(|y| (1900..=2100).contains(y))
        .ok_or_else(|| {
            AppError::bad(
                "year",
                "year must be a year from 1900 to 2100, e.g. 2025",
                vec![],
            )
        })?;
    let quarter = get("quarter")
        .map(|q| q.parse::<u32>())
        .transpose()
        .map_err(|_| {
            AppError::bad(
                "quarter",
                "quarter must be 1 to 4",
                vec!["1".into(), "2".into(), "3".into(), "4".into()],
            )
        })?;
    // A manager's report covers their scope, whatever region was asked.
    let scope = who.territory().map(|t| (t, who.scope.describe()));
    let opts = AnpalOptions {
        year,
        quarter,
        region: if scope.is_some() { None } else { get("region") },
        as_of: get("as_of"),
        threshold: state.auth().threshold(),
        scope,
    };
    let sheets = report::anpal(state.engine(), &opts)
        .await
        .map_err(|e| match e {
            ReportError::Bad(m) => AppError::bad("report", m, vec![]),
            ReportError::Query(q) => AppError::from(q),
            other => {
                tracing::error!(error = %other, "report failed");
                AppError::Internal("the report could not be written".into())
            }
        })?;
    let bytes = report::xlsx_bytes(&sheets).map_err(|e| {
        tracing::error!(error = %e, "report failed");
        AppError::Internal("the report could not be written".into())
    })?;
    let name = format!(
        "mirato-anpal-{year}{}.xlsx",
        quarter.map(|q| format!("-q{q}")).unwrap_or_default()
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
