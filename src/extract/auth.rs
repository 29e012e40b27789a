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

use std::net::{IpAddr, Ipv4Addr};

use crate::client_addr::ClientAddr;
use crate::domain::{Admin, Email, LoginPassword, Organization};
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated admin and their organization.
#[derive(Debug, Clone)]
pub struct AuthAdmin {
    /// The admin the token was issued to.
    pub admin: Admin,
    /// That admin's organization.
    pub organization: Organization,
    /// The client's address (for the login throttle of a re-authentication).
    pub client: IpAddr,
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
            client: client_ip(parts),
        })
    }
}

impl AuthAdmin {
    /// Re-authentication before a sensitive change (rename, password change): counts an
    /// attempt against the admin's login throttle, then checks the password and, when the
    /// request names one, that the email is this admin's. A failure is a 401.
    pub async fn reauthenticate(
        &self,
        state: &AppState,
        email: Option<&Email>,
        password: &LoginPassword,
    ) -> Result<(), ApiError> {
        let store = state.store.as_ref();
        state
            .throttle
            .attempt(store, &self.admin.email, self.client)
            .await?;
        let same_admin = email.is_none_or(|e| e.as_str() == self.admin.email);
        let verified = state
            .hasher
            .verify(password, Some(&self.admin.password_hash))
            .await
            .map_err(ApiError::Internal)?;
        if !(same_admin && verified) {
            metrics::counter!("login_failures_total").increment(1);
            return Err(ApiError::Unauthorized(if email.is_some() {
                "Incorrect email or password"
            } else {
                "Incorrect password"
            }));
        }
        state
            .throttle
            .succeeded(store, &self.admin.email, self.client)
            .await
    }
}

/// The request's client address, as [`crate::client_addr`] resolved it (unspecified when the
/// request came without one, as in-process tests do).
pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ClientAddr(ip)| *ip)
}

/// The client's address as an extractor (for the login throttle).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(parts)))
    }
}
