//! `/admin/me` and `/org/members*`: who is in the caller's organization, with which role;
//! changing roles, removing members, leaving.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::rfc3339;
use super::session::MembershipView;
use super::team_forms::{parse_role, Page, PageQuery};
use super::trail;
use crate::domain::{Action, AuditAction, AuditContext, Member, MemberChange, MemberRole, PageKey};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::extract::{AuthAdmin, RequestContext, ValidJson, ValidQuery};
use crate::state::AppState;
use crate::storage::StoreError;

/// A member of the organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// The account's id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub admin_id: String,
    /// The account's email.
    #[schema(example = "bo@acme.com")]
    pub email: String,
    /// Its role here.
    pub role: MemberRole,
    /// When it joined (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub joined_at: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            admin_id: m.account_id,
            email: m.email,
            role: m.role,
            joined_at: rfc3339(m.joined_at),
        }
    }
}

/// A page of members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    /// Oldest membership first.
    pub members: Vec<MemberView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The caller: account, organization of the token, role there, and all their organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The account's id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub admin_id: String,
    /// The account's email.
    #[schema(example = "admin@acme.com")]
    pub email: String,
    /// The organization of the token.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e1")]
    pub organization_id: String,
    /// Its name.
    #[schema(example = "Acme Corp")]
    pub organization_name: String,
    /// The caller's role there, as stored now.
    pub role: MemberRole,
    /// Every organization the account belongs to, oldest membership first.
    pub organizations: Vec<MembershipView>,
}

/// Body of `PATCH /org/members/{admin_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleRequest {
    /// `owner`, `admin`, `member` or `viewer`.
    #[schema(example = "admin")]
    pub role: String,
}

/// Pages of `limit` items: one more is read, so the last page says so (`next_cursor` null)
/// rather than ending in an empty page.
pub(super) fn paged<T>(
    mut items: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> PageKey,
) -> (Vec<T>, Option<String>) {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = more
        .then(|| items.last().map(|last| key(last).encode()))
        .flatten();
    (items, next)
}

const NO_MEMBER: &str = "Member not found";

/// The caller.
///
/// Any role. The role is the one stored now (a role change shows at once).
#[utoipa::path(
    get, path = "/admin/me", tag = "members",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    auth: AuthAdmin,
) -> Result<Json<MeResponse>, ApiError> {
    auth.require(Action::ViewMembers)?;
    let organizations = state
        .store
        .memberships_of(&auth.admin.id)
        .await?
        .into_iter()
        .map(MembershipView::from)
        .collect();
    Ok(Json(MeResponse {
        admin_id: auth.admin.id,
        email: auth.admin.email,
        organization_id: auth.organization.id,
        organization_name: auth.organization.name,
        role: auth.role,
        organizations,
    }))
}

/// List the organization's members.
///
/// Any role. Oldest membership first, paged by an opaque cursor.
#[utoipa::path(
    get, path = "/org/members", tag = "members",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of members", body = MemberPage),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid limit or cursor", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn list_members(
    State(state): State<AppState>,
    auth: AuthAdmin,
    ValidQuery(query): ValidQuery<PageQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    auth.require(Action::ViewMembers)?;
    let page = Page::parse(query.limit.as_deref(), query.cursor.as_deref())?;
    let members = state
        .store
        .list_members(&auth.organization.id, page.after, page.limit + 1)
        .await?;
    let (members, next_cursor) = paged(members, page.limit, |m| {
        PageKey::after(m.joined_at, &m.account_id)
    });
    Ok(Json(MemberPage {
        members: members.into_iter().map(MemberView::from).collect(),
        next_cursor,
    }))
}

/// Change a member's role.
///
/// Owners and admins. An admin may not change an owner, nor make anyone an owner (403). The
/// only owner may not be demoted (409): make another owner first. Takes effect on the member's
/// next request.
#[utoipa::path(
    patch, path = "/org/members/{admin_id}", tag = "members",
    params(("admin_id" = String, Path, description = "The member's account id", example = "65a1b2c3d4e5f6a7b8c9d0e2")),
    request_body = RoleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = MemberView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such member", body = ErrorBody),
        (status = 409, description = "It would leave the organization without an owner", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid role", body = ValidationErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id, member = %admin_id))]
pub async fn change_role(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    Path(admin_id): Path<String>,
    ValidJson(body): ValidJson<RoleRequest>,
) -> Result<Json<MemberView>, ApiError> {
    auth.require(Action::ManageMembers)?;
    let role = parse_role(&body)?;
    let member = change(&state, &auth, &context, &admin_id, MemberChange::Role(role))
        .await?
        .ok_or_else(|| ApiError::NotFound(NO_MEMBER.into()))?;
    tracing::info!(role = role.as_str(), "member's role changed");
    Ok(Json(member.into()))
}

/// Remove a member, or leave (your own id).
///
/// Owners and admins remove others (an admin may not remove an owner: 403); anyone may leave.
/// The only owner may not be removed or leave (409): delete the organization instead. The
/// member's tokens for this organization stop working at once; an account left in no
/// organization is deleted.
#[utoipa::path(
    delete, path = "/org/members/{admin_id}", tag = "members",
    params(("admin_id" = String, Path, description = "The member's account id (your own: leave)", example = "65a1b2c3d4e5f6a7b8c9d0e2")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such member", body = ErrorBody),
        (status = 409, description = "It would leave the organization without an owner", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(organization_id = %auth.organization.id, member = %admin_id))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: AuthAdmin,
    RequestContext(context): RequestContext,
    Path(admin_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if admin_id != auth.admin.id {
        auth.require(Action::ManageMembers)?;
    }
    change(&state, &auth, &context, &admin_id, MemberChange::Remove).await?;
    tracing::info!(left = admin_id == auth.admin.id, "member removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn change(
    state: &AppState,
    auth: &AuthAdmin,
    context: &AuditContext,
    target: &str,
    change: MemberChange,
) -> Result<Option<Member>, ApiError> {
    let org = &auth.organization;
    let current = state
        .store
        .member(&org.id, target)
        .await?
        .ok_or_else(|| ApiError::NotFound(NO_MEMBER.into()))?;
    let (action, facts) = match change {
        MemberChange::Role(role) => (
            AuditAction::RoleChanged,
            json!({ "role": role.as_str(), "previous_role": current.role.as_str() }),
        ),
        MemberChange::Remove if target == auth.admin.id => (
            AuditAction::MemberLeft,
            json!({ "role": current.role.as_str() }),
        ),
        MemberChange::Remove => (
            AuditAction::MemberRemoved,
            json!({ "role": current.role.as_str() }),
        ),
    };
    let event = trail::member(
        org,
        action,
        trail::caller(auth),
        context,
        (target, &current.email),
        facts,
    );
    state
        .store
        .change_member(&org.id, &auth.admin.id, target, change, &[event])
        .await
        .map_err(|e| match e {
            StoreError::Gone => ApiError::NotFound(NO_MEMBER.into()),
            other => other.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_says_whether_another_follows() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let key = |n: &u32| PageKey::after(at, &format!("{n:024x}"));
        let (items, next) = paged(vec![1, 2, 3], 2, key);
        assert_eq!(items, [1, 2]);
        assert_eq!(next, Some(key(&2).encode()));
        let (items, next) = paged(vec![1, 2], 2, key);
        assert_eq!((items, next), (vec![1, 2], None));
        let (items, next) = paged(Vec::<u32>::new(), 2, key);
        assert_eq!((items, next), (vec![], None));
    }
}
