//! Idempotency keys on MongoDB: a document per key scope in `idempotency`, claimed by inserting
//! its `_id` (atomic on MongoDB and FerretDB alike), stamped with the server's clock.

use std::time::Duration;

use async_trait::async_trait;

use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::Collection;

use super::codec::{bson_time, chrono_time};
use super::MongoStore;
use crate::storage::{Idempotency, IdempotencyClaim, StoreError, IDEMPOTENCY_KEEP};

/// The collection of idempotency records.
pub(super) const IDEMPOTENCY: &str = "idempotency";

impl MongoStore {
    fn idempotency(&self) -> Collection<Document> {
        self.db.collection(IDEMPOTENCY)
    }

    /// Claims `scope` (see [`crate::storage::Store::begin_idempotent`]).
    pub(super) async fn claim_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        for _ in 0..3 {
            let now = self.clock.now();
            let inserted = self
                .run(
                    "claim idempotency key",
                    self.idempotency().insert_one(doc! {
                        "_id": scope, "fingerprint": fingerprint,
                        "started_at": bson_time(now), "sealed": Bson::Null,
                    }),
                )
                .await;
            match inserted {
                Ok(_) => return Ok(IdempotencyClaim::Started),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            let Some(found) = self
                .run(
                    "read idempotency key",
                    self.idempotency().find_one(doc! { "_id": scope }),
                )
                .await?
            else {
                continue;
            };
            let started = found
                .get_datetime("started_at")
                .map(|t| chrono_time(*t))
                .unwrap_or_default();
            let age = (now - started).to_std().unwrap_or_default();
            let fingerprint = found.get_str("fingerprint").unwrap_or_default().to_owned();
            let sealed = match found.get("sealed") {
                Some(Bson::Binary(b)) => Some(b.bytes.clone()),
                _ => None,
            };
            match sealed {
                None if age < running_ttl => return Ok(IdempotencyClaim::Running { fingerprint }),
                Some(sealed) if age < IDEMPOTENCY_KEEP => {
                    return Ok(IdempotencyClaim::Finished {
                        fingerprint,
                        sealed,
                    })
                }
                // Left by a dead process, or expired: remove exactly that record and claim again.
                _ => {
                    self.delete_if(
                        "expire idempotency key",
                        &self.idempotency(),
                        doc! { "_id": scope, "started_at": bson_time(started) },
                    )
                    .await?;
                }
            }
        }
        Err(StoreError::Unavailable(
            "idempotency key is contended".into(),
        ))
    }

    /// Stores the sealed response of the running claim on `scope`.
    pub(super) async fn seal_idempotent(
        &self,
        scope: &str,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        let sealed = Binary {
            subtype: BinarySubtype::Generic,
            bytes: sealed.to_vec(),
        };
        self.update_if(
            "finish idempotency key",
            &self.idempotency(),
            doc! { "_id": scope, "sealed": Bson::Null },
            doc! { "$set": { "sealed": sealed } },
        )
        .await
        .map(drop)
    }

    /// Drops the running claim on `scope`.
    pub(super) async fn drop_idempotent(&self, scope: &str) -> Result<(), StoreError> {
        self.delete_if(
            "abandon idempotency key",
            &self.idempotency(),
            doc! { "_id": scope, "sealed": Bson::Null },
        )
        .await
        .map(drop)
    }

    /// Forgets keys past [`IDEMPOTENCY_KEEP`] (run by the reconciler).
    pub(super) async fn expire_idempotent(&self) -> Result<(), StoreError> {
        let cutoff =
            self.clock.now() - chrono::Duration::from_std(IDEMPOTENCY_KEEP).unwrap_or_default();
        self.run(
            "expire idempotency keys",
            self.idempotency()
                .delete_many(doc! { "started_at": { "$lt": bson_time(cutoff) } }),
        )
        .await
        .map(drop)
    }
}

#[async_trait]
impl Idempotency for MongoStore {
    async fn begin_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.claim_idempotent(scope, fingerprint, running_ttl).await
    }

    async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.seal_idempotent(scope, sealed).await
    }

    async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError> {
        self.drop_idempotent(scope).await
    }
}
