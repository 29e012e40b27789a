//! `/admin/login`: email and password in, bearer token out.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::orgs::field;
use crate::domain::{Email, LoginPassword};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::ValidJson;
use crate::state::AppState;

/// Body of `POST /admin/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The admin's email (any case).
    #[schema(example = "admin@acme.com")]
    pub email: String,
    /// The admin's password.
    #[schema(example = "SecurePass123!", format = Password)]
    pub password: String,
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token for guarded endpoints.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// The admin's id.
    pub admin_id: String,
    /// The admin's organization id.
    pub organization_id: String,
    /// The admin's organization name.
    pub organization_name: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

const BAD_CREDENTIALS: &str = "Incorrect email or password";

/// Log in as an organization's admin.
///
/// An unknown email and a wrong password get the same answer after the same bcrypt work.
/// Repeated attempts on one account are throttled (429 with `Retry-After`).
#[utoipa::path(
    post, path = "/admin/login", tag = "admin",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Incorrect email or password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn login_admin(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let email = field(&mut errors, &["body", "email"], Email::parse(&body.email));
    let password = field(
        &mut errors,
        &["body", "password"],
        LoginPassword::parse(&body.password),
    );
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    state
        .throttle
        .attempt(state.store.as_ref(), email.as_str())
        .await?;
    let admin = state.store.admin_by_email(email.as_str()).await?;
    let verified = state
        .hasher
        .verify(&password, admin.as_ref().map(|a| a.password_hash.as_str()))
        .await
        .map_err(ApiError::Internal)?;
    let Some(admin) = admin.filter(|_| verified) else {
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    let org = state
        .store
        .organization_by_id(&admin.organization_id)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_CREDENTIALS))?;
    state
        .throttle
        .succeeded(state.store.as_ref(), email.as_str())
        .await?;
    let access_token = state
        .tokens
        .issue(&admin.id, &org.id, admin.token_version)
        .map_err(|e| ApiError::Internal(e.into()))?;
    tracing::info!(admin_id = %admin.id, "admin logged in");
    let mut response = Json(LoginResponse {
        access_token,
        token_type: "bearer",
        admin_id: admin.id,
        organization_id: org.id,
        organization_name: org.name,
        expires_in: state.tokens.ttl_seconds(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
