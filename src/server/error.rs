//! The errors handlers return: a status and a JSON body that names the parameter at fault for
//! the API, and the same error in Italian words for the pages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::query::QueryError;

/// An error a handler returns: a status and a JSON body that names the parameter at fault.
/// Store and engine failures are logged and answered with a short 500 or 503; user input
/// never gets there (see [`QueryError::is_user_error`]).
#[derive(Debug)]
pub enum AppError {
    BadParam {
        param: String,
        message: String,
        allowed: Vec<String>,
    },
    NotFound(String),
    Forbidden(String),
    Unavailable(String),
    Internal(String),
}

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::UnknownKpi { .. } => AppError::NotFound(e.to_string()),
            QueryError::BadParam {
                param,
                message,
                allowed,
            } => AppError::BadParam {
                param: param.to_owned(),
                message,
                allowed,
            },
            QueryError::NoStore(_) => AppError::Unavailable(e.to_string()),
            // Not the caller's fault, and it may pass: the pool is shared with other requests.
            QueryError::Memory { .. } => {
                tracing::warn!(error = %e, "query refused for lack of memory");
                AppError::Unavailable(
                    "the query needs more memory than the server may use now; try again later, or with a shorter period or fewer breakdowns".into(),
                )
            }
            // The files are named in the log and by `mirato check`, not to every viewer.
            QueryError::Damaged { .. } => {
                tracing::error!(error = %e, "query failed on a damaged store");
                AppError::Unavailable(
                    "dato non disponibile: un file dell'archivio è danneggiato; l'amministratore esegua `mirato check`".into(),
                )
            }
            other => {
                tracing::error!(error = %other, "query failed");
                AppError::Internal("the query could not be computed; see the server log".into())
            }
        }
    }
}

impl AppError {
    pub fn bad(param: &str, message: impl Into<String>, allowed: Vec<String>) -> Self {
        AppError::BadParam {
            param: param.to_owned(),
            message: message.into(),
            allowed,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadParam { .. } => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            AppError::BadParam { message, .. }
            | AppError::NotFound(message)
            | AppError::Forbidden(message)
            | AppError::Unavailable(message)
            | AppError::Internal(message) => message,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::BadParam {
                param,
                message,
                allowed,
            } => json!({"error": message, "param": param, "allowed": allowed}),
            other => json!({"error": other.message()}),
        };
        (status, axum::Json(body)).into_response()
    }
}

/// A user's error in Italian, naming what to fix.
pub fn italian_error(e: &AppError) -> String {
    match e {
        AppError::BadParam { param, message, .. } => {
            let what = match param.as_str() {
                "from" if message.contains("after") => {
                    return "La data di inizio è successiva alla data di fine: il periodo deve andare avanti nel tempo.".into();
                }
                "from" => "La data di inizio non è valida: usare il formato AAAA-MM-GG.",
                "to" => "La data di fine non è valida: usare il formato AAAA-MM-GG.",
                "region" => "Regione sconosciuta: scegliere una regione dall'elenco.",
                "province" => "Provincia sconosciuta: usare la sigla, per esempio MI o RM.",
                "cpi" => "Codice CPI non valido.",
                "as_of" => {
                    "Istante di riferimento (as_of) non valido: usare una data AAAA-MM-GG o un istante RFC 3339."
                }
                "by" => "Disaggregazione non prevista per questo indicatore.",
                _ => "Parametro sconosciuto nell'indirizzo.",
            };
            format!("{what} ({message})")
        }
        AppError::NotFound(_) => "Pagina non trovata.".into(),
        AppError::Forbidden(_) => "Riservato agli amministratori.".into(),
        // A damaged file of the store: the message is already the viewer's, in Italian.
        AppError::Unavailable(m) if m.starts_with("dato non disponibile") => {
            format!("D{}", &m[1..])
        }
        AppError::Unavailable(m) if m.contains("memory") => {
            "Il calcolo richiede più memoria di quella disponibile ora: riprovare più tardi, o con un periodo più breve o meno disaggregazioni.".into()
        }
        AppError::Unavailable(_) => {
            "Non ci sono ancora dati: acquisire prima gli eventi (mirato ingest).".into()
        }
        AppError::Internal(_) => {
            "Il calcolo non è riuscito; il registro del server riporta il dettaglio.".into()
        }
    }
}
