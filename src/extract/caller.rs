//! The guard of `/org/documents*`: a person's token ([`AuthAdmin`]) or an API key of the
//! organization, each with its role.
//!
//! A key comes as `X-API-Key: osk_…` or `Authorization: Bearer osk_…` (`X-API-Key` wins when
//! both are sent). It is checked in this order, so that each refusal costs as little as it
//! can and reveals nothing:
//!
//! 1. its shape ([`PresentedKey::parse`]): a malformed key is a 401 before any store read;
//! 2. the address's failed guesses ([`crate::auth::key_guard`]): past the limit, a 429;
//! 3. one keyed read by prefix, and the hash compared in constant time: unknown or wrong is a
//!    401 and a failure of the address;
//! 4. its expiry, then its organization (read on every request, like a token's: a deleted
//!    organization's keys die at once on every instance);
//! 5. its use, written at most once a minute ([`crate::auth::key_guard::KeyGuard::claim_touch`]).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use chrono::Utc;

use super::auth::client_ip;
use super::AuthAdmin;
use crate::domain::{looks_like_key, Action, MemberRole, Organization, PresentedKey};
use crate::error::ApiError;
use crate::state::AppState;

/// The header an API key may come in (besides `Authorization: Bearer`).
pub const API_KEY_HEADER: &str = "x-api-key";

const INVALID_KEY: &str = "Invalid API key";

/// Who is acting on the organization's documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, by account id.
    Account(String),
    /// A machine, by API key id.
    ApiKey(String),
}

/// The caller of a documents route: its organization and its role there.
#[derive(Debug, Clone)]
pub struct TenantCaller {
    /// The organization of the token or key.
    pub organization: Organization,
    /// The member's role as stored now, or the key's role.
    pub role: MemberRole,
    /// Who it is.
    pub actor: Actor,
}

impl TenantCaller {
    /// 403 unless the caller's role may do `action` (the role table).
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        super::auth::require_role(self.role, action)
    }
}

/// The API key the request presents, if it presents one, well-formed or not: `X-API-Key`
/// (its value, or "" when it is not text), else a bearer credential that starts like a key.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(API_KEY_HEADER) {
        return Some(value.to_str().unwrap_or_default().trim());
    }
    let (scheme, credential) = headers.get(AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && looks_like_key(credential)).then_some(credential)
}

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(raw) = presented_key(&parts.headers) else {
            let auth = AuthAdmin::from_request_parts(parts, state).await?;
            return Ok(Self {
                organization: auth.organization,
                role: auth.role,
                actor: Actor::Account(auth.admin.id),
            });
        };
        let presented = PresentedKey::parse(raw).ok_or(ApiError::Unauthorized(INVALID_KEY))?;
        let client = client_ip(parts);
        let now = Utc::now();
        if let Some(retry_after) = state.keys.refused(client, now) {
            metrics::counter!("api_key_throttled_total").increment(1);
            return Err(ApiError::TooManyRequests { retry_after });
        }
        let found = state
            .store
            .api_key_by_prefix(presented.prefix)
            .await?
            .filter(|stored| stored.matches(&presented));
        let Some(stored) = found else {
            state.keys.failed(client, now);
            metrics::counter!("api_key_failures_total").increment(1);
            return Err(ApiError::Unauthorized(INVALID_KEY));
        };
        let key = stored.key;
        if !key.is_live(now) {
            return Err(ApiError::Unauthorized("API key expired"));
        }
        let organization = state
            .store
            .organization_by_id(&key.organization_id)
            .await?
            .ok_or(ApiError::Unauthorized(INVALID_KEY))?;
        if state.keys.claim_touch(&key, now) {
            // The request does not depend on it: a failed write only leaves the time older.
            if let Err(e) = state.store.touch_api_key(&key.id, now).await {
                tracing::warn!(error = %e, key_id = %key.id, "could not record the key's use");
            }
        }
        Ok(Self {
            organization,
            role: key.role,
            actor: Actor::ApiKey(key.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn a_key_comes_in_x_api_key_or_as_a_bearer_that_starts_like_one() {
        assert_eq!(presented_key(&headers(&[])), None);
        assert_eq!(
            presented_key(&headers(&[("x-api-key", b" osk_a ")])),
            Some("osk_a")
        );
        // Whatever X-API-Key holds is meant as a key (a malformed one is refused as such).
        assert_eq!(
            presented_key(&headers(&[("x-api-key", b"eyJ")])),
            Some("eyJ")
        );
        assert_eq!(presented_key(&headers(&[("x-api-key", b"\xff")])), Some(""));
        assert_eq!(
            presented_key(&headers(&[("authorization", b"Bearer osk_b")])),
            Some("osk_b")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", b"bearer  osk_b ")])),
            Some("osk_b")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", b"Bearer eyJhbGci")])),
            None
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", b"Basic osk_b")])),
            None
        );
        assert_eq!(
            presented_key(&headers(&[
                ("authorization", b"Bearer osk_b"),
                ("x-api-key", b"osk_a")
            ])),
            Some("osk_a")
        );
    }
}
