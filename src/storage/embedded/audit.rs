//! The audit log on the embedded store: `audit_events`, one row per event keyed by
//! (organization, sequence), with the event's JSON as hashed. [`append`] runs inside the
//! transaction of the change it records, so the change and its event commit together or not at
//! all, and SQLite's single writer makes each chain's next sequence the previous one plus one.
//! Events outlive their organization (no foreign key) until pruned.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::codec::{backend, ts};
use super::EmbeddedStore;
use crate::domain::{ChainAnchor, NewEvent, StoredEvent};
use crate::storage::{Audit, AuditQuery, StoreError};

fn anchor_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainAnchor> {
    Ok(ChainAnchor {
        sequence: r.get(0)?,
        hash: r.get(1)?,
    })
}

/// The last event of `org_id`'s chain (or its anchor, or the beginning).
fn head(conn: &Connection, org_id: &str) -> Result<ChainAnchor, StoreError> {
    let last = conn
        .prepare_cached(
            "SELECT sequence, hash FROM audit_events WHERE organization_id = ?1
             ORDER BY sequence DESC LIMIT 1",
        )
        .and_then(|mut stmt| stmt.query_row([org_id], anchor_from_row).optional())
        .map_err(backend)?;
    match last {
        Some(head) => Ok(head),
        None => anchor(conn, org_id),
    }
}

fn anchor(conn: &Connection, org_id: &str) -> Result<ChainAnchor, StoreError> {
    conn.prepare_cached("SELECT sequence, hash FROM audit_anchors WHERE organization_id = ?1")
        .and_then(|mut stmt| stmt.query_row([org_id], anchor_from_row).optional())
        .map(Option::unwrap_or_default)
        .map_err(backend)
}

/// Appends `events`, each to its organization's chain, on the caller's transaction.
pub(super) fn append(conn: &Connection, events: &[NewEvent]) -> Result<(), StoreError> {
    for event in events {
        let last = head(conn, &event.organization_id)?;
        let chained = event.clone().chain(last.sequence + 1, &last.hash);
        conn.prepare_cached(
            "INSERT INTO audit_events (organization_id, sequence, id, organization_slug, action, actor_id, occurred_at, hash, event)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                event.organization_id,
                chained.sequence,
                event.id,
                event.organization_slug,
                event.action.as_str(),
                event.actor.id,
                ts(event.occurred_at),
                chained.hash,
                chained.json,
            ])
        })
        .map_err(backend)?;
    }
    Ok(())
}

fn stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        sequence: row.get(0)?,
        json: row.get(1)?,
    })
}

#[async_trait]
impl Audit for EmbeddedStore {
    async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.write(move |tx, _| append(tx, &events)).await
    }

    async fn list_events(
        &self,
        org_id: &str,
        query: &AuditQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (org_id, query) = (org_id.to_owned(), query.clone());
        self.read(move |conn| {
            // Only the conditions asked for, so the primary key's range serves the cursor.
            let mut sql =
                String::from("SELECT sequence, event FROM audit_events WHERE organization_id = ?1");
            let mut values: Vec<SqlValue> = vec![SqlValue::Text(org_id)];
            let mut condition = |clause: &str, value: SqlValue| {
                values.push(value);
                sql += &format!(" AND {clause} ?{}", values.len());
            };
            if let Some(before) = query.before {
                condition("sequence <", SqlValue::Integer(before));
            }
            if let Some(action) = query.action {
                condition("action =", SqlValue::Text(action.as_str().to_owned()));
            }
            if let Some(actor) = &query.actor_id {
                condition("actor_id =", SqlValue::Text(actor.clone()));
            }
            if let Some(since) = query.since {
                condition("occurred_at >=", SqlValue::Text(ts(since)));
            }
            if let Some(until) = query.until {
                condition("occurred_at <", SqlValue::Text(ts(until)));
            }
            sql += &format!(" ORDER BY sequence DESC LIMIT {}", query.limit);
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(values.iter()), stored)
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn events_after(
        &self,
        org_id: &str,
        after: i64,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let org_id = org_id.to_owned();
        let (since, until) = (since.map(ts), until.map(ts));
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT sequence, event FROM audit_events
                 WHERE organization_id = ?1 AND sequence > ?2
                   AND (?3 IS NULL OR occurred_at >= ?3) AND (?4 IS NULL OR occurred_at < ?4)
                 ORDER BY sequence LIMIT ?5",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![org_id, after, since, until, limit], stored)?
                    .collect()
            })
            .map_err(backend)
        })
        .await
    }

    async fn chain_anchor(&self, org_id: &str) -> Result<ChainAnchor, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |conn| anchor(conn, &org_id)).await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = ts(before);
        self.write(move |tx, _| {
            // Per chain: everything up to its newest event older than the cutoff goes, and that
            // event becomes the anchor the rest verifies from.
            let ends: Vec<(String, i64)> = tx
                .prepare(
                    "SELECT organization_id, MAX(sequence) FROM audit_events
                     WHERE occurred_at < ?1 GROUP BY organization_id",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([&cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(backend)?;
            let mut pruned = 0;
            for (org_id, end) in ends {
                tx.execute(
                    "INSERT INTO audit_anchors (organization_id, sequence, hash)
                     SELECT organization_id, sequence, hash FROM audit_events
                     WHERE organization_id = ?1 AND sequence = ?2
                     ON CONFLICT (organization_id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash",
                    params![org_id, end],
                )
                .map_err(backend)?;
                pruned += tx
                    .execute(
                        "DELETE FROM audit_events WHERE organization_id = ?1 AND sequence <= ?2",
                        params![org_id, end],
                    )
                    .map_err(backend)? as u64;
            }
            Ok(pruned)
        })
        .await
    }

    async fn audited_organizations(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            conn.prepare(
                "SELECT e.organization_id, e.organization_slug FROM audit_events e
                 JOIN (SELECT organization_id, MAX(sequence) AS last FROM audit_events GROUP BY organization_id) h
                   ON h.organization_id = e.organization_id AND h.last = e.sequence
                 ORDER BY e.organization_id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(backend)
        })
        .await
    }
}
