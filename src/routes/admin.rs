//! `/admin/*`: log in, refresh, log out, change the password.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::forms::{LoginForm, PasswordChangeForm, RefreshForm};
use crate::auth::refresh;
use crate::domain::{Admin, LoginPassword, Organization};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{AuthAdmin, Client, ValidJson};
use crate::state::AppState;
use crate::storage::{RefreshSpend, RefreshToken};

/// Body of `POST /admin/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The admin's email (any case).
    #[schema(example = "admin@acme.com", format = Email, max_length = 254)]
    pub email: String,
    /// The admin's password.
    #[schema(example = "SecurePass123!", format = Password, min_length = 1, max_length = 72, pattern = r"^[^\x00]*$")]
    pub password: String,
}

/// A successful login (or refresh, or password change).
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
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single-use token for `POST /admin/refresh`.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// Body of `POST /admin/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh (each works once).
    #[schema(
        min_length = 1,
        max_length = 256,
        example = "ort_8c5e0f7d2b9a41c6a3e1f0d9b8c7a6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"
    )]
    pub refresh_token: String,
}

/// Body of `PUT /admin/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// The current password.
    #[schema(format = Password, example = "SecurePass123!", min_length = 1, max_length = 72, pattern = r"^[^\x00]*$")]
    pub current_password: String,
    /// The new password: 8 characters to 72 bytes (UTF-8), no NUL, not a common one.
    #[schema(format = Password, example = "NewSecurePass456!", min_length = 8, max_length = 72, pattern = r"^[^\x00]*$")]
    pub new_password: String,
}

const BAD_CREDENTIALS: &str = "Incorrect email or password";
const BAD_REFRESH: &str = "Invalid refresh token";

/// Issues an access token and the next refresh token of `family` (a new family if `None`).
async fn issue_tokens(
    state: &AppState,
    admin: &Admin,
    org: &Organization,
    version: i64,
    family: Option<String>,
) -> Result<Response, ApiError> {
    let access_token = state
        .tokens
        .issue(&admin.id, &org.id, version)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (refresh_token, hash) = refresh::generate();
    let ttl = state.config.auth.refresh_token_ttl;
    state
        .store
        .insert_refresh_token(&RefreshToken {
            hash,
            admin_id: admin.id.clone(),
            family_id: family.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            token_version: version,
            expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
        })
        .await
        .map_err(|e| match e {
            // The admin vanished, or the chain was revoked, between the check and the insert.
            crate::storage::StoreError::Gone | crate::storage::StoreError::Revoked => {
                ApiError::Unauthorized(BAD_REFRESH)
            }
            other => other.into(),
        })?;
    let mut response = Json(LoginResponse {
        access_token,
        token_type: "bearer",
        admin_id: admin.id.clone(),
        organization_id: org.id.clone(),
        organization_name: org.name.clone(),
        expires_in: state.tokens.ttl_seconds(),
        refresh_token,
        refresh_expires_in: ttl.as_secs(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Log in as an organization's admin.
///
/// An unknown email and a wrong password get the same answer after the same bcrypt work.
/// Repeated attempts on one account are throttled (429 with `Retry-After`), even with the
/// right password, until the window ends.
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
    client: Client,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let LoginForm { email, password } = body.try_into()?;
    state
        .throttle
        .attempt(state.store.as_ref(), email.as_str(), client.0)
        .await?;
    let admin = state.store.admin_by_email(email.as_str()).await?;
    let verified = state
        .hasher
        .verify(&password, admin.as_ref().map(|a| a.password_hash.as_str()))
        .await
        .map_err(ApiError::Internal)?;
    let Some(admin) = admin.filter(|_| verified) else {
        metrics::counter!("login_failures_total").increment(1);
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    let org = state
        .store
        .organization_by_id(&admin.organization_id)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_CREDENTIALS))?;
    state
        .throttle
        .succeeded(state.store.as_ref(), email.as_str(), client.0)
        .await?;
    if state.hasher.needs_rehash(&admin.password_hash) {
        upgrade_hash(&state, &admin, &password).await;
    }
    tracing::info!(admin_id = %admin.id, "admin logged in");
    issue_tokens(&state, &admin, &org, admin.token_version, None).await
}

/// Re-hashes a password that was hashed at another `BCRYPT_COST` (best effort: the login has
/// succeeded either way, and the next one tries again).
async fn upgrade_hash(state: &AppState, admin: &Admin, password: &LoginPassword) {
    let upgraded = match state.hasher.rehash(password).await {
        Ok(hash) => state
            .store
            .upgrade_password_hash(&admin.id, &admin.password_hash, &hash)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match upgraded {
        Ok(true) => {
            tracing::info!(admin_id = %admin.id, "password re-hashed at the configured cost")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, admin_id = %admin.id, "re-hashing the password failed")
        }
    }
}

/// Exchange a refresh token for new tokens.
///
/// Each refresh token works once and is replaced by the next one. Of concurrent uses of one
/// token exactly one wins; the others get 401. Presenting a token again after its successor
/// was issued revokes the whole chain (the token has leaked): log in again.
#[utoipa::path(
    post, path = "/admin/refresh", tag = "admin",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = LoginResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn refresh_tokens(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let RefreshForm { token } = body.try_into()?;
    let spent = match state
        .store
        .spend_refresh_token(&refresh::hash(&token), Utc::now())
        .await?
    {
        RefreshSpend::Fresh(spent) => spent,
        RefreshSpend::Reused(spent) => {
            tracing::warn!(admin_id = %spent.admin_id, "refresh token reused: revoking its chain");
            state.store.revoke_refresh_family(&spent.family_id).await?;
            return Err(ApiError::Unauthorized(BAD_REFRESH));
        }
        RefreshSpend::Contended | RefreshSpend::Invalid => {
            return Err(ApiError::Unauthorized(BAD_REFRESH))
        }
    };
    let admin = state
        .store
        .admin_by_id(&spent.admin_id)
        .await?
        .filter(|admin| admin.token_version == spent.token_version)
        .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    let org = state
        .store
        .organization_by_id(&admin.organization_id)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    issue_tokens(
        &state,
        &admin,
        &org,
        admin.token_version,
        Some(spent.family_id),
    )
    .await
}

/// Log out everywhere.
///
/// Every access token and refresh token of the calling admin stops working at once.
#[utoipa::path(
    post, path = "/admin/logout", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.admin.id))]
pub async fn logout_admin(
    State(state): State<AppState>,
    auth: AuthAdmin,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_sessions(&auth.admin.id).await?;
    tracing::info!("admin logged out");
    Ok(StatusCode::NO_CONTENT)
}

/// Change the admin's password.
///
/// Needs the current password. Every existing access and refresh token stops working; the
/// response carries fresh ones.
#[utoipa::path(
    put, path = "/admin/password", tag = "admin",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed; new tokens", body = LoginResponse),
        (status = 401, description = "Missing/invalid token or wrong current password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.admin.id))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: AuthAdmin,
    ValidJson(body): ValidJson<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    let PasswordChangeForm { current, new } = body.try_into()?;
    auth.reauthenticate(&state, None, &current).await?;
    let hash = state.hasher.hash(&new).await.map_err(ApiError::Internal)?;
    let version = state
        .store
        .change_password(&auth.admin.id, &hash)
        .await
        .map_err(|e| match e {
            crate::storage::StoreError::Gone => {
                ApiError::Unauthorized("Could not validate credentials")
            }
            other => other.into(),
        })?;
    tracing::info!("password changed; earlier tokens revoked");
    issue_tokens(&state, &auth.admin, &auth.organization, version, None).await
}
