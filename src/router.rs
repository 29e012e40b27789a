//! The router: API routes (with their OpenAPI document), the docs, and the middleware stack,
//! outermost last. Building it has no side effects: background tasks belong to
//! [`crate::startup::App::run_until`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::client_addr::{self, ForwardedPolicy};
use crate::config::Config;
use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::openapi::ApiDoc;
use crate::ratelimit::{self, RateLimits};
use crate::routes::{
    admin, api_keys, audit, demo, docs, documents, health, invitations, members, orgs,
};
use crate::server;
use crate::state::AppState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The full router: API routes (with their OpenAPI document), docs, and middleware. `limits`
/// are the per-address rate limits, if on (their upkeep is the caller's).
pub fn router(state: AppState, limits: Option<Arc<RateLimits>>) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::create_org))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::update_org))
        .routes(routes!(orgs::delete_org))
        .routes(routes!(admin::login_admin))
        .routes(routes!(admin::refresh_tokens))
        .routes(routes!(admin::logout_admin))
        .routes(routes!(admin::change_password))
        .routes(routes!(members::me))
        .routes(routes!(members::list_members))
        .routes(routes!(members::change_role, members::remove_member))
        .routes(routes!(invitations::invite, invitations::list_invitations))
        .routes(routes!(invitations::resend))
        .routes(routes!(invitations::revoke))
        .routes(routes!(invitations::accept))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::export_audit))
        .routes(routes!(audit::verify_audit))
        .routes(routes!(health::health))
        .routes(routes!(health::live));
    if state.config.demo_mode {
        api = api.routes(routes!(demo::create_sample_data));
    }
    // Documents take bodies up to MAX_DOCUMENT_BYTES (the other routes 16 KiB): the inner
    // limit wins, and a longer body is a 413 before it is read whole.
    let documents = OpenApiRouter::new()
        .routes(routes!(
            documents::create_document,
            documents::list_documents
        ))
        .routes(routes!(documents::count_documents))
        .routes(routes!(
            documents::get_document,
            documents::replace_document,
            documents::patch_document,
            documents::delete_document
        ))
        .layer(DefaultBodyLimit::max(state.config.tenant.max_body_bytes()));
    let api = api.merge(documents);
    let (api, openapi) = api.with_state(state.clone()).split_for_parts();
    // The document is rendered at its first request, off the executor: the name pattern in it
    // is computed from every Unicode character, which start-up need not wait for.
    let spec = Arc::new((openapi, std::sync::OnceLock::<Arc<str>>::new()));
    let api = api.merge(
        Router::new()
            .route("/metrics", get(crate::metrics::render))
            .with_state(state.clone()),
    );

    let mut api = api
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    if let Some(limits) = limits {
        api = api.layer(middleware::from_fn_with_state(limits, ratelimit::limit));
    }

    let docs = Router::new()
        .route("/", get(docs::landing))
        .route("/redoc", get(docs::redoc))
        .route("/redoc/redoc.standalone.js", get(docs::redoc_js))
        .route(
            "/openapi.json",
            get(move || {
                let spec = Arc::clone(&spec);
                async move {
                    let rendered = tokio::task::spawn_blocking(move || {
                        let (openapi, rendered) = &*spec;
                        Arc::clone(rendered.get_or_init(|| {
                            crate::openapi::document_json(openapi).to_string().into()
                        }))
                    })
                    .await
                    .map_err(|e| {
                        ApiError::Internal(anyhow::anyhow!("rendering the document: {e}"))
                    })?;
                    Ok::<_, ApiError>((
                        [(header::CONTENT_TYPE, "application/json")],
                        rendered.to_string(),
                    ))
                }
            }),
        )
        .merge(
            SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::from("/openapi.json").validator_url("none")),
        );

    // The request runs in its own task, and the timeout answers for it from outside: a request
    // past `REQUEST_TIMEOUT_SECONDS` gets its 503, but its work is not cut off half-way (its
    // writes finish, and an `Idempotency-Key` records the real outcome for the retry).
    docs.merge(api)
        .layer(middleware::from_fn(run_to_completion))
        .layer(middleware::from_fn_with_state(
            state.config.http.request_timeout,
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            ForwardedPolicy(
                state
                    .config
                    .http.trust_forwarded_for
                    .then_some(state.config.http.trusted_proxy_hops),
            ),
            client_addr::resolve,
        ))
        .layer(middleware::from_fn(crate::metrics::track_http))
        .layer(cors(&state.config))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let request_id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %request_id)
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(middleware::from_fn(server::track_activity))
}

fn cors(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .http
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    // An explicit list only, never "any origin". No credentials either: the API authenticates
    // with an `Authorization` header that scripts set themselves, never with cookies, so a
    // browser has nothing to send on a caller's behalf.
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(crate::extract::API_KEY_HEADER),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Runs the rest of the request in its own task, so a client that disconnects (or a load
/// generator that stops at its deadline) does not cancel the handler half-way: store operations
/// always finish and hand their connections back, and multi-step writes are never cut short by
/// the client (the reconciler remains for crashes).
async fn run_to_completion(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    // The task carries the request's span, so its log lines keep the request id.
    match tokio::spawn(next.run(req).instrument(tracing::Span::current())).await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(anyhow::anyhow!("request task failed: {e}")).into_response(),
    }
}

async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable("request timed out".into()).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(crate::error::ErrorBody {
            detail: "Method Not Allowed".into(),
        }),
    )
        .into_response()
}
