//! Passwords, token versions and refresh-token chains on the embedded store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::audit::append;
use super::codec::{backend, is_foreign_key, is_unique};
use super::EmbeddedStore;
use crate::domain::NewEvent;
use crate::storage::{RefreshSpend, RefreshToken, Sessions, StoreError};

/// Bumps the admin's token version (setting a new password hash if given) and deletes their
/// refresh tokens: every earlier token of theirs stops working. Returns the new version.
fn end_sessions(
    tx: &Transaction<'_>,
    admin_id: &str,
    new_hash: Option<&str>,
) -> Result<i64, StoreError> {
    let version: Option<i64> = tx
        .query_row(
            "UPDATE accounts SET password_hash = COALESCE(?2, password_hash), token_version = token_version + 1
             WHERE id = ?1 RETURNING token_version",
            params![admin_id, new_hash],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let version = version.ok_or(StoreError::Gone)?;
    tx.execute("DELETE FROM refresh_tokens WHERE admin_id = ?1", [admin_id])
        .map_err(backend)?;
    Ok(version)
}

#[async_trait]
impl Sessions for EmbeddedStore {
    async fn change_password(
        &self,
        admin_id: &str,
        password_hash: &str,
        events: &[NewEvent],
    ) -> Result<i64, StoreError> {
        let (id, hash, events) = (
            admin_id.to_owned(),
            password_hash.to_owned(),
            events.to_vec(),
        );
        self.write(move |tx, _| {
            let version = end_sessions(tx, &id, Some(&hash))?;
            append(tx, &events)?;
            Ok(version)
        })
        .await
    }

    async fn upgrade_password_hash(
        &self,
        admin_id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        let (id, old, new) = (
            admin_id.to_owned(),
            old_hash.to_owned(),
            new_hash.to_owned(),
        );
        self.write(move |tx, _| {
            tx.execute(
                "UPDATE accounts SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                params![id, old, new],
            )
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn revoke_sessions(
        &self,
        admin_id: &str,
        events: &[NewEvent],
    ) -> Result<i64, StoreError> {
        let (id, events) = (admin_id.to_owned(), events.to_vec());
        self.write(move |tx, _| {
            let version = end_sessions(tx, &id, None)?;
            append(tx, &events)?;
            Ok(version)
        })
        .await
    }

    async fn insert_refresh_token(
        &self,
        token: &RefreshToken,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let (t, events) = (token.clone(), events.to_vec());
        self.write(move |tx, _| {
            let revoked: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM revoked_families WHERE family_id = ?1)",
                    [&t.family_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if revoked {
                return Err(StoreError::Revoked);
            }
            tx.execute(
                "INSERT INTO refresh_tokens (hash, admin_id, organization_id, family_id, expires_at, token_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.hash, t.admin_id, t.organization_id, t.family_id, t.expires_at.timestamp(), t.token_version],
            )
            .map_err(|e| {
                if is_foreign_key(&e) {
                    // The admin was deleted meanwhile (with their organization).
                    StoreError::Gone
                } else if is_unique(&e) {
                    StoreError::Revoked
                } else {
                    backend(e)
                }
            })?;
            append(tx, &events)?;
            Ok(())
        })
        .await
    }

    async fn spend_refresh_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshSpend, StoreError> {
        let hash = hash.to_owned();
        self.write(move |tx, _| {
            let row: Option<(String, String, String, i64, i64, i64)> = tx
                .query_row(
                    "SELECT admin_id, organization_id, family_id, expires_at, spent, token_version FROM refresh_tokens WHERE hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((admin_id, organization_id, family_id, expires_at, spent, token_version)) = row else {
                return Ok(RefreshSpend::Invalid);
            };
            let token = RefreshToken {
                hash: hash.clone(),
                admin_id,
                organization_id,
                family_id,
                token_version,
                expires_at: DateTime::from_timestamp(expires_at, 0).unwrap_or(now),
            };
            if spent != 0 {
                // A live token in the family is the successor of a won spend: this is a replay
                // after the win. None: the winner is still being answered.
                let successor: bool = tx
                    .query_row(
                        "SELECT EXISTS(SELECT 1 FROM refresh_tokens WHERE family_id = ?1 AND spent = 0)",
                        [&token.family_id],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                return Ok(if successor {
                    RefreshSpend::Reused(token)
                } else {
                    RefreshSpend::Contended
                });
            }
            if expires_at <= now.timestamp() {
                return Ok(RefreshSpend::Invalid);
            }
            tx.execute("UPDATE refresh_tokens SET spent = 1 WHERE hash = ?1", [&hash])
                .map_err(backend)?;
            Ok(RefreshSpend::Fresh(token))
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        family_id: &str,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let (family, events) = (family_id.to_owned(), events.to_vec());
        self.write(move |tx, _| {
            tx.execute(
                "INSERT OR IGNORE INTO revoked_families (family_id, revoked_at) VALUES (?1, ?2)",
                params![family, Utc::now().timestamp()],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM refresh_tokens WHERE family_id = ?1", [&family])
                .map_err(backend)?;
            append(tx, &events)?;
            Ok(())
        })
        .await
    }
}
