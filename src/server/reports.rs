//! `GET /report/anpal`: the ANPAL workbook as a download, for every role, within the caller's
//! scope and always suppressed, exactly as `mirato report anpal` writes it.

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::filters;
use super::{AppError, AppState, ComputesAt, Download};
use crate::auth::Principal;
use crate::report::{self, AnpalOptions, ReportError};

pub async fn anpal(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    computes_at: Option<axum::Extension<ComputesAt>>,
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
    let region = if scope.is_some() { None } else { get("region") };
    let request = format!(
        "anpal|{:?}|{}|{year}|{quarter:?}|{region:?}",
        who.role,
        scope
            .as_ref()
            .map(|(_, label)| label.as_str())
            .unwrap_or(""),
    );
    // Without `as_of`, the data the pages show (the report agrees with them and reads the
    // shared views their warm-up built), or the instant of the same report computing now.
    let (as_of, running) = state
        .downloads()
        .instant(&request, get("as_of"), || state.shown_as_of())?;
    if let Some(axum::Extension(at)) = &computes_at {
        at.set(&as_of);
    }
    // The same workbook for the same request, scope and data: asked by many at once, it is
    // computed once.
    let key = format!(
        "{request}|{as_of}|{}",
        state.version_for(Some(&as_of)).await?
    );
    let opts = AnpalOptions {
        year,
        quarter,
        region,
        as_of: Some(as_of),
        threshold: state.auth().threshold(),
        scope,
    };
    let name = format!(
        "mirato-anpal-{year}{}.xlsx",
        quarter.map(|q| format!("-q{q}")).unwrap_or_default()
    );
    let (file, _) = state
        .download_cache()
        .get_or_compute(&key, {
            let state = state.clone();
            move || async move {
            let _running = running;
            let _turn = state.downloads().turn().await;
            let sheets = report::anpal(state.engine(), &opts).await.map_err(|e| match e {
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
            Ok::<_, AppError>(Download {
                name,
                content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                bytes: bytes.into(),
                anonymity: None,
            })
        }})
        .await?;
    Ok(file.response())
}
