//! `/org/invitations*` and `/invitations/accept`: inviting people by email, re-sending and
//! revoking invitations, and accepting one (which logs the accepting account in).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::members::paged;
use super::rfc3339;
use super::session::{issue_tokens, LoginResponse};
use super::team_forms::{check_accept, InvitationQuery, InviteForm, Page};
use super::trail;
use crate::auth::refresh;
use crate::domain::{
    check_invite, invitation_expiry, new_id, Action, AuditAction, AuditActor, AuditContext,
    Invitation, InvitationStatus, LoginPassword, MemberRole, NewEvent, PageKey, Password,
};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{AuthAdmin, Client, RequestContext, ValidJson, ValidQuery};
use crate::state::AppState;
use crate::storage::{AcceptingAccount, StoreError};

/// Body of `POST /org/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteRequest {
    /// Who to invite (any case; compared lower-cased).
    #[schema(example = "bo@acme.com", format = Email, max_length = 254)]
    pub email: String,
    /// The role the membership will have. Admins may not invite owners.
    #[schema(example = "member")]
    pub role: String,
    /// Hours the token works, 1 to 720 (default 168: a week).
    #[schema(minimum = 1, maximum = 720, example = 168)]
    pub expires_in_hours: Option<i64>,
}

/// Body of `POST /invitations/accept`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptRequest {
    /// The invitation's token.
    #[schema(
        min_length = 1,
        max_length = 256,
        example = "oit_3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6"
    )]
    pub token: String,
    /// No account for the invited email yet: the new account's password (8 characters to 72
    /// bytes, not a common one). An account exists: its password.
    #[schema(format = Password, example = "AnotherPass789!", min_length = 1, max_length = 72, pattern = r"^[^\x00]*$")]
    pub password: String,
}

/// An invitation (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Its id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e3")]
    pub invitation_id: String,
    /// The invited email.
    #[schema(example = "bo@acme.com")]
    pub email: String,
    /// The role the membership will have.
    pub role: MemberRole,
    /// Its status now.
    pub status: InvitationStatus,
    /// When the token stops working (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-12-07T09:15:00.000Z")]
    pub expires_at: String,
    /// When it was made.
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub created_at: String,
    /// The inviting account's id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub invited_by: String,
}

impl InvitationView {
    fn of(inv: Invitation) -> Self {
        Self {
            status: inv.status(Utc::now()),
            invitation_id: inv.id,
            email: inv.email,
            role: inv.role,
            expires_at: rfc3339(inv.expires_at),
            created_at: rfc3339(inv.created_at),
            invited_by: inv.invited_by,
        }
    }
}

/// A new or re-sent invitation, with the token: shown here only, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationCreated {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// The token to send to the invitee (256 random bits; the service keeps only its SHA-256).
    #[schema(example = "oit_3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6")]
    pub token: String,
}

/// A page of invitations.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPage {
    /// Oldest first.
    pub invitations: Vec<InvitationView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

const NO_INVITATION: &str = "Invitation not found";

fn with_token(status: StatusCode, inv: Invitation, token: String) -> Response {
    let mut response = (
        status,
        Json(InvitationCreated {
            invitation: InvitationView::of(inv),
            token,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Invite someone by email.
///
/// Owners and admins (admins may not invite owners: 403). The response carries the token to
/// send to the invitee; it is shown only here. An email that is already a member, or already
/// has a pending invitation here, is a 409.
#[utoipa::path(
    post, path = "/org/invitations", tag = "invitations",
    request_body = InviteRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Invited", body = InvitationCreated),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = ErrorBody),
        (status = 409, description = "Already a member, or already invited", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id))]
pub async fn invite(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<InviteRequest>,
) -> Result<Response, ApiError> {
    auth.require(Action::ManageMembers)?;
    let form = InviteForm::try_from(body)?;
    check_invite(auth.role, form.role).map_err(StoreError::Rule)?;
    let now = Utc::now();
    let invitation = Invitation {
        id: new_id(),
        organization_id: auth.organization.id.clone(),
        email: form.email.as_str().to_owned(),
        role: form.role,
        stored_status: InvitationStatus::Pending,
        valid_hours: form.hours,
        expires_at: invitation_expiry(now, form.hours),
        created_at: now,
        invited_by: auth.admin.id.clone(),
    };
    let (token, hash) = refresh::generate_with(refresh::INVITATION_PREFIX);
    let event = trail::invitation(
        (&auth.organization.id, &auth.organization.slug),
        AuditAction::MemberInvited,
        trail::caller(&auth),
        &context,
        &invitation,
    );
    state
        .store
        .create_invitation(&invitation, &hash, &[event])
        .await?;
    tracing::info!(invitation_id = %invitation.id, role = invitation.role.as_str(), "invited");
    Ok(with_token(StatusCode::CREATED, invitation, token))
}

/// List the organization's invitations.
///
/// Owners, admins, members and viewers. Oldest first, paged by an opaque cursor; `status`
/// filters by the status now (a pending invitation past its expiry is `expired`).
#[utoipa::path(
    get, path = "/org/invitations", tag = "invitations",
    params(InvitationQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of invitations", body = InvitationPage),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid status, limit or cursor", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    auth: AuthAdmin,
    ValidQuery(query): ValidQuery<InvitationQuery>,
) -> Result<Json<InvitationPage>, ApiError> {
    auth.require(Action::ViewMembers)?;
    let page = Page::parse(query.limit.as_deref(), query.cursor.as_deref())?;
    let found = state
        .store
        .list_invitations(
            &auth.organization.id,
            query.status,
            Utc::now(),
            page.after,
            page.limit + 1,
        )
        .await?;
    let (found, next_cursor) = paged(found, page.limit, |i| PageKey::after(i.created_at, &i.id));
    Ok(Json(InvitationPage {
        invitations: found.into_iter().map(InvitationView::of).collect(),
        next_cursor,
    }))
}

/// Re-send an invitation: a new token, and the expiry counted again from now.
///
/// Owners and admins (admins not for an invitation to become owner). The old token dies (410).
/// An accepted or revoked invitation cannot be re-sent (409).
#[utoipa::path(
    post, path = "/org/invitations/{invitation_id}/resend", tag = "invitations",
    params(("invitation_id" = String, Path, description = "The invitation's id", example = "65a1b2c3d4e5f6a7b8c9d0e3")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Re-sent, with the new token", body = InvitationCreated),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such invitation", body = ErrorBody),
        (status = 409, description = "Accepted or revoked already, or the email has another pending invitation", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id, invitation_id = %id))]
pub async fn resend(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(Action::ManageMembers)?;
    let (token, hash) = refresh::generate_with(refresh::INVITATION_PREFIX);
    let events =
        invitation_events(&state, &auth, &id, AuditAction::InvitationResent, &context).await?;
    // The store checks the inviting rule on the invitation's role: an admin cannot re-send an
    // owner's invitation.
    let inv = state
        .store
        .reissue_invitation(
            &auth.organization.id,
            &id,
            &hash,
            Utc::now(),
            auth.role,
            &events,
        )
        .await
        .map_err(ended_is_conflict)?
        .ok_or_else(|| ApiError::NotFound(NO_INVITATION.into()))?;
    Ok(with_token(StatusCode::OK, inv, token))
}

/// Revoke an invitation: its token dies (410).
///
/// Owners and admins. An accepted or revoked invitation cannot be revoked (409).
#[utoipa::path(
    delete, path = "/org/invitations/{invitation_id}", tag = "invitations",
    params(("invitation_id" = String, Path, description = "The invitation's id", example = "65a1b2c3d4e5f6a7b8c9d0e3")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such invitation", body = ErrorBody),
        (status = 409, description = "Accepted or revoked already", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id, invitation_id = %id))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(Action::ManageMembers)?;
    let events =
        invitation_events(&state, &auth, &id, AuditAction::InvitationRevoked, &context).await?;
    let revoked = state
        .store
        .revoke_invitation(&auth.organization.id, &id, &events)
        .await
        .map_err(ended_is_conflict)?;
    if !revoked {
        return Err(ApiError::NotFound(NO_INVITATION.into()));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The event of `action` on the organization's invitation `id` (none if there is no such
/// invitation: the store's answer is then a 404 anyway).
async fn invitation_events(
    state: &AppState,
    auth: &AuthAdmin,
    id: &str,
    action: AuditAction,
    context: &AuditContext,
) -> Result<Vec<NewEvent>, ApiError> {
    let org = &auth.organization;
    Ok(state
        .store
        .invitation(&org.id, id)
        .await?
        .map(|inv| {
            trail::invitation(
                (&org.id, &org.slug),
                action,
                trail::caller(auth),
                context,
                &inv,
            )
        })
        .into_iter()
        .collect())
}

/// For the organization's own side, an invitation that ended is a state conflict (409); 410
/// is the answer to its token.
fn ended_is_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Ended(end) => ApiError::Conflict(end.detail().into()),
        other => other.into(),
    }
}

/// Accept an invitation (no bearer token: the invitation's token is the credential).
///
/// No account for the invited email yet: one is made with this password. An account exists:
/// the password must be its password (401 otherwise, counted by the login throttle). Logs the
/// account in to the inviting organization. A token works once: of concurrent accepts exactly
/// one succeeds. Used, revoked, expired or superseded by a resend: 410 saying which; unknown:
/// 404.
#[utoipa::path(
    post, path = "/invitations/accept", tag = "invitations",
    request_body = AcceptRequest,
    responses(
        (status = 200, description = "Joined; logged in to the inviting organization", body = LoginResponse),
        (status = 401, description = "Wrong password for the existing account", body = ErrorBody),
        (status = 404, description = "Unknown token", body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
        (status = 410, description = "Accepted, revoked, expired or re-sent", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ValidationErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn accept(
    State(state): State<AppState>,
    client: Client,
    RequestContext(context): RequestContext,
    ValidJson(body): ValidJson<AcceptRequest>,
) -> Result<Response, ApiError> {
    check_accept(&body)?;
    let hash = refresh::hash(&body.token);
    let unknown = || ApiError::NotFound(NO_INVITATION.into());
    let found = state
        .store
        .invitation_by_token(&hash)
        .await?
        .ok_or_else(unknown)?;
    let now = Utc::now();
    found
        .invitation
        .check_usable(now, found.current)
        .map_err(|end| ApiError::Gone(end.detail()))?;
    let inv = found.invitation;
    let org = state
        .store
        .organization_by_id(&inv.organization_id)
        .await?
        .ok_or_else(unknown)?;
    let existing = state.store.account_by_email(&inv.email).await?;
    let accepting = match &existing {
        Some(account) => {
            let password = LoginPassword::parse(&body.password)
                .map_err(|e| ApiError::field(&["body", "password"], e.kind, e.message))?;
            crate::extract::reauthenticate(&state, account, client.0, None, &password).await?;
            AcceptingAccount {
                id: account.id.clone(),
                email: account.email.clone(),
                password_hash: None,
            }
        }
        None => {
            let password = Password::parse(&body.password)
                .map_err(|e| ApiError::field(&["body", "password"], e.kind, e.message))?;
            AcceptingAccount {
                id: new_id(),
                email: inv.email.clone(),
                password_hash: Some(
                    state
                        .hasher
                        .hash(&password)
                        .await
                        .map_err(ApiError::Internal)?,
                ),
            }
        }
    };
    let event = trail::invitation(
        (&org.id, &org.slug),
        AuditAction::InvitationAccepted,
        AuditActor::account(&accepting.id, &accepting.email),
        &context,
        &inv,
    );
    let member = state
        .store
        .accept_invitation(&inv.id, &hash, &accepting, now, &[event])
        .await
        .map_err(|e| match e {
            StoreError::Gone => unknown(),
            other => other.into(),
        })?;
    let account = state
        .store
        .account_by_id(&accepting.id)
        .await?
        .ok_or(ApiError::Unauthorized("Could not validate credentials"))?;
    tracing::info!(invitation_id = %inv.id, organization_id = %org.id, "invitation accepted");
    issue_tokens(
        &state,
        &account,
        &org,
        member.role,
        account.token_version,
        None,
        &[],
    )
    .await
}
