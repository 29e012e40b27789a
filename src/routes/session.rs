//! What a login, refresh, password change or accepted invitation hands out: an access token
//! for one account in one organization, the next refresh token, and the account's list of
//! organizations.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::refresh;
use crate::domain::{Account, MemberRole, Membership, NewEvent, Organization};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::RefreshToken;

/// The 401 of a refresh token that does not work.
pub const BAD_REFRESH: &str = "Invalid refresh token";

/// One of the account's organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    /// The organization's id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e1")]
    pub organization_id: String,
    /// Its name.
    #[schema(example = "Acme Corp")]
    pub organization_name: String,
    /// The account's role there.
    pub role: MemberRole,
}

impl From<Membership> for MembershipView {
    fn from(m: Membership) -> Self {
        Self {
            organization_id: m.organization_id,
            organization_name: m.organization_name,
            role: m.role,
        }
    }
}

/// A successful login (or refresh, or password change).
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token for guarded endpoints.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// The account's id.
    pub admin_id: String,
    /// The organization this token is for.
    pub organization_id: String,
    /// Its name.
    pub organization_name: String,
    /// The account's role there (for display: the server checks the stored role on every
    /// request).
    pub role: MemberRole,
    /// Every organization the account belongs to, oldest membership first.
    pub organizations: Vec<MembershipView>,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single-use token for `POST /admin/refresh`.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// Issues an access token and the next refresh token of `family` (a new family if `None`).
pub async fn issue_tokens(
    state: &AppState,
    admin: &Account,
    org: &Organization,
    role: MemberRole,
    version: i64,
    family: Option<String>,
    events: &[NewEvent],
) -> Result<Response, ApiError> {
    let organizations = state
        .store
        .memberships_of(&admin.id)
        .await?
        .into_iter()
        .map(MembershipView::from)
        .collect();
    let access_token = state
        .tokens
        .issue(&admin.id, &org.id, version, role.as_str())
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (refresh_token, hash) = refresh::generate();
    let ttl = state.config.auth.refresh_token_ttl;
    state
        .store
        .insert_refresh_token(
            &RefreshToken {
                hash,
                admin_id: admin.id.clone(),
                organization_id: org.id.clone(),
                family_id: family.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                token_version: version,
                expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
            },
            events,
        )
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
        role,
        organizations,
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
