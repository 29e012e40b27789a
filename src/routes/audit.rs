//! `/org/audit*`: the organization's audit log, for its owners and admins: a filtered list
//! (newest first), a streamed NDJSON export (oldest first), and a check of the hash chain.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::audit_forms::{cursor_of, AuditExportQuery, AuditListQuery};
use crate::audit_log::{ndjson, verify_chain};
use crate::domain::{Action, TimeRange, Verification};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{AuthAdmin, ValidQuery};
use crate::state::AppState;
use crate::storage::AuditQuery;

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first. Each is `{id, sequence, organization_id, action, occurred_at, actor:
    /// {type, id, email?}, target: {type, id, name?}, context: {ip, user_agent, request_id},
    /// details, prev_hash, hash}`.
    #[schema(value_type = Vec<Object>, example = json!([{
        "id": "65a1b2c3d4e5f6a7b8c9d0f1", "sequence": 2, "organization_id": "65a1b2c3d4e5f6a7b8c9d0e1",
        "action": "member.invited", "occurred_at": "2026-11-30T09:20:00.000Z",
        "actor": {"type": "account", "id": "65a1b2c3d4e5f6a7b8c9d0e2", "email": "admin@acme.com"},
        "target": {"type": "invitation", "id": "65a1b2c3d4e5f6a7b8c9d0e3", "name": "bo@acme.com"},
        "context": {"ip": "203.0.113.7", "user_agent": "curl/8.5.0", "request_id": "3f2b8c1e-9d4a-4c6b-8e2f-1a7d5c9b0e4f"},
        "details": {"role": "member"},
        "prev_hash": "9c1f…", "hash": "4be0…"
    }]))]
    pub events: Vec<Value>,
    /// Pass as `cursor` for older events; null on the last page.
    pub next_cursor: Option<String>,
}

fn parsed(json: &str) -> Result<Value, ApiError> {
    serde_json::from_str(json)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a stored audit event is not JSON: {e}")))
}

/// The organization's audit log, newest first.
///
/// Owners and admins. Filters: `action`, `actor_id`, `since` (inclusive) and `until`
/// (exclusive, RFC 3339). Paged by an opaque cursor.
#[utoipa::path(
    get, path = "/org/audit", tag = "audit",
    params(AuditListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = AuditPage),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this, or an API key was sent", body = ErrorBody),
        (status = 422, description = "Invalid action, time, limit or cursor", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    auth: AuthAdmin,
    ValidQuery(query): ValidQuery<AuditListQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    auth.require(Action::ReadAudit)?;
    let query = AuditQuery::try_from(query)?;
    let limit = query.limit as usize;
    let mut found = state
        .store
        .list_events(
            &auth.organization.id,
            &AuditQuery {
                limit: query.limit + 1,
                ..query
            },
        )
        .await?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next_cursor = more
        .then(|| found.last().map(|e| cursor_of(e.sequence)))
        .flatten();
    Ok(Json(AuditPage {
        events: found
            .iter()
            .map(|e| parsed(&e.json))
            .collect::<Result<_, _>>()?,
        next_cursor,
    }))
}

/// Export the organization's audit log as NDJSON, oldest first.
///
/// Owners and admins. One event per line, exactly as stored and hashed, streamed (any size).
/// `since` (inclusive) and `until` (exclusive) narrow it to a time range.
#[utoipa::path(
    get, path = "/org/audit/export", tag = "audit",
    params(AuditExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The events, one JSON object per line", content_type = "application/x-ndjson", body = String),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this, or an API key was sent", body = ErrorBody),
        (status = 422, description = "Invalid time", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn export_audit(
    State(state): State<AppState>,
    auth: AuthAdmin,
    ValidQuery(query): ValidQuery<AuditExportQuery>,
) -> Result<Response, ApiError> {
    auth.require(Action::ReadAudit)?;
    let range = TimeRange::try_from(query)?;
    let stream = ndjson(
        Arc::clone(&state.store),
        auth.organization.id.clone(),
        range,
    );
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Check the audit log's hash chain.
///
/// Owners and admins. Reads every event and checks its place, its link to the one before and
/// its hash. `ok: false` names the first event that is not what the chain says. Record `head`
/// elsewhere: a chain rewritten from some event on would verify again, but not to that head.
#[utoipa::path(
    get, path = "/org/audit/verify", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The result", body = Verification, example = json!({
            "ok": true, "events_checked": 42,
            "head": {"sequence": 42, "hash": "4be0c0b3a9f1e2d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3"},
            "first_bad_sequence": null
        })),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this, or an API key was sent", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn verify_audit(
    State(state): State<AppState>,
    auth: AuthAdmin,
) -> Result<Json<Verification>, ApiError> {
    auth.require(Action::ReadAudit)?;
    Ok(Json(
        verify_chain(state.store.as_ref(), &auth.organization.id).await?,
    ))
}
