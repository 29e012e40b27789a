//! Where a request came from, for the audit log: the client address (as
//! [`crate::client_addr`] resolved it, through the trusted-proxy rule), the `User-Agent` and the
//! request id that [`tower_http::request_id`] set.

use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

use super::auth::client_ip;
use crate::domain::AuditContext;

/// The request's [`AuditContext`].
#[derive(Debug, Clone)]
pub struct RequestContext(pub AuditContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Ok(Self(AuditContext::new(
            client_ip(parts).to_string(),
            header(USER_AGENT.as_str()),
            header("x-request-id"),
        )))
    }
}
