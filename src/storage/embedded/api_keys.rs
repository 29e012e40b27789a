//! API keys on the embedded store: one row per key in `api_keys`, found by its unique prefix.
//! A key goes with its organization (`ON DELETE CASCADE`, and explicitly in the delete's
//! transaction), so a deleted organization's key cannot outlive it even for a moment.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::audit::append;
use super::codec::{backend, conflict_or_backend, org_by_id, parse_ts, role_from, ts};
use super::EmbeddedStore;
use crate::domain::{ApiKey, NewEvent, StoredApiKey};
use crate::storage::{ApiKeys, Limit, StoreError};

const COLUMNS: &str =
    "id, organization_id, name, role, prefix, created_at, expires_at, created_by, last_used_at, key_hash";

fn optional_ts(raw: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    raw.as_deref().map(parse_ts).transpose()
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredApiKey> {
    Ok(StoredApiKey {
        key: ApiKey {
            id: row.get(0)?,
            organization_id: row.get(1)?,
            name: row.get(2)?,
            role: role_from(&row.get::<_, String>(3)?)?,
            prefix: row.get(4)?,
            created_at: parse_ts(&row.get::<_, String>(5)?)?,
            expires_at: optional_ts(row.get(6)?)?,
            created_by: row.get(7)?,
            last_used_at: optional_ts(row.get(8)?)?,
        },
        hash: row.get(9)?,
    })
}

#[async_trait]
impl ApiKeys for EmbeddedStore {
    async fn create_api_key(
        &self,
        key: &ApiKey,
        hash: &str,
        max_keys: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let (key, hash, events) = (key.clone(), hash.to_owned(), events.to_vec());
        self.write(move |tx, _| {
            if org_by_id(tx, &key.organization_id)?.is_none() {
                return Err(StoreError::Gone);
            }
            let held: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM api_keys WHERE organization_id = ?1",
                    [&key.organization_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if u64::try_from(held).unwrap_or(0) >= max_keys {
                return Err(StoreError::Quota(Limit::ApiKeys));
            }
            tx.execute(
                &format!("INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)"),
                params![
                    key.id, key.organization_id, key.name, key.role.as_str(), key.prefix,
                    ts(key.created_at), key.expires_at.map(ts), key.created_by, hash
                ],
            )
            .map_err(conflict_or_backend)?;
            append(tx, &events)

        })
        .await
    }

    async fn list_api_keys(&self, org_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM api_keys WHERE organization_id = ?1 ORDER BY created_at, id"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([&org_id], |r| from_row(r).map(|s| s.key))?
                    .collect()
            })
            .map_err(backend)
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        org_id: &str,
        id: &str,
        events: &[NewEvent],
    ) -> Result<bool, StoreError> {
        let (org_id, id, events) = (org_id.to_owned(), id.to_owned(), events.to_vec());
        self.write(move |tx, _| {
            let revoked = tx
                .execute(
                    "DELETE FROM api_keys WHERE organization_id = ?1 AND id = ?2",
                    params![org_id, id],
                )
                .map_err(backend)?
                > 0;
            if revoked {
                append(tx, &events)?;
            }
            Ok(revoked)
        })
        .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let prefix = prefix.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = ?1"))
                .and_then(|mut stmt| stmt.query_row([&prefix], from_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (id, at) = (id.to_owned(), ts(at));
        // Timestamps are fixed-width RFC 3339 in UTC, so text order is time order.
        self.write(move |tx, _| {
            tx.execute(
                "UPDATE api_keys SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                params![id, at],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }
}
