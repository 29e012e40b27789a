//! `/admin/*`: log in, refresh, log out, change the password.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::forms::{LoginForm, PasswordChangeForm, RefreshForm};
use super::session::{issue_tokens, LoginResponse, BAD_REFRESH};
use super::trail;
use crate::auth::refresh;
use crate::domain::{pick_membership, Account, AuditAction, LoginPassword};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{AuthAdmin, Client, RequestContext, ValidJson};
use crate::state::AppState;
use crate::storage::RefreshSpend;

/// Body of `POST /admin/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The admin's email (any case).
    #[schema(example = "admin@acme.com", format = Email, max_length = 254)]
    pub email: String,
    /// The admin's password.
    #[schema(example = "SecurePass123!", format = Password, min_length = 1, max_length = 72, pattern = r"^[^\x00]*$")]
    pub password: String,
    /// For an account in several organizations: which one to log in to (any spelling with
    /// the same slug). Absent: the one it joined first. One it is not in: 401, as for a wrong
    /// password.
    #[schema(example = "Acme Corp", min_length = 1, max_length = 100)]
    #[serde(default)]
    pub organization_name: Option<String>,
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

/// Log in to one of the account's organizations.
///
/// The token is for one organization: the named one, or the one the account joined first. The
/// response lists all of the account's organizations with its role in each.
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
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let LoginForm {
        email,
        password,
        organization,
    } = body.try_into()?;
    state
        .throttle
        .attempt(state.store.as_ref(), email.as_str(), client.0)
        .await?;
    let admin = state.store.account_by_email(email.as_str()).await?;
    let verified = state
        .hasher
        .verify(&password, admin.as_ref().map(|a| a.password_hash.as_str()))
        .await
        .map_err(ApiError::Internal)?;
    let Some(admin) = admin else {
        metrics::counter!("login_failures_total").increment(1);
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    let memberships = state.store.memberships_of(&admin.id).await?;
    let failed = |reason: &str| {
        trail::account(
            &memberships,
            AuditAction::LoginFailed,
            (&admin.id, &admin.email),
            &context,
            json!({ "reason": reason }),
        )
    };
    if !verified {
        metrics::counter!("login_failures_total").increment(1);
        state.store.record_events(&failed("wrong_password")).await?;
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    }
    let Some(membership) = pick_membership(&memberships, organization.as_ref()) else {
        // Not in the named organization (or in none): the same answer as a wrong password, so
        // a login does not reveal which organizations an account belongs to.
        metrics::counter!("login_failures_total").increment(1);
        state.store.record_events(&failed("not_a_member")).await?;
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    let org = state
        .store
        .organization_by_id(&membership.organization_id)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_CREDENTIALS))?;
    state
        .throttle
        .succeeded(state.store.as_ref(), email.as_str(), client.0)
        .await?;
    if state.hasher.needs_rehash(&admin.password_hash) {
        upgrade_hash(&state, &admin, &password).await;
    }
    tracing::info!(admin_id = %admin.id, organization_id = %org.id, "logged in");
    let succeeded = trail::account(
        &memberships,
        AuditAction::LoginSucceeded,
        (&admin.id, &admin.email),
        &context,
        json!({ "organization_id": org.id }),
    );
    issue_tokens(
        &state,
        &admin,
        &org,
        membership.role,
        admin.token_version,
        None,
        &succeeded,
    )
    .await
}

/// Re-hashes a password that was hashed at another `BCRYPT_COST` (best effort: the login has
/// succeeded either way, and the next one tries again).
async fn upgrade_hash(state: &AppState, admin: &Account, password: &LoginPassword) {
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
    RequestContext(context): RequestContext,
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
            let events = match state.store.account_by_id(&spent.admin_id).await? {
                Some(account) => trail::account(
                    &state.store.memberships_of(&account.id).await?,
                    AuditAction::RefreshReuseDetected,
                    (&account.id, &account.email),
                    &context,
                    json!({ "organization_id": spent.organization_id }),
                ),
                None => Vec::new(),
            };
            state
                .store
                .revoke_refresh_family(&spent.family_id, &events)
                .await?;
            return Err(ApiError::Unauthorized(BAD_REFRESH));
        }
        RefreshSpend::Contended | RefreshSpend::Invalid => {
            return Err(ApiError::Unauthorized(BAD_REFRESH))
        }
    };
    let admin = state
        .store
        .account_by_id(&spent.admin_id)
        .await?
        .filter(|admin| admin.token_version == spent.token_version)
        .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    // Still a member (with the role it has now), of an organization that still exists.
    let member = state
        .store
        .member(&spent.organization_id, &admin.id)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    let org = state
        .store
        .organization_by_id(&spent.organization_id)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    issue_tokens(
        &state,
        &admin,
        &org,
        member.role,
        admin.token_version,
        Some(spent.family_id),
        &[],
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
    RequestContext(context): RequestContext,
) -> Result<StatusCode, ApiError> {
    let events = trail::account(
        &state.store.memberships_of(&auth.admin.id).await?,
        AuditAction::SessionsRevoked,
        (&auth.admin.id, &auth.admin.email),
        &context,
        json!({}),
    );
    state.store.revoke_sessions(&auth.admin.id, &events).await?;
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
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    let PasswordChangeForm { current, new } = body.try_into()?;
    auth.reauthenticate(&state, None, &current).await?;
    let hash = state.hasher.hash(&new).await.map_err(ApiError::Internal)?;
    let events = trail::account(
        &state.store.memberships_of(&auth.admin.id).await?,
        AuditAction::PasswordChanged,
        (&auth.admin.id, &auth.admin.email),
        &context,
        json!({}),
    );
    let version = state
        .store
        .change_password(&auth.admin.id, &hash, &events)
        .await
        .map_err(|e| match e {
            crate::storage::StoreError::Gone => {
                ApiError::Unauthorized("Could not validate credentials")
            }
            other => other.into(),
        })?;
    tracing::info!("password changed; earlier tokens revoked");
    issue_tokens(
        &state,
        &auth.admin,
        &auth.organization,
        auth.role,
        version,
        None,
        &[],
    )
    .await
}
