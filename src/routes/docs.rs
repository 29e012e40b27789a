//! The landing page and ReDoc, served by the service itself (no CDN): the ReDoc bundle is
//! compiled into the binary. Swagger UI comes from utoipa-swagger-ui's vendored assets.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// ReDoc 2.5 standalone bundle (npm package `redoc`, MIT; see assets/redoc.LICENSE).
static REDOC_JS: &[u8] = include_bytes!("../../assets/redoc.standalone.js");

/// `GET /`: a small page linking the docs and the health check.
pub async fn landing() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>org-service</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}",
        "a{color:#0b5fff}code{background:#f2f2f2;padding:0 .25rem}</style></head><body>",
        "<h1>org-service</h1>",
        "<p>Multi-tenant organization management: create an organization with its admin, ",
        "log in, rename and delete it.</p><ul>",
        "<li><a href=\"/docs\">Swagger UI</a> &mdash; try the API</li>",
        "<li><a href=\"/redoc\">ReDoc</a> &mdash; read the API reference</li>",
        "<li><a href=\"/openapi.json\">OpenAPI document</a> (<code>/openapi.json</code>)</li>",
        "<li><a href=\"/health\">Health</a> (<code>/health</code>)</li>",
        "</ul></body></html>"
    ))
}

/// `GET /redoc`: ReDoc reading `/openapi.json`, with the script served locally.
pub async fn redoc() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>org-service &mdash; ReDoc</title><style>body{margin:0;padding:0}</style></head>",
        "<body><redoc spec-url=\"/openapi.json\"></redoc>",
        "<script src=\"/redoc/redoc.standalone.js\"></script></body></html>"
    ))
}

/// `GET /redoc/redoc.standalone.js`.
pub async fn redoc_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
}
