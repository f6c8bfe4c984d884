//! The static files, compiled into the binary: the stylesheet, the script and the icon.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppError;

const STYLE: &str = include_str!("static/style.css");
const SCRIPT: &str = include_str!("static/app.js");
const ICON: &str = include_str!("static/favicon.svg");

/// `GET /static/{file}`: the stylesheet and the script (no inline script: the CSP forbids it).
pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        _ => return AppError::NotFound(format!("no static file '{file}'")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `GET /favicon.ico`: browsers ask for it whatever the page says.
pub async fn favicon() -> Response {
    static_file(Path("favicon.svg".to_owned())).await
}
