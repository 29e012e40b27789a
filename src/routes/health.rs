//! Health probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Health status.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `healthy` or `unhealthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// `connected` or `disconnected`.
    #[schema(example = "connected")]
    pub database: &'static str,
}

/// Readiness: is the store reachable?
#[utoipa::path(
    get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "Service and store are up", body = HealthResponse),
        (status = 503, description = "Store unreachable", body = HealthResponse),
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(HealthResponse {
                status: "healthy",
                database: "connected",
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthResponse {
                    status: "unhealthy",
                    database: "disconnected",
                }),
            )
        }
    }
}

/// Liveness status.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveResponse {
    /// Always `alive`.
    #[schema(example = "alive")]
    pub status: &'static str,
}

/// Liveness: the process answers (no store call), for container liveness probes.
#[utoipa::path(
    get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Process is up", body = LiveResponse))
)]
pub async fn live() -> Json<LiveResponse> {
    Json(LiveResponse { status: "alive" })
}
