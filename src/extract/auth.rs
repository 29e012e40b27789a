//! The guard: `AuthAdmin` in a handler's signature means "a valid token of a live account that
//! is a member of the token's organization", with the member's role as the store has it now.
//!
//! A missing, malformed, forged or expired token is a 401 with `WWW-Authenticate: Bearer`. A
//! well-signed token is then checked against the store: its account must still exist with the
//! token's version, and still be a member of the token's organization (which must still
//! exist). The role in the token is for clients to read; the guard never trusts it, so a role
//! change or a removal takes effect on the next request, on every instance sharing the store.
//! An API key is a 403 here: keys are for the documents routes (`caller.rs`), nothing else.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use std::net::{IpAddr, Ipv4Addr};

use crate::auth::jwt::Claims;
use crate::client_addr::ClientAddr;
use crate::domain::{Account, Action, Email, LoginPassword, MemberRole, Organization};
use crate::error::ApiError;
use crate::error::FORBIDDEN_BY_ROLE;
use crate::state::AppState;

/// The authenticated account, the organization of its token and its role there.
#[derive(Debug, Clone)]
pub struct AuthAdmin {
    /// The account the token was issued to.
    pub admin: Account,
    /// The token's organization.
    pub organization: Organization,
    /// The account's role there, as stored now.
    pub role: MemberRole,
    /// The client's address (for the login throttle of a re-authentication).
    pub client: IpAddr,
}

const INVALID: &str = "Could not validate credentials";
const KEYS_ON_DOCUMENTS_ONLY: &str =
    "API keys are accepted on /org/documents only; this route needs a person's access token";

impl FromRequestParts<AppState> for AuthAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Keys work on the documents routes only (`TenantCaller`), whatever else is sent.
        if super::caller::presented_key(&parts.headers).is_some() {
            return Err(ApiError::Forbidden(KEYS_ON_DOCUMENTS_ONLY));
        }
        let claims = bearer_claims(&parts.headers, state)?;
        let admin = state
            .store
            .account_by_id(&claims.admin_id)
            .await?
            .filter(|a| a.token_version == claims.ver)
            .ok_or(ApiError::Unauthorized(INVALID))?;
        let member = state
            .store
            .member(&claims.organization_id, &admin.id)
            .await?
            .ok_or(ApiError::Unauthorized(INVALID))?;
        let organization = state
            .store
            .organization_by_id(&claims.organization_id)
            .await?
            .ok_or(ApiError::Unauthorized(INVALID))?;
        Ok(Self {
            admin,
            organization,
            role: member.role,
            client: client_ip(parts),
        })
    }
}

/// The verified claims of the request's bearer token: 401 when it is missing, malformed,
/// forged or expired. Nothing is read from the store.
fn bearer_claims(headers: &HeaderMap, state: &AppState) -> Result<Claims, ApiError> {
    let header = headers
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
    state
        .tokens
        .verify(token.trim())
        .map_err(|_| ApiError::Unauthorized(INVALID))
}

/// The account whose live token the request carries, if it carries one: for `POST
/// /org/create` by an existing account, where a token is optional and no token, or a dead one,
/// is simply not that account's.
pub async fn token_account(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<Account>, ApiError> {
    let Ok(claims) = bearer_claims(headers, state) else {
        return Ok(None);
    };
    Ok(state
        .store
        .account_by_id(&claims.admin_id)
        .await?
        .filter(|a| a.token_version == claims.ver))
}

impl AuthAdmin {
    /// 403 unless the caller's role may do `action` (the role table).
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        require_role(self.role, action)
    }

    /// Re-authentication before a sensitive change (rename, password change): counts an
    /// attempt against the admin's login throttle, then checks the password and, when the
    /// request names one, that the email is this admin's. A failure is a 401.
    pub async fn reauthenticate(
        &self,
        state: &AppState,
        email: Option<&Email>,
        password: &LoginPassword,
    ) -> Result<(), ApiError> {
        reauthenticate(state, &self.admin, self.client, email, password).await
    }
}

/// 403 unless `role` may do `action` (the role table).
pub(super) fn require_role(role: MemberRole, action: Action) -> Result<(), ApiError> {
    if role.may(action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(FORBIDDEN_BY_ROLE))
    }
}

/// Re-authentication of `account` (see [`AuthAdmin::reauthenticate`]), also for requests that
/// carry the account's token without needing a membership (creating a further organization).
pub async fn reauthenticate(
    state: &AppState,
    account: &Account,
    client: IpAddr,
    email: Option<&Email>,
    password: &LoginPassword,
) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    state
        .throttle
        .attempt(store, &account.email, client)
        .await?;
    let same_admin = email.is_none_or(|e| e.as_str() == account.email);
    let verified = state
        .hasher
        .verify(password, Some(&account.password_hash))
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
        .succeeded(store, &account.email, client)
        .await
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
