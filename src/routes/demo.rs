//! `POST /demo/create-sample-data`: seeds the demo data again ([`crate::demo`]). Registered only
//! when `DEMO_MODE=true` (refused in production); otherwise the route does not exist (404).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::demo::{seed, DemoResponse};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Create the demo organizations (demo mode only).
#[utoipa::path(
    post, path = "/demo/create-sample-data", tag = "demo",
    responses(
        (status = 201, description = "Sample data present", body = DemoResponse),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn create_sample_data(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<DemoResponse>), ApiError> {
    Ok((StatusCode::CREATED, Json(seed(&state).await?)))
}
