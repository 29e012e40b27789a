//! `/org/documents*`: the organization's own documents. Every route acts on the organization of
//! the token or API key; no input names another organization's collection.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::document_forms::{etag, parse_filter, CountQuery, IfMatch, ListForm, ListQuery};
use super::rfc3339;
use crate::domain::{merge_patch, new_id, Action, DocumentBody, StoredDocument};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{TenantCaller, ValidJson, ValidQuery};
use crate::state::AppState;
use crate::storage::StoreError;

/// A document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    /// Assigned by the service; ids sort by creation time.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e4")]
    pub id: String,
    /// 1 when created, one more at each write; also the `ETag` (`"1"`).
    #[schema(example = 1)]
    pub version: i64,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub created_at: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub updated_at: String,
    /// The document.
    #[schema(value_type = Object, example = json!({"title": "First", "status": "open", "owner": {"id": 7}}))]
    pub data: Map<String, Value>,
}

impl From<StoredDocument> for DocumentView {
    fn from(d: StoredDocument) -> Self {
        Self {
            id: d.id,
            version: d.version,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            data: d.data,
        }
    }
}

/// A page of documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentPage {
    /// Oldest first.
    pub documents: Vec<DocumentView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// How many documents match.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentCount {
    /// The number.
    #[schema(example = 42)]
    pub count: u64,
}

/// A document body as the request has it: any JSON object (documented by example).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(value_type = Object, example = json!({"title": "First", "status": "open", "owner": {"id": 7}}))]
pub struct DocumentInput(pub Map<String, Value>);

const NO_DOCUMENT: &str = "Document not found";

fn with_etag(status: StatusCode, doc: StoredDocument) -> Response {
    let tag = etag(doc.version);
    let mut response = (status, Json(DocumentView::from(doc))).into_response();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn body_rules(state: &AppState, data: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    DocumentBody::parse(Value::Object(data), state.config.tenant.max_document_bytes)
        .map(DocumentBody::into_map)
        .map_err(|e| ApiError::field(&["body"], e.kind, e.message))
}

fn if_match(headers: &HeaderMap) -> Option<IfMatch> {
    IfMatch::parse(
        headers
            .get(header::IF_MATCH)
            .map(|v| v.to_str().unwrap_or("\"invalid\"")),
    )
}

/// A write conditioned on the version read just before (and on `If-Match`, if given): a lost
/// race is a 412 under a specific `If-Match`, and otherwise read again and retried.
async fn write(
    state: &AppState,
    caller: &TenantCaller,
    id: &str,
    condition: Option<IfMatch>,
    next: impl Fn(StoredDocument) -> Result<Option<Map<String, Value>>, ApiError>,
) -> Result<Option<StoredDocument>, ApiError> {
    let org = &caller.organization;
    for attempt in 0..16_u64 {
        if attempt > 0 {
            // Lost a race without If-Match: let the winner finish, then read again.
            tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
        }
        let current = state
            .store
            .get_document(org, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(NO_DOCUMENT.into()))?;
        if condition
            .as_ref()
            .is_some_and(|c| !c.matches(current.version))
        {
            return Err(ApiError::PreconditionFailed);
        }
        let version = current.version;
        let data = next(current)?;
        match state
            .store
            .write_document(org, id, version, data.as_ref(), Utc::now())
            .await
        {
            Ok(written) => return Ok(written),
            Err(StoreError::Precondition)
                if condition.as_ref().is_some_and(IfMatch::is_specific) =>
            {
                return Err(ApiError::PreconditionFailed)
            }
            Err(StoreError::Precondition) => continue,
            Err(StoreError::Gone) => return Err(ApiError::NotFound(NO_DOCUMENT.into())),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(
        "the document keeps changing; retry".into(),
    ))
}

/// Store a document.
///
/// Owners, admins and members. The body is the document: a JSON object of at most
/// `MAX_DOCUMENT_BYTES` (as compact JSON), nested at most 32 levels, with no key starting with
/// `$` or containing `.` or NUL. Answers with the stored document and `ETag: "1"`.
#[utoipa::path(
    post, path = "/org/documents", tag = "documents",
    request_body(content = DocumentInput, example = json!({"title": "First", "status": "open", "owner": {"id": 7}})),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Stored", body = DocumentView, headers(("ETag" = String, description = "The version, quoted"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not write, or the quota is reached", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Not an object, too large, too deep, or a forbidden key", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn create_document(
    State(state): State<AppState>,
    caller: TenantCaller,
    ValidJson(body): ValidJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    caller.require(Action::WriteDocuments)?;
    let data = body_rules(&state, body)?;
    let doc = state
        .store
        .insert_document(
            &caller.organization,
            &new_id(),
            &data,
            Utc::now(),
            state.config.tenant.max_documents,
        )
        .await
        .map_err(|e| match e {
            StoreError::Gone => ApiError::Unauthorized("Could not validate credentials"),
            other => other.into(),
        })?;
    Ok(with_etag(StatusCode::CREATED, doc))
}

/// Read a document.
///
/// Every role. The `ETag` is the version, for `If-Match`.
#[utoipa::path(
    get, path = "/org/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "The document's id", example = "65a1b2c3d4e5f6a7b8c9d0e4")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The document", body = DocumentView, headers(("ETag" = String, description = "The version, quoted"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such document in this organization", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn get_document(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Action::ReadDocuments)?;
    let doc = state
        .store
        .get_document(&caller.organization, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(NO_DOCUMENT.into()))?;
    Ok(with_etag(StatusCode::OK, doc))
}

/// Replace a document's data.
///
/// Owners, admins and members. The body is the new document (the same rules as a create).
/// With `If-Match: "<version>"` the write applies only to that version (412 otherwise, and
/// nothing changes); without it, it applies to whatever version is current.
#[utoipa::path(
    put, path = "/org/documents/{id}", tag = "documents",
    params(
        ("id" = String, Path, description = "The document's id", example = "65a1b2c3d4e5f6a7b8c9d0e4"),
        ("If-Match" = Option<String>, Header, description = "The ETag the write is conditioned on", example = "\"1\""),
    ),
    request_body(content = DocumentInput, example = json!({"title": "First", "status": "done", "owner": {"id": 7}})),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Replaced; the next version", body = DocumentView, headers(("ETag" = String, description = "The version, quoted"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not write", body = ErrorBody),
        (status = 404, description = "No such document in this organization", body = ErrorBody),
        (status = 412, description = "If-Match does not match the current version", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Not an object, too large, too deep, or a forbidden key", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn replace_document(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    caller.require(Action::WriteDocuments)?;
    let data = body_rules(&state, body)?;
    let doc = write(&state, &caller, &id, if_match(&headers), |_| {
        Ok(Some(data.clone()))
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(NO_DOCUMENT.into()))?;
    Ok(with_etag(StatusCode::OK, doc))
}

/// Change part of a document (JSON merge patch, RFC 7396).
///
/// Owners, admins and members. `Content-Type: application/merge-patch+json`: members of the
/// patch replace the document's, `null` removes one, nested objects merge. The result must meet
/// the rules of a create. `If-Match` as for `PUT`.
#[utoipa::path(
    patch, path = "/org/documents/{id}", tag = "documents",
    params(
        ("id" = String, Path, description = "The document's id", example = "65a1b2c3d4e5f6a7b8c9d0e4"),
        ("If-Match" = Option<String>, Header, description = "The ETag the write is conditioned on", example = "\"2\""),
    ),
    request_body(content = DocumentInput, content_type = "application/merge-patch+json", example = json!({"status": "open", "owner": null})),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Patched; the next version", body = DocumentView, headers(("ETag" = String, description = "The version, quoted"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not write", body = ErrorBody),
        (status = 404, description = "No such document in this organization", body = ErrorBody),
        (status = 412, description = "If-Match does not match the current version", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Not an object, or a result that breaks the rules", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn patch_document(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ValidJson(patch): ValidJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    caller.require(Action::WriteDocuments)?;
    let patch = Value::Object(patch);
    let doc = write(&state, &caller, &id, if_match(&headers), |current| {
        let mut merged = Value::Object(current.data);
        merge_patch(&mut merged, &patch);
        let Value::Object(map) = merged else {
            return Err(ApiError::field(
                &["body"],
                "model_type",
                "A document must be a JSON object",
            ));
        };
        body_rules(&state, map).map(Some)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(NO_DOCUMENT.into()))?;
    Ok(with_etag(StatusCode::OK, doc))
}

/// Delete a document.
///
/// Owners, admins and members. `If-Match` as for `PUT`.
#[utoipa::path(
    delete, path = "/org/documents/{id}", tag = "documents",
    params(
        ("id" = String, Path, description = "The document's id", example = "65a1b2c3d4e5f6a7b8c9d0e4"),
        ("If-Match" = Option<String>, Header, description = "The ETag the delete is conditioned on", example = "\"3\""),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not write", body = ErrorBody),
        (status = 404, description = "No such document in this organization", body = ErrorBody),
        (status = 412, description = "If-Match does not match the current version", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn delete_document(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::WriteDocuments)?;
    write(&state, &caller, &id, if_match(&headers), |_| Ok(None)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List documents, oldest first.
///
/// Every role. `filter` is a JSON object of at most 8 equality conditions on scalar fields
/// (dotted paths allowed), compared in type and value (`true` is not `1`; `null` matches an
/// explicit null only). Paged by an opaque cursor: page 1,000 costs what page 1 does.
#[utoipa::path(
    get, path = "/org/documents", tag = "documents",
    params(ListQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of documents", body = DocumentPage),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid filter, limit or cursor", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn list_documents(
    State(state): State<AppState>,
    caller: TenantCaller,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<Json<DocumentPage>, ApiError> {
    caller.require(Action::ReadDocuments)?;
    let form = ListForm::try_from(query)?;
    let mut documents = state
        .store
        .list_documents(
            &caller.organization,
            &form.filter,
            form.after,
            form.limit + 1,
        )
        .await?;
    let more = documents.len() > form.limit as usize;
    documents.truncate(form.limit as usize);
    let next_cursor = more
        .then(|| documents.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(DocumentPage {
        documents: documents.into_iter().map(DocumentView::from).collect(),
        next_cursor,
    }))
}

/// Count documents.
///
/// Every role. `filter` as for the list.
#[utoipa::path(
    get, path = "/org/documents/count", tag = "documents",
    params(CountQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The number of matching documents", body = DocumentCount),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid filter", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn count_documents(
    State(state): State<AppState>,
    caller: TenantCaller,
    ValidQuery(query): ValidQuery<CountQuery>,
) -> Result<Json<DocumentCount>, ApiError> {
    caller.require(Action::ReadDocuments)?;
    let filter = parse_filter(query.filter.as_deref())?;
    let count = state
        .store
        .count_documents(&caller.organization, &filter)
        .await?;
    Ok(Json(DocumentCount { count }))
}
