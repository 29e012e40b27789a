//! `/org/api-keys*`: the organization's API keys, made, listed and revoked by its owners and
//! admins. A key authenticates only `/org/documents*` (see [`crate::extract::TenantCaller`]).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api_key_forms::KeyForm;
use super::{rfc3339, trail};
use crate::domain::{
    generate_key, key_expiry, new_id, Action, ApiKey, AuditAction, MemberRole, MAX_API_KEYS,
};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{AuthAdmin, RequestContext, ValidJson};
use crate::state::AppState;
use crate::storage::{StoreError, Taken};

/// `POST /org/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "nightly export", "role": "viewer", "expires_in_days": 90}))]
pub struct CreateKeyRequest {
    /// For people: 1 to 100 characters.
    #[schema(example = "nightly export")]
    pub name: String,
    /// `member` (reads and writes documents) or `viewer` (reads them).
    #[schema(example = "viewer")]
    pub role: String,
    /// Days the key works, 1 to 3650; absent: until revoked.
    #[schema(example = 90, minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

/// An API key (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The key's id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e5")]
    pub id: String,
    /// Its name.
    #[schema(example = "nightly export")]
    pub name: String,
    /// `member` or `viewer`.
    pub role: MemberRole,
    /// The visible part of the key (`osk_<prefix>_…`), to tell keys apart.
    #[schema(example = "3f9c0a7be21d4c58")]
    pub prefix: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub created_at: String,
    /// RFC 3339, UTC; null: works until revoked.
    #[schema(format = DateTime, example = "2027-02-28T09:15:00.000Z")]
    pub expires_at: Option<String>,
    /// Its last use, to within a minute; null before the first.
    #[schema(format = DateTime, example = "2026-11-30T10:02:00.000Z")]
    pub last_used_at: Option<String>,
    /// The account that made it (`admin_id`).
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub created_by: String,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role,
            prefix: k.prefix,
            created_at: rfc3339(k.created_at),
            expires_at: k.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            created_by: k.created_by,
        }
    }
}

/// A new key, with the key: shown here only, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The key's id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e5")]
    pub id: String,
    /// Its name.
    #[schema(example = "nightly export")]
    pub name: String,
    /// `member` or `viewer`.
    pub role: MemberRole,
    /// The visible part of the key.
    #[schema(example = "3f9c0a7be21d4c58")]
    pub prefix: String,
    /// The key: `osk_<prefix>_<secret>` (256 random bits of secret; the service keeps only its
    /// SHA-256). Send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`.
    #[schema(
        example = "osk_3f9c0a7be21d4c58_9b1e0c4d7a2f58e63c0d9a1b7e4f2c8d5a6b3e0f1c9d8a7b6e5f4c3d2a1b0c9d"
    )]
    pub key: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub created_at: String,
    /// RFC 3339, UTC; null: works until revoked.
    #[schema(format = DateTime, example = "2027-02-28T09:15:00.000Z")]
    pub expires_at: Option<String>,
    /// The account that made it (`admin_id`).
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub created_by: String,
}

/// The organization's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Oldest first (at most 100: an organization's quota).
    pub api_keys: Vec<ApiKeyView>,
}

/// Make an API key for the organization's documents.
///
/// Owners and admins. `role` is `member` (reads and writes documents) or `viewer` (reads);
/// a key cannot be an owner or admin (422). The key is in this response only. A key belongs
/// to the organization: it keeps working when its creator leaves, and dies with the
/// organization. An organization holds at most 100 keys (403 beyond).
#[utoipa::path(
    post, path = "/org/api-keys", tag = "api-keys",
    request_body = CreateKeyRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made; the key is shown this once", body = ApiKeyCreated),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this, the quota is reached, or an API key was sent", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid name, role or lifetime", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id))]
pub async fn create_api_key(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<CreateKeyRequest>,
) -> Result<Response, ApiError> {
    auth.require(Action::ManageApiKeys)?;
    let form = KeyForm::try_from(body)?;
    let now = Utc::now();
    // A prefix is 64 random bits: a second collision in a row means something else is wrong.
    for _ in 0..3 {
        let (secret_key, prefix, hash) = generate_key();
        let key = ApiKey {
            id: new_id(),
            organization_id: auth.organization.id.clone(),
            name: form.name.clone(),
            role: form.role,
            prefix,
            created_at: now,
            expires_at: key_expiry(now, form.days),
            created_by: auth.admin.id.clone(),
            last_used_at: None,
        };
        let event = trail::api_key(
            &auth.organization,
            AuditAction::ApiKeyCreated,
            trail::caller(&auth),
            &context,
            &key,
        );
        match state
            .store
            .create_api_key(&key, &hash, MAX_API_KEYS, &[event])
            .await
        {
            Ok(()) => {
                tracing::info!(key_id = %key.id, role = key.role.as_str(), "API key made");
                return Ok(created(key, secret_key));
            }
            Err(StoreError::Conflict(Taken::KeyPrefix)) => continue,
            Err(StoreError::Gone) => {
                return Err(ApiError::Unauthorized("Could not validate credentials"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict(Taken::KeyPrefix).into())
}

fn created(key: ApiKey, secret_key: String) -> Response {
    let body = ApiKeyCreated {
        key: secret_key,
        id: key.id,
        name: key.name,
        role: key.role,
        prefix: key.prefix,
        created_at: rfc3339(key.created_at),
        expires_at: key.expires_at.map(rfc3339),
        created_by: key.created_by,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// List the organization's API keys.
///
/// Owners and admins. Never the keys themselves: their prefixes, roles, expiry and last use
/// (to within a minute).
#[utoipa::path(
    get, path = "/org/api-keys", tag = "api-keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys, oldest first", body = ApiKeyList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this, or an API key was sent", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    auth: AuthAdmin,
) -> Result<Json<ApiKeyList>, ApiError> {
    auth.require(Action::ManageApiKeys)?;
    let keys = state.store.list_api_keys(&auth.organization.id).await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// Revoke an API key.
///
/// Owners and admins. The key stops working at the next request, on every instance.
#[utoipa::path(
    delete, path = "/org/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id", example = "65a1b2c3d4e5f6a7b8c9d0e5")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this, or an API key was sent", body = ErrorBody),
        (status = 404, description = "No such key in this organization", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id, key_id = %id))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(Action::ManageApiKeys)?;
    let org = &auth.organization;
    // The key's record names it in the event; an unknown id is a 404 below either way.
    let events: Vec<_> = state
        .store
        .list_api_keys(&org.id)
        .await?
        .into_iter()
        .filter(|k| k.id == id)
        .map(|k| {
            trail::api_key(
                org,
                AuditAction::ApiKeyRevoked,
                trail::caller(&auth),
                &context,
                &k,
            )
        })
        .collect();
    if state.store.revoke_api_key(&org.id, &id, &events).await? {
        tracing::info!("API key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("API key not found".into()))
    }
}
