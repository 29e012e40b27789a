//! Rows to domain types and back, and SQLite errors to [`StoreError`]: the one place that knows
//! the embedded store's column order, timestamp format and constraint names.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::domain::{Account, Member, MemberRole, Organization};
use crate::storage::{StoreError, Taken};

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e {
        if matches!(
            err.code,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
        ) {
            return StoreError::Unavailable(e.to_string());
        }
    }
    StoreError::Backend(e.to_string())
}

/// Maps a unique-constraint violation to the value it concerns.
pub(super) fn conflict_or_backend(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, Some(msg)) = &e {
        if err.code == ErrorCode::ConstraintViolation {
            if msg.contains("accounts.email") {
                return StoreError::Conflict(Taken::Email);
            }
            if msg.contains("memberships.organization_id") {
                return StoreError::Conflict(Taken::Member);
            }
            if msg.contains("api_keys.prefix") {
                return StoreError::Conflict(Taken::KeyPrefix);
            }
            if msg.contains("invitations.organization_id") {
                return StoreError::Conflict(Taken::Invitation);
            }
            if msg.contains("organizations.slug")
                || msg.contains("organizations.collection_name")
                || msg.contains("organizations.skeleton")
            {
                return StoreError::Conflict(Taken::Name);
            }
        }
    }
    backend(e)
}

/// True when `e` is a violated `FOREIGN KEY` (the row it points at is gone).
pub(super) fn is_foreign_key(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _)
        if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// True when `e` is a violated `PRIMARY KEY` or `UNIQUE` constraint.
pub(super) fn is_unique(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _)
        if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

pub(super) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn parse_ts(raw: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

pub(super) const ORG_COLUMNS: &str =
    "id, name, slug, collection_name, admin_email, created_at, updated_at";

pub(super) fn org_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Organization> {
    let updated: Option<String> = row.get(6)?;
    Ok(Organization {
        id: row.get(0)?,
        name: row.get(1)?,
        slug: row.get(2)?,
        collection_name: row.get(3)?,
        admin_email: row.get(4)?,
        created_at: parse_ts(&row.get::<_, String>(5)?)?,
        updated_at: updated.as_deref().map(parse_ts).transpose()?,
    })
}

pub(super) const ACCOUNT_COLUMNS: &str = "id, email, password_hash, token_version";

pub(super) fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        email: row.get(1)?,
        password_hash: row.get(2)?,
        token_version: row.get(3)?,
    })
}

/// A stored role name to the domain's (the table's CHECK admits only the four).
pub(super) fn role_from(raw: &str) -> rusqlite::Result<MemberRole> {
    MemberRole::parse(raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Columns of a member: `m` is `memberships`, `a` its account.
pub(super) const MEMBER_COLUMNS: &str = "m.account_id, a.email, m.role, m.joined_at";

pub(super) fn member_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        account_id: row.get(0)?,
        email: row.get(1)?,
        role: role_from(&row.get::<_, String>(2)?)?,
        joined_at: parse_ts(&row.get::<_, String>(3)?)?,
    })
}

/// One row by a unique key, through the connection's statement cache (the hot reads are
/// parsed once per connection, not once per request).
pub(super) fn query_one<T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row([key], map).optional())
        .map_err(backend)
}

pub(super) fn org_by_id(conn: &Connection, id: &str) -> Result<Option<Organization>, StoreError> {
    query_one(
        conn,
        &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1"),
        id,
        org_from_row,
    )
}
