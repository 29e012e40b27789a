//! Idempotency keys on the embedded store: one row per key scope, claimed in a write
//! transaction (so of two requests with one key exactly one starts).

use std::time::Duration;

use chrono::Utc;
use rusqlite::{params, OptionalExtension, Transaction};

use async_trait::async_trait;

use super::codec::backend;
use super::EmbeddedStore;
use crate::storage::{Idempotency, IdempotencyClaim, StoreError, IDEMPOTENCY_KEEP};

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Claims `scope` (see [`crate::storage::Store::begin_idempotent`]).
fn begin(
    tx: &Transaction<'_>,
    scope: &str,
    fingerprint: &str,
    running_ttl: Duration,
) -> Result<IdempotencyClaim, StoreError> {
    let now = Utc::now().timestamp();
    let found: Option<(String, i64, Option<Vec<u8>>)> = tx
        .query_row(
            "SELECT fingerprint, started_at, sealed FROM idempotency WHERE scope = ?1",
            [scope],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)?;
    match found {
        Some((fingerprint, started, None)) if started > now - secs(running_ttl) => {
            Ok(IdempotencyClaim::Running { fingerprint })
        }
        Some((fingerprint, started, Some(sealed))) if started > now - secs(IDEMPOTENCY_KEEP) => {
            Ok(IdempotencyClaim::Finished {
                fingerprint,
                sealed,
            })
        }
        // Absent, or left by a dead process, or expired: ours now.
        _ => {
            tx.execute(
                "INSERT INTO idempotency (scope, fingerprint, started_at, sealed) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT (scope) DO UPDATE SET fingerprint = ?2, started_at = ?3, sealed = NULL",
                params![scope, fingerprint, now],
            )
            .map_err(backend)?;
            Ok(IdempotencyClaim::Started)
        }
    }
}

/// Stores the sealed response of the running claim on `scope`.
fn finish(tx: &Transaction<'_>, scope: &str, sealed: &[u8]) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE idempotency SET sealed = ?2 WHERE scope = ?1 AND sealed IS NULL",
        params![scope, sealed],
    )
    .map(drop)
    .map_err(backend)
}

/// Drops the running claim on `scope`.
fn abandon(tx: &Transaction<'_>, scope: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM idempotency WHERE scope = ?1 AND sealed IS NULL",
        [scope],
    )
    .map(drop)
    .map_err(backend)
}

/// Forgets keys past [`IDEMPOTENCY_KEEP`] (run by the reconciler).
pub(super) fn expire(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM idempotency WHERE started_at < ?1",
        [Utc::now().timestamp() - secs(IDEMPOTENCY_KEEP)],
    )
    .map(drop)
    .map_err(backend)
}

#[async_trait]
impl Idempotency for EmbeddedStore {
    async fn begin_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let (scope, fingerprint) = (scope.to_owned(), fingerprint.to_owned());
        self.write(move |tx, _| begin(tx, &scope, &fingerprint, running_ttl))
            .await
    }

    async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError> {
        let (scope, sealed) = (scope.to_owned(), sealed.to_vec());
        self.write(move |tx, _| finish(tx, &scope, &sealed)).await
    }

    async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError> {
        let scope = scope.to_owned();
        self.write(move |tx, _| abandon(tx, &scope)).await
    }
}
