//! Prometheus metrics, served at `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | method, route, status |
//! | `http_request_duration_seconds` | histogram | method, route, status |
//! | `store_operation_duration_seconds` | histogram | store, operation, outcome |
//! | `store_errors_total` | counter | store, operation, kind |
//! | `bcrypt_queue_depth` | gauge | |
//! | `bcrypt_wait_seconds` | histogram | |
//! | `login_failures_total` | counter | |
//! | `login_throttled_total` | counter | |
//! | `rate_limited_total` | counter | bucket |
//! | `organizations` | gauge (read from the store at scrape time) | |
//!
//! The recorder is process-global (the `metrics` facade has one), installed once. Label sets
//! stay bounded whatever clients send: routes are labelled by their matched pattern (every
//! unmatched path is `unmatched`), methods by name only when standard (others are `other`).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("valid buckets")
                .install_recorder()
                .expect("the metrics recorder is installed once per process")
        })
        .clone()
}

/// Middleware: counts and times every request by method, route pattern and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: the nine standard methods by name, anything else as `other`. A client
/// may send any token as a method (`FOO1`, `FOO2`, …), and each distinct label value is a new
/// series kept for the life of the process: labelling raw methods let one client grow
/// `/metrics` without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> Response {
    if let Ok(n) = state.store.count_organizations().await {
        metrics::gauge!("organizations").set(n as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle().render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_others_collapse() {
        for (method, label) in [
            (Method::GET, "GET"),
            (Method::HEAD, "HEAD"),
            (Method::POST, "POST"),
            (Method::PUT, "PUT"),
            (Method::DELETE, "DELETE"),
            (Method::PATCH, "PATCH"),
            (Method::OPTIONS, "OPTIONS"),
            (Method::CONNECT, "CONNECT"),
            (Method::TRACE, "TRACE"),
        ] {
            assert_eq!(method_label(&method), label);
        }
        for raw in ["FOO1", "get", "PROPFIND"] {
            let method = Method::from_bytes(raw.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{raw}");
        }
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_pattern_and_scraped_with_the_organization_count() {
        use axum::routing::get;
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let state = crate::test_support::state(dir.path()).await;
        handle();
        let app = axum::Router::new()
            .route("/metered/{id}", get(|| async { "hi" }))
            .route("/metrics", get(render))
            .with_state(state)
            .layer(axum::middleware::from_fn(track_http));
        let send = |uri: &str| {
            let req = Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(req)
        };
        let r = send("/metered/42").await.unwrap();
        assert_eq!(r.status(), 200);
        let body = axum::body::to_bytes(r.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"hi", "the response passes through");
        let scrape = send("/metrics").await.unwrap();
        assert!(scrape.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(
            axum::body::to_bytes(scrape.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("http_requests_total{")
                && l.contains("route=\"/metered/{id}\"")
                && l.contains("method=\"GET\"")
                && l.contains("status=\"200\"")),
            "{text}"
        );
        assert!(
            !text.contains("/metered/42"),
            "raw paths never become labels"
        );
        assert!(
            text.lines().any(|l| l.starts_with("organizations ")),
            "{text}"
        );
    }
}
