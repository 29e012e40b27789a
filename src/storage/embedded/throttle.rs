//! The per-account login throttle on the embedded store: one upsert per attempt.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::codec::backend;
use super::EmbeddedStore;
use crate::storage::{AttemptWindow, StoreError, Throttle};

#[async_trait]
impl Throttle for EmbeddedStore {
    async fn register_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<AttemptWindow, StoreError> {
        let key = key.to_owned();
        let now_s = now.timestamp();
        let cutoff = now_s - i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        self.write(move |tx, _| {
            let (attempts, start): (i64, i64) = tx
                .query_row(
                    "INSERT INTO login_attempts (key, window_start, attempts) VALUES (?1, ?2, 1)
                     ON CONFLICT(key) DO UPDATE SET
                        attempts = CASE WHEN window_start <= ?3 THEN 1 ELSE MIN(attempts + 1, ?4) END,
                        window_start = CASE WHEN window_start <= ?3 THEN ?2 ELSE window_start END
                     RETURNING attempts, window_start",
                    params![key, now_s, cutoff, i64::from(limit) + 1],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            Ok(AttemptWindow {
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
            })
        })
        .await
    }

    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |tx, _| {
            tx.execute("DELETE FROM login_attempts WHERE key = ?1", [key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }
}
