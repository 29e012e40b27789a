//! The API's one error type: every status the service answers with is decided in
//! [`ApiError::into_response`], and every body has the FastAPI envelope clients already parse:
//! `{"detail": "message"}`, or for 422 `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`.
//!
//! There is deliberately no blanket `From<anyhow::Error>`: a fallible call must say which
//! variant its failure is, so a new error cannot silently turn into a 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::Refusal;
use crate::storage::{Limit, StoreError, Taken};

/// The 403 of the role table.
pub const FORBIDDEN_BY_ROLE: &str = "Your role in this organization does not allow this";

/// One element of an error location: a field name or a position (FastAPI's `str | int`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    /// A field or origin name (`body`, `query`, `email`).
    Name(String),
    /// A character position (malformed JSON) or array index.
    Index(u64),
}

/// One field that failed validation (FastAPI's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where: `["body", "organization_name"]`, `["query", "organization_name"]`, `["body", 12]`.
    #[schema(value_type = Vec<LocItem>)]
    pub loc: Vec<serde_json::Value>,
    /// What rule was broken.
    pub msg: String,
    /// Machine-readable kind, e.g. `missing`, `string_too_long`, `value_error`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// A field error at `loc`.
    pub fn new(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|s| json!(s)).collect(),
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

/// Body of every non-422 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable message.
    pub detail: String,
}

/// Body of a 422.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    /// Every field that failed.
    pub detail: Vec<FieldError>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request was well-formed JSON but a field broke a rule.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 401 with `WWW-Authenticate: Bearer`: missing/invalid token or wrong credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: a valid token, but not for this organization.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a unique value is taken, or the change would leave no owner.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410: an invitation token that worked once and no longer does.
    #[error("gone: {0}")]
    Gone(&'static str),
    /// 412: `If-Match` names another version than the current one.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: body over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// 503: the store cannot be reached (or the request ran out of time waiting for it).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: logged in full, answered with a fixed text.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// The status each variant answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A 422 for one field.
    pub fn field(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(loc, kind, msg)])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Taken::Name) => {
                Self::Conflict("An organization with this name already exists".into())
            }
            StoreError::Conflict(Taken::Email) => {
                Self::Conflict("An admin with this email already exists".into())
            }
            StoreError::Conflict(Taken::Member) => {
                Self::Conflict("This email is already a member of the organization".into())
            }
            StoreError::Conflict(Taken::Invitation) => Self::Conflict(
                "This email already has a pending invitation to the organization".into(),
            ),
            // Routes make another key; reaching a client means it happened again and again.
            StoreError::Conflict(Taken::KeyPrefix) => {
                Self::Conflict("Could not make a unique API key; try again".into())
            }
            StoreError::Rule(Refusal::Forbidden) => Self::Forbidden(FORBIDDEN_BY_ROLE),
            StoreError::Rule(Refusal::LastOwner) => Self::Conflict(
                "The organization's only owner cannot be removed, demoted or leave; make another owner first, or delete the organization".into(),
            ),
            StoreError::Ended(end) => Self::Gone(end.detail()),
            StoreError::Quota(Limit::Documents) => Self::Forbidden(
                "The organization's document quota (TENANT_MAX_DOCUMENTS) is reached",
            ),
            StoreError::Quota(Limit::ApiKeys) => Self::Forbidden(
                "The organization's API key quota (100 keys) is reached; revoke one first",
            ),
            StoreError::Precondition => Self::PreconditionFailed,
            StoreError::Unstorable(why) => Self::field(
                &["body"],
                "value_error",
                format!("The store cannot hold this document: {why}"),
            ),
            StoreError::Gone => Self::NotFound("Organization not found".into()),
            StoreError::Revoked => Self::Unauthorized("Could not validate credentials"),
            // Waited for a concurrent change of the same organization and gave up: a 503 with
            // Retry-After (documented everywhere), not an undocumented 409.
            StoreError::Busy => {
                Self::Unavailable("another change to this organization is in progress".into())
            }
            StoreError::Unavailable(msg) => Self::Unavailable(msg),
            // A store in a state it refuses to serve from is a deployment fault: logged, 500.
            StoreError::Refused(msg) | StoreError::Backend(msg) => {
                Self::Internal(anyhow::anyhow!(msg))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Validation(errors) => {
                return (status, Json(json!({ "detail": errors }))).into_response();
            }
            Self::Unauthorized(msg) | Self::Forbidden(msg) | Self::Gone(msg) => (*msg).to_owned(),
            Self::NotFound(msg) | Self::Conflict(msg) => msg.clone(),
            Self::PayloadTooLarge => "Request body is too large".to_owned(),
            Self::PreconditionFailed => {
                "If-Match does not match the document's current version".to_owned()
            }
            Self::UnsupportedMediaType => "Content-Type must be application/json".to_owned(),
            Self::TooManyRequests { .. } => "Too many requests; try again later".to_owned(),
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                "Service temporarily unavailable".to_owned()
            }
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "internal server error".to_owned()
            }
        };
        let mut response = (status, Json(ErrorBody { detail })).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after.max(&1)));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_status() {
        let cases = [
            (ApiError::Validation(vec![]), 422),
            (ApiError::Unauthorized("x"), 401),
            (ApiError::Forbidden("x"), 403),
            (ApiError::NotFound("x".into()), 404),
            (ApiError::Conflict("x".into()), 409),
            (ApiError::Gone("x"), 410),
            (ApiError::PreconditionFailed, 412),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::UnsupportedMediaType, 415),
            (ApiError::TooManyRequests { retry_after: 3 }, 429),
            (ApiError::Unavailable("x".into()), 503),
            (ApiError::Internal(anyhow::anyhow!("x")), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.into_response().status().as_u16(), status);
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let r = ApiError::Internal(anyhow::anyhow!("secret table name")).into_response();
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1024)).unwrap();
        assert_eq!(&body[..], br#"{"detail":"internal server error"}"#);
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let r = ApiError::Unauthorized("x").into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn waits_are_stated_exactly() {
        let r = ApiError::Unavailable("store down".into()).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
        let r = ApiError::TooManyRequests { retry_after: 17 }.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "17");
        // Never "retry after 0 seconds".
        let r = ApiError::TooManyRequests { retry_after: 0 }.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        for other in [
            ApiError::Unauthorized("x"),
            ApiError::Conflict("x".into()),
            ApiError::Internal(anyhow::anyhow!("x")),
        ] {
            assert!(other
                .into_response()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none());
        }
    }
}
