//! `/org/*`: create, read, rename and delete organizations.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::forms::{NewOrgForm, RenameForm};
use super::{trail, OrgResponse};
use crate::domain::{
    new_id, Action, AuditAction, AuditActor, NewOrganization, OrgName, Organization,
};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{
    reauthenticate, token_account, AuthAdmin, Client, RequestContext, ValidJson, ValidQuery,
};
use crate::state::AppState;
use crate::storage::{StoreError, Taken};

/// Body of `POST /org/create`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrgRequest {
    /// At most 100 characters, at least one letter or digit, no control, format (zero-width,
    /// bidirectional) or line/paragraph separator characters (the `pattern` spells the rule
    /// out). Its slug (lower-cased letters and digits, other runs folded to `_`) must be
    /// unused, and it must not look like another organization's name.
    #[schema(example = "Acme Corp", min_length = 1, max_length = 100)]
    pub organization_name: String,
    /// The admin's email; unique, compared case-insensitively.
    #[schema(example = "admin@acme.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 characters to 72 bytes, no NUL.
    #[schema(example = "SecurePass123!", format = Password, min_length = 8, max_length = 72, pattern = r"^[^\x00]*$")]
    pub password: String,
}

/// Query of `GET /org/get`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetOrgQuery {
    /// The organization's name (any spelling with the same slug finds it).
    #[param(example = "Acme Corp", min_length = 1, max_length = 100)]
    pub organization_name: String,
}

/// Body of `PUT /org/update`: the new name plus the admin's credentials (re-authentication).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateOrgRequest {
    /// The new name (same rules as at creation).
    #[schema(example = "Acme Corporation", min_length = 1, max_length = 100)]
    pub organization_name: String,
    /// The calling admin's email.
    #[schema(example = "admin@acme.com", format = Email, max_length = 254)]
    pub email: String,
    /// The calling admin's current password.
    #[schema(example = "SecurePass123!", format = Password, min_length = 1, max_length = 72, pattern = r"^[^\x00]*$")]
    pub password: String,
}

/// Body of `DELETE /org/delete`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteOrgRequest {
    /// The caller's own organization (its current name: after the walk-through's rename).
    #[schema(example = "Acme Corporation", min_length = 1, max_length = 100)]
    pub organization_name: String,
}

/// Create an organization and its owner.
///
/// Creates the organization, its owner's account and membership, and its tenant collection
/// `org_<slug>`, all or nothing. Names with the same slug are the same organization
/// (`Acme Corp` = `acme-corp`).
///
/// An email that already has an account is a 409, unless the request carries that account's
/// bearer token and the body's password is its password: then that account becomes the new
/// organization's owner as well (a wrong password is a 401, counted by the login throttle).
#[utoipa::path(
    post, path = "/org/create", tag = "organizations",
    request_body = CreateOrgRequest,
    responses(
        (status = 201, description = "Created", body = OrgResponse),
        (status = 401, description = "The email's account's token, with a wrong password", body = ErrorBody),
        (status = 409, description = "Name (slug) or email already taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn create_org(
    State(state): State<AppState>,
    client: Client,
    RequestContext(context): RequestContext,
    headers: HeaderMap,
    ValidJson(body): ValidJson<CreateOrgRequest>,
) -> Result<(StatusCode, Json<OrgResponse>), ApiError> {
    let NewOrgForm {
        name,
        email,
        password,
    } = body.try_into()?;
    // Refuse a taken name before spending a bcrypt hash on it; the store's unique claim below
    // is what actually guarantees uniqueness under concurrency.
    if state
        .store
        .organization_by_slug(name.slug())
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict(Taken::Name).into());
    }
    let (admin_id, password_hash) = match state.store.account_by_email(email.as_str()).await? {
        None => {
            let hash = state
                .hasher
                .hash(&password)
                .await
                .map_err(ApiError::Internal)?;
            (new_id(), Some(hash))
        }
        Some(account) => {
            // Only the account itself, re-authenticated, may found another organization.
            let own_token = token_account(&headers, &state)
                .await?
                .is_some_and(|a| a.id == account.id);
            if !own_token {
                return Err(StoreError::Conflict(Taken::Email).into());
            }
            reauthenticate(&state, &account, client.0, None, &password.as_login()).await?;
            (account.id, None)
        }
    };
    let new = NewOrganization {
        id: new_id(),
        admin_id,
        name,
        admin_email: email,
        password_hash,
        created_at: Utc::now(),
    };
    let event = trail::organization(
        &new.organization(),
        AuditAction::OrganizationCreated,
        AuditActor::account(&new.admin_id, new.admin_email.as_str()),
        &context,
        json!({}),
    );
    let org = state
        .store
        .create_organization(&new, &[event])
        .await
        .map_err(|e| match e {
            // The re-authenticated account was deleted meanwhile.
            StoreError::Gone => ApiError::Unauthorized("Could not validate credentials"),
            other => other.into(),
        })?;
    tracing::info!(organization_id = %org.id, collection = %org.collection_name, "organization created");
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// Get an organization by name.
#[utoipa::path(
    get, path = "/org/get", tag = "organizations",
    params(GetOrgQuery),
    responses(
        (status = 200, description = "Found", body = OrgResponse),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 422, description = "Invalid or missing name", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn get_org(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<GetOrgQuery>,
) -> Result<Json<OrgResponse>, ApiError> {
    let name = OrgName::parse(&query.organization_name)
        .map_err(|e| ApiError::field(&["query", "organization_name"], e.kind, e.message))?;
    let org = state
        .store
        .organization_by_slug(name.slug())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Organization '{}' not found", name.as_str())))?;
    Ok(Json(shown(&state, org).await?))
}

/// An organization as the API shows it: `admin_email` is its longest-standing owner's.
async fn shown(state: &AppState, mut org: Organization) -> Result<OrgResponse, ApiError> {
    if let Some(email) = state.store.owner_email(&org.id).await? {
        org.admin_email = email;
    }
    Ok(org.into())
}

/// The 401 for a request whose organization was deleted while it was being served (the same
/// answer its token gets from then on).
const ORGANIZATION_GONE: &str = "Could not validate credentials";

/// Rename the caller's organization.
///
/// Owners only (403 for other roles). Needs the owner's token **and** their email and password
/// in the body (re-authentication).
/// The tenant collection is renamed in place (no document is copied). A name with the same
/// slug only changes the display name.
#[utoipa::path(
    put, path = "/org/update", tag = "organizations",
    request_body = UpdateOrgRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Renamed", body = OrgResponse),
        (status = 401, description = "Missing/invalid token or wrong email/password", body = ErrorBody),
        (status = 403, description = "The caller is not an owner", body = ErrorBody),
        (status = 409, description = "Name (slug) taken by another organization", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id))]
pub async fn update_org(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<UpdateOrgRequest>,
) -> Result<Json<OrgResponse>, ApiError> {
    auth.require(Action::ManageOrganization)?;
    let RenameForm {
        name,
        email,
        password,
    } = body.try_into()?;
    auth.reauthenticate(&state, Some(&email), &password).await?;
    let renamed = Organization {
        name: name.as_str().to_owned(),
        slug: name.slug().to_owned(),
        ..auth.organization.clone()
    };
    let event = trail::organization(
        &renamed,
        AuditAction::OrganizationRenamed,
        trail::caller(&auth),
        &context,
        json!({ "previous_name": auth.organization.name }),
    );
    let org = state
        .store
        .rename_organization(&auth.organization.id, &name, Utc::now(), &[event])
        .await
        .map_err(|e| match e {
            // Deleted by a concurrent request: the token died with it.
            StoreError::Gone => ApiError::Unauthorized(ORGANIZATION_GONE),
            other => other.into(),
        })?;
    tracing::info!(collection = %org.collection_name, "organization renamed");
    Ok(Json(shown(&state, org).await?))
}

/// Delete the caller's organization.
///
/// Owners only. Removes the organization, its memberships, invitations and tenant collection,
/// and every account left with no organization; tokens for it stop working at once. An account
/// that belongs to other organizations keeps working there.
#[utoipa::path(
    delete, path = "/org/delete", tag = "organizations",
    request_body = DeleteOrgRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the caller's organization, or the caller is not an owner", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id))]
pub async fn delete_org(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<DeleteOrgRequest>,
) -> Result<StatusCode, ApiError> {
    auth.require(Action::ManageOrganization)?;
    let name = OrgName::parse(&body.organization_name)
        .map_err(|e| ApiError::field(&["body", "organization_name"], e.kind, e.message))?;
    if name.slug() != auth.organization.slug {
        return Err(ApiError::Forbidden(
            "You can only delete your own organization",
        ));
    }
    let event = trail::organization(
        &auth.organization,
        AuditAction::OrganizationDeleted,
        trail::caller(&auth),
        &context,
        json!({}),
    );
    if !state
        .store
        .delete_organization(&auth.organization.id, &[event])
        .await?
    {
        // A concurrent delete won: this request's token died with the organization.
        return Err(ApiError::Unauthorized(ORGANIZATION_GONE));
    }
    tracing::info!("organization deleted");
    Ok(StatusCode::NO_CONTENT)
}
