//! The per-organization operation lock, with a lease.
//!
//! Renames and deletes of one organization must not interleave. The lock is a document inserted
//! into `reservations` with `_id: "lock:<organization id>"` (an insert into a unique `_id` is
//! atomic on MongoDB and FerretDB alike, where a conditional update is not on FerretDB). It
//! carries a random holder id and a lease end in server time ([`super::clock`]).
//!
//! - A second operation on the same organization waits for the lock (up to three store
//!   timeouts), then answers 503 "busy" (documented on every route), never a 409.
//! - A lock whose lease has ended (its holder crashed, or lost the store in the middle) is taken
//!   over: deleted by `_id` *and* holder, so two instances cannot both take over one lock.
//! - A release that fails (the store paused at that moment) is retried in the background until
//!   it succeeds or the lease ends, so a store pause does not leave organizations locked.
//!
//! The lease is a safety net, not the guarantee: every step of a rename or delete is idempotent
//! and conditional on the organization's state, so an operation that outlives its lease and one
//! that took over cannot leave a half-made organization.

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::Collection;

use super::codec::{bson_time, chrono_time};
use super::guarded::delete_if;
use super::MongoStore;
use crate::storage::StoreError;

/// How long a lock protects its holder: ten store timeouts (every step of an operation is
/// bounded by one), and never under ten seconds.
pub fn lease(store_timeout: Duration) -> Duration {
    (store_timeout * 10).max(Duration::from_secs(10))
}

/// A held per-organization lock; [`OrgLock::release`] frees it.
pub struct OrgLock {
    reservations: Collection<Document>,
    key: String,
    holder: String,
    retry_until: tokio::time::Instant,
    timeout: Duration,
    /// The server serves only `{_id}` deletes from the index (FerretDB; see `guarded.rs`).
    by_id_only: bool,
}

impl MongoStore {
    /// Takes the lock of `org_id`, waiting up to three store timeouts for a current holder.
    pub(super) async fn lock(&self, org_id: &str) -> Result<OrgLock, StoreError> {
        let key = format!("lock:{org_id}");
        let holder = uuid::Uuid::new_v4().to_string();
        let lease = lease(self.timeout);
        let give_up = tokio::time::Instant::now() + self.timeout * 3;
        let mut pause = Duration::from_millis(20);
        loop {
            let now = self.clock.now();
            let expires_at = now + chrono::Duration::from_std(lease).unwrap_or_default();
            let inserted = self
                .run(
                    "lock organization",
                    self.reservations().insert_one(doc! {
                        "_id": &key, "organization_id": org_id, "holder": &holder,
                        "created_at": bson_time(now), "expires_at": bson_time(expires_at),
                    }),
                )
                .await;
            match inserted {
                Ok(_) => {
                    return Ok(OrgLock {
                        reservations: self.reservations(),
                        key,
                        holder,
                        retry_until: tokio::time::Instant::now() + lease,
                        timeout: self.timeout,
                        by_id_only: self.ferretdb().await,
                    })
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            let current = self
                .run(
                    "read lock",
                    self.reservations().find_one(doc! { "_id": &key }),
                )
                .await?;
            if let Some(current) = current {
                let ends = current
                    .get_datetime("expires_at")
                    .map(|t| chrono_time(*t))
                    .unwrap_or_default();
                if ends <= self.clock.now() {
                    // The holder is gone (or stalled past its lease): take the lock over.
                    let stale_holder = current.get_str("holder").unwrap_or_default();
                    self.delete_if(
                        "take over lock",
                        &self.reservations(),
                        doc! { "_id": &key, "holder": stale_holder },
                    )
                    .await?;
                    tracing::warn!(
                        organization_id = org_id,
                        "took over an expired operation lock"
                    );
                    continue;
                }
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(StoreError::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

impl OrgLock {
    /// Frees the lock (only if still ours). A failure is retried in the background until the
    /// lease ends, after which the lock is free anyway.
    pub async fn release(self) {
        let filter = doc! { "_id": &self.key, "holder": &self.holder };
        if self.try_release(&filter).await {
            return;
        }
        let this = Arc::new(self);
        tokio::spawn(async move {
            while tokio::time::Instant::now() < this.retry_until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if this.try_release(&filter).await {
                    return;
                }
            }
        });
    }

    async fn try_release(&self, filter: &Document) -> bool {
        let deleted = tokio::time::timeout(
            self.timeout,
            delete_if(&self.reservations, filter.clone(), self.by_id_only),
        )
        .await;
        match deleted {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lock = %self.key, "releasing an operation lock failed; retrying");
                false
            }
            Err(_) => {
                tracing::warn!(lock = %self.key, "releasing an operation lock timed out; retrying");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_ten_store_timeouts_and_at_least_ten_seconds() {
        assert_eq!(lease(Duration::from_secs(2)), Duration::from_secs(20));
        assert_eq!(lease(Duration::from_millis(900)), Duration::from_secs(10));
        assert_eq!(lease(Duration::from_secs(1)), Duration::from_secs(10));
        assert_eq!(lease(Duration::from_secs(60)), Duration::from_secs(600));
    }
}
