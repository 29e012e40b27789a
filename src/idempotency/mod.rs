//! `Idempotency-Key` on every POST: the same key and request within 24 hours get the first
//! response again, so a client that lost an answer (a timeout, a dropped connection) can retry
//! without creating twice.
//!
//! As Stripe and WorkOS do it:
//! - The key (1–255 visible ASCII characters) is scoped to the path and the caller's
//!   `Authorization` and `X-API-Key` headers, so two callers' keys never meet.
//! - The first request with a key claims it in the store (atomically, across instances), runs,
//!   and stores its response; a 5xx or a 429 is not stored (the request may be retried for
//!   real). The layer sits inside the request timeout and the run-to-completion task, so a
//!   request whose client already got a 503 for taking too long still records what it did:
//!   the retry gets the 201 instead of a 409.
//! - The same key with a different request (method, path, query or body) is a 422.
//! - The same key while the first request still runs waits for it (up to 5 s), then is a 409.
//! - A replay carries `Idempotent-Replayed: true`.
//!
//! Stored responses can hold tokens (a login's), so they are sealed with ChaCha20-Poly1305
//! under a key derived from `SECRET_KEY`, with the scope as associated data: reading the store
//! alone does not reveal them, and a record cannot be moved to another key.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::IdempotencyClaim;

mod seal;

pub use seal::{fingerprint, key_problem, scope, Sealer};

/// The caller's credentials, for the scope: `Authorization`, and an `X-API-Key` if sent (so
/// that two keys' requests never share a remembered response).
fn credentials(headers: &axum::http::HeaderMap) -> Option<Vec<u8>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match headers.get(crate::extract::API_KEY_HEADER) {
        None => authorization.map(<[u8]>::to_vec),
        Some(key) => {
            let mut both = authorization.unwrap_or_default().to_vec();
            both.extend_from_slice(b"\nX-API-Key: ");
            both.extend_from_slice(key.as_bytes());
            Some(both)
        }
    }
}

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header on a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;
/// How long a retry waits for the first request with its key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);
/// Response headers worth replaying (the outer layers add the rest again).
const KEPT_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    header::LOCATION,
];

/// A response as stored (before sealing).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Remembered {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Middleware: makes POSTs carrying an `Idempotency-Key` safe to retry.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).map(|k| k.as_bytes().to_vec()) else {
        return next.run(req).await;
    };
    match handle(&state, key, req, next, WAIT_FOR_FIRST).await {
        Ok(response) | Err(response) => response,
    }
}

async fn handle(
    state: &AppState,
    key: Vec<u8>,
    req: Request,
    next: Next,
    wait_for_first: Duration,
) -> Result<Response, Response> {
    if let Some(problem) = key_problem(&key) {
        return Err(
            ApiError::field(&["header", "Idempotency-Key"], "value_error", problem).into_response(),
        );
    }
    let (parts, body) = req.into_parts();
    // The largest body any route takes (a document's); each route's own limit still applies.
    let limit = state
        .config
        .tenant
        .max_body_bytes()
        .max(crate::extract::MAX_BODY_BYTES);
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge.into_response())?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    let scope = scope(
        parts.uri.path(),
        credentials(&parts.headers).as_deref(),
        &key,
    );
    let fingerprint = fingerprint(&parts.method, &path_and_query, &bytes);
    let sealer = Sealer::new(state.config.auth.secret_key.expose());
    let running_ttl = state.config.http.request_timeout + Duration::from_secs(10);
    let give_up = tokio::time::Instant::now() + wait_for_first;
    loop {
        let claim = state
            .store
            .begin_idempotent(&scope, &fingerprint, running_ttl)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        match claim {
            IdempotencyClaim::Started => break,
            IdempotencyClaim::Running { fingerprint: other }
            | IdempotencyClaim::Finished {
                fingerprint: other, ..
            } if other != fingerprint => {
                return Err(ApiError::field(
                    &["header", "Idempotency-Key"],
                    "value_error",
                    "this Idempotency-Key was used with a different request",
                )
                .into_response());
            }
            IdempotencyClaim::Finished { sealed, .. } => {
                let remembered = sealer
                    .open(&scope, &sealed)
                    .and_then(|plain| serde_json::from_slice::<Remembered>(&plain).ok())
                    .ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!(
                            "a stored idempotent response does not open"
                        ))
                        .into_response()
                    })?;
                return Ok(replay(remembered));
            }
            IdempotencyClaim::Running { .. } if tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            IdempotencyClaim::Running { .. } => {
                let mut response = ApiError::Conflict(
                    "A request with this Idempotency-Key is still being processed; retry shortly"
                        .into(),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Err(response);
            }
        }
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let status = parts.status;
    let text = std::str::from_utf8(&body).ok();
    let outcome = match text {
        Some(text) if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) => {
            let remembered = Remembered {
                status: status.as_u16(),
                headers: kept_headers(&parts.headers),
                body: text.to_owned(),
            };
            let plain = serde_json::to_vec(&remembered).expect("serializes");
            state
                .store
                .finish_idempotent(&scope, &sealer.seal(&scope, &plain))
                .await
        }
        _ => state.store.abandon_idempotent(&scope).await,
    };
    if let Err(e) = outcome {
        // The request itself succeeded or failed on its own; a retry will run it again.
        tracing::warn!(error = %e, "could not record the idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

fn replay(remembered: Remembered) -> Response {
    let status = StatusCode::from_u16(remembered.status).unwrap_or(StatusCode::OK);
    let mut response = (status, remembered.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in remembered.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_takes_the_authorization_and_any_api_key() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert_eq!(credentials(&headers).unwrap(), b"Bearer t");
        headers.insert("x-api-key", HeaderValue::from_static("osk_k"));
        assert_eq!(
            credentials(&headers).unwrap(),
            b"Bearer t\nX-API-Key: osk_k"
        );
        headers.remove(header::AUTHORIZATION);
        assert_eq!(credentials(&headers).unwrap(), b"\nX-API-Key: osk_k");
    }

    #[tokio::test]
    async fn the_middleware_runs_once_replays_and_refuses_other_requests() {
        use axum::routing::post;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let state = crate::test_support::state(dir.path()).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let app = axum::Router::new()
            .route(
                "/things",
                post(move |body: String| {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if body == "fail" {
                            return (StatusCode::SERVICE_UNAVAILABLE, "down".to_owned())
                                .into_response();
                        }
                        let mut r = (StatusCode::CREATED, format!("{{\"n\":{n}}}")).into_response();
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        r.headers_mut()
                            .insert("x-dropped", HeaderValue::from_static("1"));
                        r
                    }
                }),
            )
            .route("/things", axum::routing::put(|| async { "put" }))
            .layer(axum::middleware::from_fn_with_state(state, layer));
        let send = |method: &str, key: Option<&str>, body: &'static str| {
            let mut req = Request::builder().method(method).uri("/things");
            if let Some(key) = key {
                req = req.header(HEADER, key);
            }
            app.clone().oneshot(req.body(Body::from(body)).unwrap())
        };
        let text = |r: Response| async move {
            String::from_utf8(to_bytes(r.into_body(), 1024).await.unwrap().to_vec()).unwrap()
        };

        let first = send("POST", Some("k1"), "a").await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get(REPLAYED).is_none());
        assert_eq!(text(first).await, "{\"n\":0}");
        let again = send("POST", Some("k1"), "a").await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()[REPLAYED], "true");
        assert_eq!(again.headers()[header::CONTENT_TYPE], "application/json");
        assert!(again.headers().get("x-dropped").is_none());
        assert_eq!(text(again).await, "{\"n\":0}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the replay did not run the handler"
        );

        assert_eq!(
            send("POST", Some("k1"), "b").await.unwrap().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            send("POST", Some("bad key"), "a").await.unwrap().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // A 5xx is not remembered: the retry runs again.
        assert_eq!(
            send("POST", Some("k2"), "fail").await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            send("POST", Some("k2"), "fail").await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Without a key, or on another method, every request runs.
        assert_eq!(
            text(send("POST", None, "a").await.unwrap()).await,
            "{\"n\":3}"
        );
        assert_eq!(
            text(send("POST", None, "a").await.unwrap()).await,
            "{\"n\":4}"
        );
        assert_eq!(
            text(send("PUT", Some("k1"), "a").await.unwrap()).await,
            "put"
        );
    }

    /// A retry that arrives while the first request with its key still runs waits for it and
    /// gets its response; one that cannot wait long enough gets a 409 with `Retry-After`.
    #[tokio::test]
    async fn a_retry_waits_for_the_first_request_or_gets_409() {
        use axum::routing::post;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let state = crate::test_support::state(dir.path()).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let handler = post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                (StatusCode::CREATED, "made")
            }
        });
        let app = |wait: Duration| {
            axum::Router::new().route("/slow", handler.clone()).layer(
                axum::middleware::from_fn_with_state(
                    state.clone(),
                    move |State(state): State<AppState>, req: Request, next: Next| async move {
                        let key = req.headers()[HEADER].as_bytes().to_vec();
                        match handle(&state, key, req, next, wait).await {
                            Ok(r) | Err(r) => r,
                        }
                    },
                ),
            )
        };
        let send = |router: axum::Router, key: &'static str| {
            let req = Request::builder()
                .method("POST")
                .uri("/slow")
                .header(HEADER, key)
                .body(Body::empty())
                .unwrap();
            router.oneshot(req)
        };
        let patient = app(Duration::from_secs(5));
        let first = tokio::spawn(send(patient.clone(), "k"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = send(patient.clone(), "k").await.unwrap();
        assert_eq!(second.status(), StatusCode::CREATED);
        assert_eq!(second.headers()[REPLAYED], "true");
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::CREATED);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let impatient = app(Duration::from_millis(50));
        let first = tokio::spawn(send(impatient.clone(), "k2"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = send(impatient, "k2").await.unwrap();
        assert_eq!(second.status(), StatusCode::CONFLICT);
        assert_eq!(second.headers()[header::RETRY_AFTER], "1");
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::CREATED);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
