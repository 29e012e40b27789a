//! Documents to domain types, times to BSON and back, and driver errors to [`StoreError`].
//! Driver error codes stay numbers here ([`error_code`]); only [`translate`] turns them into
//! domain errors.

use chrono::{DateTime, Utc};
use mongodb::bson::{DateTime as BsonDateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};

use crate::domain::{Account, Invitation, InvitationStatus, Member, MemberRole, Organization};
use crate::storage::{StoreError, Taken};

pub(super) const DUPLICATE_KEY: i32 = 11000;
/// A value the server cannot store (FerretDB: an array directly inside an array).
pub(super) const BAD_VALUE: i32 = 2;
pub(super) const NAMESPACE_NOT_FOUND: i32 = 26;
pub(super) const NAMESPACE_EXISTS: i32 = 48;

pub(super) fn bson_time(at: DateTime<Utc>) -> BsonDateTime {
    BsonDateTime::from_millis(at.timestamp_millis())
}

pub(super) fn chrono_time(at: BsonDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or_default()
}

pub(super) fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|errs| errs.first())
            .map(|w| w.code),
        _ => None,
    }
}

/// Driver error → domain error. Duplicate keys become a conflict (the caller knows which
/// value it was claiming and re-labels it); unreachable servers become `Unavailable`.
pub(super) fn translate(what: &str, e: &mongodb::error::Error) -> StoreError {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => {
            return StoreError::Unavailable(format!("{what}: {e}"));
        }
        _ => {}
    }
    // FerretDB's SQLite backend reports a write that waited out its lock as an internal error;
    // it is transient, like an unreachable server.
    let text = e.to_string();
    if text.contains("SQLITE_BUSY") || text.contains("database is locked") {
        return StoreError::Unavailable(format!("{what}: store busy"));
    }
    match error_code(e) {
        Some(DUPLICATE_KEY) => StoreError::Conflict(Taken::Name),
        Some(code) => StoreError::Backend(format!("{what}: code {code}: {e}")),
        None => StoreError::Backend(format!("{what}: {e}")),
    }
}

pub(super) fn field_err(field: &str) -> StoreError {
    StoreError::Backend(format!("stored document lacks a valid {field:?}"))
}

pub(super) fn org_from_doc(d: &Document) -> Result<Organization, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    Ok(Organization {
        id: s("_id")?,
        name: s("name")?,
        slug: s("slug")?,
        collection_name: s("collection_name")?,
        admin_email: s("admin_email")?,
        created_at: d
            .get_datetime("created_at")
            .map(|t| chrono_time(*t))
            .map_err(|_| field_err("created_at"))?,
        updated_at: d.get_datetime("updated_at").ok().map(|t| chrono_time(*t)),
    })
}

pub(super) fn account_from_doc(d: &Document) -> Result<Account, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    Ok(Account {
        id: s("_id")?,
        email: s("email")?,
        password_hash: s("password_hash")?,
        token_version: d
            .get_i64("token_version")
            .or_else(|_| d.get_i32("token_version").map(i64::from))
            .unwrap_or(0),
    })
}

fn time_of(d: &Document, k: &str) -> Result<DateTime<Utc>, StoreError> {
    d.get_datetime(k)
        .map(|t| chrono_time(*t))
        .map_err(|_| field_err(k))
}

fn role_of(d: &Document) -> Result<MemberRole, StoreError> {
    MemberRole::parse(d.get_str("role").unwrap_or_default()).map_err(|_| field_err("role"))
}

/// A membership's `_id`: one per account and organization, so inserting it twice is a
/// duplicate key (an insert-time uniqueness both servers enforce).
pub(super) fn membership_key(org_id: &str, account_id: &str) -> String {
    format!("{org_id}:{account_id}")
}

pub(super) fn member_from_doc(d: &Document) -> Result<Member, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    Ok(Member {
        account_id: s("account_id")?,
        email: s("email")?,
        role: role_of(d)?,
        joined_at: time_of(d, "joined_at")?,
    })
}

/// Stored invitation states: the API's four, plus `accepting` (an accept under way, which
/// reads as accepted: its token is spent either way).
pub(super) const ACCEPTING: &str = "accepting";

pub(super) fn invitation_from_doc(d: &Document) -> Result<Invitation, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    let status = match d.get_str("status").unwrap_or_default() {
        ACCEPTING => InvitationStatus::Accepted,
        other => InvitationStatus::parse(other).map_err(|_| field_err("status"))?,
    };
    Ok(Invitation {
        id: s("_id")?,
        organization_id: s("organization_id")?,
        email: s("email")?,
        role: role_of(d)?,
        stored_status: status,
        valid_hours: d
            .get_i64("valid_hours")
            .or_else(|_| d.get_i32("valid_hours").map(i64::from))
            .ok()
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| field_err("valid_hours"))?,
        expires_at: time_of(d, "expires_at")?,
        created_at: time_of(d, "created_at")?,
        invited_by: s("invited_by")?,
    })
}
