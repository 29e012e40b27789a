//! The per-account login throttle on MongoDB: numbered slot documents per window.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::doc;

use super::MongoStore;
use crate::storage::{AttemptWindow, StoreError, Throttle};

impl MongoStore {
    /// The start (seconds) of `key`'s current throttle window, starting a new one if needed.
    pub(super) async fn current_window(
        &self,
        key: &str,
        now_s: i64,
        cutoff: i64,
    ) -> Result<i64, StoreError> {
        for _ in 0..5 {
            let current = self
                .run("find window", self.windows().find_one(doc! { "_id": key }))
                .await?;
            let start = current
                .as_ref()
                .and_then(|d| d.get_i64("window_start").ok());
            match start {
                Some(start) if start > cutoff => return Ok(start),
                Some(expired) => {
                    self.run(
                        "expire window",
                        self.windows()
                            .delete_one(doc! { "_id": key, "window_start": expired }),
                    )
                    .await?;
                }
                None => {}
            }
            match self
                .run(
                    "start window",
                    self.windows()
                        .insert_one(doc! { "_id": key, "window_start": now_s }),
                )
                .await
            {
                Ok(_) => return Ok(now_s),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "login throttle window is contended".into(),
        ))
    }
}

#[async_trait]
impl Throttle for MongoStore {
    async fn register_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<AttemptWindow, StoreError> {
        // FerretDB applies `$inc` as read-modify-write, so concurrent increments get lost.
        // Inserts into a unique `_id` are atomic everywhere, so each attempt claims a numbered
        // slot document `<key>|<window start>|<n>`, n = 1..=limit; when every slot of the window
        // is taken the attempt is over the limit. The window itself is a document claimed the
        // same way, replaced once it has expired.
        let now_s = now.timestamp();
        let cutoff = now_s - i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let start = self.current_window(key, now_s, cutoff).await?;
        let taken = self
            .run(
                "count attempts",
                self.attempts()
                    .count_documents(doc! { "key": key, "window_start": start }),
            )
            .await?;
        let first_free = u32::try_from(taken).unwrap_or(u32::MAX).saturating_add(1);
        for n in first_free..=limit {
            let slot =
                doc! { "_id": format!("{key}|{start}|{n}"), "key": key, "window_start": start };
            match self
                .run("count attempt", self.attempts().insert_one(slot))
                .await
            {
                Ok(_) => {
                    return Ok(AttemptWindow {
                        attempts: n,
                        window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
                    })
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(AttemptWindow {
            attempts: limit.saturating_add(1),
            window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
        })
    }

    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.run(
            "clear attempts",
            self.attempts().delete_many(doc! { "key": key }),
        )
        .await?;
        self.run(
            "clear window",
            self.windows().delete_one(doc! { "_id": key }),
        )
        .await
        .map(drop)
    }
}
