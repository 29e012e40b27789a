//! The guard: `AuthAdmin` in a handler's signature means "a valid token of a live admin".
//!
//! A missing, malformed, forged or expired token is a 401 with `WWW-Authenticate: Bearer`. A
//! well-signed token is then checked against the store: its admin must still exist, still
//! belong to the token's organization (which must still exist), and still have the token's
//! version. So deleting an organization, its admin, or changing credentials kills tokens at
//! once, on every instance sharing the store.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::domain::{Admin, Organization};
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated admin and their organization.
#[derive(Debug, Clone)]
pub struct AuthAdmin {
    /// The admin the token was issued to.
    pub admin: Admin,
    /// That admin's organization.
    pub organization: Organization,
}

const INVALID: &str = "Could not validate credentials";

impl FromRequestParts<AppState> for AuthAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized("Not authenticated"))?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::Unauthorized(INVALID))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or(ApiError::Unauthorized(INVALID))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::Unauthorized(INVALID));
        }
        let claims = state
            .tokens
            .verify(token.trim())
            .map_err(|_| ApiError::Unauthorized(INVALID))?;
        let admin = state
            .store
            .admin_by_id(&claims.admin_id)
            .await?
            .ok_or(ApiError::Unauthorized(INVALID))?;
        if admin.organization_id != claims.organization_id || admin.token_version != claims.ver {
            return Err(ApiError::Unauthorized(INVALID));
        }
        let organization = state
            .store
            .organization_by_id(&admin.organization_id)
            .await?
            .ok_or(ApiError::Unauthorized(INVALID))?;
        Ok(Self {
            admin,
            organization,
        })
    }
}
